"""Hostile peers (issue 15, SPEC §15): records written without the CLI, by another
tool or another machine, can neither repeat nor overflow an id, stall a reader,
press a key in a pane, nor pass for the harness.

Both stores where the behaviour is shared (``mailbox`` fixture: JSONL, then a
real redis-server).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from kei_message import records
from kei_message.errors import IdsExhausted
from kei_message.mailbox import Mailbox
from kei_message.records import ID_LIMIT

BIN = Path(sys.executable).parent


def foreign(mb: Mailbox, rid: Any, body: str = "foreign", **extra: Any) -> None:
    """A record appended as another tool would: straight to the bus, no lock, no meta."""
    line = orjson.dumps(
        {"id": rid, "ts": "2026-11-21T08:00:00Z", "from": "mallory", "to": "bob", "body": body}
        | extra
    )
    store: Any = mb.store
    if store.name == "redis":
        store.r.xadd(store.k_bus, {"r": line})
    else:
        store.prepare()
        with open(store.location, "ab") as fh:
            fh.write(line + b"\n")


def bus_ids(mb: Mailbox) -> list[int]:
    return [e.record["id"] for e in mb.store.scan(None) if e.record is not None]


# ----------------------------------------------------------------------------- ids
@pytest.mark.parametrize("hostile", [2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1, ID_LIMIT + 1])
def test_foreign_ids_above_the_limit_never_make_ids_repeat(mailbox: Mailbox, hostile: int) -> None:
    first = mailbox.send("before", to="bob", sender="alice")
    foreign(mailbox, hostile)
    sent = [mailbox.send(f"after {i}", to="bob", sender="alice") for i in range(3)]
    # a fresh process-like store: no shortcut remembered from our own last append
    sent.append(Mailbox().send("fresh", to="bob", sender="alice"))
    ids = [r["id"] for r in sent]
    assert first["id"] < ids[0] and ids == sorted(set(ids)), ids
    assert all(i <= ID_LIMIT for i in ids) and hostile not in ids
    assert bus_ids(mailbox).count(hostile) == 1  # the foreign record is still read, once
    assert len(str(ids[-1])) == 16  # ordinary µs ids, not pushed up by the foreign one


def test_ids_near_the_limit_then_exhausted_exit_3(mailbox: Mailbox) -> None:
    mailbox.send("before", to="bob", sender="alice")
    foreign(mailbox, ID_LIMIT - 1)
    last = mailbox.send("the last id there is", to="bob", sender="alice")
    assert last["id"] == ID_LIMIT
    before = bus_ids(mailbox)
    with pytest.raises(IdsExhausted, match="exhausted"):
        mailbox.send("one too many", to="bob", sender="alice")
    proc = subprocess.run(
        [str(BIN / "kei-message"), "send", "--from", "alice", "@bob", "again"],
        capture_output=True,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 3, (proc.returncode, err)
    assert err.count("\n") == 1 and err.startswith("kei message: error: ids are exhausted")
    assert "nothing was written" in err and "Traceback" not in err
    assert bus_ids(mailbox) == before  # nothing written, nothing reused
    # a foreign id above the limit after that changes nothing: still exhausted
    foreign(mailbox, 2**64 - 2)
    with pytest.raises(IdsExhausted):
        Mailbox().send("still too many", to="bob", sender="alice")


def test_a_foreign_record_in_range_pushes_ids_past_it(mailbox: Mailbox) -> None:
    mailbox.send("before", to="bob", sender="alice")
    ahead = records.now_us() + 10**9
    foreign(mailbox, ahead)
    rec = mailbox.send("after", to="bob", sender="alice")
    assert rec["id"] == ahead + 1
    # ts stays the real time of sending
    assert abs(records.ts_epoch(rec["ts"]) - records.now_us() / 1e6) < 60  # type: ignore[operator]


@pytest.mark.redis
def test_redis_hostile_meta_and_exhausted_stream(redis_server: Any, monkeypatch: Any) -> None:
    from kei_message.errors import MailboxUnavailable
    from kei_message.stores.redis import RedisStore

    client = redis_server.client()
    client.flushdb()
    client.close()
    store = RedisStore(redis_server.url)
    mb = Mailbox(store)
    first = mb.send("x", to="bob", sender="alice")
    for bad in (str(2**64 - 1), str(2**63), "not a number", "-5"):
        store.r.hset(store.k_meta, "maxid", bad)
        rec = mb.send("y", to="bob", sender="alice")
        assert first["id"] < rec["id"] <= ID_LIMIT
        first = rec
    # a foreign entry at the very last stream id: no entry can follow; exit 3, one line
    store.r.xadd(store.k_bus, {"r": b"{}"}, id=f"{2**64 - 1}-{2**64 - 1}")
    with pytest.raises(MailboxUnavailable) as info:
        mb.send("z", to="bob", sender="alice")
    assert "\n" not in str(info.value)
    store.close()


@pytest.mark.redis
def test_cli_exhausted_is_one_line_exit_3_on_redis_too(redis_server: Any) -> None:
    client = redis_server.client()
    client.flushdb()
    client.hset("kei:meta", "maxid", str(ID_LIMIT))
    client.close()
    env = dict(os.environ, KEI_MAILBOX_URL=redis_server.url)
    proc = subprocess.run(
        [str(BIN / "kei-message"), "send", "--from", "alice", "@bob", "hi"],
        capture_output=True,
        timeout=60,
        env=env,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert err.startswith("kei message: error: ids are exhausted") and err.count("\n") == 1


# ----------------------------------------------------------------------------- linear reading
_MEASURE = """
import resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True)
took = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stdout.write(f"{p.returncode} {took:.3f} {rss}\\n" + p.stdout.decode(errors="replace"))
"""


def _measured(*args: str) -> tuple[int, float, int, str]:
    """Run ``kei-message ARGS`` in a fresh process: (exit code, seconds, max RSS in KiB, stdout)."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(BIN / "kei-message"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    head, _, rest = out.partition("\n")
    code, took, rss = head.split()
    return int(code), float(took), int(rss), rest


