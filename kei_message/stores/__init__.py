"""Where the bus lives: a JSONL file (default) or Redis Streams (SPEC §9).

Both stores fill the small interface in ``base.Store``; everything above it
(mailbox, CLI, hooks, live delivery) is the same whichever is used.
"""

from __future__ import annotations

import os

from .base import Entry, Store

__all__ = ["Entry", "Store", "open_store"]


def open_store(url: str | None = None, root: str | None = None) -> Store:
    """``url`` (or ``KEI_MAILBOX_URL``) ``redis://…`` picks Redis; else the JSONL bus."""
    url = url or os.environ.get("KEI_MAILBOX_URL") or None
    if url and not url.startswith("file:"):
        if url.startswith(("redis://", "rediss://", "unix://")):
            from .redis import RedisStore

            return RedisStore(url)
        from ..errors import UsageError
        from ..neutral import url as safe

        raise UsageError(f"unsupported mailbox URL '{safe(url)}': use redis://HOST:PORT/DB")
    from .jsonl import JsonlStore

    return JsonlStore(root)
