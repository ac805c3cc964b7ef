"""Command line: parse, validate, call the library, turn errors into one line and an exit code.

Exit codes: 0 ok, 1 error, 2 bad usage, 3 a batch where some files failed, 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP): as a shell reports a signal, 128 + N.
stdout carries video data in pipe mode; everything for people goes to stderr.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import click

from . import __version__
from .config import (
    AUTO_ESTIMATOR,
    AUTO_ESTIMATOR_CUDA,
    DEDUP_AUTO_THRESHOLD,
    DEFAULT_SCENE_THRESHOLD,
    DEFAULT_SEGMENT_SECONDS,
    DIS_PRESETS,
    ENCODER_PRESETS,
    ESTIMATORS,
    FLOW_CHOICES,
    HW_ENCODE_CHOICES,
    EncodeOptions,
)
from .errors import ExitStatus, InputError, MemcError, Terminated
from .outputs import make_parents, remove_if_empty
from .progress import progress_bar

RAY_LOCAL = "local"  # --ray without an address: $RAY_ADDRESS, else a local Ray

logger = logging.getLogger("memc")


class FpsType(click.ParamType):
    """60, 60000/1001, 59.94 (= 60000/1001), 29.97, 23.976 ..."""

    name = "FPS"

    def convert(self, value, param, ctx):
        from .timing import parse_fps

        if isinstance(value, Fraction):
            return value
        try:
            return parse_fps(value, name=f"--{param.name}" if param else "fps")
        except InputError as exc:
            self.fail(str(exc).split(": ", 1)[-1], param, ctx)


class DedupType(click.ParamType):
    """auto -> the default threshold, off -> None, a number -> that threshold in grey levels."""

    name = "auto|off|LEVELS"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, float):
            return value
        text = str(value).strip().lower()
        if text == "off":
            return None
        if text == "auto":
            return DEDUP_AUTO_THRESHOLD
        try:
            return float(text)
        except ValueError:
            self.fail(f"{value!r} is not auto, off or a number of grey levels like 6", param, ctx)


class RangeType(click.ParamType):
    """START:END -> (START, END), frame numbers."""

    name = "START:END"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            start, end = (int(v) for v in str(value).split(":"))
            if 0 <= start < end:
                return (start, end)
        except ValueError:
            pass
        self.fail(f"{value!r} is not a range of frame numbers like 0:25", param, ctx)


class SizeType(click.ParamType):
    name = "WxH"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            w, h = (int(v) for v in value.lower().split("x"))
            if w > 0 and h > 0:
                return (w, h)
        except ValueError:
            pass
        self.fail(f"{value!r} is not a size like 640x360", param, ctx)


def configure_logging(verbosity: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("memc: %(levelname)s: %(message)s"))
    root = logging.getLogger("memc")
    root.handlers[:] = [handler]
    root.setLevel(level)
    if verbosity >= 2:
        import av

        av.logging.set_level(av.logging.VERBOSE)


def verbosity_option(func: Callable) -> Callable:
    """-v/--verbose after the subcommand too (``memc convert in.mp4 --fps 60 -v``)."""
    return click.option(
        "-v", "--verbose", "verbose", count=True, help="More log detail on stderr (-vv for FFmpeg's too)."
    )(func)


def _flow_help() -> str:
    """--flow's help, from the estimator registry."""
    others = [f"{name} ({spec.summary})" for name, spec in ESTIMATORS.items() if name != AUTO_ESTIMATOR]
    auto = f"auto = {AUTO_ESTIMATOR} ({ESTIMATORS[AUTO_ESTIMATOR].summary}; {AUTO_ESTIMATOR_CUDA} on CUDA)"
    return f"Flow estimator: {auto}, " + ", ".join(others)


