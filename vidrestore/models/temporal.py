"""Training-free temporal fusion of CodeFormer's code choice along a face track.

Faces of one track are aligned to one template, so latent position n of one frame and of the
next see the same part of the face. Per-frame CodeFormer picks each position's code by the
argmax of its logits; where two codes score nearly alike, sensor noise or compression decides,
and the code — a whole patch of the face (32×32 pixels of a 512² crop) — flips from frame to
frame: the flicker users see most at w = 0, where nothing but the codes reaches the decoder.

``fuse_window`` fuses, for the centre frame t, the frames t+k (|k| ≤ r) of its track:

    a_k(n)  = g(k) · c_k(n)                      weight of frame t+k at position n
    g(k)    = exp(−k² / 2σ²)                     Gaussian over the frame offset
    d_j(n)  = ‖f_t(n) − f_{t+j}(n)‖ / rms_n ‖f_t(n)‖   the latent's change at n, relative
    s_j(n)  = 1 / (1 + (d_j(n) / τ)⁴)            1 while d ≪ τ, ½ at τ, → 0 beyond
    c_k(n)  = min_{j between 0 and k} s_j(n)     the gate: it only closes outwards
    logits'(n) = Σ_k a_k(n) · logits_{t+k}(n) / Σ_k a_k(n)

The gate's shape comes from measuring d (full-size CodeFormer with seeded weights, 512²
crops of the astronaut photo degraded by the ``vfhq`` clip preset): between two frames that
differ by fresh noise and compression only, d stays under 0.48 at 90 % of the positions and
under 0.58 at 99 %; a 6° turn with a 10-pixel shift of the face gives 0.50 at the median and
1.0 at 90 %; a mouth drawn open, 0.55 at 90 % and 0.80 at 99 % (the positions it covers).
τ = 0.6 keeps noise-only neighbours at weight 0.5–1 and cuts such changes to 0.05–0.25.

The argmax of mean logits is the argmax of the mean log-probabilities (the log-sum-exp of
each frame is a constant per position), so the code chosen is the one the window's frames
agree on most (a product of their distributions). Where a frame differs (a head turning,
the mouth opening, a blink) the gate closes for the positions that changed and the window
shrinks there; the frames beyond a change are not reached either. A scene cut ends every
track (``faces.track``), so a window never spans one.

The decoder gives the looked-up codes the per-channel statistics of ``lq_feat`` (AdaIN);
those move with the noise too, so the fused latent is the centre one re-standardised to
the window's mean statistics (frame weights ``mean_n a_k(n)``). With a window of one frame
nothing is changed: ``decode_codes`` then gives exactly the per-frame face.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from vidrestore.errors import ConfigError
from vidrestore.names import TemporalName, choices

from .fusion import calc_mean_std


@dataclass(frozen=True)
class TemporalConfig:
    """Temporal fusion of the code choice along each face track (module doc).

    Attributes:
        mode: ``on`` (default for videos) or ``off`` (each frame restored alone).
        window: frames in the centred window (odd; 1 is the same as ``off``). A face is held
            back until ``window // 2`` later frames of the video have been seen.
        sigma: the Gaussian's width over the frame offset, in frames.
        gate: τ, the relative latent change at which a neighbour's weight at a position
            has fallen to one half (smaller: the window shrinks at smaller changes).
        statistics: also fuse the AdaIN statistics of the latent.
    """

    mode: TemporalName = "on"
    window: int = 5
    sigma: float = 2.0
    gate: float = 0.6
    statistics: bool = True

    def __post_init__(self) -> None:
        if self.mode not in choices(TemporalName):
            raise ConfigError(f"unknown temporal mode {self.mode!r}; choose one of {', '.join(choices(TemporalName))}")
        if self.window < 1 or self.window % 2 == 0:
            raise ConfigError(f"the temporal window must be an odd number of frames >= 1, got {self.window}")
        if self.sigma <= 0 or self.gate <= 0:
            raise ConfigError(f"temporal sigma and gate must be > 0, got {self.sigma} and {self.gate}")

    @property
    def enabled(self) -> bool:
        return self.mode == "on" and self.window > 1

    @property
    def radius(self) -> int:
        """Frames on each side of the centre (``window // 2``)."""
        return self.window // 2 if self.enabled else 0


def relative_change(centre: Tensor, other: Tensor) -> Tensor:
    """``d(n)``: how much latent position n changed, relative to the centre's typical size.

    Args:
        centre, other: latents ``C×s×s`` (or ``B×C×s×s``).

    Returns:
        ``N`` (or ``B×N``) values, N = s²: ``‖centre(n) − other(n)‖ / rms_n ‖centre(n)‖``.
    """
    a, b = centre.float().flatten(-2), other.float().flatten(-2)
    diff = (a - b).norm(dim=-2)
    scale = a.norm(dim=-2).pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-6)
    return diff / scale


