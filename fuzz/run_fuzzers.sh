#!/bin/sh
# Runs every fuzzer built in BUILD_DIR/fuzz/ for SECONDS each (default 60), TSNN_JOBS at a time,
# each on a copy of its seed corpus fuzz/corpus/<name without "fuzz_">/ in a temporary directory,
# so the repository is never modified. Usage:
#   fuzz/run_fuzzers.sh BUILD_DIR [SECONDS]
#
# Exits 0 when no fuzzer found anything, 1 when one did (its crash, leak, timeout or OOM input
# is printed with a hex dump and kept under the work directory shown), 2 on a usage error.
# Environment: FUZZ_WORK_DIR keeps all work there instead of a fresh mktemp -d directory;
# FUZZ_SCRATCH_DIR is where the fuzzers write their per-input files (default /dev/shm when
# writable, since a file per input is slow on disk); FUZZ_EXTRA_ARGS adds libFuzzer options
# (for example "-jobs=2 -workers=2").
set -u

usage() {
  echo "usage: $0 BUILD_DIR [SECONDS]" >&2
  exit 2
}
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
build=$1
seconds=${2:-60}
case $seconds in '' | *[!0-9]*) usage ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)

fuzzers=$(find "$build/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x 2>/dev/null | sort)
if [ -z "$fuzzers" ]; then
  echo "$0: no fuzzers in $build/fuzz; configure with -DTSNN_BUILD_FUZZERS=ON" \
    "-DCMAKE_CXX_COMPILER=clang++ and build first" >&2
  exit 2
fi

work=${FUZZ_WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tsnn-fuzz.XXXXXX")}
mkdir -p "$work"
# UBSan reports are already fatal (-fno-sanitize-recover); these make every report readable.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# hexdump_file FILE: the first 1 KiB of FILE in hex and ASCII.
hexdump_file() {
  if command -v xxd >/dev/null 2>&1; then
    head -c 1024 "$1" | xxd
  else
    head -c 1024 "$1" | od -A x -t x1z -v
  fi
}

# Scratch files go to a tmpfs when there is one (FUZZ_SCRATCH_DIR overrides).
shm=${FUZZ_SCRATCH_DIR:-/dev/shm}
if [ ! -d "$shm" ] || [ ! -w "$shm" ]; then shm=$work; fi

# count_files DIR: the number of files in DIR.
count_files() { find "$1" -type f | wc -l; }

# run_one BIN: fuzzes BIN for the time given, writing its report to its work directory's
# "report" and its verdict (0 or 1) to "status".
run_one() {
  bin=$1
  name=$(basename "$bin")
  seeds=$root/fuzz/corpus/${name#fuzz_}
  dir=$work/$name
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  {
    # The fuzzers write a file per input: on a disk that is ten times slower than on a tmpfs.
    scratch=$(mktemp -d "$shm/tsnn-fuzz-$name.XXXXXX" 2>/dev/null) || scratch=$dir/tmp
    mkdir -p "$scratch"
    if [ -d "$seeds" ]; then
      cp -R "$seeds/." "$dir/corpus/"
    else
      echo "$0: warning: no seed corpus $seeds for $name"
    fi
    echo "=== $name: ${seconds}s, corpus $(count_files "$dir/corpus") files, log $dir/log"
    # shellcheck disable=SC2086 # FUZZ_EXTRA_ARGS is a list of options
    TMPDIR=$scratch "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 \
      -timeout=10 -max_len=65536 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
      ${FUZZ_EXTRA_ARGS:-} "$dir/corpus" >"$dir/log" 2>&1
    rc=$?
    # A crashed fuzzer leaves its last scratch file behind: keep it next to the artifacts.
    if [ "$scratch" != "$dir/tmp" ]; then
      if [ -n "$(ls -A "$scratch")" ]; then mv "$scratch" "$dir/tmp"; else rmdir "$scratch"; fi
    fi
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added)' \
      "$dir/log"
    found=$(find "$dir/artifacts" -type f | sort)
    if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
      echo 1 >"$dir/status"
      echo "!!! $name failed (exit status $rc); last lines of its log:"
      tail -n 60 "$dir/log"
      for f in $found; do
        echo "!!! $name: input $f ($(wc -c <"$f") bytes):"
        hexdump_file "$f"
      done
      [ -n "$found" ] || echo "!!! $name: no input was saved; see $dir/log"
    else
      echo 0 >"$dir/status"
      echo "=== $name: no findings, corpus now $(count_files "$dir/corpus") files"
    fi
  } >"$dir/report" 2>&1
}

# The fuzzers run side by side (each is one process on one core), TSNN_JOBS at a time (default
# 2), and report in name order.
jobs=${TSNN_JOBS:-2}
running=0
for bin in $fuzzers; do
  run_one "$bin" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait
    running=0
  fi
done
wait
status=0
for bin in $fuzzers; do
  dir=$work/$(basename "$bin")
  cat "$dir/report"
  [ "$(cat "$dir/status" 2>/dev/null)" = 0 ] || status=1
done

if [ "$status" -eq 0 ]; then
  [ -n "${FUZZ_WORK_DIR:-}" ] || rm -rf "$work"
  echo "All fuzzers ran ${seconds}s without findings."
else
  echo "Findings kept in $work. Reproduce with: $build/fuzz/<name> <input> (the comment at" \
    "the top of fuzz/<name>.cpp says how to get the file the reader saw); save that file in" \
    "tests/data/regressions/<reader>/, named after the bug."
fi
exit "$status"
