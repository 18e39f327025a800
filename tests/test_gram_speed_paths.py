"""Issue 20 item 2: the fast paths of the dense G∞ agree with the general ones.

* closed forms: the in-place arithmetic of the built-in duals is bit-for-bit the textbook
  expression (copied here as the reference), except the arc-cosine phi-kernel evaluated from a
  given correlation (the G∞ tiles), whose algebraic form (cos theta = rho, sin theta =
  sqrt((1 - rho)(1 + rho))) must agree with 40-digit mpmath to a few ulps;
* theta-tables: the scalar-coefficient recurrence (all angles in one interval) is bit-for-bit the
  gathered one, for uniform and for dyadic intervals;
* ``gram_infinite``: the syrk upper triangle, the tile shapes and the threads give the same
  matrix as a direct evaluation of every entry through ``dual.dual`` (the general dispatch), to
  1e-15 relative, exactly symmetric, with close pairs still taken from the rows.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

import actspec
from actspec.kernels.dual import DualTable, dual
from actspec.kernels.gram import gram_infinite

_TWO_PI = 2.0 * math.pi


def _ref_abrelu(a: float, b: float, s1, s2, c, which: str) -> np.ndarray:
    """The textbook arc-cosine arithmetic (the code before the in-place rewrite)."""
    sd = np.sqrt(s1 * s2)
    rho = np.clip(c / sd, -1.0, 1.0)
    theta = np.arccos(rho)
    if which == "derivative":
        return (a * a + b * b) * (math.pi - theta) / _TWO_PI + a * b * theta / math.pi
    j1 = sd * (np.sin(theta) + (math.pi - theta) * np.cos(theta)) / _TWO_PI
    return a * a * c + a * (b - a) * c + (b - a) ** 2 * j1


def _ref_other(name: str, s1, s2, c, which: str) -> np.ndarray:
    d = which == "derivative"
    if name == "erf":
        if d:
            return (4 / math.pi) / np.sqrt((1 + 2 * s1) * (1 + 2 * s2) - 4 * c * c)
        return (2 / math.pi) * np.arcsin(2 * c / np.sqrt((1 + 2 * s1) * (1 + 2 * s2)))
    if name == "linear":
        return np.ones_like(c) if d else c.copy()
    if name == "quadratic":
        return 4 * c if d else s1 * s2 + 2 * c * c
    return 9 * (s1 * s2 + 2 * c * c) if d else 9 * s1 * s2 * c + 6 * c**3


def _args(m: int = 40, k: int = 50):
    rng = np.random.default_rng(3)
    s1 = rng.uniform(0.3, 3.0, (m, 1))
    s2 = rng.uniform(0.3, 3.0, (1, k))
    c = rng.uniform(-1.0, 1.0, (m, k)) * np.sqrt(s1 * s2)
    return s1, s2, c


@pytest.mark.parametrize("name,a,b", [("relu", 0.0, 1.0), ("leaky_relu:0.2", 0.2, 1.0),
                                      ("abs", -1.0, 1.0)])
def test_arccos_closed_forms_bitwise(name: str, a: float, b: float) -> None:
    act = actspec.activation(name)
    s1, s2, c = _args()
    rho = c / np.sqrt(s1 * s2)
    # phi': the same arithmetic with or without a precomputed rho
    ref = _ref_abrelu(a, b, s1, s2, c, "derivative")
    assert np.array_equal(act.closed_form_dual(s1, s2, c, "derivative"), ref)
    assert np.array_equal(act.closed_form_dual(s1, s2, c, "derivative", rho=rho), ref)
    # phi without rho, and with an explicit theta: the textbook arithmetic
    assert np.array_equal(act.closed_form_dual(s1, s2, c, "activation"),
                          _ref_abrelu(a, b, s1, s2, c, "activation"))
    th = np.arccos(np.clip(rho, -1.0, 1.0))
    assert np.array_equal(act.closed_form_dual(s1, s2, c, "activation", theta=th),
                          _ref_abrelu(a, b, s1, s2, c, "activation"))


@pytest.mark.parametrize("name,a,b", [("relu", 0.0, 1.0), ("leaky_relu:0.2", 0.2, 1.0),
                                      ("abs", -1.0, 1.0)])
def test_arccos_phi_kernel_from_rho_against_mpmath(name: str, a: float, b: float) -> None:
    act = actspec.activation(name)
    s1, s2, c = _args(12, 15)
    rho = c / np.sqrt(s1 * s2)
    fast = act.closed_form_dual(s1, s2, c, "activation", rho=rho)
    scale = float(np.max(np.sqrt(s1 * s2)))
    with mp.workdps(40):
        for i in range(c.shape[0]):
            for j in range(c.shape[1]):
                # the exact kernel at the rounded inputs (rho as the code has it)
                r = mp.mpf(float(rho[i, j]))
                sd = mp.sqrt(mp.mpf(float(s1[i, 0])) * mp.mpf(float(s2[0, j])))
                th = mp.acos(r)
                j1 = sd * (mp.sqrt(1 - r * r) + (mp.pi - th) * r) / (2 * mp.pi)
                ref = a * b * sd * r + (b - a) ** 2 * j1
                assert abs(fast[i, j] - float(ref)) <= 4e-16 * scale, (i, j)


@pytest.mark.parametrize("name", ["erf", "linear", "quadratic", "cubic"])
@pytest.mark.parametrize("which", ["derivative", "activation"])
def test_other_closed_forms_bitwise(name: str, which: str) -> None:
    act = actspec.activation(name)
    s1, s2, c = _args()
    ref = np.broadcast_to(_ref_other(name, s1, s2, c, which), c.shape)
    assert np.array_equal(act.closed_form_dual(s1, s2, c, which), ref)
    assert np.array_equal(act.closed_form_dual(s1, s2, c, which, rho=c / np.sqrt(s1 * s2)), ref)
    # scalars stay scalars, scaled activations scale
    val = act.closed_form_dual(1.0, 1.0, 0.3, which)
    assert np.ndim(val) == 0
    half = act.scaled(0.5).closed_form_dual(s1, s2, c, which)
    assert np.array_equal(half, 0.25 * ref)


def _table(kind: str) -> DualTable:
    """A table with 16 uniform intervals, or with dyadic ones (interval 8 halved, its right
    half halved again: 18 intervals); random Chebyshev coefficients (evaluation only)."""
    rng = np.random.default_rng(9)
    if kind == "uniform":
        return DualTable(rng.standard_normal((16, 12)), 1.0, 1.0, 0.0)
    h = math.pi / 16
    edges = [i * h for i in range(9)] + [8.5 * h, 8.75 * h] + [i * h for i in range(9, 17)]
    return DualTable(rng.standard_normal((18, 12)), 1.0, 1.0, 0.0, np.array(edges))


@pytest.mark.parametrize("kind", ["uniform", "dyadic"])
def test_table_scalar_recurrence_bitwise(kind: str) -> None:
    tab = _table(kind)
    edges = np.linspace(0.0, math.pi, 17) if tab.edges is None else tab.edges
    rng = np.random.default_rng(5)
    for i in range(tab.intervals):
        lo, hi = float(edges[i]), float(edges[i + 1])
        theta = rng.uniform(lo, hi, 500)
        theta[:2] = [lo, np.nextafter(hi, lo)]
        whole = tab.evaluate_theta(theta)  # >= 64 angles in one interval: scalar path
        pieces = np.concatenate([tab.evaluate_theta(theta[p:p + 50]) for p in range(0, 500, 50)])
        assert np.array_equal(whole, pieces), i
    # angles in several intervals: gathered path, equal to short (gathered) evaluations
    theta = rng.uniform(0.0, math.pi, 3000)
    whole = tab.evaluate_theta(theta)
    pieces = np.concatenate([tab.evaluate_theta(theta[p:p + 30]) for p in range(0, 3000, 30)])
    assert np.array_equal(whole, pieces)
    # and both equal numpy's Chebyshev evaluation on each interval
    for i in range(tab.intervals):
        lo, hi = float(edges[i]), float(edges[i + 1])
        th = np.linspace(lo, hi, 100, endpoint=False)[1:]  # edges may round to a neighbour
        ref = np.polynomial.chebyshev.chebval(2 * (th - lo) / (hi - lo) - 1, tab.coeffs[i])
        assert np.max(np.abs(tab.evaluate_theta(th) - ref)) <= 1e-13 * np.abs(tab.coeffs).sum()


def _rows(n: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    X[5] = -X[3] + 1e-9 * rng.standard_normal(d)  # a nearly antipodal and a nearly equal pair
    X[7] = X[2] + 1e-9 * rng.standard_normal(d)
    X[5] /= np.linalg.norm(X[5])
    X[7] /= np.linalg.norm(X[7])
    return X


@pytest.mark.parametrize("name", ["relu", "abs", "erf", "cubic", "tanh", "elu"])
@pytest.mark.parametrize("train", ["hidden", "both", "output"])
def test_gram_infinite_equals_direct_duals(name: str, train: str) -> None:
    """Several tiles (n = 1200: diagonal tiles, 1000-column tiles, a ragged last column tile),
    two threads, syrk's upper triangle: the same matrix as dual.dual on X X^T entry by entry."""
    X = _rows(1200, 7)
    act = actspec.activation(name)
    G = gram_infinite(X, act, train=train)
    K = X @ X.T
    s = np.diag(K).copy()
    s1, s2 = s[:, None], s[None, :]
    ref = np.zeros_like(K)
    if train in ("hidden", "both"):
        ref += K * dual(act, s1, s2, K, "derivative")
    if train in ("both", "output"):
        ref += dual(act, s1, s2, K, "activation")
    assert np.array_equal(G, G.T)
    scale = float(np.max(np.abs(ref)))
    off = ~np.eye(len(X), dtype=bool)
    off[[3, 5, 2, 7], [5, 3, 7, 2]] = False  # close pairs: the rows give the angle (below)
    assert np.max(np.abs(G - ref)[off]) <= 2e-15 * scale
    assert np.max(np.abs(np.diag(G) - np.diag(ref))) <= 2e-15 * scale


