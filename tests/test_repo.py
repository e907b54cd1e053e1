"""The repository as a new user meets it: what the docs tell them to run can be run."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A command line in a code block that starts with a repository script:
# `scripts/install.sh`, `./scripts/test.sh --x`, `$ bash scripts/...` is not a run-bit use.
_RUN = re.compile(r"^\s*(?:\$\s+)?(?:\./)?(scripts/[\w.-]+)(?:\s|$)", re.M)


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _run_as_commands() -> set[str]:
    found: set[str] = set()
    for doc in _docs():
        for block in re.findall(r"```[a-z]*\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
            found.update(_RUN.findall(block))
        # indented code blocks too (four spaces)
        for line in doc.read_text(encoding="utf-8").splitlines():
            if line.startswith("    "):
                found.update(_RUN.findall(line))
    return found


def test_the_readme_tells_a_user_to_run_scripts() -> None:
    # the test below would pass vacuously if the pattern stopped matching
    assert {"scripts/install.sh", "scripts/test.sh"} <= _run_as_commands()


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="no git")
def test_every_script_the_docs_run_has_its_run_bit_in_git() -> None:
    """`scripts/install.sh` was committed 100644: the README's first command exited 126 (#12)."""
    out = subprocess.run(
        ["git", "ls-files", "-s", "--", *sorted(_run_as_commands())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modes = {line.split("\t", 1)[1]: line.split()[0] for line in out.splitlines()}
    for script in sorted(_run_as_commands()):
        assert script in modes, f"{script} is in the docs but not in git"
        assert modes[script] == "100755", f"{script} is {modes[script]} in git: chmod +x it"


def test_the_wall_clock_is_read_only_where_the_clock_ahead_run_moves_it() -> None:
    """tests/clock_ahead/sitecustomize.py moves these functions: a new way of reading the
    wall clock (datetime.now, os.times, ...) would escape the clock-ahead run (#12)."""
    pattern = re.compile(r"\b(?:datetime|date)\.(?:now|utcnow|today)\b|\btime\.clock_gettime\b")
    for path in sorted((ROOT / "kei_message").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not pattern.search(line), f"{path.relative_to(ROOT)}:{n}: {line.strip()}"


def test_the_clock_ahead_run_really_moves_the_clock(tmp_path: Path) -> None:
    """Under scripts/test.sh's second pass the clock must be ahead in pytest and in the
    processes it starts; otherwise that pass proves nothing."""
    import os
    import sys
    import time

    spec = os.environ.get("KEI_TEST_CLOCK_AHEAD")
    if not spec:
        pytest.skip("the normal pass: the clock is not moved")
    ahead = int(spec.rstrip("d")) * 86400
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    real = probe.stat().st_mtime  # the kernel's clock, which nothing moves
    assert time.time() - real > ahead - 60
    out = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert float(out) - real > ahead - 60


def test_agent_clis_run_as_in_a_terminal_even_on_a_ci_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI runner's markers never reach the agent CLIs: Gemini CLI would run headless."""
    from agentcli import codex_env, gemini_env
    from conftest import claude_env

    for name in ("CI", "GITHUB_ACTIONS", "CONTINUOUS_INTEGRATION", "CI_JOB_ID", "GITHUB_RUN_ID"):
        monkeypatch.setenv(name, "true")
    monkeypatch.setenv("KEEP_ME", "1")
    envs = [
        gemini_env(tmp_path / "g", "http://127.0.0.1:9"),
        codex_env(tmp_path / "c", "http://127.0.0.1:9/v1"),
        claude_env(tmp_path / "h", "http://127.0.0.1:9", tmp_path),
    ]
    for env in envs:
        assert env["KEEP_ME"] == "1"
        assert not [k for k in env if k in {"CI", "CONTINUOUS_INTEGRATION"}]
        assert not [k for k in env if k.startswith(("CI_", "GITHUB_"))]
