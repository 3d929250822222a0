"""The generated smoke dataset: its layouts, and that it says what is real."""

from __future__ import annotations

import cv2
from vidrestore.training.data import folder_paths, identity_paths


def test_layouts_and_honest_names(smoke_root):
    faces = folder_paths(smoke_root / "faces")
    paths, persons, names = identity_paths(smoke_root / "persons")
    assert len(faces) == len(paths) == 20 and len(folder_paths(smoke_root / "val")) == 5
    assert names == ["real_astronaut", "synthetic_cartoon_a", "synthetic_cartoon_b", "synthetic_cartoon_c"]
    assert all(persons.count(p) >= 2 for p in set(persons))
    readme = (smoke_root / "README.txt").read_text()
    assert "astronaut" in readme and "NOT photos" in readme
    image = cv2.imread(str(faces[0]))
    assert image.shape == (512, 512, 3)
