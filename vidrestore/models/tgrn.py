"""CodeFormer++'s Texture-Guided Restoration Network (TGRN).

A U-Net restores the final face from the faithful image ``I_F``; texture comes from the
warped generative image ``I_warp`` through a texture attention module at the U-Net's
bottleneck (side ``S / 2**(len(channel_mult) - 1)``, 32 for 512 inputs and 4 levels: 1,024
tokens, so attention stays affordable). Queries are ``I_F`` features, keys / values are
``I_warp`` features from a second encoder. The network predicts a residual on ``I_F``.

Shapes: ``faithful, warped: B×3×S×S -> B×3×S×S``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .vqgan_blocks import Downsample, ResBlock, Upsample, group_norm, swish


@dataclass(frozen=True)
class TGRNConfig:
    """TGRN sizes. Channels ``base_channels × channel_mult[i]`` must be multiples of 32."""

    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 4, 8)
    attention_heads: int = 4


class TextureAttention(nn.Module):
    """Cross-attention from content features (queries) to texture features (keys / values).

    Args:
        channels: feature channels C (also the attention width).
        heads: attention heads.

    Shapes: ``content, texture: B×C×h×w -> B×C×h×w`` (content + attended texture).
    """

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.norm_content = group_norm(channels)
        self.norm_texture = group_norm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, content: Tensor, texture: Tensor) -> Tensor:
        b, c, h, w = content.shape
        query = self.norm_content(content).flatten(2).transpose(1, 2)
        keys = self.norm_texture(texture).flatten(2).transpose(1, 2)
        attended = self.attn(query, keys, keys, need_weights=False)[0]
        return content + attended.transpose(1, 2).reshape(b, c, h, w)


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
    """U-Net on ``I_F`` with texture attention to ``I_warp`` at the bottleneck.

    Args:
        base_channels: channels at full resolution.
        channel_mult: channel multiplier per level (``len - 1`` halvings).
        attention_heads: heads of the texture attention.

    Shapes: ``faithful, warped: B×3×S×S -> B×3×S×S`` (``S`` divisible by ``2**(levels-1)``).
    """

    def __init__(
        self, base_channels: int = 32, channel_mult: tuple[int, ...] = (1, 2, 4, 8), attention_heads: int = 4
    ) -> None:
        super().__init__()
        widths = [base_channels * m for m in channel_mult]
        self.content_encoder = _Encoder(widths)
        self.texture_encoder = _Encoder(widths)
        self.texture_attention = TextureAttention(widths[-1], attention_heads)
        self.mid = ResBlock(widths[-1], widths[-1])
        self.ups = nn.ModuleList([Upsample(widths[i + 1]) for i in range(len(widths) - 1)])
        self.dec = nn.ModuleList(
            [ResBlock(widths[i + 1] + widths[i], widths[i]) for i in range(len(widths) - 1)]
        )
        self.norm_out = group_norm(widths[0])
        self.conv_out = nn.Conv2d(widths[0], 3, kernel_size=3, padding=1)

    def forward(self, faithful: Tensor, warped: Tensor) -> Tensor:
        content = self.content_encoder(faithful)
        texture = self.texture_encoder(warped)[-1]
        x = self.mid(self.texture_attention(content[-1], texture))
        for i in reversed(range(len(self.dec))):
            x = self.dec[i](torch.cat([self.ups[i](x), content[i]], dim=1))
        return faithful + self.conv_out(swish(self.norm_out(x)))
