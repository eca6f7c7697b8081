#!/usr/bin/env bash
# Builds the kernel emulation tests with the host C++ compiler (C++20) and runs them: every kernel on the CPU
# emulator against a double-precision loop. Usage: kernels/emulation/run.sh [BUILD_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../target/kernel-emulation}"
mkdir -p "$build"
"${CXX:-g++}" -std=c++20 -O1 -Wall -Wno-unknown-pragmas -o "$build/kernel_tests" "$here/kernel_tests.cpp"
"$build/kernel_tests"
