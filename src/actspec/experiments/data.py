"""The data of an experiment, selected by one :class:`DataSpec` (the command's data options, a sweep
task's data parameters): every source of :func:`actspec.data.datasets.load_data`, plus ``cone``
(points in a narrow cone, the Liu & Hui setting of similar inputs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.validate import ParameterError
from . import params as P

__all__ = ["CONE_DEFAULTS", "DataSpec", "cone_dataset"]

CONE_DEFAULTS = {"n": 50, "dim": 100}


def cone_dataset(n: int | None, dim: int | None, spread: float, seed: int, *,
                 preprocess: str | None = None, normalize: bool = True) -> Any:
    """n points in a narrow cone of angular spread ``spread`` (defaults n=50, dim=100)."""
    from ..data.datasets import Dataset, apply_preprocess
    from .depth import small_angle_data

    for name, v in (("n", n), ("dim", dim)):
        if v is not None and (isinstance(v, bool) or v < 1):
            raise ParameterError(f"{{-{name}}} must be >= 1 (got {v})")
    if seed < 0:
        raise ParameterError(f"{{-seed}} must be a non-negative integer, got {seed}")
    n_ = n if n is not None else CONE_DEFAULTS["n"]
    dim_ = dim if dim is not None else CONE_DEFAULTS["dim"]
    if n_ * dim_ > 2_000_000_000:
        raise ParameterError(f"cone: n*dim = {n_ * dim_:.3g} is too large; choose a smaller {{-n}} "
                             "or {-dim}")
    X = small_angle_data(n_, dim_, spread, seed=seed)
    steps: list[str] = []
    if preprocess:
        X, steps = apply_preprocess(X, preprocess, normalize=normalize)
    info = {
        "spec": "cone",
        "seed": seed,
        "spread": float(spread),
        "source": "synthetic",
        "span_dim": min(n_, dim_),
        "preprocess": steps,
    }
    return Dataset(X, None, "cone", info)


@dataclass(frozen=True)
class DataSpec:
    """The data options every data-taking command shares (data, n, ..., preprocess); the names
    and defaults are :data:`actspec.experiments.params.DATA_PARAMS`."""

    data: str = P.DATA.default
    n: int | None = P.N.default
    dim: int | None = P.DIM.default
    span_dim: int | None = P.SPAN_DIM.default
    noise: float = P.NOISE.default
    seed: int = P.SEED.default
    data_dir: str | None = P.DATA_DIR.default
    normalize_inputs: bool = P.NORMALIZE_INPUTS.default
    preprocess: str | None = P.PREPROCESS.default

    def load(self, labels: str = "auto") -> Any:
        """The selected data set (a :class:`actspec.data.datasets.Dataset`)."""
        if str(self.data).strip().lower() == "cone":
            return cone_dataset(self.n, self.dim, self.noise, self.seed,
                                preprocess=self.preprocess, normalize=self.normalize_inputs)
        from ..data.datasets import load_data

        return load_data(
            self.data,
            n=self.n,
            dim=self.dim,
            span_dim=self.span_dim,
            noise=self.noise,
            seed=self.seed,
            data_dir=self.data_dir,
            normalize=self.normalize_inputs,
            preprocess=self.preprocess,
            labels=labels,
        )
