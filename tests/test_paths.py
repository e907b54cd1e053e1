"""Every path from one resolver; modes; symlink and foreign-owner refusals (SPEC §1)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kei_message import paths, settings
from kei_message.errors import MailboxUnavailable, UnsafeMailbox
from kei_message.stores import layout


def test_mailbox_dir_honours_the_environment(mailbox_dir: Path) -> None:
    assert paths.mailbox_dir() == str(mailbox_dir)
    assert layout.bus_path() == str(mailbox_dir / "messages.jsonl")
    assert layout.bus_path("/x") == "/x/messages.jsonl"


def test_mailbox_dir_default_and_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KEI_MAILBOX_DIR")
    assert paths.mailbox_dir() == str(tmp_path / ".claude" / "mailbox")
    monkeypatch.setenv("KEI_MAILBOX_DIR", "~/elsewhere")
    assert paths.mailbox_dir() == str(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEI_MAILBOX_DIR", "rel/box")
    assert paths.mailbox_dir() == str(tmp_path / "rel" / "box")


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077, 0o277])
def test_ensure_dir_is_0700_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "deep" / "mailbox"
    old = os.umask(umask)
    try:
        paths.ensure_dir(str(target))
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_ensure_dir_keeps_an_existing_private_dir(tmp_path: Path) -> None:
    target = tmp_path / "mb"
    target.mkdir(mode=0o700)
    target.chmod(0o700)
    paths.ensure_dir(str(target))
    paths.ensure_dir(str(target))


@pytest.mark.parametrize("mode", [0o770, 0o702, 0o777, 0o720])
def test_group_or_other_writable_dir_is_refused(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "mb"
    target.mkdir()
    target.chmod(mode)
    with pytest.raises(UnsafeMailbox, match="writable by group or others") as info:
        paths.ensure_dir(str(target))
    assert info.value.exit_code == 3
    assert "chmod 700" in str(info.value)


def test_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    target = tmp_path / "mb"
    target.mkdir(mode=0o700)
    os.chown(target, 4242, 4242)
    with pytest.raises(UnsafeMailbox, match="owned by uid 4242"):
        paths.ensure_dir(str(target))


def test_a_file_where_the_dir_should_be_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "mb"
    target.write_text("x")
    with pytest.raises(UnsafeMailbox, match="not a directory"):
        paths.ensure_dir(str(target))


def test_a_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MailboxUnavailable, match="cannot create"):
        paths.ensure_dir(str(blocker / "mb"))


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_open_file_creates_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        fd = paths.open_file(str(tmp_path / "f"), os.O_WRONLY | os.O_CREAT)
    finally:
        os.umask(old)
    os.close(fd)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600


def test_open_file_never_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_text("secret")
    link = tmp_path / "link"
    link.symlink_to(real)
    for flags in (os.O_RDONLY, os.O_WRONLY | os.O_CREAT | os.O_APPEND):
        with pytest.raises(UnsafeMailbox, match="symlink"):
            paths.open_file(str(link), flags)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UnsafeMailbox):
        paths.open_file(str(dangling), os.O_WRONLY | os.O_CREAT)
    assert not (tmp_path / "nowhere").exists()
    assert real.read_text() == "secret"


def test_open_file_missing_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        paths.open_file(str(tmp_path / "missing"), os.O_RDONLY)


def test_write_atomic_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "cursor"
    paths.write_atomic(str(target), b"one\n")
    paths.write_atomic(str(target), b"two\n", fsync=True)
    assert target.read_bytes() == b"two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["cursor"]


def test_write_atomic_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_text("keep")
    link = tmp_path / "cursor"
    link.symlink_to(real)
    paths.write_atomic(str(link), b"new\n")
    assert real.read_text() == "keep"
    assert not link.is_symlink() and link.read_bytes() == b"new\n"


def test_write_atomic_failure_is_mailbox_unavailable(tmp_path: Path) -> None:
    with pytest.raises(MailboxUnavailable):
        paths.write_atomic(str(tmp_path / "no" / "such" / "dir"), b"x")


def test_env_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEI_X", "2.5")
    assert settings.env_float("KEI_X", 1.0) == 2.5
    monkeypatch.setenv("KEI_X", "soon")
    assert settings.env_float("KEI_X", 1.0) == 1.0
    monkeypatch.delenv("KEI_X")
    assert settings.env_float("KEI_X", 1.0) == 1.0
    for yes in ("1", "true", "YES", "on"):
        monkeypatch.setenv("KEI_X", yes)
        assert settings.env_flag("KEI_X")
    for no in ("0", "", "no", "off"):
        monkeypatch.setenv("KEI_X", no)
        assert not settings.env_flag("KEI_X")
