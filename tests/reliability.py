"""Helpers shared by the reliability tests (issue 7): run the real commands, mount a tmpfs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
ESCAPES = ("\x1b", "\x9b", "\u202e", "\u202d", "\u2066", "\u2067", "\u2068")


def kei(
    *args: str,
    input: bytes | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    preexec_fn: Callable[[], Any] | None = None,
    script: str = "kei-message",
) -> subprocess.CompletedProcess[bytes]:
    """Run a console script as a user would, with the test's environment (plus ``env``)."""
    full = dict(os.environ)
    full.update(env or {})
    data = input.encode() if isinstance(input, str) else input
    return subprocess.run(
        [str(BIN / script), *args],
        input=data if data is not None else b"",
        capture_output=True,
        env=full,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def assert_clean_error(proc: subprocess.CompletedProcess[bytes], code: int) -> str:
    """Exit ``code``, one stderr line ``kei message: error: ...``, no traceback."""
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == code, (proc.returncode, err, proc.stdout[:500])
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("kei message: error:")]
    assert len(lines) == 1, err
    return lines[0]


def assert_no_escape(text: str) -> None:
    for bad in ESCAPES:
        assert bad not in text, (bad, text[:300])
    for ch in text:
        assert ch in "\n\t" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0), repr(ch)


@contextmanager
def tmpfs(where: Path, size: str = "1m") -> Iterator[Path]:
    """A private tmpfs at ``where`` (root only); skips the test where mounting is refused."""
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        timeout=30,
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here (needs root and mount rights): "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def remount(where: Path, opts: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{opts}", str(where)], check=True, timeout=30)


def hook_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("kei_message.agents.hooks") is not None


def reap(procs: list[subprocess.Popen[Any]]) -> None:
    """Kill and wait for every process we started, however the test ends."""
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        with suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)
        for stream in (p.stdin, p.stdout, p.stderr):
            if stream is not None:
                stream.close()


def cli(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Any:
    """``kei message ARGS`` in-process (CliRunner): cheap enough for hypothesis.

    ``catch_exceptions=False``: an exception the CLI did not map is a test failure.
    """
    from typer.testing import CliRunner

    from kei_message.cli import get_app

    return CliRunner().invoke(get_app(), list(args), input=input, env=env, catch_exceptions=False)


def assert_clean_result(res: Any, code: int) -> str:
    """Like ``assert_clean_error`` for a CliRunner result."""
    assert res.exit_code == code, (res.exit_code, res.stdout[:500], res.stderr)
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("kei message: error:")]
    assert len(lines) == 1, res.stderr
    return str(lines[0])
