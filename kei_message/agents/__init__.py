"""One wing per agent CLI that kei-message wires into: ``claude/`` (Claude Code),
``codex/`` (OpenAI Codex CLI) and ``gemini/`` (Google Gemini CLI; issue 18).

Each wing holds what is particular to its agent: its hook event table, its
config file and installer, its waiter. What they share sits here, beside
them, so no wing imports another's internals:

- ``hooks``: ``kei-message-hook EVENT``, the event machinery for every agent
  (fail open, deliver then commit, the fast path, the Stop-like answer);
- ``prompt``: ``take``, the text (``render.prompt``) delivered then committed;
- ``sessions``: registering a session (and which agent runs it);
- ``waiters``: the one-waiter-per-session files;
- ``install``: merging our hooks into a JSON settings file and taking exactly
  them out again;
- ``hooklog``: the bounded log a hook fails into.

Nothing is imported here: the hooks start here before every prompt.
"""

AGENTS = ("claude", "codex", "gemini")
