"""``EngineRestorer``: numpy in and out, tensors in and out, submit / result (finished at once on
the CPU), out-of-memory halving, the GPU streams with batches in flight."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_helpers import CPU, requires_cuda
from vidrestore.engines import EngineInfo, EngineRestorer, build_engine
from vidrestore.engines.base import Engine, is_out_of_memory

from vidrestore.pipeline.contracts import check_restorer


class FakeEngine:
    """Negates its input; runs out of memory on batches above ``fits`` (as a GPU would)."""

    uses_identity = False

    def __init__(self, fits: int | None = None, error: type[BaseException] = torch.OutOfMemoryError,
                 size: int = 8, message: str = "CUDA out of memory. Tried to allocate 2.00 GiB") -> None:
        self.fits = fits
        self.error = error
        self.message = message
        self.calls: list[int] = []
        self.info = EngineInfo("torch", "fake", "fp32", "cpu", size)

    def run(self, x, identity, w):
        self.calls.append(len(x))
        if self.fits is not None and len(x) > self.fits:
            raise self.error(self.message)
        return -x


def faces(n: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(n).random((n, size, size, 3), dtype=np.float32)


def test_fake_engine_satisfies_the_protocol():
    assert isinstance(FakeEngine(), Engine)
    check_restorer(EngineRestorer(FakeEngine()))


def test_layout_and_range_round_trip():
    restorer = EngineRestorer(FakeEngine())
    batch = faces(3)
    out = restorer.restore(batch, None, 0.5)
    assert out.shape == batch.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, 1 - batch, atol=1e-6)  # −(2x − 1) mapped back to [0, 1]


def test_out_of_memory_halves_the_batch_and_remembers():
    engine = FakeEngine(fits=2)
    restorer = EngineRestorer(engine)
    batch = faces(7)
    out = restorer.restore(batch, None, 0.5)
    np.testing.assert_allclose(out, 1 - batch, atol=1e-6)
    assert engine.calls[:3] == [7, 4, 2] and restorer.max_batch == 2 and restorer.splits == 2
    assert sum(c for c in engine.calls if c <= 2) == 7
    engine.calls.clear()
    restorer.restore(faces(5), None, 0.5)  # split up front: no more failures
    assert engine.calls == [2, 2, 1]


def test_out_of_memory_on_one_face_is_raised():
    restorer = EngineRestorer(FakeEngine(fits=0))
    with pytest.raises(torch.OutOfMemoryError):
        restorer.restore(faces(4), None, 0.5)


def test_other_errors_are_not_retried():
    engine = FakeEngine(fits=1, error=ValueError, message="bad shape")
    with pytest.raises(ValueError):
        EngineRestorer(engine).restore(faces(4), None, 0.5)
    assert engine.calls == [4]


def test_out_of_memory_of_other_backends_is_recognised():
    assert is_out_of_memory(RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory"))
    assert is_out_of_memory(RuntimeError("CUDA_ERROR_OUT_OF_MEMORY"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_engine_max_batch_is_respected():
    engine = FakeEngine()
    engine.info = EngineInfo("tensorrt", "fake", "fp16", "cpu", 8, max_batch=3)
    EngineRestorer(engine).restore(faces(7), None, 0.5)
    assert engine.calls == [3, 3, 1]


def test_identities_reach_the_engine(tiny_net):
    net, io = tiny_net("id-codeformer")
    restorer = EngineRestorer(build_engine(net, io, backend="torch", precision="fp32", device=CPU))
    assert restorer.uses_identity and restorer.face_size == 64
    batch = faces(2, 64)
    ids = np.random.default_rng(0).standard_normal((2, 512)).astype(np.float32)
    a = restorer.restore(batch, ids, 0.5)
    b = restorer.restore(batch, ids[::-1].copy(), 0.5)
    assert np.abs(a - b).max() > 1e-3


@pytest.mark.gpu
@requires_cuda
def test_gpu_path_matches_the_cpu_path(tiny_net):
    net, io = tiny_net("codeformer")
    batch = faces(5, 64)
    cpu = EngineRestorer(build_engine(net, io, backend="torch", precision="fp32", device=CPU)).restore(batch, None, 0.5)
    gpu_restorer = EngineRestorer(build_engine(net, io, backend="torch", precision="fp32",
                                               device=torch.device("cuda")))
    first = gpu_restorer.restore(batch, None, 0.5)
    second = gpu_restorer.restore(batch[:2], None, 0.5)
    np.testing.assert_allclose(first, cpu, atol=2e-3)
    np.testing.assert_allclose(second, first[:2], atol=1e-5)


@pytest.mark.gpu
@requires_cuda
def test_gpu_keeps_batches_in_flight_in_order(tiny_net):
    net, io = tiny_net("codeformer")
    batches = [faces(n, 64) for n in (3, 5, 2, 4)]
    cpu = EngineRestorer(build_engine(net, io, backend="torch", precision="fp32", device=CPU))
    gpu = EngineRestorer(build_engine(net, io, backend="torch", precision="fp32", device=torch.device("cuda")))
    assert gpu.depth == 3
    tickets = [gpu.submit(b, None, 0.5) for b in batches]  # all queued before any result is read
    for ticket, batch in zip(tickets, batches):
        np.testing.assert_allclose(ticket.result(), cpu.restore(batch, None, 0.5), atol=2e-3)
    assert gpu.cuda_graphs  # the eager engine is replayed as graphs, checked against plain calls
    on_device = torch.from_numpy(batches[0]).cuda()
    ticket = gpu.submit(on_device, None, 0.5)
    torch.cuda.current_stream().wait_event(ticket.event)
    out = ticket.result()
    assert out.is_cuda and out.shape == on_device.shape
    np.testing.assert_allclose(out.cpu().numpy(), cpu.restore(batches[0], None, 0.5), atol=2e-3)


def test_submit_on_the_cpu_is_finished_at_once_and_keeps_order():
    restorer = EngineRestorer(FakeEngine())
    assert restorer.depth == 1 and not restorer.cuda_graphs
    batches = [faces(n) for n in (2, 3, 1)]
    tickets = [restorer.submit(b, None, 0.5) for b in batches]
    assert all(t.ready() for t in tickets)
    for ticket, batch in zip(tickets, batches):
        np.testing.assert_allclose(ticket.result(), 1 - batch, atol=1e-6)
        assert ticket.result() is ticket.result() and ticket.event is None


def test_submit_splits_after_running_out_of_memory_and_joins_the_parts():
    engine = FakeEngine(fits=2)
    restorer = EngineRestorer(engine)
    batch = faces(5)
    ticket = restorer.submit(batch, None, 0.5)
    assert ticket.ready()
    np.testing.assert_allclose(ticket.result(), 1 - batch, atol=1e-6)
    assert restorer.max_batch == 2 and restorer.splits == 2


def test_tensors_in_give_tensors_out():
    restorer = EngineRestorer(FakeEngine())
    batch = faces(4)
    out = restorer.submit(torch.from_numpy(batch), None, 0.5).result()
    assert isinstance(out, torch.Tensor) and out.shape == (4, 8, 8, 3)
    np.testing.assert_allclose(out.numpy(), 1 - batch, atol=1e-6)
    engine = FakeEngine()
    engine.info = EngineInfo("tensorrt", "fake", "fp16", "cpu", 8, max_batch=3)
    joined = EngineRestorer(engine).submit(torch.from_numpy(batch), None, 0.5).result()
    assert isinstance(joined, torch.Tensor) and engine.calls == [3, 1]
    np.testing.assert_allclose(joined.numpy(), 1 - batch, atol=1e-6)
