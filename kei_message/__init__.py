"""kei-message: a mailbox that lets Claude Code sessions talk to each other.

Re-exports only; imported lazily so the hook's start-up stays lean.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing import ...`: typing costs the hook ~8 ms (issue 6)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "KeiMessageError",
    "Mailbox",
    "__version__",
    "open_store",
]

__version__ = "0.1.0"

_WHERE = {
    "KeiMessageError": "errors",
    "Mailbox": "mailbox",
    "open_store": "stores",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
