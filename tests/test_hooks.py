"""The hook entry points as Claude Code runs them: a subprocess, JSON on stdin (SPEC §7).

Each test feeds the fields Claude Code sends and checks stdout (nothing, or
exactly one JSON object), the exit code (always 0), the 2 s bound, the cursor
and the hook log. Budget: about 15 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kei_message.mailbox import Mailbox
from kei_message.presence import who

BIN = Path(sys.executable).parent
HOOK = str(BIN / "kei-message-hook")
EVENT_NAMES = {
    "user-prompt-submit": "UserPromptSubmit",
    "session-start": "SessionStart",
    "post-tool-batch": "PostToolBatch",
    "stop": "Stop",
}
SYNC_EVENTS = list(EVENT_NAMES)


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[bytes], elapsed: float) -> None:
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed

    def json(self) -> dict[str, Any]:
        text = self.stdout.decode()
        assert text.count("\n") == 1 and text.endswith("\n"), text  # exactly one object
        obj = json.loads(text)
        assert isinstance(obj, dict)
        return obj


def payload(event: str, cwd: Path | str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "session_id": "0b6f6a8e-1c7e-4c55-9d0e-5a1d2f3c4b5a",
        "transcript_path": f"/tmp/transcripts/{event}.jsonl",
        "cwd": str(cwd),
        "permission_mode": "default",
        "hook_event_name": EVENT_NAMES.get(event, event),
    }
    if event == "user-prompt-submit":
        base.update(prompt_id="prompt-1", prompt="what is new?")
    elif event == "session-start":
        base.update(source="startup", model="claude-fake")
    elif event == "stop":
        base.update(stop_hook_active=False, last_assistant_message="done")
    base.update(extra)
    return base


def run_hook(
    event: str,
    data: dict[str, Any] | bytes | None,
    *,
    env: dict[str, str] | None = None,
    argv: list[str] | None = None,
) -> Result:
    raw = data if isinstance(data, bytes) else b"" if data is None else json.dumps(data).encode()
    full_env = dict(os.environ)
    full_env.update(env or {})
    start = time.monotonic()
    proc = subprocess.run(
        argv or [HOOK, event], input=raw, capture_output=True, env=full_env, timeout=20
    )
    return Result(proc, time.monotonic() - start)


def context_of(result: Result, event: str) -> str:
    obj = result.json()
    if event == "stop":
        # the bodies once, in additionalContext; the reason is only TEXT's first line,
        # since 2.1.332 hands the reason to the model twice (#12)
        assert set(obj) == {"decision", "reason", "hookSpecificOutput"}
        assert obj["decision"] == "block"
        out = obj["hookSpecificOutput"]
        assert set(out) == {"hookEventName", "additionalContext"}
        assert out["hookEventName"] == "Stop"
        text = str(out["additionalContext"])
        assert obj["reason"] == text.split("\n", 1)[0]
        assert "\n" not in obj["reason"]
        return text
    assert set(obj) == {"hookSpecificOutput"}
    out = obj["hookSpecificOutput"]
    assert out["hookEventName"] == EVENT_NAMES[event]
    assert set(out) == {"hookEventName", "additionalContext"}
    return str(out["additionalContext"])


def log_text(mailbox_dir: Path) -> str:
    path = mailbox_dir / "hook.log"
    return path.read_text() if path.exists() else ""


@pytest.fixture
def jsonl(mailbox_dir: Path) -> Mailbox:
    """A Mailbox on the JSONL bus only: for what is about its files (locks, lines, modes)."""
    return Mailbox()


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    path.mkdir()
    return path


# ----------------------------------------------------------------------------- the basics
@pytest.mark.parametrize("event", SYNC_EVENTS)
def test_nothing_unread_prints_nothing(event: str, proj: Path, mailbox: Mailbox) -> None:
    mailbox.send("for someone else", to="other", sender="backend")
    r = run_hook(event, payload(event, proj))
    assert (r.code, r.stdout) == (0, b"")


@pytest.mark.parametrize("event", SYNC_EVENTS)
def test_unread_are_injected_once(event: str, proj: Path, mailbox: Mailbox) -> None:
    first = mailbox.send("ship the login page", to="proj", sender="backend", kind="TASK")
    second = mailbox.send("lunch at noon", sender="frontend")  # broadcast
    r = run_hook(event, payload(event, proj))
    assert r.code == 0
    text = context_of(r, event)
    assert text.startswith("kei mailbox: 2 new messages for proj")
    assert text.index("ship the login page") < text.index("lunch at noon")  # oldest first
    assert f"#{first['id']} TASK from backend -> proj" in text
    assert f"#{second['id']} from frontend -> all" in text
    assert "/msg @backend" in text and "/msg @frontend" in text
    assert mailbox.count("proj") == 0
    # delivered before: never again, by any event
    for again in SYNC_EVENTS:
        assert run_hook(again, payload(again, proj)).stdout == b""


def test_over_budget_leaves_the_rest_unread(proj: Path, mailbox: Mailbox) -> None:
    for i in range(12):
        mailbox.send(f"message {i:02d} " + "x" * 280, to="proj", sender="backend")
    env = {"KEI_MAILBOX_HOOK_BUDGET": "1500"}
    r = run_hook("user-prompt-submit", payload("user-prompt-submit", proj), env=env)
    text = context_of(r, "user-prompt-submit")
    assert len(text) <= 1500
    shown = [i for i in range(12) if f"message {i:02d} " in text]
    assert shown and shown == list(range(len(shown)))  # the oldest, in order
    left = 12 - len(shown)
    assert left > 0
    assert f"{left} more messages for proj wait" in text
    assert mailbox.count("proj") == left
    # the next prompt gets the next ones
    r2 = run_hook("user-prompt-submit", payload("user-prompt-submit", proj), env=env)
    assert f"message {len(shown):02d} " in context_of(r2, "user-prompt-submit")


def test_one_message_over_the_budget_is_cut_with_a_pointer(proj: Path, mailbox: Mailbox) -> None:
    rec = mailbox.send("y" * 5000, to="proj", sender="backend")
    env = {"KEI_MAILBOX_HOOK_BUDGET": "1200"}
    text = context_of(
        run_hook("session-start", payload("session-start", proj), env=env), "session-start"
    )
    assert len(text) <= 1200
    assert f"kei message show {rec['id']}" in text
    assert mailbox.count("proj") == 0


def test_identity_from_env_then_normalised_cwd(tmp_path: Path, jsonl: Mailbox) -> None:
    odd = tmp_path / "My Project!"
    odd.mkdir()
    jsonl.send("to the dir name", to="My-Project", sender="backend")
    jsonl.send("to the env name", to="lead", sender="backend")
    r = run_hook("user-prompt-submit", payload("user-prompt-submit", odd))
    assert "to the dir name" in context_of(r, "user-prompt-submit")
    r = run_hook(
        "user-prompt-submit", payload("user-prompt-submit", odd), env={"KEI_MAILBOX_ME": "lead"}
    )
    text = context_of(r, "user-prompt-submit")
    assert "to the env name" in text and "for lead" in text


def test_own_messages_are_not_injected(proj: Path, mailbox: Mailbox) -> None:
    mailbox.send("note to self", to="proj", sender="proj")
    mailbox.send("my broadcast", sender="proj")
    r = run_hook("user-prompt-submit", payload("user-prompt-submit", proj))
    assert (r.code, r.stdout) == (0, b"")


def test_message_read_by_inbox_is_not_injected_again(proj: Path, mailbox: Mailbox) -> None:
    mailbox.send("read me in the shell", to="proj", sender="backend")
    inbox = subprocess.run(
        [str(BIN / "kei-message"), "inbox", "proj"], capture_output=True, text=True, timeout=20
    )
    assert inbox.returncode == 0 and "read me in the shell" in inbox.stdout
    r = run_hook("user-prompt-submit", payload("user-prompt-submit", proj))
    assert (r.code, r.stdout) == (0, b"")


def test_message_injected_is_not_shown_by_inbox(proj: Path, mailbox: Mailbox) -> None:
    mailbox.send("seen by the hook", to="proj", sender="backend")
    assert "seen by the hook" in context_of(
        run_hook("user-prompt-submit", payload("user-prompt-submit", proj)), "user-prompt-submit"
    )
    inbox = subprocess.run(
        [str(BIN / "kei-message"), "inbox", "proj"], capture_output=True, text=True, timeout=20
    )
    assert "seen by the hook" not in inbox.stdout


def test_session_is_registered_for_who(proj: Path, mailbox: Mailbox) -> None:
    env = {"TMUX": "/tmp/tmux-0/default,1234,0", "TMUX_PANE": "%7"}
    p = payload("user-prompt-submit", proj, session_id="sess-abc")
    assert run_hook("user-prompt-submit", p, env=env).code == 0
    (sess,) = mailbox.store.sessions()
    assert sess["name"] == "proj"
    assert sess["session_id"] == "sess-abc"
    assert sess["cwd"] == str(proj)
    assert sess["tmux"] == env["TMUX"] and sess["tmux_pane"] == "%7"
    assert sess["transcript_path"] == p["transcript_path"]
    assert sess["last_seen"].endswith("Z")
    assert sess["pid"] is None  # pytest is not Claude Code
    rows = {row["name"]: row for row in who(mailbox)}
    assert rows["proj"]["last_seen"] == sess["last_seen"]
    # each event refreshes it
    first_seen = sess["last_seen"]
    time.sleep(0.01)
    run_hook("stop", payload("stop", proj, session_id="sess-abc"))
    (again,) = mailbox.store.sessions()
    assert again["last_seen"] > first_seen


def test_claude_pid_is_found_through_the_shell(tmp_path: Path, proj: Path, jsonl: Mailbox) -> None:
    # Claude Code runs hooks as `/bin/sh -c COMMAND`; a script named `claude` stands in for it.
    fake = tmp_path / "bin" / "claude"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho $$ > "$1"\n/bin/sh -c "{HOOK} session-start; true"\n')
    fake.chmod(0o755)
    pidfile = tmp_path / "pid"
    p = json.dumps(payload("session-start", proj, session_id="sess-pid")).encode()
    proc = subprocess.run([str(fake), str(pidfile)], input=p, capture_output=True, timeout=20)
    assert proc.returncode == 0
    (sess,) = jsonl.store.sessions()
    assert sess["pid"] == int(pidfile.read_text())


# ----------------------------------------------------------------------------- Stop
def test_stop_blocks_only_for_new_messages(proj: Path, mailbox: Mailbox) -> None:
    mailbox.send("arrived during the turn", to="proj", sender="backend")
    r = run_hook("stop", payload("stop", proj))
    assert "arrived during the turn" in context_of(r, "stop")
    # Claude went on; at its next stop nothing new: it may stop
    assert run_hook("stop", payload("stop", proj, stop_hook_active=True)).stdout == b""
    assert run_hook("stop", payload("stop", proj)).stdout == b""


def test_stop_never_blocks_twice_in_a_row(proj: Path, mailbox: Mailbox) -> None:
    mailbox.send("came in while Claude went on", to="proj", sender="backend")
    r = run_hook("stop", payload("stop", proj, stop_hook_active=True))
    assert (r.code, r.stdout) == (0, b"")
    assert mailbox.count("proj") == 1  # it waits for the next prompt
    r = run_hook("user-prompt-submit", payload("user-prompt-submit", proj))
    assert "came in while Claude went on" in context_of(r, "user-prompt-submit")


# ----------------------------------------------------------------------------- failing open
def test_bypass_exits_at_once_and_changes_nothing(
    proj: Path, mailbox: Mailbox, mailbox_dir: Path
) -> None:
    mailbox.send("stay unread", to="proj", sender="backend")
    for event in SYNC_EVENTS:
        r = run_hook(event, payload(event, proj), env={"KEI_MAILBOX_BYPASS": "1"})
        assert (r.code, r.stdout, r.stderr) == (0, b"", b"")
    assert mailbox.count("proj") == 1
    assert not (mailbox_dir / "sessions").exists()
    assert log_text(mailbox_dir) == ""


def test_bypass_touches_no_mailbox_at_all(proj: Path, mailbox_dir: Path) -> None:
    r = run_hook("user-prompt-submit", b"not even json", env={"KEI_MAILBOX_BYPASS": "1"})
    assert (r.code, r.stdout) == (0, b"")
    assert not mailbox_dir.exists()


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \n", b"{not json", b"[1, 2]", b"\xff\xfe"],
    ids=["empty", "blank", "garbage", "array", "binary"],
)
def test_bad_stdin_prints_nothing_and_logs(
    raw: bytes, proj: Path, jsonl: Mailbox, mailbox_dir: Path
) -> None:
    jsonl.send("still waiting", to="proj", sender="backend")
    r = run_hook("user-prompt-submit", raw)
    assert (r.code, r.stdout) == (0, b"")
    assert log_text(mailbox_dir).count("\n") == 1
    assert "user-prompt-submit" in log_text(mailbox_dir)
    assert jsonl.count("proj") == 1


def test_corrupt_lines_are_skipped_and_logged(
    proj: Path, jsonl: Mailbox, mailbox_dir: Path
) -> None:
    jsonl.send("before the damage", to="proj", sender="backend")
    with open(mailbox_dir / "messages.jsonl", "ab") as fh:
        # both mention "proj", so a reader scanning for its name must parse them
        fh.write(b'{"id": 1, "to": "proj", torn\n\x00\x01"proj" garbage\n')
    jsonl.send("after the damage", to="proj", sender="backend")
    r = run_hook("user-prompt-submit", payload("user-prompt-submit", proj))
    text = context_of(r, "user-prompt-submit")
    assert "before the damage" in text and "after the damage" in text
    assert "corrupt" in log_text(mailbox_dir)


def test_unusable_bus_prints_nothing_and_logs(
    tmp_path: Path, proj: Path, jsonl: Mailbox, mailbox_dir: Path
) -> None:
    jsonl.send("unreachable", to="proj", sender="backend")
    bus = mailbox_dir / "messages.jsonl"
    moved = tmp_path / "elsewhere.jsonl"
    bus.rename(moved)
    bus.symlink_to(moved)  # SPEC §1: the bus is never opened through a symlink
    r = run_hook("user-prompt-submit", payload("user-prompt-submit", proj))
    assert (r.code, r.stdout) == (0, b"")
    assert "symlink" in log_text(mailbox_dir)


def test_unsafe_mailbox_dir_prints_nothing(proj: Path, jsonl: Mailbox, mailbox_dir: Path) -> None:
    jsonl.send("in a loose dir", to="proj", sender="backend")
    mailbox_dir.chmod(0o777)
    try:
        r = run_hook("session-start", payload("session-start", proj))
    finally:
        mailbox_dir.chmod(0o700)
    assert (r.code, r.stdout) == (0, b"")
    assert "writable by group or others" in log_text(mailbox_dir)
    assert log_text(mailbox_dir).count("\n") == 1


def test_invalid_me_prints_nothing(proj: Path, mailbox_dir: Path) -> None:
    r = run_hook(
        "user-prompt-submit",
        payload("user-prompt-submit", proj),
        env={"KEI_MAILBOX_ME": "-bad name"},
    )
    assert (r.code, r.stdout) == (0, b"")
    assert "InvalidName" in log_text(mailbox_dir)


def test_lock_held_elsewhere_exits_0_within_2s(
    proj: Path, jsonl: Mailbox, mailbox_dir: Path
) -> None:
    jsonl.send("behind a lock", to="proj", sender="backend")
    jsonl.count("proj")
    lock = mailbox_dir / "cursors" / ".proj.lock"
    lock.parent.mkdir(exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        # even a user's long lock timeout does not hold the prompt up
        r = run_hook(
            "user-prompt-submit",
            payload("user-prompt-submit", proj),
            env={"KEI_MAILBOX_LOCK_TIMEOUT": "30"},
        )
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert (r.code, r.stdout) == (0, b"")
    assert r.elapsed < 2.0
    assert "locked" in log_text(mailbox_dir)
    assert log_text(mailbox_dir).count("\n") == 1
    assert jsonl.count("proj") == 1  # nothing lost: the next prompt gets it
    r = run_hook("user-prompt-submit", payload("user-prompt-submit", proj))
    assert "behind a lock" in context_of(r, "user-prompt-submit")


def test_hard_stop_when_stdin_never_ends(proj: Path, jsonl: Mailbox, mailbox_dir: Path) -> None:
    jsonl.send("not this time", to="proj", sender="backend")
    start = time.monotonic()
    proc = subprocess.Popen(
        [HOOK, "user-prompt-submit"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b'{"cwd": ')  # and never more, never closed
        proc.stdin.flush()
        code = proc.wait(timeout=10)
        elapsed = time.monotonic() - start
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdin.close()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
    assert (code, out) == (0, b"")
    assert elapsed < 2.0
    assert "hard stop" in log_text(mailbox_dir)
    assert jsonl.count("proj") == 1


def test_output_lost_means_not_delivered(proj: Path, jsonl: Mailbox, mailbox_dir: Path) -> None:
    # deliver, then commit: when stdout is gone the cursor does not move
    jsonl.send("keep me", to="proj", sender="backend")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [HOOK, "user-prompt-submit"],
            input=json.dumps(payload("user-prompt-submit", proj)).encode(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=20,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0
    assert "BrokenPipeError" in log_text(mailbox_dir)
    assert jsonl.count("proj") == 1


def test_hook_log_is_bounded(proj: Path, mailbox_dir: Path) -> None:
    from kei_message.agents import hooklog

    mailbox_dir.mkdir(mode=0o700)
    (mailbox_dir / "hook.log").write_bytes(b"old line\n" * (hooklog.LOG_MAX // 9))
    r = run_hook("user-prompt-submit", b"garbage")
    assert r.code == 0
    assert (mailbox_dir / "hook.log").stat().st_size < 1000
    assert (mailbox_dir / "hook.log.1").stat().st_size <= hooklog.LOG_MAX
    assert "BadInput" in log_text(mailbox_dir)


def test_unknown_event_fails_open(proj: Path) -> None:
    r = run_hook("post-tool-use", payload("user-prompt-submit", proj))
    assert (r.code, r.stdout) == (0, b"")
    assert b"unknown hook event" in r.stderr


# ----------------------------------------------------------------------------- other entry points
def test_kei_message_hook_command_is_the_same(proj: Path, jsonl: Mailbox) -> None:
    jsonl.send("via the big CLI", to="proj", sender="backend")
    r = run_hook(
        "user-prompt-submit",
        payload("user-prompt-submit", proj),
        argv=[str(BIN / "kei"), "message", "hook", "user-prompt-submit"],
    )
    assert r.code == 0
    assert "via the big CLI" in context_of(r, "user-prompt-submit")


def test_wake_is_dispatched_and_bypassed(proj: Path, jsonl: Mailbox) -> None:
    jsonl.send("for the waiter", to="proj", sender="backend")
    r = run_hook("wake", payload("session-start", proj), env={"KEI_MAILBOX_BYPASS": "1"})
    assert (r.code, r.stdout) == (0, b"")
    assert jsonl.count("proj") == 1


def test_hook_does_not_import_typer() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['kei-message-hook', 'user-prompt-submit']\n"
        "import io\n"
        'sys.stdin = io.TextIOWrapper(io.BytesIO(b\'{"cwd": "/nonexistent/proj"}\'))\n'
        "from kei_message.agents import hooks\n"
        "hooks.run(['user-prompt-submit'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_unreachable_redis_fails_open(proj: Path, mailbox_dir: Path) -> None:
    r = run_hook(
        "user-prompt-submit",
        payload("user-prompt-submit", proj),
        env={"KEI_MAILBOX_URL": "redis://127.0.0.1:1/0"},
    )
    assert (r.code, r.stdout) == (0, b"")
    assert r.elapsed < 2.0
    assert log_text(mailbox_dir).count("\n") == 1
    assert "unavailable" in log_text(mailbox_dir)


def test_budget_holds_with_long_names(proj: Path, jsonl: Mailbox) -> None:
    # 64-character senders make the header and reply lines long: still within the budget
    for i in range(8):
        jsonl.send("short", to="proj", sender=chr(ord("a") + i) * 64)
    env = {"KEI_MAILBOX_HOOK_BUDGET": "1000"}
    r = run_hook("user-prompt-submit", payload("user-prompt-submit", proj), env=env)
    text = context_of(r, "user-prompt-submit")
    assert len(text) <= 1000
    assert "more messages for proj wait" in text
