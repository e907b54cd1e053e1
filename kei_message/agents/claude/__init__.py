"""Claude Code: its hook events (``hooks``: the table, and ``print_mode`` for the
``wake`` event), the hooks' fast path (``quick``), the asyncRewake waiter
(``waiter``) and ``kei message install`` (``install``: settings.json, the /msg
skill, the drop-in). The machinery they share with Codex and Gemini CLI sits
one level up, in ``kei_message.agents``.

Nothing is imported here: the hooks keep their import path lean (issue 6).
"""
