"""``kei message migrate --to URL``: copy a bus and its cursors to another store.

Either direction: the JSONL file to Redis (``redis://…``, ``rediss://…``) or
Redis back to a JSONL file (``file:`` for the mailbox dir, ``file:PATH`` for
another dir). Each line is copied byte for byte, corrupt ones included, in
bus order. Positions differ between stores (byte offsets, stream ids), so
each reader's cursor is translated: its position becomes the target position
of the first entry it had not consumed (or the target's end), and its
out-of-order consumed keys are mapped one by one. Registered sessions are
copied too. Records ``gc`` moved to the archive are not.

The target must be empty (no records, no cursors): merging two buses would
reorder them. Senders that keep writing to the source during the copy are
caught up with (the copy repeats until the source stops growing); stop them
before switching every machine over, or their later sends stay behind.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from .. import paths
from ..cursors import Cursor, Pos
from ..errors import MailboxUnavailable, UsageError
from ..records import CorruptLine, parse
from ..stores.base import Store
from ..stores.jsonl import JsonlStore
from ..stores.locks import locked


@dataclass
class Migrated:
    records: int
    cursors: int
    sessions: int
    source: str
    target: str


def open_target(url: str) -> Store:
    """``redis://…`` (and ``rediss://``, ``unix://``), or ``file:``/``file:PATH`` for JSONL."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from ..stores.redis import RedisStore  # only for a Redis target

        return RedisStore(url)
    if url == "jsonl" or url.startswith("file:"):
        path = url[len("file:") :] if url.startswith("file:") else ""
        if path.startswith("//"):
            path = path[2:]
        return JsonlStore(os.path.abspath(os.path.expanduser(path)) if path else None)
    raise UsageError(f"unsupported target {url!r}: use redis://HOST:PORT/DB or file:[DIR]")


def _same(a: Store, b: Store) -> bool:
    return type(a) is type(b) and a.location == b.location


def raw_entries(store: Store, after: Pos | None, until: Pos) -> Iterator[tuple[Pos, bytes]]:
    """(position, exact line bytes without newline) of each entry, oldest first."""
    scan_raw = getattr(store, "scan_raw", None)
    if scan_raw is not None:
        yield from scan_raw(after, until)
        return
    if isinstance(store, JsonlStore):
        # Positions are logical byte offsets: the line is the bytes between an
        # entry's pos and its end, less the newline.
        opened = store._open_read()
        if opened is None:
            return
        fd, base, _size = opened
        try:
            for entry in store.scan(after, until):
                start = int(entry.pos) - base
                yield entry.pos, os.pread(fd, int(entry.end) - int(entry.pos) - 1, start)
        finally:
            os.close(fd)
        return
    for entry in store.scan(after, until):  # an unknown store: records only
        if entry.record is not None:
            yield entry.pos, orjson.dumps(entry.record)


class _JsonlWriter:
    """Appends copied lines to an empty JSONL bus under its append lock."""

    def __init__(self, store: JsonlStore) -> None:
        self.store = store

    def write(self, lines: list[bytes]) -> list[int]:
        from ..stores.redis import MAX_US_ID  # not for a JSONL target

        store = self.store
        store.prepare()
        with locked(store.lock_path) as lock_fd:
            fd = paths.open_file(store.location, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                at = store.end()
                size = os.fstat(fd).st_size
                positions = []
                data = bytearray()
                top = 0
                for line in lines:
                    positions.append(at + len(data))
                    data += line + b"\n"
                    try:
                        rid = parse(line)["id"]
                    except CorruptLine:
                        continue
                    if 0 < rid < MAX_US_ID:
                        top = max(top, rid)
                try:
                    view = memoryview(bytes(data))
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                except OSError as exc:
                    os.ftruncate(fd, size)
                    raise MailboxUnavailable(
                        f"cannot write {store.location}: {exc.strerror}; nothing was copied"
                    ) from exc
                # The lock file holds the largest id handed out (see stores.jsonl):
                # new sends must get larger ids than every copied record.
                held = os.pread(lock_fd, 64, 0).strip()
                if top and (not held.isdigit() or int(held) < top):
                    os.pwrite(lock_fd, str(top).zfill(20).encode(), 0)
                return positions
            finally:
                os.close(fd)


def _write(target: Store, lines: list[bytes]) -> list[Pos]:
    if isinstance(target, JsonlStore):
        return list(_JsonlWriter(target).write(lines))
    importer = getattr(target, "import_lines", None)
    if importer is None:
        raise UsageError(f"cannot migrate into {target.location}")
    return list(importer(lines))


def migrate(source: Store, target: Store, *, batch: int = 500) -> Migrated:
    """Copy every record, cursor and session of ``source`` into the empty ``target``."""
    if _same(source, target):
        raise UsageError(f"source and target are the same store: {source.location}")
    if next(iter(target.scan(None)), None) is not None or target.readers():
        raise UsageError(
            f"target {target.location} already has records or cursors; migrate needs an empty one"
        )
    order = source.order
    keys: list[Pos] = []  # source positions, in bus order
    orders: list[Any] = []
    mapped: list[Pos] = []  # target position of each
    copied_to: Pos | None = None
    while True:
        until = source.end()
        if copied_to is not None and order(until) <= order(copied_to):
            break
        pending: list[tuple[Pos, bytes]] = []
        for pos, raw in raw_entries(source, copied_to, until):
            pending.append((pos, raw))
            if len(pending) >= batch:
                _flush(target, pending, keys, orders, mapped, order)
        _flush(target, pending, keys, orders, mapped, order)
        copied_to = until
    # A batch retried after a dropped connection could have been written twice:
    # check before any cursor points into the copy.
    found = sum(1 for _ in target.scan(None))
    if found != len(keys):
        raise MailboxUnavailable(
            f"{target.location} holds {found} records after copying {len(keys)}; "
            "empty it and run migrate again"
        )
    target_end = target.end()
    where = dict(zip(keys, mapped, strict=True))

    def translate(pos: Pos | None) -> Pos | None:
        if pos is None:
            return None
        i = bisect.bisect_left(orders, order(pos))
        return mapped[i] if i < len(mapped) else target_end

    readers = source.readers()
    for reader in readers:
        cursor = source.load_cursor(reader)
        if cursor is None:
            continue
        moved = Cursor(
            translate(cursor.pos),
            frozenset(where[k] for k in cursor.done if k in where),
        )
        with target.reader_lock(reader):
            target.save_cursor(reader, moved)
    sessions = 0
    for info in source.sessions():
        sid = info.get("session_id")
        if isinstance(sid, str) and sid:
            target.put_session(sid, info)
            sessions += 1
    # receipts too (#16): keyed by message id, which the move keeps; a second
    # migration adds duplicates, and a status counts the first delivery only
    receipts, _ = source.receipts(None)
    for i in range(0, len(receipts), 1000):
        target.add_receipts(receipts[i : i + 1000], keep_time=True)
    return Migrated(len(keys), len(readers), sessions, source.location, target.location)


def _flush(
    target: Store,
    pending: list[tuple[Pos, bytes]],
    keys: list[Pos],
    orders: list[Any],
    mapped: list[Pos],
    order: Any,
) -> None:
    if not pending:
        return
    mapped.extend(_write(target, [raw for _, raw in pending]))
    for pos, _ in pending:
        keys.append(pos)
        orders.append(order(pos))
    pending.clear()
