#!/usr/bin/env bash
# Incremental development build of the extension into build/dev-NAME/lib (no pip involved).
# Use it with:  SIGNCORE_DEV_BUILD=$PWD/build/dev-NAME/lib python -m pytest tests/...
set -euo pipefail
name=${1:-main}
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/build/dev-$name"
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$dir/lib" >/dev/null
fi
ninja -C "$dir" | grep -v '^\[' || true
test -f "$dir"/lib/_core*.so
echo "built: $dir/lib"
