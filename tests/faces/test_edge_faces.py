"""A face cut by the frame's edge (a real face of the group photo as the panning camera frames
it): found, aligned with the crop padded outside the frame as the official helper pads it,
and pasted back over its visible part only."""

from __future__ import annotations

import numpy as np
import pytest

from testkit.labels import boxes_match, read_labels
from testkit.real_faces import CAMERA_SIZE, SourceUnavailable, load_image
from vidrestore.faces.align import BORDER_VALUE, estimate_affine, invert_affine, warp_face
from vidrestore.faces.detect.batching import auto_scale, detect_frames
from vidrestore.faces.paste import PasteConfig, paste_faces


@pytest.fixture(scope="module")
def edge_face(_mtcnn_and_memo):
    """(frame, detected face, labelled row) of the pan's face reaching furthest past the left
    edge that is still mostly in view."""
    detector, _ = _mtcnn_and_memo
    rows = [r for r in read_labels() if r.source == "t1-pan" and r.label == "face" and r.box[0] < -5]
    assert rows, "the pan has faces cut by the left edge"
    for row in sorted(rows, key=lambda r: r.box[0]):
        try:
            image = load_image(row.source, row.frame)
        except SourceUnavailable as exc:
            pytest.skip(str(exc))
        faces = detect_frames(detector, [image], scale=auto_scale(*image.shape[:2]), score_threshold=0.9)[0]
        found = [f for f in faces if boxes_match(f.box, row.box)]
        if found:
            return image, found[0], row
    pytest.fail("MTCNN found none of the faces cut by the left edge")


def test_an_edge_face_is_found_reaching_past_the_edge(edge_face):
    image, face, row = edge_face
    assert face.box[0] < 0 <= face.box[2]  # the box, like the face, reaches outside the frame
    assert face.score >= 0.9 and face.size >= 40


def test_its_crop_is_padded_outside_the_frame_with_the_official_grey(edge_face):
    image, face, _ = edge_face
    size = 128
    affine = estimate_affine(face.landmarks, size)
    crop = warp_face(image, affine, size)
    # where each crop pixel samples the frame
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    inv = invert_affine(affine)
    sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    w, h = CAMERA_SIZE
    outside = (sx < -1) | (sx > w) | (sy < -1) | (sy > h)
    inside = (sx > 1) & (sx < w - 2) & (sy > 1) & (sy < h - 2)
    assert outside.mean() > 0.05 and inside.mean() > 0.5
    grey = np.asarray(BORDER_VALUE, np.float32) / 255
    np.testing.assert_allclose(crop[outside], np.broadcast_to(grey, crop[outside].shape), atol=1e-6)
    # inside, the crop is the frame's own pixels (bilinear samples)
    i, j = np.argwhere(inside)[len(np.argwhere(inside)) // 2]
    x0, y0 = int(np.floor(sx[i, j])), int(np.floor(sy[i, j]))
    near = image[y0 : y0 + 2, x0 : x0 + 2].reshape(-1, 3) / 255.0
    assert (near.min(0) - 1e-3 <= crop[i, j]).all() and (crop[i, j] <= near.max(0) + 1e-3).all()


def test_only_the_visible_part_is_pasted_back(edge_face):
    image, face, _ = edge_face
    size = 128
    face.affine = estimate_affine(face.landmarks, size)
    face.crop = warp_face(image, face.affine, size)
    face.restored = 1.0 - face.crop  # a "restoration" that changes every pixel
    frame = image.copy()
    changed_boxes = paste_faces(frame, [face], config=PasteConfig(mask="template"))
    diff = np.abs(frame.astype(int) - image.astype(int)).max(2) > 0
    ys, xs = np.nonzero(diff)
    assert frame.shape == image.shape and len(changed_boxes) == 1
    assert xs.min() == 0  # pasted right up to the frame's edge where the face leaves it
    x1, y1, x2, y2 = face.box
    # nothing changes outside the face's crop: the pasted area lies around the face
    assert xs.max() < x2 + (x2 - x1) and ys.min() > y1 - (y2 - y1) and ys.max() < y2 + (y2 - y1)
    # at the edge, between the eyes and the mouth, the frame now holds the restored face (the
    # inverted frame), fully blended: the visible part is pasted as it is. The outermost
    # column also takes a little of the padding (the bilinear samples at the frame's edge mix
    # it in, as in the official helper): measured up to 24 of 255 levels in this inverted
    # extreme, under 12 one pixel in.
    top = int(np.ceil(face.landmarks[:, 1].min())) + 2
    bottom = int(np.floor(face.landmarks[:, 1].max())) - 2
    assert bottom > top
    error = np.abs(frame[top:bottom, :4].astype(int) + image[top:bottom, :4].astype(int) - 255)
    assert error[:, 1:].max() <= 12 and error[:, 0].max() <= 32, (error[:, 0].max(), error[:, 1:].max())
