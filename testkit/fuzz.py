"""The fuzz harness: damaged inputs, the CLI run on each, and the contract it must keep.

A case is a clean source (``testkit.hostile.make_sources``: generated and package-shipped
videos in every container the reader accepts) and a kind of damage (``testkit.damage.KINDS``),
built deterministically from (seed, index). It is run as
``vidrestore INPUT -o OUTPUT --model passthrough --offline --quiet`` in a child process with
a time limit and a memory bound (``memory_bound_mib``), and judged by the contract:

- **restored**: exit 0, and OUTPUT decodes (at least one frame, no decode error);
- **refused**: exit 3, one line on stderr (``vidrestore: error: ...``), nothing at OUTPUT
  and nothing else left in its folder;
- **mishandled**: anything else: another exit code, a traceback, running past the time
  limit, a peak resident memory over the bound, a temporary file left behind.

Children are started fresh (``ExecLauncher``: ``python -m vidrestore.cli``, exactly as a
user runs it) or forked from a process that has already imported vidrestore
(``ForkLauncher``: the same ``vidrestore.cli.main`` in its own process, without the 2-4 s of
imports per case). Peak memory is the child's ``VmHWM`` (sampled every 50 ms until it
exits); a child over twice the bound is killed on the spot.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from .damage import BYTE_DAMAGES, KINDS
from .hostile import EXTENSIONS, REMUXERS, Source

PASSTHROUGH = ("--model", "passthrough", "--offline", "--quiet")
OUTCOMES = ("restored", "refused", "mishandled")


@dataclass(frozen=True)
class Case:
    """One damaged input to make and run."""

    seed: int
    index: int
    kind: str
    source: Source

    @property
    def name(self) -> str:
        origin = "gen" if self.source.origin == "generated" else "demo"
        return f"{self.index:05d}-{self.kind}-{origin}-{self.source.container}"


def plan(sources: list[Source], count: int, seed: int, first: int = 0) -> list[Case]:
    """Cases ``first`` … ``first + count - 1`` of ``seed``: the kinds in turn, each meeting
    every source once per ``len(sources)`` rounds (sources shuffled by the seed)."""
    rng = random.Random(seed)
    order = list(range(len(sources)))
    rng.shuffle(order)
    offset = rng.randrange(len(KINDS))
    cases = []
    for index in range(first, first + count):
        kind = KINDS[(offset + index) % len(KINDS)]
        source = sources[order[(index % len(KINDS) + index // len(KINDS)) % len(sources)]]
        cases.append(Case(seed, index, kind, source))
    return cases


def build(case: Case, folder: Path) -> tuple[Path, str]:
    """Write the case's damaged input into ``folder``; returns it and what was done."""
    rng = random.Random(f"{case.seed}/{case.index}/damage")
    path = folder / f"{case.name}{EXTENSIONS[case.source.container]}"
    if case.kind in BYTE_DAMAGES:
        data, detail = BYTE_DAMAGES[case.kind](case.source.path.read_bytes(), case.source.container, rng)
        path.write_bytes(data)
    else:
        detail = REMUXERS[case.kind](case.source, path, rng)
    return path, detail


def output_name(source: Path) -> str:
    """The case's OUTPUT name: x264 in the input's container when it fits, else Matroska."""
    from vidrestore.io.encoding import output_suffix

    return "restored" + output_suffix(source.suffix, "libx264")


BASE_MEMORY_MIB = 1024.0
PIXEL_BYTES = 660.0
STREAM_MIB = 3.0
"""The memory bound of a case: ``BASE_MEMORY_MIB``, plus ``PIXEL_BYTES`` per pixel of its
frames, plus ``STREAM_MIB`` per stream. A clean passthrough run peaks at about 380 MiB plus
330 bytes per pixel (176x144 to 4096x4096 clips on the dev machine: frames in flight, their
conversions, the detector's image pyramid) plus about 1.4 MiB per stream (FFmpeg's probing
of each stream, in the two demuxers a run keeps open: video and side streams; FFmpeg opens
at most 1000 streams). The bound is about twice those costs: damage may make frames big (a
header that declares 4095x4095 is decoded as such) or streams many, but must not make memory
grow beyond what they explain (a buffer sized by an absurd length field, a leak)."""