def window_weights(latents: Tensor, offsets: Sequence[int], config: TemporalConfig) -> Tensor:
    """``a_k(n)``: the weight of each window frame at each position (module doc).

    Args:
        latents: ``T×C×s×s``, the window's frames (any order); ``offsets[i]`` is frame i's
            offset from the centre, which must be among them (offset 0).
        offsets: T distinct frame offsets.

    Returns:
        ``T×N`` non-negative weights; the centre's row is ``g(0) = 1`` everywhere.
    """
    offsets = [int(k) for k in offsets]
    if 0 not in offsets or len(set(offsets)) != len(offsets):
        raise ValueError(f"window offsets must be distinct and hold the centre (0), got {offsets}")
    centre = latents[offsets.index(0)]
    similar = 1.0 / (1.0 + (relative_change(centre[None], latents) / config.gate) ** 4)  # T×N
    weights = torch.empty_like(similar)
    for side in (1, -1):
        order = sorted((i for i, k in enumerate(offsets) if k * side >= 0), key=lambda i: abs(offsets[i]))
        gate = torch.ones_like(similar[0])
        for i in order:
            gate = torch.minimum(gate, similar[i])
            k = offsets[i]
            weights[i] = gate * float(torch.exp(torch.tensor(-k * k / (2 * config.sigma**2))))
    return weights


def fuse_window(logits: Tensor, latents: Tensor, offsets: Sequence[int], config: TemporalConfig
                ) -> tuple[Tensor, Tensor]:
    """Fused logits and latent of the centre frame of a window (module doc).

    Args:
        logits: ``T×N×K`` code scores of the window's frames.
        latents: ``T×C×s×s`` their encoder latents.
        offsets: each frame's offset from the centre (one of them 0).
        config: window shape and gate.

    Returns:
        ``(logits N×K, latent C×s×s)`` for ``decode_codes``; the centre frame's own tensors,
        unchanged, when the window holds only the centre.
    """
    centre = list(offsets).index(0)
    if len(offsets) == 1:
        return logits[centre], latents[centre]
    weights = window_weights(latents, offsets, config)                # T×N
    norm = weights.sum(dim=0).clamp_min(1e-12)                        # N
    fused = (weights[..., None] * logits.float()).sum(dim=0) / norm[:, None]
    latent = latents[centre]
    if config.statistics:
        frame_weights = weights.mean(dim=1)
        frame_weights = frame_weights / frame_weights.sum()
        mean, std = calc_mean_std(latents)                           # T×C×1×1 each
        fused_mean = (frame_weights[:, None, None, None] * mean).sum(dim=0)
        fused_std = (frame_weights[:, None, None, None] * std).sum(dim=0)
        own_mean, own_std = mean[centre], std[centre]
        latent = ((latent.float() - own_mean) / own_std * fused_std + fused_mean).to(latents.dtype)
    return fused.to(logits.dtype), latent
