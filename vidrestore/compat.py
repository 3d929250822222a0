"""Make torchvision importable where its compiled ops do not match the installed torch.

The only torchvision wheel that pairs with the CPU torch build ships CUDA kernels, and
``import torchvision`` then fails with ``operator torchvision::nms does not exist``.
``ensure_torchvision()`` registers a pure-PyTorch ``torchvision::nms`` (and ``qnms``) before
the import; everything else torchvision needs falls back to Python. Where the real ops load
(a matching CUDA build) nothing is registered. facexlib and lpips import torchvision, so call
this before importing them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

_registered = False


def _nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of kept boxes, highest score first."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.float().unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep = []
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    for rank in range(len(order)):
        if suppressed[rank]:
            continue
        i = order[rank]
        keep.append(i)
        rest = order[rank + 1 :]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=1e-12)
        suppressed[rank + 1 :] |= iou > iou_threshold
    return torch.stack(keep)


def _has_op(name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False


def ensure_torchvision() -> ModuleType:
    """Import torchvision, first registering pure-PyTorch NMS ops if the compiled ones are absent."""
    global _registered
    if not _registered and not _has_op("nms"):
        lib = torch.library.Library("torchvision", "DEF")  # noqa: F841 - kept alive below
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl("nms", _nms, "CompositeExplicitAutograd")
        lib.impl("qnms", _nms, "CompositeExplicitAutograd")
        globals()["_library"] = lib
        _registered = True
    torchvision = importlib.import_module("torchvision")
    if _registered:
        # torchvision.ops.nms refuses to run without its compiled extension; route it here.
        torchvision.ops.nms = torchvision.ops.boxes.nms = _nms
    return torchvision
