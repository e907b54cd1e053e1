"""Load (issue 7): 16 processes send 500 records each, bodies log-uniform from 1 byte
to 256 KiB (a bus of ~150-200 MB), through the library and through the CLI, while
4 processes consume as one identity and 4 as others.

Checked: every record present once and intact (each sender's bodies appear in
the bus in the order it sent them, byte for byte), no line torn, ids strictly
increasing in file order, each message delivered exactly once per reader.

Budget: about 3 minutes on a busy 2-core machine (slow). The bus is deleted
at the end.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stdout, suppress
from pathlib import Path

import pytest
from reliability import BIN

from kei_message.mailbox import Mailbox
from kei_message.records import CorruptLine, parse

SENDERS = 16  # the first half send through the library, the rest through the CLI
RECORDS = 500
MAX_BODY = 256 * 1024
REAL_EVERY = 50  # CLI senders run every 50th send as a real `kei-message send` process
ALPHA = 4  # consumers sharing the identity "alpha"
OTHERS = ("beta1", "beta2", "beta3", "beta4")
TIMEOUT = 600.0

_POOL = "".join(
    random.Random(5).choices(
        'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n\t"\\é€😀\x1b',
        k=MAX_BODY,
    )
)


def _body(rng: random.Random) -> str:
    """1 byte to 256 KiB, log-uniform; never blank, never ending in a newline."""
    size = int(math.exp(rng.uniform(0, math.log(MAX_BODY))))
    start = rng.randrange(len(_POOL) - size + 1)
    text = _POOL[start : start + size]
    while len(text.encode()) > MAX_BODY:
        text = text[:-1]
    return text[:-1] + rng.choice("xyz") if text else rng.choice("xyz")


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


class Children:
    """Forked workers, reaped however the test ends."""

    def __init__(self) -> None:
        self.pids: list[int] = []

    def fork(self, fn: Callable[[], None]) -> int:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                fn()
                code = 0
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        self.pids.append(pid)
        return pid

    def wait(self, pids: list[int], deadline: float) -> None:
        left = set(pids)
        while left:
            for pid in list(left):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    left.discard(pid)
                    self.pids.remove(pid)
                    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (pid, status)
            if left:
                assert time.monotonic() < deadline, f"{len(left)} workers still running"
                time.sleep(0.05)

    def reap(self) -> None:
        for pid in self.pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in self.pids:
            with suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pids.clear()


def _sender(k: int, work: Path) -> Callable[[], None]:
    def run() -> None:
        rng = random.Random(1000 + k)
        me = f"s{k}"
        via_cli = k >= SENDERS // 2
        mb = Mailbox()
        manifest = []
        for seq in range(RECORDS):
            body = _body(rng)
            to = rng.choice(["alpha", *OTHERS, "all"])
            if not via_cli:
                rid = mb.send(body, to=to, sender=me)["id"]
            elif seq % REAL_EVERY == 0:
                proc = subprocess.run(
                    [str(BIN / "kei-message"), "send", "--from", me, "--to", to],
                    input=body.encode(),
                    capture_output=True,
                    timeout=120,
                )
                assert proc.returncode == 0, proc.stderr
                rid = int(proc.stdout.decode().rsplit("#", 1)[1])
            else:
                rid = _cli_send(me, to, body)
            manifest.append(f"{_digest(body)} {to} {rid}\n")
        (work / f"manifest-{me}").write_text("".join(manifest))

    return run


def _cli_send(me: str, to: str, body: str) -> int:
    """`kei message send` in this process: the CLI's parsing, stdin body and output."""
    from kei_message.cli import main

    old = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(body.encode()), encoding="utf-8")
    out = io.StringIO()
    try:
        with redirect_stdout(out), pytest.raises(SystemExit) as exit_:
            main(["send", "--from", me, "--to", to])
    finally:
        sys.stdin = old
    assert exit_.value.code == 0, out.getvalue()
    return int(out.getvalue().rsplit("#", 1)[1])


