"""One record, one line (SPEC §2): parse, format, ids, kinds, durations."""

from __future__ import annotations

import contextlib
import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kei_message import records
from kei_message.errors import UsageError
from kei_message.records import CorruptLine

NAME = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\Z")
RECORD = st.fixed_dictionaries(
    {
        "id": st.integers(min_value=1, max_value=10**19),
        "ts": st.just("2026-11-21T08:00:02Z"),
        "from": NAME,
        "to": NAME | st.just("all"),
        "body": st.text(min_size=1),
    },
    optional={
        "kind": st.sampled_from(records.KINDS),
        "reply_to": st.integers(min_value=1, max_value=10**17),
    },
)


@settings(max_examples=150, deadline=None)
@given(RECORD)
def test_a_record_round_trips_through_one_line(rec: dict[str, object]) -> None:
    line = records.dumps(rec)
    assert line.endswith(b"\n")
    # newlines in bodies are escaped: one record is exactly one line
    assert line.count(b"\n") == 1
    line.decode("utf-8")
    assert records.parse(line[:-1]) == rec


def test_the_line_is_what_cat_and_jq_read() -> None:
    rec = {
        "id": 1795248002625564,
        "ts": "2026-11-21T08:00:02Z",
        "from": "backend",
        "to": "frontend",
        "body": "ship it\nnow",
    }
    line = records.dumps(rec)
    assert line == (
        b'{"id":1795248002625564,"ts":"2026-11-21T08:00:02Z","from":"backend",'
        b'"to":"frontend","body":"ship it\\nnow"}\n'
    )


def test_unknown_fields_are_kept() -> None:
    line = b'{"id":5,"ts":"2026-11-21T08:00:02Z","from":"a","to":"b","body":"x","lang":"fr"}'
    assert records.parse(line)["lang"] == "fr"


def test_string_ids_from_kei_message_sh_become_integers() -> None:
    rec = records.parse(
        b'{"id":"1732000000123456","ts":"2024-11-19T07:06:40Z","from":"a","to":"b","body":"x"}'
    )
    assert rec["id"] == 1732000000123456


def test_a_record_without_ts_still_parses() -> None:
    assert records.parse(b'{"id":7,"from":"a","to":"b","body":"x"}')["id"] == 7


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json",
        b'{"id":1,"from":"a","to":"b","body":"x"',  # torn
        b"[1,2,3]",
        b'"a string"',
        b'{"ts":"2026-11-21T08:00:02Z","from":"a","to":"b","body":"x"}',  # no id
        b'{"id":true,"from":"a","to":"b","body":"x"}',
        b'{"id":1.5,"from":"a","to":"b","body":"x"}',
        b'{"id":"12a","from":"a","to":"b","body":"x"}',
        b'{"id":"-12","from":"a","to":"b","body":"x"}',
        b'{"id":1,"to":"b","body":"x"}',  # no from
        b'{"id":1,"from":"a","body":"x"}',  # no to
        b'{"id":1,"from":"a","to":"b"}',  # no body
        b'{"id":1,"from":"a","to":"b","body":5}',
        b'{"id":1,"from":"a","to":"b","body":"x","ts":5}',
        b'\xff\xfe{"id":1}',
    ],
)
def test_corrupt_lines_are_refused(line: bytes) -> None:
    with pytest.raises(CorruptLine):
        records.parse(line)


def test_ids_are_microseconds_and_ts_is_rfc3339_utc() -> None:
    before = time.time()
    rid = records.now_us()
    assert len(str(rid)) == 16
    assert abs(rid / 1e6 - before) < 5
    ts = records.ts_from_id(1795248002625564)
    assert ts == "2026-11-21T08:00:02Z"
    assert records.ts_epoch(ts) == 1795248002.0


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-11-21T08:00:02Z", 1795248002.0),
        ("2026-11-21T08:00:02.5Z", 1795248002.5),
        ("2026-11-21T09:00:02+01:00", 1795248002.0),
        ("yesterday", None),
        ("", None),
    ],
)
def test_ts_epoch(ts: str, expected: float | None) -> None:
    assert records.ts_epoch(ts) == expected


@pytest.mark.parametrize("rid", [1795248002, 1795248002625, 1795248002625564, 1795248002625564000])
def test_record_epoch_without_ts_reads_the_id_at_any_resolution(rid: int) -> None:
    assert records.record_epoch({"id": rid}) == pytest.approx(1795248002, abs=1)


def test_record_epoch_prefers_ts() -> None:
    assert records.record_epoch({"id": 1, "ts": "2026-11-21T08:00:02Z"}) == 1795248002.0


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("TASK: build it", "TASK"),
        ("  DONE: built", "DONE"),
        ("BLOCKED: on review", "BLOCKED"),
        ("QUESTION: why?", "QUESTION"),
        ("task: lower case is text", None),
        ("TASKS: not a kind", None),
        ("a TASK: later", None),
        ("", None),
    ],
)
def test_kind_from_body(body: str, kind: str | None) -> None:
    assert records.kind_from_body(body) == kind


def test_check_kind() -> None:
    assert records.check_kind("task") == "TASK"
    assert records.check_kind("DONE:") == "DONE"
    with pytest.raises(UsageError, match="TASK, DONE, BLOCKED, QUESTION"):
        records.check_kind("URGENT")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("90", 90),
        ("30s", 30),
        ("15m", 900),
        ("24h", 86400),
        ("7d", 604800),
        ("2w", 1209600),
        ("1.5h", 5400),
        (" 24H ", 86400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert records.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "soon", "nan", "1y"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(UsageError):
        records.parse_duration(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_parse_never_raises_anything_but_corrupt_line(text: str) -> None:
    with contextlib.suppress(CorruptLine):
        records.parse(text.encode("utf-8", "surrogatepass"))


def test_dumps_is_orjson_compatible() -> None:
    rec = {"id": 1, "ts": "x", "from": "a", "to": "b", "body": "é \u2028 \x1b[31m"}
    assert orjson.loads(records.dumps(rec)) == rec
