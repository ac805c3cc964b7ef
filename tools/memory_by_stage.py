#!/usr/bin/env python3
"""Where a CPU conversion's memory goes: the working memory of each stage of one source pair.

    python tools/memory_by_stage.py examples/bigbuckbunny.mp4 --size 1280x720

For the first frames of CLIP (scaled to ``--size``) it runs each stage of the CPU path alone, on one
thread, and prints, per stage, the peak resident memory above what was resident before the call
(the kernel's VmHWM, reset before each call) and what the call leaves behind (its result). The
stages: ``motion`` (DIS, block search, still mask), ``pair_flows`` (consistency, importances,
projection grid) and ``frame`` (projection to t, blend weight, warp and blend of one output frame).

A whole conversion runs them in two threads at once and holds the results of a few pairs, next to
the libraries (torch alone is ~215 MB resident) and the encoder (libx264 at preset medium holds
~200 MB at 720p, ~400 MB at 1080p). Run it with ``MALLOC_MMAP_THRESHOLD_=65536`` in the
environment so that freed blocks go back to the system at once and each row measures its own stage,
not what glibc kept from the one before; the script says so when it is missing. Linux only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _status(key: str) -> int:
    """A /proc/self/status field in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    raise KeyError(key)


def _reset_peak() -> None:
    """Start VmHWM again from the current resident size (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def measure(call):
    """(result, peak MB above the start, MB left resident) of ``call()``."""
    before = _status("VmRSS")
    _reset_peak()
    result = call()
    return result, _status("VmHWM") - before, _status("VmRSS") - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip")
    parser.add_argument("--size", default=None, help="WxH to scale the frames to (default: the clip's)")
    parser.add_argument("--flow", default="auto", help="memc --flow (default: auto)")
    parser.add_argument("--t", type=float, default=0.4, help="time of the output frame (default: 0.4)")
    args = parser.parse_args()
    if not Path("/proc/self/clear_refs").exists():
        sys.exit("memory_by_stage: needs Linux (/proc/self/clear_refs)")
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        print("note: without MALLOC_MMAP_THRESHOLD_=65536 freed memory stays resident: rows overlap\n")

    import av
    import cv2
    import numpy as np
    import torch

    from memc.motion.interpolate import Interpolator
    from memc.tensors import to_tensor

    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # DIS and remap too: one thread's working memory
    with av.open(args.clip) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 3:
                break
    if len(frames) < 3:
        sys.exit(f"memory_by_stage: {args.clip} has fewer than 3 frames")
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
        frames = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]
    h, w = frames[0].shape[:2]
    interpolator = Interpolator(device="cpu", flow=args.flow)
    tensors = [to_tensor(f, "cpu") for f in frames]
    # the first pair warms up what is allocated once (DIS buffers, thread pools); the second is measured
    interpolator.frame_array(*tensors[:2], interpolator.flows(*tensors[:2]), args.t, np.uint8)
    a, b = tensors[1], tensors[2]
    motion, motion_peak, motion_kept = measure(lambda: interpolator.motion(a, b))
    flows, flows_peak, flows_kept = measure(motion.pair_flows)
    _, frame_peak, frame_kept = measure(lambda: interpolator.frame_array(a, b, flows, args.t, np.uint8))
    print(f"{w}x{h}, --flow {interpolator.flow_name}, one thread; MB above the resident size before each call\n")
    print("| stage | peak working memory | left resident |")
    print("|---|---:|---:|")
    for name, peak, kept in (
        ("motion (one pair)", motion_peak, motion_kept),
        ("pair_flows (one pair)", flows_peak, flows_kept),
        (f"frame (t = {args.t})", frame_peak, frame_kept),
    ):
        print(f"| {name} | {peak} MB | {kept} MB |")
    print(f"\nprocess resident now: {_status('VmRSS')} MB (a {w}x{h} float32 RGB frame: {h * w * 12 >> 20} MB)")


if __name__ == "__main__":
    main()
