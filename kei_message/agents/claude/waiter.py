"""Wake an idle Claude Code session when mail arrives: the asyncRewake waiter (SPEC §7).

``kei-message-hook wake`` is registered on SessionStart and Stop as a command
hook with ``"async": true, "asyncRewake": true`` and a long ``timeout``.
Claude Code runs it in the background; when it exits 2, the idle session
starts a turn whose content is the hook's output. So the waiter:

1. takes the one-waiter-per-session lock (``waiters/KEY.pid`` in the mailbox
   dir, flock held for its lifetime); if another waiter holds it, exits 0;
2. waits without spinning (``store.wait_for_change``, as ``kei message wait``)
   until its identity (``KEI_MAILBOX_ME``, else the hook input's ``cwd``) has
   unread messages, checking every second that its Claude Code process lives;
3. just before consuming, checks again that Claude Code is alive and that its
   stdout is still open (2.1.197 can leave a waiter running with a closed
   pipe after the session ends: output written there is lost), then prints
   the messages with ``prompt.take`` (same text and budget as the other
   hooks, deliver-then-commit) and exits 2.

Before it hands mail over, the waiter looks at its session's screen when the
session runs in tmux (``$TMUX_PANE``, read with ``live.status.own_state``): while
the composer holds a draft the user is typing, a turn is running, or a prompt
waits for an answer, it keeps the mail unread and looks again every half
second. So a wake never lands on top of a user's draft (their own prompt takes
the mail along: the UserPromptSubmit hook), mail that arrives during a turn is
left to the mid-turn hook, and ``cancel`` can still hold it; nothing is queued
inside Claude Code. Outside tmux, or on a screen it cannot read, it wakes at once.

While ``holds/NAME`` exists (``kei message cancel NAME`` stopped the session;
NAME's next prompt removes it, issue 14) the waiter does not wake it with the
mail that waited then (ids up to the hold's mark); newer mail ends the hold.

It exits 0 with no output when bypassed (``KEI_MAILBOX_BYPASS=1``), when its
Claude Code process is gone, when anything fails, and a little before its
hook timeout (``KEI_MAILBOX_WAKE_DEADLINE`` seconds, default
``HOOK_TIMEOUT - DEADLINE_MARGIN``). It never exits 2 without a message:
a Stop hook that woke the session with nothing would start again after that
turn, and again, forever.

Which process is "its Claude Code": Claude Code starts each hook as
``/bin/sh -c COMMAND`` in a process session of its own (setsid), and the
shell can outlive Claude Code, so watching the parent pid is not enough. The
waiter walks ``/proc`` up from its parent within its own process session; the
first ancestor that looks like Claude Code (``claude``, or node running
claude) is it, else the process that started the session (the parent of the
session leader). Tests start the waiter the same way (``start_new_session``)
under a stand-in parent they can kill. A process is known by pid and start
time, so a recycled pid never passes for it.

The lock and the files are ``kei_message.agents.waiters`` (Codex's waiter takes
the same ones). Each ``waiters/KEY.pid`` holds JSON: ``session_id``, ``name``, ``pid`` and
``start`` of the waiter, ``claude_pid`` and ``claude_start``, ``since``
(epoch seconds). The waiter removes its file on exit; one left behind by a
killed waiter is stale, and ``waiters()`` reports it as not alive.

Everything goes to stdout only: Claude Code hands the model stderr instead
of stdout when both are present, so a stray warning on stderr would replace
the messages.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

from ... import names, paths, settings
from ...mailbox import Mailbox
from ...procs import Proc, is_alive, is_claude, stat
from ...stores.holds import HOLD_ALL, hold, hold_mark, release
from ..hooklog import log_failure, log_library_warnings
from ..prompt import take
from ..waiters import WaiterLock, armed, armed_names, unreachable, waiters
from ..waiters import info as waiter_info

__all__ = [
    "HOLD_ALL",
    "HOOK_TIMEOUT",
    "WaiterLock",
    "armed",
    "armed_names",
    "claude_process",
    "hold",
    "hold_mark",
    "release",
    "run",
    "unreachable",
    "waiters",
]

# What the installer registers as the hook's ``timeout`` (seconds). Claude Code
# turns it into a JS timer in ms, which overflows past 2**31 - 1 ms (~24.8 days).
HOOK_TIMEOUT = 86400
# The waiter leaves this long before Claude Code would kill it.
DEADLINE_MARGIN = 60
# How often the waiter looks at its Claude Code process while waiting.
SLICE = 1.0
# How often it looks at its pane while mail waits for the session to be free.
PANE_SLICE = 0.5
# Pane states in which a wake would land on the user's draft or queue behind a turn.
NOT_NOW = frozenset({"draft", "busy", "waiting"})


# ----------------------------------------------------------------------------- processes
def claude_process() -> Proc | None:
    """The Claude Code process this hook runs under (see the module docstring); None when
    it is already gone."""
    sid = os.getsid(0)
    pid = os.getppid()
    for _ in range(16):
        st = stat(pid)
        if st is None or pid <= 1:
            return None
        if is_claude(pid, st.comm):
            return Proc(pid, st.start)
        try:
            if pid == sid or os.getsid(pid) != sid:
                break
        except ProcessLookupError:
            return None
        pid = st.ppid
    # the process that started our process session: Claude Code spawns each hook
    # with setsid, and tests start the waiter the same way
    leader = stat(sid)
    if leader is None or leader.ppid <= 1:
        return None  # orphaned: whoever started the session has died
    parent = stat(leader.ppid)
    return Proc(leader.ppid, parent.start) if parent else None


def _stdout_open() -> bool:
    """False when nobody can read our stdout any more (pipe or socket closed at the far end)."""
    poller = select.poll()
    poller.register(1, select.POLLOUT)
    for _fd, events in poller.poll(0):
        if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
            return False
    return True


# ----------------------------------------------------------------------------- the waiter
class _Gone(Exception):
    """Claude Code (or our stdout) went away before we could deliver."""


def deadline() -> float:
    """Seconds the waiter waits at most: a little under the registered hook timeout."""
    return settings.wake_deadline(HOOK_TIMEOUT - DEADLINE_MARGIN)


def _write_all(text: str) -> None:
    data = memoryview(text.encode("utf-8"))
    try:
        while data:
            data = data[os.write(1, data) :]
    except OSError as exc:  # EPIPE: the reader is gone, and SIGPIPE is ignored by Python
        raise _Gone(str(exc)) from exc


def run(payload: dict[str, Any], raw_ok: bool = True) -> int:
    """The ``wake`` hook: wait for mail, print it, exit 2; else exit 0 with no output.

    ``payload`` is Claude Code's hook input (``session_id``, ``cwd``, …);
    ``raw_ok`` False means stdin was not valid JSON (the waiter still runs,
    from ``KEI_MAILBOX_ME`` and ``CLAUDE_CODE_SESSION_ID``). Returns the exit code.
    """
    if settings.bypass():
        return 0
    # library warnings go to hook.log: on stderr Claude Code would hand them to the
    # model instead of the messages
    log_library_warnings()
    try:
        return _wait_and_deliver(payload if raw_ok and isinstance(payload, dict) else {})
    except Exception as exc:
        log_failure(f"wake: {type(exc).__name__}: {exc}")
        if settings.debug():
            import traceback  # ~5 ms (linecache, tokenize): `who` imports this module too

            traceback.print_exc()
        return 0


def _wait_and_deliver(payload: dict[str, Any]) -> int:
    until = time.monotonic() + deadline()
    cwd = payload.get("cwd")
    reader = names.resolve(None, cwd=cwd if isinstance(cwd, str) else None)
    claude = claude_process()
    if claude is None:
        return 0  # nothing above us to wake
    session = payload.get("session_id")
    if not isinstance(session, str) or not session:
        session = os.environ.get("CLAUDE_CODE_SESSION_ID") or f"pid-{claude.pid}"
    lock = WaiterLock(session)
    if not lock.acquire(waiter_info(session, reader, claude)):
        return 0  # another waiter already watches this session
    try:
        return _loop(reader, claude, until, None if session.startswith("pid-") else session)
    finally:
        lock.release()


def _own_pane() -> Any:
    """The tmux pane this session runs in, or None (not in tmux, or no tmux here)."""
    if not os.environ.get("TMUX_PANE"):
        return None
    from ...live import status, tmux  # tmux plumbing: only for sessions in tmux

    return status.own_pane() if tmux.available() else None


def _not_now(pane: Any) -> bool:
    """Is the session's screen busy, holding a draft, or asking (``NOT_NOW``)?"""
    if pane is None:
        return False
    from ...live import status

    return status.own_state(pane) in NOT_NOW


