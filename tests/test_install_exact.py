"""install then uninstall gives the exact bytes back; the original setup is migrated (#17).

Real-looking settings files (one line, 4 spaces, tabs, no final newline, CRLF,
a BOM, with other hooks, statusLine and permissions) go through ``install``
and ``uninstall`` in-process (CliRunner) on a temporary HOME. A HOME wired the
original KeiSeiKit way (``~/.claude/scripts/kei-message.sh``,
``mailbox-inject.sh`` as a UserPromptSubmit hook) is installed over, and the
UserPromptSubmit hooks are run as settings.json configures them (``sh -c``,
real subprocesses) to count how many times one message is injected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kei_message.agents.claude.install import ALLOW_RULE, is_ours
from kei_message.cli import get_app
from kei_message.mailbox import Mailbox

BIN = Path(sys.executable).parent

SETTINGS: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(git status)", "Read(~/notes/**)"], "deny": []},
    "env": {"FOO": "bär", "EMPTY": ""},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "/usr/local/bin/guard"}]}
        ],
        "UserPromptSubmit": [
            {"hooks": [{"type": "command", "command": "echo hello", "timeout": 3}]}
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
    "statusLine": {"type": "command", "command": "echo status", "padding": 0},
    "enabledPlugins": {},
    "cleanupPeriodDays": 30,
}

STYLES: dict[str, bytes] = {
    "one line, compact": json.dumps(SETTINGS, separators=(",", ":"), ensure_ascii=False).encode(),
    "one line, python": json.dumps(SETTINGS).encode(),
    "2 spaces": (json.dumps(SETTINGS, indent=2, ensure_ascii=False) + "\n").encode(),
    "4 spaces, no final newline": json.dumps(SETTINGS, indent=4, ensure_ascii=False).encode(),
    "tabs": (json.dumps(SETTINGS, indent="\t", ensure_ascii=False) + "\n").encode(),
    "CRLF": (json.dumps(SETTINGS, indent=2, ensure_ascii=False) + "\n")
    .replace("\n", "\r\n")
    .encode(),
    "BOM": b"\xef\xbb\xbf" + (json.dumps(SETTINGS, indent=2, ensure_ascii=False) + "\n").encode(),
    "hand-written": (
        b'{ "model" : "opus",\n  "statusLine": {"type": "command", "command": "echo status"},\n'
        b'  "permissions": { "allow": [ "Bash(git status)" ] }\n}\n'
    ),
    "empty object": b"{}",
    "empty file": b"",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    (path / ".claude").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return path


def kei(*args: str, input: str | None = None) -> Any:
    res = CliRunner().invoke(get_app(), list(args), input=input, catch_exceptions=False)
    return res


def ok(*args: str) -> Any:
    res = kei(*args)
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return res


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a directory)."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def backups(home: Path) -> list[Path]:
    return sorted((home / ".claude").glob("settings.json.kei-message-backup*"))


def ours_in(path: Path) -> list[str]:
    data = json.loads(path.read_bytes().decode("utf-8-sig") or "{}")
    return [
        h["command"]
        for groups in data.get("hooks", {}).values()
        for g in groups
        for h in g.get("hooks", [])
        if is_ours(h)
    ]


# ----------------------------------------------------------------------------- exact bytes
@pytest.mark.parametrize("style", list(STYLES))
def test_install_then_uninstall_gives_the_same_bytes(home: Path, style: str) -> None:
    path = home / ".claude" / "settings.json"
    path.write_bytes(STYLES[style])
    before = tree(home)
    ok("install", "--stop-delivery")
    installed = path.read_bytes()
    # SessionStart, UserPromptSubmit, PreToolUse (the waiter, #14), PostToolBatch, Stop
    assert sorted(c.rsplit(" ", 1)[-1] for c in ours_in(path)) == sorted(
        ["session-start", "user-prompt-submit", "post-tool-batch", "stop"] + ["wake"] * 4
    )
    assert len(backups(home)) == 1 and backups(home)[0].read_bytes() == STYLES[style]
    if style == "CRLF":
        assert installed.count(b"\r\n") == installed.count(b"\n")  # its style kept
    if style == "4 spaces, no final newline":
        assert b'\n    "hooks": {' in installed and not installed.endswith(b"\n")
    if style == "one line, compact":
        assert b"\n" not in installed and b'"hooks":{' in installed
    ok("install", "--stop-delivery")  # again: nothing changes, no second backup
    assert path.read_bytes() == installed and len(backups(home)) == 1
    res = ok("uninstall")
    assert "exact bytes" in res.stdout
    assert tree(home) == before  # same bytes; no backup, skill, drop-in or empty dir left


@pytest.mark.parametrize(
    "style", ["one line, compact", "4 spaces, no final newline", "tabs", "CRLF", "BOM"]
)
def test_exact_even_when_the_backup_is_gone(home: Path, style: str) -> None:
    # Written in the file's own style, the file needs no backup to come back.
    path = home / ".claude" / "settings.json"
    path.write_bytes(STYLES[style])
    ok("install")
    for b in backups(home):
        b.unlink()
    ok("uninstall")
    assert path.read_bytes() == STYLES[style]


def test_a_change_made_meanwhile_is_kept_in_the_files_style(home: Path) -> None:
    path = home / ".claude" / "settings.json"
    path.write_bytes(STYLES["4 spaces, no final newline"])
    ok("install")
    data = json.loads(path.read_bytes())
    data["model"] = "sonnet"  # the user changes a setting after install
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False))
    ok("uninstall")
    want = dict(SETTINGS, model="sonnet")
    assert path.read_bytes() == json.dumps(want, indent=4, ensure_ascii=False).encode()
    assert len(backups(home)) == 1  # the backup of the file before install stays


def test_no_settings_before_none_after(home: Path) -> None:
    before = tree(home)
    ok("install", "--allow-bash")
    assert (home / ".claude" / "skills" / "msg" / "SKILL.md").exists()
    assert backups(home) == []
    ok("uninstall")
    assert tree(home) == before
    assert not (home / ".claude" / "skills").exists()


def test_backups_do_not_pile_up(home: Path) -> None:
    path = home / ".claude" / "settings.json"
    path.write_bytes(STYLES["2 spaces"])
    for stamp in ("20250101T000000Z", "20250102T000000Z", "20250103T000000Z"):
        (home / ".claude" / f"settings.json.kei-message-backup-{stamp}").write_text("{}")
    for cycle in range(3):
        ok("install", *(["--stop-delivery"] if cycle % 2 else []))
        ok("install", "--no-wake")  # a reinstall with other options keeps the one backup
        assert len(backups(home)) == 1, (cycle, backups(home))
        assert backups(home)[0].read_bytes() == STYLES["2 spaces"]
        ok("uninstall")
        assert path.read_bytes() == STYLES["2 spaces"]
        assert backups(home) == []


# ----------------------------------------------------------------------------- permissions
def test_allow_bash_is_offered_and_taken_out_exactly(home: Path) -> None:
    path = home / ".claude" / "settings.json"
    path.write_bytes(STYLES["2 spaces"])
    res = ok("install")  # not a terminal, no flag: nothing added, and said how
    assert ALLOW_RULE not in path.read_text()
    assert "--allow-bash" in res.stdout
    res = ok("install", "--allow-bash")
    allow = json.loads(path.read_bytes())["permissions"]["allow"]
    assert allow == ["Bash(git status)", "Read(~/notes/**)", ALLOW_RULE]
    assert "--allow-bash" not in res.stdout
    ok("install")  # no flag again: what is there stays
    assert ALLOW_RULE in json.loads(path.read_bytes())["permissions"]["allow"]
    ok("install", "--no-allow-bash")
    assert ALLOW_RULE not in path.read_text()
    ok("install", "--allow-bash")
    ok("uninstall")
    assert path.read_bytes() == STYLES["2 spaces"]


def test_allow_bash_without_a_backup_removes_only_the_rule(home: Path) -> None:
    path = home / ".claude" / "settings.json"
    path.write_bytes(STYLES["4 spaces, no final newline"])
    ok("install", "--allow-bash")
    for b in backups(home):
        b.unlink()
    ok("uninstall")
    assert path.read_bytes() == STYLES["4 spaces, no final newline"]


# ----------------------------------------------------------------------------- the original setup
ORIGINAL_KEI_MESSAGE_SH = """#!/usr/bin/env bash
# kei-message.sh (KeiSeiKit): the original mailbox script
dir="${KEI_MAILBOX_DIR:-$HOME/.claude/mailbox}"
echo "original kei-message.sh: $*"
"""

MAILBOX_INJECT_SH = r"""#!/usr/bin/env bash
# mailbox-inject.sh (KeiSeiKit): UserPromptSubmit hook printing this project's new mail
cat >/dev/null
dir="${KEI_MAILBOX_DIR:-$HOME/.claude/mailbox}"
me="${KEI_MAILBOX_ME:-$(basename "$PWD")}"
cursor="$HOME/.claude/scripts/.inject-cursor-$me"
seen=$(cat "$cursor" 2>/dev/null || echo 0)
total=$(wc -l < "$dir/messages.jsonl" 2>/dev/null || echo 0)
if [ "$total" -gt "$seen" ]; then
  tail -n +"$((seen + 1))" "$dir/messages.jsonl" | grep -F "\"to\":\"$me\"" | sed 's/^/[mail] /'