PIXEL_FRAME_SECONDS = 2e-6
"""The time limit of a case grows by this per pixel of every frame: a clean passthrough run
takes 0.5-0.8 µs per pixel per frame on the dev machine under load (1080p and 4096x4096
clips), and a header that declares huge frames makes the work legitimately long."""


@dataclass(frozen=True)
class Measure:
    """What a case's input holds: pixels of its first decodable frame, its streams, its
    video packets (None: unknown)."""

    pixels: int | None = None
    streams: int | None = None
    packets: int | None = None


def measure_input(path: Path, timeout: float = 60.0) -> Measure:
    """``Measure`` of ``path``, found in a forked child (a hostile file is not opened in this
    process, whose memory forked cases share)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        result: dict = {}
        try:
            import av

            with av.open(str(path), metadata_errors="replace") as container:
                result["streams"] = len(container.streams)
                result["packets"] = 0
                for packet in container.demux(video=0):  # as the reader does: skip bad packets
                    result["packets"] += bool(packet.size)
                    if "pixels" in result:
                        continue
                    try:
                        frames = packet.decode()
                    except av.error.FFmpegError:
                        continue
                    if frames:
                        result["pixels"] = frames[0].width * frames[0].height
        except BaseException:  # noqa: BLE001 - whatever it is, what was found so far stands
            pass
        finally:
            os.write(write, json.dumps(result).encode())
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + timeout
    while not os.waitpid(pid, os.WNOHANG)[0]:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.01)
    data = os.read(read, 4096)
    os.close(read)
    try:
        return Measure(**json.loads(data))
    except (ValueError, TypeError):  # killed, or nothing written
        return Measure()


def bounds(damaged: Path, clean: Path, *, base_mib: float = BASE_MEMORY_MIB,
           base_seconds: float = 120.0) -> tuple[float, float]:
    """(memory bound in MiB, time limit in s) of a case, from the larger of its input's and
    its clean source's frame size, streams and video packets (see ``STREAM_MIB`` and
    ``PIXEL_FRAME_SECONDS``)."""
    a, b = measure_input(damaged), measure_input(clean)
    pixels = max(a.pixels or 0, b.pixels or 0)
    streams = max(a.streams or 0, b.streams or 0)
    packets = max(a.packets or 0, b.packets or 0)
    memory = base_mib + PIXEL_BYTES * pixels / 2 ** 20 + STREAM_MIB * streams
    return memory, base_seconds + PIXEL_FRAME_SECONDS * pixels * packets


def memory_bound_mib(damaged: Path, clean: Path, base_mib: float = BASE_MEMORY_MIB) -> float:
    """The case's memory bound (see ``bounds``)."""
    return bounds(damaged, clean, base_mib=base_mib)[0]


def argv(source: Path, target: Path) -> list[str]:
    return [str(source), "-o", str(target), *PASSTHROUGH]


@dataclass
class Run:
    """How one child ended."""

    exit_code: int | None
    stderr: str
    seconds: float
    peak_rss_mib: float | None
    timed_out: bool = False
    killed_for_memory: bool = False


class ExecLauncher:
    """Each case in a fresh ``python -m vidrestore.cli``."""

    def start(self, args: list[str], stderr: Path) -> int:
        with open(stderr, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "vidrestore.cli", *args], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        proc.returncode = 0  # reaped by wait4 below, not by Popen
        return proc.pid


class ForkLauncher:
    """Each case in a child forked from this process, with vidrestore already imported.

    Fork only from a process that has not started torch's or other libraries' threads (the
    fuzz tool, not a test session).
    """

    def __init__(self) -> None:
        import vidrestore.cli  # noqa: F401 - imported once, before forking
        import vidrestore.pipeline.build  # noqa: F401
        import vidrestore.restore_video  # noqa: F401

    def start(self, args: list[str], stderr: Path) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            os.setpgid(0, 0)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            devnull = os.open(os.devnull, os.O_RDWR)
            err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.dup2(err, 2)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0, closefd=False), write_through=True)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0, closefd=False), write_through=True)
            from vidrestore.cli import main

            code = main(args)
        except BaseException:  # noqa: BLE001 - shown as a traceback: the verdict sees it
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - exiting anyway
                    pass
            os._exit(code)


