"""The device suite's measurements (``tools/device_suite.py``): each takes the suite's ``Plan``
(``device_suite_steps``) and returns plain data for suite.json."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from device_suite_steps import Plan


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
