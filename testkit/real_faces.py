"""Real, package-shipped faces for the labelled detection set and the tracking tests.

Every image comes from a package the test extra installs; nothing is downloaded:

- ``iscc-demo``: iscc-samples' concert video (176×144, 24 fps, 60 s: small, dim real faces);
  a frame index is a decoded-frame index.
- ``astronaut``: scikit-image's astronaut (512×512, one face).
- ``grace-hopper``: matplotlib's sample photo of Grace Hopper (512×600, one face).
- ``t1``: insightface's group photo ``t1.jpg`` (1280×886, six people).
- ``t1-pan`` / ``t1-zoom``: ``t1`` seen by a camera (480×270) that pans left to right across
  the table / zooms in on the middle of it; frame ``i`` of ``CAMERA_FRAMES``. The frame is an
  exact affine warp of the photo (``camera_affine``), so a face labelled once on ``t1`` is known
  in every camera frame, cut by the frame edge or not.

``load_image(source, frame)`` gives an H×W×3 uint8 RGB image.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

SOURCES = ("iscc-demo", "astronaut", "grace-hopper", "t1", "t1-pan", "t1-zoom")
CAMERA_SIZE = (480, 270)
"""(width, height) of the ``t1-pan`` / ``t1-zoom`` camera frames: SD-sized, so
``--detect-scale auto`` upscales them."""
CAMERA_FRAMES = 48


class SourceUnavailable(RuntimeError):
    """A package holding a source's media is not installed."""


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SourceUnavailable(f"{package} is not installed")
    path = Path(spec.submodule_search_locations[0]).joinpath(*parts)
    if not path.is_file():
        raise SourceUnavailable(f"{package} has no {'/'.join(parts)}")
    return path


def iscc_demo_path() -> Path:
    """iscc-samples' ``demo.mp4``."""
    return _package_file("iscc_samples", "files", "video", "demo.mp4")


def t1_path() -> Path:
    """insightface's ``t1.jpg``."""
    return _package_file("insightface", "data", "images", "t1.jpg")


@functools.lru_cache(maxsize=4)
def _photo(source: str) -> np.ndarray:
    if source == "astronaut":
        from skimage import data

        return data.astronaut()
    if source == "grace-hopper":
        import matplotlib.cbook

        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        return _read_rgb(Path(path))
    if source == "t1":
        return _read_rgb(t1_path())
    raise ValueError(f"unknown photo {source!r}")


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceUnavailable(f"cannot decode {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def camera_affine(source: str, frame: int) -> np.ndarray:
    """(2, 3) float64 map from ``t1`` pixels to camera frame ``frame`` of ``source``.

    ``t1-pan``: a window 600 px wide (scale 0.8) glides from the photo's left edge to its
    right edge at a height showing every face, with a slight tilt. ``t1-zoom``: the window
    shrinks from the whole photo's width to 420 px about the middle of the table (faces grow
    ~3×, the outer ones leave the frame).
    """
    if not 0 <= frame < CAMERA_FRAMES:
        raise ValueError(f"camera frame {frame} outside 0..{CAMERA_FRAMES - 1}")
    w_out, h_out = CAMERA_SIZE
    u = frame / (CAMERA_FRAMES - 1)
    if source == "t1-pan":
        window = 600.0
        cx = 250.0 + u * (1280.0 - 500.0)
        cy = 300.0 + 40.0 * np.sin(np.pi * u)
        angle = 3.0 * np.sin(2 * np.pi * u)
    elif source == "t1-zoom":
        window = 1280.0 * (420.0 / 1280.0) ** u
        cx, cy, angle = 640.0, 330.0 - 40.0 * u, 0.0
    else:
        raise ValueError(f"{source!r} is not a camera source")
    scale = w_out / window
    m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    m[:, 2] += np.array([w_out / 2 - cx, h_out / 2 - cy])
    return m


def camera_frame(source: str, frame: int) -> np.ndarray:
    """Camera frame ``frame`` of ``t1-pan`` / ``t1-zoom`` (270×480×3 uint8 RGB)."""
    photo = _photo("t1")
    m = camera_affine(source, frame)
    flags = cv2.INTER_AREA if m[0, 0] ** 2 + m[0, 1] ** 2 < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(photo, m, CAMERA_SIZE, flags=flags, borderMode=cv2.BORDER_REFLECT_101)


def camera_frames(source: str, frames: Iterable[int] | None = None) -> list[np.ndarray]:
    """Several camera frames (default all ``CAMERA_FRAMES``)."""
    return [camera_frame(source, i) for i in (range(CAMERA_FRAMES) if frames is None else frames)]


def map_box(box: Sequence[float], affine: np.ndarray) -> np.ndarray:
    """The axis-aligned box (x1, y1, x2, y2) of ``box``'s corners mapped by ``affine``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]])
    pts = corners @ np.asarray(affine, np.float64).T
    return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])


_DEMO_FRAMES: dict[int, np.ndarray] = {}
"""Concert frames decoded so far, kept for the process: tests and tools decode the video once."""


def demo_frames(indices: Iterable[int]) -> dict[int, np.ndarray]:
    """Decoded frames of the iscc demo video by index (decoded once per process, kept)."""
    import av

    wanted = sorted(set(int(i) for i in indices))
    memo = _DEMO_FRAMES
    todo = [i for i in wanted if i not in memo]
    if todo:
        last = todo[-1]
        with av.open(str(iscc_demo_path())) as container:
            for k, frame in enumerate(container.decode(video=0)):
                if k in todo:
                    memo[k] = frame.to_ndarray(format="rgb24")
                if k >= last:
                    break
    missing = [i for i in wanted if i not in memo]
    if missing:
        raise ValueError(f"the iscc demo video has no frame {missing[0]}")
    return {i: memo[i] for i in wanted}


def load_image(source: str, frame: int = 0) -> np.ndarray:
    """The image ``frame`` of ``source`` (H×W×3 uint8 RGB); see the module docstring."""
    if source == "iscc-demo":
        return demo_frames([frame])[frame]
    if source in ("t1-pan", "t1-zoom"):
        return camera_frame(source, frame)
    if source in ("astronaut", "grace-hopper", "t1"):
        if frame != 0:
            raise ValueError(f"{source} is a photo: frame must be 0, not {frame}")
        return _photo(source).copy()
    raise ValueError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")


def load_images(keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], np.ndarray]:
    """Several images by ``(source, frame)``, decoding the video once."""
    keys = list(dict.fromkeys(keys))
    demo = demo_frames(f for s, f in keys if s == "iscc-demo")
    return {(s, f): demo[f] if s == "iscc-demo" else load_image(s, f) for s, f in keys}
