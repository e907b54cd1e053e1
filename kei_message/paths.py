"""The mailbox dir, and safe file operations inside it (SPEC §1).

``mailbox_dir`` is the one function every path starts from
(``KEI_MAILBOX_DIR``, else ``~/.claude/mailbox``; shown by ``kei message
path``). What lives in it, and in which format, is ``stores/layout.py``'s.
The rest refuses what is not ours: a dir owned by someone else or writable by
group or others, a symlink where a file should be; and writes atomically.
Only ``os`` and ``stat`` at import time: the hook runs this before every prompt.
"""

from __future__ import annotations

import errno
import os
import stat

from . import settings
from .errors import MailboxUnavailable, UnsafeMailbox

DIR_MODE = 0o700
FILE_MODE = 0o600


def mailbox_dir() -> str:
    env = settings.mailbox_dir()
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(os.path.expanduser("~"), ".claude", "mailbox")


def check_dir(path: str) -> None:
    """Refuse a mailbox dir owned by someone else or writable by group/others."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeMailbox(f"mailbox path {path} is not a directory")
    if st.st_uid != os.geteuid():
        raise UnsafeMailbox(
            f"mailbox dir {path} is owned by uid {st.st_uid}, not you; refusing to use it"
        )
    if st.st_mode & 0o022:
        raise UnsafeMailbox(
            f"mailbox dir {path} is writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):o}); fix with: chmod 700 {path}"
        )


def ensure_dir(path: str, *, check: bool = True) -> str:
    """Create ``path`` (0700, whatever the umask) if missing, then check it."""
    try:
        os.makedirs(path, mode=DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise MailboxUnavailable(f"cannot create mailbox dir {path}: {exc.strerror}") from exc
    else:
        # makedirs applies the umask; a new dir is ours, so set the bits we promised.
        os.chmod(path, DIR_MODE)
    if check:
        check_dir(path)
    return path


def ensure_subdir(root: str, sub: str) -> str:
    """``root/sub``, created 0700 (whatever the umask) and checked: a real dir of ours.

    A symlinked subdir would lead cursors or sessions outside the mailbox dir.
    """
    path = os.path.join(root, sub)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise MailboxUnavailable(f"cannot create {path}: {exc.strerror}") from exc
    else:
        os.chmod(path, DIR_MODE)  # mkdir applies the umask (0o277 gave 0500)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise UnsafeMailbox(f"{path} is not a directory of yours; refusing to use it")
    return path


def open_file(path: str, flags: int) -> int:
    """``os.open`` that never follows a symlink and creates files 0600."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeMailbox(f"{path} is a symlink; refusing to open it") from exc
        if exc.errno == errno.ENOENT:
            raise
        raise MailboxUnavailable(f"cannot open {path}: {exc.strerror}") from exc
    if flags & os.O_CREAT:
        try:
            st = os.fstat(fd)
            if stat.S_IMODE(st.st_mode) != FILE_MODE and st.st_uid == os.geteuid():
                os.fchmod(fd, FILE_MODE)
        except OSError:
            pass
    return fd


def write_atomic(path: str, data: bytes, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``data``: write a temp file beside it, then rename."""
    # hidden (".NAME.tmp.PID"): no name starts with ".", so a temp file is never a cursor
    head, tail = os.path.split(path)
    tmp = os.path.join(head, f".{tail}.tmp.{os.getpid()}")
    try:
        fd = open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, MailboxUnavailable):
            raise
        raise MailboxUnavailable(f"cannot write {path}: {exc.strerror}") from exc
