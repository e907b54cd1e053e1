"""Agent hook events: stdin in, one JSON object out, fail open (SPEC §7).

``kei-message-hook EVENT`` (and ``kei message hook EVENT``) runs every agent
CLI's hooks. Each agent's table maps our EVENT to its own event name and says
whether it answers like Stop (``EventSpec``): Claude Code's in
``agents.claude.hooks`` (``user-prompt-submit``, ``session-start``,
``post-tool-batch``, ``stop``, and ``wake``, its asynchronous waiter), Codex's in
``agents.codex.hooks`` (``codex-…``), Gemini CLI's in ``agents.gemini.hooks``
(``gemini-…``, issue 18).

The synchronous events:

context events (SessionStart, UserPromptSubmit, BeforeAgent)
    Register the session, then inject the reader's unread as
    ``{"hookSpecificOutput":{"hookEventName":...,"additionalContext":TEXT}}``.
events that answer like Stop (Claude Code's ``stop``, Codex Stop, Gemini AfterAgent)
    Register, then ``{"decision":"block",…}`` when unread wait, so the agent
    goes on with them. Claude Code's: ``"reason":HEAD`` and the text in
    ``additionalContext`` (HEAD is TEXT's first line: 2.1.332 hands the model
    the reason twice, as feedback and as a "Stop hook blocking error", #12);
    Codex's and Gemini's: ``"reason":TEXT`` (they hand it over once).
    Never twice in a row: see ``stop_hook_active`` below.

Rules every synchronous event keeps:

- ``KEI_MAILBOX_BYPASS=1``: exit 0 at once, print nothing, change nothing.
- Identity: ``KEI_MAILBOX_ME``, else the basename of the input's ``cwd``.
- Nothing unread: print nothing at all.
- Deliver, then commit: the JSON is written to stdout in one ``write`` before
  the cursor moves (``prompt.take``); a crash in between re-delivers, never loses.
- Exit 0 whatever happens, within 2 s: the lock wait is capped and a timer
  ends the process silently. On any failure nothing is printed and one line is
  appended to ``hook.log`` in the mailbox dir (``hooklog``).

The import path is kept lean: this runs before every prompt (issue 6). At
import time only ``os``, ``sys`` and our modules that need nothing more
(settings, names, paths, procs, stores.layout, claude.quick, sessions, hooklog);
the mailbox and everything it brings (orjson, portalocker, dataclasses,
typing) are imported inside the functions, once ``quick`` could not answer.
"""

from __future__ import annotations

import os
import sys

from .. import names, paths, settings
from ..errors import MailboxUnavailable
from . import hooklog
from .claude import quick
from .hooklog import describe as _describe
from .hooklog import log_failure
from .sessions import register, session_info

TYPE_CHECKING = False  # not `from typing import Any`: typing costs ~8 ms here (issue 6)
if TYPE_CHECKING:
    from typing import Any

USAGE = (
    "usage: kei-message-hook {user-prompt-submit|session-start|post-tool-batch|stop|wake|"
    "codex-session-start|codex-user-prompt-submit|codex-stop|"
    "gemini-session-start|gemini-before-agent|gemini-after-agent} < HOOK_INPUT_JSON\n"
)

HARD_STOP = 1.5  # seconds from start; with interpreter start-up, well inside SPEC's 2 s
LOCK_WAIT = 0.8  # the longest a hook waits for a reader lock held elsewhere
MAX_INPUT = 16 << 20


def main(argv: list[str] | None = None) -> None:
    """Console script ``kei-message-hook EVENT``; exits with the code ``run`` gives."""
    sys.exit(run(sys.argv[1:] if argv is None else argv))


def run(args: list[str]) -> int:
    """Handle one hook event; the process exit code (always 0 but for ``wake``)."""
    if settings.bypass():
        return 0
    spec = event_spec(args[0]) if len(args) == 1 else None
    if spec is None and args != ["wake"]:
        if args and args[0] in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        # A typo in a hand-written hook command must not stay silent (#17), and a
        # hook must never break a session: one stderr line and one hook.log line
        # always (`doctor` also names unknown events in settings.json); exit 2 only
        # when run by hand (stdin a terminal), since under Claude Code (stdin the
        # hook's JSON) exit 2 would block the prompt.
        _stderr(f"kei message: error: unknown hook event {' '.join(args)!r}; {USAGE}")
        log_failure(f"unknown hook event {args!r}")
        return 2 if _stdin_is_terminal() else 0
    hooklog.event = args[0]
    if spec is None:
        return _wake()
    _arm_hard_stop()
    try:
        payload = read_payload()
        _sync_event(spec, payload)
    except BaseException as exc:  # fail open: the agent must never see a hook error
        if isinstance(exc, SystemExit) and not exc.code:
            return 0
        log_failure(_describe(exc))
        if settings.debug():
            import traceback  # only when debugging a failure

            traceback.print_exc()
    return 0


