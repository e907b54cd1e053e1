"""OpenAI Codex CLI (issue 18): hooks in ``$CODEX_HOME/hooks.json``, woken by ``codex queue``."""
