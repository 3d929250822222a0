"""Typed stage configs: every shipped YAML loads for its stage; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from vidrestore.training.cli import main
from vidrestore.training.config import load_stage_config
from vidrestore.training.stages import STAGES

from vidrestore.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "training"
STAGE_OF = {"vqgan": "vqgan", "transformer": "transformer", "id_transformer": "transformer", "cft": "cft",
            "ia_cft": "cft", "dam": "dam", "tgrn": "tgrn"}


def stage_of(path: Path) -> str:
    """A config's stage: by name, or (ablation rows) the last word of its name."""
    return STAGE_OF.get(path.stem) or path.stem.rsplit("_", 1)[-1]


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_loads_for_its_stage(path):
    cfg = load_stage_config(STAGES[stage_of(path)].config_type, path)
    assert cfg.smoke == ("smoke" in path.relative_to(CONFIGS).parts)
    if cfg.smoke:
        assert cfg.network == "tiny"
    else:  # real configs: real networks and real loss networks
        assert cfg.network == "full" and cfg.data.size == 512


def test_every_stage_has_a_real_and_a_smoke_config():
    names = {p.stem for p in CONFIGS.glob("*.yaml")}
    assert names == set(STAGE_OF) == {p.stem for p in (CONFIGS / "smoke").glob("*.yaml")}
    ablations = {p.stem for p in (CONFIGS / "ablation").glob("*.yaml")}
    assert ablations == {p.stem for p in (CONFIGS / "smoke" / "ablation").glob("*.yaml")}
    assert {"idcf_a_transformer", "idcf_b_cft", "idcf_c_cft", "idcf_d_cft", "cfpp_no_dam_tgrn",
            "cfpp_no_metric_tgrn"} <= ablations


@pytest.mark.parametrize("overrides", [
    ["bogus=1"], ["data.bogus=1"], ["losses.l1_weight=1"], ["data.degradation.sigma=[1, 2]"],
    ["optim_g.lr=fast"], ["precision=fp8"], ["data=3"],
])
def test_unknown_keys_and_bad_values_are_rejected(overrides):
    with pytest.raises(ConfigError):
        load_stage_config(STAGES["cft"].config_type, None, overrides)


def test_unknown_yaml_key_is_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nlosses:\n  l1: 1.0\n  perceptul: 1.0\n")
    with pytest.raises(ConfigError, match="perceptul"):
        load_stage_config(STAGES["vqgan"].config_type, path)


def test_losses_of_one_stage_are_unknown_to_another():
    with pytest.raises(ConfigError, match="metric"):
        load_stage_config(STAGES["cft"].config_type, None, ["losses.metric=0.1"])
    assert load_stage_config(STAGES["tgrn"].config_type, None, ["losses.metric=0.2"]).losses.metric == 0.2


def test_cli_reports_a_config_error_in_one_line(capsys):
    assert main(["vqgan", "--set", "data.nonsense=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "nonsense" in err[0]


@pytest.mark.parametrize("argv", [["bogus"], ["vqgan", "--stop-at", "x"], []])
def test_cli_usage_errors_are_one_line_with_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")


def test_the_runtime_never_imports_training():
    root = Path(__file__).resolve().parents[2]
    for path in list((root / "vidrestore").rglob("*.py")) + list((root / "engines").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "import training" not in text and "from training" not in text, path


def test_stage_three_follows_the_official_w_schedule():
    """sczhou/CodeFormer basicsr/models/codeformer_joint_model.py, iterations from 1."""
    losses = load_stage_config(STAGES["cft"].config_type, None).losses
    plan = {it: losses.step_plan(it - 1) for it in (1, 40000, 40001, 80000, 80001, 119999, 120000, 120001,
                                                     120015, 149999)}
    assert plan[1] == (True, 1.0) and plan[40000] == (True, 1.0)
    assert plan[40001] == (True, 1.3) and plan[80000] == (True, 1.3)
    assert plan[80001] == (False, 0.0) and plan[119999] == (False, 0.0) and plan[120000] == (True, 0.0)
    assert plan[120001] == (False, 1.3) and plan[120015] == (True, 1.3) and plan[149999] == (False, 1.3)
    assert sum(losses.step_plan(s)[0] for s in range(120000, 150000)) == 2000  # 1 in 15
    assert losses.disc_start == 5001
    uniform = load_stage_config(STAGES["cft"].config_type, None, ["losses.w_schedule=uniform"]).losses
    assert uniform.step_plan(0) == (True, (1.0, 1.3)) and uniform.step_plan(14) == (False, (1.0, 1.3))
    with pytest.raises(ConfigError, match="open-ended"):
        load_stage_config(STAGES["cft"].config_type, None, ["losses.phases=[{until: null, w: 1}, {until: 5, w: 0}]"])
