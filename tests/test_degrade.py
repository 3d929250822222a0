"""``vidrestore degrade``: deterministic for a seed, parameters coherent along the clip, the
input's size, timestamps and audio kept, and really degraded."""

from __future__ import annotations

import numpy as np
import pytest

from vidrestore.cli import main
from vidrestore.degradation import PRESETS, ClipDegradation
from vidrestore.degrade_video import degrade_video
from vidrestore.io.probe import probe
from vidrestore.io.reader import VideoReader
from vidrestore.metrics import psnr_rgb


def frames_of(path):
    return [(f.pts, f.image) for f in VideoReader(path).frames()]


@pytest.mark.parametrize("preset", ["vfhq", "codeformer"])
def test_same_seed_same_video_other_seed_other_video(media, tmp_path, preset):
    source = media.plain(12, (96, 64))
    a = degrade_video(source, tmp_path / "a.mp4", preset=preset, seed=5)
    degrade_video(source, tmp_path / "b.mp4", preset=preset, seed=5)
    degrade_video(source, tmp_path / "c.mp4", preset=preset, seed=6)
    fa, fb, fc = frames_of(tmp_path / "a.mp4"), frames_of(tmp_path / "b.mp4"), frames_of(tmp_path / "c.mp4")
    assert a.frames == 12 and len(fa) == 12
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(fa, fb))
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(fa, fc))
    clean = frames_of(source)
    assert [p for p, _ in fa] == [p for p, _ in clean]            # the input's timestamps
    assert fa[0][1].shape == clean[0][1].shape                     # and its size
    assert 12 < np.mean([psnr_rgb(x[1], y[1]) for x, y in zip(fa, clean)]) < 32  # really degraded


def test_output_keeps_the_audio_and_the_frame_rate(media, tmp_path):
    source = media.plain(12, (96, 64))
    degrade_video(source, tmp_path / "lq.mp4", preset="vfhq", seed=1)
    info, src = probe(tmp_path / "lq.mp4"), probe(source)
    assert info.fps == src.fps and {s.type for s in info.streams} == {"video", "audio"}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_parameters_drift_slowly_within_their_ranges(preset):
    clip = ClipDegradation(preset, seed=3)
    p = PRESETS[preset]
    times = np.arange(0, 20, 1 / 25)
    params = [clip.params(t) for t in times]
    sigma = np.array([q.sigma[0] for q in params])
    noise = np.array([q.noise_sigma for q in params])
    assert p.blur_sigma[0] <= sigma.min() and sigma.max() <= p.blur_sigma[1]
    assert p.noise[0] <= noise.min() and noise.max() <= p.noise[1]
    span = p.blur_sigma[1] - p.blur_sigma[0]
    assert np.abs(np.diff(sigma)).max() < 0.01 * span            # no jumps from frame to frame
    assert sigma.max() - sigma.min() <= 2 * p.drift * span + 1e-9  # a drift, not a new draw
    assert len({q.crf for q in params}) == 1                        # one codec setting per clip
    assert clip.params(7.3) == ClipDegradation(preset, seed=3).params(7.3)


def test_bad_requests_are_one_line(media, tmp_path, capsys):
    source = media.plain(6, (96, 64))
    assert main(["degrade", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "x.mp4")]) == 3
    (tmp_path / "exists.mp4").write_bytes(b"x")
    assert main(["degrade", str(source), "-o", str(tmp_path / "exists.mp4")]) == 2
    assert main(["degrade", str(source), "-o", str(tmp_path / "y.mp4"), "--preset", "nope"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 3 and all("Traceback" not in line for line in err)
    assert not (tmp_path / "y.mp4").exists() and (tmp_path / "exists.mp4").read_bytes() == b"x"
