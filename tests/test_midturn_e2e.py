"""Mid-turn delivery with the real Claude Code CLI (``claude -p``): the PostToolBatch hook (#14).

The fake API plays a turn of two Bash tool rounds and a final answer. While
it "thinks" about round 1 (before it answers request 1), a message is sent
to the session. The PostToolBatch hook after round 1 puts it into the next
request of the same turn, once; the next prompt does not bring it again.
Budget: about 15 s per version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import claude_env
from test_claude_e2e import claude_p, install

from kei_message.mailbox import Mailbox

pytestmark = [pytest.mark.claude, pytest.mark.slow]

MARK = "otter-3391"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    path.mkdir()
    return path


def turn_requests(api: Any) -> list[dict[str, Any]]:
    """The requests of real turns (side requests for titles and such carry no tools)."""
    return [b for b in list(api.requests) if b.get("tools")]


def last_user_copies(body: dict[str, Any], text: str) -> int:
    """How many times ``text`` is in the last user message of ``body`` (what is new)."""
    msgs = body.get("messages") or []
    return json.dumps(msgs[-1], ensure_ascii=False).count(text) if msgs else 0


def play_two_rounds(api: Any, on_first: Any) -> None:
    api.reply_tool("echo round-one", "first round")
    api.reply_tool("echo round-two", "second round")
    api.reply_text("all done")
    state = {"done": False}

    def hook(n: int, body: dict[str, Any]) -> None:
        if body.get("tools") and not state["done"]:
            state["done"] = True
            on_first()

    api.on_request = hook


def test_mail_reaches_a_busy_turn_between_tool_rounds(
    claude_bin: str, fake_api: Any, tmp_path: Path, project: Path, mailbox_dir: Path
) -> None:
    env = claude_env(tmp_path / "home", fake_api.url, project)
    install(env, project)
    settings = json.loads((tmp_path / "home" / ".claude" / "settings.json").read_text())
    assert "PostToolBatch" in settings["hooks"]
    mb = Mailbox()
    sent: list[dict[str, Any]] = []
    play_two_rounds(
        fake_api,
        lambda: sent.append(
            Mailbox().send(f"{MARK}: also bump the version", to="proj", sender="lead")
        ),
    )
    proc = claude_p(claude_bin, env, project, "do the task", "--allowedTools", "Bash")
    assert "all done" in proc.stdout
    turn = turn_requests(fake_api)
    # request 1 (the prompt), 2 (after round one), 3 (after round two: final answer)
    assert len(turn) == 3, [json.dumps(b.get("messages", [])[-1:])[:300] for b in turn]
    assert MARK not in json.dumps(turn[0])
    # after round one, in the same turn, before the final answer: once
    assert last_user_copies(turn[1], MARK) == 1, json.dumps(turn[1]["messages"][-1])[:2000]
    assert json.dumps(turn[1], ensure_ascii=False).count(MARK) == 1
    assert "PostToolBatch" in json.dumps(turn[1]) or "kei mailbox" in json.dumps(turn[1])
    # round two's request has it only as history, not injected again
    assert last_user_copies(turn[2], MARK) == 0
    assert mb.count("proj") == 0
    # its receipt says how it went in: between tool rounds (#16's receipts)
    (reader,) = mb.status(sent[0]["id"])["readers"]
    assert reader["delivered"]["how"] == "midturn", reader
    # the next prompt does not bring it again
    fake_api.on_request = None
    before = len(fake_api.requests)
    claude_p(claude_bin, env, project, "anything new?")
    assert len(fake_api.requests) > before
    assert not [b for b in fake_api.requests[before:] if MARK in json.dumps(b)]
    assert not (mailbox_dir / "hook.log").exists()


def test_no_midturn_leaves_it_for_the_next_prompt(
    claude_bin: str, fake_api: Any, tmp_path: Path, project: Path
) -> None:
    env = claude_env(tmp_path / "home", fake_api.url, project)
    install(env, project, "--no-midturn")
    settings = json.loads((tmp_path / "home" / ".claude" / "settings.json").read_text())
    assert "PostToolBatch" not in settings["hooks"]
    play_two_rounds(
        fake_api, lambda: Mailbox().send(f"{MARK}: later please", to="proj", sender="lead")
    )
    claude_p(claude_bin, env, project, "do the task", "--allowedTools", "Bash")
    assert not [b for b in turn_requests(fake_api) if MARK in json.dumps(b)]
    assert Mailbox().count("proj") == 1
    fake_api.on_request = None
    before = len(fake_api.requests)
    claude_p(claude_bin, env, project, "anything new?")
    assert [b for b in fake_api.requests[before:] if MARK in json.dumps(b)]
