"""Real processes at once (SPEC §3, §4): nothing lost, torn, merged or duplicated.

Workers are separate interpreters (spawn), coordinated with Events; every wait
has a timeout, and ``reaping`` terminates whatever is still running however
the test ends.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CTX = multiprocessing.get_context("spawn")
SENDERS = 8
PER_SENDER = 200
MAX_BODY = 200 * 1024
START_TIMEOUT = 60.0


@contextmanager
def reaping(procs: list[BaseProcess]) -> Iterator[list[BaseProcess]]:
    """Start ``procs``; whatever happens, leave none of them running."""
    try:
        for p in procs:
            p.start()
        yield procs
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)


def join_all(procs: list[BaseProcess], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.1, deadline - time.monotonic()))
    stuck = [p.name for p in procs if p.is_alive()]
    assert not stuck, f"workers still running after {timeout:g}s: {stuck}"
    assert [p.exitcode for p in procs] == [0] * len(procs)


def body_for(sender: int, seq: int) -> str:
    """A body of a few bytes to 200 KB, log-uniform, carrying its own checksum."""
    rng = random.Random(sender * 100_003 + seq)
    size = int(4 * (MAX_BODY / 4) ** rng.random())
    alphabet = 'abcdefghij \n"\\é€🎉'
    payload = "".join(rng.choice(alphabet) for _ in range(min(size, 64)))
    payload = (payload * (size // max(1, len(payload)) + 1))[:size]
    digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
    return f"{sender}:{seq}:{digest}:{payload}"


def check_body(body: str) -> tuple[int, int]:
    sender, seq, digest, payload = body.split(":", 3)
    assert hashlib.sha256(payload.encode()).hexdigest()[:12] == digest, "body corrupted"
    return int(sender), int(seq)


# ----------------------------------------------------------------------------- workers
def _sender(index: int, count: int, to: str, go: Any, out: str | None) -> None:
    from kei_message.mailbox import Mailbox

    if not go.wait(START_TIMEOUT):
        raise SystemExit(9)
    mb = Mailbox()
    with open(out, "w") if out else open(os.devnull, "w") as fh:
        for seq in range(count):
            rec = mb.send(body_for(index, seq), to=to, sender=f"sender{index}")
            fh.write(f"{rec['id']}\n")


def _consumer(index: int, reader: str, go: Any, all_sent: Any, out: str) -> None:
    """Consume ``reader``'s mail one way or another, logging each id before commit."""
    from kei_message.errors import NothingToReturn
    from kei_message.mailbox import Mailbox

    if not go.wait(START_TIMEOUT):
        raise SystemExit(9)
    mb = Mailbox()
    style = index % 4
    deadline = time.monotonic() + 240
    with open(out, "w") as fh:

        def log(recs: list[dict[str, Any]]) -> None:
            for rec in recs:
                fh.write(f"{rec['id']}\n")
            fh.flush()

        while time.monotonic() < deadline:
            finished = all_sent.is_set()  # read before consuming: then empty means done
            try:
                if style == 0:
                    got = mb.read(reader, deliver=log)
                elif style == 1:
                    got = [mb.pop(reader, deliver=lambda r: log([r]))]
                elif style == 2:
                    got = [mb.wait(reader, timeout=0.2, deliver=lambda r: log([r]))]
                else:
                    with mb.consuming(reader) as batch:
                        some = batch.messages[:5]
                        log([m.record for m in some])
                        batch.deliver(some)
                    got = [m.record for m in some]
            except NothingToReturn:
                got = []
            if not got:
                if finished:
                    return
                time.sleep(0.005)
        raise SystemExit(8)


def _reader_of_everything(reader: str, expected: int, go: Any, out: str) -> None:
    """One identity reading while eight others write: it must skip nothing."""
    from kei_message.mailbox import Mailbox

    if not go.wait(START_TIMEOUT):
        raise SystemExit(9)
    mb = Mailbox()
    seen = 0
    deadline = time.monotonic() + 240
    with open(out, "w") as fh:
        while seen < expected and time.monotonic() < deadline:
            got = mb.read(reader)
            for rec in got:
                fh.write(f"{rec['id']}\n")
            seen += len(got)
            if not got:
                time.sleep(0.01)
    if seen != expected:
        raise SystemExit(7)


# ----------------------------------------------------------------------------- tests
def test_eight_senders_lose_tear_merge_and_duplicate_nothing(
    mailbox_dir: Path, tmp_path: Path
) -> None:
    go = CTX.Event()
    total = SENDERS * PER_SENDER
    outs = [tmp_path / f"sent{i}" for i in range(SENDERS)]
    seen_file = tmp_path / "seen"
    procs: list[BaseProcess] = [
        CTX.Process(
            target=_sender, args=(i, PER_SENDER, "sink", go, str(outs[i])), name=f"sender{i}"
        )
        for i in range(SENDERS)
    ]
    procs.append(
        CTX.Process(
            target=_reader_of_everything, args=("sink", total, go, str(seen_file)), name="reader"
        )
    )
    with reaping(procs):
        go.set()
        join_all(procs, timeout=280)

    data = (mailbox_dir / "messages.jsonl").read_bytes()
    assert data.endswith(b"\n")
    lines = data.split(b"\n")[:-1]
    assert len(lines) == total  # nothing lost, nothing merged into one line
    recs = [json.loads(line) for line in lines]  # nothing torn: every line is JSON
    ids = [r["id"] for r in recs]
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False)), "ids not increasing"
    keys = [check_body(r["body"]) for r in recs]
    assert sorted(keys) == [(i, j) for i in range(SENDERS) for j in range(PER_SENDER)]
    for i in range(SENDERS):  # each sender's records appear in the order it sent them
        assert [j for s, j in keys if s == i] == list(range(PER_SENDER))
    assert {r["from"] for r in recs} == {f"sender{i}" for i in range(SENDERS)}
    sent_ids = sorted(int(x) for f in outs for x in f.read_text().split())
    assert sent_ids == sorted(ids)  # every send that returned is in the bus
    seen = [int(x) for x in seen_file.read_text().split()]
    assert seen == ids  # the concurrent reader got all of them, in order, once
    assert max(len(r["body"].encode()) for r in recs) > 100_000
    assert min(len(r["body"].encode()) for r in recs) < 40


def test_concurrent_consumers_of_one_identity_get_each_message_once(
    store_url: str | None, tmp_path: Path
) -> None:
    from kei_message.mailbox import Mailbox

    go, all_sent = CTX.Event(), CTX.Event()
    count = 150
    outs = [tmp_path / f"got{i}" for i in range(4)]
    senders = [
        CTX.Process(
            target=_sender,
            args=(i, count, "target", go, str(tmp_path / f"sent{i}")),
            name=f"sender{i}",
        )
        for i in range(2)
    ]
    consumers = [
        CTX.Process(
            target=_consumer, args=(i, "target", go, all_sent, str(outs[i])), name=f"consumer{i}"
        )
        for i in range(4)
    ]
    with reaping([*senders, *consumers]):
        go.set()
        join_all(senders, timeout=200)
        all_sent.set()
        join_all(consumers, timeout=200)

    sent = sorted(int(x) for i in range(2) for x in (tmp_path / f"sent{i}").read_text().split())
    got = [int(x) for f in outs for x in f.read_text().split()]
    assert len(sent) == 2 * count
    assert sorted(got) == sent  # every message once: none lost, none twice
    per_consumer = [len(f.read_text().split()) for f in outs]
    assert sum(per_consumer) == 2 * count
    assert Mailbox().unread("target") == []
