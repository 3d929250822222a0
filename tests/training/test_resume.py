"""Exact resume: N steps straight equal N/2 steps, a stop, a resume and N/2 more, bit for bit."""

from __future__ import annotations

import pytest
import torch
from vidrestore.training.stages import STAGES
from vidrestore.training.trainer import Trainer


def _run(cfg, stage: str, **kw):
    return Trainer(STAGES[stage], cfg, log=lambda line: None).run(**kw)


def _assert_same_tree(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("workers", [0, 1])
def test_resume_continues_exactly_where_it_stopped(tiny_config, tmp_path, workers):
    # Stage III exercises the most state: G and D (GAN from step 2), two Adam states, the
    # EMA, per-sample w draws, code-only steps on the heavy LQ, gradient clipping.
    common = {"total_steps": 6, "grad_clip": 1.0, "data": {"num_workers": workers},
              "losses": {"w_schedule": "uniform", "w_range": [0.5, 1.3], "large_every": 3}}
    straight = _run(tiny_config("cft", name="straight", **common), "cft")
    cfg = tiny_config("cft", name="split", **common)
    first = _run(cfg, "cft", stop_at=3)
    assert first.step == 3 and first.final_weights is None and first.last_state.name == "state_00000003.pt"
    second = _run(cfg, "cft", resume="auto")
    assert second.step == 6
    assert [h for h in straight.history if h["step"] > 3] == second.history
    weights_a = torch.load(straight.final_weights, weights_only=True)
    weights_b = torch.load(second.final_weights, weights_only=True)
    meta_a, meta_b = weights_a.pop("metadata"), weights_b.pop("metadata")  # the runs' names differ
    assert meta_a["step"] == meta_b["step"] == 6 and meta_a["network"] == meta_b["network"]
    _assert_same_tree(weights_a, weights_b, "weights")
    a = torch.load(straight.last_state, weights_only=True)
    b = torch.load(second.last_state, weights_only=True)
    for key in ("step", "nets", "ema", "optimizers", "scalers"):
        _assert_same_tree(a[key], b[key], key)
    assert a["nets"].keys() == {"g", "d"} and a["optimizers"]["d"]["state"]  # the GAN did train
