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
