"""``hook.log``: where a hook says what went wrong, since it must print nothing.

Claude Code shows a hook's stderr to the model (or, with exit 2, blocks on it),
so every hook event, and the wake waiter, fails open and silently: one line
per failure is appended here instead, ``STAMP EVENT pid=PID: TEXT``. The file
is bounded: past ``LOG_MAX`` bytes it becomes ``hook.log.1`` (one old
generation, bounded too). Library warnings (a corrupt line skipped, ...) come
here as well. Only ``os`` at import time (issue 6).
"""

from __future__ import annotations

import os
import time

from ..paths import ensure_dir, mailbox_dir, open_file
from ..stores.layout import HOOK_LOG

LOG_MAX = 256 * 1024

event = "?"  # the hook event being handled, named in every line


def log_path() -> str:
    return os.path.join(mailbox_dir(), HOOK_LOG)


def log_failure(message: str) -> None:
    """Append one line to the bounded hook log; never raise."""
    try:
        path = log_path()
        # created 0700 like any first use; an unsafe dir is still logged into (it is the
        # user's own), while a foreign or symlinked one fails at open_file below
        ensure_dir(os.path.dirname(path), check=False)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = " ".join(message.split())[:2000]
        line = f"{stamp} {event} pid={os.getpid()}: {text}\n".encode("utf-8", "replace")
        try:
            if os.lstat(path).st_size + len(line) > LOG_MAX:
                os.replace(path, path + ".1")  # keep one old generation, bounded too
        except FileNotFoundError:
            pass
        fd = open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except Exception:
        pass


def log_library_warnings() -> None:
    """Send the library's warnings (a corrupt line skipped, ...) to the hook log."""
    import logging  # the full path only: the fast path logs nothing

    class ToHookLog(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log_failure(f"{record.levelname.lower()}: {record.getMessage()}")

    logger = logging.getLogger("kei_message")
    # only the log: under `kei message hook` the CLI's stderr handler is there too
    logger.handlers = [ToHookLog(logging.WARNING)]
    logger.propagate = False  # never let logging's last resort print to stderr


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
