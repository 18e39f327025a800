"""Library-level runs behind the CLI commands: each returns the JSON-ready dict the command writes.

Usable directly from Python (``actspec.experiments.spectrum.run_spectrum(X, ["relu", "tanh"])``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..activations.registry import activation
from ..core.errors import ActspecError
from ..core.inits import init_scheme
from ..core.linalg import condition_number
from ..finite.gram import gram
from ..kernels.gram import TRAINS, normalization_constant
from ..kernels.hermite import hermite_coefficients
from ..spectra.summary import spectrum

__all__ = ["run_spectrum", "run_hermite"]


def run_spectrum(
    X: np.ndarray,
    activations: Sequence[str | Any],
    widths: Sequence[int | None] = (None,),
    *,
    train: str = "hidden",
    init: str = "dzps",
    normalize: bool = False,
    seed: int = 0,
    dtype: str = "float64",
    device: str | None = "cpu",
    on_progress: Callable[[str, int, int], None] | None = None,
    method: str = "auto",
    k: int = 6,
    tol: float = 1e-6,
    maxiter: int = 200,
    client: Any = None,
    log: Callable[[str], None] | None = None,
    vectors: bool = False,
    max_seconds: float | None = None,
) -> list[dict[str, Any]]:
    """Spectrum of G for every (activation, width): the ``results`` list of ``actspec spectrum``.

    ``max_seconds``: the time budget of each long computation (the iterative solver, a finite
    width G), checked before any work (None: :func:`actspec.core.resources.time_budget`, i.e.
    ``ACTSPEC_MAX_SECONDS`` or 6 h; 0 or inf: no limit). A run over it, or over the memory
    budget, is refused (ParameterError) with the estimate and the way out.

    At infinite width ``method`` chooses dense eigvalsh (all eigenvalues) or the matrix-free
    iterative solver (the ``k`` largest and ``k`` smallest with error bars; ``client``: a Dask
    client for its passes), or ``"auto"`` (:func:`actspec.largescale.choose_method`). Every
    infinite-width row records ``method`` and ``method_reason``; ``log`` receives the reason
    and the solver's progress lines.

    ``vectors=True`` adds ``"eigenvectors"`` to every row: an n x r float64 array whose columns
    are the orthonormal eigenvectors of ``"eigenvalues"`` in the same order (dense: all n; the
    iterative solver: its Ritz vectors, the k largest then the k smallest). It is an array, not
    JSON: take it out of the row before writing JSON (``actspec spectrum --save-vectors``).
    """
    from ..core.resources import time_limit
    from ..spectra.iterative import choose_method

    with time_limit(max_seconds):
        results = []
        # bad input fails before any work or output (the method line below goes to stderr)
        acts = [activation(spec) for spec in activations]
        if train not in TRAINS:
            raise ActspecError(f"--train must be one of {', '.join(TRAINS)} (got {train!r})")
        init_scheme(init)
        inf_method, inf_reason = (None, None)
        estimates: list[str] = []
        if any(m is None for m in widths):
            inf_method, inf_reason = choose_method(int(np.shape(X)[0]), method)  # type: ignore[arg-type]
            if inf_method == "dense":
                from ..core.resources import check_dense_fits

                check_dense_fits(int(np.shape(X)[0]), "G∞", copies=5.0 if vectors else 4.0,
                                 fix="use --method iterative (matrix-free, the --k extreme eigenvalues "
                                 "with error bars) or a smaller --n")
            if inf_method == "iterative":  # memory and time of the matrix-free solver, k <= n/5
                from ..spectra.iterative import check_iterative_budget

                workers = 1 if client is None else max(1, len(client.scheduler_info().get("workers", {})))
                Xv = np.asarray(X, dtype=np.float64)
                for act in acts:
                    check_iterative_budget(Xv, act, k, train=train, init=init, maxiter=maxiter,
                                           workers=workers, log=estimates.append)
        for m in widths:
            if m is not None:
                _check_finite_budget(X, int(m), train, dtype, device, log)
        if any(m is None for m in widths):
            if log is not None:  # after every check: an error is the only line on stderr
                from ..core.resources import available_memory as _free

                log(f"method {inf_reason} [{_free() / 2**30:.1f} GiB free now]")
                for act, line in zip(acts, estimates, strict=False):
                    log(f"{act.name}: {line}")
        for spec, act in zip(activations, acts, strict=True):
            c_phi = normalization_constant(act) if normalize else None
            for m in widths:
                if m is None and inf_method == "iterative":
                    row: dict[str, Any] = _iterative_row(
                        X, spec, act, train=train, init=init, normalize=normalize, k=k, tol=tol,
                        maxiter=maxiter, seed=seed, client=client, log=log, vectors=vectors,
                    )
                    row["method_reason"] = inf_reason
                    if c_phi is not None:
                        row["c_phi"] = c_phi
                    results.append(row)
                    continue
                label = f"{act.name} (m={m})"
                prog = None
                if on_progress is not None and m is not None:
                    prog = lambda done, tot, _l=label: on_progress(_l, done, tot)  # noqa: E731
                G = gram(
                    X,
                    act,
                    m,
                    train=train,  # type: ignore[arg-type]
                    init=init,
                    normalize=normalize,
                    seed=seed,
                    dtype=dtype,
                    device=device,
                    progress=prog,
                )
                s = spectrum(G, vectors=vectors)
                del G
                row = {
                    "activation": spec.strip() if isinstance(spec, str) else act.name,
                    "name": act.name,
                    "width": "inf" if m is None else int(m),
                    "kink_class": act.kink_class,
                    **s.row(),
                }
                if c_phi is not None:
                    row["c_phi"] = c_phi
                if m is None:
                    row["method"] = "dense"
                    row["method_reason"] = inf_reason
                    row["eigenvalues_complete"] = True
                if vectors:
                    row["eigenvectors"] = s.eigenvectors
                results.append(row)
        return results


def _check_finite_budget(X: Any, m: int, train: str, dtype: str, device: str | None,
                         log: Callable[[str], None] | None) -> None:
    """Refuse a finite-width G whose time or memory estimate does not fit the budget (one line,
    exit 2, with the estimate and the way out); say the estimate when it is long."""
    from ..core.resources import check_budget, estimate, estimate_seconds, format_seconds

    n, d = (int(v) for v in np.shape(X))
    dev = "cpu" if device in (None, "auto") else str(device)
    # the one finite-width time model (core.resources.estimate_seconds, also actspec gram's)
    est = estimate(seconds=estimate_seconds(n, d, m, 1, train, dtype, dev),
                   bytes=3 * 8 * n * n + 512 * 2**20 + 8 * n * d)
    check_budget(est, what=f"G at width {m:,} on {n} points (d={d})",
                 way_out="use a smaller {-width} ({-width} inf gives the exact m → ∞ limit)")
    if log is not None and est.seconds > 30:
        log(f"width {m:,}: estimated {format_seconds(est.seconds)} per activation")


def _iterative_row(X: np.ndarray, spec: str | Any, act: Any, *, train: str, init: str, normalize: bool,
                   k: int, tol: float, maxiter: int, seed: int, client: Any,
                   log: Callable[[str], None] | None, vectors: bool = False) -> dict[str, Any]:
    """One ``results`` row from the matrix-free solver: the contract keys from the known
    eigenvalues (``eigenvalues``: k largest then k smallest, descending) plus error bars."""
    from ..spectra.iterative import extreme_eigenvalues

    r = extreme_eigenvalues(X, act, k=k, train=train, init=init, normalize=normalize,  # type: ignore[arg-type]
                            method="iterative", tol=tol, maxiter=maxiter, seed=seed, client=client,
                            budget_checked=True,
                            log=None if log is None else (lambda msg: log(f"{act.name}: {msg}")),
                            vectors=vectors)
    lmin, lmax = float(r["smallest"][0]), float(r["largest"][0])
    err_min = float(r["smallest_error"][0])
    # λ_min known to ± err_min: when that interval reaches 0 the ratio is only a lower bound
    cond, lower = condition_number(lmax, lmin, err_min)
    n = int(np.shape(X)[0])
    extra: dict[str, Any] = {}
    if vectors:  # columns in the order of "eigenvalues": largest (descending), then smallest
        extra["eigenvectors"] = np.hstack([r["largest_vectors"], r["smallest_vectors"][:, ::-1]])
    return {
        **extra,
        "activation": spec.strip() if isinstance(spec, str) else act.name,
        "name": act.name,
        "width": "inf",
        "kink_class": act.kink_class,
        "eigenvalues": r["eigenvalues"],
        "lambda_min": lmin,
        "lambda_max": lmax,
        "condition_number": cond,
        "condition_number_is_lower_bound": lower,
        "trace": r["trace"],
        "effective_rank": None,
        "resolution": err_min,
        "n_below_resolution": None,
        "method": r["method"],
        "eigenvalues_complete": False,
        "eigenvalue_index": list(range(1, k + 1)) + list(range(n - k + 1, n + 1)),
        "lambda_min_error": err_min,
        "lambda_max_error": float(r["largest_error"][0]),
        "largest": r["largest"],
        "largest_error": r["largest_error"],
        "smallest": r["smallest"],
        "smallest_error": r["smallest_error"],
        "converged": r["converged"],
        "relative_residual": r["relative_residual"],
        "passes": r["passes"],
        "kernel_passes": r["kernel_passes"],
        "cache_dtype": r["cache_dtype"],
        "seconds": r["seconds"],
    }


def run_hermite(name: str | Any, degree: int, of: str = "derivative") -> dict[str, Any]:
    """Hermite coefficients of one activation: the JSON of ``actspec hermite``."""
    act = activation(name)
    c = hermite_coefficients(act, degree, of=of)  # type: ignore[arg-type]
    return {
        "activation": act.name,
        "kink_order": act.kink_order,
        "kink_class": act.kink_class,
        "of": of,
        "basis": "orthonormal probabilists' Hermite h_a = He_a / sqrt(a!)",
        "coefficients": c,
        "sum_of_squares": float(np.sum(c * c)),
    }
