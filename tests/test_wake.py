"""The wake hook (asyncRewake waiter) as a real subprocess: stdin JSON in, stdout and exit code out.

Claude Code starts each hook as ``/bin/sh -c COMMAND`` in a process session of
its own; these tests start the waiter the same way (``start_new_session``), so
the process that started it (pytest, or a stand-in parent the test kills)
plays Claude Code. Budget: about 25 s.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kei_message.agents.claude import waiter as wake
from kei_message.presence import who

SESSION = "0b7f3c1e-5d2a-4c8e-9a61-wake00000001"


def payload(session: str = SESSION, cwd: str = "/home/u/proj") -> bytes:
    return json.dumps(
        {
            "session_id": session,
            "transcript_path": f"/home/u/.claude/projects/-home-u-proj/{session}.jsonl",
            "cwd": cwd,
            "hook_event_name": "Stop",
            "stop_hook_active": False,
        }
    ).encode()


def hook_cmd() -> list[str]:
    return [os.path.join(os.path.dirname(sys.executable), "kei-message-hook"), "wake"]


class Waiter:
    """One waiter process; reaped however the test ends."""

    def __init__(self, env: dict[str, str] | None = None, session: str = SESSION) -> None:
        self.started = time.monotonic()
        # stdin: the hook input, then end of file, as Claude Code writes it
        r, w = os.pipe()
        os.write(w, payload(session))
        os.close(w)
        try:
            self.proc = subprocess.Popen(
                hook_cmd(),
                stdin=r,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        finally:
            os.close(r)

    def finish(self, timeout: float = 10) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.fixture
def waiters() -> Iterator[list[Waiter]]:
    started: list[Waiter] = []
    yield started
    for w in started:
        w.kill()


def start(waiters: list[Waiter], **kw: Any) -> Waiter:
    w = Waiter(**kw)
    waiters.append(w)
    return w


def wait_armed(session: str = SESSION, timeout: float = 10) -> dict[str, Any]:
    """Block until a live waiter for ``session`` has its lock: sends after this wake it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in wake.waiters():
            if w["session_id"] == session and w["alive"]:
                return w
        time.sleep(0.02)
    raise AssertionError(f"no waiter armed for {session} within {timeout}s")


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.05)
    return False


