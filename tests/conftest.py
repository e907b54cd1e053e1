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
