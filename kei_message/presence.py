"""Who is there: every known name, its unread count, its waiter and its pane's state.

``who`` (also ``channels``, ``names``) joins what each wing knows about a name:

- the names index of the store (names seen on the bus, last message);
- registered sessions (``store.sessions``: last seen, tmux pane);
- unread counts: from the reader's cursor, or, for a name that never read,
  from the names index without scanning the bus;
- ``waiter``: a live waiter (Claude Code's or Codex's) watches the name (``agents.waiters``);
- ``unreachable``: pids of its running Claude Code sessions with no waiter armed
  (only when there are any: nothing wakes them when mail arrives);
- ``state``: what its tmux pane shows (``live.status``), only when a pane is registered.

It sits above the wings it asks (agents, live) and below the CLI.
"""

from __future__ import annotations

import time

from . import names, settings
from .agents.waiters import armed_names, armed_sessions, unreachable
from .mailbox import Mailbox, warnings_ahead
from .stores.names_index import current, fresh_unread

TYPE_CHECKING = False  # typing costs every command ~7 ms (issue 19)
if TYPE_CHECKING:
    from typing import Any

    from .cursors import Cursor


def unread_counts(mailbox: Mailbox, wanted: list[str]) -> dict[str, int]:
    """Unread count for each name: from its cursor on (the bus read once for all of
    them), or, for a name that never read, from the names index."""
    store = mailbox.store
    data = current(store) if store.name == "jsonl" else None
    replay, now = settings.broadcast_replay(), time.time()
    end = store.end()
    out: dict[str, int] = {}
    cursors: dict[str, Cursor | None] = {}
    for name in wanted:
        if not names.is_valid(name) or name == names.BROADCAST:
            out[name] = 0
            continue
        cursor = store.load_cursor(name)
        if cursor is None and data is not None:
            quick = fresh_unread(data, name, replay, now)
            if quick is not None:
                out[name] = quick
                continue
        cursors[name] = cursor
    out.update(mailbox.counts_from(cursors, end))
    return out


def _session_rows(mailbox: Mailbox, found: dict[str, dict[str, Any]]) -> None:
    """Each live session's ``prefix``, ``agent``, ``waiter``, ``last_read`` and (with a
    registered pane) ``state``, in place (#16, SPEC §11)."""
    if not any(row.get("sessions") for row in found.values()):
        return
    armed = armed_sessions(mailbox.store)
    reads = mailbox.last_reads()
    panes: dict[str, str] = {}
    if any(
        s.get("tmux") and s.get("tmux_pane") for r in found.values() for s in r.get("sessions", ())
    ):
        warnings_ahead()  # live/ logs through logging: the CLI's handler first
        from .live.status import session_states

        panes = session_states(mailbox.store)
    for row in found.values():
        for sess in row.get("sessions", ()):
            sid = str(sess.get("session_id") or "")
            sess["prefix"] = sid[:8]
            sess.setdefault("agent", "claude")
            sess["waiter"] = sid in armed
            sess["last_read"] = reads.get(sid)
            if sid in panes:
                sess["state"] = panes[sid]


def who(mailbox: Mailbox) -> list[dict[str, Any]]:
    """Every known name, sorted: ``name``, ``last_message``, ``last_seen``, ``unread``,
    ``waiter``, ``state`` (None unless a pane is registered), ``sessions`` and
    ``agent`` (the agent CLIs of its sessions, e.g. ``claude,codex``; None without one).

    Every row has every key, whatever the situation, so ``who --json`` and the
    table's columns stay the same for scripts (#17).
    """
    store = mailbox.store
    found: dict[str, dict[str, Any]] = {}
    for name, info in store.names().items():
        found[name] = {"name": name, "last_message": info.get("last_ts"), "last_seen": None}
    # live ones only: a session whose process is gone leaves by itself (SPEC §11)
    for sess in mailbox.live_sessions():
        sname = sess.get("name")
        if not isinstance(sname, str) or not names.is_valid(sname):
            continue
        row = found.setdefault(sname, {"name": sname, "last_message": None, "last_seen": None})
        seen = sess.get("last_seen")
        if seen and (row["last_seen"] is None or seen > row["last_seen"]):
            row["last_seen"] = seen
        row.setdefault("sessions", []).append(sess)
        # which agent CLIs run under this name (issue 18); sessions from before it: claude
        agent = sess.get("agent")
        agents = {agent if isinstance(agent, str) and agent else "claude"}
        agents.update(a for a in str(row.get("agent") or "").split(",") if a)
        row["agent"] = ",".join(sorted(agents))
    counts = unread_counts(mailbox, list(found))
    for name, row in found.items():
        row["unread"] = counts[name]
    armed = armed_names(store)  # waiters are local processes: one small directory
    for name, row in found.items():
        row["waiter"] = name in armed
        row["state"] = None
        row.setdefault("sessions", [])
        row.setdefault("agent", None)
    for sess in unreachable(store):  # running, and nothing can wake it (issue 14)
        if sess["name"] in found:
            found[sess["name"]].setdefault("unreachable", []).append(sess["pid"])
    _session_rows(mailbox, found)
    if not any(
        s.get("tmux") and s.get("tmux_pane") for row in found.values() for s in row["sessions"]
    ):
        return [found[n] for n in sorted(found)]
    # Lazy: no pane registered, no live/ (its regexes and tmux plumbing cost `who`
    # ~10 ms; issue 6). One capture per live pane, every tmux call bounded.
    warnings_ahead()
    from .live.status import states

    for name, state in states(store).items():
        if name in found:
            found[name]["state"] = state
    return [found[n] for n in sorted(found)]
