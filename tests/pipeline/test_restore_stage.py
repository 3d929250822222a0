"""The restore stage's hand-over: batches go to a restorer with ``submit`` without waiting for
its previous result; frames come out in order once their batches are back; at most
``in_flight`` batches are out; frames without faces never overtake; a plain restorer and the
CPU engine behave as a synchronous call."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from vidrestore.faces.face import Face
from vidrestore.io.frame import Frame
from vidrestore.pipeline.contracts import FrameJob
from vidrestore.pipeline.restore_stage import PassthroughRestorer, RestoreStage


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


class LaterRestorer:
    """Adds 0.5 to every face; its tickets are ready only once the test says so (or waited on)."""

    name = "later"
    uses_identity = False
    face_size = 4
    depth = 2

    def __init__(self) -> None:
        self.tickets: list[Ticket] = []
        self.log: list[str] = []

    def restore(self, faces, identities, fidelity):
        raise AssertionError("the stage must use submit")

    def submit(self, faces, identities, fidelity):
        self.log.append(f"submit {len(faces)}")
        self.tickets.append(Ticket(faces + 0.5, self.log))
        return self.tickets[-1]


def jobs(counts: list[int]) -> list[FrameJob]:
    out = []
    for i, n in enumerate(counts):
        job = FrameJob(Frame(i, i, Fraction(1, 24), np.zeros((4, 4, 3), np.uint8)))
        for k in range(n):
            face = Face(box=np.zeros(4, np.float32), landmarks=np.zeros((5, 2), np.float32), score=1.0)
            face.crop = np.full((4, 4, 3), i + k / 10, np.float32)
            job.faces.append(face)
        out.append(job)
    return out


def indices(done: list[FrameJob]) -> list[int]:
    return [j.index for j in done]


def test_batches_are_handed_over_without_waiting_and_come_out_in_order():
    restorer = LaterRestorer()
    stage = RestoreStage(restorer, batch_size=2)
    work = jobs([1, 1, 0, 1, 1, 0, 1, 1])
    assert stage.process(work[:2]) == []           # batch 1 out, not back
    assert stage.process(work[2:5]) == []          # frame 2 (no face) waits behind it; batch 2 out
    assert restorer.log == ["submit 2", "submit 2"] and stage.batches_in_flight == 2
    restorer.tickets[1].done = True                # the second is back first: still nothing out
    assert stage.process([]) == []
    restorer.tickets[0].done = True
    assert indices(stage.process([])) == [0, 1, 2, 3, 4]
    assert "waited" not in restorer.log
    # Frame 5 has nothing ahead of it: straight out. Frames 6 and 7 make a third batch.
    out = stage.process(work[5:7])
    assert indices(out) == [5]
    out = stage.process(work[7:])
    assert out == [] and restorer.log[-1] == "submit 2"
    out += stage.flush()
    assert indices(out) == [6, 7] and restorer.log[-1] == "waited"
    faces = [f for j in work for f in j.faces]
    assert all(f.crop is None and f.restored is not None for f in faces)
    assert np.allclose(work[7].faces[0].restored, 7.5) and stage.faces_restored == 6


def test_more_than_in_flight_batches_wait_for_the_oldest():
    restorer = LaterRestorer()
    stage = RestoreStage(restorer, batch_size=1, in_flight=2)
    out = stage.process(jobs([1, 1, 1]))
    assert restorer.log == ["submit 1", "submit 1", "submit 1", "waited"]
    assert indices(out) == [0] and stage.batches_in_flight == 2


def test_a_plain_restorer_is_called_and_everything_comes_out_at_once():
    stage = RestoreStage(PassthroughRestorer(4), batch_size=2)
    work = jobs([2, 0, 1, 1])
    out = stage.process(work) + stage.flush()
    assert indices(out) == [0, 1, 2, 3] and stage.in_flight == 1
    assert np.allclose(work[3].faces[0].restored, 3.0)


def test_frames_without_faces_pass_straight_when_nothing_is_out():
    stage = RestoreStage(LaterRestorer(), batch_size=4)
    assert indices(stage.process(jobs([0, 0]))) == [0, 1]
