"""The screen reader on real Claude Code captures, and on variants of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kei_message.live import screen

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "claude-screens"
if not FIXTURES.is_dir():
    FIXTURES = Path("/work/shared/fixtures/claude-screens")

EXPECTED = {"idle": "idle", "draft": "draft", "busy": "busy", "waiting": "waiting"}


def fixtures() -> list[Path]:
    found = sorted(FIXTURES.glob("*.txt"))
    assert found, f"no screen captures in {FIXTURES}"
    return found


def load(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.name)
def test_every_fixture(path: Path) -> None:
    want = EXPECTED[path.name.split("-", 1)[0]]
    assert screen.read(path.read_text(encoding="utf-8")).state == want


def test_draft_text_is_the_composer() -> None:
    assert screen.read(load("draft-typed.txt")).draft == "hello from tmux"
    multi = screen.read(load("draft-multiline.txt"))
    assert multi.draft.splitlines() == ["ML-A line one", "ML-A line two", "ML-A line three"]


def test_permission_options() -> None:
    got = screen.read(load("waiting-bash-permission.txt"))
    assert got.options[1] == "Yes"
    assert screen.option_is_yes(got.options[2])
    assert not screen.option_is_yes(got.options[3])


# ----------------------------------------------------------------------------- variants
def rewidth(text: str, cols: int) -> str:
    """The same screen drawn at another width: rules are as wide as the pane."""
    out = []
    for line in text.split("\n"):
        if line.strip() and set(line.strip()) == {"─"}:
            line = "─" * cols
        out.append(line[:cols] if len(line) > cols and "─" not in line else line)
    return "\n".join(out)


@pytest.mark.parametrize("cols", [40, 80, 200])
@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.name)
def test_other_widths(path: Path, cols: int) -> None:
    want = EXPECTED[path.name.split("-", 1)[0]]
    assert screen.read(rewidth(path.read_text(encoding="utf-8"), cols)).state == want


def test_trailing_blank_lines_and_tall_pane() -> None:
    text = load("idle-after-reply.txt") + "\n" * 30
    assert screen.read(text).state == "idle"
    assert screen.read(load("busy-thinking.txt") + "\n" * 30).state == "busy"


def test_status_line_under_the_box() -> None:
    idle = load("idle-after-reply.txt").rstrip("\n") + "\n  ~/proj/frontend  main*  Opus  ctx 12%\n"
    assert screen.read(idle).state == "idle"
    busy = load("busy-thinking.txt").rstrip("\n") + "\n  ~/proj/frontend  main*  Opus\n"
    assert screen.read(busy).state == "busy"


def test_older_ctrl_c_wording() -> None:
    text = load("busy-thinking.txt").replace("esc to interrupt", "ctrl+c to interrupt")
    assert screen.read(text).state == "busy"
    # the old layout: the hint inside the spinner line, nothing in the footer
    old = load("busy-thinking.txt").replace("esc to interrupt · ← for agents", "? for shortcuts")
    old = old.replace("✢ Infusing…", "✻ Thinking… (5s · ↑ 1.2k tokens · ctrl+c to interrupt)")
    assert screen.read(old).state == "busy"


def test_spinner_alone_means_busy() -> None:
    text = load("busy-thinking.txt").replace("esc to interrupt · ← for agents", "")
    assert screen.read(text).state == "busy"


def test_finished_turn_line_is_not_busy() -> None:
    assert "Brewed for 8s" in load("idle-after-reply.txt")
    assert screen.read(load("idle-after-reply.txt")).state == "idle"


def test_yes_no_only_menu() -> None:
    text = load("waiting-bash-permission.txt")
    text = re.sub(r"   2\. Yes, and .*\n   3\. No", "   2. No", text)
    got = screen.read(text)
    assert got.state == "waiting"
    assert got.options == {1: "Yes", 2: "No"}
    assert not screen.option_is_yes(got.options[2])


def test_other_permission_question() -> None:
    text = load("waiting-bash-permission.txt").replace(
        "Do you want to proceed?", "Do you want to make this edit to app.py?"
    )
    text = text.replace(" ❯ 1. Yes", "   1. Yes")  # no selector: the question carries it
    assert screen.read(text).state == "waiting"


def test_copy_mode_is_not_idle() -> None:
    assert screen.read(load("idle-after-reply.txt"), in_mode=True).state == "unknown"
    assert screen.read(load("busy-thinking.txt"), in_mode=True).state == "busy"


def test_markers_in_old_conversation_do_not_count() -> None:
    # a message quoting the markers, scrolled up above an idle prompt
    history = (
        "❯ note: the footer says esc to interrupt while busy\n"
        "  Do you want to proceed?\n  ❯ 1. Yes\n    2. No\n\n● ok\n\n✻ Brewed for 2s\n\n"
    )
    text = load("idle-after-reply.txt").replace("❯ hello from tmux\n", history)
    assert screen.read(text).state == "idle"


def test_draft_quoting_a_menu_stays_a_draft() -> None:
    text = load("draft-typed.txt").replace(
        "❯\u00a0hello from tmux", "❯\u00a0Do you want to proceed?\n  ❯ 1. Yes\n    2. No"
    )
    assert screen.read(text).state == "draft"


@pytest.mark.parametrize(
    "text",
    ["", "\n\n\n", "$ ls\nfile\n$ \n", "Welcome to something else\n> \n"],
    ids=["empty", "blank", "shell", "no-rules"],
)
def test_unknown_screens(text: str) -> None:
    assert screen.read(text).state == "unknown"


def boxed(composer: str, footer: str = "  ? for shortcuts", above: str = "") -> str:
    """The input box as older builds drew it: rounded corners, │ borders, a > prompt."""
    width = 80
    top = "╭" + "─" * (width - 2) + "╮"
    bottom = "╰" + "─" * (width - 2) + "╯"
    inner = "│ > " + composer
    inner = inner + " " * (width - 1 - len(inner)) + "│"
    head = "╭─── Claude Code ───╮\n│ welcome │\n╰───────────────────╯\n\n> hello\n\n⏺ hi there\n\n"
    return head + above + "\n".join([top, inner, bottom, footer]) + "\n"


def test_older_boxed_input() -> None:
    assert screen.read(boxed("")).state == "idle"
    got = screen.read(boxed("hello there"))
    assert (got.state, got.draft) == ("draft", "hello there")
    old_busy = boxed("", above="✻ Thinking… (5s · ↑ 1.2k tokens · esc to interrupt)\n\n")
    assert screen.read(old_busy).state == "busy"


GEMINI = Path(__file__).resolve().parent / "fixtures" / "gemini-screens"


@pytest.mark.parametrize("path", sorted(GEMINI.glob("*.txt")), ids=lambda p: p.name)
def test_gemini_screens(path: Path) -> None:
    """Real Gemini CLI 0.61.0 screens (issue 18): the state is the file name's first word."""
    got = screen.read(path.read_text())
    assert got.state == path.name.split("-")[0].removesuffix(".txt")
    if got.state == "draft":
        assert got.draft == "please fix the bug"
    if got.state == "waiting":
        assert got.options[1] == "Allow once" and len(got.options) == 3
