"""The upscale stage: the whole frame enlarged (``--upscale``), its faces' geometry with it.

It sits between the restore and paste stages. Faces were detected and aligned on the source
frame; here the frame is enlarged by an ``Upscaler`` — Real-ESRGAN run tile by tile through
an engine (``engines.tiled.TiledUpscaler``) or a plain resampling (``ResizeUpscaler``) — and
every face's frame → crop affine is composed with the enlargement, so the paste stage puts
the 512² restored face into the enlarged frame at its own geometry and its detail survives
(the official CodeFormer pastes into its background upsampler's output the same way).
Boxes and landmarks are scaled too (the overlay draws them). The frame's decoded planes are
dropped: the writer converts the whole enlarged frame; with the device face ops, the
frame's device copy is dropped too and the enlarged frame is pasted on the host.
"""

from __future__ import annotations

from typing import Literal, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from vidrestore.faces.geometry import compose, grid_scale, inverse, map_points

from .contracts import FrameJob


@runtime_checkable
class Upscaler(Protocol):
    """Enlarges whole frames by ``scale``.

    Attributes:
        name: for logs (``realesrgan-x2plus/torch-fp32@cpu ×2, tiles 256×256 (pad 16)``).
        scale: the enlargement.
    """

    name: str
    scale: int

    def upscale(self, image: np.ndarray) -> np.ndarray:
        """H×W×3 uint8 / uint16 RGB → (scale·H)×(scale·W)×3 of the same dtype."""
        ...


_INTERPOLATION = {"lanczos": cv2.INTER_LANCZOS4, "bicubic": cv2.INTER_CUBIC}


class ResizeUpscaler:
    """Enlargement by resampling (OpenCV ``resize``: pixel centres kept, as ``geometry``).

    Args:
        scale: the enlargement.
        method: ``lanczos`` (8×8 Lanczos kernel: sharp, the offline stand-in for Real-ESRGAN)
            or ``bicubic`` (a plain resize: ``--bg-upsampler none``).
    """

    def __init__(self, scale: int, method: Literal["lanczos", "bicubic"] = "lanczos") -> None:
        self.scale = scale
        self.method = method
        self.name = f"{method} ×{scale}"

    def upscale(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        return cv2.resize(image, (width * self.scale, height * self.scale),
                          interpolation=_INTERPOLATION[self.method])


def scale_faces(faces, scale: float) -> None:
    """Move faces (affine, box, landmarks) from a frame to the same frame enlarged ``scale``×."""
    grid = grid_scale(scale, scale)
    back = inverse(grid)
    for face in faces:
        if face.affine is not None:
            face.affine = compose(face.affine, back)
        face.landmarks = map_points(grid, face.landmarks)
        face.box = map_points(grid, np.asarray(face.box).reshape(2, 2)).reshape(4)


class UpscaleStage:
    """Enlarges every frame with ``upscaler`` and moves its faces along (satisfies ``Stage``).

    Args:
        upscaler: an ``Upscaler``.
    """

    name = "upscale"

    def __init__(self, upscaler: Upscaler) -> None:
        self.upscaler = upscaler

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameJob]:
        for job in jobs:
            if getattr(job, "device", None) is not None:  # the device face ops' copy is the small frame:
                job.device.wait_here()  # (its restored faces are read on this stream)
                job.device = None  # the enlarged frame is pasted on the host
            frame = job.frame
            frame.image = self.upscaler.upscale(frame.image)
            frame.source = None  # the planes are the small frame's: the writer converts it all
            frame.touched = []
            scale_faces(job.faces, self.upscaler.scale)
        return list(jobs)

    def flush(self) -> list[FrameJob]:
        return []
