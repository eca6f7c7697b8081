#!/usr/bin/env bash
# Run ON THE GPU MACHINE (no Java or Maven there): uses the jar and the jlink'd runtime that prepare.sh built and
# the device call carried. A 10-second preflight (GPU, driver, the CUDA libraries the backend will pick), then
# `esd-native selftest --backend cuda` (every op, CUDA vs CPU), `esd-native opbench` (op timings at SD 1.x shapes),
# the machine's PyTorch on the same UNet configuration (when it has torch and diffusers) and `esd-native bench`
# on it, into $OUT (report.md and one file per step).
#
# Budget: every step runs under `timeout`, cut to what is left of BUDGET less RESERVE (and the 5 s between TERM and
# KILL), so the script reaches the report with RESERVE seconds to spare whatever hangs: it ends within BUDGET
# (benchmarks/gpu/README.md shows the arithmetic). Exit: the self-test's code (0 all passed, 1 a case failed,
# 3 CUDA unusable), 4 when the preflight finds no GPU, 124 when the self-test ran out of time.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
BUDGET=${ESD_DEVICE_BUDGET:-480}      # seconds for the whole script; the device call's timeout_s is 540
RESERVE=15                            # kept for writing the report
KILL_GRACE=5                          # timeout's -k: TERM, then KILL this much later
out="${OUT:-benchmarks/gpu/build/out}"
mkdir -p "$out"
runtime=benchmarks/gpu/build/runtime
jar=target/esd-native.jar
report="$out/report.md"
java=("$runtime/bin/java" -Djava.library.path="$runtime/jcuda" -jar "$jar")

left() { echo $((BUDGET - ($(date +%s) - start))); }
# step SECONDS LOGFILE COMMAND...: runs COMMAND for at most SECONDS (fewer when less is left), output teed to
# LOGFILE; returns its exit code, or 125 when too little time was left to start it
step() {
  local cap=$1 log=$2
  shift 2
  local seconds=$(( $(left) - RESERVE - KILL_GRACE ))
  [ "$seconds" -gt "$cap" ] && seconds=$cap
  if [ "$seconds" -lt 10 ]; then echo "(not run: no time left)" > "$log"; return 125; fi
  echo "== $* (${seconds}s at most)"
  timeout -k "$KILL_GRACE" "$seconds" "$@" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

if [ ! -x "$runtime/bin/java" ] || [ ! -f "$jar" ]; then
  echo "run-on-device: $runtime or $jar is missing: run benchmarks/gpu/prepare.sh first and carry both" | tee "$report"
  exit 2
fi

# ---- preflight (10 s): the GPU and driver, the libraries the backend will pick ----------------------------------
libs=""
if command -v python3 >/dev/null; then
  for site in $(timeout -k 1 3 python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
    for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && libs="$libs:$d"; done
  done
fi
for d in /usr/local/cuda/lib64 /usr/local/nvidia/lib64; do [ -d "$d" ] && libs="$libs:$d"; done
export ESD_CUDA_LIBS="${ESD_CUDA_LIBS:-${libs#:}}"
first_in_path() {   # the first folder of ESD_CUDA_LIBS (then the loader cache) that holds $1, as the backend searches
  local d
  IFS=: read -ra dirs <<< "$ESD_CUDA_LIBS"
  for d in "${dirs[@]}"; do [ -e "$d/$1" ] && { echo "$d/$1"; return; }; done
  ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n { print $NF; exit }'
}
gpu="$(timeout -k 1 5 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1)"
gpu_ok=$?
{
  echo "# esd-native device check, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "## preflight"
  echo '```'
  echo "GPU: $gpu"
  echo "libcuda.so.1: $(first_in_path libcuda.so.1 || true)"
  echo "libcublas.so.13: $(first_in_path libcublas.so.13 || true)   libcublas.so.12: $(first_in_path libcublas.so.12 || true)"
  echo "ESD_CUDA_LIBS=$ESD_CUDA_LIBS"
  echo "JCuda native: $(ls "$runtime"/jcuda/*.so 2>/dev/null)"
  echo "java: $(timeout -k 1 3 "$runtime/bin/java" -version 2>&1 | head -1)"
  echo '```'
} > "$report"
cat "$report"
timeout -k 1 3 nvidia-smi > "$out/nvidia-smi.txt" 2>&1
if [ "$gpu_ok" -ne 0 ]; then
  echo "preflight: nvidia-smi failed: no usable GPU or driver; nothing else run" | tee -a "$report"
  exit 4
fi

# ---- the checks --------------------------------------------------------------------------------------------------
step 200 "$out/selftest.txt" "${java[@]}" selftest --backend cuda
selftest_rc=$?
if [ "$selftest_rc" -ne 0 ] && [ "$selftest_rc" -ne 125 ]; then
  ESD_CUDA_SYNC=1 step 120 "$out/selftest-sync.txt" "${java[@]}" selftest --backend cuda
fi
# bf16 GEMMs (cuBLAS on CUDA_R_16BF operands, frozen weights in bf16) against the CPU's float32
step 60 "$out/selftest-bf16.txt" "${java[@]}" selftest --backend cuda --precision bf16

{
  step 60 "$out/opbench-tf32.txt" "${java[@]}" opbench --backend cuda --precision tf32
  step 45 "$out/opbench-fp32.txt" "${java[@]}" opbench --backend cuda --precision fp32
} > /dev/null
cat "$out"/opbench-*.txt > "$out/opbench.txt"

# the same UNet configuration (SD 1.4, batch 2, 64x64 latents, 77 tokens, float32, PyTorch's default TF32 policy),
# first with the machine's PyTorch when it has it, then with esd-native
torch_rc="not run (no python3)"
if command -v python3 >/dev/null; then
  step 90 "$out/torch.txt" python3 benchmarks/gpu/torch_unet.py > /dev/null
  torch_rc=$?
fi
step 150 "$out/bench.txt" "${java[@]}" bench --backend cuda --config sd14 --what unet-forward,unet-backward \
  --batch 2 --warmup 1 --repeat 3 > /dev/null
bench_rc=$?

# ---- the report (within RESERVE seconds) -------------------------------------------------------------------------
{
  echo
  echo "## selftest --backend cuda: exit $selftest_rc"
  echo '```'
  grep -E '^(cuda|esd-native selftest|selftest:|[0-9]+ of [0-9]+)|FAIL|^cause|^caused by' "$out/selftest.txt"
  echo '```'
  if [ -f "$out/selftest-sync.txt" ]; then
    echo "### with ESD_CUDA_SYNC=1"
    echo '```'
    grep -E 'FAIL|selftest:|^caused by' "$out/selftest-sync.txt"
    echo '```'
  fi
  echo
  echo "## opbench"
  echo '```'
  cat "$out/opbench.txt"
  echo '```'
  echo
  echo "## PyTorch on the same UNet configuration: exit $torch_rc"
  echo '```'
  tail -n 20 "$out/torch.txt" 2>/dev/null
  echo '```'
  echo
  echo "## bench --config sd14 --what unet-forward,unet-backward --batch 2: exit $bench_rc"
  echo '```'
  tail -n 40 "$out/bench.txt" 2>/dev/null
  echo '```'
  echo
  echo "total $(( $(date +%s) - start )) s of $BUDGET; files: $(cd "$out" && ls | tr '\n' ' ')"
} >> "$report"
cat "$report"
exit "$selftest_rc"
