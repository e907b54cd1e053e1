"""The JSONL bus (SPEC §1-3): whole lines under the lock, torn lines, legacy buses, safety."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import portalocker
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kei_message import records
from kei_message.errors import MailboxLocked, MailboxUnavailable, UnsafeMailbox
from kei_message.mailbox import Mailbox
from kei_message.stores import jsonl
from kei_message.stores.jsonl import JsonlStore

FIXTURE = Path(__file__).parent / "fixtures" / "kei-message-sh.jsonl"


@pytest.fixture
def mb(mailbox_dir: Path) -> Mailbox:
    return Mailbox(JsonlStore(str(mailbox_dir)))


def bus(mailbox_dir: Path) -> Path:
    return mailbox_dir / "messages.jsonl"


def lines(mailbox_dir: Path) -> list[bytes]:
    return bus(mailbox_dir).read_bytes().split(b"\n")


def test_a_send_is_one_whole_line_that_cat_and_jq_read(mb: Mailbox, mailbox_dir: Path) -> None:
    rec = mb.send("ship it\nnow", to="frontend", sender="backend")
    data = bus(mailbox_dir).read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    on_disk = json.loads(data)
    assert on_disk == rec
    assert list(on_disk) == ["id", "ts", "from", "to", "body"]
    assert len(str(rec["id"])) == 16
    assert rec["ts"].endswith("Z") and records.ts_epoch(rec["ts"]) is not None
    assert abs(records.ts_epoch(rec["ts"]) - rec["id"] / 1e6) < 1  # type: ignore[operator]


def test_ids_strictly_increase_in_file_order(mb: Mailbox, mailbox_dir: Path) -> None:
    for i in range(200):
        mb.send(f"m{i}", to="b", sender="a")
    ids = [json.loads(line)["id"] for line in lines(mailbox_dir) if line]
    assert len(ids) == 200
    assert all(x < y for x, y in zip(ids, ids[1:], strict=False))


def test_big_bodies_are_appended_whole(mb: Mailbox, mailbox_dir: Path) -> None:
    big = "x" * (1024 * 1024 - 3) + "€"  # exactly 1 MiB of UTF-8
    mb.send(big, to="b", sender="a")
    mb.send("small", to="b", sender="a")
    got = [m["body"] for m in mb.read("b")]
    assert got == [big, "small"]
    assert len(lines(mailbox_dir)) == 3


# ----------------------------------------------------------------------------- torn lines
def test_a_partial_last_line_is_skipped_and_never_merges(
    mb: Mailbox, mailbox_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = mb.send("before", to="b", sender="a")
    end_before = mb.store.end()
    with open(bus(mailbox_dir), "ab") as fh:
        fh.write(b'{"id":1,"ts":"2026-11-21T08:00:02Z","from":"a","to":"b","body":"tor')
    # readers stop before the partial line
    assert mb.store.end() == end_before
    assert [e.record for e in mb.store.scan(None)] == [first]
    assert [m["id"] for m in mb.unread("b")] == [first["id"]]
    # the same store appends again: its "nobody wrote since" shortcut must notice
    second = mb.send("after", to="b", sender="a")
    raw = lines(mailbox_dir)
    assert raw[-1] == b"" and json.loads(raw[-2]) == second
    entries = list(mb.store.scan(None))
    assert [e.record is None for e in entries] == [False, True, False]
    assert "not JSON" in (entries[1].error or "")
    with caplog.at_level(logging.WARNING, logger="kei_message"):
        assert [m["body"] for m in mb.read("b")] == ["before", "after"]
    assert "corrupt" in caplog.text


def test_a_partial_line_left_by_another_process(mailbox_dir: Path) -> None:
    writer = Mailbox(JsonlStore(str(mailbox_dir)))
    writer.send("one", to="b", sender="a")
    with open(bus(mailbox_dir), "ab") as fh:
        fh.write(b'{"id":9999999999999999,"from":"x"')  # no newline: a writer died
    other = Mailbox(JsonlStore(str(mailbox_dir)))  # a fresh process, no shortcut
    rec = other.send("two", to="b", sender="a")
    assert json.loads(lines(mailbox_dir)[-2]) == rec
    assert [m["body"] for m in Mailbox().read("b")] == ["one", "two"]


def test_a_partial_line_longer_than_the_tail_read(mb: Mailbox, mailbox_dir: Path) -> None:
    mb.send("one", to="b", sender="a")
    with open(bus(mailbox_dir), "ab") as fh:
        fh.write(b'{"id":1,"body":"' + b"y" * (3 * jsonl.TAIL))
    assert [m["body"] for m in mb.unread("b")] == ["one"]
    Mailbox().send("two", to="b", sender="a")
    assert [m["body"] for m in mb.read("b")] == ["one", "two"]


def test_corrupt_lines_in_the_middle_are_skipped_and_reported(
    mb: Mailbox, mailbox_dir: Path
) -> None:
    mb.send("one", to="b", sender="a")
    with open(bus(mailbox_dir), "ab") as fh:
        fh.write(b"garbage\n\n[1]\n" + b'{"id":5,"from":"a","to":"b"}\n')
    mb.send("two", to="b", sender="a")
    entries = list(mb.store.scan(None))
    assert [e.error is not None for e in entries] == [False, True, True, True, True, False]
    assert [m["body"] for m in mb.read("b")] == ["one", "two"]
    assert [e.record["body"] for e in mb.store.scan_reverse() if e.record] == ["two", "one"]


def test_pop_reads_no_further_than_the_message_it_takes(
    mb: Mailbox, mailbox_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # pop holds the reader lock: it must not parse the whole backlog behind the
    # one message it takes (consumers of one identity starved each other on it)
    mb.read("b")  # b has a cursor: a new reader reads on, to skip old broadcasts
    mb.send("one", to="b", sender="a")
    with open(bus(mailbox_dir), "ab") as fh:
        fh.write(b'{"to":"b" torn\n')
    mb.send("two", to="b", sender="a")
    with caplog.at_level(logging.WARNING, logger="kei_message"):
        assert mb.pop("b")["body"] == "one"
    assert not [r for r in caplog.records if "corrupt" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="kei_message"):
        assert mb.pop("b")["body"] == "two"
    assert [r for r in caplog.records if "corrupt" in r.getMessage()]
    assert mb.unread("b") == []


def test_a_bus_not_ending_in_newline_from_the_start(mailbox_dir: Path) -> None:
    mailbox_dir.mkdir(mode=0o700)
    bus(mailbox_dir).write_bytes(b"partial")
    mb = Mailbox()
    assert mb.unread("b") == [] and mb.store.end() == 0
    rec = mb.send("hello", to="b", sender="a")
    assert bus(mailbox_dir).read_bytes() == b"partial\n" + records.dumps(rec)
    assert mb.read("b") == [rec]


def test_ids_stay_above_a_foreign_record_with_a_larger_id(mb: Mailbox, mailbox_dir: Path) -> None:
    mb.send("ours", to="b", sender="a")
    future = records.now_us() + 10**12
    with open(bus(mailbox_dir), "ab") as fh:
        fh.write(
            records.dumps(
                {
                    "id": future,
                    "ts": "2026-11-22T00:00:00Z",
                    "from": "x",
                    "to": "b",
                    "body": "from a fast clock",
                }
            )
        )
    rec = mb.send("again", to="b", sender="a")
    assert rec["id"] > future


# ----------------------------------------------------------------------------- legacy buses
def install_fixture(mailbox_dir: Path) -> list[dict[str, object]]:
    mailbox_dir.mkdir(mode=0o700)
    shutil.copyfile(FIXTURE, bus(mailbox_dir))
    os.chmod(bus(mailbox_dir), 0o600)
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def test_a_kei_message_sh_bus_reads_correctly(mailbox_dir: Path) -> None:
    legacy = install_fixture(mailbox_dir)
    mb = Mailbox()
    recs = [e.record for e in mb.store.scan(None)]
    assert None not in recs and len(recs) == len(legacy) == 7
    assert all(isinstance(r["id"], int) for r in recs)  # type: ignore[index]
    assert recs[3]["id"] == 1732003300000000  # type: ignore[index]  (written as a string)
    assert recs[3]["body"] == "schema changed:\nsee docs/api.md"  # type: ignore[index]
    assert mb.get(1732003300000000)["from"] == "backend"
    assert [r["from"] for r in mb.recent(3)] == ["clockskew", "frontend", "qa"]
    # a new reader: personal messages of any age, broadcasts from 2024 are too old
    assert [m["body"] for m in mb.unread("frontend")] == [
        "API is up on :8080",
        "schema changed:\nsee docs/api.md",
        "from a box whose clock ran ahead",
    ]
    assert [m["from"] for m in mb.unread("backend")] == ["frontend", "qa"]


def test_a_kei_message_sh_bus_with_a_long_broadcast_replay(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fixture(mailbox_dir)
    monkeypatch.setenv("KEI_MAILBOX_BROADCAST_REPLAY", "100000d")
    mb = Mailbox()
    # file order, not id order; frontend's own broadcast is not offered back
    assert [m["id"] for m in mb.unread("frontend")] == [
        1732003200000000,
        1732003259000000,
        1732003300000000,
        4102444800000000,
    ]


def test_a_send_on_a_kei_message_sh_bus_gets_a_larger_id_than_every_id(
    mailbox_dir: Path,
) -> None:
    legacy = install_fixture(mailbox_dir)
    top = max(int(r["id"]) for r in legacy)  # type: ignore[call-overload]
    assert top == 4102444800000000  # in the middle of the file, not the last line
    mb = Mailbox()
    mb.read("frontend")
    first = mb.send("new world", to="frontend", sender="backend")
    second = Mailbox().send("and again", to="frontend", sender="qa")
    assert top < first["id"] < second["id"]
    # ts is the real time of sending, not the year 2100 the inflated id would say
    for rec in (first, second):
        assert abs(records.ts_epoch(rec["ts"]) - time.time()) < 60  # type: ignore[operator]
    assert bus(mailbox_dir).read_bytes().startswith(FIXTURE.read_bytes())
    assert [m["body"] for m in Mailbox().read("frontend")] == ["new world", "and again"]


# ----------------------------------------------------------------------------- locks
def hold(path: Path) -> int:
    """Take the lock on ``path`` from another open file description, as another process would."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    portalocker.lock(fd, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
    return fd


