"""`kei message top` (SPEC §14): the state it shows, on both stores; one frame
(`--once`), narrow and colourless; hostile text neutralised; the live view in a
real tmux pane, redrawn on a send and on a session's change, and `q` quits."""

from __future__ import annotations

import io
import json
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kei_message.cli import get_app
from kei_message.mailbox import Mailbox
from kei_message.view.state import build_state, thread
from kei_message.view.top import frame, make_console
from kei_message.view.watch import Watcher


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _team(mb: Mailbox) -> None:
    """Three names, two sessions (one of another agent), mail both ways and a broadcast."""
    mb.store.put_session(
        "aaaa1111-session", {"name": "alpha", "session_id": "aaaa1111-session", "last_seen": _now()}
    )
    mb.store.put_session(
        "bbbb2222-session",
        {"name": "beta", "session_id": "bbbb2222-session", "agent": "codex", "last_seen": _now()},
    )
    mb.send("TASK: ship it", to="beta", sender="alpha")
    mb.send("on it", to="alpha", sender="beta")
    mb.send("and this too", to="beta", sender="alpha")
    mb.send("standup in 5", to="all", sender="gamma")


def test_state_on_both_stores(mailbox: Mailbox) -> None:
    _team(mailbox)
    mailbox.read("alpha")  # alpha is up to date
    state = build_state(mailbox, now=time.time() + 90)
    rows = {r["name"]: r for r in state["names"]}
    assert sorted(rows) == ["alpha", "beta", "gamma"]
    assert rows["alpha"]["unread"] == 0 and rows["alpha"]["oldest_unread"] is None
    assert rows["beta"]["unread"] == 3
    assert 85 < rows["beta"]["oldest_unread_age"] < 120
    assert [s["agent"] for s in rows["alpha"]["sessions"]] == ["claude"]  # the default
    assert [s["agent"] for s in rows["beta"]["sessions"]] == ["codex"]
    assert rows["beta"]["sessions"][0]["session"] == "bbbb2222"
    assert rows["gamma"]["sessions"] == [] and rows["gamma"]["waiter"] is False
    assert [m["body"] for m in state["messages"]][-1] == "standup in 5"
    edges = {(e["from"], e["to"]): e["count"] for e in state["graph"]["edges"]}
    assert edges == {("alpha", "beta"): 2, ("beta", "alpha"): 1, ("gamma", "all"): 1}
    assert "all" in state["graph"]["nodes"]
    json.dumps(state)  # plain data: the web page gets exactly this


def test_graph_is_the_last_24_hours(mailbox: Mailbox) -> None:
    mailbox.send("old news", to="beta", sender="alpha")
    later = build_state(mailbox, now=time.time() + 25 * 3600)
    assert later["graph"]["edges"] == []
    assert later["messages"][-1]["body"] == "old news"  # still among the latest


def test_graph_memo_counts_only_news_and_forgets_the_old(mailbox: Mailbox) -> None:
    memo: dict[str, object] = {}
    mailbox.send("one", to="beta", sender="alpha")
    assert build_state(mailbox, memo=memo)["graph"]["edges"] == [
        {"from": "alpha", "to": "beta", "count": 1}
    ]
    mailbox.send("two", to="beta", sender="alpha")
    mailbox.send("back", to="alpha", sender="beta")
    with_memo = build_state(mailbox, memo=memo)["graph"]["edges"]
    assert with_memo == build_state(mailbox)["graph"]["edges"]
    assert {(e["from"], e["to"]): e["count"] for e in with_memo} == {
        ("alpha", "beta"): 2,
        ("beta", "alpha"): 1,
    }
    assert build_state(mailbox, memo=memo)["graph"]["edges"] == with_memo  # nothing counted twice
    assert build_state(mailbox, now=time.time() + 25 * 3600, memo=memo)["graph"]["edges"] == []


