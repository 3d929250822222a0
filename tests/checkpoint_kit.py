"""Checkpoints the tests write themselves: tiny registry networks in the format ``training``
writes (``params_ema`` + ``metadata``), so the run time builds the tiny network they record
and a whole run takes seconds. No trained weights exist anywhere; "trained" here means every
layer holds seeded values, none is left at its initial zeros."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vidrestore.config import to_mapping
from vidrestore.models import CheckpointMetadata, Recognizer, build_model
from vidrestore.models.seeded import fill_seeded


def network_config(net: nn.Module):
    return getattr(net, "id_config", None) or net.config


def write_checkpoint(path: Path, net: nn.Module, model: str, *, recognizer: Recognizer | None = None,
                     stage: str | None = "test", metadata: bool = True) -> Path:
    """Save ``net`` as a training run would (``metadata=False``: a bare ``params_ema`` file)."""
    data: dict = {"params_ema": net.state_dict()}
    if metadata:
        data["metadata"] = CheckpointMetadata(model, to_mapping(network_config(net)), stage=stage, run="test",
                                              step=1, recognizer=recognizer).to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return path


def tiny_base(path: Path, seed: int = 0) -> Path:
    """A tiny CodeFormer checkpoint (the stand-in for the official ``codeformer.pth``)."""
    return write_checkpoint(path, fill_seeded(build_model("codeformer", tiny=True), seed), "codeformer")


def tiny_trained(path: Path, model: str, *, recognizer: Recognizer | None = None, seed: int = 0) -> Path:
    """A tiny ``model`` whose own layers all hold seeded (non-initial) weights."""
    return write_checkpoint(path, fill_seeded(build_model(model, tiny=True), seed), model, recognizer=recognizer)
