"""Always reachable (#14), with the real Claude Code TUI in a private tmux server.

A session is woken by mail after each way a turn can end without a Stop hook:
Escape mid-turn, a denied permission prompt, ``kei message cancel``; and after
``/clear``, ``/compact`` and ``--continue`` (a resumed session). Each scenario
starts its turn *through a wake* (the waiter is used up by it, which is how the
bug showed: only Stop and SessionStart armed a new one), interrupts it, and
then sends a second message: it must reach the model within 5 s, exactly once.
The default install (wake, mid-turn) is used. Budget: about 25 s per scenario
and version.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import _VERSIONS, ClaudeTUI, _usable, claude_env
from test_wake_e2e import armed_for, copies

from kei_message.agents.claude import waiter as wake
from kei_message.live import deliver, registry, screen
from kei_message.mailbox import Mailbox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tmuxharness import Server, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.claude, pytest.mark.tmux, pytest.mark.timeout(240)]

BIN = Path(sys.executable).parent
NAME = "worker"
WAKE_WITHIN = 5.0
QUIET = 3.0


@pytest.fixture(params=[pytest.param(vp, id=f"cc{vp[0]}") for vp in _VERSIONS])
def tui(request: pytest.FixtureRequest) -> ClaudeTUI:
    """The interactive client in its default permission mode (a permission prompt shows)."""
    version, path = request.param
    return ClaudeTUI(version, "default", _usable(version, path))


class Worker:
    def __init__(self, server: Server, pane: str, mb: Mailbox) -> None:
        self.server, self.pane, self.mb = server, pane, mb

    def screen(self) -> str:
        return self.server.tmux("capture-pane", "-p", "-t", self.pane)

    def state(self) -> str:
        found = registry.find(self.mb.store, NAME)
        return deliver.look(found[0]).state if found else "none"

    def until(self, *want: str, timeout: float = 60) -> str:
        got = wait_until(lambda: (s := self.state()) in want and s, timeout, 0.1)
        assert got, f"never {want} (is {self.state()}):\n{self.screen()}"
        return str(got)

    def keys(self, *keys: str) -> None:
        self.server.tmux("send-keys", "-t", self.pane, *keys)

    def type_prompt(self, text: str) -> None:
        self.server.tmux("send-keys", "-t", self.pane, "-l", "--", text)
        time.sleep(0.3)
        self.keys("Enter")

    def empty_composer(self) -> None:
        """What a user does with what Escape put back into the prompt: delete it."""
        for _ in range(20):
            if self.state() != screen.DRAFT:
                break
            self.keys("End", "C-u", "BSpace")
            time.sleep(0.2)
        self.until(screen.IDLE, timeout=10)


@pytest.fixture
def worker(
    tui: ClaudeTUI, fake_api: Any, tmp_path: Path, mailbox_dir: Path, monkeypatch: Any
) -> Iterator[Worker]:
    project = tmp_path / NAME
    project.mkdir()
    home = tmp_path / "home"
    env = claude_env(home, fake_api.url, project)
    env["KEI_MAILBOX_DIR"] = str(mailbox_dir)
    res = subprocess.run(
        [str(BIN / "kei-message"), "install"], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    server = Server()
    monkeypatch.setenv("TMUX_TMPDIR", server.tmpdir)
    server.env = lambda: {**env, "TMUX_TMPDIR": server.tmpdir}  # type: ignore[method-assign]
    try:
        pane, _ = server.spawn(tui.argv, str(project), width=120, height=40)
        w = Worker(server, pane, Mailbox())
        assert wait_until(lambda: armed_for(NAME), 60, 0.1), w.screen()
        w.until(screen.IDLE)
        time.sleep(1.0)  # the SessionStart hook beside the waiter has finished
        yield w
    finally:
        server.close()
        left = wait_until(lambda: not [x for x in wake.waiters() if x["alive"]], 10)
        for x in wake.waiters():
            if x["alive"]:
                import os
                import signal

                os.kill(x["pid"], signal.SIGKILL)
        assert left, "a waiter outlived its Claude Code"


def wake_into(worker: Worker, api: Any, text: str) -> None:
    """Send ``text``; the waiter wakes the idle session with it (and is used up)."""
    worker.mb.send(text, to=NAME, sender="lead")
    assert wait_until(lambda: copies(api, text) >= 1, 30, 0.1), worker.screen()


def reached_once(worker: Worker, api: Any) -> float:
    """Send a fresh message to the idle session: it reaches the model, once. Returns seconds."""
    assert worker.state() == screen.IDLE, worker.screen()
    text = f"second-{uuid.uuid4().hex[:8]}"
    sent = time.monotonic()
    worker.mb.send(text, to=NAME, sender="lead")
    ok = wait_until(lambda: copies(api, text) >= 1, WAKE_WITHIN, 0.05)
    took = time.monotonic() - sent
    assert ok, (
        f"not woken within {WAKE_WITHIN}s; waiters {wake.waiters()}; "
        f"unread {[r['body'] for r in worker.mb.unread(NAME)]}\n{worker.screen()}"
    )
    time.sleep(QUIET)
    assert copies(api, text) == 1
    n = sum(1 for b in api.texts() if text in b and '"tools"' in b)
    assert n >= 1
    assert worker.mb.count(NAME) == 0
    print(f"\nwoken {took * 1000:.0f} ms after the send")
    return took


def test_reachable_after_escape_mid_turn(worker: Worker, fake_api: Any) -> None:
    fake_api.delay = 8.0  # the wake turn's request hangs: the session is busy
    wake_into(worker, fake_api, "first: think about it")
    worker.until(screen.BUSY, timeout=10)
    worker.keys("Escape")
    worker.until(screen.IDLE, screen.DRAFT, timeout=10)
    fake_api.delay = 0.0
    worker.empty_composer()
    reached_once(worker, fake_api)


def test_reachable_after_a_denied_permission_prompt(worker: Worker, fake_api: Any) -> None:
    fake_api.reply_tool("touch m2", "make m2")
    wake_into(worker, fake_api, "first: TASK touch m2")
    worker.until(screen.WAITING, timeout=30)
    worker.keys("Escape")  # no: deny
    worker.until(screen.IDLE, screen.DRAFT, timeout=10)
    worker.empty_composer()
    reached_once(worker, fake_api)


def test_reachable_after_cancel(worker: Worker, fake_api: Any) -> None:
    fake_api.reply_tool("touch m2", "make m2")
    wake_into(worker, fake_api, "first: TASK touch m2")
    worker.until(screen.WAITING, timeout=30)
    t = time.monotonic()
    res = subprocess.run(
        [str(BIN / "kei-message"), "cancel", NAME], capture_output=True, text=True, timeout=30
    )
    took = time.monotonic() - t
    assert res.returncode == 0, res.stderr
    assert took < 3.0, f"cancel took {took:.2f}s"
    worker.until(screen.IDLE, screen.DRAFT, timeout=10)
    worker.empty_composer()
    reached_once(worker, fake_api)


def test_a_wake_never_lands_on_a_draft(worker: Worker, fake_api: Any) -> None:
    """Plain ``send`` (no ``--live``) while the user types: the waiter reads the pane
    and keeps the mail until the composer is free; a submitted draft takes it along."""
    draft = f"half-{uuid.uuid4().hex[:6]}"
    worker.server.tmux("send-keys", "-t", worker.pane, "-l", "--", draft)
    worker.until(screen.DRAFT, timeout=10)
    text = f"mail-{uuid.uuid4().hex[:8]}"
    n = len(fake_api.requests)
    worker.mb.send(text, to=NAME, sender="lead")
    time.sleep(QUIET + 1)
    assert len(fake_api.requests) == n and copies(fake_api, text) == 0, worker.screen()
    assert worker.state() == screen.DRAFT and draft in worker.screen()
    assert worker.mb.count(NAME) == 1
    # the user deletes the draft: the mail goes in now, once
    worker.empty_composer()
    assert wait_until(lambda: copies(fake_api, text) >= 1, WAKE_WITHIN, 0.05), worker.screen()
    worker.until(screen.IDLE, timeout=30)
    time.sleep(1.0)
    assert copies(fake_api, text) == 1 and worker.mb.count(NAME) == 0

    # a draft that is submitted: the user's prompt carries the mail, in one request
    draft = f"half-{uuid.uuid4().hex[:6]}"
    worker.server.tmux("send-keys", "-t", worker.pane, "-l", "--", draft)
    worker.until(screen.DRAFT, timeout=10)
    text = f"mail-{uuid.uuid4().hex[:8]}"
    n = len(fake_api.requests)
    worker.mb.send(text, to=NAME, sender="lead")
    time.sleep(2.0)
    assert len(fake_api.requests) == n, worker.screen()
    worker.keys("Enter")

    def turns() -> list[str]:  # model turns (side requests such as titles offer no tools)
        return [json.dumps(b) for b in list(fake_api.requests)[n:] if b.get("tools")]

    # the prompt hook's context comes as its own (system) message beside the prompt
    assert wait_until(lambda: any(text in b for b in turns()), 30, 0.1), worker.screen()
    worker.until(screen.IDLE, timeout=30)
    time.sleep(QUIET)
    first, *later = turns()
    assert draft in first and first.count(text) == 1
    assert all(b.count(text) == 1 for b in later)  # in the history once, never again
    assert worker.mb.count(NAME) == 0


def test_mail_sent_during_a_turn_stays_for_cancel(worker: Worker, fake_api: Any) -> None:
    """Issue 14, item 2: mail sent while a turn runs is not handed to Claude Code (it
    would run as a queued wake turn after ``cancel``); ``cancel`` returns at once and
    the mail waits for the user's next prompt."""
    fake_api.delay = 12.0
    n = len(fake_api.requests)
    worker.type_prompt("a long job")
    # the turn's request is out: the prompt's own hooks are done (they would take the mail)
    assert wait_until(lambda: len(fake_api.requests) > n, 20, 0.05), worker.screen()
    worker.until(screen.BUSY, timeout=20)
    text = f"during-{uuid.uuid4().hex[:8]}"
    worker.mb.send(text, to=NAME, sender="lead")
    time.sleep(2.0)
    assert worker.mb.count(NAME) == 1, "the waiter took mail while the turn ran"
    t = time.monotonic()
    res = subprocess.run(
        [str(BIN / "kei-message"), "cancel", NAME], capture_output=True, text=True, timeout=30
    )
    took = time.monotonic() - t
    assert res.returncode == 0, res.stderr
    assert took < 3.0, f"cancel took {took:.2f}s"
    fake_api.delay = 0.0
    worker.until(screen.IDLE, screen.DRAFT, timeout=10)
    worker.empty_composer()
    time.sleep(QUIET + 1)
    assert not [b for b in fake_api.texts() if text in b], "a queued wake turn ran after cancel"
    assert worker.mb.count(NAME) == 1
    n = len(fake_api.requests)
    worker.type_prompt("next one")

    def turns() -> list[str]:  # model turns (side requests such as titles offer no tools)
        return [json.dumps(b) for b in list(fake_api.requests)[n:] if b.get("tools")]

    assert wait_until(lambda: any(text in b for b in turns()), 30, 0.1), worker.screen()
    worker.until(screen.IDLE, timeout=30)
    time.sleep(QUIET)
    first, *later = turns()
    assert "next one" in first and first.count(text) == 1
    assert all(b.count(text) == 1 for b in later)
    assert worker.mb.count(NAME) == 0


