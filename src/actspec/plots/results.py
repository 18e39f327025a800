"""Figure of a sweep's results: one metric against one parameter, a line per group (``actspec
results --plot``)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .base import pyplot, save_figure

__all__ = ["plot_results"]


def _auto_log(values: Sequence[float], ratio: float) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) >= ratio


def plot_results(
    path: str | os.PathLike[str],
    series: Mapping[Any, Sequence[tuple[float, float, float, float, int]]],
    *,
    x: str,
    y: str,
    by: str | None,
    agg: str,
    logx: bool | None = None,
    logy: bool | None = None,
    dropped: int = 0,
    reference: Mapping[Any, tuple[float, float, float, int]] | None = None,
) -> Any:
    """``series``: group -> points (x, aggregated y, min y, max y, runs); a band shows min-max
    where a point has several runs. ``reference``: group -> (aggregated y, min y, max y, runs)
    of the rows at x = ∞ (the infinite-width rows for x = width), drawn as a dashed horizontal
    line in the group's colour, with one legend entry "∞ {x}". Log scales by default when x
    spans a factor 8 (y: 50). Returns the figure (already saved)."""
    from matplotlib.lines import Line2D

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    reference = dict(reference or {})
    allx = [p[0] for pts in series.values() for p in pts]
    ally = [v for pts in series.values() for p in pts for v in (p[1], p[2], p[3])
            if v is not None and math.isfinite(v)]
    ally += [r[0] for r in reference.values() if r[0] is not None and math.isfinite(r[0])]
    if logx is None:
        logx = _auto_log(allx, 8)
    if logy is None:
        logy = _auto_log(ally, 50)
    if logy and ally and min(ally) <= 0:
        logy = False
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color") or ["C0"]
    groups = list(dict.fromkeys([*series, *reference]))
    colour = {g: cycle[i % len(cycle)] for i, g in enumerate(groups)}
    for label in groups:
        pts = sorted(series.get(label, []))
        if pts:
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            ax.plot(xs, ys, marker="o", ms=4, color=colour[label], label=str(label) if by else None)
            if any(p[4] > 1 for p in pts):
                ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], alpha=0.15,
                                color=colour[label], lw=0)
        elif by:  # only a reference line: still one legend entry for the group
            ax.plot([], [], marker="o", ms=4, color=colour[label], label=str(label))
    ref_label = f"∞ {x}"
    for label, (yv, _lo, _hi, _n) in reference.items():
        if yv is None or not math.isfinite(yv) or (logy and yv <= 0):
            continue
        ax.axhline(yv, color=colour[label], ls="--", lw=1.2, alpha=0.9)
    show_ref = any(r[0] is not None and math.isfinite(r[0]) for r in reference.values())
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} ({agg}; band: min-max over runs)")
    title = f"{y} vs {x}" + (f" per {by}" if by else "")
    if dropped:
        title += f" ({dropped} point(s) at non-finite {x} left out)"
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if by or show_ref:
        handles, labels = ax.get_legend_handles_labels()
        if show_ref:
            handles.append(Line2D([], [], color="0.35", ls="--", lw=1.2))
            labels.append(ref_label)
        ax.legend(handles, labels, fontsize=8, title=by)
    save_figure(fig, path)
    return fig
