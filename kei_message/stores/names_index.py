"""The names index of the JSONL store: every name seen on the bus, kept current
incrementally, so ``who`` and the unknown-recipient note never scan the bus.

``index/names.json`` holds::

    {"v": 2, "pos": P, "start": S, "names": {NAME: {...}}, "broadcasts": [[T, FROM], ...],
     "complete_from": C}

the names seen in the bus between logical positions ``S`` (where counting
began: the start of the bus when the index was built, moved on by gc) and
``P``. Per name: ``sent``, ``received``, ``last_id``, ``last_ts`` and
``inbox``, the personal messages to it from someone else still in the bus.
``broadcasts`` lists (time, sender) of every broadcast newer than
``complete_from``. Reading the index catches up on what was appended since
``P`` (usually one record: the send that just ran), under
``index/names.lock`` so two writers cannot undo each other, and so ``who``,
``channels`` and the unknown-recipient note never scan the whole bus.

A reader with no cursor has as unread its personal messages of any age plus
the broadcasts of the replay window (SPEC §4): ``inbox`` plus a count over
``broadcasts``, which is how ``who`` shows unread counts for names that
never read without reading the bus. gc subtracts what it moved out
(``forget``).
"""

from __future__ import annotations

import os
import time

from .. import paths, settings
from ..errors import MailboxLocked
from ..lean import suppress
from ..leanjson import odumps, oloads
from ..records import CorruptLine, parse, record_epoch
from .layout import INDEX, NAMES_INDEX
from .locks import locked

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VERSION = 2
MAX_BROADCASTS = 20_000  # beyond this, old ones are dropped and `who` counts the slow way
_BROADCAST_KEEP = 86400.0  # at least this window of broadcasts is kept (rewritten on each send)


def _path(store: Any) -> str:
    return os.path.join(store.prepare(INDEX), NAMES_INDEX)


def _empty() -> dict[str, Any]:
    return {
        "v": VERSION,
        "pos": None,
        "start": None,
        "names": {},
        "broadcasts": [],
        "complete_from": 0.0,
    }


def _load(path: str) -> dict[str, Any]:
    try:
        fd = paths.open_file(path, os.O_RDONLY)
    except FileNotFoundError:
        return _empty()
    try:
        data = oloads(os.read(fd, 64 << 20))
    except ValueError:  # orjson.JSONDecodeError
        return _empty()  # rebuilt by the caller
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("v") != VERSION:
        return _empty()
    if not isinstance(data.get("names"), dict) or not isinstance(data.get("broadcasts"), list):
        return _empty()
    return data


def _store_start(store: Any) -> Any:
    start = getattr(store, "start", None)
    return start() if callable(start) else None


