"""Paste-back on the device: inverse warp, mask and blend of each face into the frame tensor.

The same arithmetic as ``faces.paste.blend.paste_faces``: each face is warped back over its
ROI only (``face_roi``), its crop-space mask warped bilinearly with zeros outside, the restored
face warped with the configured interpolation (``linear`` or ``cubic``, replicated at its
edge), blended as ``frame + mask · (restored − frame)`` in float32 in the frame's own units,
rounded half to even and clipped. Where the mask is 0 the frame's value comes back exactly.
A face whose restored crop holds NaN or inf leaves the frame as it was (decided on the device,
without waiting), and gets ``skip`` set once the results are back.

Only what changed comes back to the host: each pasted ROI, or the whole frame when the ROIs
together cover more than ``whole_frame_share`` of it (one copy is then cheaper than many).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from vidrestore.faces.face import Face
from vidrestore.faces.paste.blend import face_roi, restored_affine
from vidrestore.faces.paste.masks import FaceMasker, TemplateMasker

from .frame import DeviceFrame, used_on
from .warp import MODES, normalised_theta, sample, sampling_grid

NAN_SKIP = "restored face has NaN or inf"


@dataclass
class _Pasted:
    face: Face
    box: tuple[int, int, int, int]
    flags: Tensor  # uint8: [finite, rows with mask > 0 ..., columns with mask > 0 ...]


class MaskUploads:
    """Crop-space masks on the device. A read-only mask (the memoised template mask) is sent
    once and kept; other masks (face parsing, one per face) are sent each time."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._kept: dict[int, tuple[np.ndarray, Tensor]] = {}

    def get(self, mask: np.ndarray) -> Tensor:
        entry = self._kept.get(id(mask))
        if entry is not None and entry[0] is mask:
            return entry[1]
        tensor = torch.from_numpy(np.array(mask, dtype=np.float32)).to(self.device, non_blocking=True)
        if not mask.flags.writeable:
            self._kept[id(mask)] = (mask, tensor)  # holding the array keeps its id unique
        return tensor


def as_tensor(restored, device: torch.device) -> Tensor:
    """A restored crop (S×S×3 float [0, 1], numpy or tensor) as a float32 tensor on ``device``."""
    if isinstance(restored, Tensor):
        return restored.to(device=device, dtype=torch.float32)
    return torch.from_numpy(np.ascontiguousarray(restored, dtype=np.float32)).to(device, non_blocking=True)


def host_face(face: Face) -> Face:
    """``face`` with its restored crop as a host array (for maskers that read it on the CPU)."""
    restored = face.restored
    if isinstance(restored, Tensor):
        restored = restored.detach().float().cpu().numpy()
    return dataclasses.replace(face, restored=restored)


