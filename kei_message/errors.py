"""Every error kei-message raises, and the exit code each one means.

    KeiMessageError                      exit_code
    ├── NothingToReturn (LookupError)        1   pop on an empty inbox, wait timed out
    │   └── NotYet (TimeoutError)                send --wait ran out; carries the status
    ├── UsageError (ValueError)              2   bad usage or bad input
    │   ├── InvalidName                          a name breaking the rule of SPEC §5
    │   ├── BodyError                            empty or over KEI_MAILBOX_MAX_BODY
    │   └── UnknownMessage (LookupError)         no record with that id
    ├── MailboxUnavailable (OSError)         3   the mailbox cannot be used right now
    │   ├── MailboxLocked (TimeoutError)         lock wait ran out; carries the lock path
    │   ├── IdsExhausted                         the next id would pass records.ID_LIMIT
    │   └── UnsafeMailbox (PermissionError)      symlinks, foreign owner, loose mode bits
    ├── NoLiveSession                        4   no tmux pane known for that name
    ├── Rejected                             5   the target waits on a permission prompt
    └── Queued                               6   the target is busy; the message waits

Only ``cli.py`` and ``hooks.py`` turn these into output and exit codes.
"""

from __future__ import annotations


class KeiMessageError(Exception):
    """Base of every kei-message error."""

    exit_code = 2


class NothingToReturn(KeiMessageError, LookupError):
    exit_code = 1


class NotYet(NothingToReturn, TimeoutError):
    """``send --wait``: the time ran out before every reader got there; carries the status."""

    def __init__(self, message: str, status: dict[str, object]) -> None:
        self.status = status
        super().__init__(message)


class UsageError(KeiMessageError, ValueError):
    exit_code = 2


class InvalidName(UsageError):
    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"invalid name {name!r}: {reason}")


class BodyError(UsageError):
    pass


class UnknownMessage(UsageError, LookupError):
    def __init__(self, msg_id: object) -> None:
        self.msg_id = msg_id
        super().__init__(f"no message with id {msg_id}")


class MailboxUnavailable(KeiMessageError, OSError):
    exit_code = 3


class MailboxLocked(MailboxUnavailable, TimeoutError):
    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        super().__init__(
            f"mailbox is locked: waited {timeout:g}s for {path} "
            "(another kei process holds it; see `kei message doctor`)"
        )


class IdsExhausted(MailboxUnavailable):
    def __init__(self, where: str, last: int, limit: int) -> None:
        self.last = last
        super().__init__(
            f"ids are exhausted in {where}: it holds id {last} and no id above {limit} "
            "is ever assigned; nothing was written"
        )


class UnsafeMailbox(MailboxUnavailable, PermissionError):
    pass


class NoLiveSession(KeiMessageError):
    exit_code = 4


class Rejected(KeiMessageError):
    exit_code = 5


class Queued(KeiMessageError):
    exit_code = 6
