"""One record: one line of the bus (SPEC §2).

    {"id":1795248002625564,"ts":"2026-11-21T08:00:02Z",
     "from":"backend","to":"frontend","body":"ship it"}

(shown on two lines here; on the bus it is one).

``id`` is microseconds since the epoch, unique and strictly increasing in
file order for records we write. Lines written by the original
``kei-message.sh`` (second-resolution ``ts``, ids that go backwards) parse
too. Unknown fields are kept as they are; a ``kind`` or ``reply_to`` breaking
its rule (SPEC §2) is dropped.
"""

from __future__ import annotations

import time

from .errors import UsageError
from .leanjson import odumps, oloads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

KINDS = ("TASK", "DONE", "BLOCKED", "QUESTION")
MAX_ID = 2**64 - 1  # the largest integer orjson writes; a larger id is not a record (#7)
# The largest id kei-message hands out (#15): exact in a double, so jq, JavaScript
# and Redis' Lua read it as written (µs since the epoch reach it in 2255). A record
# with a larger id is a foreign one: shown, never used to order new ids, and, as no
# id above this is ever assigned, never repeated. Past it a store refuses to append.
ID_LIMIT = 2**53 - 1

Record = dict[str, "Any"]


class CorruptLine(ValueError):
    """A line of the bus that is not a record; readers skip it."""


def bulk_loads() -> Callable[[bytes], Any]:
    """orjson's own ``loads``: for reading megabytes, where its import (~25 ms) pays off."""
    import orjson

    return orjson.loads


def parse(line: bytes, loads: Callable[[bytes], Any] = oloads) -> Record:
    """Parse one line (without its newline) into a record, or raise CorruptLine.

    ``loads``: ``oloads`` (orjson's answers without importing it, issue 19), or
    ``bulk_loads()`` for long scans; the two agree on every line."""
    try:
        rec = loads(line)
    except ValueError as exc:  # orjson.JSONDecodeError
        raise CorruptLine(f"not JSON: {exc}") from None
    if not isinstance(rec, dict):
        raise CorruptLine("not a JSON object")
    rid = rec.get("id")
    if isinstance(rid, str) and rid.isascii() and rid.isdigit() and len(rid) <= 20:
        # kei-message.sh wrote ids as strings now and then
        rec["id"] = rid = int(rid)
    if not isinstance(rid, int) or isinstance(rid, bool):
        raise CorruptLine("id is missing or not an integer")
    if not 0 <= rid <= MAX_ID:
        raise CorruptLine("id is out of range")
    for field in ("from", "to", "body"):
        if not isinstance(rec.get(field), str):
            raise CorruptLine(f"{field!r} is missing or not a string")
    if not isinstance(rec.get("ts", ""), str):
        raise CorruptLine("'ts' is not a string")
    # Optional fields a foreign writer may fill with anything (#15): a kind that is
    # not one of KINDS, or a reply_to that is not an id, is dropped, as if absent.
    if "kind" in rec:
        kind = rec["kind"]
        up = kind.strip().upper() if isinstance(kind, str) else None
        if up in KINDS:
            if up != kind:
                rec["kind"] = up
        else:
            del rec["kind"]
    if "reply_to" in rec:
        reply = rec["reply_to"]
        if isinstance(reply, str) and reply.isascii() and reply.isdigit() and len(reply) <= 20:
            rec["reply_to"] = reply = int(reply)
        if not isinstance(reply, int) or isinstance(reply, bool) or not 0 <= reply <= MAX_ID:
            del rec["reply_to"]
    return rec


def dumps(rec: Record) -> bytes:
    """The line for ``rec``, with its newline. Newlines in strings are escaped by JSON."""
    return odumps(rec) + b"\n"


def now_us() -> int:
    return time.time_ns() // 1000


def ts_now() -> str:
    """RFC 3339 UTC time of now, to the millisecond (receipts, #16)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def ts_from_id(rid: int) -> str:
    """RFC 3339 UTC time of an id, to the second, ending in ``Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rid / 1_000_000))


