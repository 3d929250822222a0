"""Typed training configs: frozen dataclasses read from YAML, unknown keys an error.

``TrainConfig`` holds what every stage shares (data, optimisers, precision, schedule,
logging); each stage subclasses it with its own ``losses`` section and defaults, so
``load_stage_config(stage_cls, path, overrides)`` checks every key against the stage that
runs. Loaded with ``vidrestore.config`` (``from_mapping`` / ``load_yaml`` / ``with_overrides``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from vidrestore.training.data.degradations import DegradationConfig

from vidrestore.config import from_mapping, load_yaml, with_overrides

Precision = Literal["fp32", "bf16", "fp16"]
T = TypeVar("T")


@dataclass(frozen=True)
class DataConfig:
    """Where the faces come from and how batches are made.

    root: aligned HQ faces: a folder of images (``layout: folder``) or one sub-folder per
        person (``layout: identity``, for ID-CodeFormer's reference / LQ / GT triplets).
    size: side the faces are resized to (512 for the real networks, 64 for tiny ones).
    degradation: how LQ inputs are made from HQ (None: no LQ, Stage I reconstructs HQ).
    degradation_large: a second, heavier LQ (``lq_large``) for Stage III's code-only steps.
    batch_size: per process. num_workers: DataLoader workers per process.
    cache_images: keep decoded, resized HQ images in each worker's memory (small sets).
    val_root: validation faces (default: the first ``val_count`` training faces); their LQ
        is made with a fixed seed, so every validation sees the same inputs.
    val_lq: a folder of given degraded faces matching ``val_root``'s by file name (e.g.
        CelebA-Test's ``lq`` beside its ``hq``): validation reads these instead of degrading.
    """

    root: Path | None = None
    layout: Literal["folder", "identity"] = "folder"
    size: int = 512
    hflip: bool = True
    degradation: DegradationConfig | None = field(default_factory=DegradationConfig)
    degradation_large: DegradationConfig | None = None
    batch_size: int = 4
    num_workers: int = 2
    cache_images: bool = False
    val_root: Path | None = None
    val_lq: Path | None = None
    val_count: int = 8

    def __post_init__(self) -> None:
        if self.size < 16 or self.batch_size < 1 or self.num_workers < 0 or self.val_count < 0:
            raise ValueError("data: size >= 16, batch_size >= 1, num_workers >= 0, val_count >= 0")
        if self.val_lq is not None and self.val_root is None:
            raise ValueError("data.val_lq needs data.val_root (the ground truth of those faces)")


@dataclass(frozen=True)
class AdversarialLosses:
    """Reconstruction (L1 + LPIPS) and hinge-GAN weights shared by stages I, III and V.

    ``gan`` scales the generator's GAN term after VQGAN's adaptive weight (clamped to
    ``adaptive_max``); the discriminator (``disc_channels`` wide, ``disc_layers`` deep)
    starts training at step ``disc_start``.
    """

    l1: float = 1.0
    perceptual: float = 1.0
    perceptual_net: Literal["vgg", "alex"] = "vgg"
    gan: float = 0.1
    adaptive_max: float = 1.0
    disc_start: int = 5000
    disc_channels: int = 64
    disc_layers: int = 4


@dataclass(frozen=True)
class OptimConfig:
    """Adam and its learning-rate schedule (a pure function of the step: exact on resume).

    scheduler: ``constant``; ``cosine`` from ``lr`` to ``eta_min`` over the run;
    ``multistep``: ``lr · gamma^k`` after the k-th of ``milestones``. ``warmup_steps``:
    linear ramp from 0 first.
    """

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    scheduler: Literal["constant", "cosine", "multistep"] = "constant"
    eta_min: float = 0.0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    warmup_steps: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """What every stage shares. Stages subclass it and add ``losses``.

    name / output_dir: the run folder is ``output_dir/name`` (checkpoints, TensorBoard, samples).
    model: registry name of the network trained (``codeformer``, ``id-codeformer``, ``codeformer++``).
    network: ``full`` (the registry's default config) or ``tiny`` (smoke tests).
    init: weights to start from (a checkpoint of the previous stage, or the official release).
    seed: everything random derives from it (data order, degradations, per-step sampling).
    total_steps: optimiser steps of the whole run (the schedule spans them).
    precision: ``bf16`` / ``fp16`` autocast (fp16 with a GradScaler, CUDA only) or ``fp32``.
    grad_clip: max global gradient norm per optimiser (0: off).
    ema_decay: decay of the EMA copy saved as ``params_ema`` (0: EMA = the raw weights).
    log_every / val_every / save_every: in steps (0: never; the last step always saves).
    keep_checkpoints: resume states kept (oldest deleted).
    weights_dir / allow_download: where the loss networks' weights (VGG / AlexNet / ArcFace)
        are found; downloads are off unless allowed.
    smoke: a smoke run: randomly initialised small stand-ins replace the perceptual and
        identity networks (logged as such), and a missing ``data.root`` named ``<dir>/faces``
        or ``<dir>/persons`` is generated (``data.smoke.make_smoke_dataset(<dir>)``).
    device: ``auto`` (CUDA if present, else CPU), ``cpu``, ``cuda``.
    threads: CPU intra-op threads per process (0: torch's default).
    """

    name: str = "run"
    output_dir: Path = Path("experiments")
    model: Literal["codeformer", "id-codeformer", "codeformer++"] = "codeformer"
    network: Literal["full", "tiny"] = "full"
    init: Path | None = None
    seed: int = 0
    total_steps: int = 1000
    data: DataConfig = field(default_factory=DataConfig)
    optim_g: OptimConfig = field(default_factory=OptimConfig)
    optim_d: OptimConfig = field(default_factory=OptimConfig)
    precision: Precision = "fp32"
    grad_clip: float = 0.0
    ema_decay: float = 0.995
    log_every: int = 100
    val_every: int = 5000
    save_every: int = 5000
    keep_checkpoints: int = 3
    weights_dir: Path | None = None
    allow_download: bool = False
    smoke: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ValueError("total_steps must be >= 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("ema_decay must be in [0, 1)")

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name


def load_stage_config(cls: type[T], path: Path | str | None, overrides: list[str] = ()) -> T:
    """Read ``cls`` from YAML (or its defaults if ``path`` is None) and apply ``--set`` items."""
    base = load_yaml(cls, path) if path is not None else from_mapping(cls, {})
    return with_overrides(cls, base, list(overrides)) if overrides else base
