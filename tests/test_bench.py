"""``vidrestore bench`` and ``vidrestore engines``: JSON keys, the chart, the table, the
per-stage split, engine listing and checks, on passthrough and tiny networks."""

from __future__ import annotations

import json

import pytest
import torch

from vidrestore.bench import (
    STAGES,
    BenchResult,
    PeakMemory,
    format_table,
    run_bench,
    split_stages,
)
from vidrestore.cli import main
from vidrestore.settings import RestoreConfig

BASE = ["--device", "cpu", "--offline", "--quiet"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_split_stages():
    split = split_stages({"decode": 1.0, "faces": 5.0, "faces.detect": 3.0, "faces.align": 0.5,
                          "restore": 2.0, "paste": 0.25, "encode": 0.75})
    assert tuple(split) == STAGES
    assert split["track"] == 1.5 and split["detect"] == 3.0 and split["encode"] == 0.75


def test_peak_memory_sees_an_allocation():
    import numpy as np

    with PeakMemory(period=0.005) as memory:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        import time

        time.sleep(0.05)
        del block
    assert memory.peak_rss > 64 * 2**20 and memory.peak_gpu is None


def test_bench_passthrough_json_plot_and_table(media, tmp_path, capsys):
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    code = main(["bench", str(media.faces(8)), "--model", "passthrough", "--frames", "6", "--warmup", "1",
                 "--json", str(out_json), "--plot", str(out_png), *BASE])
    assert code == 0
    table = capsys.readouterr().out
    assert "fps" in table and "restore ms/f" in table
    data = json.loads(out_json.read_text())
    assert {"frames", "fps", "faces_per_s", "stages", "latency_p50_ms", "latency_p95_ms", "peak_rss_mb",
            "peak_gpu_mb", "runs", "environment"} <= set(data)
    assert data["frames"] == 6 and data["fps"] > 0 and data["faces"] >= 5
    assert set(data["stages"]) == set(STAGES) and data["stages"]["decode"] > 0 and data["stages"]["detect"] > 0
    assert data["latency_p95_ms"] >= data["latency_p50_ms"] > 0 and data["peak_gpu_mb"] is None
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_compares_engines_on_a_tiny_network(media, tmp_path, capsys):
    out_json = tmp_path / "compare.json"
    code = main(["bench", str(media.faces(6)), "--tiny", "--compare", "torch,torch:bf16", "--frames", "4",
                 "--warmup", "1", "--batch-size", "2", "--json", str(out_json), *BASE])
    assert code == 0
    table = capsys.readouterr().out
    assert "codeformer/torch-fp32@cpu" in table and "codeformer/torch-bf16@cpu" in table
    runs = json.loads(out_json.read_text())["runs"]
    assert [r["engine"] for r in runs] == ["torch", "torch:bf16"]
    assert all(r["faces"] >= 3 and r["stages"]["restore"] > 0 and r["restore_faces_per_s"] > 0 for r in runs)
    assert runs[1]["precision"] == "bf16"


def test_bench_library_result(media):
    result = run_bench(media.faces(6), RestoreConfig(model="passthrough", device="cpu", download=False),
                       frames=5, warmup=0)
    assert isinstance(result, BenchResult) and result.frames == 5 and result.restorer == "passthrough"
    assert "passthrough" in format_table([result])


def test_bench_on_a_webm_input_writes_a_container_its_codec_fits(tmp_path):
    from testkit.media import face_clip_frames, write_video

    src = tmp_path / "clip.webm"  # x264, the default codec, does not go into WebM
    write_video(src, face_clip_frames(4, 160, 120), fps=24, codec="libvpx-vp9")
    result = run_bench(src, RestoreConfig(model="passthrough", device="cpu", download=False),
                       warmup=0, output=None)
    assert result.frames == 4


def test_bench_rejects_unknown_engines(media, capsys):
    assert main(["bench", str(media.faces(4)), "--compare", "torch,warp-drive", *BASE]) == 2
    assert "unknown engine" in capsys.readouterr().err


def test_engines_list_empty_and_after_build(tmp_path, capsys):
    cache = tmp_path / "engines"
    assert main(["engines", "--engine-dir", str(cache), "list"]) == 0
    assert "no engines cached" in capsys.readouterr().out
    assert main(["engines", "--engine-dir", str(cache), "build", "--tiny", "--engine", "torch", *BASE]) == 0
    assert "nothing to build" in capsys.readouterr().out
    from vidrestore.engines import EngineCache, EngineKey

    key = EngineKey("codeformer", "0123456789abcdef", "onnxruntime", "fp32", "cpu-avx512",
                    (("torch", "2.13.0"),), 64, (1, 8, 8))
    EngineCache(cache).get_or_build(key, "model.onnx", lambda p: p.write_bytes(b"\0" * 4096))
    assert main(["engines", "--engine-dir", str(cache), "list"]) == 0
    out = capsys.readouterr().out
    assert "1 engine(s)" in out and key.folder_name in out and " KiB" in out and "face 64" in out
    assert main(["engines", "--engine-dir", str(cache), "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["key"]["model_hash"] == "0123456789abcdef" and listed[0]["size"] > 4096


@pytest.mark.slow
def test_engines_build_then_list_then_check(tmp_path, capsys):
    cache = ["--engine-dir", str(tmp_path / "engines")]
    # --temporal off: the whole network, which check reuses (the split build: tests/engines/test_engine_split.py)
    assert main(["engines", *cache, "build", "--tiny", "--engine", "onnxruntime", "--batch-sizes", "1,4",
                 "--temporal", "off", *BASE]) == 0
    assert "artifact:" in capsys.readouterr().out
    assert main(["engines", *cache, "list"]) == 0
    assert "codeformer-onnxruntime-fp32-cpu-" in capsys.readouterr().out
    report = tmp_path / "check.json"
    assert main(["engines", *cache, "check", "--tiny", "--engines", "onnxruntime,torch:bf16", "--batch-sizes", "1,2",
                 "--repeats", "1", "--json", str(report), *BASE]) == 0
    out = capsys.readouterr().out
    assert out.count(" ok ") == 2 and "faces/s" in out
    results = json.loads(report.read_text())["results"]
    assert [r["backend"] for r in results] == ["onnxruntime", "torch"] and all(r["passed"] for r in results)


def test_engines_check_skips_what_cannot_run(tmp_path, capsys):
    from vidrestore.engines.tensorrt_engine import tensorrt_unavailable

    if tensorrt_unavailable() is None:
        pytest.skip("TensorRT is installed here")
    report = tmp_path / "check.json"
    assert main(["engines", "--engine-dir", str(tmp_path), "check", "--tiny", "--engines", "torch:bf16,tensorrt:fp16",
                 "--repeats", "1", "--json", str(report), *BASE]) == 0
    out = capsys.readouterr().out
    assert "codeformer/torch-bf16@cpu" in out and " ok " in out and "tensorrt:fp16" in out and "skipped" in out
    results = json.loads(report.read_text())["results"]
    assert results[0]["passed"] and results[1] == {"label": "tensorrt:fp16", "skipped": True, "passed": None}
    assert main(["engines", "--engine-dir", str(tmp_path), "check", "--tiny", "--engines", "tensorrt", *BASE]) == 2
