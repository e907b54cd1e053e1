"""Bounded advisory locks (portalocker), and the lock path in every timeout error.

portalocker's POSIX locker is ``fcntl.flock``, so a lock taken here and one
taken by any other portalocker user on the same file exclude each other.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .paths import env_float, open_file

DEFAULT_TIMEOUT = 10.0


def lock_timeout() -> float:
    return max(0.0, env_float("KEI_MAILBOX_LOCK_TIMEOUT", DEFAULT_TIMEOUT))


def acquire(fd: int, path: str, timeout: float | None = None) -> None:
    """Take an exclusive lock on ``fd``, waiting at most ``timeout`` seconds."""
    import portalocker

    from .errors import MailboxLocked, MailboxUnavailable

    if timeout is None:
        timeout = lock_timeout()
    flags = portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            portalocker.lock(fd, flags)
            return
        except portalocker.exceptions.AlreadyLocked:
            pass
        except portalocker.exceptions.LockException as exc:
            cause = exc.__cause__ or exc
            if not isinstance(cause, BlockingIOError):
                raise MailboxUnavailable(f"cannot lock {path}: {cause}") from exc
        now = time.monotonic()
        if now >= deadline:
            raise MailboxLocked(path, timeout)
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, 0.02)


def release(fd: int) -> None:
    import portalocker

    portalocker.unlock(fd)


@contextmanager
def locked(path: str, timeout: float | None = None) -> Iterator[int]:
    """Hold an exclusive lock on the lock file ``path`` (created 0600)."""
    fd = open_file(path, os.O_RDWR | os.O_CREAT)
    try:
        acquire(fd, path, timeout)
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases the flock
