"""Perceptual distance: LPIPS with its ImageNet backbone loaded from the weights folder.

``LPIPSDistance`` is the ``lpips`` package's network (its linear layers ship in the wheel)
whose VGG-16 / AlexNet trunk is built empty and filled from torchvision's checkpoint file
(``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth``) found by the ``WeightStore``, never
downloaded behind the user's back. It feeds the [-1, 1] images straight to LPIPS (the range
LPIPS expects); the official CodeFormer loss wrapper normalises them to ImageNet statistics
first, a quirk not copied here.

``StandInDistance`` is a RANDOMLY INITIALISED small conv net for smoke runs only: it gives
losses a perceptual-like shape (multi-level, unit-normalised feature differences) so the
training code runs end to end without the real weights. It measures nothing perceptual.

Both map ``x, y: B×3×H×W`` in [-1, 1] to per-sample distances ``(B,)``; frozen, eval mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal

import torch
from torch import Tensor, nn

from vidrestore.compat import import_needing_torchvision
from vidrestore.errors import WeightsMismatchError
from vidrestore.weights import WeightStore

PerceptualNet = Literal["vgg", "alex"]
BACKBONE_WEIGHTS = {"vgg": "vgg16", "alex": "alexnet"}
"""LPIPS trunk → weights entry of ``vidrestore.weights``."""


class FrozenModule(nn.Module):
    """A module that stays in eval mode with no trainable parameters."""

    def freeze(self) -> "FrozenModule":
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> "FrozenModule":  # noqa: ARG002 - always eval
        return super().train(False)


class LPIPSDistance(FrozenModule):
    """LPIPS v0.1 with a ``vgg`` or ``alex`` trunk loaded from ``backbone_path``.

    Args:
        net: trunk kind.
        backbone_path: torchvision's ImageNet checkpoint of that trunk.
    """

    is_stand_in = False

    def __init__(self, net: PerceptualNet, backbone_path: Path | str) -> None:
        super().__init__()
        import warnings

        lpips = import_needing_torchvision("lpips")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torchvision's "pretrained" deprecation
            self.lpips = lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)
        source = torch.load(str(backbone_path), map_location="cpu", weights_only=True)
        trunk = self.lpips.net.state_dict()
        mapped = {}
        for key in trunk:  # "slice2.5.weight" <- torchvision "features.5.weight"
            torchvision_key = "features." + key.split(".", 1)[1]
            if torchvision_key not in source or source[torchvision_key].shape != trunk[key].shape:
                raise WeightsMismatchError(f"{backbone_path} is not a torchvision {net} checkpoint ({torchvision_key})")
            mapped[key] = source[torchvision_key]
        self.lpips.net.load_state_dict(mapped, strict=True)
        self.net_name = net
        self.freeze()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.lpips(x.float(), y.float()).flatten()


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
