"""The stage runner: order, back-pressure (bounded frames in flight), failures, interruption."""

from __future__ import annotations

import threading
import time
import weakref
from fractions import Fraction

import numpy as np
import pytest

from vidrestore.faces.face import Face
from vidrestore.io.frame import Frame
from vidrestore.pipeline.contracts import FrameJob, check_restorer, check_stage
from vidrestore.pipeline.restore_stage import PassthroughRestorer, RestoreStage
from vidrestore.pipeline.runner import StageClock, iterate_stages, run_stages


class Alive:
    """Counts frames that exist at once (created, not yet garbage)."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def frames(self, n: int, size: int = 8):
        for i in range(n):
            frame = Frame(i, i, Fraction(1, 24), np.zeros((size, size, 3), np.uint8))
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            weakref.finalize(frame, self._gone)
            yield frame

    def _gone(self) -> None:
        with self.lock:
            self.now -= 1


class HoldBack:
    """A stage that keeps the last ``delay`` jobs (like a centred smoothing window)."""

    def __init__(self, name: str, delay: int, sleep: float = 0.0) -> None:
        self.name, self.delay, self.sleep = name, delay, sleep
        self.held = []

    def process(self, jobs):
        time.sleep(self.sleep)
        self.held += jobs
        cut = max(len(self.held) - self.delay, 0)
        out, self.held = self.held[:cut], self.held[cut:]
        return out

    def flush(self):
        out, self.held = self.held, []
        return out


def test_every_frame_arrives_once_and_in_order():
    seen = []
    stages = [HoldBack("a", 3), HoldBack("b", 0), HoldBack("c", 5)]
    n = run_stages(Alive().frames(200), stages, lambda job: seen.append(job.index), queue_size=2)
    assert n == 200 and seen == list(range(200))


def test_frames_in_flight_do_not_grow_with_the_video():
    peaks = []
    for length in (60, 600):
        alive = Alive()
        # A slow last stage: without back-pressure the decoder would run ahead of it.
        stages = [HoldBack("faces", 3), HoldBack("slow", 0, sleep=0.0005)]
        run_stages(alive.frames(length), stages, lambda job: None, queue_size=3, max_batch=4)
        peaks.append(alive.peak)
    assert peaks[1] <= peaks[0] + 2  # ten times longer, same bound
    assert peaks[1] < 40


def test_a_failing_stage_stops_everything_and_raises_in_the_caller():
    class Boom(HoldBack):
        def process(self, jobs):
            if any(j.index == 37 for j in jobs):
                raise ValueError("stage exploded")
            return super().process(jobs)

    written = []
    with pytest.raises(ValueError, match="stage exploded"):
        run_stages(Alive().frames(10_000), [Boom("boom", 0)], lambda job: written.append(job.index))
    assert len(written) < 100
    assert not [t for t in threading.enumerate() if t.name.startswith("vidrestore-")]


def test_a_failing_sink_stops_the_workers():
    def sink(job):
        if job.index == 5:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_stages(Alive().frames(10_000), [HoldBack("a", 1)], sink)
    assert not [t for t in threading.enumerate() if t.name.startswith("vidrestore-")]


def test_interrupt_in_the_calling_thread_is_reraised():
    def sink(job):
        if job.index == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stages(Alive().frames(10_000), [HoldBack("a", 0)], sink)


def test_clock_records_each_stage():
    clock = StageClock()
    run_stages(Alive().frames(20), [HoldBack("faces", 1, sleep=0.002)], lambda job: None, clock=clock)
    assert set(clock.busy) >= {"decode", "faces", "encode"}
    assert clock.busy["faces"] > 0


def face_job_frames(faces_per_frame):
    for i, count in enumerate(faces_per_frame):
        frame = Frame(i, i, Fraction(1, 24), np.zeros((8, 8, 3), np.uint8))
        yield frame, [Face(np.zeros(4, np.float32), np.zeros((5, 2), np.float32), 1.0,
                           crop=np.full((4, 4, 3), i / 100, np.float32)) for _ in range(count)]


class CountingRestorer(PassthroughRestorer):
    def __init__(self):
        super().__init__(face_size=4)
        self.batches = []

    def restore(self, faces, identities, fidelity):
        self.batches.append(len(faces))
        return faces * 0 + fidelity


class AddFaces:
    name = "faces"

    def __init__(self, plan):
        self.plan = dict(plan)

    def process(self, jobs):
        for job in jobs:
            job.faces = self.plan[job.index]
        return list(jobs)

    def flush(self):
        return []


def test_restore_stage_batches_faces_across_frames():
    counts = [1, 0, 2, 1, 0, 0, 3, 1]
    pairs = list(face_job_frames(counts))
    restorer = CountingRestorer()
    stage = RestoreStage(restorer, fidelity=0.25, batch_size=4)
    out = list(iterate_stages((f for f, _ in pairs), [AddFaces((f.index, faces) for f, faces in pairs), stage]))
    assert [job.index for job in out] == list(range(len(counts)))
    assert sum(restorer.batches) == sum(counts) and max(restorer.batches) <= 4
    assert len(restorer.batches) < sum(counts)  # really batched, not one by one
    for job in out:
        for face in job.faces:
            assert face.crop is None and np.all(face.restored == 0.25)


def test_restore_stage_does_not_hold_a_long_faceless_stretch():
    counts = [1] + [0] * 100
    pairs = list(face_job_frames(counts))
    stage = RestoreStage(CountingRestorer(), batch_size=8, max_pending_frames=10)
    faces = AddFaces((f.index, fs) for f, fs in pairs)
    returned = []
    for frame, _ in pairs:
        returned += stage.process(faces.process([FrameJob(frame)]))
        assert len(stage._pending) <= 10
    returned += stage.flush()
    assert [job.index for job in returned] == list(range(101))


def test_restorers_and_stages_satisfy_their_protocols():
    check_restorer(PassthroughRestorer())
    check_stage(RestoreStage(PassthroughRestorer()))
    with pytest.raises(TypeError, match="lacks"):
        check_restorer(object())


class Identity:
    """A stage that hands its jobs on unchanged."""

    name = "identity"

    def process(self, jobs):
        return list(jobs)

    def flush(self):
        return []


def test_an_interruption_while_the_threads_start_stops_those_already_running(monkeypatch):
    """SIGTERM's ``Interrupted`` may arrive while the stage threads are being started: those
    already running are stopped and joined (a daemon thread left running prints a traceback
    at the interpreter's exit), and the interruption reaches the caller."""
    real_start, calls = threading.Thread.start, []

    def start(thread):
        if thread.name.startswith("vidrestore-"):
            calls.append(thread)
            if len(calls) == 2:
                raise KeyboardInterrupt
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    with pytest.raises(KeyboardInterrupt):
        run_stages(Alive().frames(1000), [Identity(), Identity()], lambda job: None, queue_size=1)
    assert not calls[0].is_alive()


def test_a_source_whose_close_fails_fails_the_run():
    class Source:
        def __iter__(self):
            return iter(())

        def close(self):
            raise OSError("the input vanished")

    with pytest.raises(OSError, match="vanished"):
        run_stages(Source(), [Identity()], lambda job: None)
