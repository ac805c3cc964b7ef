#!/usr/bin/env bash
# Fetch, on a machine with network, the wheels tools/gpu_check.sh installs on a GPU machine that has
# none: PyAV (the version installed here) and pytest with its dependencies (pure Python). They go in
# .whl/ at the repository root, which git ignores (never commit them). Run from anywhere in the repo:
#
#     tools/fetch_gpu_wheels.sh             # for Python 3.12 on x86_64 Linux
#     PYVER=3.11 tools/fetch_gpu_wheels.sh  # for another Python on the GPU machine
#
# memc itself is not among them: gpu_check.sh runs it from the source tree (PYTHONPATH). torch,
# numpy, opencv, click and tqdm are expected on the GPU machine already.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
if ! git check-ignore -q .whl/x.whl; then  # .gitignore has it; else the local exclude file gets it
    exclude=$(git rev-parse --git-path info/exclude)  # a worktree's .git is a file: ask git where it is
    mkdir -p "$(dirname "$exclude")"
    echo /.whl/ >>"$exclude"
fi
av_version=$(python3 -c "import av; print(av.__version__)")
wheels=("av==$av_version")
for name in pytest iniconfig packaging pluggy pygments; do  # pytest and what it imports
    wheels+=("$name==$(python3 -c "import importlib.metadata as m; print(m.version('$name'))")")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${PYVER:-3.12}" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${wheels[@]}"
ls -l .whl
