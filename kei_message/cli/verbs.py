"""One set of verbs for every parser: the option definitions and what the commands do.

Both parsers of the everyday commands come here: the typer app (``messages``,
``live``) builds its ``typer.Option``s from ``OPTIONS``, and the typer-free
fast path (``fast``) parses the same ``OPTIONS`` (``FAST`` picks which of them
it takes per command; anything else goes to typer). After parsing, both call
the same verb: the address split, the ``-> sent to`` line and the ``--live``
outcome are written once, here. No typer: the fast path must not pay for it
(issue 6).
"""

from __future__ import annotations

import time

from .. import names
from ..errors import InvalidName, NoLiveSession, NotYet, Queued, Rejected, UsageError
from ..lean import ntuple
from ..mailbox import Mailbox
from ..records import Record, check_kind
from .output import out, out_json, print_records, unknown_note, warn

TYPE_CHECKING = False  # typing costs every command ~7 ms (issue 19)
if TYPE_CHECKING:
    from typing import Any, NamedTuple

    class Opt(NamedTuple):
        flags: tuple[str, ...]
        metavar: str | None
        help: str

else:
    Opt = ntuple("Opt", ["flags", "metavar", "help"], module=__name__)
Opt.__doc__ = "One command-line option: its spellings, the value's metavar (None: a flag), help."


_DEFAULT_ME = "(default: KEI_MAILBOX_ME, else the current dir's name)."

OPTIONS: dict[str, Opt] = {
    "to": Opt(
        ("--to",), "NAME", "Recipient (default: a leading @NAME or 'all' argument, else all)."
    ),
    "sender": Opt(("--from",), "NAME", f"Send as NAME {_DEFAULT_ME}"),
    "me": Opt(("--me",), "NAME", f"Read as NAME {_DEFAULT_ME}"),
    "kind": Opt(
        ("--kind",),
        "KIND",
        "TASK, DONE, BLOCKED or QUESTION (default: from a leading 'TASK:' etc. in the text).",
    ),
    "as_json": Opt(("--json",), None, "Print records as stored, one JSON object per line."),
    "full": Opt(
        ("--full",),
        None,
        "Print long bodies whole (on a terminal, bodies over 20 lines or 2,000 characters "
        "are cut; `show ID` prints one whole).",
    ),
    "who_json": Opt(("--json",), None, "One JSON object per name."),
    "peek": Opt(("--peek",), None, "Do not mark anything read."),
    "count": Opt(("--count",), None, "Print the number of unread only."),
    "clear": Opt(("--clear",), None, "Mark all unread read; print how many."),
    "show_all": Opt(("--all",), None, "Read messages too: the newest --limit; marks nothing."),
    "inbox_limit": Opt(("--limit", "-n"), "N", "How many with --all."),
    "list_limit": Opt(("--limit", "-n"), "N", "How many of the newest."),
    "follow": Opt(("--follow", "-f"), None, "Keep printing new messages as they come."),
    "tail_lines": Opt(("-n", "--lines"), "N", "How many of the newest first."),
    "from_filter": Opt(("--from",), "NAME", "Only from NAME."),
    "to_filter": Opt(("--to",), "NAME", "Only to NAME (or all)."),
    "kind_filter": Opt(("--kind",), "KIND", "Only of this kind."),
}

# The options each command takes on the fast path (a subset of its typer options).
FAST: dict[str, tuple[str, ...]] = {
    "send": ("to", "sender", "kind", "as_json"),
    "inbox": ("me", "peek", "count", "clear", "full", "as_json"),
    "list": ("list_limit", "from_filter", "to_filter", "kind_filter", "full", "as_json"),
    "who": ("who_json",),
    "show": ("as_json",),
    "reply": ("sender", "kind", "as_json"),
}


def msg_id(text: str) -> int:
    """A message id as typed: ``1795248002625564`` or ``#1795248002625564``."""
    raw = text.strip().lstrip("#")
    if not raw.isdigit():
        raise UsageError(f"bad message id {text!r}: use the number shown as #ID")
    return int(raw)


# ----------------------------------------------------------------------------- send
def split_address(words: list[str]) -> tuple[str | None, list[str]]:
    """A leading ``@NAME`` or ``all`` argument is the recipient; nothing later is."""
    if words and (words[0] == "all" or words[0].startswith("@")):
        return words[0], words[1:]
    return None, words


