"""What every figure shares: matplotlib's pyplot on the Agg backend (imported on first use), an
atomic PNG writer (temporary file, then rename), one colour per activation across all figures,
legends outside the data, and the loss axis labels.

Colours: every built-in activation has its own fixed colour (:data:`ACTIVATION_COLORS`), the same
in every figure (spectra, Hermite, training, depth, sphere, model, results); any other activation
(an expression, ``module:function``) gets a colour from its name's SHA-256, so it too is the same
from run to run. :func:`activation_colors` assigns a figure's activations at once and keeps them
distinct within the figure.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

from ..core.io import atomic_path

__all__ = [
    "pyplot",
    "save_figure",
    "ACTIVATION_COLORS",
    "activation_key",
    "activation_color",
    "activation_colors",
    "legend_outside",
    "loss_label",
]


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> None:
    plt = pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
    plt.close(fig)


# ---- one colour per activation ------------------------------------------------------------------

#: the built-ins' colours (matplotlib's tab10 first, for the activations the papers compare most)
ACTIVATION_COLORS: dict[str, str] = {
    "relu": "#1f77b4",
    "elu": "#ff7f0e",
    "tanh": "#2ca02c",
    "swish": "#d62728",
    "gelu": "#9467bd",
    "leaky_relu": "#8c564b",
    "selu": "#e377c2",
    "softplus": "#bcbd22",
    "sigmoid": "#17becf",
    "erf": "#393b79",
    "linear": "#7b4173",
    "quadratic": "#637939",
    "cubic": "#ff9896",
    "original": "#000000",  # actspec model: the model's own activation
}
_ALIASES = {"silu": "swish", "identity": "linear"}
#: colours for other activations (none of them a built-in's, none grey: grey marks references)
_OTHER_COLORS = ("#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d",
                 "#9edae5", "#5254a3", "#8ca252", "#bd9e39", "#a55194", "#e7ba52", "#6b6ecf",
                 "#d6616b", "#3182bd")


def activation_key(label: Any) -> str:
    """The activation a label names: ``"relu (diverged)"``, ``"relu: measured"`` and ``"relu"``
    are ``relu``; ``"silu"`` is ``swish``; ``"elu:1.0"`` is ``elu`` (a built-in with its
    parameter keeps the built-in's colour); anything else is itself (stripped, lower case)."""
    text = str(label).strip()
    head = text.split()[0] if text else text
    if head.endswith(":"):
        head = head[:-1]
    low = head.lower()
    base = low.split(":", 1)[0]
    base = _ALIASES.get(base, base)
    if base in ACTIVATION_COLORS:
        return base
    return low


def activation_color(label: Any) -> str:
    """The colour of the activation ``label`` names, the same in every figure and every run."""
    key = activation_key(label)
    if key in ACTIVATION_COLORS:
        return ACTIVATION_COLORS[key]
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return _OTHER_COLORS[int.from_bytes(digest[:4], "big") % len(_OTHER_COLORS)]


def activation_colors(labels: Iterable[Any]) -> dict[str, str]:
    """``{label: colour}`` for one figure: each activation its :func:`activation_color`; labels
    of one activation share it; two different non-built-in activations that would share a
    colour in this figure get the next free one (in the order given)."""
    out: dict[str, str] = {}
    by_key: dict[str, str] = {}
    used = set()
    for label in labels:
        key = activation_key(label)
        if key not in by_key:
            col = activation_color(label)
            if key not in ACTIVATION_COLORS and col in used:
                start = _OTHER_COLORS.index(col)
                free = [c for c in _OTHER_COLORS[start:] + _OTHER_COLORS[:start] if c not in used]
                col = free[0] if free else col
            by_key[key] = col
            used.add(col)
        out[str(label)] = by_key[key]
    return out


# ---- legends and labels -------------------------------------------------------------------------


def legend_outside(ax: Any, where: str = "right", **kwargs: Any) -> Any:
    """The legend of ``ax`` outside its data area: to the ``"right"`` of the axes, or
    ``"below"`` them (under the x label, in columns). None when there is nothing to label."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    kwargs.setdefault("fontsize", 8)
    if where == "below":
        kwargs.setdefault("ncol", min(3, len(handles)))
        return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                         borderaxespad=0.0, **kwargs)
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0.0, **kwargs)


#: the training losses as the axes name them
LOSS_LABELS = {
    "mse": "loss ½Σᵢ‖f(xᵢ) − yᵢ‖²  (summed squared error)",
    "ce": "loss Σᵢ −log softmax(f(xᵢ))_yᵢ  (summed cross-entropy)",
}


def loss_label(loss: str | None) -> str:
    """The y label of a loss axis: which loss (``"mse"``: ½Σ‖f − y‖²; ``"ce"``: summed
    cross-entropy); unknown: both definitions."""
    if loss is None:
        return "loss: ½Σ‖f − y‖² (mse) or Σ cross-entropy (ce)"
    key = str(loss).strip().lower()
    key = {"cross-entropy": "ce", "cross_entropy": "ce", "crossentropy": "ce",
           "squared": "mse", "l2": "mse"}.get(key, key)
    return LOSS_LABELS.get(key, f"training loss ({loss})")
