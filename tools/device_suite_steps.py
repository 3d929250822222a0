"""The device suite's plan and steps (``tools/device_suite.py``), most important first, each with
the seconds it is expected to take on an H100 / H200 (or on a CPU for the dry run) so the suite
can skip what would not fit in its budget. The measurements are in ``device_suite_measure``;
``device_suite_report`` renders what they return.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

import device_suite_measure as measure

REPO = Path(__file__).resolve().parents[1]

GPU_ESTIMATES = {"face-ops": 15, "engine:torch": 20, "engine:compiled": 200, "engine:compiled-jit": 180,
                 "engine:onnxruntime": 120, "engine:tensorrt": 300, "overlap": 15, "e2e": 40, "encode": 25,
                 "gpu-tests": 60}
"""Seconds per step on an H100 / H200: first guesses, on the safe side (a GPU session should
correct them from suite.json's timings). Steps in a child process (the builds, the tests) are
also stopped when the budget runs out."""

CPU_ESTIMATES = {"face-ops": 6, "engine:torch": 15, "engine:compiled": 150, "engine:compiled-jit": 150,
                 "engine:onnxruntime": 60, "engine:tensorrt": 400, "overlap": 3, "e2e": 12, "encode": 6,
                 "gpu-tests": 600}
"""Seconds per step of the dry run (tiny network, small clips) on a 2-core CPU."""


@dataclass(frozen=True)
class Plan:
    """What the suite measures, and where.

    Attributes:
        dry_run: CPU, tiny network, small clips.
        device: ``cuda`` or ``cpu``.
        precisions, batches: engine grid (fp32 is the reference, measured last).
        backends: engine backends, in the order measured.
        clip: ``(width, height)`` of the end-to-end clips.
        clip_frames, warmup: frames measured, and untimed warm-up frames before.
        e2e_batch: faces per network call end to end.
        encode_frames: frames per encoder setting.
        work: folder for clips, weights and engine artifacts.
        site: where the suite installed packages (children use it too).
        estimates: seconds per step kind.
    """

    dry_run: bool
    device: str
    work: Path
    site: Path
    precisions: tuple[str, ...] = ("fp16", "bf16", "fp32")
    batches: tuple[int, ...] = (1, 8, 32)
    backends: tuple[str, ...] = ("torch", "compiled", "compiled-jit", "onnxruntime", "tensorrt")
    clip: tuple[int, int] = (1920, 1080)
    clip_frames: int = 240
    warmup: int = 32
    e2e_batch: int = 16
    encode_frames: int = 48
    estimates: dict = field(default_factory=lambda: dict(GPU_ESTIMATES))

    @classmethod
    def make(cls, *, dry_run: bool, work: Path, site: Path) -> "Plan":
        work.mkdir(parents=True, exist_ok=True)
        if dry_run:  # fp32 only: reduced precision on a CPU runs slow paths of the tiny network (minutes)
            torch.set_num_threads(1)  # as the tests: OpenMP threads waiting on a shared core crawl
            return cls(True, "cpu", work, site, precisions=("fp32",), clip=(320, 180), clip_frames=4, warmup=1,
                       e2e_batch=4, encode_frames=6, estimates=dict(CPU_ESTIMATES))
        if not torch.cuda.is_available():
            raise SystemExit("device suite: PyTorch sees no CUDA device (use --dry-run on a CPU)")
        return cls(False, "cuda", work, site)

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def device_name(self) -> str:
        return torch.cuda.get_device_name() if self.device == "cuda" else "CPU (dry run)"


@dataclass
class Step:
    name: str
    estimate: float
    run: Callable[[], object]
    unavailable: str | None = None


def environment(plan: Plan) -> dict:
    """The machine, the libraries, the budget's basis."""
    import av

    from vidrestore.bench import environment as bench_environment

    env = {**bench_environment(), "av": av.__version__, "device": plan.device_name,
           "cuda": torch.version.cuda, "cpu_count": os.cpu_count()}
    if plan.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(gpu_memory_gb=round(props.total_memory / 2**30, 1), sm_count=props.multi_processor_count,
                   capability=f"{props.major}.{props.minor}")
    return env


def child_engine(plan: Plan, spec: str, out: Path) -> int:
    """``--child-engine``: measure one engine in this (child) process and write its row."""
    backend, _, precision = spec.partition(":")
    row = measure.measure_engine(plan, backend, precision)
    out.write_text(json.dumps(row, default=str))
    return 0


def _engine_in_child(plan: Plan, budget, backend: str, precision: str) -> dict:
    out = plan.work / f"engine-{backend}-{precision}.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, str(REPO / "tools" / "device_suite.py"), "--out", str(plan.work / "child"),
               "--site", str(plan.site), "--work", str(plan.work), "--child-engine", f"{backend}:{precision}",
               "--child-out", str(out)] + (["--dry-run"] if plan.dry_run else [])
    limit = max(5.0, budget.left() - 5.0)
    returncode, text = run_child(command, limit)
    if returncode is None:
        raise TimeoutError(f"{backend}:{precision} did not finish within the budget left ({limit:.0f} s)")
    if returncode != 0 or not out.exists():
        tail = text.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{backend}:{precision} child failed (exit {returncode}): {tail[0]}")
    return json.loads(out.read_text())


CHILDREN: list[subprocess.Popen] = []
"""Child processes running now (the suite's watchdog kills them when the budget is spent)."""


