"""Bounded advisory locks, and the lock path in every timeout error.

Every lock here is ``flock(2)`` on a lock file, taken with ``fcntl.flock``:
the append lock (``acquire``/``release`` on ``messages.lock``) and the
per-reader and index locks (``locked``). SPEC §3 names portalocker's lock
for appending; on POSIX portalocker's locker *is* ``fcntl.flock``
(``FlockLocker``), so a lock taken here and one taken by portalocker (or the
``flock`` command, as shell scripts do) on the same file exclude each other,
both ways (tests/test_bus.py checks it against portalocker itself).

Why not call portalocker (issue 19): ``import portalocker.portalocker`` pulls
in ``typing``, ``pathlib`` and ``urllib.parse`` for its type aliases, about
9 ms: a fifth of a ``send``, for a call that is one line of ``fcntl``.
"""

from __future__ import annotations

import fcntl
import os
import time

from .. import settings
from ..errors import MailboxLocked, MailboxUnavailable
from ..paths import open_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import contextmanager
    from typing import Any
else:
    from ..lean import contextmanager


def _wait(try_lock: Any, path: str, timeout: float | None) -> None:
    """Call ``try_lock()`` (True: taken) until it succeeds or ``timeout`` runs out
    (None: ``KEI_MAILBOX_LOCK_TIMEOUT``)."""
    if timeout is None:
        timeout = settings.lock_timeout()
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not try_lock():
        now = time.monotonic()
        if now >= deadline:
            raise MailboxLocked(path, timeout)
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, 0.02)


def _try_flock(fd: int, path: str) -> bool:
    """Take the exclusive lock on ``fd`` if free: True taken, False held by another."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        raise MailboxUnavailable(f"cannot lock {path}: {exc.strerror}") from exc


def acquire(fd: int, path: str, timeout: float | None = None) -> None:
    """Take the exclusive append lock on ``fd``, waiting at most ``timeout`` seconds."""
    if not _try_flock(fd, path):  # uncontended: no closure, no clock
        _wait(lambda: _try_flock(fd, path), path, timeout)


def release(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def locked(path: str, timeout: float | None = None) -> Iterator[int]:
    """Hold an exclusive lock on the lock file ``path`` (created 0600)."""
    fd = open_file(path, os.O_RDWR | os.O_CREAT)
    try:
        if not _try_flock(fd, path):
            _wait(lambda: _try_flock(fd, path), path, timeout)
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases the flock
