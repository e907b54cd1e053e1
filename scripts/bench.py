#!/usr/bin/env python3
"""Benchmark kei-message at bus sizes 0..1M, as ratios to ``python -c pass`` (SPEC §10, #19).

Builds a bus of each size in a temporary mailbox dir (written straight in
the record format: ids one a few seconds apart over the last weeks, 20
correspondents, some broadcasts), gives every reader a cursor near the end
(the steady state: the names index is built and every reader has read
recently), then times the *installed* commands as whole processes, beside
``python -c pass`` on the same interpreter in the same run:

- ``hook, nothing unread``: ``kei-message-hook user-prompt-submit``, cursor at the end;
- ``hook, 10 unread``: the same with 10 messages waiting (the cursor is put back
  before each run);
- ``PostToolBatch hook, nothing unread``: ``kei-message-hook post-tool-batch``,
  when the installed hook has that event;
- ``send``: ``kei-message send @NAME TEXT --from NAME``;
- ``inbox``: ``kei-message inbox --me reader`` with 10 unread (cursor put back);
- ``inbox pop``: the oldest of those 10;
- ``list``: ``kei-message list`` (the last 40);
- ``who``: ``kei-message who``;
- ``show ID`` / ``reply ID``: a record in the middle of the bus;
- ``wait wake-up``: a blocked ``kei-message wait`` is sent a message (in-process
  append); the time from the append to its line on the waiter's stdout.

Every figure is a median over ``--runs`` runs, the commands interleaved so
load on the machine hits them alike, and shown with its ratio to ``python -c
pass`` of the same rounds. With ``--seed-dir DIR`` (a folder holding the
original ``kei-message.sh``) the original's send, inbox, list and who run on
the same buses (its mailbox is ``$HOME/.claude/mailbox``: HOME is pointed at a
folder whose ``.claude/mailbox`` is the bench's mailbox dir). When a
``redis-server`` is on PATH (and not ``--no-redis``), one is started on a
free loopback port, each bus is copied into it with ``kei-message migrate``,
and the same commands run against it (``redis:`` rows); it is stopped by PID.

First reads (a reader with no cursor, the names index built from nothing,
``inbox --clear`` of a new reader, ``doctor``, ``show ID`` with the by-id index
from nothing and the calls until it has caught up) are timed once each and
shown apart. In-process append throughput (``Mailbox.send`` and
``JsonlStore.append``, no fsync) is measured last.

Usage::

    .venv/bin/python scripts/bench.py                 # 0, 1k, 10k, 100k; 11 runs
    .venv/bin/python scripts/bench.py --million       # ... and 1M
    .venv/bin/python scripts/bench.py --quick         # 0 and 1k, 5 runs
    .venv/bin/python scripts/bench.py --seed-dir ~/kei-seed --sizes 0,1k,100k
    .venv/bin/python scripts/bench.py --sizes 1000,100000 --runs 9 --no-redis
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NAMES = [f"agent{i:02d}" for i in range(20)]
READER = "reader"
SPAN = 45 * 86400  # the bus covers the last 45 days
BODY = "status: build {i} is green; the migration ran in 41 s and the cache is warm again"
FLOOR = "`python -c pass`"
BATCH_ROW = "PostToolBatch hook, nothing unread"  # issue 14's mid-turn hook


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def parse_size(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * mult)


# ----------------------------------------------------------------------------- building
def build_bus(root: Path, n: int) -> int | None:
    """``n`` records straight in the bus format, a receipt for each beside it (as
    deliveries leave them), every reader's cursor at the end.

    Returns the id of the middle record (None on an empty bus)."""
    root.mkdir(mode=0o700)
    now_us = time.time_ns() // 1000
    step = max(1, SPAN * 1_000_000 // max(n, 1))
    first = now_us - step * n - 60_000_000  # the newest a minute old
    bus = root / "messages.jsonl"
    fd = os.open(bus, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # one receipt per record, as deliveries leave them (receipts are never removed)
    rfd = os.open(root / "receipts.jsonl", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    rid = first
    ts_cache: dict[int, str] = {}
    with (
        os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 20) as fh,
        os.fdopen(rfd, "w", encoding="utf-8", buffering=1 << 20) as rh,
    ):
        for i in range(n):
            rid = first + i * step
            sec = rid // 1_000_000
            ts = ts_cache.get(sec)
            if ts is None:
                ts_cache.clear()
                ts = ts_cache[sec] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))
            sender = NAMES[i % 20]
            if i % 20 == 7:
                to = "all"
            elif i % 50 == 3:
                to = READER
            else:
                to = NAMES[(i * 7 + 3) % 20]
            body = BODY.format(i=i)
            fh.write(f'{{"id":{rid},"ts":"{ts}","from":"{sender}","to":"{to}","body":"{body}"}}\n')
            rh.write(
                f'{{"id":{rid},"reader":"{NAMES[i % 20] if to == "all" else to}","how":"hook",'
                f'"ts":"{ts[:-1]}.500Z","session":"bench-{i % 2}"}}\n'
            )
    if n:
        (root / "messages.lock").write_text(str(rid).zfill(20))
        os.chmod(root / "messages.lock", 0o600)
    end = bus.stat().st_size
    cursors = root / "cursors"
    cursors.mkdir(mode=0o700)
    for name in [*NAMES, READER]:
        set_cursor(root, name, end)
    sessions = root / "sessions"
    sessions.mkdir(mode=0o700)
    for i, name in enumerate([READER, NAMES[0]]):
        info = {
            "name": name,
            "session_id": f"bench-{i}",
            "cwd": f"/work/{name}",
            "last_seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        path = sessions / f"bench-{i}.json"
        path.write_text(json.dumps(info))
        os.chmod(path, 0o600)
    return first + (n // 2) * step if n else None


def set_cursor(root: Path, name: str, pos: int) -> None:
    path = root / "cursors" / name
    tmp = path.with_suffix(".benchtmp")
    tmp.write_text(f"{pos}\n\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def bus_end(root: Path) -> int:
    """Logical end of the bus (the bench never runs gc, so base 0)."""
    return (root / "messages.jsonl").stat().st_size


# ----------------------------------------------------------------------------- redis
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Redis:
    """A throwaway redis-server on a free loopback port, no persistence; stopped by PID."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        workdir.mkdir()
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise SystemExit("bench: redis-server did not start") from None
                time.sleep(0.05)

    def url(self, prefix: str) -> str:
        return f"redis://127.0.0.1:{self.port}/0?prefix={prefix}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# ----------------------------------------------------------------------------- targets
