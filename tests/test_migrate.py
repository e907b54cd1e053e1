"""``kei message migrate``: JSONL -> Redis -> JSONL keeps every line and every reader's place."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kei_message.admin.migrate import migrate, open_target
from kei_message.errors import UsageError
from kei_message.mailbox import Mailbox
from kei_message.stores.jsonl import JsonlStore
from kei_message.stores.redis import RedisStore

pytestmark = pytest.mark.redis

READERS = ("alice", "bob", "carol", "dave", "erin")


@pytest.fixture
def redis_url(redis_server: Any) -> Iterator[str]:
    client = redis_server.client()
    try:
        client.flushdb()
    finally:
        client.close()
    yield str(redis_server.url)


def fill(mb: Mailbox, bus: Path) -> None:
    """A bus with what a real one collects, and readers at every kind of place."""
    mb.send("hello bob", to="bob", sender="alice")
    mb.send("TASK: two\nlines, ünïcode ✓", to="bob", sender="carol")
    first = mb.send("all hands", sender="dave")
    mb.send("QUESTION: ok?", to="alice", sender="bob", reply_to=first["id"])
    with bus.open("ab") as fh:
        # kei-message.sh: string id, second-resolution ts, an id that goes backwards
        fh.write(b'{"id":"1700000000","ts":"2023-11-14T22:13:20Z","from":"old",')
        fh.write(b'"to":"bob","body":"from the shell script"}\n')
        fh.write(b"{torn line from a foreign tool\n")
    mb.send("late one", to="bob", sender="dave")
    mb.send("for carol", to="carol", sender="bob")
    mb.read("alice")  # alice: everything consumed
    mb.wait("bob", sender="dave", timeout=1)  # bob: a later one first (out of order)
    mb.pop("carol")  # carol: part way
    mb.send("after the reads", to="dave", sender="erin")
    mb.clear("erin")  # erin: all read, nothing left


def views(mb: Mailbox) -> dict[str, list[dict[str, Any]]]:
    return {r: mb.unread(r) for r in READERS}


def test_round_trip_keeps_lines_cursors_and_sessions(redis_url: str, tmp_path: Path) -> None:
    src = JsonlStore(str(tmp_path / "one"))
    mb = Mailbox(src)
    fill(mb, Path(src.location))
    src.put_session("s-1", {"name": "bob", "session_id": "s-1", "cwd": "/w/bob"})
    before = views(mb)
    assert before["bob"] and before["carol"] and not before["alice"]
    cursors = {r: src.load_cursor(r) for r in READERS}
    assert cursors["bob"] is not None and cursors["bob"].done  # the out-of-order case
    original = Path(src.location).read_bytes()

    red = RedisStore(redis_url)
    done = migrate(src, red)
    assert (done.records, done.cursors, done.sessions) == (9, 4, 1)
    assert b"".join(raw + b"\n" for _, raw in red.scan_raw(None)) == original
    rmb = Mailbox(red)
    assert views(rmb) == before
    assert sorted(red.readers()) == sorted(src.readers())
    # (Redis stamps each session with its host: several machines share the registry)
    assert [{k: v for k, v in x.items() if k != "host"} for x in red.sessions()] == src.sessions()
    assert set(red.names()) >= {"alice", "bob", "carol", "dave", "erin", "old"}
    assert red.names()["bob"]["received"] == 4
    corrupt = [e for e in red.scan(None) if e.record is None]
    assert len(corrupt) == 1 and corrupt[0].error
    # receipts move too (#16): every status reads the same on Redis
    sent = [e.record for e in src.scan(None) if e.record and isinstance(e.record["id"], int)]
    assert rmb.states(sent) == mb.states(sent)
    assert any(s["state"] == "delivered" for s in rmb.states(sent).values())

    # the Redis mailbox is live: new ids come after every copied one
    newest = max(e.record["id"] for e in red.scan(None) if e.record)
    rec = rmb.send("on redis", to="carol", sender="alice")
    assert rec["id"] > newest
    before["carol"].append(rec)

    back = JsonlStore(str(tmp_path / "two"))
    done = migrate(red, back)
    assert done.records == 10
    last_line = list(red.scan_raw(None))[-1][1] + b"\n"
    assert last_line.startswith(b'{"id":%d,' % rec["id"])
    assert Path(back.location).read_bytes() == original + last_line
    bmb = Mailbox(back)
    assert views(bmb) == before
    assert back.load_cursor("bob").done  # type: ignore[union-attr]
    assert bmb.send("on jsonl again", to="bob", sender="alice")["id"] > rec["id"]
    assert [r["body"] for r in bmb.read("carol")] == [r["body"] for r in before["carol"]]


def test_refuses_a_target_that_is_not_empty(redis_url: str, tmp_path: Path) -> None:
    src = JsonlStore(str(tmp_path / "one"))
    Mailbox(src).send("x", to="bob", sender="alice")
    red = RedisStore(redis_url)
    Mailbox(red).send("already here", to="bob", sender="carol")
    with pytest.raises(UsageError, match="empty"):
        migrate(src, red)
    assert [e.record["body"] for e in red.scan(None) if e.record] == ["already here"]
    with pytest.raises(UsageError, match="same store"):
        migrate(src, JsonlStore(str(tmp_path / "one")))
    with pytest.raises(UsageError, match="unsupported target"):
        open_target("ftp://example")


def test_cli_migrates_both_ways(redis_url: str, tmp_path: Path, bin_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KEI_MAILBOX_URL"}
    env["KEI_MAILBOX_DIR"] = str(tmp_path / "mb")
    kei = str(bin_dir / "kei-message")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kei, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    assert run("send", "--from", "alice", "@bob", "one").returncode == 0
    assert run("send", "--from", "alice", "@bob", "two").returncode == 0
    assert run("inbox", "pop", "--me", "bob").returncode == 0
    res = run("migrate", "--to", redis_url)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("migrated 2 records, 1 cursors and 0 sessions from ")
    res = run("--url", redis_url, "inbox", "bob", "--json")
    assert res.returncode == 0 and '"body":"two"' in res.stdout and "one" not in res.stdout
    res = run("--url", redis_url, "migrate", "--to", f"file:{tmp_path / 'back'}")
    assert res.returncode == 0, res.stderr
    env["KEI_MAILBOX_DIR"] = str(tmp_path / "back")
    assert run("inbox", "bob", "--count").stdout.strip() == "0"
    res = run("--url", redis_url, "migrate", "--to", f"file:{tmp_path / 'back'}")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "empty" in res.stderr
