"""The one ``/proc`` reader: a process's stat and command line, whether it lives,
whether it is an agent CLI (Claude Code, Codex, Gemini CLI), and finding the one
above a hook.

A process is known by pid *and* start time (clock ticks since boot, field 22
of ``/proc/PID/stat``), so a recycled pid never passes for it (``Proc``,
``is_alive``). ``comm`` sits in parentheses and may itself hold spaces or
``)``: every parse splits at the last ``)``.

Only ``os`` at import time: the hooks call this before every prompt (issue 6).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs the hook ~8 ms (issue 6)
if TYPE_CHECKING:
    from typing import NamedTuple

# Interpreters and wrappers between an agent CLI and the program it runs (a hook,
# or the shell left in a tmux pane when the agent exits): walk past them / see them.
SHELLS = frozenset(
    {
        "sh", "bash", "dash", "zsh", "ksh", "fish", "tcsh", "csh", "nu", "login",
        "busybox", "env", "timeout",
    }
)  # fmt: skip
MAX_DEPTH = 16


class Stat:
    """What ``/proc/PID/stat`` says about a process that runs (not a zombie)."""

    __slots__ = ("comm", "ppid", "start")

    def __init__(self, comm: str, ppid: int, start: int) -> None:
        self.comm = comm
        self.ppid = ppid
        self.start = start


if TYPE_CHECKING:

    class Proc(NamedTuple):
        """A process, known by pid and start time (clock ticks since boot)."""

        pid: int
        start: int

else:

    class Proc(tuple):
        """A process, known by pid and start time (clock ticks since boot).

        A named tuple without ``collections`` (~2 ms of the hook, issue 19)."""

        __slots__ = ()

        def __new__(cls, pid, start):
            return tuple.__new__(cls, (pid, start))

        pid = property(lambda self: self[0])
        start = property(lambda self: self[1])

        def __getnewargs__(self):
            return tuple(self)

        def __repr__(self):
            return f"Proc(pid={self[0]!r}, start={self[1]!r})"


def stat(pid: int) -> Stat | None:
    """``pid``'s stat, or None when it is gone (a zombie is gone: it runs no more,
    only its parent has not reaped it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    head, _, rest = raw.rpartition(b")")
    fields = rest.split()
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    try:
        return Stat(
            head.partition(b"(")[2].decode("utf-8", "replace"), int(fields[1]), int(fields[19])
        )
    except ValueError:
        return None


def cmdline(pid: int) -> list[str]:
    """``pid``'s arguments; [] when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def exe(pid: int) -> str | None:
    """The program ``pid`` runs (``/proc/PID/exe``); None when gone or unreadable."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
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


def is_alive(proc: Proc) -> bool:
    """``proc`` still runs: its pid exists with the same start time (not a recycled pid)."""
    st = stat(proc.pid)
    return st is not None and st.start == proc.start


# What names each agent CLI in a command line besides its own name (issue 18): the npm
# package a node-run CLI is installed from.
PACKAGES = {"claude": "claude-code", "codex": "@openai/codex", "gemini": "gemini-cli"}


def is_agent(pid: int, agent: str, comm: str | None = None) -> bool:
    """Does ``pid`` run ``agent``'s CLI (claude, codex, gemini)? The native binary
    (``comm`` ``claude…``, ``codex…``), or a program whose command line names it
    in its first word or the script it runs: ``node …/bin/gemini``, ``node
    …/claude-code/cli.js``, ``python …/claude`` (the test stand-ins)."""
    if comm is None:
        st = stat(pid)
        if st is None:
            return False
        comm = st.comm
    if comm.startswith(agent):
        return True
    argv = cmdline(pid)
    script = next((a for a in argv[1:] if not a.startswith("-")), "")
    package = PACKAGES.get(agent, agent)
    return any(os.path.basename(a).startswith(agent) or package in a for a in (argv[:1] + [script]))


def is_claude(pid: int, comm: str | None = None) -> bool:
    """Does ``pid`` run Claude Code (``is_agent``)?"""
    return is_agent(pid, "claude", comm)


def agent_pid(agent: str, start: int | None = None) -> int | None:
    """The pid of the ``agent`` CLI process running this hook, or None when not found.

    Starts at our parent (``start`` to test) and walks up past shells; stops at
    the first process that looks like the agent's CLI, or at anything else.
    """
    pid = os.getppid() if start is None else start
    for _ in range(MAX_DEPTH):
        if pid <= 1:
            return None
        st = stat(pid)
        if st is None:
            return None
        if is_agent(pid, agent, st.comm):
            return pid
        if st.comm not in SHELLS:
            # some other program (a terminal, tmux, a test runner): not under the agent
            return None
        pid = st.ppid
    return None


def claude_pid(start: int | None = None) -> int | None:
    """The pid of the Claude Code process running this hook (``agent_pid``)."""
    return agent_pid("claude", start)


def children() -> dict[int, list[int]]:
    """Every process's children, by parent pid, from one pass over ``/proc``."""
    kids: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return kids
    for entry in entries:
        if entry.isdigit():
            st = stat(int(entry))
            if st is not None:
                kids.setdefault(st.ppid, []).append(int(entry))
    return kids
