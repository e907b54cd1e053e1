"""Identities (SPEC §5): the name rule, normalising directory names, resolution order."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kei_message import names
from kei_message.errors import InvalidName, UsageError


@pytest.mark.parametrize(
    "name", ["a", "backend", "Front.End_2", "x-y", "_private", "9lives", "a" * 64, "all_"]
)
def test_valid_names(name: str) -> None:
    assert names.is_valid(name)
    assert names.validate(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".hidden",
        "-dash",
        "a" * 65,
        "has space",
        "slash/y",
        "..",
        "ünï",
        "a\nb",
        "tab\t",
        "semi;colon",
        "@",
    ],
)
def test_invalid_names_are_refused_with_the_rule(name: str) -> None:
    assert not names.is_valid(name)
    with pytest.raises(InvalidName, match="A-Z a-z 0-9") as info:
        names.validate(name)
    assert isinstance(info.value, UsageError)
    assert info.value.exit_code == 2


def test_names_are_case_sensitive() -> None:
    assert names.validate("Backend") != names.validate("backend")


def test_a_leading_at_is_dropped_once() -> None:
    assert names.validate("@frontend") == "frontend"
    with pytest.raises(InvalidName):
        names.validate("@@frontend")


def test_all_is_reserved_for_broadcast() -> None:
    with pytest.raises(InvalidName, match="reserved"):
        names.validate("all")
    with pytest.raises(InvalidName):
        names.validate("@all")
    assert names.validate("@all", allow_all=True) == "all"
    assert names.validate("ALL") == "ALL"  # case-sensitive: only "all" is reserved


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("backend", "backend"),
        ("my project", "my-project"),
        ("My  Project!!", "My-Project"),
        ("café-au-lait", "caf--au-lait"),  # "é" is a run of its own
        ("a-ü-b", "a---b"),  # the run "ü" becomes one "-"; literal dashes stay
        ("--.weird.--", "weird"),
        (".dotfile", "dotfile"),
        ("项目", "root"),
        ("", "root"),
        ("...", "root"),
        ("x" * 100, "x" * 64),
        ("a/b", "a-b"),
    ],
)
def test_normalise(text: str, name: str) -> None:
    assert names.normalise(text) == name


def _spec_normalise(text: str) -> str:
    """SPEC §5 read literally, as an independent model."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:64]
    return out or "root"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("-._ aZ09/"), max_size=90))
def test_normalise_follows_the_spec_and_always_gives_a_usable_name(text: str) -> None:
    got = names.normalise(text)
    assert names.is_valid(got)
    assert got != "all"  # a directory called "all" must not read everyone's broadcasts
    expected = _spec_normalise(text)
    assert got == (expected if expected != "all" else got)


def test_a_directory_called_all_does_not_become_broadcast() -> None:
    got = names.normalise("all")
    assert got != "all" and names.is_valid(got)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/home/kei/backend", "backend"),
        ("/home/kei/backend/", "backend"),
        ("/", "root"),
        ("/srv/My App (v2)", "My-App-v2"),
        ("", "root"),
    ],
)
def test_from_dir_uses_the_basename(path: str, name: str) -> None:
    assert names.from_dir(path) == name


# ----------------------------------------------------------------------------- resolution
def test_resolution_order_flag_env_cwd_current_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "current dir"
    here.mkdir()
    monkeypatch.chdir(here)
    assert names.resolve() == "current-dir"
    assert names.resolve(cwd="/work/hook project") == "hook-project"
    monkeypatch.setenv("KEI_MAILBOX_ME", "envname")
    assert names.resolve(cwd="/work/hook project") == "envname"
    assert names.resolve("@flag", cwd="/work/hook project") == "flag"


def test_empty_env_falls_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEI_MAILBOX_ME", "")
    monkeypatch.chdir(tmp_path)
    assert names.resolve() == names.normalise(tmp_path.name)


def test_explicit_invalid_names_are_refused_not_normalised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(InvalidName):
        names.resolve("bad name")
    with pytest.raises(InvalidName):
        names.resolve("all")
    monkeypatch.setenv("KEI_MAILBOX_ME", "bad/name")
    with pytest.raises(InvalidName):
        names.resolve()
    assert names.resolve("good") == "good"  # the flag wins over a bad env


def test_resolve_in_a_deleted_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    os.rmdir(gone)
    assert names.is_valid(names.resolve())
