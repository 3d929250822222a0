"""How combed a picture is: the measure the deinterlacing tests assert on.

Two fields woven from different instants disagree wherever something moved, so neighbouring
lines alternate: the vertical second difference ``y[k-1] − 2·y[k] + y[k+1]`` (the [1, −2, 1]
high-pass across lines) is large there. ``combing`` is its mean energy on the luma; a
progressive picture of the same scene gives the reference level.
"""

from __future__ import annotations

import numpy as np


def combing(image: np.ndarray) -> float:
    """Mean squared [1, −2, 1] vertical second difference of the luma (8-bit units²)."""
    rgb = np.asarray(image, np.float64)
    if image.dtype == np.uint16:
        rgb = rgb / 257.0
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    second = luma[:-2] - 2.0 * luma[1:-1] + luma[2:]
    return float(np.mean(second**2))


def combing_ratio(images, references) -> float:
    """Mean ``combing`` of ``images`` over that of their progressive ``references``."""
    got = np.mean([combing(i) for i in images])
    base = np.mean([combing(r) for r in references])
    return float(got / max(base, 1e-9))
