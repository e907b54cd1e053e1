"""What every agent's installer shares (issue 18): reading a JSON settings file
that holds hooks in Claude Code's layout (Codex's ``hooks.json`` and Gemini
CLI's ``settings.json`` use it too), merging our entries in, taking exactly
ours out, describing the change as a diff, and writing it safely.

Our entries are recognised by their command (its program is
``kei-message-hook``), so install replaces them wherever they are and
uninstall removes exactly them; everything else is kept, in its order.
Before a file is changed it is backed up (``NAME.kei-message-backup-TIME``)
and replaced atomically (through a symlink to its target). A file that is not
valid JSON, or whose ``hooks`` is not the expected shape, is refused (exit 2)
and left untouched.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import MailboxUnavailable, UsageError

HOOK_PROGRAM = "kei-message-hook"
BACKUP_SUFFIX = ".kei-message-backup"


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
    # uninstall of another agent's config (issue 18): write these exact bytes (a backup
    # that holds what is left), or remove the file when nothing but ours was in it
    raw_after: bytes | None = None
    remove_settings: bool = False

    @property
    def settings_changed(self) -> bool:
        if self.remove_settings:
            return True
        return self.after is not None and (self.before is None or self.after != self.before)

    @property
    def changed(self) -> bool:
        return self.settings_changed or bool(self.files)


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


def hook_command(program: str, event: str) -> str:
    return f"{shlex.quote(program)} {event}"


def is_ours(entry: Any) -> bool:
    """A hook entry install wrote: a command whose program is ``kei-message-hook``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return False
    try:
        words = shlex.split(entry["command"])
    except ValueError:
        return False
    return bool(words) and os.path.basename(words[0]) == HOOK_PROGRAM


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
            if not isinstance(inner, list) or not any(is_ours(h) for h in inner):
                kept.append(g)
                continue
            removed = True
            rest = [h for h in inner if not is_ours(h)]
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


def read_settings(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MailboxUnavailable(f"cannot read {path}: {exc.strerror}") from exc
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SettingsError(
            f"{path} is not valid JSON ({exc}); fix it, then run install again "
            "(nothing was changed)"
        ) from None
    _check_shape(data, path)
    assert isinstance(data, dict)
    return data


def render_json(data: dict[str, Any] | None) -> str:
    return "" if data is None else json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def describe(plan: Plan, *, dry_run: bool) -> str:
    """What the plan does (or would do), with a diff of settings.json."""
    would = "would " if dry_run else ""
    lines: list[str] = []
    if plan.settings_changed:
        diff = difflib.unified_diff(
            render_json(plan.before).splitlines(keepends=True) if plan.before is not None else [],
            render_json(plan.after).splitlines(keepends=True),
            plan.settings_path if plan.before is not None else "/dev/null",
            plan.settings_path,
        )
        if plan.remove_settings:
            only = "only kei-message's hooks are in it"
            lines.append(f"{would}remove {plan.settings_path} ({only})\n")
        else:
            lines.append(f"{would}update {plan.settings_path}:\n")
            lines.extend(diff)
            if plan.raw_after is not None:
                lines.append(f"({would}put back the exact bytes it had before install)\n")
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
    backup = None
    if plan.remove_settings:
        try:
            os.unlink(plan.settings_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise MailboxUnavailable(f"cannot remove {plan.settings_path}: {exc.strerror}") from exc
    elif plan.settings_changed and plan.after is not None:
        backup = _write_settings(
            plan.settings_path, plan.before is not None, plan.after, plan.raw_after
        )
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
                _remove_empty_dir(os.path.dirname(f.path))
            else:
                assert f.backup is not None
                os.replace(f.backup, f.path)
        except OSError as exc:
            raise MailboxUnavailable(f"cannot write {f.path}: {exc.strerror}") from exc
    return backup


def _write_settings(
    path: str, existed: bool, data: dict[str, Any], raw: bytes | None = None
) -> str | None:
    real = os.path.realpath(path)  # a dotfiles symlink stays a symlink
    backup = None
    try:
        os.makedirs(os.path.dirname(real), exist_ok=True)
        mode = 0o600
        if existed:
            mode = os.stat(real).st_mode & 0o777
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            backup = f"{real}{BACKUP_SUFFIX}-{stamp}"
            n = 1
            while os.path.lexists(backup):
                n += 1
                backup = f"{real}{BACKUP_SUFFIX}-{stamp}.{n}"
            shutil.copy2(real, backup)
        _write_file(real, render_json(data).encode() if raw is None else raw, mode)
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


def _remove_empty_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)  # only ever succeeds when empty: ours, and nothing else is there


def plan_hooks_file_install(
    path: str, wanted: dict[str, list[Any]], notes: list[str] | None = None
) -> Plan:
    """Merge ``wanted`` into the ``"hooks"`` of the JSON file ``path`` (issue 18).

    Codex's ``hooks.json`` and Gemini CLI's ``settings.json`` hold hooks in
    Claude Code's layout, so the same merge applies: ours replaced wherever
    they are, everything else kept in its order.
    """
    before = read_settings(path)
    plan = Plan(path, before, merged(before or {}, wanted))
    plan.notes.extend(notes or [])
    return plan


def plan_hooks_file_uninstall(path: str) -> Plan:
    """Take our hooks out of ``path`` again, restoring it exactly where possible.

    What is left after taking ours out is compared with the backups install
    made: when one holds exactly that, its bytes are put back (formatting,
    key order and all). When nothing is left, install created the file (or
    only ours were in it): it is removed.
    """
    before = read_settings(path)
    if before is None:
        return Plan(path, None, None)
    after = strip_ours(before)
    if after == before:
        return Plan(path, before, None)
    plan = Plan(path, before, after)
    raw = _matching_backup(path, after)
    if raw is not None:
        plan.raw_after = raw
    elif not after:
        plan.remove_settings = True
    return plan


def _matching_backup(path: str, data: dict[str, Any]) -> bytes | None:
    """The bytes of the newest backup of ``path`` whose JSON equals ``data``, if any."""
    import glob

    real = os.path.realpath(path)
    for backup in sorted(glob.glob(glob.escape(real + BACKUP_SUFFIX) + "-*"), reverse=True):
        try:
            with open(backup, "rb") as fh:
                raw = fh.read()
            if (json.loads(raw) if raw.strip() else {}) == data:
                return raw
        except (OSError, ValueError, UnicodeDecodeError):
            continue
    return None
