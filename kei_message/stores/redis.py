"""The Redis Streams store (SPEC §9): the same mailbox, shared by several machines.

Chosen by ``KEI_MAILBOX_URL=redis://[USER:PASSWORD@]HOST:PORT/DB`` (or
``rediss://`` for TLS, ``unix:///path.sock?db=N``; ``?prefix=NAME`` picks
another key prefix than ``kei``). Keys, all under the prefix ``P``:

``P:bus``
    A stream: one entry per record, its one field ``r`` the record's JSON line
    without the newline (the same bytes as a line of ``messages.jsonl``).
    Positions are stream ids ``MS-SEQ``; an entry's ``end`` is the next
    possible id ``MS-(SEQ+1)``, so "consumed iff key < cursor pos" holds as on
    the JSONL bus. New records get the stream id ``(id // 1000)-(id % 1000)``
    when it is free (so the id can be read off the position), else a
    server-assigned one.
``P:meta``
    A hash: ``maxid`` (largest record id handed out) and ``last`` (the last
    stream id written; ``end()`` is the id after it, and gc never lowers it).
``P:names``
    A hash ``NAME -> "SENT RECEIVED LAST_ID LAST_TS"``: the names index.
``P:replies``
    A hash ``REPLY_TO:FROM -> ID``: the first reply of FROM to message REPLY_TO,
    kept by the append script, so a message's state needs no read of the entries
    after it (#19). ``P:meta`` ``replies_from`` is the id from which on it is
    complete (0 after ``migrate``); older records are answered from the stream.
``P:delivered``
    A hash ``ID:READER -> RECEIPT``: the first receipt of each message to each
    reader (written with the receipt, SPEC §12), for a flat ``status`` (#19),
    complete from the same ``replies_from`` on.
``P:cursor:NAME``, ``P:readers``
    One reader's cursor, in the text form of ``layout.encode_cursor``, and the set
    of readers that have one. A cursor is only ever replaced by its merge with
    the stored one (in a Lua script), so it never moves backwards.
``P:lock:NAME``
    The reader lock: ``SET NX PX`` with a random token, released only by its
    holder, renewed by a background thread while held (so a slow delivery
    keeps it) and expiring ``LOCK_TTL`` seconds after its holder died.
``P:sessions``
    A hash ``SESSION_ID -> JSON`` of registered Claude Code sessions, each
    stamped with its ``host`` (``KEI_MAILBOX_HOST``, else the host name).
    Sessions of other hosts are read back without their tmux pane and pid,
    so live delivery never types into a pane of the same id on this machine.
``P:archive``
    A stream that ``gc`` moves old entries into (same ids and fields).
``P:nonce:UUID``
    Short-lived: lets a retried send (the reply was lost to a dropped
    connection) return the record it already wrote instead of writing it twice.

Appending is one Lua script: read the server clock (``TIME``) and ``maxid``,
take ``id = max(now_us, maxid + 1)`` and ``ts`` = now (to the second), build
the line, ``XADD`` it and update ``meta`` and ``names``, all atomically.

Durability is Redis' (``KEI_MAILBOX_FSYNC`` has no effect here): with
``appendonly yes`` and ``appendfsync always`` a send that exited 0 survives
a crash of redis-server or of the machine; with ``everysec`` (Redis'
default) the last second or so of sends may be lost if the machine goes
down (and, rarely, if redis-server is killed while the disk is slow).
"""

from __future__ import annotations

import _socket
import time
from contextlib import contextmanager
from functools import partial

from .. import paths, settings
from ..cursors import Cursor, Pos
from ..errors import IdsExhausted, MailboxLocked, MailboxUnavailable, UsageError
from ..leanjson import odumps, oloads  # orjson's answers without its ~15 ms import
from ..names import is_valid
from ..records import ID_LIMIT, CorruptLine, Record, parse, ts_epoch
from . import redis_scripts as lua
from . import resp
from .base import Entry
from .layout import (
    RECEIPT_SLACK,
    decode_cursor,
    fold_receipts,
    parse_receipts,
    receipts_in,
)

TYPE_CHECKING = False  # typing costs every command ~7 ms (issue 19)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any, TypeVar

    T = TypeVar("T")

