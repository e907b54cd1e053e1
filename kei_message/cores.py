"""Two counts at once on a machine with a second core: ``side_by_side``.

Building the names index of a million-record bus from nothing is two byte counts
and a regex over ~180 MB, all of it holding the GIL (issue 19): threads would take
turns, a forked child does not. The child runs one half and sends its answer back
as JSON through a pipe; the parent runs the other half meanwhile and merges.

Whenever a fork is not plainly safe or useful (one core, other threads running,
no ``fork``) or the child fails in any way, both halves run here, one after the
other: the answer is the same, only slower.
"""

from __future__ import annotations

import os
import sys

from .leanjson import odumps, oloads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")


def spare_core() -> bool:
    """Whether a forked child could run beside this process: a second core to run on,
    and no other thread (a fork copies a thread's locks half-way)."""
    if not hasattr(os, "fork"):
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    threading = sys.modules.get("threading")
    return cores > 1 and (threading is None or threading.active_count() == 1)


def side_by_side(here: Callable[[], T], there: Callable[[], Any]) -> tuple[T, Any]:
    """``(here(), there())``: ``there`` in a forked child while ``here`` runs in this
    process, when ``spare_core()``; else in turn. ``there``'s answer travels as JSON
    (dicts, lists, strings, numbers): it must not depend on what ``here`` does."""
    if not spare_core():
        return here(), there()
    try:
        rfd, wfd = os.pipe()
    except OSError:
        return here(), there()
    try:
        pid = os.fork()
    except OSError:
        os.close(rfd)
        os.close(wfd)
        return here(), there()
    if pid == 0:  # the child: answer, then end without anything of the parent's
        code = 1
        try:
            os.close(rfd)
            view = memoryview(odumps(there()))
            while view:
                view = view[os.write(wfd, view) :]
            code = 0
        finally:
            os._exit(code)  # no atexit, no flush of the parent's buffers, no traceback
    os.close(wfd)
    try:
        mine = here()
        parts = []
        while True:
            part = os.read(rfd, 1 << 20)
            if not part:
                break
            parts.append(part)
    finally:
        os.close(rfd)  # a child still writing gets EPIPE and ends
        _, status = os.waitpid(pid, 0)
    if status == 0:
        try:
            return mine, oloads(b"".join(parts))
        except ValueError:
            pass
    return mine, there()  # the child failed: the same answer, here
