"""``kei message install`` / ``uninstall``: wire kei-message into Claude Code (SPEC §7).

What install adds, and uninstall takes away again:

- Hook entries in ``settings.json`` (``--user``: ``~/.claude/settings.json``,
  or ``$CLAUDE_CONFIG_DIR/settings.json``; ``--project``: ``./.claude/settings.json``),
  each a ``{"hooks": [ONE COMMAND]}`` group whose command is the absolute path
  of the installed ``kei-message-hook`` console script plus the event, so it
  works without PATH:

  ===================  ==============================  =================================
  event                command                         when
  ===================  ==============================  =================================
  UserPromptSubmit     ``kei-message-hook user-prompt-submit``  always
  SessionStart         ``kei-message-hook session-start``       always
  PostToolBatch        ``kei-message-hook post-tool-batch``     unless ``--no-midturn``
  Stop                 ``kei-message-hook stop``                ``--stop-delivery``
  SessionStart, Stop,  ``kei-message-hook wake`` (async)        unless ``--no-wake``
  UserPromptSubmit,
  PreToolUse
  ===================  ==============================  =================================

  Our entries are recognised by their command (its program is
  ``kei-message-hook``), so install replaces them wherever they are and
  uninstall removes exactly them. Every other setting and hook is kept as it
  was, in its order. Install twice and the second run changes nothing.
- The ``/msg`` skill: ``skills/msg/SKILL.md`` copied to ``<scope>/.claude/skills/msg/``.
- With ``--user``, the drop-in ``~/.claude/scripts/kei-message.sh`` for the
  original script's path.

Safety: the settings file is backed up (``settings.json.kei-message-backup-TIME``)
before it is changed, and replaced atomically (through a symlink to its
target). A file that is not valid JSON, or whose ``hooks`` is not the shape
Claude Code reads, is refused (exit 2) and left untouched. A skill or drop-in
already there that install did not write is kept as ``NAME.kei-message-backup``
and put back by uninstall.
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Any

from ...errors import MailboxUnavailable
from ..install import (
    BACKUP_SUFFIX,
    HOOK_PROGRAM,
    FileChange,
    Plan,
    SettingsError,
    apply,
    describe,
    hook_command,
    hook_program,
    is_ours,
    merged,
    read_settings,
    render_json,
    strip_ours,
)
from .waiter import HOOK_TIMEOUT

__all__ = [
    "HOOK_PROGRAM",
    "Plan",
    "SettingsError",
    "apply",
    "describe",
    "hook_command",
    "hook_program",
    "is_ours",
    "plan_install",
    "plan_uninstall",
    "render_json",
]

SYNC_TIMEOUT = 10  # seconds; the hook itself gives up after 2
WAKE_TIMEOUT = HOOK_TIMEOUT  # the waiter sleeps until mail arrives: a day, then Stop re-arms it
# The model reads "<rewakeMessage> <the waiter's text>", and the text begins
# "kei mailbox: N new message(s) for NAME": say where it came from, nothing more.
REWAKE_MESSAGE = "[kei-message wake hook: this idle session was woken by new mail]"
REWAKE_SUMMARY = "kei mailbox: new message(s)"
MARKER = "kei-message:managed"  # in files install writes, so uninstall knows them


def claude_home(home: str | None = None) -> str:
    """The user's Claude Code config dir: ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``."""
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    if env and home is None:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(home or os.path.expanduser("~"), ".claude")


def scope_dir(project: bool, project_dir: str | None = None, home: str | None = None) -> str:
    if project:
        return os.path.join(os.path.abspath(project_dir or os.getcwd()), ".claude")
    return claude_home(home)


def data_file(*parts: str) -> str:
    """A file shipped with kei-message: in the wheel (``_data``) or the source checkout."""
    # kei_message/agents/claude/install.py -> kei_message/
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for base in (os.path.join(here, "_data"), os.path.dirname(here)):
        path = os.path.join(base, *parts)
        if os.path.isfile(path):
            return path
    raise MailboxUnavailable(f"kei-message is missing its file {'/'.join(parts)}; reinstall it")


