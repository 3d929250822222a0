"""Identity: encoders load from the weights folder, embed real faces consistently, aggregate
per track online, and condition faces (track vectors or a reference photo)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidrestore.errors import InputError, MissingWeightsError, UsageError
from vidrestore.faces.align import ARCFACE_TEMPLATE_112, align_arcface
from vidrestore.faces.config import FaceConfig, IdentityConfig, SmoothConfig
from vidrestore.faces.face import Face
from vidrestore.faces.identity import (
    ArcFaceOnnxEncoder,
    DlibEncoder,
    IdentityCache,
    build_encoder,
    face_quality,
)
from vidrestore.pipeline.face_stage import FaceStage
from vidrestore.weights import KNOWN_WEIGHTS, WeightStore


def _template_face(scale: float = 1.0, offset=(0.0, 0.0)) -> Face:
    lm = (ARCFACE_TEMPLATE_112 * scale + offset).astype(np.float32)
    box = np.float32([offset[0], offset[1], offset[0] + 112 * scale, offset[1] + 112 * scale])
    return Face(box=box, landmarks=lm, score=0.99)


# -- encoders -----------------------------------------------------------------------------


def test_onnx_encoder_loads_from_the_weights_folder_and_feeds_rgb(onnx_store):
    encoder, reason = build_encoder("auto", onnx_store)
    assert isinstance(encoder, ArcFaceOnnxEncoder) and encoder.conditioning
    assert "w600k_r50.onnx" in reason
    red = np.zeros((224, 224, 3), np.uint8)
    red[..., 0] = 255  # a pure red picture (RGB)
    faces = [_template_face(2.0, (0, 0)), _template_face(1.5, (20, 30))]
    vec = encoder.embed(red, faces)
    assert vec.shape == (2, 512) and vec.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), 1.0, rtol=1e-5)
    # (x − 127.5) / 127.5 of RGB: R = +1, G = B = −1 reach the network in this order.
    assert vec[0, 0] > 0.4 and vec[0, 1] < -0.4 and vec[0, 2] < -0.4


def test_torch_encoder_loads_a_random_ir_se50(tmp_path, kit):
    import torch

    from vidrestore.models.arcface import build_ir_se50

    torch.manual_seed(0)
    net = build_ir_se50()
    torch.save(net.state_dict(), tmp_path / KNOWN_WEIGHTS["arcface-ir-se50"].filename)
    encoder, reason = build_encoder("auto", kit.permissive_store(tmp_path))
    assert encoder.name == "arcface-torch" and "ir_se50" in reason
    from skimage import data

    image = data.astronaut()
    lm = np.float32([[193, 114], [238, 113], [218, 142], [198, 168], [233, 167]])
    vec = encoder.embed(image, [Face(np.float32([170, 80, 265, 190]), lm, 0.99)])
    assert vec.shape == (1, 512) and vec.dtype == np.float32
    assert np.linalg.norm(vec[0]) == pytest.approx(1.0, abs=1e-5)


def test_wrong_onnx_file_is_a_weights_error(tmp_path, kit):
    from vidrestore.errors import WeightsError

    (tmp_path / "w600k_r50.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(WeightsError):
        build_encoder("arcface-onnx", kit.permissive_store(tmp_path))


def test_backend_choice_without_arcface_weights(empty_store):
    encoder, reason = build_encoder("auto", empty_store)
    assert encoder.name == "dlib" and not encoder.conditioning and "no ArcFace" in reason
    assert build_encoder("off", empty_store)[0] is None
    with pytest.raises(MissingWeightsError):
        build_encoder("arcface-torch", empty_store)


def _largest(detector, image):
    faces = detector.detect([image])[0]
    assert faces, "no face found"
    return max(faces, key=lambda f: f.size)


def test_dlib_same_face_is_similar_other_faces_are_not(kit, detector):
    """The astronaut in two different clips (size, position, background, mirrored) against
    real other people: the iscc demo video's singer and LFW faces."""
    from skimage import data

    enc = DlibEncoder()
    a = kit.astronaut_clip(1, path=((0.4, 0.5),))[0]
    b = cv2.flip(np.ascontiguousarray(
        kit.astronaut_clip(1, path=((0.6, 0.4),), face_size=64, seed=3)[0]), 1)
    singer = cv2.resize(kit.demo_frames(1170, 1)[0][20:100, 50:130], None, fx=3, fy=3,
                        interpolation=cv2.INTER_CUBIC)
    lfw = [cv2.copyMakeBorder(cv2.cvtColor(cv2.resize((x * 255).astype(np.uint8), (100, 100)),
                                           cv2.COLOR_GRAY2RGB), 30, 30, 30, 30, cv2.BORDER_REPLICATE)
           for x in data.lfw_subset()[:3]]
    vec = {}
    for name, image in [("a", a), ("b", b), ("singer", singer)] + [(f"lfw{i}", x) for i, x in enumerate(lfw)]:
        vec[name] = enc.embed(image, [_largest(detector, image)])[0]
    same = float(vec["a"] @ vec["b"])
    others = [float(vec["a"] @ vec[k]) for k in vec if k not in ("a", "b")]
    assert same > enc.match_threshold + enc.match_margin, same
    assert max(others) < enc.match_threshold - enc.match_margin, others


