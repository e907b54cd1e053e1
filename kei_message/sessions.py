"""Registered agent sessions (Claude Code, Codex, Gemini CLI): for ``who`` and live delivery.

Every hook event calls ``register``: it writes ``sessions/ID.json`` (through
``store.put_session``) with the session's name, id, cwd, ``$TMUX`` and
``$TMUX_PANE``, transcript path, last-seen time, and the pid of the Claude
Code process when it can be found.

Claude Code runs each command hook as ``/bin/sh -c COMMAND`` in a process
session of its own (issue 9), so the hook's parent is that shell and Claude
Code sits further up; ``claude_pid`` walks ``/proc`` up past shells to it.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing costs the hook ~8 ms (issue 6)
if TYPE_CHECKING:
    from typing import Any

# Interpreters and wrappers between Claude Code and a hook: walk past them.
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish", "busybox", "env", "timeout"})
_MAX_DEPTH = 16


def _stat(pid: int) -> tuple[str, int] | None:
    """``(comm, ppid)`` of ``pid`` from ``/proc/PID/stat``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    # comm is in parentheses and may itself hold spaces or ')': split at the last one
    close = raw.rfind(b")")
    if close < 0:
        return None
    comm = raw[raw.find(b"(") + 1 : close].decode("utf-8", "replace")
    fields = raw[close + 2 :].split()
    try:
        return comm, int(fields[1])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (another user's counts; a bogus number does not)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def is_claude(pid: int, comm: str | None = None) -> bool:
    """Does ``pid`` look like a Claude Code process (native binary or node CLI)?"""
    return is_agent(pid, "claude", comm)


def is_agent(pid: int, agent: str, comm: str | None = None) -> bool:
    """Does ``pid`` look like the CLI of ``agent`` (claude, codex, gemini; issue 18)?

    Claude Code and Codex run as native binaries (``claude``, ``codex``) or under
    node; Gemini CLI is node running ``.../bin/gemini``.
    """
    if comm is None:
        info = _stat(pid)
        if info is None:
            return False
        comm = info[0]
    if comm.startswith(agent):
        return True
    if comm in ("node", "bun", "nodejs"):
        package = {"claude": "claude-code", "gemini": "gemini-cli"}.get(agent, agent)
        return any(agent in os.path.basename(a) or package in a for a in cmdline(pid))
    return False


def claude_pid(start: int | None = None) -> int | None:
    """The pid of the Claude Code process running this hook, or None when not found."""
    return agent_pid("claude", start)


def agent_pid(agent: str, start: int | None = None) -> int | None:
    """The pid of the ``agent`` CLI process running this hook, or None when not found.

    Starts at our parent (``start`` to test) and walks up past shells; stops at
    the first process that looks like the agent's CLI, or at anything else.
    """
    pid = os.getppid() if start is None else start
    for _ in range(_MAX_DEPTH):
        if pid <= 1:
            return None
        info = _stat(pid)
        if info is None:
            return None
        comm, ppid = info
        if is_agent(pid, agent, comm):
            return pid
        if comm not in _SHELLS:
            # some other program (a terminal, tmux, a test runner): not under Claude Code
            return None
        pid = ppid
    return None


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
