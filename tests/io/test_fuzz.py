"""A fixed-seed set of fuzz cases (``tools/fuzz.py``'s): every kind of damage on generated
and package-shipped videos in every container the reader accepts, each held to the
contract: exit 0 with a decodable output, or exit 3 with one clear line and nothing left.

Most run in this process (``vidrestore.cli.main``, stderr captured at the file descriptor,
so FFmpeg's own messages count too); the kinds where memory is at stake run as a real
``vidrestore`` process under the harness's memory bound.
"""

from __future__ import annotations

import time

import av
import pytest

from testkit.damage import KINDS
from testkit.fuzz import (
    ExecLauncher,
    Run,
    argv,
    bounds,
    build,
    judge,
    output_name,
    plan,
    run_child,
)
from testkit.hostile import CONTAINERS, make_sources
from vidrestore.cli import main

SEED = 16
CASES = 3 * len(KINDS)
TIMEOUT = 120.0
IN_A_CHILD = {"absurd_dimensions", "thousands_of_streams"}
"""Kinds whose memory is at stake (frames as big as a header declares, a thousand streams):
their first case runs as a child process under the harness's memory bound (the others in
this process, to keep the set quick)."""


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return make_sources(tmp_path_factory.mktemp("fuzz-sources"), seconds=0.5)


def test_the_fixed_set_covers_every_kind_and_container_and_starts_from_clean_sources(sources):
    cases = plan(sources, CASES, SEED)
    assert {c.kind for c in cases} == set(KINDS)
    assert {c.source.container for c in cases} == set(CONTAINERS)
    assert {c.source.origin for c in cases} == {"generated", "iscc demo"}
    assert plan(sources, CASES, SEED) == cases  # the same cases every time
    for source in sources:  # undamaged, each decodes whole
        with av.open(str(source.path)) as container:
            assert sum(len(p.decode()) for p in container.demux(video=0)) >= 10, source


@pytest.mark.timeout(TIMEOUT * 2)
@pytest.mark.parametrize("index", range(CASES))
def test_a_damaged_input_is_restored_or_refused_cleanly(sources, tmp_path, capfd, index):
    case = plan(sources, 1, SEED, first=index)[0]
    damaged, detail = build(case, tmp_path)
    target = tmp_path / "out" / output_name(damaged)
    target.parent.mkdir()
    if case.kind in IN_A_CHILD and index < len(KINDS):
        bound, limit = bounds(damaged, case.source.path, base_seconds=TIMEOUT)
        run = run_child(ExecLauncher(), argv(damaged, target), tmp_path / "stderr.txt",
                        timeout=limit, memory_mib=bound)
    else:
        bound = limit = None
        capfd.readouterr()
        started = time.monotonic()
        code = main(argv(damaged, target))
        run = Run(code, capfd.readouterr().err, time.monotonic() - started, None)
    outcome, why = judge(run, target, timeout=limit if bound else TIMEOUT, memory_mib=bound)
    assert outcome in ("restored", "refused"), f"{case.name} ({detail}): {why}"
