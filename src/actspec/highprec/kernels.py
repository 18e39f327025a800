"""Extended-precision G∞ spectra (``--precision high``).

Why: a float64 eigensolver cannot resolve eigenvalues below about ``n * eps * lambda_max``
(~1e-14 relative), and tanh, swish, gelu... put most of their eigenvalues far below that on
low-dimensional data (SCIENCE §4, Thm 4.4). Computing them needs *every* step in extended
precision: the data's inner products, the matrix entries and the eigensolver (float64 entries carry
1e-16 absolute errors that would swamp eigenvalues of 1e-30).

How (unit-norm inputs, ``init="dzps"``):

* Inner products ``rho_ij = <x_i, x_j> / (|x_i| |x_j|)`` are computed exactly from the float64 rows
  (the rows are taken as exact numbers and renormalised in extended precision, so the diagonal is
  exactly 1), or, for ``circle`` data, from the angles: ``rho_ij = cos(2 pi (i - j) / n)``.
* Entries ``G∞_ij = rho_ij E[phi'(u) phi'(v)]``:

  - closed forms for relu, leaky_relu, linear, quadratic, cubic and erf (any precision);
  - for smooth activations the Hermite series ``sum_a c_a^2 rho^(a+1)`` (SCIENCE §3), with c_a
    computed in fixed-point integer arithmetic: trapezoidal rule on an equispaced grid (exponentially
    convergent for functions analytic in a strip, checked by comparing with the rule on every other
    node) and the bounded Hermite-function recurrence. The series is truncated at the degree A where
    the *tail* ``E phi'(z)^2 - sum_{a<=A} c_a^2`` (which bounds the truncation error of every
    entry, since |rho| <= 1) is below the target; the diagonal is ``E phi'(z)^2`` exactly;
  - activations with a kink and no closed form (elu, selu, user functions with kinks) have
    Hermite coefficients decaying only polynomially, so the series cannot reach high precision:
    their entries are the float64 theta-table evaluated at the angle of the extended-precision
    cosines (float64 accuracy, a few 1e-15; never worse than the plain float64 run). Their
    eigenvalues are large anyway (Thm 4.1), and the result says so (``entries: "float64
    entries"``, ``entry_error`` from the table's verified check error, a coarser ``resolution``).
* Eigenvalues: python-flint's arbitrary-precision QR algorithm (``acb_mat.eig(algorithm="approx")``)
  when python-flint is installed, otherwise mpmath's ``eigsy`` (Householder + QL). Both have absolute
  error about ``n * 2^-prec * lambda_max``.

``digits`` (default 50) is the target absolute accuracy of the entries, 10^-digits relative to the
largest entry; the working precision is ``digits + 20`` decimal digits. ``resolution`` = n * 10^-digits
* lambda_max: eigenvalues above it are accurate in relative terms (an eigenvalue of 1e-30 lambda_max
to ~18 digits with the default).

Cost (2 cores): n = 50 about a second, n = 100 a few seconds, n = 200 about half a minute with
python-flint (mpmath alone: about a minute more); entries cost ~ n^2 * A / 2 big-integer operations
with A the series degree (tanh ~700 at 50 digits, swish ~300, gelu/erf ~100), the eigensolver
~ n^3. Limits: n <= ``MAX_N`` (600), digits <= 200, unit-norm rows, ``init="dzps"``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import mpmath as mp
import numpy as np
import torch

from ..activations.base import Activation
from ..activations.expressions import mp_functions
from ..activations.registry import activation, custom_activation
from ..core.errors import ActspecError
from ..core.linalg import effective_rank

__all__ = [
    "MAX_N",
    "HighPrecCoefficients",
    "hermite_coefficients_highprec",
    "HighPrecGram",
    "gram_highprec",
    "rho_highprec",
    "eigvalsh_highprec",
    "circulant_eigenvalues",
    "HighPrecSpectrum",
    "spectrum_highprec",
    "run_spectrum_high",
    "flint_available",
]

MAX_N = 600
MAX_DIGITS = 200
_GUARD_DIGITS = 20
_LOG2_10 = math.log2(10.0)













# ---- backends -------------------------------------------------------------------------------






















# ---- registry of mpmath versions ------------------------------------------------------------











# ---- mpmath versions of the built-ins -------------------------------------------------------






# =============================================================================================
# fixed-point helpers (integers m standing for m * 2^-S)
# =============================================================================================


def _to_fixed(x: Any, S: int) -> int:
    """Round an mpf (or int/float) to the nearest multiple of 2^-S."""
    v = mp.mpf(x)
    if not mp.isfinite(v):
        raise ActspecError("non-finite value in the extended-precision computation")
    sign, man, exp, _ = v._mpf_
    if man == 0:
        return 0
    if sign:
        man = -man
    shift = exp + S
    if shift >= 0:
        return int(man) << shift
    return (int(man) + (1 << (-shift - 1))) >> (-shift)


def _from_fixed(m: int, S: int) -> Any:
    """The exact value m * 2^-S as an mpf (never rounded to the ambient precision)."""
    m = int(m)
    with mp.workprec(max(mp.mp.prec, m.bit_length() + 2)):
        return mp.mpf((m, -S))


def _fixed_vec(values: Sequence[Any], S: int) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = _to_fixed(v, S)
    return out


def _bits_for(digits: int) -> int:
    return int(math.ceil((digits + _GUARD_DIGITS) * _LOG2_10)) + 8


def _check_digits(digits: Any) -> int:
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)):
        raise ActspecError(f"--digits must be an integer (got {digits!r})")
    d = int(digits)
    if not 16 <= d <= MAX_DIGITS:
        raise ActspecError(f"--digits must be between 16 and {MAX_DIGITS} (got {d})")
    return d


# =============================================================================================
# Hermite coefficients in extended precision
# =============================================================================================


@dataclass
class HighPrecCoefficients:
    """c_0..c_A of f = phi' (or phi) to about 10^-digits * sqrt(E f^2), as fixed-point integers."""

    fixed: list[int] = field(repr=False)
    bits: int
    norm2_fixed: int = field(repr=False)  # E f(z)^2
    tail: float  # E f^2 - sum_a c_a^2 (relative to E f^2): bound on the truncation error
    degree: int
    nodes: int
    step: float
    seconds: float

    def as_mpf(self) -> list[Any]:
        return [_from_fixed(m, self.bits) for m in self.fixed]

    def as_float(self) -> np.ndarray:
        return np.array([float(_from_fixed(m, self.bits)) for m in self.fixed])

    @property
    def norm2(self) -> Any:
        return _from_fixed(self.norm2_fixed, self.bits)


