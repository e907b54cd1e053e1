"""``cores.side_by_side``: one half in a forked child, the same answer as in turn (#19)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest

from kei_message import cores

pytestmark = pytest.mark.skipif(
    not cores.spare_core(), reason="one core here: nothing runs beside this process"
)


def test_the_other_half_runs_in_a_child_meanwhile() -> None:
    me = os.getpid()
    here, there = cores.side_by_side(
        lambda: ("here", os.getpid()), lambda: {"pid": os.getpid(), "n": [1, 2.5, "x"]}
    )
    assert here == ("here", me)
    assert there["pid"] != me and there["n"] == [1, 2.5, "x"]


def test_a_large_answer_comes_through_whole() -> None:
    """More than a pipe holds (64 KiB): the child writes while the parent reads."""
    big = {f"name{i}": {"sent": i, "last_ts": "2026-12-05T10:00:00Z" * 3} for i in range(60_000)}
    here, there = cores.side_by_side(lambda: sum(range(10)), lambda: big)
    assert here == 45 and there == big


@pytest.mark.parametrize("how", ["raises", "killed", "exits"])
def test_a_failed_child_is_answered_here(how: str) -> None:
    me = os.getpid()

    def there() -> dict[str, Any]:
        if os.getpid() != me:  # only in the child
            if how == "raises":
                raise RuntimeError("boom")
            if how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            sys.exit(0)  # a SystemExit is a failure too: no answer was sent
        return {"pid": os.getpid()}

    here, answer = cores.side_by_side(lambda: 1, there)
    assert (here, answer) == (1, {"pid": me})


def test_with_another_thread_running_nothing_is_forked() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert not cores.spare_core()
        _, there = cores.side_by_side(lambda: None, lambda: os.getpid())
        assert there == os.getpid()
    finally:
        stop.set()
        other.join()
    assert cores.spare_core()


def test_an_error_here_still_ends_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    forked: list[int] = []
    fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forked.append(fork()) or forked[-1])

    def here() -> None:
        raise ValueError("here")

    with pytest.raises(ValueError, match="here"):
        cores.side_by_side(here, lambda: list(range(100_000)))
    assert len(forked) == 1 and forked[0] > 0
    with pytest.raises(ChildProcessError):  # waited for: no zombie is left
        os.waitpid(forked[0], os.WNOHANG)


def test_the_parents_unwritten_output_is_not_written_twice() -> None:
    """The child ends without flushing the copy of the parent's buffers it was born with,
    nor running the parent's atexit functions."""
    code = (
        "import atexit, sys\n"
        "from kei_message import cores\n"
        "atexit.register(lambda: sys.stdout.write('[atexit]'))\n"
        "sys.stdout.write('before ')\n"
        "here, there = cores.side_by_side(lambda: 'a', lambda: 'b')\n"
        "sys.stdout.write(here + there)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, env=env, check=True
    )
    assert proc.stdout == b"before ab[atexit]" and proc.stderr == b""
