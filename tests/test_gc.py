"""`kei message gc`: retention that loses no one's mail (issue 6, SPEC §6).

Budget: about 15 s (one test runs sender and consumer processes during gc).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kei_message import paths
from kei_message.admin import gc
from kei_message.mailbox import Mailbox
from kei_message.presence import who
from kei_message.stores.jsonl import JsonlStore

DAY = 86400.0


def old_line(rid: int, sender: str, to: str, body: str) -> bytes:
    """A record written long ago, straight in the bus format."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rid / 1e6))
    return (
        json.dumps(
            {"id": rid, "ts": ts, "from": sender, "to": to, "body": body}, separators=(",", ":")
        )
        + "\n"
    ).encode()


def write_old(mailbox_dir: Path, rows: list[tuple[str, str, str]], age_days: float = 60) -> None:
    paths.ensure_dir(str(mailbox_dir))
    start = int((time.time() - age_days * DAY) * 1e6)
    with open(mailbox_dir / "messages.jsonl", "ab") as fh:
        for i, (sender, to, body) in enumerate(rows):
            fh.write(old_line(start + i, sender, to, body))
    os.chmod(mailbox_dir / "messages.jsonl", 0o600)


def all_records(mailbox_dir: Path) -> list[dict[str, object]]:
    out = []
    files = sorted((mailbox_dir / "archive").glob("messages-*.jsonl")) + [
        mailbox_dir / "messages.jsonl"
    ]
    for f in files:
        if f.exists():
            out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def test_moves_old_records_and_keeps_cursors_right(mailbox_dir: Path) -> None:
    write_old(mailbox_dir, [("alice", "bob", f"old {i}") for i in range(10)])
    mb = Mailbox()
    assert len(mb.read("bob")) == 10
    mb.send("new 1", to="bob", sender="alice")
    result = gc.collect(Mailbox(), 30 * DAY)
    assert result.moved == 10 and result.held_by == []
    archive = Path(result.archive or "")
    assert archive.parent == mailbox_dir / "archive"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert [json.loads(x)["body"] for x in archive.read_text().splitlines()] == [
        f"old {i}" for i in range(10)
    ]
    bus = (mailbox_dir / "messages.jsonl").read_text().splitlines()
    assert [json.loads(x)["body"] for x in bus] == ["new 1"]
    assert stat.S_IMODE((mailbox_dir / "messages.jsonl").stat().st_mode) == 0o600
    # bob's cursor is still right: exactly the one new message is unread
    assert [r["body"] for r in Mailbox().read("bob")] == ["new 1"]
    assert Mailbox().read("bob") == []
    Mailbox().send("new 2", to="bob", sender="alice")
    assert [r["body"] for r in Mailbox().read("bob")] == ["new 2"]
    # list and show still work; an archived id is no longer in the bus
    assert [r["body"] for r in Mailbox().recent(5)] == ["new 1", "new 2"]


def test_never_past_a_readers_cursor(mailbox_dir: Path) -> None:
    write_old(mailbox_dir, [("alice", "bob", f"b{i}") for i in range(6)])
    mb = Mailbox()
    mb.pop("bob")
    mb.pop("bob")  # bob consumed 2 of 6
    result = gc.collect(Mailbox(), 0)
    assert result.moved == 2
    assert result.held_by == ["bob"]
    assert result.wanted == 6
    assert [r["body"] for r in Mailbox().read("bob")] == ["b2", "b3", "b4", "b5"]


def test_out_of_order_consumption_survives(mailbox_dir: Path) -> None:
    """`wait --from` takes a later message first; the cursor's extra keys stay valid."""
    write_old(mailbox_dir, [("alice", "bob", "a0"), ("carol", "bob", "c1"), ("alice", "bob", "a2")])
    mb = Mailbox()
    assert mb.wait("bob", sender="carol", timeout=1)["body"] == "c1"
    assert gc.collect(Mailbox(), 0).moved == 0  # bob has not consumed the first one
    assert [r["body"] for r in Mailbox().read("bob")] == ["a0", "a2"]
    assert gc.collect(Mailbox(), 0).moved == 3


def test_registered_session_without_cursor_keeps_its_mail(mailbox_dir: Path) -> None:
    write_old(
        mailbox_dir,
        [("alice", "bob", "for bob"), ("alice", "dave", "for dave"), ("alice", "bob", "bob again")],
    )
    Mailbox().read("bob")
    JsonlStore().put_session("s1", {"name": "dave", "session_id": "s1"})
    result = gc.collect(Mailbox(), 0)
    assert result.moved == 1 and result.held_by == ["dave"]
    assert [r["body"] for r in Mailbox().read("dave")] == ["for dave"]


