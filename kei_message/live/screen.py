"""Reading a Claude Code pane: is it idle, holding a draft, busy, or asking permission?

The screen is plain ``capture-pane -p`` text. The UI changes between versions
and widths, so the reader keys on structure rather than exact layout:

- The **input box** is a ``❯`` (or ``>``) prompt line just below a horizontal
  rule, closed by another rule, with at most a few footer lines under it (hints,
  a status line). Text after the prompt is a draft; an empty box is idle.
- **Busy**: ``esc to interrupt`` (older builds ``ctrl+c to interrupt``) in the
  footer, or an active spinner line in the few lines above the box
  (``✢ Infusing…``: a glyph, a word, an ellipsis; a finished turn reads
  ``✻ Brewed for 8s``, with no ellipsis).
- **Waiting**: no input box at the bottom, but something that waits on the user.
  ``Screen.kind`` says which:
  - ``menu``: a numbered option list starting at ``1.`` below a question
    (``Do you want to proceed?``) or with a ``❯`` selector. Any such menu
    counts: typing into it would pick an option.
  - ``select``: the same question over an unnumbered list with a ``❯`` selector
    (2.1.332 in auto mode: ``❯ No`` / ``Yes``); Enter picks the selected line,
    ``Screen.selected`` says which one.
  - ``auto-check``: 2.1.332's "Auto mode can't check actions in this session"
    dialog (the auto-mode safety check cannot reach its server, e.g. through a
    gateway or a fake API): Enter stays in auto mode and asks per action (a
    ``select`` follows), shift+Tab leaves auto mode and stops the turn.
- Anything else is **unknown**; the caller treats unknown as "do not type".

Only the bottom of the screen is read, so old conversation text that mentions
these markers (a message quoting "esc to interrupt") cannot fool it.

**Gemini CLI** (issue 18; real screens of 0.61.0 in
``tests/fixtures/gemini-screens/``) draws its input differently, and is read
when no Claude Code box is found (``_read_gemini``): one rule, then within a
few lines a `` > `` prompt line (its placeholder ``Type your message or
@path/to/file`` means empty), then a footer; busy is ``(esc to cancel, Ns)``
on the spinner line just above the rule; waiting is a bordered dialog at the
bottom holding a numbered menu (``● 1. Allow once``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

IDLE = "idle"
DRAFT = "draft"
BUSY = "busy"
WAITING = "waiting"
UNKNOWN = "unknown"
GONE = "gone"

_PROMPTS = ("❯", ">", "›")
_RULE_CHARS = frozenset("─━═-")
_CORNERS = "╭╮╰╯┌┐└┘"
_MIN_RULE = 10
_FOOTER_MAX = 8  # non-empty lines allowed under the box's closing rule
_ABOVE = 5  # non-empty lines above the box searched for a spinner
_INTERRUPT = re.compile(r"\b(?:esc|ctrl\+c)\s+to\s+interrupt\b", re.IGNORECASE)
_SPINNER = re.compile(r"^\s*[^\w\s❯>›│|]\s+[A-Z][\w'-]*…")
_OPTION = re.compile(r"^\s*(?:[❯›>]\s*)?(\d)[.)]\s+(\S.*)$")
_SELECTED = re.compile(r"^\s*[❯›>]\s*1[.)]\s")
_QUESTION = re.compile(r"\?\s*$")
_ITEM = re.compile(r"^\s*([❯›>]\s*)?(\S.{0,79})$")
_HINT = re.compile(r"\besc to cancel\b", re.IGNORECASE)
_AUTO_CHECK = re.compile(r"^\s*auto mode can't check actions in this session\s*$", re.IGNORECASE)
_AUTO_CHECK_HINT = re.compile(r"^\s*enter to stay in auto mode\b", re.IGNORECASE)

# what a waiting screen asks (Screen.kind)
MENU = "menu"
SELECT = "select"
AUTO_CHECK = "auto-check"


class Screen(NamedTuple):
    state: str
    draft: str  # the composer text (draft state), else ""
    options: dict[int, str]  # a waiting menu's options: number (or position) -> label
    kind: str = ""  # waiting only: MENU, SELECT or AUTO_CHECK
    selected: int = 0  # SELECT: the option the ❯ selector is on


def _is_rule(line: str) -> bool:
    # older builds drew the input as a rounded box: ╭───╮ … ╰───╯
    s = line.strip().strip(_CORNERS)
    return len(s) >= _MIN_RULE and frozenset(s) <= _RULE_CHARS


def _unbox(line: str) -> str:
    return line.strip().strip("│").strip()


def _strip_prompt(line: str) -> str | None:
    s = _unbox(line)
    for p in _PROMPTS:
        if s.startswith(p):
            return s[len(p) :]
    return None


def _find_box(lines: list[str], rules: list[int]) -> tuple[int, int] | None:
    """Indices (top rule, bottom rule) of the input box at the bottom of the screen."""
    for bottom in reversed(rules):
        footer = [x for x in lines[bottom + 1 :] if x.strip()]
        if len(footer) > _FOOTER_MAX:
            return None  # the last rule is too far up: no box at the bottom
        tops = [i for i in rules if i < bottom]
        if not tops:
            continue
        top = tops[-1]
        if top + 1 < bottom and _strip_prompt(lines[top + 1]) is not None:
            return top, bottom
    return None


def _options(lines: list[str]) -> dict[int, str]:
    """The numbered menu at the bottom (1., 2., ...), if there is one."""
    tail = lines[-25:]
    for i, line in enumerate(tail):
        m = _OPTION.match(line)
        if not m or m.group(1) != "1":
            continue
        opts = {1: m.group(2).strip()}
        for nxt in tail[i + 1 : i + 12]:
            n = _OPTION.match(nxt)
            if n and int(n.group(1)) == len(opts) + 1:
                opts[len(opts) + 1] = n.group(2).strip()
        if len(opts) < 2:
            continue
        above = [x for x in tail[max(0, i - 4) : i] if x.strip()]
        if _SELECTED.match(line) or any(_QUESTION.search(x) for x in above):
            return opts
    return {}


def _select(lines: list[str]) -> tuple[dict[int, str], int]:
    """An unnumbered ``❯`` list under a question, closed by ``Esc to cancel``.

    Returns (position -> label, selected position), or ({}, 0).
    """
    tail = lines[-25:]
    for i, line in enumerate(tail):
        if not _QUESTION.search(line):
            continue
        opts: dict[int, str] = {}
        selected = 0
        j = i + 1
        while j < len(tail) and tail[j].strip() and not _HINT.search(tail[j]):
            m = _ITEM.match(tail[j])
            if m is None or len(opts) >= 9:
                break
            opts[len(opts) + 1] = m.group(2).strip()
            if m.group(1):
                selected = selected or len(opts)
            j += 1
        rest = [x for x in tail[j:] if x.strip()]
        if len(opts) >= 2 and selected and rest and _HINT.search(rest[0]):
            return opts, selected
    return {}, 0


def _auto_check(lines: list[str]) -> bool:
    """2.1.332's "Auto mode can't check actions in this session" dialog."""
    body = [x for x in lines if x.strip()]
    return bool(body) and (
        bool(_AUTO_CHECK.match(body[0])) or bool(_AUTO_CHECK_HINT.match(body[-1]))
    )


