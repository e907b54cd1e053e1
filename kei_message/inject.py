"""The text a hook (or live delivery) gives Claude: a reader's unread, within a budget.

It states facts: who wrote to whom, kind, id, time and body, oldest first,
then how to reply. It stays within ``KEI_MAILBOX_HOOK_BUDGET`` characters
(default 9,000). Messages that do not fit stay unread and the text says how
many more wait; a single message longer than the budget is cut, with a note
naming ``kei message show ID``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .mailbox import Mailbox, Message
from .records import Record
from .render import neutralise

DEFAULT_BUDGET = 9000
_SLACK = 400  # room kept for the header and the closing lines


def budget() -> int:
    raw = os.environ.get("KEI_MAILBOX_HOOK_BUDGET", "")
    return max(1000, int(raw)) if raw.isdigit() else DEFAULT_BUDGET


def format_message(rec: Record) -> str:
    kind = f" {rec['kind']}" if rec.get("kind") else ""
    reply = f" (reply to #{rec['reply_to']})" if rec.get("reply_to") else ""
    who = f"{neutralise(rec['from'], multiline=False)} -> {neutralise(rec['to'], multiline=False)}"
    ts = neutralise(str(rec.get("ts", "")), multiline=False)
    return f"--- #{rec['id']}{kind} from {who} at {ts}{reply}\n{neutralise(rec['body'])}\n"


def compose(
    reader: str, messages: list[Message], limit: int, *, agent: str = "claude"
) -> tuple[str, list[Message]]:
    """The text for as many of ``messages`` as fit in ``limit``; and which went in.

    ``agent`` is the CLI that reads it: only Claude Code has the ``/msg`` skill,
    Codex and Gemini CLI are told the command (issue 18).
    """
    slack = _SLACK
    while True:
        text, taken = _compose(reader, messages, limit - slack, agent)
        # Long names make the header and reply lines outgrow the slack (#4): give
        # the messages less room until the whole text fits.
        if len(text) <= limit or slack >= limit:
            return text, taken
        slack += len(text) - limit


def _compose(
    reader: str, messages: list[Message], room: int, agent: str = "claude"
) -> tuple[str, list[Message]]:
    chosen: list[str] = []
    taken: list[Message] = []
    for m in messages:
        part = format_message(m.record)
        if len(part) > room:
            if taken:
                break
            # one message longer than the whole budget: cut it, and say where the rest is
            note = (
                f"\n[cut: {len(m.record['body'])} characters in all; read it whole with "
                f"`kei message show {m.record['id']}`]\n"
            )
            part = part[: max(0, room - len(note))] + note
        chosen.append(part)
        taken.append(m)
        room -= len(part)
    senders = sorted({m.record["from"] for m in taken})
    n = len(taken)
    head = f"kei mailbox: {n} new message{'s' if n != 1 else ''} for {reader}, oldest first.\n"
    how = "/msg" if agent == "claude" else "`kei message send"
    end = "" if agent == "claude" else "`"
    tail = "\n" + "".join(
        f"Reply with {how} @{neutralise(s, multiline=False)} <text>{end}.\n" for s in senders[:5]
    )
    more = len(messages) - n
    if more:
        tail += (
            f"{more} more message{'s' if more != 1 else ''} for {reader} "
            f"wait{'s' if more == 1 else ''} in the mailbox (next turn, or `kei message inbox`).\n"
        )
    return head + "\n".join(chosen) + tail, taken


def take(
    mailbox: Mailbox,
    reader: str,
    emit: Callable[[str], None],
    *,
    limit: int | None = None,
    agent: str = "claude",
) -> int:
    """Consume what fits of ``reader``'s unread: ``emit`` the text, then move the cursor.

    Returns how many messages went out (0: nothing emitted, nothing changed).
    """
    with mailbox.consuming(reader) as batch:
        if not batch.messages:
            return 0
        text, taken = compose(reader, batch.messages, limit or budget(), agent=agent)
        emit(text)
        batch.deliver(taken)
    return len(taken)
