#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (ASan + UBSan), writes the seed corpus, replays every input in
# cpp/fuzz/regressions/ through both harnesses, then fuzzes each for SECONDS (default 60) and prints its
# number of executions. Exits non-zero on any crash, sanitizer report, timeout, out-of-memory or failed
# replay; crashing inputs are saved under the build directory's artifacts/. See docs/robustness-fuzz.md.
#
#   cpp/fuzz/run.sh [SECONDS]      # CI (.ci/run): cpp/fuzz/run.sh 45; long run: cpp/fuzz/run.sh 3600
#
# Environment: MSF_FUZZ_BUILD (build directory, default build/fuzz), PYTHON (with NumPy; default python3),
# CXX_FUZZ (default clang++), MSF_FUZZ_JOBS (build parallelism, default 2).
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS]   (seconds of fuzzing per harness, default 60)" >&2
  exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${MSF_FUZZ_BUILD:-$root/build/fuzz}
python=${PYTHON:-python3}
fuzzers=(fuzz_safetensors fuzz_load_refine)
# Inputs are at most 64 KiB, so any single allocation near 512 MB, or 2 GB resident, is a bug.
limits=(-max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10)

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER="${CXX_FUZZ:-clang++}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMSF_BUILD_FUZZERS=ON -DMSF_BUILD_TESTS=OFF -DMSF_INSTALL_DEVELOPMENT=OFF >/dev/null
cmake --build "$build" -j "${MSF_FUZZ_JOBS:-2}" --target "${fuzzers[@]}"

seeds=$build/corpus/seeds
rm -rf "$seeds"
"$python" "$root/cpp/fuzz/make_corpus.py" "$seeds"

regressions=()
for f in "$root"/cpp/fuzz/regressions/*; do
  [ -f "$f" ] && [ "$(basename "$f")" != README.md ] && regressions+=("$f")
done

mkdir -p "$build/logs" "$build/artifacts"
status=0
for fuzzer in "${fuzzers[@]}"; do
  bin=$build/cpp/fuzz/$fuzzer
  if [ ${#regressions[@]} -gt 0 ]; then
    if "$bin" "${limits[@]}" "${regressions[@]}" >"$build/logs/$fuzzer.replay.log" 2>&1; then
      echo "$fuzzer: replayed ${#regressions[@]} regression input(s): ok"
    else
      echo "$fuzzer: FAILED replaying cpp/fuzz/regressions/ (log: $build/logs/$fuzzer.replay.log)"
      tail -n 40 "$build/logs/$fuzzer.replay.log"
      status=1
    fi
  fi

  # New inputs go to the first directory, which persists between runs; the seeds are read only.
  mkdir -p "$build/corpus/$fuzzer"
  log=$build/logs/$fuzzer.log
  rc=0
  "$bin" "$build/corpus/$fuzzer" "$seeds" -dict="$root/cpp/fuzz/dict" "${limits[@]}" \
    -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$build/artifacts/$fuzzer-" \
    >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
  echo "$fuzzer: ${execs:-?} executions in ${seconds} s (log: $log)"
  if [ "$rc" -ne 0 ]; then
    echo "$fuzzer: FAILED (exit $rc); crashing input under $build/artifacts/, log tail:"
    tail -n 60 "$log"
    status=1
  fi
done

if [ "$status" -ne 0 ]; then
  echo "FAILED: fix the bug, then add the crashing input to cpp/fuzz/regressions/ (docs/robustness-fuzz.md)"
fi
exit "$status"
