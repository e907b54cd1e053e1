"""Where the bus lives: a JSONL file (default) or Redis Streams (SPEC §9).

Both stores fill the small interface in ``base.Store``; everything above it
(mailbox, CLI, hooks, live delivery) is the same whichever is used. Beside
them: ``layout`` (the mailbox dir's files and formats), ``locks``,
``inotify`` (waiting without spinning) and ``names_index``.

Nothing is imported here: the hook's fast path reads ``stores.layout`` alone.
"""

from __future__ import annotations

from .. import settings
from ..errors import UsageError

TYPE_CHECKING = False  # typing costs the hook ~8 ms (issue 6)
if TYPE_CHECKING:
    from .base import Store


def open_store(
    url: str | None = None, root: str | None = None, *, lock_timeout: float | None = None
) -> Store:
    """``url`` (or ``KEI_MAILBOX_URL``) ``redis://…`` picks Redis; else the JSONL bus.

    ``lock_timeout``: the longest wait for a lock (default ``KEI_MAILBOX_LOCK_TIMEOUT``).
    """
    url = url or settings.url()
    if url and not url.startswith("file:"):
        if url.startswith(("redis://", "rediss://", "unix://")):
            from .redis import RedisStore  # only when asked for: the JSONL paths never load it

            return RedisStore(url, lock_timeout=lock_timeout)
        from ..neutral import url as safe  # no password in the message (#15)

        raise UsageError(f"unsupported mailbox URL '{safe(url)}': use redis://HOST:PORT/DB")
    # lazy: the hook's fast path imports stores.layout, and so runs this file, without
    # wanting orjson and the lock machinery that the JSONL store brings
    from .jsonl import JsonlStore

    return JsonlStore(root, lock_timeout=lock_timeout)
