"""``kei message install --agent gemini``: hooks in ``~/.gemini/settings.json`` (issue 18).

======================  ==========================================
Gemini event            command
======================  ==========================================
SessionStart            ``kei-message-hook gemini-session-start``
BeforeAgent             ``kei-message-hook gemini-before-agent``
AfterAgent              ``kei-message-hook gemini-after-agent``
======================  ==========================================

Only ``"hooks"`` is touched; every other setting stays as it was. The merge,
the backup, the idempotence and the exact uninstall are ``kei_message.agents.install``'s.
"""

from __future__ import annotations

import os
from typing import Any

from .. import install as base

SYNC_TIMEOUT_MS = 10000  # Gemini CLI reads milliseconds; the hook gives up after 2 s
EVENTS = (
    ("SessionStart", "gemini-session-start"),
    ("BeforeAgent", "gemini-before-agent"),
    ("AfterAgent", "gemini-after-agent"),
)


def settings_path(home: str | None = None) -> str:
    return os.path.join(home or os.path.expanduser("~"), ".gemini", "settings.json")


def wanted_hooks(program: str) -> dict[str, list[Any]]:
    return {
        event: [
            {
                "hooks": [
                    {
                        "type": "command",
                        "command": base.hook_command(program, ours),
                        "timeout": SYNC_TIMEOUT_MS,
                    }
                ]
            }
        ]
        for event, ours in EVENTS
    }


def plan_install(*, home: str | None = None, program: str | None = None) -> base.Plan:
    return base.plan_hooks_file_install(
        settings_path(home),
        wanted_hooks(program or base.hook_program()),
        ["An idle Gemini CLI session is reached through tmux: `kei message send --live`."],
    )


def plan_uninstall(*, home: str | None = None) -> base.Plan:
    return base.plan_hooks_file_uninstall(settings_path(home))
