"""Gemini CLI's hook events, as ``kei-message-hook gemini-EVENT`` runs them (issue 18).

Measured with @google/gemini-cli 0.61.0: hooks under ``"hooks"`` in
``settings.json``, Claude Code's layout; stdin carries ``session_id``, ``cwd``,
``prompt`` (BeforeAgent) and ``stop_hook_active`` (AfterAgent). The
``additionalContext`` of SessionStart and BeforeAgent reaches the request
inside ``<hook_context>``; AfterAgent's ``{"decision":"block","reason":…}``
forces another turn. An idle Gemini session is reached through tmux (SPEC §8).
"""

# our event -> (Gemini's event name, answers like Stop)
EVENTS = {
    "gemini-session-start": ("SessionStart", False),
    "gemini-before-agent": ("BeforeAgent", False),
    "gemini-after-agent": ("AfterAgent", True),
}
