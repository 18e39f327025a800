"""The spectrum of G for several activations and widths in the chosen arithmetic (``actspec
spectrum``): double precision (dense, or matrix-free on an optional Dask cluster) or extended
precision (infinite width)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from ..core.validate import ParameterError, check_precision

__all__ = ["METHODS", "spectrum_study"]

METHODS = ("auto", "dense", "iterative")


def _check_high(widths: Sequence[int | None], init: str) -> None:
    if any(w is not None for w in widths):
        raise ParameterError("{-precision} high computes the infinite-width G∞ only; use {-width} inf")
    if init != "dzps":
        raise ParameterError("{-precision} high supports {-init} dzps only")


def _check_double(n: int, method: str, k: int, workers: int) -> None:
    if method not in METHODS:
        raise ParameterError(f"{{-method}} must be auto, dense or iterative (got {method!r})")
    if k < 1 or (method == "iterative" and 2 * k > n):  # dense: k is not used
        raise ParameterError(f"{{-k}} must satisfy 1 <= k <= n/2 (got {{-k}} {k} with n={n})")
    if workers < 0:
        raise ParameterError(f"{{-workers}} must be >= 0 (got {workers})")


def spectrum_study(
    data: Any,
    activations: Sequence[str | Any],
    widths: Sequence[int | None] = (None,),
    *,
    precision: str = "double",
    digits: int = 50,
    train: str = "hidden",
    init: str = "dzps",
    normalize: bool = False,
    seed: int = 0,
    dtype: str = "float64",
    device: str | None = "cpu",
    method: str = "auto",
    k: int = 6,
    tol: float = 1e-6,
    maxiter: int = 200,
    workers: int = 0,
    scheduler: str | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One result row per (activation, width): :func:`actspec.experiments.spectrum.run_spectrum`
    for ``precision="double"``, :func:`actspec.highprec.kernels.run_spectrum_high` (``digits``;
    infinite width, dzps init) for ``"high"``.

    ``data``: a :class:`~actspec.data.datasets.Dataset` (circle data use their exact angles in
    extended precision). At infinite width, ``workers`` > 0 (a local cluster of that many
    processes) or ``scheduler`` (a running one) runs the matrix-free passes on Dask when the
    iterative method is chosen."""
    if check_precision(precision) == "high":
        from ..highprec.kernels import run_spectrum_high

        _check_high(widths, init)
        rows = run_spectrum_high(data, activations, train=train, normalize=normalize, digits=digits)
        return _with_structure(rows, data.X, activations, 1, train, init)
    from ..spectra.iterative import choose_method
    from .cluster import cluster_client
    from .spectrum import run_spectrum

    n = int(data.n)
    _check_double(n, method, k, workers)
    on_cluster = (bool(workers or scheduler) and None in widths
                  and choose_method(n, method)[0] == "iterative")  # type: ignore[arg-type]
    with cluster_client(scheduler, workers or 2) if on_cluster else contextlib.nullcontext() as client:
        rows = run_spectrum(
            data.X, activations, widths, train=train, init=init, normalize=normalize, seed=seed,
            dtype=dtype, device=device, on_progress=on_progress, method=method, k=k, tol=tol,
            maxiter=maxiter, client=client, log=log,
        )
    return _with_structure(rows, data.X, activations, len(widths), train, init)


def _with_structure(rows: list[dict[str, Any]], X: Any, activations: Sequence[str | Any],
                    per_activation: int, train: str, init: str) -> list[dict[str, Any]]:
    """Adds ``structural_zeros`` (eigenvalues of G∞ exactly zero for a structural reason: antipodal
    pairs, duplicates, polynomial rank; :func:`actspec.data.diagnostics.structural_zeros`) and
    ``structural_reason`` to every infinite-width row."""
    from ..data.diagnostics import structural_zeros

    for r, row in enumerate(rows):  # rows are activation-major, widths inner
        if row.get("width") == "inf":
            spec = activations[r // per_activation]
            row["structural_zeros"], row["structural_reason"] = structural_zeros(
                X, spec, train=train, init=init)
    return rows
