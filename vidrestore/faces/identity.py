"""Identity embeddings of faces, aggregated per track.

Encoders (``build_encoder``), best first where their weights are present:

- ``arcface-onnx``: insightface's buffalo_l ``w600k_r50.onnx`` (ResNet-50, WebFace600K, 512-d),
  run by insightface's ``ArcFaceONNX`` (which reads the graph to pick the input normalisation,
  (x − 127.5) / 127.5 for this file, and swaps the BGR crops it is given to the RGB the network
  was trained on).
- ``arcface-torch``: facexlib's IR-SE50 ArcFace (``recognition_arcface_ir_se50.pth``, 512-d), the
  TreB1eN InsightFace_Pytorch model: RGB, (x / 255 − 0.5) / 0.5.
- ``dlib``: dlib's ResNet (``face_recognition_models``, 128-d), which installs from PyPI. Good
  enough to tell faces apart for tracking, but it is not an ArcFace vector, so it never becomes
  a restorer's conditioning vector (``conditioning`` False).

Both ArcFaces take 112×112 crops aligned to the ArcFace 5-point template by a least-squares
similarity (as insightface's ``norm_crop``); dlib aligns its own 150×150 chip from its 5-point
shape predictor run inside our box.

``IdentityCache`` keeps each track's vector as a running quality-weighted mean (re-normalised),
updated online; quality = detector score × size factor × sharpness factor (see
``face_quality``). Embedding every face of every frame is wasteful (faces of a track barely
change between frames), so a track is embedded when it starts, then at most every
``IdentityConfig.every`` frames, or sooner when a detection's quality beats the best seen so
far by ``IdentityConfig.improve``: the sharpest, largest views dominate the mean.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np

from ..errors import InputError, MissingWeightsError, UsageError, WeightsMismatchError
from .face import Face

ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
"""(5, 2) landmark positions of an ArcFace-aligned 112×112 face (insightface's ``arcface_dst``)."""


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform ``src → dst`` (Umeyama, no reflection), (2, 3)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = max(float((s**2).sum()), 1e-12)
    a = float((s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()) / var
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / var
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (mu_d - rot @ mu_s)[:, None]])


