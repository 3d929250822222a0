"""Measuring how much aligned face crops jitter, with and without temporal smoothing.

Two numbers per run, over every pair of consecutive frames of every track:

- **crop jitter** (``crop_jitter``, pixels of the 512 crop): how far the face content moves
  inside the aligned crop from one frame to the next once the face's real motion is taken
  out. The real motion ``M`` (frame t−1 → t, a similarity) is measured from the images alone:
  Lucas–Kanade flow of points on the face and a RANSAC similarity fit
  (``track.estimate_face_motion``), independent of any landmark. With ``A`` the frame → crop
  transforms, the five template points ``T`` go to ``A_t · M · A_{t−1}⁻¹ · T``; the mean
  distance they move is the pair's jitter. A perfect alignment follows the face exactly and
  scores 0 whatever the face does; detector noise and smoothing lag both raise it. Like TLME
  (the temporal landmark error video face restoration papers report, e.g. PGTFormer) it is
  a temporal landmark error, but on the crop the restorer sees and without needing
  ground-truth landmarks.
- **landmark acceleration** (``landmark_accel``, % of face size): the mean norm of the
  second difference ``l(t+1) − 2 l(t) + l(t−1)`` of the landmarks used for alignment: a
  high-pass that is zero for steady motion, so it measures wobble, not movement.

When a clean reference run is given (``clean``: the same frames with a noiseless detector),
``error_vs_clean`` is the mean distance (512-crop pixels) between the landmarks used and the
clean detector's, in the crop: the price smoothing pays in lag.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable, Sequence

import numpy as np

from vidrestore.faces.align import template
from vidrestore.faces.config import FaceConfig
from vidrestore.faces.face import Face
from vidrestore.faces.motion import estimate_face_motion, to_gray8
from vidrestore.io.frame import Frame
from vidrestore.pipeline.contracts import FrameJob

FrameSource = Callable[[], Iterable[np.ndarray]]
"""Returns a fresh iterator over the frames (H×W×3 RGB) each time it is called."""


@dataclass(frozen=True)
class JitterStats:
    """One run's jitter (see module docstring)."""

    method: str
    frames: int
    pairs: int
    crop_jitter: float
    crop_jitter_p95: float
    landmark_accel: float
    error_vs_clean: float | None = None

    def line(self) -> str:
        err = "" if self.error_vs_clean is None else f"  error vs clean {self.error_vs_clean:6.2f} px"
        return (f"{self.method:9s} crop jitter {self.crop_jitter:6.2f} px "
                f"(p95 {self.crop_jitter_p95:6.2f})  landmark accel {self.landmark_accel:5.2f} % face"
                f"{err}  [{self.pairs} pairs, {self.frames} frames]")


def subpixel_face_frames(
    n: int,
    width: int = 320,
    height: int = 240,
    *,
    face_size: int = 120,
    amplitude: float = 0.2,
    period: float = 48.0,
    seed: int = 0,
) -> Iterable[np.ndarray]:
    """The astronaut's head (as ``testkit.media.face_clip_frames``) gliding on a smooth path.

    The centre moves as ``(0.5 + amplitude·sin(2πt/period), 0.5 + amplitude/2·sin(4πt/period))``
    in frame fractions, placed with sub-pixel (bilinear) precision, so the true motion is smooth:
    ``face_clip_frames`` rounds positions to whole pixels, and at the crop's magnification
    (about 5× for a 120-px head) those steps alone read as 2–3 px of jitter.
    """
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut()[30:250, 110:330], (face_size, face_size), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    background = rng.normal(110, 12, (height, width, 3)).clip(0, 255).astype(np.uint8)
    background = cv2.GaussianBlur(background, (0, 0), 3)
    for i in range(n):
        phase = 2 * np.pi * i / period
        cx = (0.5 + amplitude * np.sin(phase)) * width
        cy = (0.5 + amplitude / 2 * np.sin(2 * phase)) * height
        m = np.float64([[1, 0, cx - face_size / 2], [0, 1, cy - face_size / 2]])
        frame = background.copy()
        cv2.warpAffine(face, m, (width, height), dst=frame, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_TRANSPARENT)
        yield frame


def pair_jitter(prev_affine: np.ndarray, affine: np.ndarray, motion: np.ndarray, size: int = 512) -> float:
    """Mean displacement of the template points between two aligned crops (crop pixels)."""
    t = template(size)
    full = lambda m: np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])  # noqa: E731
    chain = full(affine) @ full(motion) @ np.linalg.inv(full(prev_affine))
    moved = t @ chain[:2, :2].T + chain[:2, 2]
    return float(np.linalg.norm(moved - t, axis=1).mean())


