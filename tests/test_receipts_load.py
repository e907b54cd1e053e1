"""Receipts under load (#16): 8 senders x 200 messages, each sent with ``--wait
delivered`` semantics (``send`` then ``Mailbox.wait_until``, what the CLI runs),
against 4 consumers (``wait`` loops, as ``kei message wait`` runs them).

Checked: every wait returned ``delivered`` (none timed out), every message has
exactly one receipt, by its own reader, ``how`` = wait, and each consumer
received exactly the messages sent to it. Both stores. Budget: well under a
minute on a busy 2-core machine (slow).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from kei_message.errors import NothingToReturn
from kei_message.mailbox import Mailbox

pytestmark = pytest.mark.slow

SENDERS = 8
EACH = 200
CONSUMERS = ("c0", "c1", "c2", "c3")
BUDGET = 120.0


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
        mb = Mailbox()
        lines = []
        for seq in range(EACH):
            to = CONSUMERS[(k + seq) % len(CONSUMERS)]
            since = mb.store.receipts_end()
            rec = mb.send(f"s{k} #{seq}", to=to, sender=f"s{k}")
            st = mb.wait_until(rec["id"], "delivered", 60, since=since)
            assert st["state"] == "delivered", st
            row = st["readers"][0]
            assert row["reader"] == to and row["delivered"]["how"] == "wait", st
            lines.append(f"{rec['id']} {to}\n")
        (work / f"sent-s{k}").write_text("".join(lines))

    return run


def _consumer(name: str, work: Path, stop: Path) -> Callable[[], None]:
    def run() -> None:
        mb = Mailbox()
        fd = os.open(work / f"got-{name}", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

        def deliver(rec: dict[str, object]) -> None:
            os.write(fd, f"{rec['id']}\n".encode())

        while True:
            try:
                mb.wait(name, timeout=0.5, deliver=deliver, session=f"sess-{name}")
            except NothingToReturn:
                if stop.exists():
                    return

    return run


def test_every_wait_delivered_gets_its_receipt(
    mailbox_dir: Path, store_url: str | None, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    stop = work / "stop"
    kids = Children()
    try:
        Mailbox().send("warm-up", to="nobody", sender="setup")  # the bus exists
        consumers = [kids.fork(_consumer(n, work, stop)) for n in CONSUMERS]
        started = time.monotonic()
        deadline = started + BUDGET
        senders = [kids.fork(_sender(k, work)) for k in range(SENDERS)]
        kids.wait(senders, deadline)
        took = time.monotonic() - started
        stop.touch()
        kids.wait(consumers, deadline + 10)
    finally:
        kids.reap()

    sent: dict[int, str] = {}
    for k in range(SENDERS):
        for line in (work / f"sent-s{k}").read_text().splitlines():
            rid, to = line.split()
            sent[int(rid)] = to
    assert len(sent) == SENDERS * EACH
    for name in CONSUMERS:
        got = [int(x) for x in (work / f"got-{name}").read_text().split()]
        assert sorted(got) == sorted(r for r, to in sent.items() if to == name)

    mb = Mailbox()
    receipts, _ = mb.store.receipts(None)
    by_id: dict[int, list[dict[str, Any]]] = {}
    for r in receipts:
        by_id.setdefault(int(r["id"]), []).append(r)
    assert set(by_id) == set(sent)  # none missing, none made up
    for msg_id, rs in by_id.items():
        assert len(rs) == 1, rs
        assert rs[0]["reader"] == sent[msg_id] and rs[0]["how"] == "wait"
        assert rs[0]["session"] == f"sess-{sent[msg_id]}"
    states = mb.states([mb.get(i) for i in list(sent)[:50]])
    assert all(s["state"] == "delivered" for s in states.values())
    print(
        f"\n{SENDERS}x{EACH} sends with --wait delivered, 4 consumers ({store_url or 'jsonl'}): "
        f"{took:.1f} s, {took / EACH * 1000:.1f} ms per round trip per sender"
    )