class Target:
    """One bus to time commands on: a JSONL mailbox dir, or the same bus in Redis."""

    def __init__(self, root: Path, mid_id: int | None, url: str | None = None) -> None:
        self.root = root
        self.mid_id = mid_id
        self.url = url
        self._store: Any = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEI_", "TMUX"))}
        env.update(KEI_MAILBOX_DIR=str(self.root), NO_COLOR="1")
        if self.url:
            env["KEI_MAILBOX_URL"] = self.url
        return env

    def store(self) -> Any:
        if self._store is None:
            from kei_message.stores import open_store

            self._store = open_store(self.url, str(self.root))
        return self._store

    def mailbox(self) -> Any:
        from kei_message.mailbox import Mailbox

        return Mailbox(self.store())

    def end(self) -> Any:
        return bus_end(self.root) if self.url is None else self.store().end()

    def set_cursor(self, name: str, pos: Any) -> None:
        if self.url is None:
            set_cursor(self.root, name, pos)
        else:  # the store only ever moves a cursor forward: put it back by hand
            store = self.store()
            store.r.set(store._cursor + name, f"{pos}\n\n")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


# ----------------------------------------------------------------------------- timing
class Bench:
    def __init__(self, bindir: Path, runs: int, seed: Path | None) -> None:
        self.bindir = bindir
        self.python = str(bindir / "python")
        self.runs = runs
        self.seed = seed
        self.post_tool_batch = (
            "post-tool-batch"
            in subprocess.run(
                [str(bindir / "kei-message-hook"), "--help"], capture_output=True, text=True
            ).stdout
        )
        self._ten: dict[int, tuple[Any, list[int]]] = {}  # target -> (cursor, the 10 ids)

    def run(
        self, argv: list[str], env: dict[str, str], stdin: bytes = b"", check: bool = True
    ) -> float:
        t = time.perf_counter()
        proc = subprocess.run(argv, input=stdin, env=env, capture_output=True, timeout=300)
        took = time.perf_counter() - t
        if check and proc.returncode != 0:
            raise SystemExit(
                f"bench: {' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}"
            )
        return took

    def ten_unread(self, target: Target) -> list[int]:
        """Put the reader's cursor back so that exactly 10 messages wait; their ids."""
        key = id(target)
        if key not in self._ten:
            pos = target.end()
            mb = target.mailbox()
            ids = [mb.send(f"unread {i}", to=READER, sender=NAMES[i % 20])["id"] for i in range(10)]
            self._ten[key] = (pos, ids)
        pos, ids = self._ten[key]
        target.set_cursor(READER, pos)
        return ids

    def commands(self, target: Target, prefix: str = "") -> dict[str, Callable[[], float]]:
        env = target.env()
        b = self.bindir
        payload = json.dumps(
            {
                "session_id": "bench-0",
                "cwd": f"/work/{READER}",
                "prompt": "go on",
                "hook_event_name": "UserPromptSubmit",
                "transcript_path": "/dev/null",
            }
        ).encode()
        hook_env = dict(env, KEI_MAILBOX_ME=READER)
        cli = str(b / "kei-message")
        show_id = str(target.mid_id or self.ten_unread(target)[0])
        counter = iter(range(10**9))

        batch_payload = json.dumps(
            {
                "session_id": "bench-0",
                "cwd": f"/work/{READER}",
                "hook_event_name": "PostToolBatch",
                "transcript_path": "/dev/null",
            }
        ).encode()

        def hook(event: str, unread: bool) -> Callable[[], float]:
            data = batch_payload if event == "post-tool-batch" else payload

            def run() -> float:
                if unread:
                    self.ten_unread(target)
                else:
                    target.set_cursor(READER, target.end())
                return self.run([str(b / "kei-message-hook"), event], hook_env, data)

            return run

        def with_ten(argv: list[str]) -> Callable[[], float]:
            def run() -> float:
                self.ten_unread(target)
                return self.run(argv, env)

            return run

        def send() -> float:
            text = f"bench {next(counter)}"
            return self.run([cli, "send", f"@{NAMES[1]}", text, "--from", NAMES[2]], env)

        def reply() -> float:
            text = f"re {next(counter)}"
            return self.run([cli, "reply", show_id, text, "--from", NAMES[4]], env)

        out: dict[str, Callable[[], float]] = {}
        if not prefix:
            out[FLOOR] = lambda: self.run([self.python, "-c", "pass"], env)
        out["hook, nothing unread"] = hook("user-prompt-submit", False)
        out["hook, 10 unread"] = hook("user-prompt-submit", True)
        if self.post_tool_batch:
            out[BATCH_ROW] = hook("post-tool-batch", False)
        out["`send`"] = send
        out["`inbox` (10 unread)"] = with_ten([cli, "inbox", "--me", READER])
        out["`inbox pop`"] = with_ten([cli, "inbox", "pop", "--me", READER])
        out["`list`"] = lambda: self.run([cli, "list"], env)
        out["`who`"] = lambda: self.run([cli, "who"], env)
        out["`show ID`"] = lambda: self.run([cli, "show", show_id], env)
        out["`reply ID`"] = reply
        out["`wait` wake-up"] = lambda: self.wake(target)
        if self.seed is not None and not prefix:
            out.update(self.seed_commands(target))
        return {prefix + k if k != FLOOR else k: v for k, v in out.items()}

    def seed_commands(self, target: Target) -> dict[str, Callable[[], float]]:
        """The original kei-message.sh on the same bus: its mailbox is $HOME/.claude/mailbox."""
        assert self.seed is not None
        home = target.root.parent / f"home-{target.root.name}"
        if not home.exists():
            (home / ".claude").mkdir(parents=True)
            (home / ".claude" / "mailbox").symlink_to(target.root)
        env = dict(target.env(), HOME=str(home))
        script = self.seed / "kei-message.sh"
        # run as installed, by its own #! line (#!/bin/sh: dash on Debian, not bash)
        first = script.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
        sh = [*(first[2:].split() if first.startswith("#!") else ["sh"]), str(script)]
        counter = iter(range(10**9))

        def send() -> float:
            text = f"seed {next(counter)}"
            return self.run(
                [*sh, "send", "--from", NAMES[2], f"@{NAMES[1]}", text], env, check=False
            )

        def inbox() -> float:
            self.ten_unread(target)
            return self.run([*sh, "inbox", "--me", READER], env, check=False)

        return {
            "kei-message.sh `send`": send,
            "kei-message.sh `inbox` (10 unread)": inbox,
            "kei-message.sh `list`": lambda: self.run([*sh, "list"], env, check=False),
            "kei-message.sh `who`": lambda: self.run([*sh, "who"], env, check=False),
        }

    def wake(self, target: Target) -> float:
        """Seconds from an append to the blocked waiter's line on stdout."""
        waiter = "waiter"
        target.set_cursor(waiter, target.end())
        proc = subprocess.Popen(
            [str(self.bindir / "kei-message"), "wait", "--me", waiter, "--timeout", "60"],
            env=target.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_blocked(proc.pid)
            target.mailbox().send("wake up", to=waiter, sender=NAMES[3])
            sent = time.perf_counter()
            assert proc.stdout is not None
            line = proc.stdout.readline()
            took = time.perf_counter() - sent
            if b"wake up" not in line:
                raise SystemExit(f"bench: wait printed {line!r}")
            proc.wait(timeout=30)
            return took
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()

    def first_reads(self, target: Target) -> dict[str, Any]:
        """One-off scans: a reader's first read, the names index built from nothing, doctor."""
        env = target.env()
        cli = str(self.bindir / "kei-message")
        out: dict[str, Any] = {}
        index = target.root / "index" / "names.json"
        if index.exists():
            index.unlink()
        out["`who`, building the names index"] = self.run([cli, "who"], env)
        for i, (name, argv) in enumerate(
            [
                ("`inbox --peek --count`, a reader with no cursor", ["--peek", "--count"]),
                ("`inbox --clear`, a reader with no cursor", ["--clear"]),
                ("`inbox`, a reader with no cursor", []),
            ]
        ):
            newbie = f"newcomer{i}"
            cursor = target.root / "cursors" / newbie
            if cursor.exists():
                cursor.unlink()
            out[name] = self.run([cli, "inbox", "--me", newbie, *argv], env)
        out["`doctor`"] = self.run([cli, "doctor"], env, check=False)
        if target.mid_id is not None:
            out.update(self.first_shows(target))
        return out

    def first_shows(self, target: Target) -> dict[str, Any]:
        """``show ID`` with the by-id index from nothing: the first call, and the calls
        (and their total) until the index has caught up with every receipt; each call
        indexes a bounded stretch (``ids_index.BUDGET``) and answers by a search meanwhile."""
        from kei_message.stores import ids_index, layout

        env = target.env()
        cli = str(self.bindir / "kei-message")
        folder = target.root / layout.INDEX / layout.IDS_INDEX
        shutil.rmtree(folder, ignore_errors=True)
        size = (target.root / layout.RECEIPTS).stat().st_size
        took: list[float] = []
        while len(took) < 100:
            took.append(self.run([cli, "show", str(target.mid_id)], env))
            meta = ids_index._load(str(folder / "meta.json"))
            if meta.get("receipts", [0, -1])[1] == size:
                break
        return {
            "`show ID`, first call (the by-id index from nothing)": took[0],
            "`show ID`, calls until the by-id index is built (total ms)": (
                f"{len(took)} ({sum(took) * 1000:,.0f})"
            ),
        }


def wait_blocked(pid: int, limit: float = 30.0) -> None:
    """Until the process sleeps with its CPU time steady (it reached its wait)."""
    deadline = time.monotonic() + limit
    last = None
    steady = 0
    while time.monotonic() < deadline:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError):
            time.sleep(1.0)  # no /proc: give it a second
            return
        state, cpu = fields[0], int(fields[11]) + int(fields[12])
        if state == "S" and cpu == last:
            steady += 1
            if steady >= 3:
                return
        else:
            steady = 0
        last = cpu
        time.sleep(0.05)
    raise SystemExit("bench: the waiter never blocked")