def test_syrk_upper_triangle_equals_numpy() -> None:
    from actspec.kernels.gram import _gram_upper  # noqa: PLC2701 - the helper under test

    rng = np.random.default_rng(2)
    for n, d in [(2, 3), (9, 4), (300, 50)]:
        X = rng.standard_normal((n, d))
        G = _gram_upper(X)
        assert G.flags.c_contiguous and G.shape == (n, n)
        ref = X @ X.T
        iu = np.triu_indices(n)
        assert np.max(np.abs(G[iu] - ref[iu])) <= 1e-15 * np.max(np.abs(ref))
    F = np.asfortranarray(rng.standard_normal((20, 6)))  # not C-contiguous: numpy's product
    assert np.array_equal(_gram_upper(F), F @ F.T)


def test_close_pairs_still_from_rows() -> None:
    """A nearly antipodal pair off the diagonal tiles (rows 3 and 1105: different tiles) keeps
    its accurate angle: the relu kernel there is the rows' value, not arccos of rounded rho."""
    X = _rows(1200, 64)
    rng = np.random.default_rng(1)
    X[1105] = -X[3] + 1e-9 * rng.standard_normal(64)
    X[1105] /= np.linalg.norm(X[1105])
    G = gram_infinite(X, actspec.activation("relu"))
    with mp.workdps(40):
        A = [mp.mpf(float(t)) for t in X[3]]
        B = [mp.mpf(float(t)) for t in X[1105]]
        dn = mp.sqrt(mp.fsum((p - q) ** 2 for p, q in zip(A, B, strict=True)))
        sn = mp.sqrt(mp.fsum((p + q) ** 2 for p, q in zip(A, B, strict=True)))
        th = 2 * mp.atan2(dn, sn)
        c = mp.fsum(p * q for p, q in zip(A, B, strict=True))
        ref = float((mp.pi - th) / (2 * mp.pi) * c)
    assert abs(G[3, 1105] - ref) <= 1e-16 and G[1105, 3] == G[3, 1105]


