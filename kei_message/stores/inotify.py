"""Waiting for the JSONL bus to grow, without spinning (`wait`, `tail -f`, the wake hook).

On Linux an inotify watch on the mailbox dir wakes the waiter as soon as the
bus is written (``IN_MODIFY``/``IN_CLOSE_WRITE`` on ``messages.jsonl``) or
replaced (``IN_CREATE``/``IN_MOVED_TO``: gc renames a new file over it, and
a watch on the old file would never fire again). One watch on the dir covers
both, and works before the bus exists. inotify is reached through ctypes, so
nothing is installed for it. Elsewhere, or when inotify is unavailable (no
watches left, an odd filesystem), a gentle poll: one ``stat`` every 50 ms,
and the bus is only read when its size or inode changed.

Either way the waiter also re-checks every few seconds, so a missed event
(network filesystems do not report remote writes) costs latency, not a hang.
"""

from __future__ import annotations

import os
import select
import sys
import time

from .. import settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

POLL = 0.05  # seconds between stats when there is no inotify
RECHECK = 2.0  # seconds: re-read the end even without an event

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT_HEAD = 16  # struct inotify_event: int wd; uint32 mask, cookie, len; char name[]


class Watch:
    """An inotify watch on one directory, reporting writes to one file name in it."""

    def __init__(self, directory: str, name: str) -> None:
        import ctypes  # only where a waiter waits: not worth its import for every command

        self.name = name.encode()
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd: int = fd
        mask = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO
        if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify_add_watch({directory}) failed")

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when our file was touched."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return False
            if self._drain():
                return True

    def _drain(self) -> bool:
        return any(name == self.name for _wd, name in events(self.fd))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def events(fd: int) -> list[tuple[int, bytes]]:
    """Every event queued on the inotify ``fd`` (non-blocking): (watch descriptor, name)."""
    out: list[tuple[int, bytes]] = []
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return out
        if not data:
            return out
        i = 0
        while i + _EVENT_HEAD <= len(data):
            wd = int.from_bytes(data[i : i + 4], sys.byteorder, signed=True)
            length = int.from_bytes(data[i + 12 : i + 16], sys.byteorder)
            out.append((wd, data[i + _EVENT_HEAD : i + _EVENT_HEAD + length].rstrip(b"\0")))
            i += _EVENT_HEAD + length


def watch(path: str) -> Watch | None:
    """An inotify watch for ``path``, or None where inotify is not available."""
    if not sys.platform.startswith("linux") or settings.no_inotify():
        return None
    try:
        return Watch(os.path.dirname(path) or ".", os.path.basename(path))
    except (OSError, AttributeError):  # no inotify symbols, no watches left, ...
        return None


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size


def wait_for_growth(store: Any, since: int, timeout: float) -> bool:
    """True once the bus (``store.location``) ends past logical position ``since``."""
    deadline = time.monotonic() + max(0.0, timeout)
    path = store.location
    store.prepare()
    # The watch goes in before the first look, so an append that lands between
    # the look and the wait still wakes us.
    w = watch(path)
    try:
        while True:
            if store.end() > since:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if w is not None:
                w.wait(min(left, RECHECK))
                continue
            stamp = _stamp(path)
            until = time.monotonic() + min(left, RECHECK)
            while time.monotonic() < until:
                time.sleep(min(POLL, max(0.0, until - time.monotonic())))
                if _stamp(path) != stamp:
                    break
    finally:
        if w is not None:
            w.close()
