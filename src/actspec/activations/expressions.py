"""Activations written as expressions, ``module:function`` activations, and the mpmath forms of
the built-ins (for the extended-precision kernels).

:func:`parse_expression` turns text such as ``"x*sigmoid(x)"`` into a function that
evaluates on numpy arrays, torch tensors and mpmath numbers (with an exact derivative by forward
differentiation), from a safe subset of Python syntax: numbers, ``x``, ``pi``, ``e``, + - * / **,
and the functions in :data:`EXPRESSION_FUNCTIONS`. Nothing is ever passed to ``eval``.

Piecewise formulas are written as numpy and torch users write them, with
``where(cond, a, b)``: ``a`` where ``cond`` holds, ``b`` elsewhere, e.g. ``where(x > 0, x, exp(x) - 1)``
(ELU) or ``where(x > 0, x, 0.2*x)`` (leaky ReLU). ``cond`` compares formulas with
``<  <=  >  >=  ==  !=`` (chains such as ``-1 < x < 1`` mean ``-1 < x and x < 1``) and combines
comparisons with ``and``, ``or``, ``not`` (or numpy's ``&``, ``|``, ``~``). Comparisons may only
appear in the first argument of ``where``. On numpy arrays this is ``np.where``; on torch tensors
``torch.where``, with the derivative of the chosen branch only (a branch that is undefined where
it is not chosen, e.g. ``where(x > 0, sqrt(x), 0)``, gives no NaN gradients); in mpmath only the
chosen branch is evaluated, with its forward derivative.
"""

from __future__ import annotations

import ast
import importlib
import math
import weakref
from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np
import scipy.special as sps
import torch

from ..core.errors import ActspecError
from .base import Activation, check_defined, from_callable
from .builtins import builtin, is_builtin_name, mp_sigmoid, mp_softplus

__all__ = [
    "EXPRESSION_FUNCTIONS",
    "Expression",
    "parse_expression",
    "register_mp",
    "import_function",
    "looks_like_expression",
    "plain_activation",
    "mp_functions",
]


# name -> number of arguments
EXPRESSION_FUNCTIONS: dict[str, int] = {
    "exp": 1, "log": 1, "log1p": 1, "expm1": 1, "sqrt": 1, "abs": 1,
    "sin": 1, "cos": 1, "tan": 1, "tanh": 1, "sinh": 1, "cosh": 1,
    "atan": 1, "arctan": 1, "asinh": 1, "arcsinh": 1,
    "sigmoid": 1, "softplus": 1, "erf": 1, "erfc": 1, "ncdf": 1, "npdf": 1,
    "relu": 1, "max": 2, "min": 2, "where": 3,
}  # fmt: skip


_CONSTANTS = {"pi": math.pi, "e": math.e}


_MAX_EXPR_LEN = 500


_MAX_NODES = 400


class _Node:
    __slots__ = ("kind", "op", "args", "value")

    def __init__(self, kind: str, op: str = "", args: tuple[_Node, ...] = (), value: float = 0.0):
        self.kind, self.op, self.args, self.value = kind, op, args, value


def _bad(text: str, why: str) -> ActspecError:
    funcs = ", ".join(sorted(f for f in EXPRESSION_FUNCTIONS if f != "where"))
    return ActspecError(
        f"cannot use activation expression {text!r}: {why}. Write a formula in x with numbers, "
        f"pi, e, + - * / ** and the functions {funcs} (e.g. 'x*sigmoid(x)'), and "
        "where(cond, a, b) for a piecewise formula (cond: comparisons < <= > >= == != joined "
        "by and/or/not, e.g. 'where(x > 0, x, exp(x) - 1)'), a built-in name, or module:function"
    )


# comparison operators allowed in the condition of where(cond, a, b)
_CMP_OPS = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}


_COND_ONLY = "is only allowed in the condition of where(cond, a, b), e.g. 'where(x > 0, x, 0.2*x)'"


