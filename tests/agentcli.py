"""The real Codex and Gemini CLIs for end-to-end tests: where they are, a safe
environment for each, and a guard that ends every process a test started (issue 18).

Safety: a temporary HOME (and CODEX_HOME), the fake model API on 127.0.0.1,
every outside connection pointed at a dead proxy, updates, telemetry,
plugins and daemons off. Codex tests pass ``--dangerously-bypass-hook-trust``.

Process clean-up: every process a test starts carries ``KEI_TEST_MARK=<uuid>``
in its environment, and children inherit it, also the ones that leave their
process group (Codex's waiter, a daemon). ``ProcGuard.leftovers`` finds them
in ``/proc``; ``ProcGuard.end`` kills them by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

CODEX_VERSION = "0.169.0"
GEMINI_VERSION = "0.61.0"
DEAD_PROXY = "http://127.0.0.1:9"


def _cache() -> str:
    return os.environ.get("KEI_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kei-message-test"
    )


def codex_bin_path() -> str | None:
    env = os.environ.get("KEI_TEST_CODEX")
    if env and os.access(env, os.X_OK):
        return env
    path = os.path.join(_cache(), f"codex-{CODEX_VERSION}", "node_modules", ".bin", "codex")
    return path if os.access(path, os.X_OK) else None


def gemini_bin_path() -> str | None:
    env = os.environ.get("KEI_TEST_GEMINI")
    if env and os.access(env, os.X_OK):
        return env
    path = os.path.join(_cache(), f"gemini-{GEMINI_VERSION}", "node_modules", ".bin", "gemini")
    return path if os.access(path, os.X_OK) else None


# What a CI runner adds to the environment and a person's terminal does not have.
# Gemini CLI 0.61 runs headless when CI=true or GITHUB_ACTIONS=true (a TUI in a
# tmux pane exits at once); other CLIs read these too. Agent CLIs under test
# run as in a user's terminal.
CI_MARKERS = ("CI", "CONTINUOUS_INTEGRATION", "GITHUB_ACTIONS", "BUILD_NUMBER", "RUN_ID")


def user_env(*drop: str) -> dict[str, str]:
    """This process's environment without CI markers and without names starting with ``drop``."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in CI_MARKERS and not k.startswith(("CI_", "GITHUB_", *drop))
    }


def _base_env(home: Path) -> dict[str, str]:
    env = user_env("TMUX", "CLAUDE", "ANTHROPIC", "CODEX", "OPENAI", "GEMINI", "GOOGLE")
    env.update(
        HOME=str(home),
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        HTTPS_PROXY=DEAD_PROXY,
        HTTP_PROXY=DEAD_PROXY,
        ALL_PROXY=DEAD_PROXY,
        https_proxy=DEAD_PROXY,
        http_proxy=DEAD_PROXY,
        all_proxy=DEAD_PROXY,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


CODEX_CONFIG = """\
model_provider = "fake"
model = "gpt-fake"
check_for_update_on_startup = false

[model_providers.fake]
name = "fake"
base_url = "{url}"
wire_api = "responses"
env_key = "FAKE_KEY"

[features]
plugins = false
remote_plugin = false
apps = false
plugin_sharing = false
tool_suggest = false
in_app_updates = false
daemon_auto_start = false

[analytics]
enabled = false

[feedback]
enabled = false
"""


def codex_env(home: Path, api_url: str) -> dict[str, str]:
    """Temp HOME and CODEX_HOME (``home/.codex``) with the offline config.toml."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(CODEX_CONFIG.format(url=api_url))
    env = _base_env(home)
    env.update(CODEX_HOME=str(codex_home), FAKE_KEY="dummy")
    return env


GEMINI_SETTINGS = """\
{
  "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": false}},
  "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
  "privacy": {"usageStatisticsEnabled": false},
  "telemetry": {"enabled": false}
}
"""


def gemini_env(home: Path, api_url: str) -> dict[str, str]:
    """Temp HOME with ``.gemini/settings.json``: API key auth, no trust dialog, no updates."""
    gemini_home = home / ".gemini"
    gemini_home.mkdir(parents=True, exist_ok=True)
    (gemini_home / "settings.json").write_text(GEMINI_SETTINGS)
    env = _base_env(home)
    env.update(GOOGLE_GEMINI_BASE_URL=api_url, GEMINI_API_KEY="dummy")
    return env


class ProcGuard:
    """Marks the processes a test starts, finds what is left of them, ends them by pid."""

    def __init__(self) -> None:
        self.mark = uuid.uuid4().hex
        self._needle = f"KEI_TEST_MARK={self.mark}".encode()

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return {**env, "KEI_TEST_MARK": self.mark}

    def run(
        self, cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``cmd`` in a process session of its own; what is left of its group is killed."""
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group's leader is our child: its pid
            except ProcessLookupError:
                pass
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def leftovers(self) -> list[int]:
        """Pids of running processes that carry our mark (zombies excluded)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    if self._needle not in fh.read().split(b"\0"):
                        continue
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    state = fh.read().rpartition(b")")[2].split()[0]
            except OSError:
                continue
            if state not in (b"Z", b"X"):
                found.append(int(entry))
        return found

    def settle(self, timeout: float = 5.0) -> list[int]:
        """Wait up to ``timeout`` for our processes to leave on their own; who is left."""
        deadline = time.monotonic() + timeout
        left = self.leftovers()
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = self.leftovers()
        return left

    def end(self) -> list[int]:
        """Kill (by pid) every process still carrying the mark; the pids that were left."""
        left = self.leftovers()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left
