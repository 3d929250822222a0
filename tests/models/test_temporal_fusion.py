"""The split at the code choice and the temporal fusion of a track's codes.

``decode_codes(*predict_codes(x), w)`` must be ``forward(x, w)`` exactly, and fusing a window
must keep what the window's frames agree on, shrink where a frame changed, and change
nothing for a window of one frame.
"""

from __future__ import annotations

import pytest
import torch

from vidrestore.errors import ConfigError
from vidrestore.models.temporal import TemporalConfig, fuse_window, relative_change, window_weights


@pytest.mark.parametrize("name", ["codeformer", "id-codeformer"])
@pytest.mark.parametrize("w", [0.0, 0.7])
def test_predict_then_decode_is_forward(tiny, faces64, name, w):
    net = tiny(name)
    cond = {"identity": torch.nn.functional.normalize(torch.randn(2, 512), dim=1)} if name == "id-codeformer" else {}
    with torch.no_grad():
        expected = net(faces64, *cond.values(), w=w)
        pred = net.predict_codes(faces64, **cond)
        got = net.decode_codes(pred.logits, pred.lq_feat, pred.skips, w, **cond)
    assert torch.equal(pred.logits, expected.logits) and torch.equal(pred.lq_feat, expected.lq_feat)
    assert torch.equal(got, expected.image)
    assert set(pred.skips) == set(net.config.connect_list)


def _window(seed: int = 0, frames: int = 5, positions: int = 16, codes: int = 8, channels: int = 6):
    gen = torch.Generator().manual_seed(seed)
    side = int(positions ** 0.5)
    latent = torch.randn(channels, side, side, generator=gen)
    latents = latent + 0.05 * torch.randn(frames, channels, side, side, generator=gen)   # noise only
    base = torch.randn(positions, codes, generator=gen)
    logits = base + 0.8 * torch.randn(frames, positions, codes, generator=gen)    # noisy scores
    return logits, latents, base


def test_a_window_of_one_frame_changes_nothing():
    logits, latents, _ = _window()
    fused, latent = fuse_window(logits[:1], latents[:1], [0], TemporalConfig())
    assert torch.equal(fused, logits[0]) and torch.equal(latent, latents[0])


def test_fused_codes_follow_what_the_frames_agree_on():
    logits, latents, base = _window(positions=256)
    offsets = [-2, -1, 0, 1, 2]
    fused, _ = fuse_window(logits, latents, offsets, TemporalConfig(window=5))
    truth = base.argmax(-1)
    alone = (logits[2].argmax(-1) == truth).float().mean()
    together = (fused.argmax(-1) == truth).float().mean()
    assert together > alone + 0.15, (alone, together)


def test_the_window_shrinks_where_a_frame_changed():
    logits, latents, _ = _window()
    changed = latents.clone()
    changed[3, :, 0, :] += 3.0          # frame +1 changed in the first latent row (4 positions)
    weights = window_weights(changed, [-2, -1, 0, 1, 2], TemporalConfig(window=5))
    assert torch.all(weights[2] == 1.0)                                   # the centre
    assert weights[3, :4].max() < 0.05 and weights[3, 4:].min() > 0.5     # +1: gated where it changed
    assert weights[4, :4].max() < 0.05                                    # +2: beyond the change, gated too
    assert weights[1, :4].min() > 0.5                                     # the other side is not


def test_relative_change_is_scale_free():
    a = torch.randn(6, 4, 4)
    b = a + 0.1 * torch.randn(6, 4, 4)
    torch.testing.assert_close(relative_change(a, b), relative_change(10 * a, 10 * b))


def test_statistics_are_fused_only_when_asked():
    logits, latents, _ = _window()
    latents[1] = latents[1] * 1.5 + 0.3  # a neighbour with other statistics, same pattern
    offsets = [-2, -1, 0, 1, 2]
    _, with_stats = fuse_window(logits, latents, offsets, TemporalConfig(window=5))
    _, without = fuse_window(logits, latents, offsets, TemporalConfig(window=5, statistics=False))
    assert torch.equal(without, latents[2])
    assert not torch.allclose(with_stats, latents[2])
    corr = torch.corrcoef(torch.stack([with_stats.flatten(), latents[2].flatten()]))[0, 1]
    assert corr > 0.999  # the centre's own pattern, re-standardised


@pytest.mark.parametrize("kwargs", [{"window": 4}, {"window": 0}, {"mode": "sometimes"}, {"gate": 0}])
def test_bad_temporal_settings_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        TemporalConfig(**kwargs)


def test_off_and_window_one_mean_no_fusion():
    assert TemporalConfig(mode="off").radius == 0 and not TemporalConfig(window=1).enabled
    assert TemporalConfig(window=7).radius == 3