def recipient(to: str | None, words: list[str]) -> tuple[str, list[str]]:
    """``--to NAME``, else a leading ``@NAME``/``all`` word, else all; and the words left.

    ``NAME/SESSION`` (SPEC §11) comes back as it is, the name checked; ``send``
    resolves the session prefix."""
    if to is None:
        address, words = split_address(words)
        if not address:
            return names.BROADCAST, words
        to = address
    name, slash, prefix = to.partition("/")
    name = names.validate(name, allow_all=True)
    if slash and name == names.BROADCAST:
        raise InvalidName(f"all/{prefix}", "'all' has no sessions: use @NAME/SESSION")
    return (f"{name}/{prefix}" if slash else name), words


def sent_line(rec: Record, as_json: bool) -> None:
    if as_json:
        out_json(rec)
        return
    to = rec["to"]
    if rec.get("to_session"):
        to = f"{to}/{str(rec['to_session'])[:8]}"
    out(f"-> sent to {to!r} (from {rec['from']!r}) #{rec['id']}")


def send(
    mb: Mailbox,
    body: str,
    *,
    to: str,
    sender: str,
    kind: str | None = None,
    reply_to: int | None = None,
    as_json: bool = False,
) -> Record:
    """Send, print the sent line, and the notes: a name never seen, a name shared by
    several live sessions (SPEC §11: nothing is silent).

    ``to``: ``NAME``, ``all`` or ``NAME/SESSION`` (a session id prefix)."""
    to, _, prefix = to.partition("/")
    session = mb.resolve_session(to, prefix) if prefix else None
    known = mb.known_names() if to != names.BROADCAST else {}
    rec = mb.send(body, to=to, sender=sender, kind=kind, reply_to=reply_to, to_session=session)
    sent_line(rec, as_json)
    unknown_note(mb, to, known)
    if session is None and to != names.BROADCAST:
        shared = mb.sessions_of(to)
        if len(shared) >= 2:
            ids = [str(s["session_id"])[:8] for s in shared]
            warn(
                f"note: {len(shared)} live sessions share {to!r} "
                f"({', '.join(ids)}): the first to read gets it; "
                f"to reach one, send to @{to}/{ids[0]}"
            )
    return rec


def wait_for(
    mb: Mailbox, rec: Record, state: str, timeout: float, as_json: bool, since: Any = None
) -> None:
    """``send --wait``: block until every reader of ``rec`` got there; print the status.

    Out of time: the status so far on stdout, one line on stderr, exit 1 (NotYet)."""
    from .. import render

    try:
        status = mb.wait_until(rec["id"], state, timeout, since=since)
    except NotYet as exc:
        _print_status(exc.status, as_json, render)
        raise
    _print_status(status, as_json, render)


def _print_status(status: dict[str, Any], as_json: bool, render: Any) -> None:
    if as_json:
        out_json(status)
    else:
        out("\n".join(render.status_lines(status)))


WAITER_GRACE = 2.0  # seconds an armed waiter gets to deliver before `send --live` types


def prepare_live(mb: Mailbox, to: str) -> bool:
    """Before ``send --live`` appends: is a wake waiter armed for ``to``? (SPEC §8, #14)

    The waiter and typing are one delivery system. When ``to``'s pane shows a
    draft, the waiter must not wake the session on top of the user's unsent
    text: ``to`` is put on hold (before the record exists, so the waiter cannot
    have taken it yet) until its next prompt, which brings the message in.
    """
    from ..agents.claude import waiter  # only with --live (issue 6)

    if to not in waiter.armed_names(mb.store):
        return False
    try:
        from ..live.deliver import state_of
    except ImportError:
        return True
    if state_of(mb, to) == "draft":
        waiter.hold(to, waiter.HOLD_ALL)  # `deliver_live` narrows it to the record
    return True


def _delivered(mb: Mailbox, to: str, rec: Record) -> bool:
    return all(r["id"] != rec["id"] for r in mb.unread(to))


