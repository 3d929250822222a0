"""Hinge GAN losses and VQGAN's adaptive generator weight."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator hinge loss: ``mean(relu(1 − D(real))) + mean(relu(1 + D(fake)))``."""
    return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()


def hinge_g_loss(fake_logits: Tensor) -> Tensor:
    """Generator hinge loss: ``−mean(D(fake))``."""
    return -fake_logits.float().mean()


def adaptive_weight(rec_loss: Tensor, gan_loss: Tensor, last_layer: Tensor, max_weight: float = 1.0) -> Tensor:
    """VQGAN's balance: ``‖∇_last rec‖ / (‖∇_last gan‖ + 1e-4)``, clamped to [0, max_weight], detached.

    ``last_layer`` is the generator's last trained weight (a leaf of both losses' graphs).
    """
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    gan_grad = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    weight = rec_grad.float().norm() / (gan_grad.float().norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Turn off gradients of ``module``'s parameters for the block (the D in a G step)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
