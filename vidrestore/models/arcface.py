"""ArcFace IR-SE50, the differentiable identity network (facexlib's
``recognition_arcface_ir_se50.pth``: the TreB1eN InsightFace_Pytorch model, 512-d).

It takes 112×112 RGB crops aligned to ``faces.align.ARCFACE_TEMPLATE_112``, scaled as
``x / 127.5 − 1``. One loader for the run time's identity encoder (``faces.identity``) and
training's identity loss and IDS metric, so both read the file the same way.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vidrestore.compat import import_needing_torchvision

from .checkpoint import load_weights_file

IR_SE50_DIM = 512


def build_ir_se50() -> nn.Module:
    """facexlib's IR-SE50 ``Backbone`` (50 layers, ``ir_se``), randomly initialised, eval mode."""
    arch = import_needing_torchvision("facexlib.recognition.arcface_arch")
    return arch.Backbone(num_layers=50, drop_ratio=0.6, mode="ir_se").eval()


def load_ir_se50(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """IR-SE50 with the checkpoint at ``path`` loaded strictly (``load_weights_file``),
    frozen, in eval mode on ``device``."""
    net = load_weights_file(build_ir_se50(), path, what="IR-SE50 ArcFace")
    return net.requires_grad_(False).to(device)
