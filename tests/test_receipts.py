"""Receipts (SPEC §12, #16): queued -> delivered (when, how, session) -> replied.

A stateful model runs sends, deliveries by every way (inbox, pop, wait and the
agent ways through ``consuming(how=...)``), clears, replies, crashes between
output and commit, and crashes between commit and receipt, against a plain
dict of what each reader was given; the status of every message never
disagrees with it. Both stores. Then the CLI (``status``, ``send --wait``,
``show``/``list`` state) and a hook subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from reliability import BIN

from kei_message.errors import NothingToReturn, NotYet
from kei_message.mailbox import ANY, Mailbox

READERS = ("a", "b", "c")
SENDERS = (*READERS, "d")
TARGETS = (*READERS, "d", "all")
AGENT_WAYS = ("hook", "midturn", "stop", "wake", "live")
SESSION_IDS = ["5e551011-aaaa", "5e551022-bbbb"]
SESSIONS = st.none() | st.sampled_from(SESSION_IDS)


class Crash(Exception):
    """The process died after printing, before the cursor was committed."""


class Killed(BaseException):
    """The process died after the cursor commit, before the receipt was written."""


def make_machine(url: str | None) -> type[RuleBasedStateMachine]:
    class ReceiptModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.tmp = tempfile.mkdtemp(prefix="kei-receipts-")
            self.root = os.path.join(self.tmp, "mailbox")
            self.sent: list[dict[str, Any]] = []
            self.consumed: dict[str, set[int]] = {r: set() for r in READERS}
            # (message id, reader) -> (how, session) of the first delivery with a receipt
            self.delivered: dict[tuple[int, str], tuple[str, str | None]] = {}
            self.replied: dict[tuple[int, str], int] = {}
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

        def expected(self, reader: str, session: Any = None) -> list[dict[str, Any]]:
            """What a reader of ``reader`` in ``session`` is given (ANY: everything)."""
            return [
                m
                for m in self.sent
                if m["to"] in (reader, "all")
                and m["from"] != reader
                and m["id"] not in self.consumed[reader]
                and (session is ANY or m.get("to_session") in (None, session))
            ]

        def got(self, reader: str, recs: list[dict[str, Any]], how: str, sess: str | None) -> None:
            for r in recs:
                self.consumed[reader].add(r["id"])
                self.delivered.setdefault((r["id"], reader), (how, sess))

        # ------------------------------------------------------------ rules
        @initialize()
        def readers_known(self) -> None:
            # every reader has a cursor: each is a known reader of a broadcast
            for reader in READERS:
                assert self.mb.clear(reader) == 0

        @rule(
            sender=st.sampled_from(SENDERS),
            to=st.sampled_from(TARGETS),
            body=st.text(min_size=1, max_size=8).filter(str.strip),
        )
        def send(self, sender: str, to: str, body: str) -> None:
            self.sent.append(self.mb.send(body, to=to, sender=sender))

        @rule(
            sender=st.sampled_from(SENDERS),
            to=st.sampled_from(READERS),
            session=st.sampled_from(SESSION_IDS),
        )
        def send_to_a_session(self, sender: str, to: str, session: str) -> None:
            # @NAME/SESSION (SPEC §11): only a reader in that session may take it
            self.sent.append(self.mb.send("one", to=to, sender=sender, to_session=session))

        @rule(reader=st.sampled_from(READERS), sess=SESSIONS)
        def inbox(self, reader: str, sess: str | None) -> None:
            want = self.expected(reader, sess)
            assert self.mb.read(reader, session=sess) == want
            self.got(reader, want, "inbox", sess)

        @rule(reader=st.sampled_from(READERS), sess=SESSIONS)
        def pop(self, reader: str, sess: str | None) -> None:
            want = self.expected(reader, sess)
            if not want:
                with pytest.raises(NothingToReturn):
                    self.mb.pop(reader, session=sess)
                return
            assert self.mb.pop(reader, session=sess) == want[0]
            self.got(reader, want[:1], "pop", sess)

        @rule(reader=st.sampled_from(READERS), sess=SESSIONS)
        def wait(self, reader: str, sess: str | None) -> None:
            want = self.expected(reader, sess)
            if not want:
                with pytest.raises(NothingToReturn):
                    self.mb.wait(reader, timeout=0.0, session=sess)
                return
            assert self.mb.wait(reader, timeout=0.0, session=sess) == want[0]
            self.got(reader, want[:1], "wait", sess)

        @rule(
            reader=st.sampled_from(READERS),
            how=st.sampled_from(AGENT_WAYS),
            sess=SESSIONS,
            data=st.data(),
        )
        def agent_delivers(
            self, reader: str, how: str, sess: str | None, data: st.DataObject
        ) -> None:
            # hooks, waiter, live: prompt.take and deliver_live, some of what was read
            want = self.expected(reader, sess)
            with self.mb.consuming(reader, how=how, session=sess) as batch:
                assert batch.records == want
                n = data.draw(st.integers(0, len(want)))
                batch.deliver(batch.messages[:n])
            self.got(reader, want[:n], how, sess)

        @rule(reader=st.sampled_from(READERS))
        def clear(self, reader: str) -> None:
            # marked read, not delivered: no receipt; held mail of every session too
            want = self.expected(reader, ANY)
            assert self.mb.clear(reader) == len(want)
            self.consumed[reader].update(m["id"] for m in want)

        @rule(reader=st.sampled_from(READERS), how=st.sampled_from(AGENT_WAYS), data=st.data())
        def crash_before_commit(self, reader: str, how: str, data: st.DataObject) -> None:
            want = self.expected(reader)
            with pytest.raises(Crash), self.mb.consuming(reader, how=how) as batch:
                batch.deliver(batch.messages[: data.draw(st.integers(0, len(want)))])
                raise Crash
            # nothing committed, no receipt: all still queued and offered again

        @rule(reader=st.sampled_from(READERS), how=st.sampled_from(AGENT_WAYS))
        def crash_between_commit_and_receipt(self, reader: str, how: str) -> None:
            want = self.expected(reader)
            if not want:
                return  # nothing delivered: no receipt to die before
            store = self.mb.store

            def killed(receipts: list[dict[str, Any]]) -> None:
                raise Killed

            store.add_receipts = killed  # type: ignore[method-assign]
            try:
                with pytest.raises(Killed), self.mb.consuming(reader, how=how) as batch:
                    batch.deliver()
            finally:
                del store.add_receipts  # back to the class's method
            # committed (not offered again), but no receipt: queued at worst
            self.consumed[reader].update(m["id"] for m in want)

        @rule(reader=st.sampled_from(READERS), data=st.data())
        def reply(self, reader: str, data: st.DataObject) -> None:
            mine = [m for m in self.sent if m["to"] in (reader, "all") and m["from"] != reader]
            if not mine:
                return
            original = data.draw(st.sampled_from(mine))
            rec = self.mb.reply(original["id"], "re", sender=reader)
            self.sent.append(rec)
            self.replied.setdefault((original["id"], reader), rec["id"])

        @rule()
        def reopen(self) -> None:
            close = getattr(self.mb.store, "close", None)
            if close is not None:
                close()
            self.mb = self.open()

        # ------------------------------------------------------------ the invariants
        @invariant()
        def unread_counts_see_held_mail(self) -> None:
            for reader in READERS:
                assert self.mb.unread(reader) == self.expected(reader, ANY)
                for sess in (None, *SESSION_IDS):
                    assert self.mb.unread(reader, session=sess) == self.expected(reader, sess)
            # who's count: the bus read once for every reader (#19)
            store = self.mb.store
            cursors = {r: store.load_cursor(r) for r in READERS}
            counts = self.mb.counts_from(cursors, store.end())
            assert counts == {r: len(self.expected(r, ANY)) for r in READERS}

        @invariant()
        def every_status_agrees_with_the_model(self) -> None:
            states = self.mb.states(self.sent)
            for m in self.sent:
                st_ = states[m["id"]]
                rows = {row["reader"]: row for row in st_["readers"]}
                if m["to"] == "all":
                    assert set(rows) == set(READERS) - {m["from"]}
                else:
                    assert set(rows) == {m["to"]}
                for reader, row in rows.items():
                    key = (m["id"], reader)
                    if key in self.replied:
                        assert row["state"] == "replied"
                        assert row["reply"] == self.replied[key]
                    elif key in self.delivered:
                        assert row["state"] == "delivered"
                    else:
                        assert row["state"] == "queued", (m, row)
                    if key in self.delivered:
                        how, sess = self.delivered[key]
                        got = row["delivered"]
                        assert got["how"] == how
                        assert got.get("session") == sess
                        assert got["ts"].endswith("Z")
                    else:
                        assert "delivered" not in row
                assert st_["state"] == min(
                    (r["state"] for r in rows.values()),
                    key=["queued", "delivered", "replied"].index,
                    default="queued",
                )

    return ReceiptModel


def test_receipts_agree_with_a_plain_model(store_url: str | None) -> None:
    machine = make_machine(store_url)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=60 if store_url is None else 20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


# ----------------------------------------------------------------------------- wait_until
def test_wait_until_delivered_wakes_on_the_receipt(mailbox: Mailbox) -> None:
    rec = mailbox.send("ping", to="bob", sender="alice")

    def consume() -> None:
        time.sleep(0.5)
        mailbox_b = Mailbox()
        mailbox_b.read("bob", session="sess-1234")

    t = threading.Thread(target=consume)
    started = time.monotonic()
    t.start()
    try:
        st_ = mailbox.wait_until(rec["id"], "delivered", 20)
    finally:
        t.join(10)
    took = time.monotonic() - started
    assert st_["state"] == "delivered"
    assert st_["readers"][0]["delivered"]["how"] == "inbox"
    assert st_["readers"][0]["delivered"]["session"] == "sess-1234"
    assert took < 5, took


def test_wait_until_replied_and_timeout(mailbox: Mailbox) -> None:
    rec = mailbox.send("question?", to="bob", sender="alice")
    with pytest.raises(NotYet) as exc:
        mailbox.wait_until(rec["id"], "delivered", 0.3)
    assert exc.value.status["state"] == "queued"
    assert exc.value.exit_code == 1

    def answer() -> None:
        time.sleep(0.3)
        Mailbox().reply(rec["id"], "answer", sender="bob")

    t = threading.Thread(target=answer)
    t.start()
    try:
        st_ = mailbox.wait_until(rec["id"], "replied", 20)
    finally:
        t.join(10)
    assert st_["readers"][0]["state"] == "replied"
    assert st_["readers"][0]["reply"] > rec["id"]


# ----------------------------------------------------------------------------- the CLI
def kei(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kei-message"), *args], capture_output=True, text=True, timeout=60, **kw
    )


def test_cli_status_send_wait_show_and_list(mailbox_dir: Path, store_url: str | None) -> None:
    sent = kei("send", "@bob", "--from", "alice", "--json", "hello")
    assert sent.returncode == 0, sent.stderr
    rid = json.loads(sent.stdout)["id"]

    status = kei("status", str(rid), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["readers"] == [{"reader": "bob", "state": "queued"}]

    # out of time: exit 1, the status so far on stdout, one line on stderr
    started = time.monotonic()
    late = kei("send", "@bob", "--from", "alice", "--wait", "delivered", "--timeout", "1s", "x")
    assert late.returncode == 1
    assert time.monotonic() - started < 15
    assert "queued" in late.stdout
    # time ran out: an answer (exit 1), a plain note, not an error (#17)
    assert late.stderr.strip().splitlines()[-1].startswith("kei message: message ")
    assert "error" not in late.stderr
    assert "Traceback" not in late.stderr

    # delivered while the sender waits
    proc = subprocess.Popen(
        [str(BIN / "kei-message"), "send", "@bob", "--from", "alice"]
        + ["--wait", "delivered", "--timeout", "30s", "--json", "third"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        got = kei("inbox", "--me", "bob", env={**os.environ, "CLAUDE_CODE_SESSION_ID": "abcd-ef"})
        assert got.returncode == 0, got.stderr
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert lines[0]["body"] == "third"
    assert lines[1]["readers"][0]["state"] == "delivered"
    assert lines[1]["readers"][0]["delivered"]["how"] == "inbox"
    assert lines[1]["readers"][0]["delivered"]["session"] == "abcd-ef"

    shown = kei("show", str(rid), "--json")
    assert json.loads(shown.stdout)["state"] == "delivered"
    assert "state:" in kei("show", str(rid)).stdout
    listed = [json.loads(ln) for ln in kei("list", "--json").stdout.splitlines()]
    assert [r["state"] for r in listed] == ["delivered"] * 3
    # --json records are as stored, with one key more
    assert set(listed[0]) == {"id", "ts", "from", "to", "body", "state"}
    assert "delivered" in kei("list").stdout

    bad = kei("send", "@bob", "--from", "alice", "--wait", "read", "x")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    unknown = kei("status", "12345")
    assert unknown.returncode == 2


def test_receipts_never_enter_the_bus(mailbox_dir: Path) -> None:
    """A seed reader (kei-message.sh, jq) sees messages only: receipts live beside the bus."""
    mb = Mailbox()
    mb.send("one", to="bob", sender="alice")
    mb.read("bob")
    bus = (mailbox_dir / "messages.jsonl").read_text().splitlines()
    assert len(bus) == 1 and json.loads(bus[0])["body"] == "one"
    receipts = (mailbox_dir / "receipts.jsonl").read_text().splitlines()
    assert len(receipts) == 1 and json.loads(receipts[0])["how"] == "inbox"


def test_a_hook_writes_its_receipt(
    mailbox_dir: Path, store_url: str | None, tmp_path: Path
) -> None:
    project = tmp_path / "hookproj"
    project.mkdir()
    mb = Mailbox()
    rec = mb.send("from the hook test", to="hookproj", sender="alice")
    payload = {
        "session_id": "9f00c0de-1111",
        "cwd": str(project),
        "hook_event_name": "UserPromptSubmit",
    }
    env = {k: v for k, v in os.environ.items() if k != "KEI_MAILBOX_ME"}
    res = subprocess.run(
        [str(BIN / "kei-message-hook"), "user-prompt-submit"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert res.returncode == 0
    assert "from the hook test" in res.stdout
    row = mb.status(rec["id"])["readers"][0]
    assert row["state"] == "delivered"
    assert row["delivered"]["how"] == "hook"
    assert row["delivered"]["session"] == "9f00c0de-1111"
