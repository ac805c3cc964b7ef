"""A batch on a Ray cluster (``memc convert ... --ray [ADDRESS]``): the local batch's jobs, outputs,
report and exit codes, with the work spread over Ray's workers.

    driver: batch.discover() -> per file: skip if done | segments.plan() -> submit tasks -> join -> Report
    worker (any node, any order): the Interpolator of this process -> pipeline / segments.convert_segment

* work units: a file is one task; a file longer than ``segment_seconds`` is cut at keyframes into
  segments (``segments``), one task each, so a single video spreads over the workers too; the
  driver joins a file's segments by stream copy once all are done;
* resources: a task asks for one GPU where the cluster has GPUs, one CPU otherwise; the model is
  built once per worker process (``_interpolator``; Ray reuses worker processes between tasks);
* faults: a worker that dies is retried elsewhere (``max_retries``); an error in a file is that
  file's failure (named, the rest go on), never retried. Every file and segment appears under its
  final name only when complete (``outputs.atomic_output``). A segmented file's pieces live in
  ``OUTDIR/.memc-ray/NAME/`` beside the output with a manifest (``plan.json``: source, options,
  cuts); a rerun skips finished files and finished segments, so an interrupted job resumes;
* progress: one line (or bar) of output frames done / total and the frame rate across workers,
  from a small counter actor the tasks report to.

Inputs and outputs must be on storage every node sees, under the same paths. Ray is an optional
dependency (``pip install "memc[ray]"``), imported only here and only when ``--ray`` is used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batch import Job, Report, _for_job, discover
from .config import DEFAULT_SEGMENT_SECONDS, ConvertConfig
from .errors import ExitStatus, InputError, MemcError, one_line
from .outputs import check_output, make_parents, remove_if_empty
from .progress import BatchProgress, progress_bar

if TYPE_CHECKING:
    from .motion.interpolate import Interpolator
    from .pipeline import Stats
    from .segments import Plan, Segment

logger = logging.getLogger(__name__)

RAY_MISSING = '--ray needs Ray: pip install "memc[ray]"'
MAX_RETRIES = 3  # attempts after a worker dies (not after an error in the file: that would fail again)
MAX_RETRIES_ENV = "MEMC_RAY_MAX_RETRIES"  # overrides MAX_RETRIES (0: a dead worker fails its file at once)
WORK_DIR = ".memc-ray"  # beside the outputs: segment files and their manifest while a file is in progress
CRASH_ONCE_ENV = "MEMC_RAY_TEST_CRASH_ONCE"  # tests: the first task to see no marker file creates it and dies
POLL_SECONDS = 0.5


def import_ray():
    """The ray module, or the one-line error that says how to get it."""
    try:
        import ray
    except ImportError as e:
        raise MemcError(RAY_MISSING) from e
    return ray


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to build the driver's Interpolator itself (a model does not travel)."""

    flow: str = "auto"
    dis_preset: str = "medium"
    flow_scale: float | None = None
    weights: str | None = None
    device: str = "auto"  # resolved on the worker: a GPU worker takes its GPU, a CPU worker its CPU


# Per worker process, so the model loads once per worker and not once per task; Ray keeps worker
# processes between tasks. Lives here and nowhere in memc's core modules.
_MODELS: dict[ModelSpec, Interpolator] = {}


def _interpolator(spec: ModelSpec) -> Interpolator:
    if spec not in _MODELS:
        from .motion.interpolate import Interpolator

        _MODELS.clear()  # one model per process: a new spec replaces the old one
        _MODELS[spec] = Interpolator(
            device=spec.device,
            flow=spec.flow,
            dis_preset=spec.dis_preset,
            flow_scale=spec.flow_scale,
            weights=spec.weights,
        )
    return _MODELS[spec]


# ---------------------------------------------------------------- worker side


