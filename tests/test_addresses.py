"""Addresses (SPEC §11, #16): ``@NAME/SESSION`` reaches that session only, a shared name
is never silent, and sessions whose process is gone leave ``who`` by themselves.

Library and CLI, both stores; the real two-session TUI test is in
tests/test_addresses_e2e.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from reliability import BIN

from kei_message.mailbox import ANY, Mailbox

A = "a1b2c3d4-0000-4000-8000-00000000000a"
B = "a1b2ffff-0000-4000-8000-00000000000b"


def register(mb: Mailbox, sid: str, name: str = "front", pid: int | None = None) -> None:
    mb.store.put_session(
        sid,
        {
            "name": name,
            "session_id": sid,
            "pid": os.getpid() if pid is None else pid,
            "last_seen": "2026-01-01T00:00:00.000Z",
        },
    )


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def kei(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kei-message"), *args], capture_output=True, text=True, timeout=60, **kw
    )


def test_a_session_address_reaches_that_session_only(mailbox: Mailbox) -> None:
    mb = mailbox
    register(mb, A)
    register(mb, B)
    to_a = mb.send("for A only", to="front", sender="lead", to_session=A)
    shared = mb.send("for whoever reads first", to="front", sender="lead")

    # B (and a reader in no session) reads: the shared one, never A's; A's is held
    got_b = mb.read("front", session=B)
    assert [r["id"] for r in got_b] == [shared["id"]]
    assert mb.read("front") == []  # `inbox` outside any session
    assert mb.read("front", session=B) == []
    assert [r["id"] for r in mb.unread("front")] == [to_a["id"]]  # counts still see it
    assert mb.unread("front", session=B) == []

    # a later message to the name goes past the held one to B
    later = mb.send("later, shared", to="front", sender="lead")
    assert [r["id"] for r in mb.read("front", session=B)] == [later["id"]]

    # A gets its own (and only that), once
    with mb.consuming("front", how="hook", session=A) as batch:
        assert [m.record["id"] for m in batch.messages] == [to_a["id"]]
        batch.deliver()
    assert mb.read("front", session=A) == []
    assert mb.unread("front", session=ANY) == []
    row = mb.status(to_a["id"])["readers"][0]
    assert row["delivered"]["session"] == A and row["delivered"]["how"] == "hook"


def test_clear_takes_held_mail_too(mailbox: Mailbox) -> None:
    register(mailbox, A)
    mailbox.send("for A", to="front", sender="lead", to_session=A)
    assert mailbox.clear("front") == 1
    assert mailbox.unread("front") == []


def test_resolve_session_prefixes(mailbox: Mailbox) -> None:
    import pytest

    from kei_message.errors import UsageError

    register(mailbox, A)
    register(mailbox, B)
    assert mailbox.resolve_session("front", "a1b2c3") == A
    assert mailbox.resolve_session("front", A) == A
    for bad in ("a1b", "a1b2", "zzzz", "a1b2/x"):
        with pytest.raises(UsageError):
            mailbox.resolve_session("front", bad)  # short, ambiguous, unknown, not an id


def test_dead_sessions_leave_by_themselves(mailbox: Mailbox) -> None:
    register(mailbox, A)
    register(mailbox, B, pid=dead_pid())
    assert [s["session_id"] for s in mailbox.sessions_of("front")] == [A]
    # pruned on read: the registration itself is gone
    assert [s["session_id"] for s in mailbox.store.sessions()] == [A]


def test_cli_session_address_and_the_shared_name_note(
    mailbox_dir: Path, store_url: str | None
) -> None:
    mb = Mailbox()
    register(mb, A)
    register(mb, B)
    register(mb, "c0ffee00-dead", pid=dead_pid())

    res = kei("send", "@front/a1b2c3", "--from", "lead", "--json", "hello A")
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout)
    assert rec["to"] == "front" and rec["to_session"] == A
    assert "share" not in res.stderr

    plain = kei("send", "@front", "--from", "lead", "hello whoever")
    assert plain.returncode == 0, plain.stderr
    note = plain.stderr.strip().splitlines()
    assert len(note) == 1 and "2 live sessions share 'front'" in note[0], note
    assert "a1b2c3d4" in note[0] and "a1b2ffff" in note[0] and "@front/a1b2" in note[0]
    assert "c0ffee00" not in note[0]  # the dead one is not counted

    for bad, why in (
        ("@front/a1b2", "fits 2 sessions"),
        ("@front/beef", "no live session"),
        ("@front/a1", "at least 4"),
        ("@all/a1b2c3", "'all' has no sessions"),
    ):
        got = kei("send", bad, "--from", "lead", "x")
        assert got.returncode == 2 and why in got.stderr and "Traceback" not in got.stderr, bad

    # inbox inside session B (the id Claude Code puts in its tools' environment)
    env_b = {**os.environ, "CLAUDE_CODE_SESSION_ID": B}
    got_b = kei("inbox", "--me", "front", "--json", env=env_b)
    assert [json.loads(x)["body"] for x in got_b.stdout.splitlines()] == ["hello whoever"]
    env_a = {**os.environ, "CLAUDE_CODE_SESSION_ID": A}
    got_a = kei("inbox", "--me", "front", "--json", env=env_a)
    assert [json.loads(x)["body"] for x in got_a.stdout.splitlines()] == ["hello A"]

    listed = kei("list").stdout
    assert "front/a1b2c3d4" in listed

    who = kei("who")
    assert who.returncode == 0, who.stderr
    assert "@front/a1b2c3d4" in who.stdout and "@front/a1b2ffff" in who.stdout
    assert "c0ffee00" not in who.stdout
    rows = [json.loads(x) for x in kei("who", "--json").stdout.splitlines()]
    front = next(r for r in rows if r["name"] == "front")
    by_prefix = {s["prefix"]: s for s in front["sessions"]}
    assert set(by_prefix) == {"a1b2c3d4", "a1b2ffff"}
    assert by_prefix["a1b2c3d4"]["last_read"] is not None  # its inbox left a receipt
