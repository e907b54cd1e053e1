"""The stand-ins the everyday paths use instead of collections, contextlib, functools and
datetime (issue 19) answer as the library ones do."""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kei_message import lean, records
from kei_message.stores.base import Entry


def test_ntuple_is_a_namedtuple() -> None:
    ours = lean.ntuple("Entry", ["pos", "end", "record", "error"], defaults=(None,))
    theirs = collections.namedtuple("Entry", ["pos", "end", "record", "error"], defaults=[None])
    for args, kwargs in [
        ((1, 2, ("a", 1)), {}),
        ((1, 2, None, "bad"), {}),
        ((1,), {"end": 3, "record": None}),
    ]:
        a, b = ours(*args, **kwargs), theirs(*args, **kwargs)
        assert tuple(a) == tuple(b) and a == b and hash(a) == hash(b)
        assert (a.pos, a.end, a.record, a.error) == (b.pos, b.end, b.record, b.error)
        assert repr(a) == repr(b) and a._asdict() == b._asdict()
        assert a._replace(pos=9) == b._replace(pos=9) and type(a._replace(pos=9)) is ours
        pos, end, rec, err = a
        assert (pos, end, rec, err) == tuple(b)
    assert ours._fields == theirs._fields and ours._field_defaults == theirs._field_defaults
    for bad_args, bad_kwargs in [
        ((), {}),
        ((1, 2, 3, 4, 5), {}),
        ((1, 2), {"pos": 1}),
        ((1, 2), {"x": 1}),
    ]:
        with pytest.raises(TypeError):
            theirs(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError):
            ours(*bad_args, **bad_kwargs)
    with pytest.raises(AttributeError):
        ours(1, 2, 3).pos = 5  # type: ignore[misc]
    entry = Entry(1, 2, None, "why")
    assert pickle.loads(pickle.dumps(entry)) == entry


def _run(cm_factory: Callable[[], Any], body: Callable[[Any], None]) -> tuple[str, Any]:
    try:
        with cm_factory() as value:
            body(value)
    except BaseException as exc:
        return type(exc).__name__, str(exc)
    return "ok", None


def _generators() -> list[Callable[[list[str]], Iterator[Any]]]:
    def plain(log: list[str]) -> Iterator[int]:
        log.append("enter")
        try:
            yield 7
        finally:
            log.append("exit")

    def swallowing(log: list[str]) -> Iterator[int]:
        try:
            yield 1
        except ValueError:
            log.append("swallowed")

    def converting(log: list[str]) -> Iterator[int]:
        try:
            yield 1
        except KeyError as exc:
            raise RuntimeError("converted") from exc

    def retyping(log: list[str]) -> Iterator[int]:
        try:
            yield 1
        except ValueError as exc:
            raise TypeError("retyped") from exc

    def no_yield(log: list[str]) -> Iterator[int]:
        if log is not None:
            return
        yield 1

    def two_yields(log: list[str]) -> Iterator[int]:
        yield 1
        yield 2

    def ignores_throw(log: list[str]) -> Iterator[int]:
        try:
            yield 1
        except ValueError:
            pass
        yield 2

    return [plain, swallowing, converting, retyping, no_yield, two_yields, ignores_throw]


def _bodies() -> list[Callable[[Any], None]]:
    def fine(value: Any) -> None:
        pass

    def value_error(value: Any) -> None:
        raise ValueError("v")

    def key_error(value: Any) -> None:
        raise KeyError("k")

    def stop(value: Any) -> None:
        raise StopIteration("s")

    def runtime(value: Any) -> None:
        raise RuntimeError("r")

    return [fine, value_error, key_error, stop, runtime]


@pytest.mark.parametrize("gen", _generators(), ids=lambda g: g.__name__)
@pytest.mark.parametrize("body", _bodies(), ids=lambda b: b.__name__)
def test_contextmanager_follows_contextlib(
    gen: Callable[[list[str]], Iterator[Any]], body: Callable[[Any], None]
) -> None:
    ours_log: list[str] = []
    theirs_log: list[str] = []
    ours = _run(lambda: lean.contextmanager(gen)(ours_log), body)
    theirs = _run(lambda: contextlib.contextmanager(gen)(theirs_log), body)
    assert ours == theirs and ours_log == theirs_log


def test_suppress_follows_contextlib() -> None:
    for exc in (FileNotFoundError("x"), OSError("y"), ValueError("z")):
        results = []
        for suppress in (lean.suppress, contextlib.suppress):
            try:
                with suppress(FileNotFoundError, ValueError):
                    raise exc
                results.append("suppressed")
            except OSError:
                results.append("raised")
        assert results[0] == results[1]


def _reference(ts: str) -> float | None:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except (ValueError, TypeError):
        return None


