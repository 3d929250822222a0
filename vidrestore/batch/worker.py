"""A batch worker: claim a file, restore it, record the outcome; repeat until none is left.

The restorer (the network on its device) is built once per worker, on its first claim, and
reused for every file. One file's failure (a bad input, a decode error, an internal error)
is recorded with its one-line error and the worker goes on; missing weights stop the worker
(every file would fail the same way) and the coordinator stops the batch.

Order of events for one file, so that a kill -9 at any moment is harmless:

1. claim (``running``, in a transaction);
2. remove this output's leftovers from a killed run (temporary files of its exact names);
3. ``restore_video`` writes a temporary file beside the output and renames it into place,
   inside a ledger transaction that checks the claim is still this worker's, then writes
   the report atomically;
4. the ledger records ``done`` with the output's identity (one transaction).

Killed before 4, the row stays ``running`` under a dead worker: the next run makes it pending
and redoes it, replacing whatever output is there (the ledger, not the file system, says what
is done). Killed after 4, it is done and never redone.

A worker never outlives its coordinator (``lifeline``), and one whose claim was taken over
(another run judged it dead: no heartbeat for ``LEASE_SECONDS`` on another machine) stops
that file at its next frame (the heartbeat thread checks the claim every tick) and in any
case before it publishes (step 3), without recording anything.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vidrestore.errors import Interrupted, VidrestoreError, WeightsError

from .lifeline import die_with_parent, parent_is
from .heartbeat import PROGRESS_SECONDS, Heartbeat  # noqa: F401 - re-exported
from .identity import FileStamp, ProcessIdentity, content_digest
from .ledger import ClaimLost, Ledger
from .records import write_record

@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs (sent to it pickled).

    Attributes:
        ledger: the ledger file.
        run: the run whose queue it works on.
        config: the restoration settings.
        threads: torch threads for this worker.
        gpu: the CUDA device to pin it to (a ``CUDA_VISIBLE_DEVICES`` entry), or None.
        coordinator: the pid of the process that starts it (its parent), which it must not
            outlive; None: not checked.
    """

    ledger: str
    run: str
    config: Any
    threads: int
    gpu: str | None = None
    coordinator: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one file (plain data: it crosses process and Ray boundaries)."""

    status: str  # done | failed
    error: str | None = None
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    output: tuple[int, int, str] | None = None
    host: str = ""
    pid: int = 0
    fatal: tuple[str, int] | None = None  # (message, exit code): stop the whole batch


def build_worker_restorer(config):
    """The worker's restorer, built once (the network loaded on its device)."""
    from vidrestore.pipeline.build import build_restorer, resolve_device
    from vidrestore.weights import WeightStore

    store = WeightStore(config.weights_dir, allow_download=config.download)
    return build_restorer(config, store, resolve_device(config.device))


def restore_one(row: dict, outdir: str | Path, config, restorer, who: ProcessIdentity,
                on_frame: Callable[[int, int | None], None] | None = None,
                publish_guard: Callable[[], Any] | None = None) -> Outcome:
    """Restore the file of a claimed ledger row (outputs under ``outdir``); failures become
    an ``Outcome``. ``on_frame(frames written, expected total)`` follows its progress;
    ``publish_guard`` is the context the output is renamed into place in (``Ledger.holding``).

    Raises:
        Interrupted, KeyboardInterrupt: stop (the caller gives the claim back).
        WeightsError: missing or unfit weights (the caller stops the batch).
        ClaimLost: the claim was taken over; nothing was published or recorded.
    """
    from vidrestore.restore_video import restore_video

    source, output, report = Path(row["source"]), Path(outdir, row["output"]), Path(outdir, row["report"])
    started = time.perf_counter()

    def failed(error: str) -> Outcome:
        return Outcome("failed", error=error, seconds=time.perf_counter() - started,
                       host=who.host, pid=who.pid)

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(output, report, source)
        summary = restore_video(source, output, config, overwrite=True, report_path=report,
                                restorer=restorer, on_frame=on_frame, publish_guard=publish_guard)
    except (Interrupted, WeightsError, ClaimLost):
        raise
    except VidrestoreError as exc:
        return failed(str(exc))
    except MemoryError:
        return failed("out of memory (try a smaller --batch-size)")
    except Exception as exc:  # noqa: BLE001 - one file's bug must not stop the batch
        return failed(f"internal error: {type(exc).__name__}: {exc}".splitlines()[0])
    try:
        changed = FileStamp.of(source) != FileStamp(row["size"], row["mtime_ns"])
    except OSError:
        changed = True
    if changed:
        for path in (output, report):
            path.unlink(missing_ok=True)
        return failed(f"input changed while it was being restored: {source}")
    stamp = FileStamp.of(output)
    return Outcome("done", frames=summary.frames, faces=summary.faces, seconds=time.perf_counter() - started,
                   output=(stamp.size, stamp.mtime_ns, content_digest(output)),
                   host=who.host, pid=who.pid)