def append_rate(n: int) -> tuple[float, float]:
    """Records per second in one process, no fsync: (``Mailbox.send``, ``JsonlStore.append``).

    ``send`` validates names and the body and picks the kind; ``append`` is the
    store's locked write alone. Bodies are formatted beforehand in both.
    """
    from kei_message.mailbox import Mailbox
    from kei_message.stores.jsonl import JsonlStore

    bodies = [BODY.format(i=i) for i in range(n)]
    rates = []
    with tempfile.TemporaryDirectory(prefix="kei-bench-") as tmp:
        os.environ.pop("KEI_MAILBOX_FSYNC", None)
        for kind in ("send", "append"):
            store = JsonlStore(str(Path(tmp) / kind))
            mb = Mailbox(store)
            mb.send("warm up", to=NAMES[0], sender=NAMES[1])
            t = time.perf_counter()
            if kind == "send":
                for i, body in enumerate(bodies):
                    mb.send(body, to=NAMES[i % 20], sender=NAMES[(i + 1) % 20])
            else:
                for i, body in enumerate(bodies):
                    store.append({"from": NAMES[(i + 1) % 20], "to": NAMES[i % 20], "body": body})
            rates.append(n / (time.perf_counter() - t))
            store.close()
    return rates[0], rates[1]


def compile_package() -> None:
    """Byte-compile kei_message, as an installed package is.

    An editable install under ``PYTHONDONTWRITEBYTECODE=1`` (CI, this repo's
    test environment) never writes ``__pycache__``, so every command would
    compile the package from source: ~10 ms that no installed copy pays.
    """
    import compileall

    import kei_message

    compileall.compile_dir(os.path.dirname(kei_message.__file__), quiet=1)


