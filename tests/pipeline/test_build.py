"""From a config to a restorer: passthrough, a tiny network, what ``auto`` says it picked."""

from __future__ import annotations

import torch
import vidrestore.engines.build as build
from vidrestore.engines import EngineRestorer

from vidrestore.models.temporal import TemporalConfig
from vidrestore.pipeline.build import build_restorer
from vidrestore.pipeline.restore_stage import PassthroughRestorer
from vidrestore.settings import RestoreConfig
from vidrestore.weights import WeightStore

CPU = torch.device("cpu")


def test_passthrough_needs_no_network(tmp_path):
    config = RestoreConfig(model="passthrough")
    restorer = build_restorer(config, WeightStore(tmp_path, allow_download=False), CPU)
    assert isinstance(restorer, PassthroughRestorer)


def test_tiny_restorer_logs_its_choice(tmp_path):
    lines = []
    config = RestoreConfig(engine="torch", precision="bf16", temporal=TemporalConfig(mode="off"))
    restorer = build_restorer(config, WeightStore(tmp_path, allow_download=False), CPU, log=lines.append, tiny=True)
    assert isinstance(restorer, EngineRestorer) and restorer.face_size == 64
    assert restorer.name == "codeformer/torch-bf16@cpu"
    assert any("seeded" in line for line in lines) and any("torch-bf16" in line for line in lines)


def test_auto_says_what_it_picked(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "AUTO_ORDER", {**build.AUTO_ORDER, "cpu": ("tensorrt", "torch")})
    lines = []
    build_restorer(RestoreConfig(), WeightStore(tmp_path, allow_download=False), CPU, log=lines.append, tiny=True)
    picked = next(line for line in lines if "auto picked" in line)
    assert "torch" in picked and "not tensorrt" in picked
