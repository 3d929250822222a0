"""Running a detector over many frames: in batches, at a detection scale, with a score floor.

``auto_scale`` is what ``--detect-scale auto`` (the default) resolves to: frames whose shorter
side is under ``AUTO_MIN_SIDE`` are upscaled so it reaches it. MTCNN searches faces down to
20 px and RetinaFace's smallest anchors are 16 px, so an SD frame's 10-20 px faces (the
concert video of iscc-samples, 176×144) are found only upscaled; bigger frames run as
they are.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from vidrestore.faces.face import Face
from vidrestore.imaging import to_uint8

from .base import Detector

AUTO_MIN_SIDE = 480
"""Shorter side (pixels) below which ``auto_scale`` upscales a frame for detection."""
AUTO_MAX_SCALE = 4.0
"""Most ``auto_scale`` upscales (a 120 px thumbnail is not worth a 16× larger search)."""
DEFAULT_SCORE_FLOOR = 0.9
"""The score floor of a detector that names none (MTCNN's and RetinaFace's operating point)."""


def score_floor(detector: Detector, configured: float | None = None) -> float:
    """The score a detection of ``detector`` needs: ``configured`` when given, else the
    detector's own ``score_floor`` attribute (``DEFAULT_SCORE_FLOOR`` without one). Detectors'
    scores are not calibrated alike: BlazeFace's real faces on dim SD footage score 0.5–0.9,
    MTCNN's 0.9–1."""
    if configured is not None:
        return float(configured)
    return float(getattr(detector, "score_floor", DEFAULT_SCORE_FLOOR))


def auto_scale(height: int, width: int, min_side: int = AUTO_MIN_SIDE, max_scale: float = AUTO_MAX_SCALE) -> float:
    """The detection scale for ``--detect-scale auto`` of an ``height``×``width`` video: 1 when
    its shorter side is at least ``min_side``, else the factor bringing it there (at most
    ``max_scale``), rounded to 1/100."""
    short = min(int(height), int(width))
    if short <= 0 or short >= min_side:
        return 1.0
    return round(min(min_side / short, max_scale), 2)


def detect_frames(
    detector: Detector,
    images: Sequence[np.ndarray],
    *,
    batch: int = 8,
    scale: float = 1.0,
    score_threshold: float | None = 0.0,
) -> list[list[Face]]:
    """The faces of each image, in frame coordinates.

    Args:
        detector: any ``Detector``.
        images: H×W×3 RGB frames (uint8, or uint16 seen through its top 8 bits).
        batch: images per detector call.
        scale: images are resized by this factor before detection (2 finds the faces of
            small videos that are under the detector's smallest size); boxes and landmarks
            are mapped back.
        score_threshold: detections scoring lower are dropped; None: the detector's own
            floor (``score_floor``).
    """
    floor = score_floor(detector, score_threshold)
    out: list[list[Face]] = []
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    for start in range(0, len(images), batch):
        chunk = [to_uint8(im) for im in images[start : start + batch]]
        if scale != 1.0:
            chunk = [cv2.resize(im, None, fx=scale, fy=scale, interpolation=interpolation) for im in chunk]
        for faces in detector.detect(chunk):
            kept = [f for f in faces if f.score >= floor]
            if scale != 1.0:
                for f in kept:
                    f.box = (np.asarray(f.box, np.float32) / scale).astype(np.float32)
                    f.landmarks = (np.asarray(f.landmarks, np.float32) / scale).astype(np.float32)
            out.append(kept)
    return out
