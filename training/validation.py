"""Periodic validation: PSNR / SSIM / LPIPS / IDS of the EMA network and a sample grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from vidrestore.training.data.datasets import VALIDATION_EPOCH
from vidrestore.training.losses.identity import ArcFaceEncoder, IdentityEncoder
from vidrestore.training.losses.perceptual import (
    BACKBONE_WEIGHTS,
    FrozenModule,
    LPIPSDistance,
)

from .metrics import psnr, ssim, to_uint8

GRID_ROWS = 4


class _Keys(Dataset):
    """Validation samples ``(VALIDATION_EPOCH, i)`` of a face dataset (fixed LQ, no flip)."""

    def __init__(self, dataset, count: int) -> None:
        self.dataset, self.count = dataset, min(count, len(dataset))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.dataset[(VALIDATION_EPOCH, i)]


class Validator:
    """Runs a stage's ``restore`` over the validation faces and scores it.

    LPIPS and IDS use the stage's own loss networks when it has them, else the real ones
    if their weights are in the weights folder (never downloaded; not in smoke runs), else
    they are left out and the log says why. Stand-in networks (smoke runs) are reported
    under ``lpips_standin`` / ``ids_standin``.
    """

    def __init__(self, stage, dataset, count: int, batch_size: int, device: torch.device,
                 log: Callable[[str], None]) -> None:
        self.stage, self.device, self.log = stage, device, log
        self.loader = DataLoader(_Keys(dataset, count), batch_size=batch_size, shuffle=False, num_workers=0)
        self.perceptual = stage.perceptual or self._optional(
            lambda s: LPIPSDistance("vgg", s.require(BACKBONE_WEIGHTS["vgg"])), "vgg16", "LPIPS")
        self.identity = stage.identity or self._optional(
            lambda s: ArcFaceEncoder(s.require("arcface-ir-se50")), "arcface-ir-se50", "IDS")

    def _optional(self, build, name: str, what: str):
        store = self.stage.ctx.store
        if self.stage.cfg.smoke:
            self.log(f"validation: {what} left out (smoke run: no real loss networks)")
            return None
        if store.find(name) is None:
            self.log(f"validation: {what} left out ({store.entry(name).filename} not in {', '.join(map(str, store.folders()))})")
            return None
        return build(store).to(self.device)

    @torch.no_grad()
    def run(self, net: torch.nn.Module, step: int, samples_dir: Path | None) -> tuple[dict[str, float], np.ndarray | None]:
        """Metrics (means over the validation faces) and the sample grid (H×W×3 uint8 RGB)."""
        net.eval()
        totals: dict[str, float] = {}
        count = 0
        grid_rows: list[np.ndarray] = []
        for batch in self.loader:
            batch = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            images = self.stage.restore(net, batch)
            restored, hq = images["restored"].float(), batch["hq"].float()
            values = {"psnr": [], "ssim": []}
            for r, g in zip(to_uint8(restored), to_uint8(hq)):
                values["psnr"].append(psnr(r, g))
                values["ssim"].append(ssim(r, g))
            if self.perceptual is not None:
                values[self._tag("lpips", self.perceptual)] = self.perceptual(restored, hq).tolist()
            if self.identity is not None:
                cos = (self.identity(restored) * self.identity(hq)).sum(-1)
                values[self._tag("ids", self.identity)] = cos.tolist()
            for key, vals in values.items():
                totals[key] = totals.get(key, 0.0) + float(np.sum(vals))
            count += restored.shape[0]
            if len(grid_rows) < GRID_ROWS:
                columns = [batch["lq"]] + [v for k, v in images.items() if k != "restored"] + [restored, hq]
                for i in range(min(restored.shape[0], GRID_ROWS - len(grid_rows))):
                    grid_rows.append(np.hstack([to_uint8(c[i:i + 1].float())[0] for c in columns]))
        metrics = {k: v / max(count, 1) for k, v in totals.items()}
        grid = np.vstack(grid_rows) if grid_rows else None
        if grid is not None and samples_dir is not None:
            samples_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(samples_dir / f"step_{step:08d}.png"), grid[..., ::-1])
        return metrics, grid

    @staticmethod
    def _tag(name: str, module: FrozenModule | IdentityEncoder) -> str:
        return f"{name}_standin" if getattr(module, "is_stand_in", False) else name
