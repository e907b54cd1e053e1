"""Identities (SPEC §5): validate, normalise, resolve.

A name is 1 to 64 characters of ``A-Z a-z 0-9 . _ -``, not starting with
``.`` or ``-``. ``all`` is reserved for broadcast. Names double as file
names under the mailbox dir, so this rule is also what keeps every path
inside it.
"""

from __future__ import annotations

import os

from . import settings
from .errors import InvalidName

BROADCAST = "all"
MAX_LEN = 64
_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
RULE = "use 1 to 64 of A-Z a-z 0-9 . _ -, not starting with . or -"


def _problem(name: str) -> str | None:
    if not name:
        return "empty; " + RULE
    if len(name) > MAX_LEN:
        return f"{len(name)} characters; " + RULE
    if name[0] in ".-":
        return "starts with . or -; " + RULE
    if not _ALLOWED.issuperset(name):
        return "has characters outside A-Z a-z 0-9 . _ -; " + RULE
    return None


def is_valid(name: str) -> bool:
    return _problem(name) is None


def validate(name: str, *, allow_all: bool = False) -> str:
    """Return ``name`` without a leading ``@``, or raise InvalidName."""
    if name.startswith("@"):
        name = name[1:]
    problem = _problem(name)
    if problem is not None:
        fixed = _suggestion(name)
        if fixed:  # the rule (SPEC §5), then the spelling that works
            problem = f"{problem}; did you mean {fixed!r}?"
        raise InvalidName(name, problem)
    if name == BROADCAST and not allow_all:
        raise InvalidName(name, "'all' is reserved for broadcast")
    return name


def _suggestion(name: str) -> str | None:
    """What the directory rule turns ``name`` into, to suggest it (#17).

    `my project` works as a directory, so `--from "my project"` should say what it
    becomes; nothing is suggested for an empty or over-long name.
    """
    if not name.strip() or len(name) > MAX_LEN:
        return None
    fixed = normalise(name)
    if fixed in (name, "root", "all_") or not is_valid(fixed):
        return None
    return fixed


def normalise(text: str) -> str:
    """Turn a directory basename into a name: runs of other characters become ``-``."""
    out: list[str] = []
    in_run = False
    for ch in text:
        if ch in _ALLOWED:
            out.append(ch)
            in_run = False
        elif not in_run:
            # one "-" per run of other characters (SPEC §5); a literal "-" beside
            # the run stays, so "a-ü-b" is "a---b", as the spec's rule reads
            out.append("-")
            in_run = True
    name = "".join(out).strip("-.")[:MAX_LEN]
    if not name:
        return "root"
    if name == BROADCAST:
        # A directory called "all" must not make its session read as everyone.
        return "all_"
    return name


def from_dir(path: str) -> str:
    return normalise(os.path.basename(os.path.normpath(path)) if path else "")


def resolve(explicit: str | None = None, *, cwd: str | None = None) -> str:
    """Flag, then ``KEI_MAILBOX_ME``, then ``cwd`` (hooks), then the current dir."""
    if explicit is not None:
        # `--me "$UNSET"` must not silently read as the current dir's name (#7)
        return validate(explicit)
    env = settings.me()
    if env:
        return validate(env)
    if cwd:
        return from_dir(cwd)
    try:
        here = os.getcwd()
    except OSError:
        here = ""
    return from_dir(here)
