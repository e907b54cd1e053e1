"""`kei message doctor [--repair]` (issue 7): what it finds, what it repairs, exit codes.

Budget: about 20 s.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from reliability import assert_no_escape, cli, kei, reap

from kei_message.admin import doctor
from kei_message.cursors import Cursor
from kei_message.mailbox import Mailbox


def _bus(box: Path) -> Path:
    return box / "messages.jsonl"


def _lines(box: Path) -> list[bytes]:
    return _bus(box).read_bytes().split(b"\n")


def _three(mb: Mailbox) -> list[dict[str, object]]:
    return [mb.send(f"m{i}", to="bob", sender="alice") for i in range(3)]


def test_no_mailbox_yet_is_healthy(mailbox_dir: Path) -> None:
    res = cli("doctor")
    assert res.exit_code == 0, res.stdout
    assert "no mailbox yet" in res.stdout and "healthy" in res.stdout
    assert not mailbox_dir.exists()  # doctor creates nothing


def test_healthy_mailbox(mailbox_dir: Path) -> None:
    mb = Mailbox()
    _three(mb)
    mb.read("bob")
    res = cli("doctor")
    assert res.exit_code == 0, res.stdout
    assert "bus: 3 records" in res.stdout and "healthy" in res.stdout


def test_permissions_reported_then_repaired(mailbox_dir: Path) -> None:
    mb = Mailbox()
    _three(mb)
    mb.read("bob")
    os.chmod(mailbox_dir, 0o755)
    os.chmod(_bus(mailbox_dir), 0o644)
    os.chmod(mailbox_dir / "cursors", 0o711)
    res = cli("doctor")
    assert res.exit_code == 1
    assert "has mode 755, not 700" in res.stdout and "has mode 644, not 600" in res.stdout
    assert "--repair` fixes 3" in res.stdout
    fixed = cli("doctor", "--repair")
    assert fixed.exit_code == 0, fixed.stdout
    assert "repaired" in fixed.stdout and "chmod 600" in fixed.stdout
    assert stat.S_IMODE(os.stat(mailbox_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(_bus(mailbox_dir)).st_mode) == 0o600
    assert cli("doctor").exit_code == 0


def test_corrupt_lines_reported_by_line_then_quarantined_in_place(mailbox_dir: Path) -> None:
    mb = Mailbox()
    _three(mb)
    mb.read("bob")  # bob's cursor: after the third record
    bad = [b"not json at all", b'{"id":"x","from":1}', b"\x00\xff\xfe binary"]
    with open(_bus(mailbox_dir), "ab") as fh:
        fh.write(b"\n".join(bad) + b"\n")
    after = mb.send("m3", to="bob", sender="alice")
    with open(_bus(mailbox_dir), "ab") as fh:
        fh.write(b'{"id":99,"partial')  # a writer that died mid-write
    size_before = _bus(mailbox_dir).stat().st_size
    records_before = [ln for ln in _lines(mailbox_dir) if ln.startswith(b'{"id":17')]
    res = cli("doctor")
    assert res.exit_code == 1
    for n in (4, 5, 6):
        assert f"line {n} (offset" in res.stdout
    assert "line 8 (offset" in res.stdout and "partial last line" in res.stdout
    assert_no_escape(res.stdout)
    fixed = cli("doctor", "--repair")
    assert fixed.exit_code == 0, fixed.stdout
    # Nothing moved: the file grew by exactly the newline that ends the partial line,
    # every record is byte-for-byte where it was, and the bad lines are blanks.
    assert _bus(mailbox_dir).stat().st_size == size_before + 1
    lines = _lines(mailbox_dir)
    assert [ln for ln in lines if ln.startswith(b'{"id":17')] == records_before
    assert [len(ln) for ln in lines[3:6]] == [len(b) for b in bad]
    assert all(not ln.strip() for ln in lines[3:6] + lines[7:8])
    # The quarantine file holds the exact bytes, with line numbers.
    [qfile] = list((mailbox_dir / "quarantine").glob("bus-*.jsonl"))
    assert stat.S_IMODE(qfile.stat().st_mode) == 0o600
    q = [orjson.loads(x) for x in qfile.read_bytes().splitlines()]
    assert [x["line"] for x in q] == [4, 5, 6, 8]
    assert [base64.b64decode(x["raw_b64"]) for x in q] == [*bad, b'{"id":99,"partial']
    # Bob's cursor is still right: exactly the one new message, then a new one.
    assert [r["id"] for r in mb.read("bob")] == [after["id"]]
    nxt = mb.send("m4", to="bob", sender="alice")
    assert [r["id"] for r in mb.read("bob")] == [nxt["id"]]
    again = cli("doctor")
    assert again.exit_code == 0 and "blank (quarantined) lines" in again.stdout
    # jq and cat read it as they are: every non-blank line is JSON.
    for ln in _lines(mailbox_dir):
        if ln.strip():
            json.loads(ln)


def test_cursor_inside_a_line_and_past_the_end_snap_back(mailbox_dir: Path) -> None:
    mb = Mailbox()
    recs = _three(mb)
    store = mb.store
    starts = [e.pos for e in store.scan(None)]
    end = store.end()
    store.save_cursor("bob", Cursor(starts[1] + 5, frozenset()))  # inside line 2
    store.save_cursor("carol", Cursor(end + 1000, frozenset({end + 2000})))  # past the end
    store.save_cursor("dave", Cursor(starts[0], frozenset({starts[2] + 1, starts[2]})))
    res = cli("doctor")
    assert res.exit_code == 1
    assert "inside the line starting at" in res.stdout and "past the end" in res.stdout
    assert "is inside the line" in res.stdout
    fixed = cli("doctor", "--repair")
    assert fixed.exit_code == 0, fixed.stdout
    assert store.load_cursor("bob") == Cursor(starts[1], frozenset())
    assert store.load_cursor("carol") == Cursor(end, frozenset())
    assert store.load_cursor("dave") == Cursor(starts[0], frozenset({starts[2]}))
    # Never skip: bob gets line 2 again (and 3); a message appended now reaches carol.
    assert [r["id"] for r in mb.unread("bob")] == [recs[1]["id"], recs[2]["id"]]
    late = mb.send("late", to="all", sender="alice")
    assert [r["id"] for r in mb.read("carol")] == [late["id"]]
    assert cli("doctor").exit_code == 0


def test_garbage_cursor_is_quarantined_and_reader_starts_over(mailbox_dir: Path) -> None:
    mb = Mailbox()
    recs = _three(mb)
    mb.read("bob")
    (mailbox_dir / "cursors" / "bob").write_bytes(b"\x1b[2J garbage")
    res = cli("doctor")
    assert res.exit_code == 1 and "garbage cursor" in res.stdout
    assert cli("doctor", "--repair").exit_code == 0
    [q] = list((mailbox_dir / "quarantine").glob("cursor-bob-*"))
    assert q.read_bytes() == b"\x1b[2J garbage"
    assert [r["id"] for r in mb.read("bob")] == [r["id"] for r in recs]


def test_stale_pid_and_temp_files(mailbox_dir: Path) -> None:
    mb = Mailbox()
    _three(mb)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (mailbox_dir / "waiters").mkdir(mode=0o700)
    stale = mailbox_dir / "waiters" / "abc.pid"
    stale.write_text(json.dumps({"pid": dead.pid, "session_id": "abc"}))
    stale.chmod(0o600)
    watch = mailbox_dir / "live-watch.pid"
    watch.write_text(f"{dead.pid}\n")
    watch.chmod(0o600)
    tmp = mailbox_dir / "cursors" / f"bob.tmp.{dead.pid}"
    tmp.parent.mkdir(mode=0o700, exist_ok=True)
    tmp.write_text("1\n\n")
    tmp.chmod(0o600)
    # A live holder (flock held, pid not written yet) is left alone.
    live = mailbox_dir / "waiters" / "live.pid"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl,os,sys,time\n"
            "fd=os.open(sys.argv[1],os.O_RDWR|os.O_CREAT,0o600)\n"
            "fcntl.flock(fd,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(60)",
            str(live),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        res = cli("doctor")
        assert res.exit_code == 1
        assert res.stdout.count("(its owner died)") == 2 and "died" in res.stdout
        assert "live.pid" not in res.stdout
        assert cli("doctor", "--repair").exit_code == 0
        assert not stale.exists() and not watch.exists() and not tmp.exists()
        assert live.exists()
    finally:
        reap([holder])


def test_append_lock_held_during_repair_exits_3(mailbox_dir: Path) -> None:
    mb = Mailbox()
    _three(mb)
    with open(_bus(mailbox_dir), "ab") as fh:
        fh.write(b"junk\n")
    before = _bus(mailbox_dir).read_bytes()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl,os,sys,time\n"
            "fd=os.open(sys.argv[1],os.O_RDWR)\n"
            "fcntl.flock(fd,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(60)",
            str(mailbox_dir / "messages.lock"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        res = kei("doctor", "--repair", env={"KEI_MAILBOX_LOCK_TIMEOUT": "0.5"})
        assert res.returncode == 3, res.stdout.decode()
        assert b"kei message: error: mailbox is locked" in res.stderr
        assert b"Traceback" not in res.stderr
        assert _bus(mailbox_dir).read_bytes() == before
    finally:
        reap([holder])


def test_repair_while_senders_append_loses_nothing(mailbox_dir: Path) -> None:
    """Quarantine runs under the append lock: concurrent appends all land, intact."""
    mb = Mailbox()
    for i in range(50):
        mb.send(f"pre{i}", to="bob", sender="alice")
        if i % 10 == 0:
            with open(_bus(mailbox_dir), "ab") as fh:
                fh.write(b"torn {" + b"x" * i + b"\n")
    mb.store.close()
    code = (
        "import sys\nfrom kei_message.mailbox import Mailbox\nmb=Mailbox()\n"
        "for i in range(150): mb.send(f'{sys.argv[1]}-{i}', to='bob', sender=sys.argv[1])\n"
    )
    senders = [subprocess.Popen([sys.executable, "-c", code, f"s{k}"]) for k in range(3)]
    try:
        repairs = 0
        while any(p.poll() is None for p in senders) or repairs < 2:
            rep = doctor.check(repair=True, settings=[])
            assert rep.exit_code == 0, [(f.where, f.problem, f.failed) for f in rep.remaining]
            repairs += 1
        assert all(p.wait(timeout=60) == 0 for p in senders)
    finally:
        reap(senders)
    bodies = [r["body"] for r in Mailbox().read("bob")]
    want = [f"pre{i}" for i in range(50)]
    assert bodies[:50] == want
    for k in range(3):
        assert [b for b in bodies if b.startswith(f"s{k}-")] == [f"s{k}-{i}" for i in range(150)]
    assert len(bodies) == 50 + 450


def test_hooks_twice_and_missing_command(tmp_path: Path) -> None:
    user = tmp_path / "home" / ".claude" / "settings.json"
    project = tmp_path / "proj" / ".claude" / "settings.json"
    broken = tmp_path / "proj" / ".claude" / "settings.local.json"
    for p in (user, project):
        p.parent.mkdir(parents=True, exist_ok=True)
    ups = {"type": "command", "command": "kei-message-hook user-prompt-submit"}
    user.write_text(
        json.dumps(
            {
                "model": "x",
                "hooks": {
                    "UserPromptSubmit": [{"hooks": [ups]}],
                    "SessionStart": [
                        {"hooks": [{"type": "command", "command": "/nope/kei-message-hook s"}]},
                        {"hooks": [{"type": "command", "command": "${CLAUDE_PLUGIN_ROOT}/x"}]},
                    ],
                    "Stop": [{"hooks": [{"type": "command", "command": "other-tool stop"}]}],
                },
            }
        )
    )
    project.write_text(json.dumps({"hooks": {"UserPromptSubmit": [{"hooks": [ups]}]}}))
    broken.write_text("{not json")
    rep = doctor.check(settings=[str(user), str(project), str(broken)])
    problems = [f.problem for f in rep.findings if f.area == "hooks"]
    assert any("registered 2 times" in p for p in problems), problems
    assert any("'/nope/kei-message-hook'" in p and "not found" in p for p in problems)
    assert any("cannot read it" in p for p in problems)
    assert not any("other-tool" in p or "PLUGIN" in p for p in problems)
    assert rep.exit_code == 1
    # The CLI reads ~/.claude/settings.json and ./.claude/settings.json.
    res = kei(
        "doctor",
        env={"HOME": str(tmp_path / "home")},
        preexec_fn=lambda: os.chdir(tmp_path / "proj"),
    )
    assert res.returncode == 1
    assert b"registered 2 times" in res.stdout and b"not found" in res.stdout


def test_output_is_neutralised(mailbox_dir: Path) -> None:
    mb = Mailbox()
    _three(mb)
    evil = mailbox_dir / "\x1b[31mred\u202e\x9b.pid"
    evil.write_text("not a pid")
    evil.chmod(0o644)
    res = cli("doctor")
    assert res.exit_code == 1
    assert_no_escape(res.stdout)
    assert "\\x1b[31mred\\u202e\\x9b.pid" in res.stdout


def test_bus_replaced_by_gc_meanwhile_is_not_blanked(mailbox_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """If the bus changes inode between the scan and the repair, doctor touches nothing."""
    mb = Mailbox()
    _three(mb)
    with open(_bus(mailbox_dir), "ab") as fh:
        fh.write(b"junk\n")
    real = doctor._quarantine_locked

    def swap_first(report, store, ino, *rest):  # type: ignore[no-untyped-def]
        data = _bus(mailbox_dir).read_bytes()
        tmp = mailbox_dir / "swap"
        tmp.write_bytes(data)
        tmp.chmod(0o600)
        os.replace(tmp, _bus(mailbox_dir))
        (mailbox_dir / "messages.base").write_text(f"{os.stat(_bus(mailbox_dir)).st_ino} 0\n")
        return real(report, store, ino, *rest)

    monkeypatch.setattr(doctor, "_quarantine_locked", swap_first)
    before = _bus(mailbox_dir).read_bytes()
    rep = doctor.check(repair=True, settings=[])
    assert rep.exit_code == 1
    assert any(f.failed and "replaced" in f.failed for f in rep.findings)
    assert _bus(mailbox_dir).read_bytes() == before


@pytest.mark.parametrize("sig", [signal.SIGKILL])
def test_doctor_killed_mid_repair_leaves_records_alone(mailbox_dir: Path, sig: int) -> None:
    """Blanking happens after the quarantine copy is fsynced; a kill at any point leaves
    every record intact, and the next run finishes the job."""
    mb = Mailbox()
    for i in range(200):
        mb.send(f"r{i}", to="bob", sender="alice")
        with open(_bus(mailbox_dir), "ab") as fh:
            fh.write(b"junk " + b"j" * 5000 + b"\n")
    records = [ln for ln in _lines(mailbox_dir) if ln.startswith(b"{")]
    for delay in (0.0, 0.2, 0.4):
        p = subprocess.Popen(
            [sys.executable, "-m", "kei_message", "doctor", "--repair"], stdout=subprocess.DEVNULL
        )
        time.sleep(delay)
        p.send_signal(sig)
        p.wait(timeout=30)
    assert [ln for ln in _lines(mailbox_dir) if ln.startswith(b"{")] == records
    assert cli("doctor", "--repair").exit_code == 0
    assert cli("doctor").exit_code == 0
    assert [r["body"] for r in mb.read("bob")] == [f"r{i}" for i in range(200)]


def _bounded(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    from kei_message.admin import checked

    monkeypatch.setattr(checked, "TAIL_LINES", limit)


def test_a_big_bus_is_parsed_from_its_end_and_full_parses_the_rest(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#19: a first plain doctor parses the last TAIL_LINES lines and says what it left;
    --full finds a corrupt line before them, with its true line number, and later
    plain runs keep reporting it without parsing again."""
    mb = Mailbox()
    mb.send("m0", to="bob", sender="alice")
    with open(_bus(mailbox_dir), "ab") as fh:
        fh.write(b"not json\n")
    for i in range(1, 40):
        mb.send(f"m{i}", to="bob", sender="alice")
    _bounded(monkeypatch, 5)
    first = cli("doctor")
    assert first.exit_code == 0, first.stdout
    assert "bus: 41 lines" in first.stdout and "5 records among the last 5 lines" in first.stdout
    assert "doctor --full` parses the 36 before offset" in first.stdout
    full = cli("doctor", "--full")
    assert full.exit_code == 1 and "line 2 (offset" in full.stdout, full.stdout
    assert "bus: 40 records" in full.stdout
    again = cli("doctor")
    assert again.exit_code == 1 and "line 2 (offset" in again.stdout, again.stdout


