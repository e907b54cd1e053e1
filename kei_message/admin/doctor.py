"""``kei message doctor``: check a mailbox, and repair what is safe to repair.

What it checks (SPEC §1, §3, §4, §7):

- permissions: the dir (and every dir in it) 0700, every file 0600, all ours,
  no symlinks (kei refuses to open a symlinked bus or cursor);
- the bus: corrupt lines and a partial last line, by line number and offset
  (lines checked by an earlier run are confirmed by a CRC, not parsed again;
  see ``checked.py``);
- cursors: garbage files, positions past the end or inside a line, and
  ``done`` keys that are not the start of a line;
- leftovers: the append lock held by a live process (named), temp files of
  writers that died, pid files (``*.pid``) whose process is gone;
- Claude Code hooks: ``kei-message-hook`` registered twice, or pointing at a
  command that does not exist (user and project ``settings.json``).

What ``--repair`` does, and why it is safe:

- mode bits: ``chmod`` to 0700/0600 (never follows a symlink);
- a cursor inside a line snaps back to the start of that line, one past the
  end snaps back to the end: the cursor only ever moves *back*, so a message
  may be offered again but none is skipped. ``done`` keys that are not the
  start of a complete line are dropped (same reasoning: redeliver, never skip;
  a key at or past the end would silently swallow a future message);
- a garbage cursor file is copied to ``quarantine/`` and removed: the reader
  starts over as a new reader (SPEC §4: its personal messages of any age, and
  broadcasts within ``KEI_MAILBOX_BROADCAST_REPLAY``);
- corrupt lines are *copied* to ``quarantine/bus-STAMP.jsonl`` (one JSON
  object per line: line number, logical offset, length, reason, the exact
  bytes in base64), fsynced, and only then blanked *in place*: every byte but
  the newline becomes a space. Nothing moves, so every cursor and every
  position stays valid; it happens under the append lock with the inode
  checked, so no concurrent append is lost and gc cannot swap the file under
  us; a blank line is what ``jq`` and every reader already skip. A partial
  last line (its writer died holding the lock) is first ended with ``\\n``,
  exactly what the next writer would do, then quarantined the same way.
  Nothing that parses as a record is ever touched;
- stale temp files and stale pid files are removed.

Hook registrations are reported with the fix, never edited: settings.json is
the user's file (``kei message install``/``uninstall`` own that edit).
"""

from __future__ import annotations

import base64
import errno
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from .. import paths
from ..cursors import Cursor
from ..errors import MailboxUnavailable
from ..names import is_valid
from ..records import CorruptLine, parse
from ..stores import layout
from ..stores.jsonl import JsonlStore, _complete_size, _lines
from ..stores.locks import acquire, locked
from . import checked
from .checked import Checked
from .checks import check_hooks, check_leftovers, check_reachable
from .report import Finding, Report

__all__ = ["Finding", "Report", "check", "default_settings"]

BLANK = b" \t\r"


def check(
    root: str | None = None,
    *,
    repair: bool = False,
    full: bool = False,
    settings: list[str] | None = None,
    remote: Any = None,
) -> Report:
    """Check the mailbox in ``root`` (default: the mailbox dir); repair when asked.

    ``remote``: the store when the bus is not the JSONL file (Redis). The dir,
    leftovers and hooks are checked here; the bus and cursors by the store's own
    ``check`` (which never changes the server's configuration). ``full``: parse
    every line of a big bus no run has checked before, not only its last
    ``checked.TAIL_LINES`` lines (``--repair`` always does).
    """
    root = root or paths.mailbox_dir()
    report = Report(root)
    try:
        if _check_dir(report, root, repair):
            if remote is None:
                _check_bus_and_cursors(report, root, repair, full)
            check_leftovers(report, root, repair)
        if remote is not None:  # the bus is elsewhere: check it even with no local dir
            _check_remote(report, remote, repair)
    except MailboxUnavailable as exc:
        report.unavailable = str(exc)
    check_hooks(report, settings if settings is not None else default_settings())
    try:
        check_reachable(report, remote if remote is not None else JsonlStore(root))
    except Exception as exc:  # a courtesy: the mailbox checks above matter more
        report.notes.append(f"could not look at the running sessions: {exc}")
    return report


