"""Deterministic synthetic weights, for tests and numerical checks without real checkpoints.

``seeded_state_dict`` fills every tensor of a state-dict layout from one seeded generator,
in sorted key order, so the same (names, shapes, seed) give the same tensors on any machine
and whatever order a network registers its modules in. Scales keep activations in a
realistic range (fan-in scaled weights, norms near 1, a unit-variance codebook) so that
comparisons between implementations exercise every path, codebook choice included.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch
from torch import Tensor, nn

_MODULATION_HEADS = ("scale.2.weight", "shift.2.weight")
"""CFT's last scale / shift convs: kept small (as trained ones are) so ``dec·(1 + w·scale)``
does not compound into a chaotic network whose outputs hang on rounding noise."""


def _fill(name: str, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    noise = torch.randn(shape, generator=gen, dtype=torch.float32)
    leaf = name.rsplit(".", 1)[-1]
    if name.endswith("quantize.embedding.weight"):
        return noise  # the codebook: unit-variance codes
    if name.endswith("position_emb"):
        return 0.1 * noise
    if len(shape) >= 2:  # conv / linear / attention projections: fan-in scaling
        gain = 0.1 if name.endswith(_MODULATION_HEADS) else 1.0
        return gain * noise / math.sqrt(math.prod(shape[1:]))
    if leaf == "weight":  # norm scales
        return 1.0 + 0.1 * noise
    return 0.02 * noise  # biases and norm shifts


def seeded_state_dict(
    layout: Mapping[str, Tensor] | Iterable[tuple[str, Iterable[int]]], seed: int = 0
) -> dict[str, Tensor]:
    """Random fp32 tensors for every entry of ``layout`` (a state dict or (name, shape) pairs).

    Returns a new ``{name: tensor}`` dict (insertion order = sorted names).
    """
    items = layout.items() if isinstance(layout, Mapping) else layout
    shapes = {name: tuple(t.shape) if isinstance(t, Tensor) else tuple(t) for name, t in items}
    gen = torch.Generator().manual_seed(seed)
    return {name: _fill(name, shapes[name], gen) for name in sorted(shapes)}


def seeded_faces(batch: int, size: int, seed: int = 1) -> Tensor:
    """Uniform random "images" ``batch×3×size×size`` in [-1, 1] from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((batch, 3, size, size), generator=gen) * 2.0 - 1.0


def fill_seeded(net: nn.Module, seed: int = 0) -> nn.Module:
    """Load ``seeded_state_dict(net.state_dict(), seed)`` into ``net``; return it in eval mode."""
    net.load_state_dict(seeded_state_dict(net.state_dict(), seed))
    return net.eval()
