"""The ``vidrestore`` command: the only place that turns exceptions into exit codes.

    vidrestore INPUT -o OUTPUT [options]     restore a video (see ``--help``)
    vidrestore probe INPUT                   streams, codecs, fps, duration... as JSON
    vidrestore weights list|fetch|verify|import
    vidrestore bench INPUT [options]         per-stage speed of the pipeline
    vidrestore engines build|list|check      engine artifacts and their accuracy
    vidrestore batch INPUT... -o OUTDIR      many videos, resumable
    vidrestore evaluate RESTORED --reference GT   PSNR, SSIM, LPIPS, IDS, LMD, warping error
    vidrestore degrade GT -o LQ              a ground-truth clip made a benchmark input
    vidrestore preview INPUT --at T -o P.png one frame restored at several fidelities

Exit codes: 0 success, 1 internal error, 2 usage, 3 bad input, 4 missing or unfit weights,
130 interrupted (Ctrl-C, SIGTERM), 141 standard output closed early (``vidrestore probe X | head``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import Callable, Sequence

from .errors import Interrupted, UsageError, VidrestoreError

# Subcommand → module in vidrestore.commands (each has add_arguments(parser) and run(args)).
COMMANDS: dict[str, str] = {
    "probe": "probe",
    "weights": "weights",
    "bench": "bench",
    "engines": "engines",
    "batch": "batch",
    "evaluate": "evaluate",
    "degrade": "degrade",
    "preview": "preview",
}
_HELP = {
    "probe": "describe a video as JSON",
    "weights": "list, fetch, verify or import model weights",
    "bench": "measure the pipeline's speed per stage",
    "engines": "build, list or check the restoration engines",
    "batch": "restore many videos, resumably",
    "evaluate": "score a restored video against its ground truth, frame by frame and over time",
    "degrade": "degrade a clean video (blur, noise, downsampling, compression) into a benchmark input",
    "preview": "one frame restored at several fidelities, side by side, as a PNG",
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser(command: str | None) -> ArgumentParser:
    """The parser for ``command`` (None: the default restore command)."""
    if command is None:
        from .commands import restore

        parser = ArgumentParser(
            prog="vidrestore",
            description="Restore the faces of a video with CodeFormer, ID-CodeFormer or "
            "CodeFormer++, keeping audio, timestamps and metadata. Other commands: "
            + "; ".join(f"{name}: {_HELP[name]}" for name in COMMANDS)
            + " (vidrestore COMMAND --help).",
        )
        restore.add_arguments(parser)
        return parser
    module = importlib.import_module(f".commands.{COMMANDS[command]}", __package__)
    parser = ArgumentParser(prog=f"vidrestore {command}", description=_HELP[command])
    module.add_arguments(parser)
    return parser


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Options may come between positionals (``batch a.mp4 -o out b.mp4``) where argparse
    allows it, i.e. for parsers without subcommands."""
    if any(isinstance(action, argparse._SubParsersAction) for action in parser._actions):
        return parser.parse_args(argv)
    return parser.parse_intermixed_args(argv)


def _on_sigterm(signum, frame) -> None:
    raise Interrupted("stopped by SIGTERM")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used as the console script)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args_list = argv[1:] if command else argv

    def run() -> int:
        parser = build_parser(command)
        if command is None and not args_list:
            parser.print_help()
            return 2
        args = parse_arguments(parser, args_list)
        module = importlib.import_module(
            f".commands.{COMMANDS[command] if command else 'restore'}", __package__
        )
        return int(module.run(args) or 0)

    previous = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
    try:
        return run_guarded(run, "vidrestore: ", interrupted="interrupted; no output was left behind")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run_guarded(body: Callable[[], int], prefix: str, *, interrupted: str = "interrupted") -> int:
    """Run a command's ``body`` and turn what it raises into one line on stderr and an exit
    code: a ``VidrestoreError``'s own code, 130 for Ctrl-C, 1 for running out of memory or an
    internal error (re-raised with ``VIDRESTORE_DEBUG`` set). ``prefix`` starts each line.
    A reader that closes standard output early (``| head``) ends the command quietly with 141,
    as a shell reports a pipeline's writer killed by SIGPIPE."""
    try:
        code = body()
        sys.stdout.flush()  # a buffered write to a closed pipe fails here, not at interpreter exit
        return code
    except BrokenPipeError:
        if not _stdout_closed():
            return _internal_error(prefix)
        return STDOUT_CLOSED
    except KeyboardInterrupt:
        print(f"{prefix}{interrupted}", file=sys.stderr)
        return Interrupted.exit_code
    except VidrestoreError as exc:
        print(f"{prefix}error: {exc}", file=sys.stderr)
        return exc.exit_code
    except MemoryError:
        print(f"{prefix}error: out of memory (try a smaller --batch-size)", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - the one place that catches everything
        return _internal_error(prefix)


STDOUT_CLOSED = 128 + signal.SIGPIPE  # 141, what a shell shows for a writer killed by SIGPIPE


def _internal_error(prefix: str) -> int:
    """Report the exception being handled as an internal error (re-raised under VIDRESTORE_DEBUG)."""
    exc = sys.exc_info()[1]
    print(f"{prefix}internal error: {type(exc).__name__}: {exc} "
          "(please report it with the command you ran)", file=sys.stderr)
    if _debug():
        raise exc
    return 1


def _stdout_closed() -> bool:
    """Is standard output a pipe nobody reads any more (poll reports an error on its write end)?
    If so, point it at /dev/null so that the interpreter's own flush at exit does not fail again."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        closed = any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no real file behind sys.stdout
        return False
    if closed:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    return closed


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _debug() -> bool:
    import os

    return bool(os.environ.get("VIDRESTORE_DEBUG"))


if __name__ == "__main__":
    sys.exit(main())
