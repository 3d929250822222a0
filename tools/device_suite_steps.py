"""The device suite's steps (``tools/device_suite.py``), most important first, each with the
seconds it is expected to take on an H100 / H200 (or on a CPU for the dry run) so the suite can
skip what would not fit in its budget.

Every step returns plain data for suite.json; ``device_suite_report`` renders it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

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


# -- the network ---------------------------------------------------------------------------


_NET: dict = {}


def network(plan: Plan):
    """``(net, io)``: full-size CodeFormer with seeded random weights (the tiny one in a dry run)."""
    if "net" not in _NET:
        from vidrestore.engines import network_io
        from vidrestore.models import build_model, get_spec
        from vidrestore.models.seeded import fill_seeded

        net = fill_seeded(build_model("codeformer", tiny=plan.dry_run)).eval()
        _NET["net"] = (net, network_io(get_spec("codeformer"), net))
    return _NET["net"]


def seeded_weights(plan: Plan) -> Path:
    """The seeded network saved as an official-format checkpoint, for the end-to-end runs."""
    path = plan.work / "codeformer_seeded.pth"
    if not path.exists():
        net, _ = network(plan)
        tmp = path.with_suffix(".tmp")
        torch.save({"params_ema": net.state_dict()}, tmp)
        tmp.replace(path)
    return path


def _reference(plan: Plan):
    if "reference" not in _NET:
        from vidrestore.engines import build_engine

        net, io = network(plan)
        _NET["reference"] = build_engine(net, io, backend="torch", precision="fp32", device=plan.torch_device,
                                         channels_last=False)
    return _NET["reference"]


def measure_engine(plan: Plan, backend: str, precision: str, budget=None) -> dict:
    """One engine: build seconds, ``engines check`` parity against fp32 eager, faces/s per batch
    (larger batches left out, saying so, when ``budget`` runs short)."""
    from vidrestore.engines import EngineCache, batch_profile, build_engine, model_hash
    from vidrestore.engines.check import check_engine, time_engine

    net, io = network(plan)
    device = plan.torch_device
    start = time.perf_counter()
    engine = build_engine(net, io, backend=backend, precision=precision, device=device,
                          cache=EngineCache(plan.work / "engines"), digest=model_hash(net),
                          batch=batch_profile(backend, max(plan.batches), plan.batches))
    built = time.perf_counter() - start
    check = check_engine(engine, _reference(plan), io)
    speeds, errors = {}, {}
    for batch in plan.batches:
        if budget is not None and budget.left() < 2 + batch * (0.05 if device.type == "cuda" else 0.5):
            errors[str(batch)] = "skipped: budget"
            continue
        try:
            speeds[str(batch)] = round(time_engine(engine, io, batch=batch, repeats=3), 2)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory at the largest batch
            errors[str(batch)] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if device.type == "cuda":
                torch.cuda.empty_cache()
    row = {"engine": f"{backend}:{precision}", "backend": backend, "precision": precision,
           "build_s": round(built, 1), "check": check.to_dict(), "faces_per_s": speeds, "errors": errors,
           "detail": engine.info.detail, "label": engine.info.label}
    del engine
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def child_engine(plan: Plan, spec: str, out: Path) -> int:
    """``--child-engine``: measure one engine in this (child) process and write its row."""
    backend, _, precision = spec.partition(":")
    row = measure_engine(plan, backend, precision)
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
                run = (lambda p=precision: measure_engine(plan, "torch", p, budget))
            else:  # in a child process, stopped when the budget runs out (the dry run: as a check of that)
                run = (lambda b=backend, p=precision: _engine_in_child(plan, budget, b, p))
            steps.append(Step(name, plan.estimates[f"engine:{backend}"], run, why))
    return steps


# -- the restorer's overlap ---------------------------------------------------------------


def overlap(plan: Plan, precision: str) -> dict:
    """The engine restorer on host faces: one batch at a time (``restore``) against batches in
    flight (``submit``, depth ``EngineRestorer.depth``), with and without CUDA graphs."""
    from vidrestore.engines import EngineRestorer, build_engine
    from vidrestore.engines.check import face_batch

    net, io = network(plan)
    batch = plan.e2e_batch
    x, _ = face_batch(io, batch, seed=3)
    faces = ((x.permute(0, 2, 3, 1) + 1) / 2).numpy().astype(np.float32)
    rounds = 2 if plan.dry_run else 12
    rows = []
    for graphs in (True, False):
        notes: list[str] = []
        engine = build_engine(net, io, backend="torch", precision=precision, device=plan.torch_device)
        restorer = EngineRestorer(engine, cuda_graphs=graphs, log=notes.append)
        restorer.restore(faces, None, 0.5)  # warm-up (and graph capture)
        restorer.restore(faces, None, 0.5)
        start = time.perf_counter()
        for _ in range(rounds):
            restorer.restore(faces, None, 0.5)
        one = rounds * batch / (time.perf_counter() - start)
        start = time.perf_counter()
        tickets = []
        for _ in range(rounds):
            tickets.append(restorer.submit(faces, None, 0.5))
            if len(tickets) > restorer.depth:
                tickets.pop(0).result()
        for t in tickets:
            t.result()
        flight = rounds * batch / (time.perf_counter() - start)
        rows.append({"cuda_graphs_asked": graphs, "cuda_graphs": restorer.cuda_graphs, "depth": restorer.depth,
                     "batch": batch, "one_at_a_time_faces_per_s": round(one, 2),
                     "in_flight_faces_per_s": round(flight, 2), "notes": notes})
        del restorer, engine
        if plan.device == "cuda":
            torch.cuda.empty_cache()
    return {"precision": precision, "rows": rows}


# -- end to end ----------------------------------------------------------------------------


def clip(plan: Plan, faces: int) -> Path:
    """The generated clip with ``faces`` real faces (``testkit.media.scene_frames``), H.264."""
    from testkit.media import scene_frames, write_video

    w, h = plan.clip
    frames = plan.clip_frames + plan.warmup
    path = plan.work / f"scene_{faces}face_{w}x{h}_{frames}.mp4"
    if not path.exists():
        tmp = path.with_name(".tmp_" + path.name)
        write_video(tmp, scene_frames(frames, w, h, faces=faces), fps=30,
                    options={"crf": "18", "preset": "veryfast"})
        tmp.replace(path)
    return path


def end_to_end(plan: Plan, faces: int, precision: str, *, face_ops: str = "auto", detect_every: int = 1) -> dict:
    """``vidrestore bench`` on the clip: frames/s, faces/s, per-stage busy s, latency, memory."""
    from vidrestore.bench import run_bench
    from vidrestore.config import from_mapping
    from vidrestore.settings import RestoreConfig

    source = clip(plan, faces)
    config = from_mapping(RestoreConfig, {
        "model": "codeformer", "weights": None if plan.dry_run else str(seeded_weights(plan)),
        "download": False, "device": plan.device, "engine": "torch", "precision": precision,
        "batch_size": plan.e2e_batch, "face_ops": face_ops,
        "faces": {"detector": "mtcnn", "detect_every": detect_every}, "paste": {"mask": "template"}})
    notes: list[str] = []
    result = run_bench(source, config, frames=plan.clip_frames, warmup=plan.warmup, tiny=plan.dry_run,
                       log=notes.append)
    out = result.to_dict()
    out.update(clip=f"{plan.clip[0]}×{plan.clip[1]}, {faces} face(s)", faces_in_clip=faces, face_ops=face_ops,
               detect_every=detect_every, stage_ms_per_frame={k: round(1000 * v / max(result.frames, 1), 2)
                                                              for k, v in result.stages.items()})
    return out


# -- encoding, face ops, tests -------------------------------------------------------------


def encoding(plan: Plan) -> dict:
    """Encoder frames/s at the clip size: x264 per preset with frame and slice threads, NVENC
    where it opens (``tools/bench_encode.py``)."""
    import bench_encode

    from vidrestore.io.encoding import EncodeSettings, available_encoders

    w, h = plan.clip
    frames = bench_encode.source_frames(plan.encode_frames, w, h)
    usable = available_encoders()
    rows = []
    presets = ("auto", "veryfast") if plan.dry_run else ("auto", "medium", "fast", "faster", "veryfast", "ultrafast")
    for preset in presets:
        for kind in ("FRAME", "SLICE"):
            rows.append(bench_encode.encode_rate(frames, EncodeSettings(preset=preset), thread_type=kind,
                                                 gpu=plan.device == "cuda"))
    for codec in ("h264_nvenc", "hevc_nvenc"):
        if usable[codec] is None:
            rows.append(bench_encode.encode_rate(frames, EncodeSettings(codec=codec, preset="auto"), gpu=True))
    return {"size": list(plan.clip), "frames": plan.encode_frames, "available": usable, "rows": rows}


def face_ops(plan: Plan) -> dict:
    """The device face ops on this device against OpenCV: parity on the astronaut and Grace
    Hopper (PSNR of the pasted face region, pixels outside the faces bit-exact, the same
    boxes), then ms per frame on a scene frame at the clip size with 1 and 4 faces."""
    import bench_face_ops

    from vidrestore.faces.align import align_face
    from vidrestore.faces.device import DeviceFaceOps
    from vidrestore.faces.face import Face
    from vidrestore.faces.paste import PasteConfig, face_roi, paste_faces
    from vidrestore.imaging import psnr

    device = plan.torch_device
    config = PasteConfig(mask="template")
    photos = {"astronaut": ([[204.4, 100.3], [247.1, 103.1], [224.8, 128.6], [201.7, 138.7], [244.9, 142.0]],
                            [179.1, 58.5, 267.4, 173.6]),
              "grace_hopper": ([[216.8, 189.5], [308.8, 184.4], [266.9, 237.9], [231.0, 279.8], [305.2, 274.4]],
                               [173.7, 106.3, 351.4, 330.9])}
    parity = []
    for name, (landmarks, box) in photos.items():
        image = _photo(name)
        face = Face(box=np.float32(box), landmarks=np.float32(landmarks), score=1.0)
        face.crop, face.affine = align_face(image, np.asarray(landmarks))
        face.restored = np.clip(face.crop + 0.1, 0, 1)
        cv_out = image.copy()
        cv_boxes = paste_faces(cv_out, [face], None, config)
        ops = DeviceFaceOps(device, config)
        dev_out = image.copy()
        frame = ops.upload(dev_out)
        (crop,) = ops.align(frame, [face.affine], 512)
        twin = dataclasses.replace(face, crop=crop, restored=(crop + 0.1).clamp(0, 1))
        dev_boxes = ops.paste(frame, dev_out, [twin])
        if device.type == "cuda":
            torch.cuda.synchronize()
        x0, y0, x1, y1 = face_roi(face.affine, 512, image.shape[:2])
        keep = np.ones(image.shape[:2], bool)
        for bx0, by0, bx1, by1 in cv_boxes + dev_boxes:
            keep[by0:by1, bx0:bx1] = False
        parity.append({"photo": name, "crop_max_abs_levels": round(float(np.abs(crop.cpu().numpy() - face.crop).max() * 255), 4),
                       "face_psnr_db": round(psnr(dev_out[y0:y1, x0:x1], cv_out[y0:y1, x0:x1]), 2),
                       "outside_bit_exact": bool(np.array_equal(dev_out[keep], image[keep])),
                       "same_boxes": cv_boxes == dev_boxes})
    w, h = plan.clip
    timing = {}
    for count in (1, 4):
        image, found = bench_face_ops.scene_with_faces(w, h, count)
        timing[str(count)] = {"faces_found": len(found),
                              **bench_face_ops.time_face_ops(image, found, device, 1 if plan.dry_run else 5)}
    return {"device": str(device), "parity": parity, "ms_per_frame": timing}


def _photo(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data

        return data.astronaut()
    import matplotlib.cbook
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.array(im.convert("RGB"))


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
    order = [Step("face-ops", e["face-ops"], lambda: face_ops(plan)),
             Step("gpu-tests", e["gpu-tests"], lambda: gpu_tests(plan, budget),
                  "dry run: CI runs the tests itself" if plan.dry_run else None)]
    order += [dataclasses.replace(s, run=keep(s.name, s.run)) for s in torch_steps]
    order.append(Step("overlap", e["overlap"], lambda: overlap(plan, best())))
    for faces in (1, 4):
        order.append(Step(f"e2e:{faces}face", e["e2e"] + 8 * faces, lambda f=faces: end_to_end(plan, f, best())))
    order.append(Step("encode", e["encode"], lambda: encoding(plan)))
    order.append(Step("e2e:1face:detect-every-5", e["e2e"], lambda: end_to_end(plan, 1, best(), detect_every=5)))
    # The slow builds last, the likely fastest first; the OpenCV face ops comparison between them.
    if "engine:compiled:fp16" in other:
        order.append(other.pop("engine:compiled:fp16"))
    order.append(Step("e2e:1face:opencv-face-ops", e["e2e"], lambda: end_to_end(plan, 1, best(), face_ops="opencv")))
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
