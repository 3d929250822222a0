"""Still images get the video path's second opinion: a detection the verifier rejects is
left untouched and reported as rejected."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from face_kit import FixedDetector
from vidrestore.config import from_mapping
from vidrestore.pipeline.restore_stage import PassthroughRestorer
from vidrestore.pipeline.still import StillRestorer
from vidrestore.settings import RestoreConfig


def test_a_still_image_detection_the_verifier_rejects_is_left_untouched(detector, empty_store):
    from skimage import data

    image = data.astronaut()
    real = max(detector.detect([image])[0], key=lambda f: f.size)  # her face (not the patch's)
    shift = np.array([0.0, 300.0], np.float32)  # the same face shape moved onto the space suit
    fake = dataclasses.replace(real, box=real.box + np.tile(shift, 2), landmarks=real.landmarks + shift)
    config = from_mapping(RestoreConfig, {"model": "passthrough", "download": False,
                                          "faces": {"min_face": 0, "identity": {"backend": "off"},
                                                    "verify": {"method": "auto"}}})
    still = StillRestorer(config, empty_store, torch.device("cpu"), PassthroughRestorer())
    still.detector = FixedDetector([real, fake])
    result = still.restore(image)
    kept, rejected = result.faces
    assert kept["skip"] is None
    assert rejected["skip"] == "rejected" and "dlib-cnn" in rejected["rejected"]
    x0, y0, x1, y1 = (int(v) for v in fake.box)
    assert np.array_equal(result.image[y0:y1, x0:x1], image[y0:y1, x0:x1])
    assert result.restored == 1
