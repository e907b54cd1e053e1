"""Receipts pile up (one per delivery, never removed): what reads them stays flat (#19).

``status``/``show``/``list`` read the receipts written since the oldest record
they show (binary search over receipts.jsonl, one XRANGE on Redis), and
``who``'s LAST READ comes from ``index/reads-HASH.json``, caught up on new receipts
only. Each test checks the answer against reading every receipt, and that the
shortcut was taken.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kei_message.mailbox import Mailbox
from kei_message.stores import layout
from kei_message.stores.reads_index import last_reads


def _old_receipts(path: Path, n: int, age: float) -> None:
    """``n`` receipts of long-gone messages, written ``age`` seconds ago, in the writer's form."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - age))
    line = layout.receipt_bytes(
        [{"id": 1, "reader": "old", "how": "hook", "ts": ts, "session": "gone-0001"}]
    )
    with open(path, "ab") as fh:
        fh.write(line * n)


def test_status_reads_receipts_from_the_message_on(mailbox: Mailbox) -> None:
    """A message's receipts are found whatever lies before them, and on the JSONL bus
    the search starts past the old ones (it does not read them)."""
    store = mailbox.store
    if store.name == "jsonl":
        store.prepare()
        _old_receipts(Path(store.root) / "receipts.jsonl", 50_000, age=86400.0)
    else:  # the stream's ids are the server's clock: only new receipts here
        store.add_receipts([{"id": 1, "reader": "old", "how": "hook", "ts": "x"}])
    rec = mailbox.send("hello", to="bob", sender="alice")
    mailbox.read("bob", how="hook", session="5e551011-aaaa")
    st = mailbox.status(rec["id"])
    assert st["state"] == "delivered", st
    [row] = st["readers"]
    assert row["delivered"]["how"] == "hook" and row["delivered"]["session"] == "5e551011-aaaa"
    assert mailbox.states([rec])[rec["id"]] == st
    if store.name == "jsonl":
        path = Path(store.root) / "receipts.jsonl"
        fd = os.open(path, os.O_RDONLY)
        try:
            start = layout.receipts_search(fd, path.stat().st_size, time.time())
        finally:
            os.close(fd)
        assert start > 40_000 * 90  # most of the old receipts are skipped
        assert path.read_bytes()[start - 1 : start] == b"\n"  # at a line start


def test_a_message_dated_ahead_still_finds_its_receipts(mailbox_dir: Path) -> None:
    """A foreign record whose ts says next year (another tool wrote it; the Redis store
    stamps ts itself): its receipts are read from the start."""
    mb = Mailbox()
    ahead = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 365 * 86400))
    mb.send("first", to="bob", sender="alice")
    with open(mailbox_dir / "messages.jsonl", "ab") as fh:
        fh.write(b'{"id":5,"ts":"%s","from":"carol","to":"bob","body":"odd"}\n' % ahead.encode())
    got = mb.read("bob", how="inbox")
    odd = next(r for r in got if r["body"] == "odd")
    assert mb.status(odd["id"])["state"] == "delivered"


def test_who_last_read_is_caught_up_not_reread(mailbox: Mailbox) -> None:
    store = mailbox.store
    mailbox.send("one", to="bob", sender="alice")
    mailbox.read("bob", how="hook", session="5e551011-aaaa")
    first = last_reads(store)
    assert set(first) == {"5e551011-aaaa"}
    [path] = Path(store.prepare(layout.INDEX)).glob("reads-*.json")
    token = path.read_bytes()
    assert last_reads(store) == first and path.read_bytes() == token  # nothing new: no write
    time.sleep(1.1)  # receipts' ts are to the millisecond: make the second one later
    mailbox.send("two", to="carol", sender="alice")
    mailbox.read("carol", how="wake", session="5e551022-bbbb")
    second = last_reads(store)
    assert set(second) == {"5e551011-aaaa", "5e551022-bbbb"}
    assert second["5e551022-bbbb"] > second["5e551011-aaaa"]


def test_who_starts_over_when_the_receipts_were_replaced(mailbox_dir: Path) -> None:
    mb = Mailbox()
    mb.send("one", to="bob", sender="alice")
    mb.read("bob", how="hook", session="5e551011-aaaa")
    assert set(last_reads(mb.store)) == {"5e551011-aaaa"}
    (mailbox_dir / "receipts.jsonl").unlink()
    mb.send("two", to="bob", sender="alice")
    mb.read("bob", how="hook", session="5e551022-bbbb")
    assert set(last_reads(mb.store)) == {"5e551022-bbbb"}


