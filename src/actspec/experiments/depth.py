"""Depth studies (Liu & Hui): deep NTK spectra across depths, gradient angles of close input pairs,
and their summaries. Returns JSON-ready dicts; the kernels themselves live in :mod:`actspec.kernels.deep`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.errors import ActspecError
from ..core.linalg import condition_number
from ..core.validate import check_inputs
from ..kernels.deep import (
    KERNELS,
    DeepParams,
    Kernel,
    check_depth,
    deep_params,
    input_covariance,
    iter_deep_kernels,
)

__all__ = [
    "gradient_angles",
    "input_angles",
    "pair_indices",
    "pair_angles",
    "angle_pairs",
    "angle_curve",
    "small_angle_data",
    "SPECTRUM_MODES",
    "kernel_spectrum",
    "parse_depths",
    "depth_study",
    "depth_summary",
]


def gradient_angles(K: np.ndarray) -> np.ndarray:
    """Angles arccos(K_ij / sqrt(K_ii K_jj)) between feature vectors with Gram matrix K.

    With K = Theta (the NTK) these are the angles between the gradients grad f(x_i), grad f(x_j)."""
    K = np.asarray(K, dtype=np.float64)
    d = np.sqrt(np.clip(np.diag(K), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = K / np.outer(d, d)
    c = np.clip(np.nan_to_num(c, nan=0.0), -1.0, 1.0)
    np.fill_diagonal(c, 1.0)
    return np.arccos(c)


def input_angles(X: Any) -> np.ndarray:
    """Angles between the input vectors (rows of X)."""
    Xv = check_inputs(X)
    return gradient_angles(input_covariance(Xv, 0.0))


def pair_indices(n: int, *, max_pairs: int = 200_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs i < j: all of them, or a seeded random subset of ``max_pairs`` beyond that."""
    total = n * (n - 1) // 2
    if total <= max_pairs:
        i, j = np.triu_indices(n, 1)
        return i, j
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=3 * max_pairs)
    j = rng.integers(0, n, size=3 * max_pairs)
    keep = i < j
    return i[keep][:max_pairs], j[keep][:max_pairs]


