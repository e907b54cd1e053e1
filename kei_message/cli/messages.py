"""Messaging commands: send, reply, show, inbox, wait, list, tail, channels, path.

Each command parses, calls one library function, renders. The wings (live
delivery, presence) are imported inside the commands that use them: every
command pays for this module's imports (start-up time, issue 6).
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import paths, render, settings
from ..errors import BodyError, NothingToReturn, UsageError
from ..mailbox import is_for
from ..records import parse_duration
from . import verbs
from .app import app, get_mailbox, out, out_json, resolve_me
from .output import print_records as _print_records
from .output import show_unread, taken_note, use_color

if TYPE_CHECKING:
    from ..mailbox import Mailbox
    from ..records import Record


# ----------------------------------------------------------------------------- options
def option(key: str, **extra: Any) -> Any:
    """The ``typer.Option`` for ``verbs.OPTIONS[key]``: the definition the fast path parses."""
    opt = verbs.OPTIONS[key]
    if opt.metavar is not None:
        extra["metavar"] = opt.metavar
    return typer.Option(*opt.flags, help=opt.help, **extra)


Me = Annotated[str | None, option("me")]
From = Annotated[str | None, option("sender")]
Kind = Annotated[str | None, option("kind")]
Json = Annotated[bool, option("as_json")]
Full = Annotated[bool, option("full")]
Text = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="TEXT",
        help="The message, words joined by single spaces. No TEXT (or '-'): read stdin.",
        show_default=False,
    ),
]


# ----------------------------------------------------------------------------- helpers
def _body(words: list[str]) -> str:
    """TEXT words joined by spaces; no words (or ``-``) and stdin not a terminal: stdin."""
    if words and words != ["-"]:
        return " ".join(words)
    stdin = sys.stdin
    if stdin is None or _isatty(stdin):
        raise BodyError("empty message body: give TEXT, or pipe the body on stdin")
    raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode("utf-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("message body on stdin is not UTF-8 text; nothing was sent") from None
    # `echo hi | kei message send` should send "hi", as $(...) would.
    return text.rstrip("\r\n")


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


_msg_id = verbs.msg_id


# ----------------------------------------------------------------------------- send
@app.command()
def send(
    text: Text = None,
    to: Annotated[str | None, option("to")] = None,
    sender: From = None,
    kind: Kind = None,
    reply_to: Annotated[
        str | None, typer.Option("--reply-to", metavar="ID", help="The id this message answers.")
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Also type it into the recipient's idle tmux pane now.")
    ] = False,
    wait_for: Annotated[
        str | None,
        typer.Option(
            "--wait",
            metavar="STATE",
            help="Then block until every reader got it: delivered or replied; print the status.",
        ),
    ] = None,
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout", metavar="DURATION", help="How long --wait waits (e.g. 30s, 5m): exit 1."
        ),
    ] = "10m",
    as_json: Json = False,
) -> None:
    """Send a message to NAME, or to all.

    The recipient is --to NAME, else a leading @NAME or 'all' argument (only
    the first argument), else all. '--' ends options. With --wait, the status
    (as `status ID` prints it) follows the sent line; out of time, exit 1.

    Example: kei message send @frontend --wait delivered TASK: ship the login page
    """
    if wait_for is not None and wait_for not in ("delivered", "replied"):
        raise UsageError(f"--wait takes delivered or replied, not {wait_for!r}")
    seconds = parse_duration(timeout)
    target, words = verbs.recipient(to, list(text or []))
    if live and target == "all":
        raise UsageError("--live needs one recipient: use --to NAME or @NAME")
    me = resolve_me(sender)
    answers = _msg_id(reply_to) if reply_to is not None else None
    body = _body(words)
    mb = get_mailbox()
    since = mb.store.receipts_end() if wait_for is not None else None
    armed = verbs.prepare_live(mb, target) if live else False
    rec = verbs.send(mb, body, to=target, sender=me, kind=kind, reply_to=answers, as_json=as_json)
    code = verbs.deliver_live(mb, rec["to"], rec.get("to_session"), rec, armed=armed) if live else 0
    if wait_for is not None:
        verbs.wait_for(mb, rec, wait_for, seconds, as_json, since)
    if code:
        # the live part's outcome is the exit code (4, 5 or 6 when it stays queued)
        raise typer.Exit(code)


@app.command()
def reply(
    msg_id: Annotated[str, typer.Argument(metavar="ID", help="The id of the message to answer.")],
    text: Text = None,
    sender: From = None,
    kind: Kind = None,
    as_json: Json = False,
) -> None:
    """Answer message ID: send to its sender, with reply_to set.

    Example: kei message reply 1795248002625564 DONE: shipped
    """
    me = resolve_me(sender)
    rid = _msg_id(msg_id)
    mb = get_mailbox()
    original = mb.get(rid)  # unknown id: exit 2 before reading stdin
    body = _body(list(text or []))
    rec = mb.send(body, to=original["from"], sender=me, kind=kind, reply_to=rid)
    verbs.sent_line(rec, as_json)


@app.command()
def show(
    msg_id: Annotated[str, typer.Argument(metavar="ID", help="The id of the message.")],
    as_json: Json = False,
) -> None:
    """Print one message in full.

    Example: kei message show 1795248002625564
    """
    mb = get_mailbox()
    rec = mb.get(_msg_id(msg_id))
    status = mb.states([rec])[rec["id"]]
    if as_json:
        out_json({**rec, "state": status["state"]})
        return
    out(render.record_block(rec, color=use_color(), state=status))


@app.command()
def status(
    msg_id: Annotated[str, typer.Argument(metavar="ID", help="The id of the message.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Print where message ID is, per intended reader: queued, delivered, replied.

    Delivered says when, how (inbox, pop, wait, hook, midturn, stop, wake,
    live) and into which agent session; replied names the first reply.

    Example: kei message status 1795248002625564 --json
    """
    st = get_mailbox().status(_msg_id(msg_id))
    if as_json:
        out_json(st)
        return
    out("\n".join(render.status_lines(st, color=use_color())))


