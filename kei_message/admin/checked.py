"""What ``doctor`` has already checked of the bus: ``index/checked.json`` (#19).

Parsing every line is what made ``doctor`` slow on a big bus (2 s at a million
records). Lines are only ever appended (gc starts a new file with a new base,
``doctor --repair`` blanks lines in place), so what was checked once stays
checked as long as its bytes are the same. After each check ``doctor`` saves
where its parsed stretch starts and ends, its counts, and a CRC-32 of every byte
of the bus before that end. The next run reads those bytes once at disk speed
(no parsing; ~0.1 s for a million records) to confirm them, then parses only
what was appended since. Anything else (another file, another base, bytes
changed in place, a shorter bus) and the check starts over.

A bus ``doctor`` has never seen is parsed from its last ``TAIL_LINES`` lines at
most (the cost of parsing is per line: a million short records take 2 s, a few
thousand long ones a fraction of that); the lines before are counted, not
parsed, and the report says so (``doctor --full`` and ``--repair`` parse them
all). Readers skip a corrupt line wherever it is, so the stretch a plain
``doctor`` leaves unparsed hides nothing from them; it only goes unreported
until ``--full``.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from .. import paths
from ..stores import layout

VERSION = 1
TAIL_LINES = 50_000  # lines a first plain `doctor` parses at most (~0.1 s)
CHUNK = 1 << 20
MAX_CORRUPT = 1000  # more corrupt lines than this: nothing saved, the next run parses again


@dataclass
class Checked:
    """The bus as one ``doctor`` run left it (logical offsets, like every position)."""

    ino: int
    base: int
    start: int  # where the parsed lines begin (``base`` when all were parsed)
    end: int  # where they end: a line boundary
    crc: int  # CRC-32 of the file's bytes before ``end``
    lines: int  # lines before ``end``
    records: int  # records among the parsed lines
    blank: int  # blank (quarantined) lines among them
    corrupt: list[list[Any]] = field(default_factory=list)  # [number, pos, end, reason]

    @property
    def skipped(self) -> int:
        """Lines before ``start``: counted, never parsed."""
        return self.lines - self.records - self.blank - len(self.corrupt)


def path(root: str) -> str:
    return os.path.join(root, layout.INDEX, layout.CHECKED)


def load(root: str, ino: int, base: int) -> Checked | None:
    """The saved check of the bus file ``ino`` at ``base``, if there is one."""
    try:
        fd = paths.open_file(path(root), os.O_RDONLY)
    except (OSError, ValueError):
        return None
    try:
        data = orjson.loads(os.read(fd, 1 << 20))
        if not isinstance(data, dict) or data.pop("v", None) != VERSION:
            return None
        got = Checked(**data)
    except (ValueError, TypeError):
        return None
    finally:
        os.close(fd)
    fields = (got.ino, got.base, got.start, got.end, got.crc, got.lines, got.records, got.blank)
    if not all(type(v) is int for v in fields) or not isinstance(got.corrupt, list):
        return None
    if (got.ino, got.base) != (ino, base) or not base <= got.start <= got.end:
        return None
    return got


def save(root: str, checked: Checked) -> None:
    """Remember ``checked``; a check that cannot be saved is done again next time."""
    if len(checked.corrupt) > MAX_CORRUPT:
        return
    with contextlib.suppress(Exception):
        paths.ensure_subdir(root, layout.INDEX)
        paths.write_atomic(path(root), orjson.dumps({"v": VERSION, **asdict(checked)}))


def crc_and_lines(fd: int, start: int, stop: int, crc: int = 0) -> tuple[int, int]:
    """CRC-32 (continued from ``crc``) and newline count of the file's ``[start, stop)``."""
    lines = 0
    while start < stop:
        chunk = os.pread(fd, min(CHUNK, stop - start), start)
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        lines += chunk.count(b"\n")
        start += len(chunk)
    return crc, lines


def tail_start(fd: int, stop: int, lines: int) -> int:
    """File offset where the last ``lines`` lines before ``stop`` (a line boundary) start."""
    need = lines + 1  # the newline before them: the last line's own newline counts too
    at = stop
    while at > 0:
        lo = max(0, at - CHUNK)
        chunk = os.pread(fd, at - lo, lo)
        found = chunk.count(b"\n")
        if found >= need:
            i = len(chunk)
            for _ in range(need):
                i = chunk.rfind(b"\n", 0, i)
            return lo + i + 1
        need -= found
        at = lo
    return 0


def line_start(fd: int, at: int) -> int:
    """File offset of the start of the line holding ``at`` (read backwards a chunk at a time)."""
    while at > 0:
        lo = max(0, at - CHUNK)
        nl = os.pread(fd, at - lo, lo).rfind(b"\n")
        if nl >= 0:
            return lo + nl + 1
        at = lo
    return 0
