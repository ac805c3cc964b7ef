"""``memc bench``: speed of the interpolation path, as a table (no timed tests anywhere else).

For each size it times what one source pair costs in a 24 -> 60 fps conversion: the flows once,
then 2.5 frames on average (t = 0.4, 0.8 | 0.2, 0.6), and reports output frames per second of
the interpolation stage (decode and encode not included) and of a whole ``convert`` of a
generated clip (with libx264 encoding).
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
    """Median seconds of the flows of one pair and of one synthesized frame (projection + synthesis)."""
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
        interpolator.frame(ta, tb, flows, 0.4)
        _sync(interpolator.device)
        if k:
            flow_s.append(middle - start)
            frame_s.append(time.perf_counter() - middle)
    return statistics.median(flow_s), statistics.median(frame_s)


def time_convert(interpolator: Interpolator, height: int, width: int, frames: int = 24) -> float:
    """Output frames per second of a whole 24 -> 60 ``convert`` of a generated clip."""
    import av

    from .config import ConvertConfig, EncodeOptions
    from .pipeline import convert

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.mkv", Path(tmp) / "out.mp4"
        with av.open(str(src), "w") as out:
            stream = out.add_stream("ffv1", rate=24)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for k, rgb in enumerate(_moving_texture(height, width, frames)):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = k
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        stats = convert(src, dst, ConvertConfig(fps=60, encode=EncodeOptions(preset="medium")), interpolator)
        return stats.output_frames / stats.seconds


def run(sizes: list[tuple[int, int]], flows: list[str], device: str, full: bool, as_json: bool) -> list[dict]:
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
                row["convert_fps"] = round(time_convert(interpolator, height, width), 2)
            rows.append(row)
    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    if as_json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return rows
    head = f"{'flow':8} {'device':6} {'size':>10} {'flow ms':>9} {'frame ms':>9} {'24->60 fps':>11}"
    print(head + (f" {'convert fps':>12}" if full else ""))
    for r in rows:
        line = (
            f"{r['flow']:8} {r['device']:6} {r['size']:>10} {r['flow_ms']:>9.1f} {r['frame_ms']:>9.1f} "
            f"{r['fps_24_to_60']:>11.2f}"
        )
        print(line + (f" {r['convert_fps']:>12.2f}" if full else ""))
    print(
        f"# torch {meta['torch']}, {meta['threads']} threads, {meta['cpu']}. flow ms: both flows of a pair; "
        "frame ms: projection + synthesis of one frame; 24->60 fps: output frames/s of the interpolation "
        "(2.5 per pair); convert fps: a whole 24->60 convert with decode and libx264 encode"
    )
    return rows