# ----------------------------------------------------------------------------- reading
@app.command()
def inbox(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[pop] [NAME]",
            help="'pop': only the oldest unread (exit 1 when none). NAME: same as --me NAME.",
            show_default=False,
        ),
    ] = None,
    me: Me = None,
    peek: Annotated[bool, option("peek")] = False,
    count: Annotated[bool, option("count")] = False,
    clear: Annotated[bool, option("clear")] = False,
    show_all: Annotated[bool, option("show_all")] = False,
    limit: Annotated[int, option("inbox_limit", min=0)] = 20,
    full: Full = False,
    as_json: Json = False,
) -> None:
    """Print your unread messages, oldest first, and mark them read.

    Example: kei message inbox --me frontend
    """
    words = list(args or [])
    pop = bool(words) and words[0] == "pop"
    if pop:
        words = words[1:]
    if len(words) > 1:
        raise UsageError(f"too many arguments: {' '.join(words)!r}; use: inbox [pop] [NAME]")
    if pop and words == ["pop"]:
        # The word `pop` is the verb wherever it stands, never a NAME: `inbox pop pop`
        # is a typo more often than a reader called pop (#17).
        raise UsageError("'pop' given twice; to pop the inbox of a name 'pop': inbox pop --me pop")
    if words:
        if me is not None and words[0] != me:
            raise UsageError(f"NAME {words[0]!r} and --me {me!r} disagree")
        me = words[0]
    modes = [
        f
        for f, on in (("pop", pop), ("--count", count), ("--clear", clear), ("--all", show_all))
        if on
    ]
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} cannot be used together")
    if peek and clear:
        raise UsageError("--peek and --clear cannot be used together")
    reader = resolve_me(me)
    mb = get_mailbox()
    if count:
        out(str(mb.count(reader)))
    elif clear:
        out(str(mb.clear(reader)))
    elif show_all:
        _print_records(_recent_for(mb, reader, limit), as_json, full=full)
    elif pop:
        if peek:
            recs = mb.unread(reader)
            if not recs:
                raise NothingToReturn(f"no unread messages for {reader!r}")
            _print_records(recs[:1], as_json, full=full)
        else:
            mb.pop(
                reader,
                deliver=lambda rec: _print_records([rec], as_json, full=full),
                session=settings.agent_session(),
            )
            taken_note(mb, reader, me, 1)
    else:
        show_unread(mb, reader, peek=peek, as_json=as_json, full=full, explicit=me)


