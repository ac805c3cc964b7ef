"""stdin and stdout as file objects for FFmpeg: data moves as soon as it exists, in both directions."""

from __future__ import annotations

import os
from typing import BinaryIO


class PipeFile:
    """A standard stream handed to FFmpeg as a file object. Seekable only when the stream is a
    redirected file, never a pipe; ``StreamReader`` and ``StreamWriter`` add I/O."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream = stream
        self.name = name

    def seekable(self) -> bool:
        return self._stream.seekable()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


class StreamReader(PipeFile):
    """stdin for FFmpeg: ``read(n)`` returns what has arrived (up to n bytes) instead of waiting
    for all n, so a frame is decoded as soon as it is complete, not when 32 KiB have piled up.
    Seekable only when stdin is a file (``< in.mp4``: an MP4 index at the end needs seeking)."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream, "<stdin>")

    def read(self, size: int = -1) -> bytes:
        return self._stream.read1(size)  # type: ignore[attr-defined]


class StreamWriter(PipeFile):
    """stdout for FFmpeg: every write goes straight through (Python's buffer is flushed), so a
    reader downstream gets each frame as soon as it is muxed. A closed reader raises
    BrokenPipeError here, which ``write``/``close`` let through for the CLI to end quietly.
    Seekable only when stdout is a file (``> out.mkv`` then gets its index and duration)."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream, "<stdout>")

    def write(self, data: bytes) -> int:
        self._stream.write(data)
        self._stream.flush()
        return len(data)

    def flush(self) -> None:
        self._stream.flush()