def test_the_append_lock_is_portalockers_both_ways(mailbox_dir: Path) -> None:
    """SPEC §3: the append lock is portalocker's. Held by a send, portalocker cannot take it."""
    from kei_message.stores import locks

    mailbox_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = mailbox_dir / "messages.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    probe = (
        "import sys, portalocker\n"
        "f = open(sys.argv[1], 'a')\n"
        "try:\n"
        "    flags = portalocker.LockFlags\n"
        "    portalocker.lock(f, flags.EXCLUSIVE | flags.NON_BLOCKING)\n"
        "except portalocker.AlreadyLocked:\n"
        "    print('held')\n"
        "else:\n"
        "    print('taken')\n"
    )

    def portalocker_says() -> str:
        run = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=30
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    try:
        locks.acquire(fd, str(path), timeout=1)
        assert portalocker_says() == "held"
        locks.release(fd)
        assert portalocker_says() == "taken"
    finally:
        os.close(fd)


def test_a_lock_timeout_is_mailbox_locked_and_writes_nothing(
    mb: Mailbox, mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mb.send("before", to="b", sender="a")
    size = bus(mailbox_dir).stat().st_size
    monkeypatch.setenv("KEI_MAILBOX_LOCK_TIMEOUT", "0.3")
    fd = hold(mailbox_dir / "messages.lock")
    try:
        start = time.monotonic()
        with pytest.raises(MailboxLocked) as info:
            mb.send("blocked", to="b", sender="a")
        waited = time.monotonic() - start
    finally:
        os.close(fd)
    assert 0.3 <= waited < 10
    assert info.value.exit_code == 3
    assert isinstance(info.value, TimeoutError)
    assert info.value.path == str(mailbox_dir / "messages.lock")
    assert "messages.lock" in str(info.value)
    assert bus(mailbox_dir).stat().st_size == size
    mb.send("after", to="b", sender="a")  # the lock is free again
    assert [m["body"] for m in mb.read("b")] == ["before", "after"]


def test_a_reader_lock_timeout_is_mailbox_locked_and_moves_nothing(
    mb: Mailbox, mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mb.send("hello", to="b", sender="a")
    monkeypatch.setenv("KEI_MAILBOX_LOCK_TIMEOUT", "0.2")
    fd = hold(mailbox_dir / "cursors" / ".b.lock")
    try:
        with pytest.raises(MailboxLocked):
            mb.read("b")
        assert mb.count("b") == 1  # peeking needs no lock
    finally:
        os.close(fd)
    assert [m["body"] for m in mb.read("b")] == ["hello"]


# ----------------------------------------------------------------------------- I/O errors
CHILD = textwrap.dedent(
    """
    import resource, sys
    from kei_message.errors import MailboxUnavailable
    from kei_message.mailbox import Mailbox
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    mb = Mailbox()
    try:
        mb.send("z" * int(sys.argv[2]), to="b", sender="a")
    except MailboxUnavailable as exc:
        print("REFUSED", exc.exit_code, exc)
        sys.exit(3)
    print("SENT")
    """
)


@pytest.mark.parametrize("partial_tail", [False, True])
def test_no_partial_record_when_the_file_size_limit_is_hit(
    mb: Mailbox, mailbox_dir: Path, partial_tail: bool
) -> None:
    mb.send("before", to="b", sender="a")
    if partial_tail:
        with open(bus(mailbox_dir), "ab") as fh:
            fh.write(b'{"torn":')
    before = bus(mailbox_dir).read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(len(before) + 5000), "200000"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("REFUSED 3 cannot append")
    assert "nothing was written" in proc.stdout
    assert bus(mailbox_dir).read_bytes() == before
    after = Mailbox().send("after", to="b", sender="a")
    assert [m["id"] for m in mb.read("b")][-1] == after["id"]


def test_fsync_only_when_asked(
    mb: Mailbox, mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    mb.send("plain", to="b", sender="a")
    mb.read("b")
    assert synced == []
    monkeypatch.setenv("KEI_MAILBOX_FSYNC", "1")
    mb.send("durable", to="b", sender="a")
    assert synced == [str(bus(mailbox_dir))]
    mb.read("b")
    assert len(synced) == 2 and "cursors" in synced[1]


# ----------------------------------------------------------------------------- safety
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077, 0o277])
def test_modes_whatever_the_umask(mailbox_dir: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        mb = Mailbox()
        mb.send("hi", to="b", sender="a")
        mb.read("b")
        mb.store.names()
    finally:
        os.umask(old)
    found = 0
    for root, _dirs, files in os.walk(mailbox_dir):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, root
        for name in files:
            found += 1
            path = os.path.join(root, name)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert found >= 4


def test_a_symlinked_bus_is_refused(mailbox_dir: Path, tmp_path: Path) -> None:
    mailbox_dir.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.jsonl"
    target.write_bytes(b"")
    bus(mailbox_dir).symlink_to(target)
    mb = Mailbox()
    with pytest.raises(UnsafeMailbox, match="symlink") as info:
        mb.send("hi", to="b", sender="a")
    assert info.value.exit_code == 3
    with pytest.raises(UnsafeMailbox):
        mb.unread("b")
    assert target.read_bytes() == b""


def test_a_symlinked_cursor_is_refused(mb: Mailbox, mailbox_dir: Path, tmp_path: Path) -> None:
    mb.send("hi", to="b", sender="a")
    target = tmp_path / "cursor-elsewhere"
    target.write_bytes(b"0\n\n")
    (mailbox_dir / "cursors").mkdir(mode=0o700, exist_ok=True)
    (mailbox_dir / "cursors" / "b").symlink_to(target)
    with pytest.raises(UnsafeMailbox, match="symlink"):
        mb.unread("b")
    with pytest.raises(UnsafeMailbox):
        mb.read("b")
    assert target.read_bytes() == b"0\n\n"


def test_a_symlinked_cursors_dir_is_refused(mb: Mailbox, mailbox_dir: Path, tmp_path: Path) -> None:
    mb.send("hi", to="b", sender="a")
    elsewhere = tmp_path / "cursors-elsewhere"
    elsewhere.mkdir(mode=0o700)
    (mailbox_dir / "cursors").symlink_to(elsewhere)
    with pytest.raises(UnsafeMailbox):
        Mailbox().read("b")
    assert list(elsewhere.iterdir()) == []


def test_a_mailbox_dir_owned_by_another_user_is_refused(mailbox_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    mailbox_dir.mkdir(mode=0o700)
    os.chown(mailbox_dir, 4242, 4242)
    with pytest.raises(UnsafeMailbox, match="owned by uid 4242") as info:
        Mailbox().send("hi", to="b", sender="a")
    assert info.value.exit_code == 3
    with pytest.raises(UnsafeMailbox):
        Mailbox().unread("b")
    assert not bus(mailbox_dir).exists()


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_loose_mailbox_dir_is_refused(mailbox_dir: Path, mode: int) -> None:
    mailbox_dir.mkdir()
    mailbox_dir.chmod(mode)
    with pytest.raises(UnsafeMailbox, match="writable by group or others"):
        Mailbox().send("hi", to="b", sender="a")
    with pytest.raises(UnsafeMailbox):
        Mailbox().read("b")
    assert list(mailbox_dir.iterdir()) == []


def test_a_corrupt_cursor_is_reported_not_reset(mb: Mailbox, mailbox_dir: Path) -> None:
    mb.send("hi", to="b", sender="a")
    mb.read("b")
    (mailbox_dir / "cursors" / "b").write_bytes(b"\xffgarbage")
    with pytest.raises(MailboxUnavailable, match="doctor"):
        mb.read("b")


# ----------------------------------------------------------------------------- scanning
CONTENT = st.lists(
    st.one_of(
        st.builds(
            lambda i, body: records.dumps(
                {"id": i, "ts": "2026-11-21T08:00:02Z", "from": "a", "to": "b", "body": body}
            ),
            st.integers(1, 10**16),
            st.text(max_size=30),
        ),
        st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"") + b"\n"),
    ),
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=CONTENT,
    tail=st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")),
    chunk=st.integers(1, 40),
)
def test_scan_reverse_end_and_hints_agree_with_scan(
    mailbox_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: list[bytes],
    tail: bytes,
    chunk: int,
) -> None:
    monkeypatch.setattr(jsonl, "CHUNK", chunk)
    monkeypatch.setattr(jsonl, "TAIL", chunk)
    mailbox_dir.mkdir(mode=0o700, exist_ok=True)
    data = b"".join(content)
    bus(mailbox_dir).write_bytes(data + tail)
    store = JsonlStore(str(mailbox_dir))
    forward = list(store.scan(None))
    assert len(forward) == len(content)
    assert store.end() == len(data)
    pos = 0
    for entry, line in zip(forward, content, strict=True):
        assert (entry.pos, entry.end) == (pos, pos + len(line))
        pos += len(line)
        if entry.record is not None:
            assert entry.record == orjson.loads(line)
    assert list(store.scan_reverse()) == forward[::-1]
    if forward:
        mid = forward[len(forward) // 2]
        assert list(store.scan(mid.pos)) == forward[len(forward) // 2 :]
        assert list(store.scan(None, mid.pos)) == forward[: len(forward) // 2]
    hinted = list(store.scan(None, hint=(b'"b"',)))
    assert hinted == [e for e, line in zip(forward, content, strict=True) if b'"b"' in line]


def _send_from_child(mb: Mailbox) -> None:
    os.environ["KEI_MAILBOX_LOCK_TIMEOUT"] = "0.3"
    try:
        mb.send("child", to="b", sender="c")
    except MailboxLocked:
        os._exit(3)
    os._exit(0)


def test_a_forked_child_does_not_share_the_parents_append_lock(
    mb: Mailbox, mailbox_dir: Path
) -> None:
    import multiprocessing

    from kei_message.stores.locks import acquire, release

    mb.send("parent", to="b", sender="a")  # the store now caches its lock descriptor
    store = mb.store
    assert isinstance(store, JsonlStore) and store._lock_fd is not None
    acquire(store._lock_fd, store.lock_path)  # as if the parent were mid-append
    try:
        child = multiprocessing.get_context("fork").Process(target=_send_from_child, args=(mb,))
        child.start()
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join(5)
        # before the fix the child's flock on the inherited descriptor succeeded
        assert child.exitcode == 3
    finally:
        release(store._lock_fd)
    mb.send("parent again", to="b", sender="a")
    assert [m["body"] for m in mb.read("b")] == ["parent", "parent again"]


# ----------------------------------------------------------------------------- a deleted bus
def test_a_deleted_bus_does_not_hide_new_messages_from_old_readers(
    mb: Mailbox, mailbox_dir: Path
) -> None:
    for i in range(5):
        mb.send(f"old {i}", to="b", sender="a")
    mb.send("for c", to="c", sender="a")
    mb.send("c waits for this one", to="c", sender="z")
    assert len(mb.read("b")) == 5
    assert mb.wait("c", sender="z", timeout=1)["body"] == "c waits for this one"
    mb.store.names()  # the names index holds a position too
    bus(mailbox_dir).unlink()  # what kei-message.sh users did to start over
    fresh = Mailbox()
    fresh.send("new", to="b", sender="a")
    fresh.send("new for c", to="c", sender="a")
    assert [m["body"] for m in Mailbox().read("b")] == ["new"]
    assert [m["body"] for m in Mailbox().read("c")] == ["new for c"]
    assert [m["body"] for m in Mailbox().read("d")] == []
    assert stat.S_IMODE((mailbox_dir / "messages.base").stat().st_mode) == 0o600
    assert sorted(os.listdir(mailbox_dir)) == [
        "cursors",
        "index",
        "messages.base",
        "messages.jsonl",
        "messages.lock",
        "receipts.jsonl",  # beside the bus, never in it (#16)
    ]
    assert stat.S_IMODE((mailbox_dir / "receipts.jsonl").stat().st_mode) == 0o600
    assert set(Mailbox().known_names()) >= {"a", "b", "c"}
    ids = [e.record["id"] for e in Mailbox().store.scan(None) if e.record]
    assert len(ids) == 2 and ids[0] > 0


def test_a_first_bus_has_no_base_file(mb: Mailbox, mailbox_dir: Path) -> None:
    mb.send("hi", to="b", sender="a")
    assert not (mailbox_dir / "messages.base").exists()
    assert mb.store.end() == bus(mailbox_dir).stat().st_size
