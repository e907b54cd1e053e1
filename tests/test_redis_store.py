"""The Redis Streams store on its own: ids, positions, cursors, locks, waiting, gc, errors.

Behaviour every store shares is tested through the ``mailbox`` fixture (both
stores); this file covers what only Redis has. A real redis-server runs for
the session (conftest ``redis_server``); each test starts from an empty db.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kei_message import records
from kei_message.cursors import Cursor
from kei_message.errors import MailboxLocked, MailboxUnavailable
from kei_message.mailbox import Mailbox
from kei_message.presence import who
from kei_message.stores import redis as redis_store
from kei_message.stores import redis_scripts
from kei_message.stores.redis import RedisStore

pytestmark = pytest.mark.redis


@pytest.fixture
def url(redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    client = redis_server.client()
    try:
        client.flushdb()
    finally:
        client.close()
    monkeypatch.setenv("KEI_MAILBOX_URL", redis_server.url)
    return str(redis_server.url)


@pytest.fixture
def store(url: str) -> Iterator[RedisStore]:
    st = RedisStore(url)
    yield st
    st.close()


def test_lua_time_format_matches_python(store: RedisStore) -> None:
    script = store.r.register_script(
        redis_scripts.LUA_TS
        + "local out = {} for i, s in ipairs(ARGV) do out[i] = ts_of(tonumber(s)) end return out"
    )
    samples = [0, 59, 86399, 86400, 951782400, 951868799, 1709164800, 4107542400]
    samples += [1795248002 + k * 7_777_777 for k in range(300)]
    got = [t.decode() for t in script(args=samples)]
    assert got == [records.ts_from_id(s * 1_000_000) for s in samples]


def test_append_assigns_increasing_ids_and_derived_stream_ids(store: RedisStore) -> None:
    mb = Mailbox(store)
    sent = [mb.send(f"m{i}", to="bob", sender="alice") for i in range(5)]
    entries = list(store.scan(None))
    assert [e.record for e in entries] == sent
    ids = [r["id"] for r in sent]
    assert ids == sorted(set(ids))
    for rec, entry in zip(sent, entries, strict=True):
        assert abs(records.ts_epoch(rec["ts"]) - rec["id"] / 1e6) < 1.5  # type: ignore[operator]
        assert entry.pos == f"{rec['id'] // 1000}-{rec['id'] % 1000}"
        assert store.order(entry.end) > store.order(entry.pos)
    assert store.end() == entries[-1].end


def test_ids_stay_above_a_clock_behind_the_max_id(store: RedisStore) -> None:
    future = records.now_us() + 3_600_000_000
    store.r.hset(store.k_meta, mapping={"maxid": str(future)})
    rec = store.append({"from": "a", "to": "b", "body": "x"})
    assert rec["id"] == future + 1
    # ts is the time of sending, not the hour ahead the id was pushed to
    assert abs(records.ts_epoch(rec["ts"]) - time.time()) < 60  # type: ignore[operator]
    again = store.append({"from": "a", "to": "b", "body": "y"})
    assert again["id"] == future + 2
    assert [e.record["id"] for e in store.scan(None) if e.record] == [future + 1, future + 2]


def test_concurrent_appends_from_processes_are_unique_and_ordered(url: str, tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from kei_message.mailbox import Mailbox
        mb = Mailbox()
        for i in range(40):
            mb.send(f"{sys.argv[1]}-{i}", to="sink", sender=sys.argv[1])
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, f"w{n}"], env=os.environ.copy())
        for n in range(4)
    ]
    for p in procs:
        assert p.wait(timeout=60) == 0
    store = RedisStore(url)
    recs = [e.record for e in store.scan(None)]
    assert len(recs) == 160 and all(recs)
    ids = [r["id"] for r in recs if r]
    assert ids == sorted(ids) and len(set(ids)) == 160
    bodies = {r["body"] for r in recs if r}
    assert bodies == {f"w{n}-{i}" for n in range(4) for i in range(40)}


def test_a_retried_append_writes_once(store: RedisStore) -> None:
    keys = [store.k_bus, store.k_meta, store.k_names, store._nonce + "fixed"]
    args = [b'{"from":"a","to":"b","body":"x"}', "a", "b", 60]
    first = store._append(keys=keys, args=args)
    second = store._append(keys=keys, args=args)
    assert first == second
    assert store.r.xlen(store.k_bus) == 1
    assert store.names()["b"]["received"] == 1


def test_names_index_is_kept_on_append(store: RedisStore) -> None:
    mb = Mailbox(store)
    mb.send("1", to="bob", sender="alice")
    last = mb.send("2", to="all", sender="bob")
    names = store.names()
    assert set(names) == {"alice", "bob"}
    assert names["alice"]["sent"] == 1 and names["alice"]["received"] == 0
    assert names["bob"] == {"sent": 1, "received": 1, "last_id": last["id"], "last_ts": last["ts"]}


def test_scan_pages_and_bounds(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_store, "PAGE", 7)
    mb = Mailbox(store)
    for i in range(30):
        mb.send(f"m{i}", to="bob" if i % 3 else "carol", sender="alice")
    every = list(store.scan(None))
    assert [e.record["body"] for e in every if e.record] == [f"m{i}" for i in range(30)]
    assert list(store.scan_reverse()) == every[::-1]
    assert list(store.scan(every[10].pos, every[20].pos)) == every[10:20]
    assert list(store.scan(every[10].end)) == every[11:]
    assert list(store.scan(store.end())) == []
    assert list(store.scan(None, "0-0")) == []
    hinted = list(store.scan(None, hint=(b'"carol"',)))
    assert [e.record["body"] for e in hinted if e.record] == [f"m{i}" for i in range(0, 30, 3)]


def test_a_stream_without_meta_still_has_an_end(store: RedisStore) -> None:
    mb = Mailbox(store)
    assert store.end() == "0-0"
    mb.send("one", to="bob", sender="alice")
    last = mb.send("two", to="bob", sender="alice")
    store.r.delete(store.k_meta)  # e.g. the stream was restored on its own
    assert store.end() == f"{last['id'] // 1000}-{last['id'] % 1000 + 1}"
    assert [r["body"] for r in mb.read("bob")] == ["one", "two"]
    assert mb.send("three", to="bob", sender="alice")["body"] == "three"
    assert [r["body"] for r in mb.read("bob")] == ["three"]


def test_corrupt_entry_is_reported_not_fatal(store: RedisStore) -> None:
    mb = Mailbox(store)
    mb.send("before", to="bob", sender="alice")
    store.r.xadd(store.k_bus, {"r": b"{not json"})
    store.r.xadd(store.k_bus, {"other": b"x"})
    after = mb.send("after", to="bob", sender="alice")
    entries = list(store.scan(None))
    assert [e.record is None for e in entries] == [False, True, True, False]
    assert all(e.error for e in entries[1:3])
    assert [r["body"] for r in mb.read("bob")] == ["before", "after"]
    assert after["id"] > entries[0].record["id"]  # type: ignore[index]


def test_cursor_never_moves_backwards(store: RedisStore) -> None:
    store.save_cursor("bob", Cursor("200-5", frozenset({"300-0", "150-0"})))
    assert store.load_cursor("bob") == Cursor("200-5", frozenset({"300-0"}))
    store.save_cursor("bob", Cursor("100-0", frozenset({"400-1"})))
    assert store.load_cursor("bob") == Cursor("200-5", frozenset({"300-0", "400-1"}))
    store.save_cursor("bob", Cursor("350-0"))
    assert store.load_cursor("bob") == Cursor("350-0", frozenset({"400-1"}))
    store.save_cursor("bob", Cursor(None))
    assert store.load_cursor("bob") == Cursor("350-0", frozenset({"400-1"}))
    assert store.readers() == ["bob"]
    assert store.load_cursor("nobody") is None


def test_corrupt_cursor_is_a_clear_error(store: RedisStore) -> None:
    store.r.set(store._cursor + "bob", b"garbage")
    with pytest.raises(MailboxUnavailable, match="corrupt"):
        store.load_cursor("bob")


def test_reader_lock_excludes_and_times_out(
    store: RedisStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEI_MAILBOX_LOCK_TIMEOUT", "0.3")
    other = RedisStore(url)
    with store.reader_lock("bob"):
        with pytest.raises(MailboxLocked) as info, other.reader_lock("bob"):
            pass
        assert info.value.exit_code == 3
        with other.reader_lock("carol"):  # other readers are not blocked
            pass
    with other.reader_lock("bob"):
        pass


def test_reader_lock_is_renewed_while_held(
    store: RedisStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "LOCK_TTL", 1.5)
    monkeypatch.setenv("KEI_MAILBOX_LOCK_TIMEOUT", "0.1")
    other = RedisStore(url)
    with store.reader_lock("bob"):
        for _ in range(4):  # 4 s: well past the ttl
            time.sleep(1.0)
            with pytest.raises(MailboxLocked), other.reader_lock("bob"):
                pass


def test_lock_of_a_dead_holder_expires(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    code = textwrap.dedent(
        """
        import os
        from kei_message.stores import redis as rs
        rs.LOCK_TTL = 1.0
        st = rs.RedisStore(os.environ["KEI_MAILBOX_URL"])
        st.reader_lock("bob").__enter__()
        print("held", flush=True)
        os._exit(0)  # dies holding it
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    ).stdout
    assert out.strip() == "held"
    monkeypatch.setenv("KEI_MAILBOX_LOCK_TIMEOUT", "5")
    with RedisStore(url).reader_lock("bob"):
        pass


