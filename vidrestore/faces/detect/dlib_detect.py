"""dlib's face detectors (HOG + linear SVM, and the CNN "MMOD" detector) behind ``Detector``.

Both install from PyPI (``dlib-bin``; the CNN's ``mmod_human_face_detector.dat`` and the
68-point ``shape_predictor_68_face_landmarks.dat`` ship in ``face_recognition_models``, CC0),
so they work offline. dlib's detectors give boxes only; the 5 landmarks the aligner needs
(eye centres, nose tip, mouth corners) come from the 68-point shape predictor run on each box
(iBUG 300-W numbering: eyes 36–41 and 42–47, nose tip 30, mouth corners 48 and 54).

dlib's rectangles are integer pixel corners; they are returned as continuous boxes (right
and bottom edges + 1), like MTCNN's. The CNN is slow on a CPU (about 2.5 s for a 587×480
frame on this project's 2-core machine), which is why it serves here as a second opinion on
candidate regions (``faces.verify``) more than as a whole-frame detector.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from vidrestore.errors import MissingWeightsError
from vidrestore.faces.face import Face
from vidrestore.imaging import to_uint8

DlibKind = Literal["hog", "cnn"]

EYE_LEFT = slice(36, 42)
EYE_RIGHT = slice(42, 48)
NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT = 30, 48, 54


def dlib_models_dir() -> Path | None:
    """The ``models`` folder of face_recognition_models, found without importing it (its
    ``__init__`` needs ``pkg_resources``, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "models"
        if (folder / "mmod_human_face_detector.dat").is_file():
            return folder
    return None


def dlib_model(name: str):
    """``(dlib, path)`` of a face_recognition_models file, or MissingWeightsError saying what to
    install."""
    folder = dlib_models_dir()
    if folder is None or importlib.util.find_spec("dlib") is None or not (folder / name).is_file():
        raise MissingWeightsError(
            f"dlib's {name} is missing: `pip install dlib-bin face_recognition_models`")
    import dlib

    return dlib, folder / name


def five_points(shape68: np.ndarray) -> np.ndarray:
    """The (5, 2) landmarks of ``vidrestore.faces.face.Face`` from (68, 2) iBUG points."""
    return np.stack([
        shape68[EYE_LEFT].mean(0), shape68[EYE_RIGHT].mean(0), shape68[NOSE_TIP],
        shape68[MOUTH_LEFT], shape68[MOUTH_RIGHT],
    ]).astype(np.float32)


class ShapePredictor68:
    """dlib's 68-point landmark regressor, run on a given box."""

    def __init__(self) -> None:
        self._dlib, path = dlib_model("shape_predictor_68_face_landmarks.dat")
        self._predict = self._dlib.shape_predictor(str(path))

    def __call__(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """(68, 2) float64 points for the face in continuous ``box`` of ``image`` (uint8 RGB)."""
        x1, y1, x2, y2 = (float(v) for v in box)
        rect = self._dlib.rectangle(int(round(x1)), int(round(y1)), int(round(x2)) - 1, int(round(y2)) - 1)
        shape = self._predict(image, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


class DlibDetector:
    """dlib's HOG or CNN face detector, with 5 landmarks from the 68-point predictor.

    Args:
        kind: ``hog`` (fast, frontal faces over ~80 px, or ~40 px with ``upsample`` 1) or
            ``cnn`` (MMOD CNN: more poses, slow on a CPU).
        upsample: times dlib doubles the image before detecting (finds smaller faces).
        threshold: HOG: the SVM score a face needs (dlib's default 0); CNN: the confidence
            (dlib's default 0). Scores are mapped to [0, 1] by a logistic for ``Face.score``.
        reason: why this detector was chosen, for the log.
    """

    def __init__(self, kind: DlibKind = "hog", upsample: int = 1, threshold: float = 0.0,
                 reason: str = "") -> None:
        if kind not in ("hog", "cnn"):
            raise ValueError(f"unknown dlib detector {kind!r}")
        if kind == "cnn":
            dlib, path = dlib_model("mmod_human_face_detector.dat")
            self._cnn = dlib.cnn_face_detection_model_v1(str(path))
        else:
            dlib, _ = dlib_model("shape_predictor_68_face_landmarks.dat")
            self._hog = dlib.get_frontal_face_detector()
        self.kind = kind
        self.name = f"dlib-{kind}"
        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self.reason = reason
        self.shapes = ShapePredictor68()

    def raw(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """dlib's own ``(continuous box (4,), raw score)`` pairs for one uint8 RGB image."""
        image = np.ascontiguousarray(to_uint8(image))
        if self.kind == "cnn":
            found = [(d.rect, float(d.confidence)) for d in self._cnn(image, self.upsample)]
        else:
            rects, scores, _ = self._hog.run(image, self.upsample, self.threshold)
            found = list(zip(rects, map(float, scores)))
        out = []
        for rect, score in found:
            if score < self.threshold:
                continue
            box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], np.float32)
            out.append((box, score))
        return out

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of each image (H×W×3 RGB uint8 or uint16), best score first."""
        results = []
        for image in images:
            image8 = np.ascontiguousarray(to_uint8(image))
            faces = []
            for box, score in self.raw(image8):
                points = five_points(self.shapes(image8, box))
                faces.append(Face(box=box, landmarks=points, score=float(1 / (1 + np.exp(-2 * score)))))
            faces.sort(key=lambda f: -f.score)
            results.append(faces)
        return results
