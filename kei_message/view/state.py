"""The team at a glance, as one plain dict: what ``top`` draws and ``web`` serves.

Read only through the library's public face (``Mailbox.who``, ``unread``,
``recent``, ``get``), so the view never learns a store's layout. The dict
holds records as stored: whoever shows them escapes them (``render`` for a
terminal, ``textContent`` on the page).

Shape (``GET /api/state`` returns exactly this)::

    {"now": TS, "store": "jsonl", "location": PATH,
     "names": [{"name", "last_message", "last_seen", "unread", "oldest_unread",
                "oldest_unread_age", "waiter", "state",
                "sessions": [{"session", "session_id", "agent", "state", "pane",
                              "cwd", "last_seen"}]}],
     "messages": [RECORD, ...],                      # the newest, oldest first
     "graph": {"since": TS, "hours": 24, "nodes": [NAME, ...],
               "edges": [{"from", "to", "count"}]}}
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .. import names, records, settings
from ..presence import who

if TYPE_CHECKING:
    from ..mailbox import Mailbox
    from ..records import Record

GRAPH_WINDOW = 24 * 3600.0
GRAPH_LIMIT = 20_000  # records counted for the graph at most: the page stays quick
LATEST = 30
THREAD_LIMIT = 5_000
THREAD_DEPTH = 50
DEFAULT_AGENT = "claude"  # sessions registered before agent kinds (#18) carry none


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _epoch(rec: Record) -> float | None:
    try:
        return records.record_epoch(rec)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def _session_row(sess: dict[str, Any], state: str | None) -> dict[str, Any]:
    sid = sess.get("session_id")
    sid = sid if isinstance(sid, str) else ""
    agent = sess.get("agent")
    pane = sess.get("tmux_pane") if sess.get("tmux") else None
    return {
        "session": sid[:8],
        "session_id": sid,
        "agent": agent if isinstance(agent, str) and agent else DEFAULT_AGENT,
        # who() reads each session's own pane (#16), else one per name (its best
        # pane); a session without a pane has none to read
        "state": (sess.get("state") or state or "unknown") if pane else None,
        "pane": pane if isinstance(pane, str) else None,
        "cwd": sess.get("cwd") if isinstance(sess.get("cwd"), str) else None,
        "last_seen": sess.get("last_seen") if isinstance(sess.get("last_seen"), str) else None,
    }


def oldest_unread(mb: Mailbox, reader: str, now: float) -> Record | None:
    """R's oldest unread, by ``Mailbox.unread``'s rules, reading no further than it."""
    from ..mailbox import is_for

    store = mb.store
    cursor = store.load_cursor(reader)
    fresh = cursor is None or cursor.pos is None
    oldest = now - settings.broadcast_replay() if fresh else 0.0
    hint = (f'"{reader}"'.encode(), b'"all"')
    for entry in store.scan(cursor.pos if cursor else None, hint=hint):
        rec = entry.record
        if rec is None or not is_for(rec, reader):
            continue
        if cursor is not None and cursor.consumed(entry.pos, store.order):
            continue
        if fresh and rec["to"] == names.BROADCAST and (_epoch(rec) or 0.0) < oldest:
            continue
        return rec
    return None


def _talk(mb: Mailbox, since: float, memo: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Who wrote to whom since ``since``. With the caller's ``memo`` (kept between
    calls), each call reads only what was appended since the last one."""
    store = mb.store
    end = store.end()
    seen: list[tuple[float, int, str, str]] = memo.get("talk", [])
    last = memo.get("end")
    if last is not None and store.order(end) < store.order(last):
        seen = []  # the bus was replaced or cut: count again
    known = seen[-1][1] if seen else None
    fresh: list[tuple[float, int, str, str]] = []
    for entry in store.scan_reverse():
        rec = entry.record
        if rec is None:
            continue
        if known is not None and rec["id"] <= known:
            if rec["id"] > 10**15:
                break  # our ids increase: the rest is counted
            continue  # an old kei-message.sh id: counted before, or too old
        t = _epoch(rec)
        if t is None or t < since:
            if rec["id"] > 10**15:
                break
            continue
        sender, to = rec.get("from"), rec.get("to")
        if isinstance(sender, str) and isinstance(to, str):
            fresh.append((t, rec["id"], sender, to))
        if len(fresh) >= GRAPH_LIMIT:
            break
    fresh.reverse()
    window = [x for x in seen if x[0] >= since] + fresh
    window = window[-GRAPH_LIMIT:]
    memo["talk"], memo["end"] = window, end
    counts: dict[tuple[str, str], int] = {}
    for _, _, sender, to in window:
        counts[(sender, to)] = counts.get((sender, to), 0) + 1
    return counts


