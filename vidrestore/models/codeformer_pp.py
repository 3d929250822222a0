"""CodeFormer++ (arXiv 2510.04410): fuse a faithful and a generative CodeFormer output.

Data flow (S = 512 by default)::

    x B×3×S×S ─ CodeFormer encoder + transformer (once) ─► codes, lq_feat, skips
       └─ generator on 2B samples, per-sample w = [w_F]*B + [w_G]*B (one batched pass)
            ├─► I_F  B×3×S×S   faithful   (w_F = 1)
            └─► I_G  B×3×S×S   generative (w_G = 0)
    DAM(I_F, I_G) ─► flow B×2×S×S (normalised units), I_warp = grid_sample(I_G, flow)
    TGRN(I_F, I_warp) ─► final face B×3×S×S (U-Net on I_F, texture attention to I_warp)

The CodeFormer part is a plain ``CodeFormer`` under ``codeformer.`` and loads official
weights (``load_codeformer_state_dict``); DAM and TGRN are the project's own layers. Their
output layers start at zero: untrained, DAM predicts no motion and TGRN adds nothing, so
``untrained_parts`` can tell from the weights alone (no seed involved) whether they were
trained. ``CodeFormerPPFaithful`` is what such a network computes, without the dead layers:
``I_F`` alone. ``use_dam: false`` (the no-DAM ablation) feeds ``I_G`` to TGRN unwarped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .checkpoint import LoadReport, load_strict
from .codeformer import CodeFormer, CodeFormerConfig
from .dam import DAMConfig, DeformableAlignment
from .tgrn import TextureGuidedRestoration, TGRNConfig


@dataclass(frozen=True)
class CodeFormerPPConfig:
    """CodeFormer++: its CodeFormer, DAM and TGRN sizes, and the two fidelity weights."""

    codeformer: CodeFormerConfig = field(default_factory=CodeFormerConfig)
    dam: DAMConfig = field(default_factory=DAMConfig)
    tgrn: TGRNConfig = field(default_factory=TGRNConfig)
    faithful_w: float = 1.0
    generative_w: float = 0.0
    use_dam: bool = True


class CodeFormerPPOutput(NamedTuple):
    """CodeFormer++ result (all images ``B×3×S×S`` in about [-1, 1]).

    image: the final face (first element). faithful: I_F. generative: I_G.
    warped: I_G warped onto I_F. flow: ``B×2×S×S`` deformation (normalised units).
    logits: CodeFormer code scores ``B×N×K``. lq_feat: encoder latent.
    """

    image: Tensor
    faithful: Tensor
    generative: Tensor
    warped: Tensor
    flow: Tensor
    logits: Tensor
    lq_feat: Tensor


class CodeFormerPP(nn.Module):
    """CodeFormer++: CodeFormer at two fidelity weights + DAM + TGRN (see module doc).

    Args:
        config: sizes and weights; the default CodeFormer part is the official network.

    ``forward(x)``: ``x`` ``B×3×S×S`` in [-1, 1] → ``CodeFormerPPOutput`` (final face first).
    """

    def __init__(self, config: CodeFormerPPConfig | None = None) -> None:
        super().__init__()
        config = config or CodeFormerPPConfig()
        self.config = config
        self.codeformer = CodeFormer.from_config(config.codeformer)
        self.dam = DeformableAlignment(**asdict(config.dam))
        self.tgrn = TextureGuidedRestoration(**asdict(config.tgrn))

    @classmethod
    def from_config(cls, cfg: CodeFormerPPConfig) -> "CodeFormerPP":
        """Build from a ``CodeFormerPPConfig``."""
        return cls(cfg)

    def load_codeformer_state_dict(
        self, state_dict: dict[str, Tensor], *, source: str = "state dict", param_key: str | None = None
    ) -> LoadReport:
        """Load official CodeFormer weights (unprefixed keys) into the CodeFormer part, strictly.

        The report lists DAM and TGRN tensors as untrained.
        """
        report = load_strict(self.codeformer, state_dict, source=source, param_key=param_key)
        untrained = tuple(sorted(k for k in self.state_dict() if not k.startswith("codeformer.")))
        return LoadReport(report.source, report.param_key, report.loaded, untrained)

    def faithful_and_generative(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(I_F, I_G, logits, lq_feat)``: one encoder / transformer pass, one 2B decoder pass."""
        cf = self.codeformer
        enc = cf.encode(x)
        logits = cf.predict_logits(enc.lq_feat)
        quant_feat = cf.best_code_features(logits, enc.lq_feat)
        b = x.shape[0]
        w = torch.cat([
            torch.full((b,), self.config.faithful_w, device=x.device, dtype=x.dtype),
            torch.full((b,), self.config.generative_w, device=x.device, dtype=x.dtype),
        ])
        skips = {k: v.repeat(2, 1, 1, 1) for k, v in enc.skips.items()}
        images = cf.decode(quant_feat.repeat(2, 1, 1, 1), skips, w)
        return images[:b], images[b:], logits, enc.lq_feat

    def align(self, faithful: Tensor, generative: Tensor) -> tuple[Tensor, Tensor]:
        """``(I_warp, flow)``: DAM's warp of I_G onto I_F, or I_G and a zero flow without DAM."""
        if not self.config.use_dam:
            b, _, h, w = generative.shape
            return generative, generative.new_zeros(b, 2, h, w)
        return self.dam(faithful, generative)

    def forward(self, x: Tensor) -> CodeFormerPPOutput:
        faithful, generative, logits, lq_feat = self.faithful_and_generative(x)
        warped, flow = self.align(faithful, generative)
        image = self.tgrn(faithful, warped)
        return CodeFormerPPOutput(image, faithful, generative, warped, flow, logits, lq_feat)

    def untrained_parts(self) -> tuple[str, ...]:
        """The parts still at their initial values (see module doc): ``"DAM"`` (only when it
        is used) and ``"TGRN"``. Either one makes the network no better than ``I_F``."""
        parts = []
        if self.config.use_dam and self.dam.untrained:
            parts.append("DAM")
        if self.tgrn.untrained:
            parts.append("TGRN")
        return tuple(parts)


