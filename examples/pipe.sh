#!/usr/bin/env bash
# memc as a filter between two ffmpegs: ffmpeg decodes anything to YUV4MPEG2, memc makes it
# 60 fps, ffmpeg encodes it and takes the audio from the original. Nothing touches the disk in
# between, frames flow through as they are made, and 10-bit stays 10-bit (C420p10).
#
#   examples/pipe.sh [INPUT [OUTPUT [memc options...]]]   (default: the sample clip -> ./bigbuckbunny.60fps.mp4)
set -euo pipefail

IN="${1:-$(dirname "$0")/bigbuckbunny.mp4}"
OUT="${2:-bigbuckbunny.60fps.mp4}"
shift $(( $# < 2 ? $# : 2 ))

ffmpeg -hide_banner -loglevel error -i "$IN" -map 0:v:0 -strict -1 -f yuv4mpegpipe - \
  | memc convert - --fps 60 -o - "$@" \
  | ffmpeg -hide_banner -loglevel error -y -f yuv4mpegpipe -i - -i "$IN" -map 0:v -map '1:a?' \
      -c:v libx264 -crf 18 -c:a copy "$OUT"
