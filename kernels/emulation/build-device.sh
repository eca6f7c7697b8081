#!/usr/bin/env bash
# Builds the emulated device library (every kernel on the CPU emulator, callable like cuLaunchKernel) that the
# CUDA backend's tests load to run the whole backend without a GPU. Usage: build-device.sh OUTPUT.so
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build-device.sh OUTPUT.so}"
mkdir -p "$(dirname "$out")"
# up to date: newer than every kernel source, header and emulator file
if [ -f "$out" ] && [ -z "$(find "$here"/.. -maxdepth 2 \( -name '*.cu' -o -name '*.cuh' -o -name '*.h' -o -name 'emulated_device.cpp' \) -newer "$out")" ]; then
  exit 0
fi
"${CXX:-g++}" -std=c++20 -O2 -shared -fPIC -Wall -Wno-unknown-pragmas -o "$out.tmp" "$here/emulated_device.cpp"
mv "$out.tmp" "$out"