fi
echo "$total" > "$cursor"
"""


def wire_the_old_way(home: Path) -> bytes:
    scripts = home / ".claude" / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "kei-message.sh").write_text(ORIGINAL_KEI_MESSAGE_SH)
    (scripts / "mailbox-inject.sh").write_text(MAILBOX_INJECT_SH)
    for f in scripts.iterdir():
        f.chmod(0o755)
    settings = {
        "permissions": {"allow": ["Bash(~/.claude/scripts/kei-message.sh:*)"]},
        "hooks": {
            "UserPromptSubmit": [
                {
                    "hooks": [
                        {"type": "command", "command": "bash ~/.claude/scripts/mailbox-inject.sh"}
                    ]
                }
            ]
        },
    }
    raw = (json.dumps(settings, indent=2) + "\n").encode()
    (home / ".claude" / "settings.json").write_bytes(raw)
    return raw


def injections(home: Path, project: Path, body: str) -> int:
    """Send ``body`` to the project's name, run every UserPromptSubmit hook as Claude Code
    would (``sh -c COMMAND`` in the project, the hook JSON on stdin), count its copies."""
    Mailbox().send(body, to=project.name, sender="boss")
    data = json.loads((home / ".claude" / "settings.json").read_text())
    payload = json.dumps(
        {
            "session_id": "s-mig",
            "cwd": str(project),
            "prompt": "hi",
            "hook_event_name": "UserPromptSubmit",
        }
    )
    env = {k: v for k, v in os.environ.items() if k != "KEI_MAILBOX_ME"}
    env["HOME"] = str(home)
    seen = 0
    for group in data["hooks"].get("UserPromptSubmit", []):
        for hook in group["hooks"]:
            if hook.get("async"):
                continue  # the waiter (#14): Claude Code runs it apart, not into this prompt
            proc = subprocess.run(
                ["sh", "-c", hook["command"]],
                input=payload,
                capture_output=True,
                text=True,
                cwd=project,
                env=env,
                timeout=60,
            )
            assert proc.returncode == 0, (hook, proc.stderr)
            seen += proc.stdout.count(body)
    return seen


def test_migration_from_the_original_setup(home: Path, tmp_path: Path) -> None:
    original = wire_the_old_way(home)
    project = tmp_path / "worker"
    project.mkdir()
    assert injections(home, project, "first message") == 1  # the old way works

    res = kei("doctor")
    assert "mailbox-inject.sh" in res.stdout + res.stderr
    assert "original kei-message setup" in res.stdout + res.stderr

    res = ok("install")
    assert "replaced the original kei-message hooks" in res.stdout
    assert "mailbox-inject.sh" in res.stdout
    assert injections(home, project, "second message") == 1  # one injection, not two
    assert injections(home, project, "third message") == 1
    res = kei("doctor")
    assert "original kei-message setup" not in res.stdout + res.stderr

    ok("uninstall")  # the original setup comes back as it was
    assert (home / ".claude" / "settings.json").read_bytes() == original
    scripts = home / ".claude" / "scripts"
    assert (scripts / "kei-message.sh").read_text() == ORIGINAL_KEI_MESSAGE_SH
    assert (scripts / "mailbox-inject.sh").read_text() == MAILBOX_INJECT_SH
    assert injections(home, project, "fourth message") == 1
    assert backups(home) == []


def test_keep_old_keeps_them_and_says_what_that_costs(home: Path, tmp_path: Path) -> None:
    original = wire_the_old_way(home)
    project = tmp_path / "worker"
    project.mkdir()
    res = ok("install", "--keep-old")
    assert "warning: the original kei-message hooks stay" in res.stdout
    assert injections(home, project, "twice over") == 2  # what --keep-old costs
    res = kei("doctor")
    assert res.exit_code == 1 and "original kei-message setup" in res.stdout + res.stderr
    ok("uninstall")
    assert (home / ".claude" / "settings.json").read_bytes() == original


def _install_on_a_terminal(home: Path, answer: bytes) -> tuple[int, str]:
    """``kei-message install`` with stdin and stdout on a pseudo-terminal, answering the offer."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    env = {**os.environ, "HOME": str(home)}
    proc = subprocess.Popen(
        [str(BIN / "kei-message"), "install"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=home,
    )
    os.close(slave)
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                seen += data
            if not answered and b"[y/N]" in seen:
                os.write(master, answer)
                answered = True
            if proc.poll() is not None and not ready:
                break
        rc = proc.wait(timeout=10)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, seen.decode(errors="replace")


@pytest.mark.parametrize(("answer", "added"), [(b"y\n", True), (b"\n", False)])
def test_the_permission_is_asked_on_a_terminal(home: Path, answer: bytes, added: bool) -> None:
    path = home / ".claude" / "settings.json"
    path.write_bytes(STYLES["2 spaces"])
    rc, screen = _install_on_a_terminal(home, answer)
    assert rc == 0, screen
    assert f"Let Claude run `kei message …` without asking ({ALLOW_RULE}" in screen
    assert (ALLOW_RULE in json.loads(path.read_bytes())["permissions"]["allow"]) is added


# ----------------------------------------------------------------------------- real Claude Code
@pytest.mark.claude
@pytest.mark.slow
def test_migrated_home_injects_once_into_real_claude_code(
    claude_bin: str, fake_api: Any, tmp_path: Path
) -> None:
    """The old way, then installed over: what Claude Code sends the model holds the
    message once per prompt (``claude -p`` against the fake API)."""
    from conftest import claude_env

    project = tmp_path / "proj"
    project.mkdir()
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    env = claude_env(home, fake_api.url, project)
    wire_the_old_way(home)

    def prompt(body: str) -> int:
        Mailbox().send(body, to="proj", sender="backend")
        start = len(fake_api.requests)
        proc = subprocess.run(
            [claude_bin, "-p", "hello"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        carrying = [t for t in fake_api.texts()[start:] if body in t]
        assert carrying, "no request carried the message"
        return carrying[0].count(body)

    assert prompt("otter-1101: the old way") == 1
    proc = subprocess.run(
        [str(BIN / "kei"), "message", "install"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "replaced the original kei-message hooks" in proc.stdout
    assert prompt("otter-2202: installed over it") == 1


# ----------------------------------------------------------------------------- every agent
def _agent_file(home: Path, agent: str) -> Path:
    return home / (".codex/hooks.json" if agent == "codex" else ".gemini/settings.json")


@pytest.mark.parametrize("agent", ["codex", "gemini"])
@pytest.mark.parametrize("style", ["one line, compact", "4 spaces, no final newline", "CRLF"])
def test_other_agents_get_their_exact_bytes_back(
    home: Path, monkeypatch: pytest.MonkeyPatch, agent: str, style: str
) -> None:
    # One mechanism for every agent's JSON config: layout kept, one backup, exact bytes.
    monkeypatch.delenv("CODEX_HOME", raising=False)
    path = _agent_file(home, agent)
    path.parent.mkdir()
    theirs = {"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "echo hi"}]}]}}
    if agent == "gemini":
        theirs = {"theme": "Default", "general": {"vimMode": True}, **theirs}
    raw = {
        "one line, compact": json.dumps(theirs, separators=(",", ":")).encode(),
        "4 spaces, no final newline": json.dumps(theirs, indent=4).encode(),
        "CRLF": (json.dumps(theirs, indent=2) + "\n").replace("\n", "\r\n").encode(),
    }[style]
    path.write_bytes(raw)
    before = tree(home)
    ok("install", "--agent", agent)
    assert ours_in(path)
    assert len(list(path.parent.glob("*.kei-message-backup-*"))) == 1
    installed = path.read_bytes()
    if style == "CRLF":
        assert installed.count(b"\r\n") == installed.count(b"\n")
    ok("install", "--agent", agent)
    assert path.read_bytes() == installed
    ok("uninstall", "--agent", agent)
    assert tree(home) == before


@pytest.mark.parametrize("agent", ["codex", "gemini"])
def test_other_agents_no_file_before_none_after(
    home: Path, monkeypatch: pytest.MonkeyPatch, agent: str
) -> None:
    monkeypatch.delenv("CODEX_HOME", raising=False)
    _agent_file(home, agent).parent.mkdir()
    before = tree(home)
    ok("install", "--agent", agent)
    assert _agent_file(home, agent).exists()
    ok("uninstall", "--agent", agent)
    assert tree(home) == before


def test_backups_of_earlier_versions_are_pruned_to_the_untouched_one(home: Path) -> None:
    # An earlier version made a backup per write: the file before install, then the
    # file with our hooks. A reinstall keeps only the first, and uninstall gives it back.
    path = home / ".claude" / "settings.json"
    original = STYLES["4 spaces, no final newline"]
    path.write_bytes(original)
    ok("install")
    with_ours = path.read_bytes()
    (first,) = backups(home)
    os.utime(first, (1_000_000_000, 1_000_000_000))
    for n in (2, 3):
        later = home / ".claude" / f"settings.json.kei-message-backup-2099010{n}T000000Z"
        later.write_bytes(with_ours)
    ok("install", "--stop-delivery")
    assert backups(home) == [first] and first.read_bytes() == original
    ok("uninstall")
    assert path.read_bytes() == original and backups(home) == []
