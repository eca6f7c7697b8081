#!/usr/bin/env bash
# Compiles every kernels/*.cu to PTX in the output folder (the Maven build passes target/classes/kernels, so the
# PTX is packed into the jar). Called by Maven in generate-resources; runnable by hand:
#   kernels/build-ptx.sh target/classes/kernels
# A kernel that fails to compile fails the build. Without nvcc it says so and writes nothing: the jar then has
# no kernels and the CUDA backend reports itself unavailable. Set ESD_NVCC to use another nvcc.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build-ptx.sh OUTPUT_DIR}"

nvcc="${ESD_NVCC:-}"
if [ -z "$nvcc" ]; then
  if command -v nvcc >/dev/null 2>&1; then nvcc="$(command -v nvcc)"
  elif [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc
  fi
fi
if [ -z "$nvcc" ] || [ ! -x "$nvcc" ]; then
  echo "kernels: nvcc not found (set ESD_NVCC or put nvcc on PATH); building without CUDA kernels," \
       "the CUDA backend will report itself unavailable"
  exit 0
fi

# PTX for compute capability 8.0; the driver JIT-compiles it for the GPU it runs on (H100/H200: sm_90).
# no fast-math: the kernels must match the float32 CPU reference to ~1e-6.
flags=(-ptx -arch=compute_80 -std=c++17 -O3 -lineinfo -I "$here")

mkdir -p "$out"
built=0
for source in "$here"/*.cu; do
  name="$(basename "$source" .cu)"
  target="$out/$name.ptx"
  # up to date: newer than its source and every header
  if [ -f "$target" ] && [ -z "$(find "$source" "$here"/*.cuh -newer "$target" 2>/dev/null)" ]; then continue; fi
  if ! "$nvcc" "${flags[@]}" -o "$target.tmp" "$source"; then
    rm -f "$target.tmp"
    echo "kernels: $name.cu failed to compile" >&2
    exit 1
  fi
  mv "$target.tmp" "$target"
  built=$((built + 1))
done
echo "kernels: $built compiled to PTX with $("$nvcc" --version | grep -o 'release [0-9.]*') into $out"
