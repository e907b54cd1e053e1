"""The on-disk layout of a mailbox dir, and the one owner of its file formats.

Every file name and every byte format below is written and parsed here and
nowhere else; the JSONL store, the hook's fast path, the wake waiter, gc and
doctor all come through this module. Only ``os`` (and ``json`` when writing a
session) is imported: the hook reads cursors before every prompt (issue 6).

The mailbox dir (mode 0700, every file 0600; ``paths.mailbox_dir``)::

    messages.jsonl        the bus: one JSON record per line (stores/jsonl.py)
    messages.lock         append lock; its content is the largest id handed out
    messages.base         bytes moved out of the bus by gc (logical offsets)
    receipts.jsonl        delivery receipts, one JSON object per line (SPEC §12)
    cursors/NAME          one reader's cursor; cursors/.NAME.lock guards it
    sessions/ID.json      registered agent sessions (hooks, live delivery)
    index/names.json      names seen on the bus, kept current by send (names_index.py)
    index/checked.json    how far doctor has checked the bus (admin/checked.py)
    index/reads-HASH.json each session's last read, for `who`, per store (reads_index.py)
    index/byid/           each message's receipts and replies by id, for `show` (ids_index.py)
    waiters/SESSION.pid   the wake waiter of one session (flock held while it waits)
    live-watch.pid        the running `process --watch`
    archive/              records moved out by `kei message gc`
    quarantine/           what `doctor --repair` copied out
    hook.log              bounded log of hook failures

Temp files are hidden (``.NAME.tmp.PID``), as are reader locks: no name
starts with ``.``, so neither can ever be taken for a reader's cursor.

Formats:

``messages.base``
    One line per bus file, ``INODE BASE``, the current file first: the logical
    offset of byte 0 of the file with that inode. No file means base 0.
``cursors/NAME``
    Two lines of text: the position, then the keys consumed out of order,
    separated by spaces (``cursors.Cursor``). Text, so the hook's fast path
    reads it without a JSON parser. The Redis store keeps the same text.
``receipts.jsonl``
    One compact JSON object per line, appended with ``O_APPEND`` in one
    ``write`` by the consumer right *after* its cursor was committed:
    ``{"id":MSG_ID,"reader":NAME,"how":HOW,"ts":RFC3339[,"session":ID]}``
    (``how``: inbox, pop, wait, hook, midturn, stop, wake, live). A crash
    between the commit and this write leaves the message ``queued``, never
    ``delivered`` when it was not (#16). Beside the bus, never in it: the
    original kei-message.sh and ``jq`` see only messages there. A partial
    last line (a writer that died mid-write) is skipped by readers.
``sessions/ID.json``, ``waiters/ID.pid``
    One compact JSON object. ``ID`` is the session id when it is made of
    letters, digits, ``-`` and ``_`` (80 at most), else a hash of it: session
    ids come from the agent CLI, and must never pick a path.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs the hook ~8 ms (issue 6)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from ..cursors import Cursor, Pos

BUS = "messages.jsonl"
RECEIPTS = "receipts.jsonl"
HOWS = ("inbox", "pop", "wait", "hook", "midturn", "stop", "wake", "live")
LOCK = "messages.lock"
BASE = "messages.base"
CURSORS = "cursors"
SESSIONS = "sessions"
INDEX = "index"
NAMES_INDEX = "names.json"  # in INDEX
CHECKED = "checked.json"  # in INDEX: how far doctor has checked the bus (admin/checked.py)
IDS_INDEX = "byid"  # in INDEX: each message's receipts and replies by its id (ids_index.py)
READS_INDEX = "reads.json"  # in INDEX as reads-HASH.json: each session's last read (reads_index.py)
WAITERS = "waiters"
HOLDS = "holds"  # holds/NAME: `cancel NAME` stopped NAME; its waiter wakes it no more (#14)
ARCHIVE = "archive"
QUARANTINE = "quarantine"
HOOK_LOG = "hook.log"
WATCH_PID = "live-watch.pid"


def bus_path(root: str | None = None) -> str:
    if root is None:
        from ..paths import mailbox_dir

        root = mailbox_dir()
    return os.path.join(root, BUS)


# ----------------------------------------------------------------------------- messages.base
def parse_base(data: bytes, ino: int) -> int | None:
    """The base of the bus file with inode ``ino``; None when ``data`` does not know it."""
    for line in data.split(b"\n"):
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) == ino:
            return int(parts[1]) if parts[1].isdigit() else None
    return None


def base_floor(data: bytes) -> int:
    """The largest base in ``data``: every logical position handed out lies below it or
    in the current file."""
    floor = 0
    for line in data.split(b"\n"):
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            floor = max(floor, int(parts[1]))
    return floor


def base_text(current: tuple[int, int], *older: tuple[int, int], keep: bytes = b"") -> bytes:
    """``messages.base`` for the files ``(inode, base)``, the current one first (a reused
    inode number matches it first); ``keep``: up to three old lines carried over."""
    lines = [f"{ino} {base}\n".encode() for ino, base in (current, *older)]
    kept = [ln + b"\n" for ln in keep.split(b"\n") if ln.strip()][:3]
    return b"".join(lines + kept)


# ----------------------------------------------------------------------------- cursors
def encode_cursor(cursor: Cursor) -> bytes:
    done = " ".join(str(k) for k in sorted(cursor.done, key=str))
    return f"{'' if cursor.pos is None else cursor.pos}\n{done}\n".encode()


def _cursor_lines(data: bytes) -> list[str]:
    text = data.decode("ascii")
    lines = text.split("\n")
    if not text.endswith("\n") or len(lines) != 3:
        raise ValueError("cursor file is not two lines")
    return lines


def decode_cursor(data: bytes, convert: Callable[[str], Pos]) -> Cursor:
    """Parse a cursor file; raises ValueError when it is garbage."""
    from ..cursors import Cursor  # dataclasses: not on the hook's fast path (cursor_pos)

    lines = _cursor_lines(data)
    pos = convert(lines[0]) if lines[0] else None
    return Cursor(pos, frozenset(convert(k) for k in lines[1].split()))


def cursor_pos(data: bytes) -> int | None:
    """The JSONL position in a cursor file; None when it has none or is not a cursor."""
    try:
        first = _cursor_lines(data)[0]
    except (ValueError, UnicodeDecodeError):
        return None
    return int(first) if first.isdigit() else None


# ----------------------------------------------------------------------------- sessions, waiters
def _safe_key(session_id: str) -> str:
    safe = "".join(c for c in session_id if c.isalnum() or c in "-_")[:80]
    if safe != session_id or not safe:
        import hashlib  # only for ids that are no file name as they are

        safe = hashlib.sha256(session_id.encode()).hexdigest()[:32]
    return safe


def session_file(session_id: str) -> str:
    """The file name of ``session_id`` under ``sessions/``."""
    return _safe_key(session_id) + ".json"


def waiter_file(session_id: str) -> str:
    """The file name of ``session_id``'s waiter under ``waiters/``."""
    return _safe_key(session_id) + ".pid"


