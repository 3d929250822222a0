"""Scene cuts: the first frame of each new shot, where every face track ends."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from vidrestore.imaging import to_uint8


class SceneCutDetector:
    """Flags the first frame of each new shot.

    Each frame is shrunk to 64×48 and described by a 16×4×4 HSV histogram; a frame whose
    Hellinger (Bhattacharyya) distance to the previous frame's exceeds ``threshold`` starts a
    new shot. On the iscc demo video real cuts score 0.33–0.84 and frames within a shot
    stay under 0.22. The regions of known faces (``exclude``) are left out of both
    histograms: a large face that appears, vanishes or is covered changes the histogram as
    much as a cut does, but it is not one.
    """

    _SIZE = (64, 48)

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None
        self.distance = 0.0

    def __call__(self, image: np.ndarray, exclude: Sequence[np.ndarray] = ()) -> bool:
        h, w = image.shape[:2]  # the boxes' frame (the shrunk copy below drops at most a few edge pixels)
        image = _shrink(to_uint8(image), self._SIZE)
        hsv = cv2.cvtColor(cv2.resize(image, self._SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)
        previous, self._previous = self._previous, hsv
        if previous is None:
            self.distance = 0.0
            return False
        mask = np.full(hsv.shape[:2], 255, np.uint8)
        sx, sy = self._SIZE[0] / w, self._SIZE[1] / h
        for box in exclude:
            x1, y1, x2, y2 = (float(v) for v in box)
            px, py = 0.2 * (x2 - x1), 0.2 * (y2 - y1)
            mask[max(int((y1 - py) * sy), 0) : int(np.ceil((y2 + py) * sy)),
                 max(int((x1 - px) * sx), 0) : int(np.ceil((x2 + px) * sx))] = 0
        if mask.mean() < 0.3 * 255:  # faces fill the frame: judge the whole frame
            mask[:] = 255
        self.distance = float(cv2.compareHist(self._hist(previous, mask), self._hist(hsv, mask),
                                              cv2.HISTCMP_BHATTACHARYYA))
        return self.threshold < 1.0 and self.distance > self.threshold

    @staticmethod
    def _hist(hsv: np.ndarray, mask: np.ndarray) -> np.ndarray:
        hist = cv2.calcHist([hsv], [0, 1, 2], mask, [16, 4, 4], [0, 180, 0, 256, 0, 256])
        return hist.astype(np.float32) / max(float(hist.sum()), 1.0)


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` halved (2×2 block averages) while the half is still at least twice ``size``
    (a frame under 4× ``size`` is left as it is). OpenCV's area resize has a fast path for exact
    halving but a slow general one for other factors: 10 ms from 1080p straight to 64×48,
    3.5 ms in halvings and then the last step. An odd last row or column is left out of each
    halving, nothing a histogram of the frame notices."""
    h, w = image.shape[:2]
    while w >= 4 * size[0] and h >= 4 * size[1]:
        image = cv2.resize(image[: h - h % 2, : w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
    return image
