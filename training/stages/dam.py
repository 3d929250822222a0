"""Stage IV (CodeFormer++): train the deformable alignment module (DAM).

The CodeFormer part (from a Stage III checkpoint) is frozen and gives, for each degraded
input, the faithful I_F (w = 1) and the generative I_G (w = 0). DAM predicts a field that
warps I_G onto I_F; it learns by registration, no ground truth needed: image similarity of
I_warp and I_F (local NCC, which ignores the texture's contrast, plus an optional L1) and a
smoothness penalty on the field's spatial gradient (in pixels). TGRN is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from vidrestore.training.config import OptimConfig, TrainConfig
from vidrestore.training.losses.registration import flow_smoothness, local_ncc

from .base import Stage, codeformer_pp_network


@dataclass(frozen=True)
class DAMLosses:
    """Registration weights: ``1 − NCC`` (window ``ncc_window``), L1, field smoothness."""

    ncc: float = 1.0
    ncc_window: int = 9
    l1: float = 0.0
    smooth: float = 1.0


@dataclass(frozen=True)
class DAMStageConfig(TrainConfig):
    model: Literal["codeformer++"] = "codeformer++"
    optim_g: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, scheduler="cosine", eta_min=1e-6))
    losses: DAMLosses = field(default_factory=DAMLosses)


class DAMStage(Stage):
    name = "dam"
    config_type = DAMStageConfig

    def __init__(self, cfg: DAMStageConfig, ctx) -> None:
        super().__init__(cfg, ctx)
        self.losses = cfg.losses
        self.net = codeformer_pp_network(cfg, ctx, trained=("dam.",), without_init=(
            "the frozen CodeFormer part is random, DAM learns nothing useful"))

    def train_mode(self) -> None:
        self.net.eval()
        self.net.dam.train()

    def pair(self, net: nn.Module, lq: Tensor) -> tuple[Tensor, Tensor]:
        """(I_F, I_G) from the frozen CodeFormer part."""
        with torch.no_grad(), self.ctx.autocast():
            faithful, generative, _, _ = net.faithful_and_generative(lq)
        return faithful.float(), generative.float()

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        L = self.losses
        faithful, generative = self.pair(self.net, batch["lq"])
        with self.ctx.autocast():
            warped, flow = self.net.dam(faithful, generative)
            ncc = local_ncc(warped, faithful, L.ncc_window).mean()
            smooth = flow_smoothness(flow).mean()
            l1 = F.l1_loss(warped.float(), faithful)
            total = L.ncc * (1.0 - ncc) + L.smooth * smooth + L.l1 * l1
        self.ctx.optimize("g", total)
        return {"total": total, "ncc": ncc, "smooth": smooth, "l1_to_faithful": l1,
                "flow_px": flow.detach().abs().mean() * faithful.shape[-1] / 2}

    @torch.no_grad()
    def restore(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Validation scores I_warp against the ground truth (TGRN is not trained yet)."""
        faithful, generative = self.pair(net, batch["lq"])
        warped, _ = net.dam(faithful, generative)
        return {"faithful": faithful, "generative": generative, "restored": warped}
