"""The first hour of a new user (#17): output that reads right.

Exit-1 results are notes, typed names get the normalised spelling, help shows
no Python types, ``--version`` works everywhere, a mistyped hook event is
visible, long bodies are cut on a terminal, ``who`` keeps its columns, and a
shell that takes another identity's mail from a running session is told so.

In-process (CliRunner) where the terminal does not matter; real subprocesses
(on a pseudo-terminal where it does) elsewhere.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kei_message.cli import get_app
from kei_message.mailbox import Mailbox

BIN = Path(sys.executable).parent
runner = CliRunner()


def kei(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(get_app(), list(args), env=env, catch_exceptions=False)


def run(
    *cmd: str, env: dict[str, str] | None = None, stdin: Any = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd),
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=stdin,
    )


def on_tty(
    *cmd: str, env: dict[str, str] | None = None, stdin_tty: bool = False
) -> tuple[int, str, str]:
    """Run ``cmd`` with stdout (and, with ``stdin_tty``, stdin) on a pseudo-terminal."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        list(cmd),
        stdout=slave,
        stdin=slave if stdin_tty else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return rc, b"".join(chunks).decode().replace("\r\n", "\n"), err


# ----------------------------------------------------------------------------- 3: exit 1
def test_nothing_to_return_is_a_note_not_an_error(mailbox: Any) -> None:
    res = kei("inbox", "pop", "--me", "worker")
    assert (res.exit_code, res.stdout) == (1, "")
    assert res.stderr == "kei message: no unread messages for 'worker'\n"
    res = kei("wait", "--me", "worker", "--timeout", "0.2")
    assert (res.exit_code, res.stdout) == (1, "")
    assert res.stderr == "kei message: no message for 'worker' within 0.2s\n"
    res = kei("process", "--stop")  # the live side's "nothing to return"
    assert res.exit_code == 1 and res.stderr.startswith("kei message: no watcher")
    assert "error" not in res.stderr
    # a real failure still says error
    res = kei("inbox", "--me", "a b")
    assert res.exit_code == 2 and res.stderr.startswith("kei message: error: ")


def test_nothing_to_return_through_the_console_script(mailbox: Any) -> None:
    res = run(str(BIN / "kei-message"), "inbox", "pop", "--me", "worker")
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == "kei message: no unread messages for 'worker'\n"


def test_inbox_pop_pop_is_refused_not_read_as_a_name() -> None:
    mb = Mailbox()
    mb.send("for pop", to="pop", sender="a")
    mb.send("for me", to="worker", sender="a")
    res = kei("inbox", "pop", "pop", "--me", "worker")
    assert res.exit_code == 2
    assert res.stderr.startswith("kei message: error: 'pop' given twice")
    assert "--me pop" in res.stderr
    assert mb.count("pop") == 1 and mb.count("worker") == 1  # nothing taken
    res = kei("inbox", "pop", "--me", "pop")  # the way to pop a reader called pop
    assert res.exit_code == 0 and "for pop" in res.stdout
    res = kei("inbox", "pop", "worker")  # and `inbox pop NAME` as before
    assert res.exit_code == 0 and "for me" in res.stdout


# ----------------------------------------------------------------------------- 4: names
@pytest.mark.parametrize(
    ("args", "typed", "suggested"),
    [
        (("send", "--from", "my name", "@bob", "hi"), "my name", "my-name"),
        (("send", "--from", "alice", "@my worker", "hi"), "my worker", "my-worker"),
        (("send", "--to", "my:worker", "--from", "alice", "hi"), "my:worker", "my-worker"),
        (("inbox", "--me", ".hidden"), ".hidden", "hidden"),
        (("inbox", "my project"), "my project", "my-project"),
        (("list", "--from", "a b"), "a b", "a-b"),
    ],
)
def test_typed_name_gets_the_normalised_spelling(
    mailbox: Any, args: tuple[str, ...], typed: str, suggested: str
) -> None:
    res = kei(*args)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"kei message: error: invalid name {typed!r}: ")
    assert res.stderr.endswith(f"; did you mean {suggested!r}?\n")
    assert len(res.stderr.splitlines()) == 1
    assert list(Mailbox().recent(10)) == []


def test_no_suggestion_when_nothing_fits(mailbox: Any) -> None:
    for bad in ("", "---", "x" * 65):
        res = kei("inbox", "--me", bad)
        assert res.exit_code == 2 and "did you mean" not in res.stderr, res.stderr


# ----------------------------------------------------------------------------- 5: help
COMMANDS = [
    "send", "reply", "show", "inbox", "wait", "list", "tail", "channels", "who", "names",
    "path", "install", "uninstall", "hook", "doctor", "discover", "cancel", "approve",
    "process", "migrate", "gc", "top", "web",
]  # fmt: skip


