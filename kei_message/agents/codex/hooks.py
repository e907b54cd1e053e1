"""Codex's hook events, as ``kei-message-hook codex-EVENT`` runs them (issue 18).

Measured with @openai/codex 0.169.0: Codex reads Claude Code's hook layout
from ``$CODEX_HOME/hooks.json`` and sends the same stdin (``session_id``,
``turn_id``, ``cwd``, ``prompt``, ``stop_hook_active``). ``additionalContext``
reaches the model as a ``developer`` message; Stop's
``{"decision":"block","reason":…}`` starts one more turn. Codex does not run
``async`` hooks, so the idle-session waiter is a detached process that
SessionStart and Stop start (``kei_message.agents.codex.waiter``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# our event -> (Codex's event name, answers like Stop)
EVENTS = {
    "codex-session-start": ("SessionStart", False),
    "codex-user-prompt-submit": ("UserPromptSubmit", False),
    "codex-stop": ("Stop", True),
}
# the events that (re)arm the waiter: a session starts idle, and is idle after a turn
ARMS = frozenset({"codex-session-start", "codex-stop"})


def on_event(spec: Any, name: str, payload: dict[str, Any]) -> None:
    """Arm the idle-session waiter when the session is interactive (not ``codex exec``)."""
    if spec.event in ARMS:
        from .waiter import arm

        arm(name, payload)
