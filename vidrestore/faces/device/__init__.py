"""Face work on a torch device: alignment, inverse warp, mask and blend as ``grid_sample``.

``DeviceFaceOps`` does on a tensor copy of the frame what ``faces.align.warp_face`` and
``faces.paste.paste_faces`` do with OpenCV on the host array, with the same results (PSNR
≥ 45 dB on the pasted frames, pixels outside the faces bit-exact; ``tests/faces/
test_device_ops.py``). On CUDA a frame goes up once (pinned, asynchronous), its crops are made
there and stay there for the restorer, the restored faces are pasted there, and only the
pasted regions come back for encoding. The same code runs on the CPU.

``build_face_ops`` is what ``--face-ops`` means: ``auto`` takes the torch ops on CUDA and
OpenCV on the CPU, where OpenCV measured faster (docs/benchmarks.md, "Face ops").
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from vidrestore.errors import UsageError
from vidrestore.faces.face import Face
from vidrestore.faces.paste.config import PasteConfig
from vidrestore.faces.paste.masks import FaceMasker, TemplateMasker

from .align import align_crops, source_box
from .frame import DeviceFrame, new_stream, stream_context, upload, used_on
from .paste import NAN_SKIP, MaskUploads, host_face, paste_on_device
from .warp import MODES

__all__ = ["NAN_SKIP", "DeviceFaceOps", "DeviceFrame", "build_face_ops", "host_array", "host_face", "source_box",
           "stack_crops"]


class DeviceFaceOps:
    """Alignment and paste-back on ``device`` (see the package doc).

    Args:
        device: the torch device (the restorer's).
        config: the paste settings (its interpolation must be ``linear`` or ``cubic``).
        whole_frame: align every face of a frame in one call over the whole frame (default:
            on CUDA), else each face over its own source rectangle (default on the CPU).
        whole_frame_share: bring the whole frame back when the pasted ROIs cover more than
            this share of it, else each ROI.

    The face stage calls ``upload`` and ``align`` in its thread, the paste stage ``paste`` in
    its own; each queues its work on its own CUDA stream.
    """

    name = "torch"

    def __init__(self, device: torch.device | str, config: PasteConfig | None = None, *,
                 whole_frame: bool | None = None, whole_frame_share: float = 0.5) -> None:
        self.device = torch.device(device)
        self.config = config or PasteConfig()
        if self.config.interpolation not in MODES:
            raise UsageError(f"the torch face ops paste with {' or '.join(MODES)} interpolation, "
                             f"not {self.config.interpolation}")
        cuda = self.device.type == "cuda"
        self.whole_frame = cuda if whole_frame is None else whole_frame
        self.whole_frame_share = whole_frame_share
        self._upload_stream = new_stream(self.device)
        self._align_stream = new_stream(self.device)
        self._paste_stream = new_stream(self.device)
        self._masks = MaskUploads(self.device)

    def upload(self, image: np.ndarray) -> DeviceFrame:
        """The frame on the device (pinned, non-blocking on CUDA; shared memory on the CPU)."""
        return upload(image, self.device, self._upload_stream)

    def align(self, frame: DeviceFrame, affines: Sequence[np.ndarray], size: int) -> list[Tensor]:
        """The faces' aligned crops, S×S×3 float32 RGB [0, 1] tensors on the device (views of
        one N×3×S×S tensor), queued after ``frame``'s events; records its own."""
        stream = self._align_stream
        with stream_context(stream):
            frame.wait(stream)
            used_on(frame.image, stream)
            crops = align_crops(frame.image, affines, size, whole_frame=self.whole_frame)
            frame.mark(stream)
        return [crop.permute(1, 2, 0) for crop in crops]

    def paste(self, frame: DeviceFrame, image: np.ndarray, faces: Sequence[Face],
              masker: FaceMasker | None = None) -> list[tuple[int, int, int, int]]:
        """Blend the faces' restored crops into ``frame`` and bring the changed pixels back
        into ``image`` (the host frame); the boxes written, as ``paste_faces`` returns them."""
        masker = masker or TemplateMasker(self.config)
        stream = self._paste_stream
        with stream_context(stream):
            frame.wait(stream)
            used_on(frame.image, stream)
            return paste_on_device(frame, image, faces, masker, self._masks,
                                   interpolation=self.config.interpolation, stream=stream,
                                   whole_frame_share=self.whole_frame_share)


def build_face_ops(name: str, device: torch.device, config: PasteConfig) -> tuple[DeviceFaceOps | None, str]:
    """``--face-ops``: the ops a run uses (None: OpenCV on the host) and why, for the log.

    ``auto``: the torch ops on CUDA, OpenCV on the CPU (measured faster there, and it offers
    every interpolation); ``torch`` on any device (UsageError with ``lanczos``); ``opencv``.
    """
    if name not in ("auto", "opencv", "torch"):
        raise UsageError(f"--face-ops must be auto, opencv or torch, not {name!r}")
    if name == "opencv":
        return None, "asked for"
    if name == "auto":
        if device.type != "cuda":
            return None, "OpenCV is the faster on a CPU (docs/benchmarks.md)"
        if config.interpolation not in MODES:
            return None, f"{config.interpolation} interpolation has no grid_sample kernel"
        return DeviceFaceOps(device, config), f"frames go to {device} once; faces are aligned and pasted there"
    return DeviceFaceOps(device, config), "asked for"


def stack_crops(crops: Sequence, frames: Sequence[DeviceFrame | None] = ()) -> np.ndarray | Tensor:
    """One batch of aligned crops: N×S×S×3 float32, a host array, or a tensor on the crops'
    device when they are tensors (the device face ops made them; ``frames`` are their frames,
    whose events the current stream waits for first)."""
    if not any(isinstance(c, Tensor) for c in crops):
        return np.stack(crops)
    tensors = [c if isinstance(c, Tensor) else torch.from_numpy(np.asarray(c)) for c in crops]
    device = tensors[0].device
    stream = torch.cuda.current_stream(device) if device.type == "cuda" else None
    for frame in {id(f): f for f in frames if f is not None}.values():
        frame.wait(stream)
    for t in tensors:
        used_on(t, stream)
    return torch.stack([t.to(device) for t in tensors])


def host_array(value) -> np.ndarray:
    """A crop (numpy or tensor, anywhere) as a host float32 array."""
    if isinstance(value, Tensor):
        return value.detach().float().cpu().numpy()
    return value



