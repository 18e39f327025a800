"""The two spectrum rules every layer shares (dense, iterative, extended precision, deep, eNTK):
the condition number with its resolution floor, and the effective rank."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["condition_number", "effective_rank"]


def condition_number(lmax: float, lmin: float, floor: float) -> tuple[float, bool]:
    """(condition number, is it a lower bound): lambda_max / lambda_min when lambda_min is above
    ``floor`` (the solver's resolution or lambda_min's error bar), else lambda_max / floor as a
    lower bound (inf when floor is 0); inf when lambda_max <= 0. The one rule every spectrum uses."""
    if lmax <= 0:
        return math.inf, False
    if lmin > floor:
        return float(lmax / lmin), False
    return (float(lmax / floor) if floor > 0 else math.inf), True


def effective_rank(vals: np.ndarray) -> float:
    """exp(entropy) of the normalised positive eigenvalues (Roy & Vetterli 2007)."""
    pos = np.clip(np.asarray(vals, dtype=np.float64), 0.0, None)
    tot = pos.sum()
    if tot <= 0:
        return 0.0
    p = pos[pos > 0] / tot
    return float(np.exp(-np.sum(p * np.log(p))))
