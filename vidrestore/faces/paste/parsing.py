"""A paste mask refined by face parsing (facexlib's ParseNet, CelebAMask-HQ's 19 classes).

As the official CodeFormer helper: ParseNet labels the restored 512 crop; skin, brows, eyes,
glasses, ears, earrings, nose, mouth, lips and hair count as face (not background, hat, neck,
clothes); that binary mask is blurred twice, its 10 px border cleared, and the result is
intersected (pixel-wise minimum) with the feathered template mask, so the face is pasted
without the neck and background the restorer may have invented.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from vidrestore.compat import import_needing_torchvision
from vidrestore.faces.face import Face
from vidrestore.models.checkpoint import load_weights_file

from .config import PasteConfig
from .masks import TemplateMasker, restored_crop

FACE_CLASSES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15)
"""ParseNet labels kept in the mask: 1 skin, 2 nose, 3 glasses, 4/5 eyes, 6/7 brows, 8/9 ears,
10 mouth, 11/12 lips, 13 hair, 15 earring (dropped: 0 background, 14 hat, 16 necklace,
17 neck, 18 cloth)."""

PARSE_SIZE = 512


def build_parsenet(device: torch.device | str = "cpu") -> torch.nn.Module:
    """facexlib's ParseNet (512 in, 19 classes) with random weights, in eval mode."""
    ParseNet = import_needing_torchvision("facexlib.parsing.parsenet").ParseNet
    return ParseNet(in_size=PARSE_SIZE, out_size=PARSE_SIZE, parsing_ch=19).eval().to(device)


def load_parsenet(path: Path | str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """ParseNet with the checkpoint at ``path`` loaded strictly (``weights_only``)."""
    net = load_weights_file(build_parsenet("cpu"), path, what="ParseNet")
    return net.to(device).requires_grad_(False)


def parse_to_mask(labels: np.ndarray, size: int) -> np.ndarray:
    """ParseNet labels (n×n int) → soft face mask size×size float32 in [0, 1].

    The official helper's post-processing, scaled to the crop: Gaussian blur (sigma 11,
    kernel 101 at 512) twice, 10 px border cleared.
    """
    n = labels.shape[0]
    mask = np.isin(labels, FACE_CLASSES).astype(np.float32)
    sigma = 11.0 * n / 512
    k = 2 * int(round(50 * n / 512)) + 1
    mask = cv2.GaussianBlur(cv2.GaussianBlur(mask, (k, k), sigma), (k, k), sigma)
    border = int(round(10 * n / 512))
    if border:
        mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = 0, 0, 0, 0
    if n != size:
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(mask, 0.0, 1.0)


class ParsingMasker:
    """Template mask ∩ ParseNet face mask of the restored face.

    Args:
        weights: ``parsing_parsenet.pth``.
        device: torch device.
        config: the template mask's settings.
        reason: why this masker was chosen, for the log.
        parse_size: side the crop is resized to for ParseNet (512 as trained and as the
            official helper; smaller is faster and coarser).
    """

    name = "parsenet"

    def __init__(
        self,
        weights: Path | str,
        device: torch.device | str = "cpu",
        config: PasteConfig | None = None,
        reason: str = "",
        parse_size: int = PARSE_SIZE,
    ) -> None:
        self.device = torch.device(device)
        self.parse_size = int(parse_size)
        self.net = load_parsenet(weights, self.device)
        self.template = TemplateMasker(config or PasteConfig())
        self.reason = reason or f"{Path(weights).name} found"

    @torch.inference_mode()
    def labels(self, crops: np.ndarray) -> np.ndarray:
        """ParseNet labels of N×S×S×3 float32 RGB [0, 1] crops: N×P×P int64 (P = parse_size)."""
        x = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32)).permute(0, 3, 1, 2)
        p = self.parse_size
        if x.shape[-1] != p:
            x = torch.nn.functional.interpolate(x, size=(p, p), mode="bilinear",
                                                align_corners=False, antialias=True)
        logits = self.net((x.to(self.device) - 0.5) / 0.5)[0]
        return logits.argmax(1).cpu().numpy()

    def mask(self, face: Face) -> np.ndarray:
        restored = restored_crop(face)
        size = restored.shape[0]
        parsed = parse_to_mask(self.labels(restored[None])[0], size)
        return np.minimum(parsed, self.template.mask(face))
