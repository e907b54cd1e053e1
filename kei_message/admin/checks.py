"""The doctor's checks of what surrounds the bus: the append lock, temp and pid
files left by processes that died, and Claude Code's hook registration.

``doctor`` owns permissions, the bus and cursors, and calls these; both add
to a ``report.Report``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from typing import Any

from ..agents.install import HOOK_PROGRAM
from ..procs import pid_alive
from ..render import neutralise
from ..stores import layout
from .report import Report


# ----------------------------------------------------------------------------- leftovers
def check_leftovers(report: Report, root: str, repair: bool) -> None:
    _check_lock(report, os.path.join(root, layout.LOCK))
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != layout.QUARANTINE]
        for name in files:
            path = os.path.join(dirpath, name)
            for mark in (".tmp.", ".gc.", ".new."):  # write_atomic, gc, a re-created bus
                pid = name.rsplit(mark, 1)[1] if mark in name else ""
                if pid.isdigit() and not pid_alive(int(pid)):
                    _stale(report, path, f"temp file of a writer (pid {pid}) that died", repair)
            if name.endswith(".pid"):
                _check_pid_file(report, path, repair)


def _check_pid_file(report: Report, path: str, repair: bool) -> None:
    """A watcher's or waiter's pid file: stale when no one holds its flock and its pid is gone.

    The flock decides first: a waiter that has just locked its file may not have
    written its pid yet. The file is removed while we hold the lock, so no new
    owner can be holding it at that moment.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # its owner is alive and holds it
        found = _pid_in(_read_small(path))
        if found is not None and pid_alive(found):
            return
        why = "pid file without a pid" if found is None else f"pid file of process {found}, gone"
        _stale(report, path, why + " (its owner died)", repair)
    finally:
        os.close(fd)


def _stale(report: Report, path: str, why: str, repair: bool) -> None:
    f = report.add("leftover", path, why, f"remove it: rm {path}", repairable=True)
    if repair:
        try:
            os.unlink(path)
            f.repaired = "removed"
        except FileNotFoundError:
            f.repaired = "already gone"
        except OSError as exc:
            f.failed = exc.strerror or str(exc)


def _check_lock(report: Report, path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        # A send holds it for milliseconds: only a lock held for a whole second is news.
        deadline = time.monotonic() + 1.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            break
        holders = _lock_holders(os.fstat(fd).st_ino)
        who = ", ".join(f"pid {p} ({_cmdline(p)})" for p in holders) or "another process"
        report.add(
            "lock",
            path,
            f"the append lock has been held for over a second by {who}",
            "a send holds it for milliseconds; if it stays held, that process is stuck: "
            + (f"kill {' '.join(map(str, holders))}" if holders else "find it with lsof"),
        )
    finally:
        os.close(fd)


def _lock_holders(ino: int) -> list[int]:
    """Pids holding a flock on inode ``ino``, from /proc/locks (Linux)."""
    try:
        with open("/proc/locks") as fh:
            text = fh.read()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if (
            len(parts) > 5
            and parts[1] == "FLOCK"
            and parts[5].rsplit(":", 1)[-1] == str(ino)
            and parts[4].isdigit()
            and int(parts[4]) not in out
        ):
            out.append(int(parts[4]))
    return out


def _cmdline(pid: int) -> str:
    raw = _read_small(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
    return neutralise(raw[:80], multiline=False) or "?"


def _read_small(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        return os.read(fd, 4096).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


def _pid_in(text: str) -> int | None:
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        pid = data.get("pid") if isinstance(data, dict) else None
        return pid if isinstance(pid, int) and pid > 0 else None
    first = text.split()[0] if text.split() else ""
    return int(first) if first.isdigit() and int(first) > 0 else None


# ----------------------------------------------------------------------------- hooks
def check_hooks(report: Report, settings: list[str]) -> None:
    seen: dict[tuple[str, str], list[str]] = {}
    for path in settings:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            report.add(
                "hooks", path, f"cannot read it: {exc}", "fix the JSON (Claude Code ignores it too)"
            )
            continue
        hooks = data.get("hooks") if isinstance(data, dict) else None
        if not isinstance(hooks, dict):
            continue
        for event, groups in hooks.items():
            for command in _commands(groups):
                if HOOK_PROGRAM not in command:
                    continue
                key = (str(event), " ".join(command.split()))
                seen.setdefault(key, []).append(path)
                try:
                    words = shlex.split(command)
                except ValueError:
                    words = command.split()
                while words and "=" in words[0] and not words[0].startswith("/"):
                    words.pop(0)  # VAR=value prefixes
                exe = words[0] if words else ""
                if "$" in exe:
                    continue  # ${CLAUDE_PLUGIN_ROOT} and friends: resolved by Claude Code
                ok = os.access(exe, os.X_OK) if "/" in exe else shutil.which(exe) is not None
                if not ok:
                    report.add(
                        "hooks",
                        path,
                        f"{event} hook runs {exe!r}, which is not found or not executable",
                        "reinstall: `kei message install` (or put the venv's bin on PATH)",
                    )
    for (event, command), where in seen.items():
        if len(where) > 1:
            report.add(
                "hooks",
                ", ".join(sorted(set(where))),
                f"{event} hook {command!r} is registered {len(where)} times "
                "(it runs that many times per event)",
                "keep one: `kei message uninstall --project` (or --user), or edit the file",
            )


def _commands(groups: Any) -> Iterator[str]:
    if not isinstance(groups, list):
        return
    for group in groups:
        if not isinstance(group, dict):
            continue
        for hook in group.get("hooks") or []:
            if isinstance(hook, dict) and isinstance(hook.get("command"), str):
                yield hook["command"]


# ----------------------------------------------------------------------------- sessions
def check_reachable(report: Report, store: Any) -> None:
    """Every running Claude Code session has a way to be woken (SPEC §7, issue 14)."""
    from ..agents.waiters import unreachable

    for sess in unreachable(store):
        name = neutralise(str(sess["name"]), multiline=False)
        pane = f", tmux pane {sess['pane']}" if sess["pane"] else ""
        report.add(
            "sessions",
            f"session {name} (Claude Code pid {sess['pid']}{pane})",
            "runs with no wake waiter armed: mail sent to it now waits until its next prompt",
            "send it any prompt (UserPromptSubmit arms the waiter again), or run "
            "`kei message process --watch` to type mail into its tmux pane; check that "
            "`kei message install` (without --no-wake) is in place and the session was "
            "started after it",
        )
