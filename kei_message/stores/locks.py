"""Bounded advisory locks, and the lock path in every timeout error.

The append lock (``acquire``/``release`` on ``messages.lock``) is
portalocker's, as SPEC §3 says. Its POSIX locker is ``fcntl.flock``, so a
lock taken here and one taken by any other portalocker (or ``flock``) user
on the same file exclude each other. That is also why the per-reader and
index locks (``locked``) call ``fcntl.flock`` directly: the same lock, without
the cost.

Start-up cost (issue 6): ``import portalocker`` runs the package's
``__init__``, which imports ``importlib.metadata`` for its version string
and, when redis is installed, redis and asyncio: about 100 ms before the
first lock. Only ``portalocker.portalocker`` (the lock primitives) is needed,
so ``_portalocker`` loads that module alone; the rest of the package is
loaded on first use of any other ``portalocker`` attribute, so code that
does ``import portalocker`` later still gets the whole package.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .. import settings
from ..errors import MailboxLocked, MailboxUnavailable
from ..paths import open_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_SUBMODULES = frozenset({"constants", "exceptions", "types", "portalocker"})
_locker: Any = None  # (portalocker FlockLocker, flags, AlreadyLocked, LockException)


def _portalocker() -> Any:
    """``portalocker.portalocker``, without running the package ``__init__`` if not loaded yet."""
    core = sys.modules.get("portalocker.portalocker")
    if core is not None:
        return core
    if "portalocker" not in sys.modules:
        import importlib.util

        spec = importlib.util.find_spec("portalocker")
        if spec is not None and spec.loader is not None and spec.submodule_search_locations:
            pkg = importlib.util.module_from_spec(spec)
            loader = spec.loader

            def complete(name: str) -> Any:
                # ``from . import constants`` looks for the attribute first: let the
                # import system load the submodules we use, one by one
                if name.startswith("_") or name in _SUBMODULES:
                    raise AttributeError(name)
                # anything else (Lock, RedisLock, ...): run the real __init__
                pkg.__dict__.pop("__getattr__", None)
                loader.exec_module(pkg)
                return getattr(pkg, name)

            pkg.__getattr__ = complete  # type: ignore[method-assign]
            sys.modules["portalocker"] = pkg
    import portalocker.portalocker as core

    return core


def _append_locker() -> Any:
    global _locker
    if _locker is None:
        core = _portalocker()
        flags = core.constants.LockFlags
        _locker = (
            core.FlockLocker(),
            flags.EXCLUSIVE | flags.NON_BLOCKING,
            core.exceptions.AlreadyLocked,
            core.exceptions.LockException,
        )
    return _locker


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


def _try_append_lock(fd: int, path: str) -> bool:
    locker, flags, already, failed = _locker or _append_locker()
    try:
        locker.lock(fd, flags)
        return True
    except already:
        return False
    except failed as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, BlockingIOError):
            return False
        raise MailboxUnavailable(f"cannot lock {path}: {cause}") from exc


def acquire(fd: int, path: str, timeout: float | None = None) -> None:
    """Take portalocker's exclusive lock on ``fd``, waiting at most ``timeout`` seconds."""
    if not _try_append_lock(fd, path):  # uncontended: no closure, no clock
        _wait(lambda: _try_append_lock(fd, path), path, timeout)


def release(fd: int) -> None:
    (_locker or _append_locker())[0].unlock(fd)


@contextmanager
def locked(path: str, timeout: float | None = None) -> Iterator[int]:
    """Hold an exclusive lock on the lock file ``path`` (created 0600)."""
    fd = open_file(path, os.O_RDWR | os.O_CREAT)

    def try_lock() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as exc:
            raise MailboxUnavailable(f"cannot lock {path}: {exc.strerror}") from exc

    try:
        _wait(try_lock, path, timeout)
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases the flock
