"""``python -m training evaluate`` and the metrics on inputs with known answers."""

from __future__ import annotations

import json
import math
import shutil

import cv2
import numpy as np
import pytest
from vidrestore.training.cli import main
from vidrestore.training.evaluate import evaluate_folders
from vidrestore.training.metrics import PSNR_CAP, psnr, ssim

from vidrestore.weights import WeightStore


@pytest.fixture
def folders(smoke_root, tmp_path):
    """``gt/``: two aligned astronaut faces (256²); ``same/``: copies under the same names with
    another extension; ``shifted/``: the faces 10 grey levels brighter."""
    gt, same, shifted = tmp_path / "gt", tmp_path / "same", tmp_path / "shifted"
    for folder in (gt, same, shifted):
        folder.mkdir()
    for i, path in enumerate(sorted((smoke_root / "faces").glob("real_astronaut_*.png"))[:2]):
        image = cv2.resize(cv2.imread(str(path)), (256, 256), interpolation=cv2.INTER_AREA)
        image = np.clip(image, 10, 245)
        cv2.imwrite(str(gt / f"face{i}.png"), image)
        cv2.imwrite(str(same / f"face{i}.bmp"), image)  # matched by name, any extension
        cv2.imwrite(str(shifted / f"face{i}.png"), image + 10)
    return gt, same, shifted


def test_metric_values_on_known_inputs():
    a = np.random.default_rng(0).integers(0, 246, (32, 32, 3), dtype=np.uint8)
    assert psnr(a, a) == PSNR_CAP and ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a + 10) == pytest.approx(10 * math.log10(255**2 / 100))
    assert ssim(a, 255 - a) < 0


def test_identical_folders_score_perfectly(folders, tmp_path):
    gt, same, _ = folders
    store = WeightStore(tmp_path / "none", tmp_path / "cache", allow_download=False)
    result = evaluate_folders(same, gt, store, detector="mtcnn")
    assert result.count == 2 and result.names == ["face0", "face1"]
    assert result.means["psnr"] == PSNR_CAP and result.means["ssim"] == pytest.approx(1.0)
    assert result.means["lmd"] == pytest.approx(0.0, abs=1e-4) and result.lmd_missed == 0
    for name, filename in (("lpips", "alexnet-owt-7be5be79.pth"), ("ids", "recognition_arcface_ir_se50.pth")):
        assert name not in result.means and filename in result.unavailable[name]  # reported, not faked
        assert "https://" in result.unavailable[name]


def test_shifted_faces_with_an_lpips_trunk(folders, tmp_path, alexnet_trunk_store):
    gt, _, shifted = folders
    store = alexnet_trunk_store(tmp_path / "w")
    result = evaluate_folders(shifted, gt, store, detector="mtcnn")
    assert result.means["psnr"] == pytest.approx(10 * math.log10(255**2 / 100))
    assert 0.5 < result.means["ssim"] < 1.0 and result.means["lpips"] > 0
    assert result.means["lmd"] < 3.0  # the same face, brighter: landmarks barely move
    same = evaluate_folders(gt, gt, store, detector="mtcnn")
    assert same.means["lpips"] == pytest.approx(0.0, abs=1e-6)


def test_cli_prints_and_writes_json(folders, tmp_path, capsys):
    gt, same, _ = folders
    out = tmp_path / "m.json"
    code = main(["evaluate", "--restored", str(same), "--gt", str(gt), "--weights-dir", str(tmp_path / "none"),
                 "--detector", "mtcnn", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "psnr" in text and "lpips  unavailable" in text
    data = json.loads(out.read_text())
    assert data["count"] == 2 and set(data["unavailable"]) == {"lpips", "ids"} and len(data["per_image"]["psnr"]) == 2


def test_a_missing_restored_face_is_an_input_error(folders, capsys):
    gt, same, _ = folders
    (same / "face1.bmp").unlink()
    assert main(["evaluate", "--restored", str(same), "--gt", str(gt)]) == 3
    assert "face1" in capsys.readouterr().err


def test_prepare_aligns_raw_photos_like_the_runtime(tmp_path, capsys):
    import skimage.data

    from vidrestore.faces.align import align_face
    from vidrestore.faces.detect import build_detector

    raw = tmp_path / "raw" / "person_a"
    raw.mkdir(parents=True)
    photo = skimage.data.astronaut()
    cv2.imwrite(str(raw / "astronaut.jpg"), photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])
    cv2.imwrite(str(raw / "sky.png"), np.full((64, 64, 3), 200, np.uint8))
    code = main(["prepare", "--input", str(tmp_path / "raw"), "--output", str(tmp_path / "faces"),
                 "--detector", "mtcnn", "--size", "128", "--weights-dir", str(tmp_path / "none")])
    assert code == 0 and "1 faces written, 1 without a face" in capsys.readouterr().out
    written = cv2.imread(str(tmp_path / "faces" / "person_a" / "astronaut.png"))[..., ::-1]
    source = cv2.imread(str(raw / "astronaut.jpg"))[..., ::-1].copy()
    face = build_detector("mtcnn", WeightStore(allow_download=False)).detect([source])[0][0]
    expected, _ = align_face(source, face.landmarks, 128)
    assert written.shape == (128, 128, 3)
    assert np.abs(written.astype(int) - np.rint(expected * 255).astype(int)).max() <= 1
    shutil.rmtree(tmp_path / "raw")


def test_prepare_builds_the_identity_layout_from_celeba_labels_leaving_out_test_people(tmp_path, capsys):
    import skimage.data
    from matplotlib import cbook

    raw = tmp_path / "img_align_celeba"
    raw.mkdir()
    astronaut = skimage.data.astronaut()[..., ::-1]
    hopper = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    for name, image in (("000001.jpg", astronaut), ("000002.jpg", cv2.flip(astronaut, 1)),
                        ("000003.jpg", hopper), ("000004.jpg", cv2.flip(hopper, 1)),
                        ("000005.jpg", cv2.resize(astronaut, (400, 400))), ("000006.jpg", hopper)):
        cv2.imwrite(str(raw / name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    labels = tmp_path / "identity_CelebA.txt"
    labels.write_text("000001.jpg 10\n000002.jpg 10\n000003.jpg 20\n000004.jpg 20\n000005.jpg 30\n")
    test_list = tmp_path / "test.txt"
    test_list.write_text("000003.jpg\n")  # a test image: its person (20) is left out entirely
    out = tmp_path / "persons"
    code = main(["prepare", "--input", str(raw), "--output", str(out), "--identities", str(labels),
                 "--exclude", str(test_list), "--detector", "mtcnn", "--size", "64",
                 "--weights-dir", str(tmp_path / "none")])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["10/000001.png", "10/000002.png"]
    assert "1 identities kept, 2 images of test identities left out, 1 without a label" in line
    assert "1 identities with one image dropped" in line  # person 30 has one photo: no reference
    from vidrestore.training.data.datasets import identity_paths

    paths, persons, names = identity_paths(out)
    assert names == ["10"] and persons == [0, 0]
    assert main(["prepare", "--input", str(raw), "--output", str(out), "--exclude", str(test_list)]) == 2
