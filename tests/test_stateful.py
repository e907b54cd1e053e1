"""A stateful model of the mailbox: the real one never disagrees with a plain list.

Sends, peeks, counts, consumes, pops, clears, partial deliveries, waits with a
timeout, and crashes between output and cursor commit (an exception inside
``consuming()`` after the batch was handed out) run in random order against
the real mailbox and against a list of records plus a set of consumed ids per
reader. On the JSONL store, a foreign tool also tears lines at the end of the
bus and the mailbox is reopened as a new process would.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kei_message import records
from kei_message.errors import NothingToReturn
from kei_message.mailbox import Mailbox

READERS = ("a", "b", "c")
SENDERS = (*READERS, "d")
TARGETS = (*READERS, "d", "all")
BODY = st.text(min_size=1, max_size=24).filter(lambda s: s.strip()) | st.sampled_from(
    ["TASK: do it", "DONE: did it", "QUESTION: why?\nbecause", "line\nbreak"]
)


class Crash(Exception):
    """The process died after printing, before the cursor was committed."""


def make_machine(url: str | None) -> type[RuleBasedStateMachine]:
    class MailboxModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.tmp = tempfile.mkdtemp(prefix="kei-stateful-")
            self.root = os.path.join(self.tmp, "mailbox")
            self.sent: list[dict[str, Any]] = []
            self.consumed: dict[str, set[int]] = {r: set() for r in READERS}
            if url:
                import redis

                client = redis.Redis.from_url(url)
                try:
                    client.flushdb()
                finally:
                    client.close()
            self.mb = self.open()

        def open(self) -> Mailbox:
            if url:
                return Mailbox(url=url)
            from kei_message.stores.jsonl import JsonlStore

            return Mailbox(JsonlStore(self.root))

        def teardown(self) -> None:
            close = getattr(self.mb.store, "close", None)
            if close is not None:
                close()
            shutil.rmtree(self.tmp, ignore_errors=True)

        # ------------------------------------------------------------ the model
        def expected(self, reader: str) -> list[dict[str, Any]]:
            return [
                m
                for m in self.sent
                if m["to"] in (reader, "all")
                and m["from"] != reader
                and m["id"] not in self.consumed[reader]
            ]

        def ids(self, recs: list[dict[str, Any]]) -> list[int]:
            return [r["id"] for r in recs]

        # ------------------------------------------------------------ rules
        @initialize()
        def start_empty(self) -> None:
            for reader in READERS:
                assert self.mb.unread(reader) == []

        @rule(
            sender=st.sampled_from(SENDERS),
            to=st.sampled_from(TARGETS),
            body=BODY,
            kind=st.none() | st.sampled_from(records.KINDS),
        )
        def send(self, sender: str, to: str, body: str, kind: str | None) -> None:
            rec = self.mb.send(body, to=to, sender=sender, kind=kind)
            assert (rec["from"], rec["to"], rec["body"]) == (sender, to, body)
            assert rec.get("kind") == (kind or records.kind_from_body(body))
            if self.sent:
                assert rec["id"] > self.sent[-1]["id"]
            self.sent.append(rec)

        @rule(reader=st.sampled_from(READERS))
        def peek(self, reader: str) -> None:
            assert self.mb.unread(reader) == self.expected(reader)
            assert self.mb.count(reader) == len(self.expected(reader))

        @rule(reader=st.sampled_from(READERS))
        def read(self, reader: str) -> None:
            want = self.expected(reader)
            delivered: list[dict[str, Any]] = []
            got = self.mb.read(reader, deliver=delivered.extend)
            assert got == want
            assert delivered == (want if want else [])
            self.consumed[reader].update(self.ids(want))

        @rule(reader=st.sampled_from(READERS))
        def pop(self, reader: str) -> None:
            want = self.expected(reader)
            if not want:
                with pytest.raises(NothingToReturn):
                    self.mb.pop(reader)
                return
            assert self.mb.pop(reader) == want[0]
            self.consumed[reader].add(want[0]["id"])

        @rule(reader=st.sampled_from(READERS))
        def clear(self, reader: str) -> None:
            want = self.expected(reader)
            assert self.mb.clear(reader) == len(want)
            self.consumed[reader].update(self.ids(want))

        @rule(
            reader=st.sampled_from(READERS),
            sender=st.none() | st.sampled_from(SENDERS),
            kind=st.none() | st.sampled_from(records.KINDS),
            timeout=st.sampled_from([0.0, 0.02]),
        )
        def wait(self, reader: str, sender: str | None, kind: str | None, timeout: float) -> None:
            match = [
                m
                for m in self.expected(reader)
                if (sender is None or m["from"] == sender)
                and (kind is None or m.get("kind") == kind)
            ]
            if not match:
                with pytest.raises(NothingToReturn):
                    self.mb.wait(reader, sender=sender, kind=kind, timeout=timeout)
                return
            assert self.mb.wait(reader, sender=sender, kind=kind, timeout=timeout) == match[0]
            self.consumed[reader].add(match[0]["id"])

        @rule(reader=st.sampled_from(READERS), data=st.data())
        def deliver_some(self, reader: str, data: st.DataObject) -> None:
            want = self.expected(reader)
            with self.mb.consuming(reader) as batch:
                assert batch.records == want
                picks = data.draw(st.lists(st.booleans(), min_size=len(want), max_size=len(want)))
                chosen = [m for m, pick in zip(batch.messages, picks, strict=True) if pick]
                batch.deliver(chosen)
            self.consumed[reader].update(m.record["id"] for m in chosen)

        @rule(reader=st.sampled_from(READERS), data=st.data())
        def crash_between_output_and_commit(self, reader: str, data: st.DataObject) -> None:
            want = self.expected(reader)
            with pytest.raises(Crash), self.mb.consuming(reader) as batch:
                assert batch.records == want
                k = data.draw(st.integers(0, len(want)))
                batch.deliver(batch.messages[:k])  # printed, injected, typed...
                raise Crash
            # nothing was committed: every one of them is offered again (at least once)

        @precondition(lambda self: not url)
        @rule(junk=st.sampled_from([b'{"id":1,"from":"a","to":"b","bo', b"garbage", b"{"]))
        def foreign_torn_line(self, junk: bytes) -> None:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            with open(os.path.join(self.root, "messages.jsonl"), "ab") as fh:
                fh.write(junk)

        @rule()
        def reopen(self) -> None:
            close = getattr(self.mb.store, "close", None)
            if close is not None:
                close()
            self.mb = self.open()

        @invariant()
        def ids_strictly_increase_in_bus_order(self) -> None:
            got = [e.record["id"] for e in self.mb.store.scan(None) if e.record is not None]
            assert got == self.ids(self.sent)

    return MailboxModel


def test_the_mailbox_agrees_with_a_plain_model(store_url: str | None) -> None:
    machine = make_machine(store_url)
    run_state_machine_as_test(
        machine,
        settings=settings(
            # Redis round trips cost ~15 ms a step on this machine: fewer runs there
            max_examples=40 if store_url is None else 15,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