def test_quality_prefers_large_sharp_confident_views(kit):
    frame = kit.astronaut_clip(1, path=((0.5, 0.5),))[0]
    lm = np.float32([[84, 61], [108, 61], [96, 74], [87, 86], [105, 86]])
    crop = align_arcface(frame, lm)
    blurry = cv2.GaussianBlur(crop, (0, 0), 3)
    q = face_quality(crop, 0.99, 60)
    assert 0 < q < 1
    assert face_quality(blurry, 0.99, 60) < q / 2
    assert face_quality(crop, 0.99, 30) == pytest.approx(q / 2)
    assert face_quality(crop, 0.5, 60) < q


def test_identity_cache_weighted_online_mean_and_schedule():
    cache = IdentityCache(every=10, improve=1.5)
    e0, e1 = np.eye(3, dtype=np.float32)[:2]
    assert cache.vector(7) is None and cache.wants(7, 0, 0.1)
    cache.add(7, 0, e0, quality=0.1)
    np.testing.assert_allclose(cache.vector(7), e0)
    assert not cache.wants(7, 5, 0.12)  # too soon, not better enough
    assert cache.wants(7, 5, 0.2)  # much better view
    assert cache.wants(7, 10, 0.01)  # due
    cache.add(7, 5, e1, quality=0.3)
    v = cache.vector(7)
    assert np.linalg.norm(v) == pytest.approx(1.0)
    assert v[1] > v[0] > 0  # weighted towards the better view
    cache.set(9, np.array([3.0, 4.0, 0.0]))
    np.testing.assert_allclose(cache.vector(9), [0.6, 0.8, 0.0], rtol=1e-6)
    assert not cache.wants(9, 100, 1.0)
    assert cache.track_ids() == [7, 9]


# -- the stage ----------------------------------------------------------------------------


def _config(**kw) -> FaceConfig:
    return FaceConfig(min_face=0, face_size=64, smooth=SmoothConfig(method="off"), **kw)


def test_stage_sets_one_unit_vector_per_track_updated_online(kit, detector, onnx_store):
    stage = FaceStage(_config(identity=IdentityConfig(every=4)), onnx_store, detector=detector,
                      identity_needed=True)
    out = kit.run_stage(stage, kit.two_face_clip(10))
    ids = {f.track_id for job in out for f in job.faces}
    assert len(ids) == 2
    for job in out:
        for f in job.faces:
            assert f.identity.shape == (512,) and f.identity.dtype == np.float32
            assert np.linalg.norm(f.identity) == pytest.approx(1.0, abs=1e-5)
    first = {f.track_id: f.identity for f in out[0].faces}
    last = {f.track_id: f.identity for f in out[-1].faces}
    for tid in ids:  # later views were folded in as the track went on
        assert not np.array_equal(first[tid], last[tid])
        assert float(first[tid] @ last[tid]) > 0.99
    report = stage.report()
    assert all(t["identity_embeddings"] == 3 for t in report["tracks"])  # frames 0, 4, 8
    assert report["identity_backend"] == "arcface-onnx"


