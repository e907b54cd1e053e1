"""The wake hook with the real Claude Code TUI: an idle session, nothing typed, woken by mail.

The interactive client runs in a private tmux server (only to give it a
terminal), against the fake Messages API, in a temporary HOME. Budget: about
45 s. Prints the measured wake latency (send -> request at the fake API).
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
from tmuxharness import Server, wait_until

from kei_message.agents.claude import waiter as wake
from kei_message.agents.claude.install import REWAKE_SUMMARY
from kei_message.live import screen
from kei_message.mailbox import Mailbox

pytestmark = [pytest.mark.slow, pytest.mark.claude, pytest.mark.tmux]

QUIET = 8.0  # seconds with no mail in which no request may arrive


def copies(api: Any, text: str) -> int:
    """How many times ``text`` was put into the conversation: the most user-message
    text blocks carrying it in any one model request (a wake adds one; a second
    injection by another hook would add another). Side requests (no tools) are left out.

    No lock: ``api.wait_for`` calls this holding the API's (non-reentrant) lock.
    """
    most = 0
    for body in list(api.requests):
        if not body.get("tools"):
            continue
        n = 0
        for msg in body.get("messages") or []:
            content = msg.get("content")
            blocks = [{"text": content}] if isinstance(content, str) else content or []
            if msg.get("role") == "user":
                n += sum(1 for b in blocks if text in str(b.get("text") or b.get("content") or ""))
        most = max(most, n)
    return most


def install(home: Path, project: Path, env: dict[str, str]) -> None:
    """``kei message install`` into the temporary HOME: the wake hooks are on by default."""
    kei = os.path.join(os.path.dirname(sys.executable), "kei")
    res = subprocess.run(
        [kei, "message", "install"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    wakes = [
        h
        for event in ("SessionStart", "UserPromptSubmit", "PreToolUse", "Stop")
        for group in settings["hooks"][event]
        for h in group["hooks"]
        if h["command"].endswith(" wake")
    ]
    assert len(wakes) == 4, settings
    assert all(h["asyncRewake"] and h["timeout"] == wake.HOOK_TIMEOUT for h in wakes)


def diagnose(what: str, server: Server, pane: str, mailbox: Mailbox) -> str:
    log = Path(mailbox.store.location).parent / "hook.log"
    return "\n".join(
        [
            what,
            f"unread: {mailbox.unread('wakeproj')}",
            f"waiters: {wake.waiters()}",
            f"hook.log: {log.read_text() if log.exists() else '(none)'}",
            server.tmux("capture-pane", "-p", "-t", pane),
        ]
    )


def hooks_running(ancestor: int, event: str) -> list[int]:
    """Pids of ``kei-message-hook EVENT`` processes under ``ancestor`` (Claude Code)."""
    parents: dict[int, int] = {}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                parents[int(entry)] = int(fh.read().rpartition(b")")[2].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if any(a.endswith(b"kei-message-hook") for a in argv) and event.encode() in argv:
            found.append(int(entry))
    out = []
    for pid in found:
        p = pid
        for _ in range(16):
            p = parents.get(p, 0)
            if p == ancestor:
                out.append(pid)
                break
            if p <= 1:
                break
    return out


def armed_for(name: str) -> dict[str, Any] | None:
    for w in wake.waiters():
        if w["name"] == name and w["alive"] and w["claude_alive"]:
            return w
    return None


def test_mail_wakes_an_idle_session(
    claude_tui: ClaudeTUI, fake_api: Any, tmp_path: Path, mailbox_dir: Path
) -> None:
    from conftest import claude_env

    home = tmp_path / "home"
    project = tmp_path / "wakeproj"
    project.mkdir()
    env = claude_env(home, fake_api.url, project)
    env["KEI_MAILBOX_DIR"] = str(mailbox_dir)
    install(home, project, env)

    server = Server()
    mailbox = Mailbox()
    try:
        argv = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *claude_tui.argv]
        pane, _ = server.spawn(argv, str(project), width=120, height=40)
        first = wait_until(lambda: armed_for("wakeproj"), 60, step=0.1)
        assert first, "the SessionStart waiter never armed:\n" + server.tmux(
            "capture-pane", "-p", "-t", pane
        )
        # idle as the screen reader sees it (the footer's words differ by version and mode)
        assert wait_until(
            lambda: screen.read(server.tmux("capture-pane", "-p", "-t", pane)).state == "idle", 30
        ), server.tmux("capture-pane", "-p", "-t", pane)
        # The synchronous SessionStart hook runs beside the waiter and would take a
        # message sent this early as the session's starting context (no wake):
        # wait until it has registered the session and finished.
        assert wait_until(lambda: mailbox.store.sessions(), 30)
        assert wait_until(lambda: not hooks_running(first["claude_pid"], "session-start"), 30)
        before = len(fake_api.requests)

        latencies = []
        for i, text in enumerate(("wake-one: please run the tests", "wake-two: and the linter")):
            sent = time.monotonic()
            mailbox.send(text, to="wakeproj", sender="backend")
            ok = fake_api.wait_for(lambda t=text: copies(fake_api, t) >= 1, 30)
            latencies.append(time.monotonic() - sent)
            assert ok, diagnose(f"message {i + 1} never reached the model", server, pane, mailbox)
            # a new waiter for the next message: armed by the wake turn's UserPromptSubmit
            # hook (#14), and again by its Stop hook (the same one: one per session)
            again = wait_until(
                lambda f=first: (w := armed_for("wakeproj")) and w["pid"] != f["pid"] and w,
                30,
                step=0.1,
            )
            assert again, f"no waiter re-armed after message {i + 1}"
            first = again
            # the wake turn ends: the session is idle again before the next message
            assert wait_until(
                lambda: screen.read(server.tmux("capture-pane", "-p", "-t", pane)).state == "idle",
                30,
            ), server.tmux("capture-pane", "-p", "-t", pane)
        print(
            f"\nwake latency (send -> request at the fake API): "
            f"{', '.join(f'{x * 1000:.0f} ms' for x in latencies)}"
        )
        shown = server.tmux("capture-pane", "-p", "-t", pane)
        print(shown)
        # what the user sees: the install's summary line, once per wake
        assert shown.count(REWAKE_SUMMARY) == 2, shown

        # no loop: with no mail, nothing more reaches the API
        settled = len(fake_api.requests)
        time.sleep(QUIET)
        assert len(fake_api.requests) == settled, [
            json.dumps(b.get("messages", [])[-1:])[:300] for b in fake_api.requests[settled:]
        ]
        for text in ("wake-one", "wake-two"):
            assert copies(fake_api, text) == 1, text  # exactly once
        assert settled > before
        assert mailbox.unread("wakeproj") == []
    finally:
        server.close()
        # with Claude Code gone, its waiter leaves by itself (within a second or two)
        left = wait_until(lambda: not [w for w in wake.waiters() if w["alive"]], 10)
        for w in wake.waiters():
            if w["alive"]:
                os.kill(w["pid"], signal.SIGKILL)
    assert left, "a waiter outlived its Claude Code"
