"""Each session's last read, ``who``'s LAST READ column, kept current incrementally (#19).

``index/reads-HASH.json`` (HASH: a CRC-32 of the store's location) holds::

    {"v": 1, "store": LOCATION, "token": T, "reads": {SESSION: TS}}

the ``ts`` of the last receipt (SPEC §12) written by every session that has one,
among the receipts before the token ``T`` (the inode, byte offset and first
bytes' CRC of ``receipts.jsonl``, a stream id on Redis). Receipts are written at
every delivery and never removed, so reading them all for each ``who`` grew
without end (6 s at a million receipts); reading this catches up on the
receipts added since ``T`` (usually none or a few) and saves it again. What is
saved is what the receipts before its token say, so two ``who`` saving at once
cannot lose anything: the one that saved the older token is caught up again
next time. (The last receipt, not the greatest ``ts``: a peer's receipt dated in
the future does not stay a session's last read.) At most ``MAX_SESSIONS`` sessions are kept
(the most recent reads). A different store, or receipts that went back (a
replaced file, a flushed stream), start it over.
"""

from __future__ import annotations

import os

from .. import paths
from ..lean import suppress
from ..leanjson import odumps, oloads
from .layout import INDEX, READS_INDEX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VERSION = 1
MAX_SESSIONS = 2000


def _load(path: str) -> dict[str, Any]:
    try:
        fd = paths.open_file(path, os.O_RDONLY)
    except (OSError, ValueError):
        return {}
    try:
        data = oloads(os.read(fd, 16 << 20))
    except ValueError:  # orjson.JSONDecodeError
        return {}
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("v") != VERSION:
        return {}
    if not isinstance(data.get("reads"), dict):
        return {}
    return data


def _file(location: str) -> str:
    """One file per store: a machine may use the JSONL bus and a Redis one by turns
    (``KEI_MAILBOX_URL``), and each keeps its own place."""
    from zlib import crc32

    head, dot, tail = READS_INDEX.rpartition(".")
    return f"{head}-{crc32(location.encode()):08x}{dot}{tail}"


def last_reads(store: Any) -> dict[str, str]:
    """SESSION ID -> ``ts`` of its last receipt, caught up with the store."""
    path = os.path.join(store.prepare(INDEX), _file(store.location))
    data = _load(path)
    token = data.get("token") if data.get("store") == store.location else None
    reads: dict[str, str] = data.get("reads", {}) if token is not None else {}
    more, new_token, fresh = store.session_reads(token)
    if fresh:
        reads = {}
    elif new_token == token:
        return reads
    token = new_token
    reads.update(more)  # the receipts after the token were written later
    if len(reads) > MAX_SESSIONS:
        keep = sorted(reads, key=reads.__getitem__)[-MAX_SESSIONS:]
        reads = {k: reads[k] for k in keep}
    with suppress(Exception):  # not saved: caught up again next time
        paths.write_atomic(
            path, odumps({"v": VERSION, "store": store.location, "token": token, "reads": reads})
        )
    return reads