_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _fixed_epoch(ts: str) -> float | None:
    """``ts_epoch`` of the shape every writer here writes (``YYYY-MM-DDTHH:MM:SS``, an
    optional fraction of 1 to 6 digits, ``Z`` or ``±HH:MM``) without importing
    ``datetime`` (~1.5 ms, issue 19); None for any other shape, or a field out of range.
    The sum is the one ``datetime.timestamp`` makes (whole microseconds / 10**6)."""
    if not 20 <= len(ts) <= 32 or not ts.isascii():
        return None
    if ts[4] != "-" or ts[7] != "-" or ts[10] != "T" or ts[13] != ":" or ts[16] != ":":
        return None
    digits = ts[0:4] + ts[5:7] + ts[8:10] + ts[11:13] + ts[14:16] + ts[17:19]
    if not digits.isdigit():
        return None
    year, month, day = int(ts[0:4]), int(ts[5:7]), int(ts[8:10])
    hour, minute, second = int(ts[11:13]), int(ts[14:16]), int(ts[17:19])
    rest, micro = ts[19:], 0
    if rest[:1] == ".":
        frac = rest[1:7]
        frac = frac[: len(frac) - len(frac.lstrip("0123456789"))] if frac else ""
        if not frac or not frac.isdigit():
            return None
        micro, rest = int(frac.ljust(6, "0")), rest[1 + len(frac) :]
    if rest == "Z":
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":" and (rest[1:3] + rest[4:]).isdigit():
        offset = (int(rest[1:3]) * 60 + int(rest[4:])) * 60 * (1 if rest[0] == "+" else -1)
        if int(rest[1:3]) > 23 or int(rest[4:]) > 59:
            return None
    else:
        return None
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not (year >= 1 and 1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        return None
    if not 1 <= day <= (29 if month == 2 and leap else _DAYS[month - 1]):
        return None
    # days from the civil date (H. Hinnant's algorithm)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return (seconds * 10**6 + micro) / 10**6


_LEAN_CALLS = [64]  # ts_epoch's first calls: datetime's C parser is faster in a loop


def ts_epoch(ts: str) -> float | None:
    """Seconds since the epoch for an RFC 3339 time (``Z`` or offset), or None."""
    if _LEAN_CALLS[0] > 0 and isinstance(ts, str):
        _LEAN_CALLS[0] -= 1
        fixed = _fixed_epoch(ts)
        if fixed is not None:
            return fixed
    from datetime import datetime

    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except (ValueError, TypeError):
        return None


def record_epoch(rec: Record) -> float:
    """When a record was written: its ``ts``, else its id read as microseconds."""
    t = ts_epoch(rec.get("ts", ""))
    if t is not None:
        return t
    rid: int = rec["id"]
    # ids from kei-message.sh may be seconds, ms, µs or ns since the epoch
    while rid > 10**17:
        rid //= 1000
    if rid > 10**14:
        return rid / 1_000_000
    # milliseconds were read as seconds (year ~58000) before this branch
    return rid / 1000 if rid > 10**11 else float(rid)


def kind_from_body(body: str) -> str | None:
    head = body.lstrip()[:9]
    for kind in KINDS:
        if head.startswith(kind + ":"):
            return kind
    return None


def check_kind(kind: str) -> str:
    up = kind.strip().upper().rstrip(":")
    if up not in KINDS:
        raise UsageError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    return up


def parse_duration(text: str) -> float:
    """``90``, ``30s``, ``15m``, ``24h``, ``7d``, ``2w`` → seconds. ``0`` is zero."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    raw = text.strip().lower()
    try:
        value = float(raw[:-1]) * units[raw[-1]] if raw and raw[-1] in units else float(raw)
    except ValueError:
        raise UsageError(f"bad duration {text!r}: use e.g. 30s, 15m, 24h, 7d") from None
    if value < 0 or value != value:
        raise UsageError(f"bad duration {text!r}: must not be negative")
    return value
