"""Temporal smoothing of each track's landmarks, so aligned crops do not jitter.

A detector's landmarks wobble by a pixel or two from frame to frame even on a still face;
the alignment transform follows them and the aligned crop (and the face pasted back) shakes.
Smoothing each track's points over time removes the wobble. The points smoothed are the
(7, 2) array of the 5 landmarks and the box's two corners; the alignment is then estimated
from the smoothed landmarks.

- ``GaussianSmoother`` (non-causal): the value at frame t is a Gaussian-weighted *local linear*
  fit of the track's points over frames t − r … t + r. Inside a track this equals a plain
  centred Gaussian (the slope term cancels on a symmetric window); near a track's start or end,
  where the window is one-sided, a plain mean would lag behind a moving face (by 1.3 frames ×
  speed at σ = 2) while the linear fit stays unbiased for steady motion. It needs the r frames
  after t, which is why the face stage holds frames back by r (its ``delay``).
- ``OneEuroSmoother`` (causal, no delay): the One-Euro filter (Casiez et al., CHI 2012), one
  cut-off for all points of a face (so the face is not distorted), driven by the face's speed
  in face sizes per second, so it smooths a still face hard and follows fast motion.
- ``PassThroughSmoother``: the points as they are (``method: off``).

Each track is smoothed on its own, so smoothing restarts with every new track (a scene cut
ends all tracks). Memory is flat: only the frames inside the window are kept.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

import numpy as np

from .config import SmoothConfig


class TrackSmoother(Protocol):
    """Smooths per-track point trajectories.

    Attributes:
        delay: frames of the future a value needs: ``get(t)`` is final once the track's points
            up to frame ``t + delay`` were added (or the track has ended).
    """

    delay: int

    def add(self, track_id: int, index: int, time: float, points: np.ndarray) -> None:
        """Record a track's (P, 2) points at frame ``index`` (time in seconds); frames of a
        track come in increasing order."""
        ...

    def get(self, track_id: int, index: int) -> np.ndarray:
        """The smoothed (P, 2) float64 points of a track at a frame previously added."""
        ...

    def discard_before(self, index: int) -> None:
        """No ``get`` will ask for frames before ``index`` any more: free what they needed."""
        ...


def build_smoother(config: SmoothConfig) -> TrackSmoother:
    """The smoother ``config.method`` names."""
    if config.method == "gaussian":
        return GaussianSmoother(config.sigma, config.delay, config.order)
    if config.method == "one-euro":
        return OneEuroSmoother(config.min_cutoff, config.beta, config.d_cutoff)
    return PassThroughSmoother()


class PassThroughSmoother:
    """No smoothing."""

    delay = 0

    def __init__(self) -> None:
        self._values: dict[tuple[int, int], np.ndarray] = {}

    def add(self, track_id: int, index: int, time: float, points: np.ndarray) -> None:
        self._values[(track_id, index)] = np.asarray(points, np.float64)

    def get(self, track_id: int, index: int) -> np.ndarray:
        return self._values[(track_id, index)]

    def discard_before(self, index: int) -> None:
        for key in [k for k in self._values if k[1] < index]:
            del self._values[key]


class GaussianSmoother:
    """Centred Gaussian-weighted local polynomial smoothing (see module docstring).

    Args:
        sigma: standard deviation, frames.
        radius: half window, frames (the delay).
        order: degree of the local fit: 0 a plain Gaussian mean, 1 linear (unbiased for steady
            motion), 2 quadratic (unbiased for steady acceleration too).
    """

    def __init__(self, sigma: float, radius: int, order: int = 2) -> None:
        self.sigma = float(sigma)
        self.delay = int(radius)
        self.order = int(order)
        self._history: dict[int, deque[tuple[int, np.ndarray]]] = {}

    def add(self, track_id: int, index: int, time: float, points: np.ndarray) -> None:
        self._history.setdefault(track_id, deque()).append((index, np.asarray(points, np.float64)))

    def get(self, track_id: int, index: int) -> np.ndarray:
        r = self.delay
        samples = [(i, p) for i, p in self._history[track_id] if abs(i - index) <= r]
        d = np.array([i - index for i, _ in samples], np.float64)
        pts = np.stack([p for _, p in samples]).reshape(len(samples), -1)
        w = np.exp(-0.5 * (d / self.sigma) ** 2)
        # A fit of degree k needs k + 1 distinct frames; fewer frames, lower degree.
        for k in range(min(self.order, len(samples) - 1), 0, -1):
            x = np.vander(d / self.sigma, k + 1, increasing=True)
            xtw = x.T * w
            gram = xtw @ x
            if np.linalg.cond(gram) < 1e8:
                coef = np.linalg.solve(gram, xtw @ pts)
                return coef[0].reshape(samples[0][1].shape)
        return (w @ pts / w.sum()).reshape(samples[0][1].shape)

    def discard_before(self, index: int) -> None:
        keep_from = index - self.delay
        for tid in list(self._history):
            hist = self._history[tid]
            while hist and hist[0][0] < keep_from:
                hist.popleft()
            if not hist:
                del self._history[tid]


class OneEuroSmoother:
    """The One-Euro filter on whole faces (see module docstring).

    Args:
        min_cutoff: cut-off frequency of a still face, Hz (lower: smoother, more lag).
        beta: cut-off increase per unit speed, Hz per (face size per second).
        d_cutoff: cut-off of the speed estimate, Hz.
    """

    delay = 0
    _FORGET = 64  # frames after which a silent track's filter state is dropped

    def __init__(self, min_cutoff: float = 1.0, beta: float = 5.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self._state: dict[int, tuple[int, float, np.ndarray, np.ndarray]] = {}
        self._values: dict[tuple[int, int], np.ndarray] = {}

    @staticmethod
    def _alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def add(self, track_id: int, index: int, time: float, points: np.ndarray) -> None:
        x = np.asarray(points, np.float64)
        state = self._state.get(track_id)
        if state is None:
            x_hat, dx_hat = x, np.zeros_like(x)
        else:
            _, t_prev, x_prev, dx_prev = state
            dt = max(time - t_prev, 1e-6)
            dx = (x - x_prev) / dt
            dx_hat = dx_prev + self._alpha(self.d_cutoff, dt) * (dx - dx_prev)
            speed = float(np.linalg.norm(dx_hat.mean(0))) / _face_scale(x)
            cutoff = self.min_cutoff + self.beta * speed
            x_hat = x_prev + self._alpha(cutoff, dt) * (x - x_prev)
        self._state[track_id] = (index, time, x_hat, dx_hat)
        self._values[(track_id, index)] = x_hat

    def get(self, track_id: int, index: int) -> np.ndarray:
        return self._values[(track_id, index)]

    def discard_before(self, index: int) -> None:
        for key in [k for k in self._values if k[1] < index]:
            del self._values[key]
        for tid in [t for t, s in self._state.items() if s[0] < index - self._FORGET]:
            del self._state[tid]


def _face_scale(points: np.ndarray) -> float:
    """Size of a face in pixels: its box (rows 5–6) if present, else the points' spread."""
    if len(points) >= 7:
        w, h = points[6] - points[5]
        if w > 0 and h > 0:
            return float(math.sqrt(w * h))
    return max(float(np.linalg.norm(points - points.mean(0), axis=1).mean()) * 2.0, 1.0)