@pytest.mark.slow
def test_a_stretch_without_newline_is_read_in_linear_time_and_bounded_memory(
    mailbox_dir: Path,
) -> None:
    """256 MiB of NULs without a newline between two messages (#15; was 31 s and 800 MB)."""
    results = {}
    for mib in (64, 256):
        mb = Mailbox()
        mb.send("one", to="bob", sender="alice")
        bus = mailbox_dir / "messages.jsonl"
        os.truncate(bus, bus.stat().st_size + (mib << 20))  # a hole reads as NULs
        mb.send("two", to="bob", sender="alice")
        got = {}
        for args in (("inbox", "--me", "bob", "--peek"), ("list",), ("inbox", "--me", "bob")):
            code, took, rss, out = _measured(*args)
            assert code == 0 and "one" in out and "two" in out, (args, out)
            got[args[0] + args[-1]] = (took, rss)
        results[mib] = got
        bus.unlink()
        for left in mailbox_dir.iterdir():
            if left.is_file():
                left.unlink()
    print("seconds, max RSS KiB:", results)
    for key, (took, rss) in results[256].items():
        small_took, small_rss = results[64][key]
        # 4x the bytes: linear time stays well under 6x (quadratic was 16x); memory
        # does not grow with the stretch at all (was 800 MB for 256 MiB)
        assert took < 6 * small_took + 0.5, (key, results)
        assert rss < small_rss + 32 * 1024 and rss < 200 * 1024, (key, results)


def test_giant_lines_are_skipped_and_reported_both_ways(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kei_message.stores import jsonl

    monkeypatch.setattr(jsonl, "CHUNK", 1000)  # many chunks per line, both directions
    monkeypatch.setattr(records, "max_line", lambda: 2400)  # a line over 2,400 bytes is corrupt
    mb = Mailbox()
    first = mb.send("a" * 250, to="bob", sender="alice")
    bus = mailbox_dir / "messages.jsonl"
    with open(bus, "ab") as fh:
        fh.write(b"\x00" * 5000 + b"\n" + b"x" * 2399 + b"\n" + b"\n")
    last = mb.send("b" * 250, to="bob", sender="alice")
    forward = list(mb.store.scan(None))
    backward = list(mb.store.scan_reverse())
    assert [e.record for e in forward] == [first, None, None, None, last]
    assert forward == backward[::-1]
    assert "over the 2400-byte limit" in (forward[1].error or "")
    assert "not JSON" in (forward[2].error or "")  # 2,399 bytes: read, parsed, corrupt
    ends = [int(e.end) for e in forward]
    assert [int(e.pos) for e in forward[1:]] == ends[:-1] and ends[-1] == bus.stat().st_size