# ------------------------------------------------------------------------------ hook entries
def wanted_hooks(
    program: str, *, stop_delivery: bool, wake: bool, midturn: bool = True
) -> dict[str, list[Any]]:
    """Our groups per event, in the order install appends them."""

    def group(event: str, timeout: int, **extra: Any) -> dict[str, Any]:
        entry = {"type": "command", "command": hook_command(program, event), "timeout": timeout}
        return {"hooks": [{**entry, **extra}]}

    waiter = group(
        "wake",
        WAKE_TIMEOUT,
        **{
            "async": True,
            "asyncRewake": True,
            "rewakeMessage": REWAKE_MESSAGE,
            "rewakeSummary": REWAKE_SUMMARY,
        },
    )
    out: dict[str, list[Any]] = {
        "SessionStart": [group("session-start", SYNC_TIMEOUT)],
        "UserPromptSubmit": [group("user-prompt-submit", SYNC_TIMEOUT)],
    }
    if midturn:
        out["PostToolBatch"] = [group("post-tool-batch", SYNC_TIMEOUT)]
    if stop_delivery:
        out["Stop"] = [group("stop", SYNC_TIMEOUT)]
    if wake:
        # Armed wherever a turn can begin or stop (issue 14): a waiter is used up when
        # it wakes the session, and an interrupted turn (Escape, a denied permission
        # prompt, `cancel`) runs no Stop hook. UserPromptSubmit re-arms it at the start
        # of every turn (a wake turn too), PreToolUse before every tool call and so
        # before every permission prompt. One waiter per session: the extra ones see
        # the lock held and leave at once (``hooks._wake``).
        out["SessionStart"].append(waiter)
        out["UserPromptSubmit"].append(copy.deepcopy(waiter))
        out["PreToolUse"] = [copy.deepcopy(waiter)]
        out.setdefault("Stop", []).append(copy.deepcopy(waiter))
    return out


def _is_managed(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return MARKER.encode() in fh.read(1 << 20)
    except OSError:
        return False


def skill_text() -> bytes:
    with open(data_file("skills", "msg", "SKILL.md"), "rb") as fh:
        return fh.read()


def dropin_text() -> bytes:
    with open(data_file("scripts", "kei-message.sh"), "rb") as fh:
        text = fh.read().decode()
    # The drop-in finds the CLI through the interpreter that installed it.
    text = text.replace("__KEI_MESSAGE_PYTHON__", sys.executable, 1)
    lines = text.split("\n", 1)
    marked = f"{lines[0]}\n# {MARKER}: written by `kei message install`; `uninstall` removes it\n"
    return (marked + (lines[1] if len(lines) > 1 else "")).encode()


def _file_install(path: str, content: bytes) -> FileChange | None:
    try:
        with open(path, "rb") as fh:
            if fh.read() == content:
                return None
    except FileNotFoundError:
        return FileChange(path, "write", content)
    except OSError:
        pass
    backup = None if _is_managed(path) else path + BACKUP_SUFFIX
    return FileChange(path, "write", content, backup=backup)


def _file_uninstall(path: str) -> FileChange | None:
    if os.path.lexists(path + BACKUP_SUFFIX) and _is_managed(path):
        return FileChange(path, "restore", backup=path + BACKUP_SUFFIX)
    if os.path.isfile(path) and _is_managed(path):
        return FileChange(path, "remove")
    return None


# ------------------------------------------------------------------------------ plans
def plan_install(
    *,
    project: bool = False,
    stop_delivery: bool = False,
    wake: bool = True,
    midturn: bool = True,
    project_dir: str | None = None,
    home: str | None = None,
    program: str | None = None,
) -> Plan:
    base = scope_dir(project, project_dir, home)
    path = os.path.join(base, "settings.json")
    before = read_settings(path)
    wanted = wanted_hooks(
        program or hook_program(), stop_delivery=stop_delivery, wake=wake, midturn=midturn
    )
    after = merged(before or {}, wanted)
    plan = Plan(path, before, after)
    plugins = (before or {}).get("enabledPlugins")
    if isinstance(plugins, dict):
        for key, enabled in plugins.items():
            if enabled is True and str(key).split("@")[0] == "kei-message":
                plan.notes.append(
                    f"warning: the plugin {key} is enabled in {path}: its hooks and these "
                    "would both run, delivering twice. Use one way: "
                    f"`claude plugin disable {key}`, or `kei message uninstall`."
                )
    targets = [(os.path.join(base, "skills", "msg", "SKILL.md"), skill_text())]
    if not project:
        targets.append(
            (os.path.join(claude_home(home), "scripts", "kei-message.sh"), dropin_text())
        )
    for target, content in targets:
        change = _file_install(target, content)
        if change is not None:
            plan.files.append(change)
    return plan


def plan_uninstall(
    *, project: bool = False, project_dir: str | None = None, home: str | None = None
) -> Plan:
    base = scope_dir(project, project_dir, home)
    path = os.path.join(base, "settings.json")
    before = read_settings(path)
    after = None if before is None else strip_ours(before)
    plan = Plan(path, before, after if after != before else None)
    targets = [os.path.join(base, "skills", "msg", "SKILL.md")]
    if not project:
        targets.append(os.path.join(claude_home(home), "scripts", "kei-message.sh"))
    for target in targets:
        change = _file_uninstall(target)
        if change is not None:
            plan.files.append(change)
    return plan
