"""The screen reader on real Claude Code captures, and on variants of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kei_message.live import screen

HERE = Path(__file__).resolve().parent / "fixtures"
FIXTURES = HERE / "claude-screens-2.1.197"  # file name prefix = state
NEWEST = HERE / "claude-screens-2.1.332"  # states (and kinds) in its README table

PREFIXES = {"idle": "idle", "draft": "draft", "busy": "busy", "waiting": "waiting"}
STATES = (screen.IDLE, screen.DRAFT, screen.BUSY, screen.WAITING, screen.UNKNOWN, screen.GONE)


def table(folder: Path) -> dict[str, tuple[str, str]]:
    """file name -> (state, kind) from the README rows `| `glob`, ... | state[, kind `k`] |`."""
    rows: list[tuple[list[str], str, str]] = []
    for line in (folder / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        state = re.match(r"\w+", cells[1])
        kind = re.search(r"kind `([\w-]+)`", cells[1])
        assert state and state.group(0) in STATES, line
        rows.append(
            (re.findall(r"`([^`]+)`", cells[0]), state.group(0), kind.group(1) if kind else "")
        )
    out = {}
    for path in sorted(folder.glob("*.txt")):
        hits = {(st, k) for globs, st, k in rows if any(path.match(g) for g in globs)}
        assert len(hits) == 1, f"{path.name}: README table gives {hits or 'no state'}"
        out[path.name] = hits.pop()
    return out


def expected() -> list[tuple[Path, str, str]]:
    """(capture, state, kind or "" when not checked) for every fixture of both versions."""
    old = sorted(FIXTURES.glob("*.txt"))
    assert old, f"no screen captures in {FIXTURES}"
    found = [(p, PREFIXES[p.name.split("-", 1)[0]], "") for p in old]
    found += [(NEWEST / name, st, k) for name, (st, k) in table(NEWEST).items()]
    return found


def fixtures() -> list[Path]:
    return [p for p, _, _ in expected()]


def want(path: Path) -> str:
    return next(st for p, st, _ in expected() if p == path)


def ident(path: Path) -> str:
    return f"{path.parent.name.rsplit('-', 1)[1]}/{path.name}"


def load(name: str, folder: Path = FIXTURES) -> str:
    return (folder / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("path", "state", "kind"), expected(), ids=lambda x: ident(x) if isinstance(x, Path) else None
)
def test_every_fixture(path: Path, state: str, kind: str) -> None:
    got = screen.read(path.read_text(encoding="utf-8"))
    assert got.state == state
    if kind:
        assert got.kind == kind
    if state != "waiting":
        assert got.kind == ""


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
@pytest.mark.parametrize("path", fixtures(), ids=ident)
def test_other_widths(path: Path, cols: int) -> None:
    assert screen.read(rewidth(path.read_text(encoding="utf-8"), cols)).state == want(path)


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


# ----------------------------------------------------------------------------- 2.1.332
def test_newest_idle_footers_and_notices() -> None:
    idle = load("auto-idle.txt", NEWEST)
    footer = "  ⏵⏵ auto mode on (shift+tab to cycle) · ← for agents"
    assert footer in idle
    for other in (
        "  ⏸ manual mode on · ? for shortcuts",
        "  ⏵⏵ auto mode on (shift+tab to cycle) · 1 monitor · ↓ to manage",
        "  ⏸ manual mode on",
    ):
        assert screen.read(idle.replace(footer, other)).state == "idle", other
    # a notice right-aligned above the box, where the status line was
    notice = "  tmux focus-events off · add 'set -g focus-events on' to ~/.tmux.conf and reattach"
    status = next(x for x in idle.splitlines() if "/effort" in x)
    assert screen.read(idle.replace(status, notice)).state == "idle"
    assert screen.read(idle.replace(status, status + "\n" + notice)).state == "idle"


def test_newest_permission_menu_kinds() -> None:
    menu = screen.read(load("default-tool-prompt.txt", NEWEST))
    assert (menu.kind, menu.options[1]) == ("menu", "Yes")
    assert screen.option_is_yes(menu.options[3]) and not screen.option_is_yes(menu.options[4])
    check = screen.read(load("auto-tool-prompt.txt", NEWEST))
    assert (check.state, check.kind, check.options) == ("waiting", "auto-check", {})
    no = screen.read(load("auto-approval-no-selected.txt", NEWEST))
    assert (no.kind, no.options, no.selected) == ("select", {1: "No", 2: "Yes"}, 1)
    yes = screen.read(load("auto-approval-yes-selected.txt", NEWEST))
    assert (yes.kind, yes.selected) == ("select", 2)


def test_auto_check_dialog_from_either_end() -> None:
    text = load("auto-tool-prompt.txt", NEWEST)
    hint = next(x for x in text.splitlines() if x.strip().startswith("Enter to stay"))
    assert screen.read(text.replace(hint, "")).kind == "auto-check"  # the heading alone
    head = "  Auto mode can't check actions in this session"
    assert screen.read(text.replace(head + "\n", "")).kind == "auto-check"  # the hint alone
    assert screen.read(text.replace(head + "\n", "").replace(hint, "")).state == "unknown"


def test_auto_check_text_in_the_conversation_is_not_a_dialog() -> None:
    # 2.1.332 leaves a "● Auto mode can't check actions in this session. …" note in the
    # conversation once the dialog is answered; the box under it is idle
    got = screen.read(
        load("auto-after-live.txt", NEWEST).replace(
            "● ok from fake", "● Auto mode can't check actions in this session\n\n● ok from fake"
        )
    )
    assert (got.state, got.kind) == ("idle", "")


def test_select_needs_its_selector_and_hint() -> None:
    text = load("auto-approval-no-selected.txt", NEWEST)
    assert screen.read(text.replace(" ❯ No", "   No")).state == "unknown"
    assert screen.read(text.replace("Esc to cancel", "")).state == "unknown"


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
