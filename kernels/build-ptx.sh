#!/usr/bin/env bash
# The CUDA kernels as PTX in the output folder (the Maven build passes target/classes/kernels, so the PTX is packed
# into the jar). The PTX is committed (kernels/ptx), so that a build without the CUDA toolkit still has kernels:
#   - without nvcc: the committed PTX is used;
#   - with the nvcc release that made the committed PTX: every kernels/*.cu is compiled and must equal its committed
#     PTX, else the build fails naming the stale files (refresh them with `kernels/build-ptx.sh --update`, commit);
#   - with another nvcc release: the sources' own PTX is used (the committed files cannot be compared).
# Usage: build-ptx.sh OUTPUT_DIR | build-ptx.sh --update.  ESD_NVCC names another nvcc; ESD_NVCC=none builds as
# without nvcc.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
committed="$here/ptx"
out="${1:?usage: build-ptx.sh OUTPUT_DIR | --update}"

nvcc="${ESD_NVCC:-}"
if [ -z "${ESD_NVCC+set}" ]; then
  if command -v nvcc >/dev/null 2>&1; then nvcc="$(command -v nvcc)"
  elif [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc
  fi
fi
release() { grep -m1 -o 'release [0-9.]*, V[0-9.]*' "$1"; }

if [ "$nvcc" = none ]; then nvcc=""; fi
if [ -z "$nvcc" ] || [ ! -x "$nvcc" ]; then
  if [ "$out" = "--update" ]; then echo "kernels: --update needs nvcc" >&2; exit 1; fi
  mkdir -p "$out"
  cp "$committed"/*.ptx "$out/"
  echo "kernels: nvcc not found; using the committed PTX (kernels/ptx, $(release "$committed/arithmetic.ptx"))"
  exit 0
fi

# up to date: the output (its first module stands for all) is newer than every source, committed file and this script
if [ "$out" != "--update" ] && [ -f "$out/activations.ptx" ] \
   && [ -z "$(find "$here"/*.cu "$here"/*.cuh "$committed"/*.ptx "$0" -newer "$out/activations.ptx")" ]; then
  exit 0
fi

# PTX for compute capability 8.0; the driver JIT-compiles it for the GPU it runs on (H100/H200: sm_90).
# no fast-math: the kernels must match the float32 CPU reference to ~1e-6.
flags=(-ptx -arch=compute_80 -std=c++17 -O3 -lineinfo -I /tmp/esd-native-ptx-sources/kernels)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# nvcc derives the names of internal-linkage symbols in the line info from the source's absolute path, so the PTX
# depends on where the checkout is: compile copies of the sources at one fixed path (serialised by a lock), so
# that every checkout makes the same PTX
stage=/tmp/esd-native-ptx-sources/kernels
exec 9>/tmp/esd-native-ptx-sources.lock
flock 9
rm -rf "$stage" && mkdir -p "$stage" && cp "$here"/*.cu "$here"/*.cuh "$stage/"
for source in "$stage"/*.cu; do
  name="$(basename "$source" .cu)"
  if ! "$nvcc" "${flags[@]}" -o "$work/$name.ptx" "$source"; then
    echo "kernels: $name.cu failed to compile" >&2
    exit 1
  fi
  # the line info names the source by its absolute path: make it the repository's
  sed -i "s|\"$stage/|\"kernels/|" "$work/$name.ptx"
done
flock -u 9
made_by="$(release "$work/arithmetic.ptx")"

if [ "$out" = "--update" ]; then
  mkdir -p "$committed"
  rm -f "$committed"/*.ptx
  cp "$work"/*.ptx "$committed/"
  echo "kernels: kernels/ptx refreshed with $made_by; commit it"
  exit 0
fi

mkdir -p "$out"
if [ "$made_by" = "$(release "$committed/arithmetic.ptx" || true)" ]; then
  stale=()
  for ptx in "$work"/*.ptx "$committed"/*.ptx; do
    name="$(basename "$ptx")"
    cmp -s "$work/$name" "$committed/$name" || stale+=("$name")
  done
  if [ "${#stale[@]}" -gt 0 ]; then
    echo "kernels: the committed PTX is stale: kernels/ptx/{$(printf '%s\n' "${stale[@]}" | sort -u | paste -sd,)} differ from what" \
         "the sources compile to with $made_by. Run kernels/build-ptx.sh --update and commit kernels/ptx." >&2
    exit 1
  fi
  echo "kernels: $(ls "$work"/*.ptx | wc -l) compiled with $made_by, equal to the committed PTX"
else
  echo "kernels: compiled with $made_by; the committed PTX ($(release "$committed/arithmetic.ptx" || echo none)) was made by" \
       "another nvcc, so it is not compared: using the sources' PTX"
fi
rm -f "$out"/*.ptx
cp "$work"/*.ptx "$out/"
