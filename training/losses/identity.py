"""Identity embeddings for L_ids = 1 − cos(ArcFace(I_res), ArcFace(I_h)) and the IDS metric.

The faces are FFHQ-aligned ``S×S`` crops; ArcFace wants 112×112 crops aligned to its own
5-point template. The similarity between the two templates is fixed, so the ArcFace crop is
one differentiable ``grid_sample`` of the aligned face (after an antialiased resize when it
shrinks), the same crop ``vidrestore.faces.align.align_arcface`` makes from a frame.

``ArcFaceEncoder``: facexlib's IR-SE50 (``recognition_arcface_ir_se50.pth`` from the weights
folder), frozen, eval mode, gradients flow to the input. ``StandInEncoder``: a RANDOMLY
INITIALISED small conv net for smoke runs only; its "identities" mean nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidrestore.faces.align import ARCFACE_TEMPLATE_112, similarity_lstsq, template
from vidrestore.models.arcface import load_ir_se50
from vidrestore.models.checkpoint import STAND_IN_RECOGNIZER, Recognizer
from vidrestore.weights import WeightStore

from .perceptual import FrozenModule

ARCFACE_SIZE = 112


def _norm_from_pixels(size: int) -> np.ndarray:
    """3×3: OpenCV pixel coordinates (centre of pixel i at i) → grid_sample units."""
    return np.array([[2.0 / size, 0, 1.0 / size - 1], [0, 2.0 / size, 1.0 / size - 1], [0, 0, 1]])


def arcface_theta(size: int) -> tuple[Tensor, int]:
    """``(theta 2×3, resize_to)``: sample the ArcFace crop from an FFHQ-aligned ``size`` face
    resized to ``resize_to`` (smaller only when the crop shrinks the face, for antialiasing)."""
    scale = float(np.linalg.norm(similarity_lstsq(template(size), ARCFACE_TEMPLATE_112)[:, 0]))
    source = max(ARCFACE_SIZE, round(size * scale)) if scale < 1 else size
    # The resize maps pixel centres as (x + 0.5)·r − 0.5 (align_corners=False).
    points = (template(size) + 0.5) * (source / size) - 0.5
    affine = np.vstack([similarity_lstsq(points, ARCFACE_TEMPLATE_112), [0, 0, 1]])
    theta = _norm_from_pixels(source) @ np.linalg.inv(affine) @ np.linalg.inv(_norm_from_pixels(ARCFACE_SIZE))
    return torch.tensor(theta[:2], dtype=torch.float32), source


def arcface_crops(faces: Tensor) -> Tensor:
    """FFHQ-aligned faces ``B×3×S×S`` in [-1, 1] → ArcFace crops ``B×3×112×112`` (differentiable)."""
    b, _, size, _ = faces.shape
    theta, source = arcface_theta(size)
    x = faces.float()
    if source != size:
        x = F.interpolate(x, size=(source, source), mode="bilinear", align_corners=False, antialias=True)
    grid = F.affine_grid(theta.to(x.device).expand(b, 2, 3), [b, 3, ARCFACE_SIZE, ARCFACE_SIZE], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class IdentityEncoder(FrozenModule):
    """Base: ``forward(faces B×3×S×S [-1, 1]) -> B×512`` unit vectors; ``loss`` = 1 − cos.

    ``recognizer``: which network this is (``vidrestore.models.Recognizer``), recorded in the
    checkpoints of the runs that use it.
    """

    is_stand_in = False
    backbone: nn.Module
    recognizer: Recognizer = Recognizer(STAND_IN_RECOGNIZER)

    def forward(self, faces: Tensor) -> Tensor:
        return F.normalize(self.backbone(arcface_crops(faces)).float(), dim=-1)

    def loss(self, restored: Tensor, target: Tensor) -> Tensor:
        """Mean ``1 − cos`` between the identities of ``restored`` and the target embeddings
        ``target`` (``B×512``, computed without gradients by the caller)."""
        return (1.0 - (self(restored) * target.detach()).sum(-1)).mean()


class ArcFaceEncoder(IdentityEncoder):
    """facexlib's IR-SE50 ArcFace loaded strictly from ``path`` (``vidrestore.models.arcface``)."""

    def __init__(self, path, sha256: str | None = None) -> None:
        super().__init__()
        self.backbone = load_ir_se50(path)
        self.recognizer = Recognizer("arcface-ir-se50", Path(path).name, sha256)
        self.freeze()


class _Standardise(nn.Module):
    """Zero mean, unit variance per sample: keeps random features from sharing one direction."""

    def forward(self, x: Tensor) -> Tensor:
        return (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-6)


class StandInEncoder(IdentityEncoder):
    """SMOKE ONLY: a seeded, randomly initialised conv net producing 512-d "identities"."""

    is_stand_in = True

    def __init__(self, seed: int = 1, dim: int = 512) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.LeakyReLU(0.2), nn.Conv2d(16, 32, 3, 2, 1, bias=False),
            nn.LeakyReLU(0.2), nn.Conv2d(32, 32, 3, 2, 1, bias=False), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            _Standardise(), nn.Linear(512, dim, bias=False),
        )
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) / max(1, p[0].numel()) ** 0.5)
        self.freeze()


def build_identity(store: WeightStore, *, stand_in: bool, log: Callable[[str], None] = lambda line: None) -> IdentityEncoder:
    """The identity encoder of a run: ArcFace IR-SE50 from the weights folder, or the stand-in.

    Raises MissingWeightsError (naming the file and URL) when ArcFace is absent.
    """
    if stand_in:
        log("identity: RANDOM STAND-IN encoder (smoke config; not ArcFace, identities mean nothing)")
        return StandInEncoder()
    path = store.require("arcface-ir-se50")
    log(f"identity: ArcFace IR-SE50 ({path})")
    return ArcFaceEncoder(path, store.sha256(path))
