"""The restoration network split in two graphs, so the code choice can be fused over frames.

``forward(x, w)`` of every CodeFormer is *encode → transformer → argmax → lookup + AdaIN →
generator*. Split at the logits:

    predict   x B×3×S×S, [identity B×512]
              → logits B×N×K, lq_feat B×C×s×s, skip<side> B×C_side×side×side (one per CFT side)
    decode    logits, lq_feat, skip<side>..., [identity], [w (B,)]
              → image B×3×S×S

(N = s² latent positions, K codes, C = emb_dim; for CodeFormer++ the decode graph holds both
generator passes, DAM and TGRN and takes no ``w``.) Between the two graphs the logits and
latents of a track's neighbouring frames can be fused (``vidrestore.models.temporal``); with
nothing fused in between, ``decode(*predict(x), w)`` is ``forward(x, w)``, op for op.

Both halves are plain modules over one shared network, so every backend exports and runs
them like ``EngineNetwork`` (inputs and outputs float32, ``w`` and ``identity`` graph inputs,
the batch axis dynamic) and the precision plan of ``engines.network`` applies unchanged: the
whole predict graph is code choice (fp32); in the decode graph the argmax, lookup and AdaIN
stay fp32 and the generator follows the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .network import DTYPES, NetworkIO, _codeformer_part, apply_precision_plan

PARTS = ("predict", "decode")


@dataclass(frozen=True)
class SplitIO:
    """Names and shapes of the two graphs of a split network.

    Attributes:
        io: the whole network's inputs.
        sides: the CFT sides whose encoder maps travel from predict to decode, in order.
        skip_channels: channels of each of those maps.
        tokens: N, latent positions (s²).
        codes: K, codebook size.
        latent_channels: C of ``lq_feat``.
    """

    io: NetworkIO
    sides: tuple[str, ...]
    skip_channels: tuple[int, ...]
    tokens: int
    codes: int
    latent_channels: int

    @property
    def latent_side(self) -> int:
        return int(round(self.tokens ** 0.5))

    @property
    def skip_names(self) -> tuple[str, ...]:
        return tuple(f"skip{side}" for side in self.sides)

    def input_names(self, part: str) -> tuple[str, ...]:
        """The graph inputs of ``part`` (``predict`` or ``decode``), in order."""
        io = self.io
        if part == "predict":
            return ("x", "identity") if io.uses_identity else ("x",)
        names = ["logits", "lq_feat", *self.skip_names]
        if io.uses_identity:
            names.append("identity")
        if io.takes_fidelity:
            names.append("w")
        return tuple(names)

    def output_names(self, part: str) -> tuple[str, ...]:
        return ("logits", "lq_feat", *self.skip_names) if part == "predict" else ("image",)

    def shapes(self, part: str, batch: int | str = "B") -> dict[str, tuple]:
        """Input and output name → shape of ``part`` (``batch`` may be a symbol)."""
        s, c = self.latent_side, self.latent_channels
        known: dict[str, tuple] = {
            "x": (batch, 3, self.io.face_size, self.io.face_size),
            "identity": (batch, self.io.identity_dim),
            "w": (batch,),
            "logits": (batch, self.tokens, self.codes),
            "lq_feat": (batch, c, s, s),
            "image": (batch, 3, self.io.face_size, self.io.face_size),
        }
        for side, channels in zip(self.sides, self.skip_channels):
            known[f"skip{side}"] = (batch, channels, int(side), int(side))
        names = self.input_names(part) + self.output_names(part)
        return {name: known[name] for name in dict.fromkeys(names)}


def split_io(net: nn.Module, io: NetworkIO) -> SplitIO:
    """The ``SplitIO`` of ``net`` (a registry network) with inputs ``io``."""
    core = _codeformer_part(net)
    cfg = core.config
    sides = tuple(cfg.connect_list)
    channels = tuple(core.vqgan_config.channels_at(int(side)) for side in sides)
    return SplitIO(io, sides, channels, cfg.latent_size, cfg.codebook_size, cfg.emb_dim)


class _Part(nn.Module):
    def __init__(self, net: nn.Module, split: SplitIO) -> None:
        super().__init__()
        self.net = net  # the attribute name gives exported nodes their "net." scopes
        self.split = split
        self.io = split.io


class PredictNetwork(_Part):
    """``forward(x, [identity]) -> (logits, lq_feat, *skips)``, all float32 (module doc)."""

    part = "predict"

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:  # one varargs: as EngineNetwork, for export
        core = _codeformer_part(self.net)
        kwargs = {"identity": inputs[1]} if self.io.uses_identity else {}
        pred = core.predict_codes(inputs[0], **kwargs)
        skips = [pred.skips[side].float() for side in self.split.sides]
        return (pred.logits.float(), pred.lq_feat.float(), *skips)


class DecodeNetwork(_Part):
    """``forward(logits, lq_feat, *skips, [identity], [w]) -> image`` float32 (module doc)."""

    part = "decode"

    def forward(self, *inputs: Tensor) -> Tensor:  # one varargs: as EngineNetwork, for export
        logits, lq_feat, rest = inputs[0], inputs[1], inputs[2:]
        n = len(self.split.sides)
        skips = dict(zip(self.split.sides, rest[:n]))
        extra = list(rest[n:])
        identity = extra.pop(0) if self.io.uses_identity else None
        w = extra.pop(0) if self.io.takes_fidelity else None
        net = self.net
        if hasattr(net, "tgrn"):  # CodeFormer++: both ends of w from one code choice, then DAM + TGRN
            return _decode_codeformer_pp(net, logits, lq_feat, skips).float()
        kwargs = {"identity": identity} if identity is not None else {}
        return net.decode_codes(logits, lq_feat, skips, w, **kwargs).float()


def _decode_codeformer_pp(net: nn.Module, logits: Tensor, lq_feat: Tensor, skips: dict[str, Tensor]) -> Tensor:
    """CodeFormer++'s forward after its transformer (``CodeFormerPP.faithful_and_generative``
    from the logits on, then DAM and TGRN)."""
    cf = net.codeformer
    quant_feat = cf.best_code_features(logits, lq_feat)
    b = logits.shape[0]
    w = torch.cat([
        torch.full((b,), net.config.faithful_w, device=logits.device, dtype=lq_feat.dtype),
        torch.full((b,), net.config.generative_w, device=logits.device, dtype=lq_feat.dtype),
    ])
    images = cf.decode(quant_feat.repeat(2, 1, 1, 1), {k: v.repeat(2, 1, 1, 1) for k, v in skips.items()}, w)
    faithful, generative = images[:b], images[b:]
    warped, _ = net.dam(faithful, generative)
    return net.tgrn(faithful, warped)


class SplitNetwork(nn.Module):
    """Both halves over one network in one precision (the plan of ``engines.network``).

    Args:
        net: the registry network (cast in place: pass a copy if the original is still needed).
        io: its ``NetworkIO``.
        precision: ``fp32``, ``fp16`` or ``bf16``.

    Attributes:
        predict, decode: the two halves (``PredictNetwork``, ``DecodeNetwork``).
        split: their names and shapes.
    """

    def __init__(self, net: nn.Module, io: NetworkIO, precision: str = "fp32") -> None:
        super().__init__()
        if precision not in DTYPES:
            raise ValueError(f"unknown precision {precision!r}")
        self.precision = precision
        self.dtype = DTYPES[precision]
        net = net.eval()
        net.requires_grad_(False)
        if self.dtype is not torch.float32:
            apply_precision_plan(net, self.dtype)
        self.split = split_io(net, io)
        self.predict = PredictNetwork(net, self.split)
        self.decode = DecodeNetwork(net, self.split)
        self.eval()

    def part(self, name: str) -> _Part:
        return self.predict if name == "predict" else self.decode

    def example_inputs(self, part: str, batch: int = 2, device: torch.device | str = "cpu",
                       seed: int = 0) -> tuple[Tensor, ...]:
        """Seeded inputs of ``part`` (the decode part's come from a predict pass, so their
        values are realistic)."""
        io = self.split.io
        face_inputs = io.example_inputs(batch, device, seed)
        x = face_inputs[0]
        identity = face_inputs[1] if io.uses_identity else None
        predict_inputs = (x,) if identity is None else (x, identity)
        if part == "predict":
            return predict_inputs
        with torch.no_grad():
            codes = self.predict(*predict_inputs)
        extra = [identity] if identity is not None else []
        if io.takes_fidelity:
            extra.append(face_inputs[-1])
        return (*codes, *extra)
