"""What every figure shares: matplotlib's pyplot on the Agg backend (imported on first use) and an
atomic PNG writer (temporary file, then rename)."""

from __future__ import annotations

import os
from typing import Any

from ..core.io import atomic_path

__all__ = ["pyplot", "save_figure"]


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
