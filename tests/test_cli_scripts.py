"""The installed console scripts and scripts/kei-message.sh are one program (SPEC §6)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIM = ROOT / "scripts" / "kei-message.sh"
BIN = Path(sys.executable).parent

ENTRY_POINTS = {
    "kei message": [str(BIN / "kei"), "message"],
    "kei msg": [str(BIN / "kei"), "msg"],
    "kei m": [str(BIN / "kei"), "m"],
    "kei-message": [str(BIN / "kei-message")],
    "python -m kei_message": [sys.executable, "-m", "kei_message"],
    "kei-message.sh": ["bash", str(SHIM)],
}


def run(
    cmd: list[str], *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run(
        [*cmd, *args], input=input, capture_output=True, text=True, env=full, timeout=60
    )


def scrub(text: str) -> str:
    """Ids and local times differ between runs; the rest must not."""
    text = re.sub(r"#\d{10,}", "#ID", text)
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "TIME", text)


def scenario(cmd: list[str]) -> list[tuple[int, str, str]]:
    steps = [
        (("send", "@b", "TASK:", "first", "--from", "a"), None),
        (("send", "--from", "a", "@b"), "two\nlines\n"),
        (("inbox", "--me", "b", "--count"), None),
        (("inbox", "--me", "b"), None),
        (("inbox", "pop", "--me", "b"), None),
        (("send", "--to", "a b", "x", "--from", "a"), None),
        (("list",), None),
        (("who",), None),
    ]
    out = []
    for args, stdin in steps:
        res = run(cmd, *args, input=stdin)
        out.append((res.returncode, scrub(res.stdout), scrub(res.stderr)))
    return out


def test_every_entry_point_behaves_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = {}
    for label, cmd in ENTRY_POINTS.items():
        monkeypatch.setenv("KEI_MAILBOX_DIR", str(tmp_path / label.replace(" ", "_")))
        results[label] = scenario(cmd)
    first = results["kei message"]
    codes = [code for code, _, _ in first]
    assert codes == [0, 0, 0, 0, 1, 2, 0, 0], first
    assert first[0][1] == "-> sent to 'b' (from 'a') #ID\n"
    assert first[2][1] == "2\n"
    assert "TASK: first" in first[3][1] and "two\n" in first[3][1]
    assert first[4][2] == "kei message: no unread messages for 'b'\n"  # a note (#17)
    assert first[5][2].startswith("kei message: error: invalid name 'a b'")
    for label, got in results.items():
        assert got == first, label
        for _, _, err in got:
            assert "Traceback" not in err


def test_help_is_the_same_everywhere() -> None:
    helps = {label: run(cmd, "send", "--help") for label, cmd in ENTRY_POINTS.items()}
    texts = {r.stdout for r in helps.values()}
    assert len(texts) == 1
    assert all(r.returncode == 0 for r in helps.values())
    assert "Usage: kei message send" in texts.pop()


def test_kei_umbrella() -> None:
    kei = str(BIN / "kei")
    res = run([kei])
    assert res.returncode == 0 and "kei message|msg|m" in res.stdout
    res = run([kei], "mesage", "inbox")
    assert res.returncode == 2
    assert res.stderr.startswith("kei: error: unknown command 'mesage'")
    res = run([kei], "m")
    assert res.returncode == 0 and "Usage: kei message" in res.stdout


# ----------------------------------------------------------------------------- the drop-in
def test_shim_speaks_the_original_arguments() -> None:
    sh = ["bash", str(SHIM)]
    assert run(sh, "send", "--to", "b", "--from", "a", "hello", "there").returncode == 0
    assert run(sh, "send", "--from", "a", "@b", "-5", "degrees").returncode == 0
    assert run(sh, "send", "--from", "a", "all", "everyone").returncode == 0
    res = run(sh, env={"KEI_MAILBOX_ME": "b"})  # no argument: inbox
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0].endswith("a -> b    hello there")
    assert lines[1].endswith("a -> b    -5 degrees")  # the original's text, kept
    assert lines[2].endswith("a -> all  everyone")
    assert run(sh, "inbox", "--me", "b").stdout == "no unread messages for 'b'\n"
    listed = run(sh, "list").stdout
    assert listed.count("\n") == 3
    whos = {run(sh, cmd).stdout for cmd in ("channels", "who", "names")}
    assert len(whos) == 1 and "NAME" in whos.pop()
    res = run(sh, "show", "1")  # other commands pass through
    assert res.returncode == 2 and res.stderr.startswith("kei message: error: no message")


def _copy_shim(where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    dest = where / "kei-message.sh"
    shutil.copy(SHIM, dest)
    dest.chmod(0o755)
    return dest


def _path_without_kei() -> str:
    keep = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "kei-message").exists()
    ]
    return os.pathsep.join(keep)


def _bare_run(
    script: Path, *args: str, home: Path, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": _path_without_kei() if path is None else path,
        "KEI_MAILBOX_ME": "me",
    }
    env.pop("KEI_MESSAGE_BIN", None)
    return subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_shim_finds_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # 1. installed into ~/.claude/scripts with nothing to find: a clear error
    alone = _copy_shim(home / ".claude" / "scripts")
    res = _bare_run(alone, "path", home=home)
    assert res.returncode == 127
    assert res.stderr.startswith("kei-message.sh: error: cannot find the kei-message CLI")
    # 2. on PATH
    res = _bare_run(alone, "path", home=home, path=f"{BIN}:{_path_without_kei()}")
    assert res.returncode == 0 and "bus:" in res.stdout
    # 3. the venv it was installed from (install fills in the interpreter)
    text = alone.read_text().replace("__KEI_MESSAGE_PYTHON__", sys.executable)
    alone.write_text(text)
    res = _bare_run(alone, "path", home=home)
    assert res.returncode == 0 and "bus:" in res.stdout
    # 4. next to itself, also when reached through a symlink
    beside = tmp_path / "bin"
    _copy_shim(beside)
    (beside / "kei-message").symlink_to(BIN / "kei-message")
    res = _bare_run(beside / "kei-message.sh", "path", home=home)
    assert res.returncode == 0 and "bus:" in res.stdout
    link = tmp_path / "elsewhere" / "kei-message.sh"
    link.parent.mkdir()
    link.symlink_to(beside / "kei-message.sh")
    res = _bare_run(link, "path", home=home)
    assert res.returncode == 0 and "bus:" in res.stdout
    # 5. from a clone: the repository's .venv
    if (ROOT / ".venv" / "bin" / "kei-message").exists():
        res = _bare_run(SHIM, "path", home=home)
        assert res.returncode == 0 and "bus:" in res.stdout


# ----------------------------------------------------------------------------- processes
def test_tail_follow_prints_new_messages() -> None:
    proc = subprocess.Popen(
        [str(BIN / "kei-message"), "tail", "-f", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        import time

        time.sleep(0.5)  # whether it is already following or not, nothing may be lost
        sent = run([str(BIN / "kei-message")], "send", "@b", "followed", "--from", "a", "--json")
        assert sent.returncode == 0
        assert proc.stdout is not None
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=20), "tail -f printed nothing within 20 s"
        line = proc.stdout.readline()
        assert json.loads(line) == json.loads(sent.stdout)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_broken_pipe_is_quiet() -> None:
    kei = str(BIN / "kei-message")
    # well over a pipe's 64 KiB, so `head` leaves while list is still writing
    body = "\n".join(f"line {j}" for j in range(2000))
    for _ in range(3):
        assert run([kei], "send", "@b", "--from", "a", input=body).returncode == 0
    shell = f"'{kei}' list --limit 300 | head -n 1"
    res = subprocess.run(
        ["bash", "-c", shell + '; echo "rc=${PIPESTATUS[0]}" >&2'],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert len(res.stdout.splitlines()) == 1
    assert "Traceback" not in res.stderr and "Error" not in res.stderr
    assert res.stderr.strip().splitlines()[-1] in ("rc=0", "rc=141")


def test_send_with_no_text_on_a_terminal_exits_2() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        res = subprocess.run(
            [str(BIN / "kei-message"), "send", "@b", "--from", "a"],
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert res.returncode == 2
    assert res.stderr.startswith("kei message: error: empty message body")