def _check_remote(report: Report, store: Any, repair: bool) -> None:
    found, notes = store.check(repair=repair)
    report.notes.extend(notes)
    for f in found:
        report.add(
            f.get("area", "bus"),
            f["where"],
            f["problem"],
            f["fix"],
            repairable=bool(f.get("repairable")),
            repaired=f.get("repaired"),
        )


def default_settings() -> list[str]:
    home = os.path.expanduser("~")
    try:
        here = os.getcwd()
    except OSError:
        here = home
    found = [os.path.join(home, ".claude", "settings.json")]
    for name in ("settings.json", "settings.local.json"):
        path = os.path.join(here, ".claude", name)
        if path not in found:
            found.append(path)
    return found


# ----------------------------------------------------------------------------- permissions
def _check_dir(report: Report, root: str, repair: bool) -> bool:
    """Permissions of the dir and everything in it; False when there is nothing to check."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        report.notes.append(f"no mailbox yet at {root} (created on first use)")
        return False
    if not stat.S_ISDIR(st.st_mode):
        report.add("permissions", root, "is not a directory", f"move it away: mv {root} {root}.old")
        return False
    _check_mode(report, root, st, paths.DIR_MODE, repair)
    for dirpath, dirs, files in os.walk(root):
        for name in list(dirs):
            path = os.path.join(dirpath, name)
            lst = os.lstat(path)
            if stat.S_ISLNK(lst.st_mode):
                dirs.remove(name)
                _symlink(report, path)
            else:
                _check_mode(report, path, lst, paths.DIR_MODE, repair)
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                lst = os.lstat(path)
            except FileNotFoundError:
                continue  # a temp file renamed away while we looked
            if stat.S_ISLNK(lst.st_mode):
                _symlink(report, path)
            elif stat.S_ISREG(lst.st_mode):
                _check_mode(report, path, lst, paths.FILE_MODE, repair)
            else:
                report.add("permissions", path, "is not a regular file", f"remove it: rm {path}")
    return True


def _symlink(report: Report, path: str) -> None:
    report.add(
        "permissions",
        path,
        "is a symlink; kei refuses to open the bus or a cursor through one",
        f"replace the link with the real file (readlink {path}), or remove it",
    )


def _check_mode(report: Report, path: str, st: os.stat_result, want: int, repair: bool) -> None:
    if st.st_uid != os.geteuid():
        report.add(
            "permissions",
            path,
            f"is owned by uid {st.st_uid}, not you (uid {os.geteuid()})",
            f"as its owner or root: chown {os.geteuid()} {path}",
        )
        return
    mode = stat.S_IMODE(st.st_mode)
    if mode == want:
        return
    f = report.add(
        "permissions",
        path,
        f"has mode {mode:o}, not {want:o}",
        f"chmod {want:o} {path}",
        repairable=True,
    )
    if repair:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
            try:
                os.fchmod(fd, want)
            finally:
                os.close(fd)
            f.repaired = f"chmod {want:o}"
        except OSError as exc:
            f.failed = exc.strerror or str(exc)


# ----------------------------------------------------------------------------- bus and cursors
@dataclass
class _Line:
    number: int
    pos: int  # logical offset of its first byte
    end: int  # logical offset after its newline
    reason: str


@dataclass
class _CursorState:
    name: str
    path: str
    raw: bytes
    cursor: Any  # cursors.Cursor, or None for a garbage file
    snap: dict[int, int] = field(default_factory=dict)  # bad position -> where it goes


def _check_bus_and_cursors(report: Report, root: str, repair: bool, full: bool) -> None:
    store = JsonlStore(root)
    # Cursors first, the bus size second: a cursor is never saved past the end of
    # the bus at that moment, so none can look "past the end" because of a race.
    states = _load_cursors(report, root)
    try:
        fd = os.open(store.location, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        report.notes.append("no bus yet (messages.jsonl is created by the first send)")
        for st in states:
            _check_positions(report, st, -1, 0, 0)
        _repair_cursors(report, store, states, repair)
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return  # reported as a symlink above
        raise MailboxUnavailable(f"cannot open {store.location}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        base = store._base(info.st_ino)
        if base is None:
            report.add(
                "bus",
                store.base_path,
                "does not name the current bus file (gc was interrupted?)",
                "run `kei message gc` again; positions cannot be checked until then",
            )
            return
        size = info.st_size
        complete = _complete_size(fd, size)
        end = base + complete
        now = _scan(fd, root, info.st_ino, base, complete, full=full or repair)
        corrupt = [_Line(*c) for c in now.corrupt]
        partial = size - complete
        if now.skipped:
            report.notes.append(
                f"bus: {now.lines} lines, {size} bytes; {now.records} records among the last "
                f"{now.lines - now.skipped} lines (`kei message doctor --full` parses the "
                f"{now.skipped} before offset {now.start} too)"
            )
        else:
            report.notes.append(
                f"bus: {now.records} records, {size} bytes"
                + (f", {now.blank} blank (quarantined) lines" if now.blank else "")
            )
        for line in corrupt:
            report.add(
                "bus",
                f"{store.location} line {line.number} (offset {line.pos})",
                f"corrupt line, {line.end - line.pos} bytes: {line.reason}",
                "readers skip it; `kei message doctor --repair` copies it to quarantine/ "
                "and blanks it in place",
                repairable=True,
            )
        partial_line = _Line(now.lines + 1, end, base + size, "partial last line")
        if partial:
            report.add(
                "bus",
                f"{store.location} line {partial_line.number} (offset {end})",
                f"partial last line, {partial} bytes without a newline (a writer died mid-write)",
                "readers stop before it and the next send ends it; `kei message doctor "
                "--repair` quarantines it",
                repairable=True,
            )
        for st in states:
            _check_positions(report, st, fd, base, end)
    finally:
        os.close(fd)
    if repair and (corrupt or partial):
        _quarantine(
            report, store, info.st_ino, base, size, corrupt, partial_line if partial else None
        )
        _after_repair(report, root, store, now)
    _repair_cursors(report, store, states, repair)


def _scan(fd: int, root: str, ino: int, base: int, complete: int, *, full: bool) -> Checked:
    """Parse what no earlier run checked (``admin/checked.py``); the bus as it stands."""
    prev = checked.load(root, ino, base)
    if prev is not None and full and prev.start > base:
        prev = None  # lines before its start were never parsed
    elif prev is not None:
        same = prev.end <= base + complete
        if same and checked.crc_and_lines(fd, 0, prev.end - base)[0] != prev.crc:
            same = False
        if not same:  # changed in place (by hand?): parse it all
            prev, full = None, True
    if prev is not None:
        now = prev
    else:
        start = 0
        if not full:
            start = checked.tail_start(fd, complete, checked.TAIL_LINES)
        crc, lines = checked.crc_and_lines(fd, 0, start)
        now = Checked(ino, base, base + start, base + start, crc, lines, 0, 0)
    if now.end == base + complete:
        return now
    number = now.lines
    for entry in _lines(fd, now.end - base, complete, base, None):
        number += 1
        if entry.record is not None:
            now.records += 1
        elif _blank(fd, entry.pos - base, entry.end - entry.pos - 1):
            now.blank += 1  # quarantined before, or an empty line: readers skip it
        else:
            now.corrupt.append([number, entry.pos, entry.end, entry.error or "corrupt"])
    now.lines = number
    now.crc = checked.crc_and_lines(fd, now.end - base, complete, now.crc)[0]
    now.end = base + complete
    checked.save(root, now)
    return now


def _after_repair(report: Report, root: str, store: Any, now: Checked) -> None:
    """The repaired lines are blank now: say so in the saved check (else the next run,
    finding the bytes changed, parses the whole bus again)."""
    if any(f.area == "bus" and f.repaired is None for f in report.findings):
        return
    try:
        fd = paths.open_file(store.location, os.O_RDONLY)
    except (OSError, MailboxUnavailable):
        return
    try:
        if os.fstat(fd).st_ino != now.ino or store._base(now.ino) != now.base:
            return
        now.blank += len(now.corrupt)
        now.corrupt = []
        now.crc = checked.crc_and_lines(fd, 0, now.end - now.base)[0]
    finally:
        os.close(fd)
    checked.save(root, now)


def _positions(cursor: Any) -> Iterator[int]:
    if cursor.pos is not None:
        yield int(cursor.pos)
    yield from (int(k) for k in cursor.done)


def _load_cursors(report: Report, root: str) -> list[_CursorState]:
    folder = os.path.join(root, layout.CURSORS)
    try:
        found = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in found:
        if not is_valid(name):  # .NAME.lock and .NAME.tmp.PID are not cursors
            continue
        path = os.path.join(folder, name)
        try:
            fd = paths.open_file(path, os.O_RDONLY)
        except (FileNotFoundError, MailboxUnavailable):
            continue  # gone, or a symlink (reported by the permissions check)
        try:
            raw = os.read(fd, 1 << 20)
        finally:
            os.close(fd)
        try:
            cur = layout.decode_cursor(raw, int)
        except ValueError:
            cur = None
        out.append(_CursorState(name, path, raw, cur))
    return out


def _check_positions(report: Report, st: _CursorState, fd: int, base: int, end: int) -> None:
    """Each position of a cursor: a line start of the bus (``fd``) or its ``end``.

    Checked where it points (the byte before it), not by a scan of the bus."""
    if st.cursor is None:
        report.add(
            "cursor",
            st.path,
            f"garbage cursor file ({len(st.raw)} bytes); reading as {st.name!r} fails",
            "`kei message doctor --repair` moves it to quarantine/; the reader starts over "
            "as a new reader",
            repairable=True,
        )
        return
    for p in _positions(st.cursor):
        if p < base or p == end:
            continue
        if p > end:
            st.snap[p] = end
            why = f"position {p} is past the end of the bus ({end})"
        elif p == base or os.pread(fd, 1, p - base - 1) == b"\n":
            continue
        else:
            st.snap[p] = base + checked.line_start(fd, p - base)
            why = f"position {p} is inside the line starting at {st.snap[p]}"
        is_pos = st.cursor.pos is not None and p == int(st.cursor.pos)
        report.add(
            "cursor",
            st.path,
            ("cursor " if is_pos else "consumed key ") + why,
            "`kei message doctor --repair` moves it back to the line boundary before it "
            "(a message may be offered again; none is skipped)",
            repairable=True,
        )


def _repair_cursors(report: Report, store: Any, states: list[_CursorState], repair: bool) -> None:
    if not repair:
        return

    for st in states:
        mine = [f for f in report.findings if f.area == "cursor" and f.where == st.path]
        if not mine:
            continue
        with store.reader_lock(st.name):
            try:
                fd = paths.open_file(st.path, os.O_RDONLY)
                try:
                    now = os.read(fd, 1 << 20)
                finally:
                    os.close(fd)
            except FileNotFoundError:
                now = b""
            if now != st.raw:
                for f in mine:
                    f.failed = "the cursor moved while doctor ran; run doctor again"
                continue
            if st.cursor is None:
                dest = _quarantine_copy(store.root, f"cursor-{st.name}", st.raw)
                os.unlink(st.path)
                did = f"moved to {dest}; {st.name!r} starts over as a new reader"
            else:
                pos = st.cursor.pos
                if pos is not None and st.snap.get(int(pos), -1) >= 0:
                    pos = st.snap[int(pos)]
                limit = -1 if pos is None else int(pos)
                done = frozenset(
                    k for k in st.cursor.done if int(k) not in st.snap and int(k) >= limit
                )
                store.save_cursor(st.name, Cursor(pos, done))
                did = f"cursor now at {pos}, {len(done)} consumed keys kept"
        for f in mine:
            f.repaired = did


# ----------------------------------------------------------------------------- quarantine
def _quarantine(report: Report, store: Any, *args: Any) -> None:
    """Hold gc's lock too (when gc has run), so gc is not copying the bus meanwhile:
    otherwise its copy could keep a line we blank (harmless, but found again)."""
    archive = os.path.join(store.root, layout.ARCHIVE)
    if not stat.S_ISDIR(_lstat_mode(archive)):  # none yet, or a symlink (reported)
        _quarantine_locked(report, store, *args)
        return
    with locked(os.path.join(archive, "gc.lock")):
        _quarantine_locked(report, store, *args)


def _lstat_mode(path: str) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def _quarantine_locked(
    report: Report,
    store: Any,
    ino: int,
    base: int,
    size: int,
    corrupt: list[_Line],
    partial: _Line | None,
) -> None:
    """Copy corrupt lines out, then blank them in place, all under the append lock."""
    todo = [f for f in report.findings if f.area == "bus" and f.repairable]
    lock_fd = paths.open_file(store.lock_path, os.O_RDWR | os.O_CREAT)
    try:
        acquire(lock_fd, store.lock_path)
        try:
            fd = paths.open_file(store.location, os.O_RDWR)
        except FileNotFoundError:
            fd = -1
        try:
            if fd < 0 or os.fstat(fd).st_ino != ino or store._base(ino) != base:
                for f in todo:
                    f.failed = "the bus was replaced (gc) while doctor ran; run doctor again"
                return
            lines = list(corrupt)
            if partial is not None:
                if os.fstat(fd).st_size == size:
                    # We hold the lock, so the writer of this tail is dead: end it the
                    # way the next writer would; it becomes a corrupt line like the rest.
                    _write_all(fd, b"\n", size)
                # else a send has ended it with "\n" since we looked: same line either way
                if os.pread(fd, 1, size) == b"\n":
                    partial.end = base + size + 1
                    lines.append(partial)
            keep: list[tuple[_Line, bytes]] = []
            for ln in lines:
                raw = os.pread(fd, ln.end - ln.pos - 1, ln.pos - base)
                try:
                    parse(raw)
                    continue  # never blank a record, whatever the first scan said
                except CorruptLine:
                    pass
                if raw.strip(BLANK):
                    keep.append((ln, raw))
            if keep:
                out = b"".join(
                    orjson.dumps(
                        {
                            "line": ln.number,
                            "offset": ln.pos,
                            "length": len(raw) + 1,
                            "reason": ln.reason,
                            "raw_b64": base64.b64encode(raw).decode(),
                        }
                    )
                    + b"\n"
                    for ln, raw in keep
                )
                dest = _quarantine_copy(store.root, "bus", out, suffix=".jsonl")
                for ln, raw in keep:
                    _write_all(fd, b" " * len(raw), ln.pos - base)
                os.fsync(fd)
            else:
                dest = "(nothing left to copy)"
            for f in todo:
                f.repaired = f"copied to {dest} and blanked in place"
        finally:
            if fd >= 0:
                os.close(fd)
    except OSError as exc:
        if isinstance(exc, MailboxUnavailable):
            raise
        raise MailboxUnavailable(f"cannot repair {store.location}: {exc.strerror}") from exc
    finally:
        os.close(lock_fd)  # releases the lock


def _blank(fd: int, start: int, length: int) -> bool:
    """Whether ``length`` bytes at ``start`` are BLANK, read piecewise (#15: lines may be huge)."""
    while length > 0:
        piece = os.pread(fd, min(length, 1 << 20), start)
        if not piece or piece.strip(BLANK):
            return False
        start += len(piece)
        length -= len(piece)
    return True


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def _quarantine_copy(root: str, what: str, data: bytes, suffix: str = "") -> str:
    """Write ``data`` to a new file in ``root/quarantine`` (fsynced); return its path."""
    # O_NOFOLLOW guards the last component only: a symlinked quarantine/ would
    # have us write outside the mailbox dir, and ensure_subdir refuses one.
    folder = paths.ensure_subdir(root, layout.QUARANTINE)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        path = os.path.join(folder, f"{what}-{stamp}{f'-{n}' if n else ''}{suffix}")
        try:
            fd = paths.open_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except MailboxUnavailable as exc:
            if isinstance(exc.__cause__, FileExistsError):
                continue
            raise
        try:
            _write_all(fd, data, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        return path
    raise MailboxUnavailable(f"cannot find a free file name in {folder}")
