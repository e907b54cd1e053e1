"""Live delivery into the real Claude Code TUI, in a private tmux server, against the fake API.

The session registers its pane through the installed hooks (SessionStart and
UserPromptSubmit), exactly as in use; the test then drives it with the
installed ``kei-message`` commands and checks what reached the API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ClaudeTUI, claude_env

from kei_message.live import deliver, registry, screen
from kei_message.mailbox import Mailbox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tmuxharness import Server, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.claude, pytest.mark.tmux, pytest.mark.timeout(240)]

BIN = Path(sys.executable).parent


def kei(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kei-message"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def install_hooks(env: dict[str, str], home: Path) -> str:
    """`kei message install --no-wake` into the temp HOME (wake would race live delivery
    for the same messages); its own settings.json if install is missing."""
    res = subprocess.run(
        [str(BIN / "kei-message"), "install", "--user", "--no-wake"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    if res.returncode == 0:
        return "install"
    hook = str(BIN / "kei-message-hook")
    settings = {
        "hooks": {
            event: [{"hooks": [{"type": "command", "command": f"{hook} {arg}"}]}]
            for event, arg in (
                ("SessionStart", "session-start"),
                ("UserPromptSubmit", "user-prompt-submit"),
            )
        }
    }
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    (home / ".claude" / "settings.json").write_text(json.dumps(settings))
    return "settings.json"


class Session:
    def __init__(self, server: Server, pane: str, mb: Mailbox, name: str, tui: ClaudeTUI) -> None:
        self.server, self.pane, self.mb, self.name, self.tui = server, pane, mb, name, tui

    def look(self) -> screen.Screen:
        found = registry.find(self.mb.store, self.name)
        return deliver.look(found[0]) if found else screen.Screen("none", "", {})

    def screen(self) -> str:
        return self.server.tmux("capture-pane", "-p", "-t", self.pane)

    def state(self) -> str:
        return self.look().state

    def until(self, want: str, timeout: float = 60) -> None:
        assert wait_until(lambda: self.state() == want, timeout, 0.2), (
            f"never {want} (is {self.state()}):\n{self.screen()}"
        )

    def type_prompt(self, text: str) -> None:
        self.server.tmux("send-keys", "-t", self.pane, "-l", "--", text)
        time.sleep(0.3)
        self.server.tmux("send-keys", "-t", self.pane, "Enter")


@pytest.fixture
def session(
    claude_tui: ClaudeTUI,
    fake_api: Any,
    tmp_path: Path,
    mailbox_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Session]:
    project = tmp_path / "frontend"
    project.mkdir()
    home = tmp_path / "home"
    env = claude_env(home, fake_api.url, project)
    env["KEI_MAILBOX_DIR"] = str(mailbox_dir)
    how = install_hooks(env, home)
    server = Server()
    monkeypatch.setenv("TMUX_TMPDIR", server.tmpdir)
    # the tmux server (and so the pane) gets exactly the safe environment
    server.env = lambda: {**env, "TMUX_TMPDIR": server.tmpdir}  # type: ignore[method-assign]
    try:
        pane, _ = server.spawn(claude_tui.argv, str(project), width=120, height=40)
        mb = Mailbox()
        s = Session(server, pane, mb, "frontend", claude_tui)
        ok = wait_until(
            lambda: any(x.get("tmux_pane") == pane for x in mb.store.sessions()), 60, 0.2
        )
        assert ok, f"the hooks ({how}) never registered the pane:\n{s.screen()}"
        s.until("idle")
        # discover recognises the real TUI's process, and names it after the directory
        found = registry.discover(mb.store, save=False)
        assert [(x.name, x.pane.pane) for x in found] == [("frontend", pane)]
        yield s
    finally:
        server.close()


def seen(api: Any, text: str, timeout: float = 60) -> bool:
    # polled, not api.wait_for: its predicate runs under the lock count_containing takes
    return bool(wait_until(lambda: api.count_containing(text) > 0, timeout, 0.2))


def occurrences(api: Any, text: str) -> int:
    """How often ``text`` appears in the first turn request that carries it."""
    with api._lock:
        for body in api.requests:
            blob = json.dumps(body.get("messages") or [], ensure_ascii=False)
            if body.get("tools") and text in blob:
                return blob.count(text)
    return 0


def last_message_with(api: Any, text: str) -> str:
    with api._lock:
        for body in api.requests:
            msgs = body.get("messages") or []
            last = json.dumps(msgs[-1], ensure_ascii=False) if msgs else ""
            if text in last:
                return last
    return ""


def test_live_into_idle_busy_and_permission_prompt(session: Session, fake_api: Any) -> None:
    # ---- control: the installed UserPromptSubmit hook injects unread mail, so the
    # "injected once" check below would see a second copy if the cursor lagged
    control = f"C-{uuid.uuid4().hex[:8]}"
    session.mb.send(f"plain {control}", to="frontend", sender="backend")
    session.type_prompt("hi")
    assert seen(fake_api, control), session.screen()
    session.until("idle")

    # ---- idle: the message goes in as a prompt, once
    marker = f"E2E-{uuid.uuid4().hex[:8]}"
    res = kei("send", "--from", "backend", "--live", "@frontend", f"hello {marker}\nsecond line")
    assert res.returncode == 0, res.stderr + session.screen()
    assert seen(fake_api, marker), session.screen()
    # typed once, and the UserPromptSubmit hook did not inject it a second time
    assert occurrences(fake_api, marker) == 1
    assert session.mb.count("frontend") == 0
    session.until("idle")

    # ---- busy: exit 6, then `process` delivers once the turn ends
    fake_api.delay = 8.0
    session.type_prompt("a slow question")
    session.until("busy", 30)
    queued = f"Q-{uuid.uuid4().hex[:8]}"
    res = kei("send", "--from", "backend", "--live", "@frontend", queued)
    assert res.returncode == 6, res.stderr
    fake_api.delay = 0.0
    assert session.mb.count("frontend") == 1
    session.until("idle", 60)
    assert fake_api.count_containing(queued) == 0
    res = kei("process")
    assert res.returncode == 0, res.stderr
    assert seen(fake_api, queued), session.screen()
    session.until("idle")

    # ---- permission prompt: exit 5, then approve runs the tool
    target = Path(session.server.tmpdir) / "approved-file"
    fake_api.reply_tool(f"touch {target}", "Create the file")
    session.type_prompt("please create the file")
    session.until("waiting", 60)
    res = kei("send", "--from", "backend", "--live", "@frontend", "while asking")
    assert res.returncode == 5, res.stderr
    assert session.mb.count("frontend") == 1
    if session.tui.mode == "auto":
        # 2.1.332 behind a gateway (here the fake API): the auto-mode dialog, not a menu;
        # it has no "don't ask again", so 2 is refused and nothing is pressed
        assert session.look().kind == "auto-check", session.screen()
        res = kei("approve", "frontend", "2")
        assert res.returncode == 2, res.stderr
        assert "Auto mode can't check actions" in res.stderr
        assert session.look().kind == "auto-check", session.screen()
    else:
        assert session.look().kind == "menu", session.screen()
    res = kei("approve", "frontend")
    assert res.returncode == 0, res.stderr + session.screen()
    if session.tui.mode == "auto":
        assert "stay in auto mode, then Yes" in res.stdout, res.stdout
    assert wait_until(target.exists, 60, 0.2), session.screen()
    session.until("idle", 60)
    assert kei("process").returncode == 0
    assert seen(fake_api, "while asking")
    assert os.path.exists(target)
    session.until("idle")

    # ---- cancel with text: Escape interrupts, the prompt Claude Code puts back is
    # cleared, and the new text goes in alone
    fake_api.delay = 8.0
    session.type_prompt("the old plan\nin two lines")
    session.until("busy", 30)
    new = f"N-{uuid.uuid4().hex[:8]}"
    res = kei("cancel", "--from", "lead", "frontend", "new", "plan", new)
    fake_api.delay = 0.0
    assert res.returncode == 0, res.stderr + session.screen()
    assert seen(fake_api, new), session.screen()
    assert "the old plan" not in last_message_with(fake_api, new)
