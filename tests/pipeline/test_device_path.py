"""The whole road with the device face ops on the CPU (``--face-ops torch``): the same video
as the OpenCV road, through a real restorer of host arrays and through the engine restorer
fed tensors, and nothing changed where no face was pasted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidrestore.config import from_mapping
from vidrestore.imaging import psnr
from vidrestore.io.reader import VideoReader
from vidrestore.restore_video import restore_video
from vidrestore.settings import RestoreConfig


class Brighter:
    """Host arrays only (no ``takes_tensors``): the stage hands it host copies."""

    name = "brighter"
    uses_identity = False
    face_size = 512

    def restore(self, faces, identities, fidelity):
        assert isinstance(faces, np.ndarray)
        return np.clip(faces + 0.15, 0, 1)


def config(face_ops: str, device: str = "cpu") -> RestoreConfig:
    return from_mapping(RestoreConfig, {"model": "passthrough", "download": False, "face_ops": face_ops,
                                        "device": device, "encode": {"codec": "ffv1"},
                                        "paste": {"mask": "template"}})


def frames(path) -> list[np.ndarray]:
    return [f.image for f in VideoReader(path).frames()]


def run(src, tmp_path, face_ops, restorer, lines, device="cpu"):
    out = tmp_path / f"{face_ops}.mkv"
    summary = restore_video(src, out, config(face_ops, device), restorer=restorer, log=lines.append,
                            overwrite=True)
    return summary, frames(out)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")])])
@pytest.mark.parametrize("tiny_engine", [False, True])
def test_torch_face_ops_give_the_opencv_video(media, tmp_path, tiny_engine, device):
    src = media.faces_lossless(frames=6)
    if tiny_engine:
        from vidrestore.pipeline.build import build_restorer
        from vidrestore.weights import WeightStore

        restorer = build_restorer(from_mapping(RestoreConfig, {"engine": "torch", "device": device}),
                                  WeightStore(allow_download=False), torch.device(device), tiny=True)
    else:
        restorer = Brighter()
    lines_cv, lines_torch = [], []
    summary_cv, opencv = run(src, tmp_path, "opencv", restorer, lines_cv, device)
    summary_torch, torched = run(src, tmp_path, "torch", restorer, lines_torch, device)
    assert any(f"face ops: torch on {device}" in line for line in lines_torch)
    assert any("face ops: OpenCV" in line for line in lines_cv)
    assert summary_cv.faces == summary_torch.faces == 6
    source = frames(src)
    for before, a, b in zip(source, opencv, torched):
        assert not np.array_equal(a, before)  # the face really changed
        assert psnr(a, b) >= 45.0
        untouched = np.all(a == before, axis=2)
        assert untouched.mean() > 0.4
        assert np.array_equal(b[untouched], before[untouched])