def deliver_live(
    mb: Mailbox,
    to: str,
    session: str | None = None,
    rec: Record | None = None,
    *,
    armed: bool = False,
) -> int:
    """After the record is in the bus: deliver it into NAME's session now (SPEC §8).

    ``session``: into that session's pane only (``@NAME/SESSION``, #16). With a
    wake waiter ``armed`` for NAME, the waiter gets ``WAITER_GRACE`` to deliver
    first; else NAME's unread are typed into its idle tmux pane. The line printed
    says which path delivered it. Returns the exit code: 0 delivered; 4, 5 or 6
    when it is still undelivered on return (said on stderr). Not a failure of the
    send: the record is in the bus either way.
    """
    from ..agents.claude import waiter

    if rec is not None and waiter.hold_mark(to) == waiter.HOLD_ALL:
        waiter.hold(to, rec["id"])  # mail newer than this one may wake it again
    mark = waiter.hold_mark(to)
    if rec is not None and mark is not None and mark < rec["id"]:
        waiter.release(to)  # `cancel` held what waited; newer mail ends the hold
    if armed and rec is not None and waiter.hold_mark(to) is None:
        deadline = time.monotonic() + WAITER_GRACE
        while time.monotonic() < deadline:
            if _delivered(mb, to, rec):
                out(f"-> delivered by the waiter: {to}'s session was woken with it")
                return 0
            time.sleep(0.05)
    try:
        from ..live.deliver import deliver_live as type_in  # only with --live (issue 6)
    except ImportError as exc:
        raise NoLiveSession(
            f"live delivery is not available here ({exc}); the message waits in the mailbox"
        ) from exc
    try:
        typed = type_in(mb, to, session)
    except (NoLiveSession, Rejected, Queued) as exc:
        if rec is not None and _delivered(mb, to, rec):
            out(f"-> delivered by the waiter: {to}'s session was woken with it")
            return 0
        if waiter.hold_mark(to) is not None:
            warn(
                f"note: {exc}; {to} is on hold (its prompt holds unsent text, or `cancel` "
                "stopped it): the message comes with its next prompt"
            )
        else:
            warn(f"note: {exc}")
        return exc.exit_code
    if typed:
        out(f"-> typed {typed} message{'s' if typed != 1 else ''} into {to}'s pane")
        return 0
    if rec is None or _delivered(mb, to, rec):
        how = "by the waiter" if armed else f"by {to}'s hooks"
        out(f"-> delivered {how}: nothing was left to type into {to}'s pane")
        return 0
    warn(f"note: nothing was typed into {to}'s pane; the message waits in the mailbox")
    return Queued.exit_code


# ----------------------------------------------------------------------------- reading
def recent(
    mb: Mailbox,
    limit: int,
    *,
    sender: str | None,
    to: str | None,
    kind: str | None,
    since: float | None = None,
    as_json: bool,
    full: bool = False,
) -> None:
    """``list``: the newest ``limit`` records matching the filters."""
    recs = mb.recent(
        limit,
        sender=names.validate(sender, allow_all=True) if sender is not None else None,
        to=names.validate(to, allow_all=True) if to is not None else None,
        kind=check_kind(kind) if kind is not None else None,
        since=since,
    )
    states = {rid: st["state"] for rid, st in mb.states(recs).items()}
    print_records(recs, as_json, states, full=full)


def who(mb: Mailbox, as_json: bool) -> None:
    """``who``/``channels``/``names``."""
    from ..presence import who as rows  # its wings (agents, live): only for who (issue 6)
    from .output import print_who

    print_who(rows(mb), as_json)


def parse_opts(args: list[str], keys: tuple[str, ...]) -> tuple[list[str], dict[str, Any]] | None:
    """Click-like parsing of ``args`` against ``OPTIONS[k] for k in keys`` (the fast path).

    Returns the words and ``{key: value}`` (True for a flag); None for anything
    it does not know, which then goes to typer: ``-``, ``-h``, another option, a
    missing value, a negative number, an option given twice.
    """
    spelled = {flag: key for key in keys for flag in OPTIONS[key].flags}
    words: list[str] = []
    opts: dict[str, Any] = {}
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
        flag, eq, value = tok.partition("=")
        key = spelled.get(flag)
        if key is None or key in opts:
            return None  # unknown, or given twice (which one wins is click's business)
        if OPTIONS[key].metavar is None:
            if eq:
                return None
            opts[key] = True
            continue
        if not eq:
            if i >= len(args) or args[i].startswith("-"):
                return None
            value = args[i]
            i += 1
        opts[key] = value
    return words, opts
