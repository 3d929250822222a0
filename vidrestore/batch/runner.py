"""``run_batch``: plan, resume from the ledger, run the work, and say how it went."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vidrestore.errors import InputError, Interrupted, MissingWeightsError, UsageError

from .identity import ProcessIdentity, settings_digest
from .ledger import LEDGER_NAME, Ledger, ledger_errors, row_dict
from .local import cuda_devices, run_local
from .plan import collect_inputs, plan_outputs, select_shard
from .progress import BatchProgress
from .resume import prepare, settle
from .worker import WorkerSpec

EXIT_SOME_FAILED = 5
"""Exit code of a batch that finished with failed files (0: every file done)."""

EXIT_INCOMPLETE = 6
"""Exit code of a batch that ended with files neither done nor failed (pending, or held by
a run that is still going): a re-run finishes them. ``settle`` makes this rare: a run waits
for the files other runs hold and takes over those of dead workers."""

MAX_ROUNDS = 20
"""How often a run goes back to work on files that came back to it (see ``settle``)."""

WAIT_SECONDS = 1.0
SAY_WAITING_SECONDS = 60.0


@dataclass(frozen=True)
class BatchOptions:
    """One ``vidrestore batch`` run.

    Attributes:
        inputs: files and folders.
        outdir: the output folder (holds the ledger).
        config: the restoration settings.
        manifest: a file listing more inputs.
        patterns: ``--glob`` patterns for files found in folders (None: video extensions).
        jobs: worker processes (None: one per GPU, else 1).
        shard: (K, N): only the inputs of shard K of N.
        ray: a Ray address (``auto``) to run on instead of local processes.
        retries: a failed file is tried again on later runs until it has had 1 + retries
            attempts with these settings; also Ray's retries of a task whose worker died.
        resume: skip files already done with the same input and settings.
        quiet: no bar and no per-file lines.
        argv: the command line (recorded in the ledger).
    """

    inputs: tuple[Path, ...]
    outdir: Path
    config: object
    manifest: Path | None = None
    patterns: tuple[str, ...] | None = None
    jobs: int | None = None
    shard: tuple[int, int] | None = None
    ray: str | None = None
    retries: int = 2
    resume: bool = True
    quiet: bool = False
    argv: tuple[str, ...] = ()


@dataclass
class BatchResult:
    """How a run ended: the ledger rows of its inputs and what the run itself did."""

    run: str
    ledger: Path
    settings: str
    rows: list[dict]
    restored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        counts = {"done": 0, "failed": 0, "pending": 0, "running": 0}
        for row in self.rows:
            counts[row["status"]] += 1
        return counts

    @property
    def exit_code(self) -> int:
        """0 every file done; 6 (``EXIT_INCOMPLETE``) some neither done nor failed; 5
        (``EXIT_SOME_FAILED``) the rest done but some failed."""
        counts = self.counts()
        if counts["pending"] or counts["running"]:
            return EXIT_INCOMPLETE
        return EXIT_SOME_FAILED if counts["failed"] else 0

    def to_json(self) -> dict:
        return {
            "run": self.run, "ledger": str(self.ledger), "settings": self.settings,
            "seconds": round(self.seconds, 3), "counts": self.counts(),
            "restored": len(self.restored), "skipped": len(self.skipped), "busy": len(self.busy),
            "exit_code": self.exit_code,
            "files": [file_json(row, self.ledger.parent) for row in self.rows],
        }


def file_json(row: dict, outdir: Path) -> dict:
    """A ledger row as ``--json`` shows it (output paths absolute)."""
    seconds = row["seconds"]
    return {
        "input": row["key"], "source": row["source"], "status": row["status"],
        "output": str(outdir / row["output"]), "report": str(outdir / row["report"]),
        "error": row["error"],
        "attempts": row["attempts"], "completions": row["completions"],
        "interruptions": row["interruptions"], "frames": row["frames"], "faces": row["faces"],
        "seconds": seconds,
        "fps": round(row["frames"] / seconds, 3) if row["frames"] and seconds else None,
        "host": row["host"], "pid": row["pid"], "settings": row["settings"],
        "started_at": row["started_at"], "finished_at": row["finished_at"],
    }


def run_batch(options: BatchOptions, *, log: Callable[[str], None] = lambda line: None) -> BatchResult:
    """Restore every input of ``options`` that is not already done; see ``vidrestore.batch``.

    Raises:
        UsageError: bad options, no inputs, Ray missing.
        WorkerFailed: an error every file would meet (missing weights...), with its exit code.
        Interrupted, KeyboardInterrupt: stopped; files in progress are pending again.
    """
    started = time.perf_counter()
    config = options.config
    outdir = Path(os.path.abspath(options.outdir))
    root, files = collect_inputs(options.inputs, manifest=options.manifest, patterns=options.patterns,
                                 exclude=[outdir])
    if not files:
        raise UsageError(f"no video files found under {root}"
                         + (" matching --glob" if options.patterns else "") + " (see --glob)")
    items = plan_outputs(files, root, outdir, config.encode.codec)
    if options.shard is not None:
        items = select_shard(items, *options.shard)
    check_files(config)
    settings = settings_digest(config)
    with ledger_errors(outdir / LEDGER_NAME):
        return _run(options, items, settings, outdir, started, log)


def _run(options: BatchOptions, items, settings: str, outdir: Path, started: float,
         log: Callable[[str], None]) -> BatchResult:
    config = options.config
    ledger = Ledger.in_folder(outdir)
    run = uuid.uuid4().hex[:12]
    ledger.begin_run(run, ProcessIdentity.current(), options.argv, settings)
    outcome = "interrupted"
    try:
        prepared = prepare(ledger, items, settings=settings, run=run, resume=options.resume,
                           max_attempts=1 + options.retries)
        if prepared.skipped:
            log(f"{len(prepared.skipped)} of {len(items)} files already done; skipping them")
        if prepared.busy:
            log(f"{len(prepared.busy)} files are being restored by another live run; "
                "this run waits for them at its end")
        progress = BatchProgress(len(prepared.queued), quiet=options.quiet)
        try:
            if prepared.queued:
                _execute(ledger, options, run, settings, len(prepared.queued), progress, log)
            worked = _finish(ledger, options, run, settings, [i.key for i in items], set(prepared.queued),
                             progress, log)
        finally:
            progress.close()
        outcome = "finished"
    except (Interrupted, KeyboardInterrupt):
        raise
    except BaseException as exc:
        outcome = f"stopped: {exc}"
        raise
    finally:
        ledger.end_run(run, outcome)
    rows = ledger.files([i.key for i in items])
    result = BatchResult(
        run=run, ledger=ledger.path, settings=settings,
        rows=[row_dict(rows[i.key]) for i in items],
        restored=[k for k in [*prepared.queued, *worked]
                  if rows[k]["status"] == "done" and rows[k]["run"] == run],
        skipped=prepared.skipped, busy=prepared.busy,
        seconds=time.perf_counter() - started,
    )
    ledger.close()
    return result


def _finish(ledger: Ledger, options: BatchOptions, run: str, settings: str, keys: list[str],
            queued: set[str], progress: BatchProgress, log: Callable[[str], None]) -> list[str]:
    """After the run's queue is empty: work on the files that came back to it, wait for those
    other live runs hold, until each of ``keys`` is done or failed (see ``resume.settle``).
    Returns the keys it queued that were not in ``queued`` (the run's first queue)."""
    extra: list[str] = []
    rounds = 0
    said = None
    while True:
        state = settle(ledger, keys, run=run)
        if state.queued and rounds < MAX_ROUNDS:
            rounds += 1
            new = [k for k in state.queued if k not in queued and k not in extra]
            extra += new
            progress.add(len(new))
            log(f"{len(state.queued)} files came back to this run (released or left by a stopped "
                "worker); restoring them")
            _execute(ledger, options, run, settings, len(state.queued), progress, log)
            continue
        if not state.held or state.queued:
            return extra
        if said is None or time.monotonic() - said >= SAY_WAITING_SECONDS:
            holders = sorted({f"{r['host']} pid {r['pid']}" for r in state.held})
            log(f"waiting for {len(state.held)} files being restored by another run "
                f"({', '.join(holders[:3])}{' ...' if len(holders) > 3 else ''})")
            said = time.monotonic()
        time.sleep(WAIT_SECONDS)


def _execute(ledger: Ledger, options: BatchOptions, run: str, settings: str, queued: int,
             progress: BatchProgress, log: Callable[[str], None]) -> None:
    config = options.config
    if options.ray is not None:
        from .ray_runner import run_on_ray

        run_on_ray(ledger, run=run, config=config, settings=settings, address=options.ray,
                   retries=options.retries, on_event=progress.event, log=log)
        return
    gpus = cuda_devices(config.device)
    jobs = options.jobs or max(1, len(gpus))
    spec = WorkerSpec(ledger=str(ledger.path), run=run, config=config, threads=1, coordinator=os.getpid())
    run_local(ledger, spec, jobs=min(jobs, queued), gpus=gpus, on_event=progress.event,
              on_running=progress.running)


def check_files(config) -> None:
    """Refuse, before the ledger is touched, a ``--weights`` or ``--reference`` file that is
    missing: the settings hash covers their content, so a run without them would take every
    done file for one with other settings and queue it again (and every worker would fail).

    Raises:
        MissingWeightsError: the ``--weights`` file is gone (exit code 4).
        InputError: the ``--reference`` photo is gone (exit code 3).
    """
    weights, reference = getattr(config, "weights", None), getattr(config, "reference", None)
    if weights is not None and not Path(weights).is_file():
        raise MissingWeightsError(f"weights file not found: {weights}")
    if reference is not None and not Path(reference).is_file():
        raise InputError(f"reference image not found: {reference}")


def validate(options: BatchOptions) -> None:
    """Option checks that need no file system."""
    if options.jobs is not None and options.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {options.jobs}")
    if options.retries < 0:
        raise UsageError(f"--retries must be >= 0, got {options.retries}")
    if options.ray is not None and options.jobs is not None:
        raise UsageError("--jobs and --ray do not mix (Ray places one task per file itself)")


__all__ = ["BatchOptions", "BatchResult", "EXIT_INCOMPLETE", "EXIT_SOME_FAILED", "file_json", "run_batch",
           "validate"]