# --------------------------------------------------------------------------- events
class EventSpec:
    """One synchronous event: which agent CLI runs it, its own event name, and whether
    it answers like Stop (``{"decision":"block","reason":…}``) rather than with context."""

    __slots__ = ("agent", "blocks", "event", "hook_name", "on_event")

    def __init__(
        self, event: str, agent: str, hook_name: str, blocks: bool, on_event: Any = None
    ) -> None:
        self.event = event
        self.agent = agent
        self.hook_name = hook_name
        self.blocks = blocks
        # called with (spec, name, payload) before anything is delivered; failures are logged
        self.on_event = on_event


def _stdin_is_terminal() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False


def event_spec(event: str) -> EventSpec | None:
    """The spec of a synchronous hook EVENT; None for ``wake`` and unknown events."""
    agent = event.partition("-")[0]
    if agent == "codex":
        from .codex import hooks as table
    elif agent == "gemini":
        from .gemini import hooks as table  # type: ignore[no-redef]
    else:
        from .claude import hooks as table  # type: ignore[no-redef]

        agent = "claude"
    row = table.EVENTS.get(event)
    if row is None:
        return None
    return EventSpec(event, agent, row[0], row[1], getattr(table, "on_event", None))


def _sync_event(spec: EventSpec, payload: dict[str, Any]) -> None:
    cwd = payload.get("cwd")
    name = names.resolve(None, cwd=cwd if isinstance(cwd, str) else None)
    if spec.on_event is not None:
        try:
            spec.on_event(spec, name, payload)
        except Exception as exc:  # e.g. arming Codex's waiter: a courtesy, delivery matters more
            log_failure(f"{spec.event}: {_describe(exc)}")
    if _nothing_unread(name, payload, spec.agent):
        return
    # The full path, lazily (see the module docstring).
    from .. import mailbox as library
    from ..mailbox import Mailbox

    # only the mailbox and the Redis store warn: logging when they do (#19)
    library.before_warning = hooklog.log_library_warnings
    if not settings.jsonl_store():
        from ..stores import redis as redis_store

        redis_store.before_warning = hooklog.log_library_warnings
    from .prompt import take

    # A hook must not sit behind a lock for long: cap the wait (SPEC §7's 2 s).
    mailbox = Mailbox(lock_timeout=min(LOCK_WAIT, settings.lock_timeout()))
    try:
        register(mailbox.store, name, payload, spec.agent)
    except MailboxUnavailable:
        raise  # delivery would fail the same way: one log line, not two
    except Exception as exc:  # registration is a courtesy to `who`; delivery matters more
        log_failure(f"registering the session: {_describe(exc)}")

    if spec.blocks and payload.get("stop_hook_active") is True:
        # Claude is already going on because a Stop hook blocked. Blocking again
        # could chain forever (two sessions answering each other); what arrived
        # meanwhile waits for the next prompt or the wake hook.
        return

    hook_name = spec.hook_name

    def emit(text: str) -> None:
        if spec.blocks and spec.agent == "claude":
            # The bodies go in additionalContext, once: Claude Code 2.1.332 puts the
            # reason into the next request twice (the user-role "Stop hook feedback" and
            # a system "Stop hook blocking error"); 2.1.197 and 2.1.332 both carry a
            # Stop hook's additionalContext once (#12).
            head = text.split("\n", 1)[0]
            out: dict[str, Any] = {
                "decision": "block",
                "reason": head,
                "hookSpecificOutput": {"hookEventName": hook_name, "additionalContext": text},
            }
        elif spec.blocks:
            # Codex Stop and Gemini AfterAgent hand the reason to the model once (#18)
            out = {"decision": "block", "reason": text}
        else:
            out = {"hookSpecificOutput": {"hookEventName": hook_name, "additionalContext": text}}
        data = _dumps(out)
        # From here the hard stop waits: it must not cut the JSON in half, and
        # what is left (committing the cursor, under the lock we hold) is quick.
        _hold_hard_stop()
        write_stdout(data)

    session = payload.get("session_id")
    # the receipt's way (SPEC §12): a blocking Stop/AfterAgent hook is "stop";
    # post-tool-batch is mid-turn delivery (#14)
    how = "stop" if spec.blocks else "midturn" if spec.event == "post-tool-batch" else "hook"
    take(
        mailbox,
        name,
        emit,
        agent=spec.agent,
        how=how,
        session=session if isinstance(session, str) and session else None,
    )


