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
  Stop                 ``kei-message-hook stop``                ``--stop-delivery``
  SessionStart, Stop   ``kei-message-hook wake`` (async)        unless ``--no-wake``
  ===================  ==============================  =================================

  Our entries are recognised by their command (its program is
  ``kei-message-hook``), so install replaces them wherever they are and
  uninstall removes exactly them. Every other setting and hook is kept as it
  was, in its order. Install twice and the second run changes nothing.
- The ``/msg`` skill: ``skills/msg/SKILL.md`` copied to ``<scope>/.claude/skills/msg/``.
- With ``--user``, the drop-in ``~/.claude/scripts/kei-message.sh`` for the
  original script's path.

- The original setup's hooks (``~/.claude/scripts/kei-message.sh``,
  ``mailbox-inject.sh`` as a UserPromptSubmit hook: KeiSeiKit's layout) are
  taken out (``replace_old``): beside ours every message would be injected
  twice. Uninstall puts them back with the file's bytes.
- On request (``allow_bash``), ``Bash(kei message:*)`` in ``permissions.allow``:
  the model's own ``kei message send`` then runs without a permission prompt.

Safety: the settings file is backed up (``settings.json.kei-message-backup-TIME``,
one kept) before it is changed, written in its own style (indent, newlines)
and replaced atomically (through a symlink to its target); uninstall gives the
exact bytes back, or removes the file install created (``agents.jsonfile``). A
file that is not valid JSON, or whose ``hooks`` is not the shape Claude Code
reads, is refused (exit 2) and left untouched. A skill or drop-in already there
that install did not write is kept as ``NAME.kei-message-backup`` and put back
by uninstall.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import MailboxUnavailable, UsageError
from .. import jsonfile
from ..jsonfile import BACKUP_SUFFIX, Style
from .waiter import HOOK_TIMEOUT

HOOK_PROGRAM = "kei-message-hook"
SYNC_TIMEOUT = 10  # seconds; the hook itself gives up after 2
WAKE_TIMEOUT = HOOK_TIMEOUT  # the waiter sleeps until mail arrives: a day, then Stop re-arms it
# The model reads "<rewakeMessage> <the waiter's text>", and the text begins
# "kei mailbox: N new message(s) for NAME": say where it came from, nothing more.
REWAKE_MESSAGE = "[kei-message wake hook: this idle session was woken by new mail]"
REWAKE_SUMMARY = "kei mailbox: new message(s)"
MARKER = "kei-message:managed"  # in files install writes, so uninstall knows them
# The original setup's scripts (KeiSeiKit): a hook running one of them injects the
# same mail ours does (#17).
OLD_SCRIPTS = ("kei-message.sh", "mailbox-inject.sh")
ALLOW_RULE = "Bash(kei message:*)"  # offered by install (--allow-bash), removed by uninstall


class SettingsError(UsageError):
    """settings.json cannot be merged into: bad JSON or an unexpected shape (exit 2)."""


@dataclass
class FileChange:
    path: str
    action: str  # "write", "remove", "restore"
    content: bytes = b""
    backup: str | None = None  # where an existing foreign file is kept


