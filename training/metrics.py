"""Face restoration metrics on 8-bit RGB images (the CelebA-Test protocol).

PSNR and SSIM compare whole ``S×S`` aligned faces in 8-bit RGB (``vidrestore.metrics``, which
``vidrestore evaluate`` uses too: SSIM with the Gaussian window, σ 1.5, of Wang et al., per
channel, averaged); LPIPS and IDS are computed by the frozen networks of ``losses`` (IDS =
cosine of the ArcFace embeddings); LMD is the mean distance in pixels between the 5
landmarks the runtime's detector finds in both images.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vidrestore import metrics
from vidrestore.metrics import PSNR_CAP

__all__ = ["PSNR_CAP", "from_uint8", "landmark_distance", "psnr", "ssim", "to_uint8"]


def to_uint8(images: Tensor) -> list[np.ndarray]:
    """``B×3×H×W`` in [-1, 1] → list of ``H×W×3`` uint8 RGB (rounded)."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [im.permute(1, 2, 0).cpu().numpy() for im in x]


def from_uint8(images: list[np.ndarray], device: torch.device | str = "cpu") -> Tensor:
    """List of ``H×W×3`` uint8 RGB → ``B×3×H×W`` float32 in [-1, 1]."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return (x / 127.5 - 1.0).to(device)


def psnr(a: np.ndarray, b: np.ndarray, cap: float = PSNR_CAP) -> float:
    """PSNR in dB of two uint8 images; ``cap`` when they are identical."""
    return metrics.psnr_rgb(a, b, cap=cap)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 RGB images (Gaussian window σ 1.5, per channel, averaged)."""
    return metrics.ssim(a, b)


def landmark_distance(detector, a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean distance (pixels) between the 5 landmarks of the best face in ``a`` and in ``b``;
    None if the detector finds no face in one of them."""
    found = detector.detect([a, b])
    if not found[0] or not found[1]:
        return None
    la, lb = np.asarray(found[0][0].landmarks, np.float64), np.asarray(found[1][0].landmarks, np.float64)
    return float(np.linalg.norm(la - lb, axis=1).mean())
