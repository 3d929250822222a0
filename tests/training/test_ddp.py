"""Data-parallel training with torchrun: two CPU processes on gloo stay in sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidrestore.config import to_mapping

HERE = Path(__file__).parent


def _torchrun(nproc: int, spec: dict, out: Path) -> list[dict]:
    out.mkdir(parents=True)
    config = out / "config.json"
    config.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(HERE / "ddp_worker.py"), str(config), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(nproc)]


@pytest.mark.slow
def test_two_gloo_ranks_stay_in_sync_and_match_one_process(tiny_config, tmp_path):
    # Stage II: no per-rank randomness, so 2 ranks × batch 1 see exactly what 1 rank × batch 2 sees.
    def spec(name: str, batch: int) -> dict:
        cfg = tiny_config("transformer", name=name, total_steps=3, data={"batch_size": batch})
        return {"stage": "transformer", **to_mapping(cfg)}

    ranks = _torchrun(2, spec("ddp", 1), tmp_path / "ddp")
    for name, state in ranks[0]["trained"].items():
        for key, value in state.items():
            assert torch.equal(value, ranks[1]["trained"][name][key]), f"rank 1 drifted at {name}.{key}"
    single = _torchrun(1, spec("single", 2), tmp_path / "single")[0]
    # Step 1's logged losses are the mean over both ranks' halves of the same global batch.
    first_ddp, first_single = ranks[0]["history"][0], single["history"][0]
    for key in ("cross_entropy", "feature_l2"):
        assert abs(first_ddp[key] - first_single[key]) <= 1e-5 * max(1.0, abs(first_single[key])), key
    g_ddp, g_single = ranks[0]["trained"]["g"], single["trained"]["g"]
    diffs = [(g_ddp[k].float() - g_single[k].float()).abs().max().item() for k in g_single]
    # Equal up to float summation order, which Adam's first steps (updates ≈ ±lr whatever the
    # gradient's size) can blow up to a few lr on near-zero gradients: 3 steps of lr 1e-3.
    assert max(diffs) < 1e-2 and sorted(diffs)[len(diffs) // 2] < 1e-6
