"""Security (SPEC §1, issue 7): modes from creation whatever the umask, no symlinks
followed, unsafe dirs refused with exit 3, no name makes a path outside the dir.

Budget: about 20 s (a few dozen CLI processes; hypothesis runs in-process).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability import assert_clean_error, assert_clean_result, cli, hook_available, kei

from kei_message.errors import InvalidName, UnsafeMailbox
from kei_message.mailbox import Mailbox
from kei_message.presence import who


def _modes(root: Path) -> list[tuple[str, int]]:
    """(path, mode) of everything in the mailbox that is not 0700 dir / 0600 file."""
    bad = []
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st_ = os.lstat(p)
            want = 0o700 if stat.S_ISDIR(st_.st_mode) else 0o600
            if stat.S_IMODE(st_.st_mode) != want or stat.S_ISLNK(st_.st_mode):
                bad.append((p, stat.S_IMODE(st_.st_mode)))
    return bad


@pytest.mark.parametrize(
    ("umask", "real"),
    [(0o000, False), (0o002, False), (0o022, True), (0o077, False), (0o277, False), (0o777, True)],
)
def test_modes_from_creation_whatever_the_umask(mailbox_dir: Path, umask: int, real: bool) -> None:
    """Every command that creates files, in-process (umask set around it) and, for two
    umasks, as real processes."""

    def with_umask() -> None:
        os.umask(umask)

    def run(*args: str, input: str | None = None) -> None:
        if real:
            proc = kei(*args, input=input, preexec_fn=with_umask)
            assert proc.returncode in (0, 1), (args, proc.stderr.decode())
            return
        old = os.umask(umask)
        try:
            res = cli(*args, input=input)
        finally:
            os.umask(old)
        assert res.exit_code in (0, 1), (args, res.stderr)

    run("send", "--from", "alice", "--to", "bob", "hello")
    run("send", "--from", "bob", "all", "broadcast")
    run("inbox", "--me", "bob")
    run("inbox", "pop", "--me", "alice")
    run("list")
    run("who")
    with open(mailbox_dir / "messages.jsonl", "ab") as fh:
        fh.write(b"garbage line\n")  # so --repair writes a quarantine file too
    run("doctor", "--repair")
    if real and hook_available():
        kei(
            "user-prompt-submit",
            input='{"session_id":"abc","cwd":"/tmp/bob","prompt":"x"}',
            script="kei-message-hook",
            preexec_fn=with_umask,
        )
    assert stat.S_IMODE(os.stat(mailbox_dir).st_mode) == 0o700
    assert (mailbox_dir / "quarantine").is_dir()
    assert _modes(mailbox_dir) == []


def test_modes_in_process_with_loose_umask(mailbox_dir: Path) -> None:
    old = os.umask(0)
    try:
        mb = Mailbox()
        mb.send("x", to="bob", sender="alice")
        mb.read("bob")
        who(mb)
        mb.store.put_session("s-1", {"name": "bob"})
    finally:
        os.umask(old)
    assert _modes(mailbox_dir) == []


# ----------------------------------------------------------------------------- symlinks
def _elsewhere(tmp_path: Path) -> Path:
    target = tmp_path / "elsewhere"
    target.write_bytes(b'{"id":1,"ts":"2026-01-01T00:00:00Z","from":"a","to":"bob","body":"x"}\n')
    return target


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_symlinked_bus_is_refused(mailbox_dir: Path, tmp_path: Path, dangling: bool) -> None:
    mailbox_dir.mkdir(mode=0o700)
    target = tmp_path / "nowhere" if dangling else _elsewhere(tmp_path)
    before = None if dangling else target.read_bytes()
    (mailbox_dir / "messages.jsonl").symlink_to(target)
    for args in (
        ("send", "--from", "alice", "--to", "bob", "hi"),
        ("inbox", "--me", "bob"),
        ("list",),
    ):
        line = assert_clean_error(kei(*args), 3)
        assert "symlink" in line, line
    if dangling:
        assert not target.exists()  # never created through the link
    else:
        assert target.read_bytes() == before
    doc = kei("doctor")
    assert doc.returncode == 1 and b"symlink" in doc.stdout


@pytest.mark.parametrize("which", ["cursor", "lock", "cursors-dir", "reader-lock"])
def test_symlinked_cursor_and_locks_are_refused(
    mailbox_dir: Path, tmp_path: Path, which: str
) -> None:
    mb = Mailbox()
    mb.send("hello", to="bob", sender="alice")
    mb.read("bob")
    mb.send("second", to="bob", sender="alice")
    mb.store.close()
    target = _elsewhere(tmp_path)
    before = target.read_bytes()
    if which == "cursor":
        link = mailbox_dir / "cursors" / "bob"
    elif which == "lock":
        link = mailbox_dir / "messages.lock"
    elif which == "reader-lock":
        link = mailbox_dir / "cursors" / ".bob.lock"
    else:
        link = mailbox_dir / "cursors"
        for f in link.iterdir():
            f.unlink()
        link.rmdir()
        target = tmp_path / "dir"
        target.mkdir(mode=0o700)
    if link.exists():
        link.unlink()
    link.symlink_to(target)
    args = (
        ("send", "--from", "alice", "--to", "bob", "x")
        if which == "lock"
        else ("inbox", "--me", "bob")
    )
    assert_clean_error(kei(*args), 3)
    if which == "cursors-dir":
        assert list(target.iterdir()) == []
    else:
        assert target.read_bytes() == before


# ----------------------------------------------------------------------------- unsafe dirs
@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702, 0o720])
def test_dir_writable_by_others_is_refused(mailbox_dir: Path, mode: int) -> None:
    Mailbox().send("x", to="bob", sender="alice")
    os.chmod(mailbox_dir, mode)
    for args in (("send", "--from", "alice", "--to", "bob", "y"), ("inbox", "--me", "bob")):
        line = assert_clean_error(kei(*args), 3)
        assert "writable by group or others" in line and "chmod 700" in line
    doc = kei("doctor")
    assert doc.returncode == 1 and b"chmod 700" in doc.stdout
    assert kei("doctor", "--repair").returncode == 0
    assert stat.S_IMODE(os.stat(mailbox_dir).st_mode) == 0o700
    assert kei("inbox", "--me", "bob").returncode == 0


def test_dir_owned_by_another_user_is_refused(mailbox_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the dir to another user")
    Mailbox().send("x", to="bob", sender="alice")
    os.chown(mailbox_dir, 65534, 65534)
    try:
        for args in (("send", "--from", "alice", "--to", "bob", "y"), ("inbox", "--me", "bob")):
            line = assert_clean_error(kei(*args), 3)
            assert "owned by uid 65534" in line
        doc = kei("doctor")
        assert doc.returncode == 1 and b"owned by uid 65534" in doc.stdout
        # Not something doctor fixes on its own: it is someone else's dir.
        assert kei("doctor", "--repair").returncode == 1
    finally:
        os.chown(mailbox_dir, 0, 0)


def test_mailbox_path_that_is_a_file_is_refused(mailbox_dir: Path) -> None:
    mailbox_dir.write_text("not a dir")
    assert_clean_error(kei("send", "--from", "alice", "--to", "bob", "y"), 3)
    assert mailbox_dir.read_text() == "not a dir"


# ----------------------------------------------------------------------------- names and paths
@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=80))
def test_no_name_makes_a_path_outside_the_dir(name: str) -> None:
    root = os.environ["KEI_MAILBOX_DIR"]
    store = Mailbox().store
    try:
        path = store._cursor_path(name)  # type: ignore[attr-defined]
        checked = __import__("kei_message.names", fromlist=["validate"]).validate(name)
    except (InvalidName, UnsafeMailbox):
        return
    real = os.path.realpath(path)
    assert os.path.dirname(real) == os.path.realpath(os.path.join(root, "cursors")), (name, real)
    assert checked.lstrip("@") == os.path.basename(real) or name.startswith("@")


@pytest.mark.parametrize(
    "name",
    ["../etc", "a/b", "..", ".", "/abs", "x" * 65, "a b", "tab\tname", "nl\nname", "\x1b[31m", ""],
)
def test_bad_names_exit_2_and_create_nothing(mailbox_dir: Path, name: str) -> None:
    for args in (
        ("inbox", "--me", name),
        ("inbox", name),
        ("send", "--from", name, "--to", "bob", "x"),
        ("send", "--from", "alice", "--to", name, "x"),
        ("wait", "--me", "bob", "--from", name, "--timeout", "0"),
    ):
        assert_clean_result(cli(*args), 2)
    assert sorted(p.name for p in mailbox_dir.parent.iterdir()) == ["mailbox"] or not any(
        p.name in ("etc", "abs", "b") for p in mailbox_dir.parent.iterdir()
    )
    bus = mailbox_dir / "messages.jsonl"
    assert not bus.exists() or bus.read_bytes() == b""


def test_bad_name_as_a_real_process(mailbox_dir: Path) -> None:
    assert_clean_error(kei("send", "--from", "../../etc", "--to", "bob", "x"), 2)
    assert_clean_error(kei("inbox", "--me", "a/b"), 2)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_session_ids_stay_inside_sessions(session_id: str) -> None:
    store = Mailbox().store
    store.put_session(session_id, {"name": "bob", "session_id": session_id})
    root = os.path.realpath(os.environ["KEI_MAILBOX_DIR"])
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            assert os.path.realpath(os.path.join(dirpath, f)).startswith(root + os.sep)


def test_doctor_never_writes_through_a_symlinked_quarantine(
    mailbox_dir: Path, tmp_path: Path
) -> None:
    mb = Mailbox()
    mb.send("x", to="bob", sender="alice")
    with open(mailbox_dir / "messages.jsonl", "ab") as fh:
        fh.write(b"corrupt\n")
    target = tmp_path / "outside"
    target.mkdir()
    (mailbox_dir / "quarantine").symlink_to(target)
    before = (mailbox_dir / "messages.jsonl").read_bytes()
    res = cli("doctor", "--repair")
    assert_clean_result(res, 3)
    assert "symlink" in res.stdout and "not a directory of yours" in res.stderr
    assert list(target.iterdir()) == []
    assert (mailbox_dir / "messages.jsonl").read_bytes() == before  # nothing blanked
