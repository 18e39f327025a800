"""Spectrum of a G-matrix: eigenvalues, lambda_min/max, condition number, trace, effective rank.

Dense symmetric eigenvalues in float64 (LAPACK ``syevd`` via scipy). A float64 eigensolver
cannot resolve eigenvalues below about ``n * eps * lambda_max`` (its backward error); such
eigenvalues are reported but flagged, and the condition number is then given as a lower bound
(``condition_number_is_lower_bound``) instead of printing rounding noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import scipy.linalg

from ..core.errors import ActspecError
from ..core.linalg import condition_number, effective_rank

__all__ = ["Spectrum", "spectrum", "eigenvalues", "eigenpairs", "condition_number", "effective_rank"]


def _checked(G: np.ndarray) -> np.ndarray:
    """G as a symmetric float64 array (symmetrised), or a one-line error."""
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
    return 0.5 * (A + A.T)


def eigenvalues(G: np.ndarray) -> np.ndarray:
    """Eigenvalues of the symmetric matrix G in descending order (float64)."""
    vals = scipy.linalg.eigvalsh(_checked(G), driver="evd", check_finite=False)
    return vals[::-1].copy()


def eigenpairs(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues descending, orthonormal eigenvectors as the matching columns), float64."""
    vals, vecs = scipy.linalg.eigh(_checked(G), driver="evd", check_finite=False)
    return vals[::-1].copy(), np.ascontiguousarray(vecs[:, ::-1])


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
    #: orthonormal eigenvectors, column i for ``eigenvalues[i]`` (``spectrum(G, vectors=True)``)
    eigenvectors: np.ndarray | None = field(default=None, repr=False)

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
        vecs = self.eigenvectors
        out = asdict(replace(self, eigenvectors=None))
        out.pop("eigenvectors")
        out["eigenvalues"] = [float(v) for v in self.eigenvalues] if with_eigenvalues else None
        if not with_eigenvalues:
            out.pop("eigenvalues")
        if vecs is not None and with_eigenvalues:
            out["eigenvectors"] = np.asarray(vecs).tolist()
        return out


def spectrum(G: np.ndarray, eigs: np.ndarray | None = None, *, vectors: bool = False) -> Spectrum:
    """Summary of the spectrum of G (pass ``eigs`` if already computed, descending).

    ``vectors=True`` also returns the orthonormal eigenvectors (``Spectrum.eigenvectors``, an
    n x n array whose column i belongs to ``eigenvalues[i]``; LAPACK ``syevd``), e.g. to project
    a label vector onto the modes of SCIENCE §2: ``s.eigenvectors.T @ y``.
    """
    vecs = None
    if vectors:
        if G is None:
            raise ActspecError("vectors=True needs the matrix G")
        vals, vecs = eigenpairs(G)
    else:
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
        eigenvectors=vecs,
    )

