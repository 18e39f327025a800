"""The activation paper's predictions, computed next to the measurements.

* :func:`hermite_decay`: fit of c_a^2 against a, power law ``C a^-s`` vs stretched exponential
  ``C exp(-b a^kappa)``, the model the data prefer (BIC) and, for a kink of order r, the predicted
  exponent s = (2r + 1) / 2 (SCIENCE §3).
* :func:`polynomial_rank`: the rank bound of Thm 4.3 / F.2, sum over a <= p with c_a != 0 of
  C(d0 + a, a + 1), and the sharp value for unit-norm data in general position (homogeneous
  polynomials of degree k restricted to the sphere are the spherical harmonics of degrees
  k, k - 2, ..., so powers of different degree but equal parity overlap).
* :func:`theorem_checks`: every theorem as a row ``claim / predicted / measured / holds?``.
* :func:`report_card`: everything ``actspec analyze`` prints and writes.

Where the paper's constants are unspecified (Thm 4.1, 4.4) the rows state the yardstick used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..activations.base import Activation
from ..activations.registry import activation
from ..core.errors import ActspecError
from ..spectra.sphere import sphere_harmonic_dim

__all__ = [
    "DecayFit",
    "hermite_decay",
    "parity",
    "polynomial_rank",
    "sphere_harmonic_dim",
    "numerical_rank",
    "antipodal_pairs",
    "theorem_checks",
    "report_card",
    "resolve_activation",
    "e_dphi_squared",
    "penultimate_lambda_min_highprec",
]


def resolve_activation(spec: Any) -> Activation:
    """A built-in name, ``module:function``, an expression such as ``"x*sigmoid(x)"``, a callable
    or an :class:`Activation`."""
    if isinstance(spec, str):
        from ..activations.registry import custom_activation

        return custom_activation(spec)
    return activation(spec)


# =============================================================================================
# Hermite decay
# =============================================================================================


@dataclass
class DecayFit:
    activation: str
    model: str  # "power law", "stretched exponential", "finite (polynomial)", "undetermined"
    power_exponent: float | None  # s in c_a^2 ~ C a^-s
    power_log_prefactor: float | None
    power_rss: float | None
    stretched_rate: float | None  # b in c_a^2 ~ C exp(-b a^kappa)
    stretched_kappa: float | None
    stretched_log_prefactor: float | None
    stretched_rss: float | None
    bic_power: float | None
    bic_stretched: float | None
    predicted_exponent: float | None  # (2r + 1)/2 for a kink of order r
    kink_order: int | None
    parity: str  # "even", "odd", "constant + odd", "none"
    degrees_used: list[int]
    a_range: tuple[int, int] | None
    n_points: int
    source: str  # "float64" or "extended precision (D digits)"
    last_nonzero: int | None
    subsequence: str = "all a"  # which degrees the headline fit uses ("odd a", "even a")
    subsequences: dict[str, Any] | None = None  # fits of each parity when phi' has none

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["a_range"] = list(self.a_range) if self.a_range else None
        return out

    def describe(self) -> str:
        if self.model == "finite (polynomial)":
            return f"finite: c_a = 0 for a > {self.last_nonzero}"
        if self.model == "power law":
            s = f"c_a^2 ~ a^-{self.power_exponent:.3f}"
            if self.predicted_exponent is not None:
                s += f" (predicted {self.predicted_exponent:g} for J_{self.kink_order})"
            return s
        if self.model == "stretched exponential":
            return (
                f"c_a^2 ~ exp(-{self.stretched_rate:.3g} a^{self.stretched_kappa:.2f})"
                " (faster than any power)"
            )
        return "undetermined (too few coefficients above the noise floor)"


def parity(c: np.ndarray, rel: float = 1e-20) -> str:
    """Parity of f from its Hermite coefficients: 'even' (odd c_a = 0), 'odd' (even c_a = 0),
    'constant + odd' (even c_a = 0 except c_0), or 'none'."""
    c2 = np.asarray(c, dtype=float) ** 2
    tot = float(c2.sum()) or 1.0
    odd = float(c2[1::2].sum())
    even = float(c2[0::2].sum())
    even2 = float(c2[2::2].sum())
    if odd <= rel * tot and even > 0:
        return "even"
    if even <= rel * tot and odd > 0:
        return "odd"
    if even2 <= rel * tot and odd > 0:
        return "constant + odd"
    return "none"


def _lstsq_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    A = np.stack([np.ones_like(x), x], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    rss = float(np.sum((A @ coef - y) ** 2))
    return float(coef[0]), float(coef[1]), rss


def hermite_decay(
    act: Activation | str | Any,
    degree: int = 1000,
    *,
    coefficients: Sequence[float] | np.ndarray | None = None,
    a_min: int = 10,
    floor: float | None = None,
    source: str | None = None,
) -> DecayFit:
    """Fit the decay of c_a^2 (coefficients of phi') and choose between the two models.

    The fit uses the degrees a >= ``a_min`` of the parity that is not identically zero, whose
    c_a^2 is above ``floor`` times sum c_a^2 (default 1e-26: float64 coefficients are accurate to
    ~1e-15 absolute). Pass extended-precision ``coefficients`` (and a smaller floor) to follow a
    fast decay further. Models, by least squares on log c_a^2: power law (2 parameters) and
    stretched exponential (3 parameters, kappa in [0.15, 2]); the lower BIC wins.
    """
    act = resolve_activation(act)
    if coefficients is None:
        from ..kernels.hermite import hermite_coefficients

        c = hermite_coefficients(act, int(degree))
        src = source or "float64"
    else:
        c = np.asarray(coefficients, dtype=float)
        src = source or "given"
    fl = 1e-26 if floor is None else float(floor)
    c2 = c * c
    tot = float(c2.sum())
    par = parity(c)
    a = np.arange(c2.size)
    nz = np.flatnonzero(c2 > fl * max(tot, 1e-300))
    last = int(nz.max()) if nz.size else None
    kr = act.kink_order
    pred = (2 * kr + 1) / 2 if kr is not None else None
    empty = DecayFit(
        act.name, "undetermined", None, None, None, None, None, None, None, None, None, pred,
        kr, par, [], None, 0, src, last,
    )  # fmt: skip
    if tot == 0:
        return empty
    # polynomial phi' (known exactly, e.g. from kink detection): finitely many coefficients
    if act.polynomial_degree is not None:
        empty.model = "finite (polynomial)"
        return empty
    base = (a >= a_min) & (c2 > fl * tot)
    if par == "even":
        subsets = {"even a": base & (a % 2 == 0)}
    elif par in ("odd", "constant + odd"):
        subsets = {"odd a": base & (a % 2 == 1)}
    else:
        # no parity: the two parities can decay at different rates (e.g. a jump in phi' shows in
        # one, the next singular derivative in the other); the slower one is the envelope
        subsets = {"odd a": base & (a % 2 == 1), "even a": base & (a % 2 == 0)}
    fitted = {k: _fit_models(a, c2, np.flatnonzero(m)) for k, m in subsets.items()}
    fits: dict[str, dict[str, Any]] = {k: v for k, v in fitted.items() if v is not None}
    if not fits:
        empty.n_points = int(np.sum(base))
        return empty
    if len(fits) > 1:
        top = min(int(v["idx"].max()) for v in fits.values())
        lo = top // 2

        def mass(k: str) -> float:
            m = subsets[k] & (a >= lo) & (a <= top)
            return float(c2[m].sum())

        key = max(fits, key=mass)
    else:
        key = next(iter(fits))
    f = fits[key]
    idx = f["idx"]
    others = {
        k: {"power_exponent": v["s"], "stretched_kappa": v["kappa"], "stretched_rate": v["b"],
            "model": v["model"], "a_range": [int(v["idx"].min()), int(v["idx"].max())]}
        for k, v in fits.items()
    }
    return DecayFit(
        activation=act.name,
        model=f["model"],
        power_exponent=f["s"],
        power_log_prefactor=f["lc"],
        power_rss=f["rss_p"],
        stretched_rate=f["b"],
        stretched_kappa=f["kappa"],
        stretched_log_prefactor=f["lc_s"],
        stretched_rss=f["rss_s"],
        bic_power=f["bic_p"],
        bic_stretched=f["bic_s"],
        predicted_exponent=pred,
        kink_order=kr,
        parity=par,
        degrees_used=[int(v) for v in idx],
        a_range=(int(idx.min()), int(idx.max())),
        n_points=int(idx.size),
        source=src,
        last_nonzero=last,
        subsequence=key,
        subsequences=others,
    )


def _fit_models(a: np.ndarray, c2: np.ndarray, idx: np.ndarray) -> dict[str, Any] | None:
    """Power law and stretched exponential fits of log c2[idx] against a[idx]; BIC choice."""
    if idx.size < 6:
        return None
    x = a[idx].astype(float)
    y = np.log(c2[idx])
    N = idx.size
    lc, slope, rss_p = _lstsq_line(np.log(x), y)
    best = (math.inf, math.nan, math.nan, math.nan)
    for kappa in np.arange(0.15, 2.0001, 0.005):
        lc2, sl2, rss2 = _lstsq_line(x**kappa, y)
        if rss2 < best[0] and sl2 < 0:
            best = (rss2, float(kappa), -sl2, lc2)
    rss_s, kappa, b, lc_s = best
    eps = 1e-30
    bic_p = N * math.log(rss_p / N + eps) + 2 * math.log(N)
    ok = math.isfinite(rss_s)
    bic_s = N * math.log(rss_s / N + eps) + 3 * math.log(N) if ok else math.inf
    return {
        "idx": idx,
        "model": "power law" if bic_p <= bic_s else "stretched exponential",
        "s": float(-slope), "lc": float(lc), "rss_p": float(rss_p),
        "b": float(b) if ok else None, "kappa": float(kappa) if ok else None,
        "lc_s": float(lc_s) if ok else None, "rss_s": float(rss_s) if ok else None,
        "bic_p": float(bic_p), "bic_s": float(bic_s) if ok else None,
    }


# =============================================================================================
# ranks
# =============================================================================================


def _comb(n: int, k: int) -> int:
    return math.comb(n, k) if 0 <= k <= n else 0


def polynomial_rank(
    coefficients: Sequence[float] | np.ndarray, d0: int, n: int | None = None, *, rel: float = 1e-10
) -> dict[str, Any]:
    """Rank predictions for G∞ = sum_a c_a^2 (XX^T)^(a+1) when only finitely many c_a != 0.

    ``paper_bound``: sum over a with c_a != 0 of C(d0 + a, a + 1) (Thm 4.3 / F.2, any data of span
    d0). ``unit_sphere``: the exact rank for unit-norm data in general position on the span's
    sphere (harmonic degrees k, k-2, ... of every power k = a + 1, counted once). Both are capped
    at n when n is given.
    """
    c = np.asarray(coefficients, dtype=float)
    c2 = c * c
    top = float(c2.max()) if c2.size else 0.0
    degrees = [a for a in range(c2.size) if c2[a] > rel * top]
    bound = sum(_comb(d0 + a, a + 1) for a in degrees)
    ells: set[int] = set()
    for a in degrees:
        k = a + 1
        ells.update(range(k % 2, k + 1, 2))
    sphere = sum(sphere_harmonic_dim(d0, ell) for ell in ells)
    if n is not None:
        bound_c, sphere_c = min(bound, n), min(sphere, n)
    else:
        bound_c, sphere_c = bound, sphere
    return {
        "nonzero_degrees": degrees,
        "paper_bound": int(bound_c),
        "paper_bound_uncapped": int(bound),
        "unit_sphere": int(sphere_c),
        "harmonic_degrees": sorted(ells),
    }


def numerical_rank(
    eigenvalues: Sequence[float] | np.ndarray, resolution: float, *, rel_floor: float = 0.0
) -> int:
    """Number of eigenvalues above max(100 x resolution, rel_floor x lambda_max)."""
    ev = np.asarray(eigenvalues, dtype=float)
    tol = max(100.0 * resolution, rel_floor * float(ev.max()))
    return int(np.sum(ev > tol))


def antipodal_pairs(X: np.ndarray, tol: float = 1e-12, *, deviation: bool = False) -> Any:
    """Number of disjoint pairs (x_i, x_j) of rows with x_j = -x_i (cosine within ``tol`` of -1).

    With ``deviation=True`` returns (count, max over the pairs of 1 + cosine): float64 data are
    antipodal only to rounding, which a kernel with a kink at rho = -1 amplifies to its square root.
    """
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    C = Xn @ Xn.T
    ii, jj = np.nonzero(np.triu(C < -1.0 + tol, 1))
    used: set[int] = set()
    count = 0
    dev = 0.0
    for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
        if i not in used and j not in used:
            used.update((i, j))
            count += 1
            dev = max(dev, 1.0 + float(C[i, j]))
    return (count, dev) if deviation else count


# =============================================================================================
# theorem checks
# =============================================================================================


def _e_dphi2(act: Activation) -> float:
    """E phi'(z)^2 by quadrature split at the kinks (the Hermite sum converges slowly for J_r)."""
    from ..kernels.dual import gaussian_mean

    return float(gaussian_mean(lambda x: act.dphi(x) ** 2, act.kinks))


def e_dphi_squared(act: Activation | str | Any) -> float:
    """E φ'(z)², z ~ N(0, 1), by one-dimensional quadrature split at the kinks: for unit-norm
    rows every diagonal entry of G∞ equals it (so tr G∞ = n E φ'(z)², Thm 4.5)."""
    return _e_dphi2(resolve_activation(act))


def penultimate_lambda_min_highprec(
    X: Any, act: Activation | str | Any, depths: Sequence[int], *, digits: int = 30
) -> dict[str, Any]:
    """λ_min of the penultimate-layer G of the deep net (c_φ scaling, no bias) in extended precision.

    The recursion of :mod:`actspec.kernels.deep` with ``scaling="cphi"`` on unit-norm rows keeps
    every variance at 1, so each layer maps the correlations through the normalised dual,
    Σ^l = E[φ(u)φ(v)]/E φ(z)², and G_L = Σ^{L-1} ⊙ E[φ'(u)φ'(v)]/E φ(z)². Each layer is evaluated
    with :func:`actspec.highprec.kernels.gram_highprec` on the previous layer's fixed-point
    correlations (Hermite series or closed forms to ``digits`` digits), and the eigenvalues with
    the arbitrary-precision eigensolver. Returns ``lambda_min`` {depth: float}, ``error_bar``
    (a bound on each eigenvalue's error: n × the entry error, accumulated over the layers) and
    ``seconds``. Independent of the float64 theta-tables the float64 recursion uses.
    """
    import time

    from ..highprec.kernels import eigvalsh_highprec, gram_highprec

    t0 = time.perf_counter()
    ds = sorted({int(d) for d in depths})
    if not ds or ds[0] < 1:
        raise ActspecError("depths must be integers >= 1")
    Xv = np.asarray(X, dtype=np.float64)
    n = Xv.shape[0]
    a = resolve_activation(act)
    from ..kernels.gram import normalization_constant

    # an entry error grows at most by the slope of the normalised dual map at rho = 1,
    # E φ'(z)² / E φ(z)², per layer
    lip = max(1.0, _e_dphi2(a) / normalization_constant(a) ** 2)
    out: dict[int, float] = {}
    err = 0.0
    grown = 0.0  # sum over the layers so far of lip^l
    sigma = None  # Σ^{l-1} as a HighPrecGram (None: the input correlations X Xᵀ)
    for depth in range(1, ds[-1] + 1):
        if depth in ds:
            if sigma is None:
                G = gram_highprec(Xv, act, digits=digits, train="hidden", normalize=True)
            else:
                G = gram_highprec(None, act, digits=digits, train="hidden", normalize=True,
                                  rho=sigma.fixed)
            out[depth] = float(min(eigvalsh_highprec(G)))
            err = max(err, n * G.entry_error * (grown + lip**depth))
        grown += lip ** (depth - 1)
        if depth < ds[-1]:
            if sigma is None:
                sigma = gram_highprec(Xv, act, digits=digits, train="output", normalize=True)
            else:
                sigma = gram_highprec(None, act, digits=digits, train="output", normalize=True,
                                      rho=sigma.fixed)
    return {"lambda_min": out, "error_bar": float(err), "seconds": time.perf_counter() - t0}


def _row(
    key: str, claim: str, source: str, predicted: str, measured: str, holds: bool | None,
    **numbers: Any,
) -> dict[str, Any]:
    return {
        "check": key,
        "claim": claim,
        "source": source,
        "predicted": predicted,
        "measured": measured,
        "holds": holds,
        "numbers": numbers,
    }


def theorem_checks(
    X: np.ndarray,
    act: Activation | str | Any,
    eigenvalues: Sequence[float] | np.ndarray,
    *,
    resolution: float,
    trace: float | None = None,
    coefficients: np.ndarray | None = None,
    span_dim: int | None = None,
    delta: float | None = None,
    threshold: float = 1e-12,
    max_hadamard: int = 30,
    precision: str = "float64",
) -> list[dict[str, Any]]:
    """The paper's claims as rows ``claim / predicted / measured / holds?`` for G∞ of X.

    ``eigenvalues`` (descending) and ``resolution`` come from float64 or extended precision;
    ``coefficients`` are the Hermite coefficients of phi' (computed if not given). Rows:
    trace (Thm 4.5), kink lower bound (Thm 4.1/4.2, J_r only), polynomial rank (Thm 4.3),
    tiny eigenvalues of smooth activations (Thm 4.4), the Hermite lower bound (Lemma I.1,
    Thm 4.7) and the exact zeros forced by antipodal data points (a symmetry consequence).
    """
    act = resolve_activation(act)
    from ..kernels.hermite import hermite_coefficients

    Xv = np.asarray(X, dtype=np.float64)
    n = Xv.shape[0]
    ev = np.asarray(eigenvalues, dtype=float)
    lmax, lmin = float(ev[0]), float(ev[-1])
    c = hermite_coefficients(act, 200) if coefficients is None else np.asarray(coefficients)
    e2 = _e_dphi2(act)
    if span_dim is None:
        span_dim = int(np.linalg.matrix_rank(Xv))
    d0 = int(span_dim)
    unit = bool(np.all(np.abs(np.linalg.norm(Xv, axis=1) - 1.0) < 1e-10))
    rows: list[dict[str, Any]] = []
    res_note = f"({precision}; resolution {resolution:.2g})"

    # ---- Thm 4.5: trace ----------------------------------------------------------------------
    tr = float(np.sum(ev)) if trace is None else float(trace)
    pred_tr = n * e2 if unit else None
    if unit:
        holds_tr = abs(tr - n * e2) <= 1e-6 * max(tr, 1e-300) and e2 > 0
        rows.append(_row(
            "trace", "tr G = Ω(n) for every non-constant Lipschitz φ: smooth activations are badly "
            "conditioned, not small on average", "Thm 4.5 / E.1",
            f"tr G∞ = n·E φ'(z)² = {n}×{e2:.6g} = {n * e2:.6g}",
            f"tr G = {tr:.6g}; λ_max/λ_min = "
            + (f"{lmax / lmin:.3g}" if lmin > resolution else f"≥ {lmax / resolution:.3g}"),
            bool(holds_tr), trace=tr, predicted_trace=pred_tr, c=e2, n=n,
        ))  # fmt: skip
    else:
        rows.append(_row(
            "trace", "tr G = Ω(n) for every non-constant Lipschitz φ", "Thm 4.5 / E.1",
            "tr G ≥ c·n (rows not unit norm: no exact value)", f"tr G = {tr:.6g}",
            bool(tr > 0), trace=tr, n=n,
        ))  # fmt: skip

    # ---- Thm 4.1 / 4.2: kinks ------------------------------------------------------------------
    if act.kink_order is not None and act.kink_order >= 1:
        r = act.kink_order
        if delta is not None and delta > 1e-10:
            yard = delta**3 * n**-7 / math.log(max(n, 2))
            holds = lmin >= yard if lmin > resolution or yard > resolution else None
            meas = f"λ_min = {lmin:.4g} {res_note}; δ = {delta:.4g}"
            pred = f"λ_min ≥ poly(δ, 1/n); yardstick δ³n⁻⁷/log n = {yard:.3g} (Thm 4.1 rate, constant 1)"
        else:
            yard = 0.0
            holds = None
            meas = f"λ_min = {lmin:.4g} {res_note}; δ = {0.0 if delta is None else delta:.3g}"
            pred = "not applicable: δ = 0 (Assumption 2 fails, e.g. antipodal points)"
        rows.append(_row(
            "kink_lower_bound", f"φ ∈ J_{r} (φ^({r}) jumps) ⇒ every eigenvalue is large",
            "Thm 4.1 / 4.2 (K.1, K.4)", pred, meas, holds,
            lambda_min=lmin, yardstick=yard, delta=delta, kink_order=r,
        ))  # fmt: skip

    # ---- Thm 4.3: polynomial rank ------------------------------------------------------------
    c2 = c * c
    is_poly = act.polynomial_degree is not None
    if is_poly:
        pr = polynomial_rank(c, d0, n)
        # float64 entries of user activations come from quadrature tables (~1e-13 absolute)
        rank = numerical_rank(ev, resolution, rel_floor=0.0 if precision != "float64" else 1e-10)
        holds = rank <= pr["paper_bound"]
        sharp = pr["unit_sphere"] if unit else pr["paper_bound"]
        rows.append(_row(
            "polynomial_rank", "polynomial φ on data of span d0: G∞ has low rank (λ_k = 0 for "
            "k ≥ n/d0 when d0 = O(n^(1/p)))", "Thm 4.3 / F.2",
            f"rank ≤ Σ_(c_a≠0) C(d0+a, a+1) = {pr['paper_bound']} (d0 = {d0}); exactly {sharp} "
            + ("for unit-norm data in general position" if unit else "in general position"),
            f"numerical rank {rank} of {n} {res_note}", bool(holds),
            rank=rank, paper_bound=pr["paper_bound"], sharp=sharp,
            nonzero_degrees=pr["nonzero_degrees"], d0=d0, equals_sharp=rank == sharp,
        ))  # fmt: skip

    # ---- Thm 4.4: smooth activations on low-d0 data -----------------------------------------
    if act.kink_order is None and not is_poly:
        from ..data.diagnostics import structural_zeros

        # exact zeros for a structural reason (antipodal pairs and a parity of φ', duplicate
        # rows) hold for any activation with that symmetry: they are not Thm 4.4's tiny
        # eigenvalues, so they are left out and the theorem is applied to the other n - z
        z, z_why = structural_zeros(Xv, act)
        z = min(int(z), n - 1)
        n_eff = n - z
        k0 = math.ceil(n_eff / max(d0, 1))
        want = n_eff - k0 + 1
        tau = threshold * lmax
        below_all = int(np.sum(ev < max(tau, resolution)))
        below = max(0, below_all - z)
        kz = min(k0 - 1, ev.size - 1)
        lam_k0 = float(ev[kz]) if kz < ev.size else float("nan")
        reliable = tau > resolution
        holds = (below >= want) if reliable else None
        cond = math.log(max(n, 2)) ** 0.75
        excl = (f"; {z} structural zeros left out ({z_why}), the theorem applied to the other "
                f"{n_eff}" if z else "")
        nn = "n'" if z else "n"
        rows.append(_row(
            "smooth_small_eigenvalues", "smooth φ (tanh, swish) on data of small span d0: "
            "λ_k ≤ exp(-Ω(n^(1/(2 d0)))) for k ≥ n/d0", "Thm 4.4 / F.10",
            f"≥ {nn} - ⌈{nn}/d0⌉ + 1 = {want} of {nn + ' = ' if z else ''}{n_eff} eigenvalues below "
            f"{threshold:g}·λ_max (d0 = {d0}; the theorem assumes d0 = O(log^0.75 n) = O({cond:.2g}))"
            f"{excl}",
            f"{below} of {n_eff} below {threshold:g}·λ_max"
            + (" (not counting the structural zeros)" if z else "")
            + f"; λ_⌈{nn}/d0⌉ = λ_{k0} = {lam_k0:.3g} = {lam_k0 / lmax:.3g}·λ_max {res_note}",
            holds, count_below=below, predicted_count=want, k=k0, lambda_k=lam_k0,
            threshold=threshold, d0=d0, structural_zeros=z, structural_reason=z_why,
            count_below_with_structural=below_all,
        ))  # fmt: skip

    # ---- Lemma I.1 / Thm 4.7: lower bound max_r c_r^2 λ_min((XX^T)^(r+1)) -------------------
    if unit:
        K = Xv @ Xv.T
        K = 0.5 * (K + K.T)
        best, best_r, best_lam = 0.0, None, None
        eps = np.finfo(float).eps
        M = np.ones_like(K)
        for r in range(min(max_hadamard, c.size - 1) + 1):
            M = M * K
            if c2[r] <= 0:
                continue
            w = np.linalg.eigvalsh(M)
            lam, res_m = float(w[0]), n * eps * float(w[-1])
            if lam > 10 * res_m:
                b = float(c2[r]) * lam
                if b > best:
                    best, best_r, best_lam = b, r, lam
        if best_r is None:
            rmax = min(max_hadamard, c.size - 1)
            pred = (f"every Hadamard power (XXᵀ)^⊙(r+1), r ≤ {rmax}, is singular at float64 "
                    "resolution: bound 0 (vacuous)")
            holds = True
        else:
            pred = (f"λ_min ≥ max_r c_r²·λ_min((XXᵀ)^⊙(r+1)) = c_{best_r}²·{best_lam:.3g} = {best:.4g}")
            holds = bool(lmin >= best * (1 - 1e-8) - resolution) if (
                best > resolution or lmin > resolution) else None
        rows.append(_row(
            "hermite_lower_bound", "G∞ ⪰ c_r²(XXᵀ)^⊙(r+1) for every r: large λ_min on smoothed "
            "data of large span", "Lemma I.1 / Thm 4.7",
            pred, f"λ_min = {lmin:.4g} {res_note}", holds,
            bound=best, r=best_r, lambda_min_power=best_lam, lambda_min=lmin,
        ))  # fmt: skip

    # ---- symmetry: antipodal points -----------------------------------------------------------
    P, dev = antipodal_pairs(Xv, deviation=True) if unit else (0, 0.0)
    if P > 0:
        par = parity(c)
        if par in ("even", "odd"):
            zeros = P
            why = (f"φ' is {par}: the columns of G for x and -x are {'opposite' if par == 'even' else 'equal'}")  # noqa: E501
        elif par == "constant + odd":
            zeros = max(0, P - min(P, d0))
            why = "φ' = c_0 + odd: col(x) - col(-x) = 2 c_0² X x lies in a d0-dim space"
        else:
            zeros = 0
            why = "φ' has no parity: antipodal points do not force zeros"
        # the pairs are antipodal only to rounding (1 + cos = dev); a J_1 kernel has a square-root
        # singularity at rho = -1 and turns that into ~n sqrt(2 dev) E phi'^2 (exact zeros do not move)
        ztol = 100.0 * resolution
        if act.kink_order == 1:
            ztol += n * math.sqrt(2.0 * max(dev, 0.0)) * e2
        measured_zeros = int(np.sum(ev <= ztol))
        rows.append(_row(
            "antipodal_zeros", "antipodal points (δ = 0) and a parity of φ' force exact zero "
            "eigenvalues (derived here, not in the paper)", "symmetry of E[φ'(u)φ'(v)]",
            f"{P} antipodal pairs ⇒ ≥ {zeros} zero eigenvalues ({why})",
            f"{measured_zeros} eigenvalues ≤ {ztol:.2g} {res_note}",
            bool(measured_zeros >= zeros), pairs=P, predicted_zeros=zeros,
            measured_zeros=measured_zeros, parity=par, zero_tolerance=ztol, pair_deviation=dev,
        ))  # fmt: skip
    return rows


# =============================================================================================
# report card
# =============================================================================================


def _verdict(card: dict[str, Any]) -> str:
    kc = card["kinks"]
    spec = card["spectrum"]
    n = card["data"]["n"]
    d0 = card["data"]["span_dim"]
    lmax, lmin, res = spec["lambda_max"], spec["lambda_min"], spec["resolution"]
    dec = card["hermite"]["decay"]
    rows = {r["check"]: r for r in card["checks"]}
    name = card["activation"]["name"]
    tau = card["settings"]["threshold"]
    below = int(np.sum(np.asarray(spec["eigenvalues"]) < max(tau * lmax, res)))
    steps = (f"a mode with λ = {tau:g}·λ_max needs ~{1 / tau:.0e} steps at the largest stable "
             "learning rate η ≈ 1/λ_max")
    zeros = rows.get("antipodal_zeros")
    if kc["kink_class"].startswith("J_"):
        head = (f"{name} is {kc['kink_class']} (φ^({kc['kinks'][0]['order']}) jumps by "
                f"{kc['kinks'][0]['jump']:+.3g} at x = {kc['kinks'][0]['location']:.3g}); "
                f"c_a² ~ a^-{dec['power_exponent']:.2f}" if dec.get("power_exponent") else
                f"{name} is {kc['kink_class']}")
        if lmin > 100 * res and lmin > tau * lmax:
            return (f"{head}: all eigenvalues are large on this data (λ_min = {lmin:.3g} = "
                    f"{lmin / lmax:.2g}·λ_max, condition number {lmax / lmin:.3g}), so every label "
                    "component is fit at a comparable rate: fast training, as Thm 4.1 predicts.")
        if zeros and zeros["numbers"]["predicted_zeros"] > 0:
            z = zeros["numbers"]["predicted_zeros"]
            return (f"{head}, but the data have {zeros['numbers']['pairs']} antipodal pairs "
                    f"(δ = 0, Assumption 2 fails): {z} eigenvalues are exactly 0 by symmetry, so "
                    f"those {z} label directions are never fit; the other {n - z} eigenvalues "
                    f"are ≥ {float(np.sort(spec['eigenvalues'])[z]):.3g}. Use data without "
                    "antipodal points (odd n on the circle) or --preprocess paper.")
        return (f"{head}: λ_min = {lmin:.3g} ({lmin / lmax:.2g}·λ_max) on this data; "
                f"{below} of {n} eigenvalues are below {tau:g}·λ_max.")
    if kc["kink_class"].startswith("polynomial"):
        pr = rows.get("polynomial_rank", {}).get("numbers", {})
        rank = pr.get("rank")
        return (f"{name} is a {kc['kink_class']}: on data of span {d0}, G∞ has rank {rank} "
                f"(predicted ≤ {pr.get('paper_bound')}, exactly {pr.get('sharp')} for unit-norm "
                f"data), so {n - (rank or 0)} of {n} eigenvalues are exactly 0 and those label "
                "directions are never fit, however long training runs.")
    if kc["kink_class"] == "smooth":
        if dec.get("model") == "stretched exponential":
            fit = (f"c_a² decays like exp(-{dec['stretched_rate']:.3g} "
                   f"a^{dec['stretched_kappa']:.2f})")
        elif dec.get("power_exponent"):
            fit = f"c_a² decays like a^-{dec['power_exponent']:.2f}"
        else:
            fit = "c_a² decays fast"
        sm_row = rows.get("smooth_small_eigenvalues", {})
        sm = sm_row.get("numbers", {})
        want = sm.get("predicted_count")
        tail = ""
        if zeros and zeros["numbers"]["predicted_zeros"] > 0:
            tail = (f" ({zeros['numbers']['predicted_zeros']} of them exactly 0 by the symmetry "
                    "of the antipodal points)")
        if lmin > res:
            lm = f"λ_min = {lmin:.3g} = {lmin / lmax:.2g}·λ_max"
        else:
            lm = (f"λ_min is below the resolution {res:.2g}"
                  + (" (try --precision high)" if spec.get("precision") == "float64" else ""))
        out = (f"{name} is smooth ({fit}): on data of span {d0}, {below} of {n} eigenvalues are "
               f"below {tau:g}·λ_max{tail}; {lm}. ")
        if below > 0:
            out += f"Training stalls on those directions: {steps}."
        else:
            out += ("No eigenvalue is that small here, so training is slowed only in proportion to "
                    "the condition number.")
        if sm_row.get("holds") is True:
            out += f" Thm 4.4 predicts at least {want}: holds."
        elif sm_row.get("holds") is False:
            out += (f" Thm 4.4's count (at least {want} below the threshold, ≈{1 - 1 / max(d0, 1):.2g} n)"
                    f" is not reached at n = {n}: the theorem is asymptotic with unspecified "
                    f"constants (here λ_⌈n/d0⌉ = {sm.get('lambda_k', float('nan')) / lmax:.2g}·λ_max).")
        return out
    return (f"{name}: {kc['kink_class']}; λ_min = {lmin:.3g}, {below} of {n} eigenvalues below "
            f"{tau:g}·λ_max.")


def report_card(
    spec: Any,
    data: Any = None,
    *,
    precision: str = "float64",
    digits: int = 50,
    degree: int = 1000,
    threshold: float = 1e-12,
    normalize: bool = False,
    coefficients_shown: int = 30,
    rho_points: int = 201,
    backend: str = "auto",
) -> dict[str, Any]:
    """The report card of an activation on a data set (everything ``actspec analyze`` shows).

    ``data``: a :class:`actspec.datasets.Dataset`, an (n, d) array, or None (circle, n = 50).
    ``precision="high"`` adds the extended-precision spectrum and uses it for the checks.
    """
    from ..activations.kinks import detect_kinks
    from ..data.datasets import Dataset, load_data
    from ..data.diagnostics import data_diagnostics
    from ..finite.gram import gram
    from ..kernels.dual import dual
    from ..kernels.gram import normalization_constant
    from ..kernels.hermite import hermite_coefficients
    from ..spectra.summary import spectrum

    if precision not in ("float64", "high"):
        raise ActspecError(f"precision must be 'float64' or 'high' (got {precision!r})")
    if not (0 < threshold < 1):
        raise ActspecError(f"threshold must be in (0, 1) (got {threshold!r})")
    act0 = resolve_activation(spec)
    kr = detect_kinks(act0)
    act = act0
    if not act0.builtin and act0.kink_order is None and (kr.kinks or kr.polynomial_degree):
        from dataclasses import replace

        act = replace(
            act0, kinks=tuple(k.location for k in kr.kinks), kink_order=kr.kink_order,
            polynomial_degree=kr.polynomial_degree,
        )
    if normalize:
        act = act.scaled(1.0 / normalization_constant(act))
    if data is None:
        data = load_data("circle", n=50)
    if isinstance(data, Dataset):
        X, dname, dinfo = data.X, data.name, dict(data.info)
    else:
        X, dname, dinfo = np.asarray(data, dtype=np.float64), "array", {}
    n = X.shape[0]
    diag = data_diagnostics(X)
    d0 = int(diag["span_dim"])

    # Hermite coefficients and decay
    c = hermite_coefficients(act, int(degree))
    src = "float64"
    coeffs_fit = c
    floor = None
    hp_coeffs = None
    if act.kink_order is None and act.polynomial_degree is None:
        from ..activations.expressions import mp_functions
        from ..highprec.kernels import hermite_coefficients_highprec

        if mp_functions(act) is not None:
            try:
                hp_coeffs = hermite_coefficients_highprec(act, digits=max(30, min(digits, 60)))
                coeffs_fit = hp_coeffs.as_float()
                src = f"extended precision ({max(30, min(digits, 60))} digits)"
                floor = 10.0 ** (-max(30, min(digits, 60)) + 2)
            except ActspecError:
                hp_coeffs = None
    decay = hermite_decay(act, coefficients=coeffs_fit, floor=floor, source=src)
    e2 = _e_dphi2(act)

    # dual kernel
    if act.builtin:
        rho = np.linspace(-1.0, 1.0, int(rho_points))
        kern = dual(act, np.ones_like(rho), np.ones_like(rho), rho, "derivative")
        k0, k1 = (float(v) for v in dual(act, 1.0, 1.0, np.array([0.0, 1.0]), "derivative"))
    else:  # user functions: direct quadrature on fewer points (a table build costs more)
        rho = np.linspace(-1.0, 1.0, min(int(rho_points), 41))
        kern = dual(act, np.ones_like(rho), np.ones_like(rho), rho, "derivative",
                    method="quadrature")
        k0, k1 = float(kern[rho.size // 2]), float(kern[-1])

    # spectra
    G = gram(X, act)
    s64 = spectrum(G)
    spec64 = s64.to_dict()
    spec64["precision"] = "float64"
    high = None
    if precision == "high":
        from ..highprec.kernels import circle_n_of, spectrum_highprec

        circle_n = circle_n_of(data) if isinstance(data, Dataset) else None
        hs = spectrum_highprec(X, act, digits=digits, circle_n=circle_n, backend=backend)
        high = hs.to_dict(as_strings=True)
        high["exact_circle"] = circle_n is not None
        ev, res, trace = hs.eigenvalues_float(), hs.resolution, hs.trace
    else:
        ev, res, trace = s64.eigenvalues, s64.resolution, s64.trace
    main = high if high is not None else spec64
    checks = theorem_checks(
        X, act, ev, resolution=res, trace=trace, coefficients=c[: max(200, 1)],
        span_dim=d0, delta=diag.get("delta_normalized"), threshold=threshold,
        precision="extended precision" if high else "float64",
    )
    card: dict[str, Any] = {
        "activation": {
            "input": spec if isinstance(spec, str) else act.name,
            "name": act.name,
            "formula": act.formula,
            "source": "built-in" if act.builtin else act.formula.split(" ")[0],
            "kink_class": kr.kink_class,
            "normalized": bool(normalize),
            "scale": act.scale,
        },
        "kinks": kr.to_dict(),
        "hermite": {
            "basis": "orthonormal probabilists' Hermite h_a = He_a/sqrt(a!)",
            "coefficients": c[: int(coefficients_shown) + 1],
            "E_dphi_squared": e2,
            "degree": int(degree),
            "decay": decay.to_dict(),
            "decay_summary": decay.describe(),
            "extended_precision_degree": hp_coeffs.degree if hp_coeffs is not None else None,
            "fit_coefficients": np.asarray(coeffs_fit, dtype=float),
        },
        "dual_kernel": {"rho": rho, "E_dphi_dphi": kern, "at_rho_0": k0, "at_rho_1": k1},
        "data": {
            "name": dname, "n": n, "dim": int(X.shape[1]), "span_dim": d0,
            "delta": diag.get("delta_normalized"), "min_distance": diag.get("min_distance"),
            "antipodal_pairs": antipodal_pairs(X) if diag.get("unit_norm") else None,
            "unit_norm": diag.get("unit_norm"), "info": dinfo,
        },
        "spectrum": {**main, "eigenvalues": [float(v) for v in ev],
                     "n_below_threshold": int(np.sum(ev < max(threshold * float(ev[0]), res)))},
        "spectrum_float64": spec64,
        "checks": checks,
        "settings": {"precision": precision, "digits": digits if high else None,
                     "threshold": threshold, "degree": int(degree), "normalize": bool(normalize)},
    }
    card["verdict"] = _verdict(card)
    return card
