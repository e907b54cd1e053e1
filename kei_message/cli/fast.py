"""The everyday commands without typer: ``send``, ``inbox``, ``list``, ``who`` (issue 6).

typer 0.2x builds a pydantic TypeAdapter for every parameter it parses, so
importing typer and parsing one command costs 100 ms and more, several
times what the command itself does. The plain forms people and scripts type
all day are parsed here instead, with the library and output helpers the
typer commands use:

    send [@NAME|all] WORD... [--to NAME] [--from NAME] [--kind KIND] [--json]
    inbox [NAME] [--me NAME] [--peek] [--count] [--json]
    list [-n N | --limit N] [--from NAME] [--to NAME] [--kind KIND] [--json]
    who | channels | names [--json]

Anything else (help, ``--live``, stdin bodies, ``pop``, a word starting
with ``-``, a missing value) returns None *before doing anything*, and the
typer app handles it as always. ``KEI_MAILBOX_NO_FAST=1`` turns this off.
tests/test_cli_fast.py runs every form both ways and compares the output.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..mailbox import Mailbox
    from ..records import Record

PROG = "kei message"

Parsed = tuple[list[str], dict[str, "str | bool"]]


def _parse(args: list[str], valued: set[str], flags: set[str]) -> Parsed | None:
    """Click-like parsing for the forms above; None for anything else."""
    words: list[str] = []
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        if tok == "--":
            words.extend(args[i:])
            break
        if not tok.startswith("-"):
            words.append(tok)
            continue
        name, eq, value = tok.partition("=")
        if name in flags and not eq:
            opts[name] = True
        elif name in valued:
            if not eq:
                if i >= len(args) or args[i].startswith("-"):
                    return None
                value = args[i]
                i += 1
            opts[name] = value
        else:
            return None  # '-', -h, --help, --live, a negative number, ...: typer's
    return words, opts


# ----------------------------------------------------------------------------- output
def _use_color() -> bool:
    if "NO_COLOR" in os.environ:
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _print_records(recs: list[Record], as_json: bool) -> None:
    if as_json:
        from ..records import dumps

        for rec in recs:
            sys.stdout.write(dumps(rec).decode("utf-8"))
        sys.stdout.flush()
        return
    from .. import render

    lines = render.record_lines(recs, color=_use_color())
    if lines:
        _out("\n".join(lines))


# ----------------------------------------------------------------------------- commands
def _send(args: list[str]) -> Callable[[], None] | None:
    parsed = _parse(args, {"--to", "--from", "--kind"}, {"--json"})
    if parsed is None:
        return None
    words, opts = parsed
    to = opts.get("--to")
    if to is None and words and (words[0] == "all" or words[0].startswith("@")):
        address: str | None = words[0]
        words = words[1:]
    else:
        address = None
    if not words or words == ["-"]:
        return None  # the body comes from stdin: typer's

    def run() -> None:
        from .. import names
        from ..mailbox import Mailbox

        if isinstance(to, str):
            target = names.validate(to, allow_all=True)
        else:
            target = names.validate(address, allow_all=True) if address else "all"
        me = names.resolve(_str(opts.get("--from")))
        mb = Mailbox()
        known = mb.known_names() if target != "all" else {}
        kind = _str(opts.get("--kind"))
        rec = mb.send(" ".join(words), to=target, sender=me, kind=kind, reply_to=None)
        if opts.get("--json"):
            _print_records([rec], True)
        else:
            _out(f"-> sent to {rec['to']!r} (from {rec['from']!r}) #{rec['id']}")
        _unknown_note(mb, target, known)

    return run


def _unknown_note(mb: Mailbox, to: str, known: dict[str, Any]) -> None:
    """As ``messages._unknown_note``: a note when sending to a name never seen."""
    if to == "all" or to in known:
        return
    pool = set(known)
    for sess in mb.store.sessions():
        if sess.get("name") == to:
            return
        if isinstance(sess.get("name"), str):
            pool.add(sess["name"])
    from ..names import BROADCAST, is_valid

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
    _err(f"{PROG}: note: no one called {to!r} has been seen yet; sent anyway ({hint})")


def _inbox(args: list[str]) -> Callable[[], None] | None:
    parsed = _parse(args, {"--me"}, {"--peek", "--count", "--json"})
    if parsed is None:
        return None
    words, opts = parsed
    if len(words) > 1 or (words and words[0] == "pop"):
        return None
    me = _str(opts.get("--me"))
    if words and me is not None and words[0] != me:
        return None  # typer says they disagree
    as_json = bool(opts.get("--json"))

    def run() -> None:
        from ..mailbox import Mailbox
        from ..names import resolve

        reader = resolve(words[0] if words else me)
        mb = Mailbox()
        if opts.get("--count"):
            _out(str(mb.count(reader)))
            return
        if opts.get("--peek"):
            recs = mb.unread(reader)
            _print_records(recs, as_json)
        else:
            # printed (and flushed) before the cursor moves: a crash re-delivers
            recs = mb.read(reader, deliver=lambda rs: _print_records(rs, as_json))
        if not recs and not as_json:
            _out(f"no unread messages for {reader!r}")

    return run


def _list(args: list[str]) -> Callable[[], None] | None:
    parsed = _parse(args, {"--limit", "-n", "--from", "--to", "--kind"}, {"--json"})
    if parsed is None:
        return None
    words, opts = parsed
    raw = opts.get("--limit", opts.get("-n", "40"))
    if words or not isinstance(raw, str) or not raw.isdigit():
        return None
    if "--limit" in opts and "-n" in opts:
        return None  # which one wins is click's business

    def run() -> None:
        from ..mailbox import Mailbox
        from ..names import validate
        from ..records import check_kind

        sender, to, kind = (_str(opts.get(k)) for k in ("--from", "--to", "--kind"))
        recs = Mailbox().recent(
            int(raw),
            sender=validate(sender, allow_all=True) if sender is not None else None,
            to=validate(to, allow_all=True) if to is not None else None,
            kind=check_kind(kind) if kind is not None else None,
        )
        _print_records(recs, bool(opts.get("--json")))

    return run


def _who(args: list[str]) -> Callable[[], None] | None:
    parsed = _parse(args, set(), {"--json"})
    if parsed is None or parsed[0]:
        return None
    as_json = bool(parsed[1].get("--json"))

    def run() -> None:
        from ..mailbox import Mailbox

        rows = Mailbox().who()
        if as_json:
            import orjson

            for row in rows:
                sys.stdout.write(orjson.dumps(row, default=str).decode() + "\n")
            sys.stdout.flush()
            return
        if not rows:
            _out("no names known yet: nobody has sent a message or registered a session")
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
            table.append(cells)
        _out("\n".join(render.table(header, table, color=_use_color())))

    return run


def _str(value: str | bool | None) -> str | None:
    return value if isinstance(value, str) else None


COMMANDS: dict[str, Callable[[list[str]], Callable[[], None] | None]] = {
    "send": _send,
    "inbox": _inbox,
    "list": _list,
    "who": _who,
    "channels": _who,
    "names": _who,
}


# ----------------------------------------------------------------------------- running
def run(args: list[str]) -> int | None:
    """The exit code when ``args`` is a form handled here; None: use the typer app."""
    if not args or os.environ.get("KEI_MAILBOX_NO_FAST", "") not in ("", "0"):
        return None
    parse = COMMANDS.get(args[0])
    command = parse(args[1:]) if parse is not None else None
    if command is None:
        return None
    _install_log_handler()
    return _guarded(command)


def _guarded(command: Callable[[], None]) -> int:
    """What ``app.run_guarded`` does for the errors these commands can raise."""
    from ..errors import KeiMessageError

    try:
        command()
        return 0
    except KeiMessageError as exc:
        _report(str(exc), exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        _err("")
        return 130
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
        return 141
    except OSError as exc:
        detail = exc.strerror or str(exc)
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        _report(f"mailbox unavailable: {detail}{where}", exc)
        return 3
    except Exception as exc:
        _report(
            f"internal error: {type(exc).__name__}: {exc} "
            "(set KEI_MAILBOX_DEBUG=1 for the traceback)",
            exc,
        )
        return 1


def _report(message: str, exc: BaseException) -> None:
    if os.environ.get("KEI_MAILBOX_DEBUG", "") not in ("", "0"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    _err(f"{PROG}: error: {message}")


def _install_log_handler() -> None:
    """Library warnings go to stderr as ``kei message: warning: …`` (as app.py does)."""
    import logging

    class _StderrHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            level = "warning" if record.levelno < logging.ERROR else "error"
            _err(f"{PROG}: {level}: {record.getMessage()}")

    logger = logging.getLogger("kei_message")
    logger.addHandler(_StderrHandler(logging.WARNING))
    logger.propagate = False