def test_reachable_after_clear(worker: Worker, fake_api: Any) -> None:
    wake_into(worker, fake_api, "first: hello")
    worker.until(screen.IDLE, timeout=30)
    before = {x["session_id"] for x in worker.mb.store.sessions()}
    worker.type_prompt("/clear")
    # /clear starts a new session id (SessionStart, source "clear")
    assert wait_until(
        lambda: {x["session_id"] for x in worker.mb.store.sessions()} - before, 20, 0.1
    ), worker.screen()
    worker.until(screen.IDLE, timeout=10)
    time.sleep(1.0)
    reached_once(worker, fake_api)


def test_reachable_after_compaction(worker: Worker, fake_api: Any) -> None:
    wake_into(worker, fake_api, "first: hello")
    worker.until(screen.IDLE, timeout=30)
    for i in range(3):  # "Not enough messages to compact" after one exchange
        n = len(fake_api.requests)
        worker.type_prompt(f"chat {i}")
        assert wait_until(lambda n=n: len(fake_api.requests) > n, 30, 0.1), worker.screen()
        worker.until(screen.IDLE, timeout=30)
    n = len(fake_api.requests)
    worker.type_prompt("/compact")
    # the summary request goes to the (fake) API; then the session is idle again
    assert wait_until(lambda: len(fake_api.requests) > n, 30, 0.1), worker.screen()
    worker.until(screen.IDLE, timeout=30)
    assert wait_until(lambda: "Compacted" in worker.screen(), 10), worker.screen()
    time.sleep(1.0)
    reached_once(worker, fake_api)


