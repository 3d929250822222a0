"""Full-reference pixel metrics of the face restoration literature, on RGB frames or faces.

PSNR on RGB, and on the luma Y of ITU-R BT.601 in studio range (Y = 16 + 65.481 R +
128.553 G + 24.966 B for R, G, B in [0, 1], the ``rgb2ycbcr`` of MATLAB that BasicSR's
``test_y_channel`` and the BFR papers report); SSIM of Wang et al. (2004) by scikit-image
with their Gaussian window (σ 1.5), per RGB channel and averaged, on 8-bit values.
Frames are H×W×3 RGB ``uint8`` or ``uint16`` (compared on their own scale).
"""

from __future__ import annotations

import numpy as np

from vidrestore import imaging

PSNR_CAP = 100.0
"""PSNR reported for identical images (their MSE is 0): a finite cap keeps means usable."""

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


def psnr_rgb(a: np.ndarray, b: np.ndarray, cap: float = PSNR_CAP) -> float:
    """PSNR in dB of two RGB images of one dtype, over every channel; ``cap`` when identical."""
    return imaging.psnr(a, b, imaging.max_value(a), cap=cap)


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 studio-range Y (16–235) of an RGB ``uint8`` / ``uint16`` image, float64 H×W."""
    rgb = np.asarray(image, np.float64) / imaging.max_value(image)
    return 16.0 + rgb @ (_Y_WEIGHTS * 255.0)


def psnr_y(a: np.ndarray, b: np.ndarray, cap: float = PSNR_CAP) -> float:
    """PSNR in dB on BT.601 Y (module doc), peak 255; ``cap`` when identical."""
    return imaging.psnr(luma(a), luma(b), 255.0, cap=cap)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two RGB images (8-bit view; Gaussian window σ 1.5, per channel, averaged)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(
        imaging.to_uint8(a), imaging.to_uint8(b), channel_axis=2, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255,
    ))
