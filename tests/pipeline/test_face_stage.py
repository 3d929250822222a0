"""FaceStage and PasteStage as pipeline stages: order, hold-back, crops, skips, paste-back."""

from __future__ import annotations

import numpy as np
import pytest

from vidrestore.faces.align import template
from vidrestore.faces.config import FaceConfig, IdentityConfig, SmoothConfig
from vidrestore.pipeline.contracts import check_stage
from vidrestore.pipeline.face_stage import FaceStage
from vidrestore.pipeline.paste_stage import PasteStage

CONFIG = FaceConfig(min_face=0, detect_scale=1.0, face_size=128, batch=4, detect_every=2,
                    smooth=SmoothConfig(sigma=1.5), identity=IdentityConfig(backend="off"))


def test_both_satisfy_the_stage_protocol(detector, empty_store):
    check_stage(FaceStage(CONFIG, empty_store, detector=detector))
    check_stage(PasteStage())


@pytest.mark.parametrize("chunk", [1, 3, 7, 100])
def test_every_job_comes_out_once_in_order_whatever_the_chunking(kit, detector, empty_store, chunk):
    frames = kit.astronaut_clip(17)
    reference = kit.run_stage(FaceStage(CONFIG, empty_store, detector=detector), frames, chunk=17)
    stage = FaceStage(CONFIG, empty_store, detector=detector)
    jobs = kit.make_jobs(frames)
    out, held = [], []
    for start in range(0, len(jobs), chunk):
        out += stage.process(jobs[start : start + chunk])
        held.append(start + len(jobs[start : start + chunk]) - len(out))
    out += stage.flush()
    assert [j.index for j in out] == list(range(17))
    assert all(a is b for a, b in zip(out, jobs))  # the same job objects, each once
    assert max(held) <= CONFIG.smooth.delay + CONFIG.batch * CONFIG.detect_every
    assert stage.flush() == []
    for a, b in zip(out, reference):  # chunking changes nothing
        np.testing.assert_array_equal(a.faces[0].landmarks, b.faces[0].landmarks)
    with pytest.raises(RuntimeError):
        stage.process(jobs[:1])


def test_crops_are_aligned_to_the_ffhq_template(kit, detector, empty_store):
    out = kit.run_stage(FaceStage(CONFIG, empty_store, detector=detector), kit.astronaut_clip(6))
    for job in out:
        (face,) = job.faces
        assert face.skip is None and face.crop.shape == (128, 128, 3) and face.crop.dtype == np.float32
        assert 0.0 <= face.crop.min() and face.crop.max() <= 1.0
        in_crop = face.landmarks @ face.affine[:, :2].T + face.affine[:, 2]
        assert np.abs(in_crop - template(128)).max() < 6  # a similarity fits 5 points closely
        assert face.identity is None


def test_small_faces_are_tracked_but_skipped(kit, detector, empty_store):
    config = FaceConfig(min_face=30, detect_scale=1.0, face_size=64, identity=IdentityConfig(backend="off"))
    out = kit.run_stage(FaceStage(config, empty_store, detector=detector), kit.two_face_clip(4))
    for job in out:
        big, small = sorted(job.faces, key=lambda f: -f.size)
        assert big.skip is None and big.crop is not None
        assert small.skip == "too small" and small.crop is None and small.affine is None
        assert small.track_id >= 0


def test_sixteen_bit_frames(kit, detector, empty_store):
    frames8 = kit.astronaut_clip(5)
    frames16 = [f.astype(np.uint16) * 257 for f in frames8]
    a = kit.run_stage(FaceStage(CONFIG, empty_store, detector=detector), frames8)
    b = kit.run_stage(FaceStage(CONFIG, empty_store, detector=detector), frames16)
    for ja, jb in zip(a, b):
        np.testing.assert_allclose(ja.faces[0].landmarks, jb.faces[0].landmarks, atol=1e-4)
        np.testing.assert_allclose(ja.faces[0].crop, jb.faces[0].crop, atol=1e-3)


def test_summary_and_names(detector, empty_store):
    stage = FaceStage(CONFIG, empty_store, detector=detector)
    assert stage.detector_name == "mtcnn"
    assert "mtcnn" in stage.summary and "every 2" in stage.summary and "gaussian" in stage.summary
    assert stage.name == "faces"


def test_paste_stage_pastes_restored_faces_then_drops_crops(kit, detector, empty_store):
    frames = kit.astronaut_clip(4)
    out = kit.run_stage(FaceStage(CONFIG, empty_store, detector=detector), frames)
    before = [job.frame.image.copy() for job in out]
    for job in out:
        for face in job.faces:
            face.restored = np.zeros_like(face.crop)  # a "restorer" that paints faces black
    paste = PasteStage()
    result = paste.process(out)
    assert result == out and paste.flush() == []
    for job, old in zip(out, before):
        face = job.faces[0]
        assert face.crop is None and face.restored is None
        changed = np.abs(job.frame.image.astype(int) - old).sum(axis=2) > 0
        ys, xs = np.nonzero(changed)
        cx, cy = face.landmarks[:, 0].mean(), face.landmarks[:, 1].mean()
        assert changed.any() and job.frame.image[int(cy), int(cx)].max() < 40  # black at the nose
        x1, y1, x2, y2 = face.box
        w, h = x2 - x1, y2 - y1
        assert xs.min() > x1 - w and xs.max() < x2 + w and ys.min() > y1 - h and ys.max() < y2 + h


def test_paste_stage_overlay_is_drawn_after_paste(kit, detector, empty_store):
    out = kit.run_stage(FaceStage(CONFIG, empty_store, detector=detector), kit.astronaut_clip(12)[:3])
    plain = [job.frame.image.copy() for job in out]
    PasteStage(overlay=True).process(out)  # nothing restored: only the overlay changes pixels
    assert all((job.frame.image != old).any() for job, old in zip(out, plain))
