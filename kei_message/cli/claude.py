"""Claude Code commands: install, uninstall, hook (SPEC §7).

``install`` and ``uninstall`` plan with ``agents.claude.install``, print the
plan (a diff of settings.json and the files written), and apply it unless
``--dry-run``. ``hook EVENT`` is the same code as the ``kei-message-hook``
console script.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from .app import app, out

User = Annotated[
    bool,
    typer.Option("--user", help="Claude Code's user settings, ~/.claude/settings.json (default)."),
]
Project = Annotated[
    bool,
    typer.Option("--project", help="This project's settings, ./.claude/settings.json."),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]


def _scope(user: bool, project: bool) -> bool:
    if user and project:
        from ..errors import UsageError

        raise UsageError("give --user or --project, not both")
    return project


@app.command()
def install(
    *,
    user: User = False,
    project: Project = False,
    stop_delivery: Annotated[
        bool,
        typer.Option(
            "--stop-delivery",
            help="Also a Stop hook: mail that arrives during a turn keeps Claude going.",
        ),
    ] = False,
    no_wake: Annotated[
        bool,
        typer.Option("--no-wake", help="Leave out the wake hook that wakes idle sessions."),
    ] = False,
    allow_bash: Annotated[
        bool | None,
        typer.Option(
            "--allow-bash/--no-allow-bash",
            help="Add (or take out) 'Bash(kei message:*)' in permissions.allow, so Claude "
            "runs `kei message` without a permission prompt (default: asked on a terminal, "
            "else left as it is).",
            show_default=False,
        ),
    ] = None,
    keep_old: Annotated[
        bool,
        typer.Option(
            "--keep-old",
            help="Keep the original kei-message.sh / mailbox-inject.sh hooks (by default "
            "they are replaced: both would inject every message).",
        ),
    ] = False,
    dry_run: DryRun = False,
) -> None:
    """Wire kei-message into Claude Code: hooks in settings.json, the /msg skill, the drop-in.

    Merges into settings.json keeping every other setting and hook and the
    file's own layout, backs the file up first (one backup kept), and changes
    nothing when run again. Hooks of the original kei-message.sh setup are
    replaced (uninstall puts them back). Invalid JSON is refused (exit 2) and
    the file left as it is.

    Example: kei message install --stop-delivery --allow-bash
    """
    from ..agents.claude import install as inst

    if allow_bash is None and not dry_run and _interactive():
        allow_bash = typer.confirm(
            f"Let Claude run `kei message …` without asking ({inst.ALLOW_RULE} in "
            "permissions.allow)?",
            default=False,
        )
    plan = inst.plan_install(
        project=_scope(user, project),
        stop_delivery=stop_delivery,
        wake=not no_wake,
        replace_old=not keep_old,
        allow_bash=allow_bash,
    )
    if allow_bash is None and inst.ALLOW_RULE not in _allowed(plan.after):
        plan.notes.append(
            f"note: Claude asks before each `kei message` it runs outside /msg; "
            f"`kei message install --allow-bash` adds {inst.ALLOW_RULE} to permissions.allow"
        )
    if not plan.changed:
        out(f"kei-message is already installed in {plan.settings_path}: nothing to change")
        return
    if not _carry_out(plan, dry_run):
        return
    out(
        "installed. New Claude Code sessions pick it up (restart running ones). "
        "Do not also enable the kei-message plugin: its hooks would run twice."
    )


@app.command()
def uninstall(*, user: User = False, project: Project = False, dry_run: DryRun = False) -> None:
    """Remove exactly what install added: our hooks, the /msg skill, the drop-in.

    settings.json gets its exact bytes back when nothing else changed in it
    since install (the original setup's hooks install replaced included), and is
    removed when install created it. Otherwise ours are taken out and the rest
    kept in the file's layout.

    Example: kei message uninstall
    """
    from ..agents.claude import install as inst

    plan = inst.plan_uninstall(project=_scope(user, project))
    if not plan.changed:
        out(f"kei-message is not installed in {plan.settings_path}: nothing to remove")
        return
    if _carry_out(plan, dry_run):
        out("uninstalled.")


def _interactive() -> bool:
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _allowed(settings: Any) -> list[Any]:
    perms = settings.get("permissions") if isinstance(settings, dict) else None
    allow = perms.get("allow") if isinstance(perms, dict) else None
    return allow if isinstance(allow, list) else []


def _carry_out(plan: Any, dry_run: bool) -> bool:
    """Show the change; write it (backup first) unless ``dry_run``. True when written."""
    from ..agents.claude import install as inst

    sys.stdout.write(inst.describe(plan, dry_run=dry_run))
    if dry_run:
        out("(dry run: nothing was written)")
        return False
    backup = inst.apply(plan)
    if backup:
        out(f"backed up the previous settings to {backup}")
    return True


@app.command()
def hook(
    event: Annotated[
        str,
        typer.Argument(metavar="EVENT", help="user-prompt-submit, session-start, stop or wake."),
    ],
) -> None:
    """Run one Claude Code hook event: JSON on stdin, at most one JSON object out, exit 0.

    The same as the lighter console script `kei-message-hook EVENT`.

    Example: echo '{"cwd": "/src/app", "session_id": "s1"}' | kei message hook user-prompt-submit
    """
    from ..agents.claude import hooks

    raise typer.Exit(hooks.run([event]))
