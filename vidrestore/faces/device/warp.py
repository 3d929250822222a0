"""Affine warps as ``torch.nn.functional.grid_sample``, with OpenCV's ``warpAffine`` conventions.

OpenCV puts pixel centres at integer coordinates and samples ``dst(p) = src(M⁻¹ p)``;
``grid_sample`` with ``align_corners=False`` addresses a pixel centre ``i`` of an axis of
``n`` pixels as ``(2i + 1) / n − 1``. ``normalised_theta`` folds that change of units into the
matrix, so ``affine_grid`` + ``grid_sample`` sample exactly where ``warpAffine`` does (OpenCV
rounds the source position to 1/32 px, ``grid_sample`` does not: the two differ by at most
1/64 px). Matrices are composed in float64 on the host and given to the device as float32
over small local coordinates (a ROI or a crop), where float32 is exact to ~1e-4 px.

Sampling modes match OpenCV's: ``bilinear`` is ``INTER_LINEAR``; ``bicubic`` is
``INTER_CUBIC`` (both use the cubic convolution kernel with a = −0.75); ``zeros`` padding is
``BORDER_CONSTANT`` with 0, ``border`` padding is ``BORDER_REPLICATE`` (each tap clamped to the
image). A constant border of another value is a zeros-padded sample plus the value times the
weight that fell outside (``sample_constant``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MODES = {"linear": "bilinear", "cubic": "bicubic"}
"""Paste interpolation names (``PasteConfig.interpolation``) → ``grid_sample`` modes; Lanczos
has no ``grid_sample`` kernel."""


def _full(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(matrix, np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])


def _to_normalised(width: int, height: int) -> np.ndarray:
    """Pixel coordinates of an image of ``width``×``height`` → ``grid_sample`` units."""
    return np.array([[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, 2.0 / height, 1.0 / height - 1.0],
                     [0.0, 0.0, 1.0]])


def normalised_theta(dst_to_src: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """The ``affine_grid`` matrix for a pixel map ``dst → src`` (2×3, OpenCV pixel units), (2, 3)
    float64: normalised destination coordinates → normalised source coordinates."""
    src = _to_normalised(src_hw[1], src_hw[0])
    dst_inv = np.linalg.inv(_to_normalised(dst_hw[1], dst_hw[0]))
    return (src @ _full(dst_to_src) @ dst_inv)[:2]


def sampling_grid(thetas: np.ndarray, dst_hw: tuple[int, int], device: torch.device) -> Tensor:
    """``affine_grid`` of (N, 2, 3) normalised matrices: N×H×W×2 float32 on ``device``."""
    theta = torch.from_numpy(np.ascontiguousarray(thetas, np.float32)).to(device, non_blocking=True)
    return F.affine_grid(theta, [len(thetas), 1, dst_hw[0], dst_hw[1]], align_corners=False)


def sample(images: Tensor, grid: Tensor, mode: str = "bilinear", padding: str = "zeros") -> Tensor:
    """``grid_sample`` of N×C×h×w float images at N×H×W×2 ``grid``: N×C×H×W."""
    return F.grid_sample(images, grid, mode=mode, padding_mode=padding, align_corners=False)


def sample_constant(images: Tensor, grid: Tensor, fill: Tensor, mode: str = "bilinear") -> Tensor:
    """As ``sample``, with taps outside the image reading ``fill`` (C values), OpenCV's
    ``BORDER_CONSTANT`` with a value: zeros-padded samples of the image and of a ones channel,
    plus ``fill`` times the weight that fell outside. One image (1×C×h×w) may serve a grid of
    N: it is expanded, not copied."""
    _, c, h, w = images.shape
    ones = torch.ones((len(images), 1, h, w), dtype=images.dtype, device=images.device)
    both = torch.cat([images, ones], dim=1)
    if len(both) != len(grid):
        both = both.expand(len(grid), -1, -1, -1)
    out = sample(both, grid, mode, "zeros")
    inside = out[:, c:]
    return out[:, :c] + (1.0 - inside) * fill.view(1, c, 1, 1)