def _recent_for(mb: Mailbox, reader: str, limit: int) -> list[Record]:
    """The newest ``limit`` records addressed to ``reader`` (read or not), oldest first."""
    found: list[Record] = []
    if limit <= 0:
        return found
    for entry in mb.store.scan_reverse():
        if entry.record is not None and is_for(entry.record, reader):
            found.append(entry.record)
            if len(found) >= limit:
                break
    found.reverse()
    return found


@app.command()
def wait(
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout", metavar="SECONDS", help="Give up after this long (e.g. 30, 5m): exit 1."
        ),
    ] = None,
    sender: Annotated[
        str | None, typer.Option("--from", metavar="NAME", help="Only a message from NAME.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", metavar="KIND", help="Only a message of this kind.")
    ] = None,
    me: Me = None,
    full: Full = False,
    as_json: Json = False,
) -> None:
    """Wait for an unread message; print it and mark it read.

    Blocks (without polling) until one arrives.

    Example: kei message wait --from backend --timeout 10m
    """
    seconds = parse_duration(timeout) if timeout is not None else None
    reader = resolve_me(me)
    get_mailbox().wait(
        reader,
        timeout=seconds,
        sender=sender,
        kind=kind,
        deliver=lambda rec: _print_records([rec], as_json, full=full),
        session=settings.agent_session(),
    )


# ----------------------------------------------------------------------------- the bus
def _since(text: str) -> float:
    """A duration back from now (``2h``, ``7d``) or a date/time (local unless it says)."""
    try:
        return time.time() - parse_duration(text)
    except UsageError:
        pass
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"bad --since {text!r}: use a duration (30m, 24h, 7d) or a date (2026-11-21, "
            "2026-11-21T08:00)"
        ) from None
    return when.timestamp()  # naive means local time


@app.command("list")
def list_(
    limit: Annotated[int, option("list_limit", min=0)] = 40,
    sender: Annotated[str | None, option("from_filter")] = None,
    to: Annotated[str | None, option("to_filter")] = None,
    kind: Annotated[str | None, option("kind_filter")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="WHEN", help="Only newer: a duration (2h, 7d) or a date."),
    ] = None,
    full: Full = False,
    as_json: Json = False,
) -> None:
    """Print the last N messages on the bus, newest last.

    Example: kei message list --from backend --since 2h
    """
    verbs.recent(
        get_mailbox(),
        limit,
        sender=sender,
        to=to,
        kind=kind,
        since=_since(since) if since is not None else None,
        as_json=as_json,
        full=full,
    )


@app.command()
def tail(
    follow: Annotated[bool, option("follow")] = False,
    lines: Annotated[int, option("tail_lines", min=0)] = 10,
    full: Full = False,
    as_json: Json = False,
) -> None:
    """Print the last N messages; -f follows new ones.

    Ctrl-C stops following.

    Example: kei message tail -f
    """
    mb = get_mailbox()
    store = mb.store
    end = store.end()
    recs = mb.recent(lines)
    _print_records(recs, as_json, full=full)
    if not follow:
        return
    # Records appended between end() and recent() show up twice otherwise.
    shown = {r["id"] for r in recs}
    try:
        while True:
            store.wait_for_change(end, 3600.0)
            fresh: list[Record] = []
            for entry in store.scan(end):
                end = entry.end
                if entry.record is not None and entry.record["id"] not in shown:
                    fresh.append(entry.record)
            shown.clear()
            _print_records(fresh, as_json, full=full)
    except KeyboardInterrupt:
        return


# ----------------------------------------------------------------------------- who
def _channels(as_json: bool) -> None:
    verbs.who(get_mailbox(), as_json)


ChannelsJson = Annotated[bool, option("who_json")]


@app.command()
def channels(as_json: ChannelsJson = False) -> None:
    """List every known name, its unread count and live state.

    Names come from the bus and from registered sessions.

    Example: kei message channels
    """
    _channels(as_json)


@app.command()
def who(as_json: ChannelsJson = False) -> None:
    """Same as channels.

    Example: kei message who --json
    """
    _channels(as_json)


@app.command()
def names(as_json: ChannelsJson = False) -> None:
    """Same as channels.

    Example: kei message names
    """
    _channels(as_json)


@app.command()
def path() -> None:
    """Print the mailbox dir and where the bus is.

    Example: kei message path
    """
    store = get_mailbox().store
    out(f"mailbox: {paths.mailbox_dir()}")
    out(f"bus:     {store.location}")
    out(f"store:   {store.name}")
