"""Temporal smoothing: less jitter, no lag on real motion, restarts per track, bounded delay."""

from __future__ import annotations

import numpy as np
import pytest

from testkit.jitter import (
    ReplayDetector,
    measure_jitter,
    pair_jitter,
    subpixel_face_frames,
)
from vidrestore.errors import ConfigError
from vidrestore.faces.config import FaceConfig, IdentityConfig, SmoothConfig
from vidrestore.faces.smooth import GaussianSmoother, OneEuroSmoother, build_smoother
from vidrestore.pipeline.face_stage import FaceStage

FPS = 24.0


def _trajectory(n: int, motion, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 7, 2) points of a 40-px face following ``motion(t) -> (x, y)``, clean and noisy."""
    shape = np.array([[-8, -4], [8, -4], [0, 2], [-6, 8], [6, 8], [-20, -20], [20, 20]], float)
    clean = np.stack([shape + motion(t) for t in range(n)])
    noisy = clean + np.random.default_rng(seed).normal(0, noise, clean.shape)
    return clean, noisy


def _smooth(smoother, points: np.ndarray, track_id: int = 0) -> np.ndarray:
    out = []
    for t, p in enumerate(points):
        smoother.add(track_id, t, t / FPS, p)
    for t in range(len(points)):
        out.append(smoother.get(track_id, t))
        smoother.discard_before(t + 1)
    return np.stack(out)


def _wobble(x: np.ndarray) -> float:
    """Mean |second difference|: zero for steady motion."""
    return float(np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean())


@pytest.mark.parametrize("method", ["gaussian", "one-euro"])
def test_still_face_noise_is_reduced(method):
    clean, noisy = _trajectory(120, lambda t: (100.0, 80.0), noise=1.0)
    out = _smooth(build_smoother(SmoothConfig(method=method)), noisy)
    err_before = np.abs(noisy - clean)[10:-10].mean()
    err_after = np.abs(out - clean)[10:-10].mean()
    assert err_after < err_before / (2.5 if method == "gaussian" else 1.8), (err_before, err_after)
    assert _wobble(out) < _wobble(noisy) / 4


@pytest.mark.parametrize(
    "motion",
    [lambda t: (10 + 4.0 * t, 50 - 1.5 * t), lambda t: (10 + 0.6 * t + 0.05 * t * t, 50.0)],
    ids=["steady", "accelerating"],
)
def test_gaussian_does_not_lag_on_real_motion_even_at_track_ends(motion):
    """Local quadratic fit: exact for steady and accelerating motion, ends included."""
    clean, _ = _trajectory(40, motion)
    out = _smooth(GaussianSmoother(sigma=4.0, radius=10, order=2), clean)
    np.testing.assert_allclose(out, clean, atol=1e-6)


def test_plain_gaussian_mean_would_lag_at_track_ends():
    """Why the local fit: a plain mean (order 0) trails a moving face at the track's start."""
    clean, _ = _trajectory(30, lambda t: (10 + 4.0 * t, 50.0))
    out = _smooth(GaussianSmoother(sigma=4.0, radius=10, order=0), clean)
    assert abs(out[0, 0, 0] - clean[0, 0, 0]) > 10


def test_one_euro_follows_fast_motion_with_small_lag():
    """A face crossing 1.5 face sizes per second: One-Euro opens up and lags < 0.2 face sizes."""
    clean, noisy = _trajectory(60, lambda t: (10 + 60 * 1.5 * t / FPS, 50.0), noise=0.5)
    out = _smooth(OneEuroSmoother(min_cutoff=1.0, beta=5.0), noisy)
    lag = np.abs(out - clean)[20:, :, 0].mean()
    assert lag < 0.2 * 40, lag
    slow = _smooth(OneEuroSmoother(min_cutoff=1.0, beta=0.0), noisy)  # without speed adaptation
    assert np.abs(slow - clean)[20:, :, 0].mean() > 2 * lag


def test_tracks_are_smoothed_separately():
    """Two tracks side by side: neither pulls the other (a new track restarts smoothing)."""
    sm = GaussianSmoother(sigma=4.0, radius=10)
    a, _ = _trajectory(20, lambda t: (20.0, 20.0))
    b, _ = _trajectory(20, lambda t: (200.0, 20.0))
    for t in range(20):
        sm.add(1, t, t / FPS, a[t])
        sm.add(2, t, t / FPS, b[t])
    np.testing.assert_allclose(sm.get(1, 10), a[10], atol=1e-9)
    np.testing.assert_allclose(sm.get(2, 10), b[10], atol=1e-9)


