"""The second opinion on detected faces: the verifiers on real labelled boxes, and the per-track
schedule that applies them."""

from __future__ import annotations

import numpy as np
import pytest

from testkit.labels import read_labels
from testkit.real_faces import SourceUnavailable, load_image, load_images
from vidrestore.errors import UsageError
from vidrestore.faces.face import Face
from vidrestore.faces.verify import (
    DlibCNNVerifier,
    FaceVerifier,
    GeometryVerifier,
    TrackVerdicts,
    build_verifier,
    geometry_problem,
)


def _face(box, landmarks=None, track_id=0) -> Face:
    box = np.asarray(box, np.float32)
    if landmarks is None:
        landmarks = np.zeros((5, 2), np.float32)
    return Face(box=box, landmarks=np.asarray(landmarks, np.float32), score=0.99, track_id=track_id)


@pytest.fixture(scope="module")
def labelled():
    return {r.id: r for r in read_labels()}


def _image(row):
    try:
        return load_image(row.source, row.frame)
    except SourceUnavailable as exc:
        pytest.skip(str(exc))


# ids of tests/data/face_labels.csv: faces, then things MTCNN took for faces (sheets from
# tools/label_faces.py sheets)
FACES = (79, 83, 87)  # the astronaut, Grace Hopper, a man of the group photo
NOT_FACES = (81, 95, 40, 46, 90)  # a mission patch, a light bulb, two T-shirt prints, a hand


def test_dlib_cnn_passes_real_faces_and_rejects_what_detectors_mistake(labelled):
    try:  # the concert frames in one decoding pass
        load_images(labelled[i].key for i in FACES + NOT_FACES)
    except SourceUnavailable as exc:
        pytest.skip(str(exc))
    verifier = build_verifier("auto")
    assert isinstance(verifier, FaceVerifier) and isinstance(verifier, DlibCNNVerifier)
    for ids, want_face in ((FACES, True), (NOT_FACES, False)):
        for i in ids:
            row = labelled[i]
            (reason,) = verifier.check(_image(row), [_face(row.box)])
            assert (reason is None) == want_face, (row, reason)
            assert want_face or "dlib-cnn" in reason


def test_a_face_cut_by_the_frame_edge_still_passes(labelled):
    verifier = build_verifier("dlib-cnn")
    edge = [r for r in labelled.values() if r.source == "t1-pan" and r.label == "face" and r.box[0] < 0]
    assert edge  # the pan has faces reaching past the left edge
    row = max(edge, key=lambda r: r.box[2] - r.box[0])
    (reason,) = verifier.check(_image(row), [_face(row.box)])
    assert reason is None, (row, reason)


def test_geometry_knows_a_face_shape():
    box = np.array([0, 0, 100, 100], np.float32)
    face = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], np.float32)
    assert geometry_problem(face, box) is None
    upside_down = face.copy()
    upside_down[3:, 1] = 20  # mouth above the eyes
    assert "mouth" in geometry_problem(upside_down, box)
    crossed = face[[0, 1, 2, 4, 3]]  # mouth corners swapped
    assert "order" in geometry_problem(crossed, box)
    tiny = face * 0.1  # eyes 4 px apart in a 100 px box
    assert "eye distance" in geometry_problem(tiny, box)
    assert GeometryVerifier().check(np.zeros((100, 100, 3), np.uint8), [_face(box, upside_down)])[0]


def test_unknown_and_off():
    assert build_verifier("off") is None
    with pytest.raises(UsageError):
        build_verifier("palmistry")


class CountingVerifier:
    """Passes the faces whose box starts right of ``x``, after ``fail_first`` failures."""

    name = "counting"

    def __init__(self, x: float = 50.0, fail_first: int = 0) -> None:
        self.x, self.fail_first, self.calls = x, fail_first, []

    def check(self, image, faces):
        out = []
        for f in faces:
            self.calls.append(f.track_id)
            ok = f.box[0] > self.x and self.calls.count(f.track_id) > self.fail_first
            out.append(None if ok else "counting says no")
        return out


def test_tracks_are_confirmed_once_and_rechecked_on_schedule():
    judge = CountingVerifier(fail_first=2)
    verdicts = TrackVerdicts(judge, every=3, grow=10.0, min_size=10)
    image = np.zeros((8, 8, 3), np.uint8)
    for index in range(12):
        faces = [_face([60, 0, 80, 20], track_id=1), _face([0, 0, 20, 20], track_id=2),
                 _face([0, 30, 5, 35], track_id=3)]  # track 3 is under min_size
        verdicts.observe(index, image, faces, detected=index % 2 == 0)
    # track 1: checked at 0, 4 (3 frames on, the next detected one), 8 (passes): then never again
    assert judge.calls.count(1) == 3 and verdicts.verdict(1) is None
    assert judge.calls.count(2) == 3 and verdicts.verdict(2) == "counting says no"
    assert 3 not in judge.calls and verdicts.verdict(3) == "not verified yet"
    assert verdicts.checks == 6


def test_a_face_that_grows_is_checked_again_sooner():
    judge = CountingVerifier(fail_first=1)
    verdicts = TrackVerdicts(judge, every=100, grow=1.5)
    image = np.zeros((8, 8, 3), np.uint8)
    verdicts.observe(0, image, [_face([60, 0, 80, 20])], True)
    verdicts.observe(1, image, [_face([60, 0, 85, 25])], True)  # 1.25× bigger: not yet
    verdicts.observe(2, image, [_face([60, 0, 92, 32])], True)  # 1.6×: checked, passes
    assert len(judge.calls) == 2 and verdicts.verdict(0) is None


def test_off_confirms_everything():
    verdicts = TrackVerdicts(None)
    verdicts.observe(0, np.zeros((8, 8, 3), np.uint8), [_face([0, 0, 5, 5])], True)
    assert verdicts.verdict(0) is None and verdicts.verdict(99) is None
