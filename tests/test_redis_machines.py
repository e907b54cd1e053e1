"""Several machines on one Redis: real processes, each "machine" its own HOME and mailbox dir.

- messages cross both ways, exactly once per reader, while both machines send
  and two consumers of each identity read at the same time;
- redis-server killed and restarted in the middle of a run: every send that
  exited 0 is still there, and readers continue where they were;
- Redis unreachable: the CLI exits 3 with one line, the hook exits 0 silently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer, free_port, redis_server_bin

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(redis_server_bin() is None, reason="redis-server is not installed"),
]

# A consumer: reads its identity's unread in a loop, writing each delivered id
# to OUT before the cursor commits (so OUT is what a user would have seen).
# Each batch ends with a "C" line once its cursor committed, or a "U" line when
# the commit failed (Redis went away): those messages may legitimately come
# again (SPEC §4: at least once after a crash between output and commit).
# Stops when STOP exists and nothing is left.
READER = textwrap.dedent(
    """
    import os, sys, time
    from kei_message.errors import MailboxUnavailable
    from kei_message.mailbox import Mailbox
    me, out_path, stop_path = sys.argv[1:4]
    out = open(out_path, "a", buffering=1)
    def deliver(recs):
        out.write("".join(f"D {r['id']}\\n" for r in recs))
        out.flush()
    mb = Mailbox()
    out.write("R\\n")  # running: the test starts sending only when every reader is
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            end = mb.store.end()
            got = mb.read(me, deliver=deliver)
            if got:
                out.write("C\\n")
        except MailboxUnavailable as exc:
            out.write(f"U {exc}\\n")
            time.sleep(0.1)
            continue
        if not got:
            if os.path.exists(stop_path):
                break
            try:
                mb.store.wait_for_change(end, 0.3)
            except MailboxUnavailable:
                time.sleep(0.1)
    """
)

# A library sender: "OK id" for each send that returned, "FAIL" for each that raised.
SENDER = textwrap.dedent(
    """
    import sys, time
    from kei_message.errors import MailboxUnavailable
    from kei_message.mailbox import Mailbox
    me, to, count, pause, out_path = sys.argv[1:6]
    count, pause = int(count), float(pause)
    out = open(out_path, "a", buffering=1)
    mb = Mailbox()
    for i in range(count):
        target = "all" if i % 5 == 4 else to
        try:
            rec = mb.send(f"{me} #{i}", to=target, sender=me)
        except MailboxUnavailable:
            out.write("FAIL\\n")
        else:
            out.write(f"OK {rec['id']} {target}\\n")
        time.sleep(pause)
    """
)


class Machine:
    """One simulated machine: its own HOME and mailbox dir, the shared Redis URL."""

    def __init__(self, root: Path, name: str, url: str) -> None:
        self.name = name
        self.dir = root / name
        home = self.dir / "home"
        home.mkdir(parents=True)
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("KEI_", "TMUX", "CLAUDE"))
        }
        self.env.update(
            HOME=str(home),
            KEI_MAILBOX_DIR=str(self.dir / "mailbox"),
            KEI_MAILBOX_URL=url,
            KEI_MAILBOX_LOCK_TIMEOUT="20",
            NO_COLOR="1",
            PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        )
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, code: str, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env=self.env,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    def cli(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["kei-message", *args],
            env=self.env,
            cwd=self.dir,
            input=stdin,
            capture_output=True,
            timeout=60,
        )

    def reap(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[list[Machine]]:
    made: list[Machine] = []
    yield made
    for m in made:
        m.reap()


def finish(proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()


def delivered(path: Path) -> list[tuple[str, int | None]]:
    """A reader's output: ("D", id) per delivered message, ("C"|"U", None) per commit,
    ("R", None) once it runs."""
    if not path.exists():
        return []
    out: list[tuple[str, int | None]] = []
    for line in path.read_text().splitlines():
        kind, _, rest = line.partition(" ")
        out.append((kind, int(rest) if kind == "D" else None))
    return out


def sent_ok(path: Path) -> dict[int, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("OK "):
            _, rid, to = line.split()
            out[int(rid)] = to
    return out


def wait_until(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def assert_exactly_once(paths: list[Path], expected: set[int]) -> None:
    ids = [rid for p in paths for kind, rid in delivered(p) if kind == "D"]
    counts = Counter(ids)
    assert set(counts) == expected, (sorted(expected - set(counts)), sorted(set(counts) - expected))
    assert [rid for rid, n in counts.items() if n > 1] == []


def test_two_machines_exchange_messages_exactly_once(
    tmp_path: Path, machines: list[Machine]
) -> None:
    with RedisServer(tmp_path / "redis") as server:
        a = Machine(tmp_path, "machine-a", server.url)
        b = Machine(tmp_path, "machine-b", server.url)
        machines += [a, b]
        stop = tmp_path / "stop"
        outs = {
            "alpha": [a.dir / "alpha-1.out", a.dir / "alpha-2.out"],
            "beta": [b.dir / "beta-1.out", b.dir / "beta-2.out"],
        }
        # two consumers of each identity, on its machine, reading concurrently
        for m, me in ((a, "alpha"), (b, "beta")):
            for out in outs[me]:
                m.spawn(READER, me, str(out), str(stop))
        every_reader = [p for ps in outs.values() for p in ps]
        assert wait_until(lambda: all(delivered(p) for p in every_reader), 60)
        senders = [
            a.spawn(SENDER, "alpha", "beta", "60", "0.005", str(a.dir / "sent")),
            b.spawn(SENDER, "beta", "alpha", "60", "0.005", str(b.dir / "sent")),
        ]
        # meanwhile the CLI on each machine sends too, and reads with `inbox` as a
        # third consumer of the same identity
        cli_sent: dict[str, set[int]] = {"alpha": set(), "beta": set()}
        cli_read: dict[str, list[int]] = {"alpha": [], "beta": []}
        for i in range(3):
            for m, me, other in ((a, "alpha", "beta"), (b, "beta", "alpha")):
                res = m.cli("send", "--json", "--from", me, f"@{other}", f"cli {me} {i}")
                assert res.returncode == 0, res.stderr
                cli_sent[other].add(json.loads(res.stdout)["id"])
                res = m.cli("inbox", me, "--json")
                assert res.returncode == 0, res.stderr
                cli_read[me] += [json.loads(line)["id"] for line in res.stdout.splitlines()]
        for proc in senders:
            finish(proc)
        expected = {
            "alpha": {i for i, to in sent_ok(b.dir / "sent").items()} | cli_sent["alpha"],
            "beta": {i for i, to in sent_ok(a.dir / "sent").items()} | cli_sent["beta"],
        }
        assert len(expected["alpha"]) == len(expected["beta"]) == 63  # no send failed

        def all_read() -> bool:
            return all(
                sum(1 for p in outs[me] for k, _ in delivered(p) if k == "D") + len(cli_read[me])
                >= len(expected[me])
                for me in outs
            )

        assert wait_until(all_read, 60)
        stop.touch()
        for m in (a, b):
            for proc in m.procs:
                if proc not in senders:
                    finish(proc)
        for me in outs:
            ids = [r for p in outs[me] for k, r in delivered(p) if k == "D"] + cli_read[me]
            assert not any(k == "U" for p in outs[me] for k, _ in delivered(p))
            counts = Counter(ids)
            assert set(counts) == expected[me]
            assert [r for r, n in counts.items() if n > 1] == []
        # Both consumers of an identity ran through the whole exchange (they were up
        # before the first send): they competed for every message. How the messages
        # split between them is the scheduler's business, not something to assert.
        assert all(("R", None) in delivered(p) for p in every_reader)
        assert all(any(k == "D" for p in outs[me] for k, _ in delivered(p)) for me in outs)
        # and the other machine's view agrees: nothing unread anywhere
        for m, me in ((a, "alpha"), (b, "beta"), (b, "alpha")):
            res = m.cli("inbox", me, "--count")
            assert (res.returncode, res.stdout.strip()) == (0, b"0")
        # the hook on machine B delivers what machine A sends, once
        assert a.cli("send", "--from", "alpha", "@beta", "via the hook").returncode == 0
        payload = {"session_id": "s-b", "cwd": str(b.dir / "beta"), "prompt": "hi"}
        for expect in (True, False):
            res = subprocess.run(
                ["kei-message-hook", "user-prompt-submit"],
                input=json.dumps(payload).encode(),
                env=b.env,
                capture_output=True,
                timeout=30,
            )
            assert res.returncode == 0 and res.stderr == b""
            if expect:
                ctx = json.loads(res.stdout)["hookSpecificOutput"]["additionalContext"]
                assert "via the hook" in ctx and "alpha" in ctx
            else:
                assert res.stdout == b""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fsync", "how"),
    [("always", "kill"), ("everysec", "stop")],
    ids=["appendfsync-always-SIGKILL", "appendfsync-everysec-SIGTERM"],
)
def test_restart_keeps_every_acknowledged_send(
    tmp_path: Path, machines: list[Machine], fsync: str, how: str
) -> None:
    """``appendfsync always``: acknowledged writes survive even SIGKILL (and power loss).

    ``everysec`` is only checked with a clean shutdown, which flushes the file:
    a crash can lose the last second or so of acknowledged sends.
    """
    with RedisServer(tmp_path / "redis", appendonly=True, appendfsync=fsync) as server:
        a = Machine(tmp_path, "machine-a", server.url)
        b = Machine(tmp_path, "machine-b", server.url)
        machines += [a, b]
        stop = tmp_path / "stop"
        outs = [b.dir / "beta-1.out", b.dir / "beta-2.out"]
        for out in outs:
            b.spawn(READER, "beta", str(out), str(stop))
        sender = a.spawn(SENDER, "alpha", "beta", "150", "0.02", str(a.dir / "sent"))
        cli_ok: set[int] = set()
        cli_failed = 0

        def cli_send(i: int) -> None:
            nonlocal cli_failed
            res = a.cli("send", "--json", "--from", "alpha", "@beta", f"cli #{i}")
            if res.returncode == 0:
                cli_ok.add(json.loads(res.stdout)["id"])
            else:
                assert res.returncode == 3, res.stderr
                assert res.stderr.decode().count("\n") == 1
                cli_failed += 1

        for i in range(2):
            cli_send(i)
        assert wait_until(lambda: len(sent_ok(a.dir / "sent")) >= 40, 60)
        before = sum(1 for p in outs for k, _ in delivered(p) if k == "D")
        assert before > 0  # readers had consumed some before the crash
        getattr(server, how)()
        cli_send(2)  # while it is down: exit 3, one line
        assert cli_failed == 1
        time.sleep(0.5)
        server.start()
        for i in range(3, 5):
            cli_send(i)
        finish(sender)
        ok = sent_ok(a.dir / "sent")
        failed = (a.dir / "sent").read_text().count("FAIL")
        assert len(ok) + failed == 150 and len(ok) > 100
        assert failed > 0  # the sender did run into the outage

        # every acknowledged send is in the bus after the restart
        from kei_message.stores.redis import RedisStore

        store = RedisStore(server.url)
        in_bus = {e.record["id"] for e in store.scan(None) if e.record}
        acked = set(ok) | cli_ok
        assert acked <= in_bus, sorted(acked - in_bus)
        to_beta = {e.record["id"] for e in store.scan(None) if e.record}  # all from alpha

        def drained() -> bool:
            got = {r for p in outs for k, r in delivered(p) if k == "D"}
            return to_beta <= got

        assert wait_until(drained, 60)
        stop.touch()
        for proc in b.procs:
            finish(proc)
        # readers continued where they were: a message comes twice only when the
        # commit of the batch that first delivered it failed during the outage
        counts = Counter(r for p in outs for k, r in delivered(p) if k == "D")
        again = {r for r, n in counts.items() if n > 1}
        uncommitted: set[int] = set()
        for p in outs:
            batch: list[int] = []
            for kind, rid in delivered(p):
                if kind == "D" and rid is not None:
                    batch.append(rid)
                    continue
                if kind == "U":
                    uncommitted.update(batch)
                batch = []
        assert again <= uncommitted
        assert set(counts) == to_beta


def test_unreachable_redis_cli_exits_3_and_hook_stays_silent(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    m = Machine(tmp_path, "machine-a", url)
    for args in (["send", "--from", "alpha", "@beta", "hello"], ["inbox", "beta"], ["who"]):
        res = m.cli(*args)
        err = res.stderr.decode()
        assert res.returncode == 3, (args, err)
        assert err.startswith("kei message: error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err and res.stdout == b""
    payload = json.dumps({"session_id": "s1", "cwd": str(tmp_path / "beta"), "prompt": "hi"})
    for event in ("user-prompt-submit", "session-start", "stop"):
        started = time.monotonic()
        res = subprocess.run(
            ["kei-message-hook", event],
            input=payload.encode(),
            env=m.env,
            capture_output=True,
            timeout=30,
        )
        assert (res.returncode, res.stdout, res.stderr) == (0, b"", b""), event
        assert time.monotonic() - started < 10  # generous: the contract says 2 s


def test_a_blocked_wait_rides_out_a_restart(tmp_path: Path, machines: list[Machine]) -> None:
    with RedisServer(tmp_path / "redis", appendonly=True, appendfsync="always") as server:
        b = Machine(tmp_path, "machine-b", server.url)
        machines.append(b)
        waiter = subprocess.Popen(
            ["kei-message", "wait", "--me", "beta", "--timeout", "60"],
            env=b.env,
            cwd=b.dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        b.procs.append(waiter)

        def blocked() -> bool:
            client = server.client()
            try:
                return int(client.info("clients")["blocked_clients"]) > 0
            finally:
                client.close()

        assert wait_until(blocked, 30)  # in XREAD BLOCK, not polling
        server.kill()
        time.sleep(0.5)
        server.start()
        from kei_message.mailbox import Mailbox
        from kei_message.stores.redis import RedisStore

        Mailbox(RedisStore(server.url)).send("after the restart", to="beta", sender="alpha")
        out, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 0, err
        assert b"after the restart" in out


def test_hook_with_the_reader_lock_held_elsewhere_stays_silent(
    tmp_path: Path, redis_server: object
) -> None:
    from kei_message.mailbox import Mailbox
    from kei_message.stores.redis import RedisStore

    url = str(redis_server.url)  # type: ignore[attr-defined]
    store = RedisStore(url)
    store.r.flushdb()
    mb = Mailbox(store)
    mb.send("held back", to="beta", sender="alpha")
    m = Machine(tmp_path, "machine-b", url)
    payload = json.dumps({"session_id": "s1", "cwd": str(tmp_path / "beta"), "prompt": "hi"})
    with store.reader_lock("beta"):  # another machine is delivering to beta right now
        started = time.monotonic()
        res = subprocess.run(
            ["kei-message-hook", "user-prompt-submit"],
            input=payload.encode(),
            env=m.env,
            capture_output=True,
            timeout=30,
        )
        assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
        assert time.monotonic() - started < 10  # generous: the contract says 2 s
    assert [r["body"] for r in mb.unread("beta")] == ["held back"]  # still there for later
