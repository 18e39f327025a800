"""The one validation gate: checks of user inputs (arrays, scalars, choices) whose errors name the
parameter; the CLI maps parameter names to its flags."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ActspecError

__all__ = ["check_inputs"]


def check_inputs(X: Any) -> np.ndarray:
    """Validate a data matrix: 2-D, non-empty, finite, float64."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ActspecError(
            "X must be a numeric (n, d) array; ragged or non-numeric rows cannot be used"
        ) from None
    if arr.ndim != 2:
        raise ActspecError(f"X must be a 2-D array (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ActspecError(f"X is empty (shape {arr.shape}); give at least one row and column")
    if not np.all(np.isfinite(arr)):
        raise ActspecError("X contains NaN or inf; remove or impute those rows first")
    return np.ascontiguousarray(arr)
