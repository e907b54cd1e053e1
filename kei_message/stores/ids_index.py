"""A message's receipts and replies by its id on the JSONL bus, for `show` and `status` (#19).

What `show ID` says of a message (delivered to whom, replied by whom) was found
by searching everything written after it: the receipts since its time and the
bus since its line, 100 ms for a message in the middle of a million. This
index keeps, per message id, where its receipts are and which replies it got,
so the answer costs two small files whatever the bus size (the Redis store
keeps the same in hashes). ``index/byid/``::

    meta.json   {"v": 1, "receipts": [INODE, OFFSET, HEAD_CRC], "bus": POS}
    r-XX        "MSG_ID OFFSET\\n": a receipt of MSG_ID at OFFSET of receipts.jsonl
    p-XX        "MSG_ID REPLY_ID FROM\\n": a reply to MSG_ID (FROM as JSON)

``XX`` is a hash of the message id to one of ``BUCKETS``, in hex. ``meta.json``
says how far each was caught up: receipts.jsonl to ``OFFSET`` (the file with that inode and
first bytes; another file starts the receipts over) and the bus to the logical
position ``POS`` (a bus shorter than that starts the replies over). Reading it
catches up on what was written since, under ``index/byid.lock``; a crash
between the appends and ``meta.json`` repeats entries, which lookups read once.
When the lock is busy the caller searches as before.
"""

from __future__ import annotations

import os

from .. import paths
from ..errors import MailboxLocked
from ..leanjson import odumps, oloads
from . import layout
from .locks import locked

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

VERSION = 1
BITS = 6
BUCKETS = 1 << BITS  # files per kind
STEP = 4 << 20  # bytes of receipts read at a time
BUDGET = 8 << 20  # bytes of receipts indexed by one call (~0.12 s): a backlog takes several
LOCK_WAIT = 2.0  # seconds; then the caller searches instead
_FEW = 64 << 10  # bytes of receipts (some 600) read line by line, not by a search
_ID: Any = None  # the compiled id pattern: `re` only when receipts are indexed


def _dir(store: Any) -> str:
    store.prepare(layout.INDEX)
    return str(store.prepare(os.path.join(layout.INDEX, layout.IDS_INDEX)))  # 0700, no symlink


_GOLDEN, _MASK, _SHIFT = 0x9E3779B97F4A7C15, (1 << 64) - 1, 64 - BITS


def _bucket(kind: str, msg_id: int) -> str:
    # Fibonacci hashing, not the id modulo BUCKETS: ids a fixed step apart (a clock's
    # microseconds) would all fall into one bucket
    return f"{kind}-{(msg_id * _GOLDEN & _MASK) >> _SHIFT:02x}"


def _read(path: str) -> bytes:
    try:
        fd = paths.open_file(path, os.O_RDONLY)
    except FileNotFoundError:
        return b""
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0) if size else b""
    finally:
        os.close(fd)


def _load(path: str) -> dict[str, Any]:
    try:
        meta = oloads(_read(path) or b"{}")
    except ValueError:  # orjson.JSONDecodeError
        return {}
    return meta if isinstance(meta, dict) and meta.get("v") == VERSION else {}


