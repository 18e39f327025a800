"""A small CNN on CIFAR-shaped inputs (3 x 32 x 32, 10 outputs) for ``actspec model``.

Synthetic rows of length 3072 stand in for images when CIFAR-10 is not on disk:

    actspec model examples/models/cnn.py:build_model --data sphere --dim 3072 --n 200 \
        --input-shape 3,32,32 -a relu -a tanh -a gelu --seeds 3 --json cnn.json --plot cnn.png

(with the data: ``--data cifar10 --data-dir cifar-10-batches-py --n 1000 --input-shape 3,32,32``).
"""

from __future__ import annotations

from torch import nn


class SmallCNN(nn.Module):
    """conv(3→16) → ReLU → pool → conv(16→32) → ReLU → pool → conv(32→64) → ReLU → mean → linear."""

    def __init__(self, channels: int = 3, classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(4 * w, classes)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def build_model(input_shape: tuple[int, ...] = (3, 32, 32), classes: int = 10) -> nn.Module:
    if len(input_shape) != 3:
        raise ValueError(f"the CNN needs image rows (C, H, W); got input shape {input_shape}: "
                         "pass --input-shape 3,32,32")
    return SmallCNN(channels=input_shape[0], classes=classes)
