"""Paste masks in crop space: the ``FaceMasker`` protocol and the feathered template mask.

The default mask is the official helper's: the crop square, eroded and Gaussian-blurred, so
the transition lies at the crop's edge (usually background), with erosion and blur given as
fractions of the crop side and so scaling with the face. ``parsing.ParsingMasker`` refines it
with a face-parsing network; ``select.build_masker`` picks one.
"""

from __future__ import annotations

import functools
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from vidrestore.faces.face import Face

from .config import PasteConfig


@runtime_checkable
class FaceMasker(Protocol):
    """Gives the blend mask of a face in crop space.

    Attributes:
        name: what to call it in logs (``template``, ``parsenet``).
    """

    name: str

    def mask(self, face: Face) -> np.ndarray:
        """S×S float32 in [0, 1] (S = the side of ``face.restored``), 0 at the crop's edge."""
        ...


@functools.lru_cache(maxsize=16)
def template_mask(size: int, config: PasteConfig = PasteConfig()) -> np.ndarray:
    """The feathered crop-space mask: size×size float32 in [0, 1], read-only (memoised: the
    same for every face of a size).

    The region (square or ellipse) is pulled in by ``erode``·size, then blurred with
    sigma = ``blur``·size and a kernel cut at 3 sigma; the inset is kept ≥ that radius + 1
    px, so the mask is exactly 0 on the crop's border and beyond.
    """
    sigma = config.blur * size
    radius = int(np.ceil(3 * sigma))
    inset = max(config.erode * size, radius + 1.0)
    if config.shape == "square":
        lo, hi = int(round(inset)), size - int(round(inset))
        region = np.zeros((size, size), np.float32)
        region[lo:hi, lo:hi] = 1.0
    else:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        # Covers the FFHQ face from the brows to the chin, ears included.
        cx, cy, ax, ay = 0.5 * size, 0.53 * size, 0.5 * size - inset, 0.47 * size - inset
        region = ((((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2) <= 1.0).astype(np.float32)
    if radius > 0:
        region = cv2.GaussianBlur(region, (2 * radius + 1, 2 * radius + 1), sigma,
                                  borderType=cv2.BORDER_CONSTANT)
    mask = np.clip(region, 0.0, 1.0)
    mask.setflags(write=False)
    return mask


class TemplateMasker:
    """The landmark-template mask (the same for every face of a size).

    Args:
        config: shape, erosion and blur of the mask.
        reason: why this masker was chosen, for the log.
    """

    name = "template"

    def __init__(self, config: PasteConfig = PasteConfig(), reason: str = "") -> None:
        self.config = config
        self.reason = reason

    def mask(self, face: Face) -> np.ndarray:
        return template_mask(restored_crop(face).shape[0], self.config)


def restored_crop(face: Face) -> np.ndarray:
    """``face.restored``, checked to be an S×S×3 crop (ValueError otherwise)."""
    if face.restored is None:
        raise ValueError("face has no restored crop")
    r = face.restored
    if r.ndim != 3 or r.shape[0] != r.shape[1] or r.shape[2] != 3:
        raise ValueError(f"restored face must be S×S×3, got {r.shape}")
    return r
