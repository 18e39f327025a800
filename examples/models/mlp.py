"""A plain MLP for ``actspec model`` (the two-layer DZPS net is depth=1).

    actspec model examples/models/mlp.py:build_model --data sphere --dim 32 --n 200 \
        -a relu -a tanh -a gelu --seeds 5 --train-steps 200 --json mlp.json --plot mlp.png

``build_model`` is called after ``torch.manual_seed(seed)`` with the keywords it accepts among
``seed``, ``in_features`` (the length of a data row) and ``input_shape``.
"""

from __future__ import annotations

from torch import nn


def build_model(in_features: int, width: int = 512, depth: int = 3, outputs: int = 1) -> nn.Module:
    """``depth`` hidden layers of ``width`` units with ReLU, PyTorch's default initialisation."""
    layers: list[nn.Module] = []
    d = in_features
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, outputs))
    return nn.Sequential(*layers)
