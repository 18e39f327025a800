"""actspec: how the activation function shapes training.

Compute the G-matrix (the NTK of the trained hidden layer) of two-layer networks for any
activation, at infinite width (closed forms, Hermite expansions, accurate 2x2 Gaussian
expectations) and at finite width (chunked PyTorch), and its spectrum.

>>> import actspec, numpy as np
>>> X = actspec.datasets.circle(10, 10, seed=0)
>>> G = actspec.gram(X, "relu")                 # infinite width
>>> actspec.spectrum(G).lambda_min > 0
True

The package is layered (imports point down only): ``core`` → ``activations`` → ``kernels``,
``highprec``, ``finite`` → ``spectra``, ``data`` → ``plots`` → ``experiments`` → ``sweep`` → ``cli``.
Everything here is loaded on first use, so ``import actspec`` does not import torch or scipy.
"""

from __future__ import annotations

import importlib as _importlib
import sys as _sys
from typing import Any

from .core.errors import ActspecError
from .core.version import __version__

# public name -> module that defines it (loaded on first access)
_API = {
    "Activation": "activations.base",
    "BUILTIN_NAMES": "activations.builtins",
    "activation": "activations.registry",
    "gram": "finite.gram",
    "normalization_constant": "kernels.gram",
    "hermite_coefficients": "kernels.hermite",
    "sample_weights": "core.inits",
    "Spectrum": "spectra.summary",
    "eigenvalues": "spectra.summary",
    "spectrum": "spectra.summary",
    "train": "experiments.training",
    "sphere_spectrum": "spectra.sphere",
    "entk": "finite.entk",
    "kernel_regression": "experiments.regression",
    "eigenpairs": "spectra.summary",
    "swap_activations": "finite.entk",
}
# submodules reachable as attributes, under the names the docs use
_MODULES = {
    "datasets": "data.datasets",
    "diagnostics": "data.diagnostics",
    "theory": "experiments.theory",
    "kinks": "activations.kinks",
    "largescale": "spectra.iterative",
    "highprec": "highprec",
}


class _AliasLoader:
    """Loads ``actspec.<alias>`` as the module it names (``import actspec.theory`` works too)."""

    def __init__(self, real: str) -> None:
        self.real = real

    def create_module(self, spec: Any) -> Any:
        return _importlib.import_module(self.real)

    def exec_module(self, module: Any) -> None:  # already executed under its real name
        return None


class _AliasFinder:
    """Finds the documented submodule names of :data:`_MODULES` for ``import`` statements."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        prefix, _, rest = fullname.partition(".")
        if prefix != __name__ or rest not in _MODULES or rest in ("highprec",):
            return None
        from importlib.util import spec_from_loader

        return spec_from_loader(fullname, _AliasLoader(f"{__name__}.{_MODULES[rest]}"))  # type: ignore[arg-type]


if not any(isinstance(f, _AliasFinder) for f in _sys.meta_path):
    _sys.meta_path.append(_AliasFinder())


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(_importlib.import_module(f".{_API[name]}", __name__), name)
    elif name in _MODULES:
        value = _importlib.import_module(f".{_MODULES[name]}", __name__)
    else:
        raise AttributeError(f"module 'actspec' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API) | set(_MODULES))


__all__ = ["ActspecError", "__version__", *_API, "datasets"]
