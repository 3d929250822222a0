"""``vidrestore batch`` end to end on a small archive (passthrough model, tiny clips)."""

from __future__ import annotations

import json
import sys

from batch_helpers import (
    BROKEN,
    GOOD,
    PASSTHROUGH,
    cli,
    copy_outdir,
    events,
    leftovers,
    outcome,
    plain_clips,
    rows,
)

from vidrestore.batch import EXIT_SOME_FAILED
from vidrestore.cli import main
from vidrestore.io.probe import count_frames


def batch(capsys, *args) -> tuple[int, dict | str]:
    """``vidrestore batch ...`` in this process; (exit code, its --json output, else its stdout)."""
    capsys.readouterr()
    code = main(["batch", *map(str, args)])
    out = capsys.readouterr().out
    return code, (json.loads(out) if "--json" in args else out)


def test_good_files_are_done_and_broken_ones_failed_with_their_error(first, archive):
    out, code, summary = first
    assert code == EXIT_SOME_FAILED
    ledger = rows(out)
    assert set(ledger) == set(GOOD) | set(BROKEN)
    for key, frames in GOOD.items():
        row = ledger[key]
        assert (row["status"], row["attempts"], row["completions"], row["error"]) == ("done", 1, 1, None)
        assert row["frames"] == frames and row["seconds"] > 0 and row["finished_at"] >= row["started_at"]
        output = out / row["output"]
        assert output.suffix == (archive / key).suffix  # x264 fits .mp4, .mkv and .mov
        assert output.relative_to(out).with_suffix("").as_posix() == key.rsplit(".", 1)[0]  # mirrored
        assert count_frames(output) == frames
        report = json.loads((out / row["report"]).read_text())
        assert report  # the face report beside it
    assert ledger["a_face.mp4"]["faces"] > 0 and ledger["b_plain.mp4"]["faces"] == 0
    for key, words in BROKEN.items():
        row = ledger[key]
        assert row["status"] == "failed" and words in row["error"] and "\n" not in row["error"]
        assert not (out / row["output"]).exists()
    assert not leftovers(out)
    assert summary["counts"] == {"done": 4, "failed": 3, "pending": 0, "running": 0}
    assert summary["restored"] == 4 and summary["exit_code"] == EXIT_SOME_FAILED
    by_key = {f["input"]: f for f in summary["files"]}
    assert by_key["broken/tone.mp4"]["error"] == ledger["broken/tone.mp4"]["error"]
    assert by_key["a_face.mp4"]["output"] == str(out / "a_face.mp4")


def test_status_json_shows_every_file(first, capsys):
    out, _, _ = first
    code, status = batch(capsys, "status", out, "--json")
    assert code == 0
    assert status["counts"] == {"done": 4, "failed": 3, "pending": 0, "running": 0}
    files = {f["input"]: f for f in status["files"]}
    assert set(files) == set(GOOD) | set(BROKEN)
    assert files["sub/c_face.mkv"]["status"] == "done" and files["sub/c_face.mkv"]["frames"] == 12
    assert "no video stream" in files["broken/tone.mp4"]["error"]
    code, text = batch(capsys, "status", out)
    assert code == 0 and "7 files: 4 done, 3 failed" in text


