"""Test and measurement helpers shared by ``tests/`` and ``tools/``; not part of the installed
package, and never imported by it.

``media``: synthetic videos (timestamps, rotation, pixel formats, colour tags, audio,
subtitles) with real package-shipped faces moving over a background. ``jitter``: how much
aligned face crops shake from frame to frame (the measure behind the smoothing defaults).
Import it from the repository root (``python -m pytest`` and the tools put it on the path).
"""
