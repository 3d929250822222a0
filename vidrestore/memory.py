"""Returning freed heap memory to the operating system during long runs.

The stage threads allocate and free frame-sized buffers all the time; glibc keeps freed
blocks in its per-thread arenas, so the resident size creeps up over a long video although
nothing is kept (measured in docs/benchmarks.md). ``trim_heap`` asks glibc to give free
pages back; elsewhere (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def trim_heap() -> bool:
    """Release free heap pages to the OS (glibc); True if anything could be asked."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
