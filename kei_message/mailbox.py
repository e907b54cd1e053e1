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

from . import names, procs, records, settings
from .cursors import Cursor, Pos, merge
from .errors import (
    BodyError,
    InvalidName,
    NothingToReturn,
    NotYet,
    UnknownMessage,
    UsageError,
)
from .lean import ntuple
from .records import Record
from .stores import open_store
from .stores.base import Store

TYPE_CHECKING = False  # typing costs every command ~7 ms (issue 19)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import contextmanager
    from typing import Any, NamedTuple

    class Message(NamedTuple):
        key: Pos
        end: Pos
        record: Record

else:
    from .lean import contextmanager

    Message = ntuple("Message", ["key", "end", "record"], module=__name__)
Message.__doc__ = "An unread message: where it is in the store, and the record."


before_warning: Callable[[], None] | None = None
"""Called before the mailbox's first warning: the CLI's fast path installs its stderr
handler here instead of importing logging for every command (issue 19)."""


def warnings_ahead() -> None:
    """Code that logs through ``logging`` itself is about to run (``live/``): call
    ``before_warning`` now, once."""
    global before_warning
    if before_warning is not None:
        hook, before_warning = before_warning, None
        hook()


def _warn(text: str, *args: object) -> None:
    import logging  # ~6 ms: only when there is something to say (issue 19)

    warnings_ahead()
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


RANK = {"queued": 0, "delivered": 1, "replied": 2}


def overall(states: list[str]) -> str:
    """A message's state in one word: the least advanced of its readers' (none: queued)."""
    return min(states, key=RANK.__getitem__) if states else "queued"


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()  # "any session": no session filter (``unread`` for counts)

FEW_HINTS = 8  # counts_from: up to this many readers, chunks are searched for their names
SESSION_MIN = 4  # the shortest session prefix an address may use (SPEC §11)


