"""The JSONL bus: one file, appended under a lock, read from byte offsets.

On disk, in the mailbox dir (file names and byte formats: ``layout``):

``messages.jsonl``
    One record per line, UTF-8, each ending in ``\\n``. Lines are only ever
    appended, each with a single ``write`` loop while ``messages.lock`` is held
    exclusively, so concurrent senders never interleave. A line without its
    ``\\n`` at the end of the file is a record still being written or a writer
    that died mid-write: readers stop before it. The next writer, under the
    lock, first ends it with ``\\n`` so it can never merge with a new record;
    from then on it is a corrupt line that readers skip and report. When a
    write fails (disk full, file-size limit) the file is truncated back to
    its size before the write: no partial record is left behind.

``messages.lock``
    The append lock. Its content is the largest id handed out, written before
    the record itself, so ids strictly increase in file order even on a bus
    started by ``kei-message.sh`` (whose ids do not always increase).

``messages.base``
    Positions are *logical* offsets: the byte offset in the file plus the
    bytes ``gc`` has moved out of it so far. Cursors therefore stay valid when
    gc rewrites the file. Each line of this file is ``INODE BASE``, the
    current file first; no file means base 0.

``cursors/NAME``
    One reader's cursor (``layout.encode_cursor``), replaced atomically (write a
    temp file, rename) while ``cursors/.NAME.lock`` is held. A consumer holds
    that lock from reading its unread to committing the new cursor, after
    the messages were delivered: concurrent readers of one identity never
    both deliver a message, and a crash in between redelivers, never loses.
"""

from __future__ import annotations

import os
import time

from .. import paths, records, settings
from ..cursors import Cursor, Pos
from ..errors import IdsExhausted, MailboxUnavailable, UnsafeMailbox
from ..leanjson import oloads
from ..names import is_valid
from ..records import ID_LIMIT, CorruptLine, Record
from . import layout
from .base import Entry
from .locks import acquire, locked, release
from .names_index import names_index

TYPE_CHECKING = False  # typing costs every command ~7 ms (issue 19)
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from contextlib import contextmanager
    from typing import Any
else:
    from ..lean import contextmanager

CHUNK = 1 << 20
TAIL = 1 << 16
SEEK_SPAN = 1 << 13  # seek_id, seek_time: below this many bytes, read them through
SEEK_MIN = 1 << 16  # seek_time: a smaller bus is read through
BULK = 4 << 20  # a scan of every line of more than this parses with orjson itself
_ID_WIDTH = 20


