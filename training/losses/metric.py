"""CodeFormer++'s deep metric learning: pull the TGRN output to a positive, push it off negatives.

Positive ``I_AP``: the facial components (eyes with brows, nose, mouth) of the faithful
``I_F`` with the texture (everything else) of the warped generative ``I_warp``. Face parsing
weights may be absent, so the components come from a template mask: feathered ellipses
around the FFHQ template's landmarks, which sit at fixed places in every aligned face.

Negatives are hard samples: ``I_G`` (generative, not aligned to the input), the degraded
input, and the positives of the other faces in the batch; for each anchor the closest one
(hardest) counts in the triplet loss, all of them in InfoNCE. Distances are perceptual
(the run's LPIPS).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidrestore.faces.align import template

Distance = Callable[[Tensor, Tensor], Tensor]


def component_mask(size: int) -> np.ndarray:
    """``size×size`` float32 mask in [0, 1]: eyes + brows, nose, mouth of an FFHQ-aligned face."""
    t = template(512)
    mask = np.zeros((512, 512), np.float32)
    for eye in t[:2]:
        cv2.ellipse(mask, (int(eye[0]), int(eye[1] - 14)), (50, 40), 0, 0, 360, 1.0, -1)
    nose_top = (t[0] + t[1]) / 2
    cv2.ellipse(mask, (int(t[2][0]), int((nose_top[1] + t[2][1]) / 2 + 8)), (32, 52), 0, 0, 360, 1.0, -1)
    mouth = (t[3] + t[4]) / 2
    cv2.ellipse(mask, (int(mouth[0]), int(mouth[1])), (74, 36), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 8)
    if size != 512:
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(mask, 0.0, 1.0)


def anchor_positive(faithful: Tensor, warped: Tensor) -> Tensor:
    """``I_AP = m·I_F + (1 − m)·I_warp`` with the component mask ``m`` (``B×3×S×S``)."""
    m = torch.from_numpy(component_mask(faithful.shape[-1])).to(faithful.device, faithful.dtype)
    return m * faithful + (1 - m) * warped


def batch_negatives(positive: Tensor) -> list[Tensor]:
    """The other faces' positives: the batch rolled by 1..B−1."""
    return [positive.roll(k, dims=0) for k in range(1, positive.shape[0])]


def metric_loss(
    distance: Distance,
    anchor: Tensor,
    positive: Tensor,
    negatives: Sequence[Tensor],
    *,
    kind: Literal["triplet", "infonce"] = "triplet",
    margin: float = 0.1,
    temperature: float = 0.05,
) -> Tensor:
    """Metric loss of ``anchor`` (with gradients) against a positive and ≥ 1 negatives (detached).

    triplet: ``mean(relu(d(a, p) − min_n d(a, n) + margin))`` (hardest negative).
    infonce: cross-entropy of ``−d / temperature`` with the positive as the right class.
    """
    if not negatives:
        raise ValueError("metric_loss needs at least one negative")
    d_pos = distance(anchor, positive.detach())
    d_neg = torch.stack([distance(anchor, n.detach()) for n in negatives], dim=1)
    if kind == "triplet":
        return F.relu(d_pos - d_neg.min(dim=1).values + margin).mean()
    logits = -torch.cat([d_pos[:, None], d_neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))
