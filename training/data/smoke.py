"""A tiny generated face dataset for smoke runs and tests. What is real and what is not:

- ``real_astronaut``: the one real face photo available offline (``skimage.data.astronaut()``,
  public domain), detected by the runtime's MTCNN and aligned by the runtime's
  ``align_face``; variants differ by a small jitter of the landmarks before alignment (as
  alignment noise would), a flip and a colour change (gamma, saturation, tint). One person.
- ``synthetic_cartoon_*``: drawn faces, NOT photos: each "person" is a fixed set of drawing
  parameters (skin, hair, eye colour, face shape, feature sizes) placed on the FFHQ template
  landmarks; its images vary pose, expression and lighting. They give the identity layout
  several persons; nothing learnt on them says anything about real faces.

Layout written under ``root``: ``faces/`` (folder layout: every training image),
``persons/<person>/`` (identity layout, the same images), ``val/`` (held-out variants) and
``README.txt``. The folder appears whole (built beside it, then renamed).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from vidrestore.faces.align import FFHQ_TEMPLATE_512, align_face

TRAIN_VARIANTS, VAL_VARIANTS, CARTOON_PERSONS = 8, 2, 3
_CARTOON_TRAIN, _CARTOON_VAL = 4, 1


def astronaut_landmarks(image: np.ndarray) -> np.ndarray:
    """The astronaut's 5 landmarks from the runtime's MTCNN detector (best face)."""
    from vidrestore.faces.detect import build_detector
    from vidrestore.weights import WeightStore

    detector = build_detector("mtcnn", WeightStore(allow_download=False))
    faces = detector.detect([image])[0]
    if not faces:
        raise RuntimeError("MTCNN found no face in skimage's astronaut")
    return np.asarray(faces[0].landmarks, dtype=np.float64)


def _jitter(landmarks: np.ndarray, rng: np.random.Generator, angle: float, scale: float, shift: float) -> np.ndarray:
    """Landmarks moved by a random similarity about their centre (degrees, ratio, eye-distance units)."""
    centre = landmarks.mean(0)
    eye = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    a = math.radians(rng.uniform(-angle, angle))
    s = 1.0 + rng.uniform(-scale, scale)
    rot = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    offset = rng.uniform(-shift, shift, size=2) * eye
    return (landmarks - centre) @ rot.T + centre + offset


def _recolour(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(4))
    if kind == 1:  # gamma
        face = face ** rng.uniform(0.8, 1.25)
    elif kind == 2:  # saturation
        grey = face.mean(axis=2, keepdims=True)
        face = grey + (face - grey) * rng.uniform(0.6, 1.3)
    elif kind == 3:  # tint
        face = face * rng.uniform(0.9, 1.1, size=3)
    return np.clip(face, 0.0, 1.0).astype(np.float32)


def astronaut_variants(count: int, seed: int, size: int = 512) -> list[np.ndarray]:
    """``count`` aligned variants of the astronaut's face, float32 RGB [0, 1]."""
    import skimage.data

    image = skimage.data.astronaut()
    landmarks = astronaut_landmarks(image)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        points = landmarks if i == 0 else _jitter(landmarks, rng, 6.0, 0.06, 0.08)
        crop, _ = align_face(image, points, size)
        if rng.uniform() < 0.5:
            crop = np.ascontiguousarray(crop[:, ::-1])
        out.append(crop if i == 0 else _recolour(crop, rng))
    return out


def _cartoon_person(rng: np.random.Generator) -> dict:
    return {
        "skin": rng.uniform([0.45, 0.3, 0.2], [0.98, 0.85, 0.75]),
        "hair": rng.uniform(0.0, 0.8, size=3),
        "iris": rng.uniform(0.05, 0.7, size=3),
        "lips": rng.uniform([0.5, 0.1, 0.1], [0.9, 0.45, 0.45]),
        "background": rng.uniform(0.2, 0.9, size=3),
        "face_w": rng.uniform(0.85, 1.15), "face_h": rng.uniform(0.9, 1.1),
        "eye": rng.uniform(0.8, 1.3), "mouth": rng.uniform(0.8, 1.2),
        "brow": int(rng.integers(4, 14)), "long_hair": bool(rng.uniform() < 0.5),
    }


def _pt(xy) -> tuple[int, int]:
    return int(round(xy[0] * 16)), int(round(xy[1] * 16))  # 4 fractional bits (shift=4)


