"""Google Gemini CLI (issue 18): hooks under ``"hooks"`` in ``~/.gemini/settings.json``."""
