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
Agent = Annotated[
    list[str] | None,
    typer.Option(
        "--agent",
        metavar="AGENT",
        help="claude (default), codex, gemini or all; repeatable. Codex: $CODEX_HOME/hooks.json; "
        "Gemini CLI: ~/.gemini/settings.json.",
    ),
]


def _agents(given: list[str] | None, project: bool) -> list[str]:
    """The agents named by ``--agent`` (issue 18), in a fixed order, each once."""
    from ..agents import AGENTS
    from ..errors import UsageError

    chosen: set[str] = set()
    for a in given or ["claude"]:
        a = a.strip().lower()
        if a == "all":
            chosen.update(AGENTS)
        elif a in AGENTS:
            chosen.add(a)
        else:
            raise UsageError(f"unknown agent {a!r}: give claude, codex, gemini or all")
    if project and chosen - {"claude"}:
        raise UsageError("--project is for Claude Code only; codex and gemini are per user")
    return [a for a in AGENTS if a in chosen]


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
    no_midturn: Annotated[
        bool,
        typer.Option(
            "--no-midturn",
            help="Leave out the PostToolBatch hook that delivers between tool rounds of a turn.",
        ),
    ] = False,
    agent: Agent = None,
    dry_run: DryRun = False,
) -> None:
    """Wire kei-message into Claude Code (or Codex, Gemini CLI): hooks, the /msg skill, the drop-in.

    Merges into settings.json keeping every other setting and hook, backs the
    file up first, and changes nothing when run again. Invalid JSON is refused
    (exit 2) and the file left as it is. `--agent codex` / `--agent gemini`
    write Codex's hooks.json / Gemini CLI's settings.json the same way.

    Example: kei message install --stop-delivery --agent claude --agent codex
    """
    from ..agents.claude import install as inst

    scope = _scope(user, project)
    for name in _agents(agent, scope):
        if name == "claude":
            plan = inst.plan_install(
                project=scope,
                stop_delivery=stop_delivery,
                wake=not no_wake,
                midturn=not no_midturn,
            )
        else:
            plan = _agent_install(name).plan_install()
        if not plan.changed:
            out(f"kei-message is already installed in {plan.settings_path}: nothing to change")
            continue
        if not _carry_out(plan, dry_run):
            continue
        out(INSTALLED[name])


INSTALLED = {
    "claude": "installed. New Claude Code sessions pick it up (restart running ones). "
    "Do not also enable the kei-message plugin: its hooks would run twice.",
    "codex": "installed for Codex. New Codex sessions pick it up once the hooks are trusted "
    "(see above).",
    "gemini": "installed for Gemini CLI. New Gemini sessions pick it up.",
}


def _agent_install(name: str) -> Any:
    """The installer module of codex or gemini."""
    if name == "codex":
        from ..agents.codex import install as codex

        return codex
    from ..agents.gemini import install as gemini

    return gemini


@app.command()
def uninstall(
    *, user: User = False, project: Project = False, agent: Agent = None, dry_run: DryRun = False
) -> None:
    """Remove exactly what install added: our hooks, the /msg skill, the drop-in.

    Example: kei message uninstall --agent all
    """
    from ..agents.claude import install as inst

    scope = _scope(user, project)
    for name in _agents(agent, scope):
        if name == "claude":
            plan = inst.plan_uninstall(project=scope)
        else:
            plan = _agent_install(name).plan_uninstall()
        if not plan.changed:
            out(f"kei-message is not installed in {plan.settings_path}: nothing to remove")
            continue
        if _carry_out(plan, dry_run):
            out("uninstalled." if name == "claude" else f"uninstalled from {name}.")


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
        typer.Argument(
            metavar="EVENT",
            help="user-prompt-submit, session-start, post-tool-batch, stop or wake; "
            "codex-session-start, "
            "codex-user-prompt-submit, codex-stop; gemini-session-start, gemini-before-agent, "
            "gemini-after-agent.",
        ),
    ],
) -> None:
    """Run one Claude Code hook event: JSON on stdin, at most one JSON object out, exit 0.

    The same as the lighter console script `kei-message-hook EVENT`.

    Example: echo '{"cwd": "/src/app", "session_id": "s1"}' | kei message hook user-prompt-submit
    """
    from ..agents import hooks

    raise typer.Exit(hooks.run([event]))
