"""Tracking: ids through motion, gaps, scene cuts, several faces, frames between detections."""

from __future__ import annotations

import numpy as np
import pytest

from vidrestore.faces.config import FaceConfig, SmoothConfig, TrackConfig
from vidrestore.faces.face import Face
from vidrestore.faces.motion import propagate_face, to_gray8
from vidrestore.faces.scene_cut import SceneCutDetector
from vidrestore.faces.track import FaceTracker, box_iou
from vidrestore.pipeline.face_stage import FaceStage

NO_SMOOTH = SmoothConfig(method="off")


def _face(cx: float, cy: float, size: float = 40.0, score: float = 0.99) -> Face:
    """A synthetic detection: box around (cx, cy), landmarks placed like a frontal face."""
    s = size
    box = np.float32([cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2])
    lm = np.float32([[-0.2, -0.1], [0.2, -0.1], [0.0, 0.05], [-0.15, 0.2], [0.15, 0.2]]) * s + [cx, cy]
    return Face(box=box, landmarks=lm, score=score)


def _blank(h=120, w=160):
    return np.zeros((h, w, 3), np.uint8)


# -- the tracker on its own (synthetic detections) -------------------------------------


def test_two_crossing_faces_keep_their_ids():
    """Two faces moving towards each other and past: constant-velocity prediction and the
    optimal assignment keep each on its own track (given in shuffled order)."""
    tracker = FaceTracker(TrackConfig())
    ids_a, ids_b = [], []
    for i in range(20):
        a, b = _face(20 + 6 * i, 60), _face(140 - 6 * i, 66)
        dets = [b, a] if i % 2 else [a, b]
        tracker.update(i, _blank(), dets)
        ids_a.append(a.track_id)
        ids_b.append(b.track_id)
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1
    assert ids_a[0] != ids_b[0]


def test_gap_within_max_gap_keeps_id_longer_gap_starts_a_new_track():
    tracker = FaceTracker(TrackConfig(max_gap=5))
    seen = []
    for i in range(30):
        missing = 5 <= i < 10 or 15 <= i < 22  # 5 frames (kept), then 7 frames (> max_gap)
        dets = [] if missing else [_face(40 + i, 60)]
        faces = tracker.update(i, _blank(), dets)
        seen.append(faces[0].track_id if faces else None)
    assert seen[4] == seen[10] == seen[14]
    assert seen[22] != seen[14] and seen[22] is not None
    assert all(s is None for s in seen[5:10] + seen[15:22])


def test_scene_cut_ends_every_track():
    tracker = FaceTracker(TrackConfig())
    first = tracker.update(0, _blank(), [_face(50, 60)])[0].track_id
    same = tracker.update(1, _blank(), [_face(51, 60)])[0].track_id
    after_cut = tracker.update(2, _blank(), [_face(51, 60)], cut=True)[0].track_id
    assert first == same != after_cut


def test_far_detection_starts_a_new_track():
    tracker = FaceTracker(TrackConfig())
    a = tracker.update(0, _blank(), [_face(30, 60)])[0].track_id
    b = tracker.update(1, _blank(), [_face(130, 60)])[0].track_id
    assert a != b


def test_identity_breaks_a_geometric_tie():
    """Two overlapping faces, then a frame with only one: the detection goes to the track
    whose identity matches, not to the one a pixel closer."""
    tracker = FaceTracker(TrackConfig(), identity_threshold=0.5, identity_margin=0.2)
    ids = [f.track_id for f in tracker.update(0, _blank(), [_face(68, 60), _face(74, 60)])]
    id_a, id_b = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    tracker.set_identity(ids[0], id_a)
    tracker.set_identity(ids[1], id_b)
    det = _face(70, 60)  # geometrically the left face's
    calls = []

    def embed(face):
        calls.append(face)
        return id_b

    tracker.update(2, _blank(), [det], embed=embed)
    assert calls, "identity was not consulted for an ambiguous match after a gap"
    assert det.track_id == ids[1]


def test_box_iou():
    assert box_iou(np.array([0, 0, 10, 10]), np.array([0, 0, 10, 10])) == 1.0
    assert box_iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10])) == pytest.approx(1 / 3)
    assert box_iou(np.array([0, 0, 10, 10]), np.array([20, 20, 30, 30])) == 0.0


# -- optical flow and scene cuts on real pictures --------------------------------------


