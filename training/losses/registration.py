"""Losses of CodeFormer++'s DAM: image similarity after warping, and smoothness of the field."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def _grey(x: Tensor) -> Tensor:
    x = x.float()
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def local_ncc(a: Tensor, b: Tensor, window: int = 9, eps: float = 1e-6) -> Tensor:
    """Mean local squared normalised cross-correlation of the greys of ``a`` and ``b`` (B×3×H×W).

    In [0, 1]; 1 where the two agree up to a local gain and offset, so texture that differs
    in contrast does not count against an alignment (VoxelMorph's NCC). ``eps`` is added to
    both sides of ``cov² / (var_a·var_b)``: a flat window (no information) scores 1, and
    identical images score exactly 1. Returns ``(B,)``.
    """
    x, y = _grey(a), _grey(b)
    pool = lambda t: F.avg_pool2d(t, window, stride=1, padding=window // 2, count_include_pad=False)  # noqa: E731
    mx, my = pool(x), pool(y)
    cov = pool(x * y) - mx * my
    vx = (pool(x * x) - mx * mx).clamp(min=0)
    vy = (pool(y * y) - my * my).clamp(min=0)
    return ((cov * cov + eps) / (vx * vy + eps)).mean((1, 2, 3))


def flow_smoothness(flow: Tensor) -> Tensor:
    """Mean squared spatial gradient of a flow ``B×2×H×W`` (normalised units) in pixels. ``(B,)``."""
    h, w = flow.shape[-2:]
    scale = flow.new_tensor([w / 2.0, h / 2.0]).view(1, 2, 1, 1)
    pixels = flow.float() * scale
    dx = pixels[..., :, 1:] - pixels[..., :, :-1]
    dy = pixels[..., 1:, :] - pixels[..., :-1, :]
    return (dx**2).mean((1, 2, 3)) + (dy**2).mean((1, 2, 3))
