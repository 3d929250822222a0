"""The convolutional building blocks of CodeFormer's VQGAN (Stage I) encoder and generator.

Parameter names mirror the official ``basicsr/archs/vqgan_arch.py`` (``norm1``, ``conv1``,
``conv_out``, ``q``/``k``/``v``/``proj_out``...) so official checkpoints load strictly.
Every block maps ``B×C×H×W`` feature maps to ``B×C'×H'×W'`` feature maps.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

GROUPS = 32
"""GroupNorm groups used everywhere in the VQGAN: channel counts must be multiples of it."""


def group_norm(channels: int) -> nn.GroupNorm:
    """The VQGAN's normalisation: GroupNorm(32 groups, eps 1e-6, affine)."""
    return nn.GroupNorm(num_groups=GROUPS, num_channels=channels, eps=1e-6, affine=True)


def swish(x: Tensor) -> Tensor:
    """x · sigmoid(x) (the same function as ``F.silu``)."""
    return F.silu(x)


class ResBlock(nn.Module):
    """Pre-activation residual block: (GN, swish, conv3×3) × 2, 1×1 shortcut if C changes.

    Args:
        in_channels: channels of the input map.
        out_channels: channels of the output map (defaults to ``in_channels``).

    Shapes: ``B×in×H×W -> B×out×H×W``.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        if in_channels != out_channels:
            self.conv_out = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        if self.in_channels != self.out_channels:
            x = self.conv_out(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head non-local self-attention over the H·W positions of a map, with residual.

    Uses ``scaled_dot_product_attention`` (which scales before the product and, on CUDA,
    accumulates in fp32), so half-precision inputs do not overflow in ``q·kᵀ``.

    Args:
        in_channels: channels C (also the attention width).

    Shapes: ``B×C×H×W -> B×C×H×W``.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.norm = group_norm(in_channels)
        self.q = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.k = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.v = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.proj_out = nn.Conv2d(in_channels, in_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)

        def tokens(t: Tensor) -> Tensor:  # B×C×H×W -> B×1×HW×C
            return t.flatten(2).transpose(1, 2).unsqueeze(1)

        attended = F.scaled_dot_product_attention(
            tokens(self.q(normed)), tokens(self.k(normed)), tokens(self.v(normed))
        )
        attended = attended.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(attended)


class Downsample(nn.Module):
    """Halve H and W: zero-pad right/bottom by one, then a stride-2 3×3 conv (no padding).

    Args:
        in_channels: channels C (kept).

    Shapes: ``B×C×H×W -> B×C×H/2×W/2``.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour ×2 then a 3×3 conv.

    Args:
        in_channels: channels C (kept).

    Shapes: ``B×C×H×W -> B×C×2H×2W``.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def check_channels(nf: int, ch_mult: tuple[int, ...]) -> None:
    """Raise ValueError unless every level's channel count fits GroupNorm's 32 groups."""
    bad = [nf * m for m in ch_mult if (nf * m) % GROUPS]
    if bad:
        raise ValueError(f"channel counts {bad} (nf × ch_mult) must be multiples of {GROUPS}")


__all__ = [
    "AttnBlock",
    "Downsample",
    "GROUPS",
    "ResBlock",
    "Upsample",
    "check_channels",
    "group_norm",
    "swish",
]
