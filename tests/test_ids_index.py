"""`show`/`status` on the JSONL bus read a message's receipts and replies from the by-id
index (``stores/ids_index.py``), not from everything written after it (#19).

Every test compares the index's answer with the search it replaces (the store
without the index methods) and checks that the index answered.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kei_message import records
from kei_message.mailbox import Mailbox
from kei_message.stores import ids_index, layout
from kei_message.stores.jsonl import JsonlStore


class Searching(JsonlStore):
    """The store as it was: receipts and replies found by searching the files."""

    def delivery_of(self, recs: Any, readers_of: Any = None) -> None:
        return None


def _both(root: Path, ids: list[int]) -> tuple[dict[int, Any], dict[int, Any]]:
    indexed, searched = Mailbox(JsonlStore(str(root))), Mailbox(Searching(str(root)))
    recs = [indexed.get(i) for i in ids]
    return indexed.states(recs), searched.states(recs)


def _answered(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    got: list[Any] = []
    real = ids_index.lookup

    def spy(store: Any, ids: Any) -> Any:
        got.append(real(store, ids))
        return got[-1]

    monkeypatch.setattr(ids_index, "lookup", spy)
    return got


def _traffic(mb: Mailbox) -> list[int]:
    """Personal mail, a broadcast, receipts from two sessions, replies (one twice)."""
    ids = []
    for i in range(12):
        ids.append(mb.send(f"task {i}", to="bob", sender="alice")["id"])
    ids.append(mb.send("to everyone", to="all", sender="alice")["id"])
    mb.read("bob", how="hook", session="5e551011-aaaa")
    mb.read("carol", how="inbox")
    mb.reply(ids[3], "DONE: 3", sender="bob")
    mb.reply(ids[3], "and again", sender="bob")
    mb.reply(ids[5], "QUESTION: 5?", sender="bob")
    mb.reply(ids[-1], "seen", sender="carol")
    ids.append(mb.send("later", to="bob", sender="alice")["id"])
    return ids


# receipts indexed line by line (a small catch-up), or found by a search of the bytes
BY = pytest.mark.parametrize("few", [0, None], ids=["search", "lines"])


@BY
def test_states_from_the_index_are_the_states_a_search_finds(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch, few: int | None
) -> None:
    if few is not None:
        monkeypatch.setattr(ids_index, "_FEW", few)
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    ids = _traffic(mb)
    answered = _answered(monkeypatch)
    for group in ([ids[3]], [ids[5], ids[0]], [ids[-2]], [ids[-1]], ids[:8]):
        indexed, searched = _both(mailbox_dir, group)
        assert indexed == searched
    assert answered and all(a is not None for a in answered)
    states, _ = _both(mailbox_dir, [ids[3], ids[-2], ids[-1]])
    assert states[ids[3]]["state"] == "replied" and states[ids[-1]]["state"] == "queued"
    assert (mailbox_dir / "index" / "byid" / "meta.json").exists()


def test_the_index_catches_up_on_what_came_since(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    ids = _traffic(mb)
    assert _both(mailbox_dir, [ids[-1]])[0][ids[-1]]["state"] == "queued"
    mb.read("bob", how="pop", session="5e551011-bbbb")
    mb.reply(ids[-1], "DONE", sender="bob")
    answered = _answered(monkeypatch)
    indexed, searched = _both(mailbox_dir, [ids[-1], ids[1]])
    assert indexed == searched and indexed[ids[-1]]["state"] == "replied"
    assert answered[0] is not None


def test_replaced_receipts_start_the_index_over(mailbox_dir: Path) -> None:
    """Receipts rewritten in place (same inode, same size) are not taken for the ones
    indexed: the index starts over."""
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    ids = _traffic(mb)
    before = _both(mailbox_dir, ids[:3])[0]
    assert before[ids[0]]["readers"][0]["delivered"]["session"] == "5e551011-aaaa"
    path = mailbox_dir / "receipts.jsonl"
    with open(path, "r+b") as fh:
        fh.write(path.read_bytes().replace(b"5e551011-aaaa", b"5e551099-zzzz"))
    indexed, searched = _both(mailbox_dir, ids[:3])
    assert indexed == searched
    assert indexed[ids[0]]["readers"][0]["delivered"]["session"] == "5e551099-zzzz"


def test_a_shorter_bus_starts_the_replies_over(mailbox_dir: Path) -> None:
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    ids = _traffic(mb)
    assert _both(mailbox_dir, [ids[3]])[0][ids[3]]["state"] == "replied"
    bus = mailbox_dir / "messages.jsonl"
    kept = [ln for ln in bus.read_bytes().splitlines(keepends=True) if b"reply_to" not in ln]
    bus.write_bytes(b"".join(kept))
    indexed, searched = _both(mailbox_dir, [ids[3]])
    assert indexed == searched and indexed[ids[3]]["state"] == "delivered"


@BY
def test_odd_receipt_lines_are_indexed_or_passed_over(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch, few: int | None
) -> None:
    """A receipt with another key order, a line that is no receipt, one longer than a
    read, and a last line still being written."""
    if few is not None:
        monkeypatch.setattr(ids_index, "_FEW", few)
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    ids = _traffic(mb)
    monkeypatch.setattr(ids_index, "STEP", 1024)
    answered = _answered(monkeypatch)
    path = mailbox_dir / "receipts.jsonl"
    now = records.ts_now().encode()  # receipts are written after their message
    with open(path, "ab") as fh:
        fh.write(b'{"reader":"dave","how":"wait","ts":"%s","id":%d}\n' % (now, ids[2]))
        fh.write(b"not json at all\n")
        fh.write(b'{"id":%d,"x":"%s"}\n' % (ids[2], b"y" * (ids_index.STEP + 10)))
        fh.write(b'{"id":%d,"reader":"erin","how":"hook"' % ids[2])  # torn
    indexed, searched = _both(mailbox_dir, [ids[2]])
    assert indexed == searched
    assert [r["reader"] for r in indexed[ids[2]]["readers"]] == ["bob", "dave"]
    with open(path, "ab") as fh:
        fh.write(b',"ts":"%s"}\n' % records.ts_now().encode())  # the torn line finished
    indexed, searched = _both(mailbox_dir, [ids[2]])
    assert indexed == searched
    assert [r["reader"] for r in indexed[ids[2]]["readers"]] == ["bob", "dave", "erin"]
    assert len(answered) == 2 and None not in answered


def test_a_backlog_is_indexed_over_several_calls(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No call indexes more than ``BUDGET`` bytes of receipts: until the index has caught
    up, the search answers (the same)."""
    monkeypatch.setattr(ids_index, "BUDGET", 2048)
    monkeypatch.setattr(ids_index, "STEP", 1024)
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    ids = _traffic(mb)
    for i in range(100):
        mb.send(f"more {i}", to="bob", sender="alice")
        mb.read("bob", how="hook", session=f"5e5510{i % 10:02d}-cccc")
    assert (mailbox_dir / "receipts.jsonl").stat().st_size > 5 * 2048
    answered = _answered(monkeypatch)
    for _ in range(20):
        indexed, searched = _both(mailbox_dir, [ids[3], ids[7]])
        assert indexed == searched
        if answered[-1] is not None:
            break
    assert answered[0] is None and answered[-1] is not None and len(answered) > 3