# ----------------------------------------------------------------------------- report
def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--sizes", default="0,1k,10k,100k", help="bus sizes, e.g. 0,1k,100k,1M")
    ap.add_argument("--million", action="store_true", help="add a 1M-record bus")
    ap.add_argument("--runs", type=int, default=11, help="runs per figure (median)")
    ap.add_argument("--quick", action="store_true", help="0 and 1k, 5 runs, 5k appends")
    ap.add_argument("--appends", type=int, default=50_000, help="records for the append rate")
    ap.add_argument("--seed-dir", type=Path, help="a folder holding the original kei-message.sh")
    ap.add_argument("--no-redis", action="store_true", help="skip the Redis rows")
    ap.add_argument(
        "--bin",
        default=str(Path(sys.executable).parent),
        help="directory of the installed console scripts (default: this venv's)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary mailbox dirs")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.runs, args.appends = "0,1k", 5, 5000
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if args.million and 1_000_000 not in sizes:
        sizes.append(1_000_000)
    bindir = Path(args.bin)
    for exe in ("python", "kei-message", "kei-message-hook"):
        if not (bindir / exe).exists():
            raise SystemExit(f"bench: {bindir / exe} not found; pass --bin")
    seed = args.seed_dir
    if seed is not None and not (seed / "kei-message.sh").is_file():
        raise SystemExit(f"bench: no kei-message.sh in {seed}")
    redis_bin = None if args.no_redis else shutil.which("redis-server")
    bench = Bench(bindir, max(1, args.runs), seed)
    compile_package()
    tmp = Path(tempfile.mkdtemp(prefix="kei-bench-"))
    table: dict[str, dict[int, float]] = {}
    firsts: dict[str, dict[int, Any]] = {}
    server: Redis | None = None
    targets: list[Target] = []
    try:
        if redis_bin:
            server = Redis(redis_bin, tmp / "redis")
        cmds: dict[int, dict[str, Callable[[], float]]] = {}
        for n in sizes:
            root = tmp / f"mailbox-{size_label(n)}"
            t = time.perf_counter()
            mid = build_bus(root, n)
            built = time.perf_counter() - t
            print(
                f"bench: built {size_label(n)} records ({bus_end(root) / 1e6:.0f} MB) "
                f"in {built:.1f}s",
                file=sys.stderr,
            )
            jsonl = Target(root, mid)
            targets.append(jsonl)
            for name, took in bench.first_reads(jsonl).items():
                firsts.setdefault(name, {})[n] = took
            cmds[n] = bench.commands(jsonl)
            if server is not None:
                url = server.url(f"b{size_label(n)}")
                t = time.perf_counter()
                bench.run([str(bindir / "kei-message"), "migrate", "--to", url], jsonl.env())
                print(
                    f"bench: copied {size_label(n)} into redis in {time.perf_counter() - t:.1f}s",
                    file=sys.stderr,
                )
                red = Target(root, mid, url)
                targets.append(red)
                cmds[n].update(bench.commands(red, prefix="redis: "))
        for n in sizes:  # warm the page cache, the index, the 10 unread
            for c in cmds[n].values():
                c()
        samples: dict[tuple[str, int], list[float]] = {}
        # sizes and commands interleaved in every round: load on the machine that
        # comes and goes hits every figure alike, and the ratios stay fair
        for r in range(bench.runs):
            for n in sizes:
                for name, c in cmds[n].items():
                    samples.setdefault((name, n), []).append(c())
            print(f"bench: round {r + 1}/{bench.runs}", file=sys.stderr)
        for (name, n), vals in samples.items():
            table.setdefault(name, {})[n] = statistics.median(vals)
        rate = append_rate(args.appends)
    finally:
        for target in targets:
            target.close()
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"bench: kept {tmp}", file=sys.stderr)
    print(render(table, firsts, sizes, rate, bench.runs))
    return 0


