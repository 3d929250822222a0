"""RetinaFace through facexlib: loading from the weights folder, output shapes, selection.

Without the real checkpoints (not on any package registry) the network is built with random
weights saved under facexlib's file name, so the loading path runs for real. Accuracy with
the real weights is checked where ``VIDRESTORE_WEIGHTS_DIR`` holds them (marker ``weights``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from vidrestore.errors import ChecksumError, MissingWeightsError, WeightsMismatchError
from vidrestore.faces.detect import build_detector
from vidrestore.faces.detect.base import Detector
from vidrestore.faces.detect.retinaface import RetinaFaceDetector, build_retinaface_net
from vidrestore.weights import KNOWN_WEIGHTS, WeightStore

MOBILE_FILE = "detection_mobilenet0.25_Final.pth"

# Random weights cannot match the published sha256: the tests' table drops the hashes.
UNHASHED = {k: dataclasses.replace(v, sha256=None) for k, v in KNOWN_WEIGHTS.items()}

# Seeded random weights score every anchor in about [0.45, 0.499]: this keeps the top ~1 %
# (many anchors tie there, so only shapes and ranges are checked, not exact counts).
RANDOM_THRESHOLD = 0.4989




@functools.lru_cache(maxsize=1)
def _random_mobile_state() -> dict:
    torch.manual_seed(0)
    return build_retinaface_net("mobile0.25").state_dict()


@pytest.fixture
def store(tmp_path) -> WeightStore:
    folder = tmp_path / "weights"
    folder.mkdir()
    # facexlib's checkpoints were saved from DataParallel: keys carry a "module." prefix.
    torch.save({f"module.{k}": v for k, v in _random_mobile_state().items()}, folder / MOBILE_FILE)
    return WeightStore(folder, tmp_path / "cache", allow_download=False, table=UNHASHED)


def test_auto_picks_retinaface_mobilenet_when_present(store):
    det = build_detector("auto", store, threshold=0.5)
    assert isinstance(det, Detector) and isinstance(det, RetinaFaceDetector)
    assert det.name == "retinaface-mobilenet" and MOBILE_FILE in det.reason
    loaded = det.net.state_dict()
    for key, value in _random_mobile_state().items():  # the file's tensors, not fresh ones
        assert torch.equal(loaded[key], value), key


def _frames() -> list[np.ndarray]:
    coffee = cv2.resize(data.coffee(), (240, 160), interpolation=cv2.INTER_AREA)
    return [data.astronaut()[:192, :256], data.astronaut()[100:292, 50:306], coffee]


def test_random_weights_give_well_formed_faces(store):
    det = build_detector("retinaface-mobilenet", store, threshold=RANDOM_THRESHOLD)
    det.input_min_side = None
    frames = _frames()
    results = det.detect(frames)
    assert len(results) == 3 and all(len(faces) > 0 for faces in results)
    for faces, frame in zip(results, frames):
        h, w = frame.shape[:2]
        scores = [f.score for f in faces]
        assert scores == sorted(scores, reverse=True)
        for f in faces:
            assert f.box.shape == (4,) and f.landmarks.shape == (5, 2) and f.track_id == -1
            assert RANDOM_THRESHOLD < f.score <= 1.0 and np.isfinite(f.box).all()
            assert f.box[2] > f.box[0] and f.box[3] > f.box[1]
            # Anchors lie in the frame; random regressions stay within a few box sizes.
            cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
            assert -w < cx < 2 * w and -h < cy < 2 * h


def test_frames_are_resized_as_bgr_and_boxes_mapped_back(store, monkeypatch):
    det = build_detector("retinaface-mobilenet", store)
    calls = []

    def fake_batched_detect_faces(frames, conf_threshold, nms_threshold):
        calls.append(frames.cpu().numpy())
        box = np.array([[64.0, 32.0, 128.0, 96.0, 0.9]], np.float32)
        marks = np.array([[70, 40, 110, 40, 90, 60, 75, 80, 105, 80]], np.float32)
        return [box] * len(frames), [marks] * len(frames)

    monkeypatch.setattr(det.net, "batched_detect_faces", fake_batched_detect_faces)
    image = np.zeros((120, 200, 3), np.uint8)
    image[..., 0] = 200  # red
    det.input_min_side = 240  # ×2
    faces = det.detect([image, np.zeros((60, 80, 3), np.uint8), image])
    assert len(calls) == 2  # one batch per frame size
    frames = calls[0]
    assert frames.shape == (2, 240, 400, 3) and frames.dtype == np.float32
    assert calls[1].shape == (1, 240, 320, 3)
    assert frames[0, 10, 10].tolist() == [0.0, 0.0, 200.0]  # BGR for facexlib
    for per_frame in (faces[0], faces[2]):
        (face,) = per_frame
        np.testing.assert_allclose(face.box, [32, 16, 64, 48])
        np.testing.assert_allclose(face.landmarks[0], [35, 20])
        np.testing.assert_allclose(face.landmarks[4], [52.5, 40])
        assert face.score == pytest.approx(0.9)
    np.testing.assert_allclose(faces[1][0].box, np.array([64, 32, 128, 96]) / 4)  # ×4 there


def test_explicit_retinaface_without_weights_raises(tmp_path):
    store = WeightStore(tmp_path / "w", tmp_path / "c", allow_download=False)
    with pytest.raises(MissingWeightsError, match="detection_Resnet50_Final.pth"):
        build_detector("retinaface", store)
    with pytest.raises(MissingWeightsError):
        build_detector("retinaface-mobilenet", store)


def test_wrong_checkpoint_is_a_weights_error(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    torch.save({"conv.weight": torch.zeros(1)}, folder / MOBILE_FILE)
    store = WeightStore(folder, tmp_path / "c", allow_download=False, table=UNHASHED)
    with pytest.raises(WeightsMismatchError, match="RetinaFace"):
        build_detector("auto", store)
    # With the published hashes, a file that is not the official one is refused before loading.
    with pytest.raises(ChecksumError):
        build_detector("auto", WeightStore(folder, tmp_path / "c", allow_download=False))


# -- real weights --------------------------------------------------------------------------

def _real_weights(name: str) -> Path:
    folder = os.environ.get("VIDRESTORE_WEIGHTS_DIR")
    path = Path(folder) / name if folder else None
    if path is None or not path.is_file():
        pytest.skip(f"{name} not in VIDRESTORE_WEIGHTS_DIR ({folder or 'unset'})")
    return path


@pytest.mark.weights
@pytest.mark.parametrize("file,network", [("detection_Resnet50_Final.pth", "resnet50"),
                                          (MOBILE_FILE, "mobile0.25")])
def test_real_retinaface_finds_the_astronaut(file, network):
    det = RetinaFaceDetector(_real_weights(file), network)
    faces = det.detect([data.astronaut(), data.coffee()])
    assert len(faces[0]) == 1 and faces[1] == []
    left_eye, right_eye = faces[0][0].landmarks[:2]
    assert 195 < left_eye[0] < 215 and 90 < left_eye[1] < 110
    assert 237 < right_eye[0] < 257 and 93 < right_eye[1] < 113
