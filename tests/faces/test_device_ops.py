"""The device face ops (``faces.device``: alignment, inverse warp, mask, blend as grid_sample)
against today's OpenCV path, on the CPU: the same crops, the same pasted frames (PSNR ≥ 45 dB
over each face's region, measured far higher), the pixels outside the faces bit-exact, the
same touched boxes; a NaN face leaves the frame alone; the copy-back paths (per ROI, whole
frame) give the same frame."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import torch

from vidrestore.errors import UsageError
from vidrestore.faces.align import align_face
from vidrestore.faces.device import DeviceFaceOps, build_face_ops, stack_crops
from vidrestore.faces.device.frame import DeviceFrame
from vidrestore.faces.face import Face
from vidrestore.faces.paste import PasteConfig, face_roi, paste_faces
from vidrestore.imaging import psnr

CPU = torch.device("cpu")
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
ASTRONAUT = (np.array([[204.4, 100.3], [247.1, 103.1], [224.8, 128.6], [201.7, 138.7], [244.9, 142.0]]),
             np.array([179.1, 58.5, 267.4, 173.6]))
GRACE_HOPPER = (np.array([[216.8, 189.5], [308.8, 184.4], [266.9, 237.9], [231.0, 279.8], [305.2, 274.4]]),
                np.array([173.7, 106.3, 351.4, 330.9]))
"""Five landmarks and the box of each photo's face, as MTCNN (facenet-pytorch's weights) finds them."""


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data

        return data.astronaut()
    import matplotlib.cbook
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.array(im.convert("RGB"))


def two_face_frame(dtype=np.uint8) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """A 1280×720 frame holding both photos, and their faces' landmarks and boxes in it."""
    rng = np.random.default_rng(0)
    frame = rng.normal(110, 20, (720, 1280, 3)).clip(0, 255).astype(np.uint8)
    placed = []
    for (name, (lm, box)), (x, y) in zip((("astronaut", ASTRONAUT), ("grace", GRACE_HOPPER)), ((40, 100), (700, 80))):
        image = photo(name)
        frame[y : y + image.shape[0], x : x + image.shape[1]] = image[: 720 - y]
        placed.append((lm + (x, y), box + (x, y, x, y)))
    scale = np.iinfo(dtype).max // 255
    return frame.astype(dtype) * scale, placed


def opencv_face(image: np.ndarray, landmarks: np.ndarray, box: np.ndarray) -> Face:
    face = Face(box=box.astype(np.float32), landmarks=landmarks.astype(np.float32), score=1.0)
    face.crop, face.affine = align_face(image, landmarks)
    return face


def restorer(crop):
    """A stand-in network that visibly changes the face: +0.1 in [0, 1], clipped."""
    if isinstance(crop, torch.Tensor):
        return (crop + 0.1).clamp(0, 1)
    return np.clip(crop + 0.1, 0, 1)


def both_paths(image, placed, *, config=PasteConfig(mask="template"), whole_frame=False, masker=None,
               share=0.5, copy=False, device=CPU):
    """(OpenCV frame, OpenCV boxes, device frame, device boxes, OpenCV faces, device faces)."""
    cv_faces = [opencv_face(image, lm, box) for lm, box in placed]
    for f in cv_faces:
        f.restored = restorer(f.crop)
    cv_out = image.copy()
    cv_boxes = paste_faces(cv_out, cv_faces, masker, config)

    ops = DeviceFaceOps(device, config, whole_frame=whole_frame, whole_frame_share=share)
    dev_out = image.copy()
    frame = DeviceFrame(torch.from_numpy(dev_out.copy())) if copy else ops.upload(dev_out)
    dev_faces = [dataclasses.replace(f, crop=None, restored=None) for f in cv_faces]
    crops = ops.align(frame, [f.affine for f in dev_faces], 512)
    for f, c in zip(dev_faces, crops):
        f.crop = c
        f.restored = restorer(c)
    dev_boxes = ops.paste(frame, dev_out, dev_faces, masker)
    return cv_out, cv_boxes, dev_out, dev_boxes, cv_faces, dev_faces