def render(
    table: dict[str, dict[int, float]],
    firsts: dict[str, dict[int, Any]],
    sizes: list[int],
    rate: tuple[float, float],
    runs: int,
) -> str:
    floor = table[FLOOR]
    head = "| median ms (x `python -c pass`) | " + " | ".join(size_label(n) for n in sizes) + " |"
    lines = [head, "|---" * (len(sizes) + 1) + "|"]
    for name, row in table.items():
        cells = [f"{fmt_ms(row[n])} ({row[n] / floor[n]:.2f}x)" for n in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if BATCH_ROW in table:
        lines.append("")
        ratios = ", ".join(f"{size_label(n)}: {table[BATCH_ROW][n] / floor[n]:.2f}x" for n in sizes)
        lines.append(f"PostToolBatch hook with nothing unread / `python -c pass`: {ratios}.")
    lines.append("")
    lines.append("First reads (once each, not medians):")
    lines.append("")
    lines.append("| ms | " + " | ".join(size_label(n) for n in sizes) + " |")
    lines.append("|---" * (len(sizes) + 1) + "|")
    for name, row in firsts.items():
        shown = [row.get(n, "-") for n in sizes]
        lines.append(
            f"| {name} | "
            + " | ".join(c if isinstance(c, str) else fmt_ms(c) for c in shown)
            + " |"
        )
    lines.append("")
    lines.append(
        f"In-process append, no fsync: {rate[0]:,.0f} records/s through `Mailbox.send`, "
        f"{rate[1]:,.0f} records/s through `JsonlStore.append`."
    )
    lines.append("")
    lines.append(
        f"{runs} runs per figure; {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}; {time.strftime('%Y-%m-%d', time.gmtime())}."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
