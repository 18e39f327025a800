"""Spectrum of a G-matrix: eigenvalues, lambda_min/max, condition number, trace, effective rank.

Dense symmetric eigenvalues in float64 (LAPACK ``syevd`` via scipy). A float64 eigensolver
cannot resolve eigenvalues below about ``n * eps * lambda_max`` (its backward error); such
eigenvalues are reported but flagged, and the condition number is then given as a lower bound
(``condition_number_is_lower_bound``) instead of printing rounding noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.linalg

from ..core.errors import ActspecError
from ..core.linalg import condition_number, effective_rank

__all__ = ["Spectrum", "spectrum", "eigenvalues", "condition_number", "effective_rank"]


def eigenvalues(G: np.ndarray) -> np.ndarray:
    """Eigenvalues of the symmetric matrix G in descending order (float64)."""
    A = np.asarray(G, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ActspecError(f"G must be a non-empty square matrix, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ActspecError(
            "G contains NaN or inf (activation overflow? try smaller inputs or --normalize)"
        )
    asym = float(np.max(np.abs(A - A.T))) if A.shape[0] > 1 else 0.0
    scale = float(np.max(np.abs(A))) or 1.0
    if asym > 1e-8 * scale:
        raise ActspecError(f"G is not symmetric (max |G - G^T| = {asym:.3g})")
    A = 0.5 * (A + A.T)
    vals = scipy.linalg.eigvalsh(A, driver="evd", check_finite=False)
    return vals[::-1].copy()


@dataclass
class Spectrum:
    eigenvalues: np.ndarray = field(repr=False)
    lambda_min: float
    lambda_max: float
    condition_number: float
    trace: float
    effective_rank: float
    resolution: float
    condition_number_is_lower_bound: bool
    n_unresolved: int

    def row(self) -> dict[str, Any]:
        """The spectrum keys of a result row (``actspec spectrum`` JSON, sweeps, reports)."""
        return {
            "eigenvalues": self.eigenvalues,
            "lambda_min": self.lambda_min,
            "lambda_max": self.lambda_max,
            "condition_number": self.condition_number,
            "condition_number_is_lower_bound": self.condition_number_is_lower_bound,
            "trace": self.trace,
            "effective_rank": self.effective_rank,
            "resolution": self.resolution,
            "n_below_resolution": self.n_unresolved,
        }

    def to_dict(self, *, with_eigenvalues: bool = True) -> dict[str, Any]:
        out = asdict(self)
        out["eigenvalues"] = [float(v) for v in self.eigenvalues] if with_eigenvalues else None
        if not with_eigenvalues:
            out.pop("eigenvalues")
        return out


def spectrum(G: np.ndarray, eigs: np.ndarray | None = None) -> Spectrum:
    """Summary of the spectrum of G (pass ``eigs`` if already computed, descending)."""
    vals = eigenvalues(G) if eigs is None else np.asarray(eigs, dtype=np.float64)
    n = vals.size
    lmax = float(vals[0])
    lmin = float(vals[-1])
    trace = float(np.trace(G)) if G is not None else float(vals.sum())
    resolution = n * np.finfo(np.float64).eps * max(abs(lmax), abs(lmin))
    unresolved = int(np.sum(vals < resolution))
    cond, lower = condition_number(lmax, lmin, resolution)
    eff = effective_rank(vals)
    return Spectrum(
        eigenvalues=vals,
        lambda_min=lmin,
        lambda_max=lmax,
        condition_number=cond,
        trace=trace,
        effective_rank=eff,
        resolution=float(resolution),
        condition_number_is_lower_bound=lower,
        n_unresolved=unresolved,
    )

