"""``tools/device_suite.py``: its dry run (the tiny network on the CPU) writes suite.json and
suite.md with every step measured or skipped saying why; a budget too short for anything
skips or stops every step and still writes both files; the install plan and the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import device_suite  # noqa: E402
from device_suite_report import render_markdown  # noqa: E402


def run_suite(tmp_path: Path, *extra: str) -> tuple[int, dict, str]:
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "tools" / "device_suite.py"), "--dry-run", "--out", str(out),
               "--work", str(tmp_path / "work"), "--site", str(tmp_path / "site"), *extra]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert (out / "suite.json").is_file(), result.stdout + result.stderr
    return result.returncode, json.loads((out / "suite.json").read_text()), (out / "suite.md").read_text()


@pytest.mark.slow
def test_dry_run_measures_every_step_or_says_why_not(tmp_path):
    code, data, markdown = run_suite(tmp_path, "--budget-s", "240")  # generous: the machine may be busy
    assert code == 0 and data["failed"] == [] and data["dry_run"] is True
    sections = data["sections"]
    for name in ("environment", "face-ops", "engine:torch:fp32", "overlap", "e2e:1face", "e2e:4face", "encode",
                 "summary"):
        assert name in sections, name
    engine = sections["engine:torch:fp32"]
    assert engine["check"]["passed"] and set(engine["faces_per_s"]) | set(engine["errors"]) == {"1", "8", "32"}
    assert all(p["outside_bit_exact"] and p["same_boxes"] and p["face_psnr_db"] >= 45
               for p in sections["face-ops"]["parity"])
    e2e = sections["e2e:4face"]
    assert e2e["frames"] == 4 and e2e["fps"] > 0 and set(e2e["stage_ms_per_frame"]) >= {"detect", "restore", "paste"}
    assert e2e["latency_p95_ms"] >= e2e["latency_p50_ms"] > 0
    skipped = {s["step"]: s["why"] for s in data["skipped"]}
    assert "dry run" in skipped["gpu-tests"] and "tensorrt" in skipped["engine:tensorrt:fp32"]
    assert {"engine:compiled:fp32", "engine:compiled-jit:fp32", "engine:onnxruntime:fp32"} <= set(skipped)
    assert "engine:torch:fp32" in sections and "engine:torch:fp32" not in skipped
    assert "## Engines" in markdown and "## End to end" in markdown and "**Dry run**" in markdown


@pytest.mark.slow
def test_a_budget_too_short_for_anything_still_writes_the_report(tmp_path):
    code, data, markdown = run_suite(tmp_path, "--budget-s", "1")
    assert code in (0, 3)  # 3: the watchdog stopped a step at the end of the budget
    measured = [k for k in data["sections"] if k.startswith(("engine:", "e2e:"))]
    assert measured == []
    assert any("budget" in s["why"] for s in data["skipped"]) or any("budget" in f["error"] for f in data["failed"])
    assert "# vidrestore device suite" in markdown


def test_install_plan_installs_only_what_is_missing(tmp_path):
    site = tmp_path / "site"
    wheels = [tmp_path / "av.whl"]
    assert device_suite.install_plan([], wheels, True, site) == []
    (wheels_cmd,) = device_suite.install_plan(["av"], wheels, True, site)
    assert wheels_cmd[1:] == ["-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
                              "--target", str(site), str(wheels[0])]
    (project,) = device_suite.install_plan([], [], False, site)
    assert "--no-build-isolation" in project and project[-1] == str(ROOT)


def test_the_report_renders_failures_and_skips():
    data = {"dry_run": False, "budget_s": 480, "elapsed_s": 12.0, "command": "python tools/device_suite.py --out x",
            "sections": {"environment": {"device": "NVIDIA H200"}},
            "skipped": [{"step": "engine:tensorrt:fp16", "why": "the tensorrt package is not installed"}],
            "failed": [{"step": "e2e:1face", "error": "stopped at the end of the 480 s budget"}], "install": {}}
    text = render_markdown(data)
    assert "NVIDIA H200" in text and "- engine:tensorrt:fp16: the tensorrt package" in text
    assert "- e2e:1face: stopped at the end of the 480 s budget" in text and "Dry run" not in text
