"""Small facts about images used everywhere: pixel ranges, the 16-to-8-bit view, PSNR.

Frames travel as H×W×3 RGB ``uint8`` (8-bit sources) or ``uint16`` (high bit depth sources,
full 16-bit scale); the networks and detectors that want 8 bits get ``to_uint8``.
"""

from __future__ import annotations

import math

import numpy as np


def max_value(image: np.ndarray) -> float:
    """The largest value of a frame's dtype: 255.0 for ``uint8``, 65535.0 for ``uint16``
    (TypeError for anything else)."""
    if image.dtype == np.uint8:
        return 255.0
    if image.dtype == np.uint16:
        return 65535.0
    raise TypeError(f"expected a uint8 or uint16 image, got {image.dtype}")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """An 8-bit view of a frame: ``uint16`` keeps its top 8 bits (``>> 8``), ``uint8`` is
    returned as it is (made contiguous, as OpenCV and dlib want)."""
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    return np.ascontiguousarray(image)


def psnr(a, b, peak: float = 255.0, cap: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10·log10(peak² / MSE)``, over all elements.

    Args:
        a, b: arrays of one shape (any dtype; compared in float64).
        peak: the signal's range (255 for 8-bit images, 65535 for 16-bit, 2 for [−1, 1]).
        cap: returned for identical inputs and the most ever returned (a finite cap keeps
            means usable); None: identical inputs give ``inf``.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"PSNR of arrays of different shapes: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    value = math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)
    return value if cap is None else min(cap, value)
