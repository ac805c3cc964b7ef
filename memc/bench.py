"""``memc bench``: speed of the interpolation path, as a table (no timed tests anywhere else).

For each size it times what one source pair costs in a 24 -> 60 fps conversion: the flows once,
then 2.5 frames on average (t = 0.4, 0.8 | 0.2, 0.6), and reports output frames per second of
the interpolation stage (decode and encode not included); with ``--full`` (the default) also of a
whole ``convert`` of a generated clip, end to end (decode + convert + encode), with the seconds
of each stage (``stages``) and the peak GPU memory.
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .motion.interpolate import Interpolator


def _moving_texture(height: int, width: int, frames: int, seed: int = 0) -> list[np.ndarray]:
    """A smooth random texture panning 4 px/frame right and 1 px/frame down."""
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(
        rng.random((height + 4 * frames + 8, width + 4 * frames + 8, 3)).astype(np.float32), (0, 0), 3
    )
    big = (big - big.min()) / (big.max() - big.min())
    return [(big[k : k + height, 4 * k : 4 * k + width] * 255).astype(np.uint8) for k in range(frames)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_stages(interpolator: Interpolator, height: int, width: int, repeats: int = 3) -> tuple[float, float]:
    """Median seconds of the flows of one pair and of one synthesized frame (projection + synthesis),
    each as ``convert`` makes them on the interpolator's device."""
    a, b = _moving_texture(height, width, 2)
    ta = torch.from_numpy(a).permute(2, 0, 1)[None].float().div(255).to(interpolator.device)
    tb = torch.from_numpy(b).permute(2, 0, 1)[None].float().div(255).to(interpolator.device)
    flow_s, frame_s = [], []
    for k in range(repeats + 1):  # the first round is a warm-up
        _sync(interpolator.device)
        start = time.perf_counter()
        flows = interpolator.flows(ta, tb)
        _sync(interpolator.device)
        middle = time.perf_counter()
        if interpolator.device.type == "cpu":  # as convert makes it there: the 8-bit array path
            interpolator.frame_array(ta, tb, flows, 0.4, a.dtype)
        else:
            interpolator.frame(ta, tb, flows, 0.4)
        _sync(interpolator.device)
        if k:
            flow_s.append(middle - start)
            frame_s.append(time.perf_counter() - middle)
    return statistics.median(flow_s), statistics.median(frame_s)


def _write_clip(path: Path, height: int, width: int, frames: int) -> None:
    """A 24 fps H.264 clip of the moving texture: what a conversion usually decodes."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24, options={"preset": "ultrafast", "crf": "16"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for k, rgb in enumerate(_moving_texture(height, width, frames)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = k
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def time_convert(interpolator: Interpolator, height: int, width: int, frames: int = 48) -> dict:
    """A whole 24 -> 60 ``convert`` of a generated clip (decode + convert + encode, the default
    encoder: NVENC when it opens, else libx264 medium), twice: with the stage timer (which
    synchronises the device) for the seconds per stage, then untimed for the output frames per second."""
    from .config import ConvertConfig
    from .pipeline import convert
    from .stages import StageTimer

    device = interpolator.device
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        _write_clip(src, height, width, frames)
        config = ConvertConfig(fps=60)
        timer = StageTimer(device)  # the timed run first: it also warms up what the untimed one then uses
        timed = convert(src, dst, config, interpolator, overwrite=True, timer=timer)
        stats = convert(src, dst, config, interpolator, overwrite=True)
    return {
        "fps_in": 24,
        "fps_out": 60,
        "frames_in": stats.source_frames,
        "frames_out": stats.output_frames,
        "encoder": stats.encoder,
        "output_fps": round(stats.output_frames / stats.seconds, 2),
        "seconds": round(stats.seconds, 3),
        "stages_s": {name: round(seconds, 3) for name, seconds in timer.seconds.items()},
        "timed_seconds": round(timed.seconds, 3),
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if cuda else None,
    }


def run(
    sizes: list[tuple[int, int]], flows: list[str], device: str, full: bool, as_json: bool, frames: int = 48
) -> list[dict]:
    """Time each estimator at each size; print a table (or JSON) and return the rows."""
    rows = []
    for flow in flows:
        interpolator = Interpolator(device=device, flow=flow)
        for width, height in sizes:
            flow_s, frame_s = time_stages(interpolator, height, width)
            # 24 -> 60: per source pair 2.5 output frames, 2 of them synthesized, flows once
            row = {
                "flow": interpolator.flow_name,
                "device": str(interpolator.device),
                "size": f"{width}x{height}",
                "flow_ms": round(flow_s * 1000, 1),
                "frame_ms": round(frame_s * 1000, 1),
                "fps_24_to_60": round(2.5 / (flow_s + 2 * frame_s), 2),
            }
            if full:
                row.update(time_convert(interpolator, height, width, frames))
            rows.append(row)
    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "gpu": _gpu_name(rows),
    }
    if as_json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return rows
    _print_tables(rows, meta, full)
    return rows


def _gpu_name(rows: list[dict]) -> str | None:
    cuda = [r["device"] for r in rows if r["device"].startswith("cuda")]
    return torch.cuda.get_device_name(torch.device(cuda[0])) if cuda else None


def _print_tables(rows: list[dict], meta: dict, full: bool) -> None:
    head = f"{'flow':8} {'device':6} {'size':>10} {'flow ms':>9} {'frame ms':>9} {'24->60 fps':>11}"
    print(head + (f" {'e2e fps':>9} {'peak MiB':>9}  encoder" if full else ""))
    for r in rows:
        line = (
            f"{r['flow']:8} {r['device']:6} {r['size']:>10} {r['flow_ms']:>9.1f} {r['frame_ms']:>9.1f} "
            f"{r['fps_24_to_60']:>11.2f}"
        )
        if full:
            peak = "-" if r["peak_gpu_mib"] is None else f"{r['peak_gpu_mib']:.0f}"
            line += f" {r['output_fps']:>9.2f} {peak:>9}  {r['encoder']}"
        print(line)
    print(
        f"# torch {meta['torch']}, {meta['threads']} threads, {meta['cpu']}"
        + (f", {meta['gpu']}" if meta["gpu"] else "")
        + ". flow ms: both flows of a pair; frame ms: projection + synthesis of one frame; 24->60 fps: output "
        "frames/s of the interpolation (2.5 per pair)"
        + ("; e2e fps: a whole 24->60 convert of a generated H.264 clip, decode and encode included" if full else "")
    )
    if not full:
        return
    names = list(rows[0]["stages_s"])
    print(f"\n{'flow':8} {'size':>10} {'frames':>7} " + " ".join(f"{n:>9}" for n in names) + f" {'wall':>7}")
    for r in rows:
        stages = " ".join(f"{r['stages_s'][n]:>9.2f}" for n in names)
        print(f"{r['flow']:8} {r['size']:>10} {r['frames_out']:>7} {stages} {r['timed_seconds']:>7.2f}")
    print(
        "# seconds per stage of the timed convert (device synchronised at each stage's end, so its wall time "
        "is above the untimed one); decode and encode run in their own threads, so stages overlap. colour: "
        "RGB -> YUV and download on CUDA (on a CPU swscale does it inside encode)"
    )
