#!/usr/bin/env python3
"""A small terminal program that looks and reacts like the Claude Code TUI, for tests.

Run inside a tmux pane: ``python fake_claude_tui.py LOG [options]``. It puts the
terminal in raw mode, asks for bracketed paste (``ESC[?2004h``) and draws the
markers the real TUI shows (see ../shared/fixtures/claude-screens/):

- idle: an empty ``❯`` prompt between two rules, ``? for shortcuts`` under it;
- draft: typed or pasted text after ``❯``;
- busy: a spinner line ``✢ Infusing…`` and ``esc to interrupt``, for ``--busy``
  seconds after a prompt, or as long as the file ``LOG.hold`` exists;
- a permission menu (``Do you want to proceed?`` / ``1. Yes`` / ``2. Yes, and …`` /
  ``3. No``, or ``--yes-no`` for ``1. Yes`` / ``2. No``) after a prompt containing
  ``ASK-PERMISSION``; ``1``/``2`` approve, ``3`` or Escape deny;
- Escape while busy interrupts and puts the prompt back in the composer;
- ``--count-unread NAME``: on each submit, log how many unread NAME has (what
  the UserPromptSubmit hook would inject);
- ``--swallow-first-enter``: the first Enter after each paste is ignored (as a
  real build may take an Enter arriving right after a paste as part of it);
- ``--deaf-menu``: the permission menu logs its keys and ignores them (a prompt
  that does not take an answer).

Every event is appended to LOG as one JSON line: ``{"event": "prompt", "text": ...}``,
``{"event": "paste", ...}``, ``{"event": "key", "key": "Escape"}``,
``{"event": "approve", "choice": "1"}``, ``{"event": "deny"}``, ``{"event": "ready"}``;
and every byte read from the terminal, before any interpretation, as
``{"event": "bytes", "hex": ...}`` (so a test sees exactly which keys arrived).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import sys
import termios
import time
import tty

PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"


class Fake:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.log_path = args.log
        self.hold = args.log + ".hold"
        self.history: list[str] = []
        self.composer = ""
        self.mode = "idle"  # idle | busy | menu
        self.busy_until = 0.0
        self.current = ""
        self.swallow = False
        self.out = sys.stdout.buffer

    # ------------------------------------------------------------------ log and draw
    def log(self, **event: object) -> None:
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event, ensure_ascii=False) + "\n")

    def draw(self) -> None:
        cols, rows = shutil.get_terminal_size((100, 30))
        rule = "─" * cols
        lines: list[str] = [" ✻ Fake Claude Code v0.0 (tests)", ""]
        lines += self.history
        lines.append("")
        if self.mode == "menu":
            lines += [
                rule,
                " Bash command",
                "",
                "   touch /tmp/x",
                "   Create file x",
                "",
                " Do you want to proceed?",
                " ❯ 1. Yes",
            ]
            if self.args.yes_no:
                lines += ["   2. No"]
            else:
                lines += [
                    "   2. Yes, and always allow access to proj/ from this project",
                    "   3. No",
                ]
            lines += ["", " Esc to cancel · Tab to amend"]
        else:
            if self.mode == "busy":
                lines += ["✢ Infusing…", ""]
            body = self.composer.split("\n")
            lines.append(rule)
            lines.append("❯\u00a0" + body[0])
            lines += ["  " + b for b in body[1:]]
            lines.append(rule)
            hint = "esc to interrupt" if self.mode == "busy" else "? for shortcuts"
            lines.append(f"  {hint} · ← for agents")
        lines = [line[:cols] for line in lines][-rows:]
        self.out.write(b"\x1b[H\x1b[2J" + "\r\n".join(lines).encode("utf-8"))
        self.out.flush()

    # ------------------------------------------------------------------ behaviour
    def submit(self) -> None:
        text = self.composer
        self.composer = ""
        if self.args.count_unread:
            # what the UserPromptSubmit hook would find at this moment
            import subprocess

            code = (
                "import sys; from kei_message.mailbox import Mailbox; "
                "print(Mailbox().count(sys.argv[1]))"
            )
            got = subprocess.run(
                [sys.executable, "-c", code, self.args.count_unread],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            self.log(event="unread_at_submit", count=got.stdout.strip(), err=got.stderr[-300:])
        self.log(event="prompt", text=text)
        self.history += [f"❯ {line}" for line in text.split("\n")]
        self.current = text
        if "ASK-PERMISSION" in text:
            self.mode = "menu"
        else:
            self.mode = "busy"
            self.busy_until = time.monotonic() + self.args.busy

    def finish(self) -> None:
        self.history += ["", "● ok from fake", ""]
        self.mode = "idle"

    def key(self, name: str) -> None:
        self.log(event="key", key=name)
        if self.mode == "menu":
            if self.args.deaf_menu:
                return
            if name in ("1", "2") and not (self.args.yes_no and name == "2"):
                self.log(event="approve", choice=name)
                self.mode = "busy"
                self.busy_until = time.monotonic() + self.args.busy
            elif name in ("3", "Escape") or (self.args.yes_no and name == "2"):
                self.log(event="deny")
                self.history += ["  ⎿  Interrupted · What should Claude do instead?"]
                self.mode = "idle"
            return
        if name == "Escape":
            if self.mode == "busy":
                self.log(event="interrupt")
                self.history += ["  ⎿  Interrupted · What should Claude do instead?"]
                self.composer = self.current
                self.mode = "idle"
            return
        if name == "Enter":
            if self.swallow:
                self.swallow = False
                self.log(event="swallowed")
                return
            if self.mode == "idle" and self.composer.strip():
                self.submit()
            return
        if name == "C-u":
            head, _, _ = self.composer.rpartition("\n")
            self.composer = head + "\n" if "\n" in self.composer else ""
            return
        if name == "BSpace":
            self.composer = self.composer[:-1]
            return
        if name == "C-c":
            self.composer = ""
            return

    def typed(self, text: str) -> None:
        self.composer += text

    # ------------------------------------------------------------------ input
    def read(self) -> bytes:
        data = os.read(0, 65536)
        self.log(event="bytes", hex=data.hex())
        return data

    def handle(self, data: bytes) -> None:
        while data:
            if data.startswith(PASTE_START):
                end = data.find(PASTE_END)
                while end < 0:
                    more = self.read()
                    if not more:
                        return
                    data += more
                    end = data.find(PASTE_END)
                text = data[len(PASTE_START) : end].decode("utf-8", "replace").replace("\r", "\n")
                data = data[end + len(PASTE_END) :]
                self.log(event="paste", text=text)
                self.typed(text)
                if self.args.swallow_first_enter:
                    self.swallow = True
                continue
            b = data[:1]
            if b == b"\x1b":
                if data[1:2] in (b"[", b"O") and len(data) > 2:
                    # a cursor key such as End (ESC [ F, ESC O F, ESC [ 4 ~): the cursor
                    # is always at the end here, so skip the whole sequence
                    i = 2
                    while i < len(data) and not 0x40 <= data[i] <= 0x7E:
                        i += 1
                    data = data[i + 1 :]
                    continue
                data = data[1:]
                self.key("Escape")
                continue
            if b == b"\r":
                data = data[1:]
                self.key("Enter")
                continue
            if b == b"\x15":
                data = data[1:]
                self.key("C-u")
                continue
            if b == b"\x7f" or b == b"\x08":
                data = data[1:]
                self.key("BSpace")
                continue
            if b == b"\x03":
                data = data[1:]
                self.key("C-c")
                continue
            if self.mode == "menu":
                data = data[1:]
                self.key(b.decode("ascii", "replace"))
                continue
            # a run of ordinary characters (UTF-8 kept whole)
            stop = len(data)
            for i, c in enumerate(data):
                if c in (0x1B, 0x0D, 0x15, 0x7F, 0x08, 0x03):
                    stop = i
                    break
            chunk, data = data[:stop], data[stop:]
            text = chunk.decode("utf-8", "replace")
            self.log(event="typed", text=text)
            self.typed(text)

    def tick(self) -> None:
        due = self.mode == "busy" and time.monotonic() >= self.busy_until
        if due and not os.path.exists(self.hold):
            self.finish()
            self.draw()

    def run(self) -> None:
        fd = 0
        saved = termios.tcgetattr(fd)
        tty.setraw(fd)
        self.out.write(b"\x1b[?2004h")
        self.draw()
        self.log(event="ready")
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if ready:
                    data = self.read()
                    if not data:
                        break
                    self.handle(data)
                    self.draw()
                self.tick()
        finally:
            self.out.write(b"\x1b[?2004l")
            self.out.flush()
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--busy", type=float, default=0.3, help="seconds busy after a prompt")
    ap.add_argument("--swallow-first-enter", action="store_true")
    ap.add_argument("--count-unread", metavar="NAME", help="log NAME's unread count on submit")
    ap.add_argument("--yes-no", action="store_true", help="permission menu with 1. Yes / 2. No")
    ap.add_argument("--deaf-menu", action="store_true", help="the menu ignores its keys")
    Fake(ap.parse_args()).run()


if __name__ == "__main__":
    main()
