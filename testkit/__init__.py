"""Test and measurement helpers shared by ``tests/`` and ``tools/``; not part of the installed
package, and never imported by it.

``media``: synthetic videos (timestamps, rotation, pixel formats, colour tags, audio,
subtitles) with real package-shipped faces moving over a background. ``jitter``: how much
aligned face crops shake from frame to frame (the measure behind the smoothing defaults).
``real_faces``: the package-shipped real photos and video frames (and a camera panning and
zooming over a group photo); ``labels``: the hand-labelled detection set on them and its
scoring.
Import it from the repository root (``python -m pytest`` and the tools put it on the path).
"""
