"""Driving tmux: argument lists only (never a shell), one server by its socket path,
one pane by its id (``%N``), never by a session-name prefix.

Why each choice:

- ``-S SOCKET``: the socket comes from the session's own ``$TMUX`` (its first
  field), so we talk to the server the session runs in, not whichever server
  ``$TMUX`` of the sender points at.
- ``-t %N``: a pane id is exact. ``-t NAME`` would match a session whose name
  merely starts with NAME (``front`` matches ``frontend``).
- Text goes in through a private paste buffer pasted with ``paste-buffer -p -r``:
  ``-p`` wraps it in bracketed-paste codes (the application asked for them), so
  newlines arrive as text; plain ``paste-buffer`` turns every LF into CR, which a
  TUI reads as Enter, submitting each line as its own prompt. ``-r`` keeps LF as
  LF for an application that did not ask for bracketed paste. ``-d`` deletes the
  buffer, so nothing is left in the user's buffer list.
- Key names (``Escape``, ``Enter``, ``1``) go through ``send-keys`` as separate
  arguments; text never does (it is pasted), so ``Enter`` or ``C-c`` in it stay text.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import subprocess
import uuid
from typing import NamedTuple

log = logging.getLogger("kei_message")

TIMEOUT = 2.0  # every tmux call is bounded: `who` must not hang on a stuck server


class TmuxError(Exception):
    """A tmux command failed (the server or pane is gone, or tmux is missing)."""


class Pane(NamedTuple):
    socket: str  # the server's socket path
    pane: str  # the pane id, "%N"


class PaneInfo(NamedTuple):
    pane: str
    pid: int
    in_mode: bool
    dead: bool
    command: str
    path: str
    width: int


def available() -> bool:
    return shutil.which("tmux") is not None


def socket_from_env(tmux_env: str | None) -> str | None:
    """The socket path of a ``$TMUX`` value (``socket,pid,session``)."""
    if not tmux_env:
        return None
    sock = tmux_env.split(",", 1)[0]
    return sock or None


def run(socket: str, *args: str, data: bytes | None = None, timeout: float = TIMEOUT) -> str:
    """Run ``tmux -S socket ARGS...`` and return its stdout; raise TmuxError on failure."""
    argv = ["tmux", "-S", socket, *args]
    try:
        proc = subprocess.run(
            argv,
            input=data,
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=None if data is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise TmuxError("tmux is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise TmuxError(f"tmux {args[0]} timed out after {timeout:g}s") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise TmuxError(err or f"tmux {args[0]} failed with {proc.returncode}")
    return proc.stdout.decode("utf-8", "replace")


_FIELDS = (
    "pane_id",
    "pane_pid",
    "pane_in_mode",
    "pane_dead",
    "pane_current_command",
    "pane_width",
    "pane_current_path",
)
_INFO = "\t".join("#{" + f + "}" for f in _FIELDS)


def _parse_info(line: str) -> PaneInfo | None:
    parts = line.split("\t", 6)
    if len(parts) != 7 or not parts[0].startswith("%"):
        return None
    pane, pid, mode, dead, cmd, width, path = parts
    return PaneInfo(
        pane,
        int(pid) if pid.isdigit() else 0,
        mode not in ("", "0"),
        dead not in ("", "0"),
        cmd,
        path,
        int(width) if width.isdigit() else 0,
    )


def info(p: Pane) -> PaneInfo | None:
    """The pane's pid, mode and command; None when the pane or its server is gone."""
    try:
        out = run(p.socket, "display-message", "-p", "-t", p.pane, _INFO)
    except TmuxError:
        return None
    got = _parse_info(out.rstrip("\n"))
    # display-message on a vanished pane id can fall back to the current pane
    return got if got is not None and got.pane == p.pane else None


def capture(p: Pane) -> str:
    """The visible screen of the pane as plain text (no colours)."""
    return run(p.socket, "capture-pane", "-p", "-t", p.pane)


def paste(p: Pane, text: str) -> None:
    """Type ``text`` into the pane as one bracketed paste (newlines stay text).

    Whatever the caller passes, no control character but a newline goes in
    (``neutral.pane``): an ESC in the text could end the paste (``ESC[201~``)
    and press keys after it (#15).
    """
    from ..neutral import pane

    buf = f"kei-{uuid.uuid4().hex[:12]}"
    run(p.socket, "load-buffer", "-b", buf, "-", data=pane(text).encode("utf-8", "replace"))
    try:
        run(p.socket, "paste-buffer", "-p", "-r", "-d", "-b", buf, "-t", p.pane)
    except TmuxError:
        with contextlib.suppress(TmuxError):
            run(p.socket, "delete-buffer", "-b", buf)
        raise


def keys(p: Pane, *names: str) -> None:
    """Press named keys (``Enter``, ``Escape``, ``1``, ``C-u``) in the pane."""
    run(p.socket, "send-keys", "-t", p.pane, *names)


def list_panes(socket: str) -> list[PaneInfo]:
    """Every pane of the server at ``socket`` (empty when no server answers)."""
    try:
        out = run(socket, "list-panes", "-a", "-F", _INFO)
    except TmuxError:
        return []
    return [i for i in (_parse_info(line) for line in out.splitlines()) if i is not None]


def socket_dirs() -> list[str]:
    """Where this user's tmux servers put their sockets: ``$TMUX_TMPDIR`` (else /tmp)/tmux-UID."""
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return [os.path.join(base, f"tmux-{os.geteuid()}")]


def sockets() -> list[str]:
    """The sockets of this user's tmux servers (ours only, sockets only)."""
    found: list[str] = []
    for folder in socket_dirs():
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISSOCK(st.st_mode) and st.st_uid == os.geteuid():
                found.append(path)
    return found
