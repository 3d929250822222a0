"""``vidrestore evaluate`` against independent computations: PSNR / SSIM of known frames, the
warping error of a clip that follows its reference against one that flickers (on the frame
and within the face), LPIPS with a trunk in torchvision's layout, the JSON / CSV / plot, and
one-line exit-3 errors for videos that cannot be compared."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest

from testkit.media import face_clip_frames, write_video
from vidrestore.cli import main
from vidrestore.evaluation import evaluate_videos, plot, write_csv, write_json
from vidrestore.metrics import ssim
from vidrestore.weights import KNOWN_WEIGHTS, WeightStore


def lossless(path, frames, fps: int = 24):
    """Frames written losslessly in RGB (FFV1, bgr0), so the reader gives them back exactly."""
    return write_video(path, frames, fps=fps, codec="ffv1", pix_fmt="bgr0")


@pytest.fixture(scope="module")
def clip_frames():
    """Six frames of the astronaut's face panning slowly over a textured background."""
    return list(face_clip_frames(6, 192, 144, face_size=96, path=((0.45, 0.5), (0.55, 0.5))))


@pytest.fixture
def store(tmp_path):
    return WeightStore(tmp_path / "weights", tmp_path / "cache", allow_download=False)


def test_psnr_and_ssim_of_known_noise(tmp_path, clip_frames, store):
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + np.round(rng.normal(0, 6, f.shape)), 0, 255).astype(np.uint8) for f in clip_frames]
    gt, out = lossless(tmp_path / "gt.mkv", clip_frames), lossless(tmp_path / "out.mkv", noisy)
    result = evaluate_videos(out, gt, store)
    expected = [10 * math.log10(255**2 / np.mean((a.astype(float) - b) ** 2)) for a, b in zip(noisy, clip_frames)]
    assert [row["psnr"] for row in result.frames] == pytest.approx(expected, abs=1e-9)
    assert result.means["psnr"] == pytest.approx(np.mean(expected), abs=1e-9)
    assert result.means["psnr"] == pytest.approx(20 * math.log10(255 / 6), abs=0.3)
    assert result.means["ssim"] == pytest.approx(np.mean([ssim(a, b) for a, b in zip(noisy, clip_frames)]))
    assert result.means["psnr_y"] > result.means["psnr"]  # Y averages the channels' noise
    assert "lpips" in result.unavailable and result.means.get("lpips") is None


def test_warping_error_still_vs_flicker_on_the_frame_and_the_face(tmp_path, clip_frames, store):
    gt = lossless(tmp_path / "gt.mkv", clip_frames)
    follows = evaluate_videos(gt, gt, store, faces=True)
    flicker = []
    for i, frame in enumerate(clip_frames):
        f = frame.astype(np.int16)
        f[40:110, 60:140] += 12 if i % 2 else -12  # the face region brightens and darkens
        flicker.append(np.clip(f, 0, 255).astype(np.uint8))
    flickers = evaluate_videos(lossless(tmp_path / "flicker.mkv", flicker), gt, store, faces=True)
    assert follows.frames[0]["warp_error"] is None and len(follows.frames) == 6
    assert follows.means["warp_error"] < 1e-4 and follows.means["warp_error_faces"] < 1e-4
    assert flickers.means["warp_error_faces"] > 50 * follows.means["warp_error_faces"]
    assert flickers.means["warp_error_faces"] > 2 * flickers.means["warp_error"]  # concentrated in the face
    assert all(row["faces"] == 1 for row in follows.frames)
    assert follows.means["lmd"] == pytest.approx(0.0, abs=1e-6)
    id_key = "ids" if "ids" in follows.means else "ids_dlib"
    assert follows.means[id_key] == pytest.approx(1.0, abs=1e-4)


def test_reports_json_csv_and_plot(tmp_path, clip_frames, store):
    gt = lossless(tmp_path / "gt.mkv", clip_frames)
    result = evaluate_videos(gt, gt, store, faces=True)
    data = json.loads(write_json(result, tmp_path / "e.json").read_text())
    assert {"psnr", "ssim", "lpips", "warp_error", "frames"} <= set(data)
    assert data["psnr"] == 100.0 and data["lpips"] is None and "lpips" in data["unavailable"]
    assert len(data["frames"]) == 6 and data["frames"][1]["warp_error"] is not None
    assert "DIS" in data["details"]["flow"]
    rows = list(csv.DictReader(write_csv(result, tmp_path / "e.csv").open()))
    assert len(rows) == 6 and rows[0]["warp_error"] == "" and float(rows[2]["psnr"]) == 100.0
    assert plot(result, tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


def test_lpips_with_a_trunk_in_torchvision_layout(tmp_path, clip_frames):
    from vidrestore.compat import import_needing_torchvision

    tv = import_needing_torchvision("torchvision")
    import torch

    torch.manual_seed(0)
    folder = tmp_path / "weights"
    folder.mkdir()
    trunk = {f"features.{k}": v for k, v in tv.models.alexnet().features.state_dict().items()}
    torch.save(trunk, folder / KNOWN_WEIGHTS["alexnet"].filename)
    table = {**KNOWN_WEIGHTS, "alexnet": dataclasses.replace(KNOWN_WEIGHTS["alexnet"], sha256=None)}
    store = WeightStore(folder, tmp_path / "cache", allow_download=False, table=table)
    gt = lossless(tmp_path / "gt.mkv", clip_frames[:3])
    other = lossless(tmp_path / "other.mkv", [255 - f for f in clip_frames[:3]])
    same, different = evaluate_videos(gt, gt, store), evaluate_videos(other, gt, store)
    assert same.means["lpips"] == pytest.approx(0.0, abs=1e-6) and different.means["lpips"] > 0.01
    assert "lpips" not in same.unavailable


@pytest.mark.parametrize("case,words", [
    ("size", "is 96×72 but the reference is 192×144"),
    ("length", "has 4 frames but the reference has 6"),
    ("timing", "not frame-aligned"),
])
def test_videos_that_cannot_be_compared_exit_3_with_one_line(tmp_path, clip_frames, capsys, case, words):
    import cv2

    gt = lossless(tmp_path / "gt.mkv", clip_frames)
    if case == "size":
        out = lossless(tmp_path / "out.mkv", [cv2.resize(f, (96, 72)) for f in clip_frames])
    elif case == "length":
        out = lossless(tmp_path / "out.mkv", clip_frames[:4])
    else:
        out = lossless(tmp_path / "out.mkv", clip_frames, fps=12)
    code = main(["evaluate", str(out), "--reference", str(gt), "--offline", "--quiet"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 3 and len(err) == 1 and words in err[0], err
    assert main(["evaluate", str(tmp_path / "missing.mp4"), "--reference", str(gt), "--quiet"]) == 3


def test_max_frames_compares_the_first_frames(tmp_path, clip_frames, store):
    gt = lossless(tmp_path / "gt.mkv", clip_frames)
    short = lossless(tmp_path / "short.mkv", clip_frames[:4])
    assert len(evaluate_videos(short, gt, store, max_frames=3).frames) == 3
