"""Live delivery against a real tmux server (private socket) running a fake Claude Code TUI.

The fake (tests/fake_claude_tui.py) draws the real markers, takes bracketed
pastes and logs every prompt and key, so each test checks what arrived, not
what was sent. Commands run as the installed ``kei-message`` console script,
since exit codes and the watcher are process-level contracts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kei_message.errors import NoLiveSession, Queued, Rejected
from kei_message.live import deliver, registry
from kei_message.mailbox import Mailbox
from kei_message.presence import who

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tmuxharness import FakePane, Server, wait_until

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    srv = Server()
    # discover scans $TMUX_TMPDIR/tmux-UID: only this test's server is visible
    monkeypatch.setenv("TMUX_TMPDIR", srv.tmpdir)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def mb(mailbox_dir: Path) -> Mailbox:
    return Mailbox()


def kei(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "kei-message"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def start(server: Server, tmp: Path, mb: Mailbox, name: str, *opts: str) -> FakePane:
    fp = server.fake(tmp / name, *opts)
    fp.register(mb.store, name)
    return fp


def state(mb: Mailbox, name: str) -> str:
    found = registry.find(mb.store, name)
    return deliver.look(found[0]).state if found else "none"


def until_state(mb: Mailbox, name: str, want: str, timeout: float = 10) -> None:
    assert wait_until(lambda: state(mb, name) == want, timeout), (
        f"{name} never became {want} (is {state(mb, name)})"
    )


BODIES = [
    "press Enter then C-c and Escape; echo $HOME `id` $(rm -rf /) 'single' \"double\"",
    "Unicode: héllo ✓ 日本語 🚀 — “quotes”",
    "line one\nline two\n\n  indented line four\n-- dashes -l\ttab",
]


# ----------------------------------------------------------------------------- exit 0
def test_literal_multiline_unicode_arrive_exactly_as_one_prompt(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = start(server, tmp_path, mb, "frontend", "--count-unread", "frontend")
    for body in BODIES:
        mb.send(body, to="frontend", sender="backend")
    assert deliver.deliver_live(mb, "frontend") == 3
    assert wait_until(fp.prompts, 5)
    prompts = fp.prompts()
    assert len(prompts) == 1, prompts
    for body in BODIES:
        assert body.replace("\t", "    ") in prompts[0]  # a tab is typed as spaces (#15)
    assert len(fp.events("paste")) == 1  # typed once
    assert not [e for e in fp.events("typed")]  # nothing typed outside the paste
    # the cursor had moved before Enter: the UserPromptSubmit hook finds nothing
    assert [e["count"] for e in fp.events("unread_at_submit")] == ["0"], fp.events()
    assert mb.count("frontend") == 0


def test_send_live_cli_exit_0_and_nothing_twice(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    res = kei("send", "--from", "backend", "--live", "@frontend", "ship", "it")
    assert res.returncode == 0, res.stderr
    assert wait_until(fp.prompts, 5)
    assert "ship it" in fp.prompts()[0]
    until_state(mb, "frontend", "idle")
    # a second live send delivers only the new message
    res = kei("send", "--from", "backend", "--live", "@frontend", "second")
    assert res.returncode == 0, res.stderr
    assert wait_until(lambda: len(fp.prompts()) == 2, 5)
    assert "second" in fp.prompts()[1] and "ship it" not in fp.prompts()[1]


def test_over_the_budget_the_rest_stays_unread(server: Server, tmp_path: Path, mb: Mailbox) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    bodies = [f"{i}:" + "x" * 3000 for i in range(4)]
    for body in bodies:
        mb.send(body, to="frontend", sender="backend")
    typed = deliver.deliver_live(mb, "frontend")
    assert 1 <= typed < 4
    assert wait_until(fp.prompts, 5)
    prompt = fp.prompts()[0]
    assert len(prompt) <= 9000
    assert all(b in prompt for b in bodies[:typed])
    assert not any(b[:8] in prompt for b in bodies[typed:])
    assert "wait" in prompt.rsplit("\n", 3)[-2]  # says how many more wait
    assert mb.count("frontend") == 4 - typed


def test_swallowed_enter_is_pressed_again_text_typed_once(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = start(server, tmp_path, mb, "frontend", "--swallow-first-enter")
    mb.send("hello", to="frontend", sender="backend")
    assert deliver.deliver_live(mb, "frontend") == 1
    assert len(fp.events("swallowed")) == 1
    assert len(fp.events("paste")) == 1
    assert len(fp.prompts()) == 1 and "hello" in fp.prompts()[0]


# ----------------------------------------------------------------------------- exits 5, 6
def test_busy_exit_6_then_process_delivers(server: Server, tmp_path: Path, mb: Mailbox) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    fp.hold(True)
    fp.type_prompt("a long job")
    until_state(mb, "frontend", "busy")
    res = kei("send", "--from", "backend", "--live", "@frontend", "queued one")
    assert res.returncode == 6, res.stderr
    assert mb.count("frontend") == 1
    assert not fp.events("paste")
    fp.hold(False)
    until_state(mb, "frontend", "idle")
    res = kei("process")
    assert res.returncode == 0, res.stderr
    assert wait_until(lambda: len(fp.prompts()) == 2, 5)
    assert "queued one" in fp.prompts()[1]
    assert mb.count("frontend") == 0


def test_draft_exit_6_leaves_the_draft_alone(server: Server, tmp_path: Path, mb: Mailbox) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    server.tmux("send-keys", "-t", fp.pane, "-l", "half a thought")
    until_state(mb, "frontend", "draft")
    mb.send("hello", to="frontend", sender="backend")
    with pytest.raises(Queued):
        deliver.deliver_live(mb, "frontend")
    assert not fp.events("paste") and not fp.prompts()
    assert mb.count("frontend") == 1


def test_copy_mode_exit_6(server: Server, tmp_path: Path, mb: Mailbox) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    server.tmux("copy-mode", "-t", fp.pane)
    mb.send("hello", to="frontend", sender="backend")
    with pytest.raises(Queued):
        deliver.deliver_live(mb, "frontend")
    assert not fp.events("paste")


def test_permission_prompt_exit_5_then_approve_1(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    fp.type_prompt("please ASK-PERMISSION")
    until_state(mb, "frontend", "waiting")
    res = kei("send", "--from", "backend", "--live", "@frontend", "hi")
    assert res.returncode == 5, res.stderr
    assert mb.count("frontend") == 1
    assert not fp.events("paste")
    res = kei("approve", "frontend")
    assert res.returncode == 0, res.stderr
    assert [e["choice"] for e in fp.events("approve")] == ["1"]
    assert not fp.events("key") or all(e["key"] != "Enter" for e in fp.events("key")[1:])
    res = kei("approve", "frontend")  # nothing waits now
    assert res.returncode == 1, res.stderr
    assert res.stderr.startswith("kei message: frontend is not waiting"), res.stderr  # #17


def test_approve_2_and_refused_when_2_is_no(server: Server, tmp_path: Path, mb: Mailbox) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    fp.type_prompt("ASK-PERMISSION")
    until_state(mb, "frontend", "waiting")
    res = kei("approve", "frontend", "2")
    assert res.returncode == 0, res.stderr
    assert [e["choice"] for e in fp.events("approve")] == ["2"]

    other = start(server, tmp_path, mb, "backend", "--yes-no")
    other.type_prompt("ASK-PERMISSION")
    until_state(mb, "backend", "waiting")
    res = kei("approve", "backend", "2")
    assert res.returncode == 2
    assert "not a yes" in res.stderr
    assert not [e for e in other.events("key") if e["key"] == "2"]
    assert state(mb, "backend") == "waiting"


def test_approve_says_when_the_prompt_did_not_take_it(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = start(server, tmp_path, mb, "frontend", "--deaf-menu")
    fp.type_prompt("ASK-PERMISSION")
    until_state(mb, "frontend", "waiting")
    res = kei("approve", "frontend")
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith(
        "kei message: error: pressed 1 ('Yes') but frontend's prompt still shows"
    ), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    # pressed once, never again: a prompt that looks the same may be the next action's
    assert [e["key"] for e in fp.events("key")].count("1") == 1
    assert state(mb, "frontend") == "waiting"


def test_cancel_denies_a_permission_prompt(server: Server, tmp_path: Path, mb: Mailbox) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    fp.type_prompt("ASK-PERMISSION")
    until_state(mb, "frontend", "waiting")
    res = kei("cancel", "frontend")
    assert res.returncode == 0, res.stderr
    assert fp.events("deny")
    until_state(mb, "frontend", "idle")


def test_cancel_with_text_interrupts_clears_and_sends(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    fp.hold(True)
    fp.type_prompt("the old plan\nwith two lines")
    until_state(mb, "frontend", "busy")
    res = kei("cancel", "--from", "lead", "frontend", "new", "plan:", "stop")
    assert res.returncode == 0, res.stderr
    assert fp.events("interrupt")
    assert wait_until(lambda: len(fp.prompts()) == 2, 5)
    second = fp.prompts()[1]
    assert "new plan: stop" in second
    assert "the old plan" not in second  # the interrupted prompt was cleared first
    assert mb.count("frontend") == 0


def test_no_pane(mb: Mailbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))  # no servers at all
    res = kei("send", "--from", "backend", "--live", "@nobody", "hi")
    assert res.returncode == 6, res.stderr
    assert mb.count("nobody") == 1
    assert kei("cancel", "nobody").returncode == 4
    assert kei("approve", "nobody").returncode == 4
    with pytest.raises(NoLiveSession):
        deliver.approve(mb, "nobody")


def test_gone_pane_queues_and_who_says_gone(server: Server, tmp_path: Path, mb: Mailbox) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    start(server, tmp_path, mb, "keepalive")  # the server outlives the first pane
    server.tmux("kill-pane", "-t", fp.pane)
    assert wait_until(lambda: state(mb, "frontend") == "none", 5)
    res = kei("send", "--from", "backend", "--live", "@frontend", "hi")
    assert res.returncode == 6, res.stderr
    rows = {r["name"]: r for r in who(mb)}
    # its process is gone, so its session left `who` by itself (SPEC §11, #16): no
    # session, no pane state; the name stays (it has mail), the other pane is idle
    # (every row has a state key, #17: None when no pane is known)
    assert rows["frontend"]["state"] is None and not rows["frontend"].get("sessions")
    assert rows["frontend"]["unread"] == 1
    assert [s["name"] for s in mb.store.sessions()] == ["keepalive"]
    assert rows["keepalive"]["state"] == "idle"


def test_who_shows_states(server: Server, tmp_path: Path, mb: Mailbox) -> None:
    idle = start(server, tmp_path, mb, "idler")
    busy = start(server, tmp_path, mb, "worker")
    busy.hold(True)
    busy.type_prompt("work")
    until_state(mb, "worker", "busy")
    res = kei("who", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in map(json.loads, res.stdout.splitlines())}
    assert rows["idler"]["state"] == "idle"
    assert rows["worker"]["state"] == "busy"
    assert idle.pane != busy.pane


# ----------------------------------------------------------------------------- names, discover
def test_prefix_names_never_mixed_up(server: Server, tmp_path: Path, mb: Mailbox) -> None:
    # tmux session names are prefixes too: "front" would match "frontend" with -t NAME
    short = start(server, tmp_path, mb, "front")
    long = start(server, tmp_path, mb, "frontend")
    mb.send("for front", to="front", sender="backend")
    assert deliver.deliver_live(mb, "front") == 1
    mb.send("for frontend", to="frontend", sender="backend")
    assert deliver.deliver_live(mb, "frontend") == 1
    assert len(short.prompts()) == 1 and "for front\n" in short.prompts()[0]
    assert len(long.prompts()) == 1 and "for frontend" in long.prompts()[0]
    assert "for frontend" not in short.prompts()[0]


def test_discover_finds_claude_panes_by_directory(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = server.fake(tmp_path / "My Project!")  # not registered: only discover knows it
    server.fake(tmp_path / "notclaude", program="vim")  # some other program
    res = kei("discover", "--json")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert [(r["name"], r["pane"]) for r in rows] == [("My-Project", fp.pane)]
    res = kei("send", "--from", "backend", "--live", "@My-Project", "found you")
    assert res.returncode == 0, res.stderr
    assert wait_until(fp.prompts, 5) and "found you" in fp.prompts()[0]


def test_newest_registration_of_a_reused_pane_wins(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = server.fake(tmp_path / "proj")
    fp.register(mb.store, "old-name")
    time.sleep(1.1)  # registrations are ordered by last_seen, to the second
    fp.register(mb.store, "new-name")  # another session now runs in the same pane
    assert registry.find(mb.store, "old-name") is None
    mb.send("hi", to="old-name", sender="backend")
    with pytest.raises(Queued):
        deliver.deliver_live(mb, "old-name")
    mb.send("hi", to="new-name", sender="backend")
    assert deliver.deliver_live(mb, "new-name") == 1


# ----------------------------------------------------------------------------- the watcher
def test_process_watch_delivers_when_idle_and_stops(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    fp = start(server, tmp_path, mb, "frontend")
    fp.hold(True)
    fp.type_prompt("busy for a while")
    until_state(mb, "frontend", "busy")
    mb.send("wait for me", to="frontend", sender="backend")
    exe = Path(sys.executable).parent / "kei-message"
    watcher = subprocess.Popen(
        [str(exe), "process", "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pid_file = Path(os.environ["KEI_MAILBOX_DIR"]) / "live-watch.pid"
        assert wait_until(pid_file.exists, 10)
        second = kei("process", "--watch")
        assert second.returncode == 2 and "already runs" in second.stderr
        time.sleep(0.5)
        assert len(fp.prompts()) == 1  # still busy: nothing typed
        fp.hold(False)
        assert wait_until(lambda: len(fp.prompts()) == 2, 10)
        assert "wait for me" in fp.prompts()[1]
        res = kei("process", "--stop")
        assert res.returncode == 0, res.stderr
        assert watcher.wait(timeout=10) == 0
        assert not pid_file.exists()
        assert kei("process", "--stop").returncode == 1
    finally:
        if watcher.poll() is None:
            watcher.send_signal(signal.SIGKILL)
            watcher.wait(timeout=5)
        if watcher.stdout:
            watcher.stdout.close()
        if watcher.stderr:
            watcher.stderr.close()


def test_process_one_pass_skips_busy_and_waiting(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    idle = start(server, tmp_path, mb, "idler")
    busy = start(server, tmp_path, mb, "worker")
    asking = start(server, tmp_path, mb, "asker")
    busy.hold(True)
    busy.type_prompt("work")
    asking.type_prompt("ASK-PERMISSION")
    until_state(mb, "worker", "busy")
    until_state(mb, "asker", "waiting")
    for name in ("idler", "worker", "asker"):
        mb.send(f"to {name}", to=name, sender="lead")
    done = deliver.process(mb)
    assert done == {"idler": 1, "worker": "queued", "asker": "waiting"}
    assert wait_until(idle.prompts, 5)
    assert mb.count("worker") == 1 and mb.count("asker") == 1
    with pytest.raises(Rejected):
        deliver.deliver_live(mb, "asker")


def test_hostile_registrations_are_ignored(mb: Mailbox) -> None:
    bad = [
        {"name": "a", "tmux": 5, "tmux_pane": "%1"},
        {"name": "b", "tmux": "/tmp/x,1,0", "tmux_pane": "frontend"},  # a session name
        {"name": "c", "tmux": "/tmp/x,1,0", "tmux_pane": "%1; rm -rf /"},
        {"name": "../d", "tmux": "/tmp/x,1,0", "tmux_pane": "%1"},
        {"name": "e", "tmux": "", "tmux_pane": "%1"},
        {"name": "f", "tmux": "/tmp/x,1,0", "tmux_pane": "%2", "pid": True, "last_seen": 7},
    ]
    for i, info in enumerate(bad):
        mb.store.put_session(f"s{i}", info)
    assert [x.name for x in registry.registered(mb.store)] == ["f"]
    assert registry.registered(mb.store)[0].pid is None
    rows = {r["name"]: r for r in who(mb)}
    assert rows["f"]["state"] == "gone"  # no server at /tmp/x
    assert rows.get("a", {}).get("state") is None  # every row has the key (#17)


def test_live_delivery_leaves_its_receipt_and_reaches_the_addressed_pane(
    server: Server, tmp_path: Path, mb: Mailbox
) -> None:
    # two panes under one name (#16): @NAME/SESSION types into that session's pane only
    one = server.fake(tmp_path / "one" / "frontend")
    one.register(mb.store, "frontend", session_id="aaaa1111-one")
    two = server.fake(tmp_path / "two" / "frontend")
    two.register(mb.store, "frontend", session_id="bbbb2222-two")
    res = kei(
        "send", "--from", "backend", "--live", "--json", "@frontend/aaaa", "--wait", "delivered",
        "--timeout", "20s", "for one",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[1] == "-> typed 1 message into frontend's pane"
    sent, status = json.loads(lines[0]), json.loads(lines[2])
    assert sent["to_session"] == "aaaa1111-one"
    got = status["readers"][0]["delivered"]
    assert (got["how"], got["session"]) == ("live", "aaaa1111-one")
    assert wait_until(one.prompts, 5)
    assert "for one" in one.prompts()[0]
    time.sleep(0.5)
    assert two.prompts() == []