def test_help_shows_no_python_types_or_odd_brackets() -> None:
    from typer.main import get_command

    listed = kei("--help").stdout
    for command in COMMANDS:
        assert f"  {command} " in listed, command
    every = list(get_command(get_app()).commands)  # type: ignore[attr-defined]
    assert set(COMMANDS) <= set(every)
    for command in [None, *every]:
        res = kei(*([command] if command else []), "--help")
        assert res.exit_code == 0, command
        text = res.stdout
        for bad in ("<str>", "<int", "<float", "list[", "<bool>", "{", "[[", "]]"):
            if command == "hook" and bad == "{":
                text = text.replace('\'{"cwd"', "")  # its example's JSON
            assert bad not in text, (command, bad, text)
        assert not re.search(r"<[a-z][a-z ]*>", text), (command, text)


def test_usage_lines_read_like_man_pages() -> None:
    def usage(command: str) -> str:
        return kei(command, "--help").stdout.splitlines()[0]

    assert usage("cancel") == "Usage: kei message cancel [OPTIONS] NAME [TEXT]..."
    assert usage("approve") == "Usage: kei message approve [OPTIONS] NAME [1|2]"
    assert usage("reply") == "Usage: kei message reply [OPTIONS] ID [TEXT]..."
    assert usage("inbox") == "Usage: kei message inbox [OPTIONS] [pop] [NAME]"
    assert usage("hook") == "Usage: kei message hook [OPTIONS] EVENT"


# ----------------------------------------------------------------------------- 6: version
@pytest.mark.parametrize(
    "cmd",
    [
        ["kei", "--version"],
        ["kei", "-V"],
        ["kei", "message", "--version"],
        ["kei", "m", "--version"],
        ["kei-message", "--version"],
        ["python", "-m", "kei_message", "--version"],
    ],
    ids=" ".join,
)
def test_version_everywhere(cmd: list[str]) -> None:
    exe = sys.executable if cmd[0] == "python" else str(BIN / cmd[0])
    res = run(exe, *cmd[1:])
    assert (res.returncode, res.stderr) == (0, "")
    assert res.stdout == f"kei-message {version('kei-message')}\n"


def test_version_in_process() -> None:
    res = kei("--version")
    assert res.exit_code == 0 and res.stdout == f"kei-message {version('kei-message')}\n"
    assert "--version" in kei("--help").stdout


# ----------------------------------------------------------------------------- 7: hook typo
def test_unknown_hook_event_under_claude_code_fails_open_but_is_logged(
    mailbox_dir: Path,
) -> None:
    # Claude Code hands the hook its JSON on stdin (a pipe): exit 0, nothing on
    # stdout (it would be injected), one stderr line, one hook.log line.
    for cmd in ([str(BIN / "kei-message-hook"), "bogus"], [str(BIN / "kei"), "m", "hook", "bogus"]):
        res = subprocess.run(
            cmd, input='{"cwd": "/x", "session_id": "s1"}', capture_output=True, text=True
        )
        assert (res.returncode, res.stdout) == (0, ""), res
        assert res.stderr.startswith("kei message: error: unknown hook event 'bogus'")
        assert len(res.stderr.splitlines()) == 1
    log = (mailbox_dir / "hook.log").read_text().splitlines()
    assert len(log) == 2 and all("unknown hook event ['bogus']" in line for line in log)


def test_unknown_hook_event_typed_by_hand_exits_2(mailbox_dir: Path) -> None:
    for cmd in ([str(BIN / "kei-message-hook"), "bogus"], [str(BIN / "kei"), "m", "hook", "bogus"]):
        rc, out, err = on_tty(*cmd, stdin_tty=True)
        assert rc == 2, (rc, out, err)
        assert err.startswith("kei message: error: unknown hook event 'bogus'")
    # KEI_MAILBOX_BYPASS=1 still wins: exit 0 at once, nothing said
    rc, out, err = on_tty(
        str(BIN / "kei-message-hook"), "bogus", env={"KEI_MAILBOX_BYPASS": "1"}, stdin_tty=True
    )
    assert (rc, out, err) == (0, "", "")


def test_doctor_names_unknown_hook_events(tmp_path: Path, mailbox: Any) -> None:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    hook = BIN / "kei-message-hook"
    settings = {
        "hooks": {
            "UserPromptSubmit": [
                {"hooks": [{"type": "command", "command": f"{hook} user-promt-submit"}]}
            ],
            "Stop": [{"hooks": [{"type": "command", "command": f"{BIN / 'kei'} m hook stpo"}]}],
            "SessionStart": [
                {"hooks": [{"type": "command", "command": f"{hook} session-start"}]},
                {"hooks": [{"type": "command", "command": f"{hook} gemini-session-start"}]},
                {"hooks": [{"type": "command", "command": f"{hook} wake", "async": True}]},
            ],
        }
    }
    (home / ".claude" / "settings.json").write_text(json.dumps(settings))
    res = run(str(BIN / "kei-message"), "doctor", env={"HOME": str(home)})
    assert res.returncode == 1, res
    assert "'user-promt-submit' is not a hook event" in res.stdout + res.stderr
    assert "'stpo' is not a hook event" in res.stdout + res.stderr
    for fine in ("session-start", "gemini-session-start", "wake"):
        assert f"'{fine}' is not" not in res.stdout + res.stderr


