"""The archival options and the preview command as users meet them: one-line errors with the
right exit code and nothing written, a segment restored in sync, the preview sheet."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from vidrestore.config import from_mapping
from vidrestore.settings import RestoreConfig

PASSTHROUGH = ["--model", "passthrough", "--quiet", "--offline", "--no-face-cache"]


class Result:
    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def run_cli(capsys):
    """``vidrestore ARGS`` in this process (the console script's ``main``): exit code, stderr."""
    from vidrestore.cli import main

    def run(*args) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        return Result(code, capsys.readouterr().err)

    return run


def one_line_error(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("args,code,words", [
    (["--upscale", "3"], 2, "--upscale must be one of 1, 2, 4"),
    (["--start", "99"], 2, "--start 99 s is past the end of the video (1.000 s)"),
    (["--start", "0.8", "--end", "0:00.5"], 2, "--end (0.5 s) must come after --start (0.8 s)"),
    (["--start", "soon"], 2, "--start must be seconds"),
    (["--deinterlace", "weave"], 2, "invalid choice"),
    (["--deinterlace", "off", "--field-rate"], 2, "field-rate"),
    (["--bg-tile", "8"], 2, "tile"),
])
def test_bad_archival_options_are_one_line_and_write_nothing(run_cli, media, tmp_path, args, code, words):
    out = tmp_path / "out.mp4"
    result = run_cli(media.plain(frames=24), "-o", out, *PASSTHROUGH, *args)
    assert result.returncode == code
    assert words in one_line_error(result)
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file


def test_a_segment_is_restored_in_sync(run_cli, media, tmp_path):
    out = tmp_path / "cut.mp4"
    result = run_cli(media.plain(frames=48), "-o", out, *PASSTHROUGH, "--start", "0.5", "--end", "1.5")
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as c:
        times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    with av.open(str(out)) as c:
        audio = c.streams.audio[0]
        spans = [(float(p.pts * audio.time_base), float(p.duration * audio.time_base))
                 for p in c.demux(audio) if p.pts is not None]
    assert len(times) == 24 and times[0] == 0.0
    assert spans[0][0] < 0.03 and abs(spans[-1][0] + spans[-1][1] - 1.0) < 0.05  # 1 s of audio too


@pytest.mark.parametrize("args,words", [
    (["--at", "99"], "--at 99 s is past the end"),
    (["--at", "0.5", "--fidelity", "0,2"], "fidelities must be within 0..1"),
])
def test_preview_errors_are_one_line_and_write_nothing(run_cli, media, tmp_path, args, words):
    out = tmp_path / "p.png"
    result = run_cli("preview", media.plain(frames=24), "-o", out, "--model", "passthrough", "--offline", *args)
    assert result.returncode == 2
    assert words in one_line_error(result)
    assert not out.exists()


def test_preview_writes_the_sheet(run_cli, media, tmp_path):
    out = tmp_path / "p.png"
    result = run_cli("preview", media.faces(frames=24), "--at", "0.5", "-o", out, "--model", "passthrough",
                     "--offline", "--upscale", "2", "--bg-upsampler", "lanczos")
    assert result.returncode == 0, result.stderr
    assert "frame at 0.500 s: 1 of 1 faces restored at w = 0, 0.5, 1" in result.stderr
    sheet = cv2.imread(str(out))
    assert sheet.shape[1] == 4 * 320  # the original and three fidelities, side by side
    assert sheet.shape[0] == 28 + 240 + 320  # labels, whole frames, one row of face close-ups


class Recording:
    """A restorer that remembers the fidelities asked for and darkens faces by w."""

    name, uses_identity, face_size = "recording", False, 512

    def __init__(self):
        self.fidelities = []

    def restore(self, faces, identities, fidelity):
        self.fidelities.append(fidelity)
        return faces * (1.0 - 0.8 * fidelity)


def test_preview_restores_once_per_fidelity_and_shows_each(media, tmp_path):
    from vidrestore.preview import render_preview

    restorer = Recording()
    config = from_mapping(RestoreConfig, {"model": "passthrough", "download": False})
    summary = render_preview(media.faces(frames=24), tmp_path / "p.png", config, at=0.5,
                             fidelities=(0.0, 1.0), restorer=restorer)
    assert restorer.fidelities == [0.0, 1.0] and summary.faces == 1
    sheet = cv2.cvtColor(cv2.imread(str(tmp_path / "p.png")), cv2.COLOR_BGR2RGB)
    close_ups = sheet[28 + 240:, :].reshape(320, 3, 320, 3).astype(float)
    original, at_0, at_1 = (close_ups[:, i].mean() for i in range(3))
    assert abs(at_0 - original) < 3 and at_1 < 0.6 * original  # w = 1 darkened the face
    assert np.isclose(summary.time, 0.5)
