"""The one-waiter-per-session files, ``waiters/KEY.pid``: shared by Claude Code's
wake waiter (``agents.claude.waiter``) and Codex's (``agents.codex.waiter``).

Each holds JSON: ``session_id``, ``name``, ``agent`` (when not Claude Code),
``pid`` and ``start`` of the waiter, ``claude_pid`` and ``claude_start`` (the
agent CLI's process, whichever agent), ``since`` (epoch seconds); the waiter
holds an flock on it for its lifetime and removes it on exit. One left behind
by a killed waiter is stale: ``waiters()`` reports it as not alive.
"""

from __future__ import annotations

import fcntl
import os
import time

from .. import names, paths
from ..lean import suppress
from ..leanjson import odumps, oloads
from ..procs import Proc, is_alive, is_claude, stat
from ..stores import layout

TYPE_CHECKING = False  # typing costs `who` ~3 ms (issue 19)
if TYPE_CHECKING:
    from typing import Any


def _folder(root: str | None = None) -> str:
    return os.path.join(root or paths.mailbox_dir(), layout.WAITERS)


def info(session_id: str, name: str, agent: Proc, kind: str | None = None) -> dict[str, Any]:
    """What a waiter writes into its file (module docstring): this process watching
    ``agent`` (the CLI's process) for ``name`` in ``session_id``; ``kind``: codex…"""
    me = stat(os.getpid())
    out: dict[str, Any] = {"session_id": session_id, "name": name}
    if kind:
        out["agent"] = kind
    out.update(
        pid=os.getpid(),
        start=me.start if me else 0,
        claude_pid=agent.pid,
        claude_start=agent.start,
        since=round(time.time(), 3),
    )
    return out


class WaiterLock:
    """The one-waiter-per-session lock: an flock on ``waiters/KEY.pid`` held while waiting."""

    def __init__(self, session_id: str, root: str | None = None) -> None:
        self.path = os.path.join(_folder(root), layout.waiter_file(session_id))
        self.fd: int | None = None

    def acquire(self, info: dict[str, Any]) -> bool:
        """Take the lock and write ``info``; False when another waiter holds it."""
        folder = os.path.dirname(self.path)
        paths.ensure_dir(os.path.dirname(folder))
        os.makedirs(folder, paths.DIR_MODE, exist_ok=True)
        for _ in range(10):
            fd = paths.open_file(self.path, os.O_RDWR | os.O_CREAT)
            # `doctor` probes waiter files with a brief flock of its own: a few tries
            # tell that moment from a waiter that holds the lock for good.
            for attempt in range(5):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == 4:
                        os.close(fd)
                        return False
                    time.sleep(0.05)
            # The holder before us unlinks the file on exit; if it did so after we
            # opened it, we locked a file no one else will find: open the new one.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                os.ftruncate(fd, 0)
                os.pwrite(fd, odumps(info) + b"\n", 0)
                return True
            os.close(fd)
        return False

    def release(self) -> None:
        if self.fd is None:
            return
        with suppress(FileNotFoundError):
            os.unlink(self.path)  # still locked by us: no one can have taken it meanwhile
        os.close(self.fd)
        self.fd = None


def waiters(root: str | None = None) -> list[dict[str, Any]]:
    """Every waiter file: ``session_id``, ``name``, ``pid``, ``alive`` (the waiter runs),
    ``claude_pid``, ``claude_alive``, ``since`` and ``path``.

    ``alive`` False: a stale file from a killed waiter (safe to delete). ``alive``
    but not ``claude_alive``: a stray waiter whose session is gone (it should
    leave within a second or two on its own).
    """
    folder = _folder(root)
    try:
        files = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    out: list[dict[str, Any]] = []
    for fname in files:
        if not fname.endswith(".pid"):
            continue
        path = os.path.join(folder, fname)
        try:
            fd = paths.open_file(path, os.O_RDONLY)
        except (OSError, ValueError):
            continue
        try:
            info = oloads(os.read(fd, 65536))  # who reads these: no orjson import (#19)
        except ValueError:  # orjson.JSONDecodeError
            continue  # empty: a waiter writing its file right now
        finally:
            os.close(fd)
        if not isinstance(info, dict):
            continue
        pid, start = info.get("pid"), info.get("start")
        cpid, cstart = info.get("claude_pid"), info.get("claude_start")
        alive = isinstance(pid, int) and isinstance(start, int) and is_alive(Proc(pid, start))
        claude_alive = (
            isinstance(cpid, int) and isinstance(cstart, int) and is_alive(Proc(cpid, cstart))
        )
        out.append(
            {
                "session_id": info.get("session_id"),
                "name": info.get("name"),
                "pid": pid,
                "alive": alive,
                "claude_pid": cpid,
                "claude_alive": claude_alive,
                "since": info.get("since"),
                "path": path,
            }
        )
    return out


