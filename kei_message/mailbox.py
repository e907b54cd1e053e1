"""The library face of kei-message: send, read, consume, pop, wait, recent.

Reading rules (SPEC §4): a reader R's unread are the records after R's
cursor whose ``to`` is R or ``all`` and whose ``from`` is not R. A consumer
holds R's reader lock from reading to committing, delivers first (prints,
injects, types into a pane) and only then moves the cursor, past exactly
what it delivered. A reader with no cursor yet gets its personal messages of
any age and broadcasts up to ``KEI_MAILBOX_BROADCAST_REPLAY`` old.

Example::

    mb = Mailbox()
    mb.send("ship it", to="frontend", sender="backend")
    for rec in mb.read("frontend"):
        print(rec["body"])
"""

from __future__ import annotations

import time
from collections import namedtuple
from contextlib import contextmanager

from . import names, records, settings
from .cursors import Cursor, Pos, merge
from .errors import BodyError, NothingToReturn, UnknownMessage
from .records import Record
from .stores import open_store
from .stores.base import Store

TYPE_CHECKING = False  # typing costs every command ~7 ms (issue 19)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, NamedTuple

    class Message(NamedTuple):
        key: Pos
        end: Pos
        record: Record

else:
    Message = namedtuple("Message", ["key", "end", "record"])
Message.__doc__ = "An unread message: where it is in the store, and the record."


before_warning: Callable[[], None] | None = None
"""Called before the mailbox's first warning: the CLI's fast path installs its stderr
handler here instead of importing logging for every command (issue 19)."""


def _warn(text: str, *args: object) -> None:
    import logging  # ~6 ms: only when there is something to say (issue 19)

    if before_warning is not None:
        before_warning()
    logging.getLogger("kei_message").warning(text, *args)


class Batch:
    """R's unread at one moment, under R's reader lock. Mark what you delivered."""

    def __init__(self, messages: list[Message], until: Pos) -> None:
        self.messages = messages
        self.until = until  # the store's end when these were read
        self.delivered: list[Message] = []

    @property
    def records(self) -> list[Record]:
        return [m.record for m in self.messages]

    def deliver(self, messages: list[Message] | None = None) -> None:
        """Mark ``messages`` (default: all of them) delivered; the cursor moves on exit."""
        self.delivered.extend(self.messages if messages is None else messages)


def is_for(rec: Record, reader: str) -> bool:
    return rec["to"] in (reader, names.BROADCAST) and rec["from"] != reader