def _consumer(reader: str, mode: str, out: Path, stop: Path) -> Callable[[], None]:
    def run() -> None:
        from kei_message.errors import NothingToReturn

        # Four tight-loop consumers of one identity, each pop rescanning a backlog of
        # up to ~100 MB while 16 senders hammer the disk: the polled reader lock is not
        # FIFO, so one may wait longer than the 10 s default. That is not what this
        # test is about (exactly-once is), so give it room; see the closing notes.
        os.environ["KEI_MAILBOX_LOCK_TIMEOUT"] = "300"
        rng = random.Random(reader + mode + str(out))
        mb = Mailbox()
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

        def deliver(recs: list[dict[str, object]]) -> None:
            os.write(fd, b"".join(f"{r['id']}\n".encode() for r in recs))

        idle = 0
        while idle < 3:
            stopping = stop.exists()
            if mode == "pop":
                try:
                    got = [mb.pop(reader, deliver=lambda r: deliver([r]))]
                except NothingToReturn:
                    got = []
            elif mode == "cli":
                got = _cli_inbox(reader, deliver)
            else:
                got = mb.read(reader, deliver=deliver)
            if got:
                idle = 0
                time.sleep(rng.uniform(0, 0.02))  # a real consumer does something with it
            elif stopping:
                idle += 1
            else:
                mb.store.wait_for_change(mb.store.end(), 0.1)

    return run


def _cli_inbox(reader: str, deliver: Callable[[list[dict[str, object]]], None]) -> list[object]:
    """`kei message inbox --json` in this process; what it printed counts as delivered."""
    import orjson

    from kei_message.cli import main

    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main(["inbox", "--me", reader, "--json"])
    assert exit_.value.code == 0, out.getvalue()
    recs = [orjson.loads(ln) for ln in out.getvalue().splitlines() if ln]
    if recs:
        deliver(recs)
    return recs


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sixteen_senders_eight_consumers(mailbox_dir: Path, tmp_path: Path) -> None:
    from kei_message.cli import get_app

    get_app()  # import the CLI before forking, so children share it
    work = tmp_path / "work"
    work.mkdir()
    stop = work / "stop"
    Mailbox().send("start", to="nobody", sender="setup")  # the bus exists before readers
    kids = Children()
    start = time.monotonic()
    deadline = start + TIMEOUT
    try:
        consumers = [
            kids.fork(_consumer("alpha", mode, work / f"alpha-{i}", stop))
            for i, mode in enumerate(["read", "read", "pop", "cli"][:ALPHA])
        ]
        consumers += [
            kids.fork(_consumer(name, "read", work / f"{name}-0", stop)) for name in OTHERS
        ]
        senders = [kids.fork(_sender(k, work)) for k in range(SENDERS)]
        kids.wait(senders, deadline)
        sent_at = time.monotonic()
        stop.touch()
        kids.wait(consumers, deadline)
    finally:
        kids.reap()
    took = time.monotonic() - start

    bus = mailbox_dir / "messages.jsonl"
    size = bus.stat().st_size
    recs = []
    with open(bus, "rb") as fh:
        for n, line in enumerate(fh, start=1):
            assert line.endswith(b"\n"), f"line {n} has no newline"
            try:
                recs.append(parse(line[:-1]))
            except CorruptLine as exc:
                raise AssertionError(f"line {n} is torn: {exc}") from None
    recs = recs[1:]  # the setup record
    ids = [r["id"] for r in recs]
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False)), "ids not strictly increasing"
    assert len(recs) == SENDERS * RECORDS
    # Every record present once, intact, in each sender's order, under the id it was given.
    for k in range(SENDERS):
        want = (work / f"manifest-s{k}").read_text().splitlines()
        got = [f"{_digest(r['body'])} {r['to']} {r['id']}" for r in recs if r["from"] == f"s{k}"]
        assert got == want, f"sender s{k}: bus differs from what it sent"
    # Each message delivered exactly once per reader.
    for reader in ("alpha", *OTHERS):
        expected = sorted(r["id"] for r in recs if r["to"] in (reader, "all"))
        delivered = sorted(int(x) for f in work.glob(f"{reader}-*") for x in f.read_text().split())
        dupes = len(delivered) - len(set(delivered))
        assert dupes == 0, f"{reader}: {dupes} messages delivered twice"
        assert delivered == expected, f"{reader}: {len(set(expected) - set(delivered))} missing"
    per_alpha = [len(f.read_text().split()) for f in sorted(work.glob("alpha-*"))]
    print(
        f"\nload figures: senders={SENDERS} records={len(recs)} bus={size >> 20} MB "
        f"consumers={ALPHA}+{len(OTHERS)} alpha split={per_alpha} "
        f"send phase={sent_at - start:.0f}s total={took:.0f}s lost=0 duplicated=0"
    )
    shutil.rmtree(mailbox_dir)
    shutil.rmtree(work)
