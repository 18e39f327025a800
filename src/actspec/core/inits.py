"""Initialisation schemes of the two-layer net (SCIENCE §1, paper appendix D).

All schemes are written as f(x) = s_a sum_k a_k phi(w_k . x + b_k) with standard-normal draws
(w~, a~, b~) rescaled:

=========  ============  ==============  ==============  ==========================
scheme     w_k           a_k             b_k             G-matrix factor (eq. 2)
=========  ============  ==============  ==============  ==========================
dzps       N(0, I)       N(0, 1)         0               (1/m) sum a_k^2 ...
fanin      N(0, I/d)     N(0, 1/m)       N(0, 0.1^2)     sum a_k^2 ...   (eta = 1)
fanout     N(0, I/m)     N(0, 1)         N(0, 1/m)       (1/m) sum a_k^2 ... (eta = 1/m)
=========  ============  ==============  ==============  ==========================

so every scheme's G is (1/m) sum_k a~_k^2 phi'(u_ik) phi'(u_jk) <x_i, x_j>, u = sigma_w w~.x + beta b~,
and at infinite width G_ij = E[phi'(u) phi'(v)] <x_i, x_j> with Cov(u, v) = sigma_w^2 <x_i, x_j> + beta^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ActspecError

__all__ = [
    "INITS",
    "InitScheme",
    "init_scheme",
    "sample_weights",
    "block_generator",
    "WEIGHT_BLOCK",
]

WEIGHT_BLOCK = 4096  # neurons per RNG block: weights do not depend on the compute chunk size


@dataclass(frozen=True)
class InitScheme:
    name: str

    def weight_std(self, d: int, m: int | None) -> float:
        if self.name == "dzps":
            return 1.0
        if self.name == "fanin":
            return 1.0 / math.sqrt(d)
        if m is None:
            raise ActspecError(
                "init 'fanout' scales weights by 1/sqrt(m): it needs a finite --width"
            )
        return 1.0 / math.sqrt(m)

    def bias_std(self, m: int | None) -> float:
        if self.name == "dzps":
            return 0.0
        if self.name == "fanin":
            return 0.1
        if m is None:
            raise ActspecError("init 'fanout' has bias 1/sqrt(m): it needs a finite --width")
        return 1.0 / math.sqrt(m)

    def output_std(self, m: int) -> float:
        """Standard deviation of the output weights a_k."""
        return 1.0 / math.sqrt(m) if self.name == "fanin" else 1.0

    def gram_factor(self, m: int) -> float:
        """Factor c in G = c sum_k a_k^2 phi' phi' <x_i, x_j> for the actual output weights a."""
        return 1.0 if self.name == "fanin" else 1.0 / m


INITS = ("dzps", "fanin", "fanout")


def init_scheme(name: str) -> InitScheme:
    key = str(name).strip().lower()
    if key not in INITS:
        raise ActspecError(f"unknown init {name!r}; choose one of {', '.join(INITS)}")
    return InitScheme(key)


def block_generator(seed: int, block: int) -> torch.Generator:
    """Independent, reproducible CPU generator for neuron block ``block`` of a run with ``seed``."""
    state = np.random.SeedSequence([int(seed), int(block)]).generate_state(2)
    g = torch.Generator(device="cpu")
    g.manual_seed(int(state[0]) << 31 ^ int(state[1]))
    return g


def sample_block(
    d: int, m: int, start: int, stop: int, scheme: InitScheme, seed: int, outputs: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights of neurons [start, stop) (float64, CPU): W (k, d), a (k, outputs), b (k,).

    Neurons are drawn in fixed blocks of :data:`WEIGHT_BLOCK`, each from its own generator, so
    any chunking of the neurons sees exactly the same network.
    """
    ws, os_, bs = [], [], []
    first, last = start // WEIGHT_BLOCK, (stop - 1) // WEIGHT_BLOCK
    for blk in range(first, last + 1):
        g = block_generator(seed, blk)
        lo = blk * WEIGHT_BLOCK
        size = min(WEIGHT_BLOCK, m - lo)
        w = torch.randn(size, d, generator=g, dtype=torch.float64)
        a = torch.randn(size, outputs, generator=g, dtype=torch.float64)
        b = torch.randn(size, generator=g, dtype=torch.float64)
        s = slice(max(start, lo) - lo, min(stop, lo + size) - lo)
        ws.append(w[s])
        os_.append(a[s])
        bs.append(b[s])
    w = torch.cat(ws) * scheme.weight_std(d, m)
    a = torch.cat(os_) * scheme.output_std(m)
    b = torch.cat(bs) * scheme.bias_std(m)
    return w, a, b


def sample_weights(
    d: int, m: int, *, init: str = "dzps", seed: int = 0, outputs: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network drawn by ``gram(..., width=m, seed=seed)``: W (m, d), a (m,) or (m, C), b (m,)."""
    scheme = init_scheme(init)
    w, a, b = sample_block(d, m, 0, m, scheme, seed, outputs)
    a_np = a.numpy()
    return w.numpy(), (a_np[:, 0] if outputs == 1 else a_np), b.numpy()