class _Counter:
    """Output frames done, per task: a retried task starts its count again (no double counting)."""

    def __init__(self) -> None:
        self.frames: dict[str, int] = {}

    def add(self, key: str, n: int) -> None:
        self.frames[key] = self.frames.get(key, 0) + n

    def reset(self, key: str) -> None:
        self.frames[key] = 0

    def total(self) -> int:
        return sum(self.frames.values())


class _Reporter:
    """The progress callback of a task: batches frames to the counter actor, at most twice a second."""

    def __init__(self, counter, key: str) -> None:
        self.counter, self.key = counter, key
        self.pending, self.last = 0, time.monotonic()
        self.crash = os.environ.get(CRASH_ONCE_ENV)
        counter.reset.remote(key)

    def __call__(self, n: int) -> None:
        self.pending += n
        if self.crash:
            _crash_once(self.crash)  # mid-task, with a half-written temporary on disk
        now = time.monotonic()
        if now - self.last >= POLL_SECONDS:
            self.flush()
            self.last = now

    def flush(self) -> None:
        if self.pending:
            self.counter.add.remote(self.key, self.pending)
            self.pending = 0


def _crash_once(marker: str) -> None:
    """Test hook: die like a killed worker, once per marker file (the first task to create it)."""
    try:
        with open(marker, "x"):
            pass
    except FileExistsError:
        return
    os._exit(1)


@dataclass
class RayReport(Report):
    """The local batch's Report, plus the Ray nodes the tasks ran on."""

    nodes: list[str] = field(default_factory=list)


@dataclass
class TaskResult:
    stats: Stats
    node: str  # Ray node id where the task ran


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _file_work(src: str, dst: str, config: ConvertConfig, spec: ModelSpec, overwrite: bool, counter) -> TaskResult:
    """A whole file, as the local batch converts it (audio, subtitles and all)."""
    from .pipeline import convert

    report = _Reporter(counter, dst)
    try:
        stats = convert(src, dst, config, _interpolator(spec), overwrite=overwrite, progress_factory=lambda _: report)
    finally:
        report.flush()
    return TaskResult(stats, _node_id())


def _segment_work(src: str, part: str, config: ConvertConfig, spec: ModelSpec, segment: Segment, counter) -> TaskResult:
    """One segment of a file, video only, into its segment file."""
    from .segments import convert_segment

    report = _Reporter(counter, part)
    try:
        stats = convert_segment(src, part, config, _interpolator(spec), segment, report)
    finally:
        report.flush()
    return TaskResult(stats, _node_id())


# ---------------------------------------------------------------- driver side


def connect(address: str | None, num_cpus: int | None, *, verbose: bool = False):
    """Join the cluster at ``address`` (None: $RAY_ADDRESS, else a new local Ray with ``num_cpus``)."""
    ray = import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None and num_cpus is not None:
        raise InputError("--ray-cpus sizes a local Ray; a cluster at an address has its own CPUs")
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING if verbose else logging.ERROR, "log_to_driver": verbose}
    if address is None:
        kwargs.update(num_cpus=num_cpus, include_dashboard=False)
    crash = os.environ.get(CRASH_ONCE_ENV)
    if crash:  # reaches workers of a cluster started elsewhere too
        kwargs["runtime_env"] = {"env_vars": {CRASH_ONCE_ENV: crash}}
    try:
        ray.init(address=address, **kwargs)
    except Exception as e:  # noqa: BLE001 - Ray's many ways to fail to start or connect: one line
        where = f"at {address}" if address else "(local)"
        raise MemcError(f"cannot start or reach Ray {where}: {' '.join(str(e).split())}") from e
    return ray


def _task_options(ray, device: str) -> dict[str, Any]:
    """One GPU per task on a cluster with GPUs (unless --device cpu), one CPU otherwise."""
    gpus = ray.cluster_resources().get("GPU", 0) if device != "cpu" else 0
    resources: dict[str, Any] = {"num_gpus": 1} if gpus >= 1 else {"num_cpus": 1}
    text = os.environ.get(MAX_RETRIES_ENV, str(MAX_RETRIES))
    if not text.isdigit():
        raise InputError(f"${MAX_RETRIES_ENV}: {text!r} is not a number of retries (0, 1, 2 ...)")
    return {**resources, "max_retries": int(text), "retry_exceptions": False}


