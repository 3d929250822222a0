"""The pipeline's face stages: ``FaceStage`` (find, track, smooth, align, identify) and
``PasteStage`` (blend restored faces back, optionally draw the overlay).

``FaceStage`` holds frames back twice, both bounded: up to ``batch`` detected frames wait so
the detector runs on a batch, and every frame waits until the smoothing window's future half
(``smooth.delay`` frames) has been tracked. Jobs come out exactly once, in order; ``flush()``
gives out the rest at the end of the stream.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from ..config import to_mapping
from ..errors import UsageError
from ..stage import FrameJob
from .align import estimate_affine, warp_face
from .cache import CachedFaces, CacheWriter, FaceCache
from .config import FaceConfig
from .face import Face
from .identity import (
    FaceEncoder,
    IdentityCache,
    align_arcface,
    build_encoder,
    conditioning_backend,
    face_quality,
    reference_identity,
)
from .report import FaceReport
from .smooth import build_smoother
from .track import FaceTracker, SceneCutDetector

Log = Callable[[str], None]


def _as_uint8(image: np.ndarray) -> np.ndarray:
    return (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else np.ascontiguousarray(image)


def _points(face: Face) -> np.ndarray:
    return np.vstack([np.asarray(face.landmarks, np.float64).reshape(5, 2),
                      np.asarray(face.box, np.float64).reshape(2, 2)])


class FaceStage:
    """Detection, tracking, temporal smoothing, alignment and identity for each frame.

    After it, every face of a job has ``track_id``, smoothed ``landmarks`` and ``box``, and
    unless ``skip`` is set (``"too small"``) an ``affine`` and a ``crop`` (face_size² float32
    RGB in [0, 1]); ``identity`` is the track's 512-d ArcFace vector when an ArcFace encoder
    (or a reference photo) is in use.

    Args:
        config: the face settings.
        store: where detector, identity and mask weights are found.
        device: torch device for the networks.
        identity_needed: the restorer is conditioned on identity: a 512-d ArcFace encoder is
            required (MissingWeightsError without its weights).
        reference_image: H×W×3 RGB photo whose largest face's vector is used for every face
            (the ``--reference`` option); needs an ArcFace encoder too.
        cache: the video's face cache: read when it holds a complete entry for these
            settings (the detector is then never run), else written during this run and
            published by ``close()`` after ``flush()``.
        cache_dir, source: instead of ``cache``: the folder to keep the cache in (entries go
            to ``cache_dir/.vidrestore-faces/``) and the input video it describes.
        log: receives one-line messages (choices made, cache use).
        detector: a ready detector to use instead of building ``config.detector``.

    Attributes:
        masker: the paste mask maker for ``PasteStage`` (``config.mask``), built on first use.
        seconds: busy seconds of its parts, for ``bench``: ``detect`` (detector calls) and
            ``align`` (smoothed landmarks → affine → warped crop); the rest of the stage's
            time is tracking, scene cuts and identity.
    """

    name = "faces"

    def __init__(
        self,
        config: FaceConfig,
        store,
        device: str = "cpu",
        *,
        identity_needed: bool = False,
        reference_image: np.ndarray | None = None,
        cache: FaceCache | None = None,
        cache_dir: str | Path | None = None,
        source: str | Path | None = None,
        log: Log | None = None,
        detector=None,
    ) -> None:
        self.config = config
        self.store = store
        self.device = device
        self._masker = None
        if cache is None and cache_dir is not None and source is not None:
            cache = FaceCache(source, Path(cache_dir) / ".vidrestore-faces")
        self._log = log or (lambda _msg: None)
        if detector is None:
            from .detect import build_detector

            detector = build_detector(config.detector, store, device)
        self.detector = detector
        self.detector_reason = getattr(detector, "reason", "")
        conditioning = identity_needed or reference_image is not None
        self.encoder, self.encoder_reason = self._build_encoder(store, conditioning)
        self.reference: np.ndarray | None = None
        if reference_image is not None:
            self.reference = reference_identity(reference_image, detector, self.encoder)
        use_id = self.encoder is not None and config.track.identity_weight > 0
        self.tracker = FaceTracker(
            config.track,
            self.encoder.match_threshold if use_id else None,
            self.encoder.match_margin if use_id else 0.15,
        )
        self.identities = IdentityCache(config.identity.every, config.identity.improve)
        self.smoother = build_smoother(config.smooth)
        self.cuts = SceneCutDetector(config.track.scene_cut)
        self.report_data = FaceReport()
        self.detector_calls = 0
        self.seconds: dict[str, float] = {"detect": 0.0, "align": 0.0}
        self._incoming: list[tuple[FrameJob, bool]] = []  # job, scheduled for detection?
        self._pending: deque[tuple[FrameJob, bool, bool]] = deque()
        self._frontier = -1
        self._last_detect: int | None = None
        self._finished = False
        self._closed = False
        self._cached: CachedFaces | None = None
        self._cache_miss_said = False
        self._writer: CacheWriter | None = None
        self.cache_state: str | None = None  # hit, writing, written, dropped
        if cache is not None:
            settings = self.cache_settings()
            self._cached = cache.load(settings)
            if self._cached is not None:
                self.cache_state = "hit"
                self._log(f"faces: reusing the face cache {self._cached.folder}")
                if self._cached.identity_backend == self.encoder_name:
                    for tid, vec in self._cached.identities.items():
                        self.identities.set(tid, vec)
            else:
                self._writer = cache.writer(settings)
                self.cache_state = "writing"

    # -- set-up ------------------------------------------------------------------------

    def _build_encoder(self, store, conditioning: bool) -> tuple[FaceEncoder | None, str]:
        backend = self.config.identity.backend
        if conditioning:
            backend = conditioning_backend(backend, store)
        encoder, reason = build_encoder(backend, store, self.device)
        if conditioning and (encoder is None or not encoder.conditioning):
            raise UsageError(f"identity backend {backend!r} gives no ArcFace vectors for conditioning")
        return encoder, reason

    @property
    def masker(self):
        if self._masker is None:
            from .paste import build_masker

            self._masker = build_masker(self.config.mask, self.store, self.device)
        return self._masker

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
        return self._cached is not None

    @property
    def summary(self) -> str:
        """One line for the CLI's log."""
        c = self.config
        smooth = c.smooth.method
        if smooth == "gaussian":
            smooth += f" σ={c.smooth.sigma:g} (delay {self.delay})"
        if self.reference is not None:
            ident = f"{self.encoder_name} (reference photo)"
        elif self.encoder is None:
            ident = "off"
        else:
            ident = self.encoder_name + ("" if self.encoder.conditioning else " (tracking only)")
        source = "face cache" if self.cache_hit else f"{self.detector_name} ({self.detector_reason})" \
            if self.detector_reason else self.detector_name
        return (f"faces: {source}, detect every {c.detect_every}, smoothing {smooth}, "
                f"identity {ident}")

    def cache_settings(self) -> dict[str, Any]:
        """The settings that change which faces and tracks a run finds (the cache key)."""
        c = self.config
        uses_id = self.encoder is not None and c.track.identity_weight > 0
        return {
            "detector": self.detector_name,
            "detect_every": c.detect_every,
            "detect_scale": c.detect_scale,
            "score_threshold": c.score_threshold,
            "track": to_mapping(c.track),
            "track_identity": self.encoder_name if uses_id else None,
            "identity_schedule": [c.identity.every, c.identity.improve] if uses_id else None,
        }

    # -- the Stage protocol ------------------------------------------------------------

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameJob]:
        """Take the next jobs (in order); return the finished ones (in order)."""
        if self._finished:
            raise RuntimeError("FaceStage.process after flush")
        for job in jobs:
            self._admit(job)
        if self._cached is not None or sum(d for _, d in self._incoming) >= self.config.batch:
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
        if self._writer is not None:
            if self._finished and success and whole_video:
                vectors = {t: v for t in self.identities.track_ids()
                           if (v := self.identities.vector(t)) is not None}
                path = self._writer.commit(vectors, self.encoder_name, detector=self.detector_name)
                self.cache_state = "written"
                self._log(f"faces: face cache written to {path}")
            else:
                self._writer.abort()
                self.cache_state = "dropped"
            self._writer = None
        if self._cached is not None:
            self._cached.close()

    def __enter__(self) -> "FaceStage":
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        self.close(success=exc_type is None)

    def report(self) -> dict[str, Any]:
        """The face report (see ``vidrestore.faces.report``) as plain data."""
        embeddings = {t: self.identities.count(t) for t in self.identities.track_ids()}
        return self.report_data.to_dict(
            detector=self.detector_name,
            detector_reason=self.detector_reason,
            identity_backend=self.encoder_name,
            identity_reason=self.encoder_reason,
            reference_identity=self.reference is not None,
            face_cache=self.cache_state,
            settings=to_mapping(self.config),
            identity=self.encoder_name,
            embeddings=embeddings,
        )

    # -- detection and tracking --------------------------------------------------------

    def _admit(self, job: FrameJob) -> None:
        k = self.config.detect_every
        detect = self._last_detect is None or job.index - self._last_detect >= k
        if detect and self._cached is None:
            self._last_detect = job.index
        self._incoming.append((job, detect and self._cached is None))

    def _track_incoming(self) -> None:
        incoming, self._incoming = self._incoming, []
        if self._cached is not None:
            for job, _ in incoming:
                entry = self._cached.frame(job.index)
                if entry is None and not self._cache_miss_said:
                    self._cache_miss_said = True
                    self._log(f"faces: warning: the face cache {self._cached.folder} has no frame "
                              f"{job.index}; such frames are left as they are (delete the cache "
                              "entry to detect again)")
                faces, detected, cut = entry if entry is not None else ([], False, False)
                job.faces = faces
                self._after_tracking(job, detected, cut)
            return
        found = iter(self._detect([job.frame.image for job, d in incoming if d]))
        for job, detect in incoming:
            image = job.frame.image
            # Cuts are judged here, in order, with the live tracks' faces masked out; a cut
            # on a frame the schedule skipped is detected on its own.
            cut = self.cuts(image, self.tracker.boxes())
            detections = next(found) if detect else None
            if cut and not detect:
                detections, detect = self._detect([image])[0], True
            memo: dict[int, np.ndarray | None] = {}

            def embed(face: Face, image=image, memo=memo) -> np.ndarray | None:
                if id(face) not in memo:
                    memo[id(face)] = self.encoder.embed(image, [face])[0] if self.encoder else None
                return memo[id(face)]

            job.faces = self.tracker.update(job.index, image, detections, cut=cut, embed=embed)
            if self._writer is not None:
                self._writer.add(job.index, job.faces, detect, cut)
            self._after_tracking(job, detect, cut, memo)

    def _detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        start = time.perf_counter()
        try:
            return self._detect_batches(images)
        finally:
            self.seconds["detect"] += time.perf_counter() - start

    def _detect_batches(self, images: list[np.ndarray]) -> list[list[Face]]:
        out: list[list[Face]] = []
        scale = self.config.detect_scale
        for start in range(0, len(images), self.config.batch):
            batch = [_as_uint8(im) for im in images[start : start + self.config.batch]]
            if scale != 1.0:
                interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
                batch = [cv2.resize(im, None, fx=scale, fy=scale, interpolation=interp) for im in batch]
            self.detector_calls += 1
            for faces in self.detector.detect(batch):
                kept = []
                for f in faces:
                    if f.score < self.config.score_threshold:
                        continue
                    if scale != 1.0:
                        f.box = (np.asarray(f.box, np.float32) / scale).astype(np.float32)
                        f.landmarks = (np.asarray(f.landmarks, np.float32) / scale).astype(np.float32)
                    kept.append(f)
                out.append(kept)
        return out

    def _after_tracking(self, job: FrameJob, detected: bool, cut: bool, memo: dict | None = None) -> None:
        t = job.frame.time
        time = t if t is not None else job.index / 25.0
        for face in job.faces:
            self.smoother.add(face.track_id, job.index, time, _points(face))
        if detected and self.encoder is not None and self.reference is None:
            self._update_identities(job, memo or {})
        self._frontier = job.index
        self._pending.append((job, detected, cut))

    def _update_identities(self, job: FrameJob, memo: dict[int, np.ndarray | None]) -> None:
        image = job.frame.image
        wanted, qualities = [], []
        for face in job.faces:
            if face.size < self.config.min_face:
                continue  # views too small to tell anyone apart
            q = face_quality(align_arcface(image, face.landmarks), face.score, face.size)
            if self.identities.wants(face.track_id, job.index, q):
                wanted.append(face)
                qualities.append(q)
        todo = [f for f in wanted if memo.get(id(f)) is None]
        if todo:
            for face, vec in zip(todo, self.encoder.embed(image, todo)):
                memo[id(face)] = vec
        for face, q in zip(wanted, qualities):
            self.identities.add(face.track_id, job.index, memo[id(face)], q)
            self.tracker.set_identity(face.track_id, self.identities.vector(face.track_id))

    # -- smoothing, alignment, output --------------------------------------------------

    def _release(self, final: bool) -> list[FrameJob]:
        out = []
        while self._pending and (final or self._pending[0][0].index <= self._frontier - self.smoother.delay):
            job, detected, cut = self._pending.popleft()
            start = time.perf_counter()
            self._finish(job)
            self.seconds["align"] += time.perf_counter() - start
            self.report_data.add_frame(job.index, job.faces, detected, cut)
            self.smoother.discard_before(job.index + 1)
            out.append(job)
        return out

    def _finish(self, job: FrameJob) -> None:
        size = self.config.face_size
        image = job.frame.image
        for face in job.faces:
            points = self.smoother.get(face.track_id, job.index)
            face.landmarks = points[:5].astype(np.float32)
            face.box = points[5:7].reshape(4).astype(np.float32)
            if face.size < self.config.min_face:
                face.skip = "too small"
                continue
            face.affine = estimate_affine(face.landmarks, size)
            face.crop = warp_face(image, face.affine, size)
            if self.reference is not None:
                face.identity = self.reference
            elif self.encoder is not None and self.encoder.conditioning:
                if self.identities.vector(face.track_id) is None:
                    # A track whose detections were all too small to embed has grown: embed now.
                    q = face_quality(align_arcface(image, face.landmarks), face.score, face.size)
                    self.identities.add(face.track_id, job.index, self.encoder.embed(image, [face])[0], q)
                face.identity = self.identities.vector(face.track_id)


class PasteStage:
    """Blends each face's ``restored`` crop into its frame (``paste_faces``), records the
    changed regions on the frame (``Frame.touch``: the writer re-converts only those), then
    drops the face's crops to free memory; with ``overlay`` draws boxes, landmarks and track
    ids after pasting. Holds nothing back.

    Args:
        masker: the paste mask maker (``paste.build_masker``); None: the template mask.
        overlay: draw the debugging overlay.
        config: ``paste.PasteConfig`` (interpolation, template mask), or None for defaults.
    """

    name = "paste"

    def __init__(self, masker=None, *, overlay: bool = False, config=None) -> None:
        self.masker = masker
        self.overlay = overlay
        self.config = config

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameJob]:
        from .paste import paste_faces

        for job in jobs:
            if any(f.restored is not None for f in job.faces):
                for box in paste_faces(job.frame.image, job.faces, self.masker, self.config):
                    job.frame.touch(*box)
            if self.overlay and job.faces:
                from .overlay import draw_overlay

                draw_overlay(job.frame.image, job.faces)
                job.frame.touch_all()
            for face in job.faces:
                face.crop = None
                face.restored = None
        return list(jobs)

    def flush(self) -> list[FrameJob]:
        return []
