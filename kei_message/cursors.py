"""Per-reader cursors: how far a reader has consumed, and never backwards.

A cursor is a position in the store (a logical byte offset for the JSONL
bus, a stream id for Redis) plus the keys of the few messages consumed out
of order beyond it (``wait --from``/``--kind`` may take a later message
first). Everything at or before ``pos`` is consumed; so is every key in
``done``. A reader with no cursor yet has ``pos`` None.

On disk (JSONL store) a cursor is two lines of text: the position, then the
``done`` keys separated by spaces. Text, so the hook's fast path reads it
without a JSON parser.
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


def encode(cursor: Cursor) -> bytes:
    done = " ".join(str(k) for k in sorted(cursor.done, key=str))
    return f"{'' if cursor.pos is None else cursor.pos}\n{done}\n".encode()


def decode(data: bytes, convert: Callable[[str], Pos]) -> Cursor:
    """Parse a cursor file; raises ValueError when it is garbage."""
    text = data.decode("ascii")
    lines = text.split("\n")
    if not text.endswith("\n") or len(lines) != 3:
        raise ValueError("cursor file is not two lines")
    pos = convert(lines[0]) if lines[0] else None
    done = frozenset(convert(k) for k in lines[1].split())
    return Cursor(pos, done)
