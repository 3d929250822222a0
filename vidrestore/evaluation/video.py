"""``evaluate_videos``: a restored video scored frame by frame against its reference.

Per frame pair (matched by timestamp, ``evaluation.pairs``): PSNR on RGB and on BT.601 Y,
SSIM (``vidrestore.metrics.pixels``), LPIPS when its ImageNet trunk is in the weights folder
(``metrics.perceptual``), IDS / LMD over the reference's faces (``evaluation.faces``); per
pair of consecutive frames the flow warping error of Lai et al. (``metrics.temporal``) on the
whole frame and, with ``faces``, within the reference's face regions (reported on the later
frame: the change from frame t−1 to t). Means are over frames (warping errors: over pairs).
Streaming: two frames of each video are held at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vidrestore.errors import WeightsError
from vidrestore.io.reader import VideoReader
from vidrestore.metrics import FLOW_METHOD, FlowWarpingError, psnr_rgb, psnr_y, ssim

from .faces import FaceMetrics, region_mask
from .pairs import check_compatible, paired_frames

Log = Callable[[str], None]

SUMMARY_KEYS = ("psnr", "psnr_y", "ssim", "lpips", "warp_error", "warp_error_faces", "ids", "ids_dlib", "lmd")
"""The per-frame values that get a mean, in report order."""


@dataclass
class VideoEvaluation:
    """The scores of a restored video (module doc).

    Attributes:
        restored, reference: the two files.
        frames: one dict per frame: ``index``, ``time``, ``faces`` and the ``SUMMARY_KEYS``
            that were computed (None where a value does not exist for that frame).
        means: metric → mean over frames (None where no frame had a value).
        unavailable: metric → why it was left out (missing weights...).
        details: how things were measured (flow method, detector, identity encoder, LPIPS trunk).
    """

    restored: str
    reference: str
    frames: list[dict] = field(default_factory=list)
    means: dict[str, float | None] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """The metrics this evaluation holds, in report order."""
        return [k for k in SUMMARY_KEYS if k in self.means]

    def to_json(self) -> dict:
        """Plain data: top-level means (``psnr``, ``ssim``, ``lpips``, ``warp_error``...),
        ``frames`` (one object per frame), ``unavailable`` and ``details``."""
        data: dict = {"restored": self.restored, "reference": self.reference, "frame_count": len(self.frames)}
        data.update({k: self.means.get(k) for k in ("psnr", "ssim", "lpips", "warp_error")})
        data.update({k: v for k, v in self.means.items() if k not in data})
        data["frames"] = self.frames
        data["unavailable"] = self.unavailable
        data["details"] = self.details
        return data

    def lines(self) -> list[str]:
        """A short table for the terminal."""
        out = [f"{len(self.frames)} frames of {Path(self.restored).name} against {Path(self.reference).name}"]
        for key in self.keys:
            value = self.means[key]
            out.append(f"  {key:17s} {'-' if value is None else format(value, '.6g')}")
        for key, why in self.unavailable.items():
            out.append(f"  {key:17s} left out: {why}")
        return out


def evaluate_videos(restored: str | Path, reference: str | Path, store, *, faces: bool = False,
                    lpips_net: str = "alex", device: str = "cpu", detector: str = "auto",
                    max_frames: int | None = None, log: Log = lambda line: None) -> VideoEvaluation:
    """Score ``restored`` against ``reference`` (module doc).

    Raises:
        InputError: a video is missing or unreadable, or the two differ in frame size, length
            or timing (one line each).
    """
    ours, theirs = VideoReader(restored), VideoReader(reference)
    check_compatible(ours, theirs, max_frames)
    result = VideoEvaluation(str(restored), str(reference))
    lpips = _lpips(store, lpips_net, device, result.unavailable)
    face_metrics = FaceMetrics(store, device, detector)
    result.details = {"flow": FLOW_METHOD, "detector": face_metrics.detector_name,
                      "identity": face_metrics.ids_reason}
    if lpips is not None:
        result.details["lpips"] = f"LPIPS v0.1, {lpips_net} trunk"
    if face_metrics.ids_key == "ids_dlib":
        result.unavailable["ids"] = ("no ArcFace weights (arcface-w600k-r50 / arcface-ir-se50): identity is "
                                     "measured with dlib's descriptor instead, as ids_dlib")
    elif face_metrics.ids_key is None:
        result.unavailable["ids"] = face_metrics.ids_reason
    for key in ("lpips", "ids"):
        if key in result.unavailable:
            log(f"evaluate: {key} left out: {result.unavailable[key]}")
    warping = FlowWarpingError()
    previous = None
    for out, ref in paired_frames(ours, theirs, limit=max_frames):
        a, b = out.image, ref.image
        scores = face_metrics.measure(a, b)
        row: dict = {"index": ref.index, "time": ref.time, "faces": scores.faces,
                     "psnr": psnr_rgb(a, b), "psnr_y": psnr_y(a, b), "ssim": ssim(a, b)}
        if lpips is not None:
            row["lpips"] = _lpips_value(lpips, a, b, device)
        row["warp_error"] = None
        if faces:
            row["warp_error_faces"] = None
        if previous is not None:
            prev_out, prev_ref, prev_boxes = previous
            region = region_mask(prev_boxes, b.shape[1], b.shape[0]) if faces else None
            err = warping(prev_ref, b, prev_out, a, region)
            row["warp_error"] = err.error
            if faces:
                row["warp_error_faces"] = err.region
        if face_metrics.ids_key is not None:
            row[face_metrics.ids_key] = scores.ids
        row["lmd"] = scores.lmd
        result.frames.append(row)
        previous = (a, b, scores.boxes)
    keys = [k for k in SUMMARY_KEYS if any(k in row for row in result.frames)]
    for key in keys:
        values = [row[key] for row in result.frames if row.get(key) is not None]
        result.means[key] = float(np.mean(values)) if values else None
    if result.means.get("lmd") is None and any(row["faces"] for row in result.frames):
        result.unavailable["lmd"] = (f"{face_metrics.detector_name} found no face in the restored frames "
                                     "where the reference has one (IoU >= 0.3)")
        log(f"evaluate: lmd left out: {result.unavailable['lmd']}")
    return result


def _lpips(store, net: str, device: str, unavailable: dict[str, str]):
    from vidrestore.metrics.perceptual import BACKBONE_WEIGHTS

    name = BACKBONE_WEIGHTS[net]
    path = store.find(name)
    if path is None and not store.allow_download:
        entry = store.entry(name)
        unavailable["lpips"] = (f"LPIPS-{net} needs torchvision's ImageNet {net} trunk ({entry.filename}), "
                                f"not found and downloads are off (`vidrestore weights fetch {name}`)")
        return None
    try:
        from vidrestore.metrics.perceptual import LPIPSDistance

        return LPIPSDistance(net, store.require(name)).to(device)
    except WeightsError as exc:
        unavailable["lpips"] = f"LPIPS-{net}: {exc}"
        return None


def _lpips_value(lpips, a: np.ndarray, b: np.ndarray, device: str) -> float:
    import torch

    from vidrestore.imaging import max_value

    def tensor(image: np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        return (x / (max_value(image) / 2) - 1.0).to(device)

    with torch.inference_mode():
        return float(lpips(tensor(a), tensor(b))[0])
