"""Linking faces across frames into tracks.

``FaceTracker.update`` takes one frame at a time, in order, with the detector's faces when the
frame was detected (``None`` when ``detect_every`` skipped it) and gives back that frame's faces,
each with a ``track_id``:

- on a detected frame, detections are assigned to live tracks by a weighted similarity (box IoU
  against the track's constant-velocity prediction, landmark closeness and, where the geometry
  is ambiguous or the track was missing, identity), optimally (Hungarian, scipy) under a gate;
  detections left over start new tracks; tracks left over go missing;
- on a frame that was not detected, every track seen on the previous frame is carried to this
  frame by Lucas–Kanade optical flow of points on its face (a RANSAC similarity fit), so every
  frame has its faces; a track the flow loses goes missing;
- a missing track lives ``max_gap`` frames and keeps its id if its face comes back in time;
- a scene cut (``scene_cut.SceneCutDetector``) ends every track.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .config import TrackConfig
from .face import Face
from .motion import propagate_face, to_gray8

try:  # scipy comes with scikit-image; without it, a greedy assignment does
    from scipy.optimize import linear_sum_assignment
except ImportError:  # pragma: no cover
    linear_sum_assignment = None

Embed = Callable[[Face], "np.ndarray | None"]
"""Returns a unit identity vector for a detection (or None): called lazily, only when needed."""


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``x1, y1, x2, y2`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class FaceTrack:
    """A live track: where its face was last seen and how it moves.

    Attributes:
        id: the track id given to its faces.
        start: first frame.
        points: (7, 2) landmarks + box corners when last seen.
        velocity: (7, 2) per-frame motion of ``points`` (smoothed).
        last_seen: last frame the track had a face (detected or carried by flow).
        score: detector score of its last detection.
        identity: unit identity vector for matching (set by the owner), or None.
    """

    id: int
    start: int
    points: np.ndarray
    velocity: np.ndarray
    last_seen: int
    score: float
    identity: np.ndarray | None = None

    @property
    def size(self) -> float:
        (x1, y1), (x2, y2) = self.points[5], self.points[6]
        return max(float((x2 - x1) * (y2 - y1)) ** 0.5 if x2 > x1 and y2 > y1 else 0.0, 1.0)

    def predict(self, index: int) -> np.ndarray:
        """Constant-velocity guess of ``points`` at frame ``index`` (at most 5 frames ahead)."""
        return self.points + self.velocity * min(index - self.last_seen, 5)

    def face(self) -> Face:
        return Face(box=self.points[5:].reshape(4).astype(np.float32),
                    landmarks=self.points[:5].astype(np.float32),
                    score=self.score, track_id=self.id)


class FaceTracker:
    """Assigns track ids to the faces of consecutive frames (see module docstring).

    Args:
        config: the tracking settings.
        identity_threshold: cosine similarity above which the identity encoder in use calls
            two faces the same person (None: identity is not used).
        identity_margin: similarities ``threshold ± margin`` count as clearly the same /
            clearly different (identity term 1 / 0, linear between).
    """

    def __init__(
        self,
        config: TrackConfig,
        identity_threshold: float | None = None,
        identity_margin: float = 0.15,
    ) -> None:
        self.config = config
        self.identity_threshold = identity_threshold
        self.identity_margin = identity_margin
        self.tracks: dict[int, FaceTrack] = {}
        self._next_id = 0
        self._prev_gray: np.ndarray | None = None
        self._prev_index: int | None = None

    def reset(self) -> None:
        """End every track (a scene cut)."""
        self.tracks.clear()

    def boxes(self) -> list[np.ndarray]:
        """The last known boxes of every live track (seen or missing)."""
        return [t.points[5:].reshape(4) for t in self.tracks.values()]

    def set_identity(self, track_id: int, vector: np.ndarray | None) -> None:
        if track_id in self.tracks:
            self.tracks[track_id].identity = vector

    def update(
        self,
        index: int,
        image: np.ndarray,
        detections: Sequence[Face] | None,
        *,
        cut: bool = False,
        embed: Embed | None = None,
    ) -> list[Face]:
        """The faces of frame ``index`` with track ids set.

        Args:
            index: frame index; frames come in increasing order.
            image: the frame (H×W×3 RGB uint8/uint16), for optical flow.
            detections: the detector's faces (``track_id`` is set on them), or None if the
                frame was not detected (then faces are carried from the previous frame).
            cut: the frame starts a new shot: every track ends first.
            embed: lazily computes a detection's identity vector for ambiguous matches.

        Returns:
            The frame's faces, by track id.
        """
        gray = to_gray8(image)
        if cut:
            self.reset()
        if detections is None:
            faces = self._carry(index, gray)
        else:
            faces = self._assign(index, list(detections), embed)
        gap = self.config.max_gap
        for tid in [t.id for t in self.tracks.values() if index - t.last_seen > gap]:
            del self.tracks[tid]
        self._prev_gray, self._prev_index = gray, index
        return sorted(faces, key=lambda f: f.track_id)

    # -- frames without detection ------------------------------------------------------

    def _carry(self, index: int, gray: np.ndarray) -> list[Face]:
        faces = []
        if self._prev_gray is None or self._prev_index != index - 1:
            return faces
        for track in self.tracks.values():
            if track.last_seen != index - 1:
                continue
            if self.config.flow and self._prev_gray.shape == gray.shape:
                moved = propagate_face(self._prev_gray, gray, track.points[:5], track.points[5:].reshape(4))
                if moved is None:
                    continue
                points = np.vstack([moved[0], moved[1].reshape(2, 2)]).astype(np.float64)
            else:
                points = track.points.copy()
            self._observe(track, index, points)
            faces.append(track.face())
        return faces

    # -- detected frames ---------------------------------------------------------------

    def _assign(self, index: int, detections: list[Face], embed: Embed | None) -> list[Face]:
        tracks = list(self.tracks.values())
        sim = self._similarities(index, tracks, detections, embed)
        pairs = _assign(sim, self.config.min_similarity)
        matched = set()
        for ti, di in pairs:
            track, det = tracks[ti], detections[di]
            self._observe(track, index, det.points())
            track.score = float(det.score)
            det.track_id = track.id
            matched.add(di)
        for di, det in enumerate(detections):
            if di not in matched:
                pts = det.points()
                track = FaceTrack(self._next_id, index, pts, np.zeros_like(pts), index, float(det.score))
                self.tracks[track.id] = track
                self._next_id += 1
                det.track_id = track.id
        return detections

    def _similarities(
        self, index: int, tracks: list[FaceTrack], dets: list[Face], embed: Embed | None
    ) -> np.ndarray:
        cfg = self.config
        sim = np.zeros((len(tracks), len(dets)))
        if not tracks or not dets:
            return sim
        geo_w = cfg.iou_weight + cfg.landmark_weight
        geo = np.zeros_like(sim)
        for ti, track in enumerate(tracks):
            pred = track.predict(index)
            gap = index - track.last_seen
            tol = 0.5 * track.size * (1.0 + 0.5 * (min(gap, 5) - 1))
            for di, det in enumerate(dets):
                iou = box_iou(pred[5:].reshape(4), np.asarray(det.box, np.float64))
                dist = np.linalg.norm(pred[:5] - np.asarray(det.landmarks, np.float64), axis=1).mean()
                close = max(0.0, 1.0 - dist / tol)
                if iou > 0 or close > 0:
                    geo[ti, di] = (cfg.iou_weight * iou + cfg.landmark_weight * close) / geo_w
        sim[:] = geo
        if embed is None or self.identity_threshold is None or cfg.identity_weight <= 0:
            return sim
        candidates = geo > 0
        ambiguous = (candidates.sum(0, keepdims=True) > 1) | (candidates.sum(1, keepdims=True) > 1)
        cache: dict[int, np.ndarray | None] = {}
        for ti, di in zip(*np.nonzero(candidates)):
            track = tracks[ti]
            if track.identity is None or not (ambiguous[ti, di] or index - track.last_seen > 1):
                continue
            if di not in cache:
                cache[di] = embed(dets[di])
            vec = cache[di]
            if vec is None:
                continue
            cos = float(np.dot(track.identity, vec))
            s = np.clip(0.5 + (cos - self.identity_threshold) / (2 * self.identity_margin), 0.0, 1.0)
            sim[ti, di] = (geo_w * geo[ti, di] + cfg.identity_weight * s) / (geo_w + cfg.identity_weight)
        return sim

    def _observe(self, track: FaceTrack, index: int, points: np.ndarray) -> None:
        step = (points - track.points) / max(index - track.last_seen, 1)
        first_step = track.last_seen == track.start
        track.velocity = step if first_step else 0.5 * track.velocity + 0.5 * step
        track.points = points
        track.last_seen = index


def _assign(sim: np.ndarray, floor: float) -> list[tuple[int, int]]:
    """Pairs (row, col) maximising total similarity, each pair scoring at least ``floor``."""
    if sim.size == 0:
        return []
    if linear_sum_assignment is not None:
        cost = np.where(sim >= floor, -sim, 1e6)
        rows, cols = linear_sum_assignment(cost)
        return [(r, c) for r, c in zip(rows, cols) if sim[r, c] >= floor]
    pairs, used_r, used_c = [], set(), set()  # pragma: no cover - greedy fallback
    for flat in np.argsort(-sim, axis=None):
        r, c = np.unravel_index(flat, sim.shape)
        if sim[r, c] < floor:
            break
        if r not in used_r and c not in used_c:
            pairs.append((int(r), int(c)))
            used_r.add(r)
            used_c.add(c)
    return pairs
