"""Seeing the team (SPEC §14): ``top`` and ``web``."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app, get_mailbox, out


@app.command()
def top(
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame and exit (for scripts).")
    ] = False,
) -> None:
    """A live view of every name and session: agent, state, waiter, unread, oldest
    unread, and the latest messages; redrawn as the mailbox changes. `q` quits.

    Example: kei message top
    """
    from ..view import top as view

    if once:
        view.once(get_mailbox())
    else:
        view.run(get_mailbox())


@app.command()
def web(
    port: Annotated[
        int,
        typer.Option(
            "--port", metavar="PORT", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one)."
        ),
    ] = 0,
    open_page: Annotated[
        bool, typer.Option("--open", help="Open the page in the default browser.")
    ] = False,
) -> None:
    """Serve the same view, plus who talks to whom, on a read-only page on 127.0.0.1.

    Prints the page's address with its random token; requests without it get 403.
    Ctrl-C stops the server.

    Example: kei message web --port 8765 --open
    """
    from ..view import web as view

    view.serve(get_mailbox(), port=port, open_page=open_page, say=out)