def _catch_up(store: Any, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Bring ``data`` up to the store's end; returns it (maybe rebuilt) and whether it changed."""
    order = store.order
    end = store.end()
    start = _store_start(store)
    pos = data.get("pos")
    if pos is not None and order(pos) > order(end):
        data, pos = _empty(), None  # the bus was replaced: start over
    elif (
        start is not None and data.get("start") is not None and order(data["start"]) < order(start)
    ):
        data, pos = _empty(), None  # gc moved records out without telling us: recount
    if pos is None:
        data["start"] = start
    found: dict[str, dict[str, Any]] = data["names"]
    casts: list[list[Any]] = data["broadcasts"]
    changed = pos != end
    chunks = getattr(store, "chunks", None)
    if chunks is None:
        _count(store.scan(pos, end), found, casts)
    else:
        # the JSONL bus: whole buffers of well-formed lines are tallied by (from, to)
        # pair with bytes methods, so building the index from nothing is not a loop
        # per record (issue 19); broadcasts are listed only near the replay window
        oldest = time.time() - max(settings.broadcast_replay(), _BROADCAST_KEEP) - 3600
        for at, chunk in chunks(pos, end):
            # a catch-up of a few records is read record by record: no `re` for it
            listed = _tally(chunk, found, oldest, casts) if len(chunk) >= _TALLY_MIN else None
            if listed is None:
                _count(store.scan(at, at + len(chunk)), found, casts)
            elif not listed and data.get("complete_from", 0.0) < oldest:
                data["complete_from"] = oldest
    if changed:
        data["pos"] = end
        _prune(data)
    return data, changed


_TALLY_MIN = 4096  # bytes (some 20 records): smaller stretches are counted one by one


def _count(entries: Any, found: dict[str, dict[str, Any]], casts: list[list[Any]]) -> None:
    for entry in entries:
        rec = entry.record
        if rec is None:
            continue
        sender, to = rec["from"], rec["to"]
        for role, name in (("sent", sender), ("received", to)):
            if name == "all":
                continue
            info = found.setdefault(name, {"sent": 0, "received": 0, "inbox": 0})
            info[role] += 1
            info["last_id"] = rec["id"]
            info["last_ts"] = rec.get("ts", "")
        if to == "all":
            casts.append([record_epoch(rec), sender])
        elif to != sender:
            found[to]["inbox"] = found[to].get("inbox", 0) + 1


def _tally(
    chunk: bytes, found: dict[str, dict[str, Any]], oldest: float, casts: list[list[Any]]
) -> bool | None:
    """Count ``chunk`` (complete lines) into ``found`` by (from, to) pair, and when its
    newest line is from ``oldest`` on, list its broadcasts into ``casts`` (parsing those
    lines only): whether it listed them. None, counting nothing, unless every line is a
    plain record."""
    import re
    from collections import Counter

    lines = chunk.count(b"\n")
    if not chunk.startswith(b'{"id":') or chunk.count(b"}\n") != lines:
        return None
    # a '"from":"' can only be a key: inside a JSON string every quote is escaped;
    # one group per line ("FROM","to":"TO), not a tuple: a third faster at a million
    pairs = Counter(re.findall(rb'"from":"([^"\\]*","to":"[^"\\]*)"', chunk))
    if sum(pairs.values()) != lines:
        return None
    try:  # the newest line of the chunk
        tail = parse(chunk[chunk.rfind(b"\n", 0, len(chunk) - 1) + 1 : -1])
    except CorruptLine:
        return None
    listed: list[list[Any]] = []
    near = record_epoch(tail) >= oldest
    if near:  # near the replay window: its broadcasts are listed
        key = b'","to":"all"'
        at = chunk.find(key)
        while at >= 0:
            start, stop = chunk.rfind(b"\n", 0, at) + 1, chunk.find(b"\n", at)
            try:
                rec = parse(chunk[start:stop])
            except CorruptLine:
                return None
            if rec["to"] != "all":
                return None
            listed.append([record_epoch(rec), rec["from"]])
            at = chunk.find(key, stop)
        if len(listed) != sum(n for pair, n in pairs.items() if pair.endswith(key[:-1])):
            return None
    newest: dict[bytes, int] = {}  # name -> where its last line starts in the chunk
    split: dict[bytes, tuple[bytes, bytes]] = {}
    for pair in pairs:
        sender, _, to = pair.partition(b'","to":"')
        split[pair] = (sender, to)
        at = chunk.rfind(b'"from":"%s"' % pair)
        start = chunk.rfind(b"\n", 0, at) + 1
        for name in (sender, to):
            if name != b"all" and newest.get(name, -1) < start:
                newest[name] = start
    last: dict[int, tuple[Any, str]] = {}
    for start in set(newest.values()):
        try:
            rec = parse(chunk[start : chunk.find(b"\n", start)])
        except CorruptLine:
            return None
        last[start] = (rec["id"], rec.get("ts", ""))
    for pair, n in pairs.items():
        sender, to = split[pair]
        src, dst = sender.decode("utf-8", "replace"), to.decode("utf-8", "replace")
        for role, name in (("sent", src), ("received", dst)):
            if name != "all":
                info = found.setdefault(name, {"sent": 0, "received": 0, "inbox": 0})
                info[role] += n
        if dst != "all" and dst != src:
            found[dst]["inbox"] = found[dst].get("inbox", 0) + n
    for name, start in newest.items():
        info = found[name.decode("utf-8", "replace")]
        info["last_id"], info["last_ts"] = last[start]
    casts.extend(listed)
    return near


def _prune(data: dict[str, Any]) -> None:
    casts: list[list[Any]] = data["broadcasts"]
    oldest = time.time() - max(settings.broadcast_replay(), _BROADCAST_KEEP)
    if casts and casts[0][0] < oldest:
        casts[:] = [c for c in casts if c[0] >= oldest]
        data["complete_from"] = max(data.get("complete_from", 0.0), oldest)
    if len(casts) > MAX_BROADCASTS:
        dropped = casts[: len(casts) - MAX_BROADCASTS]
        del casts[: len(dropped)]
        data["complete_from"] = max(data.get("complete_from", 0.0), dropped[-1][0])


def _save(path: str, data: dict[str, Any]) -> None:
    # an index we cannot save is caught up again next time
    with suppress(Exception):
        paths.write_atomic(path, odumps(data))


def current(store: Any) -> dict[str, Any]:
    """The index, caught up with the store (and saved when that changed it)."""
    path = _path(store)
    try:
        with locked(path[:-5] + ".lock", timeout=2.0):
            data, changed = _catch_up(store, _load(path))
            if changed:
                _save(path, data)
            return data
    except MailboxLocked:  # someone is slow with it; answer without saving
        return _catch_up(store, _load(path))[0]


def names_index(store: Any) -> dict[str, dict[str, Any]]:
    names: dict[str, dict[str, Any]] = current(store)["names"]
    return names


def fresh_unread(data: dict[str, Any], name: str, replay: float, now: float) -> int | None:
    """Unread count of ``name`` if it has no cursor, from the index; None if it cannot tell."""
    oldest = now - replay
    if oldest < data.get("complete_from", 0.0):
        return None
    info = data["names"].get(name)
    personal = int(info.get("inbox", 0)) if info else 0
    casts = sum(1 for t, sender in data["broadcasts"] if t >= oldest and sender != name)
    return personal + casts


def forget(store: Any, moved: dict[str, int], old_start: Any, cut: Any) -> None:
    """gc moved [old_start, cut) out of the bus, ``moved[NAME]`` personal messages to NAME."""
    path = _path(store)
    order = store.order
    try:
        with locked(path[:-5] + ".lock", timeout=5.0):
            data = _load(path)
            start = data.get("start")
            if data.get("pos") is None:
                return
            if start is not None and order(start) >= order(cut):
                return  # already counted from after the cut
            if start != old_start or order(data["pos"]) < order(cut):
                _save(path, _empty())  # cannot adjust: recount on next use
                return
            for name, n in moved.items():
                info = data["names"].get(name)
                if info is not None:
                    info["inbox"] = max(0, info.get("inbox", 0) - n)
            data["start"] = cut
            _save(path, data)
    except MailboxLocked:
        with suppress(FileNotFoundError):
            os.unlink(path)  # recounted on next use rather than left wrong
