"""The streaming stages and their bounded queues.

    decode ─▶ q ─▶ faces ─▶ q ─▶ restore ─▶ q ─▶ paste ─▶ q ─▶ encode (calling thread)

Each stage runs in its own thread; the queues between them hold at most ``queue_size``
items, so a slow stage makes the ones before it wait (back-pressure) and the number of frames
in flight — hence memory — does not depend on the video's length. PyAV, OpenCV and PyTorch
release the GIL in their heavy calls, so the stages really overlap.

A failure in any thread stops all of them and is re-raised in the calling thread; so is
Ctrl-C (KeyboardInterrupt) or any exception raised by a signal handler there.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

from vidrestore.io.frame import Frame

from .contracts import FrameJob, Stage

_END = object()
_POLL = 0.1


@dataclass
class StageClock:
    """Seconds each stage spent working (not waiting), for summaries and ``bench``.

    With ``latencies`` set to a list, it also records each frame's seconds from decoded to
    handed to the sink (``bench``'s per-frame latency); frames in flight are bounded, so the
    bookkeeping is too (the list itself grows by one float per frame).
    """

    busy: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    latencies: list[float] | None = None
    _born: dict[int, float] = field(default_factory=dict, repr=False)

    def add(self, name: str, seconds: float) -> None:
        self.busy[name] += seconds

    def decoded(self, index: int) -> None:
        if self.latencies is not None:
            self._born[index] = time.perf_counter()

    def delivered(self, index: int) -> None:
        if self.latencies is not None and (born := self._born.pop(index, None)) is not None:
            self.latencies.append(time.perf_counter() - born)


class _Stop(Exception):
    """Raised inside a worker when another thread failed or the run was cancelled."""


class _Run:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc
        self.stop.set()

    def put(self, q: queue.Queue, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                q.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue):
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                continue


def _drain(run: _Run, q: queue.Queue, limit: int) -> list:
    """Block for one item, then take whatever else is already waiting (up to ``limit``)."""
    items = [run.get(q)]
    while len(items) < limit and items[-1] is not _END:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            break
    return items


def _source_worker(run: _Run, frames: Iterable[Frame], out: queue.Queue, clock: StageClock) -> None:
    try:
        iterator = iter(frames)
        while True:
            start = time.perf_counter()
            frame = next(iterator, None)
            clock.add("decode", time.perf_counter() - start)
            if frame is None:
                break
            clock.decoded(frame.index)
            run.put(out, FrameJob(frame))
        run.put(out, _END)
    except _Stop:
        pass
    except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
        run.fail(exc)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            try:
                close()
            except BaseException as exc:  # noqa: BLE001 - a failing close is the run's error too
                run.fail(exc)


def _stage_worker(run: _Run, stage: Stage, inq: queue.Queue, out: queue.Queue,
                  clock: StageClock, max_batch: int) -> None:
    try:
        while True:
            items = _drain(run, inq, max_batch)
            ended = items[-1] is _END
            jobs = [item for item in items if item is not _END]
            start = time.perf_counter()
            done = stage.process(jobs) if jobs else []
            if ended:
                done += stage.flush()
            clock.add(stage.name, time.perf_counter() - start)
            for job in done:
                run.put(out, job)
            if ended:
                run.put(out, _END)
                return
    except _Stop:
        pass
    except BaseException as exc:  # noqa: BLE001
        run.fail(exc)


def run_stages(
    frames: Iterable[Frame],
    stages: Sequence[Stage],
    sink: Callable[[FrameJob], None],
    *,
    queue_size: int = 4,
    max_batch: int = 16,
    clock: StageClock | None = None,
) -> int:
    """Stream ``frames`` through ``stages`` into ``sink`` (called in this thread, in order).

    Args:
        frames: the decoded frames (a generator; closed when the run ends).
        stages: the stages in order; each gets its own thread.
        sink: receives every finished job, in presentation order (the encoder).
        queue_size: the bound of each queue between stages, in jobs.
        max_batch: at most this many waiting jobs are handed to a stage at once.
        clock: collects per-stage busy seconds (``decode``, each stage's name, ``encode``).

    Returns:
        The number of jobs that reached the sink.
    """
    clock = clock or StageClock()
    run = _Run()
    queues = [queue.Queue(maxsize=queue_size) for _ in range(len(stages) + 1)]
    threads = [threading.Thread(target=_source_worker, args=(run, frames, queues[0], clock),
                                name="vidrestore-decode", daemon=True)]
    for i, stage in enumerate(stages):
        threads.append(threading.Thread(
            target=_stage_worker, args=(run, stage, queues[i], queues[i + 1], clock, max_batch),
            name=f"vidrestore-{stage.name}", daemon=True))
    delivered = 0
    expected_index = None
    started: list[threading.Thread] = []
    try:
        # Started inside the try: a signal (SIGTERM's Interrupted) arriving while they start
        # still stops and joins those already running, so none outlives the run.
        for thread in threads:
            thread.start()
            started.append(thread)
        while True:
            try:
                item = run.get(queues[-1])
            except _Stop:
                break
            if item is _END:
                break
            if expected_index is not None and item.index <= expected_index:
                raise RuntimeError(f"pipeline delivered frame {item.index} after {expected_index}")
            expected_index = item.index
            start = time.perf_counter()
            sink(item)
            clock.add("encode", time.perf_counter() - start)
            clock.delivered(item.index)
            delivered += 1
    except BaseException as exc:
        run.fail(exc)
    finally:
        run.stop.set()
        for thread in started:
            thread.join()
    if run.error is not None:
        raise run.error
    return delivered


def iterate_stages(frames: Iterable[Frame], stages: Sequence[Stage]) -> Iterator[FrameJob]:
    """Run ``stages`` in this thread, one job at a time (for tests and debugging)."""
    def feed(jobs: list[FrameJob], index: int) -> Iterator[FrameJob]:
        if index == len(stages):
            yield from jobs
            return
        yield from feed(stages[index].process(jobs), index + 1)

    for frame in frames:
        yield from feed([FrameJob(frame)], 0)
    for i, stage in enumerate(stages):
        yield from feed(stage.flush(), i + 1)
