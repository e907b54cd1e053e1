"""scripts/bench.py still runs and prints its table (a tiny size, so it cannot rot).

Budget: about 20 s. Times nothing: the figures are the bench's business.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
ROWS = [
    "`python -c pass`",
    "hook, nothing unread",
    "PostToolBatch hook, nothing unread",
    "hook, 10 unread",
    "`send`",
    "`inbox` (10 unread)",
    "`list`",
    "`who`",
    "`wait` wake-up",
    "`who`, building the names index",
    "`inbox --peek --count`, a reader with no cursor",
]


def test_bench_smoke(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "100,300", "--runs", "1", "--appends", "300"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.startswith("| median ms | 100 | 300 | 300/100 |\n")
    for row in ROWS:
        line = next((x for x in out.splitlines() if x.startswith(f"| {row} |")), None)
        assert line is not None, f"no row {row!r} in:\n{out}"
        cells = [c.strip() for c in line.strip("|").split("|")[1:]]
        assert cells and all(re.fullmatch(r"\d+(\.\d+)?", c) for c in cells), line
    rate = re.search(
        r"In-process append, no fsync: ([\d,]+) records/s through `Mailbox.send`, "
        r"([\d,]+) records/s through `JsonlStore.append`",
        out,
    )
    assert (
        rate and int(rate.group(1).replace(",", "")) > 0 and int(rate.group(2).replace(",", "")) > 0
    )
    assert "built 300 records" in proc.stderr
    ratio = (
        r"PostToolBatch hook with nothing unread / `python -c pass`: 100: [\d.]+x, 300: [\d.]+x\."
    )
    assert re.search("^" + ratio + "$", out, re.M), out


def test_bench_leaves_no_temp_dirs(tmp_path: Path) -> None:
    import os

    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "50", "--runs", "1", "--appends", "50"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| median ms | 50 |" in proc.stdout
    assert list(tmp_path.iterdir()) == []
