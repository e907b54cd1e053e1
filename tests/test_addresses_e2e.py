"""Two real Claude Code sessions under one name (SPEC §11, #16).

Two interactive clients (one private tmux server, a fake Messages API each,
temporary HOMEs) run in two directories of the same name, so both are
``@proj``. Each idle session has its wake waiter armed.

- ``@proj/SESSION`` (8 characters of A's id) reaches A's model only: its text
  is in A's API requests and never in B's.
- ``@proj`` reaches exactly one of them (whichever waiter reads first), and
  ``send`` says on stderr that two live sessions share the name, naming both.

Budget: about a minute per client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ClaudeTUI
from fakeapi import FakeAPI
from test_wake_e2e import copies, hooks_running, install
from tmuxharness import Server, wait_until

from kei_message.agents.claude import waiter as wake
from kei_message.live import screen
from kei_message.mailbox import Mailbox

pytestmark = [pytest.mark.slow, pytest.mark.claude, pytest.mark.tmux]

KEI = os.path.join(os.path.dirname(sys.executable), "kei-message")
QUIET = 6.0  # seconds after the first copy in which no second one may arrive


def armed(name: str) -> list[dict[str, Any]]:
    return [w for w in wake.waiters() if w["name"] == name and w["alive"] and w["claude_alive"]]


def test_a_session_address_reaches_one_of_two_sessions_under_one_name(
    claude_tui: ClaudeTUI, fake_api: Any, tmp_path: Path, mailbox_dir: Path
) -> None:
    from conftest import claude_env

    server = Server()
    mailbox = Mailbox()
    with FakeAPI() as api_b:
        apis = {"a": fake_api, "b": api_b}
        projects = {k: tmp_path / k / "proj" for k in apis}
        panes: dict[str, str] = {}
        try:
            for k, api in apis.items():
                projects[k].mkdir(parents=True)
                home = tmp_path / f"home-{k}"
                env = claude_env(home, api.url, projects[k])
                env["KEI_MAILBOX_DIR"] = str(mailbox_dir)
                install(home, projects[k], env)
                argv = ["env", "-i", *(f"{x}={v}" for x, v in env.items()), *claude_tui.argv]
                panes[k], _ = server.spawn(argv, str(projects[k]), width=120, height=40)

            def capture() -> str:
                return "\n---\n".join(
                    server.tmux("capture-pane", "-p", "-t", p) for p in panes.values()
                )

            assert wait_until(lambda: len(armed("proj")) == 2, 90, step=0.2), capture()
            for pane in panes.values():
                assert wait_until(
                    lambda p=pane: (
                        screen.read(server.tmux("capture-pane", "-p", "-t", p)).state == "idle"
                    ),
                    30,
                ), capture()
            assert wait_until(lambda: len(mailbox.sessions_of("proj")) == 2, 30)
            for w in armed("proj"):
                assert wait_until(
                    lambda c=w["claude_pid"]: not hooks_running(c, "session-start"), 30
                )
            by_cwd = {s["cwd"]: s["session_id"] for s in mailbox.sessions_of("proj")}
            sid = {k: by_cwd[str(projects[k])] for k in apis}
            assert sid["a"] != sid["b"]

            env = {**os.environ, "KEI_MAILBOX_DIR": str(mailbox_dir)}

            # 1. @proj/SESSION: A only
            one = "addr-one: for session A only"
            res = subprocess.run(
                [KEI, "send", f"@proj/{sid['a'][:8]}", "--from", "lead", one],
                capture_output=True,
                text=True,
                timeout=30,
                env=env,
            )
            assert res.returncode == 0, res.stderr
            assert "share" not in res.stderr
            assert fake_api.wait_for(lambda: copies(fake_api, one) >= 1, 45), capture()
            # A's turn ends and its waiter re-arms; B's never woke for it
            assert wait_until(lambda: len(armed("proj")) == 2, 45, step=0.2), capture()
            assert copies(api_b, one) == 0
            assert copies(fake_api, one) == 1
            status = mailbox.status(mailbox.recent(1, sender="lead")[0]["id"])
            assert status["readers"][0]["delivered"]["session"] == sid["a"]

            # 2. @proj: exactly one of them, and stderr names both
            two = "addr-two: whoever reads first"
            res = subprocess.run(
                [KEI, "send", "@proj", "--from", "lead", two],
                capture_output=True,
                text=True,
                timeout=30,
                env=env,
            )
            assert res.returncode == 0, res.stderr
            note = res.stderr
            assert "2 live sessions share 'proj'" in note, note
            assert sid["a"][:8] in note and sid["b"][:8] in note, note
            assert "@proj/" in note

            def total() -> int:
                return copies(fake_api, two) + copies(api_b, two)

            assert wait_until(lambda: total() >= 1, 45, step=0.2), capture()
            time.sleep(QUIET)
            assert total() == 1, (copies(fake_api, two), copies(api_b, two))
            assert mailbox.unread("proj") == []
        finally:
            server.close()
            left = wait_until(lambda: not [w for w in wake.waiters() if w["alive"]], 10)
            for w in wake.waiters():
                if w["alive"]:
                    os.kill(w["pid"], signal.SIGKILL)
    assert left, "a waiter outlived its Claude Code"
