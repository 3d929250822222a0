"""Archival batch jobs: many videos, resumable, sharded, on worker processes or Ray.

``run_batch`` plans the inputs (``plan``), brings the SQLite ledger in the output folder up
to date and queues what is not done yet (``resume``), then runs the queue on local worker
processes (``local``, ``worker``) or Ray tasks (``ray_runner``). The ledger (``ledger``) is
the only thing workers share: claims, outcomes and progress all go through it.
"""

from .ledger import LEDGER_NAME, Ledger
from .plan import (
    BatchItem,
    collect_inputs,
    parse_shard,
    plan_outputs,
    select_shard,
    shard_of,
)
from .runner import EXIT_SOME_FAILED, BatchOptions, BatchResult, run_batch

__all__ = [
    "BatchItem", "BatchOptions", "BatchResult", "EXIT_SOME_FAILED", "LEDGER_NAME", "Ledger",
    "collect_inputs", "parse_shard", "plan_outputs", "run_batch", "select_shard", "shard_of",
]