def _convert_cond(node: ast.AST, text: str, count: list[int]) -> _Node:
    """The condition of ``where``: comparisons of formulas joined by and/or/not (or & | ~)."""
    count[0] += 1
    if count[0] > _MAX_NODES:
        raise _bad(text, f"more than {_MAX_NODES} terms")
    if isinstance(node, ast.Compare):
        if any(type(op) not in _CMP_OPS for op in node.ops):
            bad = next(type(op).__name__ for op in node.ops if type(op) not in _CMP_OPS)
            raise _bad(text, f"comparison {bad} is not allowed (use < <= > >= == !=)")
        sides = [_convert(v, text, count) for v in (node.left, *node.comparators)]
        parts = [_Node("cmp", _CMP_OPS[type(op)], (sides[i], sides[i + 1])) for i, op in enumerate(node.ops)]
        return parts[0] if len(parts) == 1 else _Node("and", args=tuple(parts))
    if isinstance(node, ast.BoolOp):
        op = "and" if isinstance(node.op, ast.And) else "or"
        return _Node(op, args=tuple(_convert_cond(v, text, count) for v in node.values))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
        op = "and" if isinstance(node.op, ast.BitAnd) else "or"
        sub = (_convert_cond(node.left, text, count), _convert_cond(node.right, text, count))
        return _Node(op, args=sub)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
        return _Node("not", args=(_convert_cond(node.operand, text, count),))
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        raise _bad(text, "the condition of where must compare formulas, e.g. x > 0 (not True/False)")
    raise _bad(
        text,
        f"the condition of where must be a comparison such as x > 0 (got {ast.unparse(node)!r})",
    )


def _convert(node: ast.AST, text: str, count: list[int]) -> _Node:
    count[0] += 1
    if count[0] > _MAX_NODES:
        raise _bad(text, f"more than {_MAX_NODES} terms")
    if isinstance(node, ast.Expression):
        return _convert(node.body, text, count)
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _bad(text, f"constant {v!r} is not a real number")
        fv = float(v)
        if not math.isfinite(fv):
            raise _bad(text, "constants must be finite")
        return _Node("const", value=fv)
    if isinstance(node, ast.Name):
        if node.id == "x":
            return _Node("x")
        if node.id in _CONSTANTS:
            return _Node("const", value=_CONSTANTS[node.id])
        if node.id == "where":
            raise _bad(text, "function 'where' must be called, e.g. where(x > 0, x, 0.2*x)")
        if node.id in EXPRESSION_FUNCTIONS:
            raise _bad(text, f"function {node.id!r} must be called, e.g. {node.id}(x)")
        raise _bad(text, f"unknown name {node.id!r} (the variable is x)")
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return _Node("neg", args=(_convert(node.operand, text, count),))
        if isinstance(node.op, ast.UAdd):
            return _convert(node.operand, text, count)
        if isinstance(node.op, (ast.Not, ast.Invert)):
            raise _bad(text, f"'not' / '~' {_COND_ONLY}")
        raise _bad(text, f"operator {type(node.op).__name__} is not allowed")
    if isinstance(node, ast.BinOp):
        ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
        op = ops.get(type(node.op))
        if op is None and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            raise _bad(text, f"'&' / '|' {_COND_ONLY}")
        if op is None:
            raise _bad(text, f"operator {type(node.op).__name__} is not allowed")
        return _Node("bin", op, (_convert(node.left, text, count), _convert(node.right, text, count)))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in EXPRESSION_FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise _bad(text, f"unknown function {name!r}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _bad(text, "keyword or starred arguments are not allowed")
        want = EXPRESSION_FUNCTIONS[node.func.id]
        if node.func.id == "where":
            if len(node.args) != 3:
                raise _bad(
                    text,
                    f"where takes 3 arguments, where(cond, a, b) (a where cond holds, b "
                    f"elsewhere), got {len(node.args)}",
                )
            cond = _convert_cond(node.args[0], text, count)
            return _Node("where", args=(cond, *(_convert(a, text, count) for a in node.args[1:])))
        if len(node.args) != want:
            raise _bad(text, f"{node.func.id} takes {want} argument(s), got {len(node.args)}")
        return _Node("call", node.func.id, tuple(_convert(a, text, count) for a in node.args))
    if isinstance(node, (ast.Compare, ast.BoolOp)):
        what = "a comparison" if isinstance(node, ast.Compare) else "and/or"
        raise _bad(text, f"{what} {_COND_ONLY}")
    raise _bad(text, f"{_CONSTRUCTS.get(type(node).__name__, type(node).__name__)} is not allowed")


# friendlier names of Python constructs an activation formula cannot use
_CONSTRUCTS = {
    "IfExp": "a conditional (if/else; write where(cond, a, b), e.g. where(x > 0, x, 0.2*x))",
    "Lambda": "lambda (write the formula in x directly)",
    "Attribute": "attribute access (a.b)",
    "Subscript": "indexing",
    "Tuple": "a tuple",
    "List": "a list",
    "Dict": "a dict",
    "Set": "a set",
    "NamedExpr": "assignment (:=)",
    "JoinedStr": "an f-string",
    "ListComp": "a comprehension",
    "GeneratorExp": "a comprehension",
    "Await": "await",
    "Yield": "yield",
}


def _uses_x(node: _Node) -> bool:
    return node.kind == "x" or any(_uses_x(a) for a in node.args)


def _np_fn(name: str) -> Callable[..., Any]:
    table: dict[str, Callable[..., Any]] = {
        "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "sqrt": np.sqrt,
        "abs": np.abs, "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
        "sinh": np.sinh, "cosh": np.cosh, "atan": np.arctan, "arctan": np.arctan,
        "asinh": np.arcsinh, "arcsinh": np.arcsinh, "sigmoid": sps.expit,
        "softplus": lambda u: np.logaddexp(0.0, u), "erf": sps.erf, "erfc": sps.erfc,
        "ncdf": sps.ndtr, "npdf": lambda u: np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi),
        "relu": lambda u: np.maximum(u, 0.0), "max": np.maximum, "min": np.minimum,
    }  # fmt: skip
    return table[name]