@settings(max_examples=3000, deadline=None)
@given(
    when=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    digits=st.sampled_from([0, 1, 3, 6]),
    offset=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    zulu=st.booleans(),
)
def test_fixed_epoch_is_what_datetime_says(
    when: datetime, digits: int, offset: int, zulu: bool
) -> None:
    """``records.ts_epoch`` parses what the writers write without datetime: the same float."""
    text = (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
        f"T{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
    )
    if digits:
        text += "." + f"{when.microsecond:06d}"[:digits]
    if zulu:
        text += "Z"
    else:
        sign = "+" if offset >= 0 else "-"
        text += f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    assert _reference(text) is not None
    assert records._fixed_epoch(text) == _reference(text)


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789-:TZ.+ z٣", min_size=18, max_size=34))
def test_fixed_epoch_never_differs_and_leaves_the_rest_to_datetime(text: str) -> None:
    got = records._fixed_epoch(text)
    assert got is None or got == _reference(text)
    assert records.ts_epoch(text) == _reference(text)


# ----------------------------------------------------------------------------- quick_exit
# Each body is a console script's main(); run once ending in `sys.exit(main())`, once
# in `quick_exit(main)`: what the process prints and its status must be the same.
EXITS = {
    "returns None": "print('out')",
    "returns 3": "print('out'); return 3",
    "exits 4": "sys.exit(4)",
    "exits True": "sys.exit(True)",
    "exits with a message": "sys.exit('kei: no such thing')",
    "exits 300": "sys.exit(300)",
    "exits -1": "sys.exit(-1)",
    "raises": "raise ValueError('boom')",
    "a lot of buffered output": "sys.stdout.write('x' * 300_000); sys.stderr.write('e' * 9000)",
    "an atexit function": "atexit.register(lambda: print('bye', flush=False)); return 5",
    "an atexit function that fails": "atexit.register(lambda: 1 / 0); print('out')",
    "logging": (
        "import logging; logging.basicConfig(stream=sys.stdout); "
        "logging.getLogger('x').warning('said'); return 2"
    ),
    "a thread still running": (
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start()"
    ),
    "a daemon thread": (
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start(); print('out')"
    ),
}
PROGRAM = """\
import atexit, os, sys, threading, time
from kei_message.lean import quick_exit
def main():
    {body}
{end}
"""


# stdout and stderr buffered as a console script's are (not PYTHONUNBUFFERED)
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _program(body: str, quick: bool) -> list[str]:
    end = "quick_exit(main)" if quick else "sys.exit(main())"
    return [sys.executable, "-c", PROGRAM.format(body=body, end=end)]


def _exit_run(body: str, quick: bool) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(_program(body, quick), capture_output=True, timeout=30, env=BUFFERED)


def _tail(err: bytes) -> list[bytes]:
    # a traceback names the lines of the two programs, which differ in their last line,
    # and a function's repr its address
    lines = [line for line in err.splitlines() if not line.startswith(b"  ")]
    return [re.sub(rb" at 0x[0-9a-f]+", b"", line) for line in lines]


@pytest.mark.parametrize("body", list(EXITS.values()), ids=list(EXITS))
def test_quick_exit_ends_as_sys_exit_does(body: str) -> None:
    normal, quick = _exit_run(body, quick=False), _exit_run(body, quick=True)
    assert quick.returncode == normal.returncode
    assert quick.stdout == normal.stdout
    assert _tail(quick.stderr) == _tail(normal.stderr)
    assert normal.stdout or normal.stderr or normal.returncode  # each says something


def test_quick_exit_skips_the_teardown() -> None:
    """What it is for: objects are not freed one by one at exit (a ``__del__`` of a
    module's object runs at a normal exit, not at a quick one)."""
    body = "global keep; keep = Noisy(); print('out')"
    noisy = "class Noisy:\n    def __del__(self):\n        os.write(2, b'freed')\n"
    for quick, freed in ((False, True), (True, False)):
        argv = _program(body, quick)
        argv[-1] = argv[-1].replace("def main", noisy + "def main")
        proc = subprocess.run(argv, capture_output=True, timeout=30, env=BUFFERED)
        assert (proc.returncode, proc.stdout) == (0, b"out\n")
        assert (b"freed" in proc.stderr) is freed, proc.stderr


def test_quick_exit_when_the_reader_is_gone() -> None:
    """stdout's reader left before the final flush: the flush fails, and the normal exit
    says so as it would have (status 120, one line)."""
    body = "sys.stdout.write('x' * 1000); time.sleep(0.5)"
    results = []
    for quick in (False, True):
        with subprocess.Popen(
            _program(body, quick), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=BUFFERED
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()  # before anything is flushed to it
            err = proc.stderr.read()
            results.append((proc.wait(timeout=30), _tail(err)))
    assert results[0] == results[1]
    assert results[0][0] == 120 and b"BrokenPipeError" in b"".join(results[0][1])
