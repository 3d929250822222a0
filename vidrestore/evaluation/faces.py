"""Per-frame face metrics of a restored video: identity similarity (IDS), landmark distance
(LMD), and the face regions the warping error can be restricted to.

Faces are found in the **reference** frame (the runtime's detector: RetinaFace when its
weights are present, else MTCNN). IDS embeds each of them in both frames at the reference's
landmarks and takes the cosine: the ArcFace vectors of ``faces.identity`` where their weights
are present (``ids``), else dlib's 128-d descriptor (``ids_dlib``: a stand-in measured on
another network, never reported as IDS). LMD detects the faces of the restored frame too and
takes the mean distance in pixels between the 5 landmarks of each reference face and of the
restored face that overlaps it most (IoU ≥ 0.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidrestore.faces.detect import build_detector
from vidrestore.faces.detect.batching import detect_frames
from vidrestore.faces.face import Face
from vidrestore.faces.identity import build_encoder
from vidrestore.faces.track import box_iou

SCORE_THRESHOLD = 0.9
"""Detections scoring lower are ignored (the face stage's default)."""
REGION_MARGIN = 0.1
"""Face regions are the detected boxes grown by this fraction of their side on each edge."""


@dataclass(frozen=True)
class FrameFaces:
    """The face metrics of one frame pair.

    Attributes:
        faces: faces found in the reference frame.
        ids: mean cosine of their identity vectors in both frames (None: no face or no encoder).
        lmd: mean landmark distance over matched faces, pixels (None: no pair found).
        boxes: the reference faces' boxes (``x1, y1, x2, y2``).
    """

    faces: int
    ids: float | None
    lmd: float | None
    boxes: tuple[tuple[float, float, float, float], ...]


class FaceMetrics:
    """Detector and identity encoder for ``FrameFaces`` (module doc).

    Args:
        store: where detector and identity weights are found (never downloaded by ``auto``).
        device: torch device.
        detector: a detector name (``auto`` as in ``faces.detect``).

    Attributes:
        ids_key: ``ids`` (ArcFace), ``ids_dlib`` (the stand-in) or None (no encoder).
        ids_reason: which encoder, and why.
    """

    def __init__(self, store, device: str = "cpu", detector: str = "auto") -> None:
        self.detector = build_detector(detector, store, device)
        self.encoder, self.ids_reason = build_encoder("auto", store, device)
        if self.encoder is None:
            self.ids_key = None
        else:
            self.ids_key = "ids" if self.encoder.conditioning else "ids_dlib"

    @property
    def detector_name(self) -> str:
        return str(getattr(self.detector, "name", type(self.detector).__name__))

    def measure(self, restored: np.ndarray, reference: np.ndarray) -> FrameFaces:
        """The face metrics of one frame pair (H×W×3 RGB)."""
        ref_faces, out_faces = detect_frames(self.detector, [reference, restored], score_threshold=SCORE_THRESHOLD)
        boxes = tuple(tuple(float(v) for v in f.box) for f in ref_faces)
        ids = None
        if ref_faces and self.encoder is not None:
            a = self.encoder.embed(restored, ref_faces)
            b = self.encoder.embed(reference, ref_faces)
            ids = float(np.mean((a * b).sum(axis=1)))
        return FrameFaces(len(ref_faces), ids, _landmark_distance(ref_faces, out_faces), boxes)


def _landmark_distance(reference: list[Face], restored: list[Face]) -> float | None:
    if not reference or not restored:
        return None
    distances = []
    for face in reference:
        overlaps = [box_iou(face.box, other.box) for other in restored]
        j = int(np.argmax(overlaps))
        if overlaps[j] >= 0.3:
            d = np.linalg.norm(np.asarray(face.landmarks, np.float64) - np.asarray(restored[j].landmarks, np.float64),
                               axis=1)
            distances.append(float(d.mean()))
    return float(np.mean(distances)) if distances else None


def region_mask(boxes, width: int, height: int, margin: float = REGION_MARGIN) -> np.ndarray:
    """H×W bool: the union of ``boxes`` grown by ``margin`` of their side, clipped to the frame."""
    mask = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in boxes:
        mx, my = margin * (x2 - x1), margin * (y2 - y1)
        xa, ya = max(int(np.floor(x1 - mx)), 0), max(int(np.floor(y1 - my)), 0)
        xb, yb = min(int(np.ceil(x2 + mx)), width), min(int(np.ceil(y2 + my)), height)
        if xb > xa and yb > ya:
            mask[ya:yb, xa:xb] = True
    return mask
