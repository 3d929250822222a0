"""The debug overlay draws where the faces are and nowhere else."""

from __future__ import annotations

import numpy as np
import pytest

from vidrestore.faces.face import Face
from vidrestore.faces.overlay import draw_overlay, track_colour


def _face(track_id: int, x: float, y: float, score: float = 0.97) -> Face:
    box = np.array([x, y, x + 80, y + 100], np.float32)
    marks = np.array([[x + 25, y + 40], [x + 55, y + 40], [x + 40, y + 60],
                      [x + 28, y + 80], [x + 52, y + 80]], np.float32)
    return Face(box=box, landmarks=marks, score=score, track_id=track_id)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_draws_boxes_landmarks_and_labels_only_near_faces(dtype):
    image = np.full((360, 640, 3), 40, dtype)
    faces = [_face(1, 100, 120), _face(7, 400, 150)]
    before = image.copy()
    draw_overlay(image, faces)
    changed = (image != before).any(2)
    # Box edges changed...
    for f in faces:
        x1, y1, x2, y2 = f.box.astype(int)
        assert changed[y1, x1 + 5 : x2 - 5].mean() > 0.9 and changed[y1 + 5 : y2 - 5, x2].mean() > 0.9
        for x, y in f.landmarks.astype(int):
            assert changed[y, x]
        # ...the label sits just above the box...
        assert changed[y1 - 14 : y1 - 2, x1 : x1 + 40].any()
    # ...and nothing changed away from the faces (boxes + 20 px margin).
    near = np.zeros_like(changed)
    for f in faces:
        x1, y1, x2, y2 = f.box.astype(int)
        near[max(y1 - 20, 0) : y2 + 20, max(x1 - 20, 0) : x2 + 20] = True
    assert changed.any() and not changed[~near].any()
    # The box is drawn in its track's colour, scaled to the dtype.
    unit = 1 if dtype == np.uint8 else 257
    x1, y1 = faces[1].box[:2].astype(int)
    assert image[y1, x1 + 30].tolist() == [c * unit for c in track_colour(7)]


def test_track_colours_differ_and_untracked_is_grey():
    colours = {track_colour(i) for i in range(12)}
    assert len(colours) == 12
    assert track_colour(-1) == (200, 200, 200)


def test_draws_into_a_non_contiguous_view_and_clips_at_the_frame_edge():
    canvas = np.zeros((200, 400, 3), np.uint8)
    view = canvas[:, ::2]  # not C-contiguous: cv2 alone would draw on a copy
    draw_overlay(view, [_face(3, 150, -30)])  # box partly above the frame, label below it
    assert (canvas[:, ::2] != 0).any() and not (canvas[:, 1::2] != 0).any()


def test_rejects_float_frames():
    with pytest.raises(TypeError):
        draw_overlay(np.zeros((10, 10, 3), np.float32), [])
