"""Fixtures for the engine tests: tiny registry networks with seeded weights, a private cache."""

from __future__ import annotations

import pytest
import torch
from vidrestore.engines import EngineCache, network_io

from vidrestore.models import build_model, get_spec
from vidrestore.models.seeded import fill_seeded


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on the shared 2-core machine OpenMP threads waiting on a busy core
    make tiny forward passes many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_net():
    """``tiny_net(name)`` → ``(network, NetworkIO)``: a tiny registry network with seeded weights
    (the same object per name for the session: engines copy it, never change it)."""
    made = {}

    def make(name: str = "codeformer"):
        if name not in made:
            net = fill_seeded(build_model(name, tiny=True))
            made[name] = (net, network_io(get_spec(name), net))
        return made[name]

    return make


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> EngineCache:
    """One engine cache for the session: slow artifacts (ONNX, AOTInductor) are built once."""
    return EngineCache(tmp_path_factory.mktemp("engines"))
