"""The streaming pipeline: stages on threads joined by bounded queues.

    decode ─▶ q ─▶ faces ─▶ q ─▶ restore ─▶ q ─▶ paste ─▶ q ─▶ encode

``contracts`` (``FrameJob``, the ``Stage`` and ``Restorer`` protocols), ``runner``
(``run_stages``: threads, queues, back-pressure, errors), the stages themselves
(``face_stage``, ``restore_stage``, ``paste_stage``) and ``build`` (a ``RestoreConfig`` → the
restorer and the stages).
"""

from .contracts import FrameJob, Restorer, Stage, check_restorer, check_stage
from .runner import StageClock, iterate_stages, run_stages

__all__ = [
    "FrameJob",
    "Restorer",
    "Stage",
    "StageClock",
    "check_restorer",
    "check_stage",
    "iterate_stages",
    "run_stages",
]
