"""LPIPS (Zhang et al., CVPR 2018) with its ImageNet trunk loaded from the weights folder.

``LPIPSDistance`` is the ``lpips`` package's network (its linear layers ship in the wheel)
whose VGG-16 / AlexNet trunk is built empty and filled from torchvision's checkpoint file
(``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth``) found by the ``WeightStore``, never
downloaded behind the user's back. It feeds the [-1, 1] images straight to LPIPS (the range
LPIPS expects); the official CodeFormer loss wrapper normalises them to ImageNet statistics
first, a quirk not copied here. Used by ``vidrestore evaluate`` and by training (losses,
validation, ``python -m training evaluate``).

Shapes: ``x, y: B×3×H×W`` in [-1, 1] → per-sample distances ``(B,)``; frozen, eval mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from vidrestore.compat import import_needing_torchvision
from vidrestore.errors import WeightsMismatchError

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
