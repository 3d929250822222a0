"""Stage II: code prediction at w = 0 (CodeFormer, or ID-CodeFormer's identity-conditioned transformer).

The frozen Stage I VQGAN gives each HQ face its code indices; the network sees the
degraded face and learns (official weights) cross-entropy on those indices (0.5) and an L2
between its encoder latent and the HQ codes' features (1.0). Codebook and generator stay
frozen; so do the fusion layers (unused at w = 0).

ID-CodeFormer: the transformer is fed the ArcFace vector of the reference image (another
photo of the same person) and ``λ_ids·L_ids`` is added, L_ids = 1 − cos(ArcFace(I_res),
ArcFace(I_h)) (λ_ids 0.1 by default, the weight of the ID-CodeFormer proposal's first
experiment). I_res is decoded from the predicted codes through the frozen generator; the
argmax is made differentiable by the straight-through estimator (forward: the chosen codes;
backward: through the softmax), so L_ids reaches the transformer. ``losses.identity`` > 0
with ``model: codeformer`` adds L_ids to plain CodeFormer (ablation B).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from vidrestore.training.config import OptimConfig, TrainConfig

from .base import Stage, code_losses, code_networks, freeze_all_but, hq_codes

TRAINED = ("encoder.", "position_emb", "feat_emb.", "ft_layers.", "idx_pred_layer.", "identity_tokens.", "id_cross_layers.")


@dataclass(frozen=True)
class TransformerLosses:
    """Stage II weights (official: cross-entropy 0.5, latent L2 1.0, options/CodeFormer_stage2.yml)
    and ``identity`` = λ_ids (None: 0.1 for ID-CodeFormer, 0 for CodeFormer; see ``Stage.use_identity``)."""

    cross_entropy: float = 0.5
    feature: float = 1.0
    identity: float | None = None


@dataclass(frozen=True)
class TransformerStageConfig(TrainConfig):
    """Stage II config. ``vqgan``: the Stage I checkpoint giving HQ codes (default: ``init``
    when that is a Stage I checkpoint)."""

    model: Literal["codeformer", "id-codeformer"] = "codeformer"

    vqgan: Path | None = None
    optim_g: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-4, scheduler="multistep", milestones=(400000, 450000), gamma=0.5))
    losses: TransformerLosses = field(default_factory=TransformerLosses)


def straight_through_features(net, logits: Tensor) -> Tensor:
    """The argmax codes' features ``B×C×s×s`` with gradients through ``softmax(logits)``."""
    probs = logits.float().softmax(-1)
    hard = F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
    weights = hard + probs - probs.detach()
    feat = weights @ net.quantize.embedding.weight.float()  # B×N×C
    side = net.vqgan_config.latent_hw
    return feat.transpose(1, 2).reshape(logits.shape[0], -1, side, side)


class TransformerStage(Stage):
    name = "transformer"
    config_type = TransformerStageConfig

    def __init__(self, cfg: TransformerStageConfig, ctx) -> None:
        super().__init__(cfg, ctx)
        self.losses = cfg.losses
        self.net, self.vqgan = code_networks(cfg, cfg.vqgan, ctx)
        freeze_all_but(self.net, TRAINED)
        self.use_identity(cfg.losses.identity)

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        lq, hq, L = batch["lq"], batch["hq"], self.losses
        codes = hq_codes(self.vqgan, hq)
        condition = self.condition(batch)
        with self.ctx.autocast():
            logits, lq_feat = self.net.code_only(lq, **condition)
            total, logs = code_losses(self.net, logits, lq_feat, codes, L)
            logs["code_accuracy"] = (logits.argmax(-1) == codes).float().mean()
            if self.identity_weight > 0:
                image = self.net.decode(straight_through_features(self.net, logits), {}, 0, **condition)
                ids = self.identity.loss(image, self.embed(hq))
                total = total + self.identity_weight * ids
                logs["identity"] = ids
        self.ctx.optimize("g", total)
        return {"total": total, **logs}

    @torch.no_grad()
    def restore(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.with_identity:
            return {"restored": net(batch["lq"], self.embed(batch["ref"]), 0.0).image}
        return {"restored": net(batch["lq"], 0.0).image}