def draw_cartoon(person: dict, rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """One image of a drawn "person" on the FFHQ template, float32 RGB [0, 1]."""
    t = FFHQ_TEMPLATE_512
    img = np.empty((512, 512, 3), np.float32)
    img[:] = person["background"]
    aa, sh = cv2.LINE_AA, 4
    col = lambda c: tuple(float(v) for v in c)  # noqa: E731
    centre = (256.0, 285.0)
    axes = (int(160 * person["face_w"] * 16), int(205 * person["face_h"] * 16))
    if person["long_hair"]:
        cv2.ellipse(img, _pt((256, 300)), (axes[0] + 40 * 16, axes[1] + 30 * 16), 0, 180, 360, col(person["hair"]), -1, aa, sh)
        cv2.rectangle(img, (int(256 - axes[0] / 16 - 40), 300), (int(256 + axes[0] / 16 + 40), 470), col(person["hair"]), -1)
    cv2.ellipse(img, _pt(centre), axes, 0, 0, 360, col(person["skin"]), -1, aa, sh)
    cv2.ellipse(img, _pt((256, 200)), (axes[0] + 8 * 16, int(axes[1] * 0.6)), 0, 180, 360, col(person["hair"]), -1, aa, sh)
    openness = rng.uniform(0.5, 1.0)
    for eye in t[:2]:
        r = 16 * person["eye"]
        cv2.ellipse(img, _pt(eye), (int(r * 1.6 * 16), int(r * openness * 16)), 0, 0, 360, (0.95, 0.95, 0.95), -1, aa, sh)
        cv2.circle(img, _pt(eye), int(r * 0.75 * openness * 16), col(person["iris"]), -1, aa, sh)
        cv2.circle(img, _pt(eye), int(r * 0.3 * openness * 16), (0.02, 0.02, 0.02), -1, aa, sh)
        brow_y = eye[1] - 34 - rng.uniform(-4, 6)
        cv2.line(img, _pt((eye[0] - 30, brow_y + 4)), _pt((eye[0] + 30, brow_y - 2)), col(person["hair"] * 0.8), person["brow"], aa, sh)
    nose = t[2]
    shade = col(person["skin"] * 0.75)
    cv2.line(img, _pt((nose[0] - 4, nose[1] - 60)), _pt((nose[0] - 14, nose[1])), shade, 4, aa, sh)
    cv2.ellipse(img, _pt(nose), (int(18 * 16), int(7 * 16)), 0, 0, 180, shade, 3, aa, sh)
    left, right = t[3], t[4]
    mid = (left + right) / 2
    half = (right[0] - left[0]) / 2 * person["mouth"]
    smile = rng.uniform(4, 22)
    cv2.ellipse(img, _pt(mid), (int(half * 16), int(smile * 16)), 0, 0, 180, col(person["lips"]), -1, aa, sh)
    cv2.ellipse(img, _pt(mid), (int(half * 16), int(5 * 16)), 0, 180, 360, col(person["lips"] * 0.85), -1, aa, sh)
    # Skin texture, lighting, then a small pose jitter (alignment noise).
    texture = cv2.GaussianBlur(rng.standard_normal((512, 512)).astype(np.float32), (0, 0), 1.2)
    img = img * (1.0 + 0.06 * texture)[..., None]
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:512, 0:512].astype(np.float32) / 511.0 - 0.5
    img = img * (1.0 + rng.uniform(0.1, 0.3) * (math.cos(angle) * xx + math.sin(angle) * yy))[..., None]
    warp = cv2.getRotationMatrix2D((256.0, 256.0), rng.uniform(-4, 4), 1.0 + rng.uniform(-0.04, 0.04))
    warp[:, 2] += rng.uniform(-6, 6, size=2)
    img = cv2.warpAffine(img, warp, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if size != 512:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)[..., ::-1]
    if not cv2.imwrite(str(path), data):
        raise OSError(f"cannot write {path}")


def make_smoke_dataset(root: Path | str, *, seed: int = 0, size: int = 512,
                       log: Callable[[str], None] = lambda line: None) -> Path:
    """Write the smoke dataset to ``root`` unless it is already complete there; return ``root``."""
    root = Path(root)
    if (root / "README.txt").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    log(f"making the smoke dataset in {root} (1 real photo's face + {CARTOON_PERSONS} drawn persons)")
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        real = astronaut_variants(TRAIN_VARIANTS + VAL_VARIANTS, seed, size)
        people = {"real_astronaut": (real[:TRAIN_VARIANTS], real[TRAIN_VARIANTS:])}
        rng = np.random.default_rng([seed, 1])
        for p in range(CARTOON_PERSONS):
            person = _cartoon_person(rng)
            images = [draw_cartoon(person, rng, size) for _ in range(_CARTOON_TRAIN + _CARTOON_VAL)]
            people[f"synthetic_cartoon_{chr(ord('a') + p)}"] = (images[:_CARTOON_TRAIN], images[_CARTOON_TRAIN:])
        for name, (train, val) in people.items():
            for i, image in enumerate(train):
                _write(tmp / "faces" / f"{name}_v{i:02d}.png", image)
                _write(tmp / "persons" / name / f"v{i:02d}.png", image)
            for i, image in enumerate(val):
                _write(tmp / "val" / f"{name}_val{i:02d}.png", image)
        (tmp / "README.txt").write_text(__doc__ or "", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
