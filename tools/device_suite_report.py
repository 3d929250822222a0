"""suite.md from the device suite's suite.json data (``tools/device_suite.py``)."""

from __future__ import annotations

STAGES = ("decode", "detect", "track", "align", "restore", "paste", "encode")


def _num(value, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def render_markdown(data: dict) -> str:
    sections = data.get("sections", {})
    env = sections.get("environment", {})
    lines = ["# vidrestore device suite", ""]
    if data.get("dry_run"):
        lines += ["**Dry run**: the tiny network on a CPU, small clips. These numbers check that the suite "
                  "works; they say nothing about a GPU.", ""]
    lines += [f"- device: {env.get('device', '?')} ({env.get('gpu_memory_gb', '–')} GiB, "
              f"{env.get('sm_count', '–')} SMs); CPU: {env.get('cpu', '?')}, {env.get('cpu_count', '?')} cores",
              f"- torch {env.get('torch', '?')} (CUDA {env.get('cuda', '–')}), PyAV {env.get('av', '?')}, "
              f"Python {env.get('python', '?')}",
              f"- command: `{data.get('command', '')}`",
              f"- time: {data.get('elapsed_s', 0):.0f} s of a {data.get('budget_s', 0):.0f} s budget", ""]
    summary = sections.get("summary")
    if summary:
        lines += ["## Targets", ""]
        rows = [[name.replace("_", " "), str(t["target"]), _num(t["measured"])]
                for name, t in summary["targets"].items()]
        lines += _table(["target", "goal", "measured"], rows) + [""]
        if summary["engines_by_faces_per_s"]:
            order = ", ".join(f"{e['engine']} ({e['faces_per_s']:.1f})" for e in summary["engines_by_faces_per_s"])
            lines += [f"Engines by best faces/s (checked): {order}", ""]
    engines = [(k, v) for k, v in sections.items() if k.startswith("engine:")]
    if engines:
        batches = sorted({b for _, v in engines for b in v.get("faces_per_s", {})} |
                         {b for _, v in engines for b in v.get("errors", {})}, key=int)
        lines += ["## Engines (faces/s, 512² faces, inputs on the device)", ""]
        rows = []
        for _, v in engines:
            check = v["check"]
            verdict = f"{check['psnr_db']:.1f} dB {'ok' if check['passed'] else 'FAILED'}"
            speeds = [_num(v["faces_per_s"].get(b)) if b in v["faces_per_s"] else
                      ("error" if b in v.get("errors", {}) else "–") for b in batches]
            rows.append([v["engine"], _num(v["build_s"]), verdict, *speeds, v.get("detail", "")])
        lines += _table(["engine", "build s", "parity vs fp32 eager", *[f"b{b}" for b in batches], "detail"], rows)
        lines += [""]
    if "overlap" in sections:
        o = sections["overlap"]
        lines += [f"## Restorer: batches in flight ({o['precision']}, host faces in and out)", ""]
        rows = [[str(r["cuda_graphs"]), str(r["depth"]), str(r["batch"]), _num(r["one_at_a_time_faces_per_s"]),
                 _num(r["in_flight_faces_per_s"])] for r in o["rows"]]
        lines += _table(["CUDA graphs", "depth", "batch", "one at a time faces/s", "in flight faces/s"], rows) + [""]
    e2e = [(k, v) for k, v in sections.items() if k.startswith("e2e:")]
    if e2e:
        lines += ["## End to end (`vidrestore bench`)", "", "Stage columns: busy ms per frame in each stage's "
                  "thread (stages overlap; detect/track/align share the face stage's thread).", ""]
        rows = []
        for name, v in e2e:
            ms = v.get("stage_ms_per_frame", {})
            rows.append([name, v["clip"], f"{v['engine']}:{v['precision']}", str(v["batch_size"]), v["face_ops"],
                         str(v["detect_every"]), str(v["frames"]), str(v["faces"]), _num(v["fps"]),
                         _num(v["faces_per_s"]), f"{_num(v['latency_p50_ms'], '{:.0f}')} / "
                         f"{_num(v['latency_p95_ms'], '{:.0f}')}", _num(v["peak_gpu_mb"], "{:.0f}"),
                         *[_num(ms.get(s)) for s in STAGES]])
        lines += _table(["run", "clip", "engine", "batch", "face ops", "detect every", "frames", "faces", "fps",
                         "faces/s", "p50 / p95 ms", "peak GPU MB", *STAGES], rows) + [""]
    if "face-ops" in sections:
        f = sections["face-ops"]
        lines += [f"## Face ops on {f['device']} against OpenCV", ""]
        rows = [[p["photo"], _num(p["crop_max_abs_levels"], "{:.3f}"), _num(p["face_psnr_db"]),
                 str(p["outside_bit_exact"]), str(p["same_boxes"])] for p in f["parity"]]
        lines += _table(["photo", "crop max |Δ| (8-bit levels)", "pasted face PSNR dB", "outside bit-exact",
                         "same boxes"], rows) + [""]
        rows = []
        for count, t in f["ms_per_frame"].items():
            rows.append([count, str(t["faces_found"]), *[f"{t[k]['best_ms']:.2f}" for k in
                                                         ("opencv align", "opencv paste", "torch align", "torch paste")]])
        lines += _table(["faces", "found", "OpenCV align ms", "OpenCV paste ms", "torch align ms", "torch paste ms"],
                        rows) + [""]
    if "encode" in sections:
        enc = sections["encode"]
        lines += [f"## Encoding ({enc['size'][0]}×{enc['size'][1]}, {enc['frames']} frames)", ""]
        rows = [[r["codec"], r["preset"], r["thread_type"], str(r["threads"]), _num(r["fps"]),
                 _num(r["bytes"] / 1e6, "{:.2f}")] for r in enc["rows"]]
        lines += _table(["codec", "preset", "threads", "count", "frames/s", "MB"], rows)
        missing = [f"{c}: {why}" for c, why in enc["available"].items() if why]
        lines += [""] + [f"- {m}" for m in missing] + [""]
    if "gpu-tests" in sections:
        t = sections["gpu-tests"]
        lines += ["## GPU tests", "", f"exit code {t['returncode']}", "", "```", t["tail"], "```", ""]
    if data.get("skipped"):
        lines += ["## Skipped", ""] + [f"- {s['step']}: {s['why']}" for s in data["skipped"]] + [""]
    if data.get("failed"):
        lines += ["## Failed", ""] + [f"- {s['step']}: {s['error']}" for s in data["failed"]] + [""]
    install = data.get("install", {})
    lines += ["## Install", "", f"- missing before: {', '.join(install.get('missing', [])) or 'nothing'}",
              f"- wheels: {', '.join(install.get('wheels', [])) or 'none'}",
              f"- vidrestore from: {install.get('vidrestore', '?')}"
              + (f" (fallback: {install['fallback']})" if install.get("fallback") else "")]
    for c in install.get("commands", []):
        lines.append(f"- `{c['command']}` → exit {c['returncode']}" + (f": {c['stderr'][-300:]}" if c["returncode"] else ""))
    return "\n".join(lines) + "\n"