def test_concurrent_consumers_of_one_identity_get_each_message_once(url: str) -> None:
    sender = Mailbox(RedisStore(url))
    got: list[int] = []
    guard = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        mb = Mailbox(RedisStore(url))
        try:
            while not stop.is_set():
                for rec in mb.read("bob"):
                    with guard:
                        got.append(rec["id"])
                time.sleep(0.005)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for t in threads:
        t.start()
    sent = [sender.send(f"m{i}", to="bob", sender="alice")["id"] for i in range(60)]
    deadline = time.monotonic() + 20
    while len(got) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert not errors
    assert sorted(got) == sent


def test_wait_for_change_blocks_and_wakes(store: RedisStore, url: str) -> None:
    since = store.end()
    assert store.wait_for_change(since, 0.2) is False
    timer = threading.Timer(0.3, lambda: Mailbox(RedisStore(url)).send("x", sender="a"))
    timer.start()
    try:
        started = time.monotonic()
        assert store.wait_for_change(since, 10) is True
        assert time.monotonic() - started < 5  # woke on the append, not the timeout
    finally:
        timer.cancel()
    assert store.wait_for_change(since, 0) is True


def test_wait_blocks_in_redis_not_in_a_loop(tmp_path: Path) -> None:
    """A server of its own: the shared one counts other tests' leftovers too (a waiter
    still blocking in XREAD), which made this fail now and then."""
    from redis_server import RedisServer

    with RedisServer(tmp_path / "r", appendonly=False) as server:
        store = RedisStore(server.url)
        try:
            before = int(store.r.info("stats")["total_commands_processed"])
            assert store.wait_for_change(store.end(), 1.0) is False
            after = int(store.r.info("stats")["total_commands_processed"])
        finally:
            store.close()
    assert after - before < 10  # a poll every few ms would be hundreds


