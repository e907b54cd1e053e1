"""`show ID` seeks instead of scanning (issue 19): a binary search over byte offsets on
the JSONL bus, one XRANGE on Redis; out-of-order records from kei-message.sh, corrupt
and long lines still find the right record (the search falls back to a scan)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kei_message.errors import UnknownMessage
from kei_message.mailbox import Mailbox
from kei_message.stores.jsonl import SEEK_SPAN, JsonlStore


def write_bus(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    path.chmod(0o600)


def rec(rid: int, body: str = "hello", to: str = "bob") -> str:
    return json.dumps({"id": rid, "ts": "2026-11-21T08:00:00Z", "from": "ann", "to": to,
                       "body": body})  # fmt: skip


def test_every_id_is_found_by_seeking_on_a_big_ordered_bus(mailbox_dir: Path) -> None:
    ids = [1_795_000_000_000_000 + i * 997 for i in range(5000)]
    bodies = ["x" * (i % 300) for i in range(5000)]
    bodies[2500] = "y" * (3 * SEEK_SPAN)  # a line longer than a seek read
    write_bus(mailbox_dir / "messages.jsonl", [rec(i, b) for i, b in zip(ids, bodies, strict=True)])
    store = JsonlStore(str(mailbox_dir))
    for rid in random.Random(19).sample(ids, 300) + [ids[0], ids[-1], ids[2500], ids[2501]]:
        found = store.seek_id(rid)
        assert found is not None and found["id"] == rid, rid
        assert found["body"] == bodies[ids.index(rid)]
    for missing in (ids[0] - 1, ids[-1] + 1, ids[100] + 1, 0):
        assert store.seek_id(missing) is None
        with pytest.raises(UnknownMessage):
            Mailbox(store).get(missing)


def test_out_of_order_and_corrupt_lines_still_find_the_record(mailbox_dir: Path) -> None:
    """kei-message.sh may write ids out of order: seek misses, get scans and finds."""
    ids = [1_795_000_000_000_000 + i * 1000 for i in range(4000)]
    lines = [rec(i, "z" * 80) for i in ids]
    foreign = [7, 1_795_000_000_000_000 + 3999 * 1000 + 5, 42]  # small, late, small
    lines[1000] = rec(foreign[0], "from the old script")
    lines[2000] = rec(foreign[1], "from the old script")
    lines[3000] = rec(foreign[2], "from the old script")
    lines[1500] = '{"id": 1795000001500000, "ts": "2026'  # cut short by a dead writer
    lines[2500] = "garbage that is not json"
    write_bus(mailbox_dir / "messages.jsonl", lines)
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    for rid in foreign:
        assert mb.get(rid)["body"] == "from the old script"
    for i in (0, 999, 1001, 1499, 1501, 2001, 2499, 2501, 3001, 3999):
        assert mb.get(ids[i])["id"] == ids[i]
    with pytest.raises(UnknownMessage):
        mb.get(ids[1500])


def test_get_on_either_store(mailbox: Mailbox) -> None:
    sent = [mailbox.send(f"message {i}", to="bob", sender="ann") for i in range(50)]
    for r in sent[::7] + [sent[-1]]:
        assert mailbox.store.seek_id(r["id"]) == r
        assert mailbox.get(r["id"]) == r
    with pytest.raises(UnknownMessage):
        mailbox.get(sent[-1]["id"] + 1)


def test_a_reply_to_a_seeked_message(mailbox_dir: Path) -> None:
    ids = [1_795_000_000_000_000 + i * 1000 for i in range(3000)]
    write_bus(mailbox_dir / "messages.jsonl", [rec(i) for i in ids])
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    answer = mb.reply(ids[1234], "got it", sender="bob")
    assert answer["to"] == "ann" and answer["reply_to"] == ids[1234]
    assert answer["id"] > ids[-1]
    assert mb.get(answer["id"]) == answer


def stamp(epoch: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def aged_bus(path: Path, personal_old: bool) -> tuple[list[int], list[int]]:
    """3 days of traffic, a broadcast every 10th line; the ids of recent broadcasts
    (inside the default 24h replay window) and of messages to `newbie`."""
    import time

    now = time.time()
    lines, recent, mine = [], [], []
    n = 6000
    for i in range(n):
        when = now - 3 * 86400 + i * (3 * 86400 - 60) / n
        rid = int(when * 1_000_000)
        to = "all" if i % 10 == 0 else "bob"
        if (personal_old and i in (5, 2500)) or i == n - 7:
            to = "newbie"
            mine.append(rid)
        elif to == "all" and when > now - 86400:
            recent.append(rid)
        lines.append(json.dumps({"id": rid, "ts": stamp(when), "from": "ann", "to": to,
                                 "body": f"message {i}"}))  # fmt: skip
    write_bus(path, lines)
    return recent, mine


@pytest.mark.parametrize("personal_old", [False, True])
def test_a_new_reader_skips_old_broadcasts_without_reading_them(
    mailbox_dir: Path, personal_old: bool
) -> None:
    recent, mine = aged_bus(mailbox_dir / "messages.jsonl", personal_old)
    store = JsonlStore(str(mailbox_dir))
    assert store.seek_time(0) == 0
    import time

    cut = store.seek_time(time.time() - 86400 - 3600)  # two days of lines come before it
    assert cut is not None and cut > (mailbox_dir / "messages.jsonl").stat().st_size // 2
    mb = Mailbox(store)
    want = sorted(recent + mine)
    assert [r["id"] for r in mb.unread("newbie")] == want
    first = mb.pop("newbie")  # a partial read: the old broadcasts must stay skipped
    assert first["id"] == want[0]
    assert [r["id"] for r in mb.read("newbie")] == want[1:]
    assert mb.unread("newbie") == []


def test_a_new_reader_clears_what_it_would_read(mailbox_dir: Path) -> None:
    recent, mine = aged_bus(mailbox_dir / "messages.jsonl", True)
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    assert mb.clear("newbie") == len(recent) + len(mine)
    assert mb.unread("newbie") == []


def slow_index(store: JsonlStore) -> dict[str, object]:
    from kei_message.stores import names_index

    found: dict[str, dict[str, object]] = {}
    casts: list[list[object]] = []
    names_index._count(store.scan(None), found, casts)
    return {"names": found, "broadcasts": casts}


@pytest.mark.parametrize("halves", [False, True], ids=["one-core", "two-cores"])
@pytest.mark.parametrize("spoil", ["", "corrupt", "foreign", "escaped"])
def test_the_names_index_built_by_buffers_counts_what_a_record_loop_counts(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch, spoil: str, halves: bool
) -> None:
    """Lines are tallied a buffer at a time, the recent ones' broadcasts listed from the
    lines that hold one; a buffer with anything unusual in it is counted record by
    record. ``halves``: the bus cut in two at a line, the later half counted by a
    forked child (``cores.side_by_side``) and merged."""
    import time

    from kei_message import cores
    from kei_message.stores import jsonl, names_index

    monkeypatch.setattr(jsonl, "CHUNK", 2048)  # buffers of 8 KiB: many of them
    merged: list[dict[str, object]] = []
    if halves:
        if not cores.spare_core():
            pytest.skip("one core here: nothing runs beside this process")
        monkeypatch.setattr(names_index, "SPLIT_MIN", 1)
        merge = names_index._merge
        monkeypatch.setattr(
            names_index, "_merge", lambda d, later: merged.append(later) or merge(d, later)
        )
    now = time.time()
    lines = []
    people = ["ann", "bob", "cyd", "dee", "all"]
    n = 3000
    for i in range(n):
        when = now - 5 * 86400 + i * (5 * 86400 - 60) / n
        sender, to = people[i % 4], people[(i * 3 + 1) % 5]
        lines.append(json.dumps({"id": int(when * 1e6), "ts": stamp(when), "from": sender,
                                 "to": to, "body": f"m {i}"}, separators=(",", ":")))  # fmt: skip
    if spoil == "corrupt":
        lines[100] = lines[100][:40]  # a writer died here
    elif spoil == "foreign":
        lines[200] = json.dumps({"id": "17", "to": "eve", "from": "old", "body": "hi"})
    elif spoil == "escaped":
        lines[300] = lines[300].replace('"body":"m 300"', '"body":"\\"from\\":\\"x\\""')
    write_bus(mailbox_dir / "messages.jsonl", lines)
    store = JsonlStore(str(mailbox_dir))
    tallied = []
    tally = names_index._tally
    monkeypatch.setattr(names_index, "_tally", lambda *a: tallied.append(tally(*a)) or tallied[-1])
    built = names_index.current(store)
    # old buffers tallied (False), recent ones tallied with their broadcasts listed (True),
    # a buffer with a corrupt or foreign line counted record by record (None); with
    # halves, this process tallied the older half (the spoiled lines are in it)
    assert tallied.count(False) > 10 and (True in tallied) != halves
    assert (None in tallied) == (spoil in ("corrupt", "foreign"))
    if halves:  # the newer half, from the child: its names and its broadcasts
        assert len(merged) == 1 and merged[0]["names"] and merged[0]["broadcasts"]
    want = slow_index(store)
    assert built["names"] == want["names"]
    listed = [tuple(b) for b in built["broadcasts"]]
    every = [tuple(b) for b in want["broadcasts"]]
    assert listed == every[len(every) - len(listed) :]  # the newest ones, in order
    assert listed and listed[0][0] <= now - 86400 + 600  # back to the 24h window
    assert built["complete_from"] >= now - 3 * 86400


@pytest.mark.parametrize("preadv", [True, False], ids=["preadv", "pread"])
def test_chunks_are_the_bus_in_whole_lines(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch, preadv: bool
) -> None:
    """Buffers read into again (or, without os.preadv, read anew) hold the bus in whole
    lines, in order, a line longer than a buffer whole; from a line start on."""
    import os

    from kei_message.stores import jsonl

    monkeypatch.setattr(jsonl, "CHUNK", 256)  # buffers of 1 KiB
    if not preadv:
        monkeypatch.delattr(os, "preadv", raising=False)
    lines = [
        json.dumps({"id": i, "from": "a", "to": "b", "body": "x" * (i % 97)}) for i in range(300)
    ]
    lines[150] = lines[150].replace('"body":"', '"body":"' + "y" * 5000)  # five buffers long
    write_bus(mailbox_dir / "messages.jsonl", lines)
    data = (mailbox_dir / "messages.jsonl").read_bytes()
    store = JsonlStore(str(mailbox_dir))
    for after, until in [(None, None), (store.line_after(len(data) // 3), len(data) - 7)]:
        got = [(at, bytes(buf[:n])) for at, buf, n in store.chunks(after, until)]
        start = after or 0
        stop = data.rfind(b"\n", 0, until or len(data)) + 1
        assert b"".join(piece for _, piece in got) == data[start:stop]
        assert all(piece.endswith(b"\n") for _, piece in got) and len(got) > 10
        assert [at for at, _ in got] == [
            start + sum(len(p) for _, p in got[:i]) for i in range(len(got))
        ]
    assert store.line_after(0) == 0 and store.line_after(1) == len(lines[0]) + 1
    assert store.line_after(len(data) - 1) == len(data)
