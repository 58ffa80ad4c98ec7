#!/usr/bin/env bash
# Incremental developer build without pip: builds _core into BUILD_DIR (default build/dev) and
# prints the env line that makes `import fastspec` use it.
#   cmake/dev-build.sh [BUILD_DIR] [extra cmake -D args...]
#   export FASTSPEC_CORE_DIR=$PWD/build/dev PYTHONPATH=$PWD/python
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bdir=${1:-$root/build/dev}; shift || true
cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTSPEC_PYTHON=ON \
  -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" "$@" >/dev/null
cmake --build "$bdir" -j"$(nproc)"
echo "export FASTSPEC_CORE_DIR=$bdir PYTHONPATH=$root/python"
