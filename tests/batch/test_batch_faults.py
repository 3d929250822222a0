"""Batch faults between runs: a ``--weights`` file that went missing stops the next run with
one line and exit 4 before the ledger is touched, so the files it finished stay done."""

from __future__ import annotations

import json

from batch_helpers import PASSTHROUGH, plain_clips, rows

from vidrestore.cli import main


def test_weights_missing_between_runs_exit_4_and_the_ledger_is_untouched(tmp_path, capsys):
    # passthrough ignores the checkpoint, but the settings hash covers its content exactly
    # as for a real model: a run without the file used to requeue every done file
    weights = tmp_path / "mine.pth"
    weights.write_bytes(b"a checkpoint")
    plain_clips(tmp_path / "in", 2, frames=4)
    args = ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(weights), *PASSTHROUGH]
    assert main(args) == 0
    before = rows(tmp_path / "out")
    weights.unlink()
    capsys.readouterr()
    assert main(args) == 4
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "weights file not found" in err[0] and str(weights) in err[0]
    assert rows(tmp_path / "out") == before  # still done, with their settings
    weights.write_bytes(b"a checkpoint")
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["skipped"], summary["restored"]) == (2, 0)