PAGE = 200
LOCK_TTL = 10.0  # seconds; renewed every third of it while held
NONCE_TTL = 600  # seconds a send can be retried without writing twice
BLOCK = 5.0  # longest single XREAD BLOCK; below the socket timeout
RETRY_CAP = 0.1  # longest pause before the one retry of a failed call
MAX_US_ID = ID_LIMIT + 1  # ids from here up are foreign (#15): never used as maxid


before_warning: Callable[[], None] | None = None
"""Called before the store's first warning: the CLI and the hook install their log
handler here instead of importing logging for every command (issue 19)."""


def _warn(message: str, *args: Any) -> None:
    global before_warning
    import logging  # only when something goes wrong: logging costs every command ~10 ms

    if before_warning is not None:
        hook, before_warning = before_warning, None
        hook()
    logging.getLogger("kei_message").warning(message, *args)


def _finding(
    where: str, problem: str, fix: str, *, area: str = "redis", repairable: bool = False
) -> dict[str, Any]:
    return {"area": area, "where": where, "problem": problem, "fix": fix,
            "repairable": repairable, "repaired": None}  # fmt: skip


def host_id() -> str:
    """This machine, as sessions record it: ``KEI_MAILBOX_HOST``, else the host name."""
    return settings.host() or _socket.gethostname()


def next_id(sid: str) -> str:
    ms, _, seq = sid.partition("-")
    return f"{ms}-{int(seq) + 1}"


def prev_id(sid: str) -> str:
    ms, _, seq = sid.partition("-")
    if int(seq) > 0:
        return f"{ms}-{int(seq) - 1}"
    if int(ms) > 0:
        return f"{int(ms) - 1}-{2**64 - 1}"
    return "0-0"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _import_args(raw: bytes) -> list[Any]:
    try:
        rec: Record | None = parse(raw)
    except CorruptLine:
        rec = None
    if rec is None or not 0 < rec["id"] <= ID_LIMIT:
        # corrupt, or an id a Lua number cannot hold exactly: the server picks
        # the position and the line leaves the names index alone
        return [raw, "", "", "", "", MAX_US_ID, ""]
    ts = str(rec.get("ts", "")).replace(" ", "T") or "-"  # the index value splits on spaces
    return [raw, rec["from"], rec["to"], str(rec["id"]), ts, MAX_US_ID, _reply_to(rec)]


def _reply_to(rec: Record) -> str:
    """The ``reply_to`` of ``rec`` as the replies hash keys it, '' when it has none."""
    to = rec.get("reply_to")
    return str(to) if type(to) is int and 0 < to <= ID_LIMIT else ""


def _entry(pos: str, raw: bytes) -> Entry:
    try:
        return Entry(pos, next_id(pos), parse(raw))
    except CorruptLine as exc:
        return Entry(pos, next_id(pos), None, str(exc))


