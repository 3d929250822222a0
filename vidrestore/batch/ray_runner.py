"""One Ray task per file, with the ledger written by the driver.

The driver (the ``vidrestore batch --ray`` process) claims a file in the ledger, submits a
task for it, and records the task's outcome; it keeps about two tasks per cluster slot in
flight. Tasks need the inputs and OUTDIR at the same paths on every node (shared storage);
the ledger itself is written by the driver only, so SQLite never has to lock across machines.
Each task asks for one CPU, or one GPU when the device is CUDA (``--device cuda``, or
``auto`` on a cluster that has GPUs); Ray retries a task whose worker or node died (up to
``--retries`` times), and the restorer is built once per Ray worker process and reused by
the tasks that process runs.

Killed, the driver's claims are those of a dead process: the next run redoes them. Ctrl-C
or SIGTERM cancels the tasks in flight (their temporary outputs are deleted) and gives
their files back.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from vidrestore.errors import Interrupted, UsageError, VidrestoreError, WeightsError

from .heartbeat import Heartbeat
from .identity import ProcessIdentity
from .ledger import Ledger
from .local import WorkerFailed
from .worker import Outcome, build_worker_restorer, record, restore_one

# One restorer per Ray worker process, reused by the tasks it runs (Ray keeps worker
# processes between tasks); keyed by settings so a process never mixes two batches' models.
_RESTORERS: dict[str, object] = {}


def import_ray():
    """``ray``, or a one-line UsageError saying how to get it."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'vidrestore[ray]' (or pip install ray)") from None
    return ray


def connect(ray, address: str, log: Callable[[str], None]) -> bool:
    """Join the cluster at ``address`` (``auto``: the running one, else a new local one).

    Returns whether this call started Ray (and so should shut it down).
    """
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "configure_logging": True}
    try:
        ray.init(address=address, **quiet)
        return True
    except ConnectionError as exc:
        if address != "auto":
            raise UsageError(f"cannot reach the Ray cluster at {address}: {exc}".splitlines()[0]) from None
    log("no running Ray cluster found; starting one on this machine")
    ray.init(include_dashboard=False, **quiet)
    return True


def _restore_task(row: dict, outdir: str, config, settings: str, threads: int) -> Outcome:
    """The Ray task: restore one claimed file; errors come back as an ``Outcome``."""
    import torch

    torch.set_num_threads(max(1, threads))
    who = ProcessIdentity.current()
    try:
        restorer = _RESTORERS.get(settings)
        if restorer is None:
            _RESTORERS.clear()
            restorer = _RESTORERS[settings] = build_worker_restorer(config)
        return restore_one(row, outdir, config, restorer, who)
    except WeightsError as exc:
        return Outcome("failed", error=str(exc), host=who.host, pid=who.pid, fatal=(str(exc), exc.exit_code))
    except Interrupted:
        raise
    except VidrestoreError as exc:  # building the restorer: every file would fail
        return Outcome("failed", error=str(exc), host=who.host, pid=who.pid, fatal=(str(exc), exc.exit_code))


def run_on_ray(ledger: Ledger, *, run: str, config, settings: str, address: str, retries: int,
               on_event: Callable = lambda row: None, log: Callable[[str], None] = lambda line: None) -> None:
    """Run ``run``'s queue as Ray tasks; returns when it is empty.

    Raises:
        UsageError: Ray missing or the cluster unreachable.
        WorkerFailed: a task met an error every file would meet (missing weights...).
        Interrupted, KeyboardInterrupt: after cancelling the tasks and giving their files back.
    """
    ray = import_ray()
    started_ray = connect(ray, address, log)
    who = ProcessIdentity.current()
    worker = ledger.register_worker(run, who)
    beat = Heartbeat(str(ledger.path), worker)
    beat.start()
    in_flight: dict = {}
    last_event = 0

    def drain() -> None:
        nonlocal last_event
        for row in ledger.events(run, last_event):
            last_event = row["event"]
            on_event(row)

    try:
        resources = ray.cluster_resources()
        gpu = config.device == "cuda" or (config.device == "auto" and resources.get("GPU", 0) > 0)
        slots = int(resources.get("GPU" if gpu else "CPU", 1)) or 1
        task = ray.remote(_restore_task).options(
            num_cpus=1, num_gpus=1 if gpu else 0, max_retries=retries, retry_exceptions=False)
        while True:
            while len(in_flight) < 2 * slots:
                row = ledger.claim(run, worker, who)
                if row is None:
                    break
                in_flight[task.remote(dict(row), str(ledger.outdir), config, settings, 1)] = row
            if not in_flight:
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
            for ref in ready:
                row = in_flight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    outcome = Outcome("failed", error=f"ray: {str(exc).strip().splitlines()[0]}")
                if outcome.fatal is not None:
                    ledger.release(row["id"], worker, "stopped: fatal error")
                    raise WorkerFailed(*outcome.fatal)
                record(ledger, row, worker, outcome)
            drain()
    finally:
        if in_flight:
            _cancel(ray, in_flight)
        beat.stop()
        ledger.release_worker(worker)
        ledger.end_worker(worker)
        drain()
        if started_ray:
            ray.shutdown()


def _cancel(ray, in_flight: dict) -> None:
    """Cancel running tasks (KeyboardInterrupt in the task: it deletes its temporary file),
    then force what has not stopped after a while."""
    refs = list(in_flight)
    for ref in refs:
        ray.cancel(ref, force=False)
    deadline = time.monotonic() + 30.0
    pending = refs
    while pending and time.monotonic() < deadline:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
    for ref in pending:
        ray.cancel(ref, force=True)
