"""Stage I: VQGAN codebook learning on HQ faces (no degradation).

Losses (official CodeFormer Stage I): L1 + LPIPS reconstruction, codebook + commitment
(β 0.25, inside the quantizer), and from ``disc_start`` on a hinge GAN whose generator term
is scaled by VQGAN's adaptive weight (gradient-norm ratio at the generator's last layer,
clamped to 1) times ``gan`` (0.8). The result loads where ``vqgan_code1024.pth`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..archs import PatchDiscriminator
from ..config import DataConfig, OptimConfig, TrainConfig
from ..losses.gan import adaptive_weight, frozen, hinge_d_loss, hinge_g_loss
from .base import Stage, build_network, load_init, matching_vqgan


@dataclass(frozen=True)
class VQGANLosses:
    """Weights of Stage I's losses and the discriminator's shape / start."""

    l1: float = 1.0
    perceptual: float = 1.0
    perceptual_net: Literal["vgg", "alex"] = "vgg"
    codebook: float = 1.0
    gan: float = 0.8
    adaptive_max: float = 1.0
    disc_start: int = 30000
    disc_channels: int = 64
    disc_layers: int = 4


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
        self.disc = PatchDiscriminator(3, self.losses.disc_channels, self.losses.disc_layers)
        self.perceptual = self.build_perceptual(self.losses.perceptual_net)

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        hq, L = batch["hq"], self.losses
        use_gan = step >= L.disc_start
        with self.ctx.autocast():
            out = self.net(hq)
            l1 = F.l1_loss(out.image.float(), hq)
            lp = self.perceptual(out.image, hq).mean()
            rec = L.l1 * l1 + L.perceptual * lp
            total = rec + L.codebook * out.codebook_loss
            logs = {"l1": l1, "lpips": lp, "codebook": out.codebook_loss, "perplexity": out.stats.perplexity}
            if use_gan:
                with frozen(self.disc):
                    g = hinge_g_loss(self.disc(out.image))
                weight = adaptive_weight(rec, g, self.last_layer, L.adaptive_max) * L.gan
                total = total + weight * g
                logs |= {"g_gan": g, "gan_weight": weight}
        self.ctx.optimize("g", total)
        if use_gan:
            with self.ctx.autocast():
                d = hinge_d_loss(self.disc(hq), self.disc(out.image.detach()))
            self.ctx.optimize("d", d)
            logs["d_hinge"] = d
        return {"total": total, **logs}

    @property
    def last_layer(self) -> nn.Parameter:
        return self.net.generator.blocks[-1].weight

    @torch.no_grad()
    def restore(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"restored": net(batch["hq"]).image}