# ----------------------------------------------------------------------------- 8: long bodies
def _seed_long(mb: Mailbox) -> tuple[str, str, int]:
    long_lines = "\n".join(f"line {i}" for i in range(100))
    huge = "x" * 50_000
    mb.send("short one", to="worker", sender="boss")
    rec = mb.send(long_lines, to="worker", sender="boss")
    mb.send(huge, to="worker", sender="boss")
    return long_lines, huge, rec["id"]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "typer"])
def test_long_bodies_are_cut_on_a_terminal(fast: bool) -> None:
    mb = Mailbox()
    long_lines, huge, rid = _seed_long(mb)
    env = {} if fast else {"KEI_MAILBOX_NO_FAST": "1"}
    kei_message = str(BIN / "kei-message")
    rc, out, _ = on_tty(kei_message, "list", env=env)
    assert rc == 0
    assert "short one" in out
    assert "line 19" in out and "line 20" not in out
    assert f"… (cut: kei message show {rid})" in out
    assert "x" * 2000 in out and "x" * 2001 not in out
    assert out.count("… (cut: kei message show ") == 2
    assert len(out) < 6000
    # --full: whole, on the terminal too
    rc, out, _ = on_tty(kei_message, "list", "--full", env=env)
    assert rc == 0 and "line 99" in out and huge in out and "(cut:" not in out
    # the inbox the same way, and the cut ones are marked read like the others
    rc, out, _ = on_tty(kei_message, "inbox", "--me", "worker", "--peek", env=env)
    assert rc == 0 and out.count("(cut: kei message show ") == 2
    rc, out, _ = on_tty(kei_message, "inbox", "--me", "worker", env=env)
    assert rc == 0 and out.count("(cut: kei message show ") == 2
    assert mb.count("worker") == 0
    # `show ID` gives the cut one whole
    rc, out, _ = on_tty(kei_message, "show", str(rid), env=env)
    assert rc == 0 and "line 99" in out


def test_long_bodies_go_whole_into_a_pipe_and_as_json() -> None:
    mb = Mailbox()
    long_lines, huge, _ = _seed_long(mb)
    kei_message = str(BIN / "kei-message")
    res = run(kei_message, "list")
    assert res.returncode == 0 and "line 99" in res.stdout and huge in res.stdout
    assert "(cut:" not in res.stdout
    rc, out, _ = on_tty(kei_message, "list", "--json")
    bodies = [json.loads(line)["body"] for line in out.splitlines()]
    assert bodies == ["short one", long_lines, huge]
    rc, out, _ = on_tty(kei_message, "inbox", "pop", "--me", "worker")
    assert rc == 0 and "short one" in out
    rc, out, _ = on_tty(kei_message, "inbox", "pop", "--me", "worker", "--full")
    assert rc == 0 and "line 99" in out


# ----------------------------------------------------------------------------- 10: taking mail
def test_taking_a_live_sessions_mail_from_a_shell_warns(
    mailbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "my-shell"
    here.mkdir()
    monkeypatch.chdir(here)
    # a running Claude Code session holds `worker` (this test process stands in for it)
    mailbox.store.put_session("s-1", {"name": "worker", "session_id": "s-1", "pid": os.getpid()})
    mailbox.send("one", to="worker", sender="boss")
    mailbox.send("two", to="worker", sender="boss")
    res = kei("inbox", "--me", "worker", "--peek")
    assert res.exit_code == 0 and res.stderr == ""  # peeking takes nothing
    res = kei("inbox", "pop", "--me", "worker")
    assert res.exit_code == 0 and "one" in res.stdout
    assert res.stderr == (
        "kei message: note: took 1 message from 'worker', which a running Claude Code "
        f"session reads (pid {os.getpid()}): it will not see them; `--peek` reads without "
        "taking\n"
    )
    mailbox.send("three", to="worker", sender="boss")
    res = kei("inbox", "worker")
    assert res.exit_code == 0 and "two" in res.stdout and "three" in res.stdout
    assert "took 2 messages from 'worker'" in res.stderr
    # the session's own identity, or nothing taken: no note
    mailbox.send("four", to="worker", sender="boss")
    res = kei("inbox", "--me", "worker", env={"KEI_MAILBOX_ME": "worker"})
    assert res.exit_code == 0 and "four" in res.stdout and res.stderr == ""
    res = kei("inbox", "--me", "worker")
    assert res.exit_code == 0 and res.stderr == ""


def test_no_note_when_the_session_is_gone(mailbox: Any) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    mailbox.store.put_session("s-1", {"name": "worker", "session_id": "s-1", "pid": proc.pid})
    mailbox.send("one", to="worker", sender="boss")
    res = run(str(BIN / "kei-message"), "inbox", "--me", "worker")
    assert res.returncode == 0 and "one" in res.stdout and res.stderr == ""
