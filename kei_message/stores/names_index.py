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
    changed = pos != end
    chunks = getattr(store, "chunks", None)
    if chunks is None:
        _count(store.scan(pos, end), data["names"], data["broadcasts"])
    elif pos is None and end - (start or 0) >= SPLIT_MIN:
        # from nothing, a long bus: half of it counted by a child on the other core
        from ..cores import side_by_side

        mid = store.line_after(((start or 0) + end) // 2)
        _, later = side_by_side(
            lambda: _tally_into(store, None, mid, data),
            lambda: _tally_into(store, mid, end, _empty()),
        )
        _merge(data, later)
    else:
        _tally_into(store, pos, end, data)
    if changed:
        data["pos"] = end
        _prune(data)
    return data, changed


_TALLY_MIN = 4096  # bytes (some 20 records): smaller stretches are counted one by one
SPLIT_MIN = 32 << 20  # bytes (~180k records) counted from nothing: two cores share it


def _tally_into(store: Any, pos: Any, end: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Count the JSONL bus from ``pos`` to ``end`` into ``data`` (and return it).

    Whole buffers of well-formed lines are tallied by (from, to) pair with bytes
    methods, so building the index from nothing is not a loop per record (issue
    19); broadcasts are listed only near the replay window."""
    found: dict[str, dict[str, Any]] = data["names"]
    casts: list[list[Any]] = data["broadcasts"]
    oldest = time.time() - max(settings.broadcast_replay(), _BROADCAST_KEEP) - 3600
    for at, buf, n in store.chunks(pos, end):
        # a catch-up of a few records is read record by record: no `re` for it
        listed = _tally(buf, n, found, oldest, casts) if n >= _TALLY_MIN else None
        if listed is None:
            _count(store.scan(at, at + n), found, casts)
        elif not listed and data.get("complete_from", 0.0) < oldest:
            data["complete_from"] = oldest
    return data


def _merge(data: dict[str, Any], later: dict[str, Any]) -> None:
    """Add to ``data`` the counts of the stretch of bus right after it, ``later``."""
    found: dict[str, dict[str, Any]] = data["names"]
    for name, info in later["names"].items():
        mine = found.get(name)
        if mine is None:
            found[name] = info
            continue
        for key in ("sent", "received", "inbox"):
            mine[key] = mine.get(key, 0) + info.get(key, 0)
        if "last_id" in info:
            mine["last_id"], mine["last_ts"] = info["last_id"], info.get("last_ts", "")
    data["broadcasts"].extend(later["broadcasts"])
    data["complete_from"] = max(data.get("complete_from", 0.0), later.get("complete_from", 0.0))


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


_PAIRS: list[Any] = []  # the compiled (from, to) regex, once `re` is imported


def _tally(
    buf: bytes | bytearray,
    n: int,
    found: dict[str, dict[str, Any]],
    oldest: float,
    casts: list[list[Any]],
) -> bool | None:
    """Count ``buf[:n]`` (complete lines) into ``found`` by (from, to) pair, and when its
    newest line is from ``oldest`` on, list its broadcasts into ``casts`` (parsing those
    lines only): whether it listed them. None, counting nothing, unless every line is a
    plain record."""
    from collections import Counter

    if not _PAIRS:
        import re

        # a '"from":"' can only be a key: inside a JSON string every quote is escaped;
        # one group per line ("FROM","to":"TO), not a tuple: a third faster at a
        # million; the rest of the line up to its closing brace in the same match,
        # not counted apart
        _PAIRS.append(re.compile(rb'"from":"([^"\\]*","to":"[^"\\]*)"[^\n]*\}\n'))
    if not buf.startswith(b'{"id":'):
        return None
    pairs = Counter(_PAIRS[0].findall(buf, 0, n))
    if sum(pairs.values()) != buf.count(b"\n", 0, n):
        return None
    try:  # the newest line
        tail = parse(bytes(buf[buf.rfind(b"\n", 0, n - 1) + 1 : n - 1]))
    except CorruptLine:
        return None
    listed: list[list[Any]] = []
    near = record_epoch(tail) >= oldest
    if near:  # near the replay window: its broadcasts are listed
        key = b'","to":"all"'
        at = buf.find(key, 0, n)
        while at >= 0:
            start, stop = buf.rfind(b"\n", 0, at) + 1, buf.find(b"\n", at, n)
            try:
                rec = parse(bytes(buf[start:stop]))
            except CorruptLine:
                return None
            if rec["to"] != "all":
                return None
            listed.append([record_epoch(rec), rec["from"]])
            at = buf.find(key, stop, n)
        if len(listed) != sum(k for pair, k in pairs.items() if pair.endswith(key[:-1])):
            return None
    newest: dict[bytes, int] = {}  # name -> where its last line starts in the buffer
    split: dict[bytes, tuple[bytes, bytes]] = {}
    for pair in pairs:
        sender, _, to = pair.partition(b'","to":"')
        split[pair] = (sender, to)
        at = buf.rfind(b'"from":"%s"' % pair, 0, n)
        start = buf.rfind(b"\n", 0, at) + 1
        for name in (sender, to):
            if name != b"all" and newest.get(name, -1) < start:
                newest[name] = start
    last: dict[int, tuple[Any, str]] = {}
    for start in set(newest.values()):
        try:
            rec = parse(bytes(buf[start : buf.find(b"\n", start, n)]))
        except CorruptLine:
            return None
        last[start] = (rec["id"], rec.get("ts", ""))
    for pair, k in pairs.items():
        sender, to = split[pair]
        src, dst = sender.decode("utf-8", "replace"), to.decode("utf-8", "replace")
        for role, name in (("sent", src), ("received", dst)):
            if name != "all":
                info = found.setdefault(name, {"sent": 0, "received": 0, "inbox": 0})
                info[role] += k
        if dst != "all" and dst != src:
            found[dst]["inbox"] = found[dst].get("inbox", 0) + k
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
