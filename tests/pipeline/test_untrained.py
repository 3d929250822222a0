"""Untrained layers never reach a user's output: refused at load (exit 4, the training command),
or, with ``allow_untrained``, the base model exactly; the recorded recognizer is enforced."""

from __future__ import annotations

import pytest
import torch
from checkpoint_kit import tiny_base, tiny_trained, write_checkpoint
from vidrestore.engines.cache import model_hash

from vidrestore.errors import (
    ChecksumError,
    MissingWeightsError,
    UntrainedWeightsError,
    UsageError,
    WeightsError,
    WeightsMismatchError,
)
from vidrestore.faces.identity import conditioning_backend
from vidrestore.models import Recognizer, build_model
from vidrestore.models.seeded import fill_seeded, seeded_faces
from vidrestore.pipeline.build import build_restorer, prepare_network
from vidrestore.settings import RestoreConfig
from vidrestore.weights import WeightStore

CPU = torch.device("cpu")


def config(model: str, weights, **kw) -> RestoreConfig:
    return RestoreConfig(model=model, weights=weights, download=False, engine="torch", **kw)


def store(tmp_path) -> WeightStore:
    return WeightStore(tmp_path / "none", tmp_path / "cache", allow_download=False)


@pytest.mark.parametrize("model,parts,command", [
    ("id-codeformer", "identity cross-attention and IA-CFT", "configs/training/ia_cft.yaml"),
    ("codeformer++", "DAM and TGRN", "configs/training/tgrn.yaml"),
])
def test_a_plain_codeformer_checkpoint_is_refused_naming_the_training(tmp_path, model, parts, command):
    base = tiny_base(tmp_path / "codeformer.pth")
    with pytest.raises(UntrainedWeightsError) as caught:
        prepare_network(config(model, base), store(tmp_path))
    message = str(caught.value)
    assert caught.value.exit_code == 4 and "\n" not in message
    assert parts in message and "missing" in message and command in message and "--allow-untrained" in message
    assert "python -m training" in message and "codeformer.pth" in message


@pytest.mark.parametrize("model", ["id-codeformer", "codeformer++"])
def test_without_weights_of_its_own_a_model_is_refused_before_any_download(tmp_path, monkeypatch, model):
    online = WeightStore(tmp_path / "none", tmp_path / "cache", allow_download=True)
    monkeypatch.setattr(online, "fetch", lambda name: pytest.fail(f"downloaded {name} only to refuse it"))
    with pytest.raises(UntrainedWeightsError, match="no checkpoint of it was given"):
        prepare_network(RestoreConfig(model=model, engine="torch"), online)


def test_new_layers_present_but_still_at_their_initial_values_are_refused(tmp_path):
    codeformer = fill_seeded(build_model("codeformer", tiny=True))
    net = build_model("id-codeformer", tiny=True)
    net.load_codeformer_state_dict(codeformer.state_dict())  # new layers at init, every tensor saved
    path = write_checkpoint(tmp_path / "fresh.pth", net, "id-codeformer")
    with pytest.raises(UntrainedWeightsError, match="initial values: never trained"):
        prepare_network(config("id-codeformer", path), store(tmp_path))


def test_allow_untrained_id_codeformer_is_codeformer_bit_for_bit(tmp_path):
    base = tiny_base(tmp_path / "codeformer.pth")
    lines = []
    allowed = build_restorer(config("id-codeformer", base, allow_untrained=True), store(tmp_path), CPU,
                             log=lines.append)
    plain = build_restorer(config("codeformer", base), store(tmp_path), CPU)
    assert not allowed.uses_identity and allowed.name == plain.name  # the same network, the same engine
    assert any("--allow-untrained runs CodeFormer" in line for line in lines)
    faces = (seeded_faces(2, 64).permute(0, 2, 3, 1).numpy() + 1) / 2
    assert (allowed.restore(faces, None, 0.5) == plain.restore(faces, None, 0.5)).all()


def test_allow_untrained_codeformer_pp_is_the_faithful_output_and_the_same_every_run(tmp_path):
    base = tiny_base(tmp_path / "codeformer.pth")
    cfg = config("codeformer++", base, allow_untrained=True)
    first, second = prepare_network(cfg, store(tmp_path)), prepare_network(cfg, store(tmp_path))
    assert first.base and model_hash(first.net) == model_hash(second.net)  # a stable engine cache key
    assert not any(name.startswith(("dam.", "tgrn.")) for name in first.net.state_dict())
    plain = prepare_network(config("codeformer", base), store(tmp_path)).net
    x = seeded_faces(2, 64)
    with torch.no_grad():
        assert torch.equal(first.net(x).image, plain(x, 1.0).image)  # I_F: CodeFormer at w = 1
        assert torch.equal(first.net(x).image, second.net(x).image)