def run_child(launcher, args: list[str], stderr: Path, *, timeout: float, memory_mib: float) -> Run:
    """Start ``args`` with ``launcher`` and wait for it (killing it past ``timeout`` seconds
    or twice ``memory_mib``)."""
    import psutil

    started = time.monotonic()
    pid = launcher.start(args, stderr)
    timed_out = killed = False
    peak = 0.0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - started > timeout:
            timed_out = True
        else:
            peak = max(peak, _high_water_mib(pid))
            try:
                killed = psutil.Process(pid).memory_info().rss > 2 * memory_mib * 2 ** 20
            except psutil.Error:
                killed = False
        if timed_out or killed:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            _, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.05)
    code = os.waitstatus_to_exitcode(status)
    text = stderr.read_text(errors="replace") if stderr.exists() else ""
    return Run(code, text, time.monotonic() - started, peak or usage.ru_maxrss / 1024, timed_out, killed)


def _high_water_mib(pid: int) -> float:
    """The process's peak resident memory so far (``VmHWM``: of its memory map since it
    last exec'd, unlike ``ru_maxrss``, which a child started from a large process inherits)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def decodable(path: Path) -> str | None:
    """None if ``path`` decodes to at least one video frame without an error, else why not."""
    import av

    try:
        with av.open(str(path), metadata_errors="replace") as container:
            frames = sum(1 for _ in container.decode(video=0))
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        return f"output does not decode: {type(exc).__name__}: {exc}"
    return None if frames else "output has no video frames"


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial" in p.name or ".tmp" in p.name]


def judge(run: Run, target: Path, *, timeout: float, memory_mib: float | None) -> tuple[str, str]:
    """(outcome, why) of a finished case by the contract (see the module)."""
    folder = target.parent
    last = next((line for line in reversed(run.stderr.splitlines()) if line.strip()), "")
    if run.timed_out:
        return "mishandled", f"hang: still running after {timeout:.0f} s"
    if memory_mib is not None and (run.killed_for_memory or (run.peak_rss_mib or 0) > memory_mib):
        return "mishandled", f"memory: peak RSS {run.peak_rss_mib:.0f} MiB over the bound of {memory_mib:.0f} MiB"
    if "Traceback (most recent call last)" in run.stderr:
        return "mishandled", f"traceback: {last}"
    if stray := temporaries(folder):
        return "mishandled", f"stray temporary files: {[p.name for p in stray]}"
    if run.exit_code == 0:
        problem = decodable(target) if target.exists() else "exit 0 but no output"
        return ("restored", "") if problem is None else ("mishandled", problem)
    if run.exit_code == 3:
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        if len(lines) != 1 or not lines[0].startswith("vidrestore: error: "):
            return "mishandled", f"exit 3 without one clear line: {lines[:3]}"
        left = [p.name for p in folder.iterdir()]
        if left:
            return "mishandled", f"exit 3 but left {left}"
        return "refused", lines[0]
    return "mishandled", f"exit {run.exit_code}: {last}"


@dataclass
class Verdict:
    """A case, what was done to its input, and how the run ended."""

    case: str
    kind: str
    container: str
    origin: str
    detail: str
    outcome: str
    why: str
    exit_code: int | None
    seconds: float
    peak_rss_mib: float | None
    memory_bound_mib: float | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 2)
        data["peak_rss_mib"] = None if self.peak_rss_mib is None else round(self.peak_rss_mib, 1)
        data["memory_bound_mib"] = None if self.memory_bound_mib is None else round(self.memory_bound_mib)
        return data


def verdict(case: Case, detail: str, run: Run, outcome: str, why: str, bound: float | None = None) -> Verdict:
    return Verdict(case.name, case.kind, case.source.container, case.source.origin, detail, outcome, why,
                   run.exit_code, run.seconds, run.peak_rss_mib, bound)


__all__ = ["BASE_MEMORY_MIB", "Case", "Measure", "PIXEL_FRAME_SECONDS", "bounds", "ExecLauncher", "ForkLauncher", "OUTCOMES", "PASSTHROUGH", "PIXEL_BYTES", "Run",
           "STREAM_MIB", "Verdict", "argv", "build", "decodable", "judge", "measure_input", "memory_bound_mib", "output_name", "plan",
           "run_child", "temporaries", "verdict"]
