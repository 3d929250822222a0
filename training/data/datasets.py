"""Face datasets for training: aligned HQ faces in, (LQ, HQ[, reference]) samples out.

Samples are addressed by a key ``(epoch, index)`` (see ``sampler.StreamSampler``) and every
random choice for a sample (flip, degradation, reference pick) is drawn from a generator
seeded by ``(seed, epoch, index)``: the same sample comes out in any worker, with any
number of workers, on any rank, before or after a resume.

Layouts:

- ``folder``: every image under ``root`` (recursively, sorted) is one aligned HQ face.
- ``identity``: ``root/<person>/*.png``; a sample is a triplet for the identity stages:
  ``ref`` = another HQ image of the same person, ``lq`` = the degraded image, ``hq`` = its
  ground truth. Persons with a single image are skipped (no reference to pair with).

``PairedFaceDataset`` reads a given LQ / GT folder pair instead (the CelebA-Test protocol:
fixed degraded inputs, matched to their ground truth by file name) for validation.

Tensors are ``3×S×S`` float32 in [-1, 1] (the networks' range).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vidrestore.errors import InputError

from .degradations import DegradationConfig, degrade

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
VALIDATION_EPOCH = 2**31 - 1
"""The epoch of validation keys: their LQ is drawn once and never changes."""

Key = tuple[int, int]


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def sample_rngs(seed: int, epoch: int, index: int, n: int) -> list[np.random.Generator]:
    """``n`` independent generators for one sample, from ``(seed, epoch, index)``."""
    children = np.random.SeedSequence([seed, epoch, index]).spawn(n)
    return [np.random.default_rng(c) for c in children]


def read_face(path: Path, size: int) -> np.ndarray:
    """An aligned face as ``size×size×3`` float32 RGB [0, 1] (area-resized if needed)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {path}")
    if image.shape[0] != image.shape[1]:
        raise InputError(f"{path} is not square ({image.shape[1]}×{image.shape[0]}): not an aligned face")
    if image.shape[0] != size:
        interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_CUBIC
        image = cv2.resize(image, (size, size), interpolation=interp)
    return np.ascontiguousarray(image[..., ::-1], dtype=np.float32) / 255.0


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 [0, 1] → 3×H×W float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))) * 2.0 - 1.0


class FaceDataset(Dataset):
    """Aligned HQ faces → ``{"hq", "lq"[, "lq_large"][, "ref", "person"], "index"}``.

    Args:
        paths: the HQ images.
        size: side the faces are resized to.
        degradation: LQ model (None: ``lq`` is the HQ face, for Stage I).
        degradation_large: a second, heavier LQ as ``lq_large`` (None: absent).
        hflip: random horizontal flip (the same flip for ``hq`` and ``lq``).
        seed: the run's seed.
        persons: per path, the person's number (identity layout); None otherwise.
        cache_images: keep decoded faces in memory (per worker).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        size: int,
        degradation: DegradationConfig | None,
        *,
        degradation_large: DegradationConfig | None = None,
        hflip: bool = True,
        seed: int = 0,
        persons: Sequence[int] | None = None,
        cache_images: bool = False,
    ) -> None:
        if not paths:
            raise InputError("no images to train on")
        self.paths = list(paths)
        self.size = size
        self.degradation = degradation
        self.degradation_large = degradation_large
        self.hflip = hflip
        self.seed = seed
        self.persons = list(persons) if persons is not None else None
        self._cache: dict[int, np.ndarray] | None = {} if cache_images else None
        if self.persons is not None:
            groups: dict[int, list[int]] = {}
            for i, p in enumerate(self.persons):
                groups.setdefault(p, []).append(i)
            self._others = {i: [j for j in groups[p] if j != i] for i, p in enumerate(self.persons)}

    def __len__(self) -> int:
        return len(self.paths)

    def face(self, index: int) -> np.ndarray:
        """HQ face ``index`` as float32 RGB [0, 1]."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        image = read_face(self.paths[index], self.size)
        if self._cache is not None:
            self._cache[index] = image
        return image

    def __getitem__(self, key: Key | int) -> dict[str, Any]:
        epoch, index = (0, key) if isinstance(key, int) else key
        flip_rng, lq_rng, large_rng, ref_rng = sample_rngs(self.seed, epoch, index, 4)
        hq = self.face(index)
        if self.hflip and flip_rng.uniform() < 0.5:
            hq = np.ascontiguousarray(hq[:, ::-1])
        if self.degradation is not None:
            lq, hq_out, _ = degrade(hq, self.degradation, lq_rng)
        else:
            lq, hq_out = hq, hq
        sample: dict[str, Any] = {"hq": to_tensor(hq_out), "lq": to_tensor(lq), "index": index}
        if self.degradation_large is not None:
            sample["lq_large"] = to_tensor(degrade(hq, self.degradation_large, large_rng)[0])
        if self.persons is not None:
            others = self._others[index]
            j = others[int(ref_rng.integers(len(others)))]
            ref = self.face(j)
            if self.hflip and ref_rng.uniform() < 0.5:
                ref = np.ascontiguousarray(ref[:, ::-1])
            sample["ref"] = to_tensor(ref)
            sample["person"] = self.persons[index]
        return sample


def folder_paths(root: Path) -> list[Path]:
    """The images of a ``folder`` layout; InputError if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    paths = list_images(root)
    if not paths:
        raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    return paths


def identity_paths(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """``(paths, person per path, person names)`` of an ``identity`` layout.

    Persons are the sub-folders of ``root`` holding at least two images (sorted by name).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    paths, persons, names = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = list_images(folder)
        if len(images) < 2:
            continue
        names.append(folder.name)
        paths += images
        persons += [len(names) - 1] * len(images)
    if not names:
        raise InputError(f"{root}: identity layout needs sub-folders (one per person) with >= 2 images each")
    return paths, persons, names


class PairedFaceDataset(Dataset):
    """Given LQ faces and their ground truth, matched by file stem (``lq/x.png`` ↔ ``gt/x.png``).

    Samples are ``{"hq", "lq", "ref", "index"}`` whatever the key (no degradation, no flip);
    ``ref`` is the LQ face itself: the blind identity, since a paired test set holds no other
    photo of the person. Keys may be ``(epoch, index)`` pairs like ``FaceDataset``'s.

    Raises InputError when a folder is missing, empty, or an LQ face has no ground truth.
    """

    def __init__(self, lq_root: Path, gt_root: Path, size: int) -> None:
        lq = {p.stem: p for p in folder_paths(lq_root)}
        gt = {p.stem: p for p in folder_paths(gt_root)}
        missing = sorted(set(lq) - set(gt))
        if missing:
            raise InputError(f"{len(missing)} LQ faces of {lq_root} have no ground truth in {gt_root} "
                             f"(e.g. {missing[0]})")
        self.pairs = [(lq[name], gt[name]) for name in sorted(lq)]
        self.size = size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: Key | int) -> dict[str, Any]:
        index = key if isinstance(key, int) else key[1]
        lq_path, gt_path = self.pairs[index]
        lq = to_tensor(read_face(lq_path, self.size))
        return {"hq": to_tensor(read_face(gt_path, self.size)), "lq": lq, "ref": lq, "index": index}