def test_recent_broadcasts_stay_for_a_known_reader_without_cursor(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEI_MAILBOX_BROADCAST_REPLAY", "7d")
    write_old(mailbox_dir, [("alice", "all", "too old")], age_days=10)
    write_old(mailbox_dir, [("alice", "all", "replayable")], age_days=2)
    JsonlStore().put_session("s1", {"name": "dave", "session_id": "s1"})
    result = gc.collect(Mailbox(), 1 * DAY)
    assert result.moved == 1 and result.held_by == ["dave"]
    assert [r["body"] for r in Mailbox().read("dave")] == ["replayable"]


def test_dry_run_changes_nothing(mailbox_dir: Path) -> None:
    write_old(mailbox_dir, [("alice", "bob", "x")])
    before = (mailbox_dir / "messages.jsonl").read_bytes()
    result = gc.collect(Mailbox(), 0, dry_run=True)
    assert result.moved == 1 and result.dry_run
    assert (mailbox_dir / "messages.jsonl").read_bytes() == before
    assert not (mailbox_dir / "archive").exists() or not list(
        (mailbox_dir / "archive").glob("*.jsonl")
    )


def test_a_reader_holding_the_old_file_keeps_reading(mailbox_dir: Path) -> None:
    write_old(mailbox_dir, [("alice", "bob", f"m{i}") for i in range(5)])
    store = JsonlStore()
    it = store.scan(None)
    first = next(it)
    Mailbox().read("bob")
    assert gc.collect(Mailbox(), 0).moved == 5
    rest = [e.record["body"] for e in it if e.record]
    assert first.record is not None and first.record["body"] == "m0"
    assert rest == ["m1", "m2", "m3", "m4"]


def test_names_index_unread_stays_right_after_gc(mailbox_dir: Path) -> None:
    write_old(mailbox_dir, [("alice", "bob", "old"), ("alice", "erin", "old for erin")])
    mb = Mailbox()
    mb.read("bob")
    assert {r["name"]: r["unread"] for r in who(mb)}["erin"] == 1
    JsonlStore().put_session("s2", {"name": "bob", "session_id": "s2"})
    gc.collect(Mailbox(), 0)  # erin is no known reader: her old mail is archived
    mb = Mailbox()
    rows = {r["name"]: r["unread"] for r in who(mb)}
    assert rows["erin"] == mb.count("erin") == 0
    mb.send("new", to="erin", sender="alice")
    assert {r["name"]: r["unread"] for r in who(mb)}["erin"] == mb.count("erin") == 1


def test_cli_gc(mailbox_dir: Path, bin_dir: Path) -> None:
    write_old(mailbox_dir, [("alice", "bob", "x"), ("alice", "bob", "y")])
    Mailbox().read("bob")
    exe = str(bin_dir / "kei-message")
    dry = subprocess.run([exe, "gc", "--dry-run"], capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would move 2 records to ")
    done = subprocess.run([exe, "gc", "--keep", "7d"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("moved 2 records to ")
    bad = subprocess.run([exe, "gc", "--keep", "soon"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
    assert bad.stderr.startswith("kei message: error: ") and "Traceback" not in bad.stderr


SENDER = """
import sys
from kei_message.mailbox import Mailbox
me, n = sys.argv[1], int(sys.argv[2])
mb = Mailbox()
for k in range(n):
    mb.send(f"{me}-{k}", to="bob", sender=me)
"""

CONSUMER = """
import sys, time
from kei_message.mailbox import Mailbox
want = int(sys.argv[1])
got = 0
deadline = time.monotonic() + 60
while got < want and time.monotonic() < deadline:
    mb = Mailbox()
    for rec in mb.read("bob", deliver=lambda recs: [print(r["body"], flush=True) for r in recs]):
        got += 1
    if got < want:
        mb.store.wait_for_change(mb.store.end(), 0.2)
"""


def test_gc_while_processes_send_and_consume(mailbox_dir: Path) -> None:
    """Nothing lost, nothing duplicated, cursors right, with gc running throughout."""
    senders, per = 3, 120
    Mailbox().send("warm up", to="bob", sender="zed")  # the bus and dir exist
    assert len(Mailbox().read("bob")) == 1  # bob is a known reader from here on
    env = dict(os.environ)
    consumer = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, str(senders * per)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", SENDER, f"s{i}", str(per)], env=env)
        for i in range(senders)
    ]
    moved = 0
    try:
        deadline = time.monotonic() + 60
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            moved += gc.collect(Mailbox(), 0).moved
            time.sleep(0.01)
        for p in procs:
            assert p.wait(timeout=60) == 0
        moved += gc.collect(Mailbox(), 0).moved
        out, _ = consumer.communicate(timeout=60)
        assert consumer.returncode == 0
    finally:
        for p in [*procs, consumer]:
            if p.poll() is None:
                p.kill()
                p.wait()
    got = out.split()
    assert len(got) == len(set(got)) == senders * per
    for i in range(senders):  # each sender's messages arrive in order
        mine = [g for g in got if g.startswith(f"s{i}-")]
        assert mine == [f"s{i}-{k}" for k in range(per)]
    assert moved > 0, "gc never moved anything while the test ran"
    # every record is exactly once in the archive or the bus
    bodies = [str(r["body"]) for r in all_records(mailbox_dir)]
    assert sorted(bodies) == sorted([*got, "warm up"])
    ids = [r["id"] for r in all_records(mailbox_dir)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # bob's cursor is at the end; nothing unread, and new mail still arrives once
    assert Mailbox().read("bob") == []
    Mailbox().send("after", to="bob", sender="zed")
    assert [r["body"] for r in Mailbox().read("bob")] == ["after"]
