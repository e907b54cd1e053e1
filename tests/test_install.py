"""`kei message install` / `uninstall` on temporary HOMEs, and the plugin files (SPEC §7).

In-process through the typer app (CliRunner), stdout and stderr apart; the
plugin launcher as a subprocess. Budget: about 10 s.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kei_message.agents.claude.install import HOOK_PROGRAM, MARKER, is_ours
from kei_message.cli import get_app

REPO = Path(__file__).resolve().parent.parent
HOOK = str(Path(sys.executable).parent / HOOK_PROGRAM)

OTHER_SETTINGS: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(git status)"], "deny": []},
    "env": {"FOO": "bar"},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "/usr/local/bin/guard"}]}
        ],
        "UserPromptSubmit": [
            {"hooks": [{"type": "command", "command": "echo hello", "timeout": 3}]}
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
    "statusLine": {"type": "command", "command": "echo status"},
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return path


def kei(*args: str) -> Any:
    result = CliRunner().invoke(get_app(), list(args))
    return result


def settings_path(home: Path) -> Path:
    return home / ".claude" / "settings.json"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def ours(settings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Our hook entries per event."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event, groups in settings.get("hooks", {}).items():
        for g in groups:
            for h in g.get("hooks", []):
                if is_ours(h):
                    found.setdefault(event, []).append(h)
    return found


def events_of(entries: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {ev: sorted(shlex.split(h["command"])[1] for h in hs) for ev, hs in entries.items()}


def backups(home: Path) -> list[Path]:
    return sorted((home / ".claude").glob("settings.json.kei-message-backup-*"))


# ----------------------------------------------------------------------------- install
def test_fresh_install(home: Path) -> None:
    r = kei("install")
    assert r.exit_code == 0, r.output
    settings = load(settings_path(home))
    entries = ours(settings)
    assert events_of(entries) == {
        "SessionStart": ["session-start", "wake"],
        "UserPromptSubmit": ["user-prompt-submit", "wake"],
        "PostToolBatch": ["post-tool-batch"],
        "PreToolUse": ["wake"],
        "Stop": ["wake"],
    }
    for hs in entries.values():
        for h in hs:
            program, arg = shlex.split(h["command"])
            assert program == HOOK and os.path.isabs(program) and os.access(program, os.X_OK)
            assert h["type"] == "command"
            assert isinstance(h["timeout"], int) and h["timeout"] > 0
            if arg == "wake":
                assert h["async"] is True and h["asyncRewake"] is True
                assert h["timeout"] >= 3600
                assert h["rewakeMessage"] and h["rewakeSummary"].startswith("kei mailbox")
            else:
                assert "async" not in h and h["timeout"] <= 60
    skill = home / ".claude" / "skills" / "msg" / "SKILL.md"
    assert skill.read_bytes() == (REPO / "skills" / "msg" / "SKILL.md").read_bytes()
    dropin = home / ".claude" / "scripts" / "kei-message.sh"
    assert os.access(dropin, os.X_OK)
    text = dropin.read_text()
    assert MARKER in text and f'installed_python="{sys.executable}"' in text
    assert backups(home) == []  # nothing was there to back up


def test_installed_dropin_runs_the_cli(home: Path) -> None:
    assert kei("install").exit_code == 0
    dropin = home / ".claude" / "scripts" / "kei-message.sh"
    env = {k: v for k, v in os.environ.items() if k != "KEI_MESSAGE_BIN"}
    env["PATH"] = "/usr/bin:/bin"  # found through the installing interpreter, not PATH
    proc = subprocess.run(
        [str(dropin), "path"], capture_output=True, text=True, env=env, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert os.environ["KEI_MAILBOX_DIR"] in proc.stdout


def test_options_stop_delivery_and_no_wake(home: Path) -> None:
    assert kei("install", "--stop-delivery", "--no-wake").exit_code == 0
    assert events_of(ours(load(settings_path(home)))) == {
        "SessionStart": ["session-start"],
        "UserPromptSubmit": ["user-prompt-submit"],
        "PostToolBatch": ["post-tool-batch"],
        "Stop": ["stop"],
    }
    # installing again with other options replaces ours, adds no duplicates
    assert kei("install").exit_code == 0
    assert events_of(ours(load(settings_path(home)))) == {
        "SessionStart": ["session-start", "wake"],
        "UserPromptSubmit": ["user-prompt-submit", "wake"],
        "PostToolBatch": ["post-tool-batch"],
        "PreToolUse": ["wake"],
        "Stop": ["wake"],
    }


def test_no_midturn_leaves_out_post_tool_batch_and_uninstall_removes_it(home: Path) -> None:
    assert kei("install", "--no-midturn").exit_code == 0
    assert "PostToolBatch" not in events_of(ours(load(settings_path(home))))
    assert kei("install").exit_code == 0
    assert events_of(ours(load(settings_path(home))))["PostToolBatch"] == ["post-tool-batch"]
    assert kei("uninstall").exit_code == 0
    settings = load(settings_path(home)) if settings_path(home).exists() else {}
    assert ours(settings) == {} or events_of(ours(settings)) == {}


def test_existing_settings_and_hooks_are_kept(home: Path) -> None:
    path = settings_path(home)
    path.parent.mkdir()
    original = json.dumps(OTHER_SETTINGS, indent=4)
    path.write_text(original)
    r = kei("install", "--stop-delivery")
    assert r.exit_code == 0, r.output
    after = load(path)
    for key in ("model", "permissions", "env", "statusLine"):
        assert after[key] == OTHER_SETTINGS[key]
    hooks = after["hooks"]
    # theirs first and unchanged, ours after (the waiter on PreToolUse too, #14)
    for event in ("PreToolUse", "UserPromptSubmit", "Stop"):
        n = len(OTHER_SETTINGS["hooks"][event])
        assert hooks[event][:n] == OTHER_SETTINGS["hooks"][event]
        assert all(is_ours(h) for g in hooks[event][n:] for h in g["hooks"])
    (backup,) = backups(home)
    assert backup.read_text() == original


def test_install_twice_changes_nothing(home: Path) -> None:
    path = settings_path(home)
    path.parent.mkdir()
    path.write_text(json.dumps(OTHER_SETTINGS))
    assert kei("install", "--stop-delivery").exit_code == 0
    first = path.read_bytes()
    stat = path.stat()
    r = kei("install", "--stop-delivery")
    assert r.exit_code == 0
    assert "already installed" in r.stdout
    assert path.read_bytes() == first
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert len(backups(home)) == 1


def test_invalid_json_is_refused_untouched(home: Path) -> None:
    path = settings_path(home)
    path.parent.mkdir()
    broken = b'{"model": "opus",,, // not json\n'
    path.write_bytes(broken)
    r = kei("install")
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.startswith("kei message: error: ")
    assert "not valid JSON" in r.stderr and str(path) in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert path.read_bytes() == broken
    assert backups(home) == []
    assert not (home / ".claude" / "skills").exists()
    assert not (home / ".claude" / "scripts").exists()
    assert kei("uninstall").exit_code == 2
    assert path.read_bytes() == broken


@pytest.mark.parametrize(
    "content", ['["a list"]', '{"hooks": []}', '{"hooks": {"Stop": {"not": "a list"}}}']
)
def test_unexpected_shape_is_refused_untouched(home: Path, content: str) -> None:
    path = settings_path(home)
    path.parent.mkdir()
    path.write_text(content)
    r = kei("install")
    assert r.exit_code == 2 and "kei message: error:" in r.stderr
    assert path.read_text() == content


def test_dry_run_writes_nothing(home: Path) -> None:
    path = settings_path(home)
    path.parent.mkdir()
    path.write_text(json.dumps(OTHER_SETTINGS))
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    r = kei("install", "--dry-run", "--stop-delivery")
    assert r.exit_code == 0
    assert "would update" in r.stdout and "dry run" in r.stdout
    assert f'+            "command": "{HOOK} stop",' in r.stdout  # the diff shows the change
    assert "would write" in r.stdout and "SKILL.md" in r.stdout
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before
    assert load(path) == OTHER_SETTINGS
    # and uninstall --dry-run likewise
    assert kei("install").exit_code == 0
    installed = path.read_bytes()
    r = kei("uninstall", "--dry-run")
    assert r.exit_code == 0 and "would remove" in r.stdout
    assert path.read_bytes() == installed


def test_uninstall_restores_the_rest_exactly(home: Path) -> None:
    path = settings_path(home)
    path.parent.mkdir()
    path.write_text(json.dumps(OTHER_SETTINGS))
    assert kei("install", "--stop-delivery").exit_code == 0
    r = kei("uninstall")
    assert r.exit_code == 0, r.output
    assert load(path) == OTHER_SETTINGS
    assert list(load(path)["hooks"]) == list(OTHER_SETTINGS["hooks"])  # order too
    assert not (home / ".claude" / "skills" / "msg").exists()
    assert not (home / ".claude" / "scripts" / "kei-message.sh").exists()
    r = kei("uninstall")
    assert r.exit_code == 0 and "not installed" in r.stdout


def test_uninstall_after_fresh_install_leaves_no_hooks(home: Path) -> None:
    assert kei("install").exit_code == 0
    assert kei("uninstall").exit_code == 0
    assert load(settings_path(home)) == {}


def test_uninstall_keeps_hooks_sharing_a_group_with_ours(home: Path) -> None:
    path = settings_path(home)
    path.parent.mkdir()
    mine = {"type": "command", "command": "echo mine"}
    path.write_text(
        json.dumps(
            {
                "hooks": {
                    "UserPromptSubmit": [
                        {
                            "hooks": [
                                mine,
                                {
                                    "type": "command",
                                    "command": f"{HOOK} user-prompt-submit",
                                    "timeout": 10,
                                },
                            ]
                        }
                    ]
                }
            }
        )
    )
    assert kei("uninstall").exit_code == 0
    assert load(path) == {"hooks": {"UserPromptSubmit": [{"hooks": [mine]}]}}


def test_foreign_skill_and_original_dropin_are_kept_and_put_back(home: Path) -> None:
    skill = home / ".claude" / "skills" / "msg" / "SKILL.md"
    dropin = home / ".claude" / "scripts" / "kei-message.sh"
    for f, text in ((skill, "my own /msg\n"), (dropin, "#!/bin/bash\n# the original\n")):
        f.parent.mkdir(parents=True)
        f.write_text(text)
    assert kei("install").exit_code == 0
    assert MARKER in skill.read_text() and MARKER in dropin.read_text()
    assert (skill.parent / "SKILL.md.kei-message-backup").read_text() == "my own /msg\n"
    assert kei("install").exit_code == 0  # again: the backups stay the originals
    assert (skill.parent / "SKILL.md.kei-message-backup").read_text() == "my own /msg\n"
    assert kei("uninstall").exit_code == 0
    assert skill.read_text() == "my own /msg\n"
    assert dropin.read_text() == "#!/bin/bash\n# the original\n"
    assert not (skill.parent / "SKILL.md.kei-message-backup").exists()


def test_project_scope(home: Path, tmp_path: Path) -> None:
    project = Path.cwd()
    r = kei("install", "--project")
    assert r.exit_code == 0, r.output
    assert events_of(ours(load(project / ".claude" / "settings.json")))["UserPromptSubmit"]
    assert (project / ".claude" / "skills" / "msg" / "SKILL.md").exists()
    assert not (home / ".claude").exists()  # the user's settings are not touched
    assert kei("install", "--user", "--project").exit_code == 2
    assert kei("uninstall", "--project").exit_code == 0
    assert load(project / ".claude" / "settings.json") == {}


def test_symlinked_settings_stay_a_symlink(home: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "settings.json"
    real.parent.mkdir()
    real.write_text(json.dumps({"model": "opus"}))
    settings_path(home).parent.mkdir()
    settings_path(home).symlink_to(real)
    assert kei("install").exit_code == 0
    assert settings_path(home).is_symlink()
    assert ours(load(real))
    assert load(real)["model"] == "opus"


def test_claude_config_dir_is_honoured(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cfg"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    assert kei("install").exit_code == 0
    assert ours(load(config / "settings.json"))
    assert not (home / ".claude").exists()


def test_installed_command_runs_without_path(home: Path, tmp_path: Path) -> None:
    from kei_message.mailbox import Mailbox

    assert kei("install").exit_code == 0
    (entry,) = [
        h
        for h in ours(load(settings_path(home)))["UserPromptSubmit"]
        if h["command"].endswith(" user-prompt-submit")
    ]
    Mailbox().send("through the installed command", to="work", sender="backend")
    env = dict(os.environ, PATH="/nonexistent")
    proc = subprocess.run(
        ["/bin/sh", "-c", entry["command"]],
        capture_output=True,
        env=env,
        input=json.dumps({"cwd": str(Path.cwd()), "session_id": "s"}).encode(),
        timeout=30,
    )
    assert proc.returncode == 0
    assert b"through the installed command" in proc.stdout


# ----------------------------------------------------------------------------- the plugin
def plugin_hooks() -> dict[str, Any]:
    data = load(REPO / "hooks" / "hooks.json")
    assert set(data) <= {"description", "hooks"}
    hooks = data["hooks"]
    assert isinstance(hooks, dict)
    return hooks


def test_plugin_manifest_does_not_point_at_hooks_json() -> None:
    manifest = load(REPO / ".claude-plugin" / "plugin.json")
    assert manifest["name"] == "kei-message"
    assert "hooks" not in manifest  # hooks/hooks.json is found by convention
    assert (REPO / "skills" / "msg" / "SKILL.md").exists()


def test_plugin_hooks_match_the_installer() -> None:
    from kei_message.agents.claude.install import wanted_hooks

    want = wanted_hooks("PROGRAM", stop_delivery=True, wake=True)
    got = plugin_hooks()
    assert list(got) == list(want)
    for event, groups in want.items():
        assert len(got[event]) == len(groups)
        for g_got, g_want in zip(got[event], groups, strict=True):
            (h_got,) = g_got["hooks"]
            (h_want,) = g_want["hooks"]
            launcher, arg = shlex.split(h_got["command"])
            assert launcher == "${CLAUDE_PLUGIN_ROOT}/hooks/kei-message-hook.sh"
            assert arg == shlex.split(h_want["command"])[1]
            assert {k: v for k, v in h_got.items() if k != "command"} == {
                k: v for k, v in h_want.items() if k != "command"
            }


def launcher(event: str, stdin: bytes, **env: str) -> subprocess.CompletedProcess[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KEI_MAILBOX_STOP")}
    full.update(env)
    return subprocess.run(
        [str(REPO / "hooks" / "kei-message-hook.sh"), event],
        input=stdin,
        capture_output=True,
        env=full,
        timeout=30,
    )


def test_plugin_launcher_runs_the_hook(tmp_path: Path) -> None:
    from kei_message.mailbox import Mailbox

    Mailbox().send("via the plugin", to="proj", sender="backend")
    stdin = json.dumps({"cwd": str(tmp_path / "proj"), "session_id": "s"}).encode()
    # Stop delivers only when asked to, like install --stop-delivery
    assert launcher("stop", stdin, KEI_MESSAGE_HOOK=HOOK).stdout == b""
    assert launcher("wake", stdin, KEI_MESSAGE_HOOK=HOOK, KEI_MAILBOX_NO_WAKE="1").returncode == 0
    off = launcher("post-tool-batch", stdin, KEI_MESSAGE_HOOK=HOOK, KEI_MAILBOX_NO_MIDTURN="1")
    assert (off.returncode, off.stdout) == (0, b"")  # plugin's --no-midturn: nothing taken
    proc = launcher("stop", stdin, KEI_MESSAGE_HOOK=HOOK, KEI_MAILBOX_STOP_DELIVERY="1")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["decision"] == "block"


def test_plugin_launcher_without_the_package_fails_open(tmp_path: Path) -> None:
    import shutil

    # a copy of the plugin, away from this checkout's .venv (which it would find)
    copy = tmp_path / "plugin" / "hooks" / "kei-message-hook.sh"
    copy.parent.mkdir(parents=True)
    shutil.copy2(REPO / "hooks" / "kei-message-hook.sh", copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEI_MESSAGE")}
    env.update(HOME=str(tmp_path), PATH="/usr/bin:/bin")
    proc = subprocess.run(
        [str(copy), "user-prompt-submit"],
        input=b'{"cwd": "/x"}',
        capture_output=True,
        env=env,
        timeout=30,
    )
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert b"kei-message-hook not found" in proc.stderr


@pytest.mark.claude
def test_plugin_validates_with_claude_code(claude_bin: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC"))}
    env.update(
        HOME=str(tmp_path), DISABLE_AUTOUPDATER="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1"
    )
    proc = subprocess.run(
        [claude_bin, "plugin", "validate", str(REPO)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation passed" in proc.stdout


# ----------------------------------------------------------------------------- scripts/install.sh
@pytest.mark.slow
def test_install_sh_installs_links_and_wires(tmp_path: Path) -> None:
    """The README's first command, in a temporary HOME; twice (the second changes nothing).

    Needs the package index for the dependencies (as scripts/test.sh does).
    """
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "KEI_MESSAGE"))}
    env.update(
        HOME=str(home),
        PATH="/usr/local/bin:/usr/bin:/bin",
        PIP_CACHE_DIR=os.path.expanduser("~/.cache/pip"),  # the real one: no re-download
        PYTHON=sys.executable,
    )
    script = str(REPO / "scripts" / "install.sh")
    first = subprocess.run(
        ["bash", script, "--stop-delivery"], capture_output=True, text=True, env=env, timeout=300
    )
    assert first.returncode == 0, first.stderr
    venv_bin = home / ".local" / "share" / "kei-message" / "venv" / "bin"
    for name in ("kei", "kei-message", HOOK_PROGRAM):
        link = home / ".local" / "bin" / name
        assert link.is_symlink() and link.resolve() == (venv_bin / name).resolve()
    settings = load(home / ".claude" / "settings.json")
    assert events_of(ours(settings))["Stop"] == ["stop", "wake"]
    for hs in ours(settings).values():
        for h in hs:
            assert shlex.split(h["command"])[0] == str(venv_bin / HOOK_PROGRAM)
    assert (home / ".claude" / "skills" / "msg" / "SKILL.md").exists()
    before = (home / ".claude" / "settings.json").read_bytes()
    second = subprocess.run(
        ["bash", script, "--stop-delivery"], capture_output=True, text=True, env=env, timeout=300
    )
    assert second.returncode == 0, second.stderr
    assert "already installed" in second.stdout
    assert (home / ".claude" / "settings.json").read_bytes() == before
    # the installed copy works on its own, from outside the checkout
    proc = subprocess.run(
        [str(home / ".local" / "bin" / "kei"), "message", "path"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0 and os.environ["KEI_MAILBOX_DIR"] in proc.stdout
    # for the plugin: the package only, Claude Code left as it is
    (home / ".claude" / "settings.json").unlink()
    third = subprocess.run(
        ["bash", script, "--package-only"], capture_output=True, text=True, env=env, timeout=300
    )
    assert third.returncode == 0, third.stderr
    assert not (home / ".claude" / "settings.json").exists()
    assert (venv_bin / HOOK_PROGRAM).exists()


def test_install_warns_when_the_plugin_is_enabled(home: Path) -> None:
    path = settings_path(home)
    path.parent.mkdir()
    path.write_text(json.dumps({"enabledPlugins": {"kei-message@kei-message": True}}))
    r = kei("install")
    assert r.exit_code == 0
    assert "warning: the plugin kei-message@kei-message is enabled" in r.stdout
    assert "claude plugin disable kei-message@kei-message" in r.stdout