def test_a_reference_photo_conditions_only_the_tracks_it_matches(kit, detector, onnx_store):
    from skimage import data

    photo = data.astronaut()
    stage = FaceStage(_config(), onnx_store, detector=detector, references={"astronaut": photo})
    expected = stage.encoder.embed(photo, [_largest(detector, photo)])[0]
    out = kit.run_stage(stage, kit.two_face_clip(4))
    faces = [f for job in out for f in job.faces]
    assert len(faces) == 8
    matches = stage.identities.matches()
    for f in faces:  # the colour-mean test ArcFace finds both astronauts alike: both match
        assert matches[f.track_id].matched and matches[f.track_id].name == "astronaut"
        np.testing.assert_array_equal(f.identity, expected)
    assert "references astronaut" in stage.summary
    tracks = stage.report()["tracks"]
    assert {t["reference"] for t in tracks} == {"astronaut"} and all(t["reference_cosine"] > 0.3 for t in tracks)
    strict = FaceStage(_config(identity=IdentityConfig(reference_threshold=1.0)), onnx_store, detector=detector,
                       references={"astronaut": photo})
    out = kit.run_stage(strict, kit.two_face_clip(4))
    for f in (f for job in out for f in job.faces):  # no track reaches the threshold: their own vector
        np.testing.assert_array_equal(f.identity, strict.identities.vector(f.track_id))
        assert not np.array_equal(f.identity, expected)
    assert all(t["reference"] is None for t in strict.report()["tracks"])


def test_each_reference_conditions_the_track_of_its_person(kit, detector, structure_store):
    from skimage import data

    photos = {"astronaut": data.astronaut(), "hopper": kit.grace_hopper()}
    config = _config(identity=IdentityConfig(reference_threshold=0.8))
    stage = FaceStage(config, structure_store, detector=detector, references={"hopper": photos["hopper"]})
    out = kit.run_stage(stage, kit.two_people_clip(6))
    by_x = {f.track_id: f.box[0] for f in out[0].faces}
    astronaut, hopper = sorted(by_x, key=by_x.get)  # she starts on the left
    hopper_vector = stage.references["hopper"]
    for f in (f for job in out for f in job.faces):
        if f.track_id == hopper:
            np.testing.assert_array_equal(f.identity, hopper_vector)
        else:  # no reference of hers: her own identity
            np.testing.assert_array_equal(f.identity, stage.identities.vector(astronaut))
    tracks = {t["id"]: t for t in stage.report()["tracks"]}
    assert tracks[hopper]["reference"] == "hopper" and tracks[hopper]["reference_cosine"] > 0.8
    assert tracks[astronaut]["reference"] is None and tracks[astronaut]["reference_cosine"] < 0.8
    both = FaceStage(config, structure_store, detector=detector, references=photos)
    out = kit.run_stage(both, kit.two_people_clip(6))
    names = {both.identities.match(f.track_id).name for f in out[0].faces}
    assert names == {"astronaut", "hopper"}
    for f in (f for job in out for f in job.faces):
        np.testing.assert_array_equal(f.identity, both.references[both.identities.match(f.track_id).name])


def test_a_matched_track_keeps_its_reference(kit):
    class Encoder:  # vectors by face score: whatever a test sets
        name, dim, conditioning, match_threshold, match_margin = "fake", 3, True, 0.5, 0.1

        def embed(self, image, faces):
            return np.array([[np.cos(f.score), np.sin(f.score), 0.0] for f in faces], np.float32)

    from vidrestore.faces.face import Face
    from vidrestore.faces.identity import TrackIdentities

    ids = TrackIdentities(Encoder(), references={"a": np.array([1.0, 0, 0], np.float32),
                                                  "b": np.array([0, 1.0, 0], np.float32)})
    image = np.zeros((64, 64, 3), np.uint8)
    face = Face(np.array([0, 0, 60, 60], np.float32), np.zeros((5, 2), np.float32), 0.2, track_id=3)
    ids.add(3, 0, Encoder().embed(image, [face])[0], 1.0)
    assert ids.match(3) == ("a", pytest.approx(np.cos(0.2), abs=1e-4), True)
    ids.add(3, 5, np.array([0.0, 1.0, 0.0]), 100.0)  # later views drift towards b...
    assert ids.match(3).name == "a"  # ...but a match sticks: no swapping mid-track
    ids.add(4, 0, np.array([0.6, -0.8, 0.0]), 1.0)
    assert ids.match(4) == ("a", pytest.approx(0.6, abs=1e-4), True)
    ids.add(5, 0, np.array([0.0, 0.0, 1.0]), 1.0)
    assert not ids.match(5).matched  # compared, below the threshold: its own vector
    assert sorted(ids.matches()) == [3, 4, 5]


def test_reference_without_a_face_is_an_input_error_naming_it(detector, onnx_store):
    with pytest.raises(InputError, match="reference 'blank'.*no face"):
        FaceStage(_config(), onnx_store, detector=detector,
                  references={"blank": np.full((100, 100, 3), 90, np.uint8)})


def test_conditioning_needs_arcface_weights(detector, empty_store):
    with pytest.raises(MissingWeightsError, match="w600k_r50.onnx"):
        FaceStage(_config(), empty_store, detector=detector, identity_needed=True)
    with pytest.raises(UsageError):
        FaceStage(_config(identity=IdentityConfig(backend="dlib")), empty_store, detector=detector,
                  identity_needed=True)


