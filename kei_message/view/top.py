"""``kei message top``: the team in a terminal, redrawn as the mailbox changes.

Every string from a record or a session file goes through
``render.neutralise`` and into a ``rich.text.Text`` (never rich markup), so
no message can colour, move or clear the screen. ``NO_COLOR`` turns every
style off (no SGR at all); the width is the terminal's (``COLUMNS`` when
not a terminal), and columns drop out below 80 and 64 columns.

The live view redraws when the watcher (``view.watch``) reports a change, on
a key, on a resize, and every ``SAFETY`` seconds: pane states change on
screen without any file changing. ``q`` (or Ctrl-C) quits and the terminal
is restored (alternate screen, cooked mode).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from .. import render
from .state import build_state

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from ..mailbox import Mailbox

SAFETY = 2.0  # seconds between redraws when nothing reported a change
_STATE_STYLE = {
    "idle": "green",
    "draft": "yellow",
    "busy": "cyan",
    "waiting": "bold red",
    "gone": "dim",
    "unknown": "magenta",
}
_KIND_STYLE = {"TASK": "yellow", "DONE": "green", "BLOCKED": "red", "QUESTION": "magenta"}


def age(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def _since(ts: Any, now: float) -> str:
    from ..records import ts_epoch

    epoch = ts_epoch(ts) if isinstance(ts, str) else None
    return "-" if epoch is None else age(now - epoch)


def _one_line(value: object) -> str:
    text = str(value).replace("\r\n", "\n").replace("\n", " \u21b5 ")
    return render.neutralise(text, multiline=False)


def make_console(*, file: Any = None, force_terminal: bool | None = None) -> Console:
    from rich.console import Console

    no_color = "NO_COLOR" in os.environ
    return Console(
        file=file,
        force_terminal=force_terminal,
        color_system=None if no_color else "auto",
        no_color=no_color,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
    )


def frame(
    state: dict[str, Any],
    *,
    width: int,
    messages: int | None = None,
    now: float | None = None,
    live: bool = False,
) -> RenderableType:
    """One screen of ``state`` for a terminal ``width`` columns wide."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    now = time.time() if now is None else now
    wide, medium = width >= 80, width >= 64
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append("kei message top", style="bold")
    if live:
        head.append("  q quits", style="dim")
    head.append(f"  {_one_line(state.get('store', '?'))} ", style="dim")
    head.append(_one_line(state.get("location", "")), style="dim")

    people = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False, show_edge=False)
    people.add_column("NAME", style="bold", overflow="fold", min_width=4)
    people.add_column("SESSION", overflow="ellipsis", no_wrap=True, max_width=8)
    if wide:
        people.add_column("AGENT", no_wrap=True)
    people.add_column("STATE", no_wrap=True)
    people.add_column("WAITER" if medium else "W", no_wrap=True)
    people.add_column("UNREAD" if medium else "UNRD", justify="right", no_wrap=True)
    people.add_column("OLDEST" if medium else "OLD", justify="right", no_wrap=True)
    if wide:
        people.add_column("SEEN", justify="right", no_wrap=True)
    for row in state.get("names", []):
        sessions = row.get("sessions") or [None]
        for i, sess in enumerate(sessions):
            first = i == 0
            st = (sess or {}).get("state") or (row.get("state") if first else None)
            unread = int(row.get("unread") or 0)
            cells: list[Text] = [
                Text(_one_line(row.get("name", "?")) if first else ""),
                Text(_one_line(sess["session"]) if sess and sess.get("session") else "-"),
            ]
            if wide:
                cells.append(Text(_one_line(sess["agent"]) if sess else "-"))
            cells.append(Text(_one_line(st) if st else "-", style=_STATE_STYLE.get(st or "", "")))
            cells.append(Text(("yes" if row.get("waiter") else "-") if first else ""))
            cells.append(
                Text(str(unread) if first else "", style="bold yellow" if unread and first else "")
            )
            cells.append(Text(age(row.get("oldest_unread_age")) if first and unread else ""))
            if wide:
                seen = (sess or {}).get("last_seen") or (row.get("last_seen") if first else None)
                cells.append(Text(_since(seen, now) if seen else "-", style="dim"))
            people.add_row(*cells)
    if not state.get("names"):
        people.add_row(Text("nobody yet: no message sent, no session registered", style="dim"))

    recs = list(state.get("messages", []))
    if messages is not None:
        recs = recs[-messages:] if messages > 0 else []
    from ..records import ts_epoch

    rows: list[tuple[Text, Text, Text]] = []
    for rec in recs:
        when = ts_epoch(rec["ts"]) if isinstance(rec.get("ts"), str) else None
        who = Text(_one_line(rec.get("from", "?")), style="bold")
        who.append(" -> ")
        who.append(_one_line(rec.get("to", "?")), style="bold")
        body = Text(_one_line(rec.get("body", "")))
        kind = rec.get("kind")
        if isinstance(kind, str) and kind:
            label = _one_line(kind)
            style = _KIND_STYLE.get(kind, "bold")
            if body.plain.lstrip().startswith(label + ":"):  # typed in the body: colour it
                at = body.plain.index(label)
                body.stylize(style, at, at + len(label) + 1)
            else:
                body = Text(f"[{label}] ", style=style) + body
        if rec.get("reply_to") is not None:
            body = Text(f"(re #{_one_line(rec.get('reply_to'))}) ", style="dim") + body
        rows.append((Text(age(None if when is None else now - when)), who, body))
    who_width = min(max((r[1].cell_len for r in rows), default=4), max(10, width // 3))
    lines: list[Text] = []
    for when_t, who, body in rows:
        who.truncate(who_width, overflow="ellipsis", pad=True)
        when_t.align("right", 3)
        when_t.stylize("dim")
        line = Text.assemble(when_t, " ", who, " ", body, no_wrap=True, overflow="ellipsis")
        line.truncate(max(1, width - 1), overflow="ellipsis")
        lines.append(line)
    title = Text("latest messages", style="bold")
    if not recs:
        title.append("  (none yet)", style="dim")
    return Group(head, people, title, *lines)


def once(mb: Mailbox, console: Console | None = None) -> None:
    """Print one frame (``top --once``)."""
    console = console or make_console()
    state = build_state(mb)
    console.print(frame(state, width=console.width, messages=15))


def run(mb: Mailbox) -> None:
    """The live view, until ``q`` or Ctrl-C."""
    import select
    import signal
    import sys

    from rich.live import Live

    from .watch import Watcher

    console = make_console()
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)

    def poke() -> None:
        try:
            os.write(wfd, b"x")
        except BlockingIOError:  # already poked: one redraw covers it
            pass

    stdin = sys.stdin.fileno() if sys.stdin is not None and sys.stdin.isatty() else None
    saved = None
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: poke())
    watcher = Watcher(mb, poke).start()
    try:
        if stdin is not None:
            import termios
            import tty

            saved = termios.tcgetattr(stdin)
            tty.setcbreak(stdin)  # keys one by one, no echo; Ctrl-C still interrupts

        memo: dict[str, Any] = {}

        def draw() -> RenderableType:
            state = build_state(mb, memo=memo)
            height = console.size.height
            rows = sum(max(1, len(r.get("sessions") or ())) for r in state.get("names", []))
            return frame(state, width=console.width, messages=max(3, height - rows - 7), live=True)

        with Live(
            draw(), console=console, screen=True, auto_refresh=False, redirect_stdout=False
        ) as live:
            waits = [rfd] if stdin is None else [rfd, stdin]
            while True:
                ready, _, _ = select.select(waits, [], [], SAFETY)
                if stdin is not None and stdin in ready:
                    keys = os.read(stdin, 64)
                    if not keys or b"q" in keys or b"Q" in keys or b"\x03" in keys:
                        break
                if rfd in ready:
                    os.read(rfd, 4096)
                live.update(draw(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
        signal.signal(signal.SIGWINCH, old_winch)
        if saved is not None and stdin is not None:
            import termios

            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        os.close(rfd)
        os.close(wfd)