@dataclass
class _File:
    """A file in flight on the driver."""

    job: Job
    config: ConvertConfig
    created: list[Path]
    plan: Plan | None = None
    work: Path | None = None  # the folder of its segment files
    parts: list[Path] = field(default_factory=list)
    refs: list[Any] = field(default_factory=list)
    segment_of: dict[Any, int] = field(default_factory=dict)  # task ref -> the segment it makes
    stats: list[Stats] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    failed: bool = False


def _work_dir(dst: Path) -> Path:
    return dst.parent / WORK_DIR / dst.name


def _manifest(src: Path, config: ConvertConfig, spec: ModelSpec, plan: Plan) -> dict[str, Any]:
    """What the segment files of a file depend on: a rerun reuses them only if all of it is the same."""
    stat = src.stat()
    return {
        "source": str(src.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "options": repr(config),
        "model": repr(spec),
        "segments": [[str(s.lo), str(s.hi)] for s in plan.segments],
    }


def _prepare_work(work: Path, manifest: dict[str, Any]) -> None:
    """Reuse ``work`` when its manifest matches; else start it afresh (stale pieces of other options go)."""
    path = work / "plan.json"
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()) == manifest:
            return
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    tmp = work / ".plan.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path)


def _remove_work(work: Path | None) -> None:
    if work is None:
        return
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        work.parent.rmdir()  # .memc-ray, when no other file is in progress


def _combined(plan: Plan, parts: Sequence[Stats], seconds: float) -> Stats:
    from .pipeline import Stats

    return Stats(
        source_frames=plan.source_frames or sum(s.source_frames for s in parts),
        output_frames=sum(s.output_frames for s in parts),
        interpolated=sum(s.interpolated for s in parts),
        scene_cuts=sum(s.scene_cuts for s in parts),
        held=sum(s.held for s in parts),
        seconds=seconds,
        fps=plan.fps,
        truncated=any(s.truncated for s in parts),
    )


