"""Data diagnostics: the properties of X that the activation paper's theorems depend on.

``data_diagnostics(X)`` returns a JSON-safe dict with

* ``n``, ``dim``, row-norm range;
* ``span_dim``: the numerical rank of X (number of singular values > ``rank_tol``; by default
  ``rank_tol = sigma_max * max(n, dim) * eps``, numpy's ``matrix_rank`` rule, when the singular
  values come from an SVD; ``sigma_max * sqrt(max(n, dim) * eps)`` when, for large data, they come
  from the eigenvalues of the smaller Gram matrix, see ``svd_method``), the singular values
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
  x^2), and for phi' = constant + odd (ReLU, swish, GELU) when the pairs outnumber the dimensions
  they span (``structural_zeros`` counts the zero eigenvalues for a given activation); zero rows
  give delta = 0;
* the histogram of all n(n-1)/2 pairwise distances (Figure 2(a)): ``counts``, ``edges``, and
  ``mean_distance`` / ``max_distance``. These use the Gram-based distances (absolute error up to
  ~sqrt(eps) * max ||x|| for near-coincident pairs); the minima above are exact.

All pairwise quantities are computed on blocks of ``chunk`` x ``chunk`` rows with one BLAS matmul
per block (only blocks on or above the block diagonal): memory is O(chunk^2 + n * dim) and no n x n
matrix is formed. Gram-based distances and sines lose accuracy near zero (cancellation), so the
smallest candidates of every block are recomputed directly from the rows before reporting the
minima. The pairwise pass costs n^2 * dim flops; the singular values one SVD of X (or, for
large X, one min(n,dim)^2 Gram matrix and its eigenvalues).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.linalg as sla

from ..core.errors import ActspecError

__all__ = ["data_diagnostics", "format_warnings", "structural_zeros"]

_EPS = np.finfo(np.float64).eps
_FINE_BINS = 8192  # internal histogram resolution over [0, 2 max ||x||]
_K_CAND = 8  # smallest candidates kept per block for exact recomputation
_SVD_EXACT_WORK = 5e9  # min(n,d)^2 max(n,d) up to which "auto" uses a full SVD


def as_matrix(X: Any) -> np.ndarray:
    from .datasets import as_matrix as check

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
    svd_method: str = "auto",
) -> dict[str, Any]:
    """Diagnostics of the data matrix X (rows = points); see the module docstring.

    Parameters: ``tol`` the absolute rank tolerance on singular values (default
    sigma_max * max(n, dim) * eps); ``chunk`` rows per block of the pairwise pass; ``bins`` the
    approximate number of histogram bins (spanning the observed distance range);
    ``duplicate_tol`` relative distance below which two rows count as duplicates;
    ``parallel_tol`` |sin angle| below which two rows count as (anti)parallel; ``max_examples``
    example pairs kept per category; ``svd_method`` ``"svd"`` (LAPACK singular values of X, exact
    to rounding), ``"gram"`` (square roots of the eigenvalues of X^T X or X X^T, whichever is
    smaller: several times faster for large data, but singular values below ~sqrt(eps) sigma_max
    are noise, so the default rank tolerance becomes sigma_max * sqrt(max(n, dim) * eps)) or
    ``"auto"`` (``svd`` when min(n,dim)^2 max(n,dim) <= 5e9, else ``gram``).
    """
    if svd_method not in ("auto", "svd", "gram"):
        raise ActspecError(f"--svd-method must be auto, svd or gram, got {svd_method!r}")
    X = as_matrix(X)
    n, d = X.shape
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ActspecError(f"--chunk must be a positive integer, got {chunk!r}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ActspecError(f"--bins must be a positive integer, got {bins!r}")
    for name, v in (("duplicate_tol", duplicate_tol), ("parallel_tol", parallel_tol)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v < 1):
            raise ActspecError(f"{name} must be a number in [0, 1), got {v!r}")
    if tol is not None and not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ActspecError(f"--rank-tol must be a finite number >= 0, got {tol!r}")
    chunk = int(chunk)

    # rescale extreme magnitudes so squared norms neither overflow nor underflow
    amax = max(float(X.max()), -float(X.min()))
    scale = 1.0
    if amax > 0 and (amax > 1e100 or amax < 1e-100):
        scale = amax
        X = X / scale

    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    sq = norms * norms
    zero_rows = np.flatnonzero(norms == 0.0)

    # ---------------------------------------------------------------- singular values
    lo_, hi_ = min(n, d), max(n, d)
    if svd_method == "auto":
        svd_method = "svd" if lo_ * lo_ * hi_ <= _SVD_EXACT_WORK else "gram"
    if svd_method == "svd":
        sv = sla.svdvals(X, check_finite=False)
        rank_rule = "sigma_max * max(n, dim) * eps"
        rel = max(n, d) * _EPS
    else:
        # eigenvalues of the smaller Gram matrix (min(n, dim)^2 entries, never larger than X):
        # much faster than an SVD, accurate for sigma >~ sqrt(eps) * sigma_max
        Gs = X.T @ X if n >= d else X @ X.T
        lam = np.linalg.eigvalsh(Gs)[::-1]
        del Gs
        sv = np.sqrt(np.maximum(lam, 0.0))
        rank_rule = "sigma_max * sqrt(max(n, dim) * eps) (singular values from the Gram matrix)"
        rel = math.sqrt(max(n, d) * _EPS)
    smax = float(sv[0]) if sv.size else 0.0
    if tol is None:
        rank_tol = smax * rel
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
    unit = bool(np.all(np.abs(norms - 1.0) <= 1e-12))  # fast path: dist^2 = 2 - 2 cos
    if unit:
        U = X
    else:
        inv = np.zeros_like(norms)
        nz = norms > 0
        inv[nz] = 1.0 / norms[nz]
        U = X * inv[:, None]  # unit rows (zero rows stay zero)
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

    dup_abs = duplicate_tol * R  # no pair in a block can be a duplicate if its min distance > this
    for i0 in range(0, n, chunk):
        i1 = min(n, i0 + chunk)
        for j0 in range(i0, n, chunk):
            j1 = min(n, j0 + chunk)
            diag_block = i0 == j0
            if diag_block and i1 - i0 < 2:
                continue
            C = U[i0:i1] @ U[j0:j1].T  # cosines (0 for pairs with a zero row)
            np.clip(C, -1.0, 1.0, out=C)
            # diagonal blocks: only the strict upper triangle counts; the last row of such a
            # block has no pair and the first column neither (rs / cs exclude them)
            rs = slice(0, i1 - i0 - 1) if diag_block else slice(None)
            cs = slice(1, None) if diag_block else slice(None)
            rows = np.arange(i1 - i0)[rs]
            if diag_block:
                low = np.tril_indices(i1 - i0)
            # squared distances
            if unit:
                D = np.multiply(C, -2.0)
                D += 2.0
            else:
                D = np.multiply.outer(norms[i0:i1], norms[j0:j1])
                D *= C
                D *= -2.0
                D += sq[i0:i1, None]
                D += sq[None, j0:j1]
            np.maximum(D, 0.0, out=D)
            np.sqrt(D, out=D)  # D = distances
            if diag_block:
                dv = D[np.triu_indices(i1 - i0, k=1)]
                D[low] = np.inf
            else:
                dv = D.ravel()
            b = np.multiply(dv, 1.0 / width).astype(np.int64)
            np.minimum(b, _FINE_BINS - 1, out=b)
            fine += np.bincount(b, minlength=_FINE_BINS)
            dist_sum += float(dv.sum())
            dmax_est = max(dmax_est, float(dv.max()))
            del dv, b
            am = np.argmin(D[rs], axis=1)
            dmin_rows = D[rows, am]
            cand_dist.add(dmin_rows, rows + i0, am + j0)
            if float(dmin_rows.min()) <= dup_abs + 1e-7 * R:
                big = np.maximum.outer(norms[i0:i1], norms[j0:j1])
                big *= duplicate_tol
                di, dj = np.nonzero(D <= big)
                # the Gram estimate is uncertain at ~1e-8 R: confirm candidates directly
                ok = (np.linalg.norm(X[di + i0] - X[dj + j0], axis=1)
                      <= duplicate_tol * np.maximum(norms[di + i0], norms[dj + j0]))
                dups.add(di[ok] + i0, dj[ok] + j0)
                del big
            del D
            # sines: the pair with the largest |cos| per row
            A = np.abs(C)
            if diag_block:
                A[low] = -1.0
            am = np.argmax(A[rs], axis=1)
            cmax = A[rows, am]
            cand_sine.add(1.0 - cmax * cmax, rows + i0, am + j0)
            if float(cmax.max()) >= cos_thr:
                ci, cj = np.nonzero(A >= cos_thr)
                ci, cj = ci + i0, cj + j0
                good = (norms[ci] > 0) & (norms[cj] > 0)
                ci, cj = ci[good], cj[good]
                sgn = np.einsum("kj,kj->k", U[ci], U[cj]) > 0
                # exact |sin| for the candidates
                sin = np.linalg.norm(U[ci] - np.einsum("kj,kj->k", U[ci], U[cj])[:, None] * U[cj],
                                     axis=1)
                isdup = (np.linalg.norm(X[ci] - X[cj], axis=1)
                         <= duplicate_tol * np.maximum(norms[ci], norms[cj]))
                close = sin <= parallel_tol
                p = close & sgn & ~isdup
                a = close & ~sgn
                par.add(ci[p], cj[p])
                anti.add(ci[a], cj[a])
            # delta^2, both directions: (i -> j) ||x_j||^2 sin^2 ; (j -> i) ||x_i||^2 sin^2
            if unit:
                cand_delta.add(1.0 - cmax * cmax, rows + i0, am + j0)
            else:
                S2 = np.multiply(A, A, out=A)
                np.subtract(1.0, S2, out=S2)
                T = S2 * sq[None, j0:j1]
                if diag_block:
                    T[low] = np.inf
                am = np.argmin(T[rs], axis=1)
                cand_delta.add(T[rows, am], rows + i0, am + j0)
                np.multiply(S2, sq[i0:i1, None], out=T)
                if diag_block:
                    T[low] = np.inf
                am = np.argmin(T[:, cs], axis=0)
                cols = np.arange(j1 - j0)[cs]
                cand_delta.add(T[am, cols], cols + j0, am + i0)
                del S2, T
            del A, C

    out: dict[str, Any] = {
        "n": n,
        "dim": d,
        "n_pairs": n_pairs,
        "row_norm_min": float(norms.min()) * scale,
        "row_norm_max": float(norms.max()) * scale,
        "unit_norm": bool(np.all(np.abs(norms * scale - 1.0) <= 1e-10)),
        "zero_norm_rows": int(zero_rows.size),
        "span_dim": span_dim,
        "rank_tol": float(rank_tol) * scale,
        "rank_tol_rule": rank_rule,
        "svd_method": svd_method,
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
            "(tanh, erf, sigmoid, x^2), and when phi' is a constant plus an odd function (ReLU, "
            "leaky ReLU, swish, GELU, softplus) once there are more pairs than the dimensions "
            "they span; --preprocess paper removes them"
        )
    return w




# ------------------------------------------------------------------ structural singularity of G∞
#
# G∞ = sum_j b_j (X X^T)^{⊙j} with b_j = c_{j-1}^2 >= 0 (SCIENCE §3: c_a the Hermite coefficients
# of phi'; unit-norm rows, rescaled rows change the weights but not which b_j vanish). All terms
# are PSD, so null(G∞) = ∩_{b_j > 0} {v : sum_i v_i x_i^{⊗j} = 0}. Which b_j vanish is read off
# the parity split of phi' = e + o (e even, o odd): the even part feeds the odd j, the odd part
# the even j, and a part that is a polynomial of degree q feeds only j <= q + 1 of its parity.
#
# * A part with infinitely many coefficients gives a kernel that is strictly positive definite on
#   points distinct up to sign (Chen, Menegatto & Sun 2003; on the circle: all harmonics of that
#   parity are > 0). Its features are x^{⊗j} of one parity, so a class of rows equal up to sign
#   (duplicates x_j = x_i, antipodes x_j = -x_i) collapses to one feature.
# * Equally spaced circle data (circulant G∞, eigenvalues = DFT of the first row): with
#   cos^j = 2^{1-j} sum_k C(j, (j-k)/2) cos(k θ), harmonic k has weight
#   β_k = sum_{j >= k, j ≡ k (2)} b_j 2^{1-j} C(j, (j-k)/2) (>= 0), which vanishes iff b_j = 0 for
#   all j >= k of k's parity; eigenvalue m of the n-point circulant is n sum_{k ≡ m (n)} β_|k| / 2
#   and is zero iff every harmonic aliasing to m vanishes. ReLU (phi' = 1/2 + odd: b_1 > 0, odd
#   j >= 3 absent) on even n: the odd m other than ±1, n/2 - 2 zeros (23 at n = 50); tanh
#   (phi' even: no even j): all even m, n/2 zeros. This is exactly what the class count below
#   gives for antipodal pairs (n/2 pairs spanning 2 dimensions), so one rule covers both.
# * phi a polynomial of degree p (phi' of degree p - 1): rank G∞ = rank of the monomial features
#   of the degrees fed (on rows of equal norm the top degree of each parity spans the lower ones);
#   at most sum_{a <= p-1, c_a != 0} C(d0 + a, a + 1) (Thm 4.3, SCIENCE §4).

_ST_TOL = 1e-10  # rows equal up to sign: ||x_i ∓ x_j|| <= _ST_TOL * ||x_i||
_ST_RANK_RTOL = 1e-10  # numerical rank of monomial feature matrices (singular values, relative)
_ST_MAX_POLY = 8  # a part of phi' is tested for being a polynomial up to this degree
_ST_MAX_FEATURES = 2e7  # entries of a monomial feature matrix formed (else a bound is used)


def _part_degree(f: np.ndarray, z: np.ndarray, tol: float) -> int | None:
    """-1 if f vanishes on the grid, the degree q if it is a polynomial of degree <= _ST_MAX_POLY
    (fit on the inner half, checked on the whole grid), else None (infinitely many terms)."""
    scale = max(float(np.max(np.abs(f))), 1e-300)
    if float(np.max(np.abs(f))) <= tol:
        return -1
    inner = np.abs(z) <= 0.5 * float(np.max(np.abs(z)))
    for q in range(_ST_MAX_POLY + 1):
        p = np.polynomial.Polynomial.fit(z[inner], f[inner], q)
        if float(np.max(np.abs(p(z) - f))) <= tol * max(1.0, scale):
            return q
    return None


def _derivative_parts(act: Any) -> dict[str, Any]:
    """Parity split of phi': degrees of its even and odd parts (see _part_degree) and whether
    phi' is positively homogeneous of degree 0 (phi'(c z) = phi'(z), c > 0: ReLU-like)."""
    # irregular grid avoiding 0 and simple kink locations
    z = np.concatenate([np.linspace(0.0137, 3.0, 301), np.linspace(3.0071, 9.0, 120)])
    zz = np.concatenate([-z[::-1], z])
    with np.errstate(all="ignore"):
        dp, dm = act.dphi(z), act.dphi(-z)
        dh = act.dphi(np.concatenate([2.0 * z, -2.0 * z]))
    if not (np.all(np.isfinite(dp)) and np.all(np.isfinite(dm)) and np.all(np.isfinite(dh))):
        return {"even": None, "odd": None, "homogeneous": False}
    scale = max(1.0, float(np.max(np.abs(dp))), float(np.max(np.abs(dm))))
    tol = 1e-9 * scale
    even = 0.5 * (dp + dm)
    odd = 0.5 * (dp - dm)
    return {
        "even": _part_degree(np.concatenate([even[::-1], even]), zz, tol),
        "odd": _part_degree(np.concatenate([-odd[::-1], odd]), zz, tol),
        "homogeneous": bool(np.max(np.abs(dh - np.concatenate([dp, dm]))) <= tol),
    }


