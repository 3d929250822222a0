"""BlazeFace (MediaPipe's back-camera model, via LiteRT) on real package-shipped faces: the
astronaut, the group photo t1.jpg, and small dim faces of the concert video that MTCNN
misses; its anchors and its 5 derived landmarks."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from testkit.labels import boxes_match, by_image, read_labels
from testkit.real_faces import SourceUnavailable, load_image
from vidrestore.faces.align import estimate_affine, template
from vidrestore.faces.detect import build_detector
from vidrestore.faces.detect.base import Detector
from vidrestore.faces.detect.batching import auto_scale, detect_frames, score_floor
from vidrestore.faces.detect.blazeface import MODELS, BlazeFaceDetector, five_from_six, ssd_anchors
from vidrestore.weights import WeightStore


@functools.lru_cache(maxsize=1)
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector()


def image(source: str, frame: int = 0) -> np.ndarray:
    try:
        return load_image(source, frame)
    except SourceUnavailable as exc:
        pytest.skip(str(exc))


def faces_of(source: str, frame: int = 0):
    """BlazeFace's faces at its own score floor and ``--detect-scale auto``, as the stage runs it."""
    im = image(source, frame)
    return detect_frames(blazeface(), [im], scale=auto_scale(*im.shape[:2]), score_threshold=None)[0]


def labelled(source: str, frame: int = 0, label: str = "face"):
    return [r for r in by_image(read_labels()).get((source, frame), []) if r.label == label]


def test_built_by_name_and_satisfies_the_protocol():
    det = build_detector("blazeface", WeightStore(allow_download=False))
    assert isinstance(det, Detector) and det.name == "blazeface" and det.reason == "requested"
    assert score_floor(det) == 0.65 and score_floor(det, 0.8) == 0.8


def test_anchor_layout_matches_the_networks_outputs():
    # MediaPipe's SSD options: 16² cells × 2 + 8² cells × 6 = 896 (back), 48² × 1 (full range)
    assert ssd_anchors(MODELS["back"]).shape == (896, 2)
    assert ssd_anchors(MODELS["full"]).shape == (2304, 2)
    a = ssd_anchors(MODELS["back"])
    assert np.allclose(a[0], [0.5 / 16, 0.5 / 16]) and np.allclose(a[511], [15.5 / 16, 15.5 / 16])
    assert np.allclose(a[512], [0.5 / 8, 0.5 / 8])


def test_mouth_corners_straddle_the_mouth_centre_along_the_eye_line():
    six = np.array([[100, 100], [140, 110], [120, 130], [118, 150], [80, 120], [160, 130]], float)
    five = five_from_six(six)
    assert np.allclose(five[:3], six[:3])
    assert np.allclose((five[3] + five[4]) / 2, six[3], atol=1e-4)
    eye, mouth = six[1] - six[0], five[4] - five[3]
    assert np.isclose(eye[0] * mouth[1] - eye[1] * mouth[0], 0, atol=1e-3)  # parallel to the eye line
    assert np.isclose(np.linalg.norm(mouth) / np.linalg.norm(eye), 0.888, atol=1e-3)


def test_astronaut_face_found_and_aligned_as_mtcnn_aligns_it(_mtcnn_and_memo):
    faces = faces_of("astronaut")
    (truth,) = labelled("astronaut")
    assert len(faces) == 1 and boxes_match(faces[0].box, truth.box) and faces[0].score >= 0.8
    mtcnn, _ = _mtcnn_and_memo
    (ref,) = [f for f in mtcnn.detect([image("astronaut")])[0] if f.score > 0.95]
    # MTCNN's eyes and nose, taken through BlazeFace's alignment, land on the template's
    a = estimate_affine(faces[0].landmarks)
    mapped = ref.landmarks[:3].astype(np.float64) @ a[:, :2].T + a[:, 2]
    eye_distance = template()[1, 0] - template()[0, 0]
    assert np.abs(mapped - template()[:3]).max() < 0.12 * eye_distance


def test_every_face_of_the_group_photo_and_nothing_else():
    faces = faces_of("t1")
    truth = labelled("t1")
    assert len(truth) == 6 and len(faces) == 6
    assert all(any(boxes_match(f.box, t.box) for f in faces) for t in truth)


@pytest.mark.parametrize("frame", [1128, 1188, 1272])
def test_small_dim_concert_faces_that_mtcnn_misses(frame):
    # 23–30 px faces of the singer under teal and red stage light (176×144 video); the
    # default offline detector (MTCNN, any scale) finds none of the concert's faces ≥ 20 px.
    faces = faces_of("iscc-demo", frame)
    truth = [r for r in labelled("iscc-demo", frame) if r.size >= 20]
    assert truth and all(any(boxes_match(f.box, t.box) for f in faces) for t in truth)
    nots = labelled("iscc-demo", frame, "not")
    assert not any(boxes_match(f.box, n.box) for f in faces for n in nots)


def test_a_large_frame_is_searched_in_windows_without_doubling_faces():
    import cv2

    big = cv2.resize(image("t1"), None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR)  # 1920×1329
    faces = blazeface().detect([big])[0]
    truth = [np.asarray(t.box) * 1.5 for t in labelled("t1")]
    assert len(faces) == 6 and all(any(boxes_match(f.box, t) for f in faces) for t in truth)