def test_only_what_was_appended_is_parsed_and_a_change_in_place_is_found(
    mailbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#19: what doctor checked is confirmed by a CRC: lines appended since are parsed
    (numbered right), and a checked line changed in place is found all the same."""
    from kei_message.records import parse

    mb = Mailbox()
    _three(mb)
    assert cli("doctor").exit_code == 0
    calls: list[bytes] = []

    def counting(line: bytes, *args: object) -> object:
        calls.append(line)
        return parse(line, *args)  # type: ignore[arg-type]

    monkeypatch.setattr("kei_message.records.parse", counting)
    mb.send("m3", to="bob", sender="alice")
    with open(_bus(mailbox_dir), "ab") as fh:
        fh.write(b"{broken\n")
    res = cli("doctor")
    assert res.exit_code == 1 and "line 5 (offset" in res.stdout, res.stdout
    assert len(calls) == 2  # the two new lines, not the three checked before
    assert cli("doctor", "--repair").exit_code == 0
    assert cli("doctor").exit_code == 0  # the repair kept the saved check right
    data = _bus(mailbox_dir).read_bytes()
    first = data.index(b"m1")
    _bus(mailbox_dir).write_bytes(data[:first] + b"\x00\x00" + data[first + 2 :])
    res = cli("doctor")
    assert res.exit_code == 1 and "line 2 (offset" in res.stdout, res.stdout
