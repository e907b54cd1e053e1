"""Codex and Gemini CLI wiring without the CLIs (issue 18): the hook events as the
CLIs run them (a subprocess, JSON on stdin), the installers on temporary HOMEs, and
``who``'s AGENT column. The real CLIs run in test_codex_e2e.py / test_gemini_e2e.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kei_message.agents.install import is_ours
from kei_message.cli import get_app
from kei_message.mailbox import Mailbox
from kei_message.presence import who

BIN = Path(sys.executable).parent
HOOK = str(BIN / "kei-message-hook")

# our event -> (the CLI's event name, answers like Stop)
EVENTS = {
    "codex-session-start": ("SessionStart", False),
    "codex-user-prompt-submit": ("UserPromptSubmit", False),
    "codex-stop": ("Stop", True),
    "gemini-session-start": ("SessionStart", False),
    "gemini-before-agent": ("BeforeAgent", False),
    "gemini-after-agent": ("AfterAgent", True),
}


def hook(event: str, payload: dict[str, Any], **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [HOOK, event],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=10,
        env={**os.environ, **env},
    )


def payload(event: str, cwd: Path, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "session_id": "01a241ee-1869-7543-a2fc-77832c63fed7",
        "cwd": str(cwd),
        "hook_event_name": EVENTS[event][0],
    }
    if EVENTS[event][1]:
        base["stop_hook_active"] = False
    else:
        base["prompt"] = "what is new?"
    base.update(extra)
    return base


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    path.mkdir()
    return path


@pytest.mark.parametrize("event", list(EVENTS))
def test_event_delivers_once_in_the_cli_shape(event: str, proj: Path) -> None:
    mb = Mailbox()
    mb.send("pelican-4410", to="proj", sender="lead")
    done = hook(event, payload(event, proj))
    assert done.returncode == 0 and done.stderr == b""
    obj = json.loads(done.stdout)
    name, blocks = EVENTS[event]
    if blocks:
        assert obj["decision"] == "block"
        text = obj["reason"]
    else:
        assert obj["hookSpecificOutput"]["hookEventName"] == name
        text = obj["hookSpecificOutput"]["additionalContext"]
    assert text.startswith("kei mailbox: 1 new message for proj")
    assert "pelican-4410" in text
    # no /msg skill outside Claude Code: the reply hint names the command
    assert "kei message send @lead" in text and "/msg" not in text
    assert mb.count("proj") == 0
    (session,) = mb.store.sessions()
    assert session["agent"] == event.partition("-")[0]
    again = hook(event, payload(event, proj))
    assert (again.returncode, again.stdout) == (0, b"")  # delivered once


@pytest.mark.parametrize("event", ["codex-stop", "gemini-after-agent"])
def test_stop_never_blocks_twice_in_a_row(event: str, proj: Path) -> None:
    Mailbox().send("more work", to="proj", sender="lead")
    done = hook(event, payload(event, proj, stop_hook_active=True))
    assert (done.returncode, done.stdout) == (0, b"")
    assert Mailbox().count("proj") == 1  # waits for the next prompt


def test_identity_from_env_and_fast_path_registers(proj: Path, mailbox_dir: Path) -> None:
    mb = Mailbox()
    mb.send("x", to="worker", sender="lead")
    assert hook("codex-user-prompt-submit", payload("codex-user-prompt-submit", proj)).stdout == b""
    done = hook(
        "codex-user-prompt-submit",
        payload("codex-user-prompt-submit", proj),
        KEI_MAILBOX_ME="worker",
    )
    assert b"for worker" in done.stdout
    # nothing unread now: the fast path answers, and still records the agent
    (mailbox_dir / "sessions").exists()
    assert hook("gemini-before-agent", payload("gemini-before-agent", proj)).stdout == b""
    agents = sorted(s["agent"] for s in mb.store.sessions())
    assert agents == ["gemini"]  # one session id, last written by gemini's hook


def test_bypass_and_unknown_event(proj: Path) -> None:
    Mailbox().send("x", to="proj", sender="lead")
    done = hook(
        "codex-user-prompt-submit",
        payload("codex-user-prompt-submit", proj),
        KEI_MAILBOX_BYPASS="1",
    )
    assert (done.returncode, done.stdout) == (0, b"")
    bad = hook("codex-pre-tool-use", {"cwd": str(proj)})
    assert bad.returncode == 0 and bad.stdout == b"" and b"unknown hook event" in bad.stderr
    assert Mailbox().count("proj") == 1


def test_who_shows_the_agent_column_last(proj: Path) -> None:
    hook("codex-session-start", payload("codex-session-start", proj, session_id="cx-1"))
    hook("gemini-session-start", payload("gemini-session-start", proj, session_id="gm-1"))
    mb = Mailbox()
    mb.send("hi", to="other", sender="lead")
    result = CliRunner().invoke(get_app(), ["who"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = lines[0].split()
    assert header[-1] == "AGENT" and header[-2] == "SESSIONS"
    row = next(line for line in lines if line.startswith("proj"))
    assert row.split()[-1] == "codex,gemini" and row.split()[-2] == "2"
    (rec,) = [r for r in who(mb) if r["name"] == "proj"]
    assert rec["agent"] == "codex,gemini"


# ----------------------------------------------------------------------------- install
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return path


def kei(*args: str) -> Any:
    return CliRunner().invoke(get_app(), list(args))


def ours(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for event, groups in json.loads(path.read_text()).get("hooks", {}).items():
        for g in groups:
            for h in g.get("hooks", []):
                if is_ours(h):
                    found.setdefault(event, []).append(h["command"].split()[-1])
    return found


def test_codex_install_creates_then_uninstall_removes(home: Path) -> None:
    path = home / ".codex" / "hooks.json"
    dry = kei("install", "--agent", "codex", "--dry-run")
    assert dry.exit_code == 0 and "would update" in dry.output and not path.exists()
    done = kei("install", "--agent", "codex")
    assert done.exit_code == 0, done.output
    assert "Hooks need review" in done.output
    assert ours(path) == {
        "SessionStart": ["codex-session-start"],
        "UserPromptSubmit": ["codex-user-prompt-submit"],
        "Stop": ["codex-stop"],
    }
    assert not (home / ".claude").exists()  # only codex was asked for
    again = kei("install", "--agent", "codex")
    assert "nothing to change" in again.output
    gone = kei("uninstall", "--agent", "codex")
    assert gone.exit_code == 0 and not path.exists()  # install created it: removed


def test_codex_home_and_exact_uninstall(home: Path, tmp_path: Path, monkeypatch: Any) -> None:
    codex_home = tmp_path / "ch"
    codex_home.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(codex_home))
    path = codex_home / "hooks.json"
    raw = b'{"hooks":{"Stop":[{"hooks":[{"type":"command","command":"notify done"}]}]},\n "x": 1}'
    path.write_bytes(raw)
    assert kei("install", "--agent", "codex").exit_code == 0
    assert ours(path)["Stop"] == ["codex-stop"]
    assert json.loads(path.read_text())["hooks"]["Stop"][0]["hooks"][0]["command"] == "notify done"
    assert list(codex_home.glob("hooks.json.kei-message-backup-*"))
    assert kei("uninstall", "--agent", "codex").exit_code == 0
    assert path.read_bytes() == raw  # the very bytes


def test_gemini_keeps_other_settings_and_all(home: Path) -> None:
    path = home / ".gemini" / "settings.json"
    path.parent.mkdir()
    raw = b'{\n    "security": {"auth": {"selectedType": "gemini-api-key"}}\n}\n'
    path.write_bytes(raw)
    done = kei("install", "--agent", "all")
    assert done.exit_code == 0, done.output
    data = json.loads(path.read_text())
    assert data["security"] == {"auth": {"selectedType": "gemini-api-key"}}
    assert ours(path) == {
        "SessionStart": ["gemini-session-start"],
        "BeforeAgent": ["gemini-before-agent"],
        "AfterAgent": ["gemini-after-agent"],
    }
    assert (home / ".claude" / "settings.json").exists() and (
        home / ".codex" / "hooks.json"
    ).exists()
    assert kei("uninstall", "--agent", "gemini", "--agent", "codex").exit_code == 0
    assert path.read_bytes() == raw
    assert (home / ".claude" / "settings.json").exists()  # claude was not asked for


def test_bad_agent_bad_json_and_project(home: Path) -> None:
    bad = kei("install", "--agent", "cursor")
    assert bad.exit_code == 2 and "unknown agent" in bad.output
    assert kei("install", "--agent", "codex", "--project").exit_code == 2
    path = home / ".gemini" / "settings.json"
    path.parent.mkdir()
    path.write_text("{not json")
    refused = kei("install", "--agent", "gemini")
    assert refused.exit_code == 2 and path.read_text() == "{not json"
