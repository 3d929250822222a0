"""RRDBNet (Real-ESRGAN x2plus / x4plus): the official state-dict layout, strict loading of a
checkpoint in the official format, and what the network computes."""

from __future__ import annotations

import re

import pytest
import torch
from torch.nn import functional as F

from vidrestore.errors import WeightsMismatchError
from vidrestore.models.checkpoint import load_weights_file
from vidrestore.models.rrdbnet import UPSAMPLERS, RRDBNet, RRDBNetConfig, upsampler_spec
from vidrestore.weights import KNOWN_WEIGHTS

_KEY = re.compile(r"^(conv_first|conv_body|conv_up1|conv_up2|conv_hr|conv_last"
                  r"|body\.(\d+)\.rdb[123]\.conv[1-5])\.(weight|bias)$")


@pytest.mark.parametrize("scale", [2, 4])
def test_full_size_layout_is_the_official_one(scale):
    state = RRDBNet(upsampler_spec(scale).config).state_dict()
    # 23 blocks × 3 dense blocks × 5 convs, plus 6 convs, each a weight and a bias.
    assert len(state) == 2 * (23 * 3 * 5 + 6)
    assert all(_KEY.match(k) for k in state)
    assert {int(m.group(2)) for k in state if (m := _KEY.match(k)).group(2)} == set(range(23))
    assert state["conv_first.weight"].shape == (64, 3 * (4 if scale == 2 else 1), 3, 3)  # x2 unshuffles
    assert state["body.0.rdb1.conv5.weight"].shape == (64, 64 + 4 * 32, 3, 3)
    assert state["conv_last.weight"].shape == (3, 64, 3, 3)
    parameters = sum(t.numel() for t in state.values())
    assert 16.6e6 < parameters < 16.8e6  # the published size of RealESRGAN_x4plus (16.7 M)


def test_weights_table_points_at_the_official_releases():
    for scale, spec in UPSAMPLERS.items():
        entry = KNOWN_WEIGHTS[spec.weights]
        assert entry.url.startswith("https://github.com/xinntao/Real-ESRGAN/releases/download/")
        assert entry.filename == f"RealESRGAN_x{scale}plus.pth" and entry.key == "params_ema"
        assert entry.license.startswith("BSD-3-Clause") and len(entry.sha256) == 64


def test_a_checkpoint_in_the_official_format_loads_strictly(tmp_path):
    config = UPSAMPLERS[2].tiny
    saved = RRDBNet(config)
    path = tmp_path / "RealESRGAN_x2plus.pth"
    torch.save({"params_ema": saved.state_dict()}, path)
    loaded = load_weights_file(RRDBNet(config), path, what="Real-ESRGAN")
    x = torch.rand(1, 3, 16, 20)
    assert torch.equal(loaded(x), saved(x))
    del_one = {k: v for k, v in saved.state_dict().items() if k != "conv_hr.bias"}
    torch.save({"params_ema": del_one}, path)
    with pytest.raises(WeightsMismatchError, match="conv_hr.bias"):
        load_weights_file(RRDBNet(config), path, what="Real-ESRGAN")


def test_x2_folds_pixel_blocks_into_channels_as_basicsr_does():
    # BasicSR's pixel_unshuffle: view (b, c, h/2, 2, w/2, 2), permute (0, 1, 3, 5, 2, 4).
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    reference = x.view(2, 3, 2, 2, 3, 2).permute(0, 1, 3, 5, 2, 4).reshape(2, 12, 2, 3)
    assert torch.equal(F.pixel_unshuffle(x, 2), reference)


@pytest.mark.parametrize("scale", [2, 4])
def test_output_is_scale_times_larger(scale):
    torch.manual_seed(0)
    net = RRDBNet(upsampler_spec(scale).tiny).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 12, 16))
    assert out.shape == (2, 3, 12 * scale, 16 * scale) and torch.isfinite(out).all()


def test_config_is_checked():
    with pytest.raises(ValueError, match="scale"):
        RRDBNetConfig(scale=3)
    with pytest.raises(ValueError, match="×3"):
        upsampler_spec(3)
