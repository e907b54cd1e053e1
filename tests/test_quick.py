"""The hook's nothing-unread check (quick.py) never says "nothing" when there is something.

Budget: about 10 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from kei_message.admin import gc
from kei_message.agents.claude import quick
from kei_message.mailbox import Mailbox
from kei_message.stores import layout
from kei_message.stores.jsonl import JsonlStore

PEOPLE = ["alice", "bob", "carol", "dave"]


@pytest.fixture
def mb(mailbox_dir: Path) -> Mailbox:
    return Mailbox(JsonlStore())


def test_agrees_with_the_mailbox(mb: Mailbox, mailbox_dir: Path) -> None:
    rng = random.Random(66)
    root = str(mailbox_dir)
    sure = 0
    for i in range(300):
        action = rng.random()
        if action < 0.5:
            mb.send(
                f"m{i} {rng.choice(PEOPLE)}",
                to=rng.choice([*PEOPLE, "all"]),
                sender=rng.choice(PEOPLE),
            )
        elif action < 0.8:
            mb.read(rng.choice(PEOPLE))
        elif action < 0.9:
            with contextlib.suppress(LookupError):
                mb.pop(rng.choice(PEOPLE))
        else:
            gc.collect(Mailbox(JsonlStore()), 0)
        for name in PEOPLE:
            if quick.nothing_unread(root, name):
                sure += 1
                assert mb.count(name) == 0, (i, name)
    assert sure > 50  # it does answer, often


def test_not_sure_without_a_cursor(mb: Mailbox, mailbox_dir: Path) -> None:
    mb.send("x", to="carol", sender="alice")
    assert quick.nothing_unread(str(mailbox_dir), "bob") is False
    mb.read("bob")
    assert quick.nothing_unread(str(mailbox_dir), "bob") is True


def test_a_message_for_the_reader_or_all_is_never_nothing(mb: Mailbox, mailbox_dir: Path) -> None:
    mb.read("bob")
    mb.send("x", to="carol", sender="alice")
    assert quick.nothing_unread(str(mailbox_dir), "bob") is True
    mb.send("x", to="all", sender="alice")
    assert quick.nothing_unread(str(mailbox_dir), "bob") is False
    mb.read("bob")
    mb.send("x", to="bob", sender="alice")
    assert quick.nothing_unread(str(mailbox_dir), "bob") is False


def test_a_partial_last_line_is_nobodys_yet(mb: Mailbox, mailbox_dir: Path) -> None:
    mb.read("bob")
    with open(mailbox_dir / "messages.jsonl", "ab") as fh:
        fh.write(b'{"id":1,"from":"alice","to":"bob","bo')
    assert quick.nothing_unread(str(mailbox_dir), "bob") is True
    assert mb.count("bob") == 0


def test_too_much_to_look_at_goes_the_full_way(
    mb: Mailbox, mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mb.read("bob")
    for i in range(20):
        mb.send(f"m{i}", to="carol", sender="alice")
    monkeypatch.setattr(quick, "SCAN_LIMIT", 100)
    assert quick.nothing_unread(str(mailbox_dir), "bob") is False


def test_unsafe_dir_and_other_stores_go_the_full_way(
    mb: Mailbox, mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mb.read("bob")
    root = str(mailbox_dir)
    assert quick.nothing_unread(root, "bob") is True
    os.chmod(root, 0o770)
    try:
        assert quick.nothing_unread(root, "bob") is False
    finally:
        os.chmod(root, 0o700)
    monkeypatch.setenv("KEI_MAILBOX_URL", "redis://127.0.0.1:1/0")
    assert quick.nothing_unread(root, "bob") is False


def test_garbage_cursor_goes_the_full_way(mb: Mailbox, mailbox_dir: Path) -> None:
    mb.read("bob")
    (mailbox_dir / "cursors" / "bob").write_text("nonsense")
    assert quick.nothing_unread(str(mailbox_dir), "bob") is False


def test_register_writes_what_put_session_writes(mailbox_dir: Path) -> None:
    info = {
        "name": "bob",
        "session_id": "abc-123",
        "cwd": "/w/bob",
        "tmux": None,
        "tmux_pane": None,
        "last_seen": "2026-11-21T10:00:00.000Z",
        "transcript_path": None,
        "pid": 42,
    }
    store = JsonlStore()
    store.put_session("abc-123", info)
    orig = (mailbox_dir / "sessions" / "abc-123.json").read_bytes()
    quick.register(str(mailbox_dir), dict(info, session_id="abc-123"))
    assert json.loads((mailbox_dir / "sessions" / "abc-123.json").read_bytes()) == json.loads(orig)
    quick.register(str(mailbox_dir), dict(info, session_id="../../etc/x"))
    assert sorted(s["session_id"] for s in store.sessions()) == ["../../etc/x", "abc-123"]
    assert {p.name for p in (mailbox_dir / "sessions").iterdir()} == {
        "abc-123.json",
        layout.session_file("../../etc/x"),
    }


HOOK = """
import sys
from kei_message.agents import hooks
code = hooks.run(["user-prompt-submit"])
heavy = ("orjson", "portalocker", "typer", "kei_message.mailbox")
heavy = sorted(m for m in heavy if m in sys.modules)
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
sys.exit(code)
"""


def test_hook_with_nothing_unread_imports_nothing_heavy(mb: Mailbox, mailbox_dir: Path) -> None:
    mb.send("old", to="bob", sender="alice")
    mb.read("bob")
    mb.send("for someone else", to="carol", sender="alice")
    payload = json.dumps({"session_id": "s-1", "cwd": "/work/bob", "prompt": "hi"})
    env = {k: v for k, v in os.environ.items() if k != "KEI_MAILBOX_ME"}
    proc = subprocess.run(
        [sys.executable, "-c", HOOK],
        input=payload,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert "HEAVY=\n" in proc.stderr, proc.stderr
    sessions = JsonlStore().sessions()
    assert [(s["name"], s["session_id"]) for s in sessions] == [("bob", "s-1")]
    # and with a message waiting, the full path delivers it
    mb.send("for bob", to="bob", sender="alice")
    proc = subprocess.run(
        [sys.executable, "-c", HOOK],
        input=payload,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = json.loads(proc.stdout)
    assert "for bob" in out["hookSpecificOutput"]["additionalContext"]
    assert mb.count("bob") == 0
