"""CodeFormer++'s Deformable Alignment Module (DAM): warp the generative face onto the faithful one.

A small U-Net reads the pair ``(I_F, I_G)`` and predicts a dense deformation field; the
generative image ``I_G`` is resampled with ``grid_sample`` so its facial geometry follows
the faithful image ``I_F`` while keeping its generated texture.

Flow convention: ``B×2×H×W``, channel 0 = x, channel 1 = y, in normalised image units
(2 = the full width / height, as ``grid_sample``'s grid), so it does not depend on the size.
The flow is predicted at half resolution and upsampled bilinearly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidrestore.errors import ConfigError


@dataclass(frozen=True)
class DAMConfig:
    """DAM sizes: channels at the first level, number of stride-2 levels (≥ 2)."""

    channels: int = 32
    levels: int = 4


def identity_grid(batch: int, height: int, width: int, like: Tensor) -> Tensor:
    """``grid_sample`` grid of pixel centres (``align_corners=False``): ``B×H×W×2``, (x, y)."""
    ys = (torch.arange(height, device=like.device, dtype=like.dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=like.device, dtype=like.dtype) * 2 + 1) / width - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    return grid.unsqueeze(0).expand(batch, height, width, 2)


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Resample ``image`` (``B×C×H×W``) at ``identity + flow`` (flow ``B×2×H×W``, normalised).

    Bilinear, border padding; a zero flow returns the image (to float rounding). Sampling
    runs in fp32 (a bf16 grid near ±1 is a whole pixel coarse at 512), cast back after.
    """
    b, _, h, w = image.shape
    source = image.float()
    grid = identity_grid(b, h, w, source) + flow.permute(0, 2, 3, 1).float()
    warped = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return warped.to(image.dtype)


def _conv(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1), nn.LeakyReLU(0.1, True)
    )


class DeformableAlignment(nn.Module):
    """Predict a deformation field from ``(I_F, I_G)`` and warp ``I_G`` onto ``I_F``.

    Args:
        channels: feature channels after the first (stride-2) level; doubled per level.
        levels: stride-2 levels of the U-Net encoder (the side must divide by ``2**levels``).

    Shapes: ``faithful, generative: B×3×H×W -> (warped B×3×H×W, flow B×2×H×W)``.
    The flow head starts at zero, so a DAM that was never trained predicts no motion at all
    (``untrained`` tells it from the weights); the head gets gradients from the first step,
    the layers before it from the second.
    """

    def __init__(self, channels: int = 32, levels: int = 4) -> None:
        super().__init__()
        if levels < 2:
            raise ConfigError(f"DeformableAlignment needs at least 2 levels, got {levels}")
        widths = [channels * 2**i for i in range(levels)]
        self.down = nn.ModuleList(
            [_conv(6 if i == 0 else widths[i - 1], widths[i], stride=2) for i in range(levels)]
        )
        self.up = nn.ModuleList(
            [_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels - 1))]
        )
        self.flow_head = nn.Conv2d(widths[0], 2, kernel_size=3, padding=1)
        nn.init.zeros_(self.flow_head.weight)
        nn.init.zeros_(self.flow_head.bias)

    def predict_flow(self, faithful: Tensor, generative: Tensor) -> Tensor:
        """Deformation field ``B×2×H×W`` (normalised units) taking ``generative`` to ``faithful``."""
        x = torch.cat([faithful, generative], dim=1)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skips.pop()], dim=1))
        flow = self.flow_head(x)  # at H/2 × W/2
        return F.interpolate(flow, size=faithful.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, faithful: Tensor, generative: Tensor) -> tuple[Tensor, Tensor]:
        flow = self.predict_flow(faithful, generative)
        return warp(generative, flow), flow

    @property
    def untrained(self) -> bool:
        """True while the flow head is still all zeros (its initial value): no motion."""
        return not (self.flow_head.weight.any() or self.flow_head.bias.any())
