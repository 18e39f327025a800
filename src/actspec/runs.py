"""Library-level runs behind the CLI commands: each returns the JSON-ready dict the command writes.

Usable directly from Python (``actspec.runs.run_spectrum(X, ["relu", "tanh"])``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .activations import activation
from .gram import gram, normalization_constant
from .hermite import hermite_coefficients
from .spectrum import spectrum

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
) -> list[dict[str, Any]]:
    """Spectrum of G for every (activation, width): the ``results`` list of ``actspec spectrum``."""
    results = []
    for spec in activations:
        act = activation(spec)
        c_phi = normalization_constant(act) if normalize else None
        for m in widths:
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
            s = spectrum(G)
            row: dict[str, Any] = {
                "activation": spec.strip() if isinstance(spec, str) else act.name,
                "name": act.name,
                "width": "inf" if m is None else int(m),
                "kink_class": act.kink_class,
                "eigenvalues": s.eigenvalues,
                "lambda_min": s.lambda_min,
                "lambda_max": s.lambda_max,
                "condition_number": s.condition_number,
                "condition_number_is_lower_bound": s.condition_number_is_lower_bound,
                "trace": s.trace,
                "effective_rank": s.effective_rank,
                "resolution": s.resolution,
                "n_below_resolution": s.n_unresolved,
            }
            if c_phi is not None:
                row["c_phi"] = c_phi
            results.append(row)
    return results


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