def _torch_fn(name: str) -> Callable[..., Any]:
    def _t(v: Any, like: torch.Tensor) -> torch.Tensor:
        return v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=like.dtype)

    def tmax(a: Any, b: Any) -> Any:
        like = a if isinstance(a, torch.Tensor) else b
        return torch.maximum(_t(a, like), _t(b, like))

    def tmin(a: Any, b: Any) -> Any:
        like = a if isinstance(a, torch.Tensor) else b
        return torch.minimum(_t(a, like), _t(b, like))

    table: dict[str, Callable[..., Any]] = {
        "exp": torch.exp, "log": torch.log, "log1p": torch.log1p, "expm1": torch.expm1,
        "sqrt": torch.sqrt, "abs": torch.abs, "sin": torch.sin, "cos": torch.cos,
        "tan": torch.tan, "tanh": torch.tanh, "sinh": torch.sinh, "cosh": torch.cosh,
        "atan": torch.atan, "arctan": torch.atan, "asinh": torch.asinh, "arcsinh": torch.asinh,
        "sigmoid": torch.sigmoid, "softplus": lambda u: torch.logaddexp(u, torch.zeros_like(u)),
        "erf": torch.special.erf, "erfc": torch.special.erfc, "ncdf": torch.special.ndtr,
        "npdf": lambda u: torch.exp(-0.5 * u * u) / math.sqrt(2 * math.pi),
        "relu": torch.relu, "max": tmax, "min": tmin,
    }  # fmt: skip
    return table[name]


