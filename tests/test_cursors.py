"""Per-reader cursors (SPEC §4): encoding, never backwards, atomic, one per reader."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kei_message import cursors
from kei_message.cursors import Cursor
from kei_message.errors import NothingToReturn
from kei_message.mailbox import Mailbox
from kei_message.stores import layout
from kei_message.stores.jsonl import JsonlStore


def order(pos: int) -> int:
    return pos


POS = st.integers(min_value=0, max_value=2**62)
CURSOR = st.builds(Cursor, st.none() | POS, st.frozensets(POS, max_size=6))


@settings(max_examples=200, deadline=None)
@given(CURSOR)
def test_encode_decode_round_trip(cursor: Cursor) -> None:
    data = layout.encode_cursor(cursor)
    assert data.endswith(b"\n") and data.count(b"\n") == 2
    assert layout.decode_cursor(data, int) == cursor


def test_the_file_is_two_lines_of_text() -> None:
    assert layout.encode_cursor(Cursor(120, frozenset({300, 250}))) in (
        b"120\n250 300\n",
        b"120\n300 250\n",
    )
    assert layout.encode_cursor(Cursor()) == b"\n\n"


@pytest.mark.parametrize(
    "data", [b"", b"120", b"120\n", b"120\n\n\n", b"abc\n\n", b"1\nx y\n", b"\xff\n\n"]
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        layout.decode_cursor(data, int)


@settings(max_examples=200, deadline=None)
@given(st.none() | CURSOR, CURSOR)
def test_merge_never_moves_backwards(old: Cursor | None, new: Cursor) -> None:
    got = cursors.merge(old, new, order)
    positions = [c.pos for c in (old, new) if c is not None and c.pos is not None]
    assert got.pos == (max(positions) if positions else None)
    # everything either cursor had consumed stays consumed
    for c in (old, new):
        if c is None:
            continue
        for key in c.done:
            assert got.consumed(key, order)
        if c.pos is not None:
            assert all(got.consumed(k, order) for k in (0, c.pos - 1) if k >= 0 and k < c.pos)
    # keys below the position are dropped: the position already covers them
    if got.pos is not None:
        assert all(k >= got.pos for k in got.done)


def test_consumed() -> None:
    c = Cursor(100, frozenset({150}))
    assert c.consumed(99, order) and c.consumed(0, order)
    assert not c.consumed(100, order)
    assert c.consumed(150, order) and not c.consumed(149, order)
    assert not Cursor().consumed(0, order)


# ----------------------------------------------------------------------------- on disk
def test_cursor_files_are_atomic_and_private(mailbox_dir: Path) -> None:
    store = JsonlStore(str(mailbox_dir))
    assert store.load_cursor("b") is None
    store.save_cursor("b", Cursor(10, frozenset({20})))
    store.save_cursor("b", Cursor(30, frozenset()))
    assert store.load_cursor("b") == Cursor(30, frozenset())
    folder = mailbox_dir / "cursors"
    assert sorted(os.listdir(folder)) == ["b"]
    assert (folder / "b").stat().st_mode & 0o777 == 0o600


def test_readers_lists_cursors_not_locks_or_temp_files(mailbox_dir: Path) -> None:
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    mb.send("x", sender="a")
    mb.read("b")
    mb.read("c.d")
    (mailbox_dir / "cursors" / ".e.tmp.123").write_bytes(b"0\n\n")
    assert mb.store.readers() == ["b", "c.d"]


def test_a_reader_called_x_lock_is_not_x_s_lock(mailbox_dir: Path) -> None:
    # reader locks are ".NAME.lock": no valid name starts with ".", so "x.lock" is free
    mb = Mailbox(JsonlStore(str(mailbox_dir)))
    mb.send("for x", to="x", sender="a")
    mb.send("for x.lock", to="x.lock", sender="a")
    with mb.consuming("x") as batch:
        assert [r["body"] for r in mb.read("x.lock")] == ["for x.lock"]
        assert [m.record["body"] for m in batch.messages] == ["for x"]
        batch.deliver()
    assert mb.store.readers() == ["x", "x.lock"]
    assert mb.unread("x") == [] and mb.unread("x.lock") == []


def test_a_reader_that_only_peeked_has_no_cursor(mailbox: Mailbox) -> None:
    mailbox.send("x", to="b", sender="a")
    mailbox.unread("b")
    mailbox.count("b")
    assert mailbox.store.load_cursor("b") is None
    assert "b" not in mailbox.store.readers()


def test_one_cursor_shared_by_every_way_of_reading(mailbox: Mailbox) -> None:
    for i in range(6):
        mailbox.send(f"m{i}", to="b", sender="a")
    assert mailbox.pop("b")["body"] == "m0"
    assert Mailbox().wait("b", timeout=1)["body"] == "m1"
    with Mailbox().consuming("b") as batch:
        assert [r["body"] for r in batch.records] == ["m2", "m3", "m4", "m5"]
        batch.deliver(batch.messages[:2])
    assert [r["body"] for r in Mailbox().read("b")] == ["m4", "m5"]
    assert Mailbox().clear("b") == 0


def test_cursors_are_per_reader(mailbox: Mailbox) -> None:
    mailbox.send("hello all", sender="a")
    assert mailbox.clear("b") == 1
    assert [r["body"] for r in mailbox.unread("c")] == ["hello all"]


def test_threads_consuming_one_identity_get_each_message_once(mailbox: Mailbox) -> None:
    total = 60
    for i in range(total):
        mailbox.send(f"m{i}", to="b", sender="a")
    got: list[str] = []
    guard = threading.Lock()
    errors: list[BaseException] = []

    def consumer(style: int) -> None:
        mb = Mailbox()  # its own store: its own descriptors, as another process has
        try:
            while True:
                try:
                    if style == 0:
                        rec = [mb.pop("b")]
                    elif style == 1:
                        rec = [mb.wait("b", timeout=0)]
                    else:
                        with mb.consuming("b") as batch:
                            rec = batch.records[:3]
                            batch.deliver(batch.messages[:3])
                        if not rec:
                            return
                except NothingToReturn:
                    return
                with guard:
                    got.extend(r["body"] for r in rec)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=consumer, args=(i % 3,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert sorted(got) == sorted(f"m{i}" for i in range(total))
    assert mailbox.unread("b") == []
