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
if ! ninja -C "$dir" >"$dir/ninja.log" 2>&1; then
  grep -E 'error|FAILED' "$dir/ninja.log" | head -20
  echo "build FAILED (full log: $dir/ninja.log)"
  exit 1
fi
echo "built: $dir/lib"
