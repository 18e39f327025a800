"""Golden cases: a fixed set of ``actspec`` command lines and Python-API calls whose JSON output is
pinned byte for byte (apart from run metadata) in ``expected/<name>.json``.

Recorded from the baseline commit 95a09e7 by ``record.py``; checked by ``tests/test_golden.py``.
All sizes are small: the whole set runs in a few seconds of computation.

A CLI case is ``Case(name, steps, outputs)``: every step is one ``actspec`` argv, run in order in
one fresh empty working directory (relative paths only, so no temporary path can leak into the
JSON); ``outputs`` are the JSON files (written by ``--json`` or by the command itself) and ``.npy``
arrays whose contents are pinned. The list of files each case leaves in its directory is pinned
too (plots are checked to exist, not byte for byte: PNG bytes depend on matplotlib).

An API case is ``ApiCase(name, fn)``: ``fn()`` returns a JSON-able dict (floats as exact Python
floats: ``json`` writes their shortest round-trip repr, so nothing is rounded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    name: str
    steps: tuple[tuple[str, ...], ...]
    outputs: tuple[str, ...] = ("out.json",)
    #: extra keys (besides "meta") removed at any depth before comparing: wall-clock values only
    strip: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ApiCase:
    name: str
    fn: Callable[[], dict[str, Any]]


def _cli(name: str, *argv: str, outputs: tuple[str, ...] = ("out.json",),
         strip: frozenset[str] = frozenset()) -> Case:
    return Case(name, (tuple(argv),), outputs, strip)


JSON = ("--json", "out.json")

CASES: list[Case] = [
    # ---- spectrum -------------------------------------------------------------------------------
    _cli("spectrum_paper_circle", "spectrum", "-a", "relu", "-a", "elu", "-a", "tanh",
         "--data", "circle", "--n", "12", "--preprocess", "paper", "--width", "inf", "--width", "1000",
         "--show", "3", "--plot", "spectrum.png", *JSON),
    _cli("spectrum_custom_expressions", "spectrum", "-a", "x*sigmoid(x)", "-a", "max(x,0)+0.1*x",
         "--data", "sphere", "--n", "10", "--dim", "5", "--width", "inf", "--width", "500",
         "--normalize", "--seed", "3", *JSON),
    _cli("spectrum_leaky_selu_gelu_both_fanin", "spectrum", "-a", "leaky_relu:0.2", "-a", "selu",
         "-a", "gelu", "--data", "subspace", "--n", "10", "--dim", "8", "--span-dim", "3",
         "--train", "both", "--init", "fanin", "--width", "inf", "--width", "400", *JSON),
    _cli("spectrum_output_fanout_smoothed", "spectrum", "-a", "softplus", "-a", "erf",
         "-a", "silu", "--data", "smoothed", "--n", "10", "--dim", "6", "--span-dim", "2", "--noise", "0.05",
         "--train", "output", "--init", "fanout", "--width", "inf", "--width", "600", *JSON),
    _cli("spectrum_polynomials_digits", "spectrum", "-a", "linear", "-a", "quadratic", "-a", "cubic",
         "--data", "digits", "--n", "25", "--preprocess", "center+paper", *JSON),
    _cli("spectrum_iterative", "spectrum", "-a", "relu", "-a", "tanh", "--data", "sphere", "--n", "80",
         "--dim", "6", "--method", "iterative", "--k", "3", *JSON),
    _cli("spectrum_high_precision", "spectrum", "-a", "tanh", "-a", "relu", "-a", "swish", "--n", "10",
         "--precision", "high", "--digits", "30", *JSON),
    _cli("spectrum_float32_finite", "spectrum", "-a", "relu", "-a", "gelu", "--width", "3000",
         "--dtype", "float32", "--n", "9", "--seed", "7", *JSON),
    # ---- hermite --------------------------------------------------------------------------------
    _cli("hermite_relu_compare", "hermite", "relu", "--degree", "40", "--compare", "tanh",
         "--plot", "hermite.png", *JSON),
    _cli("hermite_custom_of_activation", "hermite", "x*sigmoid(2*x)", "--of", "activation",
         "--degree", "25", *JSON),
    _cli("hermite_elu", "hermite", "elu:1.0", "--degree", "30", *JSON),
    # ---- data -----------------------------------------------------------------------------------
    _cli("data_circle_even", "data", "--data", "circle", "--n", "16", *JSON),
    _cli("data_digits_plots", "data", "--data", "digits", "--n", "60", "--bins", "20",
         "--plot-prefix", "digits", *JSON),
    # ---- train ----------------------------------------------------------------------------------
    _cli("train_hidden_gd", "train", "-a", "relu", "-a", "tanh", "--data", "circle", "--n", "8",
         "--preprocess", "paper", "--width", "500", "--lr", "0.5", "--epochs", "12", "--log-every", "4",
         "--plot", "train.png", *JSON),
    _cli("train_both_repeats_float64", "train", "-a", "relu", "-a", "elu", "--train", "both",
         "--data", "sphere", "--n", "6", "--dim", "4", "--width", "300", "--lr", "0.2", "--epochs", "12",
         "--log-every", "4", "--repeats", "2", "--dtype", "float64", "--target-loss", "0.3",
         "--no-infinite", *JSON),
    _cli("train_sgd_ce_subspace", "train", "-a", "selu", "-a", "leaky_relu:0.2", "--data", "subspace",
         "--n", "20", "--span-dim", "4", "--loss", "ce", "--batch-size", "5", "--width", "200",
         "--lr", "0.05", "--epochs", "4", "--log-every", "2", "--init", "fanin", "--no-infinite", *JSON),
    _cli("train_diverges", "train", "-a", "relu", "--n", "6", "--width", "300", "--lr", "100",
         "--epochs", "20", *JSON),
    # ---- analyze --------------------------------------------------------------------------------
    _cli("analyze_swish_subspace", "analyze", "swish", "--data", "subspace", "--n", "16",
         "--span-dim", "3", "--degree", "100", *JSON),
    # analyze --precision high records the extended-precision solver's wall-clock times in
    # spectrum.seconds {entries, eigenvalues} although analyze has no --timings (a baseline bug:
    # highprec's result dict is written unfiltered): stripped
    _cli("analyze_relu_high", "analyze", "relu", "--n", "10", "--precision", "high", "--digits", "30",
         "--degree", "80", *JSON, strip=frozenset({"seconds"})),
    _cli("analyze_custom_kink", "analyze", "max(x,0)+0.1*tanh(x)", "--n", "8", "--degree", "60",
         "--normalize", *JSON),
    # ---- depth ----------------------------------------------------------------------------------
    _cli("depth_ntk_cone", "depth", "-a", "relu", "-a", "linear", "-a", "tanh", "--depth", "1..4",
         "--data", "cone", "--n", "10", "--plot", "depth.png", "--angle-plot", "angles.png", *JSON),
    _cli("depth_penultimate_bias", "depth", "-a", "tanh", "-a", "relu", "--depth", "1,3",
         "--kernel", "penultimate", "--bias", "0.3", "--scaling", "he", "--n", "8", *JSON),
    _cli("depth_nngp_raw", "depth", "-a", "erf", "-a", "gelu", "--depth", "2", "--kernel", "nngp",
         "--scaling", "raw", "--n", "8", "--spectrum", "extremes", *JSON),
    _cli("depth_finite_width", "depth", "-a", "relu", "-a", "elu", "--depth", "1,2", "--width", "300",
         "--n", "8", "--seed", "2", *JSON),
    # ---- gram (JSON and the .npy matrix) --------------------------------------------------------
    _cli("gram_inf_relu", "gram", "-a", "relu", "--n", "10", "--preprocess", "paper", "--out", "G.npy",
         *JSON, outputs=("out.json", "G.npy")),
    _cli("gram_finite_outputs_float32", "gram", "-a", "tanh", "--width", "700", "--outputs", "2",
         "--dtype", "float32", "--device", "cpu", "--n", "6", "--seed", "5", "--out", "G.npy", *JSON,
         outputs=("out.json", "G.npy")),
    _cli("gram_both_normalize_custom", "gram", "-a", "x*sigmoid(x)", "--train", "both", "--normalize",
         "--data", "sphere", "--n", "7", "--dim", "3", "--out", "G.npy", *JSON,
         outputs=("out.json", "G.npy")),
    # ---- sweep + results on the case's own store ------------------------------------------------
    # the sweep summary and the stored rows carry wall-clock values (summary seconds, startup
    # seconds, tasks per minute; row start/finish times, seconds, worker address) and the git
    # revision as a column: stripped, see record.py
    Case(
        "sweep_and_results",
        (
            ("sweep", "-c", "spectrum", "-p", "activation=relu,erf", "-p", "n=6,9", "-p", "width=inf,200",
             "--db", "s.duckdb", "--dry-run", "--json", "dry_before.json"),
            ("sweep", "-c", "spectrum", "-p", "activation=relu,erf", "-p", "n=6,9", "-p", "width=inf,200",
             "--db", "s.duckdb", "--workers", "1", "--json", "sweep.json"),
            ("sweep", "-c", "spectrum", "-p", "activation=relu,erf", "-p", "n=6,9", "-p", "width=inf,200",
             "--db", "s.duckdb", "--dry-run", "--json", "dry_after.json"),
            ("results", "s.duckdb", "-m", "lambda_min,lambda_max,condition_number", "--with-arrays",
             "--json", "results.json"),
            ("results", "s.duckdb", "-g", "activation,width", "-m", "lambda_min", "--agg", "geomean",
             "--json", "grouped.json"),
        ),
        ("dry_before.json", "sweep.json", "dry_after.json", "results.json", "grouped.json"),
        frozenset({"seconds", "startup_seconds", "tasks_per_minute", "started", "finished", "worker",
                   "git_revision"}),
    ),
    # ---- reproduce (the quick theorem parts: seconds) ------------------------------------------
    # every part records its wall-clock "seconds": stripped
    Case("reproduce_theorems_quick", (("reproduce", "theorems", "--quick", "--out", "rep"),),
         ("rep/report.json",), frozenset({"seconds"})),
]


# ---- Python API ----------------------------------------------------------------------------------


def _floats(a: Any) -> Any:
    import numpy as np

    return np.asarray(a, dtype=np.float64).tolist()


def api_gram_callable_circle() -> dict[str, Any]:
    import torch

    import actspec

    act = actspec.activation(lambda x: torch.tanh(2 * x), name="t2", kinks=())
    X = actspec.datasets.load_data("circle", n=7, preprocess="paper").X
    return {
        "kink_order": act.kink_order,
        "phi": _floats(act.phi(_floats([-1.5, -0.2, 0.0, 0.3, 2.0]))),
        "dphi": _floats(act.dphi(_floats([-1.5, -0.2, 0.0, 0.3, 2.0]))),
        "G_inf": _floats(actspec.gram(X, act)),
        "G_m": _floats(actspec.gram(X, act, width=400, seed=1)),
    }


def api_hermite_coefficients() -> dict[str, Any]:
    import actspec

    out: dict[str, Any] = {}
    for name in ("relu", "leaky_relu:0.2", "elu", "selu", "gelu", "tanh", "swish", "erf", "cubic"):
        act = actspec.activation(name)
        out[name] = {
            "kink_order": act.kink_order,
            "derivative": _floats(actspec.hermite_coefficients(act, 20)),
            "activation": _floats(actspec.hermite_coefficients(act, 20, of="activation")),
        }
    return out


def api_gram_given_weights() -> dict[str, Any]:
    import numpy as np

    import actspec

    X = actspec.datasets.load_data("sphere", n=6, dim=4, seed=2).X
    rng = np.random.default_rng(11)
    W = rng.standard_normal((50, 4))
    a = rng.choice([-1.0, 1.0], size=50)
    return {
        "X": _floats(X),
        "relu_hidden": _floats(actspec.gram(X, "relu", width=50, weights=(W, a))),
        "elu_both": _floats(actspec.gram(X, actspec.activation("elu"), width=50, weights=(W, a),
                                         train="both")),
        "softplus_normalized_seeded": _floats(actspec.gram(X, "softplus", width=300, seed=4, normalize=True)),
        "relu_inf_fanin": _floats(actspec.gram(X, "relu", init="fanin")),
    }


API_CASES: list[ApiCase] = [
    ApiCase("api_gram_callable_circle", api_gram_callable_circle),
    ApiCase("api_hermite_coefficients", api_hermite_coefficients),
    ApiCase("api_gram_given_weights", api_gram_given_weights),
]

ALL_NAMES = [c.name for c in CASES] + [c.name for c in API_CASES]
assert len(set(ALL_NAMES)) == len(ALL_NAMES), "case names must be unique"
