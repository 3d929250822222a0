"""The face stage: find, track, smooth, align and identify the faces of each frame.

It composes the face layer's parts in order: detection in batches (``faces.detect``, at the
detection scale ``--detect-scale`` resolves to for the video's size), scene cuts
(``faces.scene_cut``), tracking (``faces.track``), the face cache (``faces.cache``),
verification per track (``faces.verify``: a track's faces are restored once a detection of
it passes the second opinion; until then they are left untouched and counted as
``rejected``), per-track identities (``faces.identity``), temporal smoothing
(``faces.smooth``) and alignment (``faces.align``).

``FaceStage`` holds frames back twice, both bounded: up to ``batch`` detected frames wait so
the detector runs on a batch, and every frame waits until the smoothing window's future half
(``smooth.delay`` frames) has been tracked. Jobs come out exactly once, in order; ``flush()``
gives out the rest at the end of the stream.

Non-square pixels (an anamorphic frame, ``pixel_aspect`` ≠ 1): detection, tracking,
smoothing and identity run on a square-pixel view of each frame (one axis enlarged), so the
detector and the alignment see the person's real proportions; the view → frame scaling is
composed into each face's frame → crop affine (``faces.geometry``), so the crop is sampled
once from the stored frame, unsqueezed, and the paste's inverse warp puts the restored face
back squeezed. Boxes and landmarks handed on are in frame pixels.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from vidrestore.config import to_mapping
from vidrestore.errors import InputError, MissingWeightsError, UsageError
from vidrestore.faces.align import estimate_affine, warp_face
from vidrestore.faces.cache import FaceCache
from vidrestore.faces.cache_session import CacheSession
from vidrestore.faces.config import FaceConfig
from vidrestore.faces.detect.batching import detect_frames, score_floor
from vidrestore.faces.face import Face
from vidrestore.faces.geometry import compose, grid_scale, inverse, map_points, square_pixel_scale
from vidrestore.faces.identity import (
    FaceEncoder,
    TrackIdentities,
    build_encoder,
    conditioning_backend,
    reference_identity,
)
from vidrestore.faces.report import FaceReport
from vidrestore.faces.scene_cut import SceneCutDetector
from vidrestore.faces.smooth import build_smoother
from vidrestore.faces.track import FaceTracker
from vidrestore.faces.verify import FaceVerifier, TrackVerdicts, build_verifier

from .contracts import FrameJob

Log = Callable[[str], None]


class FaceStage:
    """Detection, tracking, temporal smoothing, alignment and identity for each frame.

    After it, every face of a job has ``track_id``, smoothed ``landmarks`` and ``box``, and
    unless ``skip`` is set (``"too small"``, or ``"rejected"`` with the verifier's reason in
    ``rejected``) an ``affine`` and a ``crop`` (face_size² float32 RGB in [0, 1]);
    ``identity`` is the track's 512-d ArcFace vector when an ArcFace encoder is in use, or the
    vector of the reference photo the track matches (``references``).

    Args:
        config: the face settings.
        store: where detector and identity weights are found.
        device: torch device for the networks.
        identity_needed: the restorer is conditioned on identity: a 512-d ArcFace encoder is
            required (MissingWeightsError without its weights).
        references: name → H×W×3 RGB photo of a person (``--reference NAME=IMAGE``); each
            photo's largest face's vector conditions the tracks that match it (cosine at
            least ``IdentityConfig.reference_threshold``), other tracks keep their own.
            Needs an ArcFace encoder too.
        recognizer: the recognizer the restorer's checkpoint was trained with (its
            ``Recognizer``; None: any ArcFace present), see ``conditioning_backend``.
        cache: the video's face cache: read when it holds a complete entry for these
            settings (the detector is then never run), else written during this run and
            published by ``close()`` after ``flush()``.
        cache_dir, source: instead of ``cache``: the folder to keep the cache in (entries go
            to ``cache_dir/.vidrestore-faces/``) and the input video it describes.
        log: receives one-line messages (choices made, cache use).
        detector: a ready detector to use instead of building ``config.detector``.
        verifier: a ready ``faces.verify.FaceVerifier`` to use instead of building
            ``config.verify.method`` (``False``: none).
        pixel_aspect: width / height of a pixel of the frames (upright), 1 for square
            pixels (module doc).
        frames_key: what the frames depend on beyond the source file (deinterlacing, pixel
            resampling): part of the face cache's key.
        face_ops: device face ops (``faces.device.DeviceFaceOps``): a frame with faces to
            restore goes to the device once (``job.device``) and its crops are made there,
            as tensors; None: OpenCV crops on the host.

    Attributes:
        identities: the per-track identity vectors (``faces.identity.TrackIdentities``).
        seconds: busy seconds of its parts, for ``bench``: ``detect`` (detector calls),
            ``verify`` (the verifier's calls) and ``align`` (smoothed landmarks → affine →
            warped crop); the rest of the stage's time is tracking, scene cuts and identity.
    """

    name = "faces"

    def __init__(
        self,
        config: FaceConfig,
        store,
        device: str = "cpu",
        *,
        identity_needed: bool = False,
        references: Mapping[str, np.ndarray] | None = None,
        recognizer=None,
        cache: FaceCache | None = None,
        cache_dir: str | Path | None = None,
        source: str | Path | None = None,
        log: Log | None = None,
        detector=None,
        verifier=None,
        pixel_aspect: float = 1.0,
        frames_key: str = "",
        face_ops=None,
    ) -> None:
        self.config = config
        self.face_ops = face_ops
        self.pixel_aspect = float(pixel_aspect)
        self.frames_key = frames_key
        self._square = square_pixel_scale(self.pixel_aspect) if self.pixel_aspect != 1 else None
        self._to_view: np.ndarray | None = None  # frame → square view, set at the first frame
        self._log = log or (lambda _msg: None)
        if detector is None:
            from vidrestore.faces.detect import build_detector

            detector = build_detector(config.detector, store, device)
        self.detector = detector
        self.detector_reason = getattr(detector, "reason", "")
        if verifier is None:
            verifier, self.verifier_reason = choose_verifier(config)
        else:
            verifier, self.verifier_reason = (verifier or None), "given"
        self.verdicts = TrackVerdicts(verifier, config.verify.every, config.verify.grow, config.min_face)
        self._scale: float | None = None
        references = dict(references or {})
        self.encoder, self.encoder_reason = identity_encoder(
            config, store, device, conditioning=identity_needed or bool(references), recognizer=recognizer)
        vectors = {}
        for name, photo in references.items():
            try:
                vectors[name] = reference_identity(photo, detector, self.encoder)
            except InputError as exc:
                raise InputError(f"reference {name!r}: {exc}") from None
        self.identities = TrackIdentities(self.encoder, every=config.identity.every,
                                          improve=config.identity.improve, min_face=config.min_face,
                                          references=vectors,
                                          reference_threshold=config.identity.reference_threshold)
        use_id = self.encoder is not None and config.track.identity_weight > 0
        self.tracker = FaceTracker(
            config.track,
            self.encoder.match_threshold if use_id else None,
            self.encoder.match_margin if use_id else 0.15,
        )
        self.smoother = build_smoother(config.smooth)
        self.cuts = SceneCutDetector(config.track.scene_cut)
        self.report_data = FaceReport()
        self.seconds: dict[str, float] = {"detect": 0.0, "verify": 0.0, "align": 0.0}
        self._incoming: list[tuple[FrameJob, bool]] = []  # job, scheduled for detection?
        self._pending: deque[tuple[FrameJob, bool, bool]] = deque()
        self._frontier = -1
        self._last_detect: int | None = None
        self._finished = False
        self._closed = False
        if cache is None and cache_dir is not None and source is not None:
            cache = FaceCache(source, Path(cache_dir) / ".vidrestore-faces")
        self._cache = CacheSession(cache, self.cache_settings(), self._log) if cache is not None else None
        if self.cache_hit:
            for tid, vec in self._cache.identities(self.encoder_name).items():
                self.identities.set(tid, vec)

    # -- what it is ----------------------------------------------------------------------

    @property
    def references(self) -> dict[str, np.ndarray]:
        """The reference photos' identity vectors by name (``--reference``)."""
        return self.identities.references

    @property
    def encoder_name(self) -> str | None:
        return self.encoder.name if self.encoder is not None else None

    @property
    def detector_name(self) -> str:
        return str(getattr(self.detector, "name", type(self.detector).__name__))

    @property
    def delay(self) -> int:
        """Frames a job is held back for smoothing (batching adds up to ``batch × K``)."""
        return self.smoother.delay

    @property
    def cache_hit(self) -> bool:
        return self._cache is not None and self._cache.hit

    @property
    def cache_state(self) -> str | None:
        """``hit``, ``writing``, ``written`` or ``dropped``; None without a face cache."""
        return self._cache.state if self._cache is not None else None

    @property
    def summary(self) -> str:
        """One line for the CLI's log."""
        c = self.config
        smooth = c.smooth.method
        if smooth == "gaussian":
            smooth += f" σ={c.smooth.sigma:g} (delay {self.delay})"
        if self.references:
            ident = (f"{self.encoder_name} (references {', '.join(self.references)}: tracks at cosine "
                     f">= {self.identities.reference_threshold:g})")
        elif self.encoder is None:
            ident = "off"
        else:
            ident = self.encoder_name + ("" if self.encoder.conditioning else " (tracking only)")
        source = "face cache" if self.cache_hit else f"{self.detector_name} ({self.detector_reason})" \
            if self.detector_reason else self.detector_name
        scale = "auto (by the video's size)" if c.detect_scale == "auto" else f"{c.detect_scale:g}"
        return (f"faces: {source}, detect scale {scale}, detect every {c.detect_every}, "
                f"verify {self.verifier_name} ({self.verifier_reason}), smoothing {smooth}, "
                f"identity {ident}")

    @property
    def verifier_name(self) -> str:
        v = self.verdicts.verifier
        return "off" if v is None else str(getattr(v, "name", type(v).__name__))

    def cache_settings(self) -> dict[str, Any]:
        """The settings that change which faces and tracks a run finds (the cache key)."""
        c = self.config
        uses_id = self.encoder is not None and c.track.identity_weight > 0
        return {
            "detector": self.detector_name,
            "detect_every": c.detect_every,
            "detect_scale": _scale_key(c.detect_scale),
            "score_threshold": score_floor(self.detector, c.score_threshold),
            "track": to_mapping(c.track),
            "track_identity": self.encoder_name if uses_id else None,
            "identity_schedule": [c.identity.every, c.identity.improve] if uses_id else None,
            **({"frames": self.frames_key} if self.frames_key else {}),
            **({"pixel_aspect": round(self.pixel_aspect, 6)} if self._square else {}),
        }

    def report(self) -> dict[str, Any]:
        """The face report (see ``vidrestore.faces.report``) as plain data."""
        embeddings = {t: self.identities.count(t) for t in self.identities.track_ids()}
        return self.report_data.to_dict(
            detector=self.detector_name,
            detector_reason=self.detector_reason,
            detect_scale=self._scale,
            verifier=self.verifier_name,
            verifier_reason=self.verifier_reason,
            verifier_checks=self.verdicts.checks,
            identity_backend=self.encoder_name,
            identity_reason=self.encoder_reason,
            references=list(self.references),
            reference_threshold=self.identities.reference_threshold if self.references else None,
            face_cache=self.cache_state,
            settings=to_mapping(self.config),
            identity=self.encoder_name,
            embeddings=embeddings,
            track_references={t: (m.name if m.matched else None, m.cosine)
                                 for t, m in self.identities.matches().items()},
        )

    # -- the Stage protocol --------------------------------------------------------------

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameJob]:
        """Take the next jobs (in order); return the finished ones (in order)."""
        if self._finished:
            raise RuntimeError("FaceStage.process after flush")
        for job in jobs:
            self._admit(job)
        if self.cache_hit or sum(d for _, d in self._incoming) >= self.config.batch:
            self._track_incoming()
        return self._release(final=False)

    def flush(self) -> list[FrameJob]:
        """The stream ended: track what waits for a batch and return every held job."""
        if self._finished:
            return []
        self._track_incoming()
        out = self._release(final=True)
        self._finished = True
        return out

    def close(self, success: bool = True, *, whole_video: bool = True) -> None:
        """Publish the face cache if the stream was complete (flushed), ``success`` and it
        held the ``whole_video`` (not a run stopped after some frames), else drop it; free
        resources."""
        if self._closed:
            return
        self._closed = True
        if self._cache is not None:
            vectors = {t: v for t in self.identities.track_ids() if (v := self.identities.vector(t)) is not None}
            self._cache.close(self._finished and success and whole_video, vectors, self.encoder_name,
                              self.detector_name)

    def __enter__(self) -> "FaceStage":
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        self.close(success=exc_type is None)

    # -- detection and tracking ----------------------------------------------------------

    def _admit(self, job: FrameJob) -> None:
        if self._scale is None:
            self._scale = self.config.scale_for(*job.frame.image.shape[:2])
            if self.config.detect_scale == "auto" and self._scale != 1.0:
                h, w = job.frame.image.shape[:2]
                self._log(f"faces: detect scale auto: {w}x{h} frames are detected at {self._scale:g}x")
        k = self.config.detect_every
        detect = self._last_detect is None or job.index - self._last_detect >= k
        if detect and not self.cache_hit:
            self._last_detect = job.index
        self._incoming.append((job, detect and not self.cache_hit))

    def _track_incoming(self) -> None:
        incoming, self._incoming = self._incoming, []
        if self.cache_hit:
            for job, _ in incoming:
                self._replay(job)
            return
        views = [self._view(job.frame.image) for job, _ in incoming]
        found = iter(self._detect([view for view, (_, d) in zip(views, incoming) if d]))
        for (job, detect), image in zip(incoming, views):
            # Cuts are judged here, in order, with the live tracks' faces masked out; a cut
            # on a frame the schedule skipped is detected on its own.
            cut = self.cuts(image, self.tracker.boxes())
            detections = next(found) if detect else None
            if cut and not detect:
                detections, detect = self._detect([image])[0], True
            embeddings = self.identities.frame(image)
            job.faces = self.tracker.update(job.index, image, detections, cut=cut, embed=embeddings)
            if self._cache is not None:
                self._cache.record(job.index, job.faces, detect, cut)
            if detect:
                for tid, vector in self.identities.observe(job.index, job.faces, embeddings).items():
                    self.tracker.set_identity(tid, vector)
            self._verify(job, detect, image)
            self._tracked(job, detect, cut)

    def _replay(self, job: FrameJob) -> None:
        job.faces, detected, cut = self._cache.replay(job.index)
        if detected:
            view = self._view(job.frame.image)
            self.identities.observe(job.index, job.faces, self.identities.frame(view))
        self._verify(job, detected, view if detected else None)
        self._tracked(job, detected, cut)

    def _verify(self, job: FrameJob, detected: bool, view: np.ndarray | None) -> None:
        """Second opinions on ``job``'s faces, judged on ``view`` (the square-pixel frame their
        boxes are in; ``None`` where the frame was not detected on, so nothing is judged)."""
        start = time.perf_counter()
        self.verdicts.observe(job.index, view if view is not None else job.frame.image, job.faces, detected)
        self.seconds["verify"] += time.perf_counter() - start

    def _detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        start = time.perf_counter()
        try:
            return detect_frames(self.detector, images, batch=self.config.batch,
                                 scale=self._scale if self._scale is not None else 1.0,
                                 score_threshold=self.config.score_threshold)
        finally:
            self.seconds["detect"] += time.perf_counter() - start

    def _tracked(self, job: FrameJob, detected: bool, cut: bool) -> None:
        t = job.frame.time
        time_s = t if t is not None else job.index / 25.0
        for face in job.faces:
            self.smoother.add(face.track_id, job.index, time_s, face.points())
        self._frontier = job.index
        self._pending.append((job, detected, cut))

    # -- smoothing, alignment, output ----------------------------------------------------

    def _release(self, final: bool) -> list[FrameJob]:
        out = []
        while self._pending and (final or self._pending[0][0].index <= self._frontier - self.smoother.delay):
            job, detected, cut = self._pending.popleft()
            start = time.perf_counter()
            self._align(job)
            self.seconds["align"] += time.perf_counter() - start
            self.report_data.add_frame(job.index, job.faces, detected, cut)
            self.smoother.discard_before(job.index + 1)
            out.append(job)
        return out

    def _align(self, job: FrameJob) -> None:
        size = self.config.face_size
        image = job.frame.image
        view = self._view(image) if self._square is None or self.encoder is not None else None
        to_view = self._view_transform(image) if self._square is not None else None
        for face in job.faces:
            points = self.smoother.get(face.track_id, job.index)
            face.landmarks = points[:5].astype(np.float32)
            face.box = points[5:7].reshape(4).astype(np.float32)
            if face.size < self.config.min_face:
                face.skip = "too small"
            elif (reason := self.verdicts.verdict(face.track_id)) is not None:
                face.skip, face.rejected = "rejected", reason
            else:
                face.affine = estimate_affine(face.landmarks, size)
                if to_view is not None:  # sample the stored frame through the view
                    face.affine = compose(face.affine, to_view)
                if self.face_ops is None:
                    face.crop = warp_face(image, face.affine, size)
                face.identity = self.identities.conditioning(face, view, job.index)
            if to_view is not None:  # view pixels → frame pixels for those that follow
                back = inverse(to_view)
                face.landmarks = map_points(back, face.landmarks)
                face.box = map_points(back, face.box.reshape(2, 2)).reshape(4)
        aligned = [face for face in job.faces if face.affine is not None and face.skip is None]
        if self.face_ops is not None and aligned:
            job.device = self.face_ops.upload(image)
            for face, crop in zip(aligned, self.face_ops.align(job.device, [f.affine for f in aligned], size)):
                face.crop = crop

    def _view(self, image: np.ndarray) -> np.ndarray:
        """The square-pixel view of a frame (the frame itself for square pixels)."""
        if self._square is None:
            return image
        height, width = image.shape[:2]
        self._view_transform(image)
        size = (int(round(self._to_view[0, 0] * width)), int(round(self._to_view[1, 1] * height)))
        return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)

    def _view_transform(self, image: np.ndarray) -> np.ndarray:
        """Frame → square view (2, 3), the exact scaling of the view's rounded size."""
        if self._to_view is None:
            height, width = image.shape[:2]
            sx, sy = self._square
            size = (max(int(round(width * sx)), 1), max(int(round(height * sy)), 1))
            self._to_view = grid_scale(size[0] / width, size[1] / height)
        return self._to_view


