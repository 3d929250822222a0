"""Exponential moving average of a network's weights (saved as ``params_ema``)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``ema ← decay·ema + (1 − decay)·weights`` after every step; buffers are copied.

    Args:
        net: the trained network (its structure is deep-copied once).
        decay: 0 keeps the EMA equal to the weights.
    """

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        for ema, live in zip(self.module.state_dict().values(), net.state_dict().values()):
            if ema.dtype.is_floating_point and self.decay > 0:
                ema.lerp_(live, 1.0 - self.decay)
            else:
                ema.copy_(live)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state, strict=True)
