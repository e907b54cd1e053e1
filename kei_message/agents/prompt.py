"""Give an agent session its unread: deliver the prompt text, then commit.

The text itself (``render.prompt``) is the same for every way in: the hooks'
``additionalContext``, the Stop hook's ``reason``, the wake waiter's output and
live delivery's paste, for Claude Code, Codex and Gemini CLI alike (issue 18;
only the reply hint differs). It stays within ``KEI_MAILBOX_HOOK_BUDGET`` characters;
what does not fit stays unread for the next turn.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import render, settings
from ..mailbox import Mailbox


def take(
    mailbox: Mailbox,
    reader: str,
    emit: Callable[[str], None],
    *,
    limit: int | None = None,
    agent: str = "claude",
    how: str = "hook",
    session: str | None = None,
) -> int:
    """Consume what fits of ``reader``'s unread: ``emit`` the text, then move the cursor.

    Returns how many messages went out (0: nothing emitted, nothing changed).
    ``how`` and ``session`` go into their receipts (SPEC §12); ``session`` also
    holds back mail for another session of ``reader`` (SPEC §11).
    """
    with mailbox.consuming(reader, how=how, session=session) as batch:
        if not batch.messages:
            return 0
        text, n = render.prompt(reader, batch.records, limit or settings.hook_budget(), agent=agent)
        emit(text)
        batch.deliver(batch.messages[:n])
    return n
