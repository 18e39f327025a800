"""Activation functions: each one owns its math (phi, phi', kinks, closed forms).

``activation(spec)`` is the one entry point: a built-in name (``"relu"``, ``"leaky_relu:0.2"``), an
expression (``"x*sigmoid(x)"``), ``module:function``, or a Python callable.

Modules, lowest first: ``base`` (the :class:`Activation` class, evaluation on numpy and torch,
user callables), ``builtins`` (every built-in), ``expressions`` (the formula parser and mpmath
forms), ``kinks`` (numerical kink detection), ``registry`` (``activation(spec)``).
"""

from .base import Activation, check_defined
from .builtins import ALIASES, BUILTIN_NAMES
from .registry import activation

__all__ = ["ALIASES", "BUILTIN_NAMES", "Activation", "activation", "check_defined"]
