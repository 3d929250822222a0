"""RetinaFace (ResNet-50 or MobileNet-0.25) through facexlib, batched over frames.

facexlib's network class is used as is; the checkpoint is loaded here (``weights_only``,
strict, ``module.`` prefixes stripped) rather than by ``init_detection_model``, so no code path
can start a download: the detector only exists when the weight file is on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

import cv2
import numpy as np
import torch

from vidrestore.compat import import_needing_torchvision, torchvision_ops_missing
from vidrestore.faces.face import Face
from vidrestore.models.checkpoint import load_weights_file

from .base import group_by_size
from .nms import nms

Network = Literal["resnet50", "mobile0.25"]


def facexlib_retinaface():
    """facexlib's ``detection.retinaface`` module, its NMS routed to ours (``nms.nms``) where
    torchvision's compiled ops are missing (see ``vidrestore.compat``)."""
    module = import_needing_torchvision("facexlib.detection.retinaface")
    if torchvision_ops_missing():
        module.py_cpu_nms = _rows_nms
    return module


def _rows_nms(dets: np.ndarray, threshold: float) -> list[int]:
    """facexlib's ``py_cpu_nms(dets, thresh)`` (rows ``x1, y1, x2, y2, score``) by ``nms.nms``."""
    return [int(i) for i in nms(dets[:, :4], dets[:, 4], threshold)]


def build_retinaface_net(network: Network, device: torch.device | str = "cpu") -> torch.nn.Module:
    """facexlib's RetinaFace module with random weights, in eval mode."""
    return facexlib_retinaface().RetinaFace(network_name=network, half=False, device=torch.device(device)).eval()


def load_retinaface_net(path: Path | str, network: Network, device: torch.device | str = "cpu"):
    """facexlib's RetinaFace with the checkpoint at ``path`` loaded strictly."""
    # facexlib's checkpoints were saved from DataParallel: their keys start with "module.".
    net = load_weights_file(build_retinaface_net(network, "cpu"), path, what=f"RetinaFace {network}",
                            rename=lambda key: key.removeprefix("module."))
    net.device = torch.device(device)
    net.mean_tensor = net.mean_tensor.to(device)
    return net.to(device).requires_grad_(False)


class RetinaFaceDetector:
    """RetinaFace face detector.

    Args:
        weights: the checkpoint (``detection_Resnet50_Final.pth`` or the MobileNet one).
        network: ``resnet50`` or ``mobile0.25`` (must match ``weights``).
        device: torch device.
        threshold: smallest score kept (facexlib's default 0.8; the caller may filter more).
        nms_threshold: IoU above which the weaker of two boxes is dropped.
        input_min_side: frames are resized so their shorter side is this many pixels before
            detection (as the official CodeFormer helper, which uses 640: small videos get
            upscaled so small faces meet the 16 px anchors, 4K frames cost what 640p costs);
            None runs at native size.
        reason: why this detector was chosen, for the log.
    """

    score_floor = 0.9
    """The score the face stage asks of a detection (``batching.score_floor``)."""

    def __init__(
        self,
        weights: Path | str,
        network: Network = "resnet50",
        device: torch.device | str = "cpu",
        threshold: float = 0.8,
        nms_threshold: float = 0.4,
        input_min_side: int | None = 640,
        reason: str = "",
    ) -> None:
        self.device = torch.device(device)
        self.net = load_retinaface_net(weights, network, self.device)
        self.name = "retinaface-resnet50" if network == "resnet50" else "retinaface-mobilenet"
        self.threshold = float(threshold)
        self.nms_threshold = float(nms_threshold)
        self.input_min_side = input_min_side
        self.reason = reason

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of each image (H×W×3 RGB uint8 or uint16), best score first.

        Images of the same size go through the network as one batch.
        """
        results: list[list[Face]] = [[] for _ in images]
        groups = group_by_size(images)
        for (h, w, _), members in groups.items():
            size = (w, h)
            if self.input_min_side:
                s = self.input_min_side / min(h, w)
                size = (max(1, round(w * s)), max(1, round(h * s)))
            frames = np.stack([_bgr255(images[i], size) for i in members])
            scale = np.array([size[0] / w, size[1] / h], np.float32)
            for i, faces in zip(members, self._detect_batch(frames, scale)):
                results[i] = faces
        return results

    @torch.inference_mode()
    def _detect_batch(self, frames: np.ndarray, scale: np.ndarray) -> list[list[Face]]:
        batch = torch.from_numpy(frames).to(self.device)
        # facexlib takes N×H×W×3 float BGR tensors and subtracts its BGR mean itself.
        boxes, points = self.net.batched_detect_faces(
            batch, conf_threshold=self.threshold, nms_threshold=self.nms_threshold
        )
        out = []
        for b, p in zip(boxes, points):
            b = np.asarray(b, np.float32).reshape(-1, 5)
            p = np.asarray(p, np.float32).reshape(-1, 5, 2)
            order = np.argsort(-b[:, 4], kind="stable")
            out.append([
                Face(box=b[k, :4] / np.tile(scale, 2), landmarks=p[k] / scale, score=float(b[k, 4]))
                for k in order
            ])
        return out


def _bgr255(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """H×W×3 RGB uint8/uint16 → float32 BGR in [0, 255], resized to ``size`` = (w, h)."""
    if image.dtype == np.uint8:
        x = image.astype(np.float32)
    elif image.dtype == np.uint16:
        x = image.astype(np.float32) * np.float32(255.0 / 65535.0)
    else:
        raise TypeError(f"expected a uint8 or uint16 image, got {image.dtype}")
    h, w = image.shape[:2]
    if size != (w, h):
        shrink = size[0] < w
        x = cv2.resize(x, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.ascontiguousarray(x[:, :, ::-1])
