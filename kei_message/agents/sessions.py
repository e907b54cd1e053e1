"""Registered agent sessions (Claude Code, Codex, Gemini CLI): for ``who`` and live delivery.

Every hook event calls ``register``: it writes ``sessions/ID.json`` (through
``store.put_session``) with the session's name, id, cwd, ``$TMUX`` and
``$TMUX_PANE``, transcript path, last-seen time, ``agent`` (claude, codex or
gemini: whose hook ran, issue 18), and the pid of that agent's CLI process
when it can be found.

Claude Code runs each command hook as ``/bin/sh -c COMMAND`` in a process
session of its own (issue 9), so the hook's parent is that shell and Claude
Code sits further up; ``procs.agent_pid`` walks ``/proc`` up past shells to it
(Codex and Gemini CLI likewise).
"""

from __future__ import annotations

import os
import time

from ..procs import agent_pid

TYPE_CHECKING = False  # typing costs the hook ~8 ms (issue 6)
if TYPE_CHECKING:
    from typing import Any


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def session_info(name: str, payload: dict[str, Any], agent: str = "claude") -> dict[str, Any]:
    """What ``register`` stores for one session (INTERFACES.md); ``agent`` is the CLI
    whose hook runs: claude, codex or gemini (issue 18)."""

    def text(key: str) -> str | None:
        value = payload.get(key)
        return value if isinstance(value, str) and value else None

    return {
        "name": name,
        "session_id": text("session_id"),
        "cwd": text("cwd"),
        "tmux": os.environ.get("TMUX") or None,
        "tmux_pane": os.environ.get("TMUX_PANE") or None,
        "last_seen": now_rfc3339(),
        "transcript_path": text("transcript_path"),
        "pid": agent_pid(agent),
        "agent": agent,
    }


def register(
    store: Any, name: str, payload: dict[str, Any], agent: str = "claude"
) -> dict[str, Any] | None:
    """Record the session in ``payload`` under ``name``; None when it has no session id."""
    info = session_info(name, payload, agent)
    if not info["session_id"]:
        return None
    store.put_session(info["session_id"], info)
    return info
