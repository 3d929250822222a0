"""Greedy non-maximum suppression in numpy (no torchvision ops needed)."""

from __future__ import annotations

from typing import Literal

import numpy as np


def nms(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: Literal["union", "min"] = "union"
) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS, highest score first.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2`` (continuous coordinates: area = w·h).
        scores: (N,) scores.
        threshold: a box is dropped when its overlap with a kept, better box exceeds this.
        mode: overlap measure: ``union`` = IoU; ``min`` = intersection over the smaller area
            (MTCNN's last stage, which removes a small box nested in a big one).

    Returns:
        (K,) int64 indices into ``boxes``.
    """
    if mode not in ("union", "min"):
        raise ValueError(f"unknown NMS mode {mode!r}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = boxes.T
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        denom = area[i] + area[rest] - inter if mode == "union" else np.minimum(area[i], area[rest])
        overlap = inter / np.maximum(denom, 1e-12)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)
