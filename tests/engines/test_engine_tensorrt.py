"""The ``tensorrt`` backend: unavailable here (cannot be installed on this project's machines),
so asking for it is a one-line usage error; on a machine with TensorRT the fp16 engine must
agree with fp32 eager and its cache key must name the GPU and TensorRT version."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import CPU
from vidrestore.engines import EngineUnavailableError, build_engine
from vidrestore.engines.tensorrt_engine import _layer_op, tensorrt_unavailable

REASON = tensorrt_unavailable()


def test_layer_names_give_the_onnx_op():
    assert _layer_op("net.encoder.blocks.1.norm1/InstanceNormalization_14") == "InstanceNormalization"
    assert _layer_op("net.generator.blocks.3/Conv_120") == "Conv"


@pytest.mark.skipif(REASON is None, reason="TensorRT is installed here")
def test_asking_for_tensorrt_without_it_is_a_usage_error(tiny_net):
    net, io = tiny_net("codeformer")
    with pytest.raises(EngineUnavailableError) as info:
        build_engine(net, io, backend="tensorrt", precision="fp16", device=CPU)
    assert info.value.exit_code == 2 and "tensorrt" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.gpu
@pytest.mark.skipif(REASON is not None, reason=f"TensorRT unavailable: {REASON}")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_engine_agrees_with_eager(tiny_net, tmp_path, precision):
    from vidrestore.engines import EngineCache
    from vidrestore.engines.check import check_engine

    net, io = tiny_net("id-codeformer")
    cuda = torch.device("cuda")
    cache = EngineCache(tmp_path)
    engine = build_engine(net, io, backend="tensorrt", precision=precision, device=cuda, cache=cache, batch=(1, 4, 8))
    reference = build_engine(net, io, backend="torch", precision="fp32", device=cuda)
    for batch in (1, 5):
        result = check_engine(engine, reference, io, batch=batch)
        assert result.passed, result.line()
    key = cache.entries()[0].key
    assert key["device"].startswith("cuda-") and dict(map(tuple, key["versions"])).get("tensorrt")