@pytest.mark.parametrize("name", ["tanh", "elu"])
def test_centred_interval_high_dimensional_tiles(name: str, monkeypatch) -> None:
    """d = 3000: every off-diagonal tile's angles lie within pi/2 +- 0.1, across the interval
    edge at pi/2, so the tables evaluate them with the extra interval centred there. The result
    matches the 2-D quadrature (independent of the table) to 1e-14 of the scale and the
    gathered per-interval evaluation to 3e-15."""
    calls = []
    orig = DualTable._clenshaw_col

    def spy(*args, **kwargs):
        calls.append(args[0].size)
        return orig(*args, **kwargs)

    monkeypatch.setattr(DualTable, "_clenshaw_col", staticmethod(spy))
    rng = np.random.default_rng(4)
    X = rng.standard_normal((700, 3000))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    act = actspec.activation(name)
    G = gram_infinite(X, act, train="both")
    assert sum(calls) >= 0.9 * (700 * 700 - 6 * 128 * 128) / 2  # nearly all off-diagonal tiles
    K = X @ X.T
    s = np.diag(K).copy()
    iu = np.triu_indices(700, 1)
    scale = float(np.max(np.abs(G)))
    # gathered evaluation of the same tables, entry by entry
    dtab = {w: actspec.kernels.dual.dual_table(act, w, 1.0, 1.0) for w in ("derivative",
                                                                           "activation")}
    th = np.arccos(np.clip(K[iu], -1, 1))
    ref = (K[iu] * dtab["derivative"]._gathered(th, None, dtab["derivative"]._coeffs_by_degree())
           + dtab["activation"]._gathered(th, None, dtab["activation"]._coeffs_by_degree()))
    assert np.max(np.abs(G[iu] - ref)) <= 3e-15 * scale
    # the quadrature at a sample of entries (no table involved)
    pick = rng.choice(iu[0].size, 40, replace=False)
    i, j = iu[0][pick], iu[1][pick]
    q = (K[i, j] * dual(act, s[i], s[j], K[i, j], "derivative", method="quadrature")
         + dual(act, s[i], s[j], K[i, j], "activation", method="quadrature"))
    assert np.max(np.abs(G[i, j] - q)) <= 1e-14 * scale


