"""Output safety for every command: never overwrite an input, never an output unless asked,
and never leave a half-written file under the final name.

A file is written under a hidden temporary name beside its destination (same extension, so the
container is still inferred) and renamed on success. The name carries the writer's PID; a later
run for the same destination removes temporaries whose writer is gone (killed with SIGKILL, a
power cut), and only those: ``.STEM.memc-tmp-PID.EXT`` with a PID that no longer runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError

logger = logging.getLogger(__name__)

_TMP_MARK = ".memc-tmp-"


def temporary_path(dst: Path) -> Path:
    """The hidden name beside ``dst`` this process writes to."""
    return dst.with_name(f".{dst.stem}{_TMP_MARK}{os.getpid()}{dst.suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours from before this run started writing (a reused PID in a container)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (someone else's) or cannot tell: leave it
    return True


def remove_stale_temporaries(dst: Path) -> list[Path]:
    """Delete memc's own temporaries for ``dst`` left by writers that are gone; returns them."""
    pattern = re.compile(re.escape(f".{dst.stem}{_TMP_MARK}") + r"(\d+)" + re.escape(dst.suffix) + "$")
    removed = []
    try:
        names = os.listdir(dst.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.match(name)
        if match and not _pid_alive(int(match.group(1))):
            stale = dst.parent / name
            with contextlib.suppress(OSError):
                stale.unlink()
                removed.append(stale)
                logger.info("removed a stale temporary file of an earlier run: %s", stale)
    return removed


def check_output(dst: str, overwrite: bool, inputs: tuple[str, ...] = ()) -> None:
    """Refuse to write over an input, an existing output (unless ``overwrite``) or into a folder
    that is missing or read-only; '-' (stdout) is always fine."""
    if dst == "-":
        return
    dst_path = Path(dst)
    for src in inputs:
        if src != "-" and (
            Path(src).resolve() == dst_path.resolve()
            or (Path(src).exists() and dst_path.exists() and os.path.samefile(src, dst_path))  # hard links
        ):
            raise InputError(f"output is the input: {dst} (choose another -o)")
    if dst_path.is_dir():
        raise InputError(f"output is a directory: {dst}")
    if dst_path.exists() and not overwrite:
        raise InputError(f"output exists: {dst} (use --overwrite/-y to replace it)")
    if not dst_path.parent.exists():
        raise InputError(f"output folder does not exist: {dst_path.parent}")
    if not os.access(dst_path.parent, os.W_OK):
        raise InputError(f"output folder is not writable: {dst_path.parent}")


@contextlib.contextmanager
def atomic_output(dst: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path to write; rename it to ``dst`` when the block succeeds, delete it
    when it fails or is interrupted (any exception, including KeyboardInterrupt and SIGTERM)."""
    dst = Path(dst)
    remove_stale_temporaries(dst)
    tmp = temporary_path(dst)
    try:
        yield tmp
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def make_parents(dst: Path) -> list[Path]:
    """Create the missing folders above ``dst``; returns them deepest first, for cleaning up.
    InputError (one line) when the file system refuses."""
    created: list[Path] = []
    parent = dst.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    for folder in reversed(created):
        try:
            folder.mkdir()
        except OSError as e:
            remove_if_empty(created[created.index(folder) + 1 :])
            raise InputError(f"cannot create output folder {folder}: {e.strerror or e}") from e
    return created


def remove_if_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:  # not empty (another file landed there) or already gone
            return