def paste_on_device(frame: DeviceFrame, image: np.ndarray, faces: Sequence[Face], masker: FaceMasker,
                    masks: MaskUploads, *, interpolation: str, stream=None,
                    whole_frame_share: float = 0.5) -> list[tuple[int, int, int, int]]:
    """Blend each face's ``restored`` crop into ``frame`` on the device, then bring the changed
    pixels back into ``image`` (the host frame, H×W×3 uint8 / uint16).

    ``stream`` is the stream the work is queued on (the caller has entered it and made it wait
    for ``frame``'s events); None on the CPU. Faces without ``restored`` or ``affine``, or with
    ``skip`` set, are left alone; later faces are blended over earlier ones.

    Returns:
        The boxes ``(x0, y0, x1, y1)`` of ``image`` that were written (for ``Frame.touch``), as
        ``paste_faces`` gives them.
    """
    if interpolation not in MODES:
        raise ValueError(f"the device paste has no {interpolation!r} interpolation (only {', '.join(MODES)})")
    dev = frame.image
    device = dev.device
    top = float(torch.iinfo(dev.dtype).max)
    height, width = dev.shape[:2]
    pasted: list[_Pasted] = []
    for face in faces:
        if face.restored is None or face.affine is None or face.skip:
            continue
        restored = as_tensor(face.restored, device)
        used_on(restored, stream)
        size = int(restored.shape[0])
        affine = restored_affine(face)
        box = face_roi(affine, size, (height, width))
        if box is None:
            continue
        x0, y0, x1, y1 = box
        to_crop = affine.copy()
        to_crop[:, 2] += affine[:, :2] @ np.array([x0, y0], dtype=np.float64)
        grid = sampling_grid(normalised_theta(to_crop, (size, size), (y1 - y0, x1 - x0))[None], (y1 - y0, x1 - x0),
                             device)
        crop_mask = masker.mask(face) if isinstance(masker, TemplateMasker) else masker.mask(host_face(face))
        mask = sample(masks.get(crop_mask)[None, None], grid, "bilinear", "zeros")[0, 0]
        warped = sample(restored.permute(2, 0, 1)[None] * top, grid, MODES[interpolation], "border")[0]
        region = dev[y0:y1, x0:x1]
        base = region.permute(2, 0, 1).float()
        blend = warped.sub_(base).mul_(mask).add_(base).round_().clamp_(0.0, top)
        finite = torch.isfinite(restored).all()
        blend = torch.where(finite, blend, base)
        region.copy_(blend.permute(1, 2, 0).to(dev.dtype))
        support = mask > 0
        flags = torch.cat([finite.view(1), support.any(1), support.any(0)]).to(torch.uint8)
        pasted.append(_Pasted(face, box, flags))
    if not pasted:
        return []
    shared = not dev.is_cuda and dev.data_ptr() == image.__array_interface__["data"][0]
    flags, rois = _bring_back(dev, pasted, stream, whole_frame_share, copy_pixels=not shared)
    changed = []
    for item, flag, roi in zip(pasted, flags, rois):
        if not flag[0]:
            item.face.skip = NAN_SKIP
            continue
        x0, y0, x1, y1 = item.box
        rows = np.flatnonzero(flag[1 : 1 + y1 - y0])
        cols = np.flatnonzero(flag[1 + y1 - y0 :])
        if roi is not None:
            image[y0:y1, x0:x1] = roi
        if len(rows) and len(cols):
            changed.append((x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1))
    return changed


def _bring_back(dev: Tensor, pasted: list[_Pasted], stream, whole_frame_share: float, *, copy_pixels: bool):
    """The flags of every pasted face and its ROI's pixels as host arrays (pixels None when
    the host frame is the device frame's own memory: a CPU run). On CUDA the copies go into
    pinned memory without blocking, and this thread waits once, for all of them."""
    if not copy_pixels:
        return [p.flags.numpy() for p in pasted], [None] * len(pasted)
    cuda = dev.is_cuda

    def host_copy(t: Tensor) -> Tensor:
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=cuda)
        host.copy_(t, non_blocking=cuda)
        return host

    flags_host = host_copy(torch.cat([p.flags for p in pasted]))
    area = sum((p.box[2] - p.box[0]) * (p.box[3] - p.box[1]) for p in pasted)
    whole = area > whole_frame_share * dev.shape[0] * dev.shape[1]
    if whole:
        frame_host = host_copy(dev)
    else:
        copies = [host_copy(dev[p.box[1] : p.box[3], p.box[0] : p.box[2]]) for p in pasted]
    if cuda:
        done = torch.cuda.Event()
        done.record(stream if stream is not None else torch.cuda.current_stream(dev.device))
        done.synchronize()
    out_flags, start = [], 0
    host_flags = flags_host.numpy()
    for p in pasted:
        out_flags.append(host_flags[start : start + len(p.flags)])
        start += len(p.flags)
    if whole:
        return out_flags, [frame_host.numpy()[p.box[1] : p.box[3], p.box[0] : p.box[2]] for p in pasted]
    return out_flags, [c.numpy() for c in copies]
