"""The agent CLIs kei-message wires into, one package each (SPEC §13, issue 18).

Claude Code's hooks, waiter and installer live in the modules the re-layout
(issue 13) moves into ``agents/claude/``; ``agents/codex/`` and
``agents/gemini/`` hold what differs for OpenAI Codex CLI and Google Gemini
CLI: their event tables, their config files, and Codex's waiter. The text,
budget, cursor and framing are Claude Code's (``kei_message.inject``,
``kei_message.hooks``), shared, never copied.

Nothing here is imported on a hook's path but the small ``hooks`` table of
the agent whose hook runs.
"""

AGENTS = ("claude", "codex", "gemini")
