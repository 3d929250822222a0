"""Our MTCNN on real faces (skimage's astronaut) at several sizes and places, and on no face."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from vidrestore.faces.detect import build_detector
from vidrestore.faces.detect.base import Detector
from vidrestore.faces.detect.mtcnn import (
    MTCNNDetector,
    ONet,
    PNet,
    RNet,
    default_weights_dir,
)
from vidrestore.faces.detect.nms import nms
from vidrestore.weights import WeightStore


@functools.lru_cache(maxsize=1)
def detector() -> MTCNNDetector:
    return MTCNNDetector()


@functools.lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    return data.astronaut()


# MTCNN's own last threshold is 0.7; at native size it also fires on the astronaut's suit
# collar (x≈145–174, y≈204–240) with 0.85–0.92 depending on the background, a known false
# positive. The real face scores ≥ 0.999: the tests count detections scoring ≥ 0.95.
CONFIDENT = 0.95


def _confident(faces):
    return [f for f in faces if f.score >= CONFIDENT]


def _one_face(image: np.ndarray):
    faces = _confident(detector().detect([image])[0])
    assert len(faces) == 1, [(f.box, f.score) for f in faces]
    return faces[0]


def _canvas(h: int, w: int, seed: int = 0) -> np.ndarray:
    # Smooth, face-free background (a detector should not fire on it).
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, (4, 4, 3)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def test_weights_load_into_our_modules_by_name():
    folder = default_weights_dir()
    assert folder is not None, "facenet-pytorch's weight files are not installed"
    for net, name in ((PNet(), "pnet"), (RNet(), "rnet"), (ONet(), "onet")):
        state = torch.load(folder / f"{name}.pt", weights_only=True)
        assert set(state) == set(net.state_dict())


def test_finds_the_astronaut_with_correct_landmarks():
    face = _one_face(astronaut())
    assert isinstance(detector(), Detector) and detector().name == "mtcnn"
    assert face.score > 0.99
    assert face.box.dtype == np.float32 and face.box.shape == (4,)
    assert face.landmarks.dtype == np.float32 and face.landmarks.shape == (5, 2)
    x1, y1, x2, y2 = face.box
    assert 165 < x1 < 195 and 45 < y1 < 75 and 255 < x2 < 285 and 160 < y2 < 190
    left_eye, right_eye, nose, mouth_l, mouth_r = face.landmarks
    # Eyes where a person sees them (checked by eye on the image), image-left first.
    assert 195 < left_eye[0] < 215 and 90 < left_eye[1] < 110
    assert 237 < right_eye[0] < 257 and 93 < right_eye[1] < 113
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_l[0] < mouth_r[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    assert all(x1 < x < x2 and y1 < y < y2 for x, y in face.landmarks)


@pytest.mark.parametrize("offset", [(150, 60), (420, 300)])
def test_face_in_a_larger_frame_moves_with_it(offset):
    ox, oy = offset
    frame = _canvas(900, 1000)
    frame[oy : oy + 512, ox : ox + 512] = astronaut()
    ref, face = _one_face(astronaut()), _one_face(frame)
    # MTCNN's boxes move with the pyramid's grid (up to ~8% of the 110 px box here, mostly the
    # top edge); the landmarks, which alignment uses, stay within 2.5 px.
    np.testing.assert_allclose(face.box, ref.box + [ox, oy, ox, oy], atol=11.0)
    np.testing.assert_allclose(face.landmarks, ref.landmarks + [ox, oy], atol=2.5)


@pytest.mark.parametrize("scale", [0.45, 1.7])
def test_face_scaled_scales_its_box_and_landmarks(scale):
    image = cv2.resize(astronaut(), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
                       if scale < 1 else cv2.INTER_CUBIC)
    ref, face = _one_face(astronaut()), _one_face(image)
    ref_side = ref.box[2] - ref.box[0]
    tol = 0.06 * ref_side * scale
    np.testing.assert_allclose(face.box, ref.box * scale, atol=tol)
    np.testing.assert_allclose(face.landmarks, ref.landmarks * scale, atol=tol)


def test_flipped_face_keeps_image_left_first():
    ref, face = _one_face(astronaut()), _one_face(np.ascontiguousarray(astronaut()[:, ::-1]))
    w = astronaut().shape[1]
    mirrored = np.stack([w - 1 - ref.landmarks[:, 0], ref.landmarks[:, 1]], 1)[[1, 0, 2, 4, 3]]
    np.testing.assert_allclose(face.landmarks, mirrored, atol=3.0)
    # Pixel-centre convention: no systematic horizontal shift between a face and its mirror
    # (0.8 px here; 1.8 px if landmarks were left in pixel-edge coordinates).
    assert abs(np.mean(face.landmarks[:, 0] - mirrored[:, 0])) < 1.3
    assert face.landmarks[0, 0] < face.landmarks[1, 0]


def test_no_face_no_detection():
    noise = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    results = detector().detect([data.coffee(), noise, _canvas(300, 400)])
    assert results == [[], [], []]


def test_batch_equals_frame_by_frame():
    frames = []
    for k, (ox, oy) in enumerate([(0, 0), (80, 40), (150, 10)]):
        frame = _canvas(600, 700, seed=k)
        frame[oy : oy + 512, ox : ox + 512] = astronaut()
        frames.append(frame)
    frames.append(_canvas(600, 700, seed=9))  # a frame with no face inside the batch
    frames.append(astronaut())  # and one of another size
    batched = detector().detect(frames)
    single = [detector().detect([f])[0] for f in frames]
    assert [len(_confident(r)) for r in batched] == [1, 1, 1, 0, 1]
    for b, s in zip(batched, single):
        assert len(b) == len(s)
        for fb, fs in zip(b, s):
            np.testing.assert_allclose(fb.box, fs.box, atol=1e-3)
            np.testing.assert_allclose(fb.landmarks, fs.landmarks, atol=1e-3)
            assert fb.score == pytest.approx(fs.score, abs=1e-5)


def test_uint16_frames_detect_like_uint8():
    face8 = _one_face(astronaut())
    face16 = _one_face(astronaut().astype(np.uint16) * 257)
    np.testing.assert_allclose(face16.box, face8.box, atol=0.05)


def test_threshold_and_min_size_are_applied():
    strict = MTCNNDetector(threshold=0.99999)
    assert strict.detect([astronaut()]) == [[]]
    assert all(f.score > 0.95 for f in MTCNNDetector(threshold=0.95).detect([astronaut()])[0])
    # A ~26 px face: found when searching from 20 px, not from 100 px (min_size bounds the
    # pyramid; the box regression lets faces somewhat under min_size through).
    small = cv2.resize(astronaut(), None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    assert len(_confident(MTCNNDetector(min_size=20).detect([small])[0])) == 1
    assert MTCNNDetector(min_size=100).detect([small]) == [[]]
    with pytest.raises(ValueError):
        detector().detect([np.zeros((10, 10), np.uint8)])


def test_build_detector_auto_falls_back_to_mtcnn_and_says_why(tmp_path):
    store = WeightStore(tmp_path / "weights", tmp_path / "cache", allow_download=False)
    det = build_detector("auto", store)
    assert det.name == "mtcnn"
    assert "RetinaFace weights not found" in det.reason and str(tmp_path / "weights") in det.reason
    assert build_detector("mtcnn", store, threshold=0.9).threshold == 0.9


def test_nms_union_and_min():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # IoU(0, 1) = 81 / 119 = 0.68; box 3 lies inside box 0 (IoU 0.16, min-overlap 1.0).
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.7).tolist() == [3, 0, 1, 2]
    # "min": boxes 0 and 1 both contain box 3, so both go.
    assert nms(boxes, scores, 0.7, "min").tolist() == [3, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_small_real_faces_in_a_real_video():
    # iscc-samples' demo.mp4 (176×144, CC-BY-4.0): a band filmed in a dim studio. Frame 720
    # shows the drummer's face (~17 px wide), frame 1104 a guitarist's (~14 px).
    av = pytest.importorskip("av")
    pytest.importorskip("iscc_samples")
    import importlib.resources

    path = importlib.resources.files("iscc_samples") / "files" / "video" / "demo.mp4"
    wanted, frames = {720, 1104}, {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames[i] = frame.to_ndarray(format="rgb24")
            if len(frames) == len(wanted):
                break
    drummer, guitarist = detector().detect([frames[720], frames[1104]])
    for faces, (cx, cy), score in ((drummer, (86, 56), 0.95), (guitarist, (139, 57), 0.8)):
        assert len(faces) == 1 and faces[0].score > score
        x1, y1, x2, y2 = faces[0].box
        assert x1 < cx < x2 and y1 < cy < y2 and 10 < x2 - x1 < 30
        eyes = faces[0].landmarks[:2]
        assert eyes[0, 0] < eyes[1, 0] and np.all(np.abs(eyes.mean(0) - (cx, cy)) < 6)
