"""Helpers of tools/gpu_check.sh (run there, from the repository root).

python tools/gpu_check.py info                     torch, CUDA, cuDNN, PyAV versions and the device
python tools/gpu_check.py report BENCH.json OUT... the benchmarks/gpu-DATE.json record, written to each OUT
python tools/gpu_check.py profile DEVICE WxH FRAMES FILE  torch.profiler's top ops of one 24 -> 60 conversion
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def info() -> None:
    import av
    import torch

    print(
        f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}, PyAV {av.__version__}"
    )
    if torch.cuda.is_available():
        print(f"cuDNN {torch.backends.cudnn.version()}, {torch.cuda.device_count()} device(s):")
        for k in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(k)
            print(f"  cuda:{k} {props.name}, {props.total_memory / 2**30:.0f} GiB, sm_{props.major}{props.minor}")
    else:
        print("no CUDA device")
    nvenc = [c for c in ("h264_nvenc", "hevc_nvenc") if c in av.codecs_available]
    print(f"NVENC encoders in this FFmpeg: {', '.join(nvenc) or 'none'}")


def _commit() -> str:
    if os.environ.get("MEMC_COMMIT"):
        return os.environ["MEMC_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def report(outputs: str, *bench_jsons: str) -> None:
    """memc bench's JSON (one file per size) -> {"device", "commit", "rows": [one per size and
    estimator]}, written to each of the space-separated ``outputs``."""
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu (dry run)"
    keep = ("flow", "device", "encoder", "frames_in", "frames_out", "seconds", "flow_ms", "frame_ms")
    rows = [
        {
            "size": row["size"],
            "fps_in": row["fps_in"],
            "fps_out": row["fps_out"],
            "output_fps": row["output_fps"],
            "peak_gpu_mib": row["peak_gpu_mib"],
            "stages_s": row["stages_s"],
            **{k: row[k] for k in keep},
        }
        for path in bench_jsons
        for row in json.loads(Path(path).read_text())["rows"]
    ]
    record = {"device": device, "commit": _commit(), "torch": torch.__version__, "rows": rows}
    text = json.dumps(record, indent=2) + "\n"
    for out in outputs.split():
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    print(text, end="")


def profile(device: str, flow: str, size: str, frames: str, out: str) -> None:
    """One whole 24 -> 60 conversion of a generated clip under torch.profiler: the top ops as text."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from memc.bench import _write_clip
    from memc.config import ConvertConfig
    from memc.motion.interpolate import Interpolator
    from memc.pipeline import convert

    width, height = (int(v) for v in size.lower().split("x"))
    interpolator = Interpolator(device=device, flow=flow)
    cuda = interpolator.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        _write_clip(src, height, width, int(frames))
        convert(src, dst, ConvertConfig(fps=60), interpolator, overwrite=True)  # warm-up, not profiled
        with torch_profile(activities=activities) as prof:
            stats = convert(src, dst, ConvertConfig(fps=60), interpolator, overwrite=True)
    sort = "cuda_time_total" if cuda else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=30)
    head = f"# {interpolator.flow_name} on {interpolator.device}, {size}: {stats.summary()}; encoder {stats.encoder}\n"
    Path(out).write_text(head + table + "\n")
    print(head + table)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"info": info, "report": report, "profile": profile}[command](*args)
