"""Independent high-precision references (mpmath) for the built-in activations."""

from __future__ import annotations

import mpmath as mp

LAM, ALPHA = mp.mpf("1.0507009873554804934193349852946"), mp.mpf("1.6732632423543772848170429916717")


def _sig(x):
    return 1 / (1 + mp.exp(-x))


# phi and phi' written independently of actspec, in mpmath
MP_ACTS = {
    "relu": (lambda x: max(x, 0), lambda x: mp.mpf(1) if x > 0 else mp.mpf(0)),
    "leaky_relu:0.2": (lambda x: x if x > 0 else x / 5, lambda x: mp.mpf(1) if x > 0 else mp.mpf(1) / 5),
    "elu": (lambda x: x if x > 0 else mp.expm1(x), lambda x: mp.mpf(1) if x > 0 else mp.exp(x)),
    "elu:0.5": (lambda x: x if x > 0 else mp.expm1(x) / 2, lambda x: mp.mpf(1) if x > 0 else mp.exp(x) / 2),
    "selu": (lambda x: LAM * (x if x > 0 else ALPHA * mp.expm1(x)),
             lambda x: LAM if x > 0 else LAM * ALPHA * mp.exp(x)),
    "gelu": (lambda x: x * mp.ncdf(x), lambda x: mp.ncdf(x) + x * mp.npdf(x)),
    "swish": (lambda x: x * _sig(x), lambda x: _sig(x) * (1 + x * (1 - _sig(x)))),
    "softplus": (lambda x: mp.log1p(mp.exp(x)), _sig),
    "tanh": (mp.tanh, lambda x: mp.sech(x) ** 2),
    "sigmoid": (_sig, lambda x: _sig(x) * (1 - _sig(x))),
    "erf": (mp.erf, lambda x: 2 / mp.sqrt(mp.pi) * mp.exp(-x * x)),
    "linear": (lambda x: x, lambda x: mp.mpf(1)),
    "quadratic": (lambda x: x * x, lambda x: 2 * x),
    "cubic": (lambda x: x**3, lambda x: 3 * x * x),
}
KINKED = {"relu", "leaky_relu:0.2", "elu", "elu:0.5", "selu"}


def gauss(x):
    return mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def he_normalized(a: int, x):
    """h_a(x) = He_a(x)/sqrt(a!) via mpmath's physicists' Hermite: He_a(x) = 2^{-a/2} H_a(x/sqrt2)."""
    return mp.hermite(a, x / mp.sqrt(2)) * mp.power(2, -mp.mpf(a) / 2) / mp.sqrt(mp.factorial(a))


def mp_expect(f, lo: float = -13, hi: float = 13, step: float = 1.0):
    """E f(z), z ~ N(0,1), by mpmath quadrature on unit intervals (breakpoint at 0 included)."""
    pts = [mp.mpf(lo) + k * mp.mpf(step) for k in range(int((hi - lo) / step) + 1)]
    return mp.quad(lambda x: f(x) * gauss(x), pts)


def bvn_cdf(a, b, rho):
    """P(U < a, V < b) for standard normals of correlation rho (Sheppard's integral:
    Phi(a) Phi(b) + 1/(2 pi) int_0^asin(rho) exp(-(a^2 + b^2 - 2ab sin t) / (2 cos^2 t)) dt)."""
    a, b, rho = mp.mpf(a), mp.mpf(b), mp.mpf(rho)
    if rho == 1:
        return mp.ncdf(min(a, b))
    if rho == -1:
        return max(mp.mpf(0), mp.ncdf(a) + mp.ncdf(b) - 1)
    f = lambda t: mp.exp(-(a * a + b * b - 2 * a * b * mp.sin(t)) / (2 * mp.cos(t) ** 2))  # noqa: E731
    return mp.ncdf(a) * mp.ncdf(b) + mp.quad(f, [0, mp.asin(rho)]) / (2 * mp.pi)


def exp_linear_derivative_dual(rho, lam=1, alpha=1):
    """E[phi'(u) phi'(v)], unit variances, correlation rho, for phi' = lam on x > 0 and
    lam alpha e^x on x < 0 (elu: lam = alpha = 1; selu: LAM, ALPHA), in closed form up to
    bivariate normal probabilities: tilting by e^v or e^(u+v) shifts the Gaussian's mean,
    E[e^v; u > 0, v < 0] = e^(1/2) P(U > -rho, V < -1) and
    E[e^(u+v); u < 0, v < 0] = e^(1+rho) P(U < -(1+rho), V < -(1+rho))."""
    rho, lam, alpha = mp.mpf(rho), mp.mpf(lam), mp.mpf(alpha)
    both_pos = (mp.pi - mp.acos(rho)) / (2 * mp.pi)
    mixed = mp.exp(mp.mpf(1) / 2) * (mp.ncdf(-1) - bvn_cdf(-rho, -1, rho))
    both_neg = mp.exp(1 + rho) * bvn_cdf(-(1 + rho), -(1 + rho), rho)
    return lam * lam * (both_pos + 2 * alpha * mixed + alpha * alpha * both_neg)