def run_child(command: list[str], timeout: float, env: dict | None = None) -> tuple[int | None, str]:
    """Run ``command`` (output captured) for at most ``timeout`` s: ``(exit code, output)``,
    exit code None when it was stopped."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env)
    CHILDREN.append(child)
    try:
        output, _ = child.communicate(timeout=timeout)
        return child.returncode, output
    except subprocess.TimeoutExpired:
        child.kill()
        output, _ = child.communicate()
        return None, output
    finally:
        CHILDREN.remove(child)


def engine_steps(plan: Plan, budget) -> list[Step]:
    """Every backend × precision; unavailable ones skipped at once, saying why."""
    from vidrestore.engines import backend_unavailable

    steps = []
    for backend in plan.backends:
        for precision in plan.precisions:
            name = f"engine:{backend}:{precision}"
            why = backend_unavailable(backend, plan.torch_device, precision)
            if why is None and plan.dry_run and backend in ("compiled", "compiled-jit", "onnxruntime"):
                why = "dry run: its build takes minutes on a CPU (tests/engines covers it)"
            if backend == "torch" and not plan.dry_run:
                run = (lambda p=precision: measure.measure_engine(plan, "torch", p, budget))
            else:  # in a child process, stopped when the budget runs out (the dry run: as a check of that)
                run = (lambda b=backend, p=precision: _engine_in_child(plan, budget, b, p))
            steps.append(Step(name, plan.estimates[f"engine:{backend}"], run, why))
    return steps


def gpu_tests(plan: Plan, budget) -> dict:
    """The tests marked ``gpu`` (engines, device face ops, restorer), in a child pytest."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plan.site), str(REPO)]))
    command = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-o", "pythonpath=tests", "-p", "no:cacheprovider",
               "tests/engines", "tests/faces/test_device_ops.py", "tests/pipeline/test_device_path.py"]
    limit = max(5.0, min(budget.left() - 5.0, 1.5 * plan.estimates["gpu-tests"]))
    returncode, output = run_child(command, limit, env)
    lines = output.strip().splitlines()
    if returncode is None:
        lines.append(f"stopped after {limit:.0f} s")
    return {"returncode": returncode, "tail": "\n".join(lines[-15:])}


# -- the order -----------------------------------------------------------------------------


def _best_precision(plan: Plan, measured: dict) -> str:
    """The fastest reduced precision of the eager engine that passed its check (fp16 if none)."""
    best, rate = "fp16", -1.0
    for precision in ("fp16", "bf16"):
        row = measured.get(f"engine:torch:{precision}")
        if row and row["check"]["passed"] and row["faces_per_s"]:
            top = max(row["faces_per_s"].values())
            if top > rate:
                best, rate = precision, top
    return "fp32" if plan.dry_run else best


def steps(plan: Plan, budget) -> list[Step]:
    """Every step, most important first (so a short budget keeps what matters most)."""
    e = plan.estimates
    measured: dict = {}

    def keep(name, fn):
        def run():
            out = fn()
            measured[name] = out
            return out
        return run

    engine = engine_steps(plan, budget)
    torch_steps = [s for s in engine if s.name.startswith("engine:torch:")]
    other = {s.name: s for s in engine if not s.name.startswith("engine:torch:")}
    best = lambda: _best_precision(plan, measured)  # noqa: E731 - decided once the eager engines ran
    order = [Step("face-ops", e["face-ops"], lambda: measure.face_ops(plan)),
             Step("gpu-tests", e["gpu-tests"], lambda: gpu_tests(plan, budget),
                  "dry run: CI runs the tests itself" if plan.dry_run else None)]
    order += [dataclasses.replace(s, run=keep(s.name, s.run)) for s in torch_steps]
    order.append(Step("overlap", e["overlap"], lambda: measure.overlap(plan, best())))
    for faces in (1, 4):
        order.append(Step(f"e2e:{faces}face", e["e2e"] + 8 * faces, lambda f=faces: measure.end_to_end(plan, f, best())))
    order.append(Step("encode", e["encode"], lambda: measure.encoding(plan)))
    order.append(Step("e2e:1face:detect-every-5", e["e2e"], lambda: measure.end_to_end(plan, 1, best(), detect_every=5)))
    # The slow builds last, the likely fastest first; the OpenCV face ops comparison between them.
    if "engine:compiled:fp16" in other:
        order.append(other.pop("engine:compiled:fp16"))
    order.append(Step("e2e:1face:opencv-face-ops", e["e2e"], lambda: measure.end_to_end(plan, 1, best(), face_ops="opencv")))
    rank = {"fp16": 0, "bf16": 1, "fp32": 2}
    order += sorted(other.values(), key=lambda s: rank[s.name.rsplit(":", 1)[1]])
    return order


def summary(data: dict) -> dict:
    """Targets met or not, and the engines ranked by what was measured (for ``AUTO_ORDER``)."""
    sections = data["sections"]
    engines = [v for k, v in sections.items() if k.startswith("engine:")]
    ranked = sorted(((max(r["faces_per_s"].values()), r["engine"]) for r in engines
                     if r.get("faces_per_s") and r["check"]["passed"]), reverse=True)
    big = [v for r in engines if r["check"]["passed"] for b, v in r.get("faces_per_s", {}).items() if int(b) >= 16]
    one = sections.get("e2e:1face", {}).get("fps")
    four = sections.get("e2e:4face", {}).get("fps")
    return {
        "engines_by_faces_per_s": [{"engine": name, "faces_per_s": rate} for rate, name in ranked],
        "targets": {
            "faces_per_s_batch_16_plus": {"target": 400, "measured": max(big) if big else None},
            "fps_1080p_one_face": {"target": 120, "measured": one},
            "fps_1080p_four_faces": {"target": 60, "measured": four},
        },
        "dry_run": data.get("dry_run"),
        "note": "dry run: tiny network on a CPU; these numbers check the suite, not the GPU targets"
        if data.get("dry_run") else "",
        "finite": all(math.isfinite(r["check"]["psnr_db"]) for r in engines if r.get("check")),
    }
