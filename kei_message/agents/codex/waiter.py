"""Wake an idle Codex session: a detached waiter that runs ``codex queue`` (issue 18).

Codex does not run ``async`` hooks (0.169.0), so Claude Code's asyncRewake
waiter (``kei_message.agents.claude.waiter``) has no Codex twin inside the CLI. Instead the
``codex-session-start`` and ``codex-stop`` hooks call ``arm``: when the Codex
process above the hook is interactive (not ``codex exec``) and no waiter
watches its session yet, it starts ``python -m kei_message.agents.codex.waiter``
in a process session of its own (Codex does not wait for it), and returns.

The waiter:

1. takes the one-waiter-per-session lock (``agents.waiters.WaiterLock``: the same
   ``waiters/KEY.pid`` files, so ``who`` and ``doctor`` see it; its
   ``claude_pid`` is the Codex process);
2. waits without spinning (``store.wait_for_change``) until its identity has
   unread messages, checking every second that its Codex process lives;
3. consumes them with ``agents.prompt.take`` (same text, budget and cursor rules as
   the hooks), handing the text to ``codex queue --thread SESSION --message
   TEXT``: the cursor moves only after ``codex queue`` exit 0, and Codex runs
   the queued message as the session's next turn (measured: 6 to 7 s later
   when idle). The UserPromptSubmit hook of that turn finds nothing new;
4. goes back to waiting, and exits when its Codex process is gone.

Codex is known by pid and start time (``procs.Proc``), so a recycled pid
never passes for it. ``codex queue`` runs the same binary as the session
(``/proc/PID/exe``) with the hook's environment (``CODEX_HOME`` and all).
"""

from __future__ import annotations

import os
import time

from ... import procs, settings

TYPE_CHECKING = False  # typing costs the hook ~5 ms (issue 6): arm() runs in Codex's hooks
if TYPE_CHECKING:
    from typing import Any

QUEUE_TIMEOUT = 30.0  # seconds one `codex queue` may take
RETRY_MAX = 60.0  # the longest pause between tries after `codex queue` failed
SLICE = 1.0  # how often the waiter looks at its Codex process while waiting
_NOT_INTERACTIVE = frozenset({"exec", "e", "review", "mcp", "mcp-server", "app-server", "queue"})


def interactive(pid: int) -> bool:
    """Is the Codex process ``pid`` an interactive session (the TUI), not ``codex exec``?"""
    argv = procs.cmdline(pid)
    if not argv:
        return False
    for arg in argv[1:]:
        if arg == "--":
            break
        if not arg.startswith("-"):
            return arg not in _NOT_INTERACTIVE
    return True


def arm(name: str, payload: dict[str, Any]) -> int | None:
    """Start the waiter for this hook's Codex session unless one runs; its pid, or None."""
    from ..waiters import running

    session = payload.get("session_id")
    if not isinstance(session, str) or not session or settings.no_wake():
        return None
    codex = procs.agent_pid("codex")
    if codex is None or not interactive(codex) or running(session):
        return None
    import subprocess  # only now: the hook's usual path stays lean
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kei_message.agents.codex.waiter",
            "--name",
            name,
            "--session",
            session,
            "--pid",
            str(codex),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Codex's end of the hook must not end the waiter
        close_fds=True,  # nor may the waiter hold the hook's pipes open
    )
    return proc.pid


def codex_program(pid: int) -> str:
    """The binary to run ``codex queue`` with: the session's own, else ``codex`` on PATH."""
    import shutil

    exe = procs.exe(pid)
    if exe and os.path.basename(exe).startswith("codex") and os.access(exe, os.X_OK):
        return exe
    return shutil.which("codex") or "codex"


class QueueFailed(Exception):
    pass


def queue(program: str, session: str, text: str) -> None:
    """``codex queue --thread SESSION --message TEXT``; raises QueueFailed unless exit 0."""
    import subprocess

    try:
        done = subprocess.run(
            [program, "queue", "--thread", session, "--message", text],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=QUEUE_TIMEOUT,
            start_new_session=True,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise QueueFailed(f"codex queue: {exc}") from exc
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise QueueFailed(f"codex queue exited {done.returncode}: {' '.join(tail)}")


def run(name: str, session: str, codex_pid: int) -> int:
    """The waiter's life (module docstring); the exit code, 0 unless it could not start."""
    from ...mailbox import Mailbox
    from ..hooklog import log_failure, log_library_warnings
    from ..prompt import take
    from ..waiters import WaiterLock, info

    log_library_warnings()
    st = procs.stat(codex_pid)
    if st is None:
        return 0
    codex = procs.Proc(codex_pid, st.start)
    lock = WaiterLock(session)
    if not lock.acquire(info(session, name, codex, "codex")):
        return 0
    program = codex_program(codex_pid)
    try:
        mailbox = Mailbox()
        store = mailbox.store

        def emit(text: str) -> None:
            if not procs.is_alive(codex):
                raise QueueFailed("Codex went away")
            queue(program, session, text)

        checked: object = object()
        pause = SLICE
        while procs.is_alive(codex):
            end = store.end()
            if end != checked:
                checked = end
                if mailbox.unread(name, session=session):
                    try:
                        take(mailbox, name, emit, agent="codex", how="wake", session=session)
                        pause = SLICE
                    except QueueFailed as exc:
                        # the messages stay unread (the cursor did not move): try again,
                        # less often each time, so a broken `codex queue` is not run every second
                        log_failure(f"codex waiter: {exc}")
                        checked = object()
                        time.sleep(pause)
                        pause = min(pause * 2, RETRY_MAX)
            store.wait_for_change(end, SLICE)
    except Exception as exc:
        log_failure(f"codex waiter: {type(exc).__name__}: {exc}")
    finally:
        lock.release()
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kei_message.agents.codex.waiter")
    parser.add_argument("--name", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--pid", type=int, required=True)
    args = parser.parse_args(argv)
    return run(args.name, args.session, args.pid)


if __name__ == "__main__":
    raise SystemExit(main())
