"""The ``compiled`` backends: the AOTInductor package (built, cached, reloaded; w and identity
inputs; dynamic batch) and ``torch.compile``; CUDA graphs on a GPU."""

from __future__ import annotations

import pytest
import torch
import vidrestore.engines.compiled as compiled
from engine_helpers import CPU, requires_cuda
from vidrestore.engines import Engine, backend_unavailable, build_engine
from vidrestore.engines.check import check_engine, face_batch

pytestmark = pytest.mark.skipif(backend_unavailable("compiled", CPU) is not None,
                                reason=str(backend_unavailable("compiled", CPU)))


@pytest.fixture(scope="module")
def aoti_id(tiny_net, shared_cache):
    """ID-CodeFormer (x, identity, w) as an AOTInductor package: ~30 s to compile on 2 cores."""
    net, io = tiny_net("id-codeformer")
    return build_engine(net, io, backend="compiled", precision="fp32", device=CPU, cache=shared_cache,
                        batch=(1, 8, 8))


@pytest.mark.slow
def test_package_agrees_with_eager_and_takes_w_and_identity(aoti_id, tiny_net):
    net, io = tiny_net("id-codeformer")
    assert isinstance(aoti_id, Engine)
    info = aoti_id.info
    assert info.backend == "compiled" and info.artifact.suffix == ".pt2" and info.artifact.is_file()
    assert info.inputs == ("x", "identity", "w") and "AOTInductor" in info.detail
    reference = build_engine(net, io, backend="torch", precision="fp32", device=CPU, channels_last=False)
    for fidelity in (0.1, 0.9):
        result = check_engine(aoti_id, reference, io, batch=3, fidelity=fidelity)
        assert result.passed and result.psnr_db >= 45, result.line()
    x, identity = face_batch(io, 2)
    base = aoti_id.run(x, identity, 0.2)
    assert (aoti_id.run(x, identity, 0.9) - base).abs().max() > 1e-2         # w is an input
    assert (aoti_id.run(x, identity.flip(0), 0.2) - base).abs().max() > 1e-3  # so is the identity


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 6])
def test_package_takes_any_batch_in_its_profile(aoti_id, tiny_net, batch):
    net, io = tiny_net("id-codeformer")
    x, identity = face_batch(io, batch)
    with torch.no_grad():
        expected = net(x, identity, 0.4)[0]
    torch.testing.assert_close(aoti_id.run(x, identity, 0.4), expected, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_second_build_loads_the_package_without_compiling(aoti_id, tiny_net, shared_cache, monkeypatch):
    net, io = tiny_net("id-codeformer")
    mtime = aoti_id.info.artifact.stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(compiled, "build_aoti_package", lambda *a, **k: calls.append(a))
    again = build_engine(net, io, backend="compiled", precision="fp32", device=CPU, cache=shared_cache,
                         batch=(1, 8, 8))
    assert calls == [] and again.info.artifact == aoti_id.info.artifact
    assert again.info.artifact.stat().st_mtime_ns == mtime
    x, identity = face_batch(io, 2)
    torch.testing.assert_close(again.run(x, identity, 0.5), aoti_id.run(x, identity, 0.5))


@pytest.mark.slow
def test_other_weights_get_another_package(aoti_id, tiny_net, shared_cache, monkeypatch):
    import copy

    net, io = tiny_net("id-codeformer")
    other = copy.deepcopy(net)
    with torch.no_grad():
        other.idx_pred_layer[1].weight.mul_(1.01)
    calls = []
    monkeypatch.setattr(compiled, "build_aoti_package", lambda module, path, **k: calls.append(path))
    with pytest.raises(Exception):  # the stub builds nothing: what matters is that it was asked to
        build_engine(other, io, backend="compiled", precision="fp32", device=CPU, cache=shared_cache, batch=(1, 8, 8))
    assert len(calls) == 1 and calls[0].parent.name != aoti_id.info.artifact.parent.name


@pytest.mark.slow
def test_torch_compile_agrees_with_eager(tiny_net):
    net, io = tiny_net("codeformer")
    engine = build_engine(net, io, backend="compiled-jit", precision="fp32", device=CPU)
    assert engine.info.backend == "compiled-jit" and "torch.compile" in engine.info.detail
    reference = build_engine(net, io, backend="torch", precision="fp32", device=CPU, channels_last=False)
    result = check_engine(engine, reference, io, batch=2)
    assert result.passed and result.psnr_db >= 45, result.line()


class Doubler(torch.nn.Module):
    def forward(self, x, w):
        return x * 2 + w[:, None, None, None]


@pytest.mark.gpu
@requires_cuda
def test_cuda_graphs_replay_per_batch_size():
    cuda = torch.device("cuda")
    graphs = compiled.CudaGraphs(Doubler().to(cuda), cuda)
    for batch in (3, 1, 3):
        x = torch.randn(batch, 3, 8, 8, device=cuda)
        w = torch.rand(batch, device=cuda)
        torch.testing.assert_close(graphs(x, w), x * 2 + w[:, None, None, None])
    assert graphs.enabled and len(graphs._graphs) == 2


@pytest.mark.gpu
@requires_cuda
def test_aoti_on_gpu_with_cuda_graphs(tiny_net, shared_cache):
    net, io = tiny_net("codeformer")
    cuda = torch.device("cuda")
    engine = build_engine(net, io, backend="compiled", precision="fp16", device=cuda, cache=shared_cache)
    reference = build_engine(net, io, backend="torch", precision="fp32", device=cuda)
    for batch in (1, 4):
        result = check_engine(engine, reference, io, batch=batch)
        assert result.passed, result.line()
    assert engine._graphs is not None and engine._graphs.enabled
