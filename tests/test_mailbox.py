"""The mailbox on any store (SPEC §2, §4): send, unread, consume, pop, clear, wait, reply.

Every test goes through the ``mailbox`` fixture, so it holds for each store.
"""

from __future__ import annotations

import threading
import time
import types
from typing import Any

import pytest

from kei_message import mailbox as mailbox_module
from kei_message.errors import (
    BodyError,
    InvalidName,
    NothingToReturn,
    UnknownMessage,
    UsageError,
)
from kei_message.mailbox import Mailbox
from kei_message.presence import who

DAY = 86400.0


def bodies(recs: list[dict[str, Any]]) -> list[str]:
    return [r["body"] for r in recs]


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make the mailbox read as if ``seconds`` had passed since every record was sent."""
    fake = types.SimpleNamespace(
        time=lambda: time.time() + seconds, monotonic=time.monotonic, sleep=time.sleep
    )
    monkeypatch.setattr(mailbox_module, "time", fake)


# ----------------------------------------------------------------------------- sending
def test_send_returns_the_record_as_stored(mailbox: Mailbox) -> None:
    rec = mailbox.send("ship it", to="frontend", sender="backend")
    assert set(rec) == {"id", "ts", "from", "to", "body"}
    assert (rec["from"], rec["to"], rec["body"]) == ("backend", "frontend", "ship it")
    assert mailbox.get(rec["id"]) == rec
    assert mailbox.unread("frontend") == [rec]


def test_send_defaults_to_broadcast_and_drops_a_leading_at(mailbox: Mailbox) -> None:
    assert mailbox.send("hello", sender="a")["to"] == "all"
    assert mailbox.send("hi", to="@b", sender="@a")[("to")] == "b"


def test_kinds_and_reply_to(mailbox: Mailbox) -> None:
    assert mailbox.send("TASK: build it", to="b", sender="a")["kind"] == "TASK"
    assert mailbox.send("done", to="b", sender="a", kind="done")["kind"] == "DONE"
    assert "kind" not in mailbox.send("plain", to="b", sender="a")
    with pytest.raises(UsageError):
        mailbox.send("x", to="b", sender="a", kind="URGENT")
    assert mailbox.send("re", to="b", sender="a", reply_to=42)["reply_to"] == 42


@pytest.mark.parametrize("body", ["", "   ", "\n\t"])
def test_an_empty_body_is_refused(mailbox: Mailbox, body: str) -> None:
    with pytest.raises(BodyError) as info:
        mailbox.send(body, to="b", sender="a")
    assert info.value.exit_code == 2
    assert mailbox.recent() == []


def test_the_body_limit(mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    mailbox.send("é" * (512 * 1024), to="b", sender="a")  # exactly 1 MiB of UTF-8
    with pytest.raises(BodyError, match="KEI_MAILBOX_MAX_BODY"):
        mailbox.send("é" * (512 * 1024) + "x", to="b", sender="a")
    monkeypatch.setenv("KEI_MAILBOX_MAX_BODY", "10")
    mailbox.send("0123456789", to="b", sender="a")
    with pytest.raises(BodyError):
        mailbox.send("0123456789!", to="b", sender="a")
    assert len(mailbox.recent()) == 2


def test_invalid_text_and_names_are_refused_and_nothing_is_written(mailbox: Mailbox) -> None:
    with pytest.raises(BodyError):
        mailbox.send("bad \ud800 surrogate", to="b", sender="a")
    for to, sender in (("bad name", "a"), ("b", "all"), ("b", ""), ("-x", "a")):
        with pytest.raises(InvalidName):
            mailbox.send("x", to=to, sender=sender)
    assert mailbox.recent() == []


def test_any_unicode_and_newlines_round_trip(mailbox: Mailbox) -> None:
    body = 'multi\nline "quoted" \\ tab\t emoji 🎉 \u2028 nul\x00 esc\x1b[31m'
    mailbox.send(body, to="b", sender="a")
    assert bodies(mailbox.read("b")) == [body]


# ----------------------------------------------------------------------------- reading
def test_peek_count_then_consume(mailbox: Mailbox) -> None:
    for i in range(3):
        mailbox.send(f"m{i}", to="b", sender="a")
    assert bodies(mailbox.unread("b")) == ["m0", "m1", "m2"]
    assert mailbox.count("b") == 3
    assert mailbox.count("b") == 3  # peeking marks nothing
    assert bodies(mailbox.read("b")) == ["m0", "m1", "m2"]
    assert mailbox.read("b") == [] and mailbox.count("b") == 0
    mailbox.send("m3", to="b", sender="a")
    assert bodies(mailbox.read("b")) == ["m3"]


def test_own_messages_are_not_delivered(mailbox: Mailbox) -> None:
    mailbox.send("note to self", to="a", sender="a")
    mailbox.send("everyone", to="all", sender="a")
    mailbox.send("for c", to="c", sender="b")
    assert mailbox.unread("a") == []
    assert bodies(mailbox.unread("b")) == ["everyone"]
    assert bodies(mailbox.unread("c")) == ["everyone", "for c"]


def test_a_broadcast_reaches_each_reader_once(mailbox: Mailbox) -> None:
    mailbox.send("standup", sender="lead")
    for reader in ("x", "y", "z"):
        assert bodies(mailbox.read(reader)) == ["standup"]
        assert mailbox.read(reader) == []
    assert mailbox.unread("lead") == []


def test_names_are_case_sensitive_readers(mailbox: Mailbox) -> None:
    mailbox.send("upper", to="Bob", sender="a")
    assert mailbox.unread("bob") == []
    assert bodies(mailbox.unread("Bob")) == ["upper"]


def test_pop_takes_only_the_oldest(mailbox: Mailbox) -> None:
    with pytest.raises(NothingToReturn) as info:
        mailbox.pop("b")
    assert info.value.exit_code == 1
    for i in range(3):
        mailbox.send(f"m{i}", to="b", sender="a")
    seen: list[str] = []
    assert mailbox.pop("b", deliver=lambda r: seen.append(r["body"]))["body"] == "m0"
    assert seen == ["m0"]
    assert bodies(mailbox.unread("b")) == ["m1", "m2"]
    assert mailbox.pop("b")["body"] == "m1"
    mailbox.send("m3", to="b", sender="a")
    assert bodies(mailbox.read("b")) == ["m2", "m3"]
    with pytest.raises(NothingToReturn):
        mailbox.pop("b")


def test_clear_marks_everything_read(mailbox: Mailbox) -> None:
    assert mailbox.clear("b") == 0
    for i in range(4):
        mailbox.send(f"m{i}", to="b" if i % 2 else "all", sender="a")
    assert mailbox.clear("b") == 4
    assert mailbox.unread("b") == []
    mailbox.send("after", to="b", sender="a")
    assert bodies(mailbox.unread("b")) == ["after"]


def test_a_failed_delivery_consumes_nothing(mailbox: Mailbox) -> None:
    mailbox.send("m0", to="b", sender="a")
    mailbox.send("m1", to="b", sender="a")

    def boom(recs: list[dict[str, Any]]) -> None:
        raise RuntimeError("terminal went away")

    with pytest.raises(RuntimeError):
        mailbox.read("b", deliver=boom)
    with pytest.raises(RuntimeError), mailbox.consuming("b") as batch:
        batch.deliver(batch.messages[:1])
        raise RuntimeError("crash between output and commit")
    assert bodies(mailbox.read("b")) == ["m0", "m1"]


def test_consuming_advances_past_exactly_what_was_delivered(mailbox: Mailbox) -> None:
    for i in range(5):
        mailbox.send(f"m{i}", to="b", sender="a")
    with mailbox.consuming("b") as batch:
        assert bodies(batch.records) == ["m0", "m1", "m2", "m3", "m4"]
        batch.deliver([batch.messages[1], batch.messages[3]])
    assert bodies(mailbox.unread("b")) == ["m0", "m2", "m4"]
    with mailbox.consuming("b") as batch:
        batch.deliver(batch.messages[:1])
    assert bodies(mailbox.unread("b")) == ["m2", "m4"]
    mailbox.send("m5", to="b", sender="a")
    assert bodies(mailbox.read("b")) == ["m2", "m4", "m5"]


def test_a_message_sent_during_delivery_is_not_skipped(mailbox: Mailbox) -> None:
    mailbox.send("m0", to="b", sender="a")
    other = Mailbox()
    with mailbox.consuming("b") as batch:
        other.send("during", to="b", sender="a")
        batch.deliver()
    assert bodies(mailbox.read("b")) == ["during"]


@pytest.mark.parametrize("readers", [3, 12], ids=["few-readers", "many-readers"])
def test_counts_from_reads_once_what_count_reads_per_reader(mailbox: Mailbox, readers: int) -> None:
    """`who`'s counts (one read of the bus for every name, #19) equal `count` for each:
    broadcasts, a reader's own messages, cursors at different places, messages
    delivered past one held for another session (the cursor's done set)."""
    rs = [f"r{i:02d}" for i in range(readers)]
    for i in range(80):
        to = "all" if i % 5 == 0 else rs[(i * 7) % readers]
        mailbox.send(f"m{i}", to=to, sender=rs[i % readers] if i % 3 else "boss")
        if i == 30:
            mailbox.send("for another session", to=rs[1], sender="boss", to_session="s-other")
            for r in rs[: readers // 2]:
                with mailbox.consuming(r, limit=4, session="s-mine") as batch:
                    batch.deliver()
    with mailbox.consuming(rs[1], session="s-mine") as batch:  # past the held one
        batch.deliver()
    store = mailbox.store
    cursors = {r: store.load_cursor(r) for r in rs}
    assert cursors[rs[1]] is not None and cursors[rs[1]].done  # delivered past a held one
    assert cursors[rs[-1]] is None  # never read
    counts = mailbox.counts_from(cursors, store.end())
    assert counts == {r: mailbox.count(r) for r in rs}
    assert len(set(counts.values())) > 2 and counts[rs[1]] == 1  # the held one
    assert {row["name"]: row["unread"] for row in who(mailbox) if row["name"] in rs} == counts


def test_counts_from_says_once_that_a_line_is_corrupt(
    mailbox_dir: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mb = Mailbox()
    mb.send("before", to="b", sender="a")
    with mb.consuming("b") as batch:
        batch.deliver()
    with mb.consuming("c") as batch:
        batch.deliver()
    with open(mailbox_dir / "messages.jsonl", "ab") as fh:
        fh.write(b'{"to":"all", not json\n')  # holds what both readers look for
    mb.send("after", sender="a")
    cursors = {r: mb.store.load_cursor(r) for r in ("b", "c")}
    with caplog.at_level("WARNING", logger="kei_message"):
        assert mb.counts_from(cursors, mb.store.end()) == {"b": 1, "c": 1}
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "corrupt line" in said[0], said  # once, not once per reader


# ----------------------------------------------------------------------------- waiting
def test_wait_returns_an_unread_message_at_once(mailbox: Mailbox) -> None:
    mailbox.send("ready", to="b", sender="a")
    assert mailbox.wait("b", timeout=5)["body"] == "ready"
    assert mailbox.unread("b") == []


def test_wait_times_out(mailbox: Mailbox) -> None:
    mailbox.send("not for b", to="c", sender="a")
    start = time.monotonic()
    with pytest.raises(NothingToReturn) as info:
        mailbox.wait("b", timeout=0.3)
    assert 0.3 <= time.monotonic() - start < 10
    assert info.value.exit_code == 1
    with pytest.raises(NothingToReturn):
        mailbox.wait("b", timeout=0)


def test_wait_wakes_on_a_send(mailbox: Mailbox) -> None:
    def send_soon() -> None:
        time.sleep(0.3)
        Mailbox().send("wake up", to="b", sender="a")

    sender = threading.Thread(target=send_soon)
    sender.start()
    try:
        start = time.monotonic()
        rec = mailbox.wait("b", timeout=20)
        woke = time.monotonic() - start
    finally:
        sender.join(20)
    assert rec["body"] == "wake up"
    assert woke < 5  # generous: the send came after 0.3 s
    assert mailbox.unread("b") == []


def test_wait_from_and_kind_take_a_later_message_and_keep_the_earlier_ones(
    mailbox: Mailbox,
) -> None:
    mailbox.send("m0 from a", to="b", sender="a")
    mailbox.send("m1 from c", to="b", sender="c")
    mailbox.send("QUESTION: m2 from a", to="b", sender="a")
    mailbox.send("m3 from c", to="b", sender="c")
    assert mailbox.wait("b", sender="c", timeout=5)["body"] == "m1 from c"
    assert mailbox.wait("b", kind="question", timeout=5)["body"] == "QUESTION: m2 from a"
    assert bodies(mailbox.unread("b")) == ["m0 from a", "m3 from c"]
    with pytest.raises(NothingToReturn):
        mailbox.wait("b", sender="zed", timeout=0.2)
    assert mailbox.wait("b", sender="c", timeout=5)["body"] == "m3 from c"
    mailbox.send("m4", to="b", sender="a")
    assert bodies(mailbox.read("b")) == ["m0 from a", "m4"]


def test_wait_from_a_sender_ignores_others_while_it_waits(mailbox: Mailbox) -> None:
    def send_soon() -> None:
        time.sleep(0.2)
        Mailbox().send("noise", to="b", sender="x")
        time.sleep(0.2)
        Mailbox().send("signal", to="b", sender="c")

    sender = threading.Thread(target=send_soon)
    sender.start()
    try:
        rec = mailbox.wait("b", sender="c", timeout=20)
    finally:
        sender.join(20)
    assert rec["body"] == "signal"
    assert bodies(mailbox.unread("b")) == ["noise"]


def test_wait_refuses_bad_filters(mailbox: Mailbox) -> None:
    with pytest.raises(InvalidName):
        mailbox.wait("b", sender="bad name", timeout=0)
    with pytest.raises(UsageError):
        mailbox.wait("b", kind="URGENT", timeout=0)


# ----------------------------------------------------------------------------- new readers
def test_a_new_reader_gets_old_personal_messages_but_only_recent_broadcasts(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.send("personal", to="new", sender="a")
    mailbox.send("broadcast", sender="a")
    later(monkeypatch, 2 * DAY)
    assert bodies(mailbox.unread("new")) == ["personal"]
    later(monkeypatch, 23 * 3600)
    assert bodies(mailbox.unread("new")) == ["personal", "broadcast"]


@pytest.mark.parametrize(
    ("replay", "age", "sees_broadcast"),
    [
        ("0", 5.0, False),
        ("24h", 23 * 3600, True),
        ("24h", 25 * 3600, False),
        ("7d", 6 * DAY, True),
        ("7d", 8 * DAY, False),
        ("30m", 20 * 60, True),
    ],
)
def test_broadcast_replay_window(
    mailbox: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
    replay: str,
    age: float,
    sees_broadcast: bool,
) -> None:
    monkeypatch.setenv("KEI_MAILBOX_BROADCAST_REPLAY", replay)
    mailbox.send("broadcast", sender="a")
    mailbox.send("personal", to="new", sender="a")
    later(monkeypatch, age)
    expected = ["broadcast", "personal"] if sees_broadcast else ["personal"]
    assert bodies(mailbox.unread("new")) == expected
    assert bodies(mailbox.read("new")) == expected


def test_replay_zero_still_delivers_broadcasts_sent_after_the_first_read(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEI_MAILBOX_BROADCAST_REPLAY", "0")
    mailbox.send("before I joined", sender="a")
    time.sleep(0.01)
    assert mailbox.read("new") == []
    mailbox.send("after I joined", sender="a")
    assert bodies(mailbox.read("new")) == ["after I joined"]


def test_skipped_old_broadcasts_never_come_back(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.send("old broadcast", sender="a")
    mailbox.send("old personal", to="new", sender="a")
    mailbox.send("old broadcast 2", sender="a")
    later(monkeypatch, 3 * DAY)
    assert mailbox.pop("new")["body"] == "old personal"  # the reader has a cursor now
    monkeypatch.setenv("KEI_MAILBOX_BROADCAST_REPLAY", "30d")
    assert mailbox.unread("new") == []
    mailbox.send("fresh", sender="a")
    assert bodies(mailbox.read("new")) == ["fresh"]


def test_a_bad_replay_value_falls_back_to_the_default(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEI_MAILBOX_BROADCAST_REPLAY", "forever")
    mailbox.send("broadcast", sender="a")
    later(monkeypatch, 2 * DAY)
    assert mailbox.unread("new") == []


# ----------------------------------------------------------------------------- the bus
def test_reply_goes_to_the_sender_with_reply_to(mailbox: Mailbox) -> None:
    question = mailbox.send("QUESTION: ready?", to="b", sender="a")
    answer = mailbox.reply(question["id"], "yes", sender="b")
    assert (answer["to"], answer["from"], answer["reply_to"]) == ("a", "b", question["id"])
    assert mailbox.get(answer["id"]) == answer
    assert bodies(mailbox.read("a")) == ["yes"]
    broadcast = mailbox.send("anyone?", sender="c")
    assert mailbox.reply(broadcast["id"], "me", sender="b")["to"] == "c"


def test_get_an_unknown_id(mailbox: Mailbox) -> None:
    mailbox.send("x", to="b", sender="a")
    with pytest.raises(UnknownMessage) as info:
        mailbox.get(12345)
    assert info.value.exit_code == 2
    with pytest.raises(UnknownMessage):
        mailbox.reply(12345, "hello?", sender="a")


def test_recent_is_newest_last_with_filters(mailbox: Mailbox) -> None:
    for i in range(6):
        mailbox.send(
            f"TASK: t{i}" if i % 3 == 0 else f"m{i}",
            to="b" if i % 2 else "c",
            sender="a" if i < 3 else "z",
        )
    assert bodies(mailbox.recent(3)) == ["TASK: t3", "m4", "m5"]
    assert bodies(mailbox.recent(40, to="b")) == ["m1", "TASK: t3", "m5"]
    assert bodies(mailbox.recent(40, sender="a")) == ["TASK: t0", "m1", "m2"]
    assert bodies(mailbox.recent(40, kind="TASK")) == ["TASK: t0", "TASK: t3"]
    assert mailbox.recent(0) == []
    assert mailbox.recent(40, since=time.time() + 60) == []
    assert len(mailbox.recent(40, since=time.time() - 60)) == 6


def test_ids_increase_and_known_names(mailbox: Mailbox) -> None:
    ids = [mailbox.send(f"m{i}", to="b", sender="a")["id"] for i in range(20)]
    assert ids == sorted(set(ids))
    mailbox.send("hi", sender="c")
    known = mailbox.known_names()
    assert {"a", "b", "c"} <= set(known) and "all" not in known
    rows = {row["name"]: row for row in who(mailbox)}
    assert rows["b"]["unread"] == 21 and rows["a"]["unread"] == 1


def test_a_new_reader_waiting_for_one_sender_keeps_old_broadcasts_skipped(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.send("m0 from a", to="new", sender="a")
    mailbox.send("old broadcast", sender="a")
    mailbox.send("m1 from c", to="new", sender="c")
    mailbox.send("old broadcast 2", sender="c")
    later(monkeypatch, 3 * DAY)
    assert mailbox.wait("new", sender="c", timeout=1)["body"] == "m1 from c"
    # m0 stays unread; the old broadcasts were skipped for good, before and after m1
    monkeypatch.setenv("KEI_MAILBOX_BROADCAST_REPLAY", "30d")
    assert bodies(mailbox.unread("new")) == ["m0 from a"]
    mailbox.send("fresh", sender="c")
    assert bodies(mailbox.read("new")) == ["m0 from a", "fresh"]
