"""Every test gets its own mailbox dir and identity: no test touches a real mailbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CLEAN = (
    "KEI_MAILBOX_ME",
    "KEI_MAILBOX_URL",
    "KEI_MAILBOX_BYPASS",
    "KEI_MAILBOX_FSYNC",
    "KEI_MAILBOX_LOCK_TIMEOUT",
    "KEI_MAILBOX_MAX_BODY",
    "KEI_MAILBOX_BROADCAST_REPLAY",
    "KEI_MAILBOX_HOOK_BUDGET",
    "KEI_MAILBOX_DEBUG",
    "TMUX",
    "TMUX_PANE",
)


@pytest.fixture(autouse=True)
def mailbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in CLEAN:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "mailbox"
    monkeypatch.setenv("KEI_MAILBOX_DIR", str(path))
    monkeypatch.setenv("NO_COLOR", "1")
    yield path


@pytest.fixture
def bin_dir() -> Path:
    """Where the virtual environment's console scripts are."""
    import sys

    return Path(sys.executable).parent


def pytest_report_header() -> list[str]:
    return [f"KEI_TEST_CLAUDE={os.environ.get('KEI_TEST_CLAUDE', '(unset)')}"]


@pytest.fixture(scope="session")
def redis_server():  # type: ignore[no-untyped-def]
    """One real redis-server for the whole run (free loopback port, temp dir)."""
    from redis_server import RedisServer, redis_server_bin

    if redis_server_bin() is None:
        pytest.skip("redis-server is not installed: run scripts/test.sh")
    # no append-only file: these tests are about behaviour, and fsyncs cost the
    # shared machine; tests/test_redis_machines.py restarts one with it on
    with RedisServer(appendonly=False) as server:
        yield server


@pytest.fixture(params=["jsonl", pytest.param("redis", marks=pytest.mark.redis)])
def store_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The store under test: None (the JSONL bus in ``mailbox_dir``) or a clean Redis.

    The Redis case sets KEI_MAILBOX_URL, so CLI and hook subprocesses use it too.
    """
    if request.param == "jsonl":
        return None
    server = request.getfixturevalue("redis_server")
    client = server.client()
    try:
        client.flushdb()
    finally:
        client.close()
    monkeypatch.setenv("KEI_MAILBOX_URL", server.url)
    return str(server.url)


@pytest.fixture
def mailbox(mailbox_dir: Path, store_url: str | None):  # type: ignore[no-untyped-def]
    """A Mailbox on the store under test: the JSONL bus in ``mailbox_dir``, or Redis."""
    from kei_message.mailbox import Mailbox

    return Mailbox()


# ----------------------------------------------------------------------------- Claude Code
CLAUDE_VERSION = "2.1.197"


def claude_bin_path() -> str | None:
    """The pinned Claude Code CLI that scripts/test.sh installs, if present."""
    import shutil

    env = os.environ.get("KEI_TEST_CLAUDE")
    if env and os.access(env, os.X_OK):
        return env
    cache = os.environ.get("KEI_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kei-message-test"
    )
    path = os.path.join(cache, f"claude-code-{CLAUDE_VERSION}", "node_modules", ".bin", "claude")
    if os.access(path, os.X_OK):
        return path
    return shutil.which("claude") if env is None else None


@pytest.fixture
def claude_bin() -> str:
    """The real Claude Code CLI; skips only where node/npm are missing."""
    import shutil

    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed: cannot run the real Claude Code CLI")
    path = claude_bin_path()
    if path is None:
        pytest.fail(
            f"@anthropic-ai/claude-code@{CLAUDE_VERSION} is not installed: run scripts/test.sh"
        )
    return path


@pytest.fixture
def fake_api():  # type: ignore[no-untyped-def]
    from fakeapi import FakeAPI

    with FakeAPI() as api:
        yield api


def claude_env(home: Path, api_url: str, project: Path) -> dict[str, str]:
    """The safe environment for the real client: temp HOME, fake API, no outside traffic.

    Also writes ``home/.claude.json`` so the interactive TUI skips onboarding
    and trusts ``project``.
    """
    import json
    import sys

    home.mkdir(parents=True, exist_ok=True)
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "customApiKeyResponses": {"approved": ["sk-ant-dummy"], "rejected": []},
                "projects": {str(project): {"hasTrustDialogAccepted": True}},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "CLAUDE", "ANTHROPIC"))}
    env.update(
        HOME=str(home),
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        ANTHROPIC_BASE_URL=api_url,
        ANTHROPIC_API_KEY="sk-ant-dummy",
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
        CLAUDE_CODE_MAX_RETRIES="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL="1",
    )
    return env


# ----------------------------------------------------------------------------- Codex, Gemini
@pytest.fixture
def codex_bin() -> str:
    """The real Codex CLI (@openai/codex, pinned; scripts/test.sh installs it)."""
    from agentcli import CODEX_VERSION, codex_bin_path

    path = codex_bin_path()
    if path is None:
        pytest.fail(f"@openai/codex@{CODEX_VERSION} is not installed: run scripts/test.sh")
    return path


@pytest.fixture
def gemini_bin() -> str:
    """The real Gemini CLI (@google/gemini-cli, pinned; scripts/test.sh installs it)."""
    import shutil

    from agentcli import GEMINI_VERSION, gemini_bin_path

    if shutil.which("node") is None:
        pytest.skip("node is not installed: cannot run the real Gemini CLI")
    path = gemini_bin_path()
    if path is None:
        pytest.fail(f"@google/gemini-cli@{GEMINI_VERSION} is not installed: run scripts/test.sh")
    return path


@pytest.fixture
def fake_openai():  # type: ignore[no-untyped-def]
    from fake_openai import FakeOpenAI

    with FakeOpenAI() as api:
        yield api


@pytest.fixture
def fake_gemini():  # type: ignore[no-untyped-def]
    from fake_gemini import FakeGemini

    with FakeGemini() as api:
        yield api


@pytest.fixture
def procs():  # type: ignore[no-untyped-def]
    """Marks every process the test starts; any still running at the end is killed by pid."""
    from agentcli import ProcGuard

    guard = ProcGuard()
    yield guard
    guard.end()