def _cause(error: BaseException) -> BaseException:
    """The exception a task raised, out of Ray's wrapper; a dead worker as itself."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


def _reason(error: BaseException) -> str:
    """One line, as the local batch says it (Ray's own errors span many lines)."""
    if isinstance(error, MemcError):
        return str(error)
    return f"{type(error).__name__}: {one_line(error)}"


def run_ray(
    jobs: Sequence[Job],
    config: ConvertConfig,
    spec: ModelSpec,
    *,
    outdir: str | os.PathLike | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    segment_seconds: float | None = DEFAULT_SEGMENT_SECONDS,
    on_failure: Callable[[Path, BaseException], None] | None = None,
) -> RayReport:
    """Convert ``jobs`` on Ray; the Report of the local batch, plus ``nodes`` (Ray node ids used).

    Prints a line per failure, per converted file and a summary (unless ``quiet``) to stderr, as
    ``batch.run_batch`` does. ``on_failure``, when given, takes each failure instead of its line.
    """
    started = time.perf_counter()
    report = RayReport()
    pending = [job for job in jobs if overwrite or not job.dst.exists()]
    for job in jobs:
        if job not in pending:
            report.skipped.append(job.src)
            logger.info("%s: output exists, skipped: %s", job.src, job.dst)
    nodes: set[str] = set()
    with BatchProgress(quiet, len(jobs)) as overall:
        for _ in report.skipped:
            overall.file_done()
        if pending:
            ray = connect(address, num_cpus, verbose=verbose)
            try:
                _Driver(ray, config, spec, overwrite, quiet, segment_seconds, outdir, overall, report, on_failure).run(
                    pending, nodes
                )
            finally:
                ray.shutdown()
        report.seconds = time.perf_counter() - started
        if nodes:
            logger.info("ray: tasks ran on %d node(s): %s", len(nodes), ", ".join(sorted(nodes)))
        if not quiet and on_failure is None:
            overall.echo(f"memc: {report.summary()}")
    report.nodes = sorted(nodes)
    return report


class _Driver:
    """Submits the tasks, follows them, joins segmented files and fills the Report."""

    def __init__(self, ray, config, spec, overwrite, quiet, segment_seconds, outdir, overall, report, on_failure):
        self.ray, self.config, self.spec = ray, config, spec
        self.overwrite, self.quiet, self.segment_seconds = overwrite, quiet, segment_seconds
        self.outdir, self.overall, self.report, self.on_failure = outdir, overall, report, on_failure
        options = _task_options(ray, spec.device)
        self.file_task = ray.remote(**options)(_file_work)
        self.segment_task = ray.remote(**options)(_segment_work)
        self.counter = ray.remote(num_cpus=0)(_Counter).remote()
        self.owner: dict[Any, _File] = {}  # task ref -> its file
        self.total = 0  # output frames to make in this run

    def run(self, jobs: Sequence[Job], nodes: set[str]) -> None:
        files = [self._submit(job) for job in jobs]
        with progress_bar(self.quiet, "ray", position=1) as factory:
            update = factory(self.total or None) if factory is not None else None
            done = 0
            try:
                while self.owner:
                    ready, _ = self.ray.wait(list(self.owner), num_returns=1, timeout=POLL_SECONDS)
                    if update is not None:  # before the lines of finished files, as a local batch prints
                        now = self.ray.get(self.counter.total.remote())
                        if now > done:
                            update(now - done)
                            done = now
                    for ref in ready:
                        self._finished(ref, nodes)
            except BaseException:
                for ref in list(self.owner):  # Ctrl-C, SIGTERM: stop the workers too; finished segments stay
                    with contextlib.suppress(Exception):
                        self.ray.cancel(ref, force=True)
                raise
        for f in files:
            if f.failed:
                remove_if_empty(f.created)

    def _fail(self, f: _File, error: BaseException, *, lost: bool = False) -> None:
        """``lost``: the work was lost (a worker or node died past its retries), not refused by the file:
        its other segments finish and stay, so a rerun converts only what is missing."""
        if f.failed:
            return
        f.failed = True
        if not lost:
            for ref in f.refs:
                if ref in self.owner:
                    self.owner.pop(ref)
                    with contextlib.suppress(Exception):
                        self.ray.cancel(ref, force=True)
            _remove_work(f.work)
        self.report.failed.append((f.job.src, _reason(error)))
        logger.debug("%s failed", f.job.src, exc_info=error)
        if self.on_failure is not None:
            self.on_failure(f.job.src, error)
        else:
            self.overall.echo(f"memc: error: {f.job.src}: {_reason(error)}")
        self.overall.file_done()

    def _submit(self, job: Job) -> _File:
        from .segments import plan

        config = _for_job(self.config, job, self.outdir) if self.outdir is not None else self.config
        f = _File(job, config, [])
        try:
            f.created = make_parents(job.dst)
            check_output(str(job.dst), self.overwrite, inputs=(str(job.src),))
            f.plan = plan(job.src, config, self.segment_seconds)
        except Exception as error:  # noqa: BLE001 - one file's failure must not stop the batch
            self._fail(f, error)
            remove_if_empty(f.created)
            return f
        if len(f.plan.segments) == 1:
            ref = self.file_task.remote(str(job.src), str(job.dst), config, self.spec, self.overwrite, self.counter)
            self._own(f, ref)
            self.total += f.plan.outputs
            return f
        logger.info(
            "%s: %d segments, cut at keyframes every %g s or more", job.src, len(f.plan.segments), self.segment_seconds
        )
        f.work = _work_dir(job.dst)
        _prepare_work(f.work, _manifest(job.src, config, self.spec, f.plan))
        suffix = job.dst.suffix
        for segment in f.plan.segments:
            part = f.work / f"seg-{segment.index:05d}{suffix}"
            f.parts.append(part)
            if part.exists():
                logger.info("%s: segment %d done in an earlier run", job.src, segment.index)
                continue
            ref = self.segment_task.remote(str(job.src), str(part), config, self.spec, segment, self.counter)
            f.segment_of[ref] = segment.index
            self._own(f, ref)
            self.total += segment.outputs
        if not f.refs:
            self._join(f)
        return f

    def _own(self, f: _File, ref) -> None:
        f.refs.append(ref)
        self.owner[ref] = f

    def _finished(self, ref, nodes: set[str]) -> None:
        f = self.owner.pop(ref, None)
        if f is None or f.failed:
            return
        try:
            result: TaskResult = self.ray.get(ref)
        except Exception as error:  # noqa: BLE001 - the task's error, or its worker died MAX_RETRIES times
            self._fail(f, _cause(error), lost=not isinstance(error, self.ray.exceptions.RayTaskError))
            return
        nodes.add(result.node)
        f.stats.append(result.stats)
        logger.info(
            "%s: %s done on node %s: %d output frames in %.1f s",
            f.job.src,
            f"segment {f.segment_of[ref]}" if ref in f.segment_of else "file",
            result.node[:12],
            result.stats.output_frames,
            result.stats.seconds,
        )
        if any(r in self.owner for r in f.refs):
            return  # more segments to come
        if f.work is None:
            self._done(f, result.stats)
        else:
            self._join(f)

    def _join(self, f: _File) -> None:
        from .segments import join

        assert f.plan is not None
        try:
            join(f.job.src, [(p, s.first) for p, s in zip(f.parts, f.plan.segments)], f.job.dst, f.config, f.plan.fps)
        except Exception as error:  # noqa: BLE001
            self._fail(f, error)
            return
        _remove_work(f.work)
        self._done(f, _combined(f.plan, f.stats, time.perf_counter() - f.started))

    def _done(self, f: _File, stats: Stats) -> None:
        self.report.converted.append(f.job.src)
        if not self.quiet:
            self.overall.echo(f"memc: {f.job.src} -> {f.job.dst}: {stats.summary()}")
        self.overall.file_done()


def convert_on_ray(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    config: ConvertConfig,
    spec: ModelSpec,
    *,
    batch: bool,
    address: str | None = None,
    num_cpus: int | None = None,
    overwrite: bool = False,
    pattern: str | None = None,
    quiet: bool = False,
    verbose: bool = False,
    segment_seconds: float | None = DEFAULT_SEGMENT_SECONDS,
) -> ExitStatus:
    """The CLI's ``--ray``: a batch (several inputs or a folder into OUTDIR) or one file into one
    output. A batch returns OK or PARTIAL; a single file raises its failure, as a local run does."""
    errors: list[BaseException] = []
    if batch:
        jobs = discover(inputs, output, pattern)  # refused before Ray starts, as the local batch is
        outdir, on_failure = output, None
    else:
        src, dst = (os.fspath(p) for p in (inputs[0], output))
        if "-" in (src, dst):
            raise InputError("--ray converts files: a pipe ('-') runs locally, without --ray")
        check_output(dst, overwrite, inputs=(src,))
        if not os.path.isfile(src):
            raise InputError(f"no such file: {src}")
        jobs, outdir = [Job(Path(src), Path(dst))], None

        def on_failure(_src: Path, error: BaseException) -> None:  # raised below: one line, as a local run's
            errors.append(error)

    report = run_ray(
        jobs,
        config,
        spec,
        outdir=outdir,
        address=address,
        num_cpus=num_cpus,
        overwrite=overwrite,
        quiet=quiet,
        verbose=verbose,
        segment_seconds=segment_seconds,
        on_failure=on_failure,
    )
    if errors:
        raise errors[0] if isinstance(errors[0], MemcError) else MemcError(_reason(errors[0]))
    return report.status


__all__ = [
    "DEFAULT_SEGMENT_SECONDS",
    "ModelSpec",
    "RAY_MISSING",
    "convert_on_ray",
    "import_ray",
    "run_ray",
]
