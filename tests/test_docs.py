"""Docs as tests: every command has help, a --help block in docs/reference.md and prose
in README.md or docs/; the generated blocks are current; README.md stays a front door."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from kei_message import settings
from kei_message.cli import get_app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
GENERATED = [REFERENCE, ROOT / "docs" / "environment.md"]
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
def test_every_command_is_in_the_docs(name: str) -> None:
    assert f"## `kei message {name}`" in REFERENCE.read_text(), (
        f"docs/reference.md has no --help block for `kei message {name}`: "
        "run `.venv/bin/cog -r docs/reference.md`"
    )
    # ...and is described in prose, not only in the generated reference
    text = "\n".join(p.read_text() for p in DOCS)
    prose = re.sub(r"<!-- \[\[\[cog.*?\[\[\[end\]\]\] -->", "", text, flags=re.S)
    mentioned = set(re.findall(r"kei (?:message|msg|m) ([a-z-]+)", prose))
    mentioned |= set(re.findall(r"`([a-z-]+)[` ]", prose))
    assert name in mentioned, f"README.md and docs/ never mention `{name}` outside the reference"


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.name)
def test_generated_blocks_are_current(path: Path) -> None:
    from cogapp import Cog

    assert "[[[cog" in path.read_text(), f"{path.name} has no generated block"
    status = Cog().main(["cog", "--check", str(path)])
    assert status == 0, f"{path.name} is stale: run `.venv/bin/cog -r docs/{path.name}`"


def test_readme_is_a_front_door() -> None:
    text = README.read_text()
    assert len(text.encode()) < 15_000, "README.md is over 15 KB: move detail into docs/"
    # the two commands first, then the tour and the speed table
    assert text.index("scripts/install.sh") < text.index("scripts/test.sh") < text.index("## ")
    for heading in ("## A five-minute tour", "## Speed", "| median ms (x `python -c pass`) |"):
        assert heading in text
    for doc in ("docs/guide.md", "docs/reference.md", "docs/design.md", "docs/environment.md"):
        assert doc in text and (ROOT / doc).is_file(), doc
    every = {v for v, _, _ in settings.VARIABLES}
    env = (ROOT / "docs" / "environment.md").read_text()
    assert all(f"`{v}`" in env for v in every)


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
