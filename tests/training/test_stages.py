"""Every stage end to end on tiny networks: runs, learns, and leaves weights the runtime loads."""

from __future__ import annotations

import shutil

import pytest
import torch
from vidrestore.training.stages import STAGES
from vidrestore.training.trainer import Trainer

from vidrestore.models import (
    VQAutoEncoder,
    build_model,
    load_checkpoint,
    load_strict,
    read_state_dict,
)
from vidrestore.models.checkpoint import LoadReport

RUNS = [  # (stage, model)
    ("vqgan", "codeformer"), ("transformer", "codeformer"), ("transformer", "id-codeformer"),
    ("cft", "codeformer"), ("cft", "id-codeformer"), ("dam", "codeformer++"), ("tgrn", "codeformer++"),
]


def _train(cfg, **kw):
    return Trainer(STAGES[cfg_stage(cfg)], cfg, log=lambda line: None).run(**kw)


def cfg_stage(cfg) -> str:
    return next(name for name, s in STAGES.items() if type(cfg) is s.config_type)


def load_into_runtime(stage: str, model: str, path) -> LoadReport:
    """Load a run's final weights the way ``vidrestore --weights`` does (tiny networks here)."""
    if stage == "vqgan":
        vq = VQAutoEncoder(64, 32, (1, 1, 2), "nearest", 1, (16,), 32, 32)  # the tiny CodeFormer's VQGAN
        state, key = read_state_dict(path)
        return load_strict(vq, state, source=str(path), param_key=key)
    return load_checkpoint(build_model(model, tiny=True), path)


@pytest.mark.parametrize("stage,model", RUNS, ids=[f"{s}-{m}" for s, m in RUNS])
def test_stage_runs_validates_and_saves_runtime_weights(tiny_config, stage, model):
    extra = {"model": model} if stage in ("transformer", "cft") else {}
    cfg = tiny_config(stage, total_steps=3, val_every=3, **extra)
    result = _train(cfg)
    assert result.step == 3 and len(result.history) == 3
    assert all(torch.isfinite(torch.tensor(v)) for h in result.history for v in h.values())
    metrics = result.validations[-1]
    assert {"psnr", "ssim"} <= set(metrics) and 0 < metrics["psnr"] < 100
    assert not {"lpips", "ids"} & set(metrics)  # stand-ins are reported under their own names
    assert (result.run_dir / "samples" / "step_00000003.png").is_file()
    assert list((result.run_dir / "tb").iterdir())
    report = load_into_runtime(stage, model, result.final_weights)
    assert report.complete and report.param_key == "params_ema"
    saved = torch.load(result.final_weights, weights_only=True)
    assert set(saved) == {"params_ema", "params", "metadata"} and saved["params"].keys() == saved["params_ema"].keys()
    meta = saved["metadata"]  # what the run time reads: the model, its network, the stage, the run
    assert (meta["model"], meta["stage"], meta["step"], meta["run"]) == (
        "vqgan" if stage == "vqgan" else model, stage, 3, cfg.name)
    assert meta["settings"]["total_steps"] == 3 and meta["network"]


LEARNS = [  # (stage, model, the loss that must fall)
    ("vqgan", "codeformer", "l1"), ("transformer", "codeformer", "cross_entropy"),
    ("transformer", "id-codeformer", "cross_entropy"), ("cft", "codeformer", "l1"), ("tgrn", "codeformer++", "l1"),
]


