"""Reproductions of the papers' evidence: the framework (parts, claims, cache, report) and the parts.

Importing this package registers every part (``parts`` registers on import into ``framework``'s
table), so ``framework`` never imports ``parts``: the dependency points one way.
"""

from . import parts  # noqa: F401  (registers the parts)
from .framework import (
    PARTS,
    REPRODUCTIONS,
    Context,
    calibrated_seconds,
    claim,
    expected_seconds,
    part_names,
    register,
    run_reproduction,
)

__all__ = [
    "PARTS",
    "REPRODUCTIONS",
    "Context",
    "calibrated_seconds",
    "claim",
    "expected_seconds",
    "part_names",
    "register",
    "run_reproduction",
]
