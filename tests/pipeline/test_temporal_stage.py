"""The temporal restore stage: jobs out in order and exactly once, held back by the window's
future half only, each face fused with its own track's neighbours; on a tiny network, fusion
removes flicker from a still, noisy face, and a window of one frame is the per-frame face."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from vidrestore.engines import build_engine, network_io
from vidrestore.engines.restorer_adapter import EngineRestorer
from vidrestore.engines.split_build import build_split_engine
from vidrestore.engines.split_restorer import SplitRestorer
from vidrestore.faces.face import Face
from vidrestore.io.frame import Frame
from vidrestore.models import build_model, get_spec
from vidrestore.models.seeded import fill_seeded
from vidrestore.models.temporal import TemporalConfig
from vidrestore.pipeline.contracts import CodeRestorer, FrameJob, check_stage
from vidrestore.pipeline.temporal_stage import TemporalRestoreStage

CPU = torch.device("cpu")


class Code:
    """What the fake restorer's predict gives: its logits carry the crop's value."""

    def __init__(self, value: float) -> None:
        self.logits = torch.full((1, 4, 3), value)
        self.lq_feat = torch.ones(1, 2, 2, 2)

    def with_codes(self, logits, lq_feat):
        out = Code(0.0)
        out.logits, out.lq_feat = logits, lq_feat
        return out


class FakeRestorer:
    """Decodes a face as the mean of its (fused) logits: a fused face shows its window's mean."""

    name, uses_identity, face_size = "fake", False, 8

    def __init__(self) -> None:
        self.predicted: list[int] = []
        self.decoded: list[int] = []

    def predict(self, faces, identities):
        self.predicted.append(len(faces))
        return [Code(float(f[0, 0, 0])) for f in faces]

    def decode(self, codes, identities, fidelity):
        self.decoded.append(len(codes))
        return np.stack([np.full((8, 8, 3), float(c.logits.mean()), np.float32) for c in codes])

    def restore(self, faces, identities, fidelity):
        return self.decode(self.predict(faces, identities), identities, fidelity)


def job(index: int, values: dict[int, float]) -> FrameJob:
    """Frame ``index`` with one face per track id, its crop filled with the given value."""
    frame = Frame(index, index, Fraction(1, 25), np.zeros((16, 16, 3), np.uint8))
    faces = [Face(np.zeros(4, np.float32), np.zeros((5, 2), np.float32), 1.0, track_id=t,
                  crop=np.full((8, 8, 3), v, np.float32)) for t, v in values.items()]
    return FrameJob(frame, faces)


def run(stage, jobs, *, step: int = 1):
    out, released = [], []
    for i in range(0, len(jobs), step):
        done = stage.process(jobs[i : i + step])
        released.append((jobs[i + step - 1].index, [j.index for j in done]))
        out += done
    out += stage.flush()
    return out, released


def test_order_exactly_once_and_bounded_delay():
    restorer = FakeRestorer()
    assert isinstance(restorer, CodeRestorer)
    stage = check_stage(TemporalRestoreStage(restorer, TemporalConfig(window=5), batch_size=1))
    jobs = [job(i, {0: float(i)} if i % 4 != 3 else {}) for i in range(12)]  # every 4th frame: no face
    out, released = run(stage, jobs)
    assert [j.index for j in out] == list(range(12))
    for last_in, done in released:
        assert all(last_in - i <= stage.delay for i in done)  # at most `radius` frames held
    assert sum(restorer.predicted) == sum(restorer.decoded) == 9 == stage.faces_restored


def test_each_face_is_fused_with_its_own_tracks_window():
    stage = TemporalRestoreStage(FakeRestorer(), TemporalConfig(window=3, sigma=100.0), batch_size=2)
    jobs = [job(i, {0: float(i), 7: 100.0 + i}) for i in range(6)]
    out, _ = run(stage, jobs, step=2)
    restored = {(j.index, f.track_id): float(f.restored[0, 0, 0]) for j in out for f in j.faces}
    # wide sigma: (nearly) equal weights over t-1, t, t+1; the ends have one neighbour only
    assert restored[(3, 0)] == pytest.approx(3.0, abs=1e-3)
    assert restored[(0, 0)] == pytest.approx(0.5, abs=1e-3) and restored[(5, 0)] == pytest.approx(4.5, abs=1e-3)
    assert restored[(3, 7)] == pytest.approx(103.0, abs=1e-3)  # never mixed with track 0
    assert all(f.crop is None for j in out for f in j.faces)


