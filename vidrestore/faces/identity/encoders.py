"""Identity encoders: faces in a frame → unit identity vectors.

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
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from vidrestore.errors import MissingWeightsError, WeightsMismatchError
from vidrestore.faces.align import align_arcface
from vidrestore.faces.face import Face
from vidrestore.imaging import to_uint8


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (N×D) scaled to unit length, float32."""
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
        return unit_rows(self.model.get_feat(crops))


class ArcFaceTorchEncoder:
    """facexlib's IR-SE50 ArcFace (``recognition_arcface_ir_se50.pth``) in torch."""

    name, conditioning, match_threshold, match_margin = "arcface-torch", True, 0.3, 0.15

    def __init__(self, path: Path | str, device: str = "cpu") -> None:
        import torch

        from vidrestore.models.arcface import load_ir_se50

        self.device = torch.device(device)
        self.model = load_ir_se50(path, self.device)
        self.dim = 512

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        import torch

        if not faces:
            return np.zeros((0, self.dim), np.float32)
        crops = np.stack([align_arcface(image, f.landmarks) for f in faces]).astype(np.float32)
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous().to(self.device) / 127.5 - 1.0
        with torch.inference_mode():
            out = self.model(x)
        return unit_rows(out.float().cpu().numpy())


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
        image = to_uint8(image)
        dlib = self._dlib
        shapes = dlib.full_object_detections()
        for f in faces:
            x1, y1, x2, y2 = (int(round(float(v))) for v in f.box)
            shapes.append(self._shape(image, dlib.rectangle(x1, y1, x2, y2)))
        chips = dlib.get_face_chips(image, shapes, size=150, padding=0.25)
        return unit_rows(np.array(self._rec.compute_face_descriptor(chips)))
