"""Choosing the paste mask, and the ParseNet-refined mask (random weights; real ones marked)."""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from vidrestore.errors import MissingWeightsError
from vidrestore.faces.align import align_face
from vidrestore.faces.face import Face
from vidrestore.faces.paste import (
    FaceMasker,
    PasteConfig,
    TemplateMasker,
    build_masker,
    paste_faces,
    template_mask,
)
from vidrestore.faces.paste.parsing import (
    FACE_CLASSES,
    ParsingMasker,
    build_parsenet,
    parse_to_mask,
)
from vidrestore.weights import KNOWN_WEIGHTS, WeightStore

PARSENET_FILE = "parsing_parsenet.pth"
UNHASHED = {k: dataclasses.replace(v, sha256=None) for k, v in KNOWN_WEIGHTS.items()}
ASTRONAUT_LANDMARKS = np.array(
    [[204.4, 100.3], [247.1, 103.1], [224.8, 128.6], [201.7, 138.7], [244.9, 142.0]]
)




@functools.lru_cache(maxsize=1)
def _astronaut_face() -> Face:
    face = Face(box=np.array([179, 58, 267, 174], np.float32),
                landmarks=ASTRONAUT_LANDMARKS.astype(np.float32), score=1.0)
    face.crop, face.affine = align_face(data.astronaut(), ASTRONAUT_LANDMARKS)
    face.restored = face.crop.copy()
    return face


def _empty_store(tmp_path) -> WeightStore:
    return WeightStore(tmp_path / "w", tmp_path / "c", allow_download=False)


def test_auto_without_parsenet_is_the_template_mask_and_says_why(tmp_path):
    masker = build_masker("auto", _empty_store(tmp_path))
    assert isinstance(masker, TemplateMasker) and isinstance(masker, FaceMasker)
    assert "ParseNet weights not found" in masker.reason
    assert build_masker("template", _empty_store(tmp_path)).name == "template"
    with pytest.raises(MissingWeightsError, match=PARSENET_FILE):
        build_masker("parsing", _empty_store(tmp_path))


def test_template_masker_gives_the_configured_mask():
    config = PasteConfig(shape="ellipse", blur=0.03)
    mask = TemplateMasker(config).mask(_astronaut_face())
    np.testing.assert_array_equal(mask, template_mask(512, config))


def test_parse_to_mask_keeps_face_classes_only():
    labels = np.zeros((512, 512), np.int64)
    labels[100:400, 150:350] = 1  # skin
    labels[60:100, 150:350] = 13  # hair
    labels[400:512, 180:320] = 17  # neck
    mask = parse_to_mask(labels, 512)
    assert mask.dtype == np.float32 and 0.0 <= mask.min() and mask.max() <= 1.0
    assert mask[250, 250] > 0.99 and mask[80, 250] > 0.5  # skin and hair in
    assert mask[490, 250] < 0.01 and mask[250, 30] == 0.0  # neck and background out
    assert np.all(mask[:10] == 0) and np.all(mask[:, -10:] == 0)  # border cleared
    assert parse_to_mask(np.full((512, 512), 17), 256).max() == 0.0
    assert parse_to_mask(labels, 256).shape == (256, 256)
    assert set(FACE_CLASSES) == set(range(1, 14)) | {15}


def test_parsing_masker_loads_weights_and_stays_inside_the_template(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    torch.manual_seed(0)
    state = build_parsenet().state_dict()
    torch.save(state, folder / PARSENET_FILE)
    store = WeightStore(folder, tmp_path / "c", allow_download=False, table=UNHASHED)
    masker = build_masker("auto", store)
    assert isinstance(masker, ParsingMasker) and masker.name == "parsenet"
    loaded = masker.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    masker.parse_size = 128  # ParseNet is fully convolutional; 512 costs ~16× more CPU
    seen = []
    real_labels = masker.labels
    masker.labels = lambda crops: seen.append(real_labels(crops)) or seen[-1]
    face = _astronaut_face()
    mask = masker.mask(face)  # one ParseNet pass
    (labels,) = seen
    assert labels.shape == (1, 128, 128) and 0 <= labels.min() and labels.max() < 19
    assert mask.shape == (512, 512) and mask.dtype == np.float32
    assert np.all(mask <= template_mask(512) + 1e-6)  # ∩ the feathered square
    np.testing.assert_allclose(mask, np.minimum(parse_to_mask(labels[0], 512), template_mask(512)),
                               atol=1e-6)


class _FixedMasker:
    name = "fixed"

    def __init__(self, mask: np.ndarray) -> None:
        self._mask = mask

    def mask(self, face: Face) -> np.ndarray:
        return self._mask


def test_paste_follows_the_maskers_mask():
    # A mask with only the left half of the crop: the right half of the face stays original.
    face = _astronaut_face()
    half = template_mask(512).copy()
    half[:, 256:] = 0.0
    changed = Face(box=face.box, landmarks=face.landmarks, score=1.0, affine=face.affine,
                   crop=face.crop, restored=np.zeros_like(face.crop))
    out = data.astronaut().copy()
    paste_faces(out, [changed], masker=_FixedMasker(half))
    diff = (out != data.astronaut()).any(2)
    # Crop column 256 is about frame x = 226 (the nose); left of the left eye changed, right
    # of the right eye not.
    assert diff[100:140, 180:200].all() and not diff[:, 250:].any()


@pytest.mark.weights
def test_real_parsenet_masks_the_astronauts_face():
    folder = os.environ.get("VIDRESTORE_WEIGHTS_DIR")
    path = Path(folder) / PARSENET_FILE if folder else None
    if path is None or not path.is_file():
        pytest.skip(f"{PARSENET_FILE} not in VIDRESTORE_WEIGHTS_DIR ({folder or 'unset'})")
    mask = ParsingMasker(path).mask(_astronaut_face())
    # Eyes, nose and mouth of the template are face; the crop's lower corners (suit) are not.
    for x, y in (np.array([[193, 240], [319, 240], [257, 314], [257, 371]])):
        assert mask[y, x] > 0.9
    assert mask[480, 30] < 0.1 and mask[480, 480] < 0.1
