"""Per-reader cursors: how far a reader has consumed, and never backwards.

A cursor is a position in the store (a logical byte offset for the JSONL
bus, a stream id for Redis) plus the keys of the few messages consumed out
of order beyond it (``wait --from``/``--kind`` may take a later message
first). Everything at or before ``pos`` is consumed; so is every key in
``done``. A reader with no cursor yet has ``pos`` None.

On disk a cursor is two lines of text (``stores.layout.encode_cursor``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Pos = Any  # int offset (JSONL) or stream id string (Redis); ordered by the store


@dataclass(frozen=True)
class Cursor:
    pos: Pos | None = None
    done: frozenset[Pos] = field(default_factory=frozenset)

    def consumed(self, key: Pos, order: Callable[[Pos], Any]) -> bool:
        if self.pos is not None and order(key) < order(self.pos):
            return True
        return key in self.done


def merge(old: Cursor | None, new: Cursor, order: Callable[[Pos], Any]) -> Cursor:
    """The later of two cursors of one reader: positions never move backwards."""
    if old is None or old.pos is None:
        pos = new.pos
    elif new.pos is None:
        pos = old.pos
    else:
        pos = new.pos if order(new.pos) >= order(old.pos) else old.pos
    done: Iterable[Pos] = (old.done if old else frozenset()) | new.done
    if pos is not None:
        limit = order(pos)
        done = (k for k in done if order(k) >= limit)
    return Cursor(pos, frozenset(done))
