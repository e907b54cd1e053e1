"""Every ``KEI_MAILBOX_*`` setting, read here and nowhere else.

Each function reads its variable when called (tests and long-running commands
change the environment between calls), and the callers pass the values down
as arguments: nothing in kei-message writes ``os.environ``. Only ``os`` is
imported: the hook reads its settings before every prompt (issue 6).

``VARIABLES`` lists them all, with defaults and meanings (docs/environment.md
is generated from it).
"""

from __future__ import annotations

import os

VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("KEI_MAILBOX_DIR", "`~/.claude/mailbox`", "the mailbox dir"),
    ("KEI_MAILBOX_ME", "basename of the cwd", "your identity"),
    ("KEI_MAILBOX_URL", "(the JSONL bus)", "`redis://HOST:PORT/DB` puts the bus on Redis Streams"),
    ("KEI_MAILBOX_LOCK_TIMEOUT", "`10`", "seconds to wait for a lock or Redis call before exit 3"),
    ("KEI_MAILBOX_FSYNC", "off", "`1`: fsync each send before reporting success"),
    ("KEI_MAILBOX_MAX_BODY", "`1048576`", "largest body in bytes"),
    ("KEI_MAILBOX_BROADCAST_REPLAY", "`24h`", "how old a broadcast a brand-new reader still gets"),
    ("KEI_MAILBOX_HOOK_BUDGET", "`9000`", "characters a hook may inject per turn"),
    ("KEI_MAILBOX_BYPASS", "off", "`1`: the hooks do nothing"),
    ("KEI_MAILBOX_DEBUG", "off", "`1`: tracebacks on errors"),
    (
        "KEI_MAILBOX_HOST",
        "the host name",
        "this machine's name in the session registry (Redis, several machines)",
    ),
    (
        "KEI_MAILBOX_WAKE_DEADLINE",
        "`86340`",
        "seconds the wake waiter waits before it exits quietly",
    ),
    ("KEI_MAILBOX_NO_FAST", "off", "`1`: every command goes through typer (no fast path)"),
    (
        "KEI_MAILBOX_NO_INOTIFY",
        "off",
        "`1`: `wait`/`tail -f`/wake poll every 50 ms instead of inotify",
    ),
)

DEFAULT_LOCK_TIMEOUT = 10.0
DEFAULT_REPLAY = 24 * 3600.0
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_HOOK_BUDGET = 9000
MIN_HOOK_BUDGET = 1000


def env_float(name: str, default: float) -> float:
    """``name`` as a number; ``default`` when unset or not a number."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        return default


def env_flag(name: str) -> bool:
    """``name`` set to 1, true, yes or on (any case)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _text(name: str) -> str | None:
    return os.environ.get(name) or None


def mailbox_dir() -> str | None:
    """The ``KEI_MAILBOX_DIR`` override, or None (``paths.mailbox_dir`` has the default)."""
    return _text("KEI_MAILBOX_DIR")


def url() -> str | None:
    return _text("KEI_MAILBOX_URL")


def jsonl_store() -> bool:
    """No store URL, or a ``file:`` one: the JSONL bus in the mailbox dir."""
    return (os.environ.get("KEI_MAILBOX_URL") or "").strip() in ("", "file:")


def me() -> str | None:
    return _text("KEI_MAILBOX_ME")


def agent_session() -> str | None:
    """The agent session a command runs in (Claude Code sets ``CLAUDE_CODE_SESSION_ID``
    in its tools' environment): receipts of ``inbox``/``pop``/``wait`` name it (#16)."""
    return _text("CLAUDE_CODE_SESSION_ID")


def lock_timeout() -> float:
    return max(0.0, env_float("KEI_MAILBOX_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT))


def max_body() -> int:
    raw = os.environ.get("KEI_MAILBOX_MAX_BODY", "")
    return int(raw) if raw.isdigit() else DEFAULT_MAX_BODY


def max_line() -> int:
    """The longest line a reader keeps to parse (#15), from ``max_body``.

    A record's line is its body JSON-escaped (at most 6 bytes a character) plus
    short fields, so no line we write comes near 8x the body limit. A longer
    line is corrupt: readers skip it to its newline without holding it, and
    report it; a bus holding gigabytes without a newline costs time linear in
    its size and bounded memory.
    """
    return max(16 << 20, 8 * max_body())


def broadcast_replay() -> float:
    """Seconds; a bad value falls back to the default rather than failing every read."""
    raw = os.environ.get("KEI_MAILBOX_BROADCAST_REPLAY")
    if not raw:
        return DEFAULT_REPLAY
    from .records import parse_duration  # not on the hook's fast path

    try:
        return parse_duration(raw)
    except ValueError:
        return DEFAULT_REPLAY


def hook_budget() -> int:
    raw = os.environ.get("KEI_MAILBOX_HOOK_BUDGET", "")
    return max(MIN_HOOK_BUDGET, int(raw)) if raw.isdigit() else DEFAULT_HOOK_BUDGET


def bypass() -> bool:
    return env_flag("KEI_MAILBOX_BYPASS")


def no_wake() -> bool:
    """Leave the waiter out (the plugin's ``KEI_MAILBOX_NO_WAKE``; Codex's waiter too)."""
    return env_flag("KEI_MAILBOX_NO_WAKE")


def debug() -> bool:
    """Set to anything but 0/false/no/off."""
    value = os.environ.get("KEI_MAILBOX_DEBUG", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def fsync() -> bool:
    return env_flag("KEI_MAILBOX_FSYNC")


def no_inotify() -> bool:
    return bool(os.environ.get("KEI_MAILBOX_NO_INOTIFY"))


def no_fast() -> bool:
    return os.environ.get("KEI_MAILBOX_NO_FAST", "") not in ("", "0")


def wake_deadline(default: float) -> float:
    return max(0.0, env_float("KEI_MAILBOX_WAKE_DEADLINE", default))


def host() -> str | None:
    return _text("KEI_MAILBOX_HOST")