def _mp_value_deriv(name: str, u: Any) -> tuple[Any, Any]:
    """(f(u), f'(u)) in mpmath for a one-argument expression function."""
    if name == "exp":
        v = mp.exp(u)
        return v, v
    if name == "log":
        return mp.log(u), 1 / u
    if name == "log1p":
        return mp.log1p(u), 1 / (1 + u)
    if name == "expm1":
        return mp.expm1(u), mp.exp(u)
    if name == "sqrt":
        v = mp.sqrt(u)
        return v, (1 / (2 * v) if v != 0 else mp.inf)
    if name == "abs":
        return abs(u), mp.mpf(mp.sign(u))
    if name == "sin":
        return mp.sin(u), mp.cos(u)
    if name == "cos":
        return mp.cos(u), -mp.sin(u)
    if name == "tan":
        v = mp.tan(u)
        return v, 1 + v * v
    if name == "tanh":
        v = mp.tanh(u)
        return v, mp.sech(u) ** 2
    if name == "sinh":
        return mp.sinh(u), mp.cosh(u)
    if name == "cosh":
        return mp.cosh(u), mp.sinh(u)
    if name in ("atan", "arctan"):
        return mp.atan(u), 1 / (1 + u * u)
    if name in ("asinh", "arcsinh"):
        return mp.asinh(u), 1 / mp.sqrt(1 + u * u)
    if name == "sigmoid":
        s = mp_sigmoid(u)
        return s, s * (1 - s)
    if name == "softplus":
        return mp_softplus(u), mp_sigmoid(u)
    if name == "erf":
        return mp.erf(u), 2 / mp.sqrt(mp.pi) * mp.exp(-u * u)
    if name == "erfc":
        return mp.erfc(u), -2 / mp.sqrt(mp.pi) * mp.exp(-u * u)
    if name == "ncdf":
        return mp.ncdf(u), mp.npdf(u)
    if name == "npdf":
        v = mp.npdf(u)
        return v, -u * v
    if name == "relu":
        return (u, mp.mpf(1)) if u > 0 else (mp.mpf(0), mp.mpf(0))
    raise KeyError(name)  # pragma: no cover


def _eval(node: _Node, x: Any, backend: str) -> Any:
    """Evaluate on numpy arrays ('numpy') or torch tensors ('torch')."""
    k = node.kind
    if k == "x":
        return x
    if k == "const":
        return node.value
    if k == "neg":
        return -_eval(node.args[0], x, backend)
    if k == "bin":
        left = _eval(node.args[0], x, backend)
        right_node = node.args[1]
        if node.op == "**" and right_node.kind == "const":
            p = right_node.value
            if p == int(p) and 0 <= p <= 16:  # repeated products: clean autograd at 0
                return _int_power(left, int(p), x, backend)
        right = _eval(right_node, x, backend)
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if node.op == "/":
            return left / right
        if backend == "torch" and not isinstance(left, torch.Tensor):
            left = torch.as_tensor(left, dtype=x.dtype)
        if backend == "numpy":
            with np.errstate(invalid="ignore"):
                return np.power(left, right)
        return left**right
    if k == "where":
        return _eval_where(node, x, backend)
    fn = _np_fn(node.op) if backend == "numpy" else _torch_fn(node.op)
    args = [_eval(a, x, backend) for a in node.args]
    if backend == "torch":
        args = [a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=x.dtype) for a in args]
    elif len(args) == 1 and not isinstance(args[0], np.ndarray):
        args = [np.asarray(args[0], dtype=np.float64)]
    return fn(*args)


_CMP_FNS: dict[str, Callable[[Any, Any], Any]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}  # fmt: skip


def _eval_cond(node: _Node, x: Any, backend: str) -> Any:
    """A where condition as a bool numpy array or tensor (or a Python bool when x is absent)."""
    k = node.kind
    if k == "cmp":
        a, b = (_eval(arg, x, backend) for arg in node.args)
        return _CMP_FNS[node.op](a, b)
    parts = [_eval_cond(arg, x, backend) for arg in node.args]
    land: Callable[..., Any]
    lor: Callable[..., Any]
    lnot: Callable[..., Any]
    if backend == "torch":
        parts = [
            p if isinstance(p, torch.Tensor) else torch.as_tensor(bool(p), device=x.device) for p in parts
        ]
        land, lor, lnot = torch.logical_and, torch.logical_or, torch.logical_not
    else:
        land, lor, lnot = np.logical_and, np.logical_or, np.logical_not
    if k == "not":
        return lnot(parts[0])
    out = parts[0]
    for p in parts[1:]:
        out = land(out, p) if k == "and" else lor(out, p)
    return out