@pytest.mark.parametrize("stage,model,key", LEARNS, ids=[f"{s}-{m}" for s, m, _ in LEARNS])
def test_loss_falls_on_a_fixed_pair_of_faces(tiny_config, smoke_root, tmp_path, stage, model, key):
    identity = model == "id-codeformer"
    source = smoke_root / ("persons/real_astronaut" if identity else "faces")
    root = tmp_path / ("persons/a" if identity else "faces")
    root.mkdir(parents=True)
    for path in sorted(source.glob("*.png"))[:2]:
        shutil.copy(path, root)
    fixed = {"blur_prob": 0.0, "downsample": [2, 2], "noise": [0, 0], "jpeg": [90, 90],
             "color_jitter_prob": 0.0, "gray_prob": 0.0}  # the same LQ every epoch: a fixed batch
    data = {"root": str(root.parent if identity else root), "hflip": False, "degradation": fixed}
    extra = {"model": model} if stage in ("transformer", "cft") else {}
    losses = {"disc_start": 10**6} if stage in ("vqgan", "cft", "tgrn") else {}
    if stage == "cft":
        losses["large_every"] = 0
    steps, k = 30, 6
    cfg = tiny_config(stage, total_steps=steps, data=data, losses=losses, **extra)
    values = [h[key] for h in _train(cfg).history if key in h]
    first, last = sum(values[:k]) / k, sum(values[-k:]) / k
    assert last < 0.85 * first, values


def test_each_stage_starts_from_the_previous_ones_weights(tiny_config):
    """vqgan → transformer → cft → dam → tgrn, and vqgan → id transformer → IA-CFT, each
    initialised from the file the previous stage wrote (the paths a real run takes)."""
    vq = _train(tiny_config("vqgan", name="vq", total_steps=2)).final_weights
    s2 = _train(tiny_config("transformer", name="s2", total_steps=2, init=str(vq))).final_weights
    s3 = _train(tiny_config("cft", name="s3", total_steps=2, init=str(s2), vqgan=str(vq))).final_weights
    s4 = _train(tiny_config("dam", name="s4", total_steps=2, init=str(s3))).final_weights
    s5 = _train(tiny_config("tgrn", name="s5", total_steps=2, init=str(s4))).final_weights
    id2 = _train(tiny_config("transformer", name="id2", model="id-codeformer", total_steps=2, init=str(vq))).final_weights
    id3 = _train(tiny_config("cft", name="id3", model="id-codeformer", total_steps=2, init=str(id2), vqgan=str(vq))).final_weights
    from_cf = _train(tiny_config("cft", name="id3cf", model="id-codeformer", total_steps=2, init=str(s3), vqgan=str(vq)))
    for model, path in (("codeformer", s3), ("codeformer++", s5), ("id-codeformer", id3), ("id-codeformer", from_cf.final_weights)):
        assert load_checkpoint(build_model(model, tiny=True), path).complete
    # Frozen parts really stay frozen (a stage starts from the previous one's params_ema):
    # Stage II keeps the VQGAN's codebook and generator,
    # Stage V keeps Stage IV's CodeFormer and DAM.
    vq_state, s2_state = torch.load(vq, weights_only=True)["params_ema"], torch.load(s2, weights_only=True)["params"]
    assert all(torch.equal(vq_state[k], s2_state[k]) for k in vq_state if k.startswith(("quantize.", "generator.")))
    assert not torch.equal(vq_state["encoder.blocks.0.weight"], s2_state["encoder.blocks.0.weight"])
    s4_state, s5_state = torch.load(s4, weights_only=True)["params_ema"], torch.load(s5, weights_only=True)["params"]
    assert all(torch.equal(s4_state[k], s5_state[k]) for k in s4_state if not k.startswith("tgrn."))
    assert not torch.equal(s4_state["tgrn.conv_out.weight"], s5_state["tgrn.conv_out.weight"])


def test_bf16_autocast_on_cpu_and_fp16_refused(tiny_config):
    result = _train(tiny_config("cft", name="bf16", total_steps=3, precision="bf16"))
    assert all(torch.isfinite(torch.tensor(v)) for h in result.history for v in h.values())
    assert load_checkpoint(build_model("codeformer", tiny=True), result.final_weights).complete
    from vidrestore.errors import UsageError

    with pytest.raises(UsageError, match="fp16"):
        _train(tiny_config("vqgan", name="fp16", total_steps=1, precision="fp16"))
