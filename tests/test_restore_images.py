"""Still images, folders of images and aligned faces, end to end: the video path's model,
engine and identity options, atomic outputs, one-line errors for bad inputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from checkpoint_kit import tiny_base, tiny_trained
from face_kit import grace_hopper, structure_arcface_onnx

from vidrestore.cli import main
from vidrestore.faces.align import align_face
from vidrestore.io.image import read_image
from vidrestore.models import Recognizer
from vidrestore.models.registry import load_model


@pytest.fixture
def photos(tmp_path):
    """The astronaut (512²) and Grace Hopper (512×600) as PNG files, and a tiny checkpoint."""
    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "astronaut.png"), data.astronaut()[..., ::-1])
    cv2.imwrite(str(folder / "hopper.jpg"), grace_hopper()[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


@pytest.fixture(autouse=True)
def no_machine_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDRESTORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VIDRESTORE_ENGINE_DIR", str(tmp_path / "engines"))


def cli(*args) -> int:
    return main([str(a) for a in args] + ["--quiet", "--offline", "--engine", "torch"])


def changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 0)
    return xs.min(), ys.min(), xs.max(), ys.max()


def test_one_photo_is_restored_on_its_face_and_untouched_elsewhere(photos, tmp_path):
    weights = tiny_base(tmp_path / "cf.pth")
    out = tmp_path / "out.png"
    report = tmp_path / "report.json"
    assert cli(photos / "astronaut.png", "-o", out, "--weights", weights, "--report", report) == 0
    before, after = read_image(photos / "astronaut.png"), read_image(out)
    assert after.shape == before.shape and after.dtype == np.uint8
    x0, y0, x1, y1 = changed_box(before, after)
    assert 120 < x0 < 200 and 0 < y0 < 80 and 260 < x1 < 340 and 160 < y1 < 260, (x0, y0, x1, y1)  # her face
    assert np.array_equal(before[300:], after[300:]) and np.array_equal(before[:, 360:], after[:, 360:])
    faces = json.loads(report.read_text())["images"][0]["faces"]
    assert len(faces) == 1 and faces[0]["skip"] is None
    assert not list(tmp_path.glob(".*partial*"))


def test_a_folder_mirrors_its_images_skips_videos_and_reports_bad_files(photos, tmp_path, media, capsys):
    weights = tiny_base(tmp_path / "cf.pth")
    (photos / "sub").mkdir()
    cv2.imwrite(str(photos / "sub" / "small.png"), cv2.resize(cv2.imread(str(photos / "astronaut.png")), (256, 256)))
    (photos / "clip.mp4").write_bytes(media.plain(frames=4).read_bytes())
    (photos / "broken.png").write_bytes(b"not an image")
    (photos / ".hidden.png").write_bytes(b"skipped")
    out = tmp_path / "restored"
    assert main([str(photos), "-o", str(out), "--weights", str(weights), "--offline", "--engine", "torch"]) == 3
    err = capsys.readouterr().err
    assert "1 of 4 images could not be restored" in err and "broken.png" in err and "Traceback" not in err
    assert "1 video(s)" in err and "vidrestore batch" in err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["astronaut.png", "hopper.jpg", "sub/small.png"]
    assert read_image(out / "hopper.jpg").shape == read_image(photos / "hopper.jpg").shape
    assert cli(photos, "-o", out, "--weights", weights) == 2  # outputs exist: refused before any work
    assert "3 output image(s) exist" in capsys.readouterr().err


def test_aligned_faces_go_through_the_network_whole(photos, tmp_path):
    from skimage import data

    weights = tiny_base(tmp_path / "cf.pth")
    aligned = tmp_path / "aligned"
    aligned.mkdir()
    landmarks = np.array([[194, 232], [262, 228], [232, 270], [203, 304], [257, 301]], np.float32)
    crop, _ = align_face(data.astronaut(), landmarks, 512)
    face = np.clip(np.rint(crop * 255), 0, 255).astype(np.uint8)
    cv2.imwrite(str(aligned / "0001.png"), face[..., ::-1])
    cv2.imwrite(str(aligned / "wide.png"), np.zeros((64, 80, 3), np.uint8))
    out = tmp_path / "out"
    assert cli(aligned, "-o", out, "--weights", weights, "--aligned", "--fidelity", "0.7") == 3  # wide.png
    net, _ = load_model("codeformer", weights)
    x = torch.from_numpy(cv2.resize(face.astype(np.float32) / 255, (64, 64), interpolation=cv2.INTER_AREA))
    with torch.no_grad():
        y = net(x.permute(2, 0, 1)[None] * 2 - 1, 0.7).image[0].permute(1, 2, 0).numpy()
    expected = cv2.resize(np.clip((y + 1) / 2, 0, 1), (512, 512), interpolation=cv2.INTER_CUBIC)
    got = read_image(out / "0001.png").astype(np.float32) / 255
    assert np.abs(got - np.clip(expected, 0, 1)).max() <= 1.5 / 255  # exactly the network's output
    assert not (out / "wide.png").exists()


def test_identity_options_apply_per_face_in_a_photo(tmp_path, photos, monkeypatch):
    import dataclasses

    from skimage import data

    from vidrestore.weights import KNOWN_WEIGHTS, WeightStore

    entry = KNOWN_WEIGHTS["arcface-w600k-r50"]  # a test ArcFace under its name: no published hash
    monkeypatch.setitem(KNOWN_WEIGHTS, "arcface-w600k-r50", dataclasses.replace(entry, sha256=None))
    weights_dir = tmp_path / "w"
    onnx = structure_arcface_onnx(weights_dir / "w600k_r50.onnx")
    digest = WeightStore(weights_dir).sha256(onnx)
    weights = tiny_trained(tmp_path / "idcf.pth", "id-codeformer",
                           recognizer=Recognizer("arcface-w600k-r50", "w600k_r50.onnx", digest))
    people = np.full((300, 600, 3), 120, np.uint8)
    people[20:276, 20:276] = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    people[20:276, 320:540] = cv2.resize(grace_hopper(), (220, 256), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "two.png"), people[..., ::-1])
    report = tmp_path / "r.json"
    config = tmp_path / "identity.yaml"
    config.write_text("faces:\n  identity:\n    reference_threshold: 0.8\n")
    code = cli(tmp_path / "two.png", "-o", tmp_path / "two_out.png", "--model", "id-codeformer",
               "--weights", weights, "--weights-dir", weights_dir, "--config", config,
               "--reference", f"hopper={photos / 'hopper.jpg'}", "--report", report)
    assert code == 0
    faces = sorted(json.loads(report.read_text())["images"][0]["faces"], key=lambda f: f["box"][0])
    assert [f["reference"] for f in faces] == [None, "hopper"]
    assert faces[1]["reference_cosine"] > 0.8 > faces[0]["reference_cosine"]


@pytest.mark.parametrize("args,code,words", [
    (["{photos}/astronaut.png", "-o", "{tmp}/out.mp4"], 2, "the output of an image must be an image"),
    (["{photos}/missing.png", "-o", "{tmp}/out.png"], 3, "not found"),
    (["{photos}/astronaut.png", "-o", "{tmp}/out.png", "--max-frames", "3"], 2, "--max-frames applies to videos"),
    (["{photos}", "-o", "{tmp}/out", "--deinterlace", "bwdif", "--codec", "libx265"], 2,
     "--deinterlace, --codec apply to videos, not images"),
    (["{photos}/astronaut.png", "-o", "{tmp}/out.png", "--temporal", "on"], 2, "--temporal applies to videos"),
    (["{photos}/astronaut.png", "-o", "{tmp}/out.png", "--aligned", "--upscale", "2"], 2, "not --aligned faces"),
    (["{photos}/astronaut.png", "-o", "{tmp}/out.png", "--model", "id-codeformer"], 4, "--allow-untrained"),
])
def test_bad_image_requests_are_one_line(photos, tmp_path, capsys, args, code, words):
    weights = tiny_base(tmp_path / "cf.pth")
    args = [a.format(photos=photos, tmp=tmp_path) for a in args]
    assert cli(*args, "--weights", weights) == code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and words in err[0]
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_upscale_enlarges_the_photo_and_pastes_the_face_at_the_enlarged_geometry(photos, tmp_path):
    """`--upscale 2` on a photo (offline: Real-ESRGAN's weights absent, so Lanczos with a note):
    the output is twice the size; outside the face it is the Lanczos enlargement of the input,
    and the restored face lands where the enlarged face is, at the enlarged photo's resolution."""
    weights = tiny_base(tmp_path / "cf.pth")
    out, plain = tmp_path / "out.png", tmp_path / "plain.png"
    report = tmp_path / "report.json"
    assert cli(photos / "astronaut.png", "-o", out, "--weights", weights, "--upscale", "2", "--report", report) == 0
    assert cli(photos / "astronaut.png", "-o", plain, "--weights", weights) == 0
    before, after, small = read_image(photos / "astronaut.png"), read_image(out), read_image(plain)
    assert after.shape == (1024, 1024, 3) and after.dtype == np.uint8
    enlarged = cv2.resize(before, (1024, 1024), interpolation=cv2.INTER_LANCZOS4)
    x0, y0, x1, y1 = changed_box(enlarged, after)
    assert 240 < x0 < 400 and 0 <= y0 < 160 and 520 < x1 < 680 and 320 < y1 < 520, (x0, y0, x1, y1)  # her face
    sx0, sy0, sx1, sy1 = changed_box(before, small)
    assert abs(x0 - 2 * sx0) <= 4 and abs(x1 - 2 * sx1 - 1) <= 4 and abs(y1 - 2 * sy1 - 1) <= 4
    box = json.loads(report.read_text())["images"][0]["faces"][0]["box"]
    assert 240 < box[0] < 400 and 520 < box[2] < 680  # the report's box is in the enlarged photo
