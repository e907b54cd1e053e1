"""Console entry points: ``kei-message``, ``kei message|msg|m`` and ``python -m kei_message``.

Each module named in ``COMMAND_MODULES`` registers its commands on
``app.app`` when imported; ``get_app`` imports them all. To add commands,
create ``kei_message/cli/<yours>.py`` and add its name here.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs every command ~7 ms (issue 19)
if TYPE_CHECKING:
    from collections.abc import Sequence

    import typer

COMMAND_MODULES: tuple[str, ...] = ("messages", "claude", "doctor", "live", "migrate", "gc", "view")

# What `kei` accepts before the command set; SPEC §6.
KEI_ALIASES = ("message", "msg", "m")

KEI_USAGE = """\
Usage: kei message|msg|m COMMAND [ARGS]...

  kei-message: a mailbox for Claude Code sessions.
  `kei message -h` lists the commands; `kei msg` and `kei m` are short for it.
  `kei --version` prints the version.
"""


def get_app() -> typer.Typer:
    """The typer app with every command module registered."""
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    from .app import app

    return app


def main(argv: Sequence[str] | None = None) -> None:
    """``kei-message ARGS`` and ``python -m kei_message ARGS``; exits with the code."""
    _reconfigure_streams()
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):  # before the mailbox or typer is imported (#17)
        sys.stdout.write(version_line() + "\n")
        sys.exit(0)
    # The everyday forms of send/inbox/list/who without typer (issue 6): typer
    # and pydantic cost 100 ms and more; anything else returns None untouched.
    from .fast import run as run_fast

    code = run_fast(args)
    if code is not None:
        sys.exit(code)
    app = get_app()
    from typer.main import get_command

    get_command(app).main(args=args, prog_name="kei message")


def kei_main(argv: Sequence[str] | None = None) -> None:
    """``kei message|msg|m ARGS``: the same program under the ``kei`` umbrella."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(KEI_USAGE)
        sys.exit(0)
    if args[0] in ("--version", "-V"):
        sys.stdout.write(version_line() + "\n")
        sys.exit(0)
    if args[0] not in KEI_ALIASES:
        sys.stderr.write(
            f"kei: error: unknown command {args[0]!r}: use `kei message` (or `kei msg`, `kei m`)\n"
        )
        sys.exit(2)
    main(args[1:])


def version_line() -> str:
    """``kei-message X.Y.Z``: the installed distribution's version (#17).

    From the package metadata, which is what pip shows; the source's
    ``__version__`` when running from a tree that is not installed.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("kei-message")
    except PackageNotFoundError:
        from .. import __version__ as number
    return f"kei-message {number}"


def _reconfigure_streams() -> None:
    from ..lean import suppress  # contextlib's costs ~3 ms (issue 19)

    # A body the terminal's encoding cannot show must not crash output.
    for stream in (sys.stdout, sys.stderr):
        with suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
