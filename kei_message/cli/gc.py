"""``kei message gc [--keep 30d] [--dry-run]``: retention (SPEC §6, issue 6)."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app, get_mailbox, out


@app.command()
def gc(
    keep: Annotated[
        str,
        typer.Option(
            "--keep",
            metavar="DURATION",
            help="Keep records newer than this (30s, 15m, 24h, 7d, 2w).",
        ),
    ] = "30d",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would move; change nothing.")
    ] = False,
) -> None:
    """Move records older than --keep out of the bus into the archive folder.

    A message some known reader (a cursor, or a registered session) has not
    consumed stays, and so does everything after it; senders and readers
    may keep working meanwhile.

    Example: kei message gc --keep 14d --dry-run
    """
    from ..admin.gc import collect
    from ..records import parse_duration
    from ..render import neutralise

    result = collect(get_mailbox(), parse_duration(keep), dry_run=dry_run)
    verb = "would move" if dry_run else "moved"
    where = f" to {neutralise(result.archive, multiline=False)}" if result.archive else ""
    out(f"{verb} {result.moved} record{'s' if result.moved != 1 else ''}{where}")
    if result.held_by:
        held = result.wanted - result.moved
        readers = ", ".join(neutralise(r, multiline=False) for r in result.held_by[:5])
        more = f" and {len(result.held_by) - 5} more" if len(result.held_by) > 5 else ""
        out(f"kept {held} older record{'s' if held != 1 else ''}: not yet read by {readers}{more}")
