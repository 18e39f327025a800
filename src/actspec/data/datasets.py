"""Data sets of the activation paper: synthetic families, real images, user files, preprocessing.

The paper's results depend on the data through its span dimension d0, its separation delta
(Assumption 2) and whether it is "smoothed" (Assumption 3). This module produces all of them:

=============  ==========================================================================
spec           data
=============  ==========================================================================
``circle``     n equally spaced points ``(cos 2*pi*k/n, sin 2*pi*k/n)`` on the unit circle,
               lifted to R^dim by a seeded random orthonormal map (a great circle of S^{dim-1});
               default n=50, dim=10 (S^9, as in the paper's Figure 1).
``sphere``     n points uniform on S^{dim-1}; default n=100, dim=10.
``subspace``   n generic Gaussian points spanning exactly ``span_dim`` dimensions of R^dim
               (a seeded random subspace), rows normalised; default n=100, dim=20, span_dim=3.
``smoothed``   the paper's Assumption 3: ``subspace`` points x0_i plus i.i.d. N(0, noise^2)
               noise *within the same span* (per coordinate of an orthonormal basis of the
               span), renormalised to unit norm. The span stays ``span_dim``-dimensional, but the
               points are generic within it (full rank in the span, no duplicates).
``digits``     scikit-learn's bundled handwritten digits (1797 x 64, 10 classes; pixels / 16);
               all rows unless ``n`` is given (then a seeded random subset, original order kept).
``cifar10``    CIFAR-10 training batches from a local directory (``data_dir``) in the standard
               python-pickle layout (``data_batch_1`` ... ``data_batch_5``; pixels / 255);
               default a seeded random subset of n=10000 images. ``cifar10-test`` reads
               ``test_batch``.
a path         ``.npy`` (2-D array), ``.npz`` (key ``X``, optional ``y``) or ``.csv`` (numeric;
               a first row that is not all numbers is a header; a header column named ``label``,
               ``labels``, ``y``, ``target`` or ``class`` holds the labels, every other column
               is a feature; without a header every column is a feature). ``n`` takes a seeded
               random subset.
=============  ==========================================================================

Preprocessing (``preprocess``; several steps may be chained with ``+`` or ``,``, applied in
order, ``paper`` last): ``none``; ``center`` (subtract the column means); ``standardize``
(centre, then divide each column by its standard deviation; constant columns are left at 0);
``paper`` (the paper's lift of Section 2: scale all rows by one factor so that max ||x|| = 1/sqrt2,
append sqrt(1/2 - ||x||^2) so that every row has norm 1/sqrt2, then append the constant 1/sqrt2:
every row then has norm 1 and the last coordinate 1/sqrt2, and ||x_i - x_j|| >= eps implies
Assumption 2 with delta >= s * eps / sqrt2 for the scale factor s). After preprocessing, rows are
normalised to unit norm when ``normalize`` is true (the paper lift is already unit norm and is not
touched again).

Labels (``labels``): ``auto`` (random +-1 for synthetic data, the classes for digits/cifar10, the
file's labels for a file when it has some, else random +-1), ``random`` (seeded +-1 floats),
``none``, or a path to a ``.npy``/``.csv``/``.txt`` file with one label per row (its length must
equal the number of rows loaded or, for real/file data, the number of rows before subsetting).
Integer-valued labels are returned as int64 class ids, others as float64.

Everything is reproducible from ``seed`` (numpy ``default_rng``): the generators use
``default_rng(seed)``; random labels and random subsets use separate streams derived from seed.
"""

from __future__ import annotations

import csv
import math
import os
import pickle
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ActspecError

__all__ = [
    "Dataset",
    "load_data",
    "check_source",
    "load_labels",
    "circle",
    "sphere",
    "subspace",
    "smoothed",
    "digits",
    "cifar10",
    "load_file",
    "preprocess_paper",
    "normalize_rows",
    "center_columns",
    "standardize_columns",
    "apply_preprocess",
    "SYNTHETIC",
    "REAL",
    "PREPROCESS_STEPS",
    "MAX_ELEMENTS",
    "CIFAR10_TRAIN_FILES",
    "CIFAR10_TEST_FILES",
]

#: largest n * dim accepted (2e9 float64 entries = 16 GB)
MAX_ELEMENTS = 2_000_000_000
SYNTHETIC = ("circle", "sphere", "subspace", "smoothed")
REAL = ("digits", "cifar10", "cifar10-test")
PREPROCESS_STEPS = ("none", "center", "standardize", "paper")
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{k}" for k in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch",)
LABEL_COLUMN_NAMES = ("label", "labels", "y", "target", "class")

_DEFAULTS: dict[str, dict[str, int]] = {
    "circle": {"n": 50, "dim": 10},
    "sphere": {"n": 100, "dim": 10},
    "subspace": {"n": 100, "dim": 20, "span_dim": 3},
    "smoothed": {"n": 100, "dim": 20, "span_dim": 3},
    "cifar10": {"n": 10000},
}

