"""``send --wait delivered`` with the real Claude Code TUI and its wake waiter (#16).

An idle session (tmux, fake API, temporary HOME); a sender runs ``kei message
send @NAME --wait delivered --timeout 30s``. The waiter delivers, writes the
receipt (how ``wake``, into that session), and the sender returns within a
second of the receipt's time. A send nobody reads runs out: exit 1. Budget:
about 40 s per client.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ClaudeTUI
from test_wake_e2e import armed_for, copies, hooks_running, install
from tmuxharness import Server, wait_until

from kei_message.agents.claude import waiter as wake
from kei_message.live import screen
from kei_message.mailbox import Mailbox
from kei_message.records import ts_epoch

pytestmark = [pytest.mark.slow, pytest.mark.claude, pytest.mark.tmux]

KEI = os.path.join(os.path.dirname(sys.executable), "kei-message")


def test_send_wait_delivered_returns_on_the_waiters_receipt(
    claude_tui: ClaudeTUI, fake_api: Any, tmp_path: Path, mailbox_dir: Path
) -> None:
    from conftest import claude_env

    home = tmp_path / "home"
    project = tmp_path / "rcptproj"
    project.mkdir()
    env = claude_env(home, fake_api.url, project)
    env["KEI_MAILBOX_DIR"] = str(mailbox_dir)
    install(home, project, env)

    server = Server()
    mailbox = Mailbox()
    try:
        argv = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *claude_tui.argv]
        pane, _ = server.spawn(argv, str(project), width=120, height=40)
        first = wait_until(lambda: armed_for("rcptproj"), 60, step=0.1)
        assert first, server.tmux("capture-pane", "-p", "-t", pane)
        assert wait_until(
            lambda: screen.read(server.tmux("capture-pane", "-p", "-t", pane)).state == "idle", 30
        ), server.tmux("capture-pane", "-p", "-t", pane)
        assert wait_until(lambda: mailbox.store.sessions(), 30)
        assert wait_until(lambda: not hooks_running(first["claude_pid"], "session-start"), 30)
        session_id = first["session_id"]

        sender_env = {**os.environ, "KEI_MAILBOX_DIR": str(mailbox_dir)}
        text = "rcpt-one: please run the tests"
        proc = subprocess.Popen(
            [KEI, "send", "@rcptproj", "--from", "backend", "--json"]
            + ["--wait", "delivered", "--timeout", "30s", text],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=sender_env,
        )
        try:
            out, err = proc.communicate(timeout=40)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        returned = time.time()
        assert proc.returncode == 0, err
        sent, status = (json.loads(line) for line in out.splitlines())
        row = status["readers"][0]
        assert status["id"] == sent["id"] and row["reader"] == "rcptproj"
        assert row["state"] == "delivered", status
        assert row["delivered"]["how"] == "wake", status
        assert row["delivered"]["session"] == session_id, status
        delivered_at = ts_epoch(row["delivered"]["ts"])
        assert delivered_at is not None
        lag = returned - delivered_at
        print(f"\nsend --wait delivered returned {lag * 1000:.0f} ms after the waiter's receipt")
        assert lag < 1.0, lag
        # it really reached the model, and `status` says the same afterwards
        assert fake_api.wait_for(lambda: copies(fake_api, text) >= 1, 30)
        again = subprocess.run(
            [KEI, "status", str(sent["id"]), "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            env=sender_env,
        )
        assert json.loads(again.stdout) == status

        # nobody reads `absent`: out of time, exit 1, the status so far on stdout
        started = time.monotonic()
        late = subprocess.run(
            [KEI, "send", "@absent", "--from", "backend"]
            + ["--wait", "delivered", "--timeout", "2s", "nobody reads this"],
            capture_output=True,
            text=True,
            timeout=30,
            env=sender_env,
        )
        took = time.monotonic() - started
        assert late.returncode == 1, late.stderr
        assert 2.0 <= took < 10.0, took
        assert "queued" in late.stdout
        assert "not delivered to absent within 2s" in late.stderr
    finally:
        server.close()
        left = wait_until(lambda: not [w for w in wake.waiters() if w["alive"]], 10)
        for w in wake.waiters():
            if w["alive"]:
                os.kill(w["pid"], signal.SIGKILL)
    assert left, "a waiter outlived its Claude Code"
