"""Archival frames through the face stage and the whole road: anamorphic faces aligned in
square pixels, small videos enlarged with faces pasted at the enlarged geometry, Real-ESRGAN
or Lanczos in the background."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch

from face_kit import FixedDetector
from vidrestore.config import from_mapping
from vidrestore.faces.config import FaceConfig, IdentityConfig, SmoothConfig
from vidrestore.imaging import psnr
from vidrestore.io.reader import VideoReader
from vidrestore.models.rrdbnet import UPSAMPLERS, RRDBNet
from vidrestore.pipeline.face_stage import FaceStage
from vidrestore.restore_video import restore_video
from vidrestore.settings import RestoreConfig

SAR = Fraction(32, 27)  # NTSC 16:9: a 384-wide picture stored 324 wide
CONFIG = FaceConfig(min_face=0, face_size=256, smooth=SmoothConfig(method="off"),
                    identity=IdentityConfig(backend="off"), detect_scale=1.0)
"""Detection at the frames' own size: ``FixedDetector``'s boxes are in the view's pixels."""


def grace_hopper_scene(width: int = 384, height: int = 300) -> np.ndarray:
    """matplotlib's Grace Hopper portrait (a real face), 150 px wide, on a grey frame."""
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        photo = cv2.cvtColor(cv2.imdecode(np.frombuffer(fh.read(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    portrait = cv2.resize(photo[20:420, 60:460], (150, 150), interpolation=cv2.INTER_AREA)
    scene = np.full((height, width, 3), 110, np.uint8)
    scene[70:220, 110:260] = portrait
    return scene


def aligned_crop(detector, store, frames, pixel_aspect=1.0):
    stage = FaceStage(CONFIG, store, detector=detector, pixel_aspect=pixel_aspect)
    from face_kit import run_stage

    (job,) = run_stage(stage, frames)
    (face,) = job.faces
    return face, job


def test_an_anamorphic_face_is_aligned_as_the_square_one(detector, empty_store):
    square = grace_hopper_scene()
    stored = cv2.resize(square, (324, 300), interpolation=cv2.INTER_AREA)  # squeezed by 27/32
    reference, _ = aligned_crop(detector, empty_store, [square])
    unsqueezed, job = aligned_crop(detector, empty_store, [stored], pixel_aspect=float(SAR))
    squeezed, _ = aligned_crop(detector, empty_store, [stored])  # pixels taken as square: wrong
    right = psnr(unsqueezed.crop, reference.crop, peak=1.0)
    wrong = psnr(squeezed.crop, reference.crop, peak=1.0)
    # Measured 23.1 against 13.7 dB: the detector's landmarks on the two pictures differ by
    # about half a pixel, which moves a textured 256² crop by about one (the geometry alone:
    # the next test).
    assert right > 21 and right > wrong + 7, (right, wrong)
    # Boxes and landmarks handed on are in the stored frame's pixels: the eyes are where they
    # are in the squeezed picture (the square frame's x shrunk by 27/32).
    scale = np.array([324 / 384, 1.0])
    assert np.abs(unsqueezed.landmarks - reference.landmarks * scale).max() < 3
    # And the crop goes back squeezed: pasting it unchanged restores the stored picture.
    from vidrestore.faces.paste import PasteConfig, paste_faces

    before = job.frame.image.copy()
    unsqueezed.restored = unsqueezed.crop
    paste_faces(job.frame.image, [unsqueezed], config=PasteConfig(mask="template"))
    x0, y0, x1, y1 = (int(v) for v in unsqueezed.box)
    assert psnr(job.frame.image[y0:y1, x0:x1], before[y0:y1, x0:x1]) > 35


def test_the_square_pixel_geometry_is_exact(detector, empty_store):
    square = grace_hopper_scene()
    stored = cv2.resize(square, (324, 300), interpolation=cv2.INTER_AREA)
    reference, _ = aligned_crop(detector, empty_store, [square])
    from vidrestore.faces.face import Face

    found = Face(reference.box.copy(), reference.landmarks.copy(), 1.0)  # square pixels = the view's
    unsqueezed, _ = aligned_crop(FixedDetector([found]), empty_store, [stored], pixel_aspect=float(SAR))
    # What is left is the squeeze's own loss of horizontal detail: measured 35.3 dB.
    assert psnr(unsqueezed.crop, reference.crop, peak=1.0) > 33


def passthrough(**data) -> RestoreConfig:
    base = {"model": "passthrough", "download": False, "encode": {"codec": "ffv1"},
            "faces": {"min_face": 0, "identity": {"backend": "off"}, "detect_scale": 2.0,
                      # the demo singer's 20 px face is below what dlib's CNN can confirm
                      # (docs/benchmarks.md, detectors); this tests the geometry, not that
                      "verify": {"method": "off"}}}
    for key, value in data.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return from_mapping(RestoreConfig, base)


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    """8 frames of the iscc demo with a singer's face (176×144, real, small), lossless."""
    from face_kit import demo_frames
    from testkit.media import write_video

    path = tmp_path_factory.mktemp("small") / "demo8.mkv"
    return write_video(path, demo_frames(1164, 8), fps=24, codec="ffv1", pix_fmt="yuv444p")


class Negative:
    """A restorer that turns every face into its colour negative (so where it lands shows)."""

    name, uses_identity, face_size = "negative", False, 512

    def restore(self, faces, identities, fidelity):
        return 1.0 - faces


def test_upscale_pastes_faces_at_the_enlarged_geometry(small_clip, tmp_path):
    out = tmp_path / "x2.mkv"
    report = tmp_path / "faces.json"
    summary = restore_video(small_clip, out, passthrough(upscale={"factor": 2, "upsampler": "lanczos"}),
                            report_path=report, restorer=Negative())
    assert summary.faces >= 8
    before = [f.image for f in VideoReader(small_clip).frames()]
    after = [f.image for f in VideoReader(out).frames()]
    assert after[0].shape == (288, 352, 3)
    import json

    boxes = [t["mean_box"] for t in json.loads(report.read_text())["tracks"]]
    for a, b in zip(before, after):
        enlarged = cv2.resize(a, (352, 288), interpolation=cv2.INTER_LANCZOS4)
        for x0, y0, x1, y1 in boxes:  # source pixels: the face's middle, in the enlarged frame
            cx, cy, r = x0 + x1, y0 + y1, (x1 - x0) / 2
            region = np.s_[int(cy - r):int(cy + r), int(cx - r):int(cx + r)]
            # The negative face covers the enlarged face (pasted at the source's geometry it
            # would sit at half the coordinates, leaving the enlarged face there as it was).
            assert psnr(b[region], 255 - enlarged[region]) > 25
            assert psnr(b[region], enlarged[region]) < 12


def save_random_realesrgan(path, scale=2) -> None:
    """A full-size Real-ESRGAN RRDBNet with random weights, in the official file format."""
    torch.manual_seed(0)
    torch.save({"params_ema": RRDBNet(UPSAMPLERS[scale].config).state_dict()}, path)


def test_realesrgan_background_runs_tiled_through_an_engine(media, tmp_path):
    weights = tmp_path / "RealESRGAN_x2plus.pth"
    save_random_realesrgan(weights)
    src = media.plain(frames=2)
    notes: list[str] = []
    out = tmp_path / "x2.mkv"
    restore_video(src, out, passthrough(upscale={"factor": 2, "weights": str(weights), "tile": 40, "tile_pad": 8},
                                        engine="torch"), log=notes.append)
    assert any("realesrgan-x2plus/torch-fp32@cpu ×2, tiles 32×40 (pad 8)" in n for n in notes), notes  # 2×2 windows
    frames = list(VideoReader(out).frames())
    assert len(frames) == 2 and frames[0].image.shape == (96, 128, 3)


def test_offline_without_realesrgan_weights_falls_back_to_lanczos_and_says_so(media, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDRESTORE_CACHE_DIR", str(tmp_path / "empty-cache"))
    notes: list[str] = []
    restore_video(media.plain(frames=2), tmp_path / "x4.mkv", passthrough(upscale={"factor": 4}), log=notes.append)
    (note,) = [n for n in notes if n.startswith("upscale:")]
    assert "RealESRGAN_x4plus.pth is not present and downloads are off" in note and "lanczos" in note
    assert next(VideoReader(tmp_path / "x4.mkv").frames()).image.shape == (192, 256, 3)


def test_none_is_a_plain_resize(media, tmp_path):
    src = media.pix_fmt("yuv444p")  # lossless, full chroma: only the resize differs
    restore_video(src, tmp_path / "x2.mkv", passthrough(upscale={"factor": 2, "upsampler": "none"}))
    a = next(VideoReader(src).frames()).image
    b = next(VideoReader(tmp_path / "x2.mkv").frames()).image
    cubic = psnr(b, cv2.resize(a, (128, 96), interpolation=cv2.INTER_CUBIC))
    lanczos = psnr(b, cv2.resize(a, (128, 96), interpolation=cv2.INTER_LANCZOS4))
    assert cubic > 40 and cubic > lanczos + 1, (cubic, lanczos)  # YUV rounding of saturated colours aside


def test_an_interlaced_source_kept_interlaced_is_not_upscaled(tmp_path):
    from testkit.media import woven_frames, write_interlaced
    from vidrestore.errors import UsageError

    src = write_interlaced(tmp_path / "i.mp4", woven_frames(4))
    with pytest.raises(UsageError, match="across its fields"):
        restore_video(src, tmp_path / "o.mkv", passthrough(upscale={"factor": 2, "upsampler": "lanczos"},
                                                           decode={"deinterlace": "off"}))
    assert not (tmp_path / "o.mkv").exists()


def test_faces_are_found_on_deinterlaced_frames(tmp_path):
    from testkit.combing import combing_ratio
    from testkit.media import face_scene, woven_frames, write_interlaced

    src = write_interlaced(tmp_path / "i.mp4", woven_frames(10))
    out = tmp_path / "o.mkv"
    summary = restore_video(src, out, passthrough(), log=lambda line: None)
    assert summary.faces == 10  # one face on every frame
    done = [f.image for f in VideoReader(out).frames()]
    assert combing_ratio(done[2:-2], [face_scene(2 * i) for i in range(2, 8)]) < 1.5


def test_settings_hash_is_unchanged_by_default_archival_settings():
    base = RestoreConfig()
    assert base.fingerprint() == dataclasses.replace(base).fingerprint()
    upscaled = from_mapping(RestoreConfig, {"upscale": {"factor": 2}})
    assert upscaled.fingerprint() != base.fingerprint()
