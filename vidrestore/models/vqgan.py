"""CodeFormer's Stage I: a VQGAN autoencoder with a nearest-neighbour codebook.

Same architecture and parameter names as the official ``VQAutoEncoder`` (sczhou/CodeFormer,
``basicsr/archs/vqgan_arch.py``), so ``vqgan_code1024.pth`` (``params_ema``) loads strictly:
``encoder.blocks.*``, ``quantize.embedding.weight``, ``generator.blocks.*``.

Data flow (defaults): image ``B×3×512×512`` in [-1, 1] → ``Encoder`` → latent ``B×256×16×16``
→ ``VectorQuantizer`` (1024 codes × 256) → ``Generator`` → image ``B×3×512×512``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidrestore.errors import ConfigError

from .vqgan_blocks import (
    AttnBlock,
    Downsample,
    ResBlock,
    Upsample,
    check_channels,
    group_norm,
)


@dataclass(frozen=True)
class VQGANConfig:
    """Hyperparameters of the VQGAN; the defaults are the official CodeFormer ones."""

    img_size: int = 512
    nf: int = 64
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)
    res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    codebook_size: int = 1024
    emb_dim: int = 256
    beta: float = 0.25

    @property
    def latent_hw(self) -> int:
        """Side of the latent grid: ``img_size / 2**(len(ch_mult) - 1)`` (16 by default)."""
        return self.img_size // 2 ** (len(self.ch_mult) - 1)

    def channels_at(self, resolution: int) -> int:
        """Feature channels at a given map side (e.g. 32 -> 256 for the defaults)."""
        level = (self.img_size // resolution).bit_length() - 1
        return self.nf * self.ch_mult[level]

    def validate(self) -> None:
        """Raise ConfigError if the sizes do not make a consistent network."""
        try:
            check_channels(self.nf, self.ch_mult)
        except ValueError as exc:
            raise ConfigError(f"VQGAN: {exc}") from None
        if self.img_size % 2 ** (len(self.ch_mult) - 1):
            raise ConfigError(f"VQGAN: img_size {self.img_size} not divisible by the downsampling")


class Encoder(nn.Module):
    """Image → latent map, as one flat ``blocks`` list (official layout).

    Args:
        cfg: the VQGAN sizes.

    Shapes: ``B×3×S×S -> B×emb_dim×s×s`` with ``s = cfg.latent_hw``.
    ``skip_block_index[r]`` is the block after which the map of side ``r`` is taken as a
    skip feature for CodeFormer's fusion: the last ResBlock of that level (before its
    attention, if any) — the official ``fuse_encoder_block`` table for the defaults.
    """

    def __init__(self, cfg: VQGANConfig) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(3, cfg.nf, kernel_size=3, padding=1)]
        self.skip_block_index: dict[int, int] = {}
        res = cfg.img_size
        in_ch = cfg.nf
        for level, mult in enumerate(cfg.ch_mult):
            out_ch = cfg.nf * mult
            for _ in range(cfg.res_blocks):
                blocks.append(ResBlock(in_ch, out_ch))
                in_ch = out_ch
                self.skip_block_index[res] = len(blocks) - 1
                if res in cfg.attn_resolutions:
                    blocks.append(AttnBlock(in_ch))
            if level != len(cfg.ch_mult) - 1:
                blocks.append(Downsample(in_ch))
                res //= 2
        blocks += [ResBlock(in_ch, in_ch), AttnBlock(in_ch), ResBlock(in_ch, in_ch)]
        blocks += [group_norm(in_ch), nn.Conv2d(in_ch, cfg.emb_dim, kernel_size=3, padding=1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class Generator(nn.Module):
    """Latent map → image, as one flat ``blocks`` list (official layout).

    Args:
        cfg: the VQGAN sizes.

    Shapes: ``B×emb_dim×s×s -> B×3×S×S``.
    ``fuse_block_index[r]`` is the block after which CodeFormer fuses encoder features into
    the map of side ``r``: the first ResBlock of a level, or the last one at a level with
    attention (before that attention) — the official ``fuse_generator_block`` table.
    """

    def __init__(self, cfg: VQGANConfig) -> None:
        super().__init__()
        in_ch = cfg.nf * cfg.ch_mult[-1]
        res = cfg.latent_hw
        blocks: list[nn.Module] = [nn.Conv2d(cfg.emb_dim, in_ch, kernel_size=3, padding=1)]
        blocks += [ResBlock(in_ch, in_ch), AttnBlock(in_ch), ResBlock(in_ch, in_ch)]
        self.fuse_block_index: dict[int, int] = {}
        for level in reversed(range(len(cfg.ch_mult))):
            out_ch = cfg.nf * cfg.ch_mult[level]
            for i in range(cfg.res_blocks):
                blocks.append(ResBlock(in_ch, out_ch))
                in_ch = out_ch
                if i == 0 or res in cfg.attn_resolutions:
                    self.fuse_block_index[res] = len(blocks) - 1
                if res in cfg.attn_resolutions:
                    blocks.append(AttnBlock(in_ch))
            if level != 0:
                blocks.append(Upsample(in_ch))
                res *= 2
        blocks += [group_norm(in_ch), nn.Conv2d(in_ch, 3, kernel_size=3, padding=1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class QuantStats(NamedTuple):
    """What the quantizer found: code indices ``B×s·s`` (row-major), perplexity, mean distance."""

    indices: Tensor
    perplexity: Tensor
    mean_distance: Tensor


class VectorQuantizer(nn.Module):
    """Nearest-neighbour codebook with straight-through gradients (official VectorQuantizer).

    Args:
        codebook_size: number of codes K.
        emb_dim: code width C.
        beta: commitment weight of the codebook loss.

    Distances are computed in fp32 whatever the input dtype, so half precision cannot
    overflow ``|z|²`` or flip the nearest code.
    """

    def __init__(self, codebook_size: int, emb_dim: int, beta: float = 0.25) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.emb_dim = emb_dim
        self.beta = beta
        self.embedding = nn.Embedding(codebook_size, emb_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / codebook_size, 1.0 / codebook_size)

    def nearest_codes(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Indices ``B×h·w`` of the closest codes to ``z`` (``B×C×h×w``) and the mean distance."""
        flat = z.flatten(2).transpose(1, 2).float()  # B×N×C
        codes = self.embedding.weight.float()
        dist = (flat**2).sum(-1, keepdim=True) + (codes**2).sum(1) - 2.0 * flat @ codes.t()
        return dist.argmin(dim=-1), dist.mean()

    def lookup(self, indices: Tensor, height: int, width: int) -> Tensor:
        """Code vectors for ``indices`` (``B×h·w`` ints) as a map ``B×C×h×w``."""
        feat = F.embedding(indices, self.embedding.weight)  # B×N×C
        return feat.transpose(1, 2).reshape(indices.shape[0], self.emb_dim, height, width)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, QuantStats]:
        """Quantize ``z`` (``B×C×h×w``) → (straight-through codes ``B×C×h×w``, loss, stats)."""
        _, _, h, w = z.shape
        indices, mean_distance = self.nearest_codes(z)
        z_q = self.lookup(indices, h, w).to(z.dtype)
        loss = F.mse_loss(z_q.detach(), z) + self.beta * F.mse_loss(z_q, z.detach())
        z_q = z + (z_q - z).detach()
        usage = F.one_hot(indices.flatten(), self.codebook_size).float().mean(0)
        perplexity = torch.exp(-(usage * torch.log(usage + 1e-10)).sum())
        return z_q, loss, QuantStats(indices, perplexity, mean_distance)


