"""Checkpoint files, written atomically (a temporary file beside the target, then renamed).

Two kinds, in ``<run>/checkpoints/``:

- ``net_g_<step>.pth`` / ``net_g_final.pth``: what the runtime loads with ``--weights``:
  ``{"params_ema": ..., "params": ..., "metadata": ...}`` with the registry network's own key
  names (a Stage I file has the official VQGAN layout of ``vqgan_code1024.pth``) and the
  run's ``vidrestore.models.CheckpointMetadata`` (model, network config, stage, step,
  recognizer, settings) as plain data, which the runtime reads and logs.
- ``state_<step>.pt``: everything an exact resume needs: step, every trained network, the
  EMA, the optimisers, the gradient scalers and the generators' states.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrestore.errors import WeightsError
from vidrestore.models.checkpoint import METADATA_KEY, CheckpointMetadata

_STATE = re.compile(r"state_(\d+)\.pt$")


def save_atomic(obj: Any, path: Path) -> Path:
    """``torch.save`` to ``path`` so that it appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.chmod(name, _default_mode())  # mkstemp makes 0600; checkpoints get the usual umask mode
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(name, path)
    finally:
        if os.path.exists(name):
            os.unlink(name)
    return path


def publish_copy(source: Path, path: Path) -> Path:
    """Give the finished file ``source`` a second name ``path`` atomically (a hard link where
    the file system has them, else a copy), without writing hundreds of MB again."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    os.unlink(name)
    try:
        try:
            os.link(source, name)
        except OSError:
            shutil.copyfile(source, name)
        os.replace(name, path)
    finally:
        if os.path.exists(name):
            os.unlink(name)
    return path


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module``'s state dict (fp32 for floating tensors)."""
    out = {}
    for key, value in module.state_dict().items():
        value = value.detach().to("cpu", copy=True)
        out[key] = value.float() if value.is_floating_point() else value
    return out


def runtime_checkpoint(net: nn.Module, ema: nn.Module, metadata: CheckpointMetadata | None = None) -> dict[str, Any]:
    """``{"params_ema": EMA weights, "params": raw weights[, "metadata": plain data]}`` (the
    runtime's format)."""
    out: dict[str, Any] = {"params_ema": cpu_state(ema), "params": cpu_state(net)}
    if metadata is not None:
        out[METADATA_KEY] = metadata.to_dict()
    return out


def network_config(net: nn.Module) -> tuple[str, Any]:
    """``(model name, config)`` of a trained network, as its metadata records it."""
    from vidrestore.models import CodeFormer, CodeFormerPP, IDCodeFormer, VQAutoEncoder

    if isinstance(net, IDCodeFormer):
        return "id-codeformer", net.id_config
    if isinstance(net, CodeFormerPP):
        return "codeformer++", net.config
    if isinstance(net, CodeFormer):
        return "codeformer", net.config
    if isinstance(net, VQAutoEncoder):
        return "vqgan", net.vqgan_config
    raise TypeError(f"{type(net).__name__} is not a network the trainer exports")


def state_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"state_{step:08d}.pt"


def list_states(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the resume states in ``folder``, oldest first."""
    if not Path(folder).is_dir():
        return []
    found = [(int(m.group(1)), p) for p in Path(folder).iterdir() if (m := _STATE.search(p.name))]
    return sorted(found)


def prune(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` resume states and their ``net_g`` files."""
    states = list_states(folder)
    for step, path in states[: max(0, len(states) - keep)]:
        path.unlink(missing_ok=True)
        (Path(folder) / f"net_g_{step:08d}.pth").unlink(missing_ok=True)


def load_state(path: Path) -> dict:
    """Read a resume state (tensors, numbers, strings and RNG states only)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no resume state at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise WeightsError(f"cannot read resume state {path}: {exc}") from None
