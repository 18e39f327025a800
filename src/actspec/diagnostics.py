"""Data diagnostics: the properties of X that the activation paper's theorems depend on.

``data_diagnostics(X)`` returns a JSON-safe dict with

* ``n``, ``dim``, row-norm range;
* ``span_dim``: the numerical rank of X (number of singular values > ``rank_tol``; by default
  ``rank_tol = sigma_max * max(n, dim) * eps``, numpy's ``matrix_rank`` rule), the singular values
  and the cumulative normalised squared-singular-value curve (Figure 2(b) of the paper), with the
  number of dimensions holding 90 / 99 / 99.9 % of the energy;
* ``min_distance`` (min_{i<j} ||x_i - x_j||, with the pair) and the paper's separation
  ``delta = min_{i != j} ||(I - xh_i xh_i^T) x_j||`` (Assumption 2, xh_i = x_i / ||x_i||; equal to
  ||x_j|| sin(angle)), with the ordered pair (i, j), and ``delta_normalized`` = the minimum sine of
  the angle between two rows (delta of the row-normalised data);
* duplicate pairs (||x_i - x_j|| <= duplicate_tol * max(||x_i||, ||x_j||)) and parallel /
  antiparallel pairs (|sin angle| <= parallel_tol, not duplicates), counts and examples: duplicates
  make G singular for every activation; parallel rows make it singular for positively homogeneous
  phi' (ReLU); antiparallel rows make it singular when phi' is even or odd (tanh, erf, sigmoid,
  polynomials), not for ReLU; zero rows give delta = 0;
* the histogram of all n(n-1)/2 pairwise distances (Figure 2(a)): ``counts``, ``edges``.

All pairwise quantities are computed on blocks of ``chunk`` x ``chunk`` rows with one BLAS matmul
per block (only blocks on or above the block diagonal): memory is O(chunk^2 + n * dim) and no n x n
matrix is formed. Gram-based distances and sines lose accuracy near zero (cancellation), so the
smallest candidates of every block are recomputed directly from the rows before reporting the
minima. The pairwise pass costs n^2 * dim flops; the singular values one SVD of X.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import scipy.linalg as sla

from .errors import ActspecError

__all__ = ["data_diagnostics", "plot_data_diagnostics", "format_warnings"]

_EPS = np.finfo(np.float64).eps
_FINE_BINS = 8192  # internal histogram resolution over [0, 2 max ||x||]
_K_CAND = 8  # smallest candidates kept per block for exact recomputation


def _as_matrix(X: Any) -> np.ndarray:
    from .datasets import _as_matrix as check

    return check(X, "data")


class _TopK:
    """Keeps the k smallest (value, i, j) triples seen."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.vals = np.empty(0)
        self.ii = np.empty(0, dtype=np.int64)
        self.jj = np.empty(0, dtype=np.int64)

    def add(self, vals: np.ndarray, ii: np.ndarray, jj: np.ndarray) -> None:
        if vals.size == 0:
            return
        if vals.size > self.k:
            sel = np.argpartition(vals, self.k - 1)[: self.k]
            vals, ii, jj = vals[sel], ii[sel], jj[sel]
        v = np.concatenate([self.vals, vals])
        i = np.concatenate([self.ii, ii])
        j = np.concatenate([self.jj, jj])
        order = np.argsort(v, kind="stable")[: 4 * self.k]
        self.vals, self.ii, self.jj = v[order], i[order], j[order]


class _Examples:
    """Counts pairs and keeps the first few (i, j) examples."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.count = 0
        self.pairs: list[list[int]] = []

    def add(self, ii: np.ndarray, jj: np.ndarray) -> None:
        self.count += int(ii.size)
        room = self.keep - len(self.pairs)
        if room > 0 and ii.size:
            self.pairs.extend([[int(a), int(b)] for a, b in zip(ii[:room], jj[:room], strict=True)])


def _local_candidates(M: np.ndarray, mask: np.ndarray | None, k: int, i0: int, j0: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k smallest entries of block M (restricted to mask) with global indices."""
    flat = M.ravel()
    if mask is not None:
        idx = np.flatnonzero(mask.ravel())
        vals = flat[idx]
    else:
        idx = None
        vals = flat
    if vals.size == 0:
        return np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64)
    kk = min(k, vals.size)
    sel = np.argpartition(vals, kk - 1)[:kk]
    lin = sel if idx is None else idx[sel]
    r, c = np.divmod(lin, M.shape[1])
    return vals[sel], r + i0, c + j0