def align_arcface(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112×112×3 uint8 RGB ArcFace crop of a face (uint16 frames are scaled to 8 bits)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    m = similarity_lstsq(np.asarray(landmarks).reshape(5, 2), ARCFACE_TEMPLATE_112)
    return cv2.warpAffine(image, m, (112, 112), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def face_quality(crop: np.ndarray, score: float, size: float) -> float:
    """How much a view of a face is worth to its track's identity, in [0, 1].

    ``score`` × ``min(1, size / 112)`` × ``v / (v + 100)`` with ``v`` the variance of the
    Laplacian of the 112×112 grey crop (blurry or upscaled tiny faces score low).
    """
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    v = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return float(score) * min(1.0, size / 112.0) * v / (v + 100.0)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class FaceEncoder(Protocol):
    """Turns faces into unit identity vectors.

    Attributes:
        name: backend name (``arcface-onnx``, ``arcface-torch``, ``dlib``).
        dim: vector length.
        conditioning: whether the vector is a 512-d ArcFace vector a restorer can be
            conditioned on.
        match_threshold: cosine similarity above which two faces are taken as one person.
        match_margin: how far from the threshold a similarity is clearly same / different.
    """

    name: str
    dim: int
    conditioning: bool
    match_threshold: float
    match_margin: float

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """(N, dim) float32 unit vectors of ``faces`` in ``image`` (H×W×3 RGB)."""
        ...


class ArcFaceOnnxEncoder:
    """insightface ArcFace ONNX (``w600k_r50.onnx``) through ``insightface.model_zoo``."""

    name, conditioning, match_threshold, match_margin = "arcface-onnx", True, 0.3, 0.15

    def __init__(self, path: Path | str, device: str = "cpu") -> None:
        import onnxruntime
        from insightface import model_zoo

        providers = ["CPUExecutionProvider"]
        cuda = "CUDAExecutionProvider"
        if str(device).startswith("cuda") and cuda in onnxruntime.get_available_providers():
            providers.insert(0, cuda)
        try:
            self.model = model_zoo.get_model(str(path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own types for broken files
            raise WeightsMismatchError(f"cannot load {path} as an ArcFace ONNX model: {exc}") from None
        if self.model is None or getattr(self.model, "taskname", None) != "recognition":
            raise WeightsMismatchError(f"{path} is not an ArcFace recognition model (input shape)")
        self.dim = int(self.model.output_shape[1])

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        crops = [align_arcface(image, f.landmarks)[:, :, ::-1].copy() for f in faces]  # BGR in
        return _unit(self.model.get_feat(crops))


class ArcFaceTorchEncoder:
    """facexlib's IR-SE50 ArcFace (``recognition_arcface_ir_se50.pth``) in torch."""

    name, conditioning, match_threshold, match_margin = "arcface-torch", True, 0.3, 0.15

    def __init__(self, path: Path | str, device: str = "cpu") -> None:
        import torch

        from ..compat import ensure_torchvision

        ensure_torchvision()
        from facexlib.recognition.arcface_arch import Backbone

        self.device = torch.device(device)
        self.model = Backbone(num_layers=50, drop_ratio=0.6, mode="ir_se")
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsMismatchError(f"{path} does not fit IR-SE50 ArcFace: {exc}") from None
        self.model.eval().requires_grad_(False).to(self.device)
        self.dim = 512

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        import torch

        if not faces:
            return np.zeros((0, self.dim), np.float32)
        crops = np.stack([align_arcface(image, f.landmarks) for f in faces]).astype(np.float32)
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous().to(self.device) / 127.5 - 1.0
        with torch.inference_mode():
            out = self.model(x)
        return _unit(out.float().cpu().numpy())


def dlib_models_dir() -> Path | None:
    """The ``models`` folder of face_recognition_models, found without importing it (its
    ``__init__`` needs ``pkg_resources``, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "models"
        if (folder / "dlib_face_recognition_resnet_model_v1.dat").is_file():
            return folder
    return None


class DlibEncoder:
    """dlib's 128-d face descriptor (tracking only; not a conditioning vector)."""

    name, conditioning, dim = "dlib", False, 128
    # Cosine of unit vectors. Measured here: the astronaut against itself across clips, sizes
    # and mirroring 0.98–1.0; one singer over 0.4 s of the iscc demo video 0.92–0.96;
    # different people (astronaut, the singer, LFW faces) 0.79–0.92.
    match_threshold, match_margin = 0.93, 0.05

    def __init__(self) -> None:
        folder = dlib_models_dir()
        if folder is None or importlib.util.find_spec("dlib") is None:
            raise MissingWeightsError(
                "the dlib identity backend needs `pip install dlib-bin face_recognition_models`"
            )
        import dlib

        self._dlib = dlib
        self._rec = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))
        self._shape = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        image = np.ascontiguousarray(image)
        dlib = self._dlib
        shapes = dlib.full_object_detections()
        for f in faces:
            x1, y1, x2, y2 = (int(round(float(v))) for v in f.box)
            shapes.append(self._shape(image, dlib.rectangle(x1, y1, x2, y2)))
        chips = dlib.get_face_chips(image, shapes, size=150, padding=0.25)
        return _unit(np.array(self._rec.compute_face_descriptor(chips)))


ARCFACE_WEIGHTS = ("arcface-w600k-r50", "arcface-ir-se50")


def conditioning_backend(backend: str, store) -> str:
    """The identity backend that gives an identity-conditioned model its vectors: an ArcFace
    one. ``auto`` / ``off`` take the ArcFace weights present, else download IR-SE50 (MIT
    licence) where the store may download.

    Raises:
        UsageError: ``dlib`` (its vectors are not ArcFace's).
        MissingWeightsError: no ArcFace weights and no downloads.
    """
    if backend == "dlib":
        raise UsageError("identity conditioning needs an ArcFace backend, not dlib")
    if backend not in ("auto", "off"):
        return backend
    if any(store.find(name) is not None for name in ARCFACE_WEIGHTS):
        return "auto"
    if store.allow_download:
        return "arcface-torch"
    names = ", ".join(store.entry(n).filename for n in ARCFACE_WEIGHTS)
    raise MissingWeightsError(
        f"identity conditioning needs ArcFace weights ({names}) and downloads are off; run "
        "`vidrestore weights fetch arcface-ir-se50` or put one in the weights folder"
    )


def build_encoder(backend: str, store, device: str = "cpu") -> tuple[FaceEncoder | None, str]:
    """The identity encoder for ``backend`` and a one-line reason.

    ``auto`` takes the first of arcface-onnx, arcface-torch (when ``store.find`` has their
    weights; a found file is sha256-checked, never downloaded) and dlib (when installed);
    ``off`` gives None. A named backend whose weights are missing raises
    ``MissingWeightsError`` (through ``store.require``: a download when the store allows it).
    """
    if backend == "off":
        return None, "identity off"
    if backend == "arcface-onnx":
        return ArcFaceOnnxEncoder(store.require("arcface-w600k-r50"), device), "arcface-onnx as configured"
    if backend == "arcface-torch":
        return ArcFaceTorchEncoder(store.require("arcface-ir-se50"), device), "arcface-torch as configured"
    if backend == "dlib":
        return DlibEncoder(), "dlib as configured"
    if backend != "auto":
        raise UsageError(f"unknown identity backend {backend!r}")
    if store.find("arcface-w600k-r50") is not None:
        path = store.require("arcface-w600k-r50")
        return ArcFaceOnnxEncoder(path, device), f"arcface-onnx: {path.name} found"
    if store.find("arcface-ir-se50") is not None:
        path = store.require("arcface-ir-se50")
        return ArcFaceTorchEncoder(path, device), f"arcface-torch: {path.name} found"
    try:
        return DlibEncoder(), "dlib: no ArcFace weights found (tracking only, no conditioning vector)"
    except MissingWeightsError:
        return None, "no identity encoder available (no ArcFace weights, dlib not installed)"


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
        self._fixed[track_id] = _unit(np.asarray(vector)[None])[0]

    def vector(self, track_id: int) -> np.ndarray | None:
        """The track's unit float32 vector, or None if never embedded."""
        if track_id in self._fixed:
            return self._fixed[track_id]
        entry = self._tracks.get(track_id)
        if entry is None or entry.count == 0:
            return None
        return _unit(entry.total[None])[0]

    def count(self, track_id: int) -> int:
        entry = self._tracks.get(track_id)
        return entry.count if entry else 0

    def track_ids(self) -> list[int]:
        return sorted(set(self._tracks) | set(self._fixed))


def reference_identity(image: np.ndarray, detector, encoder: FaceEncoder) -> np.ndarray:
    """The identity vector of the largest face in a reference photo (H×W×3 RGB).

    Raises:
        InputError: no face found in the photo.
        UsageError: the encoder gives no conditioning vector (dlib).
    """
    if not encoder.conditioning:
        raise UsageError(f"a reference identity needs ArcFace weights; {encoder.name} gives no 512-d vector")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    faces = detector.detect([np.ascontiguousarray(image)])[0]
    if not faces:
        raise InputError("no face found in the reference image")
    largest = max(faces, key=lambda f: f.size)
    return encoder.embed(image, [largest])[0]
