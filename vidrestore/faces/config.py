"""The face stage's settings: detection, tracking, smoothing and identity.

Every field has a default that works for an ordinary video; the CLI and YAML presets fill
``FaceConfig`` through ``vidrestore.config.from_mapping`` (unknown keys are an error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from vidrestore.errors import ConfigError
from vidrestore.names import DetectorName, IdentityBackendName, SmoothName, VerifierName


@dataclass(frozen=True)
class TrackConfig:
    """How detections are linked into tracks.

    A detection and a track are compared by a weighted mean of similarities in [0, 1]: box
    IoU, landmark closeness (1 − mean landmark distance / face size, floored at 0) and, when
    both have an embedding, identity (cosine similarity mapped through the encoder's match
    threshold). Terms that are unavailable drop out of the mean.

    Attributes:
        iou_weight: weight of box IoU (against the track's predicted box).
        landmark_weight: weight of landmark closeness.
        identity_weight: weight of identity similarity.
        min_similarity: a pair scoring below this is never linked.
        max_gap: frames a track survives without a detection (occlusion, missed detection)
            before it ends; a face seen again within the gap keeps its track id.
        scene_cut: colour-histogram distance (Hellinger, 0 = same, 1 = disjoint) between
            consecutive frames above which the frame starts a new shot: every track ends and
            the frame is detected even when ``detect_every`` would skip it. 1.0 turns it off.
        flow: on frames that are not detected, move each live face with Lucas–Kanade optical
            flow of points on the face (True), or keep it where the last frame had it (False).
    """

    iou_weight: float = 0.5
    landmark_weight: float = 0.3
    identity_weight: float = 0.2
    min_similarity: float = 0.2
    max_gap: int = 12
    scene_cut: float = 0.3
    flow: bool = True

    def __post_init__(self) -> None:
        if min(self.iou_weight, self.landmark_weight, self.identity_weight) < 0:
            raise ConfigError("track weights must be >= 0")
        if self.iou_weight + self.landmark_weight <= 0:
            raise ConfigError("track: iou_weight + landmark_weight must be > 0")
        if self.max_gap < 0:
            raise ConfigError("track.max_gap must be >= 0")
        if not 0.0 < self.scene_cut <= 1.0:
            raise ConfigError("track.scene_cut must be in (0, 1]")


@dataclass(frozen=True)
class SmoothConfig:
    """Temporal smoothing of each track's landmarks (and so of its alignment).

    Attributes:
        method: ``gaussian``: a centred window, a Gaussian-weighted local linear fit (plain
            Gaussian smoothing inside a track, unbiased for steady motion at its ends too);
            the stage holds frames back by ``radius``. ``one-euro``: the causal One-Euro
            filter (no delay; its cut-off rises with speed, so it follows real motion).
            ``off``: the detector's landmarks as they are.
        sigma: Gaussian standard deviation, frames.
        radius: half window, frames (= the delay); None means ceil(2.5 σ).
        order: degree of the Gaussian-weighted local fit (0 plain Gaussian mean, 1 linear,
            2 quadratic: follows accelerating faces without lag).
        min_cutoff: One-Euro cut-off at rest, Hz.
        beta: One-Euro speed coefficient, per (face sizes per second).
        d_cutoff: One-Euro cut-off of the speed estimate, Hz.
    """

    method: SmoothName = "gaussian"
    sigma: float = 4.0
    radius: int | None = None
    order: int = 2
    min_cutoff: float = 1.0
    beta: float = 5.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if self.sigma <= 0:
            raise ConfigError("smooth.sigma must be > 0")
        if self.radius is not None and self.radius < 0:
            raise ConfigError("smooth.radius must be >= 0")
        if self.order not in (0, 1, 2):
            raise ConfigError("smooth.order must be 0, 1 or 2")
        if min(self.min_cutoff, self.d_cutoff) <= 0 or self.beta < 0:
            raise ConfigError("smooth: cut-offs must be > 0 and beta >= 0")

    @property
    def delay(self) -> int:
        """Frames the stage holds back for this smoothing."""
        if self.method != "gaussian":
            return 0
        return self.radius if self.radius is not None else math.ceil(2.5 * self.sigma)


@dataclass(frozen=True)
class IdentityConfig:
    """Per-track identity embeddings.

    Attributes:
        backend: ``auto`` picks the first available of ``arcface-onnx`` (insightface
            w600k_r50), ``arcface-torch`` (facexlib IR-SE50), ``dlib`` (128-d, tracking only,
            no conditioning vector); ``off`` embeds nothing.
        every: a track is embedded at most once per this many frames...
        improve: ...or sooner when a detection's quality beats the track's best by this factor.
        reference_threshold: cosine similarity (of ArcFace vectors) a track must reach to a
            ``--reference`` photo to be conditioned on that photo; None: the encoder's own
            match threshold (0.3 for both ArcFaces, the one the tracker links identities at).
    """

    backend: IdentityBackendName = "auto"
    every: int = 12
    improve: float = 1.25
    reference_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ConfigError("identity.every must be >= 1")
        if self.improve < 1.0:
            raise ConfigError("identity.improve must be >= 1")
        if self.reference_threshold is not None and not -1.0 <= self.reference_threshold <= 1.0:
            raise ConfigError("identity.reference_threshold must be a cosine in [-1, 1]")


@dataclass(frozen=True)
class VerifyConfig:
    """The second opinion on detected faces (``faces.verify``), applied per track.

    Attributes:
        method: ``auto`` (the measured best: dlib's CNN on the candidate's region),
            ``dlib-cnn``, ``landmarks``, ``geometry``, or ``off`` (every detection is a face).
        every: a track not yet confirmed is checked again at most once per this many
            frames (a detection that fails once may pass when the face turns or nears)...
        grow: ...or sooner when its face has grown by this factor since the last check.
    """

    method: VerifierName = "auto"
    every: int = 6
    grow: float = 1.3

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ConfigError("verify.every must be >= 1")
        if self.grow < 1.0:
            raise ConfigError("verify.grow must be >= 1")


@dataclass(frozen=True)
class FaceConfig:
    """Settings of the face stage.

    Attributes:
        detector: which detector (``auto`` picks the best whose weights are present).
        detect_every: run the detector on every K-th frame; faces on the frames between are
            carried by tracking (optical flow), so every frame still gets its faces.
        batch: frames per detector call.
        detect_scale: frames are resized by this factor before detection, boxes and
            landmarks mapped back; ``auto`` (default) upscales videos whose shorter side is
            under 480 px to 480 (``faces.detect.batching.auto_scale``: SD footage's small
            faces are under the detectors' smallest size) and leaves bigger ones as they are.
        min_face: faces smaller than this (geometric mean of box sides, pixels) are tracked
            but left untouched (``face.skip = "too small"``).
        score_threshold: detections scoring lower are dropped; None (default): the
            detector's own operating floor (``score_floor``: 0.9 for MTCNN and RetinaFace,
            whose scores are calibrated alike, 0.65 for BlazeFace; ``faces.detect.batching``).
        face_size: side of the aligned crop.
        track: see ``TrackConfig``.
        smooth: see ``SmoothConfig``.
        identity: see ``IdentityConfig``.
        verify: see ``VerifyConfig``.
    """

    detector: DetectorName = "auto"
    detect_every: int = 1
    batch: int = 8
    detect_scale: float | Literal["auto"] = "auto"
    min_face: float = 20.0
    score_threshold: float | None = None
    face_size: int = 512
    track: TrackConfig = field(default_factory=TrackConfig)
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)

    def scale_for(self, height: int, width: int) -> float:
        """The detection scale of a ``height``×``width`` video (``detect_scale`` resolved)."""
        if self.detect_scale == "auto":
            from .detect.batching import auto_scale

            return auto_scale(height, width)
        return float(self.detect_scale)

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ConfigError("detect_every must be >= 1")
        if self.batch < 1:
            raise ConfigError("batch must be >= 1")
        if self.detect_scale != "auto" and not (
                isinstance(self.detect_scale, (int, float)) and 0.1 <= self.detect_scale <= 8):
            raise ConfigError("detect_scale must be auto or a number in [0.1, 8]")
        if self.min_face < 0:
            raise ConfigError("min_face must be >= 0")
        if self.score_threshold is not None and not 0.0 <= self.score_threshold <= 1.0:
            raise ConfigError("score_threshold must be in [0, 1]")
        if self.face_size < 16:
            raise ConfigError("face_size must be >= 16")
