"""Audio, subtitles, chapters and container tags of the source, carried into the new file.

Packets are stream-copied when the output container takes their codec; audio it cannot take is
re-encoded (AAC for MP4/MOV, Opus for WebM); subtitles it cannot take are dropped with a warning;
a container that holds video only (Y4M, raw video) gets none of them and one warning. Times are
shifted by the source video's start so they stay in sync with the new video, which starts at 0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction

import av
import av.error

from ..errors import InputError, one_line

logger = logging.getLogger(__name__)

VIDEO_ONLY_FORMATS = {"yuv4mpegpipe", "rawvideo"}
# Metadata FFmpeg writes itself or that describes the old file, not the new one.
_SKIP_METADATA = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}


class SideStreams:
    """Audio/subtitle packets from the source, muxed interleaved with the new video by time.

    Times are shifted by ``shift`` (the source video's start) so that output time 0 is the
    source video's first frame; packets that end before it are dropped.
    """

    def __init__(self, path: str, output: av.container.OutputContainer, shift: Fraction) -> None:
        try:
            self._input = av.open(path, metadata_errors="replace")  # as decode does: tags need not be UTF-8
        except (av.error.FFmpegError, ValueError, OSError) as e:
            raise InputError(f"cannot read audio/subtitles from {path}: {one_line(e)}") from e
        self._output, self._shift = output, shift
        self._path, self._dropped = path, 0
        self._routes: dict[int, tuple[av.stream.Stream, av.codec.context.CodecContext | None]] = {}
        fmt_name = output.format.name
        supported = output.supported_codecs
        streams = [s for s in self._input.streams if s.type in ("audio", "subtitle")]
        if streams and fmt_name in VIDEO_ONLY_FORMATS:
            kinds = sorted({s.type for s in streams})
            logger.warning("%s holds video only; leaving out the %s", fmt_name, " and ".join(kinds))
            streams = []
        for s in streams:
            if s.codec_context is None:  # a codec FFmpeg does not know (a damaged header): no copy, no re-encode
                logger.warning("unknown codec in %s stream %d of %s; dropping it", s.type, s.index, path)
                continue
            name = s.codec_context.codec.name
            if not supported or name in supported:
                self._routes[s.index] = (output.add_stream_from_template(s), None)
            elif s.type == "audio":
                target = _audio_fallback(fmt_name, output)
                out = output.add_stream(
                    target,
                    rate=48000 if "opus" in target else s.rate,
                    options={"strict": "experimental"} if target == "vorbis" else None,
                )
                layout = s.codec_context.layout
                out.layout = layout if layout.nb_channels <= 2 else "stereo"
                s.codec_context.thread_type = "AUTO"
                self._routes[s.index] = (out, s.codec_context)
                logger.info("%s cannot hold %s audio; re-encoding it to %s", fmt_name, name, target)
            else:
                logger.warning("%s cannot hold %s subtitles; dropping subtitle stream %d", fmt_name, name, s.index)
        self._copy_metadata()
        routed = [s for s in streams if s.index in self._routes]
        demuxed = self._input.demux(*routed) if routed else iter(())  # demux() of no streams reads them all
        self._packets: Iterator[av.Packet] = self._without_time_jumps(demuxed)
        self._pending: av.Packet | None = None

    def _copy_metadata(self) -> None:
        """Container tags and chapters (chapters shifted like the packets)."""
        for key, value in self._input.metadata.items():
            if key.lower() not in _SKIP_METADATA:
                self._output.metadata[key] = value
        chapters = []
        for ch in self._input.chapters():
            tb = ch["time_base"]
            offset = round(self._shift / tb)
            if ch["end"] - offset <= 0:
                continue
            chapters.append({**ch, "start": max(0, ch["start"] - offset), "end": ch["end"] - offset})
        if chapters:
            try:
                self._output.set_chapters(chapters)
            except (av.error.FFmpegError, ValueError, TypeError) as e:
                logger.warning("could not copy chapters: %s", one_line(e))

    def mux_until(self, time: Fraction | None) -> None:
        """Mux side packets whose (shifted) time is <= ``time``; all of them when None."""
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            stamp = _stamp(packet)
            if stamp is None:  # demuxer's end-of-stream marker
                continue
            tb = packet.time_base
            if time is not None and stamp * tb - self._shift > time:
                self._pending = packet
                return
            try:
                self._route(packet)
            except (av.error.ArgumentError, av.error.InvalidDataError) as e:
                # A damaged packet (a time stamp out of order, audio that does not decode): drop it and keep
                # converting, as ffmpeg does, rather than fail the whole video over it.
                self._drop(one_line(e))

    def _without_time_jumps(self, packets: Iterator[av.Packet]) -> Iterator[av.Packet]:
        """The packets, less any whose time jumps ahead of both neighbours in its stream (a damaged time stamp).

        Kept, such a packet would wait until the end, stretch the output to its time, and the muxer would
        refuse every packet after it as out of order. One packet per stream is held back to see the next;
        a stream's last packet has only its predecessor: an audio one more than 1 s after it is dropped too.
        """
        held: dict[int, av.Packet] = {}
        passed: dict[int, int] = {}  # time of the last packet let through, per stream
        for packet in packets:
            stamp = _stamp(packet)
            if stamp is None:  # the demuxer's end-of-stream markers
                continue
            index = packet.stream.index
            previous = held.pop(index, None)
            if previous is not None:
                time = _stamp(previous)
                if time > stamp and passed.get(index, stamp) <= stamp:
                    self._drop(f"a time stamp jumps to {float(time * previous.time_base):.3f} s")
                else:
                    passed[index] = time
                    yield previous
            held[index] = packet
        for index, packet in held.items():
            gap = (_stamp(packet) - passed.get(index, _stamp(packet))) * packet.time_base
            if packet.stream.type == "audio" and gap > 1:
                self._drop(f"the last audio packet jumps {float(gap):.3f} s ahead")
            else:
                yield packet

    def _drop(self, reason: str) -> None:
        if not self._dropped:
            logger.warning("dropping damaged audio/subtitle packets of %s (%s)", self._path, reason)
        self._dropped += 1

    def _route(self, packet: av.Packet) -> None:
        out, decoder = self._routes[packet.stream.index]
        tb = packet.time_base
        offset = round(self._shift / tb)
        start = (packet.pts if packet.pts is not None else packet.dts) - offset
        if self._shift > 0 and (start + (packet.duration or 0)) * tb <= 0:
            return  # entirely before the first video frame
        if decoder is None:
            if packet.pts is not None:
                packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
            packet.stream = out
            self._output.mux(packet)
            return
        for frame in decoder.decode(packet):
            if frame.pts is None:
                continue
            frame.pts -= offset
            frame.time_base = tb
            self._output.mux(out.encode(frame))

    def finish(self) -> None:
        """Mux everything left and flush re-encoders."""
        self.mux_until(None)
        for out, decoder in self._routes.values():
            if decoder is not None:
                for frame in decoder.decode(None):
                    if frame.pts is not None:
                        frame.pts -= round(self._shift / frame.time_base)
                    self._output.mux(out.encode(frame))
                self._output.mux(out.encode(None))

    def close(self) -> None:
        self._input.close()


def _stamp(packet: av.Packet) -> int | None:
    """A packet's time in its time base: dts, else pts."""
    return packet.dts if packet.dts is not None else packet.pts


def _audio_fallback(fmt_name: str, output: av.container.OutputContainer) -> str:
    """An audio encoder the container takes: AAC for MP4/MOV, Opus/Vorbis for WebM."""
    if fmt_name == "webm":
        return "libopus" if "libopus" in av.codecs_available else "vorbis"
    if fmt_name in ("mp4", "mov", "ipod", "3gp", "3g2", "ismv"):
        return "aac"
    return output.default_audio_codec if output.default_audio_codec != "none" else "aac"