def pair_angles(K: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """arccos(K_ij / sqrt(K_ii K_jj)) for the given index pairs only."""
    d = np.sqrt(np.clip(np.diag(K), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = K[i, j] / (d[i] * d[j])
    return np.arccos(np.clip(np.nan_to_num(c, nan=0.0), -1.0, 1.0))


def angle_pairs(
    A_in: np.ndarray, A_grad: np.ndarray, *, max_pairs: int = 200_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(input angle, gradient angle) for the pairs i < j (a seeded subset beyond ``max_pairs``)."""
    i, j = pair_indices(A_in.shape[0], max_pairs=max_pairs, seed=seed)
    return A_in[i, j], A_grad[i, j]


def angle_curve(a_in: np.ndarray, a_grad: np.ndarray, *, bins: int = 24) -> dict[str, Any]:
    """Binned gradient angle against input angle, and the closest pairs' angles (JSON-ready).

    Keys: ``input_angle`` (bin centres), ``gradient_angle_mean``, ``gradient_angle_min``,
    ``gradient_angle_max``, ``count`` per bin, ``min_input_angle`` and ``gradient_angle_at_min``
    (the closest pair of inputs), ``ratio_small`` (mean gradient/input angle ratio over the 5%
    closest pairs: > 1 means the gradients of similar inputs are better separated than the inputs).
    """
    a_in = np.asarray(a_in, dtype=float)
    a_grad = np.asarray(a_grad, dtype=float)
    if a_in.size == 0:
        return {"input_angle": [], "gradient_angle_mean": [], "count": []}
    lo, hi = float(a_in.min()), float(a_in.max())
    if hi <= lo:
        hi = lo + 1e-12
    edges = np.linspace(lo, hi, bins + 1)
    which = np.clip(np.searchsorted(edges, a_in, side="right") - 1, 0, bins - 1)
    cnt = np.bincount(which, minlength=bins)
    sums = np.bincount(which, weights=a_grad, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan)
    mins = np.full(bins, np.nan)
    maxs = np.full(bins, np.nan)
    order = np.argsort(which, kind="stable")
    splits = np.split(a_grad[order], np.cumsum(cnt)[:-1])
    for k, seg in enumerate(splits):
        if seg.size:
            mins[k], maxs[k] = seg.min(), seg.max()
    k_min = int(np.argmin(a_in))
    small = a_in <= np.quantile(a_in, 0.05)
    pos = small & (a_in > 0)
    ratio = float(np.mean(a_grad[pos] / a_in[pos])) if np.any(pos) else float("nan")
    return {
        "input_angle": 0.5 * (edges[:-1] + edges[1:]),
        "gradient_angle_mean": mean,
        "gradient_angle_min": mins,
        "gradient_angle_max": maxs,
        "count": cnt,
        "min_input_angle": float(a_in[k_min]),
        "gradient_angle_at_min": float(a_grad[k_min]),
        "ratio_small": ratio,
    }


def small_angle_data(n: int, dim: int, spread: float = 0.1, *, seed: int = 0) -> np.ndarray:
    """n unit vectors x_i = (e + spread g_i)/||.||, g_i ~ N(0, I/dim), e a random unit vector.

    Pairwise angles are about spread * sqrt(2) (all points in a narrow cone: "similar inputs");
    for n <= dim the points are linearly independent, so X X^T is invertible and a linear net's
    NTK condition number is finite.
    """
    if n < 1 or dim < 1:
        raise ActspecError(f"n and dim must be >= 1 (got n={n}, dim={dim})")
    if not (math.isfinite(spread) and spread > 0):
        raise ActspecError(f"spread (--noise) must be a positive number (got {spread!r})")
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(dim)
    e /= np.linalg.norm(e)
    G = rng.standard_normal((n, dim)) / math.sqrt(dim)
    X = e[None, :] + spread * G
    return X / np.linalg.norm(X, axis=1, keepdims=True)


SPECTRUM_MODES = ("auto", "full", "extremes")


_DENSE_LIMIT = 2500  # "auto": all eigenvalues up to this n, extremes only beyond


def kernel_spectrum(K: np.ndarray, mode: str = "auto") -> dict[str, Any]:
    """Spectrum summary of a symmetric PSD kernel (keys as :meth:`actspec.Spectrum.to_dict`).

    ``mode="full"``: all eigenvalues (dense, O(n^3) with a large constant). ``"extremes"``:
    lambda_max by Lanczos and lambda_min by shift-invert Lanczos on a Cholesky factor (about 5x
    faster at n = 4000; ``eigenvalues`` is then None), falling back to the dense solver when the
    Cholesky factorisation fails (lambda_min below float64 resolution). ``"auto"``: full up to
    n = 2500.
    """
    from ..spectra.summary import spectrum

    if mode not in SPECTRUM_MODES:
        raise ActspecError(f"spectrum mode must be one of {', '.join(SPECTRUM_MODES)} (got {mode!r})")
    K = np.asarray(K, dtype=np.float64)
    n = K.shape[0]
    if mode == "full" or (mode == "auto" and n <= _DENSE_LIMIT) or n < 64:
        return spectrum(K).to_dict(with_eigenvalues=True)
    import scipy.linalg
    import scipy.sparse.linalg as spla

    if not np.all(np.isfinite(K)):
        raise ActspecError("kernel contains NaN or inf (overflow with depth?); use --scaling cphi")
    try:
        cf = scipy.linalg.cho_factor(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return spectrum(K).to_dict(with_eigenvalues=True)
    v0 = np.ones(n) / math.sqrt(n)
    lmax = float(spla.eigsh(K, k=1, which="LA", tol=1e-12, v0=v0, return_eigenvectors=False)[0])
    op = spla.LinearOperator((n, n), matvec=lambda v: scipy.linalg.cho_solve(cf, v), dtype=np.float64)
    lmin = float(
        spla.eigsh(K, k=1, sigma=0.0, which="LM", OPinv=op, tol=1e-12, v0=v0, return_eigenvectors=False)[0]
    )
    resolution = n * np.finfo(np.float64).eps * abs(lmax)
    cond, lower = condition_number(lmax, lmin, resolution)
    return {
        "eigenvalues": None,
        "lambda_min": lmin,
        "lambda_max": lmax,
        "condition_number": float(cond),
        "trace": float(np.trace(K)),
        "effective_rank": None,
        "resolution": float(resolution),
        "condition_number_is_lower_bound": bool(lower),
        "n_unresolved": None,
    }


def parse_depths(spec: Any) -> list[int]:
    """'1..8' (range), '1,2,4,8' (list), '8' (= 1..8), or an int / list of ints -> sorted depths."""
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return list(range(1, check_depth(spec) + 1))
    if isinstance(spec, (list, tuple)):
        vals: set[int] = set()
        for s in spec:
            vals.update(parse_depths(s) if isinstance(s, str) else [check_depth(s)])
        return sorted(vals)
    text = str(spec).strip()
    try:
        if ".." in text:
            lo, hi = text.split("..", 1)
            a, b = int(lo), int(hi)
            if a > b:
                raise ValueError
            out = list(range(a, b + 1))
        elif "," in text:
            out = sorted({int(t) for t in text.split(",") if t.strip()})
        else:
            out = list(range(1, int(text) + 1))
    except ValueError:
        raise ActspecError(
            f"bad --depth {spec!r}: give a range '1..8', a list '1,2,4,8' or a maximum '8'"
        ) from None
    for v in out:
        check_depth(v)
    if not out:
        raise ActspecError(f"bad --depth {spec!r}: no depths selected")
    return out


def depth_study(
    X: Any,
    activations: list[Any],
    depths: Any = "1..8",
    *,
    width: int | None = None,
    kernel: Kernel = "ntk",
    scaling: str | float = "cphi",
    bias: float = 0.0,
    seed: int = 0,
    spectrum_mode: str = "auto",
    angle_bins: int = 24,
    dtype: str = "float64",
    device: str | None = "cpu",
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Spectrum of the depth-l kernel and gradient angles, per activation and depth.

    ``width=None``: the infinite-width kernels (one recursion per activation up to max depth);
    otherwise the empirical kernels of a random network of that width (float64 by default).
    Each result: activation, kink_class, depth, width ("inf" or m), kernel, scaling, weight_var,
    bias, the spectrum keys of :func:`kernel_spectrum`, and ``angles`` (:func:`angle_curve` of
    the angles between the kernel's feature vectors, i.e. the gradients for the NTK, against the
    input angles; radians).
    """
    Xv = check_inputs(X)
    ds = parse_depths(depths)
    if kernel not in KERNELS:
        raise ActspecError(f"kernel must be one of {', '.join(KERNELS)} (got {kernel!r})")
    if spectrum_mode not in SPECTRUM_MODES:
        raise ActspecError(
            f"spectrum mode must be one of {', '.join(SPECTRUM_MODES)} (got {spectrum_mode!r})"
        )
    pi, pj = pair_indices(Xv.shape[0], seed=seed)
    a_in = pair_angles(input_covariance(Xv, 0.0), pi, pj)
    plist = [deep_params(a, scaling, bias) for a in activations]  # validate all first
    results: list[dict[str, Any]] = []

    def emit(params: DeepParams, ell: int, K: np.ndarray, entry_error: float | None = None) -> None:
        spec = kernel_spectrum(K, spectrum_mode)
        if entry_error is not None:
            _apply_error_bar(spec, entry_error, K.shape[0])
        a_gr = pair_angles(K, pi, pj)
        rec = {
            "activation": params.act.name,
            "kink_class": params.act.kink_class,
            "depth": ell,
            "width": "inf" if width is None else int(width),
            "kernel": kernel,
            "scaling": params.scaling,
            "weight_var": params.weight_var,
            "bias": math.sqrt(params.bias_var),
            **spec,
            "angles": angle_curve(a_in, a_gr, bins=angle_bins),
        }
        results.append(rec)
        if on_result is not None:
            on_result(rec)

    for params in plist:
        if width is None:
            for layer in iter_deep_kernels(Xv, params, ds[-1], ntk=kernel == "ntk"):
                if layer.depth in ds:
                    emit(params, layer.depth, layer.kernel(kernel), layer.kernel_error(kernel))
        else:
            from ..finite.deep import empirical_deep_ntks

            emp = empirical_deep_ntks(Xv, params, ds, width, seed=seed, dtype=dtype, device=device)
            for ell in ds:
                e = emp[ell]
                K = {"ntk": e.ntk, "penultimate": e.penultimate, "nngp": e.nngp}[kernel]
                emit(params, ell, K)
    return results


def _apply_error_bar(spec: dict[str, Any], entry_error: float, n: int) -> None:
    """Add the recursion's error bar to a spectrum summary (issue 19 item 4).

    ``kernel_error`` is the infinite-width recursion's estimated bound on every entry's error
    (:attr:`actspec.kernels.deep.DeepLayer.error`) and ``error_bar`` = n * kernel_error bounds
    every eigenvalue's error (Weyl: |d lambda| <= ||dK||_2 <= n max |dK_ij|). ``resolution``
    becomes the larger of the eigensolver's n eps lambda_max and the error bar, and the condition
    number is a lower bound when lambda_min is below it: the float64 resolution alone is not the
    accuracy of a deep kernel (deep tanh: 1.6e-13 while lambda_min was 9e-4 off relatively).
    """
    bar = float(n) * float(entry_error)
    spec["kernel_error"] = float(entry_error)
    spec["error_bar"] = bar
    floor = max(float(spec["resolution"]), bar)
    spec["resolution"] = floor
    cond, lower = condition_number(float(spec["lambda_max"]), float(spec["lambda_min"]), floor)
    spec["condition_number"] = float(cond)
    spec["condition_number_is_lower_bound"] = bool(lower)
    ev = spec.get("eigenvalues")
    if ev is not None:
        for key in ("n_below_resolution", "n_unresolved"):
            if key in spec:
                spec[key] = int(sum(1 for v in ev if v < floor))


def depth_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per activation: condition numbers by depth, whether they fall with depth, and (when the
    linear net is among the results) whether they are below the linear net's at each depth."""
    by_act: dict[str, dict[int, dict[str, Any]]] = {}
    for r in results:
        by_act.setdefault(r["activation"], {})[r["depth"]] = r
    lin = by_act.get("linear")
    out: dict[str, Any] = {}
    for name, rows in by_act.items():
        ds = sorted(rows)
        conds = [rows[d]["condition_number"] for d in ds]
        lower = [bool(rows[d]["condition_number_is_lower_bound"]) for d in ds]
        exact = len(conds) > 1 and not any(lower)
        entry: dict[str, Any] = {
            "depths": ds,
            "condition_number": conds,
            "condition_number_is_lower_bound": lower,
            "decreases_with_depth": bool(
                exact and all(b < a for a, b in zip(conds[:-1], conds[1:], strict=True))
            ),
            "constant_in_depth": bool(exact and max(conds) - min(conds) <= 1e-8 * max(abs(c) for c in conds)),
        }
        if lin is not None and name != "linear":
            below: list[bool | None] = []
            for d in ds:
                if d not in lin:
                    below.append(None)
                    continue
                c_lin, lb_lin = lin[d]["condition_number"], lin[d]["condition_number_is_lower_bound"]
                c_me, lb_me = rows[d]["condition_number"], rows[d]["condition_number_is_lower_bound"]
                # lower bounds decide only one way; None: cannot tell in float64
                if not lb_me and not lb_lin:
                    below.append(bool(c_me < c_lin))
                elif not lb_me:
                    below.append(True if c_me < c_lin else None)
                elif not lb_lin:
                    below.append(False if c_me >= c_lin else None)
                else:
                    below.append(None)
            entry["below_linear"] = below
        out[name] = entry
    return out
