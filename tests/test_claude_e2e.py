"""End to end with the real Claude Code CLI (``claude -p``) against the fake API (SPEC §7).

``kei message install`` runs in a temporary HOME; the project dir is named
``proj``, so that is the session's identity. What the hooks inject shows up
in the request bodies the fake API records. Budget: about 30 s.

The wake hook stays installed (the default): under ``claude -p`` the waiter
returns at once (``agents.claude.hooks.print_mode``), since ``claude -p`` would otherwise
wait for it before exiting.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import claude_env

from kei_message.mailbox import Mailbox

pytestmark = [pytest.mark.claude, pytest.mark.slow]

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    path.mkdir()
    return path


def install(env: dict[str, str], project: Path, *args: str) -> None:
    proc = subprocess.run(
        [str(BIN / "kei"), "message", "install", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def claude_p(
    claude_bin: str, env: dict[str, str], project: Path, prompt: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [claude_bin, *extra, "-p", prompt],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def carrying(api: Any, text: str, start: int = 0) -> list[int]:
    """Indexes of the recorded requests (from ``start``) whose body holds ``text``."""
    return [i for i, body in enumerate(api.texts()) if i >= start and text in body]


def test_unread_reach_claude_once(
    claude_bin: str, fake_api: Any, tmp_path: Path, project: Path, mailbox_dir: Path
) -> None:
    env = claude_env(tmp_path / "home", fake_api.url, project)
    install(env, project)
    mb = Mailbox()
    mb.send("zebra-7431: the API moved to /v2", to="proj", sender="backend")
    mb.send("for someone else: kiwi-1182", to="frontend", sender="backend")

    claude_p(claude_bin, env, project, "hello")
    hits = carrying(fake_api, "zebra-7431")
    assert hits, "no request carried the message"
    assert carrying(fake_api, "kiwi-1182") == []
    assert mb.count("proj") == 0
    sessions = [s for s in mb.store.sessions() if s["name"] == "proj"]
    assert sessions and sessions[0]["cwd"] == str(project)
    assert isinstance(sessions[0]["pid"], int)  # found Claude Code above the hook's shell

    before = len(fake_api.requests)
    claude_p(claude_bin, env, project, "anything new?")
    assert len(fake_api.requests) > before
    assert carrying(fake_api, "zebra-7431", start=before) == []
    assert not (mailbox_dir / "hook.log").exists()


def test_stop_delivery_keeps_claude_going(
    claude_bin: str, fake_api: Any, tmp_path: Path, project: Path
) -> None:
    env = claude_env(tmp_path / "home", fake_api.url, project)
    install(env, project, "--stop-delivery")
    mb = Mailbox()

    # Send while the turn runs: once the first real turn request is in, and
    # before its (delayed) reply lets the turn end.
    fake_api.delay = 1.0
    sent = threading.Event()

    def send_mid_turn() -> None:
        if fake_api.wait_for(lambda: any(b.get("tools") for b in fake_api.requests), 60):
            Mailbox().send("heron-5520: also update the changelog", to="proj", sender="backend")
            sent.set()

    sender = threading.Thread(target=send_mid_turn, daemon=True)
    sender.start()
    try:
        claude_p(claude_bin, env, project, "do the task")
    finally:
        sender.join(timeout=70)
    assert sent.is_set()
    hits = carrying(fake_api, "heron-5520")
    assert hits, "the Stop hook did not make Claude go on with the message"
    first_turn = next(i for i, b in enumerate(fake_api.requests) if b.get("tools"))
    assert min(hits) > first_turn  # a further request, after the turn that was running
    # what the model reads next holds the message once: the bodies go in the Stop
    # hook's additionalContext, since 2.1.332 hands the model its reason twice (#12)
    going_on = fake_api.requests[min(hits)]
    assert json.dumps(going_on, ensure_ascii=False).count("heron-5520") == 1
    assert mb.count("proj") == 0
    # it went on once, and stopped: no loop
    assert len([b for b in fake_api.requests if b.get("tools")]) <= 3
    # and the next session's prompt does not bring it again (the cursor moved once)
    before = len(fake_api.requests)
    claude_p(claude_bin, env, project, "anything else?")
    assert len(fake_api.requests) > before
    assert carrying(fake_api, "heron-5520", start=before) == []


def test_plugin_delivers_the_same(
    claude_bin: str, fake_api: Any, tmp_path: Path, project: Path
) -> None:
    env = claude_env(tmp_path / "home", fake_api.url, project)
    env["KEI_MESSAGE_HOOK"] = str(BIN / "kei-message-hook")
    Mailbox().send("plover-2291 via the plugin", to="proj", sender="backend")
    claude_p(claude_bin, env, project, "hello", "--plugin-dir", str(REPO))
    assert carrying(fake_api, "plover-2291")
    before = len(fake_api.requests)
    claude_p(claude_bin, env, project, "again", "--plugin-dir", str(REPO))
    assert carrying(fake_api, "plover-2291", start=before) == []


def test_msg_skill_is_installed_and_may_send(
    claude_bin: str, fake_api: Any, tmp_path: Path, project: Path
) -> None:
    env = claude_env(tmp_path / "home", fake_api.url, project)
    install(env, project)
    body = 'hi "there" $HOME `x`'
    # the model does what the skill says: the text on stdin through a quoted here-document
    fake_api.reply_tool(f"kei message send --to backend <<'KEI_MSG'\n{body}\nKEI_MSG", "send")
    fake_api.reply_text("sent")
    claude_p(claude_bin, env, project, f"/msg @backend {body}")
    texts = fake_api.texts()
    assert any("# /msg: the kei-message mailbox" in t for t in texts)  # the skill was loaded
    assert any("Arguments: `@backend hi" in t for t in texts)
    assert not any("kei-message:managed" in t for t in texts)  # the marker stays in the file
    # allowed-tools let the command run without a permission prompt, as this session
    (rec,) = Mailbox().recent(5, to="backend")
    assert (rec["from"], rec["body"]) == ("proj", body)