def record(ledger: Ledger, row, worker: int, outcome: Outcome) -> None:
    """Write ``outcome`` for the claimed ``row`` (done only after the output is in place,
    and after its done record, which survives a damaged ledger: see ``records``)."""
    if outcome.status == "done":
        write_record(ledger.outdir, row, output=outcome.output, frames=outcome.frames,
                     faces=outcome.faces, seconds=outcome.seconds, host=outcome.host, pid=outcome.pid)
        ledger.finish(row["id"], worker, output=outcome.output, frames=outcome.frames,
                      faces=outcome.faces, seconds=outcome.seconds, host=outcome.host, pid=outcome.pid)
    else:
        ledger.fail(row["id"], worker, outcome.error or "failed", seconds=outcome.seconds,
                    host=outcome.host or None, pid=outcome.pid or None)


def remove_leftovers(output: Path, report: Path, source: Path) -> None:
    """Delete temporary files a killed run left for exactly this output and report.

    Only names ``restore_video`` makes for them match: ``.<stem>.XXXXXXXX.partial<ext>``,
    ``.<report name>.XXXXXXXX.tmp`` and face cache entries ``.<input stem>.<key>.faces.tmp-*``
    (unless another input of this folder has the same stem: the output is then named by the
    whole input name, and the cache entries could be that input's); another output's
    temporary files never match. Safe because this worker holds the claim.
    """
    mkstemp = "[a-z0-9_]{8}"
    patterns = [
        (output.parent, re.compile(rf"\.{re.escape(output.stem)}\.{mkstemp}\.partial{re.escape(output.suffix)}")),
        (report.parent, re.compile(rf"\.{re.escape(report.name)}\.{mkstemp}\.tmp")),
    ]
    if output.stem == source.stem:
        patterns.append((output.parent / ".vidrestore-faces",
                         re.compile(rf"\.{re.escape(source.stem)}\.[0-9a-f]{{24}}\.faces\.tmp-\w+")))
    for folder, pattern in patterns:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if pattern.fullmatch(name):
                path = folder / name
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def work(ledger: Ledger, spec: WorkerSpec, worker: int, who: ProcessIdentity,
         report: Callable[[int, int, int | None], None] | None = None,
         beat: Heartbeat | None = None) -> int:
    """Claim and restore files of ``spec.run`` until its queue is empty; returns files done.

    ``report(file id, frames written, expected total)`` follows each file's progress (default:
    ``beat.report``); ``beat`` watches each claim, and a file whose claim it finds taken over
    is stopped at its next frame and left to its new holder.
    """
    restorer = None
    count = 0
    if report is None and beat is not None:
        report = beat.report
    while True:
        row = ledger.claim(spec.run, worker, who)
        if row is None:
            return count
        file_id = row["id"]
        if beat is not None:
            beat.watch(file_id)
        try:
            if restorer is None:
                restorer = build_worker_restorer(spec.config)
            outcome = restore_one(dict(row), ledger.outdir, spec.config, restorer, who,
                                  functools.partial(_on_frame, file_id, report, beat),
                                  functools.partial(ledger.holding, file_id, worker))
        except ClaimLost:
            continue  # another run holds the file now; nothing of this attempt remains
        except BaseException:
            ledger.release(file_id, worker)
            raise
        finally:
            if beat is not None:
                beat.watch(None)
        record(ledger, row, worker, outcome)
        count += 1


def _on_frame(file_id: int, report, beat: Heartbeat | None, frames: int, total: int | None) -> None:
    if beat is not None and beat.lost(file_id):
        raise ClaimLost(f"file {file_id} was taken over by another run; stopping it")
    if report is not None:
        report(file_id, frames, total)


def _on_sigterm(signum, frame) -> None:
    raise Interrupted("stopped by SIGTERM")


def worker_main(spec: WorkerSpec) -> None:
    """A worker process's entry point (``multiprocessing`` spawn target).

    Exit code: 0 when the queue is empty, 130 when stopped, else the fatal error's code (its
    message is in the ledger's ``workers.fatal``).
    """
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides; it sends SIGTERM
    die_with_parent(signal.SIGTERM)
    if not parent_is(spec.coordinator):
        sys.exit(Interrupted.exit_code)  # the coordinator died before this worker started
    if spec.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.gpu  # before torch is imported
    import torch

    torch.set_num_threads(max(1, spec.threads))
    ledger = Ledger(spec.ledger)
    who = ProcessIdentity.current()
    worker = ledger.register_worker(spec.run, who)
    beat = Heartbeat(spec.ledger, worker, parent=spec.coordinator)
    beat.start()
    fatal, code = None, 0
    try:
        work(ledger, spec, worker, who, beat=beat)
    except (Interrupted, KeyboardInterrupt):
        code = Interrupted.exit_code
    except VidrestoreError as exc:
        fatal, code = str(exc), exc.exit_code
    except BaseException as exc:  # noqa: BLE001 - reported through the ledger
        fatal, code = f"internal error in a worker: {type(exc).__name__}: {exc}", 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the clean-up finish
        beat.stop()
        ledger.release_worker(worker)
        ledger.end_worker(worker, fatal=fatal, code=code if fatal else None)
        ledger.close()
    sys.exit(code)
