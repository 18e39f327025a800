"""Figures (issue 17, item 12): one colour per activation across all figures, legends outside the
data, loss axes that say which loss."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actspec.plots import base
from actspec.plots.base import (
    ACTIVATION_COLORS,
    activation_color,
    activation_colors,
    loss_label,
)

BUILTINS = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "softplus", "tanh", "sigmoid",
            "erf", "linear", "quadratic", "cubic")


def test_builtins_have_distinct_fixed_colours() -> None:
    cols = [activation_color(a) for a in BUILTINS]
    assert len(set(cols)) == len(BUILTINS)
    assert activation_color("relu") == "#1f77b4" and activation_color("tanh") == "#2ca02c"
    # spellings of one activation share its colour
    assert activation_color("silu") == activation_color("swish")
    assert activation_color("elu:1.0") == activation_color("elu")
    assert activation_color("relu (diverged)") == activation_color("relu: measured") == cols[0]
    assert activation_color("ReLU") == cols[0]


def test_other_activations_get_a_colour_from_their_name() -> None:
    name = "x*sigmoid(x)"
    k = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    assert activation_color(name) == base._OTHER_COLORS[k % len(base._OTHER_COLORS)]
    assert activation_color(name) not in ACTIVATION_COLORS.values()
    # the same in another process (no per-process hash seed)
    code = "from actspec.plots.base import activation_color as c; print(c('x*sigmoid(x)'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, check=True).stdout.strip()
    assert out == activation_color(name)


def test_one_figure_keeps_other_activations_apart() -> None:
    first = "abs(x)"
    twin = next(f"x**{k}+x" for k in range(2, 500)
                if activation_color(f"x**{k}+x") == activation_color(first))
    cols = activation_colors([first, "relu", twin, "relu: predicted"])
    assert cols[first] == activation_color(first)  # the first keeps its own colour
    assert cols[twin] != cols[first]
    assert cols["relu"] == cols["relu: predicted"] == ACTIVATION_COLORS["relu"]


def test_loss_labels_say_which_loss() -> None:
    assert "½" in loss_label("mse") and "squared" in loss_label("mse")
    assert "cross-entropy" in loss_label("ce") and "summed" in loss_label("ce")
    assert "½" in loss_label(None) and "cross-entropy" in loss_label(None)


# ---- the figures render, in the activations' colours, legends outside the axes ------------------


def _capture(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[Any]:
    figs: list[Any] = []
    real = base.save_figure

    def save(fig: Any, path: Any) -> None:
        fig.canvas.draw()
        figs.append((fig, _legends_outside(fig), _line_colours(fig)))  # checked while drawn
        real(fig, path)  # and the PNG is written

    monkeypatch.setattr(module, "save_figure", save, raising=False)
    monkeypatch.setattr(base, "save_figure", save)
    return figs


def _legends_outside(fig: Any) -> int:
    """Every legend of ``fig`` lies outside the data area of its axes; returns how many."""
    r = fig.canvas.get_renderer()
    count = 0
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is None:
            continue
        lb, ab = leg.get_window_extent(r), ax.get_window_extent(r)
        assert lb.x0 >= ab.x1 - 0.5 or lb.y1 <= ab.y0 + 0.5 or lb.x1 <= ab.x0 + 0.5, (lb, ab)
        count += 1
    return count


def _line_colours(fig: Any) -> dict[str, str]:
    from matplotlib.colors import to_hex

    return {str(ln.get_label()): to_hex(ln.get_color()) for ax in fig.axes for ln in ax.lines}


def _spectra(tmp: Path) -> None:
    from actspec.plots.spectra import plot_spectra

    plot_spectra([{"label": "relu", "eigenvalues": [3.0, 2.0, 1.0], "resolution": 1e-16},
                  {"label": "tanh (m=100)", "activation": "tanh", "eigenvalues": [2.0, 1.0, 0.1],
                   "resolution": 1e-16, "dashed": True}], tmp / "s.png")


def _hermite(tmp: Path) -> None:
    from actspec.plots.spectra import plot_hermite

    plot_hermite({"relu": np.array([0.5, 0.4, 0.0, 0.1]), "tanh": np.array([0.6, 0.0, 0.2, 0.0])},
                 tmp / "h.png")


def _training(tmp: Path) -> None:
    from actspec.plots.training import plot_training

    rows = [{"activation": a, "epoch": [0, 1, 2], "loss": [1.0, 0.5, 0.25 * s],
             "predicted_loss": [1.0, 0.6, 0.3], "gram_drift": [1e-3, 1e-2, 2e-2]}
            for a, s in (("relu", 1.0), ("tanh", 2.0))]
    plot_training(rows, tmp / "t.png", target_loss=0.1, loss="ce")


def _depth(tmp: Path) -> None:
    from actspec.plots.depth import plot_depth_spectrum

    rows = [{"activation": a, "depth": L, "lambda_min": 0.1 / L, "lambda_max": 2.0 * L,
             "condition_number": 20.0 * L * L, "condition_number_is_lower_bound": False}
            for a in ("relu", "tanh") for L in (1, 2, 3)]
    plot_depth_spectrum(rows, tmp / "d.png")


def _angles(tmp: Path) -> None:
    from actspec.plots.depth import plot_gradient_angles

    rows = [{"activation": a, "depth": L,
             "angles": {"input_angle": [0.1, 0.5, 1.0], "gradient_angle_mean": [0.1, 0.4, 0.8]}}
            for a in ("relu", "tanh") for L in (1, 2)]
    plot_gradient_angles(rows, tmp / "a.png")


def _sphere(tmp: Path) -> None:
    from actspec.plots.sphere import plot_mercer

    rows = [{"activation": a, "degrees": [0, 1, 2, 3, 4], "eigenvalues": [1.0, 0.5, 0.1, 0.05, 0.01],
             "resolved": [True] * 5, "dim": 3} for a in ("relu", "tanh")]
    plot_mercer(rows, tmp / "m.png")


def _model(tmp: Path) -> None:
    from actspec.plots.model import plot_model

    rows = [{"activation": a, "per_seed": [{
        "eigenvalues": [3.0, 2.0, 1.0], "resolution": 0.0, "condition_number": 3.0,
        "angles": {"input_angle": [0.1, 0.5], "gradient_angle_mean": [0.1, 0.4]}}]}
        for a in ("original", "relu", "tanh")]
    plot_model(rows, tmp / "mo.png")


def _report(tmp: Path) -> None:
    from actspec.plots.report import plot_report_card

    card = {
        "hermite": {"fit_coefficients": [0.5, 0.4, 0.0, 0.1], "decay": {"source": "float64"}},
        "activation": {"name": "relu"}, "kinks": {"kink_class": "J_1"},
        "dual_kernel": {"rho": [-1.0, 0.0, 1.0], "E_dphi_dphi": [0.0, 0.25, 0.5]},
        "spectrum": {"eigenvalues": [3.0, 1.0, 1e-20], "resolution": 1e-15},
        "spectrum_float64": {"eigenvalues": [3.0, 1.0, 1e-20], "resolution": 1e-15},
        "settings": {"threshold": 1e-3}, "data": {"name": "circle", "n": 3, "span_dim": 2},
    }
    plot_report_card(card, tmp / "r.png")


FIGURES: list[tuple[str, Callable[[Path], None], str]] = [
    ("spectra", _spectra, "actspec.plots.spectra"),
    ("hermite", _hermite, "actspec.plots.spectra"),
    ("training", _training, "actspec.plots.training"),
    ("depth", _depth, "actspec.plots.depth"),
    ("angles", _angles, "actspec.plots.depth"),
    ("sphere", _sphere, "actspec.plots.sphere"),
    ("model", _model, "actspec.plots.model"),
    ("report", _report, "actspec.plots.report"),
]


@pytest.mark.parametrize("name, draw, module", FIGURES, ids=[f[0] for f in FIGURES])
def test_figure_renders_with_legends_outside(
    name: str, draw: Callable[[Path], None], module: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    figs = _capture(monkeypatch, importlib.import_module(module))
    draw(tmp_path)
    [(fig, legends, colours)] = figs
    assert legends >= 1
    [png] = list(tmp_path.iterdir())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for label, col in colours.items():
        key = base.activation_key(label)
        if key in ("relu", "tanh") and name != "angles":  # angles: colour = depth
            assert col == ACTIVATION_COLORS[key], (label, col)
    if name == "training":
        assert "cross-entropy" in fig.axes[0].get_ylabel()
    if name == "model":
        assert colours["original"] == "#000000"
