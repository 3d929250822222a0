"""Stage III: CFT fine-tuning (CodeFormer) / IA-CFT fine-tuning (ID-CodeFormer).

From a Stage II network, train the encoder, the transformer and the fusion layers (codebook
and generator frozen, as officially) with L1 + LPIPS + hinge GAN (adaptive weight at the
largest fusion layer's last conv, times ``gan`` = 0.1) + the Stage II code losses, the
fidelity weight ``w`` drawn per sample from ``w_range``. The official code trains at w = 1,
later 1.3 (inference then scales the learnt residual by w in [0, 1]); the default range
[1, 1.3] spans both. A range reaching down to 0 asks one residual to match the ground truth
at every scale, which pulls it in opposite directions. ID-CodeFormer adds ``λ_ids·L_ids``
and trains its identity AdaIN path (IA-CFT), conditioned on the reference's ArcFace vector.

The official Stage III trains on a milder degradation and every ``large_every``-th step
runs a code-only step (code losses, no image losses) on the heavy Stage II degradation;
set ``data.degradation_large`` to get those steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from vidrestore.training.config import (
    AdversarialLosses,
    DataConfig,
    OptimConfig,
    TrainConfig,
)

from vidrestore.degradation import DegradationConfig

from .base import Stage, code_losses, code_networks, hq_codes

MILD = DegradationConfig(blur_sigma=(0.1, 10.0), downsample=(1.0, 12.0), noise=(0.0, 15.0), jpeg=(60, 100))
"""Official Stage III (small) degradation ranges."""


@dataclass(frozen=True)
class CFTLosses(AdversarialLosses):
    """Stage III weights (reconstruction + GAN, code losses, λ_ids) and the sampling of w."""

    cross_entropy: float = 0.5
    feature: float = 1.0
    identity: float = 0.1
    w_range: tuple[float, float] = (1.0, 1.3)
    large_every: int = 15


@dataclass(frozen=True)
class CFTStageConfig(TrainConfig):
    """Stage III config. ``vqgan``: the Stage I checkpoint giving HQ codes."""

    model: Literal["codeformer", "id-codeformer"] = "codeformer"

    vqgan: Path | None = None
    data: DataConfig = field(default_factory=lambda: DataConfig(degradation=MILD, degradation_large=DegradationConfig()))
    optim_g: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-5, scheduler="cosine", eta_min=2e-5))
    optim_d: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-5, scheduler="cosine", eta_min=2e-5))
    ema_decay: float = 0.997
    losses: CFTLosses = field(default_factory=CFTLosses)


class CFTStage(Stage):
    name = "cft"
    config_type = CFTStageConfig

    def __init__(self, cfg: CFTStageConfig, ctx) -> None:
        super().__init__(cfg, ctx)
        self.losses = cfg.losses
        self.net, self.vqgan = code_networks(cfg, cfg.vqgan, ctx)
        for name, p in self.net.named_parameters():
            p.requires_grad_(not name.startswith(("quantize.", "generator.")))
        self.build_adversary(self.losses)
        self.use_identity_if_conditioned()

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        L, hq = self.losses, batch["hq"]
        codes = hq_codes(self.vqgan, hq)
        condition = self.condition(batch)
        if "lq_large" in batch and L.large_every > 0 and step % L.large_every == L.large_every - 1:
            with self.ctx.autocast():
                logits, lq_feat = self.net.code_only(batch["lq_large"], **condition)
                total, logs = code_losses(self.net, logits, lq_feat, codes, self.losses)
            self.ctx.optimize("g", total)
            return {"code_only_total": total}
        lo, hi = L.w_range
        w = lo + (hi - lo) * torch.rand(hq.shape[0], device=hq.device)
        use_gan = step >= L.disc_start
        with self.ctx.autocast():
            enc = self.net.encode(batch["lq"])
            logits = self.net.predict_logits(enc.lq_feat, **condition)
            quant = self.net.best_code_features(logits, enc.lq_feat, adain=False, detach_codes=True)
            out = self.net.decode(quant, enc.skips, w, **condition)
            total, logs = code_losses(self.net, logits, enc.lq_feat, codes, self.losses)
            rec, rec_logs = self.reconstruction(out, hq, L)
            total = total + rec
            logs |= rec_logs
            if self.with_identity and L.identity > 0:
                ids = self.identity.loss(out, self.embed(hq))
                total = total + L.identity * ids
                logs["identity"] = ids
            if use_gan:
                term, gan_logs = self.generator_gan(out, rec, self.last_layer, L)
                total = total + term
                logs |= gan_logs
        self.ctx.optimize("g", total)
        if use_gan:
            logs |= self.discriminator_step(hq, out)
        return {"total": total, **logs}

    @property
    def last_layer(self) -> nn.Parameter:
        return self.net.fuse_convs_dict[self.net.connect_list[-1]].shift[-1].weight

    @torch.no_grad()
    def restore(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.with_identity:
            return {"restored": net(batch["lq"], self.embed(batch["ref"]), 1.0).image}
        return {"restored": net(batch["lq"], 1.0).image}