def _append(folder: str, lines: dict[str, list[bytes]]) -> None:
    for name, got in lines.items():
        fd = paths.open_file(os.path.join(folder, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            view = memoryview(b"".join(got))
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def _wipe(folder: str, kind: str) -> None:
    for name in os.listdir(folder):
        if name.startswith(kind + "-"):
            os.unlink(os.path.join(folder, name))


def _receipt_lines(data: bytes, at: int, out: dict[str, list[bytes]]) -> None:
    """The bucket lines of the receipts in ``data`` (complete lines from offset ``at``):
    every writer writes the id first, so a search finds them all, unless a line is
    odd (then line by line)."""
    if len(data) < _FEW:
        _each_receipt(data, at, out)  # a catch-up of a few lines: no `re` for it (~4 ms)
        return
    global _ID
    if _ID is None:
        import re

        _ID = re.compile(rb'(?m)^\{"id":(\d{1,16}),')
    found = _ID.findall(data)
    lines = data.split(b"\n")
    if len(found) == len(lines) - 1:  # one at the start of every line
        groups: list[list[bytes]] = [[] for _ in range(BUCKETS)]
        put = [g.append for g in groups]
        start = at
        for digits, line in zip(found, lines, strict=False):
            put[(int(digits) * _GOLDEN & _MASK) >> _SHIFT](b"%s %d\n" % (digits, start))
            start += len(line) + 1
        for h, got in enumerate(groups):
            if got:
                out.setdefault(f"r-{h:02x}", []).extend(got)
        return
    _each_receipt(data, at, out)


def _each_receipt(data: bytes, at: int, out: dict[str, list[bytes]]) -> None:
    start = 0
    while start < len(data):
        stop = data.index(b"\n", start)
        odd = _receipt_id(data, start, stop)
        if odd is not None:
            out.setdefault(_bucket("r", odd), []).append(b"%d %d\n" % (odd, at + start))
        start = stop + 1


def _receipt_id(data: bytes, start: int, stop: int) -> int | None:
    """The message id of the receipt line ``data[start:stop]`` (what every writer writes
    first), or None for a line that is no receipt."""
    first = layout.leading_id(data, start, stop)
    if first is not None:
        return first
    found = layout.parse_receipts(data[start : stop + 1])[0]  # another key order
    return found[0]["id"] if found else None


def _next_newline(fd: int, offset: int, size: int) -> int | None:
    while offset < size:
        piece = os.pread(fd, min(STEP, size - offset), offset)
        nl = piece.find(b"\n")
        if nl >= 0:
            return offset + nl
        offset += len(piece)
    return None


def _reply_lines(entries: Iterable[Any], out: dict[str, list[bytes]]) -> None:
    """The bucket lines of the replies among the bus ``entries``."""
    for entry in entries:
        rec = entry.record
        to = rec.get("reply_to") if rec is not None else None
        if isinstance(to, int) and not isinstance(to, bool):
            line = b"%d %d %s\n" % (to, rec["id"], odumps(rec["from"]))
            out.setdefault(_bucket("p", to), []).append(line)


def _catch_up(store: Any, folder: str) -> bool:
    """Catch up (receipts: at most ``BUDGET`` bytes of them); whether it got to the end."""
    meta_path = os.path.join(folder, "meta.json")
    meta = _load(meta_path)
    changed, complete = False, True
    # receipts.jsonl
    try:
        fd = paths.open_file(store.receipts_path(), os.O_RDONLY)
    except FileNotFoundError:
        fd = None
    if fd is not None:
        try:
            info = os.fstat(fd)
            first = os.pread(fd, 256, 0)
            resume = layout.receipts_resume(meta.get("receipts"), info.st_ino, info.st_size, first)
            offset = resume or 0
            if resume is None:
                if meta:
                    os.unlink(meta_path)  # a crash from here on starts over again
                    meta = {}
                _wipe(folder, "r")
            spent = 0
            while offset < info.st_size:
                if spent >= BUDGET:
                    complete = False  # the rest next time: no call pays for a million
                    break
                chunk = os.pread(fd, min(STEP, info.st_size - offset), offset)
                spent += len(chunk)
                done = chunk.rfind(b"\n") + 1
                if not done:  # a line over STEP bytes (no receipt of ours) or a torn one
                    nl = _next_newline(fd, offset + len(chunk), info.st_size)
                    if nl is None:
                        break  # still being written
                    offset, changed = nl + 1, True
                    continue
                lines: dict[str, list[bytes]] = {}
                _receipt_lines(chunk[:done], offset, lines)
                _append(folder, lines)
                offset += done
                changed = True
            if changed or meta.get("receipts") is None:
                meta["receipts"] = layout.receipts_token(info.st_ino, offset, first)
                changed = True
        finally:
            os.close(fd)
    # the bus
    end = store.end()
    pos = meta.get("bus")
    if not isinstance(pos, int) or pos > end:
        if "bus" in meta:
            del meta["bus"]
            paths.write_atomic(meta_path, odumps({**meta, "v": VERSION}))
        _wipe(folder, "p")
        pos = None
    if pos != end:
        # only the lines holding "reply_to": are parsed (a quote inside a string is
        # escaped: it is a key), read a buffer at a time, giant lines passed over
        lines = {}
        _reply_lines(store.scan(pos, end, hint=(b'"reply_to":',)), lines)
        _append(folder, lines)
        meta["bus"] = end
        changed = True
    if changed:
        meta["v"] = VERSION
        paths.write_atomic(meta_path, odumps(meta))
    return complete


def lookup(store: Any, ids: Iterable[int]) -> tuple[list[dict[str, Any]], list[Any]] | None:
    """The receipts of the messages ``ids`` in the order written, and the replies to them
    (``{"id", "from", "reply_to"}``, in bus order, each written after its message: a
    larger id), caught up first; None when the index is busy or still catching up
    on a backlog (a first use at a million receipts: a few calls), so search instead."""
    wanted = sorted(set(ids))
    folder = _dir(store)
    try:
        with locked(folder + ".lock", timeout=LOCK_WAIT):
            if not _catch_up(store, folder):
                return None
    except MailboxLocked:
        return None
    offsets: set[int] = set()
    replies: dict[int, dict[str, Any]] = {}
    for msg_id in wanted:
        key = b"%d " % msg_id
        receipts = b"\n" + _read(os.path.join(folder, _bucket("r", msg_id)))
        at = receipts.find(b"\n" + key)
        while at >= 0:
            stop = receipts.find(b"\n", at + 1)
            if stop < 0:
                break  # a torn last entry (a crash): read again after the next catch-up
            offset = receipts[at + 1 + len(key) : stop]
            if offset.isdigit():  # not an entry torn by a full disk and run on
                offsets.add(int(offset))
            at = receipts.find(b"\n" + key, stop)
        found = b"\n" + _read(os.path.join(folder, _bucket("p", msg_id)))
        at = found.find(b"\n" + key)
        while at >= 0:
            stop = found.find(b"\n", at + 1)
            if stop < 0:
                break
            reply_id, _, sender = found[at + 1 + len(key) : stop].partition(b" ")
            try:
                who = oloads(sender)
            except ValueError:
                who = None
            if reply_id.isdigit() and int(reply_id) > msg_id and isinstance(who, str):
                replies.setdefault(
                    int(reply_id), {"id": int(reply_id), "from": who, "reply_to": msg_id}
                )
            at = found.find(b"\n" + key, stop)
    return _receipts_at(store, sorted(offsets), set(wanted)), [replies[k] for k in sorted(replies)]


def _receipts_at(store: Any, offsets: list[int], wanted: set[int]) -> list[dict[str, Any]]:
    if not offsets:
        return []
    try:
        fd = paths.open_file(store.receipts_path(), os.O_RDONLY)
    except FileNotFoundError:
        return []
    lines = []
    try:
        for offset in offsets:
            line = os.pread(fd, 1024, offset)
            if b"\n" not in line:
                line = os.pread(fd, 1 << 20, offset)  # a long one (a foreign line)
            lines.append(line[: line.find(b"\n") + 1])
    finally:
        os.close(fd)
    return [r for r in layout.parse_receipts(b"".join(lines))[0] if r["id"] in wanted]
