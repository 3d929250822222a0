"""Perceptual distance: LPIPS with its ImageNet backbone loaded from the weights folder.

``LPIPSDistance`` (and ``FrozenModule``) live in the runtime, ``vidrestore.metrics.perceptual``,
which ``vidrestore evaluate`` uses too; they are re-exported here.

``StandInDistance`` is a RANDOMLY INITIALISED small conv net for smoke runs only: it gives
losses a perceptual-like shape (multi-level, unit-normalised feature differences) so the
training code runs end to end without the real weights. It measures nothing perceptual.

Both map ``x, y: B×3×H×W`` in [-1, 1] to per-sample distances ``(B,)``; frozen, eval mode.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from vidrestore.metrics.perceptual import BACKBONE_WEIGHTS, FrozenModule, LPIPSDistance, PerceptualNet
from vidrestore.weights import WeightStore

__all__ = ["BACKBONE_WEIGHTS", "FrozenModule", "LPIPSDistance", "PerceptualNet", "StandInDistance",
           "build_perceptual"]


class StandInDistance(FrozenModule):
    """SMOKE ONLY: a seeded, randomly initialised 3-level conv net used as a perceptual distance."""

    is_stand_in = True

    def __init__(self, seed: int = 0, channels: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        layers, in_ch = [], 3
        for ch in channels:
            layers.append(nn.Sequential(nn.Conv2d(in_ch, ch, 3, stride=2, padding=1), nn.LeakyReLU(0.2)))
            in_ch = ch
        self.levels = nn.ModuleList(layers)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * (0.5 / max(1, p[0].numel()) ** 0.5))
        self.freeze()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        dist = x.new_zeros(x.shape[0], dtype=torch.float32)
        fx, fy = x.float(), y.float()
        for level in self.levels:
            fx, fy = level(fx), level(fy)
            nx = fx / (fx.norm(dim=1, keepdim=True) + 1e-6)
            ny = fy / (fy.norm(dim=1, keepdim=True) + 1e-6)
            dist = dist + ((nx - ny) ** 2).sum(1).mean((1, 2))
        return dist


def build_perceptual(
    net: PerceptualNet, store: WeightStore, *, stand_in: bool, log: Callable[[str], None] = lambda line: None
) -> FrozenModule:
    """The perceptual distance of a run: LPIPS-``net`` from the weights folder, or the stand-in.

    Raises MissingWeightsError (naming the file and its URL) when the trunk's weights are
    absent and not downloadable.
    """
    if stand_in:
        log("perceptual: RANDOM STAND-IN network (smoke config; not LPIPS, measures nothing perceptual)")
        return StandInDistance()
    path = store.require(BACKBONE_WEIGHTS[net])
    log(f"perceptual: LPIPS-{net} (trunk {path})")
    return LPIPSDistance(net, path)
