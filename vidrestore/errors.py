"""One error hierarchy for vidrestore.

Library code raises these; only the CLI turns them into a one-line message and an exit code.
Each class also subclasses the matching built-in, so callers that know nothing of vidrestore
can still catch ``ValueError`` or ``FileNotFoundError``.

Exit codes: 2 usage, 3 bad input, 4 missing or unfit weights, 1 anything internal,
130 interrupted.
"""

from __future__ import annotations


class VidrestoreError(Exception):
    """Base of every error vidrestore raises on purpose."""

    exit_code: int = 1


class UsageError(VidrestoreError, ValueError):
    """The command line or a config asks for something that cannot be done."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file or mapping has an unknown key or a value of the wrong type."""


class OutputError(UsageError, OSError):
    """The output path cannot be written (exists without --overwrite, unwritable folder...)."""


class InputError(VidrestoreError, ValueError):
    """The input is missing, unreadable, not a video, or has no video stream."""

    exit_code = 3


class InputNotFoundError(InputError, FileNotFoundError):
    """The input path does not exist."""


class WeightsError(VidrestoreError):
    """Model weights are missing, corrupt, or do not fit the network."""

    exit_code = 4


class MissingWeightsError(WeightsError, FileNotFoundError):
    """A weights file is not in the weights folder, the cache, or reachable for download."""


class ChecksumError(WeightsError, ValueError):
    """A weights file's sha256 does not match the known checkpoint."""


class WeightsMismatchError(WeightsError, ValueError):
    """A checkpoint's tensors do not fit the network strictly (missing, unexpected, shapes)."""


class UntrainedWeightsError(WeightsError):
    """The checkpoint lacks a model's own trained layers (missing, or still at their initial
    values): the model would only pretend. The message names the weights it needs and the
    training command that makes them."""


class EngineError(VidrestoreError, RuntimeError):
    """An engine backend cannot be built or run on this machine."""


class Interrupted(VidrestoreError):
    """The run was stopped by Ctrl-C or SIGTERM."""

    exit_code = 130