@dataclass
class Plan:
    """What install or uninstall would do; ``apply`` does it."""

    settings_path: str
    before: dict[str, Any] | None  # None: the file does not exist
    after: dict[str, Any] | None  # None: leave the file alone
    files: list[FileChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    style: Style = field(default_factory=Style)  # how the file is written (#17)
    # uninstall: these exact bytes (a backup holding the file as it was), or remove
    # the file when install created it and nothing but ours is in it (#17, #18)
    raw_after: bytes | None = None
    restored_from: str | None = None
    remove_settings: bool = False
    replaced: list[str] = field(default_factory=list)  # the original setup's hooks taken out

    @property
    def settings_changed(self) -> bool:
        if self.remove_settings:
            return True
        return self.after is not None and (self.before is None or self.after != self.before)

    @property
    def changed(self) -> bool:
        return self.settings_changed or bool(self.files)


# ------------------------------------------------------------------------------ locations
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


def hook_program() -> str:
    """The absolute path of the installed ``kei-message-hook`` console script."""
    beside = os.path.join(os.path.dirname(sys.executable), HOOK_PROGRAM)
    if os.access(beside, os.X_OK):
        return os.path.abspath(beside)
    found = shutil.which(HOOK_PROGRAM)
    if found:
        return os.path.abspath(found)
    raise MailboxUnavailable(
        f"cannot find the {HOOK_PROGRAM} console script beside {sys.executable} or on PATH; "
        "install the package first (scripts/install.sh)"
    )


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
def hook_command(program: str, event: str) -> str:
    return f"{shlex.quote(program)} {event}"


def wanted_hooks(program: str, *, stop_delivery: bool, wake: bool) -> dict[str, list[Any]]:
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
    if stop_delivery:
        out["Stop"] = [group("stop", SYNC_TIMEOUT)]
    if wake:
        out["SessionStart"].append(waiter)
        out.setdefault("Stop", []).append(copy.deepcopy(waiter))
    return out


def is_ours(entry: Any) -> bool:
    """A hook entry install wrote: a command whose program is ``kei-message-hook``."""
    words = _words(entry)
    return bool(words) and os.path.basename(words[0]) == HOOK_PROGRAM


def is_old(entry: Any) -> bool:
    """A hook entry of the original setup: it runs ``kei-message.sh`` or ``mailbox-inject.sh``."""
    return any(os.path.basename(w) in OLD_SCRIPTS for w in _words(entry))


def _words(entry: Any) -> list[str]:
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return []
    try:
        return shlex.split(entry["command"])
    except ValueError:
        return str(entry["command"]).split()


def old_hooks(settings: dict[str, Any] | None) -> list[str]:
    """``EVENT: COMMAND`` for each hook of the original setup in ``settings``."""
    found: list[str] = []
    hooks = (settings or {}).get("hooks")
    for event, groups in (hooks if isinstance(hooks, dict) else {}).items():
        for g in groups if isinstance(groups, list) else ():
            inner = g.get("hooks") if isinstance(g, dict) else None
            for h in inner if isinstance(inner, list) else ():
                if is_old(h):
                    found.append(f"{event}: {h['command']}")
    return found


def _check_shape(settings: Any, path: str) -> None:
    def bad(what: str) -> SettingsError:
        return SettingsError(
            f"{path}: {what}; Claude Code would not read it either. Fix it, then run "
            "install again (nothing was changed)"
        )

    if not isinstance(settings, dict):
        raise bad("the top level is not a JSON object")
    hooks = settings.get("hooks", {})
    if not isinstance(hooks, dict):
        raise bad('"hooks" is not an object')
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            raise bad(f'"hooks.{event}" is not a list')
        for g in groups:
            if isinstance(g, dict) and "hooks" in g and not isinstance(g["hooks"], list):
                raise bad(f'a "hooks.{event}[].hooks" is not a list')


def strip_ours(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` without our hook entries; groups and events left empty by that go too."""
    return strip_hooks(settings, is_ours)


def strip_old(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` without the original setup's hook entries."""
    return strip_hooks(settings, is_old)


def has_ours(settings: dict[str, Any] | None) -> bool:
    return settings is not None and strip_ours(settings) != settings


def with_allow(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with ``ALLOW_RULE`` in ``permissions.allow`` (appended, once)."""
    out = copy.deepcopy(settings)
    perms = out.setdefault("permissions", {})
    if not isinstance(perms, dict):
        raise SettingsError('"permissions" is not an object; Claude Code would not read it either')
    allow = perms.setdefault("allow", [])
    if not isinstance(allow, list):
        raise SettingsError('"permissions.allow" is not a list; Claude Code would not read it')
    if ALLOW_RULE not in allow:
        allow.append(ALLOW_RULE)
    return out


def strip_allow(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` without ``ALLOW_RULE``; a list (and object) only it held goes too."""
    perms = settings.get("permissions")
    allow = perms.get("allow") if isinstance(perms, dict) else None
    if not isinstance(allow, list) or ALLOW_RULE not in allow:
        return settings
    out = copy.deepcopy(settings)
    rest = [a for a in allow if a != ALLOW_RULE]
    if rest:
        out["permissions"]["allow"] = rest
    else:
        del out["permissions"]["allow"]
        if not out["permissions"]:
            del out["permissions"]
    return out


def unmanaged(settings: dict[str, Any]) -> dict[str, Any]:
    """Everything in ``settings`` but what install manages, adds or replaces."""
    return strip_allow(strip_old(strip_ours(settings)))


def strip_hooks(settings: dict[str, Any], drop: Callable[[Any], bool]) -> dict[str, Any]:
    """``settings`` without the hook entries ``drop`` picks; emptied groups and events go."""
    out = copy.deepcopy(settings)
    hooks = out.get("hooks")
    if not isinstance(hooks, dict):
        return out
    for event in list(hooks):
        groups = hooks[event]
        kept: list[Any] = []
        removed = False
        for g in groups:
            inner = g.get("hooks") if isinstance(g, dict) else None
            if not isinstance(inner, list) or not any(drop(h) for h in inner):
                kept.append(g)
                continue
            removed = True
            rest = [h for h in inner if not drop(h)]
            if rest:
                kept.append({**g, "hooks": rest})
        if removed and not kept:
            del hooks[event]
        else:
            hooks[event] = kept
    if not hooks and "hooks" in settings and settings["hooks"]:
        del out["hooks"]  # only ours were there
    return out


def merged(settings: dict[str, Any], wanted: dict[str, list[Any]]) -> dict[str, Any]:
    out = strip_ours(settings)
    hooks = out.setdefault("hooks", {})
    for event, groups in wanted.items():
        hooks.setdefault(event, []).extend(copy.deepcopy(groups))
    return out


# ------------------------------------------------------------------------------ files
def read_settings(path: str) -> dict[str, Any] | None:
    return load_settings(path).data


def load_settings(path: str) -> jsonfile.Loaded:
    """The settings file as found: data, bytes and style; refused when not JSON we can merge."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return jsonfile.Loaded(path, None, None, Style())
    except OSError as exc:
        raise MailboxUnavailable(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = jsonfile.parse(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SettingsError(
            f"{path} is not valid JSON ({exc}); fix it, then run install again "
            "(nothing was changed)"
        ) from None
    _check_shape(data, path)
    assert isinstance(data, dict)
    return jsonfile.Loaded(path, data, raw, jsonfile.detect(raw))


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
    replace_old: bool = True,
    allow_bash: bool | None = None,
    project_dir: str | None = None,
    home: str | None = None,
    program: str | None = None,
) -> Plan:
    """What install does. ``replace_old``: take the original setup's hooks out;
    ``allow_bash``: True adds ``ALLOW_RULE``, False takes it out, None leaves it."""
    base = scope_dir(project, project_dir, home)
    path = os.path.join(base, "settings.json")
    found = load_settings(path)
    before = found.data
    wanted = wanted_hooks(program or hook_program(), stop_delivery=stop_delivery, wake=wake)
    start = before or {}
    old = old_hooks(start)
    if old and replace_old:
        start = strip_old(start)
    after = merged(start, wanted)
    if allow_bash is True:
        after = with_allow(after)
    elif allow_bash is False:
        after = strip_allow(after)
    plan = Plan(path, before, after, style=found.style)
    if old and replace_old:
        plan.replaced = old
        plan.notes.append(
            "replaced the original kei-message hooks (beside kei-message-hook each "
            "message would be injected twice; `kei message uninstall` puts them back): "
            + "; ".join(old)
        )
    elif old:
        plan.notes.append(
            "warning: the original kei-message hooks stay (--keep-old) and inject "
            "every message a second time: " + "; ".join(old)
        )
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
    plan = plan_settings_uninstall(load_settings(path), strip=lambda d: strip_allow(strip_ours(d)))
    targets = [os.path.join(base, "skills", "msg", "SKILL.md")]
    if not project:
        targets.append(os.path.join(claude_home(home), "scripts", "kei-message.sh"))
    for target in targets:
        change = _file_uninstall(target)
        if change is not None:
            plan.files.append(change)
    return plan


def plan_settings_uninstall(
    found: jsonfile.Loaded,
    *,
    strip: Callable[[dict[str, Any]], dict[str, Any]],
    keep_out: Callable[[dict[str, Any]], dict[str, Any]] = unmanaged,
) -> Plan:
    """Take ours out of a JSON config file again, giving its bytes back where possible.

    ``strip`` removes what install added; ``keep_out`` everything install
    manages (what it added and what it replaced). When the file, less that,
    equals a backup, less the same, the backup's bytes go back (install then
    uninstall gives the same bytes, #17). When nothing is left and there is no
    backup, install created the file: it is removed. Otherwise what is left is
    written in the file's own style.
    """
    before = found.data
    if before is None:
        return Plan(found.path, None, None)
    after = strip(before)
    if after == before:
        return Plan(found.path, before, None, style=found.style)
    plan = Plan(found.path, before, after, style=found.style)
    match = jsonfile.matching_backup(found.path, before, keep_out)
    if match is not None:
        plan.restored_from, plan.raw_after = match
        plan.after = jsonfile.parse(plan.raw_after)
    elif not after and not jsonfile.backups(found.path):
        plan.remove_settings = True
    return plan


def render_json(data: dict[str, Any] | None) -> str:
    return "" if data is None else json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def describe(plan: Plan, *, dry_run: bool) -> str:
    """What the plan does (or would do), with a diff of settings.json.

    The diff is of the data, laid out with 2 spaces whatever the file's style
    (a one-line file would make a one-line diff); the file keeps its style.
    """
    would = "would " if dry_run else ""
    lines: list[str] = []
    if plan.remove_settings:
        lines.append(
            f"{would}remove {plan.settings_path} (install created it; nothing else is in it)\n"
        )
    elif plan.settings_changed:
        diff = difflib.unified_diff(
            render_json(plan.before).splitlines(keepends=True) if plan.before is not None else [],
            render_json(plan.after).splitlines(keepends=True),
            plan.settings_path if plan.before is not None else "/dev/null",
            plan.settings_path,
        )
        lines.append(f"{would}update {plan.settings_path}:\n")
        lines.extend(diff)
        if plan.restored_from:
            lines.append(f"({would}put back its exact bytes from {plan.restored_from})\n")
    else:
        lines.append(f"{plan.settings_path}: nothing to change\n")
    for f in plan.files:
        if f.action == "write":
            keep = f" (keeping the existing file as {f.backup})" if f.backup else ""
            lines.append(f"{would}write {f.path}{keep}\n")
        elif f.action == "remove":
            lines.append(f"{would}remove {f.path}\n")
        else:
            lines.append(f"{would}put back {f.path} from {f.backup}\n")
    lines.extend(n + "\n" for n in plan.notes)
    return "".join(lines)


def apply(plan: Plan) -> str | None:
    """Carry out ``plan``; returns the settings backup path, if one was made."""
    backup = apply_settings(plan)
    for f in plan.files:
        try:
            if f.action == "write":
                os.makedirs(os.path.dirname(f.path), exist_ok=True)
                if f.backup and os.path.lexists(f.path):
                    os.replace(f.path, f.backup)
                mode = 0o755 if f.path.endswith(".sh") else 0o644
                _write_file(f.path, f.content, mode)
            elif f.action == "remove":
                os.unlink(f.path)
                _remove_empty_dirs(os.path.dirname(f.path), os.path.dirname(plan.settings_path))
            else:
                assert f.backup is not None
                os.replace(f.backup, f.path)
        except OSError as exc:
            raise MailboxUnavailable(f"cannot write {f.path}: {exc.strerror}") from exc
    return backup


def apply_settings(plan: Plan) -> str | None:
    """Write (or remove) the settings file of ``plan``; the backup made, if any.

    One backup is kept (#17): before the first change to a file without our
    entries it is copied (older backups pruned); a file already carrying ours
    keeps the backup of the file as it was before, made only if none is left.
    After the exact bytes went back, the backup has nothing more to give: it goes.
    """
    path = plan.settings_path
    if plan.remove_settings:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise MailboxUnavailable(f"cannot remove {path}: {exc.strerror}") from exc
        return None
    if not plan.settings_changed or plan.after is None:
        return None
    real = os.path.realpath(path)  # a dotfiles symlink stays a symlink
    backup = None
    try:
        os.makedirs(os.path.dirname(real), exist_ok=True)
        mode = 0o600
        if plan.before is not None:
            mode = os.stat(real).st_mode & 0o777
            if plan.raw_after is None and (not has_ours(plan.before) or not jsonfile.backups(path)):
                backup = jsonfile.make_backup(path)
                jsonfile.prune_backups(path, keep=backup)
        content = plan.raw_after if plan.raw_after is not None else plan.style.dumps(plan.after)
        _write_file(real, content, mode)
        if plan.restored_from is not None:
            jsonfile.prune_backups(path, keep=None)
    except OSError as exc:
        raise MailboxUnavailable(f"cannot write {path}: {exc.strerror}") from exc
    return backup


def _write_file(path: str, content: bytes, mode: int) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _remove_empty_dirs(path: str, stop: str) -> None:
    """Remove ``path`` and its parents while empty, up to ``stop`` (kept): no empty
    ``skills/`` or ``scripts/`` is left behind (#17)."""
    while path and path != stop and path.startswith(stop + os.sep):
        try:
            os.rmdir(path)  # only ever succeeds when empty: ours, and nothing else is there
        except OSError:
            return
        path = os.path.dirname(path)
