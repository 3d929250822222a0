"""Shared fixtures of the face and face-stage tests: real faces (the astronaut, the iscc demo
video), a real detector whose answers are remembered across tests, and a stage runner.

Imported by name (the tests folder is on the path) into ``faces/conftest.py`` and
``pipeline/conftest.py``, whose tests both use them."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import pytest

from testkit.media import face_clip_frames
from vidrestore.faces.face import Face
from vidrestore.io.frame import Frame
from vidrestore.pipeline.contracts import FrameJob
from vidrestore.weights import WeightStore


@pytest.fixture
def empty_store(tmp_path) -> WeightStore:
    """A weight store with no files and downloads off."""
    return WeightStore(tmp_path / "weights", tmp_path / "cache", allow_download=False)


class FixedDetector:
    """Finds the given faces on every image (copies, so a stage may move them)."""

    name = "fixed"

    def __init__(self, faces: Sequence[Face]) -> None:
        self.faces = list(faces)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return [[dataclasses.replace(f, box=f.box.copy(), landmarks=f.landmarks.copy()) for f in self.faces]
                for _ in images]


class RememberingDetector:
    """A real detector whose answer for an image is computed once per session, then copied.

    ``calls`` counts ``detect`` calls made on this object (remembered or not), so tests can
    check when the stage runs the detector at all.
    """

    def __init__(self, real, memo: dict) -> None:
        self.real = real
        self.name = real.name
        self.reason = getattr(real, "reason", "")
        self._memo = memo
        self.calls = 0
        self.images = 0

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        self.calls += 1
        self.images += len(images)
        keys = [(im.shape, hash(np.ascontiguousarray(im).tobytes())) for im in images]
        todo = [i for i, k in enumerate(keys) if k not in self._memo]
        if todo:
            for i, faces in zip(todo, self.real.detect([images[i] for i in todo])):
                self._memo[keys[i]] = faces
        return [[dataclasses.replace(f, box=f.box.copy(), landmarks=f.landmarks.copy())
                 for f in self._memo[k]] for k in keys]


@pytest.fixture(scope="session")
def _mtcnn_and_memo():
    from vidrestore.faces.detect import build_detector

    store = WeightStore("/nonexistent-weights", "/nonexistent-cache", allow_download=False)
    return build_detector("mtcnn", store), {}


@pytest.fixture
def detector(_mtcnn_and_memo) -> RememberingDetector:
    """The real MTCNN (facenet-pytorch's weights), answers shared across the session."""
    real, memo = _mtcnn_and_memo
    return RememberingDetector(real, memo)


def astronaut_clip(n: int = 24, **kw) -> list[np.ndarray]:
    """The astronaut's head moving left to right over 192×144 frames (head 80 px)."""
    kw.setdefault("face_size", 80)
    return list(face_clip_frames(n, 192, 144, **kw))


def two_face_clip(n: int = 16) -> list[np.ndarray]:
    """Two astronauts at once, 256×160: one moving right, one mirrored and smaller moving left."""
    from skimage import data

    head = data.astronaut()[30:250, 110:330]
    big = cv2.resize(head, (76, 76), interpolation=cv2.INTER_AREA)
    small = cv2.flip(cv2.resize(head, (60, 60), interpolation=cv2.INTER_AREA), 1)
    rng = np.random.default_rng(1)
    background = cv2.GaussianBlur(rng.normal(110, 12, (160, 256, 3)).clip(0, 255).astype(np.uint8), (0, 0), 3)
    frames = []
    for i in range(n):
        frame = background.copy()
        x1 = 10 + 3 * i
        x2 = 180 - 3 * i
        frame[20:96, x1 : x1 + 76] = big
        frame[90:150, x2 : x2 + 60] = small
        frames.append(frame)
    return frames


def grace_hopper() -> np.ndarray:
    """matplotlib's sample photo of Grace Hopper, RGB (600×512)."""
    from matplotlib import cbook

    return cv2.cvtColor(cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.COLOR_BGR2RGB)


def two_people_clip(n: int = 8) -> list[np.ndarray]:
    """Two different people at once, 256×160: the astronaut moving right, Grace Hopper left."""
    from skimage import data

    astronaut = cv2.resize(data.astronaut()[30:250, 110:330], (76, 76), interpolation=cv2.INTER_AREA)
    hopper = cv2.resize(grace_hopper()[40:380, 90:430], (72, 72), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(2)
    background = cv2.GaussianBlur(rng.normal(110, 12, (160, 256, 3)).clip(0, 255).astype(np.uint8), (0, 0), 3)
    frames = []
    for i in range(n):
        frame = background.copy()
        frame[10:86, 8 + 3 * i : 84 + 3 * i] = astronaut
        frame[80:152, 176 - 3 * i : 248 - 3 * i] = hopper
        frames.append(frame)
    return frames


def blank_face(frames: list[np.ndarray], indices: Iterable[int], clean: list[np.ndarray]) -> list[np.ndarray]:
    """Copies of ``frames`` where ``indices`` show ``clean`` instead (e.g. the background)."""
    out = [f.copy() for f in frames]
    for i in indices:
        out[i] = clean[i].copy()
    return out


def background_clip(n: int) -> list[np.ndarray]:
    """``astronaut_clip``'s background without the face (same seed)."""
    rng = np.random.default_rng(0)
    background = (rng.normal(110, 12, (144, 192, 3))).clip(0, 255).astype(np.uint8)
    background = cv2.GaussianBlur(background, (0, 0), 3)
    return [background.copy() for _ in range(n)]


def demo_video() -> Path:
    spec = importlib.util.find_spec("iscc_samples")
    if spec is None:
        pytest.skip("iscc-samples is not installed")
    path = Path(spec.submodule_search_locations[0]) / "files" / "video" / "demo.mp4"
    if not path.is_file():
        pytest.skip("iscc-samples has no demo.mp4")
    return path


_DEMO: dict[tuple[int, int], list[np.ndarray]] = {}


def demo_frames(start: int, count: int) -> list[np.ndarray]:
    """Frames ``start … start+count−1`` of the iscc demo video (176×144, real faces)."""
    if (start, count) not in _DEMO:
        import av

        with av.open(str(demo_video())) as container:
            decoded = (f.to_ndarray(format="rgb24") for f in container.decode(video=0))
            _DEMO[(start, count)] = list(itertools.islice(decoded, start, start + count))
    return _DEMO[(start, count)]


def make_jobs(frames: Sequence[np.ndarray], fps: int = 24) -> list[FrameJob]:
    return [FrameJob(Frame(i, i, Fraction(1, fps), np.array(f))) for i, f in enumerate(frames)]


def run_stage(stage, frames: Sequence[np.ndarray], chunk: int = 1) -> list[FrameJob]:
    """Feed ``frames`` to ``stage`` ``chunk`` jobs at a time, then flush; all jobs out."""
    jobs = make_jobs(frames)
    out: list[FrameJob] = []
    for start in range(0, len(jobs), chunk):
        out += stage.process(jobs[start : start + chunk])
    out += stage.flush()
    return out


def track_ids(jobs: Sequence[FrameJob]) -> list[list[int]]:
    return [[f.track_id for f in job.faces] for job in jobs]


def permissive_store(folder: Path) -> WeightStore:
    """A store over ``folder`` whose identity entries accept any file (random weights)."""
    from vidrestore.weights import KNOWN_WEIGHTS

    table = {k: dataclasses.replace(v, sha256=None) if k.startswith("arcface") else v
             for k, v in KNOWN_WEIGHTS.items()}
    return WeightStore(folder, folder / "cache", allow_download=False, table=table)


def tiny_arcface_onnx(path: Path) -> Path:
    """A 112×112 → 512 ONNX "ArcFace": channel means through a fixed matrix whose first
    three outputs are the R, G and B means, so the colour order it receives is visible."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.zeros((3, 512), np.float32)
    w[0, 0] = w[1, 1] = w[2, 2] = 1.0
    w[:, 3:] = np.random.default_rng(0).normal(size=(3, 509)).astype(np.float32) * 0.01
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"], name="pool"),
         helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
         helper.make_node("Gemm", ["flat", "W"], ["embedding"], name="fc")],
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["None", 512])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def structure_arcface_onnx(path: Path) -> Path:
    """A 112×112 → 512 ONNX "ArcFace" that tells people apart a little: the crop pooled to
    14×14, its mean removed, through a fixed random matrix. Measured with MTCNN crops: the
    astronaut against herself at another size 0.99, Grace Hopper 0.96, the two 0.47-0.50."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = (np.random.default_rng(0).normal(size=(588, 512)) / np.sqrt(588)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("ReduceMean", ["flat"], ["mean"], axes=[1], keepdims=1),
         helper.make_node("Sub", ["flat", "mean"], ["centred"]),
         helper.make_node("Gemm", ["centred", "W"], ["embedding"])],
        "structure_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["None", 512])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def structure_store(tmp_path) -> WeightStore:
    """A weights folder holding ``structure_arcface_onnx`` under insightface's file name."""
    structure_arcface_onnx(tmp_path / "sweights" / "w600k_r50.onnx")
    return permissive_store(tmp_path / "sweights")


@pytest.fixture
def onnx_store(tmp_path) -> WeightStore:
    """A weights folder holding a tiny ArcFace ONNX under insightface's file name."""
    tiny_arcface_onnx(tmp_path / "weights" / "w600k_r50.onnx")
    return permissive_store(tmp_path / "weights")


class _Kit:
    """The helpers above, handed to tests as the ``kit`` fixture (test modules cannot import
    a conftest by name when several folders have one)."""

    astronaut_clip = staticmethod(astronaut_clip)
    two_face_clip = staticmethod(two_face_clip)
    two_people_clip = staticmethod(two_people_clip)
    grace_hopper = staticmethod(grace_hopper)
    structure_arcface_onnx = staticmethod(structure_arcface_onnx)
    blank_face = staticmethod(blank_face)
    background_clip = staticmethod(background_clip)
    demo_video = staticmethod(demo_video)
    demo_frames = staticmethod(demo_frames)
    make_jobs = staticmethod(make_jobs)
    run_stage = staticmethod(run_stage)
    track_ids = staticmethod(track_ids)
    permissive_store = staticmethod(permissive_store)
    tiny_arcface_onnx = staticmethod(tiny_arcface_onnx)


@pytest.fixture
def kit() -> _Kit:
    return _Kit()