def test_a_new_track_starts_a_new_window():
    stage = TemporalRestoreStage(FakeRestorer(), TemporalConfig(window=5, sigma=100.0))
    jobs = [job(i, {1 if i < 3 else 2: 10.0 if i < 3 else 50.0}) for i in range(6)]  # a cut at frame 3
    out, _ = run(stage, jobs)
    values = [float(j.faces[0].restored[0, 0, 0]) for j in out]
    assert values == pytest.approx([10.0] * 3 + [50.0] * 3, abs=1e-4)


def test_max_pending_frames_bounds_what_waits_for_a_batch():
    restorer = FakeRestorer()
    stage = TemporalRestoreStage(restorer, TemporalConfig(window=3), batch_size=64, max_pending_frames=6)
    out, released = run(stage, [job(i, {0: float(i)}) for i in range(20)])
    assert [j.index for j in out] == list(range(20))
    assert max(last - min(done) for last, done in released if done) <= 6


class Ticket:
    event = None

    def __init__(self, value, log) -> None:
        self.value, self.log, self.done = value, log, False

    def ready(self) -> bool:
        return self.done

    def result(self):
        if not self.done:
            self.log.append("waited")
            self.done = True
        return self.value


class LaterRestorer(FakeRestorer):
    """Decodes through ``submit_decode``: its tickets are ready once the test says so."""

    depth = 2

    def __init__(self) -> None:
        super().__init__()
        self.tickets: list[Ticket] = []
        self.log: list[str] = []

    def decode(self, codes, identities, fidelity):
        raise AssertionError("the stage must use submit_decode")

    def submit_decode(self, codes, identities, fidelity, *, on_device=False):
        self.log.append(f"submit {len(codes)}")
        value = np.stack([np.full((8, 8, 3), float(c.logits.mean()), np.float32) for c in codes])
        self.tickets.append(Ticket(value, self.log))
        return self.tickets[-1]


def test_decode_batches_are_handed_over_without_waiting():
    restorer = LaterRestorer()
    stage = TemporalRestoreStage(restorer, TemporalConfig(window=3), batch_size=1)
    jobs = [job(i, {0: float(i)}) for i in range(6)]
    assert stage.process(jobs[:3]) == []           # frames 0, 1 decoded (radius 1), not back
    assert restorer.log == ["submit 1", "submit 1"] and stage.batches_in_flight == 2
    restorer.tickets[1].done = True                # the second back first: frame 0 still holds
    assert stage.process([]) == []
    restorer.tickets[0].done = True
    assert [j.index for j in stage.process([])] == [0, 1]
    assert stage.process(jobs[3:5]) == [] and stage.batches_in_flight == 2
    assert [j.index for j in stage.process(jobs[5:])] == [2]   # a third batch out: the oldest waited for
    assert restorer.log.count("waited") == 1 and stage.batches_in_flight == 2
    assert [j.index for j in stage.flush()] == [3, 4, 5]
    assert [float(j.faces[0].restored[0, 0, 0]) for j in jobs] == pytest.approx([0.5, 1, 2, 3, 4, 4.5], abs=0.05)


# -- the tiny network ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_codeformer():
    net = fill_seeded(build_model("codeformer", tiny=True))
    return net, network_io(get_spec("codeformer"), net)


def noisy_still_face(frames: int, sigma: float = 0.04, seed: int = 0) -> list[np.ndarray]:
    """The astronaut's face at 64², with fresh Gaussian noise per frame (float32 [0, 1])."""
    import cv2
    from skimage.data import astronaut

    face = cv2.resize(astronaut()[20:260, 100:340], (64, 64), interpolation=cv2.INTER_AREA) / 255.0
    rng = np.random.default_rng(seed)
    return [np.clip(face + rng.normal(0, sigma, face.shape), 0, 1).astype(np.float32) for _ in range(frames)]


