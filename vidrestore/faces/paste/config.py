"""How restored faces are blended back: ``PasteConfig`` (mask kind, shape, erosion, feather,
interpolation), settable from the CLI (``--mask``, ``--paste-shape``, ``--paste-erode``,
``--paste-blur``) and from a config's ``paste:`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2

from vidrestore.errors import UsageError
from vidrestore.names import MaskName, choices

INTERPOLATION = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
"""Paste interpolation name → OpenCV flag."""


@dataclass(frozen=True)
class PasteConfig:
    """How faces are blended back.

    Attributes:
        mask: ``template`` (feathered crop square), ``parsing`` (∩ ParseNet face mask, needs
            its weights) or ``auto`` (parsing when the weights are present).
        shape: the template region: ``square`` (the official helper's: the whole crop, so
            hair and the crop's background are restored too) or ``ellipse`` (a face-shaped
            region, leaving more of the frame untouched).
        erode: how far the mask's edge is pulled in from the crop's edge, as a fraction of
            the crop side (the official helper: 1/20).
        blur: Gaussian sigma of the feather, as a fraction of the crop side.
        interpolation: sampling of the inverse warp (``linear``, ``cubic``, ``lanczos``).
            Cubic by default: the align → paste round trip of an unchanged face measures
            47.2 dB PSNR with cubic against 43.1 dB with bilinear (astronaut, uint8), since
            the paste samples the crop between its pixels, where bilinear cuts the peaks.
    """

    mask: MaskName = "auto"
    shape: Literal["square", "ellipse"] = "square"
    erode: float = 0.06
    blur: float = 0.02
    interpolation: Literal["linear", "cubic", "lanczos"] = "cubic"

    def __post_init__(self) -> None:
        if self.mask not in choices(MaskName):
            raise UsageError(f"paste mask must be one of {', '.join(choices(MaskName))}, not {self.mask!r}")
        if self.shape not in ("square", "ellipse"):
            raise UsageError(f"paste mask shape must be square or ellipse, not {self.shape!r}")
        if not (0.0 <= self.erode < 0.4 and 0.0 <= self.blur < 0.2):
            raise UsageError("paste erode must be in [0, 0.4) and blur in [0, 0.2)")
        if self.interpolation not in INTERPOLATION:
            raise UsageError(f"paste interpolation must be one of {', '.join(INTERPOLATION)}")