def test_rerun_skips_done_files_and_new_settings_redo_them(first, archive, tmp_path, capsys):
    out = copy_outdir(first[0], tmp_path / "out")
    before = rows(out)
    code, summary = batch(capsys, archive, "-o", out, "--json", *PASSTHROUGH)
    assert code == EXIT_SOME_FAILED and summary["skipped"] == 4 and summary["restored"] == 0
    after = rows(out)
    for key in GOOD:  # not restored again: same attempts, same times, no new claim
        assert {k: after[key][k] for k in ("attempts", "completions", "started_at", "finished_at")} == \
               {k: before[key][k] for k in ("attempts", "completions", "started_at", "finished_at")}
    claims = [e["key"] for e in events(out) if e["status"] == "running" and e["run"] == summary["run"]]
    assert sorted(claims) == sorted(BROKEN)  # failed files are retried (attempt 2 of 3)
    assert {after[k]["attempts"] for k in BROKEN} == {2}

    code, summary = batch(capsys, archive, "-o", out, "--json", "--crf", "30", "--retries", "0", *PASSTHROUGH)
    assert code == EXIT_SOME_FAILED and summary["restored"] == 4
    redone = rows(out)
    for key in GOOD:
        assert redone[key]["settings"] != before[key]["settings"]
        assert redone[key]["finished_at"] > before[key]["finished_at"]
        assert (redone[key]["attempts"], redone[key]["completions"]) == (1, 1)
    code, summary = batch(capsys, archive, "-o", out, "--json", "--crf", "30", "--retries", "0", *PASSTHROUGH)
    assert summary["skipped"] == 4 and summary["restored"] == 0  # failed ones gave up: no claims
    assert not [e for e in events(out) if e["run"] == summary["run"] and e["status"] == "running"]
    assert not leftovers(out)


def test_jobs_2_gives_the_same_ledger_as_jobs_1(first, archive, tmp_path, capsys):
    out = tmp_path / "out"
    code, summary = batch(capsys, archive, "-o", out, "--jobs", "2", "--json", *PASSTHROUGH)
    assert code == EXIT_SOME_FAILED
    assert outcome(out) == outcome(first[0])
    assert len({r["pid"] for r in rows(out).values()}) == 2  # both workers took files
    assert not leftovers(out)


def test_manifest_and_glob(archive, tmp_path, capsys):
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"# two tapes\n{archive / 'b_plain.mp4'}\n\n{archive / 'sub'}\n")
    out = tmp_path / "out"
    code, summary = batch(capsys, "--manifest", manifest, "-o", out, "--glob", "*.mov", "--json",
                          "--codec", "ffv1", *PASSTHROUGH)
    assert code == 0
    assert {f["input"]: f["status"] for f in summary["files"]} == {
        "b_plain.mp4": "done", "sub/deeper/d_plain.mov": "done"}  # the glob filters the folder only
    assert (out / "sub" / "deeper" / "d_plain.mkv").is_file()  # FFV1 goes into Matroska


def test_shards_cover_every_file_exactly_once(tmp_path):
    clips = plain_clips(tmp_path / "in", 6)
    out = tmp_path / "out"
    procs = [cli("batch", tmp_path / "in", "-o", out, "--shard", f"{k}/3", "--json", *PASSTHROUGH)
             for k in range(3)]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [r[1] for r in results]
    per_shard = [{f["input"] for f in json.loads(r[0])["files"]} for r in results]
    assert sum(len(s) for s in per_shard) == len(clips)
    assert set().union(*per_shard) == {c.name for c in clips}
    ledger = rows(out)
    assert {(r["status"], r["attempts"], r["completions"]) for r in ledger.values()} == {("done", 1, 1)}


def test_command_line_errors_are_one_line(archive, tmp_path, capsys, monkeypatch):
    cases = [
        (["batch", str(archive)], "-o/--output"),
        (["batch", "-o", str(tmp_path / "o")], "no inputs"),
        (["batch", str(archive), "-o", str(tmp_path / "o"), "--shard", "3/3"], "--shard"),
        (["batch", str(archive), "-o", str(tmp_path / "o"), "--jobs", "0"], "--jobs"),
        (["batch", "status"], "batch status OUTDIR"),
        (["batch", "status", str(tmp_path), "--jobs", "2"], "no other options"),
        (["batch", "status", str(tmp_path / "nowhere")], "no batch ledger"),
        (["batch", str(tmp_path / "empty_dir_missing_videos"), "-o", str(tmp_path / "o")], None),
    ]
    (tmp_path / "empty_dir_missing_videos").mkdir()
    for argv, words in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and (words is None or words in err[0]), (argv, err)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["batch", str(archive), "-o", str(tmp_path / "o"), "--ray", "auto"]) == 2
    assert "pip install 'vidrestore[ray]'" in capsys.readouterr().err
