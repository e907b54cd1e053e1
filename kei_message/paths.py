"""Every path kei-message uses, from one resolver (SPEC §1).

Layout of the mailbox dir (mode 0700, every file 0600)::

    messages.jsonl        the bus: one JSON record per line (stores/jsonl.py)
    messages.lock         append lock; its content is the largest id handed out
    messages.base         bytes moved out of the bus by gc (logical offsets)
    cursors/NAME          one reader's cursor; cursors/.NAME.lock guards it
    sessions/ID.json      registered Claude Code sessions (hooks, live delivery)
    index/names.json      names seen on the bus, kept current by send
    waiters/SESSION.pid   the wake waiter of one session (flock held while it waits)
    live-watch.pid        the running `process --watch`
    archive/              records moved out by `kei message gc`
    quarantine/           what `doctor --repair` copied out
    hook.log              bounded log of hook failures

Temp files are hidden (``.NAME.tmp.PID``), as are reader locks: no name
starts with ``.``, so neither can ever be taken for a reader's cursor.
"""

from __future__ import annotations

import os
import stat

DIR_MODE = 0o700
FILE_MODE = 0o600


def mailbox_dir() -> str:
    env = os.environ.get("KEI_MAILBOX_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(os.path.expanduser("~"), ".claude", "mailbox")


def bus_path(root: str | None = None) -> str:
    return os.path.join(root or mailbox_dir(), "messages.jsonl")


def check_dir(path: str) -> None:
    """Refuse a mailbox dir owned by someone else or writable by group/others."""
    from .errors import UnsafeMailbox

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
    from .errors import MailboxUnavailable

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
    from .errors import MailboxUnavailable, UnsafeMailbox

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
    from .errors import MailboxUnavailable, UnsafeMailbox

    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        import errno

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
    from .errors import MailboxUnavailable

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


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        return default


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
