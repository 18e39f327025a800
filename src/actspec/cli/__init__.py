"""Command-line interface: ``actspec COMMAND ...`` (thin layer over the library).

Every user error becomes one line ``error: ...`` on stderr and exit status 2."""

from __future__ import annotations

import errno
import functools
import importlib
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from ..core.errors import ActspecError, Interrupted, exit_if_command_startup

# each command lives in its own module and registers itself on import
_COMMANDS = ("spectrum", "hermite", "data", "train", "analyze", "depth", "reproduce", "sweep", "results",
             "gram", "sphere", "model")

try:  # Ctrl-C while the installed script imports its libraries: one line, exit 130
    import typer

    try:  # typer >= 0.20 vendors its own copy of click
        from typer._click import exceptions as _cx
    except ImportError:  # pragma: no cover
        from click import exceptions as _cx  # type: ignore[no-redef]

    from ._app import app
    from .options import cli_message, legacy_short_flags, short_flag_hint, unify_vocabulary

    for _name in _COMMANDS:
        try:
            importlib.import_module(f"{__name__}.{_name}")
        except ModuleNotFoundError as _exc:  # a command module not written yet
            if _exc.name != f"{__name__}.{_name}":
                raise
except KeyboardInterrupt:
    exit_if_command_startup(sys.argv[0] if sys.argv else "")
    raise

__all__ = ["app", "main", "run"]


def _interruptible(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Ctrl-C inside a command becomes :class:`Interrupted` (typer would turn a bare
    KeyboardInterrupt into a silent exit status 130)."""
    if getattr(fn, "_actspec_interruptible", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .common import interruptible

        with interruptible():
            return fn(*args, **kwargs)

    wrapper._actspec_interruptible = True  # type: ignore[attr-defined]
    return wrapper


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Every command's declared limits checked (:func:`options.check_limits`: seeds, --bins,
    --noise), and its outputs checked and written as one group (:func:`common.guard_outputs`):
    outputs naming the same file (or an input file) are refused before any work; the files are
    renamed into place together when the command succeeds, none when it fails."""
    if getattr(fn, "_actspec_guarded", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .common import guard_outputs
        from .options import check_limits

        check_limits(kwargs)
        with guard_outputs(kwargs):
            return fn(*args, **kwargs)

    wrapper._actspec_guarded = True  # type: ignore[attr-defined]
    return wrapper


for _info in app.registered_commands:
    if _info.callback is not None:
        _info.callback = _interruptible(_guarded(unify_vocabulary(_info.callback)))


def _error(msg: str, code: int = 2) -> int:
    global _REPORTED
    text = " ".join(str(msg).split())
    print(f"error: {text}", file=sys.stderr)
    _REPORTED = True
    return code


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``actspec`` console script.

    An unexpected exception (a bug, not bad input) is reported in one line with exit status 1;
    ``ACTSPEC_DEBUG=1`` shows the traceback instead."""
    if os.environ.get("ACTSPEC_DEBUG"):
        sys.exit(run(argv))
    global _ON_INTERRUPT
    _ON_INTERRUPT = _ignore_further_interrupts
    try:
        code = run(argv)
    except KeyboardInterrupt:  # a second Ctrl-C while the first was being reported
        _ignore_further_interrupts()
        if not _REPORTED:
            _error(_INTERRUPTED, 130)
        code = 130
    except Exception as exc:  # noqa: BLE001 - last resort of the console script
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(
            f"error: internal error ({text}); this is a bug in actspec: please report it with the "
            "command line (ACTSPEC_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        code = 1
    if code == 130:
        _ignore_further_interrupts()  # Ctrl-C again while exiting (atexit, torch finalizers)
    sys.exit(code)


#: called when a command is interrupted; the console script sets it to ignore further Ctrl-C
#: (a second Ctrl-C while the first is reported or while torch shuts down printed a traceback);
#: in-process callers of :func:`run` (tests, notebooks) keep their own SIGINT handling
_ON_INTERRUPT: Callable[[], None] | None = None
_REPORTED = False  # an error line was printed by this run


def _ignore_further_interrupts() -> None:
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):  # pragma: no cover - not the main thread
        pass


def _interrupted(msg: str) -> int:
    if _ON_INTERRUPT is not None:
        _ON_INTERRUPT()
    return _error(msg, 130)


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """Python warnings (numpy overflow, our own) as one line ``warning: ...`` on stderr,
    without the source line a default warning prints."""
    text = " ".join(str(message).split())
    if issubclass(category, RuntimeWarning) and "encountered" in text:
        text += " (numerical overflow or invalid values: results may be inf/NaN; try --normalize)"
    print(f"warning: {text}", file=sys.stderr)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI in-process and return its exit status (errors never raise)."""
    global _REPORTED
    _REPORTED = False
    args = sys.argv[1:] if argv is None else list(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args)


_INTERRUPTED = "interrupted; no output file was written or left half-written; run the same command again"


def _run(args: list[str]) -> int:
    try:
        command = typer.main.get_command(app)  # building the parser can be interrupted too
        args = legacy_short_flags(args, command)
        rv = command.main(args=args, prog_name="actspec", standalone_mode=False)
    except ActspecError as exc:
        return _error(cli_message(exc, command, args))
    except Interrupted as exc:
        return _interrupted(str(exc))
    except _cx.NoArgsIsHelpError as exc:  # bare "actspec": help text, status 0
        print(exc.ctx.get_help() if exc.ctx else "", file=sys.stdout)
        return 0
    except _cx.UsageError as exc:
        moved = short_flag_hint(exc.format_message(), command, args)
        if moved:
            return _error(moved)
        hint = (
            f" (see 'actspec {exc.ctx.info_name} --help')"
            if exc.ctx and exc.ctx.parent
            else " (see 'actspec --help')"
        )
        return _error(exc.format_message() + hint)
    except typer.Exit as exc:
        if exc.exit_code == 130:  # typer's rendering of Ctrl-C while parsing: say so in one line
            return _interrupted(_INTERRUPTED)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return _interrupted(_INTERRUPTED)
    except MemoryError:
        return _error("out of memory; use a smaller --n or --width (or --dtype float32)", 2)
    except OSError as exc:
        where = f" {str(exc.filename)!r}" if exc.filename else ""
        reason = exc.strerror or str(exc)
        fix = (
            "free some disk space or write elsewhere"
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
            else "check the path and its permissions"
        )
        return _error(f"cannot read or write{where}: {reason}; {fix}", 2)
    if rv == 130:  # typer turns Ctrl-C while parsing into Exit(130), which click returns
        return _interrupted(_INTERRUPTED)
    return rv if isinstance(rv, int) else 0
