"""Telling ``top`` and ``web`` that something changed, without a polling loop.

JSONL store: one inotify instance (through ctypes, as ``waiting`` does) with a
watch on the mailbox dir (the bus written or replaced by gc) and on its
``cursors/``, ``sessions/`` and ``waiters/`` folders (a message read, a
session registered or gone, a waiter armed). Hidden files there are lock and
temp files: ignored, so our own reads never wake us. The names index
(``index/``), which ``who`` itself rewrites, is not watched, or the view
would wake itself forever.

Redis store (or no inotify): the store's own ``wait_for_change`` (``XREAD
BLOCK`` on the stream; a stat poll for JSONL without inotify), so a send
wakes the view at once. Cursors and sessions there are seen by the callers'
slow safety refresh, which also catches pane states (a screen changes
without any file changing).
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .. import settings
from ..stores.inotify import (
    IN_CLOEXEC,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_MODIFY,
    IN_MOVED_TO,
    IN_NONBLOCK,
    events,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..mailbox import Mailbox

IN_DELETE = 0x00000200
IN_MOVED_FROM = 0x00000040
SUBDIRS = ("cursors", "sessions", "waiters")
BUS = "messages.jsonl"
SETTLE = 0.05  # seconds: a send touches the bus, the index and a cursor; one refresh for all


class DirWatch:
    """inotify on the mailbox dir and its reader/session/waiter folders."""

    def __init__(self, root: str) -> None:
        import ctypes

        self.root = root
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd: int = fd
        self._wds: dict[int, str] = {}
        mask = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO
        if not self._add(root, mask):
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify_add_watch({root}) failed")
        for sub in SUBDIRS:
            self._add_sub(sub)

    def _add(self, path: str, mask: int) -> bool:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            return False
        self._wds[wd] = os.path.basename(path) if path != self.root else ""
        return True

    def _add_sub(self, sub: str) -> None:
        mask = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM
        self._add(os.path.join(self.root, sub), mask)  # absent: added when created

    def wait(self, timeout: float, wake: int | None = None) -> bool:
        """Block up to ``timeout`` seconds (or until ``wake`` is readable); True when
        something we watch changed."""
        deadline = time.monotonic() + timeout
        fds = [self.fd] if wake is None else [self.fd, wake]
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select(fds, [], [], left)
            if self.fd not in ready:
                return False
            if self._drain():
                return True

    def _drain(self) -> bool:
        hit = False
        for wd, raw in events(self.fd):
            name = os.fsdecode(raw)
            where = self._wds.get(wd)
            if where is None or name.startswith("."):
                continue
            if where == "":
                if name in SUBDIRS:
                    self._add_sub(name)
                    hit = True
                elif name == BUS:
                    hit = True
            else:
                hit = True
        return hit

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _dir_watch(mb: Mailbox) -> DirWatch | None:
    root = getattr(mb.store, "root", None)
    if (
        mb.store.name != "jsonl"
        or not isinstance(root, str)
        or not sys.platform.startswith("linux")
    ):
        return None
    if settings.no_inotify():
        return None
    try:
        prepare = getattr(mb.store, "prepare", None)
        if callable(prepare):
            prepare()  # the dir must exist to be watched
        return DirWatch(root)
    except (OSError, AttributeError):
        return None


def _own_store(mb: Mailbox) -> Any:
    """A second handle on the same store for the watch thread: a store keeps open
    descriptors and is not shared between threads."""
    from ..stores import open_store

    url = getattr(mb.store, "url", None)
    if mb.store.name != "jsonl" and isinstance(url, str):
        return open_store(url)
    from ..stores.jsonl import JsonlStore

    return JsonlStore(getattr(mb.store, "root", None))


class Watcher:
    """A background thread calling ``on_change()`` each time the mailbox changes.

    ``stop()`` ends it: at once with inotify, within a second on a blocking store read.
    """

    def __init__(self, mb: Mailbox, on_change: Callable[[], None]) -> None:
        self.mb = mb
        self.on_change = on_change
        self._stop = threading.Event()
        self._dir = _dir_watch(mb)
        self._wake_r, self._wake_w = os.pipe()
        self._closing = threading.Lock()
        self._closed = False
        self._store: Any = None
        self._since: Any = None
        self._thread = threading.Thread(target=self._run, name="kei-view-watch", daemon=True)

    def start(self) -> Watcher:
        """Start watching: every change after this returns is reported."""
        if self._dir is None:
            # where the bus ends now, read here and not in the thread: a send
            # between start() and the thread's first look must not be missed
            self._store = _own_store(self.mb)
            self._since = self._store.end()
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._closing:
            self._stop.set()
            if not self._closed:
                os.write(self._wake_w, b"x")
        # inotify wakes at once; a blocking store read ends within its second,
        # in a daemon thread on its own store handle: no need to wait for it
        self._thread.join(timeout=5 if self._dir is not None else 0.1)
        if not self._thread.is_alive():
            self._close()

    def _close(self) -> None:
        with self._closing:  # stop() or the thread's own end, whichever is last
            if self._closed:
                return
            self._closed = True
            if self._dir is not None:
                self._dir.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _run(self) -> None:
        store, since = self._store, self._since
        while not self._stop.is_set():
            try:
                if self._dir is not None:
                    changed = self._dir.wait(3600.0, self._wake_r)
                    if changed:
                        self._dir.wait(SETTLE, self._wake_r)  # let the rest of the burst land
                else:
                    changed = store.wait_for_change(since, 1.0)
                    if changed:
                        since = store.end()
            except Exception:  # a store hiccup: the callers' safety refresh goes on
                self._stop.wait(1.0)
                continue
            if changed and not self._stop.is_set():
                self.on_change()
        self._close()
