"""The command line of SPEC §6, in-process (CliRunner), stdout and stderr apart."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kei_message import presence
from kei_message.cli import get_app

runner = CliRunner()


def kei(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Any:
    """Run `kei message ARGS`; exceptions a command did not map are test failures."""
    return runner.invoke(get_app(), list(args), input=input, env=env, catch_exceptions=False)


def ok(*args: str, **kw: Any) -> Any:
    res = kei(*args, **kw)
    assert res.exit_code == 0, (res.exit_code, res.stdout, res.stderr)
    return res


def fails(code: int, *args: str, **kw: Any) -> Any:
    """The command exits ``code`` with exactly one error line and no traceback."""
    res = kei(*args, **kw)
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("kei message: error: "), res.stderr
    assert "Traceback" not in res.stderr
    return res


def bus(mb: Any) -> list[dict[str, Any]]:
    return list(mb.recent(10_000))


# ----------------------------------------------------------------------------- send
def test_send_to_at_name_prints_the_sent_line(mailbox: Any) -> None:
    res = ok("send", "@frontend", "ship", "it", "--from", "backend")
    [rec] = bus(mailbox)
    assert (rec["from"], rec["to"], rec["body"]) == ("backend", "frontend", "ship it")
    assert res.stdout == f"-> sent to 'frontend' (from 'backend') #{rec['id']}\n"


def test_send_defaults_to_all_and_all_argument(mailbox: Any) -> None:
    ok("send", "hello", "there", "--from", "a")
    ok("send", "all", "everyone", "--from", "a")
    ok("send", "@all", "again", "--from", "a")
    assert [(r["to"], r["body"]) for r in bus(mailbox)] == [
        ("all", "hello there"),
        ("all", "everyone"),
        ("all", "again"),
    ]


def test_only_the_first_argument_is_an_address(mailbox: Any) -> None:
    ok("send", "hi", "@frontend", "see", "this", "--from", "a")
    ok("send", "@b", "ping", "@c", "and", "all", "--from", "a")
    ok("send", "--to", "b", "@c", "stays", "text", "--from", "a")
    ok("send", "--to", "b", "all", "stays", "too", "--from", "a")
    assert [(r["to"], r["body"]) for r in bus(mailbox)] == [
        ("all", "hi @frontend see this"),
        ("b", "ping @c and all"),
        ("b", "@c stays text"),
        ("b", "all stays too"),
    ]


def test_double_dash_ends_options(mailbox: Any) -> None:
    ok("send", "--from", "a", "@b", "--", "--to", "x", "-n")
    [rec] = bus(mailbox)
    assert (rec["to"], rec["body"]) == ("b", "--to x -n")


def test_identity_from_env_then_cwd(
    mailbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "my project!"
    here.mkdir()
    monkeypatch.chdir(here)
    ok("send", "@x", "one")
    monkeypatch.setenv("KEI_MAILBOX_ME", "envname")
    ok("send", "@x", "two")
    ok("send", "@x", "three", "--from", "flag")
    assert [r["from"] for r in bus(mailbox)] == ["my-project", "envname", "flag"]


def test_stdin_body_keeps_newlines(mailbox: Any) -> None:
    ok("send", "@b", "--from", "a", input="line one\n\n  line three\ttab\n")
    ok("send", "@b", "-", "--from", "a", input="dash\nbody\n")
    ok("send", "--from", "a", input="to all\nfrom stdin")
    assert [(r["to"], r["body"]) for r in bus(mailbox)] == [
        ("b", "line one\n\n  line three\ttab"),
        ("b", "dash\nbody"),
        ("all", "to all\nfrom stdin"),
    ]


def test_stdin_body_of_200_kb(mailbox: Any) -> None:
    body = "\n".join(f"{i:06d} " + "x" * 93 for i in range(2000))  # 200,000 bytes
    assert len(body.encode()) >= 199_000
    ok("send", "@big", "--from", "a", input=body + "\n")
    [rec] = bus(mailbox)
    assert rec["body"] == body
    res = ok("inbox", "big", "--json")
    assert json.loads(res.stdout)["body"] == body


def test_stdin_not_utf8_is_refused(mailbox: Any) -> None:
    fails(2, "send", "@b", "--from", "a", input=b"\xff\xfe bad")
    assert bus(mailbox) == []


@pytest.mark.parametrize("stdin", ["", "\n", "   \n\t"])
def test_empty_body_exits_2(mailbox: Any, stdin: str) -> None:
    fails(2, "send", "@b", "--from", "a", input=stdin)
    fails(2, "send", "--from", "a", "@b", "   ")
    assert bus(mailbox) == []


def test_body_over_the_limit_exits_2(mailbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEI_MAILBOX_MAX_BODY", "100")
    res = fails(2, "send", "@b", "--from", "a", input="y" * 101)
    assert "100" in res.stderr
    ok("send", "@b", "--from", "a", input="y" * 100)
    assert len(bus(mailbox)) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("send", "--to", "../x", "hi"),
        ("send", "--to", "a b", "hi"),
        ("send", "@../x", "hi"),
        ("send", "@a b", "hi"),
        ("send", "@", "hi"),
        ("send", "@-x", "hi"),
        ("send", "--from", "a b", "@x", "hi"),
        ("send", "--from", "../x", "hi"),
        ("send", "--from", "all", "hi"),
        ("send", "--to", "x" * 65, "hi"),
        ("inbox", "--me", "../x"),
        ("inbox", "a b"),
        ("wait", "--me", "a/b", "--timeout", "0"),
        ("wait", "--me", "ok", "--from", "a b", "--timeout", "0"),
        ("list", "--from", "../x"),
        ("reply", "1", "hi", "--from", "a b"),
    ],
)
def test_invalid_names_exit_2(mailbox: Any, args: tuple[str, ...]) -> None:
    res = fails(2, *args)
    assert "invalid name" in res.stderr
    assert bus(mailbox) == []


def test_invalid_env_identity_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEI_MAILBOX_ME", "../etc")
    fails(2, "send", "@x", "hi")
    fails(2, "inbox")


def test_kinds_from_flag_or_leading_word(mailbox: Any) -> None:
    ok("send", "@b", "TASK:", "do", "it", "--from", "a")
    ok("send", "@b", "QUESTION: why?", "--from", "a")
    ok("send", "@b", "shipped", "--kind", "done", "--from", "a")
    ok("send", "@b", "BLOCKED: on review", "--kind", "TASK", "--from", "a")
    ok("send", "@b", "task: lower case is text", "--from", "a")
    got = [(r.get("kind"), r["body"]) for r in bus(mailbox)]
    assert got == [
        ("TASK", "TASK: do it"),
        ("QUESTION", "QUESTION: why?"),
        ("DONE", "shipped"),
        ("TASK", "BLOCKED: on review"),
        (None, "task: lower case is text"),
    ]
    fails(2, "send", "@b", "x", "--kind", "URGENT", "--from", "a")


def test_reply_to_flag_and_bad_id(mailbox: Any) -> None:
    ok("send", "@b", "answer", "--reply-to", "#1795248002625564", "--from", "a")
    assert bus(mailbox)[0]["reply_to"] == 1795248002625564
    fails(2, "send", "@b", "x", "--reply-to", "abc", "--from", "a")


def test_send_json_prints_the_record_as_stored(mailbox: Any) -> None:
    res = ok("send", "@b", "QUESTION: json?", "--json", "--from", "a")
    [rec] = bus(mailbox)
    assert res.stdout.count("\n") == 1
    assert json.loads(res.stdout) == rec
    assert rec["kind"] == "QUESTION"


def test_unknown_recipient_note_names_the_closest(mailbox: Any) -> None:
    ok("send", "@frontend", "first", "--from", "backend")
    res = ok("send", "@frontnd", "typo", "--from", "backend")
    assert res.stdout.startswith("-> sent to 'frontnd'")
    [note] = res.stderr.splitlines()
    assert note.startswith("kei message: note: ")
    assert "'frontnd'" in note and "'frontend'" in note
    assert [r["to"] for r in bus(mailbox)] == ["frontend", "frontnd"]
    # known names (and broadcasts) get no note
    assert ok("send", "@frontend", "again", "--from", "backend").stderr == ""
    assert ok("send", "@backend", "back", "--from", "frontend").stderr == ""
    assert ok("send", "all", "everyone", "--from", "backend").stderr == ""


def test_registered_session_name_counts_as_known(mailbox: Any) -> None:
    mailbox.store.put_session(
        "s1",
        {"name": "worker", "session_id": "s1", "cwd": "/w", "last_seen": "2026-01-01T00:00:00Z"},
    )
    assert ok("send", "@worker", "hi", "--from", "boss").stderr == ""


def test_send_live_to_all_is_refused_before_sending(mailbox: Any) -> None:
    fails(2, "send", "--live", "hi", "--from", "a")
    assert bus(mailbox) == []


def test_send_live_without_a_pane_is_queued(mailbox: Any) -> None:
    pytest.importorskip("kei_message.live")
    res = kei("send", "--live", "@nobody", "hi", "--from", "a")
    assert res.exit_code == 6, (res.stdout, res.stderr)
    assert res.stdout.startswith("-> sent to 'nobody'")
    assert "kei message: note:" in res.stderr and "Traceback" not in res.stderr
    assert [r["body"] for r in bus(mailbox)] == ["hi"]


# Exits 0, 5 and 6 of `send --live` against real tmux panes: tests/test_live.py.


# ----------------------------------------------------------------------------- reply, show
def test_reply_goes_to_the_sender(mailbox: Any) -> None:
    first = json.loads(ok("send", "@b", "TASK: x", "--from", "a", "--json").stdout)
    res = ok("reply", str(first["id"]), "DONE:", "done", "--from", "b")
    ok("reply", f"#{first['id']}", "--from", "b", input="more\nlines\n")
    _, r1, r2 = bus(mailbox)
    assert (r1["to"], r1["from"], r1["reply_to"], r1["kind"]) == ("a", "b", first["id"], "DONE")
    assert res.stdout == f"-> sent to 'a' (from 'b') #{r1['id']}\n"
    assert (r2["body"], r2["reply_to"]) == ("more\nlines", first["id"])


def test_reply_to_unknown_id_exits_2(mailbox: Any) -> None:
    ok("send", "@b", "x", "--from", "a")
    res = fails(2, "reply", "123", "hi", "--from", "b")
    assert "123" in res.stderr
    fails(2, "reply", "nope", "hi", "--from", "b")
    assert len(bus(mailbox)) == 1


def test_show_prints_one_record_in_full(mailbox: Any) -> None:
    body = "first line\nsecond line\n" + "z" * 5000
    rec = json.loads(ok("send", "@b", "--kind", "TASK", "--json", "--from", "a", input=body).stdout)
    ok("send", "@b", "other", "--from", "a")
    res = ok("show", str(rec["id"]))
    assert body in res.stdout
    assert "other" not in res.stdout
    for text in (str(rec["id"]), "a", "b", "TASK"):
        assert text in res.stdout
    shown = json.loads(ok("show", f"#{rec['id']}", "--json").stdout)
    # as stored, with its delivery state as one key more (#16)
    assert shown.pop("state") == "queued"
    assert shown == rec
    fails(2, "show", "42")


def test_terminal_escapes_in_a_body_are_printed_harmlessly(mailbox: Any) -> None:
    evil = "hi \x1b]0;pwned\x07\x1b[2J\x1b[31mred\u202eevil\r\x9b6n\x00end"
    rec = json.loads(ok("send", "@b", evil, "--from", "a", "--json").stdout)
    assert rec["body"] == evil
    outputs = [
        ok("show", str(rec["id"])).stdout,
        ok("list").stdout,
        ok("tail").stdout,
        ok("inbox", "--peek", "--me", "b").stdout,
        ok("inbox", "--all", "--me", "b").stdout,
        ok("inbox", "pop", "--me", "b").stdout,
    ]
    for text in outputs:
        for bad in ("\x1b", "\x07", "\x9b", "\x00", "\r", "\u202e"):
            assert bad not in text
        assert "\\x1b]0;pwned\\x07" in text
        assert "\\u202e" in text
    # --json keeps the body exactly, and JSON escaping keeps the terminal safe too
    line = ok("list", "--json").stdout
    assert "\x1b" not in line and json.loads(line)["body"] == evil


# ----------------------------------------------------------------------------- inbox
def _three(mailbox: Any) -> None:
    mailbox.send("one", to="me", sender="a")
    mailbox.send("two", to="all", sender="b")
    mailbox.send("not mine", to="other", sender="a")
    mailbox.send("mine, from me", to="all", sender="me")
    mailbox.send("three\nlines", to="me", sender="c", kind="TASK")


def test_inbox_prints_oldest_first_and_marks_read(mailbox: Any) -> None:
    _three(mailbox)
    res = ok("inbox", "--me", "me")
    text = res.stdout
    assert text.index("one") < text.index("two") < text.index("three")
    assert "not mine" not in text and "from me" not in text
    assert "[TASK] three\n" in text and "lines" in text
    assert res.stderr == ""
    assert ok("inbox", "--me", "me").stdout == "no unread messages for 'me'\n"
    assert mailbox.count("me") == 0


def test_inbox_name_argument_is_me(mailbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _three(mailbox)
    monkeypatch.setenv("KEI_MAILBOX_ME", "someone")
    assert ok("inbox", "me", "--count").stdout == "3\n"
    assert ok("inbox", "me", "--me", "me", "--count").stdout == "3\n"
    fails(2, "inbox", "me", "--me", "other")
    fails(2, "inbox", "me", "extra")
    assert ok("inbox", "--count").stdout == "2\n"  # KEI_MAILBOX_ME: the broadcasts


def test_inbox_peek_count_clear(mailbox: Any) -> None:
    _three(mailbox)
    peek = ok("inbox", "--peek", "--me", "me").stdout
    assert "one" in peek and "three" in peek
    assert ok("inbox", "--count", "--me", "me").stdout == "3\n"
    assert ok("inbox", "--clear", "--me", "me").stdout == "3\n"
    assert ok("inbox", "--count", "--me", "me").stdout == "0\n"
    assert ok("inbox", "--clear", "--me", "me").stdout == "0\n"
    fails(2, "inbox", "--peek", "--clear", "--me", "me")
    fails(2, "inbox", "--count", "--clear", "--me", "me")
    fails(2, "inbox", "pop", "--all", "--me", "me")


def test_inbox_all_shows_read_ones_and_marks_nothing(mailbox: Any) -> None:
    _three(mailbox)
    ok("inbox", "--me", "me")
    mailbox.send("four", to="me", sender="a")
    res = ok("inbox", "--all", "--me", "me")
    for word in ("one", "two", "three", "four"):
        assert word in res.stdout
    assert "not mine" not in res.stdout and "from me" not in res.stdout
    assert mailbox.count("me") == 1
    limited = ok("inbox", "--all", "--limit", "2", "--me", "me", "--json").stdout.splitlines()
    assert [json.loads(x)["body"] for x in limited] == ["three\nlines", "four"]
    assert ok("inbox", "--all", "--limit", "0", "--me", "me", "--json").stdout == ""


def test_inbox_pop_takes_only_the_oldest(mailbox: Any) -> None:
    _three(mailbox)
    first = ok("inbox", "pop", "--me", "me", "--json").stdout
    assert json.loads(first)["body"] == "one"
    assert mailbox.count("me") == 2
    assert "two" in ok("inbox", "pop", "me").stdout
    peeked = ok("inbox", "pop", "--peek", "--me", "me", "--json").stdout
    assert json.loads(peeked)["body"] == "three\nlines"
    assert mailbox.count("me") == 1
    ok("inbox", "pop", "--me", "me")
    res = fails(1, "inbox", "pop", "--me", "me")
    assert res.stdout == ""
    fails(1, "inbox", "pop", "--peek", "--me", "me")


def test_inbox_json_round_trips(mailbox: Any) -> None:
    _three(mailbox)
    expect = mailbox.unread("me")
    lines = ok("inbox", "--me", "me", "--json").stdout.splitlines()
    assert [json.loads(x) for x in lines] == expect
    assert ok("inbox", "--me", "me", "--json").stdout == ""


def test_json_lines_are_the_bus_lines(mailbox_dir: Path) -> None:
    ok("send", "@b", 'TASK: a "quoted" body\nwith \u00e9 and \u2603', "--from", "a")
    ok("send", "@b", "second", "--reply-to", "7", "--from", "a")
    on_disk = (mailbox_dir / "messages.jsonl").read_text().splitlines()
    # `list --json`: the bus line byte for byte, with the delivery state as one key more (#16)
    listed = ok("list", "--json").stdout.splitlines()
    assert all(line.endswith(',"state":"queued"}') for line in listed)
    assert [line.removesuffix(',"state":"queued"}') + "}" for line in listed] == on_disk
    assert ok("inbox", "--peek", "--json", "--me", "b").stdout.splitlines() == on_disk
    assert ok("tail", "--json").stdout.splitlines() == on_disk


def test_own_messages_are_not_in_the_inbox(mailbox: Any) -> None:
    ok("send", "@me", "talking to myself", "--from", "me")
    assert ok("inbox", "--me", "me", "--count").stdout == "0\n"


def test_library_warnings_go_to_stderr(mailbox_dir: Path) -> None:
    ok("send", "@b", "before", "--from", "a")
    with open(mailbox_dir / "messages.jsonl", "ab") as f:
        f.write(b'{"id":1,"to":"b","from":"a","body":\n')  # JSON cut short
    ok("send", "@b", "after", "--from", "a")
    res = ok("inbox", "--me", "b")
    assert "before" in res.stdout and "after" in res.stdout
    assert res.stderr.startswith("kei message: warning: ")
    assert "corrupt" in res.stderr


# ----------------------------------------------------------------------------- wait
def test_wait_returns_an_unread_message_and_marks_it(mailbox: Any) -> None:
    mailbox.send("already here", to="me", sender="a")
    res = ok("wait", "--me", "me", "--timeout", "5")
    assert "already here" in res.stdout
    assert mailbox.count("me") == 0


def test_wait_timeout_exits_1(mailbox: Any) -> None:
    start = time.monotonic()
    res = fails(1, "wait", "--me", "me", "--timeout", "0.3")
    assert time.monotonic() - start >= 0.3
    assert res.stdout == ""
    fails(2, "wait", "--me", "me", "--timeout", "soon")


def test_wait_filters_by_sender_and_kind(mailbox: Any) -> None:
    mailbox.send("from a", to="me", sender="a")
    mailbox.send("from b", to="me", sender="b")
    mailbox.send("DONE: b done", to="me", sender="b")
    res = ok("wait", "--me", "me", "--from", "b", "--timeout", "2", "--json")
    assert json.loads(res.stdout)["body"] == "from b"
    res = ok("wait", "--me", "me", "--kind", "done", "--timeout", "2", "--json")
    assert json.loads(res.stdout)["body"] == "DONE: b done"
    assert [r["body"] for r in mailbox.unread("me")] == ["from a"]
    fails(1, "wait", "--me", "me", "--from", "b", "--timeout", "0.1")
    fails(2, "wait", "--me", "me", "--kind", "nope", "--timeout", "0.1")


def test_wait_wakes_when_a_message_arrives(mailbox: Any) -> None:
    def later() -> None:
        time.sleep(0.3)
        mailbox.send("wake up", to="me", sender="a")

    t = threading.Thread(target=later, daemon=True)
    t.start()
    try:
        res = ok("wait", "--me", "me", "--timeout", "20")
    finally:
        t.join(10)
    assert "wake up" in res.stdout
    assert mailbox.count("me") == 0


# ----------------------------------------------------------------------------- list, tail
def test_list_defaults_to_the_last_40_newest_last(mailbox: Any) -> None:
    for i in range(45):
        mailbox.send(f"m{i}", to="all", sender="a")
    res = ok("list", "--json")
    assert [json.loads(x)["body"] for x in res.stdout.splitlines()] == [
        f"m{i}" for i in range(5, 45)
    ]
    text = ok("list", "-n", "3").stdout.splitlines()
    assert len(text) == 3 and text[-1].endswith("m44")
    assert ok("list", "--limit", "0").stdout == ""
    fails(2, "list", "--limit", "-1")


def test_list_filters(mailbox: Any) -> None:
    mailbox.send("a to b", to="b", sender="a")
    mailbox.send("TASK: b to a", to="a", sender="b")
    mailbox.send("a to all", to="all", sender="a")

    def bodies(*args: str) -> list[str]:
        out = ok("list", "--json", *args).stdout.splitlines()
        return [json.loads(x)["body"] for x in out]

    assert bodies("--from", "a") == ["a to b", "a to all"]
    assert bodies("--to", "a") == ["TASK: b to a"]
    assert bodies("--to", "all") == ["a to all"]
    assert bodies("--kind", "task") == ["TASK: b to a"]
    assert bodies("--since", "1h") == ["a to b", "TASK: b to a", "a to all"]
    assert bodies("--from", "a", "--to", "b") == ["a to b"]
    fails(2, "list", "--kind", "nope")
    fails(2, "list", "--since", "last tuesday")


def test_list_since_date_and_old_records(mailbox_dir: Path) -> None:
    # Records in the original kei-message.sh format, from long ago.
    mailbox_dir.mkdir(mode=0o700, exist_ok=True)
    old = [
        {"id": 1577836800, "ts": "2020-01-01T00:00:00Z", "from": "x", "to": "y", "body": "2020"},
        {"id": 1609459200, "ts": "2021-01-01T00:00:00Z", "from": "x", "to": "y", "body": "2021"},
    ]
    with open(mailbox_dir / "messages.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in old)
    os.chmod(mailbox_dir / "messages.jsonl", 0o600)
    ok("send", "@y", "now", "--from", "x")

    def bodies(*args: str) -> list[str]:
        return [json.loads(x)["body"] for x in ok("list", "--json", *args).stdout.splitlines()]

    assert bodies() == ["2020", "2021", "now"]
    assert bodies("--since", "2020-06-01") == ["2021", "now"]
    assert bodies("--since", "2020-12-31T23:00:00Z") == ["2021", "now"]
    assert bodies("--since", "7d") == ["now"]
    text = ok("list").stdout
    assert "2020-01-01" in text or "2019-12-31" in text  # local time


def test_list_text_is_aligned(mailbox: Any) -> None:
    mailbox.send("one", to="frontend", sender="a")
    mailbox.send("two", to="b", sender="backend")
    lines = ok("list").stdout.splitlines()
    assert lines[0].index("one") == lines[1].index("two")
    assert lines[0].index("->") == lines[1].index("->")


def test_tail_prints_the_last_n(mailbox: Any) -> None:
    for i in range(15):
        mailbox.send(f"t{i}", to="all", sender="a")
    res = ok("tail", "--json")
    assert [json.loads(x)["body"] for x in res.stdout.splitlines()] == [
        f"t{i}" for i in range(5, 15)
    ]
    assert len(ok("tail", "-n", "2").stdout.splitlines()) == 2
    assert ok("tail", "-n", "0").stdout == ""


# ----------------------------------------------------------------------------- channels
def test_channels_who_and_names_agree(mailbox: Any) -> None:
    mailbox.send("hi", to="frontend", sender="backend")
    mailbox.send("all", to="all", sender="lead")
    mailbox.store.put_session(
        "s-1",
        {"name": "worker", "session_id": "s-1", "cwd": "/w", "last_seen": "2026-01-02T03:04:05Z"},
    )
    outs = [ok(cmd).stdout for cmd in ("channels", "who", "names")]
    assert outs[0] == outs[1] == outs[2]
    table, _, sessions = outs[0].partition("\n\n")
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["NAME", "LAST"]
    names = [line.split()[0] for line in lines[1:]]
    assert names == ["backend", "frontend", "lead", "worker"]
    # then each live session under its name, with the address that reaches it (#16)
    assert [line.split()[0] for line in sessions.splitlines()] == ["SESSION", "@worker/s-1"]
    header = lines[0]
    front = next(line for line in lines if line.startswith("frontend"))
    assert front[header.index("UNREAD") :].split()[0] == "2"  # hi + the broadcast
    assert front[header.index("SESSIONS") :].split()[0] == "0"
    work = next(line for line in lines if line.startswith("worker"))
    assert work[header.index("SESSIONS") :].split()[0] == "1"
    rows = [json.loads(x) for x in ok("who", "--json").stdout.splitlines()]
    by = {r["name"]: r for r in rows}
    assert by["frontend"]["unread"] == 2
    assert by["worker"]["last_seen"] == "2026-01-02T03:04:05Z"
    assert by["worker"]["sessions"][0]["session_id"] == "s-1"


@pytest.mark.parametrize("keys", [("state",), ("waiter",), ("state", "waiter"), ()])
def test_channels_render_state_and_waiter_when_present(
    mailbox: Any, monkeypatch: pytest.MonkeyPatch, keys: tuple[str, ...]
) -> None:
    # The tmux and wake engineers add these keys to who() rows; the CLI shows
    # whichever the rows have. Here the rows are the real ones, with keys set.
    from kei_message.mailbox import Mailbox

    mailbox.send("hi", to="frontend", sender="backend")
    real_who = presence.who

    def who(mb: Mailbox) -> list[dict[str, Any]]:
        rows = real_who(mb)
        for row in rows:
            row.pop("state", None)
            row.pop("waiter", None)
        if "state" in keys:
            rows[1]["state"] = "idle"
        if "waiter" in keys:
            rows[1]["waiter"] = True
        return rows

    monkeypatch.setattr(presence, "who", who)
    lines = ok("channels").stdout.splitlines()
    header = lines[0]
    assert ("STATE" in header) == ("state" in keys)
    assert ("WAITER" in header) == ("waiter" in keys)
    front, back = lines[2], lines[1]
    assert front.startswith("frontend") and back.startswith("backend")
    if "state" in keys:
        assert front[header.index("STATE") :].split()[0] == "idle"
        assert back[header.index("STATE") :].split()[0] == "-"
    if "waiter" in keys:
        assert front[header.index("WAITER") :].split()[0] == "yes"
        assert back[header.index("WAITER") :].split()[0] == "-"


def test_channels_empty(mailbox: Any) -> None:
    assert "no names" in ok("who").stdout
    assert ok("who", "--json").stdout == ""


# ----------------------------------------------------------------------------- path, app
def test_path_prints_dir_and_bus(mailbox_dir: Path) -> None:
    res = ok("path")
    assert f"mailbox: {mailbox_dir}\n" in res.stdout
    assert f"bus:     {mailbox_dir / 'messages.jsonl'}\n" in res.stdout


def test_url_option_picks_the_store(mailbox_dir: Path) -> None:
    fails(2, "--url", "ftp://nowhere", "send", "@b", "x", "--from", "a")
    ok("--url", "file:", "send", "@b", "x", "--from", "a")
    assert (mailbox_dir / "messages.jsonl").exists()


def test_no_arguments_prints_help() -> None:
    res = ok()
    assert "Usage: kei message" in res.stdout
    for cmd in ("send", "inbox", "channels", "path"):
        assert cmd in res.stdout


@pytest.mark.parametrize(
    "args",
    [("bogus",), ("send", "--bogus", "x"), ("inbox", "--limit", "many"), ("show",), ("reply",)],
)
def test_usage_errors_exit_2_in_one_line(args: tuple[str, ...]) -> None:
    fails(2, *args)


def test_unsafe_mailbox_exits_3(mailbox_dir: Path) -> None:
    mailbox_dir.mkdir(mode=0o700)
    os.chmod(mailbox_dir, 0o777)
    try:
        res = fails(3, "send", "@b", "x", "--from", "a")
        assert "chmod 700" in res.stderr
        fails(3, "inbox", "--me", "b")
    finally:
        os.chmod(mailbox_dir, 0o700)


def test_lock_timeout_exits_3(mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import portalocker

    ok("send", "@b", "first", "--from", "a")
    monkeypatch.setenv("KEI_MAILBOX_LOCK_TIMEOUT", "0.2")
    with open(mailbox_dir / "messages.lock", "a") as held:
        portalocker.lock(held, portalocker.LockFlags.EXCLUSIVE)
        res = fails(3, "send", "@b", "second", "--from", "a")
    assert "locked" in res.stderr
    assert [r["body"] for r in get_mailbox_records()] == ["first"]


def get_mailbox_records() -> list[dict[str, Any]]:
    from kei_message.mailbox import Mailbox

    return Mailbox().recent(100)


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEI_MAILBOX_DEBUG", "1")
    res = kei("send", "--to", "../x", "hi", "--from", "a")
    assert res.exit_code == 2
    assert "Traceback" in res.stderr
    assert res.stderr.splitlines()[-1].startswith("kei message: error: invalid name")


def test_no_color_and_colour_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from kei_message import render
    from kei_message.cli.app import use_color

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color() is True
    monkeypatch.setenv("NO_COLOR", "")
    assert use_color() is False
    rec = {"id": 1, "ts": "2026-01-01T00:00:00Z", "from": "a", "to": "b", "body": "x\x1b[0m"}
    coloured = "\n".join(render.record_lines([{**rec, "kind": "TASK"}], color=True))
    assert "\x1b[33m[TASK]\x1b[0m" in coloured and "x\\x1b[0m" in coloured
    assert "\x1b" not in "\n".join(render.record_lines([rec], color=False))
