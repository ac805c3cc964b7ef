"""Make and read small test clips with PyAV (no ffmpeg CLI needed)."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import av
import numpy as np


def write_clip(
    path,
    frames: Iterable[np.ndarray],
    fps=24,
    *,
    codec="libx264",
    pix_fmt="yuv420p",
    audio_seconds: float | None = None,
    sample_rate=48000,
    options=None,
) -> None:
    """Encode RGB frames (uint8, or uint16 for 10-bit pix_fmts); optionally a 440 Hz AAC track."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream(
            codec,
            rate=Fraction(fps),
            options=options or ({"preset": "ultrafast", "crf": "12"} if codec in ("libx264", "libx265") else {}),
        )
        video.width, video.height, video.pix_fmt = w, h, pix_fmt
        if codec == "libx265":
            video.options = {**video.options, "x265-params": "log-level=error"}
        audio = out.add_stream("aac", rate=sample_rate) if audio_seconds else None
        if audio is not None:
            audio.layout = "mono"
        for k, rgb in enumerate(frames):
            fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
            frame = av.VideoFrame.from_ndarray(rgb, format=fmt)
            frame.pts = k
            frame.time_base = 1 / Fraction(fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            n = round(audio_seconds * sample_rate)
            for start in range(0, n, 1024):
                count = min(1024, n - start)
                tone = np.sin(2 * np.pi * 440 * np.arange(start, start + count) / sample_rate).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = sample_rate, start
                out.mux(audio.encode(frame))
            out.mux(audio.encode(None))


def probe(path) -> dict:
    """Rate, frame count, durations (seconds) and pixel format, decoding every frame to count them."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = [f for f in container.decode(video)]
        result = {
            "rate": video.average_rate,
            "frames": len(frames),
            "pix_fmt": video.codec_context.pix_fmt,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "video_duration": float(frames[-1].pts * video.time_base + Fraction(1) / video.average_rate)
            - float(frames[0].pts * video.time_base),
        }
        audio = container.streams.audio[0] if container.streams.audio else None
        if audio is not None:
            result["audio_duration"] = float(audio.duration * audio.time_base) if audio.duration else None
        return result


def decode_rgb(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
