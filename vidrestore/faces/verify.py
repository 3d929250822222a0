"""A second opinion on every detected face before it is restored.

Detectors fire on things that are not faces (a T-shirt print, a lamp, the body of a guitar),
and a face restorer pastes a hallucinated face onto whatever it is given. Each candidate is
therefore checked by an independent judge before it reaches the network:

- ``dlib-cnn``: dlib's CNN face detector (MMOD, ``mmod_human_face_detector.dat`` of
  face_recognition_models) run on the candidate's region only, enlarged so the face is about
  90 px (the CNN's smallest); the candidate passes when the CNN finds a face framing it.
- ``landmarks``: dlib's 68-point shape predictor run on the candidate's box; the candidate
  passes when its 5 points (eye centres, nose tip, mouth corners) agree with the detector's
  own 5 landmarks, within ``tolerance`` of the face's size. Two independently
  trained landmark models agree on a face; on a non-face each regresses the mean shape it
  learned to wherever its features pull, and they disagree.
- ``geometry``: the detector's 5 landmarks alone must have a shape a face can have (eyes
  above the mouth, the nose between them, plausible proportions). Costs nothing.

Which one a run uses by default was chosen by measurement on the hand-labelled real frames
(``tests/data/face_labels.csv``, ``tools/bench_detectors.py``, docs/benchmarks.md).
``FaceVerifier.check`` returns, for each face, None (a face) or why it is not one; the face
stage applies it per track (``pipeline.face_stage``): a track is restored once one of its
detections passes, and a rejected face is left untouched and counted in the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from vidrestore.errors import UsageError
from vidrestore.imaging import to_uint8
from vidrestore.names import VerifierName, check_covers, choices

from .face import Face


@runtime_checkable
class FaceVerifier(Protocol):
    """Judges detected faces.

    Attributes:
        name: what to call it in logs and reports.
    """

    name: str

    def check(self, image: np.ndarray, faces: Sequence[Face]) -> list[str | None]:
        """For each face of ``image`` (H×W×3 RGB uint8/uint16): None when it is a face, else a
        short reason (``"no face in the region (dlib-cnn)"``)."""
        ...


def geometry_problem(landmarks: np.ndarray, box: np.ndarray) -> str | None:
    """Why 5 landmarks (left eye, right eye, nose, left / right mouth corner) cannot be a
    face's, or None.

    In the frame of the eyes (x along the eye line, y down, unit = eye distance): the mouth
    corners lie below the eyes (0.5–2.2), in the same order as the eyes, 0.3–1.6 apart;
    the nose lies between the eye line and the mouth line, horizontally within the face;
    the eye distance is 0.15–0.9 of the box's side. The bounds are loose (profiles, open
    mouths, tilted heads pass): they catch the shapes a detector's regressor produces on
    texture, not unusual faces.
    """
    p = np.asarray(landmarks, np.float64).reshape(5, 2)
    eye = p[1] - p[0]
    d = float(np.hypot(*eye))
    side = float(np.sqrt(max(box[2] - box[0], 1e-6) * max(box[3] - box[1], 1e-6)))
    if not 0.15 * side <= d <= 0.9 * side:
        return f"eye distance {d / side:.2f} of the face's size"
    ux = eye / d
    uy = np.array([-ux[1], ux[0]])
    local = (p - (p[0] + p[1]) / 2) @ np.stack([ux, uy], 1) / d
    mouth = local[3:]
    if not (0.5 <= mouth[:, 1].min() and mouth[:, 1].max() <= 2.2):
        return "mouth not below the eyes"
    width = mouth[1, 0] - mouth[0, 0]
    if not 0.3 <= width <= 1.6:
        return "mouth corners out of order"
    nose = local[2]
    if not (0.05 <= nose[1] <= mouth[:, 1].mean() + 0.1 and -0.9 <= nose[0] <= 0.9):
        return "nose outside the face"
    return None


class GeometryVerifier:
    """The ``geometry`` check (see module docstring)."""

    name = "geometry"

    def check(self, image: np.ndarray, faces: Sequence[Face]) -> list[str | None]:
        out = []
        for f in faces:
            problem = geometry_problem(f.landmarks, f.box)
            out.append(None if problem is None else f"implausible landmarks: {problem}")
        return out


def region_view(image: np.ndarray, box: np.ndarray, zoom: float, side: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``side``² uint8 view of ``image`` centred on ``box``, ``zoom`` × its longer side wide
    (grey outside the frame), and the (2, 3) map from frame to view pixels."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    k = side / (zoom * max(x2 - x1, y2 - y1, 1.0))
    m = np.array([[k, 0.0, side / 2 - k * cx], [0.0, k, side / 2 - k * cy]])
    view = cv2.warpAffine(to_uint8(image), m, (side, side), flags=cv2.INTER_LINEAR if k > 1 else cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    return np.ascontiguousarray(view), m


def frames_same_face(a: np.ndarray, b: np.ndarray, max_ratio: float = 2.2) -> bool:
    """Boxes ``a`` and ``b`` frame one face: each centre inside the other box, sides within
    ``max_ratio`` (dlib's boxes are tighter than MTCNN's or RetinaFace's)."""
    ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
    inside = a[0] <= cb[0] <= a[2] and a[1] <= cb[1] <= a[3] and b[0] <= ca[0] <= b[2] and b[1] <= ca[1] <= b[3]
    sa = float(np.sqrt(max(a[2] - a[0], 1e-6) * max(a[3] - a[1], 1e-6)))
    sb = float(np.sqrt(max(b[2] - b[0], 1e-6) * max(b[3] - b[1], 1e-6)))
    return inside and max(sa, sb) / min(sa, sb) < max_ratio


class DlibCNNVerifier:
    """The ``dlib-cnn`` check (see module docstring).

    Args:
        zoom: the region is this many times the candidate box's longer side.
        face_px: the candidate box is scaled to this many pixels in the region (the CNN's
            smallest faces are about 80 px at its native scale).
        threshold: the CNN confidence a face needs (dlib's default 0).
    """

    name = "dlib-cnn"

    def __init__(self, zoom: float = 1.6, face_px: int = 90, threshold: float = 0.0) -> None:
        from .detect.dlib_detect import dlib_model

        dlib, path = dlib_model("mmod_human_face_detector.dat")
        self._cnn = dlib.cnn_face_detection_model_v1(str(path))
        self.zoom = float(zoom)
        self.side = int(round(face_px * zoom))
        self.threshold = float(threshold)

    def check(self, image: np.ndarray, faces: Sequence[Face]) -> list[str | None]:
        if not faces:
            return []
        views, maps = zip(*(region_view(image, np.asarray(f.box, np.float64), self.zoom, self.side) for f in faces))
        found = self._cnn(list(views), 0)
        out = []
        for f, m, dets in zip(faces, maps, found):
            box = np.asarray(f.box, np.float64)
            target = np.concatenate([m[:, :2] @ box[:2] + m[:, 2], m[:, :2] @ box[2:] + m[:, 2]])
            ok = any(d.confidence >= self.threshold and frames_same_face(
                np.array([d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1], np.float64),
                target) for d in dets)
            out.append(None if ok else "no face in the region (dlib-cnn)")
        return out


class LandmarkVerifier:
    """The ``landmarks`` check (see module docstring).

    Args:
        tolerance: largest mean distance between the detector's 5 points and the 68-point
            model's, as a fraction of the face's size (geometric mean of the box's sides).
        face_px: the candidate's region is resampled so its box is this many pixels (the
            shape predictor was trained on faces of about 100-200 px).
    """

    name = "landmarks"

    def __init__(self, tolerance: float = 0.12, face_px: int = 120) -> None:
        from .detect.dlib_detect import ShapePredictor68

        self.shapes = ShapePredictor68()
        self.tolerance = float(tolerance)
        self.face_px = int(face_px)

    def disagreement(self, image: np.ndarray, face: Face) -> float:
        """Mean distance between the two landmark models' 5 points / face size."""
        from .detect.dlib_detect import five_points

        box = np.asarray(face.box, np.float64)
        zoom = 2.0
        view, m = region_view(image, box, zoom, int(round(self.face_px * zoom)))
        target = np.concatenate([m[:, :2] @ box[:2] + m[:, 2], m[:, :2] @ box[2:] + m[:, 2]])
        theirs = five_points(self.shapes(view, target)).astype(np.float64)
        ours = np.asarray(face.landmarks, np.float64) @ m[:, :2].T + m[:, 2]
        size = float(np.sqrt(max(target[2] - target[0], 1e-6) * max(target[3] - target[1], 1e-6)))
        return float(np.linalg.norm(theirs - ours, axis=1).mean() / size)

    def check(self, image: np.ndarray, faces: Sequence[Face]) -> list[str | None]:
        out = []
        for f in faces:
            d = self.disagreement(image, f)
            out.append(None if d <= self.tolerance else f"landmark models disagree ({d:.2f} of the face)")
        return out


class AllOf:
    """Passes a face only when every verifier passes it (the first reason otherwise); later
    verifiers see only the faces the earlier ones passed (cheapest first)."""

    def __init__(self, verifiers: Sequence[FaceVerifier]) -> None:
        self.verifiers = list(verifiers)
        self.name = "+".join(v.name for v in self.verifiers)

    def check(self, image: np.ndarray, faces: Sequence[Face]) -> list[str | None]:
        out: list[str | None] = [None] * len(faces)
        todo = list(range(len(faces)))
        for v in self.verifiers:
            if not todo:
                break
            for i, reason in zip(todo, v.check(image, [faces[i] for i in todo])):
                out[i] = reason
            todo = [i for i in todo if out[i] is None]
        return out


_KINDS = {
    "geometry": lambda: GeometryVerifier(),
    "dlib-cnn": lambda: DlibCNNVerifier(),
    "landmarks": lambda: LandmarkVerifier(),
}
check_covers(VerifierName, ("auto", "off", *_KINDS), "faces.verify")

AUTO = "dlib-cnn"
"""What ``auto`` uses, chosen on the labelled set (docs/benchmarks.md): the only check that
rejected every non-face while keeping every face of restorable size."""


def build_verifier(kind: VerifierName) -> FaceVerifier | None:
    """The verifier ``kind`` (None for ``off``); ``auto`` is ``AUTO``.

    Raises:
        MissingWeightsError: a dlib-based kind without dlib or its model files.
        UsageError: an unknown kind.
    """
    if kind == "off":
        return None
    if kind not in _KINDS and kind != "auto":
        raise UsageError(f"unknown face verifier {kind!r}; choose one of {', '.join(choices(VerifierName))}")
    return _KINDS[AUTO if kind == "auto" else kind]()


@dataclass
class _TrackState:
    confirmed: bool = False
    reason: str = "not verified yet"
    checked_at: int | None = None
    checked_size: float = 0.0
    checks: int = 0


class TrackVerdicts:
    """Verification per track: a track is restored once one of its detections passes the
    verifier; until then its faces are rejected (left untouched).

    Checking tracks, not every detection, means a real face whose detection fails once (a
    blink, motion blur, a turn) is not dropped from some frames, and the verifier runs only
    on new tracks, not on every face of every frame. A track not yet confirmed is checked on
    detected frames, at most once per ``every`` frames or when its face grew ``grow``-fold
    since the last check. Faces under ``min_size`` are not checked (they are left untouched
    anyway).

    Args:
        verifier: the judge; None confirms every track (``--verify off``).
        every, grow: see ``faces.config.VerifyConfig``.
        min_size: smallest face (pixels) worth checking.
    """

    def __init__(self, verifier: FaceVerifier | None, every: int = 6, grow: float = 1.3,
                 min_size: float = 0.0) -> None:
        self.verifier = verifier
        self.every = int(every)
        self.grow = float(grow)
        self.min_size = float(min_size)
        self._tracks: dict[int, _TrackState] = {}
        self.checks = 0

    def observe(self, index: int, image: np.ndarray, faces: Sequence[Face], detected: bool) -> None:
        """Check the faces of frame ``index`` whose tracks are due (detected frames only)."""
        if self.verifier is None or not detected:
            return
        due = []
        for f in faces:
            state = self._tracks.setdefault(f.track_id, _TrackState())
            if state.confirmed or f.size < self.min_size:
                continue
            if state.checked_at is None or index - state.checked_at >= self.every or \
                    f.size >= self.grow * state.checked_size:
                due.append((f, state))
        if not due:
            return
        verdicts = self.verifier.check(image, [f for f, _ in due])
        for (f, state), reason in zip(due, verdicts):
            state.checked_at, state.checked_size, state.checks = index, f.size, state.checks + 1
            self.checks += 1
            if reason is None:
                state.confirmed = True
            else:
                state.reason = reason

    def verdict(self, track_id: int) -> str | None:
        """None when track ``track_id``'s faces may be restored, else why not."""
        if self.verifier is None:
            return None
        state = self._tracks.get(track_id)
        if state is None:
            return "not verified yet"
        return None if state.confirmed else state.reason
