"""Measuring the pipeline: per-stage time, throughput, latency and memory of real runs.

``run_bench`` builds the restorer once (timed apart), runs a short warm-up through the whole
pipeline (first-call costs: kernel selection, compiled graphs, detector set-up), then the
measured run: ``restore_video`` on the first ``frames`` frames, writing a real output file.

Stage seconds are busy seconds in each stage's own thread; the threads overlap, so their sum
exceeds the wall time and the slowest stage bounds the frame rate. ``detect``, ``track`` and
``align`` are parts of the face stage's one thread (``track`` is its remainder: tracking,
scene cuts, identity).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vidrestore.pipeline.runner import StageClock

from .settings import RestoreConfig

Log = Callable[[str], None]

STAGES: tuple[str, ...] = ("decode", "detect", "verify", "track", "align", "restore", "upscale", "paste", "encode")


@dataclass
class BenchResult:
    """One measured run (all times in seconds unless the name says otherwise)."""

    engine: str
    restorer: str
    model: str
    precision: str
    device: str
    batch_size: int
    frames: int
    faces: int
    seconds: float
    fps: float
    faces_per_s: float
    stages: dict[str, float]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    peak_rss_mb: float
    peak_gpu_mb: float | None
    build_seconds: float
    warmup_frames: int
    notes: list[str] = field(default_factory=list)

    @property
    def restore_faces_per_s(self) -> float:
        """Faces per busy second of the restore stage (the engine inside the pipeline)."""
        busy = self.stages.get("restore", 0.0)
        return self.faces / busy if busy > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "restore_faces_per_s": self.restore_faces_per_s}


def split_stages(stage_seconds: dict[str, float]) -> dict[str, float]:
    """``RunSummary.stage_seconds`` → the ``STAGES`` table (face stage split in four)."""
    faces = stage_seconds.get("faces", 0.0)
    detect = stage_seconds.get("faces.detect", 0.0)
    verify = stage_seconds.get("faces.verify", 0.0)
    align = stage_seconds.get("faces.align", 0.0)
    out = {
        "decode": stage_seconds.get("decode", 0.0),
        "detect": detect,
        "verify": verify,
        "track": max(0.0, faces - detect - verify - align),
        "align": align,
        "restore": stage_seconds.get("restore", 0.0),
        "upscale": stage_seconds.get("upscale", 0.0),
        "paste": stage_seconds.get("paste", 0.0),
        "encode": stage_seconds.get("encode", 0.0),
    }
    return {k: round(v, 4) for k, v in out.items()}


class PeakMemory:
    """Peak resident memory of this process (psutil, sampled every ``period`` s) and peak CUDA
    memory allocated by torch, over a ``with`` block."""

    def __init__(self, device=None, period: float = 0.02) -> None:
        self.device = device
        self.period = period
        self.peak_rss = 0
        self.peak_gpu: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakMemory":
        import psutil

        self._process = psutil.Process()
        self.peak_rss = self._process.memory_info().rss
        if self._cuda:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._thread = threading.Thread(target=self._sample, name="vidrestore-bench-rss", daemon=True)
        self._thread.start()
        return self

    @property
    def _cuda(self) -> bool:
        return self.device is not None and getattr(self.device, "type", None) == "cuda"

    def _sample(self) -> None:
        while not self._stop.wait(self.period):
            self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)
        if self._cuda:
            import torch

            self.peak_gpu = torch.cuda.max_memory_allocated(self.device)


def run_bench(
    source: str | Path,
    config: RestoreConfig,
    *,
    engine: str | None = None,
    frames: int | None = None,
    warmup: int = 8,
    tiny: bool = False,
    output: str | Path | None = None,
    log: Log = lambda line: None,
) -> BenchResult:
    """Build the restorer, warm up, then measure one run of ``source`` (see module doc).

    Args:
        source: the input video.
        config: the run's settings (``engine`` may be overridden by ``engine``, given as
            ``BACKEND`` or ``BACKEND:PRECISION``, e.g. ``torch:bf16``); the face cache is
            always off, so every run really detects.
        frames: measure this many frames (default: the whole video).
        warmup: frames of the warm-up run (0: none).
        tiny: the registry's tiny network with seeded weights (tests, CI).
        output: keep the measured run's video here (default: a temporary file).
        log: receives set-up notes.
    """
    from vidrestore.io.encoding import output_suffix

    from .pipeline.build import build_restorer, resolve_device
    from .restore_video import Notes, restore_video
    from .weights import WeightStore

    label = engine or config.engine
    if engine:
        backend, _, precision = engine.partition(":")
        config = dataclasses.replace(config, engine=backend, precision=precision or config.precision)
    config = dataclasses.replace(config, face_cache=False)
    device = resolve_device(config.device)
    store = WeightStore(config.weights_dir, allow_download=config.download)
    notes = Notes(log)
    start = time.perf_counter()
    restorer = build_restorer(config, store, device, log=notes, tiny=tiny)
    build_seconds = time.perf_counter() - start
    info = getattr(getattr(restorer, "engine", None), "info", None)
    suffix = output_suffix(Path(source).suffix or ".mp4", config.encode.codec)  # a .webm input: .mkv
    with tempfile.TemporaryDirectory(prefix="vidrestore-bench-") as tmp:
        if warmup > 0:
            restore_video(source, Path(tmp) / f"warmup{suffix}", config, overwrite=True, restorer=restorer,
                          max_frames=warmup)
        target = Path(output) if output else Path(tmp) / f"bench{suffix}"
        clock = StageClock(latencies=[])
        with PeakMemory(device) as memory:
            summary = restore_video(source, target, config, overwrite=True, restorer=restorer,
                                    max_frames=frames, clock=clock)
    latencies = np.asarray(clock.latencies or [np.nan]) * 1000
    has_latency = bool(clock.latencies)
    return BenchResult(
        engine=label,
        restorer=restorer.name,
        model=config.model,
        precision=info.precision if info else "n/a",
        device=str(device),
        batch_size=config.batch_for(device),
        frames=summary.frames,
        faces=summary.faces,
        seconds=round(summary.seconds, 4),
        fps=round(summary.fps, 4),
        faces_per_s=round(summary.faces / summary.seconds, 4) if summary.seconds > 0 else 0.0,
        stages=split_stages(summary.stage_seconds),
        latency_p50_ms=round(float(np.percentile(latencies, 50)), 2) if has_latency else None,
        latency_p95_ms=round(float(np.percentile(latencies, 95)), 2) if has_latency else None,
        peak_rss_mb=round(memory.peak_rss / 2**20, 1),
        peak_gpu_mb=round(memory.peak_gpu / 2**20, 1) if memory.peak_gpu is not None else None,
        build_seconds=round(build_seconds, 2),
        warmup_frames=warmup,
        notes=notes.lines + summary.notes,
    )


def environment() -> dict:
    """The machine a benchmark ran on."""
    import os

    import torch

    env = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            env["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    try:
        env["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return env


def format_table(results: Sequence[BenchResult]) -> str:
    """The terminal table: one row per run; stage columns in ms per frame."""
    head = (["engine", "frames", "faces", "fps", "faces/s", "p50 ms", "p95 ms", "RSS MB", "GPU MB"]
            + [f"{s} ms/f" for s in STAGES])
    rows = []
    for r in results:
        per_frame = [1000 * r.stages.get(s, 0.0) / max(r.frames, 1) for s in STAGES]
        rows.append([
            r.engine if r.engine == r.restorer else f"{r.engine} ({r.restorer})",
            str(r.frames), str(r.faces), f"{r.fps:.2f}", f"{r.faces_per_s:.2f}",
            _num(r.latency_p50_ms), _num(r.latency_p95_ms), f"{r.peak_rss_mb:.0f}",
            _num(r.peak_gpu_mb, "{:.0f}"),
        ] + [f"{v:.1f}" for v in per_frame])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    for row in rows:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
    lines.append("stage columns: busy ms per frame in each stage's own thread (stages overlap); "
                 "detect/track/align share the face stage's thread")
    return "\n".join(lines)


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def to_json(results: Sequence[BenchResult], *, source: str | Path, command: str | None = None) -> dict:
    """The JSON report: the first run's fields at the top level (``frames``, ``fps``,
    ``faces_per_s``, ``stages``...), every run under ``runs``, and the machine."""
    runs = [r.to_dict() for r in results]
    return {**runs[0], "runs": runs, "input": str(source), "environment": environment(),
            "command": command}


def write_json(results: Sequence[BenchResult], path: str | Path, *, source: str | Path,
               command: str | None = None) -> Path:
    from vidrestore.io.atomic import write_text_atomic

    text = json.dumps(to_json(results, source=source, command=command), indent=1, default=str) + "\n"
    write_text_atomic(path, text)
    return Path(path)


def plot(results: Sequence[BenchResult], path: str | Path, *, title: str | None = None) -> Path:
    """A PNG: per-stage busy ms per frame for each run (grouped bars), and frames/s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_stages, ax_fps) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    n = len(results)
    width = 0.8 / n
    x = np.arange(len(STAGES))
    for i, r in enumerate(results):
        values = [1000 * r.stages.get(s, 0.0) / max(r.frames, 1) for s in STAGES]
        ax_stages.bar(x + (i - (n - 1) / 2) * width, values, width, label=r.engine)
    ax_stages.set_xticks(x, STAGES)
    ax_stages.set_ylabel("busy ms per frame")
    ax_stages.set_title("per-stage time")
    ax_stages.legend(fontsize="small")
    labels = [r.engine for r in results]
    ax_fps.bar(range(n), [r.fps for r in results], color=[f"C{i}" for i in range(n)])
    ax_fps.set_xticks(range(n), labels, rotation=30, ha="right")
    ax_fps.set_ylabel("frames / s")
    ax_fps.set_title("end to end")
    fig.suptitle(title or f"vidrestore bench: {results[0].model} on {results[0].device}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