def test_ablations_with_one_untrained_path_are_accepted_and_logged(tmp_path):
    net = fill_seeded(build_model("id-codeformer", tiny=True))
    for adain in net.id_adain_dict.values():  # ablation C: the IA-CFT path never trained
        torch.nn.init.zeros_(adain.mlp[-1].weight)
        torch.nn.init.zeros_(adain.mlp[-1].bias)
    path = write_checkpoint(tmp_path / "c.pth", net, "id-codeformer")
    lines = []
    loaded = prepare_network(config("id-codeformer", path), store(tmp_path), log=lines.append)
    assert loaded.io.uses_identity and not loaded.base
    assert any("IA-CFT at its initial value" in line for line in lines)
    pp = fill_seeded(build_model("codeformer++", tiny=True))
    torch.nn.init.zeros_(pp.dam.flow_head.weight)
    torch.nn.init.zeros_(pp.dam.flow_head.bias)
    path = write_checkpoint(tmp_path / "pp.pth", pp, "codeformer++")
    with pytest.raises(UntrainedWeightsError, match=r"\(DAM\), but in pp.pth"):  # in the graph, untrained
        prepare_network(config("codeformer++", path), store(tmp_path))
    pp.config = type(pp.config)(**{**pp.config.__dict__, "use_dam": False})  # the no-DAM ablation
    path = write_checkpoint(tmp_path / "nodam.pth", pp, "codeformer++")
    loaded = prepare_network(config("codeformer++", path), store(tmp_path))
    assert not loaded.base and loaded.net.config.use_dam is False


def test_the_metadata_builds_the_recorded_network_and_names_the_model(tmp_path):
    path = tiny_trained(tmp_path / "pp.pth", "codeformer++")
    lines = []
    loaded = prepare_network(config("codeformer++", path), store(tmp_path), log=lines.append)
    assert loaded.io.face_size == 64 and "codeformer++ network from stage test" in lines[0]
    with pytest.raises(WeightsMismatchError, match="holds a codeformer\\+\\+ network"):
        prepare_network(config("id-codeformer", path), store(tmp_path))


def test_the_recorded_recognizer_decides_the_identity_backend(kit, tmp_path):
    folder = tmp_path / "w"
    kit.structure_arcface_onnx(folder / "w600k_r50.onnx")
    kit.structure_arcface_onnx(folder / "recognition_arcface_ir_se50.pth")  # present, but not recorded
    permissive = kit.permissive_store(folder)
    digest = permissive.sha256(folder / "w600k_r50.onnx")
    onnx_recognizer = Recognizer("arcface-w600k-r50", "w600k_r50.onnx", digest)
    assert conditioning_backend("auto", permissive, onnx_recognizer) == "arcface-onnx"
    assert conditioning_backend("auto", permissive, Recognizer("arcface-ir-se50")) == "arcface-torch"
    with pytest.raises(UsageError, match="trained on arcface-w600k-r50 vectors"):
        conditioning_backend("arcface-torch", permissive, onnx_recognizer)
    with pytest.raises(ChecksumError, match="not the arcface-w600k-r50 file"):
        conditioning_backend("auto", permissive, Recognizer("arcface-w600k-r50", "w600k_r50.onnx", "0" * 64))
    with pytest.raises(WeightsError, match="stand-in"):
        conditioning_backend("auto", permissive, Recognizer("stand-in"))
    with pytest.raises(MissingWeightsError, match="recognizer it was trained with"):
        conditioning_backend("auto", store(tmp_path), onnx_recognizer)


def test_a_video_run_is_refused_with_exit_4_before_any_frame_is_read(media, tmp_path, monkeypatch, capsys):
    from vidrestore.cli import main
    from vidrestore.io.reader import VideoReader

    monkeypatch.setenv("VIDRESTORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(VideoReader, "frames", lambda *a, **k: pytest.fail("a frame was read before refusing"))
    base = tiny_base(tmp_path / "codeformer.pth")
    out = tmp_path / "out.mp4"
    code = main([str(media.plain(frames=6)), "-o", str(out), "--model", "codeformer++", "--weights", str(base),
                 "--quiet", "--offline", "--engine", "torch"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 4 and len(err) == 1 and "python -m training" in err[0] and "DAM and TGRN" in err[0]
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))
