"""The PatchGAN discriminator of VQGAN / CodeFormer training (taming's NLayerDiscriminator shape).

Group normalisation instead of the original batch norm: no running statistics, so every
data-parallel rank holds the same discriminator and a resumed run needs no buffers.
"""

from __future__ import annotations

from torch import Tensor, nn


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(32 if ch % 32 == 0 and ch >= 64 else 8, ch)


class PatchDiscriminator(nn.Module):
    """Patch logits for real / fake faces.

    Args:
        in_channels: image channels (3).
        channels: width of the first layer (64 officially).
        layers: stride-2 layers (4 officially; receptive field grows with it).

    Shapes: ``B×3×H×W -> B×1×h×w`` logits (``h ≈ H / 2**layers``), input in [-1, 1].
    """

    def __init__(self, in_channels: int = 3, channels: int = 64, layers: int = 4) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = channels
        for n in range(1, layers + 1):
            out = channels * min(2**n, 8)
            stride = 2 if n < layers else 1
            blocks += [nn.Conv2d(width, out, 4, stride, 1, bias=False), _norm(out), nn.LeakyReLU(0.2, True)]
            width = out
        blocks.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.body = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)
