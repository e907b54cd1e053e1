"""``kei message migrate --to URL``: move the mailbox to another store (SPEC §9)."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app, get_mailbox, out


@app.command()
def migrate(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="URL",
            help="Target store: redis://[USER:PASSWORD@]HOST:PORT/DB (rediss:// for TLS), "
            "or file: (the mailbox dir) / file:DIR for a JSONL bus. It must be empty.",
        ),
    ],
) -> None:
    """Copy the bus, every reader's cursor and the sessions to another, empty store.

    The source is the current store (--url, else KEI_MAILBOX_URL, else the JSONL bus).
    Nothing is deleted from it. Afterwards point every machine at the target.

    Example: kei message migrate --to redis://mailbox.lan:6379/0
    """
    from ..admin.migrate import migrate as run
    from ..admin.migrate import open_target

    source = get_mailbox().store
    done = run(source, open_target(to))
    out(
        f"migrated {done.records} records, {done.cursors} cursors and {done.sessions} "
        f"sessions from {done.source} to {done.target}"
    )
