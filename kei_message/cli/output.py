"""Output and the error-to-exit-code mapping, shared by the typer commands (``app``,
``messages``, …) and the typer-free fast path (``fast``).

No typer here: the fast path must not pay for it (issue 6).
"""

from __future__ import annotations

import os
import sys

from .. import settings
from ..errors import KeiMessageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..mailbox import Mailbox
    from ..records import Record

PROG = "kei message"


def err(line: str) -> None:
    """One line to stderr; never raises (stderr may be closed)."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def out(text: str = "") -> None:
    """One line (or block) to stdout, flushed: callers mark messages read after it."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def warn(text: str) -> None:
    """A note for people on stderr."""
    err(f"{PROG}: {text}")


def use_color() -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def out_json(rec: Record) -> None:
    """A record as stored: one compact JSON line."""
    from ..records import dumps

    sys.stdout.write(dumps(rec).decode("utf-8"))
    sys.stdout.flush()


def print_records(recs: list[Record], as_json: bool, states: dict[int, str] | None = None) -> None:
    """Records for people (aligned, local time, escaped) or as stored (``--json``).

    ``states``: each one's delivery state by id (``list``); with ``--json`` it is
    one extra key, ``"state"``, after the stored ones (#16).
    """
    if as_json:
        for rec in recs:
            if states is not None and rec["id"] in states:
                rec = {**rec, "state": states[rec["id"]]}
            out_json(rec)
        return
    from .. import render

    lines = render.record_lines(recs, color=use_color(), states=states)
    if lines:
        out("\n".join(lines))


def show_unread(mb: Mailbox, reader: str, *, peek: bool, as_json: bool) -> None:
    """``inbox``: print ``reader``'s unread; unless ``peek``, mark them read after."""
    if peek:
        recs = mb.unread(reader)
        print_records(recs, as_json)
    else:
        # printed (and flushed) before the cursor moves: a crash re-delivers
        recs = mb.read(
            reader,
            deliver=lambda rs: print_records(rs, as_json),
            session=settings.agent_session(),
        )
    if not recs and not as_json:
        out(f"no unread messages for {reader!r}")


def print_who(rows: list[dict[str, Any]], as_json: bool) -> None:
    """The ``channels``/``who``/``names`` table (or one JSON object per name)."""
    if as_json:
        import orjson

        for row in rows:
            sys.stdout.write(orjson.dumps(row, default=str).decode() + "\n")
        sys.stdout.flush()
        return
    if not rows:
        out("no names known yet: nobody has sent a message or registered a session")
        return
    from .. import render

    extra = [k for k in ("state", "waiter") if any(k in r for r in rows)]
    header = [
        "NAME",
        "LAST MESSAGE",
        "LAST SEEN",
        "UNREAD",
        *(k.upper() for k in extra),
        "SESSIONS",
    ]
    # last, so no column before it moves (issue 18)
    agents = any("agent" in r for r in rows)
    if agents:
        header.append("AGENT")
    table: list[list[str]] = []
    for r in rows:
        cells = [
            str(r.get("name", "?")),
            render.local_time(r.get("last_message")),
            render.local_time(r.get("last_seen")),
            str(r.get("unread", 0)),
        ]
        for k in extra:
            v = r.get(k)
            cells.append(
                "-" if v is None else ("yes" if v is True else "no" if v is False else str(v))
            )
        cells.append(str(len(r.get("sessions") or [])))
        if agents:
            cells.append(str(r.get("agent") or "-"))
        table.append(cells)
    out("\n".join(render.table(header, table, color=use_color())))
    sessions = [
        [
            f"@{r['name']}/{s.get('prefix', '')}",
            str(s.get("agent") or "-"),
            str(s.get("state") or "-"),
            "yes" if s.get("waiter") else "no",
            render.local_time(s.get("last_read")),
            render.local_time(s.get("last_seen")),
        ]
        for r in rows
        for s in r.get("sessions") or ()
        if s.get("prefix")
    ]
    if sessions:
        # each live session under its name, with the address that reaches it alone (#16)
        out("")
        head = ["SESSION", "AGENT", "STATE", "WAITER", "LAST READ", "LAST SEEN"]
        out("\n".join(render.table(head, sessions, color=use_color())))
    for r in rows:
        for pid in r.get("unreachable") or ():
            out(
                f"note: {render.neutralise(str(r.get('name')), multiline=False)} (Claude Code "
                f"pid {pid}) runs with no waiter armed: new mail reaches it only at its next "
                "prompt (which arms one again), or typed in by `kei message process` in tmux"
            )


def unknown_note(mb: Mailbox, to: str, known: dict[str, Any]) -> None:
    """Typo help: sending to a name never seen before still works, with a note."""
    if to == "all" or to in known:
        return
    pool = set(known)
    for sess in mb.store.sessions():
        if sess.get("name") == to:
            return
        if isinstance(sess.get("name"), str):
            pool.add(sess["name"])
    from ..names import BROADCAST, is_valid

    # foreign records and session files may hold anything: only real names
    pool = {n for n in pool if n != BROADCAST and is_valid(n)}
    import difflib

    close = difflib.get_close_matches(to, sorted(pool), n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    elif pool:
        shown = sorted(pool)[:8]
        hint = "known names: " + ", ".join(shown) + (", ..." if len(pool) > 8 else "")
    else:
        hint = "no names are known yet"
    warn(f"note: no one called {to!r} has been seen yet; sent anyway ({hint})")


def report(message: str, exc: BaseException | None) -> None:
    """The one error line; the traceback too with KEI_MAILBOX_DEBUG=1."""
    if exc is not None and settings.debug():
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    err(f"{PROG}: error: {message}")


def silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def guarded(call: Callable[[], Any]) -> int:
    """Run ``call``; map every failure to one stderr line and an exit code (SPEC §6)."""
    try:
        rv = call()
        return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except KeiMessageError as exc:
        report(str(exc), exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        err("")
        return 130
    except BrokenPipeError:
        # The reader went away (`kei message list | head -1`). Nothing was marked
        # read past what got out; point stdout at /dev/null so the final flush at
        # exit does not raise again, and end quietly like a SIGPIPE'd tool would.
        silence_stdout()
        return 141
    except OSError as exc:
        detail = exc.strerror or str(exc)
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        report(f"mailbox unavailable: {detail}{where}", exc)
        return 3
    except Exception as exc:  # a bug: say so in one line, traceback on request
        report(
            f"internal error: {type(exc).__name__}: {exc} "
            "(set KEI_MAILBOX_DEBUG=1 for the traceback)",
            exc,
        )
        return 1


_handler_installed = False


def install_log_handler() -> None:
    """Library warnings (logger ``kei_message``) go to stderr as ``kei message: warning: …``."""
    global _handler_installed
    if _handler_installed:
        return
    import logging

    class _StderrHandler(logging.Handler):
        # Looks sys.stderr up at emit time: CliRunner swaps it per invocation.
        def emit(self, record: logging.LogRecord) -> None:
            try:
                level = "warning" if record.levelno < logging.ERROR else "error"
                err(f"{PROG}: {level}: {record.getMessage()}")
            except Exception:
                self.handleError(record)

    # Propagation stays on: with no root handler nothing else prints, and
    # tests' caplog still sees the records.
    logging.getLogger("kei_message").addHandler(_StderrHandler(logging.WARNING))
    _handler_installed = True
