"""Holds: ``holds/NAME`` in the mailbox dir, written by ``kei message cancel NAME`` (#14).

NAME stays stopped: nothing pushes the mail that waited when it was stopped
(ids up to the mark inside the file) into its session: not its wake waiter
(``agents.claude.waiter``), not ``process`` (``live.deliver``). The hold ends
at NAME's next prompt (its UserPromptSubmit hook removes the file), with
``release`` (``cancel NAME TEXT``), or when newer mail arrives. Local files,
whatever the store: the waiter and the panes are on this machine.
"""

from __future__ import annotations

import os

from .. import names, paths
from ..lean import suppress
from . import layout

HOLD_ALL = (1 << 63) - 1  # a hold's mark while the record it is for is being appended


def _hold_path(name: str, root: str | None = None) -> str:
    return os.path.join(root or paths.mailbox_dir(), layout.HOLDS, names.validate(name))


def hold(name: str, mark: int, root: str | None = None) -> None:
    """Hold NAME: mail up to id ``mark`` is not pushed into it until the hold ends."""
    path = _hold_path(name, root)
    folder = os.path.dirname(path)
    paths.ensure_dir(os.path.dirname(folder))
    os.makedirs(folder, paths.DIR_MODE, exist_ok=True)
    paths.write_atomic(path, f"{int(mark)}\n".encode())


def release(name: str, root: str | None = None) -> None:
    with suppress(FileNotFoundError):
        os.unlink(_hold_path(name, root))


def hold_mark(name: str, root: str | None = None) -> int | None:
    """The id up to which NAME is held, or None when it is not."""
    try:
        fd = paths.open_file(_hold_path(name, root), os.O_RDONLY)
    except (OSError, ValueError):
        return None
    try:
        raw = os.read(fd, 64).strip()
    finally:
        os.close(fd)
    return int(raw) if raw.isdigit() else 0