def session_bytes(info: dict[str, Any]) -> bytes:
    """A session file's content, as ``json.dumps`` writes it (orjson costs the hook ~10 ms,
    json ~5 ms: ``leanjson``)."""
    from ..leanjson import dumps

    return dumps(info, ensure_ascii=False, compact=True).encode("utf-8")


# ----------------------------------------------------------------------------- receipts
def receipt_bytes(receipts: list[dict[str, Any]]) -> bytes:
    """Lines of ``receipts.jsonl`` for ``receipts`` (one ``write``, so one append)."""
    from ..leanjson import odumps  # orjson's bytes without its import (#19)

    return b"".join(odumps(r) + b"\n" for r in receipts)


RECEIPT_SLACK = 300.0  # seconds: receipts of a record are looked for from its ts minus this
BY_SEARCH = 8  # receipts of at most this many messages: found by a byte search (receipts_of)


def receipts_token(ino: int, offset: int, first: bytes) -> list[int]:
    """Where a reader of receipts.jsonl got to: ``[INODE, OFFSET, CRC-32 of the first
    bytes up to OFFSET]`` (``first``: the file's first 256 bytes). With the inode,
    the CRC tells the file from one that replaced it (a new file may get the old
    inode): ``who``'s reads index and the by-id index keep one."""
    from zlib import crc32

    return [ino, offset, crc32(first[: max(0, offset)])]


def receipts_resume(token: Any, ino: int, size: int, first: bytes) -> int | None:
    """The offset to read receipts.jsonl on from, for ``token``; None when the file is
    not the one the token was taken of (or the token is no token): start over."""
    if not isinstance(token, list) or len(token) != 3:
        return None
    offset = token[1]
    if not isinstance(offset, int) or not 0 <= offset <= size:
        return None
    return offset if token == receipts_token(ino, offset, first) else None


def receipts_search(fd: int, size: int, since: float) -> int:
    """Offset of a line of the receipts file ``fd`` at or before the first receipt
    written at ``since - RECEIPT_SLACK`` or later (receipts are appended in the order
    written; the slack covers writers' clocks and the time between a receipt's ``ts``
    and its append). A line with no readable ``ts`` moves the search nowhere wrong:
    the answer is only ever too early, never too late."""
    import time as _time

    target = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(max(0.0, since - RECEIPT_SLACK)))
    lo, hi = 0, size  # lo: a line start no later than the answer
    while hi - lo > 1 << 16:
        mid = (lo + hi) // 2
        window = os.pread(fd, 4096, mid)
        nl = window.find(b"\n")
        if nl < 0:
            break  # a line over 4 KiB: not a receipt of ours; read on from lo
        at = mid + nl + 1
        if at >= hi:
            break
        line = window[nl + 1 :]
        key = line.find(b'"ts":"')
        end = line.find(b"\n")
        if key < 0 or (0 <= end < key) or len(line) < key + 25:
            break
        ts = line[key + 6 : key + 25].decode("ascii", "replace")
        if ts < target:
            lo = at
        else:
            hi = mid
    return lo