def test_thread_follows_replies_both_ways(mailbox: Mailbox) -> None:
    first = mailbox.send("q?", to="beta", sender="alpha")
    mailbox.send("noise", to="beta", sender="gamma")
    answer = mailbox.reply(first["id"], "a", sender="beta")
    more = mailbox.reply(answer["id"], "thanks", sender="alpha")
    for target in (first, answer, more):
        got = thread(mailbox, target["id"])
        assert [r["body"] for r in got["thread"]] == ["q?", "a", "thanks"]
        assert got["message"]["id"] == target["id"]


def _top(env: dict[str, str] | None = None) -> str:
    res = CliRunner().invoke(get_app(), ["top", "--once"], env=env)
    assert res.exit_code == 0, res.stderr
    return str(res.stdout)


def test_top_once_shows_names_sessions_unread_and_ages() -> None:
    mb = Mailbox()
    _team(mb)
    text = _top({"COLUMNS": "100"})
    lines = text.splitlines()
    assert lines[0].startswith("kei message top")
    row = next(line for line in lines if line.startswith("beta"))
    assert "bbbb2222" in row and "codex" in row and " 3 " in row
    assert row.split()[-2].endswith("s")  # oldest unread: seconds old
    row = next(line for line in lines if line.startswith("alpha"))
    assert "aaaa1111" in row and "claude" in row
    assert any(line.startswith("gamma") for line in lines)
    assert "latest messages" in text
    assert "alpha -> beta" in text and "standup in 5" in text and "gamma -> all" in text
    assert "\x1b" not in text


def test_top_once_fits_a_narrow_terminal() -> None:
    mb = Mailbox()
    _team(mb)
    mb.send("x" * 300, to="beta", sender="a-rather-long-sender-name-for-a-narrow-terminal")
    text = _top({"COLUMNS": "60"})
    assert all(len(line) <= 60 for line in text.splitlines()), text
    assert "beta" in text and "bbbb2222" in text and "UNRD" in text
    assert "xxx…" in text  # long bodies are cut, not wrapped


