"""The hook's fast path: "nothing unread", answered with a few system calls (issue 6).

Before every prompt the UserPromptSubmit hook asks "anything for R?", and
almost always the answer is no. Answering that through the mailbox means
importing orjson, portalocker, dataclasses and the stores: several times the
interpreter's own start-up. This module answers it with ``os`` alone, and
only when it can be *sure*:

- R has a cursor (``cursors/R``, read with ``layout.cursor_pos``);
- the bus file and ``messages.base`` give the logical end (JSONL store, §1);
- no complete line after the cursor contains ``"R"`` or ``"all"``: exactly
  the hint the mailbox's own scan uses to skip lines, so if no line matches,
  the full path would find nothing either.

Anything else (no cursor, a line that may be for R, more than ``SCAN_LIMIT``
bytes to look at, a Redis URL, an unsafe dir) says "not sure" and the hook
takes the full path, which also moves the cursor on. Nothing here writes
to the bus or the cursor; ``register`` writes the session file with
``layout.session_bytes``, as ``JsonlStore.put_session`` does.
"""

from __future__ import annotations

import os

from ... import settings
from ...paths import ensure_subdir, write_atomic
from ...stores import layout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SCAN_LIMIT = 1 << 20  # bytes after the cursor worth a look; more goes the full way
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _safe_dir(path: str) -> bool:
    """Ours, a directory, not writable by group or others (SPEC §1)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (
        st.st_mode & 0o170000 == 0o040000 and st.st_uid == os.geteuid() and not (st.st_mode & 0o022)
    )


def _read(path: str, limit: int = 4096) -> bytes | None:
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        return None
    try:
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def _cursor_pos(root: str, reader: str) -> int | None:
    data = _read(os.path.join(root, layout.CURSORS, reader))
    return None if data is None else layout.cursor_pos(data)


def _base(root: str, ino: int) -> int | None:
    path = os.path.join(root, layout.BASE)
    data = _read(path)
    if data is None:
        return 0 if not os.path.lexists(path) else None
    return layout.parse_base(data, ino)


def nothing_unread(root: str, reader: str) -> bool:
    """True only when ``reader`` surely has nothing unread in the JSONL bus under ``root``."""
    if not settings.jsonl_store() or not _safe_dir(root):
        return False
    pos = _cursor_pos(root, reader)
    if pos is None:
        return False
    try:
        fd = os.open(layout.bus_path(root), _FLAGS)
    except FileNotFoundError:
        return True  # no bus, nothing for anyone
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        base = _base(root, st.st_ino)
        if base is None:
            return False  # gc is swapping the file right now
        start = max(pos - base, 0)
        if start >= st.st_size:
            return True
        if st.st_size - start > SCAN_LIMIT:
            return False
        chunk = os.pread(fd, st.st_size - start, start)
    except OSError:
        return False
    finally:
        os.close(fd)
    region = chunk[: chunk.rfind(b"\n") + 1]  # a partial last line is nobody's yet
    return b'"' + reader.encode() + b'"' not in region and b'"all"' not in region


def register(root: str, info: dict[str, Any]) -> None:
    """Write ``sessions/ID.json`` as ``JsonlStore.put_session`` does, without orjson."""
    folder = ensure_subdir(root, layout.SESSIONS)
    path = os.path.join(folder, layout.session_file(str(info["session_id"])))
    write_atomic(path, layout.session_bytes(info))


def release_hold(root: str, name: str) -> None:
    """The user's next prompt ends a ``cancel`` hold (``holds/NAME``): one unlink, no more."""
    try:
        os.unlink(os.path.join(root, layout.HOLDS, name))
    except OSError:
        pass  # none, the usual case
