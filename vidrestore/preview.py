"""One frame restored at several fidelities, side by side with the original, as a PNG.

``render_preview`` is the picture to choose settings from before an hour-long run: it seeks
to the first frame at or after ``at`` (exactly as ``--start`` does: key frame, then decode
forward, through the same deinterlacing and pixel handling), finds and aligns its faces with
the face stage,
restores them once per fidelity with the same restorer, pastes each set into its own copy of
the frame (enlarged first with ``--upscale``), and lays out:

- a row of whole frames — the original, then one per fidelity — with every face boxed;
- a row per face (the largest first, up to ``MAX_FACES``): the face's region in each frame,
  enlarged to the panel's width (at most ``CLOSE_UP_MAX`` pixels), where the restoration's
  detail can be judged.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from .errors import UsageError
from .imaging import to_uint8
from .io.atomic import atomic_output
from .io.reader import VideoReader
from .io.trim import Trim
from .settings import RestoreConfig
from .weights import WeightStore

Log = Callable[[str], None]

PANEL_WIDTH = 960
"""Widest a whole-frame panel is drawn (larger frames are shrunk for the sheet)."""
CLOSE_UP_MAX = 480
"""Largest side of a face close-up (the panel's width when smaller)."""
MAX_FACES = 6
_LABEL_BAR = 28
_BOX = (255, 64, 32)


@dataclass
class PreviewSummary:
    """What ``render_preview`` made.

    Attributes:
        path: the PNG written.
        time: the frame's time in seconds (from the file's start).
        faces: faces found on it; restored: those restored (not too small).
        fidelities: the fidelities shown, in order.
        seconds: wall time.
        notes: set-up notes (detector, engine, deinterlacing...).
    """

    path: Path
    time: float
    faces: int
    restored: int
    fidelities: tuple[float, ...]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        ws = ", ".join(f"{w:g}" for w in self.fidelities)
        return (f"frame at {self.time:.3f} s: {self.restored} of {self.faces} faces restored at w = {ws} "
                f"in {self.seconds:.1f} s")


def render_preview(source: str | Path, target: str | Path, config: RestoreConfig, *, at: float,
                   fidelities: Sequence[float] = (0.0, 0.5, 1.0), overwrite: bool = False,
                   log: Log = lambda line: None, restorer=None) -> PreviewSummary:
    """Write the preview sheet of the frame at ``at`` seconds of ``source`` to ``target``.

    Raises:
        UsageError: ``at`` outside the video, no fidelity, a fidelity outside [0, 1], or a
            target that is not a .png / .jpg file; and what ``restore_video`` raises.
    """
    from .pipeline.build import build_restorer, build_stages, build_upscaler, resolve_device
    from .restore_video import Notes, _read_reference, upright_pixel_aspect, upright_size

    started = time.perf_counter()
    target = Path(target)
    if target.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UsageError(f"the preview is an image: give -o a .png (or .jpg) name, not {target.name!r}")
    fidelities = tuple(float(w) for w in fidelities)
    if not fidelities or any(not 0.0 <= w <= 1.0 for w in fidelities):
        raise UsageError(f"--fidelity takes values within 0..1, got {', '.join(map(str, fidelities)) or 'none'}")
    reader = VideoReader(source, decode=config.decode, trim=Trim(start=at, option="--at"))
    frame = next(iter(reader.frames(limit=1)))
    notes = Notes(log)
    for line in reader.notes:
        notes(line)
    device = resolve_device(config.device)
    store = WeightStore(config.weights_dir, allow_download=config.download)
    if restorer is None:
        restorer = build_restorer(config, store, device, log=notes)
    upscaler = build_upscaler(config, store, device, frame_size=upright_size(reader.output), log=notes)
    references = {r.name: _read_reference(r.name, r.path) for r in config.references}
    stages = build_stages(config, store, device, restorer, source=source, references=references, log=notes,
                          pixel_aspect=upright_pixel_aspect(reader.output))
    from .pipeline.contracts import FrameJob

    original = frame.image.copy()
    job = FrameJob(frame)
    jobs = stages.faces.process([job]) + stages.faces.flush()
    stages.faces.close(success=False)
    faces = jobs[0].faces if jobs else []
    todo = [f for f in faces if f.crop is not None and f.skip is None]
    background = upscaler.upscale(original) if upscaler is not None else original
    scale = upscaler.scale if upscaler is not None else 1
    panels = []
    for w in fidelities:
        image = background.copy()
        restored = _restore(restorer, todo, w, getattr(job, "device", None))
        placed = [dataclasses.replace(f, restored=r) for f, r in zip(todo, restored)]
        if upscaler is not None:
            from .pipeline.upscale_stage import scale_faces

            scale_faces(placed, scale)
        from .faces.paste import paste_faces

        paste_faces(image, placed, stages.paste.masker, config.paste)
        panels.append(image)
    boxes = [np.asarray(f.box, np.float64) for f in sorted(faces, key=lambda f: -f.size)]
    sheet = compose_sheet(original, panels, boxes, labels=_labels(fidelities, config, upscaler), scale=scale)
    ok, encoded = cv2.imencode(target.suffix.lower(), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UsageError(f"cannot encode {target.name}")
    with atomic_output(target, overwrite=overwrite) as tmp:
        tmp.write_bytes(encoded.tobytes())
    t = frame.time - reader.info.start_time if frame.time is not None else at
    return PreviewSummary(target, t, len(faces), len(todo), fidelities, time.perf_counter() - started,
                          notes.lines)


def _restore(restorer, faces, fidelity: float, frame=None) -> list[np.ndarray]:
    """The restored crops of ``faces`` at ``fidelity``, on the host (crops the device face
    ops made are tensors on the device: ``frame`` is their device frame)."""
    from .faces.device import host_array, stack_crops

    if not faces:
        return []
    crops = stack_crops([f.crop for f in faces], [frame])
    ids = np.stack([f.identity for f in faces]) if restorer.uses_identity else None
    return list(host_array(restorer.restore(crops, ids, fidelity)))


def _labels(fidelities, config: RestoreConfig, upscaler) -> list[str]:
    model = config.model
    extra = ""
    if upscaler is not None:  # what really enlarged it (lanczos when Real-ESRGAN was missing)
        what = getattr(upscaler, "method", None) or getattr(getattr(upscaler, "engine", None), "info", None)
        extra = f", x{upscaler.scale} {getattr(what, 'model', what)}"
    return ["original"] + [f"{model} w={w:g}{extra}" for w in fidelities]


def compose_sheet(original: np.ndarray, restored: Sequence[np.ndarray], boxes: Sequence[np.ndarray], *,
                  labels: Sequence[str], scale: int = 1) -> np.ndarray:
    """The preview sheet (H×W×3 uint8 RGB): a row of whole frames, then one row of close-ups
    per face (module doc). ``boxes`` are in ``original``'s pixels; ``restored`` frames may be
    ``scale`` times larger."""
    frames = [to_uint8(original)] + [to_uint8(r) for r in restored]
    height, width = original.shape[:2]
    panel_w = min(PANEL_WIDTH, max(width, 320))
    panel_h = int(round(height * panel_w / width))
    row = [_panel(f, (panel_w, panel_h), [b * (f.shape[1] / width) for b in boxes], label)
           for f, label in zip(frames, labels)]
    rows = [np.hstack(row)]
    side = min(panel_w, CLOSE_UP_MAX)
    for box in boxes[:MAX_FACES]:
        rows.append(np.hstack([_cell(_close_up(f, box * (f.shape[1] / width), side), panel_w) for f in frames]))
    sheet_w = max(r.shape[1] for r in rows)
    return np.vstack([np.pad(r, ((0, 0), (0, sheet_w - r.shape[1]), (0, 0))) for r in rows])


def _panel(image: np.ndarray, size: tuple[int, int], boxes, label: str) -> np.ndarray:
    """A frame resized to ``size`` with its faces boxed and a label bar above."""
    sx = size[0] / image.shape[1]
    interpolation = cv2.INTER_AREA if sx < 1 else cv2.INTER_CUBIC
    panel = cv2.resize(image, size, interpolation=interpolation)
    thick = max(1, size[0] // 400)
    for box in boxes:
        x0, y0, x1, y1 = (int(round(v * sx)) for v in box)
        cv2.rectangle(panel, (x0, y0), (x1, y1), _BOX, thick)
    bar = np.full((_LABEL_BAR, size[0], 3), 24, np.uint8)
    cv2.putText(bar, label, (8, _LABEL_BAR - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (240, 240, 240), 1, cv2.LINE_AA)
    return np.vstack([bar, panel])


def _cell(image: np.ndarray, width: int) -> np.ndarray:
    """``image`` centred in a dark cell ``width`` wide (close-ups line up with the panels)."""
    left = (width - image.shape[1]) // 2
    return np.pad(image, ((0, 0), (left, width - image.shape[1] - left), (0, 0)), constant_values=24)


def _close_up(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The square region around a face box (1.6× its size), ``size`` pixels a side."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) * 0.8
    h, w = image.shape[:2]
    left, top = int(np.floor(cx - half)), int(np.floor(cy - half))
    side = max(int(np.ceil(2 * half)), 2)
    canvas = np.zeros((side, side, 3), image.dtype)
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(left + side, w), min(top + side, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = image[sy0:sy1, sx0:sx1]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(canvas, (size, size), interpolation=interpolation)