def _eval_where(node: _Node, x: Any, backend: str) -> Any:
    """``where(cond, a, b)``: np.where / torch.where.

    In torch each branch sees x through a gate ``torch.where(mask, x, x.detach())``: the same
    values, but the gradient of x is taken only where that branch is chosen, and it is *selected*
    there (not multiplied by a 0/1 mask), so a branch that is NaN or infinite (or has a NaN
    derivative) where it is not chosen, such as ``sqrt(x)`` for x < 0, leaves phi' and the higher
    derivatives (nested autograd) finite.
    """
    cond = _eval_cond(node.args[0], x, backend)
    if backend == "numpy":
        a, b = (_eval(arg, x, backend) for arg in node.args[1:])
        return np.where(cond, a, b)
    if not isinstance(cond, torch.Tensor):
        cond = torch.as_tensor(bool(cond), device=x.device)
    xd = x.detach()  # gated always (also under torch.func transforms, where requires_grad lies)
    xa, xb = torch.where(cond, x, xd), torch.where(cond, xd, x)
    a, b = _eval(node.args[1], xa, backend), _eval(node.args[2], xb, backend)
    a, b = (
        v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=x.dtype, device=x.device)
        for v in (a, b)
    )
    out = torch.where(cond, a, b)
    if x.requires_grad and not out.requires_grad:  # a step: keep it on the graph (phi' = 0)
        out = out + 0.0 * x
    return out


def _int_power(base: Any, p: int, x: Any, backend: str) -> Any:
    if p == 0:
        return 1.0 + 0.0 * x
    out = None
    b = base
    while p:
        if p & 1:
            out = b if out is None else out * b
        p >>= 1
        if p:
            b = b * b
    return out


def _eval_mp(node: _Node, x: Any) -> tuple[Any, Any]:
    """(value, d value / dx) in mpmath by forward differentiation."""
    k = node.kind
    if k == "x":
        return x, mp.mpf(1)
    if k == "const":
        return mp.mpf(node.value), mp.mpf(0)
    if k == "neg":
        v, d = _eval_mp(node.args[0], x)
        return -v, -d
    if k == "bin":
        a, da = _eval_mp(node.args[0], x)
        if node.op == "**" and node.args[1].kind == "const":
            p = mp.mpf(node.args[1].value)
            if p == 0:
                return mp.mpf(1), mp.mpf(0)
            if p == int(p) and p > 0:
                return a**p, p * a ** (p - 1) * da
            return a**p, (p * a ** (p - 1) * da if da != 0 else mp.mpf(0))
        b, db = _eval_mp(node.args[1], x)
        if node.op == "+":
            return a + b, da + db
        if node.op == "-":
            return a - b, da - db
        if node.op == "*":
            return a * b, da * b + a * db
        if node.op == "/":
            return a / b, (da * b - a * db) / (b * b)
        v = a**b
        return v, v * (db * mp.log(a) + b * da / a)
    if k == "where":  # only the chosen branch is evaluated (the other may be undefined there)
        return _eval_mp(node.args[1] if _eval_mp_cond(node.args[0], x) else node.args[2], x)
    if node.op in ("max", "min"):
        (a, da), (b, db) = (_eval_mp(arg, x) for arg in node.args)
        first = a >= b if node.op == "max" else a <= b
        return (a, da) if first else (b, db)
    u, du = _eval_mp(node.args[0], x)
    v, dv = _mp_value_deriv(node.op, u)
    return v, dv * du


def _mp_real(v: Any) -> Any:
    """A compared value in mpmath: a non-real result (log of a negative number) compares as NaN,
    as in numpy and torch."""
    if isinstance(v, mp.mpc):
        return v.real if v.imag == 0 else mp.nan
    return v


def _eval_mp_cond(node: _Node, x: Any) -> bool:
    """A where condition at one mpmath number."""
    k = node.kind
    if k == "cmp":
        a, b = (_mp_real(_eval_mp(arg, x)[0]) for arg in node.args)
        return bool(_CMP_FNS[node.op](a, b))
    if k == "not":
        return not _eval_mp_cond(node.args[0], x)
    if k == "and":
        return all(_eval_mp_cond(arg, x) for arg in node.args)
    return any(_eval_mp_cond(arg, x) for arg in node.args)