def test_memory_is_bounded_by_the_window():
    sm = GaussianSmoother(sigma=2.0, radius=5)
    p = np.zeros((7, 2))
    for t in range(1000):
        sm.add(0, t, t / FPS, p)
        if t >= 5:
            sm.get(0, t - 5)
            sm.discard_before(t - 4)
    assert len(sm._history[0]) <= 2 * 5 + 1


def test_config_delay_and_validation():
    assert SmoothConfig(method="gaussian", sigma=4.0).delay == 10
    assert SmoothConfig(method="gaussian", sigma=2.0, radius=3).delay == 3
    assert SmoothConfig(method="one-euro").delay == 0
    assert SmoothConfig(method="off").delay == 0
    with pytest.raises(ConfigError):
        SmoothConfig(sigma=0)
    with pytest.raises(ConfigError):
        SmoothConfig(order=3)


def test_pair_jitter_is_zero_when_the_crop_follows_the_face():
    a = np.array([[2.0, 0.1, 5.0], [-0.1, 2.0, 7.0]])
    motion = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, -2.0]])  # the face moves by (3, -2)
    follow = a.copy()
    follow[:, 2] -= a[:, :2] @ np.array([3.0, -2.0])
    assert pair_jitter(a, follow, motion) == pytest.approx(0.0, abs=1e-9)
    assert pair_jitter(a, a, motion) == pytest.approx(np.hypot(2 * 3 - 0.1 * 2, -0.1 * 3 - 2 * 2), rel=1e-6)


def test_smoothing_reduces_aligned_crop_jitter_on_a_noisy_real_face(detector, empty_store):
    """The astronaut gliding (sub-pixel motion) with 1.5 px noise added to every landmark:
    Gaussian smoothing cuts the aligned crop's jitter by more than half and ends closer to
    the clean landmarks than the noisy ones; One-Euro also reduces it."""
    frames = lambda: subpixel_face_frames(40, 192, 144, face_size=72, period=120)  # noqa: E731
    config = FaceConfig(min_face=0, detect_scale=1.0, face_size=128, identity=IdentityConfig(backend="off"))
    stats = {s.method: s for s in measure_jitter(
        frames, config, empty_store, detector=ReplayDetector(detector, landmark_noise=1.5),
        clean_detector=detector)}
    off, gauss, euro = stats["off"], stats["gaussian"], stats["one-euro"]
    assert off.pairs >= 35 and gauss.pairs == off.pairs
    assert gauss.crop_jitter < off.crop_jitter / 2, (off, gauss)
    assert gauss.error_vs_clean < off.error_vs_clean
    assert euro.crop_jitter < off.crop_jitter * 0.85, (off, euro)


def test_stage_holds_back_exactly_the_smoothing_delay(kit, detector, empty_store):
    config = FaceConfig(min_face=0, detect_scale=1.0, batch=1, smooth=SmoothConfig(sigma=2.0),
                        identity=IdentityConfig(backend="off"))
    stage = FaceStage(config, empty_store, detector=detector)
    jobs = kit.make_jobs(kit.astronaut_clip(12))
    released = []
    for job in jobs:
        out = stage.process([job])
        released.append([j.index for j in out])
    assert stage.delay == 5
    assert all(r == [] for r in released[:5])
    assert [r for r in released[5:]] == [[i] for i in range(7)]
    assert [j.index for j in stage.flush()] == list(range(7, 12))


def test_smoothing_reduces_aligned_crop_jitter_on_real_video(kit, detector, empty_store):
    """The singer of the iscc demo video (faces ~20 px, detected at 2×): the detector's own
    landmark noise makes the crop jitter; Gaussian smoothing removes most of it."""
    frames = kit.demo_frames(1164, 24)
    config = FaceConfig(min_face=0, face_size=128, detect_scale=2.0, identity=IdentityConfig(backend="off"))
    stats = {s.method: s for s in measure_jitter(lambda: iter(frames), config, empty_store,
                                                  methods=("off", "gaussian"), detector=detector)}
    off, gauss = stats["off"], stats["gaussian"]
    assert off.pairs >= 15
    assert gauss.crop_jitter < 0.6 * off.crop_jitter, (off, gauss)
