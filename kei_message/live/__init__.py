"""Live delivery into running Claude Code sessions through tmux (SPEC §8).

``tmux`` drives tmux, ``screen`` reads a pane's state, ``registry`` knows which
pane is whose, ``deliver`` types messages in, ``watch`` keeps delivering.
Imported lazily: the hooks never pay for it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["deliver_live", "states"]


def __getattr__(name: str) -> Any:
    if name == "deliver_live":
        from .deliver import deliver_live

        return deliver_live
    if name == "states":
        from .status import states

        return states
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