def test_who_starts_over_when_the_receipts_were_rewritten_in_place(mailbox_dir: Path) -> None:
    """Same inode, same size, other receipts (as when a new file gets the freed inode of
    the old one): the first bytes tell them apart."""
    mb = Mailbox()
    mb.send("one", to="bob", sender="alice")
    mb.read("bob", how="hook", session="5e551011-aaaa")
    assert set(last_reads(mb.store)) == {"5e551011-aaaa"}
    path = mailbox_dir / "receipts.jsonl"
    before = path.stat()
    with open(path, "r+b") as fh:
        fh.write(path.read_bytes().replace(b"5e551011-aaaa", b"5e551099-zzzz"))
    after = path.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert set(last_reads(mb.store)) == {"5e551099-zzzz"}


@pytest.mark.parametrize("sessions", [7, 40])
def test_the_byte_search_of_session_reads_agrees_with_parsing(
    mailbox_dir: Path, sessions: int
) -> None:
    """Over a megabyte of receipts ``session_reads`` searches bytes for what the writer
    writes: the same answer as parsing every receipt in order, the last one of each
    session kept (fails if the writer's key order changes). With more sessions than
    the search skips one by one (``FEW_SESSIONS``) every match is read instead; a
    receipt dated back but written last is the session's last read."""
    mb = Mailbox()
    for i in range(30):
        mb.send(f"m{i}", to="bob", sender="alice")
        mb.read("bob", how="hook", session=f"5e5510{i % 3}-cccc")
    path = mailbox_dir / "receipts.jsonl"
    written = path.read_bytes()
    lines = written.splitlines(keepends=True)
    copies = [ln.replace(b"-cccc", b"-%04d" % (k % sessions)) for k in range(800) for ln in lines]
    year_ago = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 366 * 86400))
    first = layout.parse_receipts(lines[0])[0][0]
    late = lines[0].replace(first["ts"].encode(), year_ago.encode())  # written last, dated back
    path.write_bytes(b"".join(copies) + written + late)
    assert path.stat().st_size > 2 << 20
    assert (3 + 3 * sessions > layout.FEW_SESSIONS) == (sessions == 40)  # both ways taken
    reads, token, fresh = mb.store.session_reads(None)
    assert fresh
    expected: dict[str, Any] = {}
    for r in layout.parse_receipts(path.read_bytes())[0]:
        if r.get("session"):
            expected[r["session"]] = r["ts"]
    assert reads == expected and len(reads) == 3 + 3 * sessions
    assert reads[first["session"]] == year_ago
    assert token[:2] == [path.stat().st_ino, path.stat().st_size]


@pytest.fixture
def redis_store(redis_server: Any) -> Iterator[Any]:
    """A RedisStore on the test server, flushed first; closed after."""
    from kei_message.stores.redis import RedisStore

    client = redis_server.client()
    try:
        client.flushdb()
    finally:
        client.close()
    store = RedisStore(str(redis_server.url))
    yield store
    store.close()


@pytest.mark.redis
def test_migrated_receipts_keep_their_time(mailbox_dir: Path, redis_store: Any) -> None:
    """migrate files receipts on Redis at their own ts (stream ids), so a status after
    the move reads from the message's time on, not every receipt moved."""
    from kei_message.admin.migrate import migrate

    target = redis_store
    mb = Mailbox()
    mb.store.prepare()
    _old_receipts(mailbox_dir / "receipts.jsonl", 3000, age=86400.0)
    rec = mb.send("hello", to="bob", sender="alice")
    mb.read("bob", how="pop", session="5e551011-aaaa")
    answer = mb.reply(rec["id"], "got it", sender="bob")
    migrate(mb.store, target)
    got = target.r.xrange(target.k_receipts, "-", "+")
    assert len(got) == 3001
    old_ms = int(got[0][0].split(b"-")[0])
    new_ms = int(got[-1][0].split(b"-")[0])
    assert 86000 < (new_ms - old_ms) / 1000 < 86800  # a day apart, as written
    moved = Mailbox(target)
    [row] = moved.status(rec["id"])["readers"]
    assert row["delivered"]["how"] == "pop" and row["reply"] == answer["id"]
    assert target.r.hget(target.k_meta, "replies_from") == b"0"  # all in the hash
    assert [r["id"] for r in target.receipts_from(time.time() - 60)] == [rec["id"]]


