"""Retention (`kei message gc`): move old records out of the bus, losing no one's mail.

The cut is the first entry newer than ``keep``, pulled earlier so that no
*known reader* loses a message it has not consumed:

- a reader with a cursor: never past its cursor (``pos``; everything after
  it may still be unread, including keys it took out of order);
- a reader known without a usable cursor: a registered Claude Code session's
  name, or a name with a cursor lock but no cursor yet (it is reading for
  the first time right now). Such a reader gets its personal messages of any
  age and broadcasts of the replay window (SPEC §4), so the cut stops before
  the first of those.

A name that only ever received mail and never read or registered is not a
reader anyone knows of: its old mail goes to the archive with the rest
(``kei message doctor`` and the archive keep it findable).

The store moves the prefix (``store.compact``); positions are logical, so
cursors, the names index (``index.forget``) and readers mid-read stay right.
"""

from __future__ import annotations

import os
import time
from typing import Any, NamedTuple

from .. import names, records, settings
from ..cursors import Pos
from ..mailbox import Mailbox
from ..stores import names_index


class GcResult(NamedTuple):
    moved: int  # records (lines) moved out of the bus
    cut: Pos | None  # position of the first entry kept; None when nothing moves
    wanted: int  # how many ``keep`` alone would have moved
    held_by: list[str]  # readers that kept the cut earlier than ``keep`` asked
    archive: str | None  # where the moved records went
    dry_run: bool = False


def known_readers(store: Any) -> tuple[dict[str, Pos], set[str]]:
    """(reader -> cursor position, readers known without a cursor)."""
    with_cursor: dict[str, Pos] = {}
    without: set[str] = set()
    for reader in store.readers():
        cursor = store.load_cursor(reader)
        if cursor is None or cursor.pos is None:
            without.add(reader)
        else:
            with_cursor[reader] = cursor.pos
    for sess in store.sessions():
        name = sess.get("name")
        if isinstance(name, str) and names.is_valid(name) and name not in with_cursor:
            without.add(name)
    root = getattr(store, "root", None)
    if root:
        try:
            locks = os.listdir(os.path.join(root, "cursors"))
        except FileNotFoundError:
            locks = []
        for entry in locks:  # .NAME.lock: a reader that has locked but not yet committed
            name = entry[1:-5]
            if (
                entry.startswith(".")
                and entry.endswith(".lock")
                and names.is_valid(name)
                and name not in with_cursor
            ):
                without.add(name)
    without.discard(names.BROADCAST)
    return with_cursor, without


def collect(mailbox: Mailbox, keep_seconds: float, *, dry_run: bool = False) -> GcResult:
    """Move records older than ``keep_seconds`` out of the bus (see the module docstring)."""
    store = mailbox.store
    order = store.order
    now = time.time()
    oldest = now - keep_seconds
    replay_from = now - settings.broadcast_replay()
    with_cursor, without = known_readers(store)
    limit: Pos | None = None
    limit_by: list[str] = []
    for reader, pos in with_cursor.items():
        if limit is None or order(pos) < order(limit):
            limit, limit_by = pos, [reader]
        elif order(pos) == order(limit):
            limit_by.append(reader)
    start = _start(store)
    cut: Pos | None = None
    held: list[str] = []
    moved = extra = 0
    tallies: dict[str, int] = {}
    last_end: Pos | None = None
    for entry in store.scan(None):
        rec = entry.record
        if rec is not None and records.record_epoch(rec) >= oldest:
            if cut is None:
                cut = entry.pos
            break
        last_end = entry.end
        if not held:
            holder = _holder(entry.pos, rec, limit, limit_by, without, replay_from, order)
            if holder:
                held, cut = holder, entry.pos
        if held:
            extra += 1  # what ``keep`` alone would have moved too
            continue
        moved += 1
        if rec is not None and rec["to"] != names.BROADCAST and rec["to"] != rec["from"]:
            tallies[rec["to"]] = tallies.get(rec["to"], 0) + 1
    if cut is None:
        cut = last_end  # every entry is old: up to the last one we saw, not a later append
    if cut is None or moved == 0:
        return GcResult(0, None, extra, held, None, dry_run)
    archive = _archive(store)
    if dry_run:
        return GcResult(moved, cut, moved + extra, held, archive, True)
    if store.name == "jsonl":
        names_index.current(store)  # counted past the cut, so forget() can subtract exactly
        done = store.compact(cut)
        names_index.forget(store, tallies, start, cut)
    else:
        done = store.compact(cut)
    return GcResult(done, cut, done + extra, held, archive)


def _holder(
    pos: Pos,
    rec: records.Record | None,
    limit: Pos | None,
    limit_by: list[str],
    without: set[str],
    replay_from: float,
    order: Any,
) -> list[str]:
    """The readers that still need the entry at ``pos`` (empty: it may move)."""
    if limit is not None and order(pos) >= order(limit):
        return limit_by
    if rec is None or not without:
        return []
    sender, to = rec["from"], rec["to"]
    if to in without and to != sender:
        return [to]
    if to == names.BROADCAST and records.record_epoch(rec) >= replay_from:
        return sorted(without - {sender})
    return []


def _start(store: Any) -> Pos | None:
    start = getattr(store, "start", None)
    return start() if callable(start) else None


def _archive(store: Any) -> str | None:
    where = getattr(store, "archive_path", None)
    return str(where()) if callable(where) else None
