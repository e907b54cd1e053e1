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

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperGroup

from .output import PROG, out, out_json, use_color, warn
from .output import err as _err
from .output import install_log_handler as _install_log_handler
from .output import report as _report

if TYPE_CHECKING:
    from ..mailbox import Mailbox

__all__ = [
    "PROG",
    "_err",
    "app",
    "get_mailbox",
    "out",
    "out_json",
    "resolve_me",
    "run_guarded",
    "use_color",
    "warn",
]

# Per-invocation state. Reset by the root callback on every run, since tests
# invoke the app many times in one process with different environments.
_state: dict[str, Any] = {"url": None, "mailbox": None}


class KeiArgument(TyperArgument):
    """An argument shown the way man pages show it (#17).

    typer 0.2x prints the Python type beside each argument (``ID <str>``,
    ``TEXT <list[str]>``) and braces around required ones in the usage line
    (``{NAME}``): here a required argument is ``NAME``, an optional one
    ``[NAME]``, a repeated one ``[TEXT]...``, and the help says what it is.
    """

    def display_type(self, ctx: Any) -> str:
        return ""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if name.startswith("["):
            return name  # spelled out in full, e.g. inbox's "[pop] [NAME]"
        if not self.required:
            name = f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def _rich_display_name(self) -> str:
        return self._usage_display_name()


class KeiGroup(TyperGroup):
    """Maps every failure to one stderr line and an exit code (SPEC §6)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            for param in command.params:
                if type(param) is TyperArgument:
                    param.__class__ = KeiArgument  # same fields; only how help shows it

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
    from .output import guarded

    try:  # typer >= 0.2x carries its own click
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - older typer on real click
        from click import exceptions as cx  # type: ignore[no-redef]

    def typer_call() -> Any:
        # typer's and click's own ways out; everything else is `guarded`'s
        try:
            return call()
        except typer.Exit as exc:
            return int(exc.exit_code or 0)
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

    return guarded(typer_call)


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
        bool, typer.Option("--version", "-V", is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    if version:
        from . import version_line

        out(version_line())
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
