"""``python -m training evaluate``: score a folder of restored faces against their ground truth.

Faces are matched by file name (stem; extensions may differ) and must be the same size.
PSNR and SSIM always; LPIPS (AlexNet trunk by default, as in the field's papers), IDS
(ArcFace IR-SE50 cosine) and LMD (the runtime's detector) when their weights are in the
weights folder — otherwise they are reported as unavailable with the reason, never faked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from vidrestore.training.data.datasets import list_images
from vidrestore.training.losses.identity import ArcFaceEncoder
from vidrestore.training.losses.perceptual import BACKBONE_WEIGHTS, LPIPSDistance

from vidrestore.errors import InputError, MissingWeightsError, WeightsError
from vidrestore.weights import WeightStore

from .metrics import from_uint8, landmark_distance, psnr, ssim

METRICS = ("psnr", "ssim", "lpips", "ids", "lmd")


@dataclass
class Evaluation:
    """Means over the matched faces; ``unavailable[name]`` says why a metric is missing.

    ``per_image[name]`` holds each face's values (LMD: None where a face was not found);
    ``lmd_missed``: faces where the detector found no face in one of the two images.
    """

    count: int
    means: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    per_image: dict[str, list] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    lmd_missed: int = 0

    def lines(self) -> list[str]:
        out = [f"{self.count} faces"]
        for name in METRICS:
            if name in self.means:
                extra = f" ({self.lmd_missed} faces not detected)" if name == "lmd" and self.lmd_missed else ""
                out.append(f"{name:6s} {self.means[name]:.4f}{extra}")
            elif name in self.unavailable:
                out.append(f"{name:6s} unavailable: {self.unavailable[name]}")
        return out


def pair_folders(restored: Path, gt: Path) -> list[tuple[str, Path, Path]]:
    """``(name, restored_path, gt_path)`` for every ground-truth face; InputError if any lacks its restored face."""
    gt_files = {p.relative_to(gt).with_suffix("").as_posix(): p for p in list_images(gt)}
    res_files = {p.relative_to(restored).with_suffix("").as_posix(): p for p in list_images(restored)}
    if not gt_files:
        raise InputError(f"no images under {gt}")
    missing = sorted(set(gt_files) - set(res_files))
    if missing:
        raise InputError(f"{len(missing)} ground-truth faces have no restored face in {restored} (e.g. {missing[0]})")
    return [(name, res_files[name], gt_files[name]) for name in sorted(gt_files)]


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {path}")
    return np.ascontiguousarray(image[..., ::-1])


def _optional(build: Callable[[], object], unavailable: dict[str, str], name: str):
    try:
        return build()
    except (MissingWeightsError, WeightsError) as exc:
        unavailable[name] = str(exc)
        return None


def evaluate_folders(
    restored: Path | str, gt: Path | str, store: WeightStore, *, lpips_net: str = "alex",
    detector: str = "auto", device: str = "cpu", batch_size: int = 8,
) -> Evaluation:
    """Score ``restored`` against ``gt`` (see module doc)."""
    pairs = pair_folders(Path(restored), Path(gt))
    result = Evaluation(len(pairs), names=[name for name, _, _ in pairs])
    lpips = _optional(lambda: LPIPSDistance(lpips_net, store.require(BACKBONE_WEIGHTS[lpips_net])).to(device),
                      result.unavailable, "lpips")
    arcface = _optional(lambda: ArcFaceEncoder(store.require("arcface-ir-se50")).to(device), result.unavailable, "ids")
    from vidrestore.faces.detect import build_detector

    face_detector = _optional(lambda: build_detector(detector, store, device), result.unavailable, "lmd")
    values: dict[str, list] = {name: [] for name in METRICS}
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        res = [_read(r) for _, r, _ in chunk]
        ref = [_read(g) for _, _, g in chunk]
        for (name, _, _), a, b in zip(chunk, res, ref):
            if a.shape != b.shape:
                raise InputError(f"{name}: restored {a.shape[1]}×{a.shape[0]} vs ground truth {b.shape[1]}×{b.shape[0]}")
            values["psnr"].append(psnr(a, b))
            values["ssim"].append(ssim(a, b))
            if face_detector is not None:
                values["lmd"].append(landmark_distance(face_detector, a, b))
        with torch.no_grad():
            if lpips is not None or arcface is not None:
                ta, tb = from_uint8(res, device), from_uint8(ref, device)
            if lpips is not None:
                values["lpips"] += lpips(ta, tb).tolist()
            if arcface is not None:
                values["ids"] += (arcface(ta) * arcface(tb)).sum(-1).tolist()
    for name, vals in values.items():
        if name in result.unavailable:
            continue
        result.per_image[name] = vals
        found = [v for v in vals if v is not None]
        if name == "lmd":
            result.lmd_missed = len(vals) - len(found)
            if not found:
                result.unavailable["lmd"] = "the detector found no face pair"
                continue
        result.means[name] = float(np.mean(found))
    return result
