"""The ``kei message`` command set: the typer app, ``--url``, and shared helpers.

Command modules register themselves on ``app``::

    from kei_message.cli.app import app, get_mailbox, resolve_me

    @app.command()
    def hello(me: Annotated[str | None, typer.Option("--me")] = None) -> None:
        \"\"\"Say hello.\"\"\"
        out(f"hello {resolve_me(me)}")

Commands raise errors from ``kei_message.errors``; ``KeiGroup.main`` turns
each into one stderr line ``kei message: error: ...`` and its exit code, so
in-process tests (``CliRunner``) see exactly what a shell sees.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from ..mailbox import Mailbox
    from ..records import Record

PROG = "kei message"

# Per-invocation state. Reset by the root callback on every run, since tests
# invoke the app many times in one process with different environments.
_state: dict[str, Any] = {"url": None, "mailbox": None}


class KeiGroup(TyperGroup):
    """Maps every failure to one stderr line and an exit code (SPEC §6)."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _install_log_handler()
        code = run_guarded(
            lambda: super(KeiGroup, self).main(
                args, prog_name or PROG, complete_var, standalone_mode=False, **extra
            )
        )
        if standalone_mode:
            sys.exit(code)
        return code


def run_guarded(call: Any) -> int:
    """Run ``call`` (a click main in non-standalone mode); return the exit code."""
    from ..errors import KeiMessageError

    try:  # typer >= 0.2x carries its own click
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - older typer on real click
        from click import exceptions as cx  # type: ignore[no-redef]

    try:
        rv = call()
        return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except KeiMessageError as exc:
        _report(str(exc), exc)
        return int(exc.exit_code)
    except cx.ClickException as exc:
        msg = exc.format_message()
        ctx = getattr(exc, "ctx", None)
        if isinstance(exc, cx.UsageError) and ctx is not None:
            msg += f" (see '{ctx.command_path} --help')"
        _report(msg, exc)
        return int(exc.exit_code)
    except typer.Abort:
        _report("aborted", None)
        return 130
    except KeyboardInterrupt:
        _err("")
        return 130
    except BrokenPipeError:
        # The reader went away (`kei message list | head -1`). Nothing was marked
        # read past what got out; point stdout at /dev/null so the final flush at
        # exit does not raise again, and end quietly like a SIGPIPE'd tool would.
        _silence_stdout()
        return 141
    except OSError as exc:
        detail = exc.strerror or str(exc)
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        _report(f"mailbox unavailable: {detail}{where}", exc)
        return 3
    except Exception as exc:  # a bug: say so in one line, traceback on request
        _report(
            f"internal error: {type(exc).__name__}: {exc} "
            "(set KEI_MAILBOX_DEBUG=1 for the traceback)",
            exc,
        )
        return 1


def _report(message: str, exc: BaseException | None) -> None:
    if exc is not None and os.environ.get("KEI_MAILBOX_DEBUG", "") not in ("", "0"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    _err(f"{PROG}: error: {message}")


def _err(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


_handler_installed = False


def _install_log_handler() -> None:
    """Library warnings (logger ``kei_message``) go to stderr as ``kei message: warning: …``."""
    global _handler_installed
    if _handler_installed:
        return
    import logging

    class _StderrHandler(logging.Handler):
        # Looks sys.stderr up at emit time: CliRunner swaps it per invocation.
        def emit(self, record: logging.LogRecord) -> None:
            try:
                level = "warning" if record.levelno < logging.ERROR else "error"
                _err(f"{PROG}: {level}: {record.getMessage()}")
            except Exception:
                self.handleError(record)

    # Propagation stays on: with no root handler nothing else prints, and
    # tests' caplog still sees the records.
    logging.getLogger("kei_message").addHandler(_StderrHandler(logging.WARNING))
    _handler_installed = True


app = typer.Typer(
    name=PROG,
    cls=KeiGroup,
    help="A mailbox for Claude Code sessions: send, read and wait for messages.",
    epilog="Example: kei message send @frontend 'TASK: ship the login page'",
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    invoke_without_command=True,
)


@app.callback()
def _root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="Store URL, e.g. redis://HOST:PORT/DB (default: KEI_MAILBOX_URL, "
            "else the JSONL bus in the mailbox dir).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    if version:
        from .. import __version__

        out(f"kei-message {__version__}")
        raise typer.Exit(0)
    _state["url"] = url
    _state["mailbox"] = None
    if ctx.invoked_subcommand is None:
        out(ctx.get_help())
        raise typer.Exit(0)


# ----------------------------------------------------------------------------- helpers
def get_mailbox() -> Mailbox:
    """The Mailbox for this invocation (honours ``--url``, else KEI_MAILBOX_URL)."""
    mb = _state.get("mailbox")
    if mb is None:
        from ..mailbox import Mailbox

        mb = _state["mailbox"] = Mailbox(url=_state.get("url"))
    return mb


def resolve_me(explicit: str | None) -> str:
    """Identity (SPEC §5): the flag, then KEI_MAILBOX_ME, then the current dir's name."""
    from ..names import resolve

    return resolve(explicit)


def use_color() -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def out(text: str = "") -> None:
    """One line (or block) to stdout, flushed: callers mark messages read after it."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def warn(text: str) -> None:
    """A note for people on stderr."""
    _err(f"{PROG}: {text}")


def out_json(rec: Record) -> None:
    """A record as stored: one compact JSON line."""
    from ..records import dumps

    sys.stdout.write(dumps(rec).decode("utf-8"))
    sys.stdout.flush()
