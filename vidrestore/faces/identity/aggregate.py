"""Per-track identity vectors: views weighted by their quality, aggregated online.

``IdentityCache`` keeps each track's vector as a running quality-weighted mean (re-normalised);
quality = detector score × size factor × sharpness factor (``face_quality``). Embedding every
face of every frame is wasteful (faces of a track barely change between frames), so a track is
embedded when it starts, then at most every ``IdentityConfig.every`` frames, or sooner when a
detection's quality beats the best seen so far by ``IdentityConfig.improve``: the sharpest,
largest views dominate the mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .encoders import unit_rows


def face_quality(crop: np.ndarray, score: float, size: float) -> float:
    """How much a view of a face is worth to its track's identity, in [0, 1].

    ``score`` × ``min(1, size / 112)`` × ``v / (v + 100)`` with ``v`` the variance of the
    Laplacian of the 112×112 grey crop (blurry or upscaled tiny faces score low).
    """
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    v = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return float(score) * min(1.0, size / 112.0) * v / (v + 100.0)


@dataclass
class _TrackIdentity:
    total: np.ndarray
    weight: float = 0.0
    count: int = 0
    best_quality: float = 0.0
    last_index: int = -(10**9)


class IdentityCache:
    """Per-track identity vectors: running quality-weighted means, updated online.

    Args:
        every: embed a track at most once per ``every`` frames...
        improve: ...unless a view's quality beats the track's best by this factor.
    """

    def __init__(self, every: int = 12, improve: float = 1.25) -> None:
        self.every, self.improve = every, improve
        self._tracks: dict[int, _TrackIdentity] = {}
        self._fixed: dict[int, np.ndarray] = {}

    def wants(self, track_id: int, index: int, quality: float) -> bool:
        """Whether a view of quality ``quality`` at frame ``index`` should be embedded."""
        if track_id in self._fixed:
            return False
        entry = self._tracks.get(track_id)
        if entry is None or entry.count == 0:
            return True
        return index - entry.last_index >= self.every or quality > entry.best_quality * self.improve

    def add(self, track_id: int, index: int, vector: np.ndarray, quality: float) -> None:
        """Fold one embedding (unit vector) with weight ``quality`` into the track's mean."""
        vector = np.asarray(vector, np.float64).ravel()
        entry = self._tracks.get(track_id)
        if entry is None:
            entry = self._tracks[track_id] = _TrackIdentity(np.zeros_like(vector))
        weight = max(float(quality), 1e-6)
        entry.total += weight * vector
        entry.weight += weight
        entry.count += 1
        entry.best_quality = max(entry.best_quality, float(quality))
        entry.last_index = index

    def set(self, track_id: int, vector: np.ndarray) -> None:
        """Fix a track's vector (e.g. read from a face cache); no more embedding for it."""
        self._fixed[track_id] = unit_rows(np.asarray(vector)[None])[0]

    def vector(self, track_id: int) -> np.ndarray | None:
        """The track's unit float32 vector, or None if never embedded."""
        if track_id in self._fixed:
            return self._fixed[track_id]
        entry = self._tracks.get(track_id)
        if entry is None or entry.count == 0:
            return None
        return unit_rows(entry.total[None])[0]

    def count(self, track_id: int) -> int:
        entry = self._tracks.get(track_id)
        return entry.count if entry else 0

    def track_ids(self) -> list[int]:
        return sorted(set(self._tracks) | set(self._fixed))