def restored_frames(restorer, config: TemporalConfig, crops, w: float) -> np.ndarray:
    stage = TemporalRestoreStage(restorer, config, fidelity=w)
    jobs = []
    for i, crop in enumerate(crops):
        j = job(i, {0: 0.0})
        j.faces[0].crop = crop
        jobs.append(j)
    out, _ = run(stage, jobs)
    return np.stack([j.faces[0].restored for j in out])


@pytest.mark.parametrize("w", [0.0, 0.5])
def test_fusion_removes_flicker_on_a_still_noisy_face(tiny_codeformer, w):
    net, io = tiny_codeformer
    restorer = SplitRestorer(build_split_engine(net, io, backend="torch", precision="fp32", device=CPU))
    crops = noisy_still_face(10)
    alone = restored_frames(restorer, TemporalConfig(window=1), crops, w)
    fused = restored_frames(restorer, TemporalConfig(window=5), crops, w)
    change_alone = np.abs(np.diff(alone, axis=0)).mean()
    change_fused = np.abs(np.diff(fused, axis=0)).mean()
    assert change_fused < 0.7 * change_alone, (change_alone, change_fused)


def test_a_window_of_one_is_the_per_frame_face(tiny_codeformer):
    net, io = tiny_codeformer
    restorer = SplitRestorer(build_split_engine(net, io, backend="torch", precision="fp32", device=CPU))
    crops = noisy_still_face(4)
    fused = restored_frames(restorer, TemporalConfig(window=1), crops, 0.5)
    per_frame = EngineRestorer(build_engine(net, io, backend="torch", precision="fp32", device=CPU))
    expected = np.concatenate([per_frame.restore(c[None], None, 0.5) for c in crops])
    assert np.array_equal(fused, expected)


def test_device_crops_go_in_as_tensors_and_come_back_on_the_device(tiny_codeformer):
    """The device face ops' road: crops are tensors, the job has a device frame; the restored
    faces stay tensors (the paste stage reads them there) and equal the host road's."""
    from vidrestore.faces.device import DeviceFrame

    net, io = tiny_codeformer
    restorer = SplitRestorer(build_split_engine(net, io, backend="torch", precision="fp32", device=CPU))
    crops = noisy_still_face(3)
    host = restored_frames(restorer, TemporalConfig(window=3), crops, 0.5)
    jobs = []
    for i, crop in enumerate(crops):
        j = job(i, {0: 0.0})
        j.faces[0].crop = torch.from_numpy(crop)
        j.device = DeviceFrame(torch.from_numpy(j.frame.image))
        jobs.append(j)
    out, _ = run(TemporalRestoreStage(restorer, TemporalConfig(window=3), fidelity=0.5), jobs)
    restored = [j.faces[0].restored for j in out]
    assert all(isinstance(r, torch.Tensor) for r in restored)
    assert np.array_equal(torch.stack(restored).numpy(), host)


def test_videos_get_the_split_network_and_the_temporal_stage(tmp_path):
    from vidrestore.pipeline.build import build_restorer, restore_stage
    from vidrestore.pipeline.restore_stage import RestoreStage
    from vidrestore.settings import RestoreConfig
    from vidrestore.weights import WeightStore

    store = WeightStore(tmp_path, allow_download=False)
    lines: list[str] = []
    config = RestoreConfig(engine="torch")
    restorer = build_restorer(config, store, CPU, log=lines.append, tiny=True)
    assert isinstance(restorer, SplitRestorer) and isinstance(restorer, CodeRestorer)
    stage = restore_stage(config, restorer, CPU, lines.append)
    assert isinstance(stage, TemporalRestoreStage) and stage.radius == 2
    assert any("temporal: codes fused over 5 frames" in line for line in lines)
    off = RestoreConfig(engine="torch", temporal=TemporalConfig(mode="off"))
    per_frame = build_restorer(off, store, CPU, tiny=True)
    assert not isinstance(per_frame, SplitRestorer)
    assert isinstance(restore_stage(off, per_frame, CPU), RestoreStage)
