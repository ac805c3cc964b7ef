#!/usr/bin/env bash
# Convert every video under a folder to 60 fps, mirroring its layout into another folder.
#
#   examples/batch.sh [IN_DIR [OUT_DIR [memc options...]]]     (default: examples/ -> ./60fps)
#   e.g. examples/batch.sh ~/clips ~/clips-60 --glob '*.mkv' --flow dis
#
# Rerun it after an interruption: finished outputs are skipped, the rest is converted.
# Exit status: 0 all converted, 3 some files failed (each named on stderr), 1 nothing could start.
set -euo pipefail

IN="${1:-$(dirname "$0")}"
OUT="${2:-60fps}"
shift $(( $# < 2 ? $# : 2 ))

memc convert "$IN" --fps 60 -o "$OUT" "$@"
