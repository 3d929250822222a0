"""ID-CodeFormer: CodeFormer conditioned on a 512-d ArcFace identity vector.

The design is the ID-CodeFormer proposal (this project's seed documents; no code or weights
of it are published): an identity-conditioned transformer and identity-aware CFT (IA-CFT),
trained with the identity loss L_ids = 1 − cos(ArcFace(I_res), ArcFace(I_h)). Two additions
to CodeFormer, both exact no-ops when freshly built, so a network loaded from official
CodeFormer weights reproduces CodeFormer until it is fine-tuned (``untrained_parts`` tells
from the weights which additions are still at that starting point):

- identity-conditioned transformer: after each self-attention layer, a cross-attention layer
  whose queries are the image tokens and whose keys / values are ``identity_tokens`` tokens
  projected from the identity by an MLP (zero-initialised output projection);
- IA-CFT at each fusion scale: the CFT path plus an AdaIN path ``γ·IN(dec) + β`` with γ, β
  predicted from the identity by an MLP (zero-initialised last layer), added::

      out = dec + w·(dec·scale + shift) + γ(v_id)·IN(dec) + β(v_id)

  The identity path is not scaled by ``w``: ``w`` weighs fidelity to the degraded input, the
  identity is a separate reference, used at any ``w``.

Shapes: ``x`` ``B×3×S×S`` in [-1, 1]; ``identity`` ``B×identity_dim`` (any length: it is
L2-normalised), an ArcFace embedding of a reference image of the person or, blind, of the
input itself (computed by the caller); the output is a ``CodeFormerOutput`` (image first).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from vidrestore.errors import UsageError

from .checkpoint import LoadReport, load_strict
from .codeformer import CodeFormer, CodeFormerConfig, CodeFormerOutput
from .fusion import FidelityWeight, calc_mean_std
from .transformer import CrossAttentionLayer, VectorToTokens

NEW_LAYER_PREFIXES = ("identity_tokens.", "id_cross_layers.", "id_adain_dict.")
"""State-dict prefixes of the layers ID-CodeFormer adds to CodeFormer."""


@dataclass(frozen=True)
class IDCodeFormerConfig:
    """ID-CodeFormer hyperparameters: a CodeFormer plus the identity layers."""

    codeformer: CodeFormerConfig = field(default_factory=CodeFormerConfig)
    identity_dim: int = 512
    identity_tokens: int = 4
    adain_hidden: int = 256


class IdentityAdaIN(nn.Module):
    """The identity path of IA-CFT: ``γ·IN(dec) + β`` with ``(γ, β) = MLP(v_id)``.

    The MLP's last layer starts at zero, so the path outputs zeros until trained.
    Instance statistics are computed in fp32.

    Args:
        identity_dim: identity vector length.
        channels: channels C of the decoder map.
        hidden: MLP hidden width.

    Shapes: ``dec: B×C×H×W``, ``identity: B×identity_dim -> B×C×H×W``.
    """

    def __init__(self, identity_dim: int, channels: int, hidden: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(identity_dim, hidden), nn.SiLU(), nn.Linear(hidden, 2 * channels)
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, dec: Tensor, identity: Tensor) -> Tensor:
        unit = F.normalize(identity.float(), dim=-1).to(self.mlp[0].weight.dtype)
        gamma, beta = self.mlp(unit).to(dec.dtype)[..., None, None].chunk(2, dim=1)
        mean, std = calc_mean_std(dec)
        return gamma * ((dec.float() - mean) / std).to(dec.dtype) + beta


class IDCodeFormer(CodeFormer):
    """CodeFormer + identity cross-attention + IA-CFT; loads CodeFormer weights (see module doc).

    Args:
        identity_dim: identity vector length (512 for ArcFace).
        identity_tokens: tokens the identity MLP produces for cross-attention.
        adain_hidden: hidden width of the IA-CFT identity MLPs.
        **codeformer: CodeFormer's arguments (``dim_embd``, ``n_head``, ``connect_list``...).
    """

    def __init__(
        self,
        identity_dim: int = 512,
        identity_tokens: int = 4,
        adain_hidden: int = 256,
        **codeformer: object,
    ) -> None:
        super().__init__(**codeformer)  # type: ignore[arg-type]
        cfg = self.config
        self.id_config = IDCodeFormerConfig(cfg, identity_dim, identity_tokens, adain_hidden)
        self.identity_tokens = VectorToTokens(identity_dim, cfg.dim_embd, identity_tokens)
        self.id_cross_layers = nn.ModuleList(
            [CrossAttentionLayer(cfg.dim_embd, cfg.n_head) for _ in range(cfg.n_layers)]
        )
        self.id_adain_dict = nn.ModuleDict(
            {size: IdentityAdaIN(identity_dim, self.vqgan_config.channels_at(int(size)), adain_hidden)
             for size in cfg.connect_list}
        )

    @classmethod
    def from_config(cls, cfg: IDCodeFormerConfig) -> "IDCodeFormer":  # type: ignore[override]
        """Build from an ``IDCodeFormerConfig``."""
        return cls(cfg.identity_dim, cfg.identity_tokens, cfg.adain_hidden, **asdict(cfg.codeformer))

    def load_codeformer_state_dict(
        self, state_dict: dict[str, Tensor], *, source: str = "state dict", param_key: str | None = None
    ) -> LoadReport:
        """Load CodeFormer weights: every CodeFormer tensor must fit; only the new layers
        (``NEW_LAYER_PREFIXES``) may be absent, and the report lists them as untrained."""
        return load_strict(
            self, state_dict, source=source, param_key=param_key, new_prefixes=NEW_LAYER_PREFIXES
        )

    def _identity(self, identity: Tensor | None, batch: int) -> Tensor:
        if identity is None or identity.dim() != 2 or identity.shape != (batch, self.id_config.identity_dim):
            got = None if identity is None else tuple(identity.shape)
            raise UsageError(
                f"IDCodeFormer needs an identity of shape ({batch}, {self.id_config.identity_dim}), got {got}"
            )
        return identity

    def predict_logits(self, lq_feat: Tensor, identity: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """Code scores ``B×N×K``; each self-attention layer is followed by identity cross-attention."""
        context = self.identity_tokens(self._identity(identity, lq_feat.shape[0]))
        tokens, pos = self.embed_tokens(lq_feat)
        for self_attn, cross_attn in zip(self.ft_layers, self.id_cross_layers):
            tokens = cross_attn(self_attn(tokens, pos), context, pos)
        return self.idx_pred_layer(tokens)

    def code_only(self, x: Tensor, identity: Tensor | None = None) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Stage II path: ``(logits B×N×K, lq_feat)``."""
        lq_feat = self.encode(x).lq_feat
        return self.predict_logits(lq_feat, identity), lq_feat

    def decode(  # type: ignore[override]
        self, quant_feat: Tensor, skips: dict[str, Tensor], w: FidelityWeight, identity: Tensor | None = None
    ) -> Tensor:
        """Generator with IA-CFT (CFT at ``w`` + the identity AdaIN path) at each fusion scale."""
        identity = self._identity(identity, quant_feat.shape[0])
        skip_cft = not isinstance(w, Tensor) and w == 0

        def fuse(size: str, dec: Tensor) -> Tensor:
            fused = dec if skip_cft else self.fuse_convs_dict[size](skips[size].detach(), dec, w)
            return fused + self.id_adain_dict[size](dec, identity)

        return self.generate(quant_feat, fuse)

    def untrained_parts(self) -> tuple[str, ...]:
        """The identity paths still at their initial values: ``"identity cross-attention"``
        when every cross-attention layer's output projection is all zeros, ``"IA-CFT"`` when
        every identity AdaIN's last layer is. Such a path adds exactly nothing to the output;
        with both listed the network is CodeFormer."""
        parts = []
        if not any(_nonzero(layer.cross_attn.out_proj) for layer in self.id_cross_layers):
            parts.append("identity cross-attention")
        if not any(_nonzero(adain.mlp[-1]) for adain in self.id_adain_dict.values()):
            parts.append("IA-CFT")
        return tuple(parts)

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        identity: Tensor,
        w: FidelityWeight = 0.5,
        *,
        adain: bool = True,
        detach_codes: bool = True,
    ) -> CodeFormerOutput:
        """Restore faces ``B×3×S×S`` guided by ``identity`` ``B×identity_dim`` (see CodeFormer)."""
        return self._restore(x, w, adain=adain, detach_codes=detach_codes, identity=identity)


def _nonzero(layer: nn.Module) -> bool:
    return any(bool(p.any()) for p in layer.parameters())
