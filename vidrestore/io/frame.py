"""The frame that travels through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

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
            high bit depth sources, in display orientation. Stages may modify it in place.
    """

    index: int
    pts: int | None
    time_base: Fraction
    image: np.ndarray

    @property
    def time(self) -> float | None:
        """Presentation time in seconds."""
        return None if self.pts is None else float(self.pts * self.time_base)

    @property
    def max_value(self) -> int:
        """The largest pixel value of ``image``'s dtype (255 or 65535)."""
        return int(np.iinfo(self.image.dtype).max)
