"""One delivery system (SPEC §8, #14): `send --live` and the wake waiter, `cancel` holds.

A fake Claude Code TUI runs in a private tmux server (tests/fake_claude_tui.py);
a real ``kei-message-hook wake`` waiter runs beside it for the same name, as
under Claude Code (its "Claude Code" is this test process). Each case asserts
the exit code, what the command said, and where the message went.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kei_message.agents.claude import waiter as wake
from kei_message.mailbox import Mailbox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_live import kei, start, until_state
from tmuxharness import Server, wait_until

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

BIN = Path(sys.executable).parent
NAME = "frontend"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    srv = Server()
    monkeypatch.setenv("TMUX_TMPDIR", srv.tmpdir)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def mb(mailbox_dir: Path) -> Mailbox:
    return Mailbox()


class Waiter:
    def __init__(self, session: str = "sess-w") -> None:
        r, w = os.pipe()
        os.write(w, json.dumps({"session_id": session, "cwd": f"/home/u/{NAME}"}).encode())
        os.close(w)
        try:
            self.proc = subprocess.Popen(
                [str(BIN / "kei-message-hook"), "wake"],
                stdin=r,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        finally:
            os.close(r)
        assert wait_until(lambda: NAME in wake.armed_names(Mailbox().store), 10), "not armed"

    def finish(self, timeout: float = 10) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.fixture
def waiter() -> Iterator[Waiter]:
    w = Waiter()
    try:
        yield w
    finally:
        w.kill()


def send_live(text: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t = time.monotonic()
    res = kei("send", "--from", "backend", "--live", f"@{NAME}", text)
    return res, time.monotonic() - t


# ----------------------------------------------------------------------------- with a waiter
def test_idle_with_a_waiter_exit_0_delivered_by_the_waiter(
    server: Server, tmp_path: Path, mb: Mailbox, waiter: Waiter
) -> None:
    fp = start(server, tmp_path, mb, NAME)
    res, _ = send_live("hello-idle")
    assert res.returncode == 0, res.stderr
    assert "delivered by the waiter" in res.stdout
    code, out = waiter.finish()
    assert code == 2 and "hello-idle" in out
    assert not fp.events("paste") and not fp.prompts()  # not typed as well
    assert mb.count(NAME) == 0


def test_busy_with_a_waiter_exit_0_delivered_by_the_waiter(
    server: Server, tmp_path: Path, mb: Mailbox, waiter: Waiter
) -> None:
    fp = start(server, tmp_path, mb, NAME)
    fp.hold(True)
    fp.type_prompt("a long job")
    until_state(mb, NAME, "busy")
    res, _ = send_live("hello-busy")
    assert res.returncode == 0, res.stderr
    assert "delivered by the waiter" in res.stdout
    assert waiter.finish()[0] == 2
    assert not fp.events("paste")
    fp.hold(False)


def test_waiting_with_a_waiter_exit_0_delivered_by_the_waiter(
    server: Server, tmp_path: Path, mb: Mailbox, waiter: Waiter
) -> None:
    fp = start(server, tmp_path, mb, NAME)
    fp.type_prompt("please ASK-PERMISSION")
    until_state(mb, NAME, "waiting")
    res, _ = send_live("hello-waiting")
    assert res.returncode == 0, res.stderr
    assert "delivered by the waiter" in res.stdout
    assert waiter.finish()[0] == 2
    assert not fp.events("paste") and not fp.events("approve")


def test_draft_with_a_waiter_exit_6_held_until_the_next_prompt(
    server: Server, tmp_path: Path, mb: Mailbox, waiter: Waiter
) -> None:
    fp = start(server, tmp_path, mb, NAME)
    server.tmux("send-keys", "-t", fp.pane, "-l", "half a thought")
    until_state(mb, NAME, "draft")
    res, _ = send_live("hello-draft")
    assert res.returncode == 6, res.stderr
    assert "on hold" in res.stderr and "next prompt" in res.stderr
    time.sleep(2.5)  # the waiter leaves the user's draft alone
    assert waiter.proc.poll() is None
    assert [r["body"] for r in mb.unread(NAME)] == ["hello-draft"]
    assert not fp.events("paste") and not fp.prompts()
    # the user submits: the UserPromptSubmit hook ends the hold and brings the mail in
    hook = subprocess.run(
        [str(BIN / "kei-message-hook"), "user-prompt-submit"],
        input=json.dumps(
            {"session_id": "sess-w", "cwd": f"/home/u/{NAME}", "prompt": "half a thought"}
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "hello-draft" in hook.stdout
    assert wake.hold_mark(NAME) is None
    assert mb.count(NAME) == 0
    assert waiter.proc.poll() is None  # nothing left for it: it goes on waiting


# ----------------------------------------------------------------------------- no waiter
def test_no_waiter_idle_typed_busy_draft_waiting(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = start(server, tmp_path, mb, NAME)
    res, _ = send_live("typed-one")
    assert res.returncode == 0, res.stderr
    assert "-> typed 1 message into frontend's pane" in res.stdout
    assert wait_until(lambda: len(fp.prompts()) == 1, 5)
    until_state(mb, NAME, "idle")

    fp.hold(True)
    fp.type_prompt("a long job")
    until_state(mb, NAME, "busy")
    res, _ = send_live("queued-busy")
    assert res.returncode == 6 and "is busy" in res.stderr, res.stderr
    fp.hold(False)
    until_state(mb, NAME, "idle")
    kei("inbox", "--me", NAME)  # read: the next cases start from nothing unread

    server.tmux("send-keys", "-t", fp.pane, "-l", "half")
    until_state(mb, NAME, "draft")
    res, _ = send_live("queued-draft")
    assert res.returncode == 6 and "unsent text" in res.stderr, res.stderr
    assert wake.hold_mark(NAME) is None  # no waiter: nothing to hold back
    server.tmux("send-keys", "-t", fp.pane, "C-u")
    until_state(mb, NAME, "idle")
    kei("inbox", "--me", NAME)

    fp.type_prompt("ASK-PERMISSION")
    until_state(mb, NAME, "waiting")
    res, _ = send_live("rejected-waiting")
    assert res.returncode == 5 and "permission prompt" in res.stderr, res.stderr
    assert mb.count(NAME) == 1


# ----------------------------------------------------------------------------- cancel
def test_cancel_returns_within_3s_and_holds_what_waits(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = start(server, tmp_path, mb, NAME)
    fp.hold(True)  # busy until Escape
    fp.type_prompt("a long job")
    until_state(mb, NAME, "busy")
    mb.send("waited-during-the-turn", to=NAME, sender="backend")
    t = time.monotonic()
    res = kei("cancel", NAME)
    took = time.monotonic() - t
    assert res.returncode == 0, res.stderr
    assert took < 3.0, f"cancel took {took:.2f}s"
    assert fp.events("interrupt")
    assert "stays stopped" in res.stdout
    assert wake.hold_mark(NAME) is not None
    fp.hold(False)
    # a waiter armed now (as the next hook event would) does not push what waited
    w = Waiter(session="sess-after-cancel")
    try:
        time.sleep(2.5)
        assert w.proc.poll() is None
        assert [r["body"] for r in mb.unread(NAME)] == ["waited-during-the-turn"]
        # newer mail ends the hold: both go in, once
        mb.send("new-after-cancel", to=NAME, sender="backend")
        code, out = w.finish()
        assert code == 2
        assert out.count("waited-during-the-turn") == 1 and out.count("new-after-cancel") == 1
        assert wake.hold_mark(NAME) is None
        assert mb.count(NAME) == 0
    finally:
        w.kill()


def test_user_prompt_submit_ends_the_hold(mb: Mailbox, tmp_path: Path) -> None:
    wake.hold(NAME, 0)
    assert wake.hold_mark(NAME) == 0
    hook = subprocess.run(
        [str(BIN / "kei-message-hook"), "user-prompt-submit"],
        input=json.dumps({"session_id": "s", "cwd": str(tmp_path / NAME), "prompt": "go"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert hook.returncode == 0 and hook.stdout == ""
    assert wake.hold_mark(NAME) is None


def test_process_leaves_a_cancelled_session_alone_until_newer_mail(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = start(server, tmp_path, mb, NAME)
    fp.hold(True)
    fp.type_prompt("a long job")
    until_state(mb, NAME, "busy")
    mb.send("waited-before-cancel", to=NAME, sender="backend")
    assert kei("cancel", NAME).returncode == 0
    fp.hold(False)
    server.tmux("send-keys", "-t", fp.pane, "C-u")  # the user empties the prompt
    until_state(mb, NAME, "idle")
    res = kei("process")
    assert res.returncode == 0 and f"{NAME}: held" in res.stdout, res.stdout
    assert not fp.events("paste")
    assert mb.count(NAME) == 1
    mb.send("newer-after-cancel", to=NAME, sender="backend")
    res = kei("process")
    assert res.returncode == 0 and "typed 2 messages" in res.stdout, res.stdout
    assert wait_until(lambda: len(fp.prompts()) == 2, 5)
    assert "waited-before-cancel" in fp.prompts()[1] and "newer-after-cancel" in fp.prompts()[1]
    assert wake.hold_mark(NAME) is None
