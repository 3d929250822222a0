"""The frame that travels through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass
class Frame:
    """One decoded video frame, upright (rotation metadata already applied).

    Attributes:
        index: position in presentation order, from 0.
        pts: presentation timestamp in ``time_base`` units, exactly as decoded (None if the
            stream had none).
        time_base: the input video stream's time base.
        image: H×W×3 RGB, ``uint8`` for 8-bit sources and ``uint16`` (full 16-bit scale) for
            high bit depth sources, in display orientation. Stages may modify it in place,
            and must then ``touch`` the region they changed.
        source: the decoded frame in its own pixel format (private to ``vidrestore.io``):
            the writer re-encodes it as it is, converting back from RGB only the touched
            regions, so pixels no stage changed are not altered by a colour round trip.
        touched: boxes ``(x0, y0, x1, y1)`` of ``image`` that stages changed.
    """

    index: int
    pts: int | None
    time_base: Fraction
    image: np.ndarray
    source: Any = None
    touched: list[tuple[int, int, int, int]] = field(default_factory=list)

    def touch(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """Record that ``image[y0:y1, x0:x1]`` was changed (clipped to the frame)."""
        h, w = self.image.shape[:2]
        box = (max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h))
        if box[2] > box[0] and box[3] > box[1]:
            self.touched.append(box)

    def touch_all(self) -> None:
        """Record that the whole image may have changed."""
        h, w = self.image.shape[:2]
        self.touched = [(0, 0, w, h)]

    @property
    def time(self) -> float | None:
        """Presentation time in seconds."""
        return None if self.pts is None else float(self.pts * self.time_base)

    @property
    def max_value(self) -> int:
        """The largest pixel value of ``image``'s dtype (255 or 65535)."""
        return int(np.iinfo(self.image.dtype).max)