def test_a_busy_index_leaves_the_answer_to_the_search(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kei_message.stores.locks import locked

    monkeypatch.setattr(ids_index, "LOCK_WAIT", 0.2)
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    ids = _traffic(mb)
    answered = _answered(monkeypatch)
    folder = os.path.join(mb.store.prepare(layout.INDEX), layout.IDS_INDEX)
    with locked(folder + ".lock"):
        indexed, searched = _both(mailbox_dir, [ids[3]])
    assert indexed == searched and indexed[ids[3]]["state"] == "replied"
    assert answered == [None]


def test_ids_fall_into_many_buckets() -> None:
    """Ids a clock step apart (microseconds, a whole number of seconds between them)
    spread over the buckets: a lookup reads a small file."""
    first = 1_794_526_383_000_000
    seen = {ids_index._bucket("r", first + k * 3_888_000) for k in range(10_000)}
    assert len(seen) == ids_index.BUCKETS


def test_an_entry_torn_by_a_full_disk_is_passed_over(mailbox_dir: Path) -> None:
    """An append cut short (ENOSPC) and the next catch-up writing on after it: the torn
    entry is read as no entry, the ones written again are found."""
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    ids = _traffic(mb)
    assert _both(mailbox_dir, [ids[0]])[0][ids[0]]["state"] == "delivered"
    folder = mailbox_dir / "index" / "byid"
    bucket = folder / ids_index._bucket("r", ids[0])
    with open(bucket, "ab") as fh:
        fh.write(b"%d 12" % ids[0])  # torn: no newline
    meta = folder / "meta.json"
    data = json.loads(meta.read_bytes())
    data["receipts"] = [data["receipts"][0], 0, 0]  # meta not saved: the receipts again
    meta.write_text(json.dumps(data))
    indexed, searched = _both(mailbox_dir, [ids[0]])
    assert indexed == searched and indexed[ids[0]]["state"] == "delivered"
