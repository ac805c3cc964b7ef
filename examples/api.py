"""memc from Python: load the model once, convert clips to 60 fps, make one in-between image.

    python examples/api.py [INPUT] [OUTPUT]     (default: the sample clip -> bigbuckbunny.60fps.mp4)

Set MEMC_FLOW to choose the flow estimator: auto (the default, dis-bm: DIS plus block search),
dis (OpenCV's DIS alone, fastest) or learned (the shipped model).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import av

from memc import Interpolator, convert


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("bigbuckbunny.mp4")
    dst = Path(argv[2]) if len(argv) > 2 else Path(f"{src.stem}.60fps.mp4")

    # The model loads once here; pass it to every convert() call of a batch.
    interpolator = Interpolator(device="auto", flow=os.environ.get("MEMC_FLOW", "auto"))
    stats = convert(src, dst, fps=60, interpolator=interpolator, overwrite=True)
    print(f"{src} -> {dst}: {stats.summary()}", file=sys.stderr)

    # The same interpolator on two images (H x W x 3 uint8 arrays): the frame halfway between.
    with av.open(str(src)) as container:
        frames = container.decode(video=0)
        image0, image1 = (next(frames).to_ndarray(format="rgb24") for _ in range(2))
    middle = interpolator.interpolate(image0, image1, 0.5)
    print(f"middle frame: {middle.shape[1]}x{middle.shape[0]}, mean {middle.mean():.1f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