def common_model_options(
    func: Callable | None = None, *, flows: tuple[str, ...] = FLOW_CHOICES, multiple: bool = False
):
    """Options that choose and place the model: shared by convert, pair and eval.

    ``eval`` takes ``--flow`` several times and also accepts ``blend`` (the no-motion baseline).
    """
    if func is None:
        return lambda f: common_model_options(f, flows=flows, multiple=multiple)
    options = [
        click.option(
            "--flow",
            type=click.Choice(flows),
            multiple=multiple,
            default=("auto",) if multiple else "auto",
            show_default=True,
            help=_flow_help() + ("; repeat to compare, 'blend' is the no-motion baseline." if multiple else "."),
        ),
        click.option(
            "--dis-preset",
            type=click.Choice(DIS_PRESETS),
            default="medium",
            show_default=True,
            help="DIS speed/quality preset.",
        ),
        click.option(
            "--flow-scale",
            type=click.FloatRange(0.05, 1.0),
            default=None,
            metavar="S",
            help="Estimate flow at this fraction of the size (default: auto, long side <= 1280).",
        ),
        click.option(
            "--weights",
            type=click.Path(dir_okay=False),
            default=None,
            metavar="FILE",
            help="Weights of the learned estimator (default: $MEMC_WEIGHTS, then the shipped ones).",
        ),
        click.option("--device", default="auto", show_default=True, metavar="DEV", help="auto, cpu, cuda or cuda:N."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_interpolator(flow: str, dis_preset: str, flow_scale: float | None, weights: str | None, device: str):
    from .motion.interpolate import Interpolator

    return Interpolator(device=device, flow=flow, dis_preset=dis_preset, flow_scale=flow_scale, weights=weights)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="memc")
@click.option("-v", "--verbose", count=True, help="More log detail on stderr (-vv for FFmpeg's too).")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool) -> None:
    """memc: frame-rate conversion by motion estimation and motion compensation."""
    ctx.obj = {"verbose": verbose, "debug": debug}


def default_output(src: str, fps: Fraction | None, factor: Fraction | None) -> str:
    """``<stem>.60fps.<ext>`` (or ``.59.94fps``, ``.x2``) beside the input."""
    if fps is not None:
        tag = str(fps.numerator) if fps.denominator == 1 else f"{float(fps):.3f}".rstrip("0").rstrip(".")
        tag += "fps"
    else:
        tag = "x" + (str(factor.numerator) if factor.denominator == 1 else f"{float(factor):g}")
    path = Path(src)
    return str(path.with_name(f"{path.stem}.{tag}{path.suffix or '.mp4'}"))


