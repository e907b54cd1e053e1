"""``json.loads`` and ``json.dumps`` for the hook paths, without the ``json`` package.

``import json`` imports ``re`` (``json.decoder`` and ``json.encoder`` compile
patterns at import), and ``re`` brings ``enum``, ``functools`` and
``collections``: ~5 ms of a hook that should cost little more than Python's
own start-up (issue 19). The C accelerator ``_json`` that ``json`` itself uses
does the work here, so the results are the same as the ``json`` package's.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"


def _constant(name: str) -> float:
    return float(name.lower().replace("infinity", "inf"))  # NaN, Infinity, -Infinity


class _Context:
    """What ``_json.make_scanner`` reads off a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)


def loads(data: bytes | str) -> Any:
    """Like ``json.loads`` (UTF-8 bytes); raises ValueError for anything but one JSON value."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    scan = _json.make_scanner(_Context)  # type: ignore[arg-type]  # duck-typed context
    try:
        value, end = scan(text, start)
    except StopIteration:
        raise ValueError(f"Expecting value at char {start}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data at char {end}")
    return value


def dumps(obj: Any, *, ensure_ascii: bool = True, compact: bool = False) -> str:
    """Like ``json.dumps(obj, ensure_ascii=…)``; ``compact``: separators ``,`` and ``:``."""
    encoder = _json.make_encoder(
        {},  # markers: circular references raise ValueError, as in json
        _no_default,
        _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring,
        None,
        ":" if compact else ": ",
        "," if compact else ", ",
        False,
        False,
        True,
    )
    return "".join(encoder(obj, 0))


def _no_default(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
