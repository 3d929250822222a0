"""Faults in the middle of a run: the disk fills up, the output folder goes away, the input
is cut short (or still growing) while it is read, two runs write one OUTPUT at once. Each
ends in one clear line and a meaningful exit code, with nothing half-written at the target."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import numpy as np

from testkit.media import AudioSpec, write_video
from vidrestore.cli import main
from vidrestore.config import from_mapping
from vidrestore.errors import InputError, OutputError
from vidrestore.io.probe import count_frames
from vidrestore.restore_video import restore_video
from vidrestore.settings import RestoreConfig

PASSTHROUGH = ["--model", "passthrough", "--offline", "--quiet"]
FRAMES = 12


def config(**encode) -> RestoreConfig:
    return from_mapping(RestoreConfig, {"model": "passthrough", "download": False, "encode": encode})


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A small noisy clip with audio: its lossless (FFV1) re-encode is ~0.6 MB."""
    path = tmp_path_factory.mktemp("faults") / "tape.mp4"
    rng = np.random.default_rng(0)
    frames = (rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(FRAMES))
    write_video(path, frames, fps=24, audio=AudioSpec(FRAMES / 24), options={"crf": "0"})
    return path


def debris(folder: Path) -> list[Path]:
    """Anything under ``folder`` (temporary files, face cache entries, half outputs)."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs: a real disk that fills up (needs root; skipped elsewhere)."""
    point = tmp_path / "disk"
    point.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root on Linux (the file-size-limit test covers the rest)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(point)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])  # mp4 fails when finishing, mkv mid-stream
def test_a_full_disk_is_one_line_exit_2_and_leaves_nothing(clip, small_disk, suffix, capsys):
    out = small_disk / f"restored{suffix}"
    capsys.readouterr()
    code = main([str(clip), "-o", str(out), "--codec", "ffv1", *PASSTHROUGH])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and "the disk is full" in line and str(small_disk) in line, line
    assert debris(small_disk) == []


def test_a_file_size_limit_mid_encode_is_one_line_exit_2_and_leaves_nothing(clip, tmp_path):
    """The same for any user: RLIMIT_FSIZE makes the kernel refuse writes past 200 KiB (EFBIG)."""
    import resource

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    out = tmp_path / "out" / "restored.mkv"
    out.parent.mkdir()
    result = subprocess.run([sys.executable, "-m", "vidrestore.cli", str(clip), "-o", str(out), "--codec", "ffv1",
                             *PASSTHROUGH], capture_output=True, text=True, preexec_fn=limit, timeout=300)
    line = one_line(result.stderr)
    assert result.returncode == 2 and "File too large" in line and "at frame" in line, line
    assert debris(out.parent) == []


def test_the_output_folder_removed_mid_run_is_one_line_and_nothing_is_recreated(clip, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()

    def remove(frames, total):
        if frames == 3:
            shutil.rmtree(folder)

    with pytest.raises(OutputError, match="was removed while restored.mkv was being written") as caught:
        restore_video(clip, folder / "restored.mkv", config(), on_frame=remove)
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
    assert not folder.exists()


@pytest.mark.parametrize("how", ["truncated", "growing"])
def test_an_input_cut_or_still_written_while_read_is_refused_exit_3(clip, tmp_path, how):
    source = tmp_path / "capture.mp4"
    shutil.copy(clip, source)
    data = source.read_bytes()

    def meddle(frames, total):
        if frames == 3:
            with open(source, "r+b") as fh:
                if how == "truncated":
                    fh.truncate(len(data) // 2)
                else:
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\0" * 4096)

    out = tmp_path / "out" / "restored.mp4"
    out.parent.mkdir()
    with pytest.raises(InputError, match="while it was being read") as caught:
        restore_video(source, out, config(), on_frame=meddle, report_path=out.with_suffix(".json"))
    assert caught.value.exit_code == 3 and ("truncated" if how == "truncated" else "changed") in str(caught.value)
    assert debris(out.parent) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_two_runs_writing_one_output_at_once_one_wins_and_it_is_whole(clip, tmp_path, overwrite):
    out = tmp_path / "restored.mp4"
    both_started = threading.Barrier(2, timeout=120)
    results: dict[int, object] = {}

    def run(i: int) -> None:
        try:
            restore_video(clip, out, config(), overwrite=overwrite,
                          on_frame=lambda frames, total: frames == 1 and both_started.wait())
            results[i] = "ok"
        except Exception as exc:  # noqa: BLE001 - what each run ended with is the point
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    outcomes = sorted(results.values(), key=lambda r: r != "ok")
    if overwrite:
        assert outcomes == ["ok", "ok"]  # both whole; the last rename wins
    else:
        assert outcomes[0] == "ok" and isinstance(outcomes[1], OutputError), outcomes
        assert "appeared while working" in str(outcomes[1])
    assert count_frames(out) == FRAMES
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".") and p.is_file()] == []
