"""Convert many files: several inputs and/or folders (walked recursively) into one OUTDIR.

    inputs -> discover(): (src, dst) jobs -> for each: skip if dst exists | pipeline.convert -> Report

* mapping: a file found under folder ``D`` goes to ``OUTDIR / relpath(file, D)``; a file named
  on the command line goes to ``OUTDIR / basename``. The extension (so the container) is kept.
  Two inputs that would write the same output are refused before anything starts. An OUTDIR
  inside an input folder is left out of the walk (its files are outputs, not inputs);
* ``pattern`` (``--glob``) filters the files found in folders by name (``*.mkv``), or by path
  relative to the folder when it has a ``/`` (``2024/*/*.mov``); named files are always taken;
* what is a video: a known video extension is enough (a ``.mp4`` that does not decode is a
  *failure*, reported); any other file is probed with PyAV and counts only if it has a real
  video stream (not an image, cover art or FFmpeg's ANSI-art reading of a text file). In folders,
  non-videos and hidden files (``.name``, e.g. macOS ``._clip.mp4``) are skipped silently;
  a file named explicitly is always attempted;
* restartable: outputs appear only by rename when complete (``pipeline.convert``), so an
  existing output is finished work and is skipped unless ``overwrite``; a rerun after an
  interruption picks up where it stopped;
* no litter: a failed file leaves no temporary file, and folders created for it are removed
  again when they stay empty;
* one failure never stops the rest (black's ``Report``): each is reported as
  ``memc: error: <path>: <reason>`` on stderr, and the batch ends PARTIAL.

This module is the batch front end of the CLI: it reports to stderr (never stdout) itself,
because lines must appear as files finish, not at the end.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ConvertConfig
from .errors import ExitStatus, InputError, MemcError
from .outputs import make_parents, remove_if_empty
from .progress import BatchProgress, progress_bar

if TYPE_CHECKING:
    from .motion.interpolate import Interpolator

logger = logging.getLogger(__name__)

# Containers that hold video; matched case-insensitively. Anything else is probed.
VIDEO_EXTENSIONS = frozenset(
    """
    .mp4 .m4v .mov .qt .mkv .webm .avi .wmv .asf .flv .f4v .mpg .mpeg .m1v .m2v .mpv .vob .ts .m2ts .mts
    .mxf .ogv .3gp .3g2 .y4m .nut .dv .ivf .rm .rmvb .divx .h264 .264 .h265 .hevc .265
""".split()
)
# Common files beside videos that are never worth opening (saves a probe per file).
NOT_VIDEO_EXTENSIONS = frozenset(
    """
    .txt .md .json .xml .yaml .yml .csv .nfo .log .srt .ass .ssa .vtt .sub .idx .pdf .html .htm
    .jpg .jpeg .png .gif .bmp .tif .tiff .webp .heic .exr .dpx .psd .svg
    .wav .mp3 .aac .m4a .flac .ogg .opus .wma .ac3
    .zip .gz .tar .7z .rar .py .sh .exe .db .ini .torrent .part
""".split()
)


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


@dataclass
class Report:
    """What happened to each file; the exit status follows from it."""

    converted: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # the output existed
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def status(self) -> ExitStatus:
        return ExitStatus.PARTIAL if self.failed else ExitStatus.OK

    def summary(self) -> str:
        return (
            f"{len(self.converted)} converted, {len(self.skipped)} skipped, {len(self.failed)} failed "
            f"in {self.seconds:.1f} s"
        )


def is_video(path: Path) -> bool:
    """Cheap first (the extension), then a probe for the rest; never raises."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return True
    if suffix in NOT_VIDEO_EXTENSIONS:
        return False
    return _probe_video(path)


def _probe_video(path: Path) -> bool:
    """True if PyAV opens ``path`` and finds a moving-picture video stream."""
    import av
    import av.error

    from .io.decode import TEXT_DEMUXERS, is_still_image

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            name = container.format.name
            if is_still_image(name) or name in TEXT_DEMUXERS:
                return False
            return any(not (s.disposition & av.stream.Disposition.attached_pic) for s in container.streams.video)
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        logger.debug("%s: not a video (%s)", path, e)
        return False


def _walk(folder: Path, pattern: str | None, exclude: Path) -> Iterator[Path]:
    """Files under ``folder`` in a stable order, without hidden entries and without ``exclude``
    (the output folder, when it lies inside an input folder: its outputs are not inputs)."""
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (root_path / d).resolve() != exclude)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = root_path / name
            if pattern is not None:
                relative = path.relative_to(folder).as_posix()
                if not fnmatch.fnmatch(relative if "/" in pattern else name, pattern):
                    continue
            if path.is_file():
                yield path


