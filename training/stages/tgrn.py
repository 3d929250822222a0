"""Stage V (CodeFormer++): train the texture-guided restoration network (TGRN).

The frozen CodeFormer part and DAM give I_F, I_G and I_warp; TGRN restores from I_F with
texture from I_warp. Losses: L1 + LPIPS to the ground truth, hinge GAN (adaptive weight at
TGRN's output conv, times ``gan``) and the deep metric learning loss: anchor = TGRN output,
positive I_AP = facial components of I_F with the texture of I_warp, hard negatives (I_G,
the degraded input, other faces of the batch); triplet with margin or InfoNCE, on LPIPS
distances (see ``losses.metric``). ``train_dam`` fine-tunes DAM jointly.

Ablations: ``use_dam: false`` builds the network without DAM (TGRN gets I_G unwarped; the
checkpoint records it, so the runtime runs it so too), ``losses.metric: 0`` drops the deep
metric loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn
from vidrestore.training.config import AdversarialLosses, OptimConfig, TrainConfig
from vidrestore.training.losses.metric import (
    anchor_positive,
    batch_negatives,
    metric_loss,
)

from vidrestore.errors import ConfigError

from .base import Stage, codeformer_pp_network


@dataclass(frozen=True)
class TGRNLosses(AdversarialLosses):
    """Stage V: reconstruction + GAN + the deep metric loss. ``negatives``: which hard
    negatives the metric loss uses."""

    metric: float = 0.1
    metric_kind: Literal["triplet", "infonce"] = "triplet"
    margin: float = 0.1
    temperature: float = 0.05
    negatives: tuple[Literal["generative", "input", "batch"], ...] = ("generative", "input", "batch")


@dataclass(frozen=True)
class TGRNStageConfig(TrainConfig):
    model: Literal["codeformer++"] = "codeformer++"
    train_dam: bool = False
    use_dam: bool = True
    optim_g: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, scheduler="cosine", eta_min=1e-6))
    optim_d: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, scheduler="cosine", eta_min=1e-6))
    losses: TGRNLosses = field(default_factory=TGRNLosses)


class TGRNStage(Stage):
    name = "tgrn"
    config_type = TGRNStageConfig

    def __init__(self, cfg: TGRNStageConfig, ctx) -> None:
        super().__init__(cfg, ctx)
        self.losses = cfg.losses
        if cfg.train_dam and not cfg.use_dam:
            raise ConfigError(f"{cfg.name}: train_dam needs use_dam")
        self.trained_prefixes = ("tgrn.", "dam.") if cfg.train_dam else ("tgrn.",)
        self.net = codeformer_pp_network(cfg, ctx, trained=self.trained_prefixes, use_dam=cfg.use_dam,
                                         without_init="the frozen CodeFormer part and DAM are random")
        self.build_adversary(self.losses)

    def train_mode(self) -> None:
        self.net.eval()
        self.net.tgrn.train()
        if self.cfg.train_dam:
            self.net.dam.train()
        self.disc.train()

    def inputs(self, net: nn.Module, lq: Tensor, *, grad_dam: bool) -> tuple[Tensor, Tensor, Tensor]:
        """(I_F, I_G, I_warp): CodeFormer part frozen; DAM with gradients if ``grad_dam``."""
        with torch.no_grad(), self.ctx.autocast():
            faithful, generative, _, _ = net.faithful_and_generative(lq)
        faithful, generative = faithful.float(), generative.float()
        with torch.set_grad_enabled(grad_dam), self.ctx.autocast():
            warped, _ = net.align(faithful, generative)
        return faithful, generative, warped.float()

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        L, hq, lq = self.losses, batch["hq"], batch["lq"]
        faithful, generative, warped = self.inputs(self.net, lq, grad_dam=self.cfg.train_dam)
        use_gan = step >= L.disc_start
        with self.ctx.autocast():
            out = self.net.tgrn(faithful, warped)
            rec, logs = self.reconstruction(out, hq, L)
            total = rec
            if L.metric > 0:
                positive = anchor_positive(faithful, warped.detach())
                pool = {"generative": [generative], "input": [lq], "batch": batch_negatives(positive)}
                negatives = [n for kind in L.negatives for n in pool[kind]]
                if negatives:
                    m = metric_loss(self.perceptual, out, positive, negatives, kind=L.metric_kind,
                                    margin=L.margin, temperature=L.temperature)
                    total = total + L.metric * m
                    logs["metric"] = m
            if use_gan:
                term, gan_logs = self.generator_gan(out, rec, self.net.tgrn.conv_out.weight, L)
                total = total + term
                logs |= gan_logs
        self.ctx.optimize("g", total)
        if use_gan:
            logs |= self.discriminator_step(hq, out)
        return {"total": total, **logs}

    @torch.no_grad()
    def restore(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        faithful, generative, warped = self.inputs(net, batch["lq"], grad_dam=False)
        return {"faithful": faithful, "warped": warped, "restored": net.tgrn(faithful, warped)}