def test_dlib_tracks_only_no_conditioning_vector(kit, detector, empty_store):
    stage = FaceStage(_config(), empty_store, detector=detector)
    out = kit.run_stage(stage, kit.astronaut_clip(6))
    assert stage.encoder.name == "dlib"
    assert all(f.identity is None for job in out for f in job.faces)
    assert stage.identities.count(out[0].faces[0].track_id) == 1


# -- real weights (VIDRESTORE_WEIGHTS_DIR) ------------------------------------------------


def _real(name: str) -> WeightStore:
    folder = os.environ.get("VIDRESTORE_WEIGHTS_DIR")
    if not folder or not (Path(folder) / KNOWN_WEIGHTS[name].filename).is_file():
        pytest.skip(f"needs {KNOWN_WEIGHTS[name].filename} in VIDRESTORE_WEIGHTS_DIR")
    return WeightStore(folder, allow_download=False)


@pytest.mark.weights
@pytest.mark.parametrize("backend,name", [("arcface-onnx", "arcface-w600k-r50"),
                                          ("arcface-torch", "arcface-ir-se50")])
def test_real_arcface_tells_the_astronaut_from_others(kit, detector, backend, name):
    encoder, _ = build_encoder(backend, _real(name))
    a = kit.astronaut_clip(1, path=((0.4, 0.5),))[0]
    b = kit.astronaut_clip(1, path=((0.6, 0.4),), face_size=64, seed=3)[0]
    singer = cv2.resize(kit.demo_frames(1170, 1)[0][20:100, 50:130], None, fx=3, fy=3,
                        interpolation=cv2.INTER_CUBIC)
    va, vb, vs = (encoder.embed(x, [_largest(detector, x)])[0] for x in (a, b, singer))
    assert float(va @ vb) > 0.5
    assert float(va @ vs) < 0.3


def test_the_conditioning_backend_is_arcface_or_a_clear_error(tmp_path, empty_store):
    from vidrestore.faces.identity import conditioning_backend
    from vidrestore.weights import WeightStore

    with pytest.raises(MissingWeightsError, match="downloads are off"):
        conditioning_backend("auto", empty_store)
    with pytest.raises(UsageError, match="not dlib"):
        conditioning_backend("dlib", empty_store)
    online = WeightStore(tmp_path / "w2", tmp_path / "c2", allow_download=True)
    assert conditioning_backend("off", online) == "arcface-torch"  # fetched (MIT licence)
    folder = tmp_path / "weights"
    folder.mkdir(exist_ok=True)
    (folder / empty_store.entry("arcface-w600k-r50").filename).write_bytes(b"present")
    assert conditioning_backend("auto", empty_store) == "auto"  # uses what is there
    assert conditioning_backend("arcface-onnx", empty_store) == "arcface-onnx"


@pytest.mark.parametrize("recorded", [False, True], ids=["no-recognizer-recorded", "recognizer-recorded"])
def test_an_identity_model_without_arcface_stops_before_building_its_engine(media, tmp_path, monkeypatch, recorded):
    import vidrestore.pipeline.build
    from checkpoint_kit import tiny_trained
    from vidrestore.config import from_mapping
    from vidrestore.models import Recognizer
    from vidrestore.restore_video import restore_video
    from vidrestore.settings import RestoreConfig

    def built(*args, **kwargs):
        raise AssertionError("the engine was built before the missing weights were noticed")

    monkeypatch.setattr(vidrestore.pipeline.build, "build_engine", built)  # the start of the long part
    monkeypatch.setenv("VIDRESTORE_CACHE_DIR", str(tmp_path / "cache"))  # not this machine's cache
    recognizer = Recognizer("arcface-ir-se50", "recognition_arcface_ir_se50.pth") if recorded else None
    weights = tiny_trained(tmp_path / "idcf.pth", "id-codeformer", recognizer=recognizer)
    config = from_mapping(RestoreConfig, {"model": "id-codeformer", "download": False, "weights": str(weights),
                                          "weights_dir": str(tmp_path / "none")})
    words = "recognizer it was trained with.*recognition_arcface_ir_se50.pth" if recorded else "ArcFace"
    with pytest.raises(MissingWeightsError, match=words):
        restore_video(media.plain(frames=4), tmp_path / "out.mp4", config)
    assert not list(tmp_path.glob("*out*"))