_GEMINI_PLACEHOLDER = "Type your message or @path/to/file"
_GEMINI_BUSY = re.compile(r"\(esc to cancel\b", re.IGNORECASE)
_GEMINI_BELOW = 4  # lines from Gemini's rule down to its prompt line


def _read_gemini(lines: list[str], in_mode: bool) -> Screen | None:
    """Gemini CLI's screen (module docstring); None when it does not look like one."""
    if lines and lines[-1].strip().startswith("╰"):
        # a dialog box at the bottom: unbox it, drop the selection bullet, find its menu
        top = max((i for i, x in enumerate(lines) if x.strip().startswith("╭")), default=-1)
        if top >= 0:
            inner = [_unbox(x).lstrip("●○").strip() for x in lines[top:]]
            opts = _options(inner)
            if opts:
                return Screen(WAITING, "", opts)
        return None
    rules = [i for i, x in enumerate(lines) if _is_rule(x) and x.strip()[0] in _RULE_CHARS]
    if not rules:
        return None
    rule = rules[-1]
    below = lines[rule + 1 :]
    if len([x for x in below if x.strip()]) > _FOOTER_MAX:
        return None
    prompt = next(
        (
            i
            for i, x in enumerate(below[:_GEMINI_BELOW])
            if x.strip().startswith(">") and len(x.strip()) > 1 and x.strip()[1] == " "
        ),
        None,
    )
    if prompt is None:
        return None
    draft = below[prompt].strip()[1:].strip()
    if draft == _GEMINI_PLACEHOLDER:
        draft = ""
    above = [x for x in lines[:rule] if x.strip()][-2:]
    if any(_GEMINI_BUSY.search(x) for x in above):
        return Screen(BUSY, draft, {})
    if in_mode:
        return Screen(UNKNOWN, draft, {})
    return Screen(DRAFT, draft, {}) if draft else Screen(IDLE, "", {})


def read(text: str, *, in_mode: bool = False) -> Screen:
    """The state of a pane from its captured text (and whether tmux shows it in a mode)."""
    lines = [line.rstrip() for line in text.replace("\r", "").split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    rules = [i for i, line in enumerate(lines) if _is_rule(line)]
    # A menu under the last rule (or anywhere, with no rule) is a dialog: the input box
    # is hidden while Claude Code asks, and keys typed now would choose an option.
    below = lines[rules[-1] + 1 :] if rules else lines
    opts = _options(below)
    if opts:
        return Screen(WAITING, "", opts, MENU)
    opts, selected = _select(below)
    if opts:
        return Screen(WAITING, "", opts, SELECT, selected)
    if rules and _auto_check(below):
        return Screen(WAITING, "", {}, AUTO_CHECK)
    box = _find_box(lines, rules)
    if box is None:
        return _read_gemini(lines, in_mode) or Screen(UNKNOWN, "", {})
    top, bottom = box
    footer = "\n".join(lines[bottom + 1 :])
    above = [x for x in lines[:top] if x.strip()][-_ABOVE:]
    # above the box only a spinner line counts (old builds put "ctrl+c to interrupt"
    # inside it); any other line there is conversation, which may quote anything
    busy = bool(_INTERRUPT.search(footer)) or any(_SPINNER.match(x) for x in above)
    first = _strip_prompt(lines[top + 1]) or ""
    body = [first, *lines[top + 2 : bottom]]
    draft = "\n".join(_unbox(x) for x in body).strip()
    if draft == _GEMINI_PLACEHOLDER:
        draft = ""  # Gemini CLI boxes its input between two rules too (with a truecolor warning)
    if busy:
        return Screen(BUSY, draft, {})
    if in_mode:
        # copy mode: someone is scrolling this pane; keys would go to tmux, not Claude
        return Screen(UNKNOWN, draft, {})
    if draft:
        return Screen(DRAFT, draft, {})
    return Screen(IDLE, "", {})


def option_is_yes(label: str) -> bool:
    return label.strip().lower().startswith("yes")
