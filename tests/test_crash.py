"""Crashes (issue 7): senders and consumers killed with SIGKILL at random moments.

- Senders killed mid-append, 200+ rounds: every send that returned (library) or
  exited 0 (CLI) is in the bus, intact; no two records ever merge; a reader
  running through it all skips the torn lines and goes on; ids strictly
  increase in file order; doctor finds every torn line and quarantines it
  without touching a record.
- Consumers killed between output and cursor commit redeliver, never lose.

Senders are forked from the test process (``os.fork``: no interpreter start-up,
so a round costs milliseconds and the kill lands inside ``append`` often).
Budget: about 60 s (slow).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import random
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from reliability import BIN, kei

from kei_message.mailbox import Mailbox
from kei_message.records import CorruptLine, parse

ROUNDS = 200
SENDERS_PER_ROUND = 3
MAX_BODY = 1 << 17  # 128 KiB: keeps the bus well under 100 MB over the rounds
CLI_ROUNDS = 20
KILL_WINDOW = 0.002  # seconds after a sender is ready
PER_SENDER = 15  # sends before a sender idles: 600 senders x 15 x ~11 KB mean


_POOL = "".join(random.Random(3).choices('abcdefghijklmnopqrstuvwxyz \n"\\é', k=MAX_BODY))


def _body(rng: random.Random, who: str, seq: int) -> str:
    """A log-uniform body, cheap to make (a slice of a pool) so senders spend their
    time appending, and self-checking (a digest of the rest) so tears show."""
    size = int(math.exp(rng.uniform(0, math.log(MAX_BODY - 200))))
    start = rng.randrange(len(_POOL) - size + 1)
    filler = _POOL[start : start + size] + "."  # the CLI strips a trailing newline
    digest = hashlib.sha256(filler.encode()).hexdigest()[:16]
    return f"{who}:{seq}:{digest}:{filler}"


def _intact(body: str) -> tuple[str, int] | None:
    who, seq, digest, filler = body.split(":", 3)
    if hashlib.sha256(filler.encode()).hexdigest()[:16] != digest:
        return None
    return who, int(seq)


def _fork(fn: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            fn()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    return pid


def _sender(who: str, seed: int, acks: str, to: str, ready: int) -> Callable[[], None]:
    def run() -> None:
        rng = random.Random(seed)
        mb = Mailbox()
        fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        # Bodies first, then "ready": from then on the sender is all appends, so a
        # random kill lands inside one far more often than in our own set-up.
        bodies = [_body(rng, who, seq) for seq in range(PER_SENDER)]
        os.write(ready, b"r")
        for seq, body in enumerate(bodies):
            rec = mb.send(body, to=to, sender=who)
            # The send returned: from here on it must be in the bus.
            os.write(fd, f"{who} {seq} {rec['id']}\n".encode())
        time.sleep(60)  # wait for the kill; keeps the bus near 100 MB on a fast machine

    return run


def _consumer(reader: str, out: str, stop: str, one: bool = False) -> Callable[[], None]:
    """Consume ``reader``'s messages (all at once, or ``one`` by one with pop), writing
    each id to ``out`` before the cursor moves; ends once ``stop`` exists and all is read."""

    def run() -> None:
        from kei_message.errors import NothingToReturn

        mb = Mailbox()
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

        def deliver(recs: list[dict[str, object]]) -> None:
            os.write(fd, b"".join(f"{r['id']}\n".encode() for r in recs))

        idle = 0
        while True:
            if one:
                try:
                    got = [mb.pop(reader, deliver=lambda r: deliver([r]))]
                except NothingToReturn:
                    got = []
            else:
                got = mb.read(reader, deliver=deliver)
            if got:
                idle = 0
                continue
            if os.path.exists(stop):
                idle += 1
                if idle > 3:
                    return
            mb.store.wait_for_change(mb.store.end(), 0.05)

    return run


def _scan_bus(path: Path) -> tuple[list[dict[str, object]], list[bytes], bytes]:
    """(records in file order, corrupt lines, partial tail)."""
    data = path.read_bytes()
    *lines, tail = data.split(b"\n")
    recs, corrupt = [], []
    for line in lines:
        try:
            recs.append(parse(line))
        except CorruptLine:
            corrupt.append(line)
    return recs, corrupt, tail


def _cli_round(rng: random.Random, rnd: int) -> int | None:
    """A `kei-message send` killed at a random moment; its id when it exited 0 first."""
    body = _body(rng, f"cli{rnd}", 0)
    p = subprocess.Popen(
        [str(BIN / "kei-message"), "send", "--from", f"cli{rnd}", "--to", "watcher"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with contextlib.suppress(BrokenPipeError):
            p.stdin.write(body.encode())  # type: ignore[union-attr]
            p.stdin.close()  # type: ignore[union-attr]
        time.sleep(rng.uniform(0.1, 1.5))
        p.kill()
        p.wait(timeout=30)
        outp = p.stdout.read()  # type: ignore[union-attr]
    finally:
        p.stdout.close()  # type: ignore[union-attr]
        p.stderr.close()  # type: ignore[union-attr]
    return int(outp.decode().rsplit("#", 1)[1]) if p.returncode == 0 else None


@pytest.fixture
def cleanup(mailbox_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """These buses are large: remove them now rather than leave them to pytest's tmp dirs."""
    import shutil

    yield
    shutil.rmtree(mailbox_dir, ignore_errors=True)
    for name in ("acks", "delivered", "out"):
        (tmp_path / name).unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.usefixtures("cleanup")
