"""Hostile input (issue 7), with hypothesis: buses with invalid JSON, invalid UTF-8,
NUL bytes, missing or mistyped fields, 10 MB lines, lines without a newline;
names with ``/``, ``..``, spaces, control characters, 65 characters; bodies with
terminal escapes, ``\\r``, right-to-left overrides.

No command crashes or prints a traceback; bad names exit 2; nothing escapes to
the terminal from text output; the hook exits 0.

Commands run in-process (CliRunner) for the many hypothesis examples, and as
real processes for the hook and a fixed corpus. Budget: about 60 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability import assert_no_escape, cli, hook_available, kei

from kei_message import names

NASTY = [
    "\x1b[2J\x1b[H",  # clear screen
    "\x1b]0;pwned\x07",  # set the window title (OSC)
    "\x1b]52;c;ZXZpbA==\x07",  # write the clipboard
    "\x9b31m",  # C1 CSI
    "\r\x1b[K",  # carriage return, erase line
    "\u202eevil\u202c",  # right-to-left override
    "\u2066\u2069\u200f",  # isolates, RLM
    "\x00",
    "\x7f\x08\x08",
    "\ufeff",
]

nasty_text = st.lists(
    st.one_of(st.sampled_from(NASTY), st.text(max_size=20)), min_size=1, max_size=6
).map("".join)

hostile_name = st.one_of(
    st.sampled_from(
        ["../x", "a/b", "..", ".", "/etc/passwd", "x" * 65, "a b", "-x", "\x1b[31m", "all", ""]
    ),
    st.text(max_size=70),
)


def _record(rid: Any, frm: Any, to: Any, body: Any, **extra: Any) -> bytes:
    rec = {"id": rid, "ts": "2026-11-21T08:00:00Z", "from": frm, "to": to, "body": body, **extra}
    return orjson.dumps(rec)


good_line = st.builds(
    lambda rid, frm, to, body: _record(rid, frm, to, body),
    st.integers(min_value=1, max_value=2**62),
    st.one_of(st.sampled_from(["alice", "bob"]), nasty_text),
    st.sampled_from(["bob", "all", "alice", "\x1b[31mbob"]),
    nasty_text,
)

bad_line = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")),  # invalid UTF-8, NULs
    st.sampled_from(
        [
            b"{",
            b"[]",
            b"null",
            b'"string"',
            b"123",
            b"{}",
            b'{"id":"abc","from":"a","to":"bob","body":"x"}',
            b'{"id":1.5,"from":"a","to":"bob","body":"x"}',
            b'{"id":true,"from":"a","to":"bob","body":"x"}',
            b'{"id":1,"from":5,"to":"bob","body":"x"}',
            b'{"id":1,"from":"a","to":null,"body":"x"}',
            b'{"id":1,"from":"a","to":"bob","body":["x"]}',
            b'{"id":1,"from":"a","to":"bob"}',
            b'{"id":1,"ts":5,"from":"a","to":"bob","body":"x"}',
            b'{"id":100000000000000000000000000000,"from":"a","to":"bob","body":"x"}',
            b'{"id":-5,"from":"a","to":"bob","body":"x","kind":7,"reply_to":"x"}',
            b'{"id":"17952480026255640","from":"a","to":"bob","body":"legacy string id"}',
            b'{"id":1,"from":"a","to":"bob","body":"\\ud800 lone surrogate"}',
            b'{"id":1,"from":"a","to":"bob","body":"x","id":2}',
            b"\x00\x00\x00",
            b"\xff\xfe\xfd",
            b"   ",
            b"\r",
        ]
    ),
)

bus_strategy = st.tuples(
    st.lists(st.one_of(good_line, bad_line), max_size=25),
    st.one_of(st.just(b""), bad_line, good_line),  # a last line without a newline
)


def _fresh_mailbox() -> Path:
    box = Path(os.environ["KEI_MAILBOX_DIR"])
    shutil.rmtree(box, ignore_errors=True)
    box.mkdir(mode=0o700)
    return box


def _write_bus(box: Path, lines: list[bytes], tail: bytes) -> None:
    path = box / "messages.jsonl"
    path.write_bytes(b"".join(ln + b"\n" for ln in lines) + tail)
    path.chmod(0o600)


def _check(res: Any, *, codes: tuple[int, ...] = (0, 1), text: bool = True) -> None:
    assert res.exit_code in codes, (res.exit_code, res.stdout[:300], res.stderr[:300])
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    assert_no_escape(res.stderr)
    if text:
        assert_no_escape(res.stdout)
    else:  # --json prints records as stored: JSON escapes every C0 control character
        assert "\x1b" not in res.stdout and "\x00" not in res.stdout


READ_COMMANDS: list[tuple[tuple[str, ...], bool]] = [
    (("inbox", "--me", "bob", "--peek"), True),
    (("inbox", "--me", "bob", "--count"), True),
    (("inbox", "--me", "bob", "--all", "--limit", "50"), True),
    (("list", "--limit", "100"), True),
    (("list", "--json"), False),
    (("tail", "-n", "30"), True),
    (("who",), True),
    (("who", "--json"), False),
    (("inbox", "pop", "--me", "alice"), True),
    (("inbox", "--me", "bob"), True),
    (("inbox", "--me", "bob", "--json"), False),
    (("doctor",), True),
]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(bus_strategy)
def test_hostile_bus_every_command(bus: tuple[list[bytes], bytes]) -> None:
    lines, tail = bus
    box = _fresh_mailbox()
    _write_bus(box, lines, tail)
    for args, text in READ_COMMANDS:
        _check(cli(*args), text=text)
    ids = []
    for ln in lines:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            ids.append(int(orjson.loads(ln)["id"]))
    for rid in ids[:2]:
        _check(cli("show", str(rid)), codes=(0, 2))
    _check(cli("show", "12345"), codes=(2,))
    # A send after a hostile tail never merges with it; doctor repairs all of it.
    _check(cli("send", "--from", "alice", "--to", "bob", "after"), codes=(0,))
    assert (box / "messages.jsonl").read_bytes().endswith(b'"body":"after"}\n')
    _check(cli("doctor", "--repair"), codes=(0,))
    _check(cli("doctor"), codes=(0,))
    got = cli("inbox", "--me", "bob", "--json")
    _check(got, text=False)
    assert not got.stdout or got.stdout.strip().splitlines()[-1].endswith('"body":"after"}')


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_name)
def test_hostile_names_exit_2_unless_valid(name: str) -> None:
    _fresh_mailbox()
    valid = names.is_valid(name.removeprefix("@")) and name.removeprefix("@") != "all"
    for args in (
        ("inbox", "--me", name, "--peek"),
        ("send", "--from", name, "--to", "bob", "hi"),
        ("send", "--from", "alice", "--to", name, "hi"),
        ("wait", "--me", "bob", "--from", name, "--timeout", "0"),
    ):
        res = cli(*args)
        if args[0] == "send" and args[4] == name and name.removeprefix("@") == "all":
            assert res.exit_code == 0  # --to all is a broadcast
            continue
        expected = (0, 1) if valid else (2,)
        _check(res, codes=expected)
        if not valid:
            assert res.stderr.startswith("kei message: error: invalid name")
    # Nothing but the mailbox dir was ever created next to it.
    box = Path(os.environ["KEI_MAILBOX_DIR"])
    assert [p.name for p in box.parent.iterdir() if p.name != "mailbox"] == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nasty_text)
def test_hostile_bodies_never_reach_the_terminal(body: str) -> None:
    _fresh_mailbox()
    sent = cli("send", "--from", "alice", "--to", "bob", "--", body)
    if not body.strip():
        _check(sent, codes=(2,))
        return
    _check(sent, codes=(0,))
    rid = sent.stdout.rsplit("#", 1)[1].strip()
    for args in (
        ("show", rid),
        ("list",),
        ("tail", "-n", "5"),
        ("inbox", "--me", "bob", "--peek"),
        ("inbox", "--me", "bob", "--all"),
        ("inbox", "pop", "--me", "bob"),
    ):
        _check(cli(*args))
    # --json keeps the body exactly as sent.
    shown = cli("show", rid, "--json")
    _check(shown, text=False)
    assert json.loads(shown.stdout)["body"] == body.replace("\r\n", "\r\n")


# ----------------------------------------------------------------------------- real processes
CORPUS_LINES = [
    _record(1795248002625564, "alice", "bob", "\x1b[2J\x1b]0;pwned\x07 hello \u202eevil"),
    b"\xff\xfe not utf-8 \x00 with NUL",
    b'{"id":"abc","from":"a"}',
    _record(1795248002625565, "\x1b[31mmallory", "all", "\r\x1b[K spoofed prompt \x9b31m"),
    b"{" + b"x" * 200,
    _record(1795248002625566, "alice", "bob", "x" * 20_000 + "\u2066 long one \u2069"),
]


def _corpus(box: Path, tail: bytes = b'{"id":9,"partial') -> None:
    _write_bus(box, CORPUS_LINES, tail)


def test_hostile_corpus_as_real_processes(mailbox_dir: Path) -> None:
    _corpus(_fresh_mailbox())
    for args in (
        ("list",),
        ("inbox", "--me", "bob", "--peek"),
        ("who",),
        ("show", "1795248002625564"),
        ("tail", "-n", "10"),
        ("doctor",),
    ):
        proc = kei(*args)
        assert proc.returncode in (0, 1), (args, proc.stderr)
        assert b"Traceback" not in proc.stderr
        assert_no_escape(proc.stdout.decode("utf-8"))
        assert_no_escape(proc.stderr.decode("utf-8"))


@pytest.mark.parametrize(
    "stdin",
    [
        None,  # the corpus bus, good input
        b"",
        b"not json",
        b"[1,2]",
        b'{"cwd": 5}',
        b'{"cwd": "/tmp/\\u001b[31m../../bob", "session_id": "../../etc/x"}',
        b"\xff\xfe",
        b'{"session_id":"' + b"s" * 100_000 + b'"}',
    ],
)
def test_hook_exits_0_on_hostile_bus_and_input(
    mailbox_dir: Path, stdin: bytes | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEI_MAILBOX_BROADCAST_REPLAY", "100000d")  # the corpus is of 2026-11-21
    if not hook_available():
        pytest.skip("kei_message.hooks is not written yet (issue 4)")
    _corpus(_fresh_mailbox())
    payload = stdin if stdin is not None else b'{"session_id":"s1","cwd":"/w/bob","prompt":"hi"}'
    texts = []
    for event in ("user-prompt-submit", "session-start", "stop"):
        proc = kei(event, input=payload, script="kei-message-hook", env={"KEI_MAILBOX_ME": "bob"})
        assert proc.returncode == 0, proc.stderr
        assert b"Traceback" not in proc.stderr
        if proc.stdout.strip():
            out = json.loads(proc.stdout)
            text = out.get("reason") or out["hookSpecificOutput"]["additionalContext"]
            assert_no_escape(text)
            texts.append(text)
    if stdin is None:  # good input: every message of the corpus reached Claude, escaped
        joined = "".join(texts)
        assert "hello" in joined and "spoofed" in joined and "1795248002625566" in joined
    # Whatever the input, nothing was written outside the mailbox dir.
    assert [p.name for p in mailbox_dir.parent.iterdir() if p.name != "mailbox"] == []


@pytest.mark.slow
def test_ten_megabyte_lines(mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10 MB corrupt line and a 10 MB line without a newline: read past, reported, repaired."""
    monkeypatch.setenv("KEI_MAILBOX_BROADCAST_REPLAY", "100000d")  # the corpus is of 2026-11-21
    box = _fresh_mailbox()
    huge_bad = b'{"id":1,"body":"' + b"y" * (10 << 20)  # never closed
    _write_bus(box, [CORPUS_LINES[0], huge_bad, CORPUS_LINES[3]], b"z" * (10 << 20))
    res = cli("inbox", "--me", "bob")
    _check(res)
    assert "hello" in res.stdout and "spoofed" in res.stdout
    doc = cli("doctor")
    _check(doc)
    assert "line 2 (offset" in doc.stdout and "partial last line, 10485760 bytes" in doc.stdout
    assert cli("send", "--from", "alice", "--to", "bob", "after").exit_code == 0
    _check(cli("doctor", "--repair"), codes=(0,))
    assert cli("inbox", "--me", "bob").stdout.count("after") == 1
    if hook_available():
        proc = kei(
            "user-prompt-submit",
            input=b'{"session_id":"s","cwd":"/w/bob","prompt":"hi"}',
            script="kei-message-hook",
        )
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    shutil.rmtree(box)
