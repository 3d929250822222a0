"""What a batch shows while it runs: one overall bar and a line per finished file.

The bar (tqdm, on a terminal only) counts this run's files and shows frames restored, frames
per second and the ETA; each finished file prints one line (status, input, frames, seconds,
fps, faces, or its error). Fed from the ledger's event log, so it looks the same whoever did
the work (worker processes, Ray tasks). Local workers also write how far their current file
is (frames written of the container's frame count), so the bar moves, and the ETA counts,
within long files too; Ray tasks report only when a file ends.
"""

from __future__ import annotations

import sys
import time
from typing import Mapping, TextIO


def file_line(row: Mapping) -> str:
    """One finished file: ``done   a/b.mp4  240 frames  12.1 s  19.8 fps  3 faces``."""
    status, key = row["status"], row["key"]
    if status == "done":
        frames, seconds = row["frames"] or 0, row["seconds"] or 0.0
        fps = frames / seconds if seconds else 0.0
        return (f"{status:<6}  {key}  {frames} frames  {seconds:.1f} s  {fps:.1f} fps  "
                f"{row['faces'] or 0} faces")
    return f"{status:<6}  {key}  {row['error'] or ''}"


class BatchProgress:
    """The run's display.

    Args:
        total: files this run will process.
        quiet: show nothing.
        stream: where to write (stderr).
        bar: draw a bar (default: when ``stream`` is a terminal).
    """

    def __init__(self, total: int, *, quiet: bool = False, stream: TextIO | None = None,
                 bar: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.frames = 0
        self.finished = 0
        self.started = time.perf_counter()
        self._partial: dict[int, tuple[int, int | None]] = {}  # file id → (frames, expected)
        self._last_event = 0
        self._want_bar = not quiet and (bar if bar is not None else self.stream.isatty())
        self._bar = None
        self._open_bar(total)

    def _open_bar(self, total: int) -> None:
        if not self._want_bar or not total:
            return
        if self._bar is not None:
            self._bar.total += total
            self._bar.refresh()
            return
        from tqdm import tqdm

        self._bar = tqdm(total=total, file=self.stream, dynamic_ncols=True, desc="batch",
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} files "
                                    "[{elapsed}<{remaining}{postfix}]")

    @property
    def position(self) -> float:
        """Files finished, plus the fraction written of each file being restored."""
        return self.finished + sum(min(1.0, frames / total) for frames, total in self._partial.values()
                                   if total)

    @property
    def frames_now(self) -> int:
        """Frames written by this run: of finished files and of those being restored."""
        return self.frames + sum(frames for frames, _ in self._partial.values())

    def add(self, files: int) -> None:
        """``files`` more to process (files that came back to the run at its end)."""
        self._open_bar(files)

    def running(self, rows) -> None:
        """The ledger's running files of this run (``Ledger.running``) with their progress."""
        self._partial = {row["id"]: (row["progress_frames"], row["progress_total"])
                         for row in rows if row["progress_frames"] is not None}
        self._show()

    def event(self, row: Mapping) -> None:
        """A ledger event joined with its file's row (see ``Ledger.events``); only workers'
        outcomes count (inputs found unreadable while planning are in the summary)."""
        event = row["event"] if "event" in row.keys() else None
        if event is not None:
            if event <= self._last_event:
                return  # already shown (a run that went back to work reads its events again)
            self._last_event = event
        if row["event_status"] not in ("done", "failed") or row["event_worker"] is None:
            return
        self.finished += 1
        self._partial.pop(row["id"], None)
        if row["event_status"] == "done":
            self.frames += row["frames"] or 0
        if self.quiet:
            return
        line = file_line(row)
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
            self._show()
        else:
            print(line, file=self.stream, flush=True)

    def _show(self) -> None:
        if self._bar is None:
            return
        self._bar.update(self.position - self._bar.n)
        elapsed = time.perf_counter() - self.started
        frames = self.frames_now
        self._bar.set_postfix(frames=frames, fps=f"{frames / elapsed:.1f}" if elapsed else "-")

    def close(self) -> None:
        self._want_bar = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [fmt(header)] + [fmt(r) for r in rows]


def _number(value, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


MAX_LISTED = 50


def summary_text(result, outdir) -> str:
    """The end-of-run summary: files per status, then the failed ones with their errors."""
    counts = result.counts()
    lines = [f"vidrestore: batch of {len(result.rows)} files finished in {result.seconds:.1f} s "
             f"(run {result.run})"]
    notes = {"done": f"{len(result.restored)} restored now, {counts['done'] - len(result.restored)} before",
             "failed": "see below" if counts["failed"] else "",
             "pending": "not started (interrupted or held by a stopped run)" if counts["pending"] else "",
             "running": "held by another live run" if counts["running"] else ""}
    lines += ["  " + line for line in _table(
        ("status", "files", "note"), [(s, str(n), notes[s]) for s, n in counts.items()])]
    failed = [r for r in result.rows if r["status"] == "failed"]
    if failed:
        lines.append("failed files:")
        lines += ["  " + line for line in _table(
            ("input", "attempts", "error"),
            [(r["key"], str(r["attempts"]), r["error"] or "") for r in failed[:MAX_LISTED]])]
        if len(failed) > MAX_LISTED:
            lines.append(f"  ... and {len(failed) - MAX_LISTED} more")
    lines.append(f"ledger: {result.ledger} (vidrestore batch status {outdir})")
    return "\n".join(lines)


def _progress_note(row: Mapping) -> str:
    frames, total = row["progress_frames"], row["progress_total"]
    if frames is None:
        return ""
    return f", {frames} of {total} frames" if total else f", {frames} frames"


def status_text(rows: list, live: dict, ledger_path) -> str:
    """``vidrestore batch status``: every file's state, then the totals."""
    table = []
    for r in rows:
        fps = r["frames"] / r["seconds"] if r["frames"] and r["seconds"] else None
        note = r["error"] or ""
        if r["status"] == "running":
            note = (f"on {r['host']} pid {r['pid']}" + _progress_note(r) + ("" if live.get(r["id"]) else
                    " (stale: its worker is gone; the next run redoes it)"))
        table.append((r["status"], str(r["attempts"]), _number(r["frames"]),
                      _number(r["seconds"], "{:.1f}"), _number(fps, "{:.1f}"), r["key"], note))
    lines = _table(("status", "attempts", "frames", "seconds", "fps", "input", "note"), table)
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("done", "failed", "pending", "running")}
    lines.append(f"{len(rows)} files: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                 + f" (ledger {ledger_path})")
    return "\n".join(lines)