def test_reachable_after_resume(
    worker: Worker, fake_api: Any, tui: ClaudeTUI, tmp_path: Path
) -> None:
    wake_into(worker, fake_api, "first: hello")
    worker.until(screen.IDLE, timeout=30)
    old = {x["claude_pid"] for x in wake.waiters() if x["alive"]}
    # leave Claude Code and start it again with --continue in a new pane (a spare
    # window keeps the private tmux server up meanwhile)
    worker.server.spawn(["sleep", "300"], str(tmp_path))
    worker.type_prompt("/exit")
    assert wait_until(lambda: not [x for x in wake.waiters() if x["alive"]], 20), worker.screen()
    pane, _ = worker.server.spawn(
        [*tui.argv, "--continue"], str(tmp_path / NAME), width=120, height=40
    )
    worker.pane = pane
    assert wait_until(lambda: (w := armed_for(NAME)) and w["claude_pid"] not in old, 60, 0.1), (
        worker.screen()
    )
    worker.until(screen.IDLE, timeout=30)
    time.sleep(1.0)
    n = len(fake_api.requests)
    reached_once(worker, fake_api)
    # it was resumed: the request that carries the new message has the old conversation
    assert any("first: hello" in t for t in fake_api.texts()[n:]), "not a resumed conversation"
