"""CodeFormer's fusion pieces: AdaIN on the looked-up codes and the CFT fusion block.

The fidelity weight ``w`` may be a Python number, a 0-d tensor or a per-sample tensor of
shape ``(B,)``: as a tensor it stays a graph input when exported (official bug #252 traced
it as a constant). Statistics are computed in fp32 and cast back, so fp16 cannot overflow
the variance (``x²`` passes 65504 for |x| > 256).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidrestore.errors import UsageError

from .vqgan_blocks import ResBlock

FidelityWeight = float | Tensor
"""``w``: a number, a 0-d tensor, or a ``(B,)`` tensor (one weight per sample)."""


def calc_mean_std(feat: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and std of ``feat`` (``B×C×H×W``), both ``B×C×1×1``.

    Unbiased variance plus ``eps`` under the square root, as the official code; computed in
    fp32 and returned in fp32.
    """
    if feat.dim() != 4:
        raise UsageError(f"calc_mean_std expects a B×C×H×W tensor, got shape {tuple(feat.shape)}")
    flat = feat.flatten(2).float()
    mean = flat.mean(dim=2)
    std = (flat.var(dim=2) + eps).sqrt()
    return mean[..., None, None], std[..., None, None]


def adaptive_instance_normalization(content: Tensor, style: Tensor) -> Tensor:
    """Give ``content`` the per-channel mean / std of ``style`` (both ``B×C×H×W``).

    Computed in fp32 and cast back to ``content``'s dtype.
    """
    style_mean, style_std = calc_mean_std(style)
    content_mean, content_std = calc_mean_std(content)
    normalized = (content.float() - content_mean) / content_std
    return (normalized * style_std + style_mean).to(content.dtype)


def per_sample(w: FidelityWeight, like: Tensor) -> FidelityWeight:
    """``w`` shaped to broadcast over a ``B×C×H×W`` map: ``(B,)`` becomes ``B×1×1×1``."""
    if not isinstance(w, Tensor):
        return w
    w = w.to(dtype=like.dtype, device=like.device)
    return w.reshape(-1, 1, 1, 1) if w.dim() == 1 else w


class FuseSFTBlock(nn.Module):
    """Controllable Feature Transformation (CFT): ``dec + w · (dec · scale + shift)``.

    ``scale`` and ``shift`` are predicted from the encoder skip feature concatenated with the
    decoder feature. Parameter names match the official ``Fuse_sft_block``.

    Args:
        in_ch: channels of the encoder and decoder maps.
        out_ch: channels of the output (equal to ``in_ch`` in CodeFormer).

    Shapes: ``enc, dec: B×C×H×W -> B×C×H×W``.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.encode_enc = ResBlock(2 * in_ch, out_ch)
        self.scale = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1),
        )
        self.shift = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1),
        )

    def residual(self, enc_feat: Tensor, dec_feat: Tensor) -> Tensor:
        """The un-weighted correction ``dec · scale + shift`` (``B×C×H×W``)."""
        cond = self.encode_enc(torch.cat([enc_feat, dec_feat], dim=1))
        return dec_feat * self.scale(cond) + self.shift(cond)

    def forward(self, enc_feat: Tensor, dec_feat: Tensor, w: FidelityWeight = 1.0) -> Tensor:
        return dec_feat + per_sample(w, dec_feat) * self.residual(enc_feat, dec_feat)