def _estimate_degree(act: Activation, of: str, digits: int) -> int:
    """Series degree needed for 10^-digits, extrapolated from float64 coefficients (sets the step)."""
    from ..kernels.hermite import hermite_coefficients

    try:
        c = hermite_coefficients(act, 400, of=of)  # type: ignore[arg-type]
    except ActspecError:
        return 512
    c2 = c * c
    total = float(np.sum(c2)) or 1.0
    a = np.arange(c2.size)
    keep = (c2 > 1e-26 * total) & (a >= 8)
    if not np.any(c2[8:] > 1e-26 * total):
        return 64  # polynomial or very fast decay
    if keep.sum() < 4:
        last = int(a[keep].max()) if keep.any() else 16
        return max(64, int(last * (digits + 20) / 26))
    # log c_a^2 ~ alpha - beta sqrt(a) (the slowest decay a smooth phi' can have here)
    sa = np.sqrt(a[keep])
    beta, alpha = np.polyfit(sa, np.log(c2[keep] / total), 1)
    if beta >= -1e-3:
        return 8192
    need = math.log(10.0) * (digits + 3)
    root = (alpha + need) / (-beta)
    return int(min(8192, max(64, 1.2 * root * root + 32)))


def _grid_values(
    f: Callable[[Any], Any], h_fixed: int, L: float, S: int, cache: dict[int, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Fixed-point z_j, q_0(z_j), weights h f(z_j) q_0(z_j), coarse mask and E f^2 on z_j = j h."""
    h = _from_fixed(h_fixed, S)
    J = int(math.ceil(L / float(h)))
    J += J % 2  # even, so the coarse grid (j even) is symmetric
    c4 = mp.power(2 * mp.pi, mp.mpf(-1) / 4)
    q0, wf, g2 = [], [], []
    for j in range(-J, J + 1):
        key = j * h_fixed
        got = cache.get(key)
        if got is None:
            z = mp.mpf((key, -S))
            fz = f(z)
            if not mp.isfinite(fz):
                raise ActspecError(
                    f"phi' is not finite at z = {float(z):.6g}; its Hermite series does not exist"
                )
            got = cache[key] = (fz, mp.exp(-z * z / 4) * c4)
        fz, q = got
        q0.append(q)
        wf.append(h * fz * q)
        g2.append(h * fz * fz * q * q)  # q^2 = gaussian density
    zf = np.array([j * h_fixed for j in range(-J, J + 1)], dtype=object)
    even = np.array([j % 2 == 0 for j in range(-J, J + 1)])
    norm2 = _to_fixed(mp.fsum(g2), S)
    return zf, _fixed_vec(q0, S), _fixed_vec(wf, S), even, norm2


def _run_recurrence(
    zf: np.ndarray,
    q0: np.ndarray,
    w: np.ndarray,
    even: np.ndarray,
    norm2: int,
    S: int,
    need: int,
    max_degree: int,
    diff_limit: int,
    min_degree: int,
) -> tuple[list[int], int, bool]:
    """c_a until the tail E f^2 - sum c_a^2 <= need; returns (c, max |fine - coarse|, converged)."""
    w_coarse = np.where(even, w * 2, 0)
    q_prev = np.zeros(len(zf), dtype=object)
    q = q0
    S2 = 2 * S
    c0 = int(np.dot(w, q)) >> S
    out = [c0]
    maxdiff = abs(c0 - (int(np.dot(w_coarse, q)) >> S))
    csum = (c0 * c0) >> S
    sq_prev = 0
    a = 0
    with mp.workprec(S + 32):
        while True:
            if norm2 - csum <= need and a >= min_degree:
                return out, maxdiff, True
            if a >= max_degree or maxdiff > diff_limit:
                return out, maxdiff, False
            inv = _to_fixed(1 / mp.sqrt(a + 1), S)
            t = zf * q
            if a:
                t = t - q_prev * sq_prev
            q_prev, q = q, (t * inv) >> S2
            c = int(np.dot(w, q)) >> S
            out.append(c)
            maxdiff = max(maxdiff, abs(c - (int(np.dot(w_coarse, q)) >> S)))
            csum += (c * c) >> S
            a += 1
            sq_prev = _to_fixed(mp.sqrt(a), S)


_HP_CACHE: dict[tuple[Any, ...], HighPrecCoefficients] = {}


def hermite_coefficients_highprec(
    act: Activation | str | Any,
    *,
    of: str = "derivative",
    digits: int = 50,
    max_degree: int = 8192,
    min_degree: int = 0,
) -> HighPrecCoefficients:
    """Hermite coefficients c_a of phi' (or phi) in extended precision (cached per activation).

    See :func:`_hermite_coefficients_highprec`.
    """
    act = activation(act)
    key = (act.key, of, int(digits), int(max_degree), int(min_degree))
    got = _HP_CACHE.get(key)
    if got is None or not act.builtin:
        got = _hermite_coefficients_highprec(
            act, of=of, digits=digits, max_degree=max_degree, min_degree=min_degree
        )
        if act.builtin:
            if len(_HP_CACHE) > 64:
                _HP_CACHE.clear()
            _HP_CACHE[key] = got
    return got


def _hermite_coefficients_highprec(
    act: Activation,
    *,
    of: str = "derivative",
    digits: int = 50,
    max_degree: int = 8192,
    min_degree: int = 0,
) -> HighPrecCoefficients:
    """Hermite coefficients c_a (orthonormal basis) of phi' (or phi) in extended precision.

    The series is taken to the smallest degree A whose tail E f^2 - sum_{a<=A} c_a^2 is below
    10^-digits E f^2 (at least ``min_degree``). Trapezoidal rule on z_j = j h, |z| <= L, with h
    chosen from a float64 extrapolation of the decay and halved until the rule on every other node
    agrees to the square root of the target (geometric convergence). Raises
    :class:`ActspecError` when more than ``max_degree`` terms would be needed (activations with
    kinks) or when no mpmath version of phi exists.
    """
    act = activation(act)
    digits = _check_digits(digits)
    if of not in ("derivative", "activation"):
        raise ActspecError(f"of must be 'derivative' or 'activation' (got {of!r})")
    if act.kinks:
        raise ActspecError(
            f"{act.name} has a kink: its Hermite coefficients decay polynomially and the series "
            "cannot reach extended precision (its eigenvalues are large anyway: use float64)"
        )
    fns = mp_functions(act)
    if fns is None:
        raise ActspecError(
            f"{act.name}: no extended-precision version of this activation; give it as an "
            "expression (e.g. 'x*sigmoid(x)') or use a built-in"
        )
    base = fns[1] if of == "derivative" else fns[0]
    scale = mp.mpf(act.scale)
    S = _bits_for(digits)
    t0 = time.perf_counter()
    A_est = min(max_degree, _estimate_degree(act, of, digits))
    with mp.workprec(S + 32):
        f = (lambda z: scale * base(z)) if act.scale != 1.0 else base
        # truncation radius: exp(-L^2/4) |f| below 2^-S (|q_a| <= 1); widen if f grows
        L = 2.0 * math.sqrt((S + 8) * math.log(2.0)) + 1.0
        for _ in range(8):
            edge = abs(f(mp.mpf(L))) + abs(f(mp.mpf(-L)))
            if edge * mp.exp(-mp.mpf(L) ** 2 / 4) < mp.mpf(2) ** (-S - 8):
                break
            L *= 1.2
        ln_tol = (S + 8) * math.log(2.0)
        h = min(0.25, 2 * math.pi / (math.sqrt(4.0 * A_est + 2.0) + ln_tol))
        cache: dict[int, Any] = {}
        tol_rel = mp.mpf(10) ** (-digits)
        for _ in range(12):
            h_fixed = _to_fixed(mp.mpf(h), S)
            zf, q0, w, even, norm2 = _grid_values(f, h_fixed, L, S, cache)
            need = _to_fixed(tol_rel * _from_fixed(norm2, S), S)
            # accept when the coarse rule's error, squared, is below 2^-(S - 8) sqrt(E f^2)
            root = math.isqrt(max(norm2, 1) << S)  # sqrt(E f^2) in fixed point
            diff_limit = max(1, root >> ((S - 8) // 2))
            c, maxdiff, done = _run_recurrence(
                zf, q0, w, even, norm2, S, need, max_degree, diff_limit, min_degree
            )
            if maxdiff > diff_limit:
                h /= 2
                continue
            csum = sum((v * v) >> S for v in c)
            if not done:
                tail = mp.mpf(norm2 - csum) / max(norm2, 1)
                raise ActspecError(
                    f"{act.name}: Hermite coefficients decay too slowly for {digits} digits "
                    f"(tail {float(tail):.2g} of E f^2 after degree {len(c) - 1}); use float64 "
                    "or fewer digits"
                )
            tail = mp.mpf(norm2 - csum) / max(norm2, 1)
            return HighPrecCoefficients(
                fixed=c,
                bits=S,
                norm2_fixed=int(norm2),
                tail=float(max(tail, 0)),
                degree=len(c) - 1,
                nodes=len(zf),
                step=h,
                seconds=time.perf_counter() - t0,
            )
    raise ActspecError(f"{act.name}: the Hermite quadrature does not converge (is phi' smooth?)")


# =============================================================================================
# the matrix
# =============================================================================================


def rho_highprec(X: Any = None, *, circle_n: int | None = None, bits: int) -> np.ndarray:
    """Exact-ish cosines rho_ij (fixed point 2^-bits), diagonal exactly 1.

    ``circle_n``: n equally spaced points, rho_ij = cos(2 pi (i - j) / n). Otherwise the float64
    rows of X are taken as exact and normalised in extended precision.
    """
    S = bits
    if circle_n is not None:
        n = int(circle_n)
        with mp.workprec(S + 32):
            row = [_to_fixed(mp.cos(2 * mp.pi * k / n), S) for k in range(n)]
        R = np.empty((n, n), dtype=object)
        for i in range(n):
            for j in range(n):
                R[i, j] = row[(i - j) % n]
        return R
    Xa = np.asarray(X, dtype=np.float64)
    n, d = Xa.shape
    # exact inner products of the float64 rows: scale every entry to an integer
    _, expo = np.frexp(Xa)
    e_min = int(np.min(expo[Xa != 0.0])) - 53 if np.any(Xa != 0.0) else 0
    Xi = np.empty((n, d), dtype=object)
    for i in range(n):
        for k in range(d):
            m, e = math.frexp(float(Xa[i, k]))
            Xi[i, k] = int(math.ldexp(m, 53)) << (e - 53 - e_min) if m != 0.0 else 0
    gram = Xi.dot(Xi.T)  # exact integers: <x_i, x_j> * 2^(-2 e_min)
    norms = [int(gram[i, i]) for i in range(n)]
    if any(v == 0 for v in norms):
        raise ActspecError("a data row has zero norm; remove it before --precision high")
    R = np.empty((n, n), dtype=object)
    with mp.workprec(S + 32):
        inv = [1 / mp.sqrt(v) for v in norms]
        for i in range(n):
            R[i, i] = 1 << S
            for j in range(i + 1, n):
                r = _to_fixed(mp.mpf(int(gram[i, j])) * inv[i] * inv[j], S)
                R[i, j] = R[j, i] = r
    return R


@dataclass
class HighPrecGram:
    """G∞ (or G∞ + H∞, H∞) as fixed-point integers (value m * 2^-bits)."""

    fixed: np.ndarray = field(repr=False)  # (n, n) object array of ints
    bits: int
    method: str  # "closed form", "Hermite series (degree A)", "float64 entries"
    entry_error: float  # bound on the absolute error of an entry (relative to max |entry|)
    degree: int | None
    seconds: float

    @property
    def n(self) -> int:
        return int(self.fixed.shape[0])

    def to_mpmath(self) -> Any:
        n = self.n
        M = mp.matrix(n, n)
        for i in range(n):
            for j in range(n):
                M[i, j] = _from_fixed(self.fixed[i, j], self.bits)
        return M

    def to_float(self) -> np.ndarray:
        return np.array(
            [[float(_from_fixed(v, self.bits)) for v in row] for row in self.fixed], dtype=np.float64
        )

    def first_row_mpf(self) -> list[Any]:
        return [_from_fixed(v, self.bits) for v in self.fixed[0]]


def _series_entries(coef_fixed: Sequence[int], R: np.ndarray, S: int, shift_power: int) -> np.ndarray:
    """sum_a c_a^2 rho^(a + shift_power) elementwise (Horner, fixed point), off-diagonal only."""
    n = R.shape[0]
    iu = np.triu_indices(n, 1)
    rho = R[iu]
    # distinct values once (circle data: n/2 + 1 of them)
    uniq: dict[int, int] = {}
    for v in rho:
        uniq.setdefault(int(v), len(uniq))
    vals = np.array(list(uniq.keys()), dtype=object)
    c2 = [int(c) * int(c) >> S for c in coef_fixed]
    acc = np.full(vals.size, c2[-1], dtype=object)
    for c in reversed(c2[:-1]):
        acc = ((acc * vals) >> S) + c
    for _ in range(shift_power):
        acc = (acc * vals) >> S
    idx = np.array([uniq[int(v)] for v in rho], dtype=np.intp)
    out = np.zeros((n, n), dtype=object)
    out[iu] = acc[idx]
    out[(iu[1], iu[0])] = acc[idx]
    return out


def gram_highprec(
    X: Any,
    act: Activation | str | Any,
    *,
    digits: int = 50,
    train: str = "hidden",
    normalize: bool = False,
    circle_n: int | None = None,
    rho: np.ndarray | None = None,
) -> HighPrecGram:
    """G∞ of unit-norm data in extended precision (see the module docstring)."""
    digits = _check_digits(digits)
    act = activation(act) if not isinstance(act, str) else custom_activation(act)
    if train not in ("hidden", "both", "output"):
        raise ActspecError(f"train must be hidden, both or output (got {train!r})")
    S = _bits_for(digits)
    t0 = time.perf_counter()
    if rho is None:
        if circle_n is None:
            from ..core.validate import check_inputs

            X = check_inputs(X)
            norms = np.linalg.norm(X, axis=1)
            if np.any(np.abs(norms - 1.0) > 1e-6):
                raise ActspecError(
                    "--precision high needs unit-norm rows (the paper's setting); "
                    "drop --no-normalize-inputs"
                )
        R = rho_highprec(X, circle_n=circle_n, bits=S)
    else:
        R = rho
    n = R.shape[0]
    if n > MAX_N:
        raise ActspecError(
            f"--precision high is limited to n <= {MAX_N} points (got {n}); use float64 or a "
            "smaller --n"
        )
    scale2 = mp.mpf(1)
    with mp.workprec(S + 32):
        if normalize:
            from ..kernels.gram import normalization_constant

            fns = mp_functions(act)
            if act.mp_dual_fn is not None:
                e2 = act.mp_closed_dual(mp.mpf(1), "activation")
            elif fns is not None:
                hc = hermite_coefficients_highprec(act, of="activation", digits=digits)
                e2 = hc.norm2 / mp.mpf(act.scale) ** 2
            else:
                e2 = mp.mpf(normalization_constant(act)) ** 2
            scale2 = 1 / e2
        else:
            scale2 = mp.mpf(act.scale) ** 2
    parts = ["derivative"] if train == "hidden" else (
        ["derivative", "activation"] if train == "both" else ["activation"]
    )
    closed = act.mp_dual_fn is not None  # the activation's own mpmath closed form
    total = np.zeros((n, n), dtype=object)
    method = ""
    degree: int | None = None
    entry_err = 10.0 ** (-digits)
    for which in parts:
        power = 1 if which == "derivative" else 0
        if closed:
            method = "closed form"
            uniq: dict[int, Any] = {}
            with mp.workprec(S + 32):
                for v in {int(v) for v in R.ravel()}:
                    r = _from_fixed(v, S)
                    val = act.mp_closed_dual(r, which) * scale2 * (r if power else 1)
                    uniq[v] = _to_fixed(val, S)
            part = np.empty((n, n), dtype=object)
            for i in range(n):
                for j in range(n):
                    part[i, j] = uniq[int(R[i, j])]
        elif mp_functions(act) is not None and not act.kinks:
            unscaled = _unscaled(act)
            hc = hermite_coefficients_highprec(unscaled, of=which, digits=digits)
            degree = hc.degree if degree is None else max(degree, hc.degree)
            method = f"Hermite series (degree {hc.degree})"
            with mp.workprec(S + 32):
                sc = _to_fixed(scale2, S)
            part = _series_entries(hc.fixed, R, S, power)
            # diagonal from the same truncated series (not E f^2 exactly): the matrix is then
            # exactly the truncated kernel, PSD, and symmetric zeros stay zero (no tail * I shift)
            diag = (sum((int(c) * int(c)) >> S for c in hc.fixed) * sc) >> S
            part = (part * sc) >> S if sc != (1 << S) else part
            for i in range(n):
                part[i, i] = diag
            entry_err = max(entry_err, hc.tail)
        else:
            method = "float64 entries"
            part, err = _float64_entries(act, which, R, S, normalize, power)
            entry_err = max(entry_err, err)
        total = total + part
    if train == "both":
        method = method + " (G + H)"
    return HighPrecGram(
        fixed=total,
        bits=S,
        method=method,
        entry_error=float(entry_err),
        degree=degree,
        seconds=time.perf_counter() - t0,
    )


def _float64_entries(
    act: Activation, which: str, R: np.ndarray, S: int, normalize: bool, power: int
) -> tuple[np.ndarray, float]:
    """Entries of a kinked activation without a closed form (elu, selu, user kinks) at float64
    accuracy, evaluated at the extended-precision cosines ``R`` themselves.

    The float64 dual is the verified theta-table (:mod:`actspec.kernels.dual`), evaluated at the
    angle theta = arccos(rho) taken from the fixed-point rho (in mpmath where |rho| > 0.9: near
    rho = +-1 a kinked dual moves like sqrt(1 -+ rho), and the angle of a rounded rho keeps only
    half its digits); the diagonal is evaluated at theta = 0 exactly. (Rows rebuilt from an
    eigendecomposition of R used to feed the float64 path: 1.5e-10 lambda_max off for selu on
    the circle, 5e4 times the plain float64 run.) Returns the entries (fixed point) and a bound
    on their absolute error relative to the largest entry: 10x the table's verified check error
    plus 8 ulp of rounding.
    """
    from ..kernels.dual import dual_table
    from ..kernels.gram import normalization_constant

    a64 = act.scaled(1.0 / normalization_constant(act)) if normalize else act
    tab = dual_table(a64, "activation" if which == "activation" else "derivative", 1.0, 1.0)
    n = R.shape[0]
    uniq = sorted({int(v) for v in R.ravel()})
    rho_f = np.empty(len(uniq))
    theta = np.empty(len(uniq))
    one = 1 << S
    with mp.workprec(S + 32):
        for k, v in enumerate(uniq):
            r = _from_fixed(v, S)
            rho_f[k] = float(r)
            if v >= one:
                theta[k] = 0.0
            elif v <= -one:
                theta[k] = math.pi
            elif abs(rho_f[k]) > 0.9:
                theta[k] = float(mp.acos(r))
            else:
                theta[k] = math.acos(rho_f[k])
    vals = tab.evaluate_theta(theta)
    with mp.workprec(S + 32):
        fixed = {}
        for k, v in enumerate(uniq):
            e = mp.mpf(float(vals[k]))
            fixed[v] = _to_fixed(e * _from_fixed(v, S) if power else e, S)
    part = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            part[i, j] = fixed[int(R[i, j])]
    biggest = float(np.max(np.abs(vals * (rho_f if power else 1.0)))) or 1.0
    # check_error bounds the per-interval table; the interval centred on pi/2 (up to 2e-15 of
    # the scale more) is never used here: the angles include theta = 0 (the diagonal)
    err = (10.0 * tab.check_error + 8 * np.finfo(np.float64).eps * float(np.max(np.abs(vals))))
    return part, err / biggest


def _unscaled(act: Activation) -> Activation:
    from dataclasses import replace

    return act if act.scale == 1.0 else replace(act, scale=1.0)


# =============================================================================================
# eigenvalues
# =============================================================================================


def flint_available() -> bool:
    try:
        import flint  # noqa: F401
    except ImportError:
        return False
    return True


def eigvalsh_highprec(G: HighPrecGram, *, backend: str = "auto") -> list[Any]:
    """Eigenvalues (mpf, descending) of the symmetric fixed-point matrix, at its precision."""
    if backend not in ("auto", "flint", "mpmath"):
        raise ActspecError(f"backend must be auto, flint or mpmath (got {backend!r})")
    use_flint = backend == "flint" or (backend == "auto" and flint_available())
    S = G.bits
    n = G.n
    prec = S + 32
    if use_flint:
        try:
            import flint
        except ImportError:
            raise ActspecError("python-flint is not installed; pip install python-flint") from None
        old_prec, old_threads = flint.ctx.prec, flint.ctx.threads
        flint.ctx.prec = prec
        try:
            flint.ctx.threads = max(1, min(4, torch.get_num_threads()))
        except Exception:  # noqa: BLE001 - threads are an optimisation only
            pass
        try:
            den = flint.arb(2) ** S
            A = flint.arb_mat(n, n)
            for i in range(n):
                for j in range(n):
                    A[i, j] = flint.arb(int(G.fixed[i, j])) / den
            E = flint.acb_mat(A).eig(algorithm="approx")
            with mp.workprec(prec):
                vals = []
                for e in E:
                    man, ex = e.real.mid().man_exp()
                    vals.append(mp.mpf((int(man), int(ex))))
        finally:
            flint.ctx.prec, flint.ctx.threads = old_prec, old_threads
    else:
        with mp.workprec(prec):
            M = G.to_mpmath()
            E = mp.eigsy(M, eigvals_only=True)
            vals = [E[i] for i in range(n)]
    vals.sort(reverse=True)
    return vals


def circulant_eigenvalues(first_row: Sequence[Any]) -> list[Any]:
    """Exact eigenvalues (descending) of a symmetric circulant matrix: the DFT of its first row."""
    n = len(first_row)
    row = [mp.mpf(v) for v in first_row]
    out = []
    for m in range(n):
        out.append(mp.fsum(row[k] * mp.cos(2 * mp.pi * ((k * m) % n) / n) for k in range(n)))
    out.sort(reverse=True)
    return out


# =============================================================================================
# spectrum
# =============================================================================================


@dataclass
class HighPrecSpectrum:
    eigenvalues: list[Any] = field(repr=False)  # mpf, descending
    lambda_min: float
    lambda_max: float
    condition_number: float
    condition_number_is_lower_bound: bool
    trace: float
    resolution: float
    n_unresolved: int
    digits: int
    bits: int
    method: str
    backend: str
    entry_error: float
    seconds_entries: float
    seconds_eigen: float
    hermite_degree: int | None = None

    def eigenvalues_float(self) -> np.ndarray:
        return np.array([float(v) for v in self.eigenvalues])

    def to_dict(self, *, with_eigenvalues: bool = True, as_strings: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "precision": "high",
            "lambda_min": self.lambda_min,
            "lambda_max": self.lambda_max,
            "condition_number": self.condition_number,
            "condition_number_is_lower_bound": self.condition_number_is_lower_bound,
            "trace": self.trace,
            "resolution": self.resolution,
            "n_below_resolution": self.n_unresolved,
            "digits": self.digits,
            "working_bits": self.bits,
            "entries": self.method,
            "entry_error": self.entry_error,
            "eigensolver": self.backend,
            "hermite_degree": self.hermite_degree,
            "seconds": {"entries": self.seconds_entries, "eigenvalues": self.seconds_eigen},
        }
        if with_eigenvalues:
            out["eigenvalues"] = [float(v) for v in self.eigenvalues]
            if as_strings:
                out["eigenvalues_text"] = [mp.nstr(v, 25) for v in self.eigenvalues]
        return out


def spectrum_highprec(
    X: Any,
    act: Activation | str | Any,
    *,
    digits: int = 50,
    train: str = "hidden",
    normalize: bool = False,
    circle_n: int | None = None,
    backend: str = "auto",
) -> HighPrecSpectrum:
    """Eigenvalues of G∞ in extended precision with their resolution (see module docstring)."""
    G = gram_highprec(
        X, act, digits=digits, train=train, normalize=normalize, circle_n=circle_n
    )
    t0 = time.perf_counter()
    vals = eigvalsh_highprec(G, backend=backend)
    t_eig = time.perf_counter() - t0
    n = len(vals)
    used = "python-flint" if (backend == "flint" or (backend == "auto" and flint_available())) else (
        "mpmath"
    )
    with mp.workprec(G.bits + 32):
        lmax = vals[0]
        lmin = vals[-1]
        trace = mp.fsum(_from_fixed(G.fixed[i, i], G.bits) for i in range(n))
        rel = max(G.entry_error, 10.0 ** (-digits))
        res = n * rel * max(abs(lmax), abs(lmin))
        unresolved = sum(1 for v in vals if v < res)
        if lmax <= 0:
            cond, lower = math.inf, False
        elif lmin > res:
            cond, lower = float(lmax / lmin), False
        else:
            cond, lower = float(lmax / res) if res > 0 else math.inf, True
    return HighPrecSpectrum(
        eigenvalues=vals,
        lambda_min=float(lmin),
        lambda_max=float(lmax),
        condition_number=cond,
        condition_number_is_lower_bound=lower,
        trace=float(trace),
        resolution=float(res),
        n_unresolved=int(unresolved),
        digits=digits,
        bits=G.bits,
        method=G.method,
        backend=used,
        entry_error=G.entry_error,
        seconds_entries=G.seconds,
        seconds_eigen=t_eig,
        hermite_degree=G.degree,
    )


def circle_n_of(ds: Any) -> int | None:
    """n when ``ds`` is an unmodified circle Dataset (exact angles can then be used)."""
    info = getattr(ds, "info", None) or {}
    if getattr(ds, "name", None) == "circle" and info.get("preprocess", "none") == "none":
        return int(ds.X.shape[0])
    return None


def run_spectrum_high(
    data: Any,
    activations: Sequence[str | Any],
    *,
    train: str = "hidden",
    normalize: bool = False,
    digits: int = 50,
    backend: str = "auto",
    exact_circle: bool = True,
) -> list[dict[str, Any]]:
    """Extended-precision version of :func:`actspec.experiments.spectrum.run_spectrum` (infinite width only).

    ``data`` is a :class:`actspec.datasets.Dataset` (circle data use the exact angles unless
    ``exact_circle=False``) or an (n, d) array of unit rows. Each row holds the keys of
    ``actspec spectrum`` (activation, width "inf", eigenvalues, lambda_min, lambda_max,
    condition_number, trace, ...) plus ``precision: "high"`` and the accuracy fields.
    """
    X = getattr(data, "X", data)
    circle_n = circle_n_of(data) if exact_circle else None
    rows = []
    for spec in activations:
        act = custom_activation(spec) if isinstance(spec, str) else activation(spec)
        s = spectrum_highprec(
            X, act, digits=digits, train=train, normalize=normalize, circle_n=circle_n,
            backend=backend,
        )
        row = {
            "activation": spec.strip() if isinstance(spec, str) else act.name,
            "name": act.name,
            "width": "inf",
            "kink_class": act.kink_class,
            "effective_rank": effective_rank(s.eigenvalues_float()),
            "exact_circle": circle_n is not None,
        }
        row.update(s.to_dict())
        rows.append(row)
    return rows
