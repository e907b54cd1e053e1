"""Every test gets its own mailbox dir and identity: no test touches a real mailbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

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
    clients = ", ".join(f"{v} ({'/'.join(claude_modes(v))})" for v, _ in _VERSIONS)
    return [
        f"KEI_TEST_CLAUDE={os.environ.get('KEI_TEST_CLAUDE', '(unset)')}",
        f"Claude Code under test: {clients}",
    ]


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
# The real-client tests run against each pinned version (scripts/test.sh installs
# them from npm): the oldest supported and the newest tested. The TUI tests also
# run in each permission mode a version has: 2.1.332 made `auto` the default
# (the "Auto mode can't check actions" dialog behind a gateway, #12); 2.1.197
# runs in its default mode only.
CLAUDE_VERSIONS = ("2.1.197", "2.1.332")
CLAUDE_MODES = {"2.1.197": ("default",), "2.1.332": ("auto", "default")}


def claude_cache() -> str:
    """The folder holding ``claude-code-<version>/`` (KEI_TEST_CLAUDE_DIR overrides)."""
    return (
        os.environ.get("KEI_TEST_CLAUDE_DIR")
        or os.environ.get("KEI_TEST_CACHE")
        or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kei-message-test"
        )
    )


def _override() -> tuple[str, str] | None:
    """KEI_TEST_CLAUDE=/path/to/claude: run the matrix on that one client (its version)."""
    import re
    import subprocess

    path = os.environ.get("KEI_TEST_CLAUDE")
    if not path:
        return None
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except OSError:
        out = ""
    m = re.match(r"\s*(\d+\.\d+\.\d+)", out)
    return (m.group(1) if m else "unknown"), path


def claude_versions() -> list[tuple[str, str]]:
    """(version, path of its ``claude``) for every client under test, installed or not."""
    one = _override()
    if one is not None:
        return [one]
    return [
        (v, os.path.join(claude_cache(), f"claude-code-{v}", "node_modules", ".bin", "claude"))
        for v in CLAUDE_VERSIONS
    ]


def claude_modes(version: str) -> tuple[str, ...]:
    if version in CLAUDE_MODES:
        return CLAUDE_MODES[version]
    parts = tuple(int(x) for x in version.split(".")) if version[:1].isdigit() else (0,)
    return ("auto", "default") if parts >= (2, 1, 332) else ("default",)


_VERSIONS = claude_versions()


def _usable(version: str, path: str) -> str:
    import shutil

    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed: cannot run the real Claude Code CLI")
    if not os.access(path, os.X_OK):
        pytest.fail(f"@anthropic-ai/claude-code@{version} is not installed: run scripts/test.sh")
    return path


@pytest.fixture(params=[pytest.param(vp, id=f"cc{vp[0]}") for vp in _VERSIONS])
def claude_bin(request: pytest.FixtureRequest) -> str:
    """The real Claude Code CLI, once per pinned version; skips only where node/npm are missing."""
    version, path = request.param
    return _usable(version, path)


class ClaudeTUI(NamedTuple):
    """One interactive client under test: a version in one permission mode."""

    version: str
    mode: str  # "auto" or "default"
    path: str

    @property
    def argv(self) -> list[str]:
        if self.mode == "auto":
            return [self.path, "--permission-mode", "auto"]
        if "auto" in claude_modes(self.version):
            return [self.path, "--permission-mode", "default"]
        return [self.path]  # no auto mode: its default is the default


@pytest.fixture(
    params=[
        pytest.param((v, mode, p), id=f"cc{v}-{mode}")
        for v, p in _VERSIONS
        for mode in claude_modes(v)
    ]
)
def claude_tui(request: pytest.FixtureRequest) -> ClaudeTUI:
    """The interactive Claude Code, per pinned version and permission mode."""
    version, mode, path = request.param
    return ClaudeTUI(version, mode, _usable(version, path))


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
    from agentcli import user_env

    env = user_env("TMUX", "CLAUDE", "ANTHROPIC")
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