class Mailbox:
    def __init__(
        self,
        store: Store | None = None,
        *,
        url: str | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        """``store``, else the one ``url`` (else ``KEI_MAILBOX_URL``) names; ``lock_timeout``
        caps every lock wait (default ``KEI_MAILBOX_LOCK_TIMEOUT``)."""
        self.store: Store = (
            store if store is not None else open_store(url, lock_timeout=lock_timeout)
        )

    # ------------------------------------------------------------------ sending
    def send(
        self,
        body: str,
        *,
        to: str = names.BROADCAST,
        sender: str,
        kind: str | None = None,
        reply_to: int | None = None,
    ) -> Record:
        """Append one record and return it as stored."""
        to = names.validate(to, allow_all=True)
        sender = names.validate(sender)
        if not isinstance(body, str) or not body.strip():
            raise BodyError("empty message body: nothing to send")
        limit = settings.max_body()
        size = len(body.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise BodyError(
                f"message body is {size} bytes, over the {limit}-byte limit "
                "(KEI_MAILBOX_MAX_BODY); nothing was sent"
            )
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:
            raise BodyError("message body is not valid Unicode text") from None
        fields: Record = {"from": sender, "to": to, "body": body}
        kind = records.check_kind(kind) if kind else records.kind_from_body(body)
        if kind:
            fields["kind"] = kind
        if reply_to is not None:
            fields["reply_to"] = int(reply_to)
        return self.store.append(fields)

    def reply(self, msg_id: int, body: str, *, sender: str, kind: str | None = None) -> Record:
        original = self.get(msg_id)
        return self.send(body, to=original["from"], sender=sender, kind=kind, reply_to=msg_id)

    # ------------------------------------------------------------------ reading
    def _collect(
        self, reader: str, cursor: Cursor | None, until: Pos, limit: int | None = None
    ) -> tuple[list[Message], list[Pos], Pos]:
        """R's unread up to ``until`` (at most ``limit``), keys of old broadcasts a new
        reader skips, and where the scan stopped (``until``, or after the ``limit``-th)."""
        order = self.store.order
        fresh = cursor is None or cursor.pos is None
        oldest = time.time() - settings.broadcast_replay() if fresh else 0.0
        mine = f'"{reader}"'.encode()
        hint = (mine, b'"all"')
        after = cursor.pos if cursor else None
        parts = [(after, until, hint)]
        if fresh:
            # Broadcasts before the replay window are skipped: find where it starts
            # (an hour early, for clocks that stepped back) and look only for R's own
            # messages before it, so a first read does not parse every broadcast (#19).
            cut = self.store.seek_time(oldest - 3600)
            if (
                cut is not None
                and order(cut) < order(until)
                and (after is None or order(cut) > order(after))
            ):
                early = self.store.scan(after, cut, hint=(mine,))
                if not any(e.record is not None and is_for(e.record, reader) for e in early):
                    # nothing for R before the window: no old broadcast must be
                    # remembered as skipped (the cursor ends past them all)
                    parts = [(cut, until, hint)]
        out: list[Message] = []
        skipped: list[Pos] = []
        corrupt = 0
        for entry in (e for a, u, h in parts for e in self.store.scan(a, u, hint=h)):
            rec = entry.record
            if rec is None:
                corrupt += 1
                _warn("skipped a corrupt line at position %s: %s", entry.pos, entry.error)
                continue
            if not is_for(rec, reader):
                continue
            if cursor is not None and cursor.consumed(entry.pos, order):
                continue
            if fresh and rec["to"] == names.BROADCAST and records.record_epoch(rec) < oldest:
                skipped.append(entry.pos)
                continue
            out.append(Message(entry.pos, entry.end, rec))
            if limit is not None and len(out) >= limit and not fresh:
                # `pop` needs one: do not read (under the lock) a backlog it will not take.
                # A new reader reads on: the old broadcasts it skips must all be recorded.
                return out, skipped, entry.end
        return out, skipped, until

    def unread(self, reader: str) -> list[Record]:
        """R's unread, oldest first, without marking them read."""
        reader = names.validate(reader)
        cursor = self.store.load_cursor(reader)
        msgs, _, _ = self._collect(reader, cursor, self.store.end())
        return [m.record for m in msgs]

    def count(self, reader: str) -> int:
        return len(self.unread(reader))

    @contextmanager
    def consuming(self, reader: str, *, limit: int | None = None) -> Iterator[Batch]:
        """Hold R's reader lock; yield R's unread (the oldest ``limit`` of them); on exit
        advance past what was delivered."""
        reader = names.validate(reader)
        store = self.store
        with store.reader_lock(reader):
            cursor = store.load_cursor(reader)
            msgs, skipped, until = self._collect(reader, cursor, store.end(), limit)
            batch = Batch(msgs, until)
            yield batch
            delivered = {m.key for m in batch.delivered}
            order = store.order
            pending = [m for m in msgs if m.key not in delivered]
            pos = pending[0].key if pending else until
            limit = order(pos)
            done = frozenset(k for k in (*delivered, *skipped) if order(k) >= limit)
            new = merge(cursor, Cursor(pos, done), order)
            if new != cursor:
                store.save_cursor(reader, new)

    def read(
        self, reader: str, *, deliver: Callable[[list[Record]], None] | None = None
    ) -> list[Record]:
        """Consume all of R's unread: ``deliver`` them, then mark them read."""
        with self.consuming(reader) as batch:
            if deliver is not None and batch.messages:
                deliver(batch.records)
            batch.deliver()
        return batch.records

    def pop(self, reader: str, *, deliver: Callable[[Record], None] | None = None) -> Record:
        """Consume R's oldest unread only. Raises NothingToReturn when there is none."""
        with self.consuming(reader, limit=1) as batch:
            if not batch.messages:
                raise NothingToReturn(f"no unread messages for {reader!r}")
            first = batch.messages[0]
            if deliver is not None:
                deliver(first.record)
            batch.deliver([first])
        return first.record

    def clear(self, reader: str) -> int:
        """Mark all of R's unread read; return how many."""
        with self.consuming(reader) as batch:
            batch.deliver()
        return len(batch.messages)

    def wait(
        self,
        reader: str,
        *,
        timeout: float | None = None,
        sender: str | None = None,
        kind: str | None = None,
        deliver: Callable[[Record], None] | None = None,
    ) -> Record:
        """Block until R has an unread message (matching ``sender``/``kind``); consume it.

        Raises NothingToReturn when ``timeout`` seconds pass first.
        """
        reader = names.validate(reader)
        if sender is not None:
            sender = names.validate(sender)
        if kind is not None:
            kind = records.check_kind(kind)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.consuming(reader) as batch:
                seen = batch.until
                for m in batch.messages:
                    rec = m.record
                    if sender is not None and rec["from"] != sender:
                        continue
                    if kind is not None and rec.get("kind") != kind:
                        continue
                    if deliver is not None:
                        deliver(rec)
                    batch.deliver([m])
                    return rec
            left = 3600.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise NothingToReturn(f"no message for {reader!r} within {timeout:g}s")
            self.store.wait_for_change(seen, min(left, 3600.0))

    # ------------------------------------------------------------------ the bus
    def get(self, msg_id: int) -> Record:
        found = self.store.seek_id(msg_id)  # flat in bus size (issue 19)
        if found is not None:
            return found
        for entry in self.store.scan_reverse():
            if entry.record is not None and entry.record["id"] == msg_id:
                return entry.record
        raise UnknownMessage(msg_id)

    def recent(
        self,
        limit: int = 40,
        *,
        sender: str | None = None,
        to: str | None = None,
        kind: str | None = None,
        since: float | None = None,
    ) -> list[Record]:
        """The newest ``limit`` records matching the filters, oldest first; read from the end."""
        out: list[Record] = []
        if limit <= 0:
            return out
        for entry in self.store.scan_reverse():
            rec = entry.record
            if rec is None:
                continue
            if since is not None and records.record_epoch(rec) < since:
                if rec["id"] > 10**15:  # our ids increase: nothing older can follow
                    break
                continue
            if sender is not None and rec["from"] != sender:
                continue
            if to is not None and rec["to"] != to:
                continue
            if kind is not None and rec.get("kind") != kind:
                continue
            out.append(rec)
            if len(out) >= limit:
                break
        out.reverse()
        return out

    def known_names(self) -> dict[str, dict[str, Any]]:
        return self.store.names()
