#!/usr/bin/env bash
# Run HERE (a machine with Java 25 and Maven) before a device check: builds target/esd-native.jar (with the CUDA
# kernels as PTX), a jlink'd Java 25 runtime holding only the modules the jar needs (stripped, compressed) in the
# git-ignored benchmarks/gpu/build/runtime, checks that both together stay under 60 MB (a device call carries at
# most 64 MiB), tries the runtime here, and prints the exact device call to make.
set -euo pipefail
cd "$(dirname "$0")/../.."

export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
export PATH="$JAVA_HOME/bin:$PATH"
jar=target/esd-native.jar
runtime=benchmarks/gpu/build/runtime
limit=$((60 * 1000 * 1000))

echo "== building $jar"
mvn -B -q package -DskipTests
if ! unzip -Z1 "$jar" kernels/arithmetic.ptx >/dev/null 2>&1; then
  echo "prepare: $jar has no CUDA kernels (nvcc was not found during the build); the device check would be pointless" >&2
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

jar_bytes=$(stat -c %s "$jar")
runtime_bytes=$(du -sb "$runtime" | cut -f1)
total=$((jar_bytes + runtime_bytes))
awk -v j="$jar_bytes" -v r="$runtime_bytes" -v l="$limit" \
  'BEGIN { printf "jar %.1f MB + runtime %.1f MB = %.1f MB (limit %.0f MB)\n", j / 1e6, r / 1e6, (j + r) / 1e6, l / 1e6 }'
if [ "$total" -ge "$limit" ]; then
  echo "prepare: jar + runtime are too large to carry" >&2
  exit 1
fi

echo "== trying the linked runtime here (no GPU: the self-test must say why and exit 0)"
"$runtime/bin/java" -jar "$jar" selftest --only gelu >/dev/null 2>benchmarks/gpu/build/stderr.txt
if [ -s benchmarks/gpu/build/stderr.txt ]; then
  echo "prepare: the linked runtime printed to stderr (a missing module or a native-access warning):" >&2
  cat benchmarks/gpu/build/stderr.txt >&2
  exit 1
fi

cat <<'CALL'
== ready. The device call (tool `run`):
  command:   bash benchmarks/gpu/run-on-device.sh
  carry:     ["target/esd-native.jar", "benchmarks/gpu/build/runtime"]
  timeout_s: 540
The script stops itself within 8 minutes; its report comes back under $OUT (report.md, selftest.txt, ...).
CALL
