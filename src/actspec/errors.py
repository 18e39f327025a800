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
