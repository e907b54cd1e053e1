"""What ``kei message doctor`` found, and what ``--repair`` did about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Finding:
    """One problem: what, where, how to fix it; and what ``--repair`` did about it."""

    area: str  # permissions, bus, cursor, lock, leftover, hooks
    where: str
    problem: str
    fix: str
    repairable: bool = False
    repaired: str | None = None  # what repair did, when it did it
    failed: str | None = None  # why repair could not do it


@dataclass
class Report:
    root: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: str | None = None  # a repair hit a lock timeout or an I/O error

    @property
    def remaining(self) -> list[Finding]:
        return [f for f in self.findings if f.repaired is None]

    @property
    def exit_code(self) -> int:
        """0 healthy or all repaired; 1 problems remain; 3 the mailbox was unavailable."""
        if self.unavailable:
            return 3
        return 1 if self.remaining else 0

    def add(self, *args: Any, **kwargs: Any) -> Finding:
        f = Finding(*args, **kwargs)
        self.findings.append(f)
        return f
