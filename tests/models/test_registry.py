"""The model table, builders and strict checkpoint loading."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from vidrestore.config import from_mapping
from vidrestore.errors import (
    ConfigError,
    MissingWeightsError,
    UsageError,
    WeightsError,
    WeightsMismatchError,
)
from vidrestore.models import (
    CodeFormer,
    CodeFormerPP,
    IDCodeFormer,
    build_model,
    get_spec,
    load_checkpoint,
    model_names,
)
from vidrestore.models.idcodeformer import IDCodeFormerConfig
from vidrestore.models.seeded import seeded_faces


def run(net, name, x):
    if name == "id-codeformer":
        return net(x, torch.randn(x.shape[0], 512), 0.5)
    return net(x) if name == "codeformer++" else net(x, 0.5)


def test_the_table():
    assert model_names() == ["codeformer", "id-codeformer", "codeformer++"]
    assert [get_spec(n).needs_identity for n in model_names()] == [False, True, False]
    assert {get_spec(n).base_weights for n in model_names()} == {"codeformer"}
    assert get_spec("codeformer").trained_weights is None
    assert get_spec("id-codeformer").trained_weights == "id-codeformer"
    assert isinstance(build_model("codeformer", tiny=True), CodeFormer)
    assert isinstance(build_model("id-codeformer", tiny=True), IDCodeFormer)
    assert isinstance(build_model("codeformer++", tiny=True), CodeFormerPP)


def test_unknown_names_and_wrong_configs_are_usage_errors():
    with pytest.raises(UsageError, match="known: codeformer, id-codeformer, codeformer"):
        get_spec("gfpgan")
    with pytest.raises(UsageError, match="CodeFormerConfig"):
        build_model("codeformer", get_spec("id-codeformer").tiny_config)


def test_configs_load_from_plain_mappings_with_unknown_keys_rejected():
    cfg = from_mapping(IDCodeFormerConfig, {"identity_tokens": 8, "codeformer": {"n_layers": 3}})
    assert cfg.identity_tokens == 8 and cfg.codeformer.n_layers == 3
    assert cfg.codeformer.connect_list == ("32", "64", "128", "256")
    with pytest.raises(ConfigError, match="unknown key"):
        from_mapping(IDCodeFormerConfig, {"codeformer": {"n_layer": 3}})


@pytest.mark.parametrize("name", ["codeformer", "id-codeformer", "codeformer++"])
def test_every_tiny_model_runs_forward_and_backward(name, tiny, faces64):
    net = tiny(name).train()
    out = run(net, name, faces64)
    assert out[0].shape == faces64.shape
    out[0].abs().mean().backward()
    encoder = net.codeformer.encoder if name == "codeformer++" else net.encoder
    assert encoder.blocks[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("wrap", ["params_ema", "params", None, "module", "safetensors"])
def test_checkpoint_formats_load(wrap, tiny, tmp_path):
    source = tiny("codeformer", seed=5)
    state = source.state_dict()
    path = tmp_path / ("w.safetensors" if wrap == "safetensors" else "w.pth")
    if wrap == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif wrap == "module":
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    else:
        torch.save({wrap: state} if wrap else state, path)
    net = build_model("codeformer", tiny=True)
    report = load_checkpoint(net, path)
    assert report.complete and report.loaded == len(state)
    assert report.param_key == (wrap if wrap in ("params_ema", "params") else None)
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_mismatches_raise_with_a_one_line_summary(tiny, tmp_path):
    state = dict(tiny("codeformer").state_dict())
    state["feat_emb.weight"] = torch.zeros(7, 7)
    del state["position_emb"]
    state["lonely.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save({"params_ema": state}, path)
    with pytest.raises(WeightsMismatchError) as info:
        load_checkpoint(build_model("codeformer", tiny=True), path)
    message = str(info.value)
    assert "\n" not in message
    assert "1 missing (position_emb)" in message
    assert "1 unexpected (lonely.weight)" in message
    assert "1 shape mismatches (feat_emb.weight (7, 7)≠(32, 32))" in message
    assert isinstance(info.value, ValueError) and info.value.exit_code == 4


def test_a_full_size_checkpoint_does_not_fit_the_tiny_net(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"params_ema": {"position_emb": torch.zeros(256, 512)}}, path)
    with pytest.raises(WeightsMismatchError, match=r"shape mismatches \(position_emb"):
        load_checkpoint(build_model("codeformer", tiny=True), path)


def test_unreadable_files(tmp_path):
    net = build_model("codeformer", tiny=True)
    with pytest.raises(MissingWeightsError):
        load_checkpoint(net, tmp_path / "absent.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="cannot read"):
        load_checkpoint(net, garbage)
    bad_safetensors = tmp_path / "bad.safetensors"
    bad_safetensors.write_bytes(b"\x00" * 20)
    with pytest.raises(WeightsError, match="cannot read"):
        load_checkpoint(net, bad_safetensors)
    not_tensors = tmp_path / "dict.pth"
    torch.save({"params_ema": {"a": 1}}, not_tensors)
    with pytest.raises(WeightsError, match="non-tensor"):
        load_checkpoint(net, not_tensors)


@pytest.mark.parametrize("name", ["id-codeformer", "codeformer++"])
def test_extended_models_accept_a_plain_codeformer_checkpoint(name, tiny, tmp_path):
    codeformer = tiny("codeformer", seed=6)
    path = tmp_path / "codeformer.pth"
    torch.save({"params_ema": codeformer.state_dict()}, path)
    net = build_model(name, tiny=True)
    report = load_checkpoint(net, path)
    assert report.untrained and not report.complete
    assert report.loaded == len(codeformer.state_dict())
    part = net.codeformer if name == "codeformer++" else net
    for key, tensor in codeformer.state_dict().items():
        assert torch.equal(part.state_dict()[key], tensor), key


@pytest.mark.parametrize("name", ["id-codeformer", "codeformer++"])
def test_extended_models_load_their_own_checkpoints_completely(name, tiny, tmp_path):
    trained = tiny(name, seed=7)
    path = tmp_path / f"{name}.pth"
    torch.save({"params_ema": trained.state_dict()}, path)
    net = build_model(name, tiny=True).eval()
    assert load_checkpoint(net, path).complete
    x = seeded_faces(1, 64)
    with torch.no_grad():
        torch.testing.assert_close(run_seeded(net, name, x), run_seeded(trained, name, x))


def run_seeded(net, name, x):
    torch.manual_seed(0)
    return run(net, name, x)[0]


@pytest.mark.parametrize("name", ["id-codeformer", "codeformer++"])
def test_extended_models_reject_a_broken_codeformer_checkpoint(name, tiny, tmp_path):
    state = dict(tiny("codeformer").state_dict())
    del state["idx_pred_layer.1.weight"]
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(WeightsMismatchError, match="idx_pred_layer.1.weight"):
        load_checkpoint(build_model(name, tiny=True), path)


def test_a_checkpoint_of_another_model_is_rejected(tiny, tmp_path):
    path = tmp_path / "pp.pth"
    torch.save(tiny("codeformer++").state_dict(), path)
    with pytest.raises(WeightsMismatchError, match="unexpected"):
        load_checkpoint(build_model("id-codeformer", tiny=True), path)


def test_checkpoint_metadata_is_read_from_torch_and_safetensors_files(tiny, tmp_path):
    from safetensors.torch import save_file

    from vidrestore.config import to_mapping
    from vidrestore.errors import WeightsError
    from vidrestore.models import CheckpointMetadata, Recognizer, read_checkpoint
    from vidrestore.models.registry import load_model

    net = tiny("id-codeformer")
    meta = CheckpointMetadata("id-codeformer", to_mapping(net.id_config), stage="cft", run="r", step=7,
                              recognizer=Recognizer("arcface-ir-se50", "recognition_arcface_ir_se50.pth", "ab" * 32),
                              settings={"name": "r", "seed": 0})
    torch.save({"params_ema": net.state_dict(), "metadata": meta.to_dict()}, tmp_path / "a.pth")
    save_file(net.state_dict(), str(tmp_path / "a.safetensors"),
              metadata={"vidrestore": __import__("json").dumps(meta.to_dict())})
    for name in ("a.pth", "a.safetensors"):
        checkpoint = read_checkpoint(tmp_path / name)
        assert checkpoint.metadata == meta and "metadata" not in checkpoint.state_dict
        built, report = load_model("id-codeformer", tmp_path / name)
        assert built.id_config == net.id_config and report.complete and report.metadata == meta
        assert "stage cft (run r, step 7), recognizer arcface-ir-se50" in report.summary()
    torch.save({"params_ema": net.state_dict(), "metadata": {"model": "x", "bogus": 1}}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="bogus"):
        read_checkpoint(tmp_path / "bad.pth")
    torch.save({"params_ema": net.state_dict(), "metadata": {"model": "x", "format": 99}}, tmp_path / "new.pth")
    with pytest.raises(WeightsError, match="format 99"):
        read_checkpoint(tmp_path / "new.pth")