def build_state(
    mb: Mailbox,
    *,
    now: float | None = None,
    latest: int = LATEST,
    memo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Names and sessions (agent, state, waiter, unread, oldest unread), the newest
    messages and who wrote to whom over the last 24 h.

    ``memo``: a dict the caller keeps between calls (``top``, ``web``), so a
    refresh reads only the records appended since the last one for the graph.
    """
    now = time.time() if now is None else now
    rows: list[dict[str, Any]] = []
    for row in who(mb):
        name = row.get("name")
        if not isinstance(name, str):
            continue
        unread = int(row.get("unread") or 0)
        oldest: float | None = None
        if unread and names.is_valid(name) and name != names.BROADCAST:
            first = oldest_unread(mb, name, now)
            oldest = _epoch(first) if first else None
        state = row.get("state")
        rows.append(
            {
                "name": name,
                "last_message": row.get("last_message"),
                "last_seen": row.get("last_seen"),
                "unread": unread,
                "oldest_unread": _iso(oldest) if oldest is not None else None,
                "oldest_unread_age": max(0.0, now - oldest) if oldest is not None else None,
                "waiter": bool(row.get("waiter")),
                "state": state if isinstance(state, str) else None,
                "sessions": [
                    _session_row(s, state) for s in row.get("sessions") or () if isinstance(s, dict)
                ],
            }
        )
    since = now - GRAPH_WINDOW
    counts = _talk(mb, since, {} if memo is None else memo)
    nodes = sorted({n for pair in counts for n in pair} | {r["name"] for r in rows})
    return {
        "now": _iso(now),
        "store": mb.store.name,
        "location": mb.store.location,
        "names": rows,
        "messages": mb.recent(latest),
        "graph": {
            "since": _iso(since),
            "hours": GRAPH_WINDOW / 3600,
            "nodes": nodes,
            "edges": [{"from": a, "to": b, "count": c} for (a, b), c in sorted(counts.items())],
        },
    }


def thread(mb: Mailbox, msg_id: int) -> dict[str, Any]:
    """Message ``msg_id`` in its thread: the chain of ``reply_to`` up to the first
    message, then every reply to any of them, oldest first; and its receipts
    where the store keeps them (#16), else None.

    Raises UnknownMessage when there is no such message.
    """
    from ..errors import UnknownMessage

    rec = mb.get(msg_id)
    chain: dict[int, Record] = {rec["id"]: rec}
    root = rec
    for _ in range(THREAD_DEPTH):
        parent = root.get("reply_to")
        if not isinstance(parent, int) or parent in chain:
            break
        try:
            root = mb.get(parent)
        except UnknownMessage:  # answered something gc moved out, or never there
            break
        chain[root["id"]] = root
    start = _epoch(root)
    if start is not None:
        for later in mb.recent(THREAD_LIMIT, since=start):
            if later.get("reply_to") in chain:
                chain.setdefault(later["id"], later)
    msgs = sorted(chain.values(), key=lambda r: (_epoch(r) or 0.0, r["id"]))
    return {"id": msg_id, "message": rec, "thread": msgs, "receipts": receipts(mb, msg_id)}


def receipts(mb: Mailbox, msg_id: int) -> Any:
    """The message's delivery states (SPEC §12) if this build keeps them, else None."""
    for attr in ("receipts", "status"):
        fn = getattr(mb, attr, None)
        if callable(fn):
            try:
                return fn(msg_id)
            except Exception:  # a page must show the thread whatever receipts do
                return None
    return None
