"""``namedtuple``, ``contextmanager`` and ``suppress`` without importing ``collections``,
``contextlib`` or ``functools``; ``quick_exit``, ``sys.exit`` without the teardown.

``import contextlib`` costs an everyday command ~3 ms (it imports ``collections``,
``functools``, ``operator``, ``keyword``, ``reprlib`` and ``types``), a sixth of
what `who` or `list` cost beyond Python's own start-up (issue 19). These stand-ins do
what the library ones do for the way this package uses them: ``ntuple`` builds
its fields with the same C accessor ``namedtuple`` uses (``_collections`` is
built into the interpreter), ``contextmanager`` follows ``contextlib``'s
generator protocol (the exception thrown in, ``StopIteration`` and
``RuntimeError`` as it handles them). Type checkers see the library ones.
"""

from __future__ import annotations

import os
import sys
from _collections import _tuplegetter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from typing import Any

_MISSING = object()


def ntuple(
    name: str, fields: list[str], *, defaults: tuple[Any, ...] = (), module: str = __name__
) -> type:
    """A ``collections.namedtuple(name, fields, defaults=defaults)`` class."""
    n = len(fields)
    first_default = n - len(defaults)
    names = tuple(fields)

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        if len(args) == n and not kwargs:
            return tuple.__new__(cls, args)
        if len(args) > n:
            raise TypeError(f"{name}() takes {n} arguments but {len(args)} were given")
        values: list[Any] = [*args, *[_MISSING] * (n - len(args))]
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
            at = names.index(key)
            if values[at] is not _MISSING:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            values[at] = value
        for at in range(n):
            if values[at] is _MISSING:
                if at < first_default:
                    raise TypeError(f"{name}() missing required argument {names[at]!r}")
                values[at] = defaults[at - first_default]
        return tuple.__new__(cls, values)

    def __repr__(self: tuple[Any, ...]) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in zip(names, self, strict=True))
        return f"{name}({inner})"

    def _replace(self: tuple[Any, ...], **kwargs: Any) -> Any:
        return type(self)(**{**dict(zip(names, self, strict=True)), **kwargs})

    def _asdict(self: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(names, self, strict=True))

    def __getnewargs__(self: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(self)

    body: dict[str, Any] = {
        "__slots__": (),
        "__module__": module,
        "_fields": names,
        "_field_defaults": dict(zip(names[first_default:], defaults, strict=True)),
        "__new__": __new__,
        "__repr__": __repr__,
        "_replace": _replace,
        "_asdict": _asdict,
        "__getnewargs__": __getnewargs__,
    }
    for at, field in enumerate(names):
        body[field] = _tuplegetter(at, f"Alias for field number {at}")
    return type(name, (tuple,), body)


class _GeneratorContextManager:
    """``contextlib._GeneratorContextManager``, for ``with`` only."""

    __slots__ = ("gen",)

    def __init__(self, gen: Generator[Any, None, None]) -> None:
        self.gen = gen

    def __enter__(self) -> Any:
        try:
            return next(self.gen)
        except StopIteration:
            raise RuntimeError("generator didn't yield") from None

    def __exit__(self, typ: Any, value: Any, traceback: Any) -> bool:
        if typ is None:
            try:
                next(self.gen)
            except StopIteration:
                return False
            raise RuntimeError("generator didn't stop")
        if value is None:
            value = typ()
        try:
            self.gen.throw(value)
        except StopIteration as exc:
            return exc is not value  # the generator swallowed the exception
        except RuntimeError as exc:
            if exc is value:
                exc.__traceback__ = traceback
                return False
            if isinstance(value, StopIteration) and exc.__cause__ is value:
                value.__traceback__ = traceback
                return False
            raise
        except BaseException as exc:
            if exc is not value:
                raise
            exc.__traceback__ = traceback
            return False
        raise RuntimeError("generator didn't stop after throw()")


def contextmanager(func: Callable[..., Generator[Any, None, None]]) -> Callable[..., Any]:
    """``contextlib.contextmanager``."""

    def helper(*args: Any, **kwargs: Any) -> _GeneratorContextManager:
        return _GeneratorContextManager(func(*args, **kwargs))

    helper.__name__ = func.__name__
    helper.__qualname__ = func.__qualname__
    helper.__doc__ = func.__doc__
    helper.__module__ = func.__module__
    helper.__wrapped__ = func  # type: ignore[attr-defined]
    return helper


class suppress:
    """``contextlib.suppress``."""

    __slots__ = ("exceptions",)

    def __init__(self, *exceptions: type[BaseException]) -> None:
        self.exceptions = exceptions

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, value: Any, traceback: Any) -> bool:
        return typ is not None and issubclass(typ, self.exceptions)


def quick_exit(main: Callable[[], int | str | None]) -> None:
    """``sys.exit(main())`` for a console script, without the interpreter's teardown.

    Freeing every module and object at exit costs a command ~2 ms (an empty
    ``python -c pass`` spends ~1.4 ms of its ~10 there), about half of what a hook
    with nothing to deliver costs beyond Python's own start-up (issue 19).
    What a normal exit does that anyone can see is done first, in its order: other
    threads are waited for (here: while one runs, the normal exit runs), the
    ``atexit`` functions run (logging's flush among them), stdout and stderr are
    flushed; then ``os._exit``. Whenever that is not plainly possible (a code that
    is not 0–255, a thread still running, a flush that fails) the normal exit runs
    instead, so what the process prints and its exit status are the same either
    way. mypy ends its runs the same way.
    """
    code: int | str | None
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    threading = sys.modules.get("threading")
    if (
        type(code) is not int
        or not 0 <= code <= 255
        or (threading is not None and threading.active_count() > 1)
    ):
        sys.exit(code)
    import atexit  # built into the interpreter

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is None:  # not CPython
        sys.exit(code)
    run_exitfuncs()  # runs each once, and forgets them
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            sys.exit(code)  # the normal exit says so, and ends with its status
    os._exit(code)
