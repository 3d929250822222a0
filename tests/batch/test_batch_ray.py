"""``--ray``: one task per file on a local Ray cluster started by the test."""

from __future__ import annotations

import pytest
from batch_helpers import PASSTHROUGH, leftovers, outcome, rows

from vidrestore.batch import EXIT_SOME_FAILED
from vidrestore.cli import main

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")


@pytest.fixture
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_run_gives_the_same_ledger_as_local_workers(first, archive, tmp_path, cluster):
    out = tmp_path / "out"
    assert main(["batch", str(archive), "-o", str(out), "--ray", "auto", *PASSTHROUGH]) == EXIT_SOME_FAILED
    assert outcome(out) == outcome(first[0])
    assert all(r["host"] and r["pid"] for r in rows(out).values())  # where each task ran
    assert not leftovers(out)
    # a re-run on Ray skips everything done
    assert main(["batch", str(archive), "-o", str(out), "--ray", "auto", "--retries", "0", *PASSTHROUGH]) \
        == EXIT_SOME_FAILED
    assert outcome(out) == outcome(first[0])
