"""RRDBNet, the generator of ESRGAN and Real-ESRGAN: the background upsampler of ``--upscale``.

The architecture of Wang et al., "ESRGAN" (ECCV 2018 workshops) and "Real-ESRGAN" (ICCV 2021
workshops): a 3×3 convolution, ``num_block`` residual-in-residual dense blocks (each three
5-convolution dense blocks, residuals scaled by 0.2), a trunk convolution with a long skip,
then two nearest-neighbour ×2 upsamplings each followed by a convolution and LeakyReLU(0.2),
and two output convolutions. The ×2 model (Real-ESRGAN's x2plus) folds each 2×2 pixel block
into channels first (pixel-unshuffle: 12 input channels), so its trunk runs at half the
input resolution and the two upsamplings give ×2 overall.

Parameter names follow the official state dicts (xinntao/Real-ESRGAN releases, BasicSR's
``RRDBNet``): ``conv_first``, ``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``,
``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``, so ``RealESRGAN_x2plus.pth`` and
``RealESRGAN_x4plus.pth`` (key ``params_ema``) load strictly.

Inputs and outputs are B×3×H×W RGB in [0, 1] (H and W even for scale 2); the output is
``scale`` times larger and is not clamped (the caller clamps).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F


@dataclass(frozen=True)
class RRDBNetConfig:
    """An RRDBNet.

    Attributes:
        scale: 2 or 4 (the official x2plus / x4plus); 2 unshuffles the input first.
        num_feat: trunk channels (64 in both official models).
        num_block: residual-in-residual dense blocks (23).
        num_grow_ch: channels each dense convolution adds (32).
        in_ch, out_ch: image channels.
    """

    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    in_ch: int = 3
    out_ch: int = 3

    def __post_init__(self) -> None:
        if self.scale not in (2, 4):
            raise ValueError(f"RRDBNet scale must be 2 or 4, got {self.scale}")
        if min(self.num_feat, self.num_block, self.num_grow_ch) < 1:
            raise ValueError("RRDBNet sizes must be >= 1")


class DenseBlock(nn.Module):
    """Five 3×3 convolutions, each fed every earlier output (dense), residual scaled by 0.2.

    Args:
        num_feat: channels in and out.
        grow: channels each of the first four convolutions adds.
    """

    def __init__(self, num_feat: int, grow: int) -> None:
        super().__init__()
        for i in range(4):
            setattr(self, f"conv{i + 1}", nn.Conv2d(num_feat + i * grow, grow, 3, 1, 1))
        self.conv5 = nn.Conv2d(num_feat + 4 * grow, num_feat, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        return x + 0.2 * self.conv5(torch.cat(features, 1))


class ResidualInResidualBlock(nn.Module):
    """Three dense blocks in a row around a 0.2-scaled residual (``rdb1..3``)."""

    def __init__(self, num_feat: int, grow: int) -> None:
        super().__init__()
        self.rdb1 = DenseBlock(num_feat, grow)
        self.rdb2 = DenseBlock(num_feat, grow)
        self.rdb3 = DenseBlock(num_feat, grow)

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """The ESRGAN / Real-ESRGAN generator (module doc).

    Args:
        config: its sizes and scale.
    """

    def __init__(self, config: RRDBNetConfig = RRDBNetConfig()) -> None:
        super().__init__()
        self.config = config
        c = config
        unshuffle = 2 if c.scale == 2 else 1
        self.unshuffle = unshuffle
        self.conv_first = nn.Conv2d(c.in_ch * unshuffle * unshuffle, c.num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualInResidualBlock(c.num_feat, c.num_grow_ch) for _ in range(c.num_block)])
        self.conv_body = nn.Conv2d(c.num_feat, c.num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(c.num_feat, c.num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(c.num_feat, c.num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(c.num_feat, c.num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(c.num_feat, c.out_ch, 3, 1, 1)

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (the pixel-unshuffle's block)."""
        return self.unshuffle

    @classmethod
    def from_config(cls, config: RRDBNetConfig) -> "RRDBNet":
        return cls(config)

    def forward(self, x: Tensor) -> Tensor:
        """B×3×H×W in [0, 1] → B×3×(scale·H)×(scale·W)."""
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


@dataclass(frozen=True)
class UpsamplerSpec:
    """One known background upsampler network.

    Attributes:
        name: registry name (``realesrgan-x2plus``).
        config: its RRDBNet.
        weights: the ``vidrestore.weights`` entry of its official checkpoint.
        tiny: a test-size config of the same scale (seconds on a CPU, random weights).
    """

    name: str
    config: RRDBNetConfig
    weights: str
    tiny: RRDBNetConfig


UPSAMPLERS: dict[int, UpsamplerSpec] = {
    2: UpsamplerSpec("realesrgan-x2plus", RRDBNetConfig(scale=2), "realesrgan-x2plus",
                     RRDBNetConfig(scale=2, num_feat=8, num_block=1, num_grow_ch=4)),
    4: UpsamplerSpec("realesrgan-x4plus", RRDBNetConfig(scale=4), "realesrgan-x4plus",
                     RRDBNetConfig(scale=4, num_feat=8, num_block=1, num_grow_ch=4)),
}
"""``--upscale`` factor → the official Real-ESRGAN model for it (as the official CodeFormer
uses x2plus for its default ×2 upscale)."""


def upsampler_spec(scale: int) -> UpsamplerSpec:
    """The Real-ESRGAN network for an upscale factor (2 or 4); ValueError otherwise."""
    try:
        return UPSAMPLERS[scale]
    except KeyError:
        raise ValueError(f"no Real-ESRGAN network for ×{scale} (known: ×2, ×4)") from None
