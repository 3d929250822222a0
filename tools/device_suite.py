#!/usr/bin/env python
"""vidrestore's GPU measurements in one command, within a time budget.

    python tools/device_suite.py --out DIR [--budget-s 480] [--wheels .device-wheels]
    python tools/device_suite.py --out DIR --dry-run        # the same on the CPU, tiny network

Measures, most important first (``device_suite_steps.steps``): the device face ops against
OpenCV (parity and ms per frame); every engine × precision (fp16, bf16, fp32 for reference) ×
batch (1, 8, 32) in faces/s with the ``engines check`` parity against fp32 eager; the
restorer with batches in flight against one at a time; end to end on generated 1080p clips
with 1 and 4 real faces (frames/s, per-stage busy time, p50/p95 latency, peak GPU memory);
the encoder's frames/s per preset; the GPU-marked tests. Weights are full-size CodeFormer with
seeded random weights (``vidrestore.models.seeded``): they cost exactly what trained weights
cost to run, and nothing can be downloaded on the device. ``suite.json`` and ``suite.md`` are
rewritten in DIR after every step, so a run cut short still leaves what it measured.

The budget (default 480 s, the issue's 8 minutes; 110 s for ``--dry-run``) is checked before
each step against the step's estimate: a step that would not fit is skipped and listed as
such, never started. The builds that can run long (AOTInductor, torch.compile, TensorRT) run
in a child process killed when the budget is spent.

Installing on the device machine (no PyAV, nothing fetchable there): what is missing is
installed from ``--wheels`` (``tools/device_wheels.sh`` fills that folder) with
``pip install --no-index --no-deps --target SITE``, then the project itself from this tree
with ``pip install --no-index --no-deps --no-build-isolation --target SITE .`` (setup.py maps
``engines/`` to ``vidrestore.engines``). If that install fails, the fallback is the tree on
``sys.path`` with the repository root added to ``vidrestore.__path__``, which is what makes
``vidrestore.engines`` resolve to ``engines/`` without an install (the same as
``PYTHONPATH=SITE:. python -c "import vidrestore; vidrestore.__path__.append('.'); ..."``).
On a machine where everything imports already (the dev machine, CI) nothing is installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = Path(__file__).resolve().parent
DEFAULT_BUDGET = {False: 480.0, True: 110.0}
NEEDED = ("av", "facenet_pytorch")
"""Modules the suite's runs need that the device machine lacks (its wheels: tools/device_wheels.sh)."""


