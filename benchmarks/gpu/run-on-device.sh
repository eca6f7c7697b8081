#!/usr/bin/env bash
# Run ON THE GPU MACHINE (no Java or Maven there): uses the jar and the jlink'd runtime that prepare.sh built and
# the device call carried. Records nvidia-smi, the CUDA libraries found, `esd-native selftest --backend cuda`
# (every op, CUDA vs CPU), `esd-native opbench` (op timings at SD 1.x shapes), then `esd-native bench` if the
# jar has that command, into $OUT (report.md and one file per step), all within 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
budget=480                                   # seconds for the whole script
out="${OUT:-benchmarks/gpu/build/out}"
mkdir -p "$out"
java=benchmarks/gpu/build/runtime/bin/java
jar=target/esd-native.jar
report="$out/report.md"

left() { echo $((budget - ($(date +%s) - start))); }

if [ ! -x "$java" ] || [ ! -f "$jar" ]; then
  echo "run-on-device: $java or $jar is missing: run benchmarks/gpu/prepare.sh first and carry both" | tee "$report"
  exit 2
fi

{
  echo "# esd-native device check, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  echo '```'
} > "$report"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1

# cuBLAS from pip wheels (the image's PyTorch) and the toolkit: hand their folders to the backend
libs=""
if command -v python3 >/dev/null; then
  for site in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
    for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && libs="$libs:$d"; done
  done
fi
for d in /usr/local/cuda/lib64 /usr/local/nvidia/lib64; do [ -d "$d" ] && libs="$libs:$d"; done
export ESD_CUDA_LIBS="${ESD_CUDA_LIBS:-${libs#:}}"
{
  echo "ESD_CUDA_LIBS=$ESD_CUDA_LIBS"
  echo "-- ldconfig:"
  ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublas|libcudnn\.so' || echo "(none in the loader cache)"
  echo "-- in ESD_CUDA_LIBS:"
  IFS=: read -ra dirs <<< "$ESD_CUDA_LIBS"
  for d in "${dirs[@]}"; do ls "$d" 2>/dev/null | grep -E '^lib(cuda|cublas|cublasLt|cudnn)\.so' | sed "s|^|$d/|"; done
} > "$out/libraries.txt" 2>&1

echo "== selftest (CUDA vs CPU)"
timeout 240 "$java" -jar "$jar" selftest --backend cuda 2>&1 | tee "$out/selftest.txt"
selftest_rc=${PIPESTATUS[0]}
if [ "$selftest_rc" -ne 0 ] && [ "$(left)" -gt 200 ]; then
  echo "== selftest again with ESD_CUDA_SYNC=1 (names the kernel that faults)"
  ESD_CUDA_SYNC=1 timeout 150 "$java" -jar "$jar" selftest --backend cuda 2>&1 | tee "$out/selftest-sync.txt"
fi

echo "== opbench (each op at SD 1.x training shapes, TF32 then strict float32)"
{
  timeout 90 "$java" -jar "$jar" opbench --backend cuda --math tf32
  timeout 60 "$java" -jar "$jar" opbench --backend cuda --math fp32
} 2>&1 | tee "$out/opbench.txt"

bench_rc="not run (the jar has no bench command)"
commands="$("$java" -jar "$jar" --help 2>&1)"
bench_help="$("$java" -jar "$jar" bench --help 2>&1)"
if grep -qE '^ +bench( |$)' <<< "$commands" && ! grep -q -- '--backend' <<< "$bench_help"; then
  bench_rc="not run (bench has no --backend option)"
elif grep -qE '^ +bench( |$)' <<< "$commands" && ! grep -qi 'cuda' <<< "$bench_help"; then
  bench_rc="not run (bench does not offer the cuda backend yet)"
elif grep -qE '^ +bench( |$)' <<< "$commands"; then
  args=(--backend cuda)
  grep -q 'sd14' <<< "$bench_help" && args+=(--config sd14)
  seconds=$(( $(left) - 20 ))
  if [ "$seconds" -gt 30 ]; then
    echo "== bench ${args[*]} (${seconds}s at most)"
    timeout "$seconds" "$java" -jar "$jar" bench "${args[@]}" 2>&1 | tee "$out/bench.txt"
    bench_rc=${PIPESTATUS[0]}
  else
    bench_rc="not run (no time left)"
  fi
fi

{
  echo
  echo "## selftest --backend cuda: exit $selftest_rc"
  echo '```'
  grep -E '^(cuda|esd-native selftest|selftest:|[0-9]+ of [0-9]+)|FAIL' "$out/selftest.txt"
  echo '```'
  echo
  echo "## opbench"
  echo '```'
  cat "$out/opbench.txt"
  echo '```'
  echo
  echo "## bench: $bench_rc"
  if [ -f "$out/bench.txt" ]; then echo '```'; tail -n 40 "$out/bench.txt"; echo '```'; fi
  echo
  echo "total $(( $(date +%s) - start )) s; files: $(cd "$out" && ls | tr '\n' ' ')"
} >> "$report"
cat "$report"
exit "$selftest_rc"