def _receipt_field(fields: Any) -> bytes:
    value = (fields or {}).get(b"r", b"")
    return value if isinstance(value, bytes) else str(value).encode()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _option(item: str) -> str:
    """The name of a URL query item ``NAME=VALUE``, decoded."""
    return resp.unquote(item.partition("=")[0].replace("+", " "))


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and ``kei message path``."""
    base, sep, query = url.partition("?")
    if query:
        items = query.split("&")
        if any(_option(item) == "password" for item in items):
            query = "&".join(
                item.partition("=")[0] + "=***" if _option(item) == "password" else item
                for item in items
            )
    scheme, slashes, rest = base.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        base = f"{scheme}{slashes}{userinfo.partition(':')[0]}:***@{host}{slash}{path}"
    return base + sep + query


class RedisStore:
    name = "redis"

    def __init__(self, url: str, *, lock_timeout: float | None = None) -> None:
        base, _, query = url.partition("?")
        prefix = "kei"
        rest = []
        for item in query.split("&") if query else ():
            if _option(item) == "prefix":
                prefix = resp.unquote(item.partition("=")[2].replace("+", " ")) or prefix
            else:
                rest.append(item)
        client_url = base + ("?" + "&".join(rest) if rest else "")
        self.url = url
        self._lock_timeout = lock_timeout
        self.location = _safe_url(url)
        # Local state that is per machine (hook log, watcher pid files) still
        # lives in the mailbox dir; only the bus, cursors, names and sessions
        # are shared through Redis.
        self.root = paths.mailbox_dir()
        self._ready = False
        given = {_option(item) for item in rest}
        if not url.lower().startswith("rediss:") and any(k.startswith("ssl_") for k in given):
            raise UsageError(f"bad mailbox URL {self.location}: ssl_* options need rediss://")
        # Every call is bounded by the lock timeout (SPEC §15, #15): a frozen server
        # (SIGSTOP: the kernel still accepts connections, nothing answers) used to
        # cost 10 s x 3 tries whatever KEI_MAILBOX_LOCK_TIMEOUT said. Now two tries of
        # 0.4 x the bound each, plus at most RETRY_CAP of backoff, stay within it.
        bound = max(1.0, self.lock_timeout())
        per_try = min(BLOCK + 5.0, 0.4 * bound)
        options: dict[str, Any] = {
            # A refused or unreachable server must fail in well under the hook's 2 s:
            # one retry (on a fresh connection), after 40 ms
            "retries": 1, "backoff_base": 0.02, "backoff_cap": RETRY_CAP,
        }  # fmt: skip
        if "socket_connect_timeout" not in given:
            options["socket_connect_timeout"] = min(1.5, per_try)
        if "socket_timeout" not in given:
            options["socket_timeout"] = per_try
        # XREAD BLOCK: the client waits the block plus the socket timeout for its reply
        self._block = max(0.05, min(BLOCK, per_try / 2))
        try:
            self.r = resp.Redis.from_url(client_url, **options)
        except ValueError as exc:
            raise UsageError(f"bad mailbox URL {self.location}: {_one_line(exc)}") from None
        p = prefix + ":"
        self.k_bus = p + "bus"
        self.k_meta = p + "meta"
        self.k_names = p + "names"
        self.k_readers = p + "readers"
        self.k_sessions = p + "sessions"
        self.k_archive = p + "archive"
        self.k_receipts = p + "receipts"  # a stream: one entry per receipt, field "r" (#16)
        self.k_replies = p + "replies"  # a hash: "REPLY_TO:FROM" -> first reply's id (#19)
        self.k_delivered = p + "delivered"  # a hash: "ID:READER" -> first receipt (#19)
        self._cursor = p + "cursor:"
        self._lock = p + "lock:"
        self._nonce = p + "nonce:"
        self._append = self.r.register_script(lua.APPEND)
        self._import = self.r.register_script(lua.IMPORT)
        self._save = self.r.register_script(lua.SAVE_CURSOR)
        self._renew = self.r.register_script(lua.RENEW)
        self._release = self.r.register_script(lua.RELEASE)
        self._compact = self.r.register_script(lua.COMPACT)

    # ------------------------------------------------------------------ plumbing
    def lock_timeout(self) -> float:
        """The longest wait for a reader lock: as given, else ``KEI_MAILBOX_LOCK_TIMEOUT``."""
        return settings.lock_timeout() if self._lock_timeout is None else self._lock_timeout

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one Redis operation; any Redis failure is one clear MailboxUnavailable."""
        try:
            return fn()
        except resp.RedisError as exc:
            raise MailboxUnavailable(
                f"Redis at {self.location} is unavailable: {_one_line(exc)}"
            ) from exc

    def prepare(self, sub: str | None = None) -> str:
        """The local mailbox dir (and ``sub`` in it), for per-machine files."""
        if not self._ready:
            paths.ensure_dir(self.root)
            self._ready = True
        if sub is None:
            return self.root
        return paths.ensure_subdir(self.root, sub)

    def close(self) -> None:
        try:
            self.r.close()
        except Exception:  # a broken connection: nothing left to do
            pass

    def order(self, pos: Pos) -> Any:
        ms, _, seq = str(pos).partition("-")
        return (int(ms), int(seq or 0))

    # ------------------------------------------------------------------ append
    def append(self, fields: Record) -> Record:
        data = odumps(fields)
        nonce = self._nonce + resp.token()
        keys = [self.k_bus, self.k_meta, self.k_names, nonce, self.k_replies]
        args: list[Any] = [
            data, str(fields.get("from", "")), str(fields.get("to", "")), NONCE_TTL, ID_LIMIT,
            _reply_to(fields),
        ]  # fmt: skip
        try:
            # Retried by the client on a dropped connection; the nonce makes that safe.
            rid, ts, _sid = self._call(lambda: self._append(keys=keys, args=args))
        except MailboxUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, resp.ResponseError) and "KEI_IDS_EXHAUSTED" in str(cause):
                last = str(cause).rsplit(" ", 1)[-1]
                raise IdsExhausted(
                    f"{self.location} stream {self.k_bus}", int(last) if last.isdigit() else 0,
                    ID_LIMIT,
                ) from None  # fmt: skip
            raise
        rec: Record = {"id": int(rid), "ts": _text(ts)}
        rec.update(fields)
        return rec

    def import_lines(self, lines: list[bytes]) -> list[str]:
        """Append existing lines as they are (``migrate``), pipelined; their positions."""
        keys = [self.k_bus, self.k_meta, self.k_names, self.k_replies]

        def run() -> list[Any]:
            pipe = self.r.pipeline(transaction=False)
            for raw in lines:
                self._import(keys=keys, args=_import_args(raw), client=pipe)
            return pipe.execute()

        return [_text(sid) for sid in self._call(run)]

    # ------------------------------------------------------------------ read
    def end(self) -> str:
        last = self._call(lambda: self.r.hget(self.k_meta, "last"))
        if last is None:
            # no meta (a stream restored or written by hand): its newest entry
            newest = self._page(True, "+", "-", count=1)
            return next_id(newest[0][0]) if newest else "0-0"
        return next_id(_text(last))

    def scan_raw(self, after: Pos | None, until: Pos | None = None) -> Iterator[tuple[str, bytes]]:
        """(position, line bytes) of each entry from ``after`` up to ``until``, oldest first."""
        start = "-" if after is None else str(after)
        if until is not None:
            if self.order(until) <= (0, 0):
                return
            if after is not None and self.order(until) <= self.order(after):
                return
        stop = "+" if until is None else "(" + str(until)
        while True:
            page = self._page(False, start, stop)
            yield from page
            if len(page) < PAGE:
                return
            start = "(" + page[-1][0]

    def _page(
        self, reverse: bool, start: str, stop: str, count: int | None = None
    ) -> list[tuple[str, bytes]]:
        """One XRANGE (or XREVRANGE from ``start`` down to ``stop``) page: (id, line)."""
        n = count or PAGE
        if reverse:
            got: Any = self._call(lambda: self.r.xrevrange(self.k_bus, start, stop, count=n))
        else:
            got = self._call(lambda: self.r.xrange(self.k_bus, start, stop, count=n))
        return [(_text(sid), bytes((fields or {}).get(b"r") or b"")) for sid, fields in got or ()]

    def scan(
        self, after: Pos | None, until: Pos | None = None, *, hint: tuple[bytes, ...] | None = None
    ) -> Iterator[Entry]:
        for pos, raw in self.scan_raw(after, until):
            if hint is None or any(h in raw for h in hint):
                yield _entry(pos, raw)

    def scan_reverse(self) -> Iterator[Entry]:
        start = "+"
        while True:
            page = self._page(True, start, "-")
            for pos, raw in page:
                yield _entry(pos, raw)
            if len(page) < PAGE:
                return
            start = "(" + page[-1][0]

    def seek_id(self, msg_id: int) -> Record | None:
        """The record with id ``msg_id`` at its own stream id ``(id // 1000)-(id % 1000)``
        (one XRANGE); None when it is not there (the caller scans: it may have had to take
        a server-assigned id)."""
        if not 0 < msg_id < 2**53:
            return None
        sid = f"{msg_id // 1000}-{msg_id % 1000}"
        for _, raw in self._page(False, sid, sid, count=1):
            try:
                rec = parse(raw)
            except CorruptLine:
                return None
            if rec["id"] == msg_id:
                return rec
        return None

    def seek_time(self, epoch: float) -> str | None:
        """The stream position of ``epoch``: stream ids are the record ids' milliseconds
        (or the server's clock), and a record id is never below its ``ts``."""
        return f"{max(0, int(epoch * 1000))}-0"

    # ------------------------------------------------------------------ waiting
    def wait_for_change(self, since: Pos, timeout: float) -> bool:
        """Block in ``XREAD BLOCK`` until an entry at or past ``since`` exists.

        Rides out a short outage (a Redis restart) for up to the lock timeout;
        a longer one is MailboxUnavailable.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        after = prev_id(str(since))
        down_since: float | None = None
        while True:
            try:
                if self.order(self.end()) > self.order(since):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                block = max(1, int(min(left, self._block) * 1000))
                got = self._call(partial(self.r.xread, {self.k_bus: after}, count=1, block=block))
                down_since = None
                if got:
                    return True
            except MailboxUnavailable:
                now = time.monotonic()
                if down_since is None:
                    down_since = now
                if now - down_since > self.lock_timeout() or now >= deadline:
                    raise
                time.sleep(min(0.2, max(0.0, deadline - now)))

    # ------------------------------------------------------------------ receipts
    def add_receipts(self, receipts: list[dict[str, Any]], *, keep_time: bool = False) -> None:
        """XADD each receipt (field ``r``: the JSON line of ``layout.receipt_bytes``).

        ``keep_time`` (``migrate``): the stream id is the receipt's own ``ts`` (in ms,
        kept increasing, never ahead of now) instead of the server's clock, so
        ``receipts_from`` finds moved receipts where their messages are in time."""
        if not receipts:
            return
        ids = ["*"] * len(receipts)
        if keep_time:
            now_ms = int(time.time() * 1000)
            last = self.order(self.receipts_end())
            for i, rec in enumerate(receipts):
                t = ts_epoch(str(rec.get("ts", "")))
                ms = min(int(t * 1000), now_ms) if t is not None else 0
                last = (ms, 0) if ms > last[0] else (last[0], last[1] + 1)
                ids[i] = f"{last[0]}-{last[1]}"

        def run() -> None:
            pipe = self.r.pipeline(transaction=False)
            for rec, sid in zip(receipts, ids, strict=True):
                line = odumps(rec)
                pipe.xadd(self.k_receipts, {"r": line}, id=sid)
                # the first delivery of each message to each reader, by key (#19)
                pipe.hsetnx(self.k_delivered, f"{rec['id']}:{rec['reader']}", line)
            pipe.execute()

        self._call(run)

    def receipts(self, after: Any = None) -> tuple[list[dict[str, Any]], Any]:
        start = str(after or "0-0")
        got = self._call(partial(self.r.xrange, self.k_receipts, "(" + start, "+"))
        if not got:
            return [], start
        data = b"".join(_receipt_field(fields) + b"\n" for _id, fields in got)
        found, _ = parse_receipts(data)
        return found, _text(got[-1][0])

    def _indexed(self, recs: list[Record]) -> bool:
        """Whether the replies and delivered hashes hold everything about ``recs``: the
        ones written since ``meta`` ``replies_from`` (0 after ``migrate``)."""
        start = self._call(partial(self.r.hget, self.k_meta, "replies_from"))
        if start is None or not _text(start).isdigit():
            return False
        first = int(_text(start))
        return all(first <= r["id"] <= ID_LIMIT for r in recs)

    def delivery_of(
        self, recs: list[Record], readers_of: Callable[[Record], list[str]]
    ) -> tuple[list[dict[str, Any]], list[Record]] | None:
        """The first receipt and the first reply of each intended reader of each of
        ``recs`` (replies as records with ``id``, ``from`` and ``reply_to``), from the
        delivered and replies hashes (one HMGET each: ``show`` stays flat, #19); None
        when the hashes do not cover one of them (records written before they
        existed: the caller reads the streams)."""
        if not self._indexed(recs):
            return None
        asked = [(r["id"], name) for r in recs for name in readers_of(r)]
        if not asked:
            return [], []
        keys = [f"{rid}:{name}" for rid, name in asked]
        got = self._call(partial(self.r.hmget, self.k_delivered, keys))
        receipts = parse_receipts(b"".join(v + b"\n" for v in got if isinstance(v, bytes)))[0]
        got = self._call(partial(self.r.hmget, self.k_replies, keys))
        replies: list[Record] = [
            {"id": int(_text(v)), "from": name, "reply_to": rid}
            for (rid, name), v in zip(asked, got, strict=True)
            if v is not None and _text(v).isdigit()
        ]
        return receipts, replies

    def receipts_from(self, since: float, ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Receipts added at ``since`` (epoch seconds) or later, give or take
        ``RECEIPT_SLACK``: the stream's ids are the server's clock in ms, the clock
        that stamped the record's ``ts`` (APPEND), so one XRANGE from there."""
        start = max(0, int((since - RECEIPT_SLACK) * 1000))
        got = self._call(partial(self.r.xrange, self.k_receipts, f"{start}-0", "+"))
        if not got:
            return []
        data = b"".join(_receipt_field(fields) + b"\n" for _id, fields in got)
        return receipts_in(data, ids)

    def session_reads(self, after: Any = None) -> tuple[dict[str, str], Any, bool]:
        """SESSION -> ``ts`` of its last receipt after token ``after``, the token to go
        on from, and whether it started over (the stream went back: flushed)."""
        fresh = after is None
        if not fresh:
            try:
                fresh = self.order(after) > self.order(self.receipts_end())
            except (TypeError, ValueError):
                fresh = True
        found, token = self.receipts(None if fresh else after)
        reads: dict[str, str] = {}
        fold_receipts(found, reads)
        return reads, token, fresh

    def receipts_end(self) -> Any:
        got = self._call(partial(self.r.xrevrange, self.k_receipts, "+", "-", count=1))
        return _text(got[0][0]) if got else "0-0"

    def wait_for_receipts(self, after: Any, timeout: float) -> bool:
        """``XREAD BLOCK`` on the receipts stream: no polling (#16)."""
        deadline = time.monotonic() + max(0.0, timeout)
        start = str(after or "0-0")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            block = max(1, int(min(left, BLOCK) * 1000))
            got = self._call(partial(self.r.xread, {self.k_receipts: start}, count=1, block=block))
            if got:
                return True

    # ------------------------------------------------------------------ cursors
    @contextmanager
    def reader_lock(self, reader: str) -> Iterator[None]:
        key = self._lock + reader
        token = resp.token()
        ttl_ms = int(LOCK_TTL * 1000)
        timeout = self.lock_timeout()
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            if self._call(lambda: self.r.set(key, token, nx=True, px=ttl_ms)):
                break
            # A retried SET whose first reply was lost finds our own token there.
            if _text(self._call(lambda: self.r.get(key)) or b"") == token:
                break
            now = time.monotonic()
            if now >= deadline:
                raise MailboxLocked(f"{self.location} key {key}", timeout)
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.05)
        import threading  # only for a reader lock: the renewing thread

        stop = threading.Event()

        def renew() -> None:
            # Keeps the lock through a slow delivery (typing into a pane);
            # when this process dies the lock expires LOCK_TTL later.
            while not stop.wait(LOCK_TTL / 3):
                try:
                    if not self._renew(keys=[key], args=[token, ttl_ms]):
                        _warn("reader lock %s was lost while held", key)
                        return
                except resp.RedisError as exc:
                    _warn("cannot renew reader lock %s: %s", key, exc)

        keeper = threading.Thread(target=renew, name=f"kei-lock-{reader}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join(timeout=1.0)
            try:
                self._release(keys=[key], args=[token])
            except resp.RedisError as exc:  # it expires by itself
                _warn("cannot release reader lock %s: %s", key, exc)

    def load_cursor(self, reader: str) -> Cursor | None:
        data: Any = self._call(lambda: self.r.get(self._cursor + reader))
        if data is None:
            return None
        try:
            return decode_cursor(bytes(data), str)
        except ValueError:
            raise MailboxUnavailable(
                f"cursor of {reader!r} in {self.location} is corrupt; "
                "`kei message doctor --repair` resets it"
            ) from None

    def save_cursor(self, reader: str, cursor: Cursor) -> None:
        pos = "" if cursor.pos is None else str(cursor.pos)
        done = " ".join(str(k) for k in cursor.done)
        keys = [self._cursor + reader, self.k_readers]
        self._call(lambda: self._save(keys=keys, args=[pos, done, reader]))

    def readers(self) -> list[str]:
        found = self._call(lambda: self.r.smembers(self.k_readers))
        return sorted(n for n in map(_text, found) if is_valid(n))

    # ------------------------------------------------------------------ names index
    def names(self) -> dict[str, dict[str, Any]]:
        raw = self._call(lambda: self.r.hgetall(self.k_names))
        out: dict[str, dict[str, Any]] = {}
        for name, value in raw.items():
            parts = _text(value).split(" ")
            if len(parts) != 4:
                continue
            out[_text(name)] = {
                "sent": int(parts[0]),
                "received": int(parts[1]),
                "last_id": int(parts[2]),
                "last_ts": parts[3],
            }
        return out

    # ------------------------------------------------------------------ gc
    def compact(self, before: Pos) -> int:
        """Move entries before ``before`` to ``P:archive``, one atomic page at a time."""
        if self.order(before) <= (0, 0):
            return 0
        moved = 0
        keys = [self.k_bus, self.k_archive]
        while True:
            n = int(self._call(lambda: self._compact(keys=keys, args=[str(before), PAGE])))
            moved += n
            if n < PAGE:
                return moved

    def archive_path(self) -> str:
        """Where ``compact`` puts what it moves (shown by ``kei message gc``)."""
        return f"{self.location} stream {self.k_archive}"

    # ------------------------------------------------------------------ doctor
    def check(self, *, repair: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
        """What ``kei message doctor`` should say about this store: (findings, notes).

        A finding has ``area``, ``where``, ``problem``, ``fix``, ``repairable``
        and, when ``repair`` fixed it, ``repaired``. Nothing on the server's
        configuration is ever changed; a cursor past the end is moved back to
        the end (redeliver, never skip).
        """
        findings: list[dict[str, Any]] = []
        notes: list[str] = []
        where = self.location
        try:
            server: Any = self.r.info("server")
            persistence: Any = self.r.info("persistence")
        except resp.NoPermissionError:
            notes.append(f"{where}: this user may not run INFO; persistence not checked")
            server = persistence = {}
        except resp.RedisError as exc:
            raise MailboxUnavailable(f"Redis at {where} is unavailable: {_one_line(exc)}") from exc
        version = str(server.get("redis_version", ""))
        if version:
            parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
            if parts < (6, 2):
                findings.append(_finding(
                    where, f"Redis {version} is older than 6.2, which the store needs",
                    "upgrade Redis (or Valkey) to 6.2 or later",
                ))  # fmt: skip
            notes.append(f"{where}: Redis {version}")
        if persistence and not int(persistence.get("aof_enabled", 0)):
            findings.append(_finding(
                where, "appendonly is off: a restart of Redis loses the mailbox",
                "set `appendonly yes` in redis.conf (and `appendfsync always` to keep every "
                "acknowledged send through a crash); `CONFIG SET appendonly yes` applies it now",
            ))  # fmt: skip
        end = self.end()
        corrupt = total = 0
        for entry in self.scan(None):
            total += 1
            if entry.record is None:
                corrupt += 1
        if corrupt:
            findings.append(_finding(
                f"{where} stream {self.k_bus}",
                f"{corrupt} of {total} entries are not records; readers skip them",
                "nothing to do unless a foreign tool writes there",
                area="bus",
            ))  # fmt: skip
        notes.append(f"{where}: {total} records, {len(self.readers())} readers")
        for reader in self.readers():
            cursor = self.load_cursor(reader)
            if cursor is None or cursor.pos is None:
                continue
            if self.order(cursor.pos) > self.order(end):
                found = _finding(
                    f"{where} key {self._cursor}{reader}",
                    f"cursor {cursor.pos} is past the end {end}: new messages would be skipped",
                    "`kei message doctor --repair` moves it back to the end",
                    area="cursor",
                    repairable=True,
                )
                if repair:
                    with self.reader_lock(reader):
                        key, value = self._cursor + reader, f"{end}\n\n".encode()
                        self._call(partial(self.r.set, key, value))
                    found["repaired"] = f"moved back to {end}"
                findings.append(found)
        return findings, notes

    # ------------------------------------------------------------------ sessions
    def put_session(self, session_id: str, info: dict[str, Any]) -> None:
        data = odumps({**info, "host": info.get("host") or host_id()})
        self._call(lambda: self.r.hset(self.k_sessions, session_id, data))

    def drop_session(self, session_id: str) -> None:
        self._call(lambda: self.r.hdel(self.k_sessions, session_id))

    def sessions(self) -> list[dict[str, Any]]:
        """Every registered session; those of other machines without their local handles.

        A tmux pane id, socket path or pid means something only on the machine
        that registered it: on this one the same ``%3`` may be someone else's
        pane. So sessions from another host keep their name and times (``who``)
        but lose ``tmux``, ``tmux_pane`` and ``pid``, and say ``remote``.
        """
        here = host_id()
        out = []
        for raw in self._call(lambda: self.r.hvals(self.k_sessions)):
            try:
                info = oloads(raw)
            except ValueError:  # orjson.JSONDecodeError
                continue
            if not isinstance(info, dict):
                continue
            if info.get("host", here) != here:
                for local in ("tmux", "tmux_pane", "pid"):
                    info.pop(local, None)
                info["remote"] = True
            out.append(info)
        return out