class Budget:
    """Seconds left of the suite's budget."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def allows(self, estimate: float) -> bool:
        return self.left() >= estimate


def log(budget: Budget, line: str) -> None:
    print(f"[{budget.elapsed():6.1f} s] {line}", flush=True)


def install_plan(missing: list[str], wheels: list[Path], vidrestore_ok: bool, site: Path) -> list[list[str]]:
    """The pip commands that make the suite importable: the wheels of what is missing, and the
    project itself when ``vidrestore.engines`` does not import. Pure: tested by equality."""
    commands = []
    if missing and wheels:
        commands.append([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                         "--no-compile", "--target", str(site), *map(str, wheels)])
    if not vidrestore_ok:
        commands.append([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                         "--no-build-isolation", "--no-compile", "--target", str(site), str(REPO)])
    return commands


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def ensure_installed(wheels_dir: Path, site: Path) -> dict:
    """Install what is missing (module doc); returns what was done, for the report."""
    if site.is_dir():
        sys.path.insert(0, str(site))
    sys.path.insert(1 if site.is_dir() else 0, str(REPO))  # testkit/, and the fallback below
    importlib.invalidate_caches()
    missing = [m for m in NEEDED if not _importable(m)]
    vidrestore_ok = _importable("vidrestore.engines")
    wheels = sorted(wheels_dir.glob("*.whl")) if wheels_dir.is_dir() else []
    done: dict = {"missing": missing, "wheels": [w.name for w in wheels], "commands": [], "fallback": None}
    for command in install_plan(missing, wheels, vidrestore_ok, site):
        site.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        done["commands"].append({"command": " ".join(command[1:]), "returncode": result.returncode,
                                 "stderr": result.stderr.strip()[-2000:]})
    if done["commands"]:
        if str(site) not in sys.path:
            sys.path.insert(0, str(site))
        for name in [n for n in sys.modules if n == "vidrestore" or n.startswith("vidrestore.")]:
            del sys.modules[name]  # imported from the tree before the install: import again
        importlib.invalidate_caches()
    if not _importable("vidrestore.engines"):
        import vidrestore

        vidrestore.__path__.append(str(REPO))  # vidrestore.engines → engines/, as setup.py maps it
        importlib.invalidate_caches()
        done["fallback"] = "repository root on vidrestore.__path__"
    still = [m for m in NEEDED if not _importable(m)]
    if still:
        raise SystemExit(f"device suite: {', '.join(still)} missing and no wheels for them in {wheels_dir} "
                         "(run tools/device_wheels.sh and carry the folder)")
    done["vidrestore"] = str(Path(importlib.import_module("vidrestore").__file__).parent)
    return done


class Watchdog:
    """Stops the suite when its budget is spent: kills the running child processes, notes the
    step that was cut short, writes the report and exits (status 3), so a step that runs
    longer than estimated never takes the suite past its budget."""

    def __init__(self, budget: Budget, report: "Report", grace: float = 3.0) -> None:
        self.step = "start"
        self._timer = threading.Timer(max(0.0, budget.left() + grace), self._stop, args=(budget, report))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def _stop(self, budget: Budget, report: "Report") -> None:
        import device_suite_steps as steps

        for child in list(steps.CHILDREN):
            child.kill()
        report.fail(self.step, f"stopped at the end of the {budget.seconds:.0f} s budget")
        try:
            report.add("summary", steps.summary(report.data))
            report.write(budget)
        finally:
            log(budget, f"{self.step}: stopped at the end of the budget; wrote what was measured")
            os._exit(3)


class Report:
    """suite.json and suite.md in ``out``, rewritten after every step."""

    def __init__(self, out: Path, meta: dict) -> None:
        self.out = out
        self.data = {**meta, "sections": {}, "skipped": [], "failed": []}
        self._lock = threading.Lock()  # the watchdog may write while a step is running
        out.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, result) -> None:
        self.data["sections"][name] = result

    def skip(self, name: str, why: str) -> None:
        self.data["skipped"].append({"step": name, "why": why})

    def fail(self, name: str, error: str) -> None:
        self.data["failed"].append({"step": name, "error": error})

    def write(self, budget: Budget) -> None:
        from device_suite_report import render_markdown

        with self._lock:
            self.data["elapsed_s"] = round(budget.elapsed(), 1)
            for name, text in (("suite.json", json.dumps(self.data, indent=1, default=str) + "\n"),
                               ("suite.md", render_markdown(self.data))):
                tmp = self.out / f".{name}.tmp"
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, self.out / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for suite.json and suite.md")
    parser.add_argument("--dry-run", action="store_true", help="on the CPU with the tiny network (CI)")
    parser.add_argument("--budget-s", type=float, help="seconds for the whole suite (default 480; dry run 110)")
    parser.add_argument("--wheels", type=Path, default=REPO / ".device-wheels",
                        help="wheels to install what is missing from (tools/device_wheels.sh)")
    parser.add_argument("--site", type=Path, default=Path("/tmp/vidrestore-suite/site"),
                        help="where missing packages and the project are installed")
    parser.add_argument("--work", type=Path, default=Path("/tmp/vidrestore-suite/work"),
                        help="clips, weights and engine artifacts (not kept in --out)")
    parser.add_argument("--child-engine", help=argparse.SUPPRESS)  # BACKEND:PRECISION, in a child process
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    budget = Budget(args.budget_s or DEFAULT_BUDGET[args.dry_run])
    install = ensure_installed(args.wheels, args.site)
    sys.path.insert(0, str(TOOLS))
    import device_suite_steps as steps

    plan = steps.Plan.make(dry_run=args.dry_run, work=args.work, site=args.site)
    if args.child_engine:
        return steps.child_engine(plan, args.child_engine, args.child_out)
    command = "python tools/device_suite.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = Report(args.out, {"suite": 1, "command": command, "dry_run": args.dry_run,
                               "budget_s": budget.seconds, "install": install})
    report.add("environment", steps.environment(plan))
    report.write(budget)
    watchdog = Watchdog(budget, report)
    log(budget, f"device suite on {plan.device_name} (budget {budget.seconds:.0f} s, dry run: {args.dry_run})")
    for step in steps.steps(plan, budget):
        if step.unavailable:
            report.skip(step.name, step.unavailable)
            log(budget, f"{step.name}: skipped ({step.unavailable})")
            report.write(budget)
            continue
        if not budget.allows(step.estimate):
            why = f"budget: {budget.left():.0f} s left, the step needs ~{step.estimate:.0f} s"
            report.skip(step.name, why)
            log(budget, f"{step.name}: skipped ({why})")
            report.write(budget)
            continue
        log(budget, f"{step.name}: running (~{step.estimate:.0f} s)")
        watchdog.step = step.name
        try:
            result = step.run()
            report.add(step.name, result)
            log(budget, f"{step.name}: done")
        except TimeoutError as exc:  # a child stopped when the budget ran out: not a failure
            report.skip(step.name, f"stopped: {exc}")
            log(budget, f"{step.name}: stopped ({exc})")
        except Exception as exc:  # noqa: BLE001 - one failed step must not lose the others
            report.fail(step.name, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
            log(budget, f"{step.name}: FAILED {type(exc).__name__}: {exc}")
        report.write(budget)
    watchdog.cancel()
    report.add("summary", steps.summary(report.data))
    report.write(budget)
    log(budget, f"wrote {args.out / 'suite.json'} and {args.out / 'suite.md'}")
    return 1 if report.data["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
