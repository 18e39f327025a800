"""The spectrum of G for several activations and widths in the chosen arithmetic (``actspec
spectrum``): double precision (dense, or matrix-free on an optional Dask cluster) or extended
precision (infinite width)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.validate import ParameterError, check_precision

__all__ = ["METHODS", "spectrum_study", "check_vectors_path", "write_vectors"]

METHODS = ("auto", "dense", "iterative")


def _check_high(widths: Sequence[int | None], init: str) -> None:
    if any(w is not None for w in widths):
        raise ParameterError("{-precision} high computes the infinite-width G∞ only; use {-width} inf")
    if init != "dzps":
        raise ParameterError("{-precision} high supports {-init} dzps only")


def _check_double(n: int, method: str, k: int, workers: int) -> None:
    if method not in METHODS:
        raise ParameterError(f"{{-method}} must be auto, dense or iterative (got {method!r})")
    if k < 1:
        raise ParameterError(f"{{-k}} must be >= 1 (got {k})")
    if method == "iterative" and k > n // 5:  # dense: k is not used
        raise ParameterError(
            f"{{-k}} {k} is too large for the iterative solver at n={n}: at most k = {n // 5} "
            "(its LOBPCG blocks need n >= 5 k); use {-method} dense for all eigenvalues")
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
    vectors: bool = False,
) -> list[dict[str, Any]]:
    """One result row per (activation, width): :func:`actspec.experiments.spectrum.run_spectrum`
    for ``precision="double"``, :func:`actspec.highprec.kernels.run_spectrum_high` (``digits``;
    infinite width, dzps init) for ``"high"``.

    ``data``: a :class:`~actspec.data.datasets.Dataset` (circle data use their exact angles in
    extended precision). At infinite width, ``workers`` > 0 (a local cluster of that many
    processes) or ``scheduler`` (a running one) runs the matrix-free passes on Dask when the
    iterative method is chosen. ``vectors``: every row also holds ``"eigenvectors"`` (double
    precision only; see :func:`~actspec.experiments.spectrum.run_spectrum`)."""
    if check_precision(precision) == "high":
        if vectors:
            raise ParameterError("eigenvectors ({-save_vectors}) need {-precision} double")
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
            maxiter=maxiter, client=client, log=log, vectors=vectors,
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


def check_vectors_path(path: Any, results: int, precision: str = "double") -> None:
    """Before any work: ``--save-vectors`` names a .npy (one result) or .npz file."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ParameterError(f"{{-save_vectors}} must end in .npy or .npz (got {str(path)!r})")
    if suffix == ".npy" and results > 1:
        raise ParameterError(
            f"{{-save_vectors}} {str(path)!r}: a .npy file holds one matrix but there are {results} "
            "results (activations x widths); use a .npz file")
    if check_precision(precision) == "high":
        raise ParameterError("eigenvectors ({-save_vectors}) need {-precision} double")


def _label(row: dict[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{row['activation']}_{row['width']}")


def write_vectors(path: Any, rows: Sequence[dict[str, Any]], vectors: Sequence[Any]) -> None:
    """Write the eigenvectors of ``rows`` atomically: .npy (one matrix) or .npz (per result
    ``<label>.vectors``, ``<label>.eigenvalues`` and ``<label>.index``, 1-based positions)."""
    import numpy as np

    from ..core.io import atomic_path

    path = Path(path)
    if path.suffix.lower() == ".npy":
        [V] = vectors
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(V, dtype=np.float64), allow_pickle=False)
        return
    arrays: dict[str, Any] = {}
    for row, V in zip(rows, vectors, strict=True):
        label = base = _label(row)
        i = 2
        while f"{label}.vectors" in arrays:
            label, i = f"{base}_{i}", i + 1
        n = int(np.shape(V)[0])
        arrays[f"{label}.vectors"] = np.asarray(V, dtype=np.float64)
        arrays[f"{label}.eigenvalues"] = np.asarray(row["eigenvalues"], dtype=np.float64)
        arrays[f"{label}.index"] = np.asarray(row.get("eigenvalue_index", range(1, n + 1)),
                                              dtype=np.int64)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
