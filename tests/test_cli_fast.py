"""The typer-free path for send/inbox/list/who says exactly what the typer app says (issue 6).

Each form runs twice, on two copies of one mailbox: through the console
script as installed (fast path) and with ``KEI_MAILBOX_NO_FAST=1`` (typer).
stdout, stderr, the exit code and the cursors afterwards must agree.

Budget: about 30 s (two processes per form).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kei_message.cli import fast
from kei_message.mailbox import Mailbox
from kei_message.stores.jsonl import JsonlStore

BIN = Path(sys.executable).parent

HANDLED = [
    ["send", "@bob", "hello", "there", "--from", "alice"],
    ["send", "--from", "alice", "all", "TASK:", "everyone"],
    ["send", "--to", "bob", "--from=alice", "@carol", "stays", "text"],
    ["send", "@bobb", "typo", "--from", "alice"],
    ["send", "@nobody-yet", "hi", "--from", "alice", "--kind", "question"],
    ["send", "--json", "@bob", "x", "--from", "alice"],
    ["send", "--from", "alice", "--", "@bob", "--not-an-option"],
    ["send", "@bad/name", "x", "--from", "alice"],
    ["send", "@bob", "x", "--from", "alice", "--kind", "NOPE"],
    ["send", "@bob", "", "--from", "alice"],
    ["send", "@my worker", "x", "--from", "alice"],
    ["send", "@bob", "x", "--from", "my name"],
    ["inbox", "bob"],
    ["inbox", "--me", "bob", "--json"],
    ["inbox", "bob", "--peek"],
    ["inbox", "--me", "carol", "--count"],
    ["inbox", "--me", "nobody"],
    ["inbox", "bob", "--full"],
    ["list"],
    ["list", "-n", "2"],
    ["list", "--limit", "3", "--json"],
    ["list", "--from", "alice", "--kind", "TASK"],
    ["list", "--full", "-n", "2"],
    ["list", "--to", "@bad/x"],
    ["who"],
    ["channels", "--json"],
    ["names"],
    # issue 19; FIRST is the id of the first record
    ["inbox", "--clear", "--me", "bob"],
    ["inbox", "carol", "--clear"],
    ["inbox", "pop", "--me", "bob"],
    ["inbox", "pop", "bob", "--json"],
    ["inbox", "pop", "--me", "nobody"],
    ["show", "FIRST"],
    ["show", "#FIRST", "--json"],
    ["show", "12345"],
    ["show", "nonsense"],
    ["reply", "FIRST", "DONE:", "got", "it", "--from", "bob"],
    ["reply", "FIRST", "ok", "--from", "bob", "--kind", "question", "--json"],
    ["reply", "12345", "ok", "--from", "bob"],
    ["reply", "FIRST", "ok", "--from", "bad/name"],
]

NOT_HANDLED = [
    [],
    ["send"],
    ["send", "@bob"],
    ["send", "-", "--from", "a"],
    ["send", "@bob", "x", "--live"],
    ["send", "@bob", "x", "--reply-to", "1"],
    ["send", "-h"],
    ["send", "@bob", "x", "--from"],
    ["send", "@bob", "x", "--from", "-y"],
    ["inbox", "pop", "--peek"],
    ["inbox", "pop", "a", "b"],
    ["inbox", "--clear", "--peek"],
    ["inbox", "--count", "--clear"],
    ["inbox", "pop", "--clear"],
    ["inbox", "--all"],
    ["inbox", "a", "b"],
    ["inbox", "a", "--me", "b"],
    ["list", "--since", "2h"],
    ["list", "-n", "-1"],
    ["list", "extra"],
    ["who", "x"],
    ["who", "--help"],
    ["show"],
    ["show", "1", "2"],
    ["show", "-h"],
    ["reply", "1"],
    ["reply", "1", "-"],
    ["reply", "1", "x", "--reply-to", "2"],
    ["--url", "redis://x", "list"],
]


def seed(root: Path) -> None:
    mb = Mailbox(JsonlStore(str(root)))
    mb.send("first", to="bob", sender="alice")
    mb.send("TASK: do it", to="bob", sender="carol")
    mb.send("to all\nsecond line", to="all", sender="alice")
    mb.send("for carol", to="carol", sender="bob", kind="DONE")
    mb.read("alice")


def run(root: Path, args: list[str], *, no_fast: bool) -> tuple[int, str, str, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEI_")}
    env.update(KEI_MAILBOX_DIR=str(root), NO_COLOR="1")
    if no_fast:
        env["KEI_MAILBOX_NO_FAST"] = "1"
    proc = subprocess.run(
        [str(BIN / "kei-message"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    cursors = {
        p.name: p.read_text()
        for p in sorted((root / "cursors").glob("*"))
        if not p.name.endswith(".lock")
    }
    return proc.returncode, proc.stdout, proc.stderr, cursors


def normalise(text: str) -> str:
    # ids and times of the record each run appends differ; everything else must not
    text = re.sub(r"#\d{16}", "#ID", text)
    text = re.sub(r'"id":\d+', '"id":ID', text)
    text = re.sub(r'"ts":"[^"]*"', '"ts":TS', text)
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "TIME", text)


@pytest.mark.parametrize("args", HANDLED, ids=lambda a: " ".join(a) or "(none)")
def test_fast_path_matches_typer(args: list[str], tmp_path: Path) -> None:
    a, b = tmp_path / "fast", tmp_path / "typer"
    seed(a)
    first = str(Mailbox(JsonlStore(str(a))).recent(1000)[0]["id"])
    args = [w.replace("FIRST", first) for w in args]
    assert fast.COMMANDS[args[0]](args[1:]) is not None, "this form should be handled"
    shutil.copytree(a, b)
    got = run(a, args, no_fast=False)
    want = run(b, args, no_fast=True)
    assert got[0] == want[0], (got, want)
    assert normalise(got[1]) == normalise(want[1])
    assert normalise(got[2]) == normalise(want[2])
    assert got[3] == want[3]  # cursors moved alike


@pytest.mark.parametrize("args", NOT_HANDLED, ids=lambda a: " ".join(a) or "(none)")
def test_other_forms_go_to_typer(args: list[str]) -> None:
    parse = fast.COMMANDS.get(args[0]) if args else None
    assert parse is None or parse(args[1:]) is None


def test_switched_off_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEI_MAILBOX_NO_FAST", "1")
    assert fast.run(["who"]) is None


def test_a_warning_reaches_stderr_without_logging_loaded_up_front(tmp_path: Path) -> None:
    """The fast path imports logging only when the mailbox warns (issue 19)."""
    a, b = tmp_path / "fast", tmp_path / "typer"
    seed(a)
    with open(a / "messages.jsonl", "ab") as fh:
        fh.write(b'{"id": 1, "to": "bob", torn\n')
    Mailbox(JsonlStore(str(a))).send("after", to="bob", sender="carol")
    shutil.copytree(a, b)
    got = run(a, ["inbox", "bob"], no_fast=False)
    want = run(b, ["inbox", "bob"], no_fast=True)
    assert "warning: skipped a corrupt line" in got[2]
    assert got[0] == want[0] == 0 and got[1] == want[1] and got[2] == want[2]


HEAVY = (
    "typer",
    "orjson",
    "logging",
    "typing",
    "dataclasses",
    "re",
    "portalocker",
    "contextlib",
    "collections",
    "functools",
    "datetime",
)
EVERYDAY = [
    ["send", "--from", "alice", "@bob", "hello"],
    ["inbox", "bob"],
    ["inbox", "pop", "carol"],
    ["list"],
    ["who"],
    ["show", "FIRST"],
    ["reply", "--from", "bob", "FIRST", "got it"],
]


def _case(args: list[str]) -> str:
    return " ".join(args[:2]) if args[0] == "inbox" else args[0]


@pytest.mark.parametrize("args", EVERYDAY, ids=_case)
def test_everyday_commands_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    """docs/design.md: the everyday paths import neither typer, orjson, logging, typing,
    dataclasses, re nor portalocker (issue 19); a plain JSONL mailbox, no panes."""
    seed(tmp_path)
    first = str(Mailbox(JsonlStore(str(tmp_path))).recent(1000)[0]["id"])
    args = [w.replace("FIRST", first) for w in args]
    code = (
        "import sys\n"
        "from kei_message.cli import kei_main\n"
        "sys.argv = ['kei', 'message', *sys.argv[1:]]\n"
        "try:\n"
        "    code = kei_main()\n"
        "finally:\n"
        f"    sys.stderr.write('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEI_")}
    env.update(KEI_MAILBOX_DIR=str(tmp_path), NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.rsplit("HEAVY=", 1)[1] == "", proc.stderr
