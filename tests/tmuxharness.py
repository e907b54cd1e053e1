"""A private tmux server for tests: its own socket dir, panes by id, torn down whole.

``TMUX_TMPDIR`` points at a fresh directory, so ``discover`` (which scans the
user's socket dir) sees only this server, never a real session or another
test's. Teardown kills the server, then any pane process still alive (by PID),
then removes the socket dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FAKE = HERE / "fake_claude_tui.py"


def wait_until(check: Any, timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() >= deadline:
            return got
        time.sleep(step)


class FakePane:
    def __init__(self, server: Server, pane: str, pid: int, log: Path) -> None:
        self.server = server
        self.pane = pane
        self.pid = pid
        self.log = log

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = self.log.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = [json.loads(x) for x in lines if x.strip()]
        return [e for e in out if kind is None or e.get("event") == kind]

    def raw(self) -> bytes:
        """Every byte the program read from its terminal, in order."""
        return b"".join(bytes.fromhex(e["hex"]) for e in self.events("bytes"))

    def prompts(self) -> list[str]:
        return [e["text"] for e in self.events("prompt")]

    def screen(self) -> str:
        return self.server.tmux("capture-pane", "-p", "-t", self.pane)

    def type_prompt(self, text: str) -> None:
        """What a person at the keyboard does: type, then Enter."""
        self.server.tmux("send-keys", "-t", self.pane, "-l", "--", text)
        self.server.tmux("send-keys", "-t", self.pane, "Enter")

    def hold(self, on: bool) -> None:
        hold = Path(str(self.log) + ".hold")
        if on:
            hold.touch()
        else:
            hold.unlink(missing_ok=True)

    def register(self, store: Any, name: str, *, session_id: str | None = None) -> None:
        sid = session_id or f"sess-{uuid.uuid4().hex[:8]}"
        store.put_session(
            sid,
            {
                "name": name,
                "session_id": sid,
                "cwd": str(self.log.parent),
                "tmux": f"{self.server.socket},{self.server.pid()},0",
                "tmux_pane": self.pane,
                "last_seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "transcript_path": None,
                "pid": self.pid,
            },
        )


class Server:
    def __init__(self) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="kt-", dir="/tmp")
        self.name = f"kei-test-{uuid.uuid4().hex[:10]}"
        self.socket = os.path.join(self.tmpdir, f"tmux-{os.geteuid()}", self.name)
        self.pids: list[int] = []
        self.started = False

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        env["TMUX_TMPDIR"] = self.tmpdir
        return env

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.name, *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=self.env(),
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"tmux {args[0]}: {proc.stderr.strip()}")
        return proc.stdout

    def pid(self) -> int:
        return int(self.tmux("display-message", "-p", "#{pid}").strip())

    def spawn(
        self, argv: list[str], cwd: str, *, width: int = 100, height: int = 30
    ) -> tuple[str, int]:
        """Run ``argv`` in a new pane (a new window after the first); return (pane id, pid)."""
        fmt = "#{pane_id} #{pane_pid}"
        if not self.started:
            out = self.tmux(
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-P",
                "-F",
                fmt,
                "-x",
                str(width),
                "-y",
                str(height),
                "-c",
                cwd,
                "--",
                *argv,
            )
            self.started = True
            self.tmux("set-option", "-g", "remain-on-exit", "off")
        else:
            out = self.tmux("new-window", "-d", "-P", "-F", fmt, "-c", cwd, "--", *argv)
        pane, pid = out.split()
        self.pids.append(int(pid))
        return pane, int(pid)

    def fake(self, where: Path, *opts: str, program: str = "claude") -> FakePane:
        """The fake Claude Code TUI in a new pane, in directory ``where``."""
        where.mkdir(parents=True, exist_ok=True)
        bindir = Path(self.tmpdir) / "bin"
        bindir.mkdir(exist_ok=True)
        prog = bindir / program  # named like the real one, so `discover` recognises it
        if not prog.exists():
            shutil.copy(FAKE, prog)
        log = where / f"fake-{uuid.uuid4().hex[:6]}.log"
        pane, pid = self.spawn([sys.executable, str(prog), str(log), *opts], str(where))
        fp = FakePane(self, pane, pid, log)
        assert wait_until(lambda: fp.events("ready"), 10), "the fake TUI did not start"
        return fp

    def close(self) -> None:
        if self.started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.tmux("kill-server")
        for pid in self.pids:
            if wait_until(lambda p=pid: not _alive(p), 3):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        assert not os.path.exists(self.socket)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().split(b") ")[1][:1] != b"Z"
    except (OSError, IndexError):
        return False
    return True
