"""The ablation rows: every smoke config of configs/training/smoke/ablation/ trains end to end,
and the switches they turn do what they say (L_ids on plain CodeFormer, IA-CFT off, no DAM,
no metric loss), recorded in the checkpoints the runtime reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from vidrestore.training.config import load_stage_config
from vidrestore.training.stages import STAGES
from vidrestore.training.trainer import Trainer

from vidrestore.models import read_checkpoint
from vidrestore.models.registry import get_spec, load_model

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "training" / "smoke" / "ablation"
CONFIGS = sorted(SMOKE.glob("*.yaml"))


def run(path: Path, smoke_root: Path, tmp_path: Path):
    """Train the smoke config ``path`` as shipped, on the session's smoke data, into tmp."""
    stage = path.stem.rsplit("_", 1)[-1]
    cls = STAGES[stage].config_type
    shipped = load_stage_config(cls, path)
    root = smoke_root / Path(shipped.data.root).name
    overrides = [f"output_dir={tmp_path / 'runs'}", f"data.root={root}"]
    if shipped.data.val_root is not None:
        overrides.append(f"data.val_root={smoke_root / Path(shipped.data.val_root).name}")
    cfg = load_stage_config(cls, path, overrides)
    lines: list[str] = []
    result = Trainer(STAGES[stage], cfg, log=lines.append).run()
    return cfg, result, lines


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_ablation_smoke_config_trains_and_records_itself(path, smoke_root, tmp_path):
    cfg, result, lines = run(path, smoke_root, tmp_path)
    assert result.step == cfg.total_steps and result.validations
    assert all(torch.isfinite(torch.tensor(v)) for h in result.history for v in h.values())
    checkpoint = read_checkpoint(result.final_weights)
    meta = checkpoint.metadata
    assert meta.model == cfg.model and meta.stage == path.stem.rsplit("_", 1)[-1] and meta.step == cfg.total_steps
    assert meta.settings["name"] == cfg.name
    net, report = load_model(cfg.model, result.final_weights)  # the runtime builds it as recorded
    assert report.complete
    uses_identity = cfg.model == "id-codeformer" or (getattr(cfg.losses, "identity", None) or 0) > 0
    assert (meta.recognizer is not None) == uses_identity
    if uses_identity:
        assert meta.recognizer.name == "stand-in"  # smoke runs say they used the stand-in
        assert any("identity" in line for line in lines)
    if cfg.model == "id-codeformer" and getattr(cfg, "ia_cft", True) is False:
        assert get_spec(cfg.model).untrained_parts(net) == ("IA-CFT",)  # ablation C: the path stays zero
        assert meta.network["identity_tokens"] == net.id_config.identity_tokens
    if cfg.model == "codeformer++":
        assert net.config.use_dam == cfg.use_dam and meta.network["use_dam"] == cfg.use_dam
        parts = get_spec(cfg.model).untrained_parts(net)  # TGRN trained; DAM untrained only when used
        assert "TGRN" not in parts and (parts == () or not cfg.init and cfg.use_dam)
        assert not any(k.startswith("metric") for h in result.history for k in h) or cfg.losses.metric > 0
