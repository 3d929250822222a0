"""CodeFormer (Zhou et al., NeurIPS 2022): codebook lookup transformer for blind face restoration.

``CodeFormer()`` with default arguments is the official network (sczhou/CodeFormer,
``basicsr/archs/codeformer_arch.py``): same parameter names and shapes (94.1 M parameters,
515 state-dict tensors), so ``params_ema`` of the official ``codeformer.pth`` loads strictly.

Data flow (defaults, S = 512, s = 16, N = s·s = 256, K = 1024 codes, D = 512)::

    x B×3×S×S ─ encoder ─► lq_feat B×256×s×s ─ feat_emb + 9 transformer layers ─► logits B×N×K
        │ skips at 32/64/128/256                         argmax ─► codes ─► lookup (+AdaIN)
        └──────────────► generator with CFT fusion  dec + w·(dec·scale + shift) ◄─┘
                                       └─► image B×3×S×S

Training pieces: ``encode`` (lq_feat and skips), ``predict_logits`` / ``code_only``
(Stage II), ``codes_to_features`` (ground-truth codes → features), ``best_code_features``
and ``decode`` (the generator with a given w).

The split for temporal fusion: ``predict_codes`` (encoder + transformer: what decides the
codes, and the skips the decoder needs) and ``decode_codes`` (code choice → lookup + AdaIN →
generator). ``decode_codes(*predict_codes(x), w)`` is ``forward(x, w)`` op for op; between
the two, the logits and latents of neighbouring frames can be fused
(``vidrestore.models.temporal``).

Export: pass ``w`` as a tensor so it stays a graph input; ``wrappers.ImageOnly(net)`` with
``torch.onnx.export(..., dynamo=True)`` (the default exporter) gives an ``(x, w) -> image``
graph with a dynamic batch axis (see tests/models/test_onnx.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from vidrestore.errors import ConfigError, UsageError

from .fusion import FidelityWeight, FuseSFTBlock, adaptive_instance_normalization
from .transformer import TransformerSALayer
from .vqgan import VQAutoEncoder


@dataclass(frozen=True)
class CodeFormerConfig:
    """CodeFormer hyperparameters; the defaults are the official released network."""

    dim_embd: int = 512
    n_head: int = 8
    n_layers: int = 9
    codebook_size: int = 1024
    latent_size: int = 256
    connect_list: tuple[str, ...] = ("32", "64", "128", "256")
    fix_modules: tuple[str, ...] = ("quantize", "generator")
    img_size: int = 512
    nf: int = 64
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)
    res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    emb_dim: int = 256


class EncoderFeatures(NamedTuple):
    """Encoder result: ``lq_feat`` ``B×emb_dim×s×s`` and skip maps keyed by side (``"32"``...)."""

    lq_feat: Tensor
    skips: dict[str, Tensor]


class CodeFormerOutput(NamedTuple):
    """CodeFormer result, in the official order ``(out, logits, lq_feat)``.

    image: restored face ``B×3×S×S`` in about [-1, 1] (the first element).
    logits: code scores ``B×N×K`` before softmax (cross-entropy target in Stage II).
    lq_feat: encoder latent ``B×emb_dim×s×s`` (feature-matching target in Stage II).
    """

    image: Tensor
    logits: Tensor
    lq_feat: Tensor


class CodePrediction(NamedTuple):
    """The first half of the split: what decides the codes, and what the decoder needs.

    logits: code scores ``B×N×K`` (before the argmax).
    lq_feat: encoder latent ``B×emb_dim×s×s``; AdaIN gives the looked-up codes its
        per-channel statistics.
    skips: the encoder maps the CFT fusion reads, keyed by side (``"32"``...).
    """

    logits: Tensor
    lq_feat: Tensor
    skips: dict[str, Tensor]


class CodeFormer(VQAutoEncoder):
    """CodeFormer: VQGAN encoder / codebook / generator + code-prediction transformer + CFT.

    Args:
        dim_embd: transformer width D (512).
        n_head: attention heads (8).
        n_layers: transformer layers (9).
        codebook_size: number of codes K (1024).
        latent_size: number of latent tokens N, must be ``(img_size / 2**(len(ch_mult)-1))²``.
        connect_list: map sides (as strings, official keys) where CFT fuses encoder features.
        fix_modules: submodules whose parameters get ``requires_grad=False`` (official default
            freezes the codebook and generator, as in Stages II and III).
        img_size, nf, ch_mult, res_blocks, attn_resolutions, emb_dim: the VQGAN sizes
            (hard-coded in the official class; parameters here so tests can use tiny nets).
            The official ``vqgan_path`` is left out: weights come in as state dicts.

    ``forward(x, w)``: ``x`` ``B×3×S×S`` in [-1, 1]; ``w`` a number, 0-d tensor or ``(B,)``
    tensor; returns a ``CodeFormerOutput`` whose first element is the restored image.
    Never loads or downloads weights: the caller loads a state dict.
    """

    def __init__(
        self,
        dim_embd: int = 512,
        n_head: int = 8,
        n_layers: int = 9,
        codebook_size: int = 1024,
        latent_size: int = 256,
        connect_list: tuple[str, ...] | list[str] = ("32", "64", "128", "256"),
        fix_modules: tuple[str, ...] | list[str] | None = ("quantize", "generator"),
        *,
        img_size: int = 512,
        nf: int = 64,
        ch_mult: tuple[int, ...] | list[int] = (1, 2, 2, 4, 4, 8),
        res_blocks: int = 2,
        attn_resolutions: tuple[int, ...] | list[int] = (16,),
        emb_dim: int = 256,
    ) -> None:
        super().__init__(
            img_size, nf, ch_mult, "nearest", res_blocks, attn_resolutions, codebook_size, emb_dim
        )
        vq = self.vqgan_config
        if latent_size != vq.latent_hw**2:
            raise ConfigError(f"CodeFormer: latent_size {latent_size} != {vq.latent_hw}² tokens")
        sides = {str(vq.img_size >> i) for i in range(len(vq.ch_mult))}
        if not set(connect_list) <= sides:
            raise ConfigError(f"CodeFormer: connect_list {list(connect_list)} not in {sorted(sides)}")
        self.config = CodeFormerConfig(
            dim_embd, n_head, n_layers, codebook_size, latent_size, tuple(connect_list),
            tuple(fix_modules or ()), vq.img_size, vq.nf, vq.ch_mult, vq.res_blocks,
            vq.attn_resolutions, vq.emb_dim,
        )
        self.connect_list = list(connect_list)
        self.position_emb = nn.Parameter(torch.zeros(latent_size, dim_embd))
        self.feat_emb = nn.Linear(emb_dim, dim_embd)
        self.ft_layers = nn.Sequential(
            *[TransformerSALayer(dim_embd, n_head, 2 * dim_embd) for _ in range(n_layers)]
        )
        self.idx_pred_layer = nn.Sequential(
            nn.LayerNorm(dim_embd), nn.Linear(dim_embd, codebook_size, bias=False)
        )
        self.fuse_convs_dict = nn.ModuleDict(
            {size: FuseSFTBlock(vq.channels_at(int(size)), vq.channels_at(int(size)))
             for size in connect_list}
        )
        # Block index -> map side (official fuse_encoder_block / fuse_generator_block).
        self._skip_after = {self.encoder.skip_block_index[int(s)]: s for s in connect_list}
        self._fuse_after = {self.generator.fuse_block_index[int(s)]: s for s in connect_list}
        for name in fix_modules or ():
            for param in getattr(self, name).parameters():
                param.requires_grad_(False)

    @classmethod
    def from_config(cls, cfg: CodeFormerConfig) -> "CodeFormer":  # type: ignore[override]
        """Build from a ``CodeFormerConfig``."""
        return cls(**asdict(cfg))

    # ---------------------------------------------------------------- pieces for training
    def encode(self, x: Tensor) -> EncoderFeatures:
        """Run the encoder: ``B×3×S×S`` → ``lq_feat`` ``B×emb_dim×s×s`` and the skip maps."""
        side = self.config.img_size
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != side or x.shape[3] != side:
            raise UsageError(f"CodeFormer expects B×3×{side}×{side}, got {tuple(x.shape)}")
        skips: dict[str, Tensor] = {}
        for i, block in enumerate(self.encoder.blocks):
            x = block(x)
            if i in self._skip_after:
                skips[self._skip_after[i]] = x
        return EncoderFeatures(x, skips)

    def embed_tokens(self, lq_feat: Tensor) -> tuple[Tensor, Tensor]:
        """Latent map → transformer input tokens ``B×N×D`` and position embedding ``1×N×D``."""
        tokens = self.feat_emb(lq_feat.flatten(2).transpose(1, 2))
        return tokens, self.position_emb.unsqueeze(0)

    def predict_logits(self, lq_feat: Tensor) -> Tensor:
        """Code scores ``B×N×K`` (no softmax) for the latent map ``B×emb_dim×s×s``."""
        tokens, pos = self.embed_tokens(lq_feat)
        for layer in self.ft_layers:
            tokens = layer(tokens, pos)
        return self.idx_pred_layer(tokens)

    def code_only(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Stage II path (official ``code_only=True``): ``(logits B×N×K, lq_feat)``."""
        lq_feat = self.encode(x).lq_feat
        return self.predict_logits(lq_feat), lq_feat

    def codes_to_features(self, indices: Tensor) -> Tensor:
        """Look up code indices ``B×N`` → map ``B×emb_dim×s×s`` (official ``get_codebook_feat``)."""
        side = self.vqgan_config.latent_hw
        return self.quantize.lookup(indices, side, side)

    def best_code_features(
        self, logits: Tensor, lq_feat: Tensor, *, adain: bool = True, detach_codes: bool = True
    ) -> Tensor:
        """The top-scoring codes of ``logits`` (``B×N×K``) as a map ``B×emb_dim×s×s``.

        ``detach_codes`` stops gradients into the codebook (official ``detach_16``); ``adain``
        then gives them ``lq_feat``'s statistics (gradients reach the encoder through those).
        """
        quant_feat = self.codes_to_features(logits.argmax(dim=-1))
        if detach_codes:
            quant_feat = quant_feat.detach()
        if adain:
            quant_feat = adaptive_instance_normalization(quant_feat, lq_feat)
        return quant_feat

    def decode(self, quant_feat: Tensor, skips: dict[str, Tensor], w: FidelityWeight) -> Tensor:
        """Generator with CFT fusion of the (detached) encoder skips at fidelity ``w``.

        ``quant_feat`` ``B×emb_dim×s×s`` → image ``B×3×S×S``. A Python ``w == 0`` skips the
        fusion (as the official ``if w > 0``); a tensor ``w`` always runs it, with the same
        result at 0.
        """
        if not isinstance(w, Tensor) and w == 0:
            return self.generate(quant_feat, lambda size, dec: dec)
        return self.generate(
            quant_feat, lambda size, dec: self.fuse_convs_dict[size](skips[size].detach(), dec, w)
        )

    def generate(self, quant_feat: Tensor, fuse: Callable[[str, Tensor], Tensor]) -> Tensor:
        """Run the generator, calling ``fuse(side, dec)`` after each fusion block."""
        x = quant_feat
        for i, block in enumerate(self.generator.blocks):
            x = block(x)
            if i in self._fuse_after:
                x = fuse(self._fuse_after[i], x)
        return x

    # ---------------------------------------------------------------- the split
    def predict_codes(self, x: Tensor, **condition: Tensor) -> CodePrediction:
        """Encoder and transformer: ``x`` ``B×3×S×S`` → ``CodePrediction`` (logits, latent,
        skips). ``condition`` goes to ``predict_logits`` (ID-CodeFormer's ``identity``)."""
        enc = self.encode(x)
        return CodePrediction(self.predict_logits(enc.lq_feat, **condition), enc.lq_feat, enc.skips)

    def decode_codes(self, logits: Tensor, lq_feat: Tensor, skips: dict[str, Tensor], w: FidelityWeight,
                     *, adain: bool = True, **condition: Tensor) -> Tensor:
        """The code choice and the generator: argmax of ``logits`` → lookup (+AdaIN to
        ``lq_feat``'s statistics) → ``decode`` at fidelity ``w``; returns ``B×3×S×S``.

        With the outputs of ``predict_codes`` it is ``forward(x, w).image`` exactly; fused
        logits / latents of a window of frames give the fused face."""
        quant_feat = self.best_code_features(logits, lq_feat, adain=adain)
        return self.decode(quant_feat, skips, w, **condition)

    # ---------------------------------------------------------------- inference
    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        w: FidelityWeight = 0.5,
        *,
        adain: bool = True,
        detach_codes: bool = True,
    ) -> CodeFormerOutput:
        """Restore faces.

        Args:
            x: aligned faces ``B×3×S×S`` in [-1, 1].
            w: fidelity weight (0: codebook only, 1: faithful); number, 0-d or ``(B,)`` tensor.
            adain: AdaIN the looked-up codes to the encoder statistics (official inference:
                True; the official training forward uses False).
            detach_codes: stop gradients into the codebook (official ``detach_16``).
        """
        return self._restore(x, w, adain=adain, detach_codes=detach_codes)

    def _restore(
        self, x: Tensor, w: FidelityWeight, *, adain: bool, detach_codes: bool, **condition: Tensor
    ) -> CodeFormerOutput:
        """encode → predict codes → look up (+AdaIN) → decode; ``condition`` goes to
        ``predict_logits`` and ``decode`` (subclasses add inputs such as an identity)."""
        enc = self.encode(x)
        logits = self.predict_logits(enc.lq_feat, **condition)
        quant_feat = self.best_code_features(logits, enc.lq_feat, adain=adain, detach_codes=detach_codes)
        image = self.decode(quant_feat, enc.skips, w, **condition)
        return CodeFormerOutput(image, logits, enc.lq_feat)
