"""What a restoration network takes and gives, as one plain module every backend runs.

``EngineNetwork`` wraps a registry network into ``forward(x, [identity], [w]) -> image``:

    x         B×3×S×S float32 in [−1, 1]
    identity  B×512 float32 (ID-CodeFormer only)
    w         (B,) float32 fidelity weight (not CodeFormer++, which fuses both ends itself)
    image     B×3×S×S float32

Inputs and output stay float32 whatever the precision, so every backend (eager, AOTInductor,
ONNX, TensorRT) has the same signature and ``w`` / ``identity`` are always graph inputs.

Reduced precision (fp16 / bf16) follows one plan, applied with module hooks so that eager runs
and exported graphs get exactly the same casts:

- the **code choice stays in fp32**: the encoder, the codebook, the transformer and its
  ``idx_pred_layer`` (LayerNorm, softmax, logits → argmax). The argmax is discrete: a logit
  that moves by one fp16/bf16 step flips a code, and a flipped code changes a whole patch of
  the face (with seeded random weights three flipped codes out of 256 cost 20 dB of PSNR).
  CodeFormer++'s DAM stays fp32 too: it predicts a flow in pixels (``FP32_TOP_MODULES``).
- the decoder's low-resolution part (up to S/8) stays fp32 too (``precision_plan``).
- everything else after the lookup — the generator at high resolution, the CFT fusion there,
  ID-CodeFormer's identity AdaIN, CodeFormer++'s TGRN (fp16 only) — runs in the reduced
  dtype; its statistics are computed in fp32: AdaIN and attention by the layers themselves,
  GroupNorm (in fp16) by ``Fp32StatsGroupNorm``, so exported fp16 graphs carry the casts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vidrestore.models.registry import ModelSpec

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

FP32_MODULES: tuple[str, ...] = (
    "encoder", "quantize", "feat_emb", "ft_layers", "idx_pred_layer",  # CodeFormer's code choice
    "identity_tokens", "id_cross_layers",                               # ID-CodeFormer's transformer
)
"""Submodules (under the CodeFormer part) kept in fp32 at every precision: the code choice."""

FP32_PARAMETERS: tuple[str, ...] = ("position_emb",)

FP32_TOP_MODULES: dict[torch.dtype, tuple[str, ...]] = {
    torch.float16: ("dam",),
    torch.bfloat16: ("dam", "tgrn"),
}
"""Top-level modules (CodeFormer++) kept in fp32, per reduced dtype. DAM predicts a flow in
pixels of a 512² face, where a bf16 step is up to 2 px; TGRN loses 2-4 dB in bf16 (8-bit
mantissa) but under 0.1 dB in fp16."""

REDUCED_TOP_MODULES: dict[torch.dtype, tuple[str, ...]] = {torch.float16: ("tgrn",), torch.bfloat16: ()}
"""Top-level modules whose floating inputs are cast to the reduced dtype on entry."""

SIDE_MODULES: tuple[str, ...] = ("fuse_convs_dict", "id_adain_dict")
"""The decoder's per-side fusion blocks (CFT, ID-CodeFormer's identity AdaIN), keyed by map side."""


@dataclass(frozen=True)
class NetworkIO:
    """The inputs of a network as an engine sees them.

    Attributes:
        model: registry name.
        face_size: S.
        uses_identity: takes a ``B×identity_dim`` identity vector.
        takes_fidelity: takes ``w``.
        identity_dim: length of the identity vector.
    """

    model: str
    face_size: int
    uses_identity: bool
    takes_fidelity: bool
    identity_dim: int = 512

    @property
    def input_names(self) -> tuple[str, ...]:
        names = ["x"]
        if self.uses_identity:
            names.append("identity")
        if self.takes_fidelity:
            names.append("w")
        return tuple(names)

    def shapes(self, batch: int | str = "B") -> dict[str, tuple]:
        """Input name → shape (``batch`` may be a symbol), plus ``image`` for the output."""
        s = self.face_size
        shapes: dict[str, tuple] = {"x": (batch, 3, s, s)}
        if self.uses_identity:
            shapes["identity"] = (batch, self.identity_dim)
        if self.takes_fidelity:
            shapes["w"] = (batch,)
        shapes["image"] = (batch, 3, s, s)
        return shapes

    def inputs(self, x: Tensor, identity: Tensor | None, w: float | Tensor) -> tuple[Tensor, ...]:
        """The positional inputs of ``EngineNetwork`` for a batch ``x`` (float32, on x's device)."""
        batch = x.shape[0]
        args = [x.float()]
        if self.uses_identity:
            if identity is None:
                raise ValueError(f"{self.model} needs an identity vector per face")
            args.append(identity.to(device=x.device, dtype=torch.float32))
        if self.takes_fidelity:
            if isinstance(w, Tensor):
                args.append(w.to(device=x.device, dtype=torch.float32).expand(batch).contiguous())
            else:
                args.append(torch.full((batch,), float(w), device=x.device, dtype=torch.float32))
        return tuple(args)

    def example_inputs(self, batch: int = 2, device: torch.device | str = "cpu", seed: int = 0) -> tuple[Tensor, ...]:
        """Seeded inputs of the right shapes (for export and checks)."""
        gen = torch.Generator().manual_seed(seed)
        x = torch.rand((batch, 3, self.face_size, self.face_size), generator=gen) * 2 - 1
        identity = None
        if self.uses_identity:
            identity = torch.nn.functional.normalize(torch.randn(batch, self.identity_dim, generator=gen), dim=1)
        w = torch.linspace(0.2, 0.8, batch)
        args = self.inputs(x, identity, w)
        return tuple(a.to(device) for a in args)


def network_io(spec: ModelSpec, net: nn.Module) -> NetworkIO:
    """The ``NetworkIO`` of ``net``, a network of the registry entry ``spec``."""
    core = _codeformer_part(net)
    identity_dim = getattr(getattr(net, "id_config", None), "identity_dim", 512)
    return NetworkIO(spec.name, core.config.img_size, spec.needs_identity, spec.takes_fidelity, identity_dim)


def _codeformer_part(net: nn.Module) -> nn.Module:
    return net.codeformer if hasattr(net, "codeformer") else net


class EngineNetwork(nn.Module):
    """A registry network as ``forward(*inputs) -> image`` in a given precision (module doc).

    Args:
        net: the network (cast in place: pass a copy if the original is still needed).
        io: its ``NetworkIO``.
        precision: ``fp32``, ``fp16`` or ``bf16``.
    """

    def __init__(self, net: nn.Module, io: NetworkIO, precision: str = "fp32") -> None:
        super().__init__()
        if precision not in DTYPES:
            raise ValueError(f"unknown precision {precision!r}")
        self.io = io
        self.precision = precision
        self.dtype = DTYPES[precision]
        self.net = net.eval()
        self.net.requires_grad_(False)
        if self.dtype is not torch.float32:
            apply_precision_plan(self.net, self.dtype)
        self.eval()

    def forward(self, *inputs: Tensor) -> Tensor:
        out = self.net(*inputs)
        image = out[0] if isinstance(out, (tuple, list)) else out
        return image.float()


@dataclass(frozen=True)
class PrecisionPlan:
    """Where a reduced-precision network computes in fp32 (module paths relative to it).

    Attributes:
        fp32: modules (and parameters) whose weights stay fp32.
        fp32_entries: modules that cast their floating inputs to fp32 when called.
        reduced_entries: modules that cast their floating inputs to the reduced dtype.
    """

    fp32: tuple[str, ...]
    fp32_entries: tuple[str, ...]
    reduced_entries: tuple[str, ...]


def precision_plan(net: nn.Module, dtype: torch.dtype) -> PrecisionPlan:
    """The plan of the module doc for ``net`` in ``dtype``.

    Besides the code choice, the decoder's low-resolution part (the generator up to S/8,
    64² for 512² faces, with its 16² attention and the CFT fusions there) stays fp32: an
    error made there is upsampled through every later layer, it costs about 15 % of the
    decoder's work, and it lifts full-size CodeFormer in bf16 from 39.7 to 42.5 dB.
    """
    core = _codeformer_part(net)
    p = "codeformer." if core is not net else ""
    fp32 = [p + n for n in FP32_MODULES + FP32_PARAMETERS if hasattr(core, n)]
    fp32_entries = [p + "encoder.blocks.0"] + [p + n for n in FP32_MODULES if isinstance(getattr(core, n, None), nn.Module)]
    reduced = []
    low = core.config.img_size // 8
    last_low = core.generator.fuse_block_index.get(low)
    if last_low is not None:
        fp32 += [f"{p}generator.blocks.{i}" for i in range(last_low + 1)]
        fp32_entries.append(p + "generator.blocks.0")
        reduced.append(f"{p}generator.blocks.{last_low + 1}")
    else:
        reduced.append(p + "generator.blocks.0")
    for name in SIDE_MODULES:
        for side in getattr(core, name, {}):
            path = f"{p}{name}.{side}"
            if int(side) <= low:
                fp32.append(path)
                fp32_entries.append(path)
            else:
                reduced.append(path)
    fp32 += FP32_TOP_MODULES[dtype]
    fp32_entries += [n for n in FP32_TOP_MODULES[dtype] if hasattr(net, n)]
    reduced += [n for n in REDUCED_TOP_MODULES[dtype] if hasattr(net, n)]
    return PrecisionPlan(tuple(fp32), tuple(fp32_entries), tuple(reduced))


class Fp32StatsGroupNorm(nn.GroupNorm):
    """GroupNorm computing its statistics in fp32 whatever its input dtype (same parameters).

    In fp16, ``x²`` overflows past |x| = 256: eager CUDA kernels accumulate in fp32 anyway,
    but an exported fp16 graph would not; the explicit casts put the fp32 island in it.
    """

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return nn.functional.group_norm(x.float(), self.num_groups, weight, bias, self.eps).to(x.dtype)


def apply_precision_plan(net: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast ``net`` to ``dtype`` except what ``precision_plan`` keeps in fp32, and add the
    entry casts; in fp16, GroupNorms compute their statistics in fp32. Returns ``net``."""
    plan = precision_plan(net, dtype)
    for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
        if tensor.is_floating_point() and not _under(name, plan.fp32):
            tensor.data = tensor.data.to(dtype)
    if dtype is torch.float16:
        for name, module in net.named_modules():
            if type(module) is nn.GroupNorm and not _under(name, plan.fp32):
                module.__class__ = Fp32StatsGroupNorm
    for path in plan.fp32_entries:
        _cast_inputs(net.get_submodule(path), torch.float32)
    for path in plan.reduced_entries:
        _cast_inputs(net.get_submodule(path), dtype)
    return net


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _cast_inputs(module: nn.Module, dtype: torch.dtype) -> None:
    def hook(_module, args):
        return tuple(a.to(dtype) if isinstance(a, Tensor) and a.is_floating_point() else a for a in args)

    module.register_forward_pre_hook(hook)
