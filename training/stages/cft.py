"""Stage III: CFT fine-tuning (CodeFormer) / IA-CFT fine-tuning (ID-CodeFormer).

From a Stage II network, train the encoder, the transformer and the fusion layers (codebook
and generator frozen, as officially) with L1 + LPIPS + hinge GAN (adaptive weight at the
largest fusion layer's last conv, times ``gan`` = 0.1) + the Stage II code losses.

The fidelity weight ``w`` and the mix of image steps and code-only steps follow the official
schedule by default (``w_schedule: official``; sczhou/CodeFormer
``basicsr/models/codeformer_joint_model.py``, ``optimize_parameters``), in iterations
counted from 1 as there: up to 40 k image steps on the mild degradation at w = 1; up to
80 k at w = 1.3; up to 120 k code-only steps (code losses, no image losses, no
discriminator step) on the heavy Stage II degradation (``lq_large``), an image step only at
iteration 120 k (w = 0); then one image step at w = 1.3 in every 15, the other 14 code-only.
``phases`` holds these (``WPhase``), so a shorter run gives its own. ``w_schedule: uniform``
is this project's deviation, kept as an option: w drawn per sample from ``w_range`` at every
image step, and a code-only step every ``large_every``-th step.

ID-CodeFormer adds ``λ_ids·L_ids`` and trains its identity AdaIN path (IA-CFT), conditioned
on the reference's ArcFace vector; ``ia_cft: false`` keeps that path at zero (ablation C:
the conditioned transformer alone). ``losses.identity`` > 0 with ``model: codeformer`` adds
L_ids to plain CodeFormer (ablation B).
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
from vidrestore.training.data.degradations import DegradationConfig

from vidrestore.errors import ConfigError

from .base import Stage, code_losses, code_networks, hq_codes

MILD = DegradationConfig(blur_sigma=(0.1, 10.0), downsample=(1.0, 12.0), noise=(0.0, 15.0), jpeg=(60, 100))
"""Official Stage III (small) degradation ranges (options/CodeFormer_stage3.yml)."""


@dataclass(frozen=True)
class WPhase:
    """One phase of the Stage III schedule.

    until: the phase's last iteration (counted from 1, inclusive); None: to the end.
    w: the fidelity weight of its image steps.
    image_every: iterations divisible by this are image steps (mild LQ, image losses); the
        others are code-only steps on ``lq_large``. 1: every step is an image step.
    """

    until: int | None
    w: float
    image_every: int = 1

    def __post_init__(self) -> None:
        if self.image_every < 1 or (self.until is not None and self.until < 1):
            raise ValueError("a w phase needs until >= 1 (or null) and image_every >= 1")


OFFICIAL_PHASES = (WPhase(40000, 1.0), WPhase(80000, 1.3), WPhase(120000, 0.0, 120000), WPhase(None, 1.3, 15))
"""The official Stage III schedule (``codeformer_joint_model.py``, see module doc)."""


@dataclass(frozen=True)
class CFTLosses(AdversarialLosses):
    """Stage III weights (official: options/CodeFormer_stage3.yml: L1 1, LPIPS 1, cross-entropy
    0.5, latent L2 1, adaptive GAN weight × 0.1, discriminator from iteration 5002, i.e.
    ``net_d_start_iter: 5001`` with a strict ``>``), λ_ids (None: 0.1 for ID-CodeFormer, 0 for
    CodeFormer), and the schedule of w (see module doc)."""

    cross_entropy: float = 0.5
    feature: float = 1.0
    gan: float = 0.1
    disc_start: int = 5001
    identity: float | None = None
    w_schedule: Literal["official", "uniform"] = "official"
    phases: tuple[WPhase, ...] = OFFICIAL_PHASES
    w_range: tuple[float, float] = (1.0, 1.3)
    large_every: int = 15

    def step_plan(self, step: int) -> tuple[bool, float | tuple[float, float]]:
        """``(image step?, w or the range w is drawn from)`` at 0-based ``step``."""
        if self.w_schedule == "uniform":
            code_only = self.large_every > 0 and step % self.large_every == self.large_every - 1
            return not code_only, self.w_range
        iteration = step + 1
        phase = next((p for p in self.phases if p.until is None or iteration <= p.until), self.phases[-1])
        return iteration % phase.image_every == 0, phase.w


@dataclass(frozen=True)
class CFTStageConfig(TrainConfig):
    """Stage III config. ``vqgan``: the Stage I checkpoint giving HQ codes. ``ia_cft``
    (ID-CodeFormer): train the identity AdaIN path (False: it stays zero, ablation C)."""

    model: Literal["codeformer", "id-codeformer"] = "codeformer"

    vqgan: Path | None = None
    ia_cft: bool = True
    data: DataConfig = field(default_factory=lambda: DataConfig(degradation=MILD, degradation_large=DegradationConfig()))
    optim_g: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-5, scheduler="cosine", eta_min=2e-5))
    optim_d: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-5, scheduler="cosine", eta_min=2e-5))
    ema_decay: float = 0.997
    losses: CFTLosses = field(default_factory=CFTLosses)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.losses.phases or any(p.until is None for p in self.losses.phases[:-1]):
            raise ValueError("losses.phases: at least one phase, only the last one open-ended (until: null)")


class CFTStage(Stage):
    name = "cft"
    config_type = CFTStageConfig

    def __init__(self, cfg: CFTStageConfig, ctx) -> None:
        super().__init__(cfg, ctx)
        self.losses = cfg.losses
        self.net, self.vqgan = code_networks(cfg, cfg.vqgan, ctx)
        frozen = ("quantize.", "generator.") + (() if cfg.ia_cft else ("id_adain_dict.",))
        for name, p in self.net.named_parameters():
            p.requires_grad_(not name.startswith(frozen))
        self.build_adversary(self.losses)
        self.use_identity(cfg.losses.identity)
        code_only = any(p.image_every > 1 for p in self.losses.phases) if self.losses.w_schedule == "official" \
            else self.losses.large_every > 0
        if code_only and cfg.data.degradation_large is None:
            raise ConfigError(f"{cfg.name}: the w schedule has code-only steps on the heavy degradation: "
                              "set data.degradation_large")

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        L, hq = self.losses, batch["hq"]
        codes = hq_codes(self.vqgan, hq)
        condition = self.condition(batch)
        image_step, w_plan = L.step_plan(step)
        if not image_step and "lq_large" in batch:
            with self.ctx.autocast():
                logits, lq_feat = self.net.code_only(batch["lq_large"], **condition)
                total, logs = code_losses(self.net, logits, lq_feat, codes, self.losses)
            self.ctx.optimize("g", total)
            return {"code_only_total": total}
        if isinstance(w_plan, tuple):
            lo, hi = w_plan
            w = lo + (hi - lo) * torch.rand(hq.shape[0], device=hq.device)
        else:
            w = torch.full((hq.shape[0],), float(w_plan), device=hq.device)
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
            if self.identity_weight > 0:
                ids = self.identity.loss(out, self.embed(hq))
                total = total + self.identity_weight * ids
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
