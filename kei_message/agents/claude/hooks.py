"""Claude Code's hook events (SPEC §7), as ``kei-message-hook EVENT`` runs them
(the machinery is ``kei_message.agents.hooks``, shared with Codex and Gemini CLI).

``user-prompt-submit`` / ``session-start``
    Inject the reader's unread as ``additionalContext``. ``user-prompt-submit``
    also ends a ``cancel`` hold on the name (``on_event``, issue 14).
``post-tool-batch`` (installed unless ``--no-midturn``; issue 14)
    The same after each round of tool calls (``PostToolBatch``): a session busy in
    a long turn reads its mail before its next request, not at the end of the turn.
    Same fast path: it runs after every tool round.
``stop`` (installed with ``--stop-delivery``)
    ``{"decision":"block","reason":HEAD,"hookSpecificOutput":{"hookEventName":
    "Stop","additionalContext":TEXT}}`` when unread wait, so Claude goes on with
    them (HEAD is TEXT's first line: 2.1.332 hands the model the reason twice,
    as feedback and as a "Stop hook blocking error", #12).
``wake``
    The asynchronous waiter (``waiter.run``, issue 9); not in ``EVENTS``: it is
    no synchronous event. Under ``claude -p`` it does not start (``print_mode``).
"""

from __future__ import annotations

from ... import procs

# our event -> (Claude Code's event name, answers like Stop)
EVENTS = {
    "user-prompt-submit": ("UserPromptSubmit", False),
    "session-start": ("SessionStart", False),
    "post-tool-batch": ("PostToolBatch", False),
    "stop": ("Stop", True),
}


def on_event(spec: object, name: str, payload: object) -> None:
    """Before delivery: the user's next prompt ends a ``cancel`` hold (``holds/NAME``),
    so the session's waiter may wake it again (issue 14). One unlink, no more."""
    if getattr(spec, "event", None) == "user-prompt-submit":
        from ... import paths
        from . import quick

        quick.release_hold(paths.mailbox_dir(), name)


def print_mode() -> bool:
    """Is the Claude Code above us a one-shot ``claude -p`` run?

    Nothing there can be woken (the run ends with its turn), and ``claude -p``
    waits for its async hooks before it exits (measured with 2.1.197: a waiter
    made every ``-p`` run last 30 s longer), so the waiter must not start.
    """
    try:
        pid = procs.claude_pid()
        return pid is not None and any(a in ("-p", "--print") for a in procs.cmdline(pid)[1:])
    except Exception:
        return False
