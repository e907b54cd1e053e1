"""End to end with the real Gemini CLI (``gemini -p``) against a fake Gemini API (issue 18).

``kei message install --agent gemini`` runs in a temporary HOME; the project
dir is named ``proj``, so that is the session's identity. Gemini CLI first
asks a router model about the prompt, then runs the turn: ``fake.turns()``
keeps the turn requests (those that offer tools). Every process a test
starts is ended by pid (``procs``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from agentcli import ProcGuard, gemini_env

from kei_message.mailbox import Mailbox

pytestmark = [pytest.mark.slow]

BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    path.mkdir()
    return path


def kei(env: dict[str, str], project: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(BIN / "kei"), "message", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def gemini_p(
    procs: ProcGuard, gemini_bin: str, env: dict[str, str], project: Path, prompt: str
) -> subprocess.CompletedProcess[str]:
    proc = procs.run([gemini_bin, "-p", prompt], env=env, cwd=project, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def turns_carrying(api: Any, text: str, start: int = 0) -> list[int]:
    turns = api.turns()
    return [i for i, body in enumerate(turns) if i >= start and text in json.dumps(body)]


def test_unread_reach_gemini_once(
    gemini_bin: str,
    fake_gemini: Any,
    procs: ProcGuard,
    tmp_path: Path,
    project: Path,
    mailbox_dir: Path,
) -> None:
    home = tmp_path / "home"
    env = gemini_env(home, fake_gemini.url)
    settings = home / ".gemini" / "settings.json"
    original = settings.read_bytes()
    kei(env, project, "install", "--agent", "gemini")
    hooks = json.loads(settings.read_text())["hooks"]
    assert set(hooks) == {"SessionStart", "BeforeAgent", "AfterAgent"}

    mb = Mailbox()
    mb.send("zebra-7431: the API moved to /v2", to="proj", sender="backend")
    mb.send("for someone else: kiwi-1182", to="frontend", sender="backend")
    gemini_p(procs, gemini_bin, env, project, "hello")
    assert turns_carrying(fake_gemini, "zebra-7431") == [0]
    text = json.dumps(fake_gemini.turns()[0])
    assert "<hook_context>kei mailbox: 1 new message for proj" in text
    assert "kiwi-1182" not in "".join(fake_gemini.texts())
    assert mb.count("proj") == 0
    (session,) = [s for s in mb.store.sessions() if s["name"] == "proj"]
    assert session["agent"] == "gemini" and isinstance(session["pid"], int)

    before = len(fake_gemini.turns())
    gemini_p(procs, gemini_bin, env, project, "anything new?")
    assert len(fake_gemini.turns()) > before
    assert turns_carrying(fake_gemini, "zebra-7431", start=before) == []
    assert not (mailbox_dir / "hook.log").exists()
    assert procs.settle() == []

    # uninstall puts the very bytes back
    kei(env, project, "uninstall", "--agent", "gemini")
    assert settings.read_bytes() == original


def test_after_agent_keeps_gemini_going_once(
    gemini_bin: str, fake_gemini: Any, procs: ProcGuard, tmp_path: Path, project: Path
) -> None:
    env = gemini_env(tmp_path / "home", fake_gemini.url)
    kei(env, project, "install", "--agent", "gemini")
    fake_gemini.delay = 1.0
    sent = threading.Event()

    def send_mid_turn() -> None:
        if fake_gemini.wait_for(lambda: len(fake_gemini.turns()) >= 1, 30):
            Mailbox().send("heron-5520: also update the changelog", to="proj", sender="backend")
            sent.set()

    sender = threading.Thread(target=send_mid_turn, daemon=True)
    sender.start()
    try:
        gemini_p(procs, gemini_bin, env, project, "do the task")
    finally:
        sender.join(timeout=40)
    assert sent.is_set()
    hits = turns_carrying(fake_gemini, "heron-5520")
    assert hits and min(hits) == 1, hits  # AfterAgent blocked: a further turn carried it
    assert len(fake_gemini.turns()) == 2  # once: stop_hook_active the second time
    assert Mailbox().count("proj") == 0
    assert procs.settle() == []


@pytest.mark.tmux
def test_idle_gemini_in_tmux_gets_mail_live(
    gemini_bin: str, fake_gemini: Any, procs: ProcGuard, tmp_path: Path, project: Path
) -> None:
    """An idle Gemini TUI registered by its SessionStart hook is reached with ``send --live``."""
    from tmuxharness import Server, wait_until

    from kei_message.live import screen

    env = procs.env(gemini_env(tmp_path / "home", fake_gemini.url))
    env["TERM"] = "xterm-256color"
    kei(env, project, "install", "--agent", "gemini")
    server = Server()
    server.env = lambda: {**env, "TMUX_TMPDIR": server.tmpdir}  # type: ignore[method-assign]
    try:
        pane, _pid = server.spawn([gemini_bin], str(project), width=100, height=30)

        def state() -> str:
            return screen.read(server.tmux("capture-pane", "-p", "-t", pane)).state

        shown = lambda: server.tmux("capture-pane", "-p", "-t", pane)  # noqa: E731
        assert wait_until(lambda: state() == "idle", 20), shown()
        mb = Mailbox()
        assert wait_until(lambda: [s for s in mb.store.sessions() if s.get("tmux_pane")], 10)
        (session,) = mb.store.sessions()
        assert (session["agent"], session["tmux_pane"]) == ("gemini", pane)

        live_env = {**env, "TMUX_TMPDIR": server.tmpdir}
        sent = subprocess.run(
            [str(BIN / "kei"), "message", "send", "--live", "--from", "lead", "@proj",
             "osprey-3321: look at CI"],
            env=live_env, capture_output=True, text=True, timeout=60, cwd=project,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert fake_gemini.wait_for(lambda: turns_carrying(fake_gemini, "osprey-3321"), 20)
        assert wait_until(lambda: state() == "idle", 20), state()
        # typed once as the prompt; the BeforeAgent hook found nothing more to add
        (hit,) = turns_carrying(fake_gemini, "osprey-3321")
        turn = json.dumps(fake_gemini.turns()[hit])
        assert turn.count("osprey-3321") == 1, turn[turn.find("<hook_context>") :][:600]
        assert mb.count("proj") == 0
    finally:
        server.close()
    assert procs.settle(5) == []