def test_compact_moves_old_entries_to_the_archive(store: RedisStore) -> None:
    mb = Mailbox(store)
    sent = [mb.send(f"m{i}", to="bob", sender="alice") for i in range(10)]
    with mb.consuming("bob") as batch:
        batch.deliver(batch.messages[:4])
    entries = list(store.scan(None))
    end = store.end()
    moved = store.compact(entries[4].pos)
    assert moved == 4
    assert [e.record for e in store.scan(None)] == sent[4:]
    archived = store.r.xrange(store.k_archive)
    assert [a[0].decode() for a in archived] == [e.pos for e in entries[:4]]
    assert store.end() == end
    assert [r["body"] for r in mb.unread("bob")] == [f"m{i}" for i in range(4, 10)]
    assert store.compact(entries[4].pos) == 0
    assert store.compact(end) == 6
    assert list(store.scan(None)) == [] and store.end() == end
    assert mb.send("new", to="bob", sender="alice")["id"] > sent[-1]["id"]
    assert [r["body"] for r in mb.read("bob")][-1] == "new"


def test_gc_on_redis_archives_only_what_readers_consumed(store: RedisStore) -> None:
    from kei_message.admin import gc

    old = records.now_us() - 60 * 86400 * 1_000_000
    lines = [
        records.dumps(
            {
                "id": old + i,
                "ts": records.ts_from_id(old + i),
                "from": "a",
                "to": "bob",
                "body": f"o{i}",
            }
        )[:-1]
        for i in range(6)
    ]
    store.import_lines(lines)
    mb = Mailbox(store)
    mb.send("new", to="bob", sender="a")
    with mb.consuming("bob") as batch:
        batch.deliver(batch.messages[:3])
    result = gc.collect(mb, 30 * 86400)
    assert result.moved == 3 and result.held_by == ["bob"]
    assert result.archive == f"{store.location} stream {store.k_archive}"
    assert store.r.xlen(store.k_archive) == 3
    assert [r["body"] for r in mb.read("bob")] == ["o3", "o4", "o5", "new"]
    assert gc.collect(mb, 30 * 86400).moved == 3
    assert [e.record["body"] for e in store.scan(None) if e.record] == ["new"]