class JsonlStore:
    name = "jsonl"

    def __init__(self, root: str | None = None, *, lock_timeout: float | None = None) -> None:
        self.root = root or paths.mailbox_dir()
        self.location = layout.bus_path(self.root)
        self.lock_path = os.path.join(self.root, layout.LOCK)
        self.base_path = os.path.join(self.root, layout.BASE)
        self.lock_timeout = lock_timeout  # None: KEI_MAILBOX_LOCK_TIMEOUT at each wait
        self._ready: set[str] = set()
        self._lock_fd: int | None = None
        self._bus_fd: int | None = None
        # (inode, size, id) right after our own last append: lets the next append
        # skip re-reading the tail when nobody else wrote in between.
        self._last_append: tuple[int, int, int] | None = None
        self._pid = os.getpid()

    # ------------------------------------------------------------------ dirs
    def prepare(self, sub: str | None = None) -> str:
        """Create and check the mailbox dir (and ``sub`` inside it) on first use."""
        if self._pid != os.getpid():
            # Forked: descriptors inherited from the parent share its open file
            # description, so flock on them would not exclude the parent (a child
            # sent while the parent held the append lock) and an unlock here would
            # release the parent's lock. Reopen ours; closing the copies is safe.
            self._pid = os.getpid()
            self.close()
            self._last_append = None
        if "" not in self._ready:
            paths.ensure_dir(self.root)
            self._ready.add("")
        if sub is None:
            return self.root
        if sub not in self._ready:
            paths.ensure_subdir(self.root, sub)
            self._ready.add(sub)
        return os.path.join(self.root, sub)

    def close(self) -> None:
        for fd in (self._lock_fd, self._bus_fd):
            if fd is not None:
                os.close(fd)
        self._lock_fd = self._bus_fd = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful to do
            pass

    def order(self, pos: Pos) -> Any:
        return pos

    # ------------------------------------------------------------------ base
    def _base(self, ino: int) -> int | None:
        """Logical offset of byte 0 of the file with inode ``ino``; None if unknown."""
        try:
            with open(self.base_path, "rb") as fh:
                data = fh.read(4096)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise MailboxUnavailable(f"cannot read {self.base_path}: {exc.strerror}") from exc
        return layout.parse_base(data, ino)

    def _open_read(self) -> tuple[int, int, int] | None:
        """(fd, base, size) of the bus, or None when there is no bus yet."""
        self.prepare()
        for _ in range(50):
            try:
                fd = paths.open_file(self.location, os.O_RDONLY)
            except FileNotFoundError:
                return None
            st = os.fstat(fd)
            base = self._base(st.st_ino)
            if base is not None:
                return fd, base, st.st_size
            # gc is swapping the file in right now; the base file is already
            # written for the new one, so the next open finds a match.
            os.close(fd)
            time.sleep(0.002)
        raise MailboxUnavailable(f"{self.base_path} does not match {self.location}; run doctor")

    # ------------------------------------------------------------------ read
    def end(self) -> int:
        """Logical position after the last complete line."""
        opened = self._open_read()
        if opened is None:
            return 0
        fd, base, size = opened
        try:
            return base + _complete_size(fd, size)
        finally:
            os.close(fd)

    def scan(
        self, after: Pos | None, until: Pos | None = None, *, hint: tuple[bytes, ...] | None = None
    ) -> Iterator[Entry]:
        opened = self._open_read()
        if opened is None:
            return
        fd, base, size = opened
        try:
            start = base if after is None else max(int(after), base)
            stop = size if until is None else min(size, int(until) - base)
            offset = start - base
            if offset >= stop:
                return
            yield from _lines(fd, offset, stop, base, hint)
        finally:
            os.close(fd)

    def chunks(
        self, after: int | None, until: int | None = None
    ) -> Iterator[tuple[int, bytes | bytearray, int]]:
        """(logical position, buffer, n) of the complete lines from ``after`` (a line
        start) to ``until``, a few MiB at a time: ``buffer[:n]``, for counting with bytes
        methods instead of a loop per line. The buffer is read into again for the next
        one (a new 4 MiB buffer each time costs a million-record read ~80 ms of page
        faults, issue 19): use its bounds, and keep no reference to it."""
        opened = self._open_read()
        if opened is None:
            return
        fd, base, size = opened
        try:
            offset = 0 if after is None else max(int(after) - base, 0)
            stop = size if until is None else min(size, int(until) - base)
            buf: bytes | bytearray = bytearray(min(4 * CHUNK, max(stop - offset, 0)))
            view = memoryview(buf)
            preadv = getattr(os, "preadv", None)  # not on every system
            while offset < stop:
                want = min(len(view), stop - offset)
                if preadv is not None:
                    got = preadv(fd, [view[:want]], offset)
                else:
                    buf = os.pread(fd, want, offset)
                    got = len(buf)
                last = buf.rfind(b"\n", 0, got) + 1
                if not last:  # a line longer than the buffer: take it whole
                    nl = _line_at(fd, offset, stop)
                    if nl is None:
                        return
                    last = nl[1] - offset
                    yield base + offset, os.pread(fd, last, offset), last
                else:
                    yield base + offset, buf, last
                offset += last
        finally:
            os.close(fd)

    def line_after(self, pos: int) -> int:
        """The logical position of the first line that starts at or after ``pos`` (the
        end when none does): where to cut the bus in two."""
        opened = self._open_read()
        if opened is None:
            return pos
        fd, base, size = opened
        try:
            stop = _complete_size(fd, size)
            got = _line_at(fd, max(int(pos) - base, 0), stop)
            return base + (stop if got is None else got[0])
        finally:
            os.close(fd)

    def scan_reverse(self) -> Iterator[Entry]:
        opened = self._open_read()
        if opened is None:
            return
        fd, base, size = opened
        try:
            yield from _lines_reverse(fd, _complete_size(fd, size), base)
        finally:
            os.close(fd)

    def seek_id(self, msg_id: int) -> Record | None:
        entry = self.seek_entry(msg_id)
        return None if entry is None else entry.record

    def seek_entry(self, msg_id: int) -> Entry | None:
        """The entry of the record with id ``msg_id`` by binary search over byte offsets (issue 19).

        Ids strictly increase in file order for every record kei-message wrote, so
        ~20 short reads find one at any bus size. Records written by
        ``kei-message.sh`` can be out of order: a miss here (None) is not proof of
        absence, and the caller scans.
        """
        opened = self._open_read()
        if opened is None:
            return None
        fd, base, size = opened
        try:
            lo, hi = 0, _complete_size(fd, size)  # lo: a line start; hi: a line end
            while hi - lo > SEEK_SPAN:
                mid = (lo + hi) // 2
                got = _line_at(fd, mid, hi)
                if got is None:  # one long line covers [mid, hi): read the range through
                    break
                start, end, line = got
                try:
                    rid = records.parse(line)["id"]
                except CorruptLine:
                    break  # a corrupt line in the way: scan what is left
                if rid == msg_id:
                    return Entry(base + start, base + end, records.parse(line))
                if rid < msg_id:
                    lo = end
                else:
                    hi = start
            for entry in _lines(fd, lo, hi, base, (str(msg_id).encode(),)):
                if entry.record is not None and entry.record["id"] == msg_id:
                    return entry
            return None
        finally:
            os.close(fd)

    def seek_time(self, epoch: float) -> int | None:
        """A line start before which every record was written before ``epoch`` (binary
        search on ``ts``, which is the real time of sending for every writer); None on a
        small bus or when a corrupt line is in the way."""
        opened = self._open_read()
        if opened is None:
            return None
        fd, base, size = opened
        try:
            lo, hi = 0, _complete_size(fd, size)
            if hi < SEEK_MIN:
                return None
            while hi - lo > SEEK_SPAN:
                got = _line_at(fd, (lo + hi) // 2, hi)
                if got is None:
                    break
                start, end, line = got
                try:
                    when = records.record_epoch(records.parse(line))
                except CorruptLine:
                    return None
                if when < epoch:
                    lo = end
                else:
                    hi = start
            return base + lo
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ append
    def append(self, fields: Record) -> Record:
        self.prepare()
        if self._lock_fd is None:
            self._lock_fd = paths.open_file(self.lock_path, os.O_RDWR | os.O_CREAT)
        lock_fd = self._lock_fd
        acquire(lock_fd, self.lock_path, self.lock_timeout)
        try:
            fd, st = self._append_fd()
            size = st.st_size
            if self._last_append is not None and self._last_append[:2] == (st.st_ino, size):
                # Nobody appended since our last record (any append grows the file), so
                # its id is the largest in the file; a larger one in the lock file was
                # burnt by a failed write and is in no record. Saves a read (issue 6).
                prefix = b""
                last = self._last_append[2]
            else:
                known = _read_max_id(lock_fd)
                last = known if known is not None else self._scan_max_id(fd)
                tail_id, ends_line = _tail_info(fd, size)
                prefix = b"" if ends_line else b"\n"
                last = max(last, tail_id)
            now = records.now_us()
            rid = max(now, last + 1)
            if rid > ID_LIMIT:
                # never wrap, never repeat (#15): the bus is full of ids, say so
                raise IdsExhausted(self.location, last, ID_LIMIT)
            # ts is when it was sent: an id pushed ahead by a record from a fast clock
            # (or a kei-message.sh id in ns) would otherwise date it in the future
            rec: Record = {"id": rid, "ts": records.ts_from_id(now)}
            rec.update(fields)
            data = prefix + records.dumps(rec)
            try:
                os.pwrite(lock_fd, str(rid).zfill(_ID_WIDTH).encode(), 0)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if settings.fsync():
                    os.fsync(fd)
            except OSError as exc:
                self._last_append = None
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise MailboxUnavailable(
                    f"cannot append to {self.location}: {exc.strerror or exc}; nothing was written"
                ) from exc
            self._last_append = (st.st_ino, size + len(data), rid)
            return rec
        finally:
            release(lock_fd)

    def _append_fd(self) -> tuple[int, os.stat_result]:
        """The bus opened for appending (reopened when gc replaced the file), and its stat."""
        fd = self._bus_fd
        if fd is not None:
            try:
                st = os.fstat(fd)  # one fstat serves the check and the caller (issue 6)
                if os.stat(self.location).st_ino == st.st_ino:
                    return fd, st
            except FileNotFoundError:
                pass
            os.close(fd)
            self._bus_fd = None
        _ignore_sigxfsz()
        try:
            fd = paths.open_file(self.location, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            fd = self._create_bus()
        self._bus_fd = fd
        return fd, os.fstat(fd)

    def _create_bus(self) -> int:
        """Create the bus; the caller holds the append lock.

        A bus deleted by hand (``rm messages.jsonl``) leaves cursors pointing into
        the old file: a new file counted from 0 would hide every new message from
        those readers until it grew past them. So, as after a gc, the new file
        starts at a logical offset past every position already handed out.
        """
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
        floor = self._position_floor()
        if floor == 0:
            return paths.open_file(self.location, flags)
        tmp = f"{self.location}.new.{os.getpid()}"
        fd = paths.open_file(tmp, flags | os.O_TRUNC)
        try:
            ino = os.fstat(fd).st_ino
            try:
                with open(self.base_path, "rb") as fh:
                    old = fh.read(4096)
            except FileNotFoundError:
                old = b""
            paths.write_atomic(self.base_path, layout.base_text((ino, floor), keep=old))
            os.link(tmp, self.location)  # unlike rename, never replaces a bus made meanwhile
        except FileExistsError:
            os.close(fd)
            fd = paths.open_file(self.location, os.O_RDWR | os.O_APPEND)
        except BaseException:
            os.close(fd)
            raise
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return fd

    def _position_floor(self) -> int:
        """Past every logical position a cursor, gc or the names index still holds."""
        floor = 0
        try:
            with open(self.base_path, "rb") as fh:
                floor = layout.base_floor(fh.read(4096))
        except FileNotFoundError:
            pass
        for reader in self.readers():
            try:
                cursor = self.load_cursor(reader)
            except MailboxUnavailable:
                continue  # doctor reports it; it cannot hold a valid position
            if cursor is not None:
                # a done key is where a consumed record starts: the next must start after it
                keys = [int(cursor.pos or 0), *(int(k) + 1 for k in cursor.done)]
                floor = max(floor, *keys)
        try:
            with open(os.path.join(self.root, layout.INDEX, layout.NAMES_INDEX), "rb") as fh:
                pos = oloads(fh.read()).get("pos")
            if isinstance(pos, int):
                floor = max(floor, pos)
        except (OSError, ValueError, AttributeError):
            pass
        return floor

    def _scan_max_id(self, fd: int) -> int:
        """Largest id anywhere in the bus: once, for a bus we have not written before."""
        best = 0
        size = os.fstat(fd).st_size
        for entry in _lines(fd, 0, size, 0, None):
            if entry.record is not None and entry.record["id"] <= ID_LIMIT:
                best = max(best, entry.record["id"])
        return best

    # ------------------------------------------------------------------ gc
    def start(self) -> int:
        """Logical position of the first byte still in the bus (what gc has moved out)."""
        opened = self._open_read()
        if opened is None:
            return 0
        os.close(opened[0])
        return opened[1]

    def archive_path(self) -> str:
        """Where gc puts what it moves out today: ``archive/messages-<UTC date>.jsonl``."""
        day = time.strftime("%Y-%m-%d", time.gmtime())
        return os.path.join(self.root, layout.ARCHIVE, f"messages-{day}.jsonl")

    def compact(self, before: Pos) -> int:
        """Move the lines before logical position ``before`` to the archive (gc).

        The prefix never changes once written, so it is copied to the archive
        and most of the rest to a temp file without blocking senders; only
        the tail appended meanwhile is copied under the append lock. Then
        ``messages.base`` gets the new file's line (and keeps the old file's,
        for a reader that opened it a moment ago) and the temp file is renamed
        over the bus. Readers holding the old file keep reading it; cursors
        stay right because positions are logical. A crash leaves either the
        old bus whole (perhaps with a copy of the prefix already archived) or
        the new one: never a lost record.
        """
        self.prepare()
        with locked(os.path.join(self.prepare(layout.ARCHIVE), "gc.lock"), self.lock_timeout):
            try:
                fd = paths.open_file(self.location, os.O_RDONLY)
            except FileNotFoundError:
                return 0
            try:
                return self._compact(fd, int(before))
            finally:
                os.close(fd)

    def _compact(self, fd: int, before: int) -> int:
        st = os.fstat(fd)
        base = self._base(st.st_ino)
        if base is None:
            raise MailboxUnavailable(f"{self.base_path} does not match {self.location}; run doctor")
        size = st.st_size
        cut = min(before - base, _complete_size(fd, size))
        if cut <= 0:
            return 0
        if os.pread(fd, 1, cut - 1) != b"\n":
            raise MailboxUnavailable(f"gc: position {before} is not the start of a line")
        apath = self.archive_path()
        afd = paths.open_file(apath, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        asize = os.fstat(afd).st_size
        if asize and os.pread(afd, 1, asize - 1) != b"\n":
            os.write(afd, b"\n")  # a copy cut short by a crash stays a line of its own
        tmp = f"{self.location}.gc.{os.getpid()}"
        tfd = -1
        swapped = False
        try:
            moved = _copy(fd, 0, cut, afd)
            os.fsync(afd)
            tfd = paths.open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            _copy(fd, cut, size, tfd)
            if self._lock_fd is None:
                self._lock_fd = paths.open_file(self.lock_path, os.O_RDWR | os.O_CREAT)
            acquire(self._lock_fd, self.lock_path, self.lock_timeout)
            try:
                if os.stat(self.location).st_ino != st.st_ino:
                    raise MailboxUnavailable(f"{self.location} was replaced during gc; try again")
                end = os.fstat(fd).st_size
                _copy(fd, size, end, tfd)
                os.fsync(tfd)
                new_ino = os.fstat(tfd).st_ino
                paths.write_atomic(
                    self.base_path,
                    layout.base_text((new_ino, base + cut), (st.st_ino, base)),
                    fsync=True,
                )
                os.rename(tmp, self.location)
                swapped = True
                self._last_append = None
                _fsync_dir(self.root)
            finally:
                release(self._lock_fd)
            return moved
        except BaseException:
            if not swapped:
                try:
                    os.ftruncate(afd, asize)  # no second copy of the prefix next time
                except OSError:
                    pass
            raise
        finally:
            os.close(afd)
            if tfd >= 0:
                os.close(tfd)
            if not swapped:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass

    # ------------------------------------------------------------------ waiting
    def wait_for_change(self, since: Pos, timeout: float) -> bool:
        from .inotify import wait_for_growth  # only where one waits: `select` (#19)

        return wait_for_growth(self, int(since), timeout)

    # ------------------------------------------------------------------ receipts
    def _receipts_path(self) -> str:
        return os.path.join(self.root, layout.RECEIPTS)

    def receipts_path(self) -> str:
        """receipts.jsonl (the by-id index reads it: ``ids_index``)."""
        return self._receipts_path()

    def delivery_of(
        self, recs: list[Record], readers_of: Any = None
    ) -> tuple[list[dict[str, Any]], list[Record]] | None:
        """The receipts of ``recs`` in the order written and the replies to them
        (``{"id", "from", "reply_to"}``, in bus order), from the by-id index
        (``ids_index``: `show` and `status` stay flat, #19); None for more than
        ``layout.BY_SEARCH`` records (`list`), or when the index is busy, catching
        up on a backlog, or cannot be written (the caller searches)."""
        if not recs or len(recs) > layout.BY_SEARCH:
            return None
        from .ids_index import lookup

        try:
            return lookup(self, [r["id"] for r in recs])
        except UnsafeMailbox:
            raise  # a symlinked index/byid/: refused, as everywhere
        except OSError:  # a read-only or full file system: the search still answers
            return None

    def add_receipts(self, receipts: list[dict[str, Any]], *, keep_time: bool = False) -> None:
        """Append ``receipts`` to ``receipts.jsonl`` in one ``O_APPEND`` write (#16);
        ``keep_time`` changes nothing here: every receipt holds its own ``ts``."""
        if not receipts:
            return
        self.prepare()
        data = layout.receipt_bytes(receipts)
        fd = paths.open_file(self._receipts_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def receipts(self, after: Any = None) -> tuple[list[dict[str, Any]], Any]:
        """Receipts written after token ``after`` (None: all), and the token to go on from."""
        start = int(after or 0)
        try:
            fd = paths.open_file(self._receipts_path(), os.O_RDONLY)
        except FileNotFoundError:
            return [], start
        try:
            size = os.fstat(fd).st_size
            if size <= start:
                return [], start
            data = os.pread(fd, size - start, start)
        finally:
            os.close(fd)
        found, used = layout.parse_receipts(data)
        return found, start + used

    def receipts_from(self, since: float, ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Receipts written at ``since`` (epoch seconds) or later, give or take
        ``layout.RECEIPT_SLACK``: receipts.jsonl is in the order written, so the first
        of them is found by binary search over byte offsets, not a read of the file."""
        try:
            fd = paths.open_file(self._receipts_path(), os.O_RDONLY)
        except FileNotFoundError:
            return []
        try:
            size = os.fstat(fd).st_size
            start = layout.receipts_search(fd, size, since)
            data = os.pread(fd, size - start, start) if size > start else b""
        finally:
            os.close(fd)
        return layout.receipts_in(data, ids)

    def session_reads(self, after: Any = None) -> tuple[dict[str, str], Any, bool]:
        """SESSION -> ``ts`` of its last receipt among those after token ``after``, the
        token to go on from, and whether it started over (``reads_index``): the token is
        ``[inode, offset, CRC-32 of the first bytes]`` of receipts.jsonl, so a replaced
        file is read from its start (a new file may get the old one's inode).
        Over a megabyte of receipts (building it from nothing) the lines are not parsed
        one by one: a search of the bytes for the ``"ts":…,"session":…`` every receipt
        writer writes (#19)."""
        try:
            fd = paths.open_file(self._receipts_path(), os.O_RDONLY)
        except FileNotFoundError:
            return {}, None, True
        reads: dict[str, str] = {}
        try:
            info = os.fstat(fd)
            size = info.st_size
            first = os.pread(fd, 256, 0)
            resume = layout.receipts_resume(after, info.st_ino, size, first)
            fresh = resume is None
            start = resume or 0
            while size - start > 1 << 20:
                chunk = os.pread(fd, min(CHUNK * 4, size - start), start)
                done = chunk.rfind(b"\n") + 1
                if not done:
                    break  # a line over 4 MiB: not a receipt of ours; parsed below
                layout.fold_reads(chunk[:done], reads)
                start += done
            data = os.pread(fd, size - start, start) if size > start else b""
        finally:
            os.close(fd)
        found, used = layout.parse_receipts(data)
        layout.fold_receipts(found, reads)
        end = start + used
        return reads, layout.receipts_token(info.st_ino, end, first), fresh

    def receipts_end(self) -> Any:
        try:
            return os.stat(self._receipts_path()).st_size
        except FileNotFoundError:
            return 0

    def wait_for_receipts(self, after: Any, timeout: float) -> bool:
        """Block (inotify on the mailbox dir) until receipts exist past ``after``."""
        from .inotify import POLL, RECHECK, watch

        deadline = time.monotonic() + max(0.0, timeout)
        self.prepare()
        path = self._receipts_path()
        w = watch(path)
        try:
            while True:
                try:
                    if os.stat(path).st_size > int(after or 0):
                        return True
                except FileNotFoundError:
                    pass
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if w is not None:
                    w.wait(min(left, RECHECK))
                else:
                    time.sleep(min(left, POLL))
        finally:
            if w is not None:
                w.close()

    # ------------------------------------------------------------------ cursors
    def _cursor_path(self, reader: str) -> str:
        return os.path.join(self.prepare(layout.CURSORS), reader)

    def reader_lock_path(self, reader: str) -> str:
        # ".NAME.lock": a name cannot start with ".", so no reader's cursor (a reader
        # may well be called "x.lock") is ever another reader's lock file.
        return os.path.join(self.prepare(layout.CURSORS), f".{reader}.lock")

    @contextmanager
    def reader_lock(self, reader: str) -> Iterator[None]:
        with locked(self.reader_lock_path(reader), self.lock_timeout):
            yield

    def load_cursor(self, reader: str) -> Cursor | None:
        path = self._cursor_path(reader)
        try:
            fd = paths.open_file(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            data = os.read(fd, 1 << 20)
        finally:
            os.close(fd)
        try:
            return layout.decode_cursor(data, int)
        except ValueError:
            raise MailboxUnavailable(
                f"cursor file {path} is corrupt; `kei message doctor --repair` resets it"
            ) from None

    def save_cursor(self, reader: str, cursor: Cursor) -> None:
        paths.write_atomic(
            self._cursor_path(reader), layout.encode_cursor(cursor), fsync=settings.fsync()
        )

    def readers(self) -> list[str]:
        try:
            found = os.listdir(os.path.join(self.root, layout.CURSORS))
        except FileNotFoundError:
            return []
        # locks (.NAME.lock) and temp files (.NAME.tmp.PID) start with "." as no name can
        return sorted(n for n in found if is_valid(n))

    # ------------------------------------------------------------------ names index
    def names(self) -> dict[str, dict[str, Any]]:
        return names_index(self)

    # ------------------------------------------------------------------ sessions
    def put_session(self, session_id: str, info: dict[str, Any]) -> None:
        path = os.path.join(self.prepare(layout.SESSIONS), layout.session_file(session_id))
        paths.write_atomic(path, layout.session_bytes(info))

    def drop_session(self, session_id: str) -> None:
        path = os.path.join(self.root, layout.SESSIONS, layout.session_file(session_id))
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def sessions(self) -> list[dict[str, Any]]:
        folder = os.path.join(self.root, layout.SESSIONS)
        try:
            files = sorted(os.listdir(folder))
        except FileNotFoundError:
            return []
        out = []
        for name in files:
            if not name.endswith(".json"):
                continue
            try:
                fd = paths.open_file(os.path.join(folder, name), os.O_RDONLY)
            except (FileNotFoundError, MailboxUnavailable):
                continue
            try:
                info = oloads(os.read(fd, 1 << 20))
            except ValueError:  # orjson.JSONDecodeError
                continue
            finally:
                os.close(fd)
            if isinstance(info, dict):
                out.append(info)
        return out


def _entry(line: bytes, start: int, end: int, loads: Any = oloads) -> Entry:
    try:
        return Entry(start, end, records.parse(line, loads))
    except CorruptLine as exc:
        return Entry(start, end, None, str(exc))


def _too_long(start: int, end: int, limit: int) -> Entry:
    return Entry(start, end, None, f"line of {end - start - 1} bytes, over the {limit}-byte limit")


def _lines(
    fd: int, offset: int, stop: int, base: int, hint: tuple[bytes, ...] | None
) -> Iterator[Entry]:
    """Complete lines of the file between ``offset`` and ``stop`` as entries.

    Linear in the bytes read whatever they hold (#15): an unfinished line is kept
    as a list of pieces joined once, never re-copied per chunk; and a line past
    ``settings.max_line()`` is not kept at all: it cannot be a record, so it is
    skipped to its newline and reported as corrupt.

    With a ``hint``, the complete lines inside a chunk (never over the limit: it
    is larger than a chunk) are found by searching the chunk for the hint, and
    only the lines holding it are cut out (#19).
    """
    limit = settings.max_line()
    # reading every line of megabytes: orjson's import pays for itself (#19)
    loads = records.bulk_loads() if hint is None and stop - offset > BULK else oloads
    parts: list[bytes] = []  # the unfinished line so far
    held = 0
    too_long = False
    line_at = offset  # where the unfinished line starts
    while offset < stop:
        chunk = os.pread(fd, min(CHUNK, stop - offset), offset)
        if not chunk:
            break
        chunk_at = offset
        offset += len(chunk)
        i = 0
        while True:
            nl = chunk.find(b"\n", i)
            if nl < 0:
                break
            end = chunk_at + nl + 1
            if too_long:
                yield _too_long(base + line_at, base + end, limit)
            else:
                if parts:
                    parts.append(chunk[i:nl])
                    line = b"".join(parts)
                    parts, held = [], 0
                else:
                    line = chunk[i:nl]
                if hint is None or any(h in line for h in hint):
                    yield _entry(line, base + line_at, base + end, loads)
            too_long = False
            i = nl + 1
            line_at = chunk_at + i
            if hint is not None:
                # the chunk's other complete lines: search the hint, cut out its lines
                last = chunk.rfind(b"\n") + 1
                for start, nl in _lines_with(chunk, i, last, hint):
                    yield _entry(chunk[start:nl], base + chunk_at + start, base + chunk_at + nl + 1)
                i = max(i, last)
                line_at = chunk_at + i
                break
        if i < len(chunk) and not too_long:
            held += len(chunk) - i
            if held > limit:
                parts, held, too_long = [], 0, True
            else:
                parts.append(chunk[i:] if i else chunk)


def _lines_with(
    buf: bytes, first: int, last: int, hint: tuple[bytes, ...]
) -> list[tuple[int, int]]:
    """(start, newline) of each line of ``buf[first:last]`` (whole lines) holding one of
    ``hint``, in order."""
    found: dict[int, int] = {}
    for h in hint:
        hit = buf.find(h, first, last)
        while hit >= 0:
            start = buf.rfind(b"\n", 0, hit) + 1
            nl = buf.find(b"\n", hit)
            found[start] = nl
            hit = buf.find(h, nl + 1, last)
    return sorted(found.items())


def _line_at(fd: int, pos: int, stop: int) -> tuple[int, int, bytes] | None:
    """(start, end, bytes) of the first line starting at or after ``pos`` and ending by
    ``stop``; None when no line starts in ``[pos, stop)``."""
    if pos > 0:  # a line starts at pos only if the byte before it is a newline
        at = pos - 1
        while True:
            chunk = os.pread(fd, min(SEEK_SPAN, stop - at), at)
            nl = chunk.find(b"\n")
            if nl >= 0:
                pos = at + nl + 1
                break
            at += len(chunk)
            if not chunk or at >= stop:
                return None
    if pos >= stop:
        return None
    buf = b""
    while True:
        chunk = os.pread(fd, min(SEEK_SPAN, stop - pos - len(buf)), pos + len(buf))
        nl = chunk.find(b"\n")
        if nl >= 0:
            line = buf + chunk[:nl]
            return pos, pos + len(line) + 1, line
        if not chunk:
            return None
        buf += chunk


def _lines_reverse(fd: int, end: int, base: int) -> Iterator[Entry]:
    """The complete lines before file offset ``end`` (just after a newline), newest first.

    Linear like ``_lines``: pieces of a line are joined once; a line past the
    limit is not kept, only found (its start) and reported as corrupt.
    """
    if end <= 0:
        return
    limit = settings.max_line()
    line_end = end - 1  # offset of the newline ending the current line
    parts: list[bytes] = []  # pieces of the current line, the last piece first
    held = 0
    too_long = False
    pos = line_end  # the bytes before pos are not read yet

    def finish(start: int, head: bytes) -> Entry:
        nonlocal parts, held, too_long
        if too_long:
            got = _too_long(base + start, base + line_end + 1, limit)
        else:
            line = head + b"".join(reversed(parts)) if parts else head
            got = _entry(line, base + start, base + line_end + 1)
        parts, held, too_long = [], 0, False
        return got

    while True:
        n = min(CHUNK, pos)
        at = pos - n
        chunk = os.pread(fd, n, at) if n else b""
        hi = len(chunk)
        while True:
            nl = chunk.rfind(b"\n", 0, hi)
            if nl < 0:
                break
            yield finish(at + nl + 1, chunk[nl + 1 : hi])
            line_end = at + nl
            hi = nl
        if at == 0:
            yield finish(0, chunk[:hi])
            return
        if hi and not too_long:
            held += hi
            if held > limit:
                parts, held, too_long = [], 0, True
            else:
                parts.append(chunk[:hi] if hi < len(chunk) else chunk)
        pos = at


def _copy(src: int, start: int, stop: int, dst: int) -> int:
    """Copy bytes ``start:stop`` of ``src`` to the end of ``dst``; return the newlines copied."""
    lines = 0
    while start < stop:
        chunk = os.pread(src, min(CHUNK, stop - start), start)
        if not chunk:
            break
        start += len(chunk)
        lines += chunk.count(b"\n")
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]
    return lines


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _complete_size(fd: int, size: int) -> int:
    """Bytes of ``fd`` up to and including its last newline."""
    pos = size
    while pos > 0:
        n = min(TAIL, pos)
        buf = os.pread(fd, n, pos - n)
        nl = buf.rfind(b"\n")
        if nl >= 0:
            return pos - n + nl + 1
        pos -= n
    return 0


def _tail_info(fd: int, size: int) -> tuple[int, bool]:
    """(id of the last complete line if cheaply found, whether the file ends with a newline)."""
    if size == 0:
        return 0, True
    n = min(TAIL, size)
    buf = os.pread(fd, n, size - n)
    ends_line = buf.endswith(b"\n")
    body = buf[:-1] if ends_line else buf[: buf.rfind(b"\n")] if b"\n" in buf else b""
    start = body.rfind(b"\n") + 1
    if start == 0 and n < size:
        return 0, ends_line  # last line longer than the tail we read; the lock file knows
    line = body[start:]
    key = line.find(b'"id":')
    if key < 0:
        return 0, ends_line
    digits = line[key + 5 : key + 40].lstrip(b' "')
    end = 0
    while end < len(digits) and digits[end : end + 1].isdigit():
        end += 1
    tail_id = int(digits[:end]) if end else 0
    return (tail_id if tail_id <= ID_LIMIT else 0), ends_line  # a foreign id: not ours (#7, #15)


def _read_max_id(fd: int) -> int | None:
    raw = os.pread(fd, 64, 0).strip()
    return int(raw) if raw.isdigit() and int(raw) <= ID_LIMIT else None


_sigxfsz_ignored = False


def _ignore_sigxfsz() -> None:
    """Hitting RLIMIT_FSIZE must fail the write (EFBIG) so we can undo it, not kill us."""
    global _sigxfsz_ignored
    if _sigxfsz_ignored:
        return
    # `_signal`, not `signal` nor `threading`: they import enum, functools and
    # collections, ~4 ms of every `send` (issue 19); `_signal` is loaded at start-up.
    import _signal

    try:
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
    except ValueError:  # not the main thread: it may only be set from there
        return
    _sigxfsz_ignored = True
