"""Faults (issue 7): disk full, file-size limit, a lock held forever, a read-only
mailbox, a garbage cursor. Each must end in exit 3 (or the hook's silent 0) with
the bus byte-for-byte as it was, and lose nothing.

Budget: about 25 s on a busy 2-core machine (one CLI process is ~0.4 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability import (
    assert_clean_error,
    hook_available,
    kei,
    reap,
    remount,
    tmpfs,
)

from kei_message.mailbox import Mailbox


def _fill(mb: Mailbox, n: int, size: int = 1000) -> None:
    for i in range(n):
        mb.send(f"{i:06d} " + "x" * size, to="bob", sender="alice")


def _limit_fsize(limit: int):  # type: ignore[no-untyped-def]
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


# ----------------------------------------------------------------------------- file-size limit
@pytest.mark.parametrize("partial_tail", [False, True], ids=["clean", "partial-tail"])
def test_file_size_limit_mid_write_exits_3_and_leaves_bus_as_before(
    mailbox_dir: Path, partial_tail: bool
) -> None:
    mb = Mailbox()
    _fill(mb, 20)
    bus = Path(mb.store.location)
    if partial_tail:
        with open(bus, "ab") as fh:  # a writer that died mid-write
            fh.write(b'{"id":1,"ts":"2026-01-01T00:00:00Z","from":"x","to":"bob","bo')
    before = bus.read_bytes()
    # The limit falls inside the record: the write starts, then EFBIG (SIGXFSZ ignored).
    proc = kei(
        "send",
        "--from",
        "alice",
        "--to",
        "bob",
        input="y" * 200_000,
        preexec_fn=_limit_fsize(len(before) + 4096),
    )
    line = assert_clean_error(proc, 3)
    assert "nothing was written" in line or "cannot" in line, line
    assert bus.read_bytes() == before
    # The bus is still good: the next send works and every old message is there.
    assert kei("send", "--from", "alice", "--to", "bob", "after").returncode == 0
    bodies = [r["body"] for r in Mailbox().read("bob")]
    assert bodies[:20] == [f"{i:06d} " + "x" * 1000 for i in range(20)]
    assert bodies[20:] == ["after"]


def test_file_size_limit_in_the_library_raises_and_truncates(mailbox_dir: Path) -> None:
    """The same through the library, in a child (RLIMIT_FSIZE is per process)."""
    mb = Mailbox()
    _fill(mb, 5)
    bus = Path(mb.store.location)
    before = bus.read_bytes()
    code = (
        "import sys\n"
        "from kei_message.mailbox import Mailbox\n"
        "from kei_message.errors import MailboxUnavailable\n"
        "try:\n"
        "    Mailbox().send('z' * 500_000, to='bob', sender='alice')\n"
        "except MailboxUnavailable as exc:\n"
        "    print('unavailable', exc); sys.exit(3)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=60,
        preexec_fn=_limit_fsize(len(before) + 100_000),
    )
    assert proc.returncode == 3, proc.stderr.decode()
    assert bus.read_bytes() == before


# ----------------------------------------------------------------------------- disk full
def test_disk_full_exits_3_and_leaves_bus_as_before(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with tmpfs(tmp_path / "small", "1m") as mnt:
        box = mnt / "mailbox"
        monkeypatch.setenv("KEI_MAILBOX_DIR", str(box))
        mb = Mailbox()
        _fill(mb, 8, size=100_000)  # ~800 KB of the 1 MiB
        bus = Path(mb.store.location)
        before = bus.read_bytes()
        proc = kei("send", "--from", "alice", "--to", "bob", input="w" * 400_000)
        line = assert_clean_error(proc, 3)
        assert "No space left" in line or "nothing was written" in line, line
        assert bus.read_bytes() == before
        # Every message is still readable, none torn.
        got = Mailbox().unread("bob")
        assert [r["body"][:6] for r in got] == [f"{i:06d}" for i in range(8)]
        # A message that fits still goes through; doctor finds the bus healthy.
        assert kei("send", "--from", "alice", "--to", "bob", "small").returncode == 0
        doc = kei("doctor")
        assert doc.returncode == 0, doc.stdout.decode()
        # Completely full: reading prints, cannot commit its cursor (exit 3), and the
        # messages come again once there is room: at least once, never lost.
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"f" * 4096)
        os.close(fd)
        first = kei("inbox", "--me", "bob")
        assert_clean_error(first, 3)
        filler.unlink()
        again = kei("inbox", "--me", "bob")
        assert again.returncode == 0, again.stderr.decode()
        assert again.stdout.count(b"small") == 1 and b"000007" in again.stdout
        assert kei("inbox", "--me", "bob", "--count").stdout.strip() == b"0"


# ----------------------------------------------------------------------------- lock held forever
HOLD = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)


def _hold(path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    procs.append(p)
    assert p.stdout is not None
    assert p.stdout.readline() == b"held\n"


def test_append_lock_held_forever_send_exits_3_after_timeout(mailbox_dir: Path) -> None:
    mb = Mailbox()
    _fill(mb, 3)
    bus = Path(mb.store.location)
    before = bus.read_bytes()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _hold(mailbox_dir / "messages.lock", procs)
        start = time.monotonic()
        proc = kei(
            "send", "--from", "alice", "--to", "bob", "hi", env={"KEI_MAILBOX_LOCK_TIMEOUT": "1"}
        )
        took = time.monotonic() - start
        line = assert_clean_error(proc, 3)
        assert "locked" in line and "messages.lock" in line, line
        assert took >= 1.0
        assert bus.read_bytes() == before
        # doctor names the process that holds it.
        doc = kei("doctor")
        assert doc.returncode == 1
        assert f"pid {procs[0].pid}" in doc.stdout.decode()
    finally:
        reap(procs)
    assert kei("send", "--from", "alice", "--to", "bob", "hi").returncode == 0


def test_reader_lock_held_forever_inbox_exits_3_hook_exits_0_fast(mailbox_dir: Path) -> None:
    mb = Mailbox()
    _fill(mb, 3)
    mb.read("bob")
    mb.send("pending", to="bob", sender="alice")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        (mailbox_dir / "cursors").mkdir(exist_ok=True)
        _hold(mailbox_dir / "cursors" / ".bob.lock", procs)
        _hold(mailbox_dir / "messages.lock", procs)
        proc = kei("inbox", "--me", "bob", env={"KEI_MAILBOX_LOCK_TIMEOUT": "1"})
        assert_clean_error(proc, 3)
        assert b"pending" not in proc.stdout  # nothing delivered that is not marked
        if not hook_available():
            pytest.skip("kei_message.hooks is not written yet (issue 4): hook half skipped")
        payload = json.dumps({"session_id": "s1", "cwd": "/tmp/bob", "prompt": "hi"})
        start = time.monotonic()
        hook = kei(
            "user-prompt-submit",
            input=payload,
            script="kei-message-hook",
            env={"KEI_MAILBOX_ME": "bob"},
        )
        took = time.monotonic() - start
        assert hook.returncode == 0, hook.stderr.decode()
        assert b"Traceback" not in hook.stderr
        # Generous bound for a busy machine; the hook's own limit is 2 s.
        assert took < 2.0 + 1.5, took
    finally:
        reap(procs)
    # Released: the message was never lost.
    assert [r["body"] for r in Mailbox().read("bob")] == ["pending"]


# ----------------------------------------------------------------------------- read-only dir
def test_read_only_mailbox(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Root ignores mode bits, so "read-only" has to come from the file system.
    with tmpfs(tmp_path / "ro", "4m") as mnt:
        box = mnt / "mailbox"
        monkeypatch.setenv("KEI_MAILBOX_DIR", str(box))
        mb = Mailbox()
        _fill(mb, 2)
        mb.read("bob")
        mb.send("unread one", to="bob", sender="alice")
        bus = Path(mb.store.location)
        before = bus.read_bytes()
        mb.store.close()  # a file open for writing keeps the mount busy
        remount(mnt, "ro")
        try:
            assert_clean_error(kei("send", "--from", "alice", "--to", "bob", "x"), 3)
            peek = kei("inbox", "--peek", "--me", "bob")
            assert peek.returncode == 0, peek.stderr.decode()
            assert b"unread one" in peek.stdout
            assert kei("list").returncode == 0
            # Reading for real cannot commit its cursor: exit 3, and the message stays unread.
            assert_clean_error(kei("inbox", "--me", "bob"), 3)
            if hook_available():
                hook = kei(
                    "user-prompt-submit",
                    input=json.dumps({"session_id": "s", "cwd": "/x/bob", "prompt": "p"}),
                    script="kei-message-hook",
                    env={"KEI_MAILBOX_ME": "bob"},
                )
                assert hook.returncode == 0 and b"Traceback" not in hook.stderr
            assert kei("doctor").returncode in (0, 1)
            assert bus.read_bytes() == before
        finally:
            remount(mnt, "rw")
        assert [r["body"] for r in Mailbox().read("bob")] == ["unread one"]


# ----------------------------------------------------------------------------- garbage cursor
@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00\xff\xfe", b"12 not a number\n\n", b"123", b"-5\nabc\n", b"9" * 5000],
    ids=["empty", "binary", "words", "no-newline", "negative", "huge"],
)
def test_garbage_cursor(mailbox_dir: Path, garbage: bytes) -> None:
    mb = Mailbox()
    mb.send("one", to="bob", sender="alice")
    mb.read("bob")
    mb.send("two", to="bob", sender="alice")
    (mailbox_dir / "cursors" / "bob").write_bytes(garbage)
    proc = kei("inbox", "--me", "bob")
    if proc.returncode == 0:
        # Tolerated (parsed as a position): it must not have skipped "two".
        assert b"two" in proc.stdout or b"one" in proc.stdout
    else:
        line = assert_clean_error(proc, 3)
        assert "doctor" in line
    if hook_available():
        hook = kei(
            "user-prompt-submit",
            input=json.dumps({"session_id": "s1", "cwd": "/w/bob", "prompt": "hi"}),
            script="kei-message-hook",
        )
        assert hook.returncode == 0 and b"Traceback" not in hook.stderr
    doc = kei("doctor")
    if proc.returncode != 0:
        assert doc.returncode == 1 and b"garbage cursor" in doc.stdout, doc.stdout.decode()
    fixed = kei("doctor", "--repair")
    assert fixed.returncode == 0, fixed.stdout.decode()
    assert kei("doctor").returncode == 0
    after = kei("inbox", "--me", "bob")
    assert after.returncode == 0, after.stderr.decode()
    if proc.returncode != 0:
        # Reset to a new reader: personal messages of any age come back; none is lost.
        assert b"two" in after.stdout
    quarantined = list((mailbox_dir / "quarantine").glob("cursor-bob-*"))
    assert proc.returncode == 0 or [q.read_bytes() for q in quarantined] == [garbage]
    assert os.stat(mailbox_dir / "cursors").st_mode & 0o777 == 0o700