class CodeFormerPPFaithful(nn.Module):
    """CodeFormer++ with an identity warp and a zero TGRN residual: the faithful face ``I_F``
    = CodeFormer at ``faithful_w``, computed without DAM, TGRN or the generative pass.

    What ``--allow-untrained`` runs for a CodeFormer++ whose DAM / TGRN were never trained:
    no layer of it holds untrained (random) weights, so its output and its engine's cache
    key are the same at every run. ``forward(x)``: ``B×3×S×S`` → ``CodeFormerPPOutput``
    (``image`` = ``faithful`` = ``warped`` = ``generative`` = I_F, zero flow).

    Args:
        codeformer: the CodeFormer part (shared, not copied).
        faithful_w: the fidelity weight of I_F (CodeFormer++'s ``faithful_w``, 1.0).
    """

    def __init__(self, codeformer: CodeFormer, faithful_w: float = 1.0) -> None:
        super().__init__()
        self.codeformer = codeformer
        self.faithful_w = float(faithful_w)
        self.config = CodeFormerPPFaithfulConfig(codeformer.config, self.faithful_w)

    def forward(self, x: Tensor) -> CodeFormerPPOutput:
        out = self.codeformer(x, self.faithful_w)
        b, _, h, w = x.shape
        image = out.image
        return CodeFormerPPOutput(image, image, image, image, image.new_zeros(b, 2, h, w), out.logits, out.lq_feat)


@dataclass(frozen=True)
class CodeFormerPPFaithfulConfig:
    """What identifies a ``CodeFormerPPFaithful`` (its CodeFormer's config and the w used)."""

    codeformer: CodeFormerConfig
    faithful_w: float
