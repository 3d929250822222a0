"""The command line as users meet it: exit codes, one-line errors, atomic output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import av
import pytest

from vidrestore.cli import build_parser, main, parse_arguments

PASSTHROUGH = ["--model", "passthrough", "--quiet", "--offline"]


def run_cli(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    """The installed console script, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "vidrestore.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=300,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_probe_prints_json(media):
    result = run_cli("probe", media.rotated(90), "--count")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["rotation"] == 90 and data["frames"] == 12 and data["frames_exact"]
    assert data["width"] == 64 and data["height"] == 48 and data["fps"] == 24
    assert {s["type"] for s in data["streams"]} == {"video", "audio"}


def test_a_reader_that_stops_early_ends_probe_quietly(media):
    """`vidrestore probe X | head -1`: the reader closes the pipe; no error line, exit 141."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: the first write (the flush) fails with EPIPE
    try:
        result = subprocess.run([sys.executable, "-m", "vidrestore.cli", "probe", str(media.plain())],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)
    assert result.stderr == "" and result.returncode == 141


@pytest.mark.parametrize("args,code,words", [
    (["probe", "/no/such/file.mp4"], 3, "not found"),
    (["/no/such/file.mp4", "-o", "out.mp4"], 3, "not found"),
    (["in.mp4", "-o", "x.mp4", "--bogus-flag"], 2, "unrecognized arguments: --bogus-flag"),
    (["in.mp4"], 2, "required"),
    (["in.mp4", "-o", "x.mp4", "--fidelity", "3"], 2, "fidelity"),
    (["in.mp4", "-o", "x.mp4", "--model", "gfpgan"], 2, "invalid choice"),
    (["weights", "fetch", "nonsense"], 2, "unknown weights"),
])
def test_user_errors_are_one_line_with_the_right_exit_code(tmp_path, args, code, words):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == code
    assert words in one_line_error(result)


def test_not_a_video_and_no_video_stream(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    result = run_cli("probe", text)
    assert result.returncode == 3 and "not a video" in one_line_error(result)
    audio_only = tmp_path / "tone.m4a"
    with av.open(str(audio_only), "w") as c:
        stream = c.add_stream("aac", rate=48000)
        import numpy as np
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        frame.sample_rate = 48000
        for packet in stream.encode(frame):
            c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)
    result = run_cli(audio_only, "-o", tmp_path / "out.mp4", *PASSTHROUGH)
    assert result.returncode == 3 and "no video stream" in one_line_error(result)


def test_missing_weights_exit_4_naming_file_url_and_folder(media, tmp_path):
    empty = tmp_path / "weights"
    empty.mkdir()
    result = run_cli(media.plain(), "-o", tmp_path / "out.mp4", "--weights-dir", empty, "--offline",
                     env={"VIDRESTORE_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 4
    line = one_line_error(result)
    assert "codeformer.pth" in line and "https://github.com/sczhou/CodeFormer" in line and str(empty) in line
    assert not (tmp_path / "out.mp4").exists()


def test_existing_output_is_not_clobbered_without_overwrite(media, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    result = run_cli(media.plain(), "-o", out, *PASSTHROUGH)
    assert result.returncode == 2 and "--overwrite" in one_line_error(result)
    assert out.read_bytes() == b"precious"
    assert run_cli(media.plain(), "-o", out, "--overwrite", *PASSTHROUGH).returncode == 0
    assert out.read_bytes() != b"precious"


def test_unwritable_output_folder(media, tmp_path):
    result = run_cli(media.plain(), "-o", tmp_path / "missing" / "out.mp4", *PASSTHROUGH)
    assert result.returncode == 2 and "does not exist" in one_line_error(result)


def test_sigterm_leaves_no_output_and_no_temporary_file(media, tmp_path):
    src = media.faces(frames=240)
    out = tmp_path / "out.mkv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidrestore.cli", str(src), "-o", str(out), "--codec", "ffv1",
         "--model", "passthrough", "--offline", "--quiet"],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob(".out.*")):
        time.sleep(0.05)  # wait until it is writing
    assert list(tmp_path.glob(".out.*")), "never started writing"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_main_returns_codes_without_exiting(media, tmp_path, capsys):
    assert main(["probe", str(media.plain())]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 24
    assert main(["probe", str(tmp_path / "nothing.mp4")]) == 3


def test_weights_list_shows_the_table(tmp_path):
    result = run_cli("weights", "--cache-dir", tmp_path, "list", "--json")
    assert result.returncode == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["codeformer"]["file"] == "codeformer.pth" and rows["codeformer"]["present"] is None


class _Payload:
    """Unpickling this would call print: a checkpoint that carries code."""

    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("kind,words", [
    ("mismatch", "does not fit CodeFormer"),
    ("code", "refusing"),
    ("garbage", "not a checkpoint torch can read"),
    ("missing", "not found"),
])
def test_bad_weights_files_exit_4_with_one_line(media, tmp_path, kind, words):
    import torch

    from vidrestore.models.registry import build_model

    path = tmp_path / f"{kind}.pth"
    if kind == "mismatch":
        torch.save({"params_ema": build_model("codeformer", tiny=True).state_dict()}, path)
    elif kind == "code":
        torch.save({"params_ema": _Payload()}, path)
    elif kind == "garbage":
        path.write_bytes(b"\x80\x04not a checkpoint")
    result = run_cli(media.plain(), "-o", tmp_path / "out.mp4", "--weights", path, "--offline")
    assert result.returncode == 4
    assert words in one_line_error(result)
    assert "this must never run" not in result.stdout + result.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_batch_options_may_come_between_its_inputs():
    args = parse_arguments(build_parser("batch"), ["a.mp4", "-o", "out", "b.mp4", "--jobs", "2", "c/"])
    assert [p.as_posix() for p in args.inputs] == ["a.mp4", "b.mp4", "c"]
    assert (args.output.as_posix(), args.jobs) == ("out", 2)


def test_a_webm_output_is_vp9_unless_a_codec_is_given(media, tmp_path):
    src = media.plain(frames=12)
    assert main([str(src), "-o", str(tmp_path / "a.webm"), *PASSTHROUGH]) == 0
    with av.open(str(tmp_path / "a.webm")) as c:
        assert [s.codec_context.name for s in c.streams] == ["vp9", "opus"]
    assert main([str(src), "-o", str(tmp_path / "b.webm"), "--codec", "libx264", *PASSTHROUGH]) == 2


@pytest.mark.parametrize("extra,output,code,words", [
    (["--reference", "missing.jpg"], "out.mp4", 3, "reference 'missing': image not found"),
    (["--reference", "ann=notes.txt"], "out.mp4", 3, "reference 'ann': cannot read notes.txt: not an image"),
    (["--reference", "a=x.jpg", "--reference", "a=y.jpg"], "out.mp4", 2, "reference names must differ"),
    ([], "out", 2, "give OUTPUT an extension"),
    ([], "out.xyz", 2, "from the extension '.xyz'"),
    (["--max-frames", "0"], "out.mp4", 2, "--max-frames must be >= 1"),
    (["--temporal-window", "4"], "out.mp4", 2, "odd number of frames"),
])
def test_bad_options_with_a_real_input_are_one_line(media, tmp_path, extra, output, code, words):
    (tmp_path / "notes.txt").write_text("not an image")
    result = run_cli(media.plain(frames=6), "-o", output, *PASSTHROUGH, *extra, cwd=tmp_path)
    assert result.returncode == code
    assert words in one_line_error(result)
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_reference_options_name_their_person(tmp_path):
    from vidrestore.commands.restore import parse_reference
    from vidrestore.errors import UsageError

    assert parse_reference("ann=photos/a.jpg") == {"name": "ann", "path": "photos/a.jpg"}
    assert parse_reference("photos/bob.png") == {"name": "bob", "path": "photos/bob.png"}
    assert parse_reference("photos/x=y.png") == {"name": "x-y", "path": "photos/x=y.png"}  # a path, not a name
    odd = tmp_path / "a=b.jpg"
    odd.write_bytes(b"")
    assert parse_reference(str(odd))["path"] == str(odd)  # an existing file is a file
    with pytest.raises(UsageError, match="no image after"):
        parse_reference("ann=")
    parser = build_parser(None)
    args = parse_arguments(parser, ["in.mp4", "-o", "o.mp4", "--reference", "a=1.jpg", "--reference", "2.jpg",
                                    "--allow-untrained"])
    from vidrestore.commands.restore import config_from_args

    config = config_from_args(args)
    assert [(r.name, str(r.path)) for r in config.references] == [("a", "1.jpg"), ("2", "2.jpg")]
    assert config.allow_untrained
