"""Paste restored faces back into the frame, blended through a feathered mask.

Each face is inverse-warped only over the part of the frame its crop covers (its ROI), so a
face in a 4K frame costs what the face costs. The blend ``frame + mask · (restored − frame)``
is done in float32 in the frame's own integer units, then rounded; where the mask is 0 the
frame's pixels come back bit-exact.

The default mask is the official helper's: the crop square, eroded and Gaussian-blurred, so
the transition lies at the crop's edge (usually background), with erosion and blur given as
fractions of the crop side and so scaling with the face. With ParseNet weights present the
mask is that square ∩ the blurred face-parsing mask (``parsing.ParsingMasker``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np
import torch

from ..errors import UsageError
from ..weights import WeightStore
from .face import Face

MaskKind = Literal["auto", "parsing", "template"]

_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


@dataclass(frozen=True)
class PasteConfig:
    """How faces are blended back.

    Attributes:
        mask: ``template`` (feathered crop square), ``parsing`` (∩ ParseNet face mask, needs
            its weights) or ``auto`` (parsing when the weights are present).
        shape: the template region: ``square`` (the official helper's: the whole crop, so
            hair and the crop's background are restored too) or ``ellipse`` (a face-shaped
            region, leaving more of the frame untouched).
        erode: how far the mask's edge is pulled in from the crop's edge, as a fraction of
            the crop side (the official helper: 1/20).
        blur: Gaussian sigma of the feather, as a fraction of the crop side.
        interpolation: sampling of the inverse warp (``linear``, ``cubic``, ``lanczos``).
            Cubic by default: the align → paste round trip of an unchanged face measures
            47.2 dB PSNR with cubic against 43.1 dB with bilinear (astronaut, uint8), since
            the paste samples the crop between its pixels, where bilinear cuts the peaks.
    """

    mask: MaskKind = "auto"
    shape: Literal["square", "ellipse"] = "square"
    erode: float = 0.06
    blur: float = 0.02
    interpolation: Literal["linear", "cubic", "lanczos"] = "cubic"

    def __post_init__(self) -> None:
        if self.mask not in ("auto", "parsing", "template"):
            raise UsageError(f"paste mask must be auto, parsing or template, not {self.mask!r}")
        if self.shape not in ("square", "ellipse"):
            raise UsageError(f"paste mask shape must be square or ellipse, not {self.shape!r}")
        if not (0.0 <= self.erode < 0.4 and 0.0 <= self.blur < 0.2):
            raise UsageError("paste erode must be in [0, 0.4) and blur in [0, 0.2)")
        if self.interpolation not in _INTERPOLATION:
            raise UsageError(f"paste interpolation must be one of {', '.join(_INTERPOLATION)}")


@runtime_checkable
class FaceMasker(Protocol):
    """Gives the blend mask of a face in crop space.

    Attributes:
        name: what to call it in logs (``template``, ``parsenet``).
    """

    name: str

    def mask(self, face: Face) -> np.ndarray:
        """S×S float32 in [0, 1] (S = the side of ``face.restored``), 0 at the crop's edge."""
        ...


