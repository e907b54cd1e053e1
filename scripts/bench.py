#!/usr/bin/env python3
"""Benchmark kei-message at bus sizes 1k..1M (SPEC §10, issue 6).

Builds a bus of each size in a temporary mailbox dir (written straight in
the record format: ids one a few seconds apart over the last weeks, 20
correspondents, some broadcasts), gives every reader a cursor near the end
(the steady state: the names index is built and every reader has read
recently), then times the *installed* commands as whole processes, beside
``python -c pass`` on the same interpreter in the same run:

- ``hook, nothing unread``: ``kei-message-hook user-prompt-submit``, cursor at the end;
- ``PostToolBatch hook, nothing unread``: ``kei-message-hook post-tool-batch``, the
  mid-turn hook that runs after every round of tool calls (issue 14), cursor at the
  end; shown also as a ratio to ``python -c pass``;
- ``hook, 10 unread``: the same with 10 messages waiting (the cursor is put back
  before each run);
- ``send``: ``kei-message send @reader TEXT --from bench``;
- ``inbox``: ``kei-message inbox --me reader`` with 10 unread (cursor put back);
- ``list``: ``kei-message list`` (the last 40);
- ``who``: ``kei-message who``;
- ``wait wake-up``: a blocked ``kei-message wait`` is sent a message (in-process
  append); the time from the append to its line on the waiter's stdout.

Every figure is a median over ``--runs`` runs, the commands interleaved so
load on the machine hits them alike. First reads (a reader with no cursor,
the names index built from nothing) scan the bus once; they are timed once
each and shown apart. In-process append throughput (``Mailbox.send`` and
``JsonlStore.append``, no fsync) is measured last.

Usage::

    .venv/bin/python scripts/bench.py                 # 1k, 10k, 100k, 1M; 15 runs
    .venv/bin/python scripts/bench.py --quick         # 1k and 10k, 5 runs
    .venv/bin/python scripts/bench.py --sizes 1000,100000 --runs 9
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BATCH_ROW = "PostToolBatch hook, nothing unread"
PASS_ROW = "`python -c pass`"
NAMES = [f"agent{i:02d}" for i in range(20)]
READER = "reader"
SPAN = 45 * 86400  # the bus covers the last 45 days
BODY = "status: build {i} is green; the migration ran in 41 s and the cache is warm again"


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
def build_bus(root: Path, n: int) -> None:
    """``n`` records straight in the bus format, every reader's cursor at the end."""
    root.mkdir(mode=0o700)
    now_us = time.time_ns() // 1000
    step = max(1, SPAN * 1_000_000 // max(n, 1))
    first = now_us - step * n - 60_000_000  # the newest a minute old
    bus = root / "messages.jsonl"
    fd = os.open(bus, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    rid = first
    ts_cache: dict[int, str] = {}
    with os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 20) as fh:
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


def set_cursor(root: Path, name: str, pos: int) -> None:
    path = root / "cursors" / name
    tmp = path.with_suffix(".benchtmp")
    tmp.write_text(f"{pos}\n\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def bus_end(root: Path) -> int:
    """Logical end of the bus (the bench never runs gc, so base 0)."""
    return (root / "messages.jsonl").stat().st_size


# ----------------------------------------------------------------------------- timing
class Bench:
    def __init__(self, bindir: Path, runs: int) -> None:
        self.bindir = bindir
        self.python = str(bindir / "python")
        self.runs = runs
        self._ten: dict[Path, int] = {}  # mailbox -> a cursor with 10 unread after it

    def env(self, root: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEI_", "TMUX"))}
        env.update(KEI_MAILBOX_DIR=str(root), NO_COLOR="1")
        return env

    def run(self, argv: list[str], env: dict[str, str], stdin: bytes = b"") -> float:
        t = time.perf_counter()
        proc = subprocess.run(argv, input=stdin, env=env, capture_output=True, timeout=120)
        took = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(
                f"bench: {' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}"
            )
        return took

    def commands(self, root: Path) -> dict[str, Callable[[], float]]:
        env = self.env(root)
        b = self.bindir
        hook = [str(b / "kei-message-hook"), "user-prompt-submit"]
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
        batch = [str(b / "kei-message-hook"), "post-tool-batch"]
        batch_payload = json.dumps(
            {
                "session_id": "bench-0",
                "cwd": f"/work/{READER}",
                "hook_event_name": "PostToolBatch",
                "transcript_path": "/dev/null",
            }
        ).encode()
        cli = str(b / "kei-message")

        def ten_unread() -> None:
            """Put the reader's cursor back so that exactly 10 messages wait."""
            if root not in self._ten:
                self._ten[root] = bus_end(root)
                mb = self.mailbox(root)
                for i in range(10):
                    mb.send(f"unread {i}", to=READER, sender=NAMES[i % 20])
            set_cursor(root, READER, self._ten[root])

        def hook_idle() -> float:
            set_cursor(root, READER, bus_end(root))
            return self.run(hook, hook_env, payload)

        def batch_idle() -> float:
            set_cursor(root, READER, bus_end(root))
            return self.run(batch, hook_env, batch_payload)

        def hook_ten() -> float:
            ten_unread()
            return self.run(hook, hook_env, payload)

        def inbox() -> float:
            ten_unread()
            return self.run([cli, "inbox", "--me", READER], env)

        counter = iter(range(10**9))

        def send() -> float:
            took = self.run(
                [cli, "send", f"@{NAMES[1]}", f"bench {next(counter)}", "--from", NAMES[2]], env
            )
            return took

        return {
            PASS_ROW: lambda: self.run([self.python, "-c", "pass"], env),
            "hook, nothing unread": hook_idle,
            BATCH_ROW: batch_idle,
            "hook, 10 unread": hook_ten,
            "`send`": send,
            "`inbox` (10 unread)": inbox,
            "`list`": lambda: self.run([cli, "list"], env),
            "`who`": lambda: self.run([cli, "who"], env),
            "`wait` wake-up": lambda: self.wake(root, env),
        }

    def mailbox(self, root: Path):  # type: ignore[no-untyped-def]
        from kei_message.mailbox import Mailbox
        from kei_message.stores.jsonl import JsonlStore

        return Mailbox(JsonlStore(str(root)))

    def wake(self, root: Path, env: dict[str, str]) -> float:
        """Seconds from an append to the blocked waiter's line on stdout."""
        waiter = "waiter"
        set_cursor(root, waiter, bus_end(root))
        proc = subprocess.Popen(
            [str(self.bindir / "kei-message"), "wait", "--me", waiter, "--timeout", "60"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_blocked(proc.pid)
            mb = self.mailbox(root)
            mb.send("wake up", to=waiter, sender=NAMES[3])
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

    def first_reads(self, root: Path) -> dict[str, float]:
        """One-off scans: a reader's first read, and the names index built from nothing."""
        env = self.env(root)
        out = {}
        index = root / "index" / "names.json"
        if index.exists():
            index.unlink()
        out["`who`, building the names index"] = self.run(
            [str(self.bindir / "kei-message"), "who"], env
        )
        newbie = "newcomer"
        cursor = root / "cursors" / newbie
        if cursor.exists():
            cursor.unlink()
        out["`inbox --peek --count`, a reader with no cursor"] = self.run(
            [str(self.bindir / "kei-message"), "inbox", "--me", newbie, "--peek", "--count"],
            env,
        )
        return out


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1k,10k,100k,1M", help="bus sizes, e.g. 1k,10k,100k,1M")
    ap.add_argument("--runs", type=int, default=15, help="runs per figure (median)")
    ap.add_argument("--quick", action="store_true", help="1k and 10k, 5 runs, 5k appends")
    ap.add_argument("--appends", type=int, default=50_000, help="records for the append rate")
    ap.add_argument(
        "--bin",
        default=str(Path(sys.executable).parent),
        help="directory of the installed console scripts (default: this venv's)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary mailbox dirs")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.runs, args.appends = "1k,10k", 5, 5000
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    bindir = Path(args.bin)
    for exe in ("python", "kei-message", "kei-message-hook"):
        if not (bindir / exe).exists():
            raise SystemExit(f"bench: {bindir / exe} not found; pass --bin")
    bench = Bench(bindir, max(1, args.runs))
    compile_package()
    tmp = Path(tempfile.mkdtemp(prefix="kei-bench-"))
    table: dict[str, dict[int, float]] = {}
    firsts: dict[str, dict[int, float]] = {}
    try:
        roots: dict[int, Path] = {}
        for n in sizes:
            root = roots[n] = tmp / f"mailbox-{size_label(n)}"
            t = time.perf_counter()
            build_bus(root, n)
            built = time.perf_counter() - t
            print(
                f"bench: built {size_label(n)} records ({bus_end(root) / 1e6:.0f} MB) "
                f"in {built:.1f}s",
                file=sys.stderr,
            )
            for name, took in bench.first_reads(root).items():
                firsts.setdefault(name, {})[n] = took
        cmds = {n: bench.commands(roots[n]) for n in sizes}
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
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"bench: kept {tmp}", file=sys.stderr)
    print(render(table, firsts, sizes, rate, bench.runs))
    return 0


def render(
    table: dict[str, dict[int, float]],
    firsts: dict[str, dict[int, float]],
    sizes: list[int],
    rate: tuple[float, float],
    runs: int,
) -> str:
    ratio = len(sizes) > 1
    head = "| median ms | " + " | ".join(size_label(n) for n in sizes) + " |"
    if ratio:
        head += f" {size_label(sizes[-1])}/{size_label(sizes[0])} |"
    lines = [head, "|---" * (len(sizes) + 1 + ratio) + "|"]
    for name, row in table.items():
        cells = [fmt_ms(row[n]) for n in sizes]
        line = f"| {name} | " + " | ".join(cells) + " |"
        if ratio:
            line += f" {row[sizes[-1]] / row[sizes[0]]:.2f} |"
        lines.append(line)
    if BATCH_ROW in table and PASS_ROW in table:
        lines.append("")
        ratios = ", ".join(
            f"{size_label(n)}: {table[BATCH_ROW][n] / table[PASS_ROW][n]:.2f}x" for n in sizes
        )
        lines.append(f"PostToolBatch hook with nothing unread / `python -c pass`: {ratios}.")
    lines.append("")
    lines.append("First reads (once each, not medians; they scan the bus once):")
    lines.append("")
    lines.append("| ms | " + " | ".join(size_label(n) for n in sizes) + " |")
    lines.append("|---" * (len(sizes) + 1) + "|")
    for name, row in firsts.items():
        lines.append(f"| {name} | " + " | ".join(fmt_ms(row[n]) for n in sizes) + " |")
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
