"""The whole road on a real excerpt of the concert video: a T-shirt print that MTCNN takes
for a face (score 0.97, 26 px) is restored without verification and left untouched with it,
counted in the report as rejected."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from testkit.labels import read_labels
from testkit.media import write_video
from testkit.real_faces import SourceUnavailable, demo_frames
from vidrestore.config import from_mapping
from vidrestore.restore_video import restore_video
from vidrestore.settings import RestoreConfig

START, COUNT = 888, 14


class InvertingRestorer:
    """A "restoration" that changes every pixel it is given (1 − x)."""

    name, uses_identity, face_size = "invert", False, 128

    def restore(self, faces, identities, fidelity):
        return 1.0 - faces


@pytest.fixture(scope="module")
def excerpt(tmp_path_factory):
    try:
        frames = demo_frames(range(START, START + COUNT))
    except SourceUnavailable as exc:
        pytest.skip(str(exc))
    path = tmp_path_factory.mktemp("excerpt") / "concert.mkv"
    write_video(path, (frames[i] for i in range(START, START + COUNT)), codec="ffv1", pix_fmt="yuv444p")
    return path


def _frames(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _run(src, out, verify):
    config = from_mapping(RestoreConfig, {
        "model": "passthrough", "download": False, "face_cache": False, "encode": {"codec": "ffv1"},
        "faces": {"identity": {"backend": "off"}, "verify": {"method": verify}}})
    restore_video(src, out, config, restorer=InvertingRestorer(), report_path=out.with_suffix(".json"))
    return _frames(out), json.loads(out.with_suffix(".json").read_text())


@pytest.mark.slow
def test_a_shirt_print_is_restored_without_verification_and_untouched_with_it(excerpt, tmp_path):
    shirts = [r for r in read_labels() if r.source == "iscc-demo" and START <= r.frame < START + COUNT
              and r.label == "not" and "T-shirt" in r.note]
    assert shirts
    before = _frames(excerpt)

    def shirt_changed(after):
        out = []
        for r in shirts:
            x1, y1, x2, y2 = (int(round(v)) for v in r.box)
            i = r.frame - START
            out.append(bool((before[i][y1:y2, x1:x2] != after[i][y1:y2, x1:x2]).any()))
        return out

    unverified, report_off = _run(excerpt, tmp_path / "off.mkv", "off")
    assert any(shirt_changed(unverified)) and report_off["rejected"] == {}
    verified, report = _run(excerpt, tmp_path / "auto.mkv", "auto")
    assert not any(shirt_changed(verified))
    assert report["verifier"] == "dlib-cnn" and report["rejected"]["no face in the region (dlib-cnn)"] >= 10  # measured 12
    shirt_track = max(report["tracks"], key=lambda t: t["rejected_frames"])
    assert shirt_track["rejected_because"] == "no face in the region (dlib-cnn)"
    assert shirt_track["mean_box"][1] > 80  # below the man's face, on his chest
    assert all(np.array_equal(a, b) for a, b in zip(before, verified))  # nothing else was a face here


def test_the_summary_line_says_why_faces_were_left_untouched():
    from vidrestore.restore_video import RunSummary

    report = {"skipped": {"too small": 194}, "rejected": {"no face in the region (dlib-cnn)": 25}}
    line = RunSummary(frames=1441, faces=0, seconds=2.0, report=report).line()
    assert line.startswith("1441 frames, 0 faces restored in 2.0 s")
    assert line.endswith("left untouched: 194 too small, 25 rejected (no face in the region (dlib-cnn))")
    assert "untouched" not in RunSummary(frames=3, faces=3, seconds=1.0, report={"skipped": {}}).line()
