#!/usr/bin/env bash
# Run HERE (a machine with Java 25 and Maven) before a device check: builds target/esd-native.jar (with the CUDA
# kernels as PTX), a jlink'd Java 25 runtime holding only the modules the jar needs (stripped, compressed) in the
# git-ignored benchmarks/gpu/build/runtime, with JCuda's native library extracted into runtime/jcuda (loaded from
# there through -Djava.library.path, not from a copy in java.io.tmpdir); checks that the whole tree a device call
# carries (the repository's files as git sees them + jar + runtime) stays under 64 MiB; runs the linked runtime
# here on the fake CUDA driver (the real JCuda and FFM code); and prints the exact device call to make.
set -euo pipefail
cd "$(dirname "$0")/../.."

export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
export PATH="$JAVA_HOME/bin:$PATH"
jar=target/esd-native.jar
runtime=benchmarks/gpu/build/runtime
limit=$((64 * 1024 * 1024))            # what one device call carries
margin=$((1024 * 1024))                # kept free: files added between this check and the call

echo "== building $jar"
mvn -B -q package -DskipTests
if ! unzip -Z1 "$jar" kernels/arithmetic.ptx >/dev/null 2>&1; then
  echo "prepare: $jar has no CUDA kernels; the device check would be pointless" >&2
  exit 1
fi

echo "== linking a Java runtime"
modules="$(jdeps --multi-release 25 --ignore-missing-deps --print-module-deps "$jar")"
# java.desktop (~25 MB) is wanted only by Jackson's optional java.beans support, which Jackson loads reflectively
# and does without when it is absent
modules="$(echo "$modules" | tr , '\n' | grep -vx java.desktop | paste -sd, -)"
echo "modules: $modules"
rm -rf "$runtime"
mkdir -p "$(dirname "$runtime")"
jlink --add-modules "$modules" --strip-debug --no-header-files --no-man-pages --compress=zip-9 --output "$runtime"
# JCuda's driver-API native library, where -Djava.library.path finds it (JCuda tries that before extracting a copy
# into java.io.tmpdir, which may be full or mounted noexec)
mkdir -p "$runtime/jcuda"
unzip -q -j -o "$jar" 'lib/libJCudaDriver-*-linux-x86_64.so' -d "$runtime/jcuda"

echo "== the tree a device call carries"
# every file git does not ignore (tracked and untracked), plus the carried, ignored jar and runtime
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null \
             | awk '{ s += $1 } END { print s + 0 }')
jar_bytes=$(stat -c %s "$jar")
runtime_bytes=$(du -sb "$runtime" | cut -f1)
total=$((tree_bytes + jar_bytes + runtime_bytes))
awk -v t="$tree_bytes" -v j="$jar_bytes" -v r="$runtime_bytes" -v l="$limit" -v m="$margin" 'BEGIN {
  mib = 1024 * 1024
  printf "repository files %.1f MiB + jar %.1f MiB + runtime %.1f MiB = %.1f MiB (limit %.0f MiB, %.0f MiB kept free)\n",
         t / mib, j / mib, r / mib, (t + j + r) / mib, l / mib, m / mib }'
if [ "$total" -ge $((limit - margin)) ]; then
  echo "prepare: the tree is too large to carry; the largest files git sees:" >&2
  git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -b -- | sort -rn | head -10 >&2
  exit 1
fi

echo "== trying the linked runtime here"
java_opts=(-Djava.library.path="$runtime/jcuda")
if [ -f target/fake-cuda/libcuda.so.1 ]; then
  # the fake driver (kernels/fake-driver): JCuda from the runtime folder, cuBLAS through FFM, the kernels emulated
  if ! ESD_CUDA_LIBS=target/fake-cuda "$runtime/bin/java" "${java_opts[@]}" -jar "$jar" selftest --backend cuda \
         --only gelu --only "gemm NT" > benchmarks/gpu/build/try.txt 2>&1 \
     || ! grep -q "JCuda native $PWD/$runtime/jcuda/" benchmarks/gpu/build/try.txt \
     || grep -qiE 'warning|exception' benchmarks/gpu/build/try.txt; then
    echo "prepare: the linked runtime failed on the fake CUDA driver:" >&2
    cat benchmarks/gpu/build/try.txt >&2
    exit 1
  fi
  echo "selftest on the fake driver passed, JCuda loaded from $runtime/jcuda"
else
  # no fake driver (no g++): without a GPU the self-test must say why and exit 3, with nothing on stderr
  set +e
  "$runtime/bin/java" "${java_opts[@]}" -jar "$jar" selftest --only gelu >/dev/null 2>benchmarks/gpu/build/stderr.txt
  code=$?
  set -e
  if [ "$code" -ne 3 ] || [ -s benchmarks/gpu/build/stderr.txt ]; then
    echo "prepare: the linked runtime exited $code (expected 3: no GPU here) or printed to stderr:" >&2
    cat benchmarks/gpu/build/stderr.txt >&2
    exit 1
  fi
fi

cat <<'CALL'
== ready. The device call (tool `run`):
  command:   bash benchmarks/gpu/run-on-device.sh
  carry:     ["target/esd-native.jar", "benchmarks/gpu/build/runtime"]
  timeout_s: 540
run-on-device.sh stops itself within 480 s and has written report.md by then (benchmarks/gpu/README.md shows the
arithmetic); its files come back under $OUT (report.md, selftest.txt, ...).
CALL