def data_diagnostics(
    X: Any,
    *,
    tol: float | None = None,
    chunk: int = 2048,
    bins: int = 50,
    duplicate_tol: float = 1e-6,
    parallel_tol: float = 1e-6,
    max_examples: int = 5,
) -> dict[str, Any]:
    """Diagnostics of the data matrix X (rows = points); see the module docstring.

    Parameters: ``tol`` the absolute rank tolerance on singular values (default
    sigma_max * max(n, dim) * eps); ``chunk`` rows per block of the pairwise pass; ``bins`` the
    approximate number of histogram bins (spanning the observed distance range);
    ``duplicate_tol`` relative distance below which two rows count as duplicates;
    ``parallel_tol`` |sin angle| below which two rows count as (anti)parallel; ``max_examples``
    example pairs kept per category.
    """
    X = _as_matrix(X)
    n, d = X.shape
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ActspecError(f"chunk must be a positive integer, got {chunk!r}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ActspecError(f"bins must be a positive integer, got {bins!r}")
    for name, v in (("duplicate_tol", duplicate_tol), ("parallel_tol", parallel_tol)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v < 1):
            raise ActspecError(f"{name} must be a number in [0, 1), got {v!r}")
    if tol is not None and not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ActspecError(f"tol (rank tolerance) must be a finite number >= 0, got {tol!r}")
    chunk = int(chunk)

    # rescale extreme magnitudes so squared norms neither overflow nor underflow
    amax = float(np.max(np.abs(X)))
    scale = 1.0
    if amax > 0 and (amax > 1e100 or amax < 1e-100):
        scale = amax
        X = X / scale

    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    sq = norms * norms
    zero_rows = np.flatnonzero(norms == 0.0)
    inv = np.zeros_like(norms)
    nz = norms > 0
    inv[nz] = 1.0 / norms[nz]
    U = X * inv[:, None]  # unit rows (zero rows stay zero)

    # ---------------------------------------------------------------- singular values
    sv = sla.svdvals(X, check_finite=False)
    smax = float(sv[0]) if sv.size else 0.0
    rank_rule = "sigma_max * max(n, dim) * eps"
    if tol is None:
        rank_tol = smax * max(n, d) * _EPS
    else:
        rank_tol = float(tol) / scale
        rank_rule = "user"
    span_dim = int(np.count_nonzero(sv > rank_tol))
    energy = sv.astype(np.float64) ** 2
    total = float(energy.sum())
    cum = np.cumsum(energy) / total if total > 0 else np.zeros_like(energy)
    dims_for = {
        str(p): (int(np.searchsorted(cum, p - 1e-12) + 1) if total > 0 else 0)
        for p in (0.9, 0.99, 0.999)
    }

    # ---------------------------------------------------------------- pairwise pass
    n_pairs = n * (n - 1) // 2
    R = float(norms.max())
    hist_hi = 2.0 * R * (1.0 + 1e-9) if R > 0 else 1.0
    width = hist_hi / _FINE_BINS
    fine = np.zeros(_FINE_BINS, dtype=np.int64)
    dist_sum = 0.0
    dmax_est = 0.0
    cand_dist = _TopK(_K_CAND)
    cand_delta = _TopK(_K_CAND)
    cand_sine = _TopK(_K_CAND)
    dups = _Examples(max_examples)
    par = _Examples(max_examples)
    anti = _Examples(max_examples)
    cos_thr = 1.0 - 0.5 * parallel_tol * parallel_tol  # |cos| >= this <=> |sin| <~ parallel_tol

    for i0 in range(0, n, chunk):
        i1 = min(n, i0 + chunk)
        Xi, Ui = X[i0:i1], U[i0:i1]
        for j0 in range(i0, n, chunk):
            j1 = min(n, j0 + chunk)
            Xj, Uj = X[j0:j1], U[j0:j1]
            G = Xi @ Xj.T
            mask = None
            if i0 == j0:
                mask = np.triu(np.ones(G.shape, dtype=bool), k=1)
                if not mask.any():
                    continue
            D2 = sq[i0:i1, None] + sq[None, j0:j1] - 2.0 * G
            np.maximum(D2, 0.0, out=D2)
            dist = np.sqrt(D2, out=D2)
            # histogram + mean + max
            dv = dist[mask] if mask is not None else dist.ravel()
            b = np.minimum((dv / width).astype(np.int64), _FINE_BINS - 1)
            fine += np.bincount(b, minlength=_FINE_BINS)
            dist_sum += float(dv.sum())
            dmax_est = max(dmax_est, float(dv.max()))
            cand_dist.add(*_local_candidates(dist, mask, _K_CAND, i0, j0))
            # duplicates: distance small relative to the larger norm of the pair
            big = np.maximum(norms[i0:i1, None], norms[None, j0:j1])
            dup = dist <= duplicate_tol * big
            if mask is not None:
                dup &= mask
            di, dj = np.nonzero(dup)
            dups.add(di + i0, dj + j0)
            # cosines and sines
            C = Ui @ Uj.T
            np.clip(C, -1.0, 1.0, out=C)
            S2 = 1.0 - C * C  # sin^2 (1 for pairs with a zero row)
            np.maximum(S2, 0.0, out=S2)
            cand_sine.add(*_local_candidates(S2, mask, _K_CAND, i0, j0))
            # delta^2 both directions: (i -> j) ||x_j||^2 sin^2 ; (j -> i) ||x_i||^2 sin^2
            Dij = S2 * sq[None, j0:j1]
            Dji = S2 * sq[i0:i1, None]
            v1, a1, b1 = _local_candidates(Dij, mask, _K_CAND, i0, j0)
            v2, a2, b2 = _local_candidates(Dji, mask, _K_CAND, i0, j0)
            cand_delta.add(np.concatenate([v1, v2]), np.concatenate([a1, b2]),
                           np.concatenate([b1, a2]))
            nzp = (norms[i0:i1, None] > 0) & (norms[None, j0:j1] > 0)
            p = (C >= cos_thr) & nzp & ~dup
            a = (C <= -cos_thr) & nzp
            if mask is not None:
                p &= mask
                a &= mask
            pi, pj = np.nonzero(p)
            par.add(pi + i0, pj + j0)
            ai, aj = np.nonzero(a)
            anti.add(ai + i0, aj + j0)
            del G, D2, dist, C, S2, Dij, Dji

    out: dict[str, Any] = {
        "n": n,
        "dim": d,
        "n_pairs": n_pairs,
        "row_norm_min": float(norms.min()) * scale,
        "row_norm_max": float(norms.max()) * scale,
        "unit_norm": bool(np.all(np.abs(norms * scale - 1.0) <= 1e-10)),
        "zero_norm_rows": int(zero_rows.size),
        "span_dim": span_dim,
        "rank_tol": rank_tol * scale,
        "rank_tol_rule": rank_rule,
        "singular_values": [float(s) * scale for s in sv],
        "cumulative_energy": [float(c) for c in cum],
        "dims_for_energy": dims_for,
        "min_distance": None,
        "min_distance_pair": None,
        "max_distance": None,
        "mean_distance": None,
        "delta": None,
        "delta_pair": None,
        "delta_normalized": None,
        "delta_normalized_pair": None,
        "duplicate_tol": float(duplicate_tol),
        "parallel_tol": float(parallel_tol),
        "duplicate_pairs": dups.count,
        "duplicate_examples": dups.pairs,
        "parallel_pairs": par.count,
        "parallel_examples": par.pairs,
        "antiparallel_pairs": anti.count,
        "antiparallel_examples": anti.pairs,
        "histogram": {"counts": [], "edges": []},
    }
    if n_pairs == 0:
        out["warnings"] = format_warnings(out)
        return out

    # exact recomputation of the smallest candidates
    ii, jj = cand_dist.ii, cand_dist.jj
    exact = np.linalg.norm(X[ii] - X[jj], axis=1)
    k = int(np.argmin(exact))
    out["min_distance"] = float(exact[k]) * scale
    out["min_distance_pair"] = [int(min(ii[k], jj[k])), int(max(ii[k], jj[k]))]

    ii, jj = cand_delta.ii, cand_delta.jj
    proj = X[jj] - np.einsum("kj,kj->k", U[ii], X[jj])[:, None] * U[ii]
    exact = np.linalg.norm(proj, axis=1)
    k = int(np.argmin(exact))
    out["delta"] = float(exact[k]) * scale
    out["delta_pair"] = [int(ii[k]), int(jj[k])]

    ii, jj = cand_sine.ii, cand_sine.jj
    ui, uj = U[ii], U[jj]
    # |sin| = ||ui - (ui.uj) uj|| for unit vectors (exact for small angles); 1 with a zero row
    exact = np.linalg.norm(ui - np.einsum("kj,kj->k", ui, uj)[:, None] * uj, axis=1)
    zero_pair = (norms[ii] == 0) | (norms[jj] == 0)
    exact[zero_pair] = 1.0
    k = int(np.argmin(exact))
    out["delta_normalized"] = float(min(exact[k], 1.0))
    out["delta_normalized_pair"] = [int(min(ii[k], jj[k])), int(max(ii[k], jj[k]))]

    out["max_distance"] = min(dmax_est, 2.0 * R) * scale
    out["mean_distance"] = dist_sum / n_pairs * scale
    out["histogram"] = _coarsen(fine, width * scale, bins)
    out["warnings"] = format_warnings(out)
    return out


def _coarsen(fine: np.ndarray, width: float, bins: int) -> dict[str, list]:
    """Regroup the fine histogram into ~bins bins spanning its non-empty range."""
    nzb = np.flatnonzero(fine)
    lo, hi = int(nzb[0]), int(nzb[-1]) + 1
    span = hi - lo
    group = max(1, math.ceil(span / bins))
    nb = math.ceil(span / group)
    padded = np.zeros(nb * group, dtype=np.int64)
    padded[:span] = fine[lo:hi]
    counts = padded.reshape(nb, group).sum(axis=1)
    edges = (lo + group * np.arange(nb + 1)) * width
    return {"counts": [int(c) for c in counts], "edges": [float(e) for e in edges]}


def format_warnings(diag: dict[str, Any]) -> list[str]:
    """Human-readable warnings about properties of the data that make G singular."""
    w: list[str] = []
    if diag.get("zero_norm_rows"):
        w.append(f"{diag['zero_norm_rows']} zero row(s): delta = 0 and G has a zero row")
    if diag.get("duplicate_pairs"):
        w.append(
            f"{diag['duplicate_pairs']} duplicate pair(s) (e.g. {diag['duplicate_examples'][0]}): "
            "G is singular for every activation"
        )
    if diag.get("parallel_pairs"):
        w.append(
            f"{diag['parallel_pairs']} parallel pair(s) (e.g. {diag['parallel_examples'][0]}): "
            "G is singular for positively homogeneous phi' (ReLU); normalise the rows"
        )
    if diag.get("antiparallel_pairs"):
        w.append(
            f"{diag['antiparallel_pairs']} antiparallel pair(s) "
            f"(e.g. {diag['antiparallel_examples'][0]}): G is singular when phi' is even or odd "
            "(tanh, erf, sigmoid, polynomials), not for ReLU; --preprocess paper removes them"
        )
    return w


def _atomic_savefig(fig: Any, path: str | os.PathLike[str]) -> None:
    from .io import atomic_path, check_writable

    p = check_writable(path, "figure")
    assert p is not None
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def plot_data_diagnostics(diag: dict[str, Any], distances_png: str | os.PathLike[str] | None,
                          singular_png: str | os.PathLike[str] | None, *,
                          title: str | None = None) -> None:
    """Figure 2(a) (pairwise-distance histogram) and 2(b) (cumulative normalised sum of squared
    singular values, semilog in k) as PNGs, each written atomically; a None path is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suffix = f" ({title})" if title else ""
    if distances_png is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        try:
            h = diag.get("histogram") or {}
            counts, edges = h.get("counts") or [], h.get("edges") or []
            if counts:
                e = np.asarray(edges)
                ax.bar(e[:-1], counts, width=np.diff(e), align="edge", color="tab:blue",
                       edgecolor="none")
            for key, style, label in (("min_distance", "--", "min distance"),
                                      ("delta", ":", "delta (Assumption 2)")):
                v = diag.get(key)
                if v is not None:
                    ax.axvline(v, color="tab:red", ls=style, label=f"{label} = {v:.3g}")
            ax.set_xlabel(r"pairwise distance $\|x_i - x_j\|$")
            ax.set_ylabel("number of pairs")
            ax.set_title(f"Pairwise distances, n = {diag.get('n')}{suffix}")
            if diag.get("min_distance") is not None:
                ax.legend(loc="best", fontsize=8)
            fig.tight_layout()
            _atomic_savefig(fig, distances_png)
        finally:
            plt.close(fig)
    if singular_png is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        try:
            cum = np.asarray(diag.get("cumulative_energy") or [], dtype=float)
            k = np.arange(1, cum.size + 1)
            if cum.size:
                ax.semilogx(k, cum, color="tab:blue", lw=1.5)
            sd = diag.get("span_dim")
            if sd:
                ax.axvline(sd, color="tab:gray", ls="--", lw=1,
                           label=f"numerical rank = {sd}")
            n = diag.get("n") or 0
            if n and n > 1:
                ax.axvline(math.log(n), color="tab:red", ls=":", lw=1,
                           label=f"log n = {math.log(n):.2f}")
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("k (number of top singular values)")
            ax.set_ylabel(r"$\sum_{i\leq k}\sigma_i^2 / \sum_i \sigma_i^2$")
            ax.set_title(f"Cumulative normalised squared singular values{suffix}")
            ax.legend(loc="lower right", fontsize=8)
            ax.grid(True, which="both", alpha=0.3)
            fig.tight_layout()
            _atomic_savefig(fig, singular_png)
        finally:
            plt.close(fig)
