"""CodeFormer++'s Texture-Guided Restoration Network (TGRN).

CodeFormer++ (arXiv 2510.04410; no code or weights released) describes TGRN as a three-level
U-Net with a texture attention module that extracts the texture of the (registered)
generative face and transfers it to the identity-preserving one, fusing identity features
and texture details dynamically. The layers below are this project's reading of that: a
U-Net of three levels restores the final face from the faithful image ``I_F``; a second
encoder reads the warped generative image ``I_warp``; at every level the content features
``F`` (from ``I_F``: the identity) attend to the texture features ``T`` (from ``I_warp``) and
the two are fused dynamically, a per-pixel, per-channel gate deciding how much of the
attended texture replaces the content there::

    A = TextureAttention(F, T)          windowed cross-attention, queries F, keys/values T
    g = σ(conv1×1([F, A]))              the dynamic fusion gate
    F' = (1 − g)·F + g·A                what the decoder's skip (and the bottleneck) receive

Attention runs inside non-overlapping ``window × window`` windows: ``I_warp`` is already
registered onto ``I_F`` by DAM, so texture for a pixel lies near that pixel. Sizes for a
512² face and the defaults (``channel_mult (1, 2, 4)``, ``window 8``): level sides 512, 256,
128 with 32, 64, 128 channels; 4096, 1024 and 256 windows of 64 tokens each per face.

The network predicts a residual on ``I_F``; its output convolution starts at zero, so a
TGRN that was never trained returns ``I_F`` exactly (``untrained`` says so from the weights).

Shapes: ``faithful, warped: B×3×S×S -> B×3×S×S`` (``S`` divisible by ``2**(levels - 1)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidrestore.errors import ConfigError

from .vqgan_blocks import Downsample, ResBlock, Upsample, group_norm, swish


@dataclass(frozen=True)
class TGRNConfig:
    """TGRN sizes.

    base_channels: channels at full resolution. channel_mult: multiplier per level (three
    levels by default; ``len - 1`` halvings); every ``base_channels × mult`` must be a
    multiple of 32 (GroupNorm). attention_heads: heads of each texture attention.
    window: side of the attention windows, in pixels of each level.
    """

    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 4)
    attention_heads: int = 4
    window: int = 8

    def __post_init__(self) -> None:
        if len(self.channel_mult) < 1 or self.window < 1 or self.attention_heads < 1:
            raise ConfigError("TGRN: at least one level, window >= 1, attention_heads >= 1")
        for mult in self.channel_mult:
            width = self.base_channels * mult
            if width % 32 or width % self.attention_heads:
                raise ConfigError(f"TGRN: width {width} must be a multiple of 32 and of the heads")


def _windows(x: Tensor, window: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """``B×C×H×W`` → ``(B·nH·nW)×window²×C`` tokens (zero-padded to whole windows)."""
    b, c, h, w = x.shape
    ph, pw = -h % window, -w % window
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    nh, nw = (h + ph) // window, (w + pw) // window
    tokens = x.reshape(b, c, nh, window, nw, window).permute(0, 2, 4, 3, 5, 1)
    return tokens.reshape(b * nh * nw, window * window, c), (b, h, w, nw)


def _unwindow(tokens: Tensor, window: int, shape: tuple[int, int, int, int]) -> Tensor:
    """The inverse of ``_windows`` (padding cropped): ``B×C×H×W``."""
    b, h, w, nw = shape
    c = tokens.shape[-1]
    nh = tokens.shape[0] // (b * nw)
    x = tokens.reshape(b, nh, nw, window, window, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, c, nh * window, nw * window)[:, :, :h, :w]


class TextureAttention(nn.Module):
    """Windowed cross-attention from content features (queries) to texture features
    (keys / values), both normalised first.

    Args:
        channels: feature channels C (also the attention width).
        heads: attention heads.
        window: window side in pixels.

    Shapes: ``content, texture: B×C×h×w -> B×C×h×w`` (the attended texture ``A``).
    """

    def __init__(self, channels: int, heads: int = 4, window: int = 8) -> None:
        super().__init__()
        self.window = window
        self.norm_content = group_norm(channels)
        self.norm_texture = group_norm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, content: Tensor, texture: Tensor) -> Tensor:
        query, shape = _windows(self.norm_content(content), self.window)
        keys, _ = _windows(self.norm_texture(texture), self.window)
        attended = self.attn(query, keys, keys, need_weights=False)[0]
        return _unwindow(attended, self.window, shape)


class DynamicFusion(nn.Module):
    """Texture attention at one level and the gated fusion of its result with the content.

    ``F' = (1 − g)·F + g·A`` with ``A = TextureAttention(F, T)`` and
    ``g = σ(conv1×1([F, A]))`` per pixel and channel.

    Args:
        channels: feature channels C. heads, window: of the texture attention.

    Shapes: ``content, texture: B×C×h×w -> B×C×h×w``.
    """

    def __init__(self, channels: int, heads: int = 4, window: int = 8) -> None:
        super().__init__()
        self.attention = TextureAttention(channels, heads, window)
        self.gate = nn.Conv2d(2 * channels, channels, kernel_size=1)

    def forward(self, content: Tensor, texture: Tensor) -> Tensor:
        attended = self.attention(content, texture)
        gate = torch.sigmoid(self.gate(torch.cat([content, attended], dim=1)))
        return content + gate * (attended - content)


class _Encoder(nn.Module):
    """conv_in, then per level a ResBlock and (except at the last) a Downsample."""

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(3, widths[0], kernel_size=3, padding=1)
        self.levels = nn.ModuleList(
            [ResBlock(widths[max(i - 1, 0)], widths[i]) for i in range(len(widths))]
        )
        self.downs = nn.ModuleList([Downsample(wd) for wd in widths[:-1]])

    def forward(self, x: Tensor) -> list[Tensor]:
        """Feature maps per level, full resolution first."""
        feats = []
        x = self.conv_in(x)
        for i, block in enumerate(self.levels):
            if i > 0:
                x = self.downs[i - 1](x)
            x = block(x)
            feats.append(x)
        return feats


class TextureGuidedRestoration(nn.Module):
    """Three-level U-Net on ``I_F`` with texture attention to ``I_warp`` and dynamic fusion
    at every level (see module doc).

    Args:
        base_channels: channels at full resolution.
        channel_mult: channel multiplier per level (``len - 1`` halvings).
        attention_heads: heads of each texture attention.
        window: side of the attention windows.

    Shapes: ``faithful, warped: B×3×S×S -> B×3×S×S`` (``S`` divisible by ``2**(levels-1)``).
    """

    def __init__(self, base_channels: int = 32, channel_mult: tuple[int, ...] = (1, 2, 4),
                 attention_heads: int = 4, window: int = 8) -> None:
        super().__init__()
        widths = [base_channels * m for m in channel_mult]
        self.content_encoder = _Encoder(widths)
        self.texture_encoder = _Encoder(widths)
        self.fusions = nn.ModuleList([DynamicFusion(wd, attention_heads, window) for wd in widths])
        self.mid = ResBlock(widths[-1], widths[-1])
        self.ups = nn.ModuleList([Upsample(widths[i + 1]) for i in range(len(widths) - 1)])
        self.dec = nn.ModuleList(
            [ResBlock(widths[i + 1] + widths[i], widths[i]) for i in range(len(widths) - 1)]
        )
        self.norm_out = group_norm(widths[0])
        self.conv_out = nn.Conv2d(widths[0], 3, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def fused_features(self, faithful: Tensor, warped: Tensor) -> list[Tensor]:
        """The fused features ``F'`` of every level, full resolution first."""
        content = self.content_encoder(faithful)
        texture = self.texture_encoder(warped)
        return [fuse(c, t) for fuse, c, t in zip(self.fusions, content, texture)]

    def forward(self, faithful: Tensor, warped: Tensor) -> Tensor:
        fused = self.fused_features(faithful, warped)
        x = self.mid(fused[-1])
        for i in reversed(range(len(self.dec))):
            x = self.dec[i](torch.cat([self.ups[i](x), fused[i]], dim=1))
        return faithful + self.conv_out(swish(self.norm_out(x)))

    @property
    def untrained(self) -> bool:
        """True while the output convolution is still all zeros (its initial value): the
        network then returns ``I_F`` unchanged whatever its other layers hold."""
        return not (self.conv_out.weight.any() or self.conv_out.bias.any())