def _sign_classes(X: np.ndarray, w: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Classes of rows equal up to sign, compared as u_i = w_i x_i (w: 1/||x_i|| to compare
    directions, or 1/max ||x||): (label, sign) per row, sign relative to the class's first row.
    Rows are sorted on |u . h| (h fixed) and only runs of neighbours closer than the tolerance
    are compared: O(n d + n log n) time, no copy of X."""
    n, d = X.shape
    h = np.random.default_rng(20201).standard_normal(d)
    key = np.abs(X @ h) * w
    order = np.argsort(key, kind="stable")
    ks = key[order]
    label = np.arange(n, dtype=np.int64)  # singletons: each row its own class
    sign = np.ones(n, dtype=np.int64)
    window = tol * (float(np.linalg.norm(h)) + 1.0) * 4.0
    close = np.flatnonzero(np.diff(ks) <= window)  # sorted neighbours that may be equal
    if close.size == 0:
        return label, sign
    # runs of consecutive close neighbours: positions [start, end] in sorted order
    breaks = np.flatnonzero(np.diff(close) > 1)
    starts = np.concatenate([[close[0]], close[breaks + 1]])
    ends = np.concatenate([close[breaks], [close[-1]]]) + 1
    for s0, e0 in zip(starts, ends, strict=True):
        idx = order[s0:e0 + 1]
        U = X[idx] * w[idx, None]
        lab = np.full(idx.size, -1, dtype=np.int64)
        for a in range(idx.size):
            if lab[a] >= 0:
                continue
            lab[a] = a
            rest = np.flatnonzero(lab[a + 1:] < 0) + a + 1
            if rest.size == 0:
                continue
            same = np.linalg.norm(U[rest] - U[a], axis=1) <= tol
            opp = np.linalg.norm(U[rest] + U[a], axis=1) <= tol
            lab[rest[same | opp]] = a
            sign[idx[rest[opp & ~same]]] = -1
        label[idx] = idx[lab]
    _, inv = np.unique(label, return_inverse=True)  # labels 0..k-1
    return inv.ravel().astype(np.int64), sign


def _monomial_rank(Y: np.ndarray, degrees: list[int]) -> tuple[int, int]:
    """(numerical rank, number of columns) of the monomial features of the given degrees of the
    rows of Y (coordinates in the span of the data). If the matrix would be too large, the
    bound min(rows, columns) is returned as the rank."""
    from itertools import combinations_with_replacement

    m, d0 = Y.shape
    cols = sum(math.comb(d0 + j - 1, j) for j in degrees)
    if m == 0 or cols == 0:
        return 0, cols
    if m * cols > _ST_MAX_FEATURES:
        return min(m, cols), cols
    F = np.empty((m, cols))
    c = 0
    for j in degrees:
        for idx in combinations_with_replacement(range(d0), j):
            F[:, c] = np.prod(Y[:, list(idx)], axis=1) if idx else 1.0
            c += 1
    F /= np.maximum(np.linalg.norm(F, axis=0), 1e-300)  # columns of unit norm
    sv = sla.svdvals(F, check_finite=False)
    return int(np.count_nonzero(sv > _ST_RANK_RTOL * sv[0])) if sv.size and sv[0] > 0 else 0, cols


def _span_coordinates(X: np.ndarray) -> np.ndarray:
    """Coordinates of the rows of X in an orthonormal basis of their span (n x d0)."""
    if X.shape[0] == 0:
        return X
    _, s, vt = sla.svd(X, full_matrices=False, check_finite=False)
    r = int(np.count_nonzero(s > max(X.shape) * _EPS * 16 * s[0])) if s[0] > 0 else 0
    return X @ vt[:r].T


def _degree_set(q: int, equal_norms: bool) -> list[int]:
    """Degrees j = a + 1 fed by a polynomial part of degree q: the top one on rows of equal norm
    (it spans the lower ones there), else all of its parity."""
    if q < 0:
        return []
    return [q + 1] if equal_norms else list(range(q + 1, 0, -2))


def structural_zeros(X: Any, activation: Any, *, train: str = "hidden", init: str = "dzps"
                     ) -> tuple[int, str]:
    """Number of eigenvalues of G∞ that are exactly zero for a structural reason, and the reason.

    ``(0, "")`` when there is none. Reasons (see the comment block above this function): rows
    equal up to sign (duplicates; antipodal pairs when phi' is even, odd, or a polynomial plus an
    even/odd function such as ReLU's 1/2 + step - 1/2: the pairs then give a zero each, less the
    dimension their polynomial features span); a polynomial phi (rank of its monomial features on
    the data); zero rows. Equally spaced circle data are the textbook case (circulant G∞): the
    count equals the number of DFT modes all of whose aliased harmonics vanish.

    Exact in exact arithmetic for ``train="hidden"`` and a scheme without bias (``dzps``);
    with a bias (``fanin``), the fan-out limit or the output layer trained, only duplicate and zero
    rows are counted. Rows count as equal up to sign within a relative 1e-10. Where a count
    depends on norms it cannot resolve (unequal row norms and a polynomial part of degree >= 1),
    the smaller, certain count is returned.
    """
    from ..activations.registry import activation as resolve

    act = resolve(activation)
    X = as_matrix(X)
    n = X.shape[0]
    if n < 2:
        return 0, ""
    amax = float(np.max(np.abs(X))) if X.size else 0.0
    if amax > 0 and (amax > 1e100 or amax < 1e-100):
        X = X / amax
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    zero = norms == 0.0
    n_zero = int(np.count_nonzero(zero))
    keep = np.flatnonzero(~zero)
    Xk = X[keep]
    nk = norms[keep]
    reasons: list[str] = []
    zeros = 0
    if n_zero and train == "hidden":  # G_ij = <x_i, x_j> E[...] = 0 on a zero row
        zeros += n_zero
        reasons.append(f"{n_zero} zero row{'s' if n_zero > 1 else ''} of the data")
    if Xk.shape[0] < 2:
        return zeros, "; ".join(reasons)

    plain = train == "hidden" and init == "dzps"
    parts = _derivative_parts(act) if plain else {"even": None, "odd": None, "homogeneous": False}
    homog = bool(parts["homogeneous"])
    # ReLU-like phi' (0-homogeneous): G∞ = R G∞(unit rows) R, so rows are compared as directions
    scale = float(np.max(nk))
    w = 1.0 / nk if homog else np.full(nk.size, 1.0 / scale)
    label, sign = _sign_classes(Xk, w, _ST_TOL)
    n_cls = int(label.max()) + 1
    size = np.bincount(label, minlength=n_cls)
    has_minus = np.bincount(label, weights=(sign < 0), minlength=n_cls) > 0
    n_dup = int(np.sum(size - 1 - has_minus))  # rows equal (same sign) to an earlier one
    first = np.full(n_cls, -1, dtype=np.int64)
    for idx in range(label.size - 1, -1, -1):
        first[label[idx]] = idx
    mixed = np.flatnonzero(has_minus)
    n_pairs = int(mixed.size)  # classes holding both x and -x: one antipodal zero each
    equal_norms = bool(np.all(np.abs(nk - nk[0]) <= 1e-12 * nk[0])) or homog
    e, o = parts["even"], parts["odd"]
    name = act.name

    def dup_text() -> str:
        return f"{n_dup} duplicate row{'s' if n_dup > 1 else ''}"

    if e is not None and o is not None:  # phi' a polynomial: rank of its monomial features
        degrees = sorted(_degree_set(e, equal_norms) + _degree_set(o, equal_norms))
        Y = _span_coordinates(Xk * w[:, None])
        rank, cols = _monomial_rank(Y, degrees)
        z = Xk.shape[0] - rank
        if z > 0:
            zeros += z
            reasons.append(
                f"{name}′ is a polynomial of degree {max(e, o)}: G∞ is built from the monomials of "
                f"degree {', '.join(map(str, degrees))} of the data's {Y.shape[1]}-dimensional "
                f"span ({cols} of them), whose values on the {Xk.shape[0]} rows have rank {rank}"
            )
    elif e is None and o is None:  # both parts infinite: only duplicates
        if n_dup:
            zeros += n_dup
            reasons.append(dup_text() + " (G∞ has equal rows)")
    else:  # one part infinite, the other a polynomial of degree q (q = -1: zero)
        q = e if e is not None else o
        assert q is not None
        inf_par = "odd" if e is not None else "even"  # parity of phi''s infinite part
        base = n_dup + n_pairs
        rank = 0
        if q >= 0 and mixed.size:
            reps = Xk[first[mixed]] * w[first[mixed], None]
            Y = _span_coordinates(reps)
            rank, _ = _monomial_rank(Y, _degree_set(q, equal_norms))
        z = base - rank
        if z > 0:
            zeros += z
            what = [] if not n_dup else [dup_text()]
            if n_pairs:
                what.append(f"{n_pairs} antipodal pair{'s' if n_pairs > 1 else ''} x_j = −x_i")
            if q < 0:
                reasons.append(
                    f"{name}′ is {'odd' if inf_par == 'odd' else 'even'}, so G∞ has equal or "
                    f"opposite rows for {' and '.join(what)}: one zero each"
                )
            else:
                poly = "a constant" if q == 0 else f"a polynomial of degree {q}"
                span = ("they span" if q == 0
                        else f"their degree-{q + 1} monomials span")
                reasons.append(
                    f"{name}′ is {poly} plus an {inf_par} function: {' and '.join(what)} give "
                    f"one zero each, less the {rank} dimension{'s' if rank != 1 else ''} {span} "
                    f"({base} − {rank})"
                )
    return zeros, "; ".join(reasons)
