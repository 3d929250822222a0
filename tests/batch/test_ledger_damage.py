"""A damaged ledger (truncated, or not SQLite at all): one clear line saying how to recover,
nothing changed, and after ``batch recover`` no finished output is redone or lost."""

from __future__ import annotations

import json

import pytest
from batch_helpers import PASSTHROUGH, copy_outdir, events, plain_clips, rows

from vidrestore.batch.records import read_records, record_path
from vidrestore.cli import main

LEDGER = "vidrestore-ledger.sqlite"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(inputs, OUTDIR) of three clips restored once (read-only: copy OUTDIR to change it)."""
    root = tmp_path_factory.mktemp("damage")
    plain_clips(root / "in", 3, frames=4)
    assert main(["batch", str(root / "in"), "-o", str(root / "out"), *PASSTHROUGH]) == 0
    return root / "in", root / "out"


def damage(outdir, how: str) -> bytes:
    path = outdir / LEDGER
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else b"these are my notes, not a database\n")
    return path.read_bytes()


def outputs(outdir) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in outdir.glob("*.mp4")}


def test_every_finished_file_has_a_done_record(finished):
    _, out = finished
    records = {r["key"]: r for r in read_records(out)}
    ledger = rows(out)
    assert set(records) == set(ledger)
    for key, row in ledger.items():
        assert record_path(out, key).is_file()
        assert records[key]["output_identity"] == [row["output_size"], row["output_mtime_ns"], row["output_content"]]
        assert (records[key]["settings"], records[key]["input"]["content"]) == (row["settings"], row["content"])


@pytest.mark.parametrize("how", ["truncated", "not sqlite"])
def test_a_damaged_ledger_is_one_line_saying_how_to_recover_and_nothing_changes(finished, tmp_path, how, capsys):
    inputs, first = finished
    out = copy_outdir(first, tmp_path / "out")
    damaged = damage(out, how)
    before = outputs(out)
    for argv in (["batch", str(inputs), "-o", str(out), *PASSTHROUGH], ["batch", "status", str(out)]):
        capsys.readouterr()
        assert main(argv) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and "damaged" in err[0] and f"vidrestore batch recover {out}" in err[0], err
    assert (out / LEDGER).read_bytes() == damaged  # left as it was, for the record
    assert outputs(out) == before


@pytest.mark.parametrize("how", ["truncated", "not sqlite"])
def test_recover_keeps_the_damaged_file_and_no_finished_output_is_redone(finished, tmp_path, how, capsys):
    inputs, first = finished
    out = copy_outdir(first, tmp_path / "out")
    damaged = damage(out, how)
    before = outputs(out)
    capsys.readouterr()
    assert main(["batch", "recover", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(result["done"]) == ["clip00.mp4", "clip01.mp4", "clip02.mp4"] and result["stale"] == []
    kept = [p.split("/")[-1] for p in result["kept_as"]]  # the file, and its -wal / -shm if any
    assert kept and all(name.startswith(f"{LEDGER}.damaged-") for name in kept)
    assert (out / kept[0]).read_bytes() == damaged
    assert main(["batch", str(inputs), "-o", str(out), "--json", *PASSTHROUGH]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["skipped"], summary["restored"]) == (3, 0)
    assert outputs(out) == before  # not one output rewritten
    assert not [e for e in events(out) if e["status"] == "running"]


def test_a_record_whose_output_changed_is_not_trusted(finished, tmp_path, capsys):
    inputs, first = finished
    out = copy_outdir(first, tmp_path / "out")
    damage(out, "not sqlite")
    (out / "clip01.mp4").write_bytes(b"someone else's file")
    capsys.readouterr()
    assert main(["batch", "recover", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(result["done"]) == ["clip00.mp4", "clip02.mp4"] and result["stale"] == ["clip01.mp4"]
    assert main(["batch", str(inputs), "-o", str(out), "--json", *PASSTHROUGH]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["skipped"], summary["restored"]) == (2, 1)
    assert rows(out)["clip01.mp4"]["status"] == "done"


def test_recover_leaves_a_healthy_ledger_alone(finished, tmp_path, capsys):
    _, first = finished
    out = copy_outdir(first, tmp_path / "out")
    before = (out / LEDGER).read_bytes()
    capsys.readouterr()
    assert main(["batch", "recover", str(out)]) == 0
    assert "healthy" in capsys.readouterr().out
    assert (out / LEDGER).read_bytes() == before
