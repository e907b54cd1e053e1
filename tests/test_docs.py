"""Docs as tests: every command has help and is in README.md; the --help blocks are current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from kei_message.cli import get_app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GROUP = get_command(get_app())
COMMANDS: list[str] = list(GROUP.commands)  # type: ignore[attr-defined]


def test_the_command_set_is_complete() -> None:
    # SPEC §6, the commands of issue 3; the other issues add theirs.
    for name in ("send", "reply", "show", "inbox", "wait", "list", "tail"):
        assert name in COMMANDS
    for name in ("channels", "who", "names", "path"):
        assert name in COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    cmd = GROUP.commands[name]  # type: ignore[attr-defined]
    assert cmd.help and cmd.help.strip(), f"{name} has no help text"
    assert "Example: " in cmd.help, f"{name}'s help has no example line (STYLE.md, habit 8)"
    res = CliRunner().invoke(get_app(), [name, "-h"])
    assert res.exit_code == 0 and f"Usage: kei message {name}" in res.stdout
    for param in cmd.params:
        if param.name != "help":
            assert getattr(param, "help", None), f"{name}: {param.name} has no help text"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_in_the_readme(name: str) -> None:
    text = README.read_text()
    assert f"### `kei message {name}`" in text, (
        f"README.md has no --help block for `kei message {name}`: run `.venv/bin/cog -r README.md`"
    )
    # ...and is described in prose, not only in the generated reference
    prose = re.sub(r"<!-- \[\[\[cog.*?\[\[\[end\]\]\] -->", "", text, flags=re.S)
    mentioned = set(re.findall(r"kei (?:message|msg|m) ([a-z-]+)", prose))
    mentioned |= set(re.findall(r"`([a-z-]+)[` ]", prose))
    assert name in mentioned, f"README.md never mentions `{name}` outside the reference"


def test_readme_help_blocks_are_current() -> None:
    from cogapp import Cog

    status = Cog().main(["cog", "--check", str(README)])
    assert status == 0, "README.md's --help blocks are stale: run `.venv/bin/cog -r README.md`"


def test_tested_claude_code_versions_agree() -> None:
    """scripts/test.sh installs exactly the versions the tests run, and README names them."""
    from conftest import CLAUDE_MODES, CLAUDE_VERSIONS

    script = (ROOT / "scripts" / "test.sh").read_text()
    m = re.search(r"^CLAUDE_CODE_VERSIONS=\(([^)]*)\)", script, re.M)
    assert m, "scripts/test.sh has no CLAUDE_CODE_VERSIONS=(...)"
    assert tuple(m.group(1).split()) == CLAUDE_VERSIONS
    assert set(CLAUDE_MODES) == set(CLAUDE_VERSIONS)
    readme = README.read_text()
    for version in CLAUDE_VERSIONS:
        assert version in readme, f"README.md does not name Claude Code {version}"
