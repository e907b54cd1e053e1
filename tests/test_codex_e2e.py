"""End to end with the real Codex CLI (``codex exec``) against a fake Responses API (issue 18).

``kei message install --agent codex`` runs in a temporary HOME/CODEX_HOME;
the project dir is named ``proj``, so that is the session's identity. What
the hooks inject shows up in the request bodies the fake records. Every
process a test starts is ended by pid (``procs``), and the tests check that
``codex exec`` leaves nothing running behind it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from agentcli import ProcGuard, codex_env

from kei_message.mailbox import Mailbox
from kei_message.presence import who

pytestmark = [pytest.mark.slow]

BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    path.mkdir()
    return path


def install(env: dict[str, str], project: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(BIN / "kei"), "message", "install", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def codex_exec(
    procs: ProcGuard, codex_bin: str, env: dict[str, str], project: Path, prompt: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    proc = procs.run(
        [
            codex_bin,
            "exec",
            "--dangerously-bypass-hook-trust",
            "--skip-git-repo-check",
            *extra,
            prompt,
        ],
        env=env,
        cwd=project,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def carrying(api: Any, text: str, start: int = 0) -> list[int]:
    return [i for i, body in enumerate(api.texts()) if i >= start and text in body]


def test_unread_reach_codex_once(
    codex_bin: str,
    fake_openai: Any,
    procs: ProcGuard,
    tmp_path: Path,
    project: Path,
    mailbox_dir: Path,
) -> None:
    env = codex_env(tmp_path / "home", fake_openai.url)
    said = install(env, project, "--agent", "codex")
    assert "Hooks need review" in said and "--dangerously-bypass-hook-trust" in said
    hooks = json.loads((tmp_path / "home" / ".codex" / "hooks.json").read_text())
    assert set(hooks["hooks"]) == {"SessionStart", "UserPromptSubmit", "Stop"}

    mb = Mailbox()
    mb.send("zebra-7431: the API moved to /v2", to="proj", sender="backend")
    mb.send("for someone else: kiwi-1182", to="frontend", sender="backend")
    codex_exec(procs, codex_bin, env, project, "hello")
    assert carrying(fake_openai, "zebra-7431") == [0]  # one request, it carried the message
    first = fake_openai.requests[0]["input"]
    developer = [m for m in first if m.get("role") == "developer" and "zebra-7431" in str(m)]
    assert developer, "the message should reach Codex as developer context"
    assert "kei mailbox: 1 new message for proj" in json.dumps(developer)
    assert carrying(fake_openai, "kiwi-1182") == []
    assert mb.count("proj") == 0
    (session,) = [s for s in mb.store.sessions() if s["name"] == "proj"]
    assert session["agent"] == "codex" and session["cwd"] == str(project)
    assert isinstance(session["pid"], int)  # found Codex above the hook's shell

    before = len(fake_openai.requests)
    codex_exec(procs, codex_bin, env, project, "anything new?")
    assert len(fake_openai.requests) > before
    assert carrying(fake_openai, "zebra-7431", start=before) == []
    assert not (mailbox_dir / "hook.log").exists()
    assert procs.settle() == []  # no waiter under `codex exec`, no daemon


def test_stop_keeps_codex_going_once(
    codex_bin: str, fake_openai: Any, procs: ProcGuard, tmp_path: Path, project: Path
) -> None:
    env = codex_env(tmp_path / "home", fake_openai.url)
    install(env, project, "--agent", "codex")
    fake_openai.delay = 1.0
    sent = threading.Event()

    def send_mid_turn() -> None:
        if fake_openai.wait_for(lambda: len(fake_openai.requests) >= 1, 30):
            Mailbox().send("heron-5520: also update the changelog", to="proj", sender="backend")
            sent.set()

    sender = threading.Thread(target=send_mid_turn, daemon=True)
    sender.start()
    try:
        codex_exec(procs, codex_bin, env, project, "do the task")
    finally:
        sender.join(timeout=40)
    assert sent.is_set()
    # the first request was already out when the message came: the Stop hook blocked once,
    # Codex went on with one more request, and stopped (stop_hook_active the second time)
    assert carrying(fake_openai, "heron-5520") == [1]
    assert len(fake_openai.requests) == 2
    assert Mailbox().count("proj") == 0
    assert procs.settle() == []


@pytest.mark.tmux
def test_idle_interactive_codex_is_woken(
    codex_bin: str, fake_openai: Any, procs: ProcGuard, tmp_path: Path, project: Path
) -> None:
    """The waiter the hooks start queues the message into the idle TUI with ``codex queue``."""
    from tmuxharness import Server, wait_until

    from kei_message.agents import waiters as wake

    env = procs.env(codex_env(tmp_path / "home", fake_openai.url))
    env["TERM"] = "xterm-256color"
    install(env, project, "--agent", "codex")
    server = Server()
    server.env = lambda: {**env, "TMUX_TMPDIR": server.tmpdir}  # type: ignore[method-assign]
    try:
        pane, _pid = server.spawn(
            [codex_bin, "--dangerously-bypass-hook-trust"], str(project), width=120, height=35
        )
        screen = lambda: server.tmux("capture-pane", "-p", "-t", pane)  # noqa: E731
        assert wait_until(lambda: "Ask Codex" in screen(), 20), screen()
        # Codex starts its thread (and runs SessionStart) with the first prompt
        server.tmux("send-keys", "-t", pane, "-l", "hello")
        assert wait_until(lambda: "› hello" in screen(), 10), screen()
        server.tmux("send-keys", "-t", pane, "Enter")
        assert fake_openai.wait_for(lambda: len(fake_openai.requests) >= 1, 20), screen()
        assert wait_until(
            lambda: [w for w in wake.waiters() if w["alive"] and w["claude_alive"]], 10
        ), "no waiter armed for the Codex session"
        assert wait_until(lambda: "Ask Codex" in screen(), 10), screen()

        before = len(fake_openai.requests)
        Mailbox().send("osprey-3321: wake up and check CI", to="proj", sender="lead")
        assert fake_openai.wait_for(
            lambda: carrying(fake_openai, "osprey-3321", start=before), 20
        ), screen()
        assert wait_until(lambda: "Ask Codex" in screen(), 10), screen()
        turns = [
            i
            for i in carrying(fake_openai, "osprey-3321", start=before)
            if fake_openai.requests[i].get("tools")
        ]
        assert len(turns) == 1  # one turn ran it (a title request may quote it too)
        assert Mailbox().count("proj") == 0
        (row,) = [r for r in who(Mailbox()) if r["name"] == "proj"]
        assert row["agent"] == "codex" and row["waiter"] is True
    finally:
        server.close()
    assert procs.settle(5) == []  # the waiter leaves with its Codex session
