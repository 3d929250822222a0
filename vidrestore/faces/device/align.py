"""Alignment on the device: the 512² crops of a frame's faces as one ``grid_sample``.

The same crops as ``faces.align.warp_face`` (bilinear, the official helper's grey outside the
frame, float32 RGB in [0, 1]), measured within 0.005 of 8-bit level of OpenCV's on the
astronaut: the difference is float rounding of the sampling position.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from vidrestore.faces.align import BORDER_VALUE, invert_affine

from .warp import normalised_theta, sample_constant, sampling_grid


def source_box(affine: np.ndarray, size: int, frame_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The frame rectangle ``(x0, y0, x1, y1)`` a ``size`` crop samples from (with a margin for
    the interpolation), clipped to the frame; None when it lies wholly outside."""
    inv = invert_affine(affine)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    pts = corners @ inv.T
    h, w = frame_hw
    x0 = int(np.clip(np.floor(pts[:, 0].min()) - 2, 0, w))
    y0 = int(np.clip(np.floor(pts[:, 1].min()) - 2, 0, h))
    x1 = int(np.clip(np.ceil(pts[:, 0].max()) + 3, 0, w))
    y1 = int(np.clip(np.ceil(pts[:, 1].max()) + 3, 0, h))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


@functools.lru_cache(maxsize=8)
def _fill(device: torch.device, top: float) -> Tensor:
    """The official helper's grey in the frame's units, on ``device`` (made once: a tensor made
    from Python values waits for its copy)."""
    return torch.tensor(BORDER_VALUE, dtype=torch.float32).mul(top / 255.0).to(device)


def align_crops(image: Tensor, affines: Sequence[np.ndarray], size: int, *, whole_frame: bool) -> Tensor:
    """The aligned crops of the faces whose frame → crop transforms are ``affines``.

    Args:
        image: H×W×3 uint8 / uint16 frame tensor.
        affines: (2, 3) frame → crop matrices (``faces.align.estimate_affine``).
        size: the crop side S.
        whole_frame: sample every face from the whole frame in one batched call (one
            float conversion of the frame; the fast way on a GPU), else each face from its own
            source rectangle (converts only what a face covers; the fast way on a CPU).

    Returns:
        N×3×S×S float32 RGB in [0, 1].
    """
    top = float(torch.iinfo(image.dtype).max)
    device = image.device
    fill = _fill(device, top)
    n = len(affines)
    if n == 0:
        return torch.empty((0, 3, size, size), device=device)
    h, w = image.shape[:2]
    if whole_frame:
        frame = image.permute(2, 0, 1)[None].float()
        thetas = np.stack([normalised_theta(invert_affine(a), (h, w), (size, size)) for a in affines])
        out = sample_constant(frame, sampling_grid(thetas, (size, size), device), fill)
    else:
        crops = []
        for affine in affines:
            box = source_box(affine, size, (h, w))
            if box is None:  # wholly outside the frame: the fill, as OpenCV gives
                crops.append(fill.view(1, 3, 1, 1).expand(1, 3, size, size).clone())
                continue
            x0, y0, x1, y1 = box
            to_roi = invert_affine(affine)
            to_roi[:, 2] -= (x0, y0)
            theta = normalised_theta(to_roi, (y1 - y0, x1 - x0), (size, size))
            roi = image[y0:y1, x0:x1].permute(2, 0, 1)[None].float()
            crops.append(sample_constant(roi, sampling_grid(theta[None], (size, size), device), fill))
        out = torch.cat(crops)
    return out.mul_(1.0 / top).clamp_(0.0, 1.0)