# independent random streams derived from the user's seed
_LABEL_STREAM = 0x1ABE1
_SUBSET_STREAM = 0x5B5E7


@dataclass
class Dataset:
    """A loaded data set: rows of ``X`` are the inputs x_i (after preprocessing)."""

    X: np.ndarray
    y: np.ndarray | None
    name: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def dim(self) -> int:
        return int(self.X.shape[1])


# ----------------------------------------------------------------------------- validation


def _check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ActspecError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ActspecError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ActspecError(f"--seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_size(n: int, dim: int, what: str) -> None:
    if n * dim > MAX_ELEMENTS:
        raise ActspecError(
            f"{what}: n*dim = {n}*{dim} = {n * dim:.3g} entries is too large "
            f"(limit {MAX_ELEMENTS:.0e}); choose a smaller --n or --dim"
        )


def as_matrix(X: Any, what: str) -> np.ndarray:
    """Validate and convert to a C-contiguous float64 (n, dim) array with finite entries."""
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # ragged nested sequences
        raise ActspecError(
            f"{what}: rows have different lengths ({exc}); give a rectangular (n, dim) array"
        ) from None
    if arr.dtype == object:
        raise ActspecError(
            f"{what}: rows have different lengths or non-numeric entries; "
            "give a rectangular numeric (n, dim) array"
        )
    if arr.dtype.names is not None:
        raise ActspecError(
            f"{what}: structured arrays are not supported; save a plain numeric (n, dim) array"
        )
    if np.iscomplexobj(arr):
        raise ActspecError(f"{what}: complex data is not supported; give real numbers")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ActspecError(f"{what}: data must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ActspecError(
            f"{what}: data must be a 2-D (n, dim) array, got shape {arr.shape}; "
            "reshape to one row per point"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ActspecError(
            f"{what}: data is empty (shape {arr.shape}); give at least one row and one column"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ActspecError(
            f"{what}: data contains NaN or inf (first at row {int(bad[0])}, column {int(bad[1])}); "
            "remove or impute those entries"
        )
    return arr


def normalize_rows(X: np.ndarray, *, what: str = "data") -> np.ndarray:
    """Rows scaled to unit Euclidean norm (float64, C-contiguous); zero rows are an error.

    Rows whose norm is already 1 to within 2 ulp are returned bit-for-bit unchanged (so exactly
    constructed unit data such as ``circle`` keeps its exact inner products).
    """
    X = as_matrix(X, what)
    with np.errstate(over="ignore", under="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    risky = ~np.isfinite(norms) | (norms < 1e-150)
    if np.any(risky):  # over/underflow of the squared norm: rescale those rows first
        sub = X[risky]
        scale = np.max(np.abs(sub), axis=1)
        safe = np.where(scale > 0, scale, 1.0)
        norms[risky] = scale * np.linalg.norm(sub / safe[:, None], axis=1)
    zero = np.flatnonzero(norms == 0.0)
    if zero.size:
        raise ActspecError(
            f"{what}: {zero.size} row(s) have zero norm (first: row {int(zero[0])}) and cannot be "
            "normalised; use --preprocess paper (which lifts them), remove them, or pass "
            "--no-normalize-inputs"
        )
    done = np.abs(norms - 1.0) <= 2 * np.finfo(np.float64).eps
    if np.all(done):
        return X
    out = X / norms[:, None]
    out[done] = X[done]
    # tiny (subnormal) or huge norms: divide by the row's max first (exact), then by the norm;
    # a subnormal norm keeps too few digits to divide by (5e-324 * sqrt 2 rounds to 5e-324)
    bad = risky | ~np.isfinite(out).all(axis=1)
    if np.any(bad):
        sub = X[bad] / np.max(np.abs(X[bad]), axis=1, keepdims=True)
        out[bad] = sub / np.linalg.norm(sub, axis=1, keepdims=True)
    return np.ascontiguousarray(out)


def center_columns(X: np.ndarray) -> np.ndarray:
    """Subtract the column means."""
    X = as_matrix(X, "data")
    return np.ascontiguousarray(X - X.mean(axis=0, keepdims=True))


def standardize_columns(X: np.ndarray) -> np.ndarray:
    """Centre and divide each column by its standard deviation (constant columns become 0)."""
    Xc = center_columns(X)
    sd = Xc.std(axis=0, keepdims=True)
    sd[sd == 0.0] = 1.0
    return np.ascontiguousarray(Xc / sd)


def preprocess_paper(X: np.ndarray) -> np.ndarray:
    """The paper's lift (Section 2), (n, d) -> (n, d + 2) with unit-norm rows.

    All rows are scaled by the single factor s = (1/sqrt2) / max_i ||x_i|| (so relative geometry
    is kept), a coordinate sqrt(1/2 - ||s x_i||^2) brings every row to norm 1/sqrt2, and a constant
    coordinate 1/sqrt2 is appended. Inner products of lifted rows lie in [0, 1], so no two rows are
    antiparallel, and ||x_i - x_j|| >= eps implies Assumption 2 with delta >= s * eps / sqrt2.
    An all-zero input maps to rows (0, ..., 0, 1/sqrt2, 1/sqrt2).
    """
    X = as_matrix(X, "data")
    n, d = X.shape
    _check_size(n, d + 2, "--preprocess paper")
    half = math.sqrt(0.5)
    out = np.empty((n, d + 2), dtype=np.float64)
    big = float(np.max(np.abs(X)))
    if big > 0.0 and not 2.0**-400 < big < 2.0**400:  # scale by a power of 2 (exact)
        X = np.ldexp(X, -math.frexp(big)[1])
    hi, lo = _squared_norms_dd(X)
    k = int(np.argmax(hi + lo))
    m_hi, m_lo = float(hi[k]), float(lo[k])
    mx = math.sqrt(m_hi + m_lo)
    s = half / mx if mx > 0.0 else half
    out[:, :d] = X * s
    # the lift coordinate s sqrt(M^2 - |x|^2) from squared norms in double-double: the old
    # sqrt(1/2 - |s x|^2) cancelled catastrophically (unit rows got up to 1.5e-8 instead of 0,
    # rows close to the largest lost half their digits). Rows whose norm agrees with the largest
    # to within 4 ulp count as the largest: their lift coordinate is exactly 0 (the stored rows
    # of unit data differ from norm 1 by rounding only, and sqrt would turn 1e-16 into 1e-8)
    if mx > 0.0:
        gap = (m_hi - hi) + (m_lo - lo)  # m_hi - hi is exact where it is small (Sterbenz)
        gap[gap <= 8 * np.finfo(np.float64).eps * m_hi] = 0.0
        out[:, d] = s * np.sqrt(gap)
    else:  # all-zero input: every row is lifted to (0, ..., 0, 1/sqrt2, 1/sqrt2)
        out[:, d] = half
    out[:, d + 1] = half
    return out


def _squared_norms_dd(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared row norms as double-double pairs (hi, lo), |hi + lo - |x|^2| ~ 1e-30 |x|^2.

    Each square is split exactly (Veltkamp/Dekker: x^2 = p + e) and the columns are added by a
    pairwise tree of error-free TwoSums, vectorised over rows (entries must not overflow when
    squared; the caller scales them into range)."""
    n, d = X.shape
    out_hi = np.empty(n)
    out_lo = np.empty(n)
    step = max(1, (1 << 19) // max(1, d))
    for r0 in range(0, n, step):
        x = X[r0 : r0 + step]
        c = 134217729.0 * x  # 2^27 + 1
        xh = c - (c - x)
        xl = x - xh
        hi = x * x
        lo = ((xh * xh - hi) + 2.0 * xh * xl) + xl * xl
        while hi.shape[1] > 1:
            if hi.shape[1] % 2:
                hi = np.concatenate([hi, np.zeros((hi.shape[0], 1))], axis=1)
                lo = np.concatenate([lo, np.zeros((lo.shape[0], 1))], axis=1)
            a, b = hi[:, 0::2], hi[:, 1::2]
            t = a + b
            bb = t - a
            err = (a - (t - bb)) + (b - bb)
            lo = lo[:, 0::2] + lo[:, 1::2] + err
            hi = t
        h, lw = hi[:, 0], lo[:, 0]
        t = h + lw
        out_lo[r0 : r0 + step] = lw - (t - h)
        out_hi[r0 : r0 + step] = t
    return out_hi, out_lo


def _parse_preprocess(preprocess: str | None) -> list[str]:
    if preprocess is None:
        return []
    text = str(preprocess).strip().lower()
    steps = [s.strip() for s in text.replace(",", "+").split("+") if s.strip()]
    out: list[str] = []
    for s in steps:
        s = {"centre": "center", "standardise": "standardize", "lift": "paper"}.get(s, s)
        if s not in PREPROCESS_STEPS:
            raise ActspecError(
                f"unknown --preprocess step {s!r}; choose from {', '.join(PREPROCESS_STEPS)} "
                "(chain steps with '+', e.g. center+paper)"
            )
        if s != "none":
            out.append(s)
    if "paper" in out and out.index("paper") != len(out) - 1:
        raise ActspecError("--preprocess: 'paper' must be the last step (e.g. center+paper)")
    return out


def apply_preprocess(X: np.ndarray, preprocess: str | None = None, *, normalize: bool = True,
                     what: str = "data") -> tuple[np.ndarray, list[str]]:
    """Apply the preprocessing chain then (unless the paper lift was last) unit-norm rows."""
    steps = _parse_preprocess(preprocess)
    X = as_matrix(X, what)
    for s in steps:
        if s == "center":
            X = center_columns(X)
        elif s == "standardize":
            X = standardize_columns(X)
        elif s == "paper":
            X = preprocess_paper(X)
    if normalize and (not steps or steps[-1] != "paper"):
        if steps:
            what = f"{what} after --preprocess {'+'.join(steps)}"
        X = normalize_rows(X, what=what)
    return np.ascontiguousarray(X, dtype=np.float64), steps


# ----------------------------------------------------------------------------- generators


def _orthonormal(rng: np.random.Generator, dim: int, k: int) -> np.ndarray:
    """(k, dim) matrix with orthonormal rows, Haar-distributed (QR with sign fix)."""
    A = rng.standard_normal((dim, k))
    Q, R = np.linalg.qr(A)
    signs = np.sign(np.diag(R))
    signs[signs == 0] = 1.0
    return np.ascontiguousarray((Q * signs).T)


def circle(n: int = 50, dim: int = 10, seed: int = 0) -> np.ndarray:
    """n equally spaced unit vectors on a great circle of S^{dim-1}.

    Points (cos 2*pi*k/n, sin 2*pi*k/n), k = 0..n-1, mapped by a seeded random (2, dim)
    orthonormal map, so <x_k, x_l> = cos(2*pi*(k-l)/n) and ||x_k - x_l|| = 2 sin(pi*|k-l|/n).
    """
    n = _check_int(n, "--n")
    dim = _check_int(dim, "--dim")
    seed = _check_seed(seed)
    if dim < 2:
        raise ActspecError(f"circle: --dim must be >= 2 (the circle needs a plane), got {dim}")
    _check_size(n, dim, "circle")
    rng = np.random.default_rng(seed)
    Q = _orthonormal(rng, dim, 2)
    t = 2.0 * np.pi * np.arange(n) / n
    P = np.stack([np.cos(t), np.sin(t)], axis=1)
    return np.ascontiguousarray(P @ Q)


def sphere(n: int = 100, dim: int = 10, seed: int = 0) -> np.ndarray:
    """n points uniform on the unit sphere S^{dim-1} (normalised Gaussians)."""
    n = _check_int(n, "--n")
    dim = _check_int(dim, "--dim")
    seed = _check_seed(seed)
    _check_size(n, dim, "sphere")
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, dim))
    norms = np.linalg.norm(Z, axis=1)
    while np.any(norms == 0.0):  # probability zero, but keep the contract
        bad = norms == 0.0
        Z[bad] = rng.standard_normal((int(bad.sum()), dim))
        norms = np.linalg.norm(Z, axis=1)
    return np.ascontiguousarray(Z / norms[:, None])


def _check_span(n: int, dim: int, span_dim: int, what: str) -> None:
    if span_dim > dim:
        raise ActspecError(f"{what}: --span-dim ({span_dim}) must be <= --dim ({dim})")
    if span_dim > n:
        raise ActspecError(
            f"{what}: --span-dim ({span_dim}) must be <= --n ({n}); "
            "n points span at most n dimensions"
        )


def subspace(n: int = 100, dim: int = 20, span_dim: int = 3, seed: int = 0) -> np.ndarray:
    """n generic unit vectors spanning exactly ``span_dim`` dimensions of R^dim.

    Gaussian coefficients in a seeded random orthonormal basis of a span_dim-dimensional subspace,
    rows normalised (normalising does not change the span).
    """
    n = _check_int(n, "--n")
    dim = _check_int(dim, "--dim")
    span_dim = _check_int(span_dim, "--span-dim")
    seed = _check_seed(seed)
    _check_span(n, dim, span_dim, "subspace")
    _check_size(n, dim, "subspace")
    rng = np.random.default_rng(seed)
    B = _orthonormal(rng, dim, span_dim)
    C = rng.standard_normal((n, span_dim))
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    return np.ascontiguousarray(C @ B)


def smoothed(n: int = 100, dim: int = 20, span_dim: int = 3, noise: float = 0.1,
             seed: int = 0) -> np.ndarray:
    """The paper's smoothed data (Assumption 3), unit rows spanning ``span_dim`` dimensions.

    x_i = (x0_i + n_i) / ||x0_i + n_i|| where x0_i are the ``subspace`` points (same seed, so
    ``noise=0`` gives exactly ``subspace(n, dim, span_dim, seed)``) and n_i has i.i.d.
    N(0, noise^2) coordinates in an orthonormal basis of the same span V0: the perturbation stays
    within the span, as in the paper, so the span dimension is still ``span_dim``.
    """
    n = _check_int(n, "--n")
    dim = _check_int(dim, "--dim")
    span_dim = _check_int(span_dim, "--span-dim")
    seed = _check_seed(seed)
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        raise ActspecError(f"--noise must be a number, got {noise!r}") from None
    if not math.isfinite(noise) or noise < 0:
        raise ActspecError(f"--noise must be a finite number >= 0, got {noise}")
    _check_span(n, dim, span_dim, "smoothed")
    _check_size(n, dim, "smoothed")
    rng = np.random.default_rng(seed)
    B = _orthonormal(rng, dim, span_dim)
    C = rng.standard_normal((n, span_dim))
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    if noise > 0:
        noise_rng = np.random.default_rng([seed, 0x5E0])
        C = C + noise * noise_rng.standard_normal((n, span_dim))
        norms = np.linalg.norm(C, axis=1)
        if np.any(norms == 0.0):  # pragma: no cover - probability zero
            raise ActspecError("smoothed: a noisy point is exactly zero; choose another --seed")
        C /= norms[:, None]
    return np.ascontiguousarray(C @ B)


# ----------------------------------------------------------------------------- real data


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits: X (1797, 64) in [0, 1] (pixels / 16), y int64."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        raise ActspecError(
            "digits: scikit-learn is not installed; pip install scikit-learn"
        ) from None
    d = load_digits()
    X = np.ascontiguousarray(d.data, dtype=np.float64) / 16.0
    y = np.asarray(d.target, dtype=np.int64)
    return X, y


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays (CIFAR batches need nothing else)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_dir(data_dir: str | os.PathLike[str] | None, files: tuple[str, ...], spec: str) -> Path:
    need = "data_batch_1..data_batch_5 and test_batch"
    if data_dir is None:
        raise ActspecError(
            f"{spec}: give --data-dir, the directory holding the extracted 'cifar-10-batches-py' "
            f"files ({need})"
        )
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise ActspecError(
            f"{spec}: --data-dir {str(root)!r} is not a directory; it must hold the extracted "
            f"'cifar-10-batches-py' files ({need})"
        )
    for cand in (root, root / "cifar-10-batches-py"):
        if all((cand / f).is_file() for f in files):
            return cand
    missing = [f for f in files if not (root / f).is_file()]
    raise ActspecError(
        f"{spec}: no {', '.join(missing)} in {str(root)!r}; --data-dir must hold the extracted "
        f"'cifar-10-batches-py' files {need} (python-pickle batch layout, from "
        "cifar-10-python.tar.gz)"
    )


def _read_cifar_batch(path: Path, spec: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as fh:
            obj = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError) as exc:
        raise ActspecError(
            f"{spec}: cannot read {str(path)!r} as a CIFAR-10 python-pickle batch ({exc}); "
            "use the files from cifar-10-python.tar.gz"
        ) from None
    if not isinstance(obj, dict):
        raise ActspecError(f"{spec}: {str(path)!r} is not a CIFAR-10 batch (expected a dict)")

    def get(key: str) -> Any:
        for k in (key.encode(), key):
            if k in obj:
                return obj[k]
        raise ActspecError(
            f"{spec}: {str(path)!r} has no {key!r} entry; expected a CIFAR-10 batch dict with "
            "b'data' (N, 3072) uint8 and b'labels'"
        )

    data = np.asarray(get("data"))
    labels = np.asarray(get("labels"))
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ActspecError(
            f"{spec}: {str(path)!r} has data of shape {data.shape}; "
            "expected (N, 3072) (32x32x3 images)"
        )
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise ActspecError(
            f"{spec}: {str(path)!r} has {labels.shape[0] if labels.ndim else 0} labels for "
            f"{data.shape[0]} images; the batch file is corrupt"
        )
    if not np.issubdtype(data.dtype, np.number) or not np.issubdtype(labels.dtype, np.integer):
        raise ActspecError(f"{spec}: {str(path)!r} has non-numeric data or labels")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) > 9):
        bad = int(np.flatnonzero((labels < 0) | (labels > 9))[0])
        raise ActspecError(
            f"{spec}: {str(path)!r} has label {int(labels[bad])} (image {bad}) outside 0..9; "
            "the batch file is corrupt or not CIFAR-10"
        )
    if data.dtype != np.uint8 and data.size:
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(data) & (data >= 0) & (data <= 255) & (data == np.round(data))
        if not np.all(ok):
            i, k = (int(v) for v in np.argwhere(~ok)[0])
            raise ActspecError(
                f"{spec}: {str(path)!r} has pixel value {data[i, k]!r} (image {i}, entry {k}) "
                "that is not an integer in 0..255; the batch file is corrupt or not CIFAR-10"
            )
    return data, labels.astype(np.int64)


def cifar10(data_dir: str | os.PathLike[str] | None, *, test: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 from the standard python-pickle batches: X (N, 3072) uint8, y (N,) int64.

    ``data_dir`` is the extracted ``cifar-10-batches-py`` directory (or its parent); the training
    set is ``data_batch_1`` .. ``data_batch_5``, the test set ``test_batch``. Rows are the raw
    R, G, B planes (1024 values each) in the file's layout.
    """
    spec = "cifar10-test" if test else "cifar10"
    files = CIFAR10_TEST_FILES if test else CIFAR10_TRAIN_FILES
    root = _cifar_dir(data_dir, files, spec)
    parts = [_read_cifar_batch(root / f, spec) for f in files]
    X = np.concatenate([p[0] for p in parts], axis=0)
    y = np.concatenate([p[1] for p in parts], axis=0)
    return X, y


# ----------------------------------------------------------------------------- files


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _is_header(first: list[str]) -> bool:
    """A header by content: the first row has a cell that is not a number (a byte-order mark
    has already been stripped by the reader; blank cells do not count)."""
    return any(c.strip() and not _is_number(c.strip()) for c in first)


def _read_csv(path: Path, what: str, *, labels_only: bool = False
              ) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    try:
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first cell
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ActspecError(
            f"{what}: cannot read CSV ({exc}); give a readable comma-separated file"
        ) from None
    if not rows:
        raise ActspecError(f"{what}: the CSV file is empty; give at least one row of numbers")
    header: list[str] | None = None
    if _is_header(rows[0]):
        header = [c.strip() for c in rows[0]]
        rows = rows[1:]
        if not rows:
            raise ActspecError(f"{what}: the CSV file has a header but no data rows")
    width = len(header) if header is not None else len(rows[0])
    for k, r in enumerate(rows):
        if len(r) != width:
            line = k + (2 if header is not None else 1)
            raise ActspecError(
                f"{what}: ragged CSV: row at line {line} has {len(r)} fields, expected {width}; "
                "every row needs the same number of comma-separated values"
            )
    try:
        M = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    except ValueError:
        for k, r in enumerate(rows):
            for c in r:
                if not _is_number(c.strip()):
                    line = k + (2 if header is not None else 1)
                    raise ActspecError(
                        f"{what}: non-numeric value {c.strip()!r} at line {line}; the CSV must be "
                        "numeric (an optional header row, label column named 'label' or 'y')"
                    ) from None
        raise  # pragma: no cover
    y = None
    if header is not None:
        lower = [h.lower() for h in header]
        label_cols = [k for k, h in enumerate(lower) if h in LABEL_COLUMN_NAMES]
        if len(label_cols) > 1:
            raise ActspecError(
                f"{what}: several label columns {[header[k] for k in label_cols]}; keep one column "
                f"named one of {', '.join(LABEL_COLUMN_NAMES)}"
            )
        if label_cols:
            y = M[:, label_cols[0]]
            M = np.delete(M, label_cols[0], axis=1)
            if M.shape[1] == 0 and not labels_only:
                raise ActspecError(f"{what}: the CSV has a label column but no feature columns")
        # said once the file is known to be good (an error line stays the only line)
        shown = ", ".join(repr(h) for h in header[:6]) + (", ..." if len(header) > 6 else "")
        warnings.warn(
            f"{what}: the first row ({shown}) is taken as a column header, not data",
            UserWarning, stacklevel=3,
        )
    return M, y, header


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ActspecError(
            f"{what}: cannot load ({exc}); save a plain numeric array with numpy.save "
            "(object/pickled arrays are not accepted)"
        ) from None
    except (OSError, EOFError) as exc:
        raise ActspecError(f"{what}: cannot read .npy file ({exc})") from None


def _existing_file(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """The data file's path and its name for messages; ActspecError if it is missing or a folder."""
    p = Path(path).expanduser()
    what = f"data file {str(p)!r}"
    if not p.exists():
        raise ActspecError(
            f"{what} does not exist; give an existing .npy, .npz or .csv path or a data set name"
        )
    if p.is_dir():
        raise ActspecError(f"{what} is a directory; give a .npy, .npz or .csv file")
    _check_regular(p, what)
    return p, what


def _check_regular(p: Path, what: str) -> None:
    """Refuse FIFOs, devices and sockets: reading one may block for ever (or never end)."""
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise ActspecError(f"{what}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise ActspecError(
            f"{what} is {kind}; give a regular file (save the stream to a file first)"
        )


def load_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a user data file (.npy, .npz with X[, y], .csv): returns raw (X, y or None)."""
    p, what = _existing_file(path)
    suffix = p.suffix.lower()
    y: Any = None
    if suffix == ".npy":
        X = _load_npy(p, what)
    elif suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                key_x = next((k for k in ("X", "x") if k in keys), None)
                if key_x is None:
                    raise ActspecError(
                        f"{what}: no array 'X' in the .npz (keys: {', '.join(keys) or 'none'}); "
                        "save it with numpy.savez(path, X=X, y=y)"
                    )
                X = z[key_x]
                key_y = next((k for k in ("y", "Y", "labels") if k in keys), None)
                y = z[key_y] if key_y is not None else None
        except ActspecError:
            raise
        except (ValueError, OSError, EOFError) as exc:
            raise ActspecError(
                f"{what}: cannot load .npz ({exc}); save plain numeric arrays with numpy.savez"
            ) from None
    elif suffix in (".csv", ".txt"):
        X, y, _ = _read_csv(p, what)
    else:
        raise ActspecError(
            f"{what}: unknown file type {suffix!r}; use .npy, .npz (keys X, y) or .csv, "
            f"or a data set name ({', '.join(SYNTHETIC + REAL)})"
        )
    X = as_matrix(X, what)
    if y is not None:
        y = _as_labels(y, what)
        if y.shape[0] != X.shape[0]:
            raise ActspecError(
                f"{what}: {y.shape[0]} labels for {X.shape[0]} rows; give one label per row"
            )
    return X, y


def _as_labels(y: Any, what: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ActspecError(f"{what}: labels must be one value per row (1-D), got shape {arr.shape}")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ActspecError(f"{what}: labels must be numeric")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ActspecError(f"{what}: labels contain NaN or inf; remove or fix those rows")
    if arr.size and np.all(arr == np.round(arr)) and np.max(np.abs(arr)) < 2**53:
        return arr.astype(np.int64)
    return arr


def load_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """Labels from a .npy / .csv / .txt file (one value per row; a one-column header is allowed)."""
    p = Path(path).expanduser()
    what = f"label file {str(p)!r}"
    if not p.exists() or p.is_dir():
        raise ActspecError(
            f"{what} does not exist; give a .npy or .csv file with one label per row"
        )
    _check_regular(p, what)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        arr = _load_npy(p, what)
    elif suffix in (".csv", ".txt"):
        M, y, _ = _read_csv(p, what, labels_only=True)
        if y is not None:
            arr = y
        elif M.shape[1] == 1:
            arr = M[:, 0]
        else:
            raise ActspecError(
                f"{what}: {M.shape[1]} columns; give one label per row "
                "(or name the label column 'label')"
            )
    else:
        raise ActspecError(f"{what}: unknown file type {suffix!r}; use .npy or .csv")
    return _as_labels(arr, what)


# ----------------------------------------------------------------------------- load_data


def _random_labels(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, _LABEL_STREAM])
    return rng.choice(np.array([-1.0, 1.0]), size=n)


def _subset(N: int, n: int | None, seed: int, what: str) -> np.ndarray | None:
    """Sorted seeded random subset of range(N) of size n (None = all rows)."""
    if n is None or n == N:
        return None
    if n > N:
        raise ActspecError(f"{what}: --n {n} is larger than the {N} rows available; use --n <= {N}")
    rng = np.random.default_rng([seed, _SUBSET_STREAM])
    return np.sort(rng.choice(N, size=n, replace=False))


def _unknown_source(raw: str) -> ActspecError:
    import difflib

    names = [*SYNTHETIC, *REAL]
    hint = difflib.get_close_matches(raw.lower(), names, n=1, cutoff=0.6)
    did = f"did you mean {hint[0]!r}? " if hint else ""
    return ActspecError(
        f"unknown data set {raw!r}; {did}use one of {', '.join(SYNTHETIC + REAL)} or a path to "
        "a .npy, .npz or .csv file"
    )


def _source_key(raw: str) -> str:
    key = raw.lower().replace("_", "-")
    return "cifar10" if key == "cifar" else key


def check_source(spec: Any, *, data_dir: str | os.PathLike[str] | None = None) -> str:
    """Check a data source without loading it (for commands that load data late, e.g.
    ``reproduce``): a known name (for CIFAR-10: the batch files are present) or an existing
    .npy/.npz/.csv file. Returns ``"synthetic"``, ``"real"`` or ``"file"``."""
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise ActspecError(
            f"--data must be a data set name ({', '.join(SYNTHETIC + REAL)}) "
            "or a .npy/.npz/.csv path"
        )
    raw = str(spec).strip()
    key = _source_key(raw)
    if key in SYNTHETIC:
        return "synthetic"
    if key in REAL:
        if key != "digits":
            test = key == "cifar10-test"
            _cifar_dir(data_dir, CIFAR10_TEST_FILES if test else CIFAR10_TRAIN_FILES, key)
        return "real"
    if not os.path.splitext(raw)[1] and not os.path.exists(raw):
        raise _unknown_source(raw)
    p, what = _existing_file(raw)
    if p.suffix.lower() not in (".npy", ".npz", ".csv", ".txt"):
        raise ActspecError(
            f"{what}: unknown file type {p.suffix.lower()!r}; use .npy, .npz (keys X, y) or .csv"
        )
    return "file"


def load_data(
    spec: str = "circle",
    *,
    n: int | None = None,
    dim: int | None = None,
    span_dim: int | None = None,
    noise: float = 0.1,
    seed: int = 0,
    data_dir: str | None = None,
    normalize: bool = True,
    preprocess: str | None = None,
    labels: str = "auto",
) -> Dataset:
    """Load or generate a data set (see the module docstring for specs, preprocessing, labels).

    Returns a :class:`Dataset` with X (n, dim) float64 after preprocessing/normalisation, labels y
    (or None) and JSON-safe ``info``.
    """
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise ActspecError(
            f"--data must be a data set name ({', '.join(SYNTHETIC + REAL)}) "
            "or a .npy/.npz/.csv path"
        )
    seed = _check_seed(seed)
    if n is not None:
        n = _check_int(n, "--n")
    if dim is not None:
        dim = _check_int(dim, "--dim")
    if span_dim is not None:
        span_dim = _check_int(span_dim, "--span-dim")
    raw = str(spec).strip()
    key = _source_key(raw)

    info: dict[str, Any] = {"spec": raw, "seed": seed}
    y: np.ndarray | None
    kind: str  # "synthetic" | "real" | "file"
    n_available: int | None = None
    sub_idx: np.ndarray | None = None  # rows kept from real/file data (None = all)

    if key in SYNTHETIC:
        kind = "synthetic"
        d = _DEFAULTS[key]
        n_ = n if n is not None else d["n"]
        dim_ = dim if dim is not None else d["dim"]
        if key == "circle":
            X = circle(n_, dim_, seed)
        elif key == "sphere":
            X = sphere(n_, dim_, seed)
        else:
            sd = span_dim if span_dim is not None else d["span_dim"]
            if key == "subspace":
                X = subspace(n_, dim_, sd, seed)
            else:
                X = smoothed(n_, dim_, sd, noise, seed)
                info["noise"] = float(noise)
            info["span_dim"] = sd
        if key == "circle":
            info["span_dim"] = 2
        elif key == "sphere":
            info["span_dim"] = min(n_, dim_)
        name = key
        info["source"] = "synthetic"
        y = None
        n_classes = None
    elif key in REAL:
        kind = "real"
        if dim is not None:
            raise ActspecError(f"{key}: --dim is fixed by the data set; leave it out")
        yall: np.ndarray | None
        if key == "digits":
            Xall, yall = digits()
            info["source"] = "sklearn.datasets.load_digits"
            want = n
        else:
            Xall, yall = cifar10(data_dir, test=(key == "cifar10-test"))
            info["source"] = "cifar10 python-pickle batches"
            info["data_dir"] = str(Path(data_dir).expanduser()) if data_dir else None
            want = n if n is not None else min(_DEFAULTS["cifar10"]["n"], Xall.shape[0])
        n_available = int(Xall.shape[0])
        idx = _subset(n_available, want, seed, key)
        if idx is not None:
            Xall, yall = Xall[idx], yall[idx]
        sub_idx = idx
        if key != "digits":  # uint8 pixels; digits() already scaled to [0, 1]
            Xall = np.asarray(Xall, dtype=np.float64) / 255.0
        X = as_matrix(Xall, key)
        y = yall
        name = key
        n_classes = int(np.unique(yall).size)
        info["subset"] = idx is not None
    else:
        kind = "file"
        if dim is not None:
            raise ActspecError(f"data file {raw!r}: --dim is fixed by the file; leave it out")
        if not os.path.splitext(raw)[1] and not os.path.exists(raw):
            raise _unknown_source(raw)
        Xall, yall = load_file(raw)
        n_available = int(Xall.shape[0])
        idx = _subset(n_available, n, seed, f"data file {raw!r}")
        if idx is not None:
            Xall = Xall[idx]
            yall = yall[idx] if yall is not None else None
        X = Xall
        y = yall
        name = f"file:{os.path.basename(raw)}"
        info["source"] = "file"
        info["path"] = str(Path(raw).expanduser())
        info["subset"] = idx is not None
        n_classes = int(np.unique(y).size) if y is not None and y.dtype == np.int64 else None
        sub_idx = idx

    if n_available is not None:
        info["n_available"] = n_available
    raw_dim = int(X.shape[1])
    X, steps = apply_preprocess(X, preprocess, normalize=normalize, what=name)

    # labels
    lab = "auto" if labels is None else str(labels).strip()
    lab_key = lab.lower()
    if lab_key == "auto":
        if y is None:
            y = _random_labels(X.shape[0], seed)
            info["labels"] = "random +-1"
        else:
            info["labels"] = "classes" if kind == "real" else "file"
    elif lab_key == "random":
        y = _random_labels(X.shape[0], seed)
        n_classes = None
        info["labels"] = "random +-1"
    elif lab_key == "none":
        y = None
        n_classes = None
        info["labels"] = "none"
    else:
        if not os.path.splitext(lab)[1] and not os.path.exists(lab):
            raise ActspecError(
                f"--labels {lab!r}: use auto, random, none, or a path to a .npy/.csv label file"
            )
        yl = load_labels(lab)
        if yl.shape[0] == X.shape[0]:
            y = yl
        elif kind != "synthetic" and n_available is not None and yl.shape[0] == n_available:
            y = yl if sub_idx is None else yl[sub_idx]
        else:
            expect = str(X.shape[0])
            if n_available not in (None, X.shape[0]):
                expect += f" (or {n_available} before subsetting)"
            raise ActspecError(
                f"label file {lab!r} has {yl.shape[0]} labels but the data has {expect} rows; "
                "give one label per row"
            )
        n_classes = int(np.unique(y).size) if y.dtype == np.int64 else None
        info["labels"] = f"file:{lab}"

    info.update(
        {
            "name": name,
            "n": int(X.shape[0]),
            "dim": int(X.shape[1]),
            "raw_dim": raw_dim,
            "preprocess": "+".join(steps) if steps else "none",
            "normalized": bool(normalize or (steps and steps[-1] == "paper")),
            "n_classes": n_classes,
        }
    )
    info.setdefault("span_dim", None)
    return Dataset(X=np.ascontiguousarray(X, dtype=np.float64), y=y, name=name, info=info)