def _nothing_unread(name: str, payload: dict[str, Any], agent: str) -> bool:
    """The usual case, nothing unread: register and stop, without loading the mailbox.

    ``quick.nothing_unread`` answers with ``os`` alone and only when it is sure
    (issue 6: the hook runs before every prompt); otherwise the full path runs.
    """
    root = paths.mailbox_dir()
    if not quick.nothing_unread(root, name):
        return False
    try:
        info = session_info(name, payload, agent)
        if info["session_id"]:
            quick.register(root, info)
    except Exception as exc:  # registration is a courtesy to `who`
        if isinstance(exc, MailboxUnavailable):
            raise  # one log line, as on the full path
        log_failure(f"registering the session: {_describe(exc)}")
    return True


def _wake() -> int:
    """Claude Code's asynchronous ``wake`` event: hand the waiter its input; it prints
    and picks the exit code itself (0 or 2)."""
    from .claude.hooks import print_mode

    if print_mode():
        return 0
    try:
        payload, raw_ok = read_payload(), True
    except Exception:
        payload, raw_ok = {}, False
    if _armed_already(payload):
        return 0  # the usual case on UserPromptSubmit and PreToolUse (issue 14)
    try:
        from .claude import waiter  # the mailbox and all: only for the waiter

        code = waiter.run(payload, raw_ok)
        return code if code in (0, 2) else 0
    except BaseException as exc:
        if isinstance(exc, SystemExit) and exc.code in (0, 2, None):
            return int(exc.code or 0)
        log_failure(_describe(exc))
        return 0  # never 2 without a message: that would wake the session for nothing


def _armed_already(payload: dict[str, Any]) -> bool:
    """A waiter holds this session's lock: leave before importing the mailbox.

    The waiter is registered on UserPromptSubmit and PreToolUse too (issue 14),
    so most starts find one already armed. Only ``os`` and ``fcntl``; anything
    unclear says False and the waiter itself decides.
    """
    session = payload.get("session_id")
    if not isinstance(session, str) or not session:
        return False
    try:
        import fcntl

        from ..stores import layout

        path = os.path.join(paths.mailbox_dir(), layout.WAITERS, layout.waiter_file(session))
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (OSError, ValueError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- input/output
class BadInput(ValueError):
    pass


def read_payload() -> dict[str, Any]:
    """The agent's JSON object from stdin. Raises BadInput for anything else."""
    stdin = sys.stdin
    if stdin is None or stdin.isatty():
        raise BadInput("no hook input: stdin is a terminal (the agent pipes JSON in)")
    raw = stdin.buffer.read(MAX_INPUT + 1)
    if len(raw) > MAX_INPUT:
        raise BadInput(f"hook input over {MAX_INPUT} bytes")
    if not raw.strip():
        raise BadInput("empty hook input on stdin")
    # not orjson: its import alone costs ~10 ms (issue 6); nor json: it imports re (#19)
    from ..leanjson import loads

    try:
        payload = loads(raw)
    except ValueError as exc:  # JSONDecodeError, or bytes that are no Unicode at all
        raise BadInput(f"hook input is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadInput(f"hook input is JSON {type(payload).__name__}, not an object")
    return payload


def _dumps(obj: dict[str, Any]) -> bytes:
    from ..leanjson import dumps, odumps  # orjson's bytes without its import (#19)

    try:
        return odumps(obj) + b"\n"
    except TypeError:  # a lone surrogate from a foreign writer: escape it rather than fail
        return dumps(obj).encode() + b"\n"


def write_stdout(data: bytes) -> None:
    """All of ``data`` to fd 1, unbuffered: the agent has it before the cursor moves."""
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def _stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


# --------------------------------------------------------------------------- fail-open machinery
def _arm_hard_stop() -> None:
    """End the process silently (exit 0) if the event has not finished by ``HARD_STOP``."""
    # _signal, not signal: its enums cost ~3 ms (#19); the bypass and -h paths never need it
    import _signal

    def stop(signum: int, frame: object) -> None:
        log_failure(f"gave up after {HARD_STOP:g}s (hard stop); nothing was injected")
        os._exit(0)

    try:
        _signal.signal(_signal.SIGALRM, stop)
        _signal.setitimer(_signal.ITIMER_REAL, HARD_STOP)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGALRM
        pass


def _hold_hard_stop() -> None:
    import _signal

    try:
        _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGALRM})
    except (ValueError, OSError, AttributeError):
        pass
