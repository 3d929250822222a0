"""Stage I: VQGAN codebook learning on HQ faces (no degradation).

Losses (official CodeFormer Stage I): L1 + LPIPS reconstruction, codebook + commitment
(β 0.25, inside the quantizer), and from ``disc_start`` on a hinge GAN whose generator term
is scaled by VQGAN's adaptive weight (gradient-norm ratio at the generator's last layer,
clamped to 1) times ``gan`` (0.8). The result loads where ``vqgan_code1024.pth`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from vidrestore.training.config import (
    AdversarialLosses,
    DataConfig,
    OptimConfig,
    TrainConfig,
)

from .base import Stage, build_network, load_init, matching_vqgan


@dataclass(frozen=True)
class VQGANLosses(AdversarialLosses):
    """Stage I: reconstruction + GAN + codebook (official: options/VQGAN_512_ds32_nearest_stage1.yml
    and ``basicsr/models/vqgan_model.py``: GAN weight 0.8, discriminator from iteration 30002,
    i.e. ``net_d_start_iter: 30001`` with a strict ``>``)."""

    gan: float = 0.8
    disc_start: int = 30001
    codebook: float = 1.0


@dataclass(frozen=True)
class VQGANStageConfig(TrainConfig):
    """Stage I config: HQ faces only; official optimiser settings by default."""

    data: DataConfig = field(default_factory=lambda: DataConfig(degradation=None))
    optim_g: OptimConfig = field(default_factory=lambda: OptimConfig(lr=7e-5, scheduler="cosine", eta_min=6e-5))
    optim_d: OptimConfig = field(default_factory=lambda: OptimConfig(lr=7e-5, scheduler="cosine", eta_min=6e-5))
    losses: VQGANLosses = field(default_factory=VQGANLosses)


class VQGANStage(Stage):
    name = "vqgan"
    config_type = VQGANStageConfig

    def __init__(self, cfg: VQGANStageConfig, ctx) -> None:
        super().__init__(cfg, ctx)
        self.losses = cfg.losses
        self.net = matching_vqgan(build_network(cfg))  # the VQGAN of the configured CodeFormer size
        if cfg.init is not None:
            load_init(self.net, cfg.init, cfg, ctx.log)
        self.build_adversary(self.losses)

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        hq, L = batch["hq"], self.losses
        use_gan = step >= L.disc_start
        with self.ctx.autocast():
            out = self.net(hq)
            rec, logs = self.reconstruction(out.image, hq, L)
            total = rec + L.codebook * out.codebook_loss
            logs |= {"codebook": out.codebook_loss, "perplexity": out.stats.perplexity}
            if use_gan:
                term, gan_logs = self.generator_gan(out.image, rec, self.last_layer, L)
                total = total + term
                logs |= gan_logs
        self.ctx.optimize("g", total)
        if use_gan:
            logs |= self.discriminator_step(hq, out.image)
        return {"total": total, **logs}

    @property
    def last_layer(self) -> nn.Parameter:
        return self.net.generator.blocks[-1].weight

    @torch.no_grad()
    def restore(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"restored": net(batch["hq"]).image}
