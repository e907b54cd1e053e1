"""``json.loads`` and ``json.dumps`` for the hook paths, without the ``json`` package;
``oloads`` and ``odumps``: what ``orjson`` answers, without importing it.

``import json`` imports ``re`` (``json.decoder`` and ``json.encoder`` compile
patterns at import), and ``re`` brings ``enum``, ``functools`` and
``collections``: ~5 ms of a hook that should cost little more than Python's
own start-up (issue 19). The C accelerator ``_json`` that ``json`` itself uses
does the work here, so the results are the same as the ``json`` package's.

``import orjson`` (3.13) costs ~25 ms: it imports dataclasses, inspect,
uuid and platform. The bus is read and written on every command, so
``oloads``/``odumps`` give orjson's results through ``_json``, and hand over
to orjson itself wherever the two could differ (NaN, infinities, lone
surrogates, errors): the bus means the same whichever reads it.
"""

from __future__ import annotations

import _json
import sys

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
    parse_float: Any = float
    parse_int: Any = int
    parse_constant: Any = staticmethod(_constant)


def _reject(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf (1e400): orjson refuses it
        raise ValueError("number out of range")
    return value


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**64:  # orjson reads these as floats
        raise ValueError("integer out of range")
    return value


class _Strict(_Context):
    parse_int = staticmethod(_int64)
    parse_float = staticmethod(_finite)
    parse_constant = staticmethod(_reject)


def _orjson() -> Any:
    import orjson

    return orjson


def oloads(data: bytes) -> Any:
    """``orjson.loads(data)``: the same value, or orjson's own JSONDecodeError."""
    loaded = sys.modules.get("orjson")
    if loaded is not None:  # imported already (a long scan, the redis store): use it
        return loaded.loads(data)
    if b"\\ud" in data or b"\\uD" in data:  # surrogate escapes: orjson's rules
        return _orjson().loads(data)
    try:
        return _scan(data, _Strict)
    except (ValueError, RecursionError, SystemError):
        return _orjson().loads(data)  # raises its error (or disagrees, and wins)


def odumps(obj: Any) -> bytes:
    """``orjson.dumps(obj)`` for JSON types without floats: compact, UTF-8 as is."""
    loaded = sys.modules.get("orjson")
    if loaded is not None:
        return bytes(loaded.dumps(obj))
    try:
        return "".join(_ODUMPS(obj, 0)).encode("utf-8")
    except (ValueError, TypeError, RecursionError):  # NaN, lone surrogates, foreign types
        return bytes(_orjson().dumps(obj))


def loads(data: bytes | str) -> Any:
    """Like ``json.loads`` (UTF-8 bytes); raises ValueError for anything but one JSON value."""
    try:
        return _scan(data, _Context)
    except SystemError:
        # A syntax error: _json raises json.decoder.JSONDecodeError, but only when
        # json.decoder is imported already (else SystemError). Now it is.
        import json.decoder  # noqa: F401

        return _scan(data, _Context)


def _scan(data: bytes | str, context: type[_Context]) -> Any:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    scan = _json.make_scanner(context)  # type: ignore[arg-type]  # a duck-typed context
    try:
        value, end = scan(text, start)
    except StopIteration:
        raise ValueError(f"Expecting value at char {start}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data at char {end}")
    return value


def dumps(
    obj: Any, *, ensure_ascii: bool = True, compact: bool = False, allow_nan: bool = True
) -> str:
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
        allow_nan,
    )
    return "".join(encoder(obj, 0))


def _no_default(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# odumps' encoder, made once: compact, UTF-8 as is, no NaN (orjson writes null: it decides)
_ODUMPS = _json.make_encoder(
    None, _no_default, _json.encode_basestring, None, ":", ",", False, False, False
)
