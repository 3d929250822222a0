"""Every inference preset loads into the typed config; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidrestore.config import from_mapping, load_yaml, with_overrides
from vidrestore.errors import ConfigError
from vidrestore.settings import RestoreConfig

PRESETS = sorted((Path(__file__).parents[1] / "configs" / "inference").glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_presets_load(path):
    config = load_yaml(RestoreConfig, path)
    assert isinstance(config, RestoreConfig)


def test_archival_preset_is_lossless():
    config = load_yaml(RestoreConfig, PRESETS[[p.stem for p in PRESETS].index("archival")])
    assert config.encode.codec == "ffv1" and config.faces.detect_every == 1
    assert config.decode.deinterlace == "auto"
    assert (config.upscale.factor, config.upscale.upsampler) == (2, "realesrgan")


@pytest.mark.parametrize("data,words", [
    ({"modle": "codeformer"}, "unknown key"),
    ({"faces": {"detect_evry": 2}}, "unknown key"),
    ({"fidelity": "high"}, "expected a number"),
    ({"batch_size": 2.5}, "expected an integer"),
    ({"device": "tpu"}, "is not one of"),
    ({"fidelity": 1.5}, "fidelity"),
])
def test_bad_configs_say_what_is_wrong(data, words):
    with pytest.raises(ConfigError, match=words):
        from_mapping(RestoreConfig, data)


def test_overrides_apply_with_checks():
    config = with_overrides(RestoreConfig, RestoreConfig(), ["faces.detect_every=4", "encode.crf=12"])
    assert config.faces.detect_every == 4 and config.encode.crf == 12
    with pytest.raises(ConfigError):
        with_overrides(RestoreConfig, RestoreConfig(), ["faces.nope=1"])


def test_fingerprint_tracks_settings_that_change_the_output():
    base = RestoreConfig()
    assert base.fingerprint() == RestoreConfig().fingerprint()
    assert base.fingerprint() != RestoreConfig(fidelity=0.7).fingerprint()
    assert base.fingerprint() == RestoreConfig(queue_size=9).fingerprint()
    assert base.fingerprint() == RestoreConfig(batch_size=4).fingerprint()


def test_batch_size_defaults_by_device_unless_given():
    assert RestoreConfig().batch_for("cpu") == 1 and RestoreConfig().batch_for("cuda:0") == 8
    assert RestoreConfig(batch_size=3).batch_for("cpu") == 3
    with pytest.raises(ConfigError):
        RestoreConfig(batch_size=0)


def test_paste_settings_come_from_flags_and_presets(tmp_path):
    from vidrestore.cli import build_parser
    from vidrestore.commands.restore import config_from_args

    args = build_parser(None).parse_args(["in.mp4", "-o", "out.mp4", "--mask", "template",
                                           "--paste-shape", "ellipse", "--paste-erode", "0.1",
                                           "--paste-blur", "0.03"])
    paste = config_from_args(args).paste
    assert (paste.mask, paste.shape, paste.erode, paste.blur) == ("template", "ellipse", 0.1, 0.03)
    preset = tmp_path / "p.yaml"
    preset.write_text("paste:\n  shape: ellipse\n  erode: 0.08\n")
    args = build_parser(None).parse_args(["in.mp4", "-o", "out.mp4", "--config", str(preset), "--paste-blur", "0.05"])
    paste = config_from_args(args).paste
    assert (paste.shape, paste.erode, paste.blur) == ("ellipse", 0.08, 0.05)
    assert RestoreConfig().fingerprint() != config_from_args(args).fingerprint()


def test_a_vocabulary_and_its_table_must_agree():
    from typing import Literal

    from vidrestore.names import check_covers

    check_covers(Literal["a", "b"], ["b", "a"], "table")
    with pytest.raises(RuntimeError, match=r"missing \['b'\].*not in names \['c'\]"):
        check_covers(Literal["a", "b"], ["a", "c"], "table")
