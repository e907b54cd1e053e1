"""Per-reader cursors: how far a reader has consumed, and never backwards.

A cursor is a position in the store (a logical byte offset for the JSONL
bus, a stream id for Redis) plus the keys of the few messages consumed out
of order beyond it (``wait --from``/``--kind`` may take a later message
first). Everything at or before ``pos`` is consumed; so is every key in
``done``. A reader with no cursor yet has ``pos`` None.

On disk a cursor is two lines of text (``stores.layout.encode_cursor``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing and dataclasses cost every command ~10 ms (#19)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    Pos = Any  # int offset (JSONL) or stream id string (Redis); ordered by the store
else:
    Pos = object


class Cursor:
    """Immutable: (``pos``, ``done``), compared and hashed as that pair."""

    __slots__ = ("pos", "done")
    pos: Pos | None
    done: frozenset[Pos]

    def __init__(self, pos: Pos | None = None, done: frozenset[Pos] = frozenset()) -> None:
        object.__setattr__(self, "pos", pos)
        object.__setattr__(self, "done", done)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Cursor:
            return NotImplemented
        assert isinstance(other, Cursor)
        return (self.pos, self.done) == (other.pos, other.done)

    def __hash__(self) -> int:
        return hash((self.pos, self.done))

    def __reduce__(self) -> tuple[type[Cursor], tuple[Pos | None, frozenset[Pos]]]:
        return Cursor, (self.pos, self.done)

    def __repr__(self) -> str:
        return f"Cursor(pos={self.pos!r}, done={self.done!r})"

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
