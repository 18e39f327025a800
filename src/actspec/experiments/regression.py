"""Kernel regression with the G-matrix: what the trained network predicts at new points.

Gradient flow on ½‖y − u‖² with a constant kernel (SCIENCE §2) drives the training outputs to y
and moves the output at any other point x by ``G(x, X) G(X, X)⁻¹ (y − u₀)``. With the initial
outputs u₀ taken as 0 (their mean at infinite width), the network trained to convergence is the
kernel "ridgeless" regressor

    f(X_test) = G(X_test, X) G(X, X)⁻¹ y,

and ``ridge`` > 0 gives kernel ridge regression, ``G(X_test, X) (G(X, X) + ridge I)⁻¹ y``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.linalg

from ..core.errors import ActspecError
from ..core.validate import ParameterError, check_inputs
from ..finite.gram import gram

__all__ = ["kernel_regression"]


def kernel_regression(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    act: Any,
    *,
    ridge: float = 0.0,
    width: int | None = None,
    train: str = "hidden",
    init: str = "dzps",
    normalize: bool = False,
    seed: int = 0,
    dtype: str = "float64",
    device: str | None = "cpu",
) -> np.ndarray:
    """Predictions at ``X_test`` of the network trained to convergence on (``X_train``, ``y_train``)
    in the kernel regime: ``G(X_test, X) (G(X, X) + ridge I)⁻¹ y`` with G the infinite-width
    G∞ (``width=None``) or the finite-width G of the same sampled weights (``width=m``, ``seed``).

    ``y_train``: (n,) or (n, C); the result has shape (n',) or (n', C). ``train``, ``init``,
    ``normalize`` as in :func:`actspec.gram`. With ``ridge=0`` the solve needs G(X, X) to be
    nonsingular: when it is not (duplicate or antipodal rows, a polynomial activation on
    low-dimensional data, or eigenvalues below n·eps·λ_max), an :class:`ActspecError` says why
    and asks for ``ridge`` > 0. The solve uses the eigendecomposition of G(X, X) (float64).
    """
    if not (isinstance(ridge, (int, float)) and math.isfinite(ridge) and ridge >= 0):
        raise ParameterError(f"{{-ridge}} must be a finite number >= 0 (got {ridge!r})")
    Xtr = check_inputs(X_train)
    Xte = check_inputs(X_test)
    n = Xtr.shape[0]
    if Xte.shape[1] != Xtr.shape[1]:
        raise ParameterError(
            f"{{-X_test}} must have d={Xtr.shape[1]} columns like {{-X_train}} (got {Xte.shape})")
    y = np.asarray(y_train, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ParameterError(f"{{-y_train}} must have shape (n={n},) or (n, C) (got {y.shape})")
    if not np.all(np.isfinite(y)):
        raise ParameterError("{-y_train} contains NaN or inf")
    common = dict(train=train, init=init, normalize=normalize, seed=seed, dtype=dtype, device=device)
    G = gram(Xtr, act, width, **common)  # type: ignore[arg-type]
    K = gram(Xtr, act, width, Y=Xte, **common)  # type: ignore[arg-type]  # n x n'
    lam, V = scipy.linalg.eigh(G, driver="evd", check_finite=False)
    lmax = float(max(abs(lam[-1]), abs(lam[0])))
    floor = n * np.finfo(np.float64).eps * lmax
    shifted = lam + float(ridge)
    if float(shifted.min()) <= floor:
        raise ActspecError(_singular_message(Xtr, act, lam, floor, ridge, width, train, init))
    alpha = V @ ((V.T @ y) / (shifted if y.ndim == 1 else shifted[:, None]))
    return K.T @ alpha


def _singular_message(X: np.ndarray, act: Any, lam: np.ndarray, floor: float, ridge: float,
                      width: int | None, train: str, init: str) -> str:
    from ..data.diagnostics import structural_zeros

    what = "G∞(X_train, X_train)" if width is None else f"G(X_train, X_train) at width {width}"
    z, reason = structural_zeros(X, act, train=train, init=init)
    why = (f"it has {z} exactly zero eigenvalue{'s' if z > 1 else ''} ({reason})" if z
           else f"its smallest eigenvalue {float(lam[0]) + ridge:.3g} is below n·eps·λ_max = {floor:.3g}")
    hint = f"e.g. ridge={max(1e3 * floor, 1e-12 * float(lam[-1])):.1g}"
    return (f"{what} is singular, so the ridgeless regressor is not unique: {why}; "
            f"pass ridge > 0 ({hint})")
