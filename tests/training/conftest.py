"""Fixtures of the training tests: the generated smoke dataset and tiny stage configs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from vidrestore.training.data.smoke import make_smoke_dataset
from vidrestore.training.stages import STAGES

from vidrestore.config import from_mapping, to_mapping
from vidrestore.weights import KNOWN_WEIGHTS, WeightStore

TINY_DEGRADATION = {
    "kernel_size": 7, "blur_sigma": [0.2, 2.0], "downsample": [1.0, 4.0], "noise": [0, 20], "jpeg": [30, 80],
}


@pytest.fixture(scope="session")
def smoke_root(tmp_path_factory) -> Path:
    """The smoke dataset (``faces/``, ``persons/``, ``val/``), made once per session."""
    return make_smoke_dataset(tmp_path_factory.mktemp("smoke") / "data")


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture
def tiny_config(smoke_root, tmp_path):
    """``tiny_config(stage, **sections)``: a tiny, fast, deterministic config of ``stage``
    writing into this test's tmp folder; keyword sections merge into the defaults."""

    def make(stage: str, **extra: Any):
        cls = STAGES[stage].config_type
        identity = extra.get("model") == "id-codeformer"
        base = {
            "name": f"t-{stage}", "output_dir": str(tmp_path / "runs"), "network": "tiny", "smoke": True,
            "total_steps": 4, "threads": 1, "log_every": 1, "val_every": 0, "save_every": 0, "ema_decay": 0.9,
            "data": {"root": str(smoke_root / ("persons" if identity else "faces")),
                     "layout": "identity" if identity else "folder",
                     "size": 64, "batch_size": 2, "num_workers": 0, "cache_images": True, "val_count": 2},
            "optim_g": {"lr": 1e-3}, "optim_d": {"lr": 1e-3},
        }
        defaults = to_mapping(from_mapping(cls, {}))
        if defaults["data"]["degradation"] is not None:
            base["data"]["degradation"] = TINY_DEGRADATION
        if defaults["data"]["degradation_large"] is not None:
            base["data"]["degradation_large"] = TINY_DEGRADATION
        if "losses" in defaults and "disc_channels" in defaults["losses"]:
            base["losses"] = {"disc_channels": 16, "disc_layers": 3, "disc_start": 2}
        return from_mapping(cls, _merge(base, extra))

    return make



@pytest.fixture(scope="session")
def alexnet_trunk_store():
    """``alexnet_trunk_store(folder)``: a store whose folder holds a random AlexNet trunk in
    torchvision's layout (real ImageNet weights are not available here)."""

    def make(folder) -> WeightStore:
        """A weights folder holding a random AlexNet trunk in torchvision's layout (no real weights here)."""
        from vidrestore.compat import import_needing_torchvision

        tv = import_needing_torchvision("torchvision")
        torch.manual_seed(0)
        trunk = {f"features.{k}": v for k, v in tv.models.alexnet().features.state_dict().items()}
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(trunk, folder / KNOWN_WEIGHTS["alexnet"].filename)
        table = {**KNOWN_WEIGHTS, "alexnet": dataclasses.replace(KNOWN_WEIGHTS["alexnet"], sha256=None)}
        return WeightStore(folder, folder / "cache", allow_download=False, table=table)

    return make
