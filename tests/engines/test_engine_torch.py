"""The eager ``torch`` backend: protocol, precisions, channels-last, the check and the timer."""

from __future__ import annotations

import math

import pytest
import torch
from engine_helpers import CPU
from vidrestore.engines import Engine, build_engine
from vidrestore.engines.check import (
    THRESHOLDS_DB,
    check_engine,
    face_batch,
    psnr,
    time_engine,
)


@pytest.mark.parametrize("name", ["codeformer", "id-codeformer", "codeformer++"])
def test_protocol_and_info(tiny_net, name):
    net, io = tiny_net(name)
    engine = build_engine(net, io, backend="torch", precision="fp32", device=CPU)
    assert isinstance(engine, Engine)
    info = engine.info
    assert (info.backend, info.model, info.precision, info.device, info.face_size) == ("torch", name, "fp32", "cpu", 64)
    assert info.inputs == io.input_names and engine.uses_identity == io.uses_identity
    assert info.shapes()["x"] == "B×3×64×64" and info.shapes()["image"] == "B×3×64×64"
    assert name in info.describe()
    x, identity = face_batch(io, 3)
    out = engine.run(x, identity, 0.5)
    assert out.shape == (3, 3, 64, 64) and out.dtype == torch.float32


def test_the_network_is_not_modified(tiny_net):
    net, io = tiny_net("codeformer")
    before = net.generator.blocks[0].weight.clone()
    build_engine(net, io, backend="torch", precision="bf16", device=CPU)
    assert net.generator.blocks[0].weight.dtype == torch.float32
    torch.testing.assert_close(net.generator.blocks[0].weight, before, rtol=0, atol=0)


@pytest.mark.parametrize("precision,channels_last", [("fp32", True), ("bf16", False), ("bf16", True)])
def test_agrees_with_fp32_eager(tiny_net, precision, channels_last):
    net, io = tiny_net("codeformer")
    reference = build_engine(net, io, backend="torch", precision="fp32", device=CPU, channels_last=False)
    engine = build_engine(net, io, backend="torch", precision=precision, device=CPU, channels_last=channels_last)
    result = check_engine(engine, reference, io, batch=3)
    assert result.passed, result.line()
    assert result.threshold_db == THRESHOLDS_DB[precision] and result.w_reaches_graph


def test_check_catches_garbage(tiny_net):
    net, io = tiny_net("codeformer")
    reference = build_engine(net, io, backend="torch", precision="fp32", device=CPU)

    class Garbage:
        info = reference.info
        uses_identity = False

        def run(self, x, identity, w):
            return torch.full_like(x, math.nan)

    result = check_engine(Garbage(), reference, io)
    assert not result.passed and not result.finite and "NON-FINITE" in result.line()


def test_check_catches_w_traced_as_a_constant(tiny_net):
    net, io = tiny_net("codeformer")
    reference = build_engine(net, io, backend="torch", precision="fp32", device=CPU)

    class Frozen:  # the official ONNX export bug #252: w baked in
        info = reference.info
        uses_identity = False

        def run(self, x, identity, w):
            return reference.run(x, identity, 0.5)

    result = check_engine(Frozen(), reference, io, fidelity=0.5)
    assert not result.passed and not result.w_reaches_graph


def test_psnr():
    a = torch.zeros(1, 3, 4, 4)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 0.02) == pytest.approx(20 * math.log10(2 / 0.02))


def test_time_engine(tiny_net):
    net, io = tiny_net("codeformer")
    engine = build_engine(net, io, backend="torch", precision="fp32", device=CPU)
    assert time_engine(engine, io, batch=2, repeats=1) > 0
