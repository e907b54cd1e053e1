"""scripts/bench.py still runs and prints its table (a tiny size, so it cannot rot).

Budget: about 30 s. Times nothing: the figures are the bench's business.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
ROWS = [
    "`python -c pass`",
    "hook, nothing unread",
    "PostToolBatch hook, nothing unread",
    "hook, 10 unread",
    "`send`",
    "`inbox` (10 unread)",
    "`inbox pop`",
    "`list`",
    "`who`",
    "`show ID`",
    "`reply ID`",
    "`wait` wake-up",
]
FIRSTS = [
    "`who`, building the names index",
    "`inbox --peek --count`, a reader with no cursor",
    "`inbox --clear`, a reader with no cursor",
    "`inbox`, a reader with no cursor",
    "`doctor`",
]
TIMED = r"\d+(\.\d+)? \(\d+\.\d\dx\)"  # "21.4 (1.52x)": ms and the ratio to python -c pass
MS = r"\d+(\.\d+)?"

# A stand-in for the original kei-message.sh: it reads the bus where the original
# keeps it ($HOME/.claude/mailbox) and logs its arguments.
SEED = """#!/usr/bin/env bash
cat "$HOME/.claude/mailbox/messages.jsonl" > /dev/null
echo "$*" >> "$SEED_LOG"
"""


def row(out: str, name: str) -> list[str]:
    line = next((x for x in out.splitlines() if x.startswith(f"| {name} |")), None)
    assert line is not None, f"no row {name!r} in:\n{out}"
    return [c.strip() for c in line.strip("|").split("|")[1:]]


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_bench_smoke(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "kei-message.sh").write_text(SEED.replace("$SEED_LOG", str(tmp_path / "seed.log")))
    proc = bench(
        "--sizes", "0,300", "--runs", "1", "--appends", "300", "--no-redis",
        "--seed-dir", str(seed),
    )  # fmt: skip
    out = proc.stdout
    assert out.startswith("| median ms (x `python -c pass`) | 0 | 300 |\n")
    for name in ROWS:
        cells = row(out, name)
        assert len(cells) == 2 and all(re.fullmatch(TIMED, c) for c in cells), (name, cells)
    assert all(c.endswith("(1.00x)") for c in row(out, "`python -c pass`"))
    for name in FIRSTS:
        cells = row(out, name)
        assert len(cells) == 2 and all(re.fullmatch(MS, c) for c in cells), (name, cells)
    for name in ("send", "inbox", "list", "who"):
        assert any(x.startswith(f"| kei-message.sh `{name}`") for x in out.splitlines()), name
    assert "redis:" not in out
    calls = (tmp_path / "seed.log").read_text().splitlines()
    for call in ("send --from agent02 @agent01 seed ", "inbox --me reader", "list", "who"):
        assert any(c.startswith(call) for c in calls), (call, calls)
    rate = re.search(
        r"In-process append, no fsync: ([\d,]+) records/s through `Mailbox.send`, "
        r"([\d,]+) records/s through `JsonlStore.append`",
        out,
    )
    assert (
        rate and int(rate.group(1).replace(",", "")) > 0 and int(rate.group(2).replace(",", "")) > 0
    )
    assert "built 300 records" in proc.stderr
    ratio = r"PostToolBatch hook with nothing unread / `python -c pass`: 0: [\d.]+x, 300: [\d.]+x\."
    assert re.search("^" + ratio + "$", out, re.M), out


@pytest.mark.redis
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_bench_redis_rows_and_no_temp_dirs(tmp_path: Path) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    out = bench("--sizes", "50", "--runs", "1", "--appends", "50", env=env).stdout
    assert "| median ms (x `python -c pass`) | 50 |" in out
    for name in ROWS[1:]:
        cells = row(out, f"redis: {name}")
        assert len(cells) == 1 and re.fullmatch(TIMED, cells[0]), (name, cells)
    assert list(tmp_path.iterdir()) == []  # the mailboxes, and redis-server's dir