class Expression:
    """A parsed activation formula in x: callable on numpy arrays, torch tensors or mpmath numbers.

    ``expr(x)`` dispatches on the argument type; ``expr.mp_phi(x)`` / ``expr.mp_dphi(x)`` evaluate
    phi and its exact derivative (forward differentiation) in mpmath at the current precision.
    """

    def __init__(self, text: str, tree: _Node) -> None:
        self.text = text
        self._tree = tree
        self.__name__ = text

    def __call__(self, x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            out = _eval(self._tree, x, "torch")
            if not isinstance(out, torch.Tensor):
                out = torch.full_like(x, float(out))
            return out
        if isinstance(x, mp.mpf) or isinstance(x, (int, float)) and not isinstance(x, bool):
            return self.mp_phi(mp.mpf(x))
        xa = np.asarray(x, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = _eval(self._tree, xa, "numpy")
        return np.broadcast_to(np.asarray(out, dtype=np.float64), xa.shape).copy()

    def mp_phi(self, x: Any) -> Any:
        return _eval_mp(self._tree, mp.mpf(x))[0]

    def mp_dphi(self, x: Any) -> Any:
        return _eval_mp(self._tree, mp.mpf(x))[1]

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def parse_expression(text: str) -> Expression:
    """Parse an activation formula (safe subset of Python syntax; see the module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(str(text), "it is empty")
    src = text.strip()
    if len(src) > _MAX_EXPR_LEN:
        raise _bad(src[:40] + "...", f"longer than {_MAX_EXPR_LEN} characters")
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as exc:
        raise _bad(src, f"syntax error ({exc.msg})") from None
    node = _convert(tree, src, [0])
    if not _uses_x(node):
        raise _bad(src, "it does not depend on x")
    return Expression(src, node)


_MP_REGISTRY: weakref.WeakKeyDictionary[Any, tuple[Callable[[Any], Any], Callable[[Any], Any], str]]


_MP_REGISTRY = weakref.WeakKeyDictionary()


def register_mp(
    act: Activation, phi: Callable[[Any], Any], dphi: Callable[[Any], Any], source: str = "user"
) -> None:
    """Attach mpmath versions of phi and phi' to a user activation (enables high precision)."""
    _MP_REGISTRY[act._phi] = (phi, dphi, source)


def import_function(spec: str) -> Callable[..., Any] | None:
    """The function named by ``"module:function"`` (imported from the working directory or
    PYTHONPATH), or None when ``spec`` does not have that shape."""
    text = spec.strip()
    mod, sep, fn = text.partition(":")
    if not (sep and fn.isidentifier() and all(part.isidentifier() for part in mod.split("."))):
        return None
    import sys

    added = False
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
        added = True
    try:
        module = importlib.import_module(mod)
    except ImportError as exc:
        raise ActspecError(
            f"cannot import module {mod!r} for activation {text!r} ({exc}); run from the "
            "directory holding it or put it on PYTHONPATH"
        ) from None
    finally:
        if added:
            sys.path.remove("")
    func = getattr(module, fn, None)
    if not callable(func):
        raise ActspecError(f"{mod!r} has no function {fn!r} (activation {text!r})")
    return func


def looks_like_expression(text: str) -> bool:
    """Whether ``text`` (not a built-in name, not module:function) should be parsed as a formula."""
    return any(ch in text for ch in "()*+-/") or text == "x" or not text.isidentifier()


def plain_activation(spec: Any) -> Activation:
    """An :class:`Activation` from any spec, with the kinks its author declared and no numerical
    kink detection (what :mod:`actspec.activations.kinks` starts from)."""
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        return from_callable(spec)
    text = spec.strip()
    if is_builtin_name(text):
        return builtin(text)
    func = import_function(text)
    if func is not None:
        return check_defined(from_callable(func, name=text))
    expr = parse_expression(text)
    return check_defined(from_callable(expr, name=expr.text))


def mp_functions(act: Activation) -> tuple[Callable[[Any], Any], Callable[[Any], Any], str] | None:
    """(phi, phi', source) in mpmath (without ``act.scale``), or None if unavailable."""
    if act.builtin and act.mp_fns is not None:
        phi, dphi = act.mp_fns()
        return phi, dphi, "built-in"
    try:
        return _MP_REGISTRY.get(act._phi)
    except TypeError:  # pragma: no cover - unhashable
        return None
