"""``kei message doctor [--repair]``: what is wrong with the mailbox, and how to fix it.

Exit codes: 0 healthy, or every problem found was repaired; 1 problems remain
(found without ``--repair``, or not safe to repair automatically); 3 the
mailbox was unavailable while repairing (lock timeout, I/O error).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .app import _err, app, get_mailbox, out


@app.command()
def doctor(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Fix what is safe: mode bits, cursors, garbage cursor files, stale temp and "
            "pid files; copy corrupt lines to quarantine/ and blank them in place.",
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Parse every line of the bus, also the older lines of a big bus that no "
            "earlier doctor run checked (by default: its last 50,000 lines; --repair "
            "parses all).",
        ),
    ] = False,
) -> None:
    """Check the mailbox: permissions, corrupt or partial lines, cursors, stale locks, hooks.

    Exit 0 when healthy (or all repaired), 1 when problems remain.

    Example: kei message doctor --repair
    """
    from ..admin.doctor import check
    from ..render import neutralise

    def safe(text: str) -> str:
        return neutralise(text, multiline=False)

    store = get_mailbox().store
    report = check(repair=repair, full=full, remote=None if store.name == "jsonl" else store)
    out(f"mailbox: {safe(report.root)}")
    for note in report.notes:
        out(f"  ok: {safe(note)}")
    for f in report.findings:
        if f.repaired is not None:
            out(f"  repaired: {safe(f.where)}: {safe(f.problem)}")
            out(f"    did: {safe(f.repaired)}")
            continue
        out(f"  problem: {safe(f.where)}: {safe(f.problem)}")
        if f.failed:
            out(f"    could not repair: {safe(f.failed)}")
        out(f"    fix: {safe(f.fix)}")
    left = report.remaining
    fixable = [f for f in left if f.repairable and not f.failed]
    if not report.findings:
        out("healthy: nothing to fix")
    elif not left:
        out(f"repaired {len(report.findings)} problem(s); nothing left to fix")
    else:
        tail = (
            f"; `kei message doctor --repair` fixes {len(fixable)} of them"
            if fixable and not repair
            else ""
        )
        out(f"{len(left)} problem(s) left{tail}")
    if report.unavailable:
        _err(f"kei message: error: {safe(report.unavailable)}")
    raise typer.Exit(report.exit_code)