def _root_of(store: Any) -> str | None:
    root = getattr(store, "root", None)
    return root if isinstance(root, str) else None


def armed(store: Any, session_id: str) -> bool:
    """A live waiter watches ``session_id`` (and its Claude Code process is alive)."""
    return any(
        w["session_id"] == session_id and w["alive"] and w["claude_alive"]
        for w in waiters(_root_of(store))
    )


def armed_names(store: Any) -> set[str]:
    """Names that have a live waiter armed: for ``who``."""
    return {
        w["name"]
        for w in waiters(_root_of(store))
        if w["alive"] and w["claude_alive"] and isinstance(w["name"], str)
    }


def armed_sessions(store: Any) -> set[str]:
    """Session ids that have a live waiter armed: for ``who``'s session rows (#16)."""
    return {
        w["session_id"]
        for w in waiters(_root_of(store))
        if w["alive"] and w["claude_alive"] and isinstance(w["session_id"], str)
    }


def running(session_id: str, root: str | None = None) -> bool:
    """A live waiter already holds ``session_id``'s file (or is writing it right now)."""
    path = os.path.join(_folder(root), layout.waiter_file(session_id))
    try:
        fd = paths.open_file(path, os.O_RDONLY)
    except (OSError, ValueError):
        return False
    try:
        info = oloads(os.read(fd, 65536) or b"{}")
    except ValueError:  # orjson.JSONDecodeError
        return True  # being written right now: a waiter is starting
    finally:
        os.close(fd)
    if not isinstance(info, dict):
        return True
    pid, start = info.get("pid"), info.get("start")
    return isinstance(pid, int) and isinstance(start, int) and is_alive(Proc(pid, start))


def unreachable(store: Any) -> list[dict[str, Any]]:
    """Running Claude Code sessions that nothing can wake (SPEC §7 Always reachable).

    A session runs when its registration's Claude Code pid is alive (a ``claude -p``
    run is gone once its turn ends); a Claude Code process is armed when a live
    waiter's ``claude_pid`` is it (``/clear`` gives the same process a new session
    id, so waiters are matched by process, not by id). One row per process, its
    newest registration: ``name``, ``session_id``, ``pid``, ``pane`` (the tmux pane,
    or None: then only its next prompt brings mail in). Other agents' sessions are
    not Claude Code's to wake and are left out.
    """
    armed_pids = {
        w["claude_pid"] for w in waiters(_root_of(store)) if w["alive"] and w["claude_alive"]
    }
    newest: dict[int, dict[str, Any]] = {}
    for sess in store.sessions():
        if not isinstance(sess, dict) or sess.get("agent", "claude") != "claude":
            continue
        pid, name = sess.get("pid"), sess.get("name")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
            continue
        if not isinstance(name, str) or not names.is_valid(name):
            continue
        if pid in armed_pids or not is_claude(pid):
            continue  # armed; or gone, or the pid now runs something else
        old = newest.get(pid)
        if old is None or str(sess.get("last_seen") or "") > str(old.get("last_seen") or ""):
            newest[pid] = sess
    return [
        {
            "name": sess["name"],
            "session_id": sess.get("session_id"),
            "pid": pid,
            "pane": sess.get("tmux_pane") if isinstance(sess.get("tmux_pane"), str) else None,
        }
        for pid, sess in sorted(newest.items(), key=lambda kv: str(kv[1]["name"]))
    ]
