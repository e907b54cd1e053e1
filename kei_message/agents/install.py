"""What every agent's installer shares (issue 18): reading a JSON settings file
that holds hooks in Claude Code's layout (Codex's ``hooks.json`` and Gemini
CLI's ``settings.json`` use it too), merging our entries in, taking exactly
ours out, describing the change as a diff, and writing it safely.

Our entries are recognised by their command (its program is
``kei-message-hook``), so install replaces them wherever they are and
uninstall removes exactly them; everything else is kept, in its order.
Before a file is changed it is backed up (``NAME.kei-message-backup-TIME``,
one kept), written in its own style and replaced atomically (through a
symlink to its target); uninstall gives its exact bytes back, or removes the
file install created (#17; the format and the backups: ``jsonfile``). A file
that is not valid JSON, or whose ``hooks`` is not the expected shape, is
refused (exit 2) and left untouched.
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

from ..errors import MailboxUnavailable, UsageError
from . import jsonfile
from .jsonfile import BACKUP_SUFFIX, Style

HOOK_PROGRAM = "kei-message-hook"
__all__ = ["BACKUP_SUFFIX", "HOOK_PROGRAM", "Style"]


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
    words = command_words(entry)
    return bool(words) and os.path.basename(words[0]) == HOOK_PROGRAM


def command_words(entry: Any) -> list[str]:
    """The words of a hook entry's command (``[]`` when it has none)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return []
    try:
        return shlex.split(entry["command"])
    except ValueError:
        return str(entry["command"]).split()


def has_ours(settings: dict[str, Any] | None) -> bool:
    return settings is not None and strip_ours(settings) != settings


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


def read_settings(path: str) -> dict[str, Any] | None:
    return load_settings(path).data


def load_settings(path: str) -> jsonfile.Loaded:
    """A settings file as found: data, bytes and style; refused when not JSON we can merge."""
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


def render_json(data: dict[str, Any] | None) -> str:
    return "" if data is None else json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def describe(plan: Plan, *, dry_run: bool) -> str:
    """What the plan does (or would do), with a diff of the settings file.

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
        if plan.restored_from is not None:
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
            untouched = not has_ours(plan.before)
            if plan.raw_after is None and (untouched or not jsonfile.backups(path)):
                backup = jsonfile.make_backup(path)
                jsonfile.prune_backups(path, keep=backup)
            elif plan.raw_after is None:
                # backups left by earlier versions (one per write): keep the newest of
                # the file as it was without us, the one uninstall can give back
                jsonfile.prune_backups(path, keep=_untouched_backup(path))
        content = plan.raw_after if plan.raw_after is not None else plan.style.dumps(plan.after)
        _write_file(real, content, mode)
        if plan.restored_from is not None:
            jsonfile.prune_backups(path, keep=None)
    except OSError as exc:
        raise MailboxUnavailable(f"cannot write {path}: {exc.strerror}") from exc
    return backup


def _untouched_backup(path: str) -> str | None:
    """The newest backup of ``path`` without our entries (else the newest)."""
    found = jsonfile.backups(path)
    for backup in found:
        try:
            with open(backup, "rb") as fh:
                data = jsonfile.parse(fh.read())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and not has_ours(data):
            return backup
    return found[0] if found else None


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


# ------------------------------------------------------------------------------ plans
def plan_settings_install(
    path: str,
    wanted: dict[str, list[Any]],
    notes: list[str] | None = None,
    *,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    finish: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Plan:
    """Merge ``wanted`` into the ``"hooks"`` of the JSON file ``path``.

    Every agent's settings hold hooks in Claude Code's layout (Codex's
    ``hooks.json`` and Gemini CLI's ``settings.json`` too, issue 18), so the
    same merge applies: ours replaced wherever they are, everything else kept
    in its order, the file in its own style. ``prepare`` runs on what is there
    before the merge (Claude Code: the original setup's hooks out), ``finish``
    after it (the permission offer).
    """
    found = load_settings(path)
    start = found.data or {}
    if prepare is not None:
        start = prepare(start)
    after = merged(start, wanted)
    if finish is not None:
        after = finish(after)
    plan = Plan(path, found.data, after, style=found.style)
    plan.notes.extend(notes or [])
    return plan


def plan_settings_uninstall(
    path: str,
    *,
    strip: Callable[[dict[str, Any]], dict[str, Any]] = strip_ours,
    keep_out: Callable[[dict[str, Any]], dict[str, Any]] = strip_ours,
) -> Plan:
    """Take ours out of a JSON settings file again, giving its bytes back where possible.

    ``strip`` removes what install added; ``keep_out`` everything install
    manages (what it added and what it replaced). When the file, less that,
    equals a backup, less the same, the backup's bytes go back (install then
    uninstall gives the same bytes, #17). When nothing is left and there is no
    backup, install created the file: it is removed. Otherwise what is left is
    written in the file's own style.
    """
    found = load_settings(path)
    before = found.data
    if before is None:
        return Plan(path, None, None)
    after = strip(before)
    if after == before:
        return Plan(path, before, None, style=found.style)
    plan = Plan(path, before, after, style=found.style)

    def clean(data: dict[str, Any]) -> bool:
        return not has_ours(data)

    match = jsonfile.matching_backup(path, before, keep_out, clean)
    if match is not None:
        plan.restored_from, plan.raw_after = match
        plan.after = jsonfile.parse(plan.raw_after)
    elif not after and not jsonfile.clean_backups(path, clean):
        # install created the file (a backup holding only an earlier install's
        # file does not count: install, install --no-midturn, uninstall, #14/#17)
        plan.remove_settings = True
    return plan


def plan_hooks_file_install(
    path: str, wanted: dict[str, list[Any]], notes: list[str] | None = None
) -> Plan:
    """Codex's and Gemini CLI's install: ``plan_settings_install`` (issue 18)."""
    return plan_settings_install(path, wanted, notes)


def plan_hooks_file_uninstall(path: str) -> Plan:
    """Codex's and Gemini CLI's uninstall: ``plan_settings_uninstall`` (issue 18)."""
    return plan_settings_uninstall(path)
