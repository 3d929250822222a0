"""Worker processes on this machine, sharing nothing but the ledger.

The coordinator (the ``vidrestore batch`` process) starts ``jobs`` worker processes (spawned
fresh: no inherited threads or CUDA state), each pinned to one GPU on a CUDA machine, and
then only watches: it feeds the ledger's events to the display, and when a worker dies
(a crash, an out-of-memory kill) it records the file that worker held as failed and starts a
replacement while work is left. A worker that stops on a fatal error (missing weights) stops
the batch with that error.

Ctrl-C or SIGTERM: the coordinator sends SIGTERM to the workers (which ignore SIGINT so the
stop is orderly), each deletes its temporary output and gives its file back (pending), and
the coordinator gives back anything a worker could not.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from vidrestore.errors import VidrestoreError

from .ledger import Ledger
from .worker import WorkerSpec, remove_leftovers, worker_main

POLL_SECONDS = 0.2
PROGRESS_POLL_SECONDS = 1.0
STOP_SECONDS = 60.0


class WorkerFailed(VidrestoreError):
    """A worker stopped on an error that every file would meet (missing weights...)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cuda_devices(device: str) -> list[str]:
    """The CUDA devices workers may be pinned to (``CUDA_VISIBLE_DEVICES`` entries); empty on
    CPU. Avoids importing torch where no NVIDIA device can exist."""
    if device == "cpu":
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        entries = [e.strip() for e in visible.split(",") if e.strip()]
        if not entries or entries[0] == "-1":
            return []
    elif not Path("/dev/nvidia0").exists() and not Path("/dev/dxg").exists():
        return []
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible is not None:
        return entries[:count]
    return [str(i) for i in range(count)]


def run_local(ledger: Ledger, spec: WorkerSpec, *, jobs: int, gpus: list[str],
              on_event: Callable = lambda row: None, on_running: Callable = lambda rows: None) -> None:
    """Run ``spec.run``'s queue with ``jobs`` worker processes; returns when it is empty.

    ``on_event`` gets each ledger event of the run (with its file's row), ``on_running`` the
    rows of the files being restored (with their progress) every ``PROGRESS_POLL_SECONDS``.

    Raises:
        WorkerFailed: a worker's fatal error (or it died before it could start).
        Interrupted, KeyboardInterrupt: after the workers are stopped and their files given back.
    """
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, cpu_count() // jobs)
    procs: list = []
    slot_of: dict[int, int] = {}
    last_event = 0

    def start(slot: int) -> None:
        gpu = gpus[slot % len(gpus)] if gpus else None
        proc = ctx.Process(target=worker_main, args=(replace(spec, threads=threads, gpu=gpu),),
                           name=f"vidrestore-worker-{slot}")
        proc.start()
        procs.append(proc)
        slot_of[proc.pid] = slot

    def drain() -> None:
        nonlocal last_event
        for row in ledger.events(spec.run, last_event):
            last_event = row["event"]
            on_event(row)

    for slot in range(jobs):
        start(slot)
    respawns = 0
    polled = time.monotonic()
    try:
        while procs:
            time.sleep(POLL_SECONDS)
            drain()
            if time.monotonic() - polled >= PROGRESS_POLL_SECONDS:
                on_running(ledger.running(spec.run))
                polled = time.monotonic()
            for proc in [p for p in procs if not p.is_alive()]:
                procs.remove(proc)
                proc.join()
                worker = _worker_row(ledger, spec.run, proc.pid)
                if proc.exitcode == 0:
                    continue
                if worker is not None and worker["fatal"]:
                    raise WorkerFailed(worker["fatal"], worker["fatal_code"] or 1)
                if worker is None:
                    raise WorkerFailed(f"a worker process exited with code {proc.exitcode} before "
                                       "it started (see the messages above)")
                held = ledger.release_worker(
                    worker["id"], error=f"the worker process died ({_death(proc.exitcode)}) "
                                        "while restoring this file")
                ledger.end_worker(worker["id"])
                _clean(ledger, held)
                if (held or proc.exitcode == 130) and ledger.has_pending(spec.run) and respawns < 100 * jobs:
                    respawns += 1
                    start(slot_of[proc.pid])
        drain()
    finally:
        if procs:
            _stop(procs)
            for proc in procs:
                worker = _worker_row(ledger, spec.run, proc.pid)
                if worker is not None:
                    _clean(ledger, ledger.release_worker(worker["id"]))
            drain()


def _stop(procs: list) -> None:
    """SIGTERM, wait for the orderly stop, then SIGKILL what is left."""
    for proc in procs:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()


def _clean(ledger: Ledger, rows) -> None:
    """Delete the temporary files a dead worker left for the files it held."""
    for row in rows:
        remove_leftovers(ledger.absolute(row["output"]), ledger.absolute(row["report"]), Path(row["source"]))


def _worker_row(ledger: Ledger, run: str, pid: int):
    rows = [w for w in ledger.workers_of_run(run) if w["pid"] == pid]
    return rows[-1] if rows else None


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
