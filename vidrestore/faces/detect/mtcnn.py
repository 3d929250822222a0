"""MTCNN (Zhang et al. 2016): a cascade of three small CNNs, the detector that needs no download.

The weights are the P/R/O-Net files facenet-pytorch ships (MIT), loaded into our own modules
whose parameter names match them. Only the files are used: facenet-pytorch's code is not
imported (it pins old torch / numpy).

Algorithm (as the reference MTCNN): an image pyramid (smallest face ``min_size`` px, scale step
``factor``) through the fully convolutional P-Net (12×12 windows, stride 2); candidates
NMS-merged per scale (IoU 0.5) and per image (0.7), regressed, squared; then 24×24 crops
through R-Net (threshold, NMS 0.7, regression) and 48×48 crops through O-Net, which also gives
the 5 landmarks; a last NMS with the "min" overlap. Pixels are normalised as
``(x − 127.5) / 128``. Crops reaching outside the frame are zero-padded like the reference
implementation (facenet-pytorch clips them instead, which squashes edge faces).

Boxes are continuous (pixel ``i`` covers ``[i, i + 1)``); landmarks are given in OpenCV's
convention (pixel ``i`` centred at ``i``), which ``align`` uses. Checked by mirroring: the
landmarks of a mirrored face, mirrored back, sit on average 0.6 px right of the face's own
(astronaut at 4 scales); without the half-pixel shift 1.6 px.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from vidrestore.faces.face import Face

from .base import group_by_size
from .mtcnn_nets import ONet, PNet, RNet, default_weights_dir, load_nets
from .nms import nms

__all__ = ["MTCNNDetector", "ONet", "PNet", "RNet", "default_weights_dir", "load_nets"]


def _normalise(x: torch.Tensor | np.ndarray):
    return (x - 127.5) * 0.0078125


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow boxes (N×≥4) to squares about their centres."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Shift box edges by ``reg`` (N×4) fractions of the box's width / height."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    out[:, :4] = boxes[:, :4] + reg * np.stack([w, h, w, h], 1)
    return out


def _crops(frames: np.ndarray, inds: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Zero-padded ``size``×``size`` area-resampled crops of ``boxes`` (N×4) from their frames.

    Returns N×3×size×size float32, normalised.
    """
    h, w = frames.shape[1:3]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (i, box) in enumerate(zip(inds, boxes)):
        x1, y1, x2, y2 = (int(round(v)) for v in box[:4])
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        patch = np.zeros((y2 - y1, x2 - x1, 3), np.float32)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = frames[i, sy1:sy2, sx1:sx2]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return _normalise(out).transpose(0, 3, 1, 2).copy()


def _nms_per_image(boxes: np.ndarray, inds: np.ndarray, iou: float, mode: str = "union") -> np.ndarray:
    """Indices kept by NMS run separately within each image, sorted by image then score."""
    keep = [np.flatnonzero(inds == i)[nms(boxes[inds == i, :4], boxes[inds == i, 4], iou, mode)]
            for i in np.unique(inds)]
    return np.concatenate(keep) if keep else np.zeros(0, np.int64)