def test_sessions(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEI_MAILBOX_HOST", "here")
    store.put_session("s-1", {"name": "bob", "session_id": "s-1"})
    store.put_session("s/2", {"name": "carol", "session_id": "s/2"})
    store.put_session("s-1", {"name": "bob", "session_id": "s-1", "cwd": "/x"})
    got = sorted(store.sessions(), key=lambda s: s["session_id"])
    assert got == [
        {"name": "bob", "session_id": "s-1", "cwd": "/x", "host": "here"},
        {"name": "carol", "session_id": "s/2", "host": "here"},
    ]


def test_sessions_of_another_machine_carry_no_pane(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    pane = {"tmux": "/tmp/tmux-0/default,1,0", "tmux_pane": "%3", "pid": os.getpid()}
    monkeypatch.setenv("KEI_MAILBOX_HOST", "machine-a")
    store.put_session("a", {"name": "alpha", "session_id": "a", "last_seen": "t", **pane})
    assert store.sessions()[0]["tmux_pane"] == "%3"
    monkeypatch.setenv("KEI_MAILBOX_HOST", "machine-b")
    seen = store.sessions()
    assert seen == [
        {"name": "alpha", "session_id": "a", "last_seen": "t", "host": "machine-a", "remote": True}
    ]
    from kei_message.live import registry

    assert registry.registered(store) == []  # live delivery never targets it here
    assert [row["name"] for row in who(Mailbox(store))] == ["alpha"]


def test_prefix_keeps_mailboxes_apart(url: str) -> None:
    a = Mailbox(RedisStore(url + "?prefix=teamA"))
    b = Mailbox(RedisStore(url + "?prefix=teamB"))
    a.send("for A", to="bob", sender="alice")
    assert b.unread("bob") == []
    assert [r["body"] for r in a.unread("bob")] == ["for A"]


def test_unreachable_redis_is_one_clear_error() -> None:
    from redis_server import free_port

    st = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(MailboxUnavailable) as info:
        st.append({"from": "a", "to": "b", "body": "x"})
    assert time.monotonic() - started < 5  # well inside the hook's budget
    msg = str(info.value)
    assert "\n" not in msg and "Redis at redis://127.0.0.1:" in msg and "refused" in msg
    for call in (st.end, st.readers, st.names, st.sessions, lambda: list(st.scan(None))):
        with pytest.raises(MailboxUnavailable):
            call()


def test_password_and_acl_user_in_the_url(tmp_path: Path) -> None:
    from redis_server import RedisServer

    with RedisServer(tmp_path / "r", appendonly=False, password="s3cret") as server:
        good = RedisStore(server.url)
        assert good.end() == "0-0"
        assert "s3cret" not in good.location and ":***@" in good.location
        bad = RedisStore(f"redis://:wrong@127.0.0.1:{server.port}/0")
        with pytest.raises(MailboxUnavailable) as info:
            bad.end()
        assert "wrong" not in str(info.value) and "\n" not in str(info.value)
        none = RedisStore(f"redis://127.0.0.1:{server.port}/0")
        with pytest.raises(MailboxUnavailable, match="(?i)auth"):
            none.end()
        # an ACL user limited to the mailbox's keys is enough for everything
        admin = server.client()
        # the rule README.md suggests
        rule = ["on", ">pw", "~kei:*", "+@all", "-@dangerous", "+script|load"]
        admin.execute_command("ACL", "SETUSER", "kei", *rule)
        admin.script_flush()  # so the scripts must be loaded by the ACL user
        admin.close()
        acl = Mailbox(RedisStore(f"redis://kei:pw@127.0.0.1:{server.port}/0"))
        acl.send("as an ACL user", to="bob", sender="alice")
        assert [r["body"] for r in acl.read("bob")] == ["as an ACL user"]
        acl.store.put_session("s", {"name": "bob", "session_id": "s"})
        assert [row["name"] for row in who(acl)] == ["alice", "bob"]
        assert acl.store.wait_for_change(acl.store.end(), 0.1) is False
        assert acl.store.compact(acl.store.end()) == 1
        assert acl.store.readers() == ["bob"]
        other = Mailbox(RedisStore(f"redis://kei:pw@127.0.0.1:{server.port}/0?prefix=x"))
        with pytest.raises(MailboxUnavailable, match="(?i)no permissions"):
            other.send("outside my keys", to="bob", sender="alice")


def test_locations_never_show_a_password() -> None:
    safe = redis_store._safe_url
    assert safe("redis://u:p%40ss@[::1]:6379/0") == "redis://u:***@[::1]:6379/0"
    assert safe("rediss://:pw@host:6380/2?ssl_ca_certs=/ca.pem") == (
        "rediss://:***@host:6380/2?ssl_ca_certs=/ca.pem"
    )
    assert safe("unix:///run/redis.sock?db=1&password=pw") == (
        "unix:///run/redis.sock?db=1&password=***"
    )
    assert safe("redis://host:6379/0") == "redis://host:6379/0"


def test_jsonl_path_never_imports_redis(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from kei_message.mailbox import Mailbox
        from kei_message.presence import who
        mb = Mailbox()
        mb.send("x", to="bob", sender="alice")
        mb.read("bob")
        who(mb)
        assert "kei_message.stores.redis" not in sys.modules
        assert "redis" not in sys.modules, [m for m in sys.modules if "redis" in m]
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "KEI_MAILBOX_URL"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_tls_with_rediss_url(tmp_path: Path) -> None:
    import shutil

    from redis_server import RedisServer

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    with RedisServer(tmp_path / "r", appendonly=False, tls=True) as server:
        assert server.url.startswith("rediss://")
        mb = Mailbox(RedisStore(server.url))
        mb.send("over TLS", to="bob", sender="alice")
        assert [r["body"] for r in mb.read("bob")] == ["over TLS"]
        # a server whose certificate is not trusted is refused, in one line
        untrusted = RedisStore(f"rediss://127.0.0.1:{server.port}/0")
        with pytest.raises(MailboxUnavailable, match="(?i)certificate") as info:
            untrusted.end()
        assert "\n" not in str(info.value)
        # and plain redis:// to a TLS port is no silent success either
        with pytest.raises(MailboxUnavailable):
            RedisStore(f"redis://127.0.0.1:{server.port}/0").end()


def test_check_reports_what_doctor_should_say(tmp_path: Path) -> None:
    from redis_server import RedisServer

    with RedisServer(tmp_path / "r", appendonly=False) as server:
        store = RedisStore(server.url)
        mb = Mailbox(store)
        mb.send("x", to="bob", sender="alice")
        mb.read("bob")
        store.r.xadd(store.k_bus, {"r": b"not json"})
        end = store.end()
        store.r.set(store._cursor + "carol", b"99999999999999-0\n\n")
        store.r.sadd(store.k_readers, "carol")
        findings, notes = store.check()
        problems = {f["area"]: f for f in findings}
        assert "appendonly is off" in problems["redis"]["problem"]
        assert "1 of 2 entries" in problems["bus"]["problem"]
        assert problems["cursor"]["repairable"] and problems["cursor"]["repaired"] is None
        assert any("Redis 7" in n or "Redis 6" in n for n in notes)
        findings, _ = store.check(repair=True)
        fixed = [f for f in findings if f["area"] == "cursor"]
        assert fixed[0]["repaired"] == f"moved back to {end}"
        assert store.load_cursor("carol") == Cursor(end)
        assert [f["area"] for f in store.check()[0]] == ["redis", "bus"]
        assert store.load_cursor("bob") is not None  # a good cursor is left alone


def test_doctor_command_checks_the_redis_store(url: str) -> None:
    """`kei message doctor` on Redis reports the store's own findings, not "healthy"."""
    from typer.testing import CliRunner

    from kei_message.cli import get_app

    store = RedisStore(url)
    try:
        store.r.xadd(store.k_bus, {"r": b"not json"})
    finally:
        store.close()
    res = CliRunner().invoke(get_app(), ["doctor"], prog_name="kei message")
    assert res.exit_code == 1, res.output
    assert "1 of 1 entries" in res.stdout
    assert "healthy" not in res.stdout


def test_local_subdirs_are_checked_like_the_jsonl_store(
    url: str, mailbox_dir: Path, tmp_path: Path
) -> None:
    # per-machine files (waiters, hook log) stay in the local dir: a symlinked
    # subdir there must be refused on Redis too, not followed
    from kei_message.errors import UnsafeMailbox

    store = RedisStore(url)
    try:
        made = Path(store.prepare("waiters"))
        assert made.stat().st_mode & 0o777 == 0o700
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (mailbox_dir / "sessions").symlink_to(elsewhere)
        with pytest.raises(UnsafeMailbox):
            store.prepare("sessions")
    finally:
        store.close()
