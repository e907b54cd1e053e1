"""Moves the wall clock of every Python process of a test run ahead (#12).

``scripts/test.sh`` runs the suite a second time with this directory on
``PYTHONPATH`` and ``KEI_TEST_CLOCK_AHEAD`` set (e.g. ``400d``): pytest and every
``kei`` / ``kei-message-hook`` process a test starts then read a wall clock that
far in the future, so a test that wrote a fixed date (the 2026-11-21 corpus that
aged out of the 24 h replay window) fails today instead of on some later day.

Why not Debian's ``faketime``: libfaketime 0.9.10 hangs ``threading.Event.wait``
(faked monotonic clock) or makes ``time.sleep`` fail with EINVAL
(``FAKETIME_DONT_FAKE_MONOTONIC=1``), and hangs redis-server at start. Only the
wall clock matters here; the monotonic clock, which measures intervals, stays real.
kei_message reads the wall clock only through ``time.time``, ``time.time_ns``,
``time.gmtime``, ``time.localtime`` and ``time.strftime`` (checked by
tests/test_repo.py), so those are the functions moved.
"""

from __future__ import annotations

import os
import time

_SPEC = os.environ.get("KEI_TEST_CLOCK_AHEAD", "")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(spec: str) -> int:
    spec = spec.strip()
    if not spec:
        return 0
    unit = spec[-1] if spec[-1] in _UNITS else "s"
    return int(spec.rstrip("smhd")) * _UNITS[unit]


_AHEAD = _seconds(_SPEC)

if _AHEAD:
    _time, _time_ns = time.time, time.time_ns
    _gmtime, _localtime, _strftime = time.gmtime, time.localtime, time.strftime

    def _now() -> float:
        return _time() + _AHEAD

    def _now_ns() -> int:
        return _time_ns() + _AHEAD * 1_000_000_000

    def _gm(secs: float | None = None) -> time.struct_time:
        return _gmtime(_now() if secs is None else secs)

    def _local(secs: float | None = None) -> time.struct_time:
        return _localtime(_now() if secs is None else secs)

    def _fmt(fmt: str, t: time.struct_time | tuple[int, ...] | None = None) -> str:
        return _strftime(fmt, _local() if t is None else t)

    time.time, time.time_ns = _now, _now_ns  # type: ignore[assignment]
    time.gmtime, time.localtime, time.strftime = _gm, _local, _fmt  # type: ignore[assignment]