def discover(inputs: Sequence[str | os.PathLike], outdir: str | os.PathLike, pattern: str | None = None) -> list[Job]:
    """The (src, dst) pairs of a batch, checked as a whole before anything is converted."""
    out = Path(outdir)
    if os.fspath(outdir) == "-":
        raise InputError("a batch writes files: -o must be a folder, not '-'")
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out}: exists and is not a folder (several inputs or a folder need an output folder)")
    _check_outdir(out)
    out_resolved = out.resolve()
    jobs: list[Job] = []
    for item in inputs:
        if os.fspath(item) == "-":
            raise InputError("'-' (stdin) cannot be part of a batch; convert a pipe on its own")
        path = Path(item)
        if path.is_dir():
            if path.resolve() == out_resolved:
                raise InputError(
                    f"-o {out} is the input folder {path}: outputs would mix with the inputs; "
                    "choose another output folder"
                )
            jobs += [
                Job(src, out / src.relative_to(path)) for src in _walk(path, pattern, out_resolved) if is_video(src)
            ]
        elif path.is_file():
            jobs.append(Job(path, out / path.name))  # named explicitly: tried even if it is no video
        else:
            raise InputError(f"no such file or folder: {path}")
    unique: dict[Path, Job] = {}
    for job in jobs:
        key = job.dst.resolve()
        if key in unique:
            if unique[key].src.resolve() == job.src.resolve():
                continue  # the same file reached twice: convert it once
            raise InputError(
                f"{unique[key].src} and {job.src} would both be written to {job.dst}; "
                "convert them in separate runs or rename one"
            )
        unique[key] = job
    if not unique:
        where = ", ".join(os.fspath(i) for i in inputs)
        raise InputError(f"no video files in {where}" + (f" matching --glob {pattern!r}" if pattern else ""))
    return list(unique.values())


def _check_outdir(out: Path) -> None:
    """A batch that cannot write its output folder stops before the first file, in one line."""
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"-o {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"-o {out}: output folder {existing} is not writable")


def _for_job(config: ConvertConfig, job: Job, outdir: str | os.PathLike) -> ConvertConfig:
    """The batch's config for one file: its --debug-dir pictures in a folder of their own."""
    if config.debug_dir is None:
        return config
    relative = job.dst.relative_to(outdir).with_suffix("")
    return dataclasses.replace(config, debug_dir=os.path.join(config.debug_dir, relative))


def _reason(error: BaseException) -> str:
    if isinstance(error, MemcError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def run_batch(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    config: ConvertConfig,
    interpolator: Interpolator | Callable[[], Interpolator],
    *,
    overwrite: bool = False,
    pattern: str | None = None,
    quiet: bool = False,
) -> ExitStatus:
    """Convert every video of ``inputs`` into the folder ``output``, with one ``interpolator``.

    ``interpolator`` may be a function that makes it: it is then called once, at the first file
    to convert, so a batch that cannot start (or has nothing left to do) loads no model.
    Prints a line per failure (always), per converted file and a summary (unless ``quiet``) to
    stderr. Returns OK, or PARTIAL when any file failed. Raises InputError for a batch that
    cannot start (bad output folder, clashing outputs, nothing to convert).
    """
    from .motion.interpolate import Interpolator
    from .pipeline import convert

    started = time.perf_counter()
    jobs = discover(inputs, output, pattern)
    report = Report()
    with BatchProgress(quiet, len(jobs)) as overall:
        for job in jobs:
            if job.dst.exists() and not overwrite:
                report.skipped.append(job.src)
                logger.info("%s: output exists, skipped: %s", job.src, job.dst)
                overall.file_done()
                continue
            if not isinstance(interpolator, Interpolator):
                interpolator = interpolator()  # errors here (e.g. missing weights) concern every file: not caught
            created: list[Path] = []
            ok = False
            try:
                created = make_parents(job.dst)
                with progress_bar(quiet, str(job.src), position=1, on_frames=overall.add_frames) as factory:
                    stats = convert(
                        job.src,
                        job.dst,
                        _for_job(config, job, output),
                        interpolator,
                        overwrite=overwrite,
                        progress_factory=factory,
                    )
                ok = True
            except Exception as error:  # noqa: BLE001 - one file's failure, whatever it is, must not stop the batch
                report.failed.append((job.src, _reason(error)))
                overall.echo(f"memc: error: {job.src}: {_reason(error)}")
                logger.debug("%s failed", job.src, exc_info=True)
            finally:
                if not ok:  # also on Ctrl-C: no empty folders left behind
                    remove_if_empty(created)
            if ok:
                report.converted.append(job.src)
                if not quiet:
                    overall.echo(f"memc: {job.src} -> {job.dst}: {stats.summary()}")
            overall.file_done()
    report.seconds = time.perf_counter() - started
    if not quiet:
        overall.echo(f"memc: {report.summary()}")
    return report.status