def test_senders_killed_mid_append(mailbox_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(7)
    acks = str(tmp_path / "acks")
    out = str(tmp_path / "delivered")
    stop = str(tmp_path / "stop")
    Mailbox().send("first", to="all", sender="setup")  # the bus exists before the reader
    reader = _fork(_consumer("watcher", out, stop))
    torn_tails = 0
    killed = 0
    cli_ok: list[int] = []
    try:
        for rnd in range(ROUNDS):
            if rnd % (ROUNDS // CLI_ROUNDS) == 0:
                rid = _cli_round(rng, rnd)
                if rid is not None:
                    cli_ok.append(rid)
            pipes = [os.pipe() for _ in range(SENDERS_PER_ROUND)]
            try:
                pids = [
                    _fork(_sender(f"s{rnd}x{k}", rng.randrange(1 << 30), acks, "watcher", w))
                    for k, (_, w) in enumerate(pipes)
                ]
                for pid, (r, _) in zip(pids, pipes, strict=True):
                    assert select.select([r], [], [], 60)[0], "a sender never got ready"
                    time.sleep(rng.uniform(0.0, KILL_WINDOW))
                    os.kill(pid, signal.SIGKILL)
            finally:
                for fds in pipes:
                    os.close(fds[0])
                    os.close(fds[1])
            for pid in pids:
                _, status = os.waitpid(pid, 0)
                assert os.WIFSIGNALED(status), f"a sender died of something else: {status}"
                killed += 1
            with open(mailbox_dir / "messages.jsonl", "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                torn_tails += fh.read(1) != b"\n"
        Path(stop).touch()
        _, status = os.waitpid(reader, 0)
        reader = 0
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        if reader:
            os.kill(reader, signal.SIGKILL)
            os.waitpid(reader, 0)

    bus = mailbox_dir / "messages.jsonl"
    bus_size = bus.stat().st_size
    recs, corrupt, tail = _scan_bus(bus)
    # No two records ever merge: every torn line holds the start of exactly one record.
    for line in corrupt + ([tail] if tail else []):
        assert line.count(b'{"id":') == 1 and line.startswith(b'{"id":'), line[:200]
    # Every record is intact, ids strictly increase in file order.
    ids = [int(r["id"]) for r in recs]  # type: ignore[call-overload]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    present = {}
    for r in recs[1:]:
        key = _intact(str(r["body"]))
        assert key is not None, "a record's body was torn"
        assert key not in present, "a record was written twice"
        present[key] = int(r["id"])  # type: ignore[call-overload]
    # Every acknowledged send is there, under the id it was given.
    acked = [ln.split() for ln in Path(acks).read_text().splitlines()]
    for who, seq, rid in acked:
        assert present.get((who, int(seq))) == int(rid), (who, seq)
    assert set(cli_ok) <= set(present.values())
    # The reader skipped the torn lines and went on: each record exactly once.
    delivered = [int(x) for x in Path(out).read_text().split()]
    assert sorted(delivered) == sorted([int(recs[0]["id"]), *present.values()])  # type: ignore[call-overload]
    # doctor finds every torn line (plus a torn tail) and quarantines them; no record moves.
    doc = kei("doctor")
    n_bad = len(corrupt) + (1 if tail else 0)
    assert (doc.returncode == 1) == (n_bad > 0)
    assert doc.stdout.decode().count("corrupt line") == len(corrupt)
    before = {r["id"]: r for r in recs}
    assert kei("doctor", "--repair").returncode == 0
    recs2, corrupt2, tail2 = _scan_bus(bus)
    assert corrupt2 == [] or all(not c.strip() for c in corrupt2)
    assert tail2 == b""
    assert {r["id"]: r for r in recs2} == before
    q = [
        orjson.loads(ln)
        for f in (mailbox_dir / "quarantine").glob("bus-*")
        for ln in f.read_bytes().splitlines()
    ]
    assert sorted(base64.b64decode(x["raw_b64"]) for x in q) == sorted(
        corrupt + ([tail] if tail else [])
    )
    assert kei("doctor").returncode == 0
    print(
        f"\ncrash figures: rounds={ROUNDS} senders killed={killed} cli sends killed/ok="
        f"{CLI_ROUNDS - len(cli_ok)}/{len(cli_ok)} acked={len(acked)} records={len(recs)} "
        f"bus={bus_size >> 20} MB "
        f"torn lines={len(corrupt)} torn tails seen={torn_tails} lost=0"
    )
    assert len(corrupt) > 0 or torn_tails > 0, "no kill ever landed mid-append: test too weak"


# ----------------------------------------------------------------------------- consumers
def test_consumer_killed_after_output_before_commit_redelivers(
    mailbox_dir: Path, tmp_path: Path
) -> None:
    mb = Mailbox()
    for i in range(5):
        mb.send(f"m{i}", to="bob", sender="alice")
    out = tmp_path / "out"

    def crash_after_output() -> None:
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

        def deliver(recs: list[dict[str, object]]) -> None:
            os.write(fd, b"".join(f"{r['body']}\n".encode() for r in recs))
            os.kill(os.getpid(), signal.SIGKILL)  # output is out, cursor not committed

        Mailbox().read("bob", deliver=deliver)

    pid = _fork(crash_after_output)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    assert out.read_text().split() == [f"m{i}" for i in range(5)]
    # Redelivered, not lost.
    assert [r["body"] for r in Mailbox().read("bob")] == [f"m{i}" for i in range(5)]


@pytest.mark.slow
@pytest.mark.usefixtures("cleanup")
def test_consumers_killed_at_random_lose_nothing(mailbox_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(11)
    mb = Mailbox()
    sent = [
        mb.send(f"n{i} " + "p" * rng.randrange(50_000), to="bob", sender="alice")["id"]
        for i in range(400)
    ]
    out = str(tmp_path / "out")
    stop = str(tmp_path / "stop")
    kills = 0
    for _ in range(60):
        pids = [_fork(_consumer("bob", out, stop, one=k == 0)) for k in range(2)]
        time.sleep(rng.uniform(0.0, 0.05))
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            kills += 1
        if rng.random() < 0.2:
            mb.send("late " + str(rng.random()), to="bob", sender="alice")
    # CLI consumers killed at random, reading what they printed before dying.
    printed: list[str] = []
    for _ in range(6):
        p = subprocess.Popen(
            [str(BIN / "kei-message"), "inbox", "--me", "bob", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, 0.7))
        p.kill()
        outp, _ = p.communicate(timeout=30)
        printed += outp.decode("utf-8", "replace").splitlines()
    Path(stop).touch()
    _consumer("bob", out, stop)()  # a survivor drains the rest
    delivered = [int(x) for x in Path(out).read_text().split()]
    for ln in printed:
        # A line cut off by the kill is skipped: its cursor was not committed either.
        with contextlib.suppress(ValueError):
            delivered.append(json.loads(ln)["id"])
    everything = [r["id"] for r in mb.recent(100_000) if r["to"] == "bob"]
    assert set(everything) >= set(sent)
    missing = set(everything) - set(delivered)
    assert not missing, f"{len(missing)} messages lost"
    assert mb.unread("bob") == []
    # Consumers killed mid-commit leave temp files at most: doctor clears them.
    assert kei("doctor", "--repair").returncode == 0
    assert kei("doctor").returncode == 0
    print(
        f"\nconsumer crash figures: kills={kills + 6} messages={len(everything)} "
        f"deliveries={len(delivered)} redelivered={len(delivered) - len(set(delivered))} lost=0"
    )