def test_centred_interval_refused_for_a_rough_table() -> None:
    """The centred piece is accepted only if it reproduces the table: random coefficients (a
    table that jumps at pi/2) get none, and their evaluation stays the per-interval one."""
    tab = _table("uniform")
    assert tab._centre_piece() is None
    theta = np.linspace(0.5 * math.pi - 0.05, 0.5 * math.pi + 0.05, 1000)
    got = tab.evaluate_theta(theta)
    pieces = np.concatenate([tab.evaluate_theta(theta[p:p + 50]) for p in range(0, 1000, 50)])
    assert np.array_equal(got, pieces)


@pytest.mark.parametrize("init", ["dzps", "fanin", "fanout"])
def test_close_pairs_with_different_norms(init: str, monkeypatch) -> None:
    """Nearly parallel / antipodal rows of different norms (y = 2x, y = 1.3x + noise,
    y = -0.7x; with a bias, (1 + 3e-3) x, (1 - 2e-3) x + noise and x + 1e-9 noise are the close
    ones): the angle taken from the rows is the angle of the pre-activation vectors (sw x, b)
    ((x, 1) for fanout), checked against 40-digit mpmath of the arc-cosine kernel (relu, hidden
    layer: <x, y> (pi - theta) / (2 pi)). Before, rows x and 2x came out 0.795 instead of 1
    (dzps), fanin ignored the bias in the angle, and fanout took arccos of the rounded rho."""
    from actspec.core.inits import init_scheme
    from actspec.kernels import gram as gram_mod

    found = []
    make = gram_mod._close_pair_angles

    def spy(*a, **kw):
        angles = make(*a, **kw)

        def wrapped(*b, **kb):
            out = angles(*b, **kb)
            found.append(0 if out is None else out[0].size)
            return out

        return wrapped

    monkeypatch.setattr(gram_mod, "_close_pair_angles", spy)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(5)
    x /= np.linalg.norm(x)
    X = np.vstack([x, 2.0 * x, 1.3 * x + 1e-6 * rng.standard_normal(5), -0.7 * x,
                   (1 + 3e-3) * x, (1 - 2e-3) * x + 1e-7 * rng.standard_normal(5),
                   x + 1e-9 * rng.standard_normal(5), rng.standard_normal(5)])
    n = len(X)
    G = gram_infinite(X, actspec.activation("relu"), init=init)
    assert sum(found) >= 6  # off-diagonal close pairs were taken from the rows
    if init == "fanout":  # the limit kernel sees the augmented rows (x, 1)
        sw2, b2 = 1.0, 1.0
    else:
        sch = init_scheme(init)
        sw2, b2 = sch.weight_std(5, None) ** 2, sch.bias_std(None) ** 2
    with mp.workdps(40):
        rows = [[mp.mpf(float(t)) for t in row] for row in X]
        for a in range(n):
            for b in range(n):
                gx = mp.fsum(p * q for p, q in zip(rows[a], rows[b], strict=True))
                sa = sw2 * mp.fsum(p * p for p in rows[a]) + b2
                sb = sw2 * mp.fsum(p * p for p in rows[b]) + b2
                c = max(min((sw2 * gx + b2) / mp.sqrt(sa * sb), 1), -1)
                ref = float(gx * (mp.pi - mp.acos(c)) / (2 * mp.pi))
                assert abs(G[a, b] - ref) <= 1e-15 * max(1.0, abs(ref)), (a, b, G[a, b], ref)
    if init == "dzps":
        assert abs(G[0, 1] - 1.0) <= 1e-15
