"""A tiny ResNet (stem + one basic block, batch norm, a functional ReLU after the residual sum).

    actspec model examples/models/resnet_block.py:build_model --data sphere --dim 768 --n 100 \
        --input-shape 3,16,16 -a relu -a tanh -a gelu --seeds 3 --json resnet.json

Batch norm is put in eval mode for the eNTK (a warning says so); the ``F.relu`` after the residual
sum is found by torch.fx and swapped like the ``nn.ReLU`` modules.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + x)


class TinyResNet(nn.Module):
    def __init__(self, channels: int = 3, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.block = BasicBlock(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.block(self.stem(x)).mean(dim=(2, 3)))


def build_model(input_shape: tuple[int, ...] = (3, 16, 16), seed: int = 0) -> nn.Module:
    if len(input_shape) != 3:
        raise ValueError(f"the ResNet block needs image rows (C, H, W); got input shape {input_shape}")
    return TinyResNet(channels=input_shape[0])