def _session_ok(text: str) -> bool:
    return 0 < len(text) <= 128 and all(c.isalnum() or c in "-_" for c in text)


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
        to_session: str | None = None,
    ) -> Record:
        """Append one record and return it as stored.

        ``to_session``: the full id of one session of ``to`` (``resolve_session``);
        only a reader in that session receives it (SPEC §11)."""
        to = names.validate(to, allow_all=True)
        if to_session is not None and (to == names.BROADCAST or not _session_ok(to_session)):
            raise UsageError(f"bad session {to_session!r} for {to!r}")
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
        if to_session is not None:
            fields["to_session"] = to_session
        return self.store.append(fields)

    def reply(self, msg_id: int, body: str, *, sender: str, kind: str | None = None) -> Record:
        original = self.get(msg_id)
        return self.send(body, to=original["from"], sender=sender, kind=kind, reply_to=msg_id)

    # ------------------------------------------------------------------ reading
    def _collect(
        self,
        reader: str,
        cursor: Cursor | None,
        until: Pos,
        limit: int | None = None,
        session: str | None | object = ANY,
    ) -> tuple[list[Message], list[Pos], Pos, list[Pos]]:
        """R's unread up to ``until`` (at most ``limit``), keys of old broadcasts a new
        reader skips, where the scan stopped (``until``, or after the ``limit``-th), and
        the keys held for another session of R (``session``: the reader's; ANY: all)."""
        order = self.store.order
        fresh = cursor is None or cursor.pos is None
        if not fresh and order(cursor.pos) >= order(until):  # type: ignore[union-attr]
            return [], [], until, []  # read up to the end: not even the bus is opened
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
        held: list[Pos] = []
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
            if session is not ANY and rec.get("to_session") not in (None, session):
                held.append(entry.pos)  # another session's: not consumed, not passed
                continue
            out.append(Message(entry.pos, entry.end, rec))
            if limit is not None and len(out) >= limit and not fresh:
                # `pop` needs one: do not read (under the lock) a backlog it will not take.
                # A new reader reads on: the old broadcasts it skips must all be recorded.
                return out, skipped, entry.end, held
        return out, skipped, until, held

    def unread(self, reader: str, *, session: str | None | object = ANY) -> list[Record]:
        """R's unread, oldest first, without marking them read; ``session``: only what a
        reader in that session may take (default: all, those for any of R's sessions too)."""
        reader = names.validate(reader)
        cursor = self.store.load_cursor(reader)
        msgs, _, _, _ = self._collect(reader, cursor, self.store.end(), session=session)
        return [m.record for m in msgs]

    def count(self, reader: str) -> int:
        return len(self.unread(reader))

    def counts_from(self, cursors: dict[str, Cursor | None], until: Pos) -> dict[str, int]:
        """``count`` of each reader, with its cursor and the store's end already read
        (``who``): the bus from the earliest cursor up to ``until`` is read once for
        them all, not once per reader (#19). A reader that never read (no cursor)
        is counted by ``_collect``, for its first-read rules."""
        order = self.store.order
        out: dict[str, int] = {}
        behind: dict[str, Cursor] = {}
        for reader, cursor in cursors.items():
            names.validate(reader)
            out[reader] = 0
            if cursor is None or cursor.pos is None:
                out[reader] = len(self._collect(reader, cursor, until)[0])
            elif order(cursor.pos) < order(until):
                behind[reader] = cursor
        if not behind:
            return out  # all read up to the end: not even the bus is opened
        start = min((c.pos for c in behind.values()), key=order)
        # a hint per reader is a search of each chunk per reader: for a few only
        few = len(behind) <= FEW_HINTS
        hint = (*(f'"{r}"'.encode() for r in behind), b'"all"') if few else None
        everyone = tuple(behind)
        for entry in self.store.scan(start, until, hint=hint):
            rec = entry.record
            if rec is None:
                _warn("skipped a corrupt line at position %s: %s", entry.pos, entry.error)
                continue
            to = rec["to"]
            readers = everyone if to == names.BROADCAST else (to,) if to in behind else ()
            for reader in readers:
                if rec["from"] != reader and not behind[reader].consumed(entry.pos, order):
                    out[reader] += 1
        return out

    @contextmanager
    def consuming(
        self,
        reader: str,
        *,
        limit: int | None = None,
        how: str | None = None,
        session: str | None | Any = None,
    ) -> Iterator[Batch]:
        """Hold R's reader lock; yield R's unread (the oldest ``limit`` of them); on exit
        advance past what was delivered, then write its receipts (SPEC §12).

        ``how`` is the way of delivery (``layout.HOWS``; None: no receipt, as for
        ``clear``), ``session`` the agent session it went into, when known (None:
        outside any); messages addressed to another session of R (``@R/SESSION``)
        are held: neither yielded nor passed by the cursor. Every
        consumer comes through here, so every delivery gets its receipt; it is
        written *after* the cursor commit, so a crash in between leaves the
        message ``queued``, never ``delivered`` when it was not (#16).
        """
        reader = names.validate(reader)
        store = self.store
        with store.reader_lock(reader):
            cursor = store.load_cursor(reader)
            msgs, skipped, until, held = self._collect(reader, cursor, store.end(), limit, session)
            batch = Batch(msgs, until)
            yield batch
            delivered = {m.key for m in batch.delivered}
            order = store.order
            pending = [m for m in msgs if m.key not in delivered]
            # the cursor stops at the first message not delivered, or held for
            # another session of R: that session must still find it (SPEC §11)
            firsts = [*(pending[:1] and [pending[0].key]), *held[:1]]
            pos = min(firsts, key=order) if firsts else until
            limit = order(pos)
            done = frozenset(k for k in (*delivered, *skipped) if order(k) >= limit)
            new = merge(cursor, Cursor(pos, done), order)
            if new != cursor:
                store.save_cursor(reader, new)
            if how is not None and batch.delivered:
                self._receipts(reader, batch.delivered, how, session)

    def _receipts(self, reader: str, delivered: list[Message], how: str, session: Any) -> None:
        ts = records.ts_now()
        out: list[dict[str, Any]] = []
        for m in delivered:
            rec: dict[str, Any] = {"id": m.record["id"], "reader": reader, "how": how, "ts": ts}
            if isinstance(session, str) and session:
                rec["session"] = session
            out.append(rec)
        try:
            self.store.add_receipts(out)
        except Exception as exc:  # delivered and committed: a lost receipt says "queued"
            _warn("could not write %d receipt(s) for %s: %s", len(out), reader, exc)

    def read(
        self,
        reader: str,
        *,
        deliver: Callable[[list[Record]], None] | None = None,
        how: str = "inbox",
        session: str | None = None,
    ) -> list[Record]:
        """Consume all of R's unread: ``deliver`` them, then mark them read."""
        with self.consuming(reader, how=how, session=session) as batch:
            if deliver is not None and batch.messages:
                deliver(batch.records)
            batch.deliver()
        return batch.records

    def pop(
        self,
        reader: str,
        *,
        deliver: Callable[[Record], None] | None = None,
        session: str | None = None,
    ) -> Record:
        """Consume R's oldest unread only. Raises NothingToReturn when there is none."""
        with self.consuming(reader, limit=1, how="pop", session=session) as batch:
            if not batch.messages:
                raise NothingToReturn(f"no unread messages for {reader!r}")
            first = batch.messages[0]
            if deliver is not None:
                deliver(first.record)
            batch.deliver([first])
        return first.record

    def clear(self, reader: str) -> int:
        """Mark all of R's unread read, those for any of R's sessions too; return how many."""
        with self.consuming(reader, session=ANY) as batch:
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
        how: str = "wait",
        session: str | None = None,
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
            with self.consuming(reader, how=how, session=session) as batch:
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

    # ------------------------------------------------------------------ sessions
    def live_sessions(self) -> list[dict[str, Any]]:
        """Registered sessions whose agent process still runs, newest first; the
        registrations of local sessions whose process is gone are removed (SPEC §11).

        A session of another machine (``remote``), or one without a pid, is kept:
        nothing here can tell whether it is gone.
        """
        out = []
        for sess in self.store.sessions():
            pid = sess.get("pid")
            if isinstance(pid, int) and not sess.get("remote") and not procs.pid_alive(pid):
                sid = sess.get("session_id")
                if isinstance(sid, str):
                    try:
                        self.store.drop_session(sid)
                    except Exception as exc:  # pruning is a courtesy; `who` still hides it
                        _warn("could not remove dead session %s: %s", sid, exc)
                continue
            out.append(sess)
        out.sort(key=lambda s: str(s.get("last_seen") or ""), reverse=True)
        return out

    def last_reads(self) -> dict[str, str]:
        """SESSION ID -> time of its last receipt (``who``'s LAST READ)."""
        from .stores.reads_index import last_reads

        return last_reads(self.store)

    def sessions_of(self, name: str) -> list[dict[str, Any]]:
        """The live sessions registered under ``name``."""
        return [
            s
            for s in self.live_sessions()
            if s.get("name") == name and isinstance(s.get("session_id"), str)
        ]

    def resolve_session(self, name: str, prefix: str) -> str:
        """The full id of ``name``'s live session starting with ``prefix`` (SPEC §11)."""
        address = f"{name}/{prefix}"
        if len(prefix) < SESSION_MIN or not _session_ok(prefix):
            raise InvalidName(
                address,
                f"use at least {SESSION_MIN} characters (letters, digits, - and _) of a "
                "session id as `kei message who` shows it",
            )
        found = [s["session_id"] for s in self.sessions_of(name)]
        match = sorted({sid for sid in found if sid.startswith(prefix)})
        if len(match) == 1:
            return str(match[0])
        if not match:
            known = ", ".join(f"@{name}/{sid[:8]}" for sid in found) or "none"
            raise InvalidName(
                address,
                f"no live session of {name!r} starts with {prefix!r} (live: {known}); "
                "nothing was sent",
            )
        raise InvalidName(
            address,
            f"{prefix!r} fits {len(match)} sessions of {name!r} "
            f"({', '.join(m[:12] for m in match)}): give more characters; nothing was sent",
        )

    # ------------------------------------------------------------------ receipts
    def intended(self, rec: Record) -> list[str]:
        """Who ``rec`` is for: its ``to``, or for ``all`` every known reader (a cursor
        or a registered session) but its sender."""
        if rec["to"] != names.BROADCAST:
            return [rec["to"]]
        known = set(self.store.readers())
        known.update(
            s["name"]
            for s in self.store.sessions()
            if isinstance(s.get("name"), str) and names.is_valid(s["name"])
        )
        known.discard(rec["from"])
        known.discard(names.BROADCAST)
        return sorted(known)

    def states(self, recs: list[Record]) -> dict[int, dict[str, Any]]:
        """The delivery state of each record (``status``), reading receipts and the bus once."""
        if not recs:
            return {}
        # by message id: the JSONL store's index/byid/, the Redis hashes (#19)
        indexed = getattr(self.store, "delivery_of", None)
        known = indexed(recs, self.intended) if indexed is not None else None
        if known is not None:
            return {r["id"]: self._state(r, known[0], known[1]) for r in recs}
        receipts = self._receipts_for(recs)
        left = {r["id"] for r in recs}
        replies: list[Record] = []
        seek = getattr(self.store, "seek_entry", None)  # the JSONL bus (#19)
        found = [seek(i) for i in left] if seek is not None and len(left) <= 8 else [None]
        if all(e is not None for e in found):
            # from the earliest of them on, only lines holding one of the ids: a
            # search of the bytes, not a parse of every line (show stays flat, #19)
            start = min(e.pos for e in found if e is not None)
            hint = tuple(str(i).encode() for i in left)
            seen: set[int] = set()
            for entry in self.store.scan(start, hint=hint):
                rec = entry.record
                if rec is None:
                    continue
                to = rec.get("reply_to")
                if isinstance(to, int) and to in seen:
                    replies.append(rec)
                if rec["id"] in left:
                    seen.add(rec["id"])
            return {r["id"]: self._state(r, receipts, replies) for r in recs}
        # A reply comes after its message in the bus: read back until every one of
        # ``recs`` was passed (not by id: kei-message.sh's ids may go backwards).
        for entry in self.store.scan_reverse():
            rec = entry.record
            if rec is None:
                continue
            if isinstance(rec.get("reply_to"), int):
                replies.append(rec)
            left.discard(rec["id"])
            if not left:
                break
        replies.reverse()
        return {r["id"]: self._state(r, receipts, replies) for r in recs}

    def _receipts_for(self, recs: list[Record]) -> list[dict[str, Any]]:
        """The receipts that can concern ``recs``: those written since the oldest of them
        (a record's receipts come after it), not every receipt ever written (#19). A
        record dated ahead of now (foreign) could have its receipts anywhere: all."""
        ids = {r["id"] for r in recs}
        since = min(records.record_epoch(r) for r in recs)
        if since > time.time() + 1:
            return [r for r in self.store.receipts(None)[0] if r["id"] in ids]
        return self.store.receipts_from(since, ids)

    def _state(
        self, rec: Record, receipts: list[dict[str, Any]], replies: list[Record]
    ) -> dict[str, Any]:
        readers: dict[str, dict[str, Any]] = {
            name: {"reader": name, "state": "queued"} for name in self.intended(rec)
        }
        for r in receipts:
            if r["id"] != rec["id"]:
                continue
            got = readers.setdefault(r["reader"], {"reader": r["reader"], "state": "queued"})
            if "delivered" not in got:  # the first delivery counts
                got["state"] = "delivered"
                got["delivered"] = {k: r[k] for k in ("ts", "how", "session") if k in r}
        for reply in replies:
            if reply.get("reply_to") != rec["id"] or reply["from"] not in readers:
                continue
            got = readers[reply["from"]]
            if "reply" not in got:
                got["state"] = "replied"
                got["reply"] = reply["id"]
        rows = [readers[k] for k in sorted(readers)]
        return {
            "id": rec["id"],
            "from": rec["from"],
            "to": rec["to"],
            "state": overall([row["state"] for row in rows]),
            "readers": rows,
        }

    def status(self, msg_id: int) -> dict[str, Any]:
        """Message ``msg_id``'s delivery state per intended reader (SPEC §12)."""
        return self.states([self.get(msg_id)])[msg_id]

    def wait_until(
        self, msg_id: int, state: str, timeout: float, *, since: Any = None
    ) -> dict[str, Any]:
        """Block until every intended reader of ``msg_id`` reached ``state`` (delivered or
        replied); return the status. Raises NotYet when ``timeout`` runs out.

        ``since``: ``store.receipts_end()`` taken before the message was sent, so
        only receipts written after it are read (None: all of them).

        Blocks on the store (inotify on ``receipts.jsonl`` and the bus, or Redis
        ``XREAD BLOCK``), never spinning; receipts are read on from where the last
        look stopped, so a long wait costs nothing per new receipt but that receipt.
        """
        if state not in ("delivered", "replied"):
            raise UsageError(f"--wait takes delivered or replied, not {state!r}")
        rec = self.get(msg_id)
        wanted = set(self.intended(rec))
        deadline = time.monotonic() + timeout
        receipts, token = self.store.receipts(since)
        mine = [r for r in receipts if r["id"] == msg_id]
        end = self.store.end()
        replies = self._replies_after(rec, None, end) if state == "replied" else []
        while True:
            st = self._state(rec, mine, replies)
            reached = {row["reader"] for row in st["readers"] if RANK[row["state"]] >= RANK[state]}
            if wanted <= reached:
                return st
            left = deadline - time.monotonic()
            if left <= 0:
                late = ", ".join(sorted(wanted - reached))
                raise NotYet(f"message {msg_id} not {state} to {late} within {timeout:g}s", st)
            if state == "delivered":
                self.store.wait_for_receipts(token, min(left, 3600.0))
                more, token = self.store.receipts(token)
                mine.extend(r for r in more if r["id"] == msg_id)
            else:
                self.store.wait_for_change(end, min(left, 3600.0))
                new_end = self.store.end()
                replies.extend(self._replies_after(rec, end, new_end))
                end = new_end

    def _replies_after(self, rec: Record, after: Pos | None, until: Pos) -> list[Record]:
        out = []
        for entry in self.store.scan(after, until, hint=(b'"reply_to"',)):
            r = entry.record
            if r is not None and r.get("reply_to") == rec["id"]:
                out.append(r)
        return out

    def known_names(self) -> dict[str, dict[str, Any]]:
        return self.store.names()
