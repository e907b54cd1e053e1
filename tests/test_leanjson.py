"""kei_message.leanjson: the hook's JSON without the json package (issue 19) reads and
writes exactly what json does, and fails where json fails."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei_message import leanjson

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_same_as_json(value: object) -> None:
    for ascii_only in (True, False):
        text = json.dumps(value, ensure_ascii=ascii_only)
        assert leanjson.dumps(value, ensure_ascii=ascii_only) == text
        compact = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))
        assert leanjson.dumps(value, ensure_ascii=ascii_only, compact=True) == compact
        assert leanjson.loads(text.encode("utf-8", "surrogatepass")) == json.loads(text)


@pytest.mark.parametrize(
    "text", ["", "  ", "[1,", '{"a" 1}', '{"a":1}{', "nul", "[1] x", '"\\x"', "\ufeff{}"]
)
def test_fails_where_json_fails(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        leanjson.loads(text.encode())


def test_constants_and_bad_utf8() -> None:
    assert leanjson.loads(b" [NaN, Infinity, -Infinity, 1e400] ")[1:] == [
        float("inf"), float("-inf"), float("inf")
    ]  # fmt: skip
    with pytest.raises(ValueError):
        leanjson.loads(b'"\xff"')
    with pytest.raises(TypeError):
        leanjson.dumps({"a": object()})


def test_it_imports_neither_json_nor_re() -> None:
    code = (
        "import sys; from kei_message import leanjson; leanjson.dumps(leanjson.loads(b'[1]'));"
        "leanjson.odumps(leanjson.oloads(b'{}'));"
        "print(sorted({'json', 're', 'enum', 'orjson'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("which", ["loads", "oloads"])
def test_errors_in_a_process_that_never_imported_json(which: str) -> None:
    """_json reports a syntax error through json.decoder, and only if it is imported."""
    bads = [b'{"a" 1}', b"[1,", b'"\\x"', b'{"a":1}{']
    code = (
        "from kei_message import leanjson\n"
        f"for bad in {bads!r}:\n"
        f"    try: leanjson.{which}(bad)\n"
        "    except ValueError as e: print(type(e).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    names = out.stdout.split()
    assert len(names) == len(bads), out.stderr  # each a ValueError, none a SystemError
    if which == "oloads":
        assert set(names) == {"JSONDecodeError"}  # orjson's own
