"""One wing per agent CLI that kei-message wires into: ``claude/`` (Claude Code).

Each wing holds what is particular to its agent: its hooks and their fast
path, its waiter, how its sessions register, its installer. Codex and Gemini
join here beside ``claude/``. Nothing is imported here: the hooks start here
before every prompt.
"""
