"""A task across agents (issue 18): Claude Code hands a TASK to a Codex worker, the
worker answers DONE with ``kei message reply``, Claude reads it; each exactly once.

Real Claude Code (``claude -p``) against tests/fakeapi.py and real Codex
(``codex exec``) against tests/fake_openai.py, both in temporary HOMEs; the
fakes play the models: Claude's answers with a Bash tool call running
``kei message send``, Codex's with a shell tool call running ``kei message
reply``. The projects are named ``lead`` and ``worker``: their identities.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agentcli import ProcGuard, codex_env
from conftest import claude_env

from kei_message.mailbox import Mailbox

pytestmark = [pytest.mark.claude, pytest.mark.slow]

BIN = Path(sys.executable).parent


def install(env: dict[str, str], cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [str(BIN / "kei"), "message", "install", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_claude_tasks_codex_and_reads_done(
    claude_bin: str,
    codex_bin: str,
    fake_api: Any,
    fake_openai: Any,
    procs: ProcGuard,
    tmp_path: Path,
) -> None:
    lead, worker = tmp_path / "lead", tmp_path / "worker"
    lead.mkdir()
    worker.mkdir()
    cenv = claude_env(tmp_path / "chome", fake_api.url, lead)
    xenv = codex_env(tmp_path / "xhome", fake_openai.url)
    install(cenv, lead)
    install(xenv, worker, "--agent", "codex")
    mb = Mailbox()

    # 1. Claude (lead) sends the task: its model answers with a Bash tool call
    fake_api.reply_tool('kei message send @worker "TASK: bump the version to 2.0"', "send")
    fake_api.reply_text("handed to worker")
    done = procs.run(
        [claude_bin, "--allowedTools", "Bash", "-p", "give worker the version bump"],
        env=cenv,
        cwd=lead,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (task,) = mb.recent(10, to="worker")
    assert (task["from"], task["kind"]) == ("lead", "TASK")

    # 2. Codex (worker) gets it in its turn and replies DONE with a shell tool call
    fake_openai.reply_shell(f'kei message reply {task["id"]} "DONE: version is 2.0"')
    fake_openai.reply_text("replied to lead")
    done = procs.run(
        [
            codex_bin,
            "exec",
            "--dangerously-bypass-hook-trust",
            "--dangerously-bypass-approvals-and-sandbox",
            "--skip-git-repo-check",
            "check your mail",
        ],
        env=xenv,
        cwd=worker,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    codex_saw = [t for t in fake_openai.texts() if "TASK: bump the version" in t]
    assert codex_saw and "kei mailbox: 1 new message for worker" in codex_saw[0]
    (reply,) = mb.recent(10, to="lead")
    assert (reply["from"], reply["kind"], reply["reply_to"]) == ("worker", "DONE", task["id"])
    assert mb.count("worker") == 0

    # 3. Claude reads the DONE with its next prompt, once
    before = len(fake_api.requests)
    done = procs.run([claude_bin, "-p", "any news?"], env=cenv, cwd=lead, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    saw = [i for i, t in enumerate(fake_api.texts()) if i >= before and "DONE: version" in t]
    assert saw, "Claude never read the DONE"
    assert mb.count("lead") == 0
    before = len(fake_api.requests)
    done = procs.run([claude_bin, "-p", "and now?"], env=cenv, cwd=lead, timeout=120)
    assert done.returncode == 0
    assert not [t for t in fake_api.texts()[before:] if "DONE: version" in t]
    # each message once: one TASK, one DONE in the bus; the task reached one Codex turn
    assert [r["kind"] for r in mb.recent(10)] == ["TASK", "DONE"]
    first_turn = json.dumps(fake_openai.requests[0])
    assert first_turn.count("TASK: bump the version") == 1
    assert procs.settle() == []
