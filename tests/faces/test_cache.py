"""The face cache: a re-run reads faces instead of detecting; only complete runs are kept."""

from __future__ import annotations

import dataclasses
import os

import av
import numpy as np
import pytest

from testkit.media import write_video
from vidrestore.faces.cache import FaceCache, fingerprint
from vidrestore.faces.config import FaceConfig, IdentityConfig, SmoothConfig
from vidrestore.pipeline.face_stage import FaceStage

CONFIG = FaceConfig(min_face=0, detect_scale=1.0, face_size=64, smooth=SmoothConfig(sigma=1.0),
                    identity=IdentityConfig(backend="off"))


@pytest.fixture
def clip(tmp_path, kit):
    """A small real-face video file and its decoded frames."""
    frames = kit.astronaut_clip(14)
    frames[5] = kit.background_clip(1)[0]  # a frame without the face
    path = write_video(tmp_path / "clip.mp4", frames, options={"crf": "10"})
    with av.open(str(path)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return path, decoded


def _faces(jobs):
    return [[(f.track_id, f.box.copy(), f.landmarks.copy(), None if f.affine is None else f.affine.copy())
             for f in job.faces] for job in jobs]


def _same(a, b):
    assert len(a) == len(b)
    for fa, fb in zip(a, b):
        assert len(fa) == len(fb)
        for (ta, ba, la, aa), (tb, bb, lb, ab) in zip(fa, fb):
            assert ta == tb
            np.testing.assert_array_equal(ba, bb)
            np.testing.assert_array_equal(la, lb)
            np.testing.assert_array_equal(aa, ab)


def test_second_run_reads_the_cache_and_gives_identical_faces(clip, tmp_path, kit, detector, empty_store):
    path, frames = clip
    cache = FaceCache(path, tmp_path / "cache")
    first = FaceStage(CONFIG, empty_store, detector=detector, cache=cache)
    out1 = kit.run_stage(first, frames, chunk=4)
    first.close()
    assert first.cache_state == "written" and detector.calls > 0
    assert len(list((tmp_path / "cache").iterdir())) == 1  # one entry, no temporaries left

    again = type(detector)(detector.real, {})  # a fresh counter with an empty memory
    second = FaceStage(CONFIG, empty_store, detector=again, cache=FaceCache(path, tmp_path / "cache"))
    out2 = kit.run_stage(second, frames, chunk=3)
    second.close()
    assert second.cache_hit and again.calls == 0
    _same(_faces(out1), _faces(out2))
    assert [len(j.faces) for j in out2][5] == 0
    assert all(f.crop is not None and f.crop.shape == (64, 64, 3) for j in out2 for f in j.faces)
    r1, r2 = first.report(), second.report()
    assert r2["face_cache"] == "hit" and r1["face_counts"] == r2["face_counts"]
    assert r1["tracks"] == r2["tracks"]


def test_smoothing_settings_do_not_invalidate_the_cache(clip, tmp_path, kit, detector, empty_store):
    path, frames = clip
    stage = FaceStage(CONFIG, empty_store, detector=detector, cache=FaceCache(path, tmp_path))
    kit.run_stage(stage, frames)
    stage.close()
    other = dataclasses.replace(CONFIG, smooth=SmoothConfig(method="one-euro"), face_size=96)
    assert FaceStage(other, empty_store, detector=detector, cache=FaceCache(path, tmp_path)).cache_hit
    changed = dataclasses.replace(CONFIG, score_threshold=0.95)
    assert not FaceStage(changed, empty_store, detector=detector, cache=FaceCache(path, tmp_path)).cache_hit


def test_an_interrupted_run_leaves_no_cache(clip, tmp_path, kit, detector, empty_store):
    path, frames = clip
    stage = FaceStage(CONFIG, empty_store, detector=detector, cache=FaceCache(path, tmp_path / "c"))
    for job in kit.make_jobs(frames)[:9]:
        stage.process([job])
    stage.close()  # no flush: the stream did not end
    assert stage.cache_state == "dropped"
    assert not (tmp_path / "c").exists()  # not even the empty folder stays behind
    again = FaceStage(CONFIG, empty_store, detector=detector, cache=FaceCache(path, tmp_path / "c"))
    assert not again.cache_hit
    del again  # dropped without close(): its unfinished entry goes with it

    failed = FaceStage(CONFIG, empty_store, detector=detector, cache=FaceCache(path, tmp_path / "c"))
    kit.run_stage(failed, frames)
    failed.close(success=False)  # a later stage failed: nothing is kept either
    assert not (tmp_path / "c").exists()


def test_a_changed_video_misses(clip, tmp_path, kit, detector, empty_store):
    path, frames = clip
    stage = FaceStage(CONFIG, empty_store, detector=detector, cache=FaceCache(path, tmp_path))
    kit.run_stage(stage, frames)
    stage.close()
    before = fingerprint(path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert fingerprint(path) != before
    assert not FaceStage(CONFIG, empty_store, detector=detector, cache=FaceCache(path, tmp_path)).cache_hit


def test_identity_vectors_are_cached_per_track(clip, tmp_path, kit, detector, onnx_store):
    path, frames = clip
    store = onnx_store
    config = dataclasses.replace(CONFIG, identity=IdentityConfig(backend="arcface-onnx", every=3))
    first = FaceStage(config, store, detector=detector, identity_needed=True, cache=FaceCache(path, tmp_path))
    out1 = kit.run_stage(first, frames)
    first.close()
    final = {f.track_id: f.identity for f in out1[-1].faces}

    second = FaceStage(config, store, detector=detector, identity_needed=True,
                       cache=FaceCache(path, tmp_path))
    calls = []
    embed = second.encoder.embed
    second.encoder.embed = lambda *a: calls.append(a) or embed(*a)
    out2 = kit.run_stage(second, frames)
    assert second.cache_hit and calls == []
    for job in out2:
        for f in job.faces:
            np.testing.assert_allclose(f.identity, final[f.track_id], atol=1e-6)
