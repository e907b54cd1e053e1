"""The everyday commands without typer: ``send``, ``inbox``, ``list``, ``who`` (issue 6).

typer 0.2x builds a pydantic TypeAdapter for every parameter it parses, so
importing typer and parsing one command costs 100 ms and more, several
times what the command itself does. The plain forms people and scripts type
all day are parsed here instead, against the same option definitions the
typer app is built from, and run by the same verbs (``verbs``):

    send [@NAME|all] WORD... [--to NAME] [--from NAME] [--kind KIND] [--json]
    inbox [NAME] [--me NAME] [--peek] [--count] [--clear] [--full] [--json]
    list [-n N | --limit N] [--from NAME] [--to NAME] [--kind KIND] [--full] [--json]
    who | channels | names [--json]
    inbox pop [NAME] [--me NAME] [--full] [--json]                (issue 19)
    show ID [--json]
    reply ID WORD... [--from NAME] [--kind KIND] [--json]

Anything else (help, ``--live``, stdin bodies, ``pop --peek``, a word starting
with ``-``, a missing value) returns None *before doing anything*, and the
typer app handles it as always. ``KEI_MAILBOX_NO_FAST=1`` turns this off.
tests/test_cli_fast.py runs every form both ways and compares the output.
"""

from __future__ import annotations

from .. import mailbox, names, settings
from ..mailbox import Mailbox
from . import verbs
from .output import (
    guarded,
    install_log_handler,
    out,
    out_json,
    print_records,
    show_unread,
    taken_note,
    use_color,
)

TYPE_CHECKING = False  # typing costs every command ~7 ms (issue 19)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Command = Callable[[], None]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _send(words: list[str], opts: dict[str, Any]) -> Command | None:
    to = _str(opts.get("to"))
    address, text = verbs.split_address(words) if to is None else (None, words)
    if not text or text == ["-"]:
        return None  # the body comes from stdin: typer's

    def run() -> None:
        target, body = verbs.recipient(to, words)
        me = names.resolve(_str(opts.get("sender")))
        verbs.send(
            Mailbox(),
            " ".join(body),
            to=target,
            sender=me,
            kind=_str(opts.get("kind")),
            as_json=bool(opts.get("as_json")),
        )

    return run


def _inbox(words: list[str], opts: dict[str, Any]) -> Command | None:
    if words and words[0] == "pop":
        return _pop(words[1:], opts)
    if len(words) > 1 or (opts.get("clear") and (opts.get("peek") or opts.get("count"))):
        return None  # typer says which cannot go together
    me = _str(opts.get("me"))
    if words and me is not None and words[0] != me:
        return None  # typer says they disagree

    explicit = words[0] if words else me

    def run() -> None:
        reader = names.resolve(explicit)
        mb = Mailbox()
        if opts.get("count"):
            out(str(mb.count(reader)))
            return
        if opts.get("clear"):
            out(str(mb.clear(reader)))
            return
        show_unread(
            mb,
            reader,
            peek=bool(opts.get("peek")),
            as_json=bool(opts.get("as_json")),
            full=bool(opts.get("full")),
            explicit=explicit,
        )

    return run


def _pop(words: list[str], opts: dict[str, Any]) -> Command | None:
    me = _str(opts.get("me"))
    if len(words) > 1 or opts.get("peek") or opts.get("count") or opts.get("clear"):
        return None
    if words == ["pop"]:
        return None  # `inbox pop pop`: typer refuses it (#17)
    if words and me is not None and words[0] != me:
        return None  # typer says they disagree
    as_json = bool(opts.get("as_json"))
    full = bool(opts.get("full"))
    explicit = words[0] if words else me

    def run() -> None:
        reader = names.resolve(explicit)
        mb = Mailbox()
        mb.pop(
            reader,
            deliver=lambda rec: print_records([rec], as_json, full=full),
            session=settings.agent_session(),
        )
        taken_note(mb, reader, explicit, 1)

    return run


def _show(words: list[str], opts: dict[str, Any]) -> Command | None:
    if len(words) != 1:
        return None

    def run() -> None:
        mb = Mailbox()
        rec = mb.get(verbs.msg_id(words[0]))
        status = mb.states([rec])[rec["id"]]
        if opts.get("as_json"):
            out_json({**rec, "state": status["state"]})
            return
        from .. import render  # re: only to show something

        out(render.record_block(rec, color=use_color(), state=status))

    return run


def _reply(words: list[str], opts: dict[str, Any]) -> Command | None:
    if len(words) < 2 or words[1:] == ["-"]:
        return None  # no id, or the body comes from stdin: typer's

    def run() -> None:
        me = names.resolve(_str(opts.get("sender")))
        rid = verbs.msg_id(words[0])
        mb = Mailbox()
        original = mb.get(rid)
        kind = _str(opts.get("kind"))
        body = " ".join(words[1:])
        rec = mb.send(body, to=original["from"], sender=me, kind=kind, reply_to=rid)
        verbs.sent_line(rec, bool(opts.get("as_json")))

    return run


def _list(words: list[str], opts: dict[str, Any]) -> Command | None:
    raw = opts.get("list_limit", "40")
    if words or not raw.isdigit():
        return None

    def run() -> None:
        verbs.recent(
            Mailbox(),
            int(raw),
            sender=_str(opts.get("from_filter")),
            to=_str(opts.get("to_filter")),
            kind=_str(opts.get("kind_filter")),
            as_json=bool(opts.get("as_json")),
            full=bool(opts.get("full")),
        )

    return run


def _who(words: list[str], opts: dict[str, Any]) -> Command | None:
    if words:
        return None
    as_json = bool(opts.get("who_json"))
    return lambda: verbs.who(Mailbox(), as_json)


def _parsed(
    name: str, build: Callable[[list[str], dict[str, Any]], Command | None]
) -> Callable[[list[str]], Command | None]:
    """``build`` over the words and options of ``name``'s fast form; None: typer's."""

    def parse(args: list[str]) -> Command | None:
        parsed = verbs.parse_opts(args, verbs.FAST[name])
        return None if parsed is None else build(*parsed)

    return parse


COMMANDS: dict[str, Callable[[list[str]], Command | None]] = {
    "send": _parsed("send", _send),
    "inbox": _parsed("inbox", _inbox),
    "list": _parsed("list", _list),
    "who": _parsed("who", _who),
    "channels": _parsed("who", _who),
    "names": _parsed("who", _who),
    "show": _parsed("show", _show),
    "reply": _parsed("reply", _reply),
}


def run(args: list[str]) -> int | None:
    """The exit code when ``args`` is a form handled here; None: use the typer app."""
    if not args or settings.no_fast():
        return None
    parse = COMMANDS.get(args[0])
    command = parse(args[1:]) if parse is not None else None
    if command is None:
        return None
    # nothing on this path logs but the mailbox's and the Redis store's warnings and
    # live/ (which `who` loads only for registered panes, calling warnings_ahead first):
    # no logging until then (~10 ms, issue 19)
    mailbox.before_warning = install_log_handler
    if not settings.jsonl_store():
        from ..stores import redis as redis_store

        redis_store.before_warning = install_log_handler
    return guarded(command)