# ----------------------------------------------------------------------------- waking
def test_exits_2_with_the_message_soon_after_a_send(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    w = start(waiters)
    wait_armed()
    assert w.proc.poll() is None  # nothing unread: it waits
    sent = time.monotonic()
    rec = mailbox.send("ship the wake hook", to="proj", sender="backend")
    code, out, err = w.finish()
    latency = time.monotonic() - sent
    assert code == 2
    assert err == ""  # Claude Code would show the model stderr instead of stdout
    assert "kei mailbox: 1 new message for proj" in out
    assert f"#{rec['id']}" in out and "ship the wake hook" in out
    assert "/msg @backend" in out
    assert latency < 5, latency
    assert mailbox.unread("proj") == []  # the cursor moved past it
    assert wake.waiters() == []  # its file is gone with it


def test_messages_already_waiting_wake_at_once(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    mailbox.send("one", to="proj", sender="a")
    mailbox.send("two", to="all", sender="b")
    mailbox.send("not mine", to="other", sender="a")
    code, out, _ = start(waiters).finish()
    assert code == 2
    assert "2 new messages for proj" in out
    assert out.index("one") < out.index("two")
    assert "not mine" not in out
    assert mailbox.unread("proj") == []


def test_identity_from_kei_mailbox_me(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    w = start(waiters, env={"KEI_MAILBOX_ME": "frontend"})
    wait_armed()
    mailbox.send("for proj", to="proj", sender="a")
    mailbox.send("for frontend", to="frontend", sender="a")
    code, out, _ = w.finish()
    assert code == 2 and "for frontend" in out and "for proj" not in out
    assert [r["body"] for r in mailbox.unread("proj")] == ["for proj"]


def test_over_budget_takes_what_fits_and_leaves_the_rest(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    for i in range(6):
        mailbox.send(f"m{i} " + "x" * 1500, to="proj", sender="a")
    code, out, _ = start(waiters, env={"KEI_MAILBOX_HOOK_BUDGET": "4000"}).finish()
    assert code == 2
    assert len(out) <= 4000
    left = len(mailbox.unread("proj"))
    assert 0 < left < 6
    assert f"{left} more messages for proj wait" in out


def test_other_traffic_does_not_wake_it(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    """Never exit 2 without a message: a send to someone else, or its own send, is not mail."""
    w = start(waiters, env={"KEI_MAILBOX_WAKE_DEADLINE": "2"})
    wait_armed()
    mailbox.send("for someone else", to="other", sender="a")
    mailbox.send("from proj itself", to="all", sender="proj")
    code, out, err = w.finish()
    assert (code, out, err) == (0, "", "")


def test_consumed_by_the_waiter_never_injected_again(mailbox, waiters, bin_dir) -> None:  # type: ignore[no-untyped-def]
    w = start(waiters)
    wait_armed()
    mailbox.send("exactly once please", to="proj", sender="a")
    code, out, _ = w.finish()
    assert code == 2 and "exactly once please" in out
    event = {
        "session_id": SESSION,
        "transcript_path": "/tmp/t.jsonl",
        "cwd": "/home/u/proj",
        "prompt_id": "p1",
        "permission_mode": "default",
        "hook_event_name": "UserPromptSubmit",
        "prompt": "hello",
    }
    for cmd in (
        [str(bin_dir / "kei-message-hook"), "user-prompt-submit"],
        [str(bin_dir / "kei-message-hook"), "stop"],
        [str(bin_dir / "kei-message-hook"), "wake"],
    ):
        env = {**os.environ, "KEI_MAILBOX_WAKE_DEADLINE": "1"}
        res = subprocess.run(
            cmd, input=json.dumps(event).encode(), capture_output=True, timeout=20, env=env
        )
        assert res.returncode == 0, (cmd, res.stderr)
        assert b"exactly once please" not in res.stdout, cmd


# ----------------------------------------------------------------------------- exit 0
def test_bypass_exits_0_and_changes_nothing(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    mailbox.send("waiting here", to="proj", sender="a")
    code, out, err = start(waiters, env={"KEI_MAILBOX_BYPASS": "1"}).finish()
    assert (code, out, err) == (0, "", "")
    assert len(mailbox.unread("proj")) == 1


def test_second_waiter_for_the_same_session_exits_0(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    first = start(waiters)
    wait_armed()
    code, out, err = start(waiters).finish()
    assert (code, out, err) == (0, "", "")
    assert first.proc.poll() is None
    assert [w["pid"] for w in wake.waiters()] == [first.proc.pid]
    mailbox.send("hi", to="proj", sender="a")
    assert first.finish()[0] == 2


def test_exits_0_at_its_deadline(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    w = start(waiters, env={"KEI_MAILBOX_WAKE_DEADLINE": "1.5"})
    code, out, err = w.finish(timeout=15)
    elapsed = time.monotonic() - w.started
    assert (code, out, err) == (0, "", "")
    assert 1.5 <= elapsed < 12
    assert wake.waiters() == []


def test_default_deadline_is_under_the_registered_timeout(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("KEI_MAILBOX_WAKE_DEADLINE", raising=False)
    assert 0 < wake.HOOK_TIMEOUT - wake.deadline() <= 120
    assert wake.HOOK_TIMEOUT * 1000 < 2**31 - 1  # Claude Code's timer would overflow


def test_installer_and_plugin_register_the_timeout_the_waiter_expects() -> None:
    from kei_message.agents.claude import install

    assert install.WAKE_TIMEOUT == wake.HOOK_TIMEOUT
    plugin = json.loads((Path(__file__).parent.parent / "hooks" / "hooks.json").read_text())
    wakes = [
        h
        for event in ("SessionStart", "UserPromptSubmit", "PreToolUse", "Stop")
        for group in plugin["hooks"][event]
        for h in group["hooks"]
        if h["command"].endswith(" wake")
    ]
    assert len(wakes) == 4
    assert all(h["timeout"] == wake.HOOK_TIMEOUT and h["asyncRewake"] for h in wakes)


STAND_IN = """
import subprocess, sys
out = open(sys.argv[1], "wb")
p = subprocess.Popen(["/bin/sh", "-c", sys.argv[2]], stdin=subprocess.PIPE, stdout=out,
                     start_new_session=True)
p.stdin.write(sys.argv[3].encode()); p.stdin.close()
p.wait()
"""


def test_exits_0_when_its_claude_code_is_gone(mailbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Killing the stand-in for Claude Code: the shell lives on, the waiter must leave
    without consuming what arrives after."""
    out = tmp_path / "out"
    command = shlex.join(hook_cmd())  # the shell waits for it, as under Claude Code
    parent = subprocess.Popen(
        [sys.executable, "-c", STAND_IN, str(out), command, payload().decode()],
        stdout=subprocess.DEVNULL,
    )
    try:
        waiter = wait_armed()
        assert waiter["claude_pid"] == parent.pid
        assert wake.armed(mailbox.store, SESSION)
        parent.kill()
        parent.wait(timeout=10)
        mailbox.send("nobody is there to read this", to="proj", sender="a")
        assert gone(waiter["pid"], 10), "the waiter outlived its Claude Code"
        assert out.read_bytes() == b""
        assert [r["body"] for r in mailbox.unread("proj")] == ["nobody is there to read this"]
        assert wake.waiters() == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        for w in wake.waiters():
            if w["alive"]:
                os.kill(w["pid"], signal.SIGKILL)


def test_exits_0_when_its_stdout_is_closed(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    """2.1.197 can leave a waiter running with its output pipe closed: output would be lost."""
    w = start(waiters)
    wait_armed()
    assert w.proc.stdout is not None
    w.proc.stdout.close()
    assert w.proc.wait(timeout=10) == 0  # it notices with no message in sight
    assert wake.waiters() == []
    mailbox.send("do not lose me", to="proj", sender="a")
    assert [r["body"] for r in mailbox.unread("proj")] == ["do not lose me"]


# ----------------------------------------------------------------------------- cost, who
def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_no_cpu_spin_while_waiting(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    w = start(waiters)
    wait_armed()
    time.sleep(0.3)  # start-up (imports) is not waiting
    cpu0, t0 = _cpu_seconds(w.proc.pid), time.monotonic()
    time.sleep(3)
    # messages for others keep the bus moving: each wakes the waiter, none is its mail
    for i in range(5):
        mailbox.send(f"noise {i}", to="other", sender="a")
    time.sleep(1)
    used, wall = _cpu_seconds(w.proc.pid) - cpu0, time.monotonic() - t0
    assert w.proc.poll() is None
    assert used < 0.05 * wall, f"{used:.3f}s CPU in {wall:.1f}s"


def test_armed_and_who(mailbox, waiters) -> None:  # type: ignore[no-untyped-def]
    assert not wake.armed(mailbox.store, SESSION)
    mailbox.send("hello", to="other", sender="proj")
    w = start(waiters)
    wait_armed()
    assert wake.armed(mailbox.store, SESSION)
    assert not wake.armed(mailbox.store, "some-other-session")
    rows = {r["name"]: r for r in who(mailbox)}
    assert rows["proj"]["waiter"] is True
    assert rows["other"]["waiter"] is False
    found = wake.waiters()
    assert [(x["session_id"], x["pid"], x["alive"]) for x in found] == [(SESSION, w.proc.pid, True)]
    w.kill()  # SIGKILL: no chance to remove its file
    stale = wake.waiters()
    assert [(x["pid"], x["alive"]) for x in stale] == [(w.proc.pid, False)]
    assert not wake.armed(mailbox.store, SESSION)
    # a new waiter takes over the stale file
    start(waiters)
    assert wait_armed()["alive"]


GATED_STAND_IN = """
import os, subprocess, sys, time
out, gate = open(sys.argv[1], "wb"), sys.argv[4]
while not os.path.exists(gate):
    time.sleep(0.02)
p = subprocess.Popen(["/bin/sh", "-c", sys.argv[2]], stdin=subprocess.PIPE, stdout=out,
                     start_new_session=True)
p.stdin.write(sys.argv[3].encode()); p.stdin.close()
p.wait()
"""


def test_a_running_session_with_no_waiter_is_named_by_who_and_doctor(  # type: ignore[no-untyped-def]
    mailbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Always reachable (#14): a live Claude Code with no waiter is reported, by name."""
    from kei_message.admin.doctor import check

    script = tmp_path / "claude_standin.py"  # looks like Claude Code to `procs.is_claude`
    script.write_text(GATED_STAND_IN)
    gate = tmp_path / "gate"
    command = shlex.join(hook_cmd())
    claude = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(tmp_path / "out"),
            command,
            payload().decode(),
            str(gate),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        mailbox.store.put_session(
            SESSION,
            {
                "name": "proj",
                "session_id": SESSION,
                "cwd": "/home/u/proj",
                "pid": claude.pid,
                "last_seen": "2026-01-01T00:00:00.000Z",
                "tmux": None,
                "tmux_pane": None,
            },
        )
        (row,) = wake.unreachable(mailbox.store)
        assert (row["name"], row["pid"], row["pane"]) == ("proj", claude.pid, None)
        rows = {r["name"]: r for r in who(mailbox)}
        assert rows["proj"]["unreachable"] == [claude.pid] and rows["proj"]["waiter"] is False
        from kei_message.cli.output import print_who

        print_who(list(rows.values()), False)
        note = f"note: proj (Claude Code pid {claude.pid}) runs with no waiter armed"
        assert note in capsys.readouterr().out
        remote = None if mailbox.store.name == "jsonl" else mailbox.store
        found = [f for f in check(remote=remote, settings=[]).findings if f.area == "sessions"]
        assert len(found) == 1 and "proj" in found[0].where and str(claude.pid) in found[0].where
        assert "no wake waiter" in found[0].problem

        gate.touch()  # the session arms its waiter: reachable again
        waiter = wait_armed()
        assert waiter["claude_pid"] == claude.pid
        assert wake.unreachable(mailbox.store) == []
        assert "unreachable" not in {r["name"]: r for r in who(mailbox)}["proj"]
        report = check(remote=remote, settings=[])
        assert not [f for f in report.findings if f.area == "sessions"]
    finally:
        claude.kill()
        claude.wait(timeout=10)
        assert wait_gone_waiters(10)


def wait_gone_waiters(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [w for w in wake.waiters() if w["alive"]]:
            return True
        time.sleep(0.05)
    for w in wake.waiters():
        if w["alive"]:
            os.kill(w["pid"], signal.SIGKILL)
    return False