def test_flow_carries_the_astronaut_by_a_known_shift(kit):
    frames = kit.astronaut_clip(2, path=((0.4, 0.5), (0.4, 0.5)))
    a = frames[0]
    b = np.roll(a, (3, 5), axis=(0, 1))  # 5 px right, 3 px down
    lm = np.float32([[82, 62], [106, 62], [94, 75], [85, 87], [103, 87]])
    box = np.float32([72, 45, 116, 100])
    moved = propagate_face(to_gray8(a), to_gray8(b), lm, box)
    assert moved is not None
    np.testing.assert_allclose(moved[0], lm + [5, 3], atol=0.3)
    np.testing.assert_allclose(moved[1], box + [5, 3, 5, 3], atol=0.3)


def test_flow_on_a_large_frame_looks_only_near_the_face_and_keeps_frame_coordinates(kit, monkeypatch):
    """A small face far from the origin of a 1280×720 frame: Lucas–Kanade runs on a crop
    around it (not the whole frame), and the carried face comes back in frame coordinates."""
    import cv2

    from vidrestore.faces import motion

    rng = np.random.default_rng(3)
    canvas = cv2.GaussianBlur(rng.normal(110, 20, (720, 1280, 3)).clip(0, 255).astype(np.uint8), (0, 0), 2)
    canvas[400:544, 900:1092] = kit.astronaut_clip(1, path=((0.4, 0.5),))[0]
    b = np.roll(canvas, (3, 5), axis=(0, 1))
    lm = np.float32([[82, 62], [106, 62], [94, 75], [85, 87], [103, 87]]) + [900, 400]
    box = np.float32([72, 45, 116, 100]) + [900, 400, 900, 400]
    seen = []
    real = cv2.calcOpticalFlowPyrLK
    monkeypatch.setattr(motion.cv2, "calcOpticalFlowPyrLK", lambda a, *rest, **kw: seen.append(a.shape) or real(a, *rest, **kw))
    moved = propagate_face(to_gray8(canvas), to_gray8(b), lm, box)
    assert moved is not None
    np.testing.assert_allclose(moved[0], lm + [5, 3], atol=0.3)
    np.testing.assert_allclose(moved[1], box + [5, 3, 5, 3], atol=0.3)
    assert len(seen) == 2 and all(h * w < 0.25 * 720 * 1280 for h, w in seen)


def test_flow_loses_a_face_that_vanishes(kit):
    frames = kit.astronaut_clip(1, path=((0.5, 0.5),))
    lm = np.float32([[86, 62], [110, 62], [98, 75], [89, 87], [107, 87]])
    box = np.float32([76, 45, 120, 100])
    flat = np.full_like(frames[0], 110)
    assert propagate_face(to_gray8(frames[0]), to_gray8(flat), lm, box) is None


def test_scene_cut_detector_flags_only_the_cut(kit):
    clip = kit.astronaut_clip(6) + kit.demo_frames(1164, 6)
    clip = [c if c.shape == clip[0].shape else np.ascontiguousarray(
        np.pad(c, ((0, 0), (8, 8), (0, 0)), mode="edge")) for c in clip]
    cuts = SceneCutDetector(TrackConfig().scene_cut)
    flags = [cuts(f) for f in clip]
    assert flags == [False] * 6 + [True] + [False] * 5


def test_demo_video_cuts_are_found(kit):
    """The demo video has a camera cut at frame 1188 (distance 0.52) and none in 1164–1187."""
    frames = kit.demo_frames(1164, 30)
    cuts = SceneCutDetector(TrackConfig().scene_cut)
    flagged = [1164 + i for i, f in enumerate(frames) if cuts(f)]
    assert flagged == [1188]


def test_scene_cuts_on_hd_frames_mask_faces_where_they_are(kit):
    """1280×720 frames (judged on a halved-and-halved copy): a large face that appears over the
    same shot is masked out by its box and is no cut; the demo video's camera cut, scaled up,
    still is one, with the same distance as judged at its own size."""
    import cv2

    rng = np.random.default_rng(5)
    shot = cv2.GaussianBlur(rng.normal(120, 25, (720, 1280, 3)).clip(0, 255).astype(np.uint8), (0, 0), 4)
    with_face = shot.copy()
    with_face[150:650, 700:1200] = cv2.resize(kit.astronaut_clip(1, path=((0.4, 0.5),))[0][20:140, 40:160], (500, 500))
    cuts = SceneCutDetector(TrackConfig().scene_cut)
    assert cuts(shot) is False
    assert cuts(with_face, [np.array([700, 150, 1200, 650])]) is False and cuts.distance < 0.1
    assert cuts(shot, [np.array([700, 150, 1200, 650])]) is False

    before, after = kit.demo_frames(1187, 2)
    small = SceneCutDetector(TrackConfig().scene_cut)
    small(before)
    assert small(after)
    large = SceneCutDetector(TrackConfig().scene_cut)
    large(cv2.resize(before, (1280, 720), interpolation=cv2.INTER_CUBIC))
    assert large(cv2.resize(after, (1280, 720), interpolation=cv2.INTER_CUBIC))
    assert abs(large.distance - small.distance) < 0.05


