"""Typed errors. Library code raises these; only ``cli`` turns them into a message and an exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2  # click's own code for bad options
    PARTIAL = 3  # a batch where some files failed
    INTERRUPTED = 130


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread so that cleanup runs as it does for Ctrl-C.

    A BaseException like KeyboardInterrupt: a batch's per-file ``except Exception`` must not
    swallow it and go on with the next file.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class MemcError(Exception):
    """Base class: a failure we can explain in one line to the user."""

    exit_code: int = ExitStatus.ERROR


class InputError(MemcError, ValueError):
    """Bad user input: missing file, bad option value, not a video."""


class DecodeError(MemcError):
    """The input could not be decoded."""


class EncodeError(MemcError):
    """The output could not be written or encoded."""


class WeightsError(MemcError, FileNotFoundError):
    """Model weights are missing or corrupt."""


def one_line(error: BaseException) -> str:
    """An exception's message on one line (FFmpeg's and the OS's can span several)."""
    text = " ".join(str(getattr(error, "strerror", None) or error).split())
    return text or type(error).__name__