def _scale_key(scale) -> str | float:
    """``detect_scale`` as the face cache's key holds it: ``auto`` with its rule (the factor
    it resolves to follows from the video's size, itself part of the key)."""
    if scale != "auto":
        return float(scale)
    from vidrestore.faces.detect.batching import AUTO_MAX_SCALE, AUTO_MIN_SIDE

    return f"auto:{AUTO_MIN_SIDE}:{AUTO_MAX_SCALE:g}"


def choose_verifier(config: FaceConfig) -> tuple[FaceVerifier | None, str]:
    """The run's verifier (``config.verify.method``) and why; ``auto`` without dlib runs
    without one, saying so; an explicit dlib kind without dlib raises MissingWeightsError."""
    method = config.verify.method
    try:
        verifier = build_verifier(method)
    except MissingWeightsError as exc:
        if method != "auto":
            raise
        return None, f"auto: {exc}"
    if verifier is None:
        return None, "requested"
    return verifier, "auto: the measured best" if method == "auto" else "requested"


def identity_encoder(config: FaceConfig, store, device, *, conditioning: bool,
                      recognizer=None) -> tuple[FaceEncoder | None, str]:
    """The identity encoder of a run and why; with ``conditioning``, one that gives ArcFace
    vectors, the ``recognizer``'s when given (or UsageError / MissingWeightsError)."""
    backend = config.identity.backend
    if conditioning:
        backend = conditioning_backend(backend, store, recognizer)
    encoder, reason = build_encoder(backend, store, device)
    if conditioning and (encoder is None or not encoder.conditioning):
        raise UsageError(f"identity backend {backend!r} gives no ArcFace vectors for conditioning")
    return encoder, reason
