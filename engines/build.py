"""From a ``RestoreConfig`` to a ready ``Restorer``: network, weights, backend, precision."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from vidrestore.errors import EngineError
from vidrestore.models.registry import ModelSpec, build_model, get_spec, load_checkpoint
from vidrestore.restore_stage import PassthroughRestorer
from vidrestore.settings import RestoreConfig
from vidrestore.weights import WeightStore

from .restorer import EngineRestorer
from .torch_eager import TorchEngine

Log = Callable[[str], None]


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → fp16 on CUDA, fp32 on the CPU (where half precision is slower, not faster)."""
    if precision != "auto":
        return precision
    return "fp16" if device.type == "cuda" else "fp32"


def weights_path(spec: ModelSpec, config: RestoreConfig, store: WeightStore, log: Log) -> Path:
    """The checkpoint to load: ``--weights``, else the model's own trained weights if known
    and present, else its base (official CodeFormer) weights, downloaded if allowed."""
    if config.weights is not None:
        return config.weights
    trained = spec.trained_weights
    if trained and trained in store.table and store.find(trained):
        return store.require(trained)
    if trained:
        log(f"{spec.name}: no trained {spec.name} checkpoint found; starting from the official "
            f"CodeFormer weights (new layers untrained; pass --weights for a trained one)")
    return store.require(spec.base_weights)


def build_restorer(config: RestoreConfig, store: WeightStore, device: torch.device, *,
                   log: Log = lambda line: None):
    """The ``Restorer`` for ``config.model`` on ``device`` with ``config.engine``."""
    if config.model == "passthrough":
        return PassthroughRestorer(config.faces.face_size)
    spec = get_spec(config.model)
    net = build_model(config.model)
    report = load_checkpoint(net, weights_path(spec, config, store, log), name=config.model)
    log(report.summary())
    precision = resolve_precision(config.precision, device)
    backend = config.engine if config.engine != "auto" else "torch"
    if backend != "torch":
        raise EngineError(f"engine {backend!r} is not available in this build")
    engine = TorchEngine(
        net, config.model,
        uses_identity=spec.needs_identity,
        takes_fidelity=config.model != "codeformer++",
        device=device, precision=precision,
        channels_last=device.type == "cuda",
        face_size=config.faces.face_size,
    )
    log(f"engine: {engine.info.label}")
    return EngineRestorer(engine)
