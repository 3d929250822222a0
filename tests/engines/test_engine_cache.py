"""The engine artifact cache: keys, atomic builds, concurrent publishers, listing."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from vidrestore.engines.cache import (
    EngineCache,
    EngineKey,
    default_engine_dir,
    device_kind,
    model_hash,
)


def key(**changes) -> EngineKey:
    base = EngineKey("codeformer", "0123456789abcdef", "onnxruntime", "fp32", "cpu-avx512",
                     (("torch", "2.13.0"), ("onnxruntime", "1.31.1")), 512, (1, 8, 8))
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("change", [
    {"model": "id-codeformer"}, {"model_hash": "fedcba9876543210"}, {"backend": "compiled"},
    {"precision": "fp16"}, {"device": "cuda-NVIDIA_H100-sm90"}, {"versions": (("torch", "2.14.0"),)},
    {"face_size": 64}, {"batch": (1, 16, 16)}, {"variant": "other"},
])
def test_every_field_changes_the_folder(change):
    assert key().folder_name != key(**change).folder_name
    assert key().folder_name == key().folder_name


def test_folder_name_reads_well():
    name = key().folder_name
    assert name.startswith("codeformer-onnxruntime-fp32-cpu-") and len(name.rsplit("-", 1)[1]) == 16


def test_model_hash_follows_the_weights(tiny_net):
    net, _ = tiny_net("codeformer")
    other = type(net).from_config(net.config)
    other.load_state_dict(net.state_dict())
    assert model_hash(net) == model_hash(other)
    with torch.no_grad():
        other.idx_pred_layer[1].weight[0, 0] += 1e-6
    assert model_hash(net) != model_hash(other)


def test_default_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDRESTORE_ENGINE_DIR", str(tmp_path / "mine"))
    assert default_engine_dir() == tmp_path / "mine"
    monkeypatch.delenv("VIDRESTORE_ENGINE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_engine_dir() == tmp_path / "xdg" / "vidrestore" / "engines"


def test_device_kind_on_cpu():
    assert device_kind(torch.device("cpu")).startswith("cpu-")


def test_build_once_then_hit(tmp_path):
    cache = EngineCache(tmp_path)
    calls = []

    def build(path):
        calls.append(path)
        path.write_text("artifact")

    path, built = cache.get_or_build(key(), "model.onnx", build)
    assert built and path.read_text() == "artifact" and path.parent == cache.folder(key())
    again, built_again = cache.get_or_build(key(), "model.onnx", build)
    assert again == path and not built_again and len(calls) == 1
    meta = json.loads((path.parent / "meta.json").read_text())
    assert meta["key"]["model_hash"] == "0123456789abcdef" and meta["artifact"] == "model.onnx"


def test_a_failed_build_leaves_nothing(tmp_path):
    cache = EngineCache(tmp_path)

    def build(path):
        path.write_text("half")
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        cache.get_or_build(key(), "model.onnx", build)
    assert list(tmp_path.iterdir()) == []
    assert cache.lookup(key(), "model.onnx") is None


def test_a_concurrent_publisher_wins(tmp_path):
    cache = EngineCache(tmp_path)

    def build(path):  # another process publishes the same key while we build
        theirs = cache.folder(key())
        theirs.mkdir()
        (theirs / "model.onnx").write_text("theirs")
        (theirs / "meta.json").write_text("{}")
        path.write_text("ours")

    path, _ = cache.get_or_build(key(), "model.onnx", build)
    assert path.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == [cache.folder(key()).name]  # ours was discarded


def test_entries_list_complete_folders_only(tmp_path):
    cache = EngineCache(tmp_path)
    cache.get_or_build(key(), "model.onnx", lambda p: p.write_bytes(b"x" * 2048))
    cache.get_or_build(key(precision="fp16"), "model.onnx", lambda p: p.write_bytes(b"y"))
    (tmp_path / ".build-leftover").mkdir()
    (tmp_path / "no-meta").mkdir()
    entries = cache.entries()
    assert sorted(e.key["precision"] for e in entries) == ["fp16", "fp32"]
    first = next(e for e in entries if e.key["precision"] == "fp32")
    assert first.size > 2048 and first.artifact.name == "model.onnx"
    assert "2." in first.line() and "cpu-avx512" in first.line()
    cache.remove(first)
    assert len(cache.entries()) == 1


def test_no_cache_folder_lists_nothing(tmp_path):
    assert EngineCache(tmp_path / "absent").entries() == []
