"""Building engines: what ``auto`` picks, batch profiles, unavailable engines."""

from __future__ import annotations

import pytest
import torch
import vidrestore.engines.build as build
from engine_helpers import CPU
from vidrestore.engines import backend_unavailable, batch_profile, choose_backend
from vidrestore.engines.build import EngineUnavailableError, resolve_precision

from vidrestore.errors import EngineError, UsageError


def test_auto_on_cpu_takes_the_first_available(monkeypatch):
    backend, why = choose_backend(CPU, "fp32")
    assert backend == next(b for b in build.AUTO_ORDER["cpu"] if backend_unavailable(b, CPU) is None)
    assert "CPU" in why
    monkeypatch.setattr(build, "backend_unavailable", lambda b, d, p="fp32": None if b == "torch" else "absent")
    backend, why = choose_backend(CPU, "fp32")
    assert backend == "torch" and "not onnxruntime: absent" in why


def test_auto_on_gpu_prefers_tensorrt_then_compiled(monkeypatch):
    gpu = torch.device("cuda")
    monkeypatch.setattr(build, "backend_unavailable", lambda b, d, p="fp32": None)
    assert choose_backend(gpu, "fp16")[0] == "tensorrt"
    monkeypatch.setattr(build, "backend_unavailable", lambda b, d, p="fp32": "no" if b == "tensorrt" else None)
    backend, why = choose_backend(gpu, "fp16")
    assert backend == "compiled" and "not tensorrt: no" in why


def test_nothing_available_is_an_engine_error(monkeypatch):
    monkeypatch.setattr(build, "backend_unavailable", lambda b, d, p="fp32": "absent")
    with pytest.raises(EngineError, match="no engine can run"):
        choose_backend(CPU, "fp32")


@pytest.mark.parametrize("backend,precision,words", [
    ("onnxruntime", "bf16", "not bf16"), ("tensorrt", "bf16", "not bf16"), ("nonsense", "fp32", "unknown engine"),
])
def test_unavailable_reasons(backend, precision, words):
    assert words in backend_unavailable(backend, CPU, precision)


def test_precision_auto():
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    assert resolve_precision("bf16", CPU) == "bf16"


def test_batch_profiles_share_artifacts():
    assert batch_profile("compiled", 4) == (1, 8, 8) == batch_profile("onnxruntime", 8)
    assert batch_profile("compiled", 12) == (1, 16, 16)
    assert batch_profile("tensorrt", 4) == (1, 4, 8)
    assert batch_profile("tensorrt", 4, (1, 4, 32)) == (1, 4, 32)


def test_unavailable_engine_is_a_usage_error():
    exc = EngineUnavailableError("engine 'tensorrt' is not available here: no tensorrt")
    assert isinstance(exc, UsageError) and isinstance(exc, EngineError) and exc.exit_code == 2


def test_cli_tensorrt_without_tensorrt_is_one_line_exit_2(media, capsys):
    from vidrestore.engines.tensorrt_engine import tensorrt_unavailable

    from vidrestore.cli import main

    if tensorrt_unavailable() is None:
        pytest.skip("TensorRT is installed here")
    code = main(["bench", str(media.faces(4)), "--tiny", "--engine", "tensorrt", "--device", "cpu",
                 "--offline", "--quiet", "--warmup", "0"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "tensorrt" in lines[0] and "not installed" in lines[0]