def test_no_color_means_no_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    mb = Mailbox()
    _team(mb)
    state = build_state(mb)

    def paint() -> str:
        buf = io.StringIO()
        console = make_console(file=buf, force_terminal=True)
        console.print(frame(state, width=100))
        return buf.getvalue()

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[" in paint()  # on a terminal, in colour
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b" not in paint()


def test_hostile_text_is_neutralised(mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mb = Mailbox()
    evil = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\u202eexe.pdf\u2066[bold]x[/bold]\r\x08"
    mb.send(evil, to="beta", sender="alpha")
    # a foreign writer may put anything in any field
    foreign = {"id": 1, "ts": _now(), "from": "\x1b[5mmallory", "to": "beta\u202e", "body": evil}
    with open(mailbox_dir / "messages.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(foreign) + "\n")
    monkeypatch.delenv("NO_COLOR", raising=False)
    for text in (_top({"COLUMNS": "200"}), _top({"COLUMNS": "200", "NO_COLOR": "1"})):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "\r" not in text and "\x08" not in text and "\u2066" not in text
        assert "\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred\\u202eexe.pdf\\u2066[bold]x[/bold]" in text
        assert "\\x1b[5mmallory -> beta\\u202e" in text


# ----------------------------------------------------------------------------- live, in tmux
@pytest.mark.tmux
def test_top_live_in_tmux(mailbox_dir: Path, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: run scripts/test.sh")
    from tmuxharness import Server, _alive, wait_until

    mb = Mailbox()
    mb.send("hello before top", to="beta", sender="alpha")
    srv = Server()
    try:
        env = ["env", f"KEI_MAILBOX_DIR={mailbox_dir}", "NO_COLOR=1"]
        rc, stty = tmp_path / "rc", tmp_path / "stty"
        # after top: its exit code, and the terminal's modes (restored: echo, icanon)
        script = f'"$@"; echo $? > {rc}; stty -a > {stty}'
        pane, pid = srv.spawn(
            ["sh", "-c", script, "sh", *env, sys.executable, "-m", "kei_message", "top"],
            str(tmp_path),
            width=100,
            height=30,
        )

        def screen() -> str:
            return srv.tmux("capture-pane", "-p", "-t", pane)

        assert wait_until(lambda: "hello before top" in screen(), 15), screen()
        before = screen()
        assert "alpha -> beta" in before and "q quits" in before
        assert "new message" not in before

        # a send: redrawn by the inotify watch, well before the safety refresh
        t0 = time.monotonic()
        mb.send("a new message arrives", to="alpha", sender="beta")
        assert wait_until(lambda: "a new message arrives" in screen(), 5), screen()
        assert time.monotonic() - t0 < 1.5, "redrawn by the safety refresh, not the watch"

        # a session registers, with its pane: a new row, then its pane state
        fake = srv.fake(tmp_path / "delta")
        fake.register(mb.store, "delta")
        assert wait_until(lambda: "delta" in screen() and "idle" in screen(), 10), screen()
        # the session changes state (text typed into its composer): the safety refresh
        srv.tmux("send-keys", "-t", fake.pane, "-l", "half a thought")
        assert wait_until(lambda: "draft" in screen(), 10), screen()
        row = next(line for line in screen().splitlines() if line.startswith("delta"))
        assert "draft" in row and "claude" in row

        # reading moves a cursor: beta's unread goes from 1 to 0
        def beta_unread() -> str:
            row = next(x for x in screen().splitlines() if x.startswith("beta"))
            return row.split()[5]  # NAME SESSION AGENT STATE WAITER UNREAD ...

        assert beta_unread() == "1"
        mb.read("beta")
        assert wait_until(lambda: beta_unread() == "0", 5), screen()

        srv.tmux("send-keys", "-t", pane, "q")
        assert wait_until(lambda: not _alive(pid), 5), "q did not quit"
        assert rc.read_text().strip() == "0"
        modes = stty.read_text().split()
        assert "echo" in modes and "icanon" in modes and "-echo" not in modes

        # Ctrl-C quits as cleanly
        pane, pid = srv.spawn([*env, sys.executable, "-m", "kei_message", "top"], str(tmp_path))
        assert wait_until(lambda: "a new message arrives" in screen(), 15), screen()
        srv.tmux("send-keys", "-t", pane, "C-c")
        assert wait_until(lambda: not _alive(pid), 5), "Ctrl-C did not quit"
    finally:
        srv.close()


# ----------------------------------------------------------------------------- the watch
def _watch(mb: Mailbox) -> tuple[Watcher, list[float], threading.Event]:
    hits: list[float] = []
    event = threading.Event()

    def hit() -> None:
        hits.append(time.monotonic())
        event.set()

    return Watcher(mb, hit).start(), hits, event


def test_watch_wakes_on_sends_reads_and_sessions_not_on_its_own_reads() -> None:
    mb = Mailbox()
    mb.send("first", to="beta", sender="alpha")
    build_state(mb)  # creates what a first look creates (index, cursors dir)
    watcher, hits, event = _watch(mb)
    try:
        time.sleep(0.3)
        hits.clear()
        for _ in range(3):
            build_state(mb)  # the view's own reads (it rewrites the names index)
        time.sleep(0.5)
        assert hits == [], "the view woke itself"
        for change in (
            lambda: mb.send("second", to="beta", sender="alpha"),
            lambda: mb.read("beta"),
            lambda: mb.store.put_session("s-1", {"name": "gamma", "session_id": "s-1"}),
        ):
            event.clear()
            t0 = time.monotonic()
            change()
            assert event.wait(2), "no wake-up"
            assert time.monotonic() - t0 < 1.0
    finally:
        watcher.stop()


def test_watch_without_inotify_uses_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEI_MAILBOX_NO_INOTIFY", "1")
    mb = Mailbox()
    mb.send("first", to="beta", sender="alpha")
    watcher, _, event = _watch(mb)
    try:
        time.sleep(0.2)
        mb.send("second", to="beta", sender="alpha")
        assert event.wait(3)
    finally:
        watcher.stop()
