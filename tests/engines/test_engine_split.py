"""The split network on every backend available here: ``decode(predict(x))`` must be the
per-frame engine of the same backend exactly (or to the backend's rounding), its halves
must have the documented inputs and outputs, and its artifacts must be cached."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import CPU
from vidrestore.engines import EngineUnavailableError, backend_unavailable, build_engine
from vidrestore.engines.check import face_batch
from vidrestore.engines.split import CodeTensors
from vidrestore.engines.split_build import build_split_engine
from vidrestore.engines.split_network import split_io
from vidrestore.engines.split_restorer import SplitRestorer
from vidrestore.engines.tensorrt_engine import tensorrt_unavailable

MODELS = ["codeformer", "id-codeformer", "codeformer++"]


def _run_both(whole, split, io, batch=3, w=0.3):
    x, identity = face_batch(io, batch)
    return whole.run(x, identity, w), split.run(x, identity, w)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_torch_split_is_the_per_frame_engine_exactly(tiny_net, name, precision):
    net, io = tiny_net(name)
    whole = build_engine(net, io, backend="torch", precision=precision, device=CPU)
    split = build_split_engine(net, io, backend="torch", precision=precision, device=CPU)
    expected, got = _run_both(whole, split, io)
    assert torch.equal(got, expected)
    assert split.info.backend == "torch" and split.info.detail.startswith("split")


@pytest.mark.parametrize("name", MODELS)
def test_halves_have_the_documented_names_and_shapes(tiny_net, name):
    net, io = tiny_net(name)
    split = build_split_engine(net, io, backend="torch", precision="fp32", device=CPU)
    names = split_io(net, io)
    x, identity = face_batch(io, 2)
    codes = split.predict(x, identity)
    shapes = names.shapes("predict", 2)
    assert names.output_names("predict") == ("logits", "lq_feat", "skip32", "skip64")
    assert tuple(codes.logits.shape) == shapes["logits"] == (2, 256, 32)
    assert [tuple(s.shape) for s in codes.skips] == [shapes["skip32"], shapes["skip64"]]
    decode_inputs = names.input_names("decode")
    assert decode_inputs[:4] == ("logits", "lq_feat", "skip32", "skip64")
    assert ("w" in decode_inputs) == io.takes_fidelity and ("identity" in decode_inputs) == io.uses_identity


def test_the_restorer_decodes_fused_codes_and_restores_alone(tiny_net):
    net, io = tiny_net("codeformer")
    restorer = SplitRestorer(build_split_engine(net, io, backend="torch", precision="fp32", device=CPU))
    x, _ = face_batch(io, 3)
    faces = ((x.permute(0, 2, 3, 1) + 1) / 2).numpy()
    codes = restorer.predict(faces, None)
    assert len(codes) == 3 and all(isinstance(c, CodeTensors) and len(c) == 1 for c in codes)
    alone = restorer.restore(faces, None, 0.5)
    again = restorer.decode(codes, None, 0.5)
    assert alone.shape == (3, 64, 64, 3) and (alone == again).all()
    swapped = restorer.decode([codes[1].with_codes(codes[0].logits, codes[0].lq_feat)], None, 0.5)
    assert not (swapped[0] == alone[1]).all()  # the codes decide the face


ORT = backend_unavailable("onnxruntime", CPU)


@pytest.mark.skipif(ORT is not None, reason=str(ORT))
def test_onnxruntime_split_is_the_per_frame_graph(tiny_net, shared_cache):
    net, io = tiny_net("codeformer")
    whole = build_engine(net, io, backend="onnxruntime", precision="fp32", device=CPU, cache=shared_cache,
                         batch=(1, 8, 8))
    split = build_split_engine(net, io, backend="onnxruntime", precision="fp32", device=CPU, cache=shared_cache,
                               batch=(1, 8, 8))
    folder = split.info.artifact.parent
    assert {p.name for p in folder.iterdir()} >= {"predict.onnx", "decode.onnx", "meta.json"}
    assert folder != whole.info.artifact.parent
    for batch in (1, 3):
        expected, got = _run_both(whole, split, io, batch)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    for w in (0.0, 1.0):  # w is an input of the decode graph
        expected, got = _run_both(whole, split, io, 2, w)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    again = build_split_engine(net, io, backend="onnxruntime", precision="fp32", device=CPU, cache=shared_cache,
                               batch=(1, 8, 8))
    assert again.info.artifact == split.info.artifact  # a cache hit


@pytest.mark.skipif(ORT is not None, reason=str(ORT))
def test_engines_build_makes_the_split_artifacts_a_temporal_run_uses(tiny_net, shared_cache, capsys):
    from vidrestore.cli import main

    net, io = tiny_net("codeformer")
    split = build_split_engine(net, io, backend="onnxruntime", precision="fp32", device=CPU, cache=shared_cache,
                               batch=(1, 8, 8))  # built by the test above, else here
    assert main(["engines", "--engine-dir", str(shared_cache.root), "build", "--tiny", "--engine", "onnxruntime",
                 "--batch-sizes", "1,4", "--device", "cpu", "--offline", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "split" in out and f"artifact: {split.info.artifact}" in out  # the same artifact: a cache hit


@pytest.mark.slow
@pytest.mark.skipif(ORT is not None, reason=str(ORT))
@pytest.mark.parametrize("name", ["id-codeformer", "codeformer++"])
def test_onnxruntime_split_of_the_other_models(tiny_net, shared_cache, name):
    net, io = tiny_net(name)
    whole = build_engine(net, io, backend="onnxruntime", precision="fp32", device=CPU, cache=shared_cache,
                         batch=(1, 8, 8))
    split = build_split_engine(net, io, backend="onnxruntime", precision="fp32", device=CPU, cache=shared_cache,
                               batch=(1, 8, 8))
    expected, got = _run_both(whole, split, io)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


COMPILED = backend_unavailable("compiled", CPU)


@pytest.mark.slow
@pytest.mark.skipif(COMPILED is not None, reason=str(COMPILED))
def test_compiled_split_agrees_with_eager(tiny_net, shared_cache):
    """Two AOTInductor packages (~1 min to compile on 2 cores)."""
    net, io = tiny_net("codeformer")
    eager = build_engine(net, io, backend="torch", precision="fp32", device=CPU, channels_last=False)
    split = build_split_engine(net, io, backend="compiled", precision="fp32", device=CPU, cache=shared_cache,
                               batch=(1, 8, 8))
    assert {p.name for p in split.info.artifact.parent.iterdir()} >= {"predict.pt2", "decode.pt2"}
    for batch in (1, 3):
        expected, got = _run_both(eager, split, io, batch)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


@pytest.mark.skipif(tensorrt_unavailable() is None, reason="TensorRT is installed here")
def test_tensorrt_split_without_tensorrt_is_a_usage_error(tiny_net):
    net, io = tiny_net("codeformer")
    with pytest.raises(EngineUnavailableError) as info:
        build_split_engine(net, io, backend="tensorrt", precision="fp16", device=CPU)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