def _loop(reader: str, claude: Proc, until: float, session: str | None = None) -> int:
    mailbox = Mailbox()
    store = mailbox.store
    root = paths.mailbox_dir()  # holds are local files, whatever the store
    pane = _own_pane()

    def emit(text: str) -> None:
        # the last look before the cursor moves: output nobody reads is a lost message
        if not is_alive(claude) or not _stdout_open():
            raise _Gone("Claude Code went away")
        _write_all(text)

    checked: Any = object()
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return 0
        if not is_alive(claude) or not _stdout_open():
            return 0
        end = store.end()
        # `cancel` stopped the session: what waited then stays until its next prompt
        mark = hold_mark(reader, root)
        if (end, mark) != checked:  # look for unread only when the bus or the hold moved
            checked = (end, mark)
            unread = mailbox.unread(reader, session=session)
            if unread and (mark is None or any(r["id"] > mark for r in unread)):
                if _not_now(pane):
                    checked = object()  # the screen moves without the bus: look again
                    store.wait_for_change(end, min(PANE_SLICE, left))
                    continue
                if mark is not None:
                    release(reader, root)  # newer mail: it goes in, with what waited
                try:
                    if take(mailbox, reader, emit, how="wake", session=session):
                        return 2
                except _Gone:
                    return 0
        store.wait_for_change(end, min(SLICE, left))