class VQGANOutput(NamedTuple):
    """VQAutoEncoder result: reconstruction ``B×3×S×S``, codebook loss (scalar), stats."""

    image: Tensor
    codebook_loss: Tensor
    stats: QuantStats


class VQAutoEncoder(nn.Module):
    """CodeFormer's Stage I VQGAN (official parameter names; ``quantizer="nearest"`` only).

    Args:
        img_size: input side S (512).
        nf: base channel count (64).
        ch_mult: channel multiplier per level; ``len - 1`` halvings (1, 2, 2, 4, 4, 8).
        quantizer: only ``"nearest"`` (the official released model) is implemented.
        res_blocks: ResBlocks per level (2).
        attn_resolutions: map sides with an AttnBlock after each ResBlock ((16,)).
        codebook_size: number of codes (1024).
        emb_dim: latent / code width (256).
        beta: commitment weight (0.25).

    ``forward(x)`` maps ``B×3×S×S`` in [-1, 1] to a ``VQGANOutput``. Weights are never
    downloaded here: load a state dict (see ``vidrestore.models.registry``).
    """

    def __init__(
        self,
        img_size: int = 512,
        nf: int = 64,
        ch_mult: tuple[int, ...] | list[int] = (1, 2, 2, 4, 4, 8),
        quantizer: str = "nearest",
        res_blocks: int = 2,
        attn_resolutions: tuple[int, ...] | list[int] = (16,),
        codebook_size: int = 1024,
        emb_dim: int = 256,
        beta: float = 0.25,
    ) -> None:
        super().__init__()
        if quantizer != "nearest":
            raise ConfigError(f"VQAutoEncoder: quantizer {quantizer!r} is not supported (nearest)")
        cfg = VQGANConfig(
            img_size, nf, tuple(ch_mult), res_blocks, tuple(attn_resolutions),
            codebook_size, emb_dim, beta,
        )
        cfg.validate()
        self.vqgan_config = cfg
        self.encoder = Encoder(cfg)
        self.quantize = VectorQuantizer(codebook_size, emb_dim, beta)
        self.generator = Generator(cfg)

    @classmethod
    def from_config(cls, cfg: VQGANConfig) -> "VQAutoEncoder":
        """Build from a ``VQGANConfig``."""
        return cls(
            cfg.img_size, cfg.nf, cfg.ch_mult, "nearest", cfg.res_blocks,
            cfg.attn_resolutions, cfg.codebook_size, cfg.emb_dim, cfg.beta,
        )

    def forward(self, x: Tensor) -> VQGANOutput:
        quant, codebook_loss, stats = self.quantize(self.encoder(x))
        return VQGANOutput(self.generator(quant), codebook_loss, stats)
