"""Writing a ``VideoEvaluation``: JSON, CSV (one row per frame) and a PNG of the curves."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from vidrestore.io.atomic import write_text_atomic

from .video import SUMMARY_KEYS, VideoEvaluation


def write_json(evaluation: VideoEvaluation, path: str | Path) -> Path:
    """The evaluation as JSON (``VideoEvaluation.to_json``), written atomically."""
    return write_text_atomic(path, json.dumps(evaluation.to_json(), indent=1, default=str) + "\n")


def write_csv(evaluation: VideoEvaluation, path: str | Path) -> Path:
    """One row per frame: index, time, faces and every metric computed (empty where none)."""
    columns = ["index", "time", "faces", *[k for k in SUMMARY_KEYS if k in evaluation.means]]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in evaluation.frames:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    return write_text_atomic(path, buffer.getvalue())


_PANELS = (
    ("PSNR (dB)", ("psnr", "psnr_y")),
    ("similarity", ("ssim", "lpips", "ids", "ids_dlib")),
    ("warping error", ("warp_error", "warp_error_faces")),
    ("landmark distance (px)", ("lmd",)),
)


def plot(evaluation: VideoEvaluation, path: str | Path) -> Path:
    """A PNG with the per-frame curves, one panel per kind of metric (metrics without any
    value, such as LMD where no face was found, are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(title, [k for k in keys if evaluation.means.get(k) is not None]) for title, keys in _PANELS]
    panels = [(title, keys) for title, keys in panels if keys]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.4 * len(panels)), sharex=True, squeeze=False)
    x = [row["index"] for row in evaluation.frames]
    for ax, (title, keys) in zip(axes[:, 0], panels):
        for key in keys:
            y = [float("nan") if row.get(key) is None else row[key] for row in evaluation.frames]
            mean = evaluation.means.get(key)
            label = key if mean is None else f"{key} (mean {mean:.4g})"
            ax.plot(x, y, marker=".", linewidth=1, label=label)
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="best")
    axes[-1, 0].set_xlabel("frame")
    fig.suptitle(f"{Path(evaluation.restored).name} vs {Path(evaluation.reference).name}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
