"""The face report: tracks, per-frame counts, settings; written atomically."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidrestore.config import from_mapping
from vidrestore.errors import OutputError
from vidrestore.faces.config import FaceConfig, IdentityConfig, SmoothConfig
from vidrestore.faces.face import Face
from vidrestore.faces.report import FaceReport
from vidrestore.io.atomic import write_json_atomic
from vidrestore.pipeline.face_stage import FaceStage


def test_report_of_a_run_with_two_faces_and_a_gap(kit, detector, empty_store):
    frames = kit.two_face_clip(12)
    frames[6] = frames[6].copy()
    frames[6][90:150, :] = frames[0][90:150, 250:].mean()  # the small face vanishes for a frame
    config = FaceConfig(min_face=30, detect_scale=1.0, face_size=64, smooth=SmoothConfig(method="off"),
                        identity=IdentityConfig(backend="off"))
    stage = FaceStage(config, empty_store, detector=detector)
    out = kit.run_stage(stage, frames)
    report = json.loads(json.dumps(stage.report()))  # plain JSON all the way

    assert report["detector"] == "mtcnn" and report["detector_reason"]
    assert from_mapping(FaceConfig, report["settings"]) == config
    assert report["frames"] == 12 and report["first_frame"] == 0
    assert report["face_counts"] == [len(job.faces) for job in out]
    assert report["face_counts"][6] == 1 and report["faces"] == 23
    assert report["scene_cuts"] == []
    tracks = {t["id"]: t for t in report["tracks"]}
    assert len(tracks) == 2
    for tid, t in tracks.items():
        boxes = [f.box for job in out for f in job.faces if f.track_id == tid]
        assert t["frames"] == len(boxes) == t["detected_frames"]
        assert t["first_frame"] == 0 and t["last_frame"] == 11
        np.testing.assert_allclose(t["mean_box"], np.mean(boxes, axis=0), atol=0.01)
        assert 0.9 < t["mean_score"] <= 1.0
        assert t["identity"] is None
    small = min(tracks.values(), key=lambda t: t["mean_box"][2] - t["mean_box"][0])
    assert small["frames"] == 11  # kept its id across the missing frame
    # the small face (MTCNN box ~27 px < 30) is tracked but skipped
    assert small["skipped_frames"] == 11 and report["skipped"] == {"too small": 11}


def test_report_memory_is_per_frame_ints_and_per_track_sums():
    report = FaceReport()
    face = Face(np.float32([0, 0, 10, 10]), np.zeros((5, 2), np.float32), 0.9, track_id=3)
    for i in range(5000):
        report.add_frame(i, [face] if i % 2 else [])
    assert report.counts.itemsize == 2 and len(report.counts) == 5000
    assert list(report.tracks) == [3] and report.tracks[3].frames == 2500
    data = report.to_dict(detector="x")
    assert data["tracks"][0]["first_frame"] == 1 and data["tracks"][0]["last_frame"] == 4999


def test_write_json_atomic_replaces_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "sub" / "report.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2, "b": [1, 2]})
    assert json.loads(path.read_text()) == {"a": 2, "b": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"a": 2, "b": [1, 2]}  # the old report survives
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError):
        write_json_atomic(blocker / "report.json", {})