def receipts_of(data: bytes, ids: Iterable[int]) -> list[dict[str, Any]]:
    """The receipts in ``data`` (complete lines) of the messages ``ids``: the lines
    holding ``"id":ID`` found by a byte search, only they parsed (``show`` of an old
    message among a million later receipts, #19)."""
    spans: set[tuple[int, int]] = set()
    for i in ids:
        needle = b'"id":%d' % i
        at = data.find(needle)
        while at >= 0:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            if end < 0:
                break  # a torn last line
            spans.add((start, end + 1))
            at = data.find(needle, end)
    want = set(ids)
    found = parse_receipts(b"".join(data[a:b] for a, b in sorted(spans)))[0]
    return [r for r in found if r["id"] in want]


def leading_id(line: bytes, start: int = 0, stop: int | None = None) -> int | None:
    """The id a receipt line ``line[start:stop]`` starts with (``{"id":N,``: every
    writer writes it first), read without parsing the line; None for another shape."""
    if not line.startswith(b'{"id":', start):
        return None
    comma = line.find(b",", start + 6, len(line) if stop is None else stop)
    digits = line[start + 6 : comma]
    return int(digits) if comma > 0 and digits.isdigit() and len(digits) <= 16 else None


def receipts_in(data: bytes, ids: Iterable[int] | None) -> list[dict[str, Any]]:
    """The receipts in ``data``, of the messages ``ids`` only when given."""
    if ids is None:
        return parse_receipts(data)[0]
    wanted = set(ids)
    if len(wanted) <= BY_SEARCH:
        return receipts_of(data, wanted)
    # `list`: the lines of other messages are passed over by the id every writer
    # writes first, unparsed (at a million, its time window holds ~2,000 receipts)
    keep = []
    for line in data[: data.rfind(b"\n") + 1].split(b"\n"):
        first = leading_id(line)
        if first is None or first in wanted:
            keep.append(line)
    return [r for r in parse_receipts(b"\n".join(keep) + b"\n")[0] if r["id"] in wanted]


_READ = rb'"ts":"([^"\\]{1,64})","session":"([^"\\]{1,256})"}'
_SESSION = rb'","session":"(?!(?:%s)"})([^"\\]{1,256})"}'  # a session not seen yet
_SESSION_ANY = rb'","session":"([^"\\]{1,256})"}'
FEW_SESSIONS = 32  # more sessions in one stretch of receipts: one match at a time


def fold_reads(data: bytes, reads: dict[str, str]) -> None:
    """Into ``reads`` (SESSION -> ``ts`` of its last receipt): the receipts with a session
    in ``data``, found by the bytes every receipt writer writes (``"ts":…,"session":…``),
    not parsed. A megabyte holds thousands of receipts of a few sessions: a search that
    skips the sessions already seen finds each new one, then each one's last receipt is
    its last occurrence (a match per receipt built a million tuples: ~1 s, #19)."""
    import re

    pattern = re.compile(_READ)
    seen: list[bytes] = []
    at = 0
    while True:
        # the session's bytes only (checked in full below): a search from the "ts"
        # backtracks over each receipt's time, 4x slower
        skip = b"|".join(re.escape(s) for s in seen)
        m = re.compile(_SESSION % skip if seen else _SESSION_ANY).search(data, at)
        if m is None:
            break
        seen.append(m.group(1))
        at = m.start()
        if len(seen) > FEW_SESSIONS:
            seen = []
            break
    last: dict[bytes, bytes] = {}
    for sid in seen:
        tail = b'","session":"%s"}' % sid
        end = data.rfind(tail) + len(tail)
        start = data.rfind(b'"ts":"', data.rfind(b"\n", 0, end) + 1, end)
        m = pattern.match(data, start) if start >= 0 else None
        if m is None or m.end() != end or m.group(2) != sid:
            seen = []  # an odd line: read every match instead
            break
        last[sid] = m.group(1)
    if not seen:
        last = {}
        for ts, sid in pattern.findall(data):
            last[sid] = ts  # in the order written: the last one stays
    for sid, ts in last.items():
        reads[sid.decode("utf-8", "replace")] = ts.decode("ascii", "replace")


def fold_receipts(receipts: list[dict[str, Any]], reads: dict[str, str]) -> None:
    """Into ``reads`` (SESSION -> ``ts`` of its last receipt): the parsed ``receipts``
    with a session, in the order written."""
    for r in receipts:
        sid, ts = r.get("session"), str(r.get("ts", ""))
        if isinstance(sid, str) and ts:
            reads[sid] = ts


def parse_receipts(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The receipts in ``data`` and how many bytes of it were complete lines."""
    from ..leanjson import oloads  # orjson's answers without its import (#19)

    done = data.rfind(b"\n") + 1
    out = []
    for line in data[:done].split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = oloads(line)
        except ValueError:  # orjson.JSONDecodeError
            continue  # a torn or foreign line: never a receipt
        if (
            isinstance(rec, dict)
            and isinstance(rec.get("id"), int)
            and isinstance(rec.get("reader"), str)
            and rec.get("how") in HOWS
        ):
            out.append(rec)
    return out, done
