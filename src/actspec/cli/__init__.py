"""Command-line interface: ``actspec COMMAND ...`` (thin layer over the library).

Every user error becomes one line ``error: ...`` on stderr and exit status 2."""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.20 vendors its own copy of click
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover
    from click import exceptions as _cx  # type: ignore[no-redef]

import importlib

from ..errors import ActspecError
from ._app import app

# each command lives in its own module and registers itself on import
_COMMANDS = ("spectrum", "hermite", "data", "train", "analyze", "depth", "reproduce", "sweep", "results",
             "gram")
for _name in _COMMANDS:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"{__name__}.{_name}":
            raise

__all__ = ["app", "main", "run"]


def _error(msg: str, code: int = 2) -> int:
    text = " ".join(str(msg).split())
    print(f"error: {text}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``actspec`` console script."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI in-process and return its exit status (errors never raise)."""
    args = sys.argv[1:] if argv is None else list(argv)
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="actspec", standalone_mode=False)
    except ActspecError as exc:
        return _error(str(exc))
    except _cx.NoArgsIsHelpError as exc:  # bare "actspec": help text, status 0
        print(exc.ctx.get_help() if exc.ctx else "", file=sys.stdout)
        return 0
    except _cx.UsageError as exc:
        hint = (
            f" (see 'actspec {exc.ctx.info_name} --help')"
            if exc.ctx and exc.ctx.parent
            else " (see 'actspec --help')"
        )
        return _error(exc.format_message() + hint)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return _error("interrupted; finished results were kept", 130)
    except MemoryError:
        return _error("out of memory; use a smaller --n or --width (or --dtype float32)", 2)
    except OSError as exc:
        return _error(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "), 2)
    return rv if isinstance(rv, int) else 0