class ReplayDetector:
    """Wraps a detector: each distinct image is detected once, then answered from memory, so
    several runs over the same frames see identical detections (and cost one run).

    Args:
        detector: the real detector.
        landmark_noise: standard deviation (pixels) of Gaussian noise added once to every
            landmark and box coordinate (for the noisy-landmark experiment).
        seed: noise seed.
    """

    def __init__(self, detector, landmark_noise: float = 0.0, seed: int = 0) -> None:
        self.detector = detector
        self.name = getattr(detector, "name", "detector")
        self.reason = getattr(detector, "reason", "")
        self.noise = float(landmark_noise)
        self._rng = np.random.default_rng(seed)
        self._memo: dict[bytes, list[Face]] = {}
        self.calls = 0

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        keys = [hashlib.blake2b(np.ascontiguousarray(im).tobytes(), digest_size=16).digest() for im in images]
        todo = [i for i, k in enumerate(keys) if k not in self._memo]
        if todo:
            self.calls += 1
            for i, faces in zip(todo, self.detector.detect([images[i] for i in todo])):
                for f in faces:
                    if self.noise:
                        noise = self._rng.normal(0, self.noise, (5, 2))
                        f.landmarks = (f.landmarks + noise).astype(np.float32)
                        f.box = (f.box + self._rng.normal(0, self.noise, 4)).astype(np.float32)
                self._memo[keys[i]] = faces
        return [[dataclasses.replace(f, box=f.box.copy(), landmarks=f.landmarks.copy())
                 for f in self._memo[k]] for k in keys]


def run_face_stage(frames: Iterable[np.ndarray], stage, fps: float = 24.0) -> Iterable[FrameJob]:
    """Feed frames through a face stage one by one; yield its finished jobs in order."""
    tb = Fraction(1, 1000)
    for i, image in enumerate(frames):
        job = FrameJob(Frame(i, int(round(i / fps * 1000)), tb, image))
        yield from stage.process([job])
    yield from stage.flush()


def measure_jitter(
    frames: FrameSource,
    config: FaceConfig,
    store,
    *,
    methods: Sequence[str] = ("off", "gaussian", "one-euro"),
    detector=None,
    clean_detector=None,
    fps: float = 24.0,
) -> list[JitterStats]:
    """Run the face stage over ``frames`` once per smoothing ``method`` and measure jitter.

    Detections are made once (``ReplayDetector``) and shared by every run; ``detect_every``
    is forced to 1 (faces carried by flow would follow the flow measurement by construction).
    ``clean_detector`` (optional) gives the noiseless landmarks for ``error_vs_clean``.
    """
    if detector is None:
        from vidrestore.faces.detect import build_detector

        detector = build_detector(config.detector, store)
    replay = detector if isinstance(detector, ReplayDetector) else ReplayDetector(detector)
    clean = None
    if clean_detector is not None:
        clean = _clean_landmarks(frames, config, store, clean_detector, fps)
    base = dataclasses.replace(config, detect_every=1,
                               identity=dataclasses.replace(config.identity, backend="off"))
    motions: dict[tuple[int, int], np.ndarray | None] = {}
    results = []
    for method in methods:
        cfg = dataclasses.replace(base, smooth=dataclasses.replace(base.smooth, method=method))
        results.append(_measure_one(frames, cfg, store, replay, motions, clean, fps))
    return results


def _clean_landmarks(frames, config, store, detector, fps) -> dict[tuple[int, int], np.ndarray]:
    from vidrestore.pipeline.face_stage import FaceStage

    cfg = dataclasses.replace(config, detect_every=1,
                              identity=dataclasses.replace(config.identity, backend="off"),
                              smooth=dataclasses.replace(config.smooth, method="off"))
    stage = FaceStage(cfg, store, detector=ReplayDetector(detector))
    out = {}
    for job in run_face_stage(frames(), stage, fps):
        for f in job.faces:
            out[(job.index, f.track_id)] = f.landmarks.astype(np.float64)
    return out


def _measure_one(frames, cfg, store, detector, motions, clean, fps) -> JitterStats:
    from vidrestore.pipeline.face_stage import FaceStage

    size = cfg.face_size
    stage = FaceStage(cfg, store, detector=detector)
    jitters, accels, errors = [], [], []
    prev_gray, prev_index = None, None
    history: dict[int, list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = {}
    count = 0
    for job in run_face_stage(frames(), stage, fps):
        count += 1
        gray = to_gray8(job.frame.image)
        for f in job.faces:
            if f.affine is None:
                continue
            past = history.setdefault(f.track_id, [])
            if past and past[-1][0] == job.index - 1 and prev_index == job.index - 1:
                key = (job.index, f.track_id)
                if key not in motions:
                    motions[key] = estimate_face_motion(prev_gray, gray, past[-1][2], past[-1][3])
                if motions[key] is not None:
                    jitters.append(pair_jitter(past[-1][1], f.affine, motions[key], size))
                if len(past) >= 2 and past[-2][0] == job.index - 2:
                    a = f.landmarks - 2 * past[-1][2] + past[-2][2]
                    accels.append(100.0 * float(np.linalg.norm(a, axis=1).mean()) / max(f.size, 1.0))
            if clean is not None and (job.index, f.track_id) in clean:
                ref = clean[(job.index, f.track_id)] @ f.affine[:, :2].T + f.affine[:, 2]
                got = f.landmarks.astype(np.float64) @ f.affine[:, :2].T + f.affine[:, 2]
                errors.append(float(np.linalg.norm(ref - got, axis=1).mean()))
            past.append((job.index, f.affine, f.landmarks.astype(np.float64), f.box.astype(np.float64)))
            del past[:-2]
            f.crop = None
        prev_gray, prev_index = gray, job.index
    stage.close()
    j = np.asarray(jitters) if jitters else np.zeros(1)
    return JitterStats(
        method=cfg.smooth.method,
        frames=count,
        pairs=len(jitters),
        crop_jitter=float(j.mean()),
        crop_jitter_p95=float(np.percentile(j, 95)),
        landmark_accel=float(np.mean(accels)) if accels else 0.0,
        error_vs_clean=float(np.mean(errors)) if errors else None,
    )