def outside(shape, boxes) -> np.ndarray:
    keep = np.ones(shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        keep[y0:y1, x0:x1] = False
    return keep


@pytest.mark.parametrize("name", ["astronaut", "grace"])
@pytest.mark.parametrize("whole_frame", [False, True])
def test_crops_match_opencv(name, whole_frame):
    image = photo(name)
    landmarks, box = ASTRONAUT if name == "astronaut" else GRACE_HOPPER
    face = opencv_face(image, landmarks, box)
    ops = DeviceFaceOps(CPU, whole_frame=whole_frame)
    (crop,) = ops.align(ops.upload(image), [face.affine], 512)
    assert crop.shape == (512, 512, 3) and crop.dtype == torch.float32
    # Measured: 124 dB, max 0.005 of an 8-bit level (float rounding of the sampling position).
    assert psnr(crop.numpy(), face.crop, 1.0) > 80.0
    assert np.abs(crop.numpy() - face.crop).max() < 0.05 / 255


@pytest.mark.parametrize("whole_frame", [False, True])
def test_crop_cut_by_the_frame_edge_gets_the_grey_of_the_official_helper(whole_frame):
    image = np.ascontiguousarray(photo("astronaut")[30:, 215:]).astype(np.uint16) * 257
    landmarks, box = ASTRONAUT[0] - (215, 30), ASTRONAUT[1] - (215, 30, 215, 30)
    face = opencv_face(image, landmarks, box)
    ops = DeviceFaceOps(CPU, whole_frame=whole_frame)
    (crop,) = ops.align(ops.upload(image), [face.affine], 512)
    assert np.abs(crop.numpy() - face.crop).max() < 0.05 / 255
    np.testing.assert_allclose(crop[5, 5].numpy(), np.array([135, 133, 132]) / 255, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("interpolation", ["cubic", "linear"])
def test_pasted_frames_match_opencv_and_outside_is_bit_exact(dtype, interpolation):
    image, placed = two_face_frame(dtype)
    top = np.iinfo(dtype).max
    config = PasteConfig(mask="template", interpolation=interpolation)
    cv_out, cv_boxes, dev_out, dev_boxes, cv_faces, _ = both_paths(image, placed, config=config)
    assert len(cv_boxes) == 2 and not np.array_equal(cv_out, image)  # the faces really changed
    for face in cv_faces:
        x0, y0, x1, y1 = face_roi(face.affine, 512, image.shape[:2])
        assert psnr(dev_out[y0:y1, x0:x1], cv_out[y0:y1, x0:x1], top) >= 45.0  # measured ≥ 70
    assert psnr(dev_out, cv_out, top) >= 60.0
    # The same region was written, and nothing outside it moved, bit for bit.
    for (a, b) in zip(dev_boxes, cv_boxes):
        assert np.abs(np.subtract(a, b)).max() <= 1
    keep = outside(image.shape, dev_boxes + cv_boxes)
    assert keep.mean() > 0.5
    assert np.array_equal(dev_out[keep], image[keep])


def test_grace_hopper_alone_matches_opencv():
    image = photo("grace")
    cv_out, cv_boxes, dev_out, dev_boxes, _, _ = both_paths(image, [GRACE_HOPPER])
    assert psnr(dev_out, cv_out, 255) >= 45.0
    keep = outside(image.shape, dev_boxes + cv_boxes)
    assert np.array_equal(dev_out[keep], image[keep])


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_copy_back_per_roi_or_whole_frame_gives_the_same_frame(share):
    # A device frame that does not share the host frame's memory (as on CUDA): the changed
    # pixels must be copied back, either ROI by ROI or as the whole frame.
    image, placed = two_face_frame()
    shared = both_paths(image, placed)
    copied = both_paths(image, placed, copy=True, share=share)
    assert np.array_equal(copied[2], shared[2]) and copied[3] == shared[3]


def test_a_face_with_nan_leaves_the_frame_alone():
    image = photo("astronaut")
    ops = DeviceFaceOps(CPU)
    face = opencv_face(image, *ASTRONAUT)
    frame = ops.upload(out := image.copy())
    (crop,) = ops.align(frame, [face.affine], 512)
    face.crop, face.restored = crop, crop.clone()
    face.restored[100, 100, 1] = float("nan")
    assert ops.paste(frame, out, [face]) == []
    assert np.array_equal(out, image) and face.skip == "restored face has NaN or inf"


def test_a_masker_of_its_own_gets_a_host_copy_of_the_face():
    class Ellipse:  # like ParseNet's masker: a new, writable mask per face, read on the host
        name = "ellipse"
        seen = []

        def mask(self, face):
            assert isinstance(face.restored, np.ndarray)
            self.seen.append(face.restored.shape)
            yy, xx = np.mgrid[0:512, 0:512]
            return (((xx - 256) / 200.0) ** 2 + ((yy - 270) / 230.0) ** 2 < 1).astype(np.float32)

    image = photo("astronaut")
    cv_out, _, dev_out, _, _, _ = both_paths(image, [ASTRONAUT], masker=Ellipse())
    assert Ellipse.seen == [(512, 512, 3), (512, 512, 3)]
    assert psnr(dev_out, cv_out, 255) >= 45.0


def test_lanczos_and_unknown_names_are_refused_and_auto_keeps_opencv_on_a_cpu():
    with pytest.raises(UsageError, match="linear or cubic"):
        DeviceFaceOps(CPU, PasteConfig(interpolation="lanczos"))
    with pytest.raises(UsageError):
        build_face_ops("fast", CPU, PasteConfig())
    assert build_face_ops("auto", CPU, PasteConfig())[0] is None
    assert build_face_ops("opencv", CPU, PasteConfig())[0] is None
    assert isinstance(build_face_ops("torch", CPU, PasteConfig())[0], DeviceFaceOps)
    ops, why = build_face_ops("auto", torch.device("cuda"), PasteConfig(interpolation="lanczos"))
    assert ops is None and "lanczos" in why


def test_stack_crops_keeps_host_arrays_and_stacks_tensors():
    arrays = [np.zeros((4, 4, 3), np.float32), np.ones((4, 4, 3), np.float32)]
    assert isinstance(stack_crops(arrays), np.ndarray)
    stacked = stack_crops([torch.zeros(4, 4, 3), torch.ones(4, 4, 3)], [DeviceFrame(torch.zeros(2, 2, 3))])
    assert isinstance(stacked, torch.Tensor) and stacked.shape == (2, 4, 4, 3)


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("whole_frame", [False, True])
@pytest.mark.parametrize("share", [0.0, 1.0])
def test_on_cuda_the_frame_goes_up_once_and_comes_back_the_same_as_opencv(whole_frame, share):
    image, placed = two_face_frame()
    cv_out, cv_boxes, dev_out, dev_boxes, cv_faces, dev_faces = both_paths(
        image, placed, whole_frame=whole_frame, share=share, device=torch.device("cuda"))
    assert all(f.crop.is_cuda for f in dev_faces)
    for face in cv_faces:
        x0, y0, x1, y1 = face_roi(face.affine, 512, image.shape[:2])
        assert psnr(dev_out[y0:y1, x0:x1], cv_out[y0:y1, x0:x1], 255) >= 45.0
    assert dev_boxes == cv_boxes
    keep = outside(image.shape, dev_boxes)
    assert np.array_equal(dev_out[keep], image[keep])


@pytest.mark.gpu
@requires_cuda
def test_on_cuda_a_face_with_nan_leaves_the_frame_alone():
    image = photo("astronaut")
    ops = DeviceFaceOps(torch.device("cuda"))
    face = opencv_face(image, *ASTRONAUT)
    frame = ops.upload(out := image.copy())
    (crop,) = ops.align(frame, [face.affine], 512)
    face.crop, face.restored = crop, crop.clone()
    face.restored[100, 100, 1] = float("nan")
    assert ops.paste(frame, out, [face]) == []
    assert np.array_equal(out, image) and face.skip == "restored face has NaN or inf"