@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--fps", type=FpsType(), default=None, help="Output rate: 60, 60000/1001, 59.94 (NTSC) ...")
@click.option("--factor", type=FpsType(), default=None, metavar="X", help="Output rate as a multiple of the input's.")
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="PATH",
    help="Output file, '-' for stdout, or a folder for several inputs (default: <stem>.<fps>fps.<ext>).",
)
@click.option("-y", "--overwrite", is_flag=True, help="Replace existing outputs.")
@common_model_options
@click.option(
    "--scene-detect/--no-scene-detect",
    default=True,
    show_default=True,
    help="Hold the nearest frame across scene cuts instead of blending.",
)
@click.option(
    "--scene-threshold",
    type=click.FloatRange(0.01, 1.0),
    default=DEFAULT_SCENE_THRESHOLD,
    show_default=True,
    metavar="X",
    help="Histogram distance above which a pair is a cut.",
)
@click.option(
    "--dedup",
    type=DedupType(),
    default="off",
    show_default=True,
    help="Frames that repeat the previous one (animation on twos/threes, captures with dropped frames): "
    "auto, off, or a threshold in grey levels. Repeats leave the motion timeline, so motion comes out even.",
)
@click.option(
    "--debug-dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Write pictures of the motion (flows, visibility, consistency, a contact sheet) of the frames "
    "--debug-frames names into DIR.",
)
@click.option(
    "--debug-frames",
    type=RangeType(),
    default="0:25",
    show_default=True,
    metavar="START:END",
    help="Output frame numbers [START, END) that --debug-dir draws (interpolated ones only).",
)
@click.option(
    "-c:v",
    "--codec",
    "codec",
    default="auto",
    show_default=True,
    metavar="CODEC",
    help="Video encoder: auto (see --hw-encode; else libx264, libx265 for >8-bit, libvpx-vp9 for .webm), "
    "libx264, libx265, h264_nvenc, hevc_nvenc, ffv1 ...",
)
@click.option(
    "--hw-encode",
    type=click.Choice(HW_ENCODE_CHOICES),
    default=EncodeOptions.hw_encode,
    show_default=True,
    help="With -c:v auto: NVENC (h264_nvenc, hevc_nvenc for >8-bit) when it opens on this machine, else "
    "software (auto); NVENC or an error (on); software only (off). Independent of --device. "
    "With --ray, auto means off: every segment of a file must come from the same encoder.",
)
@click.option(
    "--crf", type=click.IntRange(0, 63), default=EncodeOptions.crf, show_default=True, help="Quality (lower is better)."
)
@click.option(
    "--preset",
    type=click.Choice(ENCODER_PRESETS),
    default=EncodeOptions.preset,
    show_default=True,
    help="Encoder preset (x264/x265 names; mapped for NVENC).",
)
@click.option(
    "--out-pix-fmt", default=None, metavar="FMT", help="Output pixel format (default: the source's depth, 4:2:0)."
)
@click.option(
    "-f",
    "--format",
    "out_format",
    default=None,
    metavar="FMT",
    help="Output container (default: from the extension; yuv4mpegpipe for stdout): mp4, matroska, nut, rawvideo ...",
)
@click.option(
    "--in-format",
    default=None,
    metavar="FMT",
    help="Input format for pipes: yuv4mpegpipe (default for '-'), rawvideo, matroska ...",
)
@click.option("--size", type=SizeType(), default=None, help="Frame size of rawvideo input.")
@click.option("--pix-fmt", default=None, metavar="FMT", help="Pixel format of rawvideo input: rgb24, yuv420p ...")
@click.option("--in-fps", type=FpsType(), default=None, help="Frame rate of rawvideo input.")
@click.option(
    "--glob", "pattern", default=None, metavar="PATTERN", help="With a folder input: which files (e.g. '*.mkv')."
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value=RAY_LOCAL,
    default=None,
    metavar="[ADDRESS]",
    help="Spread the work over a Ray cluster: connect to ADDRESS (or $RAY_ADDRESS), else start a local Ray. "
    "Needs memc[ray]. Write it after the inputs, or as --ray=ADDRESS.",
)
@click.option(
    "--ray-cpus",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="CPUs of the local Ray that --ray starts (default: all); each task takes one.",
)
@click.option(
    "--segment-seconds",
    type=click.FloatRange(0),
    default=DEFAULT_SEGMENT_SECONDS,
    show_default=True,
    metavar="S",
    help="With --ray: cut files longer than this at keyframes, one task per piece (0: a task per file).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@verbosity_option
@click.pass_context
def convert(
    ctx: click.Context,
    inputs,
    fps,
    factor,
    output,
    overwrite,
    flow,
    dis_preset,
    flow_scale,
    weights,
    device,
    scene_detect,
    scene_threshold,
    dedup,
    debug_dir,
    debug_frames,
    codec,
    hw_encode,
    crf,
    preset,
    out_pix_fmt,
    out_format,
    in_format,
    size,
    pix_fmt,
    in_fps,
    pattern,
    ray_address,
    ray_cpus,
    segment_seconds,
    quiet,
    verbose,
) -> None:
    """Convert the frame rate of INPUT (a file, '-' for stdin, several files or a folder)."""
    from .config import ConvertConfig, InputOptions

    configure_logging(ctx.obj["verbose"] + verbose, quiet)
    if fps is not None and factor is not None:
        raise click.UsageError("--fps and --factor exclude each other: give one")
    if fps is None and factor is None:
        raise click.UsageError("give the output rate with --fps (e.g. --fps 60) or --factor")
    if ray_address is not None:
        # The workers choose their own device (a GPU worker its GPU); the driver may have none. Every
        # segment of a file must come from the same encoder, and "NVENC if it opens" could differ from
        # worker to worker: NVENC only when asked for (--hw-encode on, or named with -c:v).
        _check_device_name(device)
        resolved_device = device
        if hw_encode == "auto" and not codec.endswith("_nvenc"):
            hw_encode = "off"
    else:
        if ray_cpus is not None:
            raise click.UsageError("--ray-cpus goes with --ray")
        resolved_device = _device_or_fail(device)
    config = ConvertConfig(
        fps=fps,
        factor=factor,
        scene_detect=scene_detect,
        scene_threshold=scene_threshold,
        dedup=dedup,
        debug_dir=debug_dir,
        debug_frames=debug_frames,
        encode=EncodeOptions(codec=codec, crf=crf, preset=preset, pix_fmt=out_pix_fmt, hw_encode=hw_encode),
        output_format=out_format,
        input=InputOptions(format=in_format, raw_size=size, raw_pix_fmt=pix_fmt, raw_fps=in_fps),
    )
    into_folder = output not in (None, "-") and (os.path.isdir(output) or output.endswith(("/", os.sep)))
    batch = len(inputs) > 1 or any(os.path.isdir(p) for p in inputs)
    if ray_address is not None:
        _convert_on_ray(
            ctx,
            inputs,
            output,
            config,
            batch=batch,
            into_folder=into_folder,
            address=None if ray_address == RAY_LOCAL else ray_address,
            num_cpus=ray_cpus,
            overwrite=overwrite,
            pattern=pattern,
            quiet=quiet,
            verbose=ctx.obj["verbose"] + verbose > 0,
            segment_seconds=segment_seconds,
            model=dict(flow=flow, dis_preset=dis_preset, flow_scale=flow_scale, weights=weights, device=device),
        )
    if batch:
        from .batch import run_batch

        if output is None:
            raise click.UsageError("several inputs or a folder need -o OUTDIR")

        def load_model():  # once, when the first file needs it: not for a batch that is refused or all done
            return make_interpolator(flow, dis_preset, flow_scale, weights, resolved_device)

        status = run_batch(list(inputs), output, config, load_model, overwrite=overwrite, pattern=pattern, quiet=quiet)
        ctx.exit(int(status))
    src = inputs[0]
    dst = output if output is not None else ("-" if src == "-" else default_output(src, fps, factor))
    if into_folder:  # `memc convert *.mp4 -o out/` when the glob finds one file: out/<name>, as a batch names it
        if src == "-":
            raise click.UsageError("-o names a folder: give a file name for the output of a pipe")
        dst = os.path.join(output, os.path.basename(src))
    if dst == "-" and sys.stdout.isatty():
        raise InputError("refusing to write video to a terminal: give -o FILE or pipe the output")
    if src == "-" and sys.stdin.isatty():  # would wait forever for a stream nobody sends
        raise InputError(
            "no video on stdin: pipe a stream in, e.g. "
            "ffmpeg -i in.mkv -f yuv4mpegpipe - | memc convert - --fps 60 -o out.mp4"
        )
    from .outputs import check_output
    from .pipeline import convert as run_convert

    created = make_parents(Path(dst)) if into_folder else []  # as a batch would: -o out/ may be new
    try:
        check_output(dst, overwrite, inputs=(src,))  # before loading any model
        interpolator = make_interpolator(flow, dis_preset, flow_scale, weights, resolved_device)
        logger.info("flow estimator: %s on %s", interpolator.flow_name, interpolator.device)
        with progress_bar(quiet, src) as factory:
            stats = run_convert(src, dst, config, interpolator, overwrite=overwrite, progress_factory=factory)
    except BaseException:
        remove_if_empty(created)  # no empty folder left by a failure
        raise
    if not quiet:
        click.echo(f"memc: {src} -> {dst}: {stats.summary()}", err=True)


def _device_or_fail(device: str):
    from .motion.interpolate import resolve_device

    return resolve_device(device)


def _check_device_name(device: str) -> None:
    """``--ray``: the driver only names the device; each worker resolves it on its own machine."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise InputError(f"--device: {device!r} is not a device (use auto, cpu, cuda or cuda:N)")


def _convert_on_ray(
    ctx: click.Context, inputs, output, config, *, batch: bool, into_folder: bool, model: dict, **options
) -> None:
    """``--ray``: the batch, or the one file, on a Ray cluster (``distributed``); exits with its status."""
    from .distributed import ModelSpec, convert_on_ray, import_ray

    address = options.get("address")
    if address is not None and os.path.exists(address):
        raise click.UsageError(
            f"--ray took {address!r} for the Ray address: write --ray after the inputs, or --ray=ADDRESS"
        )
    import_ray()  # the one-line hint before anything else when Ray is missing
    if batch:
        if output is None:
            raise click.UsageError("several inputs or a folder need -o OUTDIR")
        status = convert_on_ray(inputs, output, config, ModelSpec(**model), batch=True, **options)
        ctx.exit(int(status))
    src = inputs[0]
    if src == "-" or output == "-":
        raise InputError("--ray converts files: a pipe ('-') runs locally, without --ray")
    dst = output if output is not None else default_output(src, config.fps, config.factor)
    created = []
    if into_folder:
        dst = os.path.join(output, os.path.basename(src))
        created = make_parents(Path(dst))
    try:
        status = convert_on_ray([src], dst, config, ModelSpec(**model), batch=False, **options)
    except BaseException:
        remove_if_empty(created)
        raise
    ctx.exit(int(status))


def _parse_times(text: str) -> list[float]:
    try:
        times = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a list of times like 0.5 or 0.25,0.5,0.75", param_hint="-t"
        ) from None
    if not times or any(not 0 <= x <= 1 for x in times):
        raise click.BadParameter(f"{text!r}: every t must be in [0, 1]", param_hint="-t")
    return times


@cli.command()
@click.argument("image0", type=click.Path(exists=True, dir_okay=False))
@click.argument("image1", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-t", "times", default="0.5", show_default=True, metavar="T[,T...]", help="Time(s) in [0, 1] between the images."
)
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="PATH",
    help="Output image; with several t a pattern with {t} or {i} (e.g. mid_{i}.png).",
)
@click.option("-y", "--overwrite", is_flag=True, help="Replace existing outputs.")
@common_model_options
@click.option(
    "--debug-dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Also write pictures of the motion (flows, visibility, consistency, a contact sheet) into DIR.",
)
@verbosity_option
@click.pass_context
def pair(
    ctx, image0, image1, times, output, overwrite, flow, dis_preset, flow_scale, weights, device, debug_dir, verbose
) -> None:
    """Interpolate between two images IMAGE0 and IMAGE1 (for evaluation and debugging)."""
    from .io.images import read_image, write_image
    from .motion.pictures import frame_with_pictures
    from .outputs import check_output
    from .tensors import to_image, to_tensor

    configure_logging(ctx.obj["verbose"] + verbose, False)
    ts = _parse_times(times)
    if len(ts) > 1 and "{t}" not in output and "{i}" not in output:
        raise click.BadParameter("with several t, the output needs {t} or {i} in its name", param_hint="-o")
    names = [output.format(t=f"{t:g}", i=i) for i, t in enumerate(ts)]
    for name in names:
        check_output(name, overwrite, inputs=(image0, image1))
    a, b = read_image(image0), read_image(image1)
    if a.shape != b.shape:
        raise InputError(f"images differ in size: {a.shape[1]}x{a.shape[0]} and {b.shape[1]}x{b.shape[0]}")
    interpolator = make_interpolator(flow, dis_preset, flow_scale, weights, device)
    a_t, b_t = to_tensor(a, interpolator.device), to_tensor(b, interpolator.device)
    flows = interpolator.flows(a_t, b_t) if any(0 < t < 1 for t in ts) else None  # once for every t
    if debug_dir is not None:
        os.makedirs(debug_dir, exist_ok=True)
    for name, t in zip(names, ts):
        if debug_dir is not None and 0 < t < 1:
            frame = frame_with_pictures(interpolator, debug_dir, Path(name).stem, a_t, b_t, flows, t)
        else:
            frame = interpolator.frame(a_t, b_t, flows, t)
        write_image(name, to_image(frame, a.dtype))
        click.echo(f"memc: wrote {name}", err=True)
    if debug_dir is not None:
        click.echo(f"memc: pictures of the motion in {debug_dir}", err=True)


@cli.command("eval")
@click.argument("folder", type=click.Path(exists=True, file_okay=False), metavar="DIR", required=False)
@common_model_options(flows=FLOW_CHOICES + ("blend",), multiple=True)
@click.option("--clips", default=None, metavar="A,B", help="Only these clips (file stems).")
@click.option("--max-pairs", type=click.IntRange(1), default=None, metavar="N", help="At most N input pairs per clip.")
@click.option(
    "--scale",
    type=click.FloatRange(0.05, 1.0),
    default=1.0,
    show_default=True,
    metavar="S",
    help="Downscale frames by S before interpolating and scoring (quick checks).",
)
@click.option(
    "--hard-motion",
    is_flag=True,
    help="Score the synthetic hard-motion suite (small fast objects, crossing, rotating, thin) instead of DIR.",
)
@click.option(
    "--seeds",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    metavar="N",
    help="Scenes of each kind in the hard-motion suite.",
)
@click.option(
    "--textures",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    metavar="DIR",
    help="Background photos for the hard-motion suite (default: ../shared/data/textures if present).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@click.pass_context
def eval_(
    ctx,
    folder,
    flow,
    dis_preset,
    flow_scale,
    weights,
    device,
    clips,
    max_pairs,
    scale,
    hard_motion,
    seeds,
    textures,
    as_json,
    quiet,
) -> None:
    """Score interpolation on held-out frames of the clips in DIR (manifest protocol, else stride 2, t = 0.5),
    or on the synthetic hard-motion suite (--hard-motion): PSNR full frame and over the moving objects."""
    import json

    import torch

    from .evaluate import blend, evaluate, interpolator_predictor

    configure_logging(ctx.obj["verbose"], quiet)
    resolved_device = _device_or_fail(device)
    predictors = {}
    for name in dict.fromkeys(flow):  # keep order, drop repeats
        if name == "blend":
            predictors["blend"] = blend
            continue
        interpolator = make_interpolator(name, dis_preset, flow_scale, weights, resolved_device)
        label = interpolator.flow_name if name == "auto" else name
        predictors[label] = interpolator_predictor(interpolator)
    if hard_motion:
        from .hard_motion import default_textures, evaluate_hard_motion, table

        photos = sorted(Path(textures).glob("*.jpg")) if textures else default_textures()
        with torch.inference_mode():
            results = evaluate_hard_motion(predictors, seeds=seeds, textures=photos, device=resolved_device)
        click.echo(json.dumps(results, indent=2) if as_json else table(results))
        return
    if folder is None:
        raise click.UsageError("give DIR (a folder of clips) or --hard-motion")
    progress = None if quiet else (lambda clip: click.echo(f"memc: eval {clip}", err=True))
    with torch.inference_mode():
        report = evaluate(
            folder,
            predictors,
            clips=clips.split(",") if clips else None,
            max_pairs=max_pairs,
            scale=scale,
            device=resolved_device,
            progress=progress,
        )
    click.echo(json.dumps(report.summary(), indent=2) if as_json else report.table())


@cli.command("train")
@click.argument("config", type=click.Path(exists=True, dir_okay=False), metavar="CONFIG")
@click.pass_context
def train_(ctx, config) -> None:
    """Train the learned estimator from a JSON CONFIG (resumes its run folder; see memc/train/loop.py)."""
    from .train import main as train_main

    ctx.exit(train_main([config]))


@cli.command()
@click.option(
    "--size",
    "sizes",
    type=SizeType(),
    multiple=True,
    default=("640x360", "1280x720"),
    show_default=True,
    help="Frame size; repeat for several.",
)
@click.option(
    "--flow",
    "flows",
    type=click.Choice(FLOW_CHOICES),
    multiple=True,
    default=("auto",),
    show_default=True,
    help="Estimator; repeat for several.",
)
@click.option("--device", default="auto", show_default=True, metavar="DEV", help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--full/--no-full",
    default=True,
    show_default=True,
    help="Also time a whole convert end to end (decode + convert + encode): output fps, seconds per stage, "
    "peak GPU memory.",
)
@click.option(
    "--frames",
    type=click.IntRange(2),
    default=48,
    show_default=True,
    metavar="N",
    help="Source frames (24 fps) of the clip the whole convert is timed on.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench(sizes, flows, device, full, frames, as_json) -> None:
    """Print a speed table: output frames per second by size and estimator, and of a whole 24 -> 60
    convert (decode + convert + encode) with the seconds of each stage and the peak GPU memory.
    E.g. memc bench --device cuda --size 1920x1080 --size 3840x2160 --json"""
    from .bench import run

    configure_logging(0, True)
    run(list(sizes), list(flows), _device_or_fail(device), full, as_json, frames)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to one line on stderr and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    previous = _raise_on_termination()
    try:
        code = cli.main(args=argv, prog_name="memc", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("memc: interrupted", err=True)
        code = ExitStatus.INTERRUPTED
    except KeyboardInterrupt:
        click.echo("memc: interrupted", err=True)
        code = ExitStatus.INTERRUPTED
    except Terminated as exc:
        click.echo(f"memc: stopped by {signal.Signals(exc.signum).name}", err=True)
        code = 128 + exc.signum
    except BrokenPipeError:
        # The reader went away: stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = ExitStatus.ERROR
    except MemcError as exc:
        if debug:
            raise
        click.echo(f"memc: error: {exc}", err=True)
        code = exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug:
            raise
        click.echo(f"memc: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        code = ExitStatus.ERROR
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    sys.exit(int(code or 0))


def _raise_on_termination() -> dict[int, object]:
    """Turn SIGTERM and SIGHUP (``timeout``, ``kill``, ``docker stop``, a closed terminal) into
    ``Terminated`` in the main thread, so temporary files go as they do on Ctrl-C. Returns the
    handlers it replaced (none when not in the main thread, where Python cannot set them)."""

    def stop(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous: dict[int, object] = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:  # Windows has no SIGHUP
            continue
        try:
            previous[signum] = signal.signal(signum, stop)
        except ValueError:  # not the main thread
            break
    return previous
