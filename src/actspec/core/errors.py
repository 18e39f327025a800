"""Error type for bad user input.

Every error a user can fix (unknown activation, bad data, impossible sizes) is raised as
:class:`ActspecError`. The CLI turns it into a one-line ``error: ...`` message and exit status 2.
"""

from __future__ import annotations


class ActspecError(ValueError):
    """Bad input: the message says what was wrong and how to fix it (one line)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class Interrupted(Exception):
    """Ctrl-C stopped a command; the message says what was kept and how to resume (exit 130).

    Deliberately not a ``KeyboardInterrupt``: the CLI framework swallows those silently."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def exit_if_command_startup(argv0: str) -> None:
    """Ctrl-C while the ``actspec`` command is still importing its libraries: one line, exit 130.

    Called from the package's ``__init__`` when its imports are interrupted. When the program
    is the installed ``actspec`` script (``argv0``), print the usual one-line message and exit
    130; for a library user (``import actspec`` in their own program) return, so the caller
    re-raises the ``KeyboardInterrupt``.
    """
    import os
    import sys

    name = os.path.basename(argv0 or "")
    if name in ("actspec", "actspec.exe", "actspec-script.py"):
        print("error: interrupted while starting; nothing was done", file=sys.stderr)
        raise SystemExit(130)