class MTCNNDetector:
    """The MTCNN face detector, batched over frames.

    Args:
        device: torch device for the three nets.
        threshold: O-Net score a face needs (the final score threshold; reference 0.7).
        stage_thresholds: P-Net and R-Net thresholds (reference 0.6, 0.7).
        min_size: smallest face side the pyramid searches, in pixels (reference 20); the
            box regression lets faces up to ~2× smaller through, so callers wanting a hard
            bound filter by size afterwards.
        factor: pyramid scale step (reference 0.709 ≈ 1/√2).
        weights_dir: folder with ``pnet.pt`` etc.; default facenet-pytorch's ``data`` folder.
        reason: why this detector was chosen, for the log.
        chunk_pixels: most input pixels per network call when batching frames (default 2¹⁸
            on CPU, where bigger batches fall out of the caches; unlimited on GPU).
    """

    score_floor = 0.9
    """The score the face stage asks of a detection (``batching.score_floor``)."""

    name = "mtcnn"

    def __init__(
        self,
        device: torch.device | str = "cpu",
        threshold: float = 0.7,
        stage_thresholds: tuple[float, float] = (0.6, 0.7),
        min_size: float = 20.0,
        factor: float = 0.709,
        weights_dir: Path | str | None = None,
        reason: str = "",
        chunk_pixels: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        if chunk_pixels is None:
            chunk_pixels = 1 << 18 if self.device.type == "cpu" else 0
        self.chunk_pixels = int(chunk_pixels)
        self.pnet, self.rnet, self.onet = (n.to(self.device) for n in load_nets(weights_dir))
        self.threshold = float(threshold)
        self.stage_thresholds = tuple(float(t) for t in stage_thresholds)
        self.min_size = float(min_size)
        self.factor = float(factor)
        self.reason = reason

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of each image (H×W×3 RGB uint8, or uint16 scaled down), best score first.

        Images of the same size are run together, one P-Net pass per pyramid scale.
        """
        results: list[list[Face]] = [[] for _ in images]
        groups = group_by_size(images)
        for members in groups.values():
            frames = np.stack([_as_float255(images[i]) for i in members])
            for i, faces in zip(members, self._detect_same_size(frames)):
                results[i] = faces
        return results

    @torch.inference_mode()
    def _detect_same_size(self, frames: np.ndarray) -> list[list[Face]]:
        n, h, w = frames.shape[:3]
        boxes, inds = self._propose(frames)
        if len(boxes):
            boxes, inds = self._refine(frames, boxes, inds)
        out: list[list[Face]] = [[] for _ in range(n)]
        if len(boxes):
            boxes, inds, points = self._output(frames, boxes, inds)
            for box, i, pts in zip(boxes, inds, points):
                out[i].append(Face(box=box[:4].astype(np.float32), landmarks=pts.astype(np.float32),
                                   score=float(box[4])))
        for faces in out:
            faces.sort(key=lambda f: -f.score)
        return out

    def _scales(self, h: int, w: int) -> list[float]:
        scale, side, scales = 12.0 / self.min_size, min(h, w) * 12.0 / self.min_size, []
        while side >= 12:
            scales.append(scale)
            scale, side = scale * self.factor, side * self.factor
        return scales

    def _propose(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P-Net over the pyramid: candidate boxes (M×5: x1 y1 x2 y2 score), image indices."""
        n, h, w = frames.shape[:3]
        normalised = _normalise(frames)  # before resampling: area averaging is linear
        all_boxes, all_inds = [], []
        for scale in self._scales(h, w):
            size = (int(w * scale + 1), int(h * scale + 1))
            # OpenCV's exact area resampling, ~5× faster than torch's adaptive pooling; the
            # N×H×W×C layout seen as N×C×H×W is channels-last, which conv and max-pool run
            # fastest on CPU.
            level = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in normalised])
            reg, prob = self._pnet_chunked(torch.from_numpy(level).to(self.device).permute(0, 3, 1, 2))
            img, yy, xx = torch.nonzero(prob >= self.stage_thresholds[0], as_tuple=True)
            if len(img) == 0:
                continue
            score = prob[img, yy, xx].cpu().numpy()
            offs = reg[img, :, yy, xx].cpu().numpy()
            xx, yy, img = xx.cpu().numpy(), yy.cpu().numpy(), img.cpu().numpy()
            # Each output cell sees the 12×12 window at (2x, 2y) of this pyramid level.
            boxes = np.stack([2 * xx / scale, 2 * yy / scale, (2 * xx + 12) / scale,
                              (2 * yy + 12) / scale, score], 1)
            boxes = np.concatenate([boxes, offs], 1)
            keep = _nms_per_image(boxes, img, 0.5)
            all_boxes.append(boxes[keep])
            all_inds.append(img[keep])
        if not all_boxes:
            return np.zeros((0, 5)), np.zeros(0, np.int64)
        boxes, inds = np.concatenate(all_boxes), np.concatenate(all_inds)
        keep = _nms_per_image(boxes, inds, 0.7)
        boxes, inds = boxes[keep], inds[keep]
        return _square(_regress(boxes[:, :5], boxes[:, 5:9])), inds

    def _pnet_chunked(self, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net over a batch of one pyramid level, in chunks of ≤ ``chunk_pixels`` pixels.

        On CPU a whole batch of large levels runs slower per frame than one frame at a time
        (its activations spill out of the caches); small levels still run batched.
        """
        n, _, h, w = level.shape
        step = max(1, self.chunk_pixels // (h * w)) if self.chunk_pixels else n
        if step >= n:
            return self.pnet(level)
        outs = [self.pnet(level[i : i + step]) for i in range(0, n, step)]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    def _run_chunked(self, net: nn.Module, crops: np.ndarray) -> tuple[torch.Tensor, ...]:
        """R- or O-Net over N crops, ``chunk_pixels`` input pixels per call on CPU."""
        x = torch.from_numpy(crops).to(self.device)
        side = crops.shape[-1]
        step = max(1, self.chunk_pixels // (side * side * 16)) if self.chunk_pixels else len(x)
        if step >= len(x):
            return net(x)
        outs = [net(x[i : i + step]) for i in range(0, len(x), step)]
        return tuple(torch.cat(parts) for parts in zip(*outs))

    def _refine(self, frames, boxes, inds) -> tuple[np.ndarray, np.ndarray]:
        """R-Net on 24×24 crops: kept boxes, regressed and squared."""
        reg, prob = self._run_chunked(self.rnet, _crops(frames, inds, boxes, 24))
        reg, prob = reg.cpu().numpy(), prob.cpu().numpy()
        ok = prob > self.stage_thresholds[1]
        boxes, inds, reg = boxes[ok].copy(), inds[ok], reg[ok]
        boxes[:, 4] = prob[ok]
        keep = _nms_per_image(boxes, inds, 0.7)
        return _square(_regress(boxes[keep], reg[keep])), inds[keep]

    def _output(self, frames, boxes, inds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """O-Net on 48×48 crops: final boxes (M×5), image indices, (M, 5, 2) landmarks."""
        reg, marks, prob = self._run_chunked(self.onet, _crops(frames, inds, boxes, 48))
        reg, marks, prob = reg.cpu().numpy(), marks.cpu().numpy(), prob.cpu().numpy()
        ok = prob > self.threshold
        boxes, inds, reg, marks = boxes[ok].copy(), inds[ok], reg[ok], marks[ok]
        boxes[:, 4] = prob[ok]
        side = (boxes[:, 2] - boxes[:, 0])[:, None]
        # Fractions of the crop's extent, from its edge; -0.5 turns the edge coordinate into
        # the pixel index (centres at integers) that OpenCV and ``align`` use.
        points = np.stack([boxes[:, :1] + marks[:, :5] * side, boxes[:, 1:2] + marks[:, 5:] * side], 2)
        points -= 0.5
        boxes = _regress(boxes, reg)
        keep = _nms_per_image(boxes, inds, 0.7, "min")
        return boxes[keep], inds[keep], points[keep]


def _as_float255(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32)
    if image.dtype == np.uint16:
        return image.astype(np.float32) * np.float32(255.0 / 65535.0)
    raise TypeError(f"expected a uint8 or uint16 image, got {image.dtype}")
