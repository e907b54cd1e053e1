"""``kei message install --agent codex``: hooks in ``$CODEX_HOME/hooks.json`` (issue 18).

======================  ==========================================
Codex event             command
======================  ==========================================
SessionStart            ``kei-message-hook codex-session-start``
UserPromptSubmit        ``kei-message-hook codex-user-prompt-submit``
Stop                    ``kei-message-hook codex-stop``
======================  ==========================================

``$CODEX_HOME`` defaults to ``~/.codex``. The merge, the backup, the
idempotence and the exact uninstall are ``kei_message.agents.install``'s.

Codex runs a hook only once the user has trusted it: until then it is
skipped without a word. The installer says so (``TRUST_NOTE``).
"""

from __future__ import annotations

import os
from typing import Any

from .. import install as base

SYNC_TIMEOUT = 10  # seconds (Codex reads seconds); the hook gives up after 2
EVENTS = (
    ("SessionStart", "codex-session-start"),
    ("UserPromptSubmit", "codex-user-prompt-submit"),
    ("Stop", "codex-stop"),
)
TRUST_NOTE = (
    "Codex runs new hooks only after you trust them: start `codex` once and answer "
    '"Hooks need review" (it records the trust in config.toml), or run Codex with '
    "--dangerously-bypass-hook-trust. Until then Codex skips them silently."
)


def codex_home(home: str | None = None) -> str:
    """``$CODEX_HOME``, else ``~/.codex``."""
    env = os.environ.get("CODEX_HOME")
    if env and home is None:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(home or os.path.expanduser("~"), ".codex")


def hooks_path(home: str | None = None) -> str:
    return os.path.join(codex_home(home), "hooks.json")


def wanted_hooks(program: str) -> dict[str, list[Any]]:
    return {
        event: [
            {
                "hooks": [
                    {
                        "type": "command",
                        "command": base.hook_command(program, ours),
                        "timeout": SYNC_TIMEOUT,
                    }
                ]
            }
        ]
        for event, ours in EVENTS
    }


def plan_install(*, home: str | None = None, program: str | None = None) -> base.Plan:
    wanted = wanted_hooks(program or base.hook_program())
    return base.plan_hooks_file_install(hooks_path(home), wanted, [TRUST_NOTE])


def plan_uninstall(*, home: str | None = None) -> base.Plan:
    return base.plan_hooks_file_uninstall(hooks_path(home))
