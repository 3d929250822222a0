"""Fixtures for the network tests: tiny registry networks with seeded, realistic weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from vidrestore.models import build_model
from vidrestore.models.seeded import fill_seeded, seeded_faces

DATA = Path(__file__).parent / "data"


@pytest.fixture
def tiny():
    """``tiny(name, seed=0)``: a tiny registry network with seeded weights (eval mode)."""

    def make(name: str, seed: int = 0) -> nn.Module:
        return fill_seeded(build_model(name, tiny=True), seed)

    return make


@pytest.fixture
def faces64() -> torch.Tensor:
    """Two seeded 64×64 "faces" in [-1, 1] (the tiny networks' input size)."""
    return seeded_faces(2, 64, seed=1)


@pytest.fixture(scope="session")
def official_manifest() -> dict:
    """Official CodeFormer state-dict names / shapes (measured by the verification tool)."""
    return json.loads((DATA / "codeformer_official_keys.json").read_text())


@pytest.fixture(scope="session")
def official_golden() -> dict:
    """Official network outputs for seeded weights and input (from the verification tool)."""
    return json.loads((DATA / "codeformer_official_golden.json").read_text())
