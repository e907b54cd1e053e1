"""The seam between the mailbox and where its records live."""

from __future__ import annotations

from ..cursors import Cursor, Pos
from ..lean import ntuple
from ..records import Record

TYPE_CHECKING = False  # typing costs every command ~7 ms (issue 19)
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from contextlib import AbstractContextManager
    from typing import Any, NamedTuple, Protocol

    class Entry(NamedTuple):
        pos: Pos
        end: Pos
        record: Record | None
        error: str | None = None

else:
    Protocol = object
    Entry = ntuple("Entry", ["pos", "end", "record", "error"], defaults=(None,), module=__name__)

Entry.__doc__ = """One line (or stream entry) of the bus.

``pos`` is where it starts and is the entry's unique key; ``end`` is the
position right after it, which a cursor stores once it is consumed.
``record`` is None for a corrupt line, and ``error`` says why.
"""


class Store(Protocol):
    """What the mailbox needs from a store. Positions are opaque but ordered by ``order``."""

    name: str  # shown by `kei message path`
    location: str

    def order(self, pos: Pos) -> Any: ...

    def append(self, fields: Record) -> Record:
        """Assign ``id`` and ``ts`` under the append lock, write the whole record, return it."""
        ...

    def scan(
        self, after: Pos | None, until: Pos | None = None, *, hint: tuple[bytes, ...] | None = None
    ) -> Iterator[Entry]:
        """Entries from position ``after`` (None: the start) up to ``until`` (None: the
        current end), oldest first.

        ``hint``: the store may skip (not parse) entries containing none of these
        byte strings; used to find one reader's messages quickly. Skipped entries
        are not yielded.
        """
        ...

    def scan_reverse(self) -> Iterator[Entry]:
        """Entries from the newest back to the oldest."""
        ...

    def seek_id(self, msg_id: int) -> Record | None:
        """The record with id ``msg_id`` found without reading the bus through, or None
        (not proof of absence: the caller then scans)."""
        ...

    def seek_time(self, epoch: float) -> Pos | None:
        """A position before which every entry was written before ``epoch``, found
        without reading the bus through; None when the store cannot tell cheaply."""
        ...

    def end(self) -> Pos:
        """The position after the last complete entry."""
        ...

    def wait_for_change(self, since: Pos, timeout: float) -> bool:
        """Block (without spinning) until the end moves past ``since`` or ``timeout`` runs out."""
        ...

    def reader_lock(self, reader: str) -> AbstractContextManager[None]: ...

    def load_cursor(self, reader: str) -> Cursor | None: ...

    def save_cursor(self, reader: str, cursor: Cursor) -> None:
        """Write ``cursor`` atomically. Callers hold ``reader_lock(reader)``."""
        ...

    def readers(self) -> list[str]:
        """Every reader with a cursor."""
        ...

    def names(self) -> dict[str, dict[str, Any]]:
        """Every name seen on the bus, with ``last_ts``/``last_id``; from an index, not a scan."""
        ...

    def compact(self, before: Pos) -> int:
        """``gc``: move every entry positioned before ``before`` out of the bus into an
        archive, keeping positions (and so cursors) valid. Returns how many moved."""
        ...

    def add_receipts(self, receipts: list[dict[str, Any]], *, keep_time: bool = False) -> None:
        """Append delivery receipts (``layout.RECEIPTS`` describes one); never in the bus.
        ``keep_time``: they were written earlier (``migrate``); file them at their ``ts``."""
        ...

    def receipts(self, after: Any = None) -> tuple[list[dict[str, Any]], Any]:
        """Receipts added after the opaque token ``after`` (None: all), and the next token."""
        ...

    def receipts_from(self, since: float, ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Receipts added at epoch ``since`` or later (a few minutes earlier too: the
        receipts of a record are never older than it), of the messages ``ids`` when
        given; read from there, not from the first receipt, so ``status``, ``show``
        and ``list`` stay flat as receipts pile up."""
        ...

    def session_reads(self, after: Any = None) -> tuple[dict[str, str], Any, bool]:
        """SESSION -> ``ts`` of its last receipt among those after token ``after``
        (``reads_index``), the token to go on from, and whether it started over from
        the first receipt (the receipts were replaced: drop what was folded before)."""
        ...

    def receipts_end(self) -> Any:
        """The token after the newest receipt now: ``receipts(receipts_end())`` is new ones."""
        ...

    def wait_for_receipts(self, after: Any, timeout: float) -> bool:
        """Block (without spinning) until receipts exist past ``after`` or ``timeout`` runs out."""
        ...

    def put_session(self, session_id: str, info: dict[str, Any]) -> None: ...

    def drop_session(self, session_id: str) -> None:
        """Forget a session whose process is gone (``Mailbox.live_sessions``)."""
        ...

    def sessions(self) -> list[dict[str, Any]]: ...
