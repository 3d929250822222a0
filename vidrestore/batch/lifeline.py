"""A worker process's tie to the coordinator that started it: it never outlives it.

A worker left running after its coordinator was killed (``kill -9``) would go on claiming
and publishing files while a new run plans the same ones. Two ties prevent it:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` asks the kernel to send the worker SIGTERM
  the moment its parent dies (see prctl(2)); the worker then stops as on any SIGTERM: it
  deletes its temporary output and gives its file back;
- everywhere, the worker compares its parent with the coordinator's pid (which it is given,
  rather than reading ``getppid()`` itself: a coordinator killed before the worker started
  would otherwise look like the parent it never had). A worker whose parent is already
  another process at start claims nothing; its heartbeat thread checks again every tick.

``PR_SET_PDEATHSIG`` fires when the *thread* that started the worker exits, so the
coordinator starts its workers from the thread that waits for them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when its parent dies (linux/prctl.h)."""


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies.

    Returns whether that is in place (False off Linux, or if ``prctl`` is unavailable; the
    parent check of ``parent_is`` still applies there).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def parent_is(pid: int | None) -> bool:
    """Whether this process's parent is still ``pid`` (None: no coordinator to check)."""
    return pid is None or os.getppid() == pid


__all__ = ["PR_SET_PDEATHSIG", "die_with_parent", "parent_is"]