@pytest.mark.redis
def test_redis_replies_and_receipts_come_from_hashes(
    redis_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Redis a status finds replies in the hash APPEND keeps and receipts in the
    one written with them (no read of later entries or of the receipts stream); a
    record from before the hashes existed is answered from the streams."""
    store = redis_store
    mb = Mailbox(store)
    rec = mb.send("question", to="all", sender="alice")
    mb.read("bob")
    mb.read("carol")
    answer = mb.reply(rec["id"], "answer", sender="bob")
    mb.reply(rec["id"], "again", sender="bob")  # the first reply counts
    assert store.r.hget(store.k_replies, f"{rec['id']}:bob") == str(answer["id"]).encode()

    def no_scan(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("read the stream")

    with monkeypatch.context() as m:
        for read in ("scan_reverse", "receipts", "receipts_from"):
            m.setattr(store, read, no_scan)
        rows = {r["reader"]: r for r in mb.status(rec["id"])["readers"]}
    assert rows["carol"]["delivered"]["how"] == "inbox"
    assert rows["bob"]["state"] == "replied" and rows["bob"]["reply"] == answer["id"]
    assert rows["carol"]["state"] == "delivered"
    store.r.hdel(store.k_meta, "replies_from")  # as if written before the hash
    store.r.delete(store.k_replies, store.k_delivered)
    rows = {r["reader"]: r for r in mb.status(rec["id"])["readers"]}
    assert rows["carol"]["delivered"]["how"] == "inbox"
    assert rows["bob"]["state"] == "replied" and rows["bob"]["reply"] == answer["id"]


@pytest.mark.redis
def test_each_store_keeps_its_own_last_reads(mailbox_dir: Path, redis_store: Any) -> None:
    """The JSONL bus and a Redis one used by turns from one mailbox dir: neither
    makes the other start over (each catches up from its own token)."""
    local = Mailbox()
    local.send("one", to="bob", sender="alice")
    local.read("bob", how="hook", session="5e551011-aaaa")
    remote_store = redis_store
    remote = Mailbox(remote_store)
    remote.send("two", to="bob", sender="alice")
    remote.read("bob", how="hook", session="5e551022-bbbb")
    assert set(last_reads(local.store)) == {"5e551011-aaaa"}
    assert set(last_reads(remote_store)) == {"5e551022-bbbb"}
    seen: list[Any] = []
    real = local.store.session_reads

    def spy(after: Any = None) -> Any:
        seen.append(after)
        return real(after)

    local.store.session_reads = spy  # type: ignore[method-assign]
    assert set(last_reads(local.store)) == {"5e551011-aaaa"}
    assert seen and seen[0] is not None  # caught up from its token, not rebuilt
    assert len(list((mailbox_dir / "index").glob("reads-*.json"))) == 2


def test_receipts_of_many_messages_pass_over_other_lines_unparsed() -> None:
    """``receipts_in`` with more ids than the byte search takes (`list`): lines of other
    messages are passed over by their leading id; the answer is parsing every line's."""
    wanted = set(range(100, 140))
    lines = [
        layout.receipt_bytes([{"id": i, "reader": f"r{i % 3}", "how": "hook", "ts": f"t{i}"}])
        for i in range(60, 200)
    ]
    lines += [
        b'{"reader":"odd","how":"wait","ts":"t","id":120}\n',  # another key order
        b'{"id":1e3,"reader":"x","how":"hook","ts":"t"}\n',  # not an int id
        b'{"id":121,"reader":"x","how":"nope","ts":"t"}\n',  # not a receipt
        b"not json\n",
        b'{"id":130,"reader":"torn","how":"hook"',  # a torn last line
    ]
    data = b"".join(lines)
    got = layout.receipts_in(data, wanted)
    want = [r for r in layout.parse_receipts(data)[0] if r["id"] in wanted]
    assert got == want and len(got) == 41 and got[-1]["reader"] == "odd"
