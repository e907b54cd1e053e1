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

from .. import settings
from .output import (
    guarded,
    install_log_handler,
    out,
    print_records,
    print_who,
    show_unread,
    unknown_note,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

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
            print_records([rec], True)
        else:
            out(f"-> sent to {rec['to']!r} (from {rec['from']!r}) #{rec['id']}")
        unknown_note(mb, target, known)

    return run


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
            out(str(mb.count(reader)))
            return
        show_unread(mb, reader, peek=bool(opts.get("--peek")), as_json=as_json)

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
        print_records(recs, bool(opts.get("--json")))

    return run


def _who(args: list[str]) -> Callable[[], None] | None:
    parsed = _parse(args, set(), {"--json"})
    if parsed is None or parsed[0]:
        return None
    as_json = bool(parsed[1].get("--json"))

    def run() -> None:
        from ..mailbox import Mailbox
        from ..presence import who

        print_who(who(Mailbox()), as_json)

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
    if not args or settings.no_fast():
        return None
    parse = COMMANDS.get(args[0])
    command = parse(args[1:]) if parse is not None else None
    if command is None:
        return None
    install_log_handler()
    return guarded(command)
