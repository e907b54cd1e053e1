"""`process --watch`: one watcher per mailbox, delivering as sessions turn idle.

The watcher holds an exclusive flock on ``<mailbox dir>/live-watch.pid`` for
its whole life and writes its pid there. A second watcher finds the lock taken
and refuses; ``process --stop`` reads the pid, checks the lock is really held
(a stale file from a killed watcher is not trusted), sends SIGTERM and waits
for the lock to be released. SIGTERM (and SIGINT) end the loop between passes,
so a pass is never cut half-way through typing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from .. import paths
from ..errors import NothingToReturn, UsageError
from ..mailbox import Mailbox
from ..stores.layout import WATCH_PID
from .deliver import process

log = logging.getLogger("kei_message")


class WatcherRunning(UsageError):
    """Another `process --watch` already runs for this mailbox."""


def pid_path() -> str:
    return os.path.join(paths.mailbox_dir(), WATCH_PID)


def _holder(fd: int) -> int | None:
    """The pid in the file when its lock is held by someone else; None when free."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 32).decode("ascii", "replace").strip()
        return int(raw) if raw.isdigit() else 0
    fcntl.flock(fd, fcntl.LOCK_UN)
    return None


def watch(
    mailbox: Mailbox,
    interval: float = 2.0,
    *,
    on_pass: Callable[[dict[str, int | str]], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run passes of ``process`` every ``interval`` seconds until SIGTERM/SIGINT or ``stop``."""
    paths.ensure_dir(paths.mailbox_dir())
    path = pid_path()
    fd = paths.open_file(path, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.lseek(fd, 0, os.SEEK_SET)
            other = os.read(fd, 32).decode("ascii", "replace").strip()
            raise WatcherRunning(
                f"a watcher already runs (pid {other or '?'}); stop it with "
                "`kei message process --stop`"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        stop = stop or threading.Event()
        old = _trap(stop)
        try:
            while not stop.is_set():
                try:
                    done = process(mailbox)
                except Exception as exc:  # keep watching: one bad pass must not end it
                    log.warning("process pass failed: %s", exc)
                    done = {}
                if on_pass is not None and done:
                    on_pass(done)
                stop.wait(interval)
        finally:
            _untrap(old)
            with contextlib.suppress(OSError):
                os.unlink(path)
    finally:
        os.close(fd)  # releases the flock


def _trap(stop: threading.Event) -> dict[int, object]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old: dict[int, object] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        old[sig] = signal.signal(sig, handler)
    return old


def _untrap(old: dict[int, object]) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)  # type: ignore[arg-type]


def stop_watcher(timeout: float = 10.0) -> int:
    """SIGTERM the running watcher and wait until it is gone; return its pid.

    Raises NothingToReturn (exit 1) when no watcher runs.
    """
    path = pid_path()
    try:
        fd = paths.open_file(path, os.O_RDWR)
    except FileNotFoundError:
        raise NothingToReturn("no watcher is running") from None
    try:
        pid = _holder(fd)
        if pid is None:
            raise NothingToReturn("no watcher is running (stale pid file)")
        if pid <= 0:
            raise NothingToReturn("the watcher's pid file is unreadable")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _holder(fd) is not None:
            if time.monotonic() >= deadline:
                raise UsageError(f"watcher pid {pid} did not stop within {timeout:g}s")
            time.sleep(0.05)
        return pid
    finally:
        os.close(fd)