# -- the face stage on real faces ------------------------------------------------------


def _stage(detector, store, **kw):
    kw.setdefault("smooth", NO_SMOOTH)
    kw.setdefault("identity", FaceConfig().identity.__class__(backend="off"))
    kw.setdefault("detect_scale", 1.0)  # the clips are small: auto would upscale them
    return FaceStage(FaceConfig(min_face=0, **kw), store, detector=detector)


def test_one_stable_track_through_motion(kit, detector, empty_store):
    out = kit.run_stage(_stage(detector, empty_store), kit.astronaut_clip(20))
    ids = kit.track_ids(out)
    assert all(len(i) == 1 for i in ids), ids
    assert len({i[0] for i in ids}) == 1
    xs = [job.faces[0].box[0] for job in out]
    assert xs[-1] - xs[0] > 60  # it really moved


def test_missed_detections_keep_the_track(kit, detector, empty_store):
    frames = kit.astronaut_clip(20)
    gapped = kit.blank_face(frames, range(8, 12), kit.background_clip(20))
    out = kit.run_stage(_stage(detector, empty_store), gapped)
    ids = kit.track_ids(out)
    assert all(ids[i] == [] for i in range(8, 12)), ids
    assert ids[7] == ids[12] == ids[19] and len(ids[7]) == 1


@pytest.mark.parametrize("detect_every", [1, 4])
def test_scene_cut_starts_new_tracks(kit, detector, empty_store, detect_every):
    """A cut at frame 6 (not a scheduled detection frame when K = 4: it is detected anyway)."""
    a = kit.astronaut_clip(6, path=((0.5, 0.5), (0.55, 0.5)))
    b = kit.astronaut_clip(8, path=((0.55, 0.5), (0.6, 0.5)), seed=5)  # same face, new "shot"
    b = [np.ascontiguousarray(f[:, :, ::-1]) for f in b]  # another colour balance: a cut
    stage = _stage(detector, empty_store, detect_every=detect_every)
    out = kit.run_stage(stage, a + b)
    ids = kit.track_ids(out)
    assert all(len(i) == 1 for i in ids), ids
    assert len({i[0] for i in ids[:6]}) == 1 and len({i[0] for i in ids[6:]}) == 1
    assert ids[5] != ids[6]
    assert stage.report()["scene_cuts"] == [6]


def test_two_faces_two_stable_tracks(kit, detector, empty_store):
    out = kit.run_stage(_stage(detector, empty_store), kit.two_face_clip(14))
    ids = kit.track_ids(out)
    assert all(len(i) == 2 for i in ids), ids
    assert len({tuple(i) for i in ids}) == 1
    # the track that starts on the left stays on the left-moving-right face
    first = {f.track_id: f.box[0] for f in out[0].faces}
    last = {f.track_id: f.box[0] for f in out[-1].faces}
    right_mover = min(first, key=first.get)
    assert last[right_mover] > first[right_mover] + 25


def test_detect_every_k_gives_faces_on_every_frame(kit, detector, empty_store):
    frames = kit.astronaut_clip(19)
    every = kit.run_stage(_stage(detector, empty_store), frames)
    stage = _stage(detector, empty_store, detect_every=3)
    sparse = kit.run_stage(stage, frames)
    assert detector.images == 19 + 7  # every frame once, then frames 0, 3, ..., 18
    assert all(len(job.faces) == 1 for job in sparse)
    assert len({job.faces[0].track_id for job in sparse}) == 1
    for a, b in zip(every, sparse):
        err = np.abs(a.faces[0].landmarks - b.faces[0].landmarks).max()
        assert err < 3.0, (a.index, err)  # flow-carried faces follow the real face
    report = stage.report()
    assert report["tracks"][0]["detected_frames"] == 7 and report["tracks"][0]["frames"] == 19


def test_real_video_faces_found_and_tracked(kit, detector, empty_store):
    """The singer of the iscc demo video (faces ~20 px, 2× upscaled for detection)."""
    frames = kit.demo_frames(1164, 24)
    stage = _stage(detector, empty_store, detect_scale=2.0)
    out = kit.run_stage(stage, frames)
    counts = [len(job.faces) for job in out]
    assert sum(c > 0 for c in counts) >= 16, counts
    tracks = stage.report()["tracks"]
    longest = max(tracks, key=lambda t: t["frames"])
    assert longest["frames"] >= 16  # one track through the detector's misses
    assert 10 < (longest["mean_box"][2] - longest["mean_box"][0]) < 40