@functools.lru_cache(maxsize=16)
def template_mask(size: int, config: PasteConfig = PasteConfig()) -> np.ndarray:
    """The feathered crop-space mask: size×size float32 in [0, 1], read-only (memoised: the
    same for every face of a size).

    The region (square or ellipse) is pulled in by ``erode``·size, then blurred with
    sigma = ``blur``·size and a kernel cut at 3 sigma; the inset is kept ≥ that radius + 1
    px, so the mask is exactly 0 on the crop's border and beyond.
    """
    sigma = config.blur * size
    radius = int(np.ceil(3 * sigma))
    inset = max(config.erode * size, radius + 1.0)
    if config.shape == "square":
        lo, hi = int(round(inset)), size - int(round(inset))
        region = np.zeros((size, size), np.float32)
        region[lo:hi, lo:hi] = 1.0
    else:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        # Covers the FFHQ face from the brows to the chin, ears included.
        cx, cy, ax, ay = 0.5 * size, 0.53 * size, 0.5 * size - inset, 0.47 * size - inset
        region = ((((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2) <= 1.0).astype(np.float32)
    if radius > 0:
        region = cv2.GaussianBlur(region, (2 * radius + 1, 2 * radius + 1), sigma,
                                  borderType=cv2.BORDER_CONSTANT)
    mask = np.clip(region, 0.0, 1.0)
    mask.setflags(write=False)
    return mask


class TemplateMasker:
    """The landmark-template mask (the same for every face of a size).

    Args:
        config: shape, erosion and blur of the mask.
        reason: why this masker was chosen, for the log.
    """

    name = "template"

    def __init__(self, config: PasteConfig = PasteConfig(), reason: str = "") -> None:
        self.config = config
        self.reason = reason

    def mask(self, face: Face) -> np.ndarray:
        return template_mask(_restored(face).shape[0], self.config)


def build_masker(
    kind: MaskKind,
    store: WeightStore,
    device: torch.device | str = "cpu",
    config: PasteConfig | None = None,
) -> FaceMasker:
    """The paste mask maker ``kind``.

    ``auto`` uses ParseNet when ``parsenet`` weights are already present (never downloads),
    else the template mask; ``parsing`` requires the weights (``store.require``: a download
    when allowed, else ``MissingWeightsError``); ``template`` needs nothing.
    """
    config = config or PasteConfig()
    if kind == "template":
        return TemplateMasker(config, reason="requested")
    if kind not in ("auto", "parsing"):
        raise UsageError(f"unknown paste mask {kind!r}; choose auto, parsing or template")
    if kind == "auto" and store.find("parsenet") is None:
        where = ", ".join(map(str, store.folders()))
        return TemplateMasker(config, reason=f"ParseNet weights not found in {where}")
    from .parsing import ParsingMasker

    path = store.require("parsenet")  # present (auto): only checks its sha256
    return ParsingMasker(path, device=device, config=config)


def _restored(face: Face) -> np.ndarray:
    if face.restored is None:
        raise ValueError("face has no restored crop")
    r = face.restored
    if r.ndim != 3 or r.shape[0] != r.shape[1] or r.shape[2] != 3:
        raise ValueError(f"restored face must be S×S×3, got {r.shape}")
    return r


def _max_value(image: np.ndarray) -> float:
    if image.dtype == np.uint8:
        return 255.0
    if image.dtype == np.uint16:
        return 65535.0
    raise TypeError(f"expected a uint8 or uint16 image, got {image.dtype}")


def restored_affine(face: Face) -> np.ndarray:
    """Frame → restored-crop transform: ``face.affine``, rescaled when the restorer changed
    the crop's size (pixel centres kept: u' = k·(u + ½) − ½)."""
    affine = np.asarray(face.affine, dtype=np.float64)
    size = _restored(face).shape[0]
    crop_size = face.crop.shape[0] if face.crop is not None else size
    if crop_size == size:
        return affine
    k = size / crop_size
    out = affine * k
    out[:, 2] += 0.5 * k - 0.5
    return out


def face_roi(affine: np.ndarray, size: int, frame_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The frame rectangle ``(x0, y0, x1, y1)`` the ``size`` crop covers (+ a 2 px margin for
    interpolation), clipped to the frame; None when it lies outside."""
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    corners = np.array([[-0.5, -0.5, 1], [size - 0.5, -0.5, 1], [-0.5, size - 0.5, 1],
                        [size - 0.5, size - 0.5, 1]])
    pts = corners @ inv.T
    h, w = frame_hw
    x0 = max(int(np.floor(pts[:, 0].min())) - 2, 0)
    y0 = max(int(np.floor(pts[:, 1].min())) - 2, 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + 3, w)
    y1 = min(int(np.ceil(pts[:, 1].max())) + 3, h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def paste_faces(
    image: np.ndarray,
    faces: Sequence[Face],
    masker: FaceMasker | None = None,
    config: PasteConfig | None = None,
) -> list[tuple[int, int, int, int]]:
    """Blend each face's ``restored`` crop back into ``image``, in place.

    Args:
        image: H×W×3 uint8 or uint16 RGB frame, modified in place.
        faces: faces of this frame; those without ``restored`` or ``affine``, or with
            ``skip`` set, are left alone. Later faces are blended over earlier ones. A face
            whose ``restored`` holds NaN or inf is not pasted and gets ``skip`` set saying so.
        masker: gives each face's crop-space mask; default the template mask of ``config``.
        config: interpolation and template-mask settings.

    Returns:
        The boxes ``(x0, y0, x1, y1)`` of ``image`` that were written (for ``Frame.touch``).
    """
    config = config or PasteConfig()
    changed: list[tuple[int, int, int, int]] = []
    masker = masker or TemplateMasker(config)
    top = _max_value(image)
    interp = _INTERPOLATION[config.interpolation]
    if not (image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"expected an H×W×3 frame, got shape {image.shape}")
    for face in faces:
        if face.restored is None or face.affine is None or face.skip:
            continue
        restored = _restored(face)
        if not np.isfinite(restored).all():  # e.g. an fp16 engine overflowing: keep the frame
            face.skip = "restored face has NaN or inf"
            continue
        size = restored.shape[0]
        affine = restored_affine(face)
        roi_box = face_roi(affine, size, image.shape[:2])
        if roi_box is None:
            continue
        x0, y0, x1, y1 = roi_box
        # ROI pixel → crop pixel, for warpAffine's WARP_INVERSE_MAP (no matrix inversion).
        to_crop = affine.copy()
        to_crop[:, 2] += affine[:, :2] @ np.array([x0, y0], dtype=np.float64)
        dsize = (x1 - x0, y1 - y0)
        mask = cv2.warpAffine(
            np.ascontiguousarray(masker.mask(face), dtype=np.float32), to_crop, dsize,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )
        if not mask.any():
            continue
        blend = cv2.warpAffine(
            np.ascontiguousarray(restored, dtype=np.float32) * np.float32(top), to_crop, dsize,
            flags=interp | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
        )
        roi = image[y0:y1, x0:x1]
        base = roi.astype(np.float32)
        # base + mask · (restored − base), in place. Where the mask is 0 this is base exactly
        # (an integer in float32), so untouched pixels come back bit-exact.
        blend -= base
        blend *= mask[:, :, None]
        blend += base
        np.rint(blend, out=blend)
        np.clip(blend, 0, top, out=blend)
        roi[...] = blend.astype(image.dtype)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        changed.append((x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1))
    return changed
