"""Checking an engine against fp32 eager, and timing it alone.

Every engine must agree with the fp32 eager network on the same input: PSNR ≥ 45 dB for fp32
engines, ≥ 40 dB for fp16 / bf16, and every value finite (fp16 must never give garbage).
``vidrestore engines check`` runs this for the real weights on the real machine; the tests
run it on tiny networks.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from vidrestore import imaging

from .base import Engine
from .network import NetworkIO

THRESHOLDS_DB: dict[str, float] = {"fp32": 45.0, "fp16": 40.0, "bf16": 40.0}

_REFERENCE_OUTPUTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def psnr(a: Tensor, b: Tensor, peak: float = 2.0) -> float:
    """PSNR in dB between two image tensors in [−1, 1] (``peak`` = the range); inf when equal
    (``vidrestore.imaging.psnr`` on the host copies)."""
    return imaging.psnr(a.detach().double().cpu().numpy(), b.detach().double().cpu().numpy(), peak)


def face_batch(io: NetworkIO, batch: int, seed: int = 0) -> tuple[Tensor, Tensor | None]:
    """``batch`` face-like inputs ``B×3×S×S`` in [−1, 1] (the astronaut photo, shifted, scaled
    and noised per item) and unit identity vectors if the network takes them."""
    gen = torch.Generator().manual_seed(seed)
    s = io.face_size
    try:
        from skimage.data import astronaut

        photo = torch.from_numpy(astronaut()[:256, 96:352].copy()).permute(2, 0, 1).float() / 127.5 - 1
        base = torch.nn.functional.interpolate(photo[None], size=(s, s), mode="bilinear", antialias=True)[0]
    except ImportError:  # scikit-image is a dependency; seeded noise keeps the check going without it
        base = torch.rand((3, s, s), generator=gen) * 2 - 1
    items = []
    for i in range(batch):
        shift = int(torch.randint(-s // 16, s // 16 + 1, (1,), generator=gen))
        gain = 0.8 + 0.4 * torch.rand(1, generator=gen).item()
        noise = 0.05 * torch.randn((3, s, s), generator=gen)
        items.append((torch.roll(base, shift, dims=2) * gain + noise).clamp(-1, 1))
    identity = None
    if io.uses_identity:
        identity = torch.nn.functional.normalize(torch.randn(batch, io.identity_dim, generator=gen), dim=1)
    return torch.stack(items), identity


@dataclass(frozen=True)
class CheckResult:
    """One engine against the fp32 eager reference."""

    label: str
    backend: str
    precision: str
    psnr_db: float
    max_abs: float
    finite: bool
    threshold_db: float
    w_reaches_graph: bool

    @property
    def passed(self) -> bool:
        return self.finite and self.psnr_db >= self.threshold_db and self.w_reaches_graph

    def line(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        w = "" if self.w_reaches_graph else ", w has no effect"
        return (f"{self.label:44s} PSNR {self.psnr_db:6.1f} dB (≥ {self.threshold_db:.0f})  "
                f"max |Δ| {self.max_abs:.2e}{'' if self.finite else ', NON-FINITE'}{w}  {verdict}")

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def check_engine(engine: Engine, reference: Engine, io: NetworkIO, *, batch: int = 2,
                 fidelity: float = 0.5, seed: int = 0) -> CheckResult:
    """Compare ``engine`` with ``reference`` (fp32 eager) on the same face-like batch.

    Also checks that ``w`` reaches the engine: two fidelity weights must give different
    outputs wherever they do for the reference.
    """
    x, identity = face_batch(io, batch, seed)
    dev = torch.device(engine.info.device)

    def expected_at(w: float) -> Tensor:  # the reference's outputs are kept: one run per input
        memo = _REFERENCE_OUTPUTS.setdefault(reference, {})
        key = (batch, seed, w)
        if key not in memo:
            ref_dev = torch.device(reference.info.device)
            memo[key] = reference.run(x.to(ref_dev), None if identity is None else identity.to(ref_dev), w).cpu()
        return memo[key]

    with torch.inference_mode():
        expected = expected_at(fidelity)
        got = engine.run(x.to(dev), None if identity is None else identity.to(dev), fidelity)
        w_ok = True
        if io.takes_fidelity:
            other = 1.0 - fidelity if fidelity != 0.5 else 1.0
            ref_other = expected_at(other)
            got_other = engine.run(x.to(dev), None if identity is None else identity.to(dev), other)
            ref_moves = (ref_other - expected).abs().max().item()
            got_moves = (got_other.cpu() - got.cpu()).abs().max().item()
            w_ok = ref_moves < 1e-3 or got_moves > 0.1 * ref_moves
    got = got.float().cpu()
    expected = expected.float().cpu()
    finite = bool(torch.isfinite(got).all())
    return CheckResult(
        engine.info.label, engine.info.backend, engine.info.precision,
        psnr(got, expected) if finite else -math.inf,
        (got - expected).abs().max().item() if finite else math.inf,
        finite, THRESHOLDS_DB[engine.info.precision], w_ok,
    )


def time_engine(engine: Engine, io: NetworkIO, *, batch: int, repeats: int = 3, warmup: int = 1,
                fidelity: float = 0.5) -> float:
    """Restoration throughput of ``engine`` alone, in faces per second (best of ``repeats``
    timed calls after ``warmup`` untimed ones), inputs already on its device."""
    x, identity = face_batch(io, batch, seed=1)
    dev = torch.device(engine.info.device)
    x = x.to(dev)
    identity = None if identity is None else identity.to(dev)
    best = math.inf
    with torch.inference_mode():
        for i in range(warmup + repeats):
            _sync(dev)
            start = time.perf_counter()
            engine.run(x, identity, fidelity)
            _sync(dev)
            if i >= warmup:
                best = min(best, time.perf_counter() - start)
    return batch / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
