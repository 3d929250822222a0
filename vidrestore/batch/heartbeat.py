"""A worker's heartbeat thread: alive, how far, still its claim, still its coordinator.

Every tick (1 s) it checks that the worker's parent is still its coordinator (else it sends
the worker SIGTERM: it gives its file back and exits) and that the claim it watches is still
the worker's; every ``HEARTBEAT_SECONDS`` it refreshes the worker's heartbeat (how other
machines tell a live worker from a dead one), and every ``PROGRESS_SECONDS`` it writes how
far the current file is. It has its own ledger connection.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from .lifeline import parent_is
from .ledger import HEARTBEAT_SECONDS, Ledger

PROGRESS_SECONDS = 2.0
"""How often a worker writes its current file's progress to the ledger (at most)."""


class Heartbeat(threading.Thread):
    """Refreshes a worker's heartbeat and writes the progress of the file it is restoring
    (``report``) to the ledger every ``PROGRESS_SECONDS``; if the process's parent is no
    longer ``parent`` (the coordinator was killed), interrupts the worker so it gives its
    claim back and exits; every tick it checks that the claim it ``watch``es is still the
    worker's (``lost`` tells).

    Args:
        ledger_path: the ledger (the thread opens its own connection).
        worker: the worker's id in the ledger.
        parent: the coordinator's pid (None: not checked).
        tick: seconds between checks.
    """

    def __init__(self, ledger_path: str, worker: int, *, parent: int | None = None,
                 tick: float = 1.0) -> None:
        super().__init__(name="vidrestore-heartbeat", daemon=True)
        self.ledger_path = ledger_path
        self.worker = worker
        self.parent = parent
        self.tick = tick
        self._progress: tuple[int, int, int | None] | None = None
        self._watched: int | None = None
        self._lost: set[int] = set()
        self._stop_event = threading.Event()

    def report(self, file_id: int, frames: int, total: int | None) -> None:
        """The claimed file ``file_id`` has ``frames`` of ``total`` written (any thread)."""
        self._progress = (file_id, frames, total)

    def watch(self, file_id: int | None) -> None:
        """Check the claim on ``file_id`` every tick from now on (None: stop checking)."""
        self._watched = file_id

    def lost(self, file_id: int) -> bool:
        """Whether the claim on ``file_id`` was found taken over."""
        return file_id in self._lost

    def run(self) -> None:
        ledger = Ledger(self.ledger_path)
        last_beat = last_progress = time.monotonic()
        written = None
        try:
            while not self._stop_event.wait(self.tick):
                if not parent_is(self.parent):
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
                watched = self._watched
                if watched is not None and not ledger.holds(watched, self.worker):
                    self._lost.add(watched)
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_SECONDS:
                    ledger.heartbeat(self.worker)
                    last_beat = now
                progress = self._progress
                if progress is not None and progress != written and now - last_progress >= PROGRESS_SECONDS:
                    ledger.progress(progress[0], self.worker, *progress[1:])
                    written, last_progress = progress, now
        finally:
            ledger.close()

    def stop(self) -> None:
        self._stop_event.set()


__all__ = ["Heartbeat", "PROGRESS_SECONDS"]
