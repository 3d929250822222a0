"""What the face stage knows about one face in one frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Face:
    """One detected face in one frame, as it moves through align → restore → paste.

    Coordinates are pixels of the upright frame (``Frame.image``).

    Attributes:
        box: (4,) float32 ``x1, y1, x2, y2``.
        landmarks: (5, 2) float32: left eye, right eye, nose tip, left and right mouth corner,
            "left" meaning the left side of the image.
        score: detector confidence in [0, 1].
        track_id: the track this face belongs to (-1 until tracked).
        affine: (2, 3) float64 similarity transform frame → aligned crop, once aligned.
        crop: aligned face, S×S×3 float32 RGB in [0, 1] (S = 512), once aligned.
        restored: the restorer's output for ``crop``, same layout, once restored.
        identity: (512,) float32 unit ArcFace vector of the face's track, when known.
        skip: why this face is left untouched (e.g. "too small", "rejected"), or None.
        rejected: why the verifier judged this detection not to be a face (``faces.verify``;
            then ``skip`` is ``"rejected"``), or None.
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float
    track_id: int = -1
    affine: np.ndarray | None = None
    crop: np.ndarray | None = None
    restored: np.ndarray | None = None
    identity: np.ndarray | None = None
    skip: str | None = None
    rejected: str | None = None

    @property
    def size(self) -> float:
        """Geometric mean of the box's width and height, in pixels."""
        w = max(float(self.box[2] - self.box[0]), 0.0)
        h = max(float(self.box[3] - self.box[1]), 0.0)
        return (w * h) ** 0.5

    def points(self) -> np.ndarray:
        """(7, 2) float64: the 5 landmarks, then the box's two corners (what tracking and
        temporal smoothing follow)."""
        return np.vstack([np.asarray(self.landmarks, np.float64).reshape(5, 2),
                          np.asarray(self.box, np.float64).reshape(2, 2)])
