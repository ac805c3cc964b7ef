#!/usr/bin/env bash
# One-shot device check of memc on a bare CUDA machine (H100/H200 class) that has torch, numpy,
# opencv, click and tqdm but not PyAV (nor pytest), and no network. Not yet run on a GPU.
#
# Beforehand, on a machine with network (wheels go in .whl/, which git ignores):
#     tools/fetch_gpu_wheels.sh
#   which runs, for the PyAV version installed there (and pytest with its dependencies):
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#         -d .whl av==<version>
# Then on the GPU machine, from the repository root, with .whl/ beside it (carried, it is ignored):
#     tools/gpu_check.sh
# It installs the wheels into /tmp/site (only if `import av` or `import pytest` fails), prints
# nvidia-smi and the torch/CUDA versions, runs the gpu tests, `memc bench --device cuda` at 1080p
# and 4K, and writes benchmarks/gpu-DATE.json ({"device", "commit", "rows": [...]}) plus
# profile.txt (torch.profiler's top ops of one 1080p conversion) into $OUT when set, and benchmarks/.
# Every step is bounded with `timeout` (8 minutes in all); a failed step does not stop the others.
#
# Dry run on a CPU (no wheels needed when PyAV is installed):
#     MEMC_GPU_CHECK_DEVICE=cpu MEMC_GPU_CHECK_SIZES=320x180 tools/gpu_check.sh
#     (add MEMC_GPU_CHECK_PROFILE_FRAMES=6 there: the profiler is slow on a CPU)
# Knobs: MEMC_GPU_CHECK_WHEELS=1 (install the wheels even when PyAV imports), MEMC_GPU_CHECK_FLOWS (default "auto"; e.g. "auto torch"), MEMC_GPU_CHECK_FRAMES (48 source
# frames per bench convert), MEMC_GPU_CHECK_PROFILE_FRAMES (24), MEMC_COMMIT (the commit to record
# when the copy has no .git).
set -u
cd "$(dirname "$0")/.."
DEVICE=${MEMC_GPU_CHECK_DEVICE:-cuda}
SIZES=${MEMC_GPU_CHECK_SIZES:-1920x1080 3840x2160}
FLOWS=${MEMC_GPU_CHECK_FLOWS:-auto}
FRAMES=${MEMC_GPU_CHECK_FRAMES:-48}
PROFILE_FRAMES=${MEMC_GPU_CHECK_PROFILE_FRAMES:-24}
OUT_DIR=${OUT:-}
STAMP=$(date +%F)
status=0
step() { echo; echo "== $* =="; }
fail() { echo "gpu_check: $*" >&2; status=1; }

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MEMC_WEIGHTS="$PWD/weights/learned.pt"  # from the source tree the package's weights/ is not memc/weights
if [ -n "${MEMC_GPU_CHECK_WHEELS:-}" ] || ! python3 -c "import av, pytest" 2>/dev/null; then
    step "installing wheels from .whl/"
    ls .whl/*.whl >/dev/null 2>&1 || { echo "gpu_check: no .whl/*.whl: run tools/fetch_gpu_wheels.sh first" >&2; exit 1; }
    timeout 30 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || { echo "gpu_check: wheel install failed" >&2; exit 1; }
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
    python3 -c "import av, pytest" || { echo "gpu_check: PyAV or pytest still missing" >&2; exit 1; }
fi

step "device"
if command -v nvidia-smi >/dev/null; then timeout 15 nvidia-smi || fail "nvidia-smi failed"; else echo "no nvidia-smi"; fi
timeout 30 python3 tools/gpu_check.py info || fail "torch/CUDA info failed"

step "tests marked gpu"
tmp=$(mktemp -d)
timeout 140 python3 -m pytest -q -p no:randomly -p no:cacheprovider -m gpu tests/test_gpu.py 2>&1 | tee "$tmp/gpu_tests.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "gpu tests failed (or timed out)"

step "memc bench --device $DEVICE"
flow_args=()
for flow in $FLOWS; do flow_args+=(--flow "$flow"); done
set -- $SIZES
per_size=$((170 / $#))  # one bench per size, so a slow 4K run cannot lose the 1080p row
benches=()
for size in "$@"; do
    if timeout "$per_size" python3 -m memc bench --device "$DEVICE" --size "$size" "${flow_args[@]}" \
        --frames "$FRAMES" --json >"$tmp/bench-$size.json"; then
        benches+=("$tmp/bench-$size.json")
    else
        fail "bench at $size failed (or ran past ${per_size}s)"
    fi
done
if [ "${#benches[@]}" -gt 0 ]; then
    name="gpu-$STAMP.json"
    [[ "$DEVICE" == cuda* ]] || name="gpu-$STAMP-dryrun-$DEVICE.json"  # never mistaken for a GPU record
    targets=("benchmarks/$name")
    [ -n "$OUT_DIR" ] && targets+=("$OUT_DIR/$name")
    timeout 15 python3 tools/gpu_check.py report "${targets[*]}" "${benches[@]}" || fail "report failed"
fi

profile_size=${SIZES%% *}
step "torch.profiler: one $profile_size conversion"
timeout 60 python3 tools/gpu_check.py profile "$DEVICE" "${FLOWS%% *}" "$profile_size" "$PROFILE_FRAMES" "$tmp/profile.txt" || fail "profile failed"

if [ -n "$OUT_DIR" ]; then
    mkdir -p "$OUT_DIR"
    cp "$tmp"/* "$OUT_DIR"/ 2>/dev/null
fi
rm -rf "$tmp"
echo
[ "$status" -eq 0 ] && echo "gpu_check: done" || echo "gpu_check: done, with failures (above)"
exit "$status"
