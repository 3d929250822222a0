"""The face stage on real footage: the group photo seen by a panning and a zooming camera, and
the iscc concert video, with the default settings (detect scale auto, verification)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from testkit.labels import boxes_match, camera_truth, read_labels
from testkit.real_faces import CAMERA_FRAMES, SourceUnavailable, camera_frames, demo_frames
from vidrestore.faces.config import FaceConfig, IdentityConfig, VerifyConfig
from vidrestore.pipeline.face_stage import FaceStage


@pytest.fixture(scope="module")
def rows():
    return read_labels()


STEP = 2
"""Every other camera frame: the camera moves twice as fast (26 px a frame across the pan),
half the frames to run."""


def _frames(source):
    try:
        return camera_frames(source, range(0, CAMERA_FRAMES, STEP))
    except SourceUnavailable as exc:
        pytest.skip(str(exc))


def _people_and_tracks(kit, rows, source, stage):
    """Run ``stage`` over the camera move; per person (t1 label id) the track ids given to it,
    per track the people it was given to, the frames each person was visible and missed."""
    jobs = kit.run_stage(stage, _frames(source), chunk=4)
    tracks_of, people_of = defaultdict(set), defaultdict(set)
    visible, missed, wrong = defaultdict(int), defaultdict(list), []
    for job in jobs:
        frame = job.index * STEP
        truth = camera_truth(rows, source, frame, min_visible=0.6)
        seen = set()
        for face in job.faces:
            who = [pid for pid, box in truth.items() if boxes_match(face.box, box)] or \
                  [pid for pid, box in camera_truth(rows, source, frame, 0.15).items()
                   if boxes_match(face.box, box)]
            if not who:
                wrong.append((frame, face.box, face.skip))
                continue
            (pid,) = who
            seen.add(pid)
            tracks_of[pid].add(face.track_id)
            people_of[face.track_id].add(pid)
            assert face.skip is None, (frame, pid, face.skip, face.rejected)
        for pid in truth:
            visible[pid] += 1
            if pid not in seen:
                missed[pid].append(frame)
    return tracks_of, people_of, visible, missed, wrong


@pytest.mark.slow
@pytest.mark.parametrize("source", ["t1-pan", "t1-zoom"])
def test_each_person_keeps_one_track_while_visible(kit, detector, empty_store, rows, source):
    """Six real people; the camera pans across them (faces enter and leave at the edges) or
    zooms in (faces grow 3×, the outer ones leave): each person is found in every frame where
    most of the face is in view, keeps one track id all along, and no track jumps between
    people; nothing else is taken for a face."""
    config = FaceConfig(identity=IdentityConfig(backend="off"), face_size=64)
    stage = FaceStage(config, empty_store, detector=detector)
    tracks_of, people_of, visible, missed, wrong = _people_and_tracks(kit, rows, source, stage)
    assert len(visible) >= 4
    for pid, frames in visible.items():
        assert len(missed[pid]) <= max(1, frames // 20), (pid, missed[pid])
        assert len(tracks_of[pid]) == 1, (pid, tracks_of[pid])
    assert all(len(p) == 1 for p in people_of.values()), dict(people_of)
    assert not wrong, wrong


def _demo(start, count):
    try:
        frames = demo_frames(range(start, start + count))
    except SourceUnavailable as exc:
        pytest.skip(str(exc))
    return [frames[i] for i in range(start, start + count)]


def test_small_video_faces_are_found_without_flags(kit, detector, empty_store, rows):
    """The concert video is 176×144: at its own size MTCNN misses its 10-20 px faces; the
    default ``--detect-scale auto`` upscales it and finds them."""
    start = 870
    frames = _demo(start, 19)
    labelled = [r for r in rows if r.source == "iscc-demo" and r.label == "face" and start <= r.frame < start + 19]
    assert len(labelled) >= 4

    def found(config):
        jobs = kit.run_stage(FaceStage(config, empty_store, detector=detector), frames, chunk=8)
        return {r.id for r in labelled if any(boxes_match(f.box, r.box) for f in jobs[r.frame - start].faces)}

    settings = dict(identity=IdentityConfig(backend="off"), face_size=64, verify=VerifyConfig(method="off"))
    auto, native = found(FaceConfig(**settings)), found(FaceConfig(detect_scale=1.0, **settings))
    assert FaceConfig().detect_scale == "auto" and FaceConfig().scale_for(144, 176) == 3.33
    assert len(auto) >= 3 and len(native) <= 1, (auto, native)
