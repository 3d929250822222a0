"""The ``onnxruntime`` backend: ONNX export with w and identity as inputs, dynamic batch,
agreement with eager, the artifact cache, and the fp32 islands TensorRT keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")

import vidrestore.engines.onnx_export as onnx_export  # noqa: E402
from engine_helpers import CPU, requires_cuda  # noqa: E402
from vidrestore.engines import Engine, build_engine  # noqa: E402
from vidrestore.engines.check import check_engine, face_batch  # noqa: E402
from vidrestore.engines.onnx_runtime import providers_for  # noqa: E402


@pytest.fixture(scope="module")
def ort_codeformer(tiny_net, shared_cache):
    net, io = tiny_net("codeformer")
    return build_engine(net, io, backend="onnxruntime", precision="fp32", device=CPU, cache=shared_cache,
                        batch=(1, 8, 8))


def test_protocol_and_graph_inputs(ort_codeformer):
    engine = ort_codeformer
    assert isinstance(engine, Engine)
    assert engine.info.backend == "onnxruntime" and engine.info.detail == "CPUExecutionProvider"
    assert engine.info.artifact.name == "model.onnx" and engine.info.batch == (1, 8, 8)
    inputs = {i.name: i.shape for i in engine.session.get_inputs()}
    assert list(inputs) == ["x", "w"]
    assert isinstance(inputs["x"][0], str) and inputs["x"][1:] == [3, 64, 64]  # dynamic batch
    assert isinstance(inputs["w"][0], str)


def test_agrees_with_eager_and_w_is_an_input(ort_codeformer, tiny_net):
    net, io = tiny_net("codeformer")
    reference = build_engine(net, io, backend="torch", precision="fp32", device=CPU, channels_last=False)
    for fidelity in (0.0, 0.8):  # two weights: two different outputs, both matching eager
        result = check_engine(ort_codeformer, reference, io, batch=3, fidelity=fidelity)
        assert result.passed and result.psnr_db >= 45, result.line()
    x, _ = face_batch(io, 2)
    low, high = ort_codeformer.run(x, None, 0.0), ort_codeformer.run(x, None, 1.0)
    assert (low - high).abs().max() > 1e-2


@pytest.mark.parametrize("batch", [1, 5])
def test_any_batch_size(ort_codeformer, tiny_net, batch):
    net, io = tiny_net("codeformer")
    x, _ = face_batch(io, batch)
    with torch.no_grad():
        expected = net(x, 0.3)[0]
    torch.testing.assert_close(ort_codeformer.run(x, None, 0.3), expected, rtol=0, atol=1e-4)


def test_second_build_is_a_cache_hit(ort_codeformer, tiny_net, shared_cache, monkeypatch):
    net, io = tiny_net("codeformer")
    calls = []
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: calls.append(a))
    again = build_engine(net, io, backend="onnxruntime", precision="fp32", device=CPU, cache=shared_cache,
                         batch=(1, 8, 8))
    assert calls == [] and again.info.artifact == ort_codeformer.info.artifact


def test_nodes_are_named_by_module_and_sensitive_ones_found(ort_codeformer, tiny_net):
    from vidrestore.engines.network import precision_plan

    net, _ = tiny_net("codeformer")
    model = onnx.load(str(ort_codeformer.info.artifact), load_external_data=False)
    names = {n.name: n.op_type for n in model.graph.node}
    keep = onnx_export.fp32_node_names(model, precision_plan(net, torch.float16).fp32)
    encoder_convs = [n for n, op in names.items() if n.startswith("net.encoder.") and op == "Conv"]
    generator_convs = [n for n, op in names.items() if n.startswith("net.generator.") and op == "Conv"]
    assert encoder_convs and generator_convs
    assert set(encoder_convs) <= keep                       # the code choice stays fp32
    assert not set(generator_convs) & keep                  # the decoder's convolutions go fp16
    assert {n for n, op in names.items() if op in ("Softmax", "ArgMax", "LayerNormalization")} <= keep
    assert any(n.startswith("net.idx_pred_layer") for n in keep)


def test_cpu_providers():
    assert providers_for(CPU, "fp32", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    gpu = providers_for(torch.device("cuda:1"), "fp32",
                        ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    assert [p[0] if isinstance(p, tuple) else p for p in gpu] == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert gpu[1][1]["device_id"] == 1
    fp16 = providers_for(torch.device("cuda"), "fp16", ["TensorrtExecutionProvider", "CUDAExecutionProvider"])
    assert fp16[0][0] == "CUDAExecutionProvider"  # the TensorRT EP would lower the fp32 islands


def test_fp16_on_cpu_is_refused(tiny_net):
    from vidrestore.engines import EngineUnavailableError

    net, io = tiny_net("codeformer")
    with pytest.raises(EngineUnavailableError, match="CUDA execution provider"):
        build_engine(net, io, backend="onnxruntime", precision="fp16", device=CPU)


@pytest.mark.slow
def test_identity_is_a_graph_input(tiny_net, shared_cache):
    net, io = tiny_net("id-codeformer")
    engine = build_engine(net, io, backend="onnxruntime", precision="fp32", device=CPU, cache=shared_cache)
    assert [i.name for i in engine.session.get_inputs()] == ["x", "identity", "w"]
    reference = build_engine(net, io, backend="torch", precision="fp32", device=CPU, channels_last=False)
    result = check_engine(engine, reference, io, batch=2)
    assert result.passed and result.psnr_db >= 45, result.line()
    x, identity = face_batch(io, 2)
    a = engine.run(x, identity, 0.5)
    b = engine.run(x, identity.flip(0), 0.5)
    assert (a - b).abs().max() > 1e-3


@pytest.mark.slow
def test_fp16_export_keeps_fp32_islands(tiny_net, tmp_path):
    from vidrestore.engines.network import EngineNetwork

    net, io = tiny_net("codeformer")
    import copy

    path = onnx_export.export_onnx(EngineNetwork(copy.deepcopy(net), io, "fp16"), tmp_path / "m.onnx", max_batch=8)
    model = onnx.load(str(path))
    types = {i.name: i.data_type for i in model.graph.initializer}
    fp16 = onnx.TensorProto.FLOAT16
    assert any(t == fp16 for t in types.values()) and any(t == onnx.TensorProto.FLOAT for t in types.values())
    assert all(t != fp16 for n, t in types.items() if "encoder" in n or "idx_pred" in n)
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [onnx.TensorProto.FLOAT] * 2


@pytest.mark.gpu
@requires_cuda
def test_fp16_on_cuda_is_close(tiny_net, shared_cache):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no CUDA execution provider")
    net, io = tiny_net("codeformer")
    cuda = torch.device("cuda")
    engine = build_engine(net, io, backend="onnxruntime", precision="fp16", device=cuda, cache=shared_cache)
    reference = build_engine(net, io, backend="torch", precision="fp32", device=cuda)
    result = check_engine(engine, reference, io, batch=4)
    assert result.passed, result.line()
    assert np.isfinite(result.psnr_db)
