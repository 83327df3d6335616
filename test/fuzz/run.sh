#!/bin/bash
# test/fuzz/run.sh — build, then fuzz for a while and summarize.
#
#     test/fuzz/run.sh [SECONDS]     # default 600
#
# The checked-in seeds (test/fuzz/corpus/) are copied into test/fuzz/corpus-work/,
# which libFuzzer grows; the checked-in corpus itself is never modified.  Crash
# reproducers land in test/fuzz/build/artifacts/.  Both directories are gitignored.
# Exit status is non-zero if libFuzzer found a crash, leak, timeout or OOM.
set -uo pipefail

secs=${1:-600}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build="$here/build"
work="$here/corpus-work"
artifacts="$build/artifacts"
log="$build/fuzz.log"

"$here/build.sh" || exit 2

rm -rf "$work" "$artifacts"
mkdir -p "$work" "$artifacts"
cp "$here"/corpus/* "$work"/

echo "fuzzing for ${secs}s (log: $log)"
"$build/fuzz_segment" \
    -max_total_time="$secs" \
    -max_len=65536 \
    -timeout=30 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -dict="$here/fuzz_segment.dict" \
    -artifact_prefix="$artifacts/" \
    "$work" >"$log" 2>&1
rc=$?

# libFuzzer's last status line looks like
#   #123456 DONE   cov: 812 ft: 2871 corp: 640/1893Kb lim: 65536 exec/s: 205 rss: 180Mb
status=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
crashes=$(find "$artifacts" -type f | wc -l)

echo "---- fuzz_segment summary ----"
echo "seconds:     $secs"
echo "executions:  ${execs:-?}"
echo "coverage:    cov ${cov:-?}  ft ${ft:-?}"
echo "corpus:      $(find "$work" -type f | wc -l) files, $(du -sh "$work" | cut -f1)"
echo "last status: ${status:-none}"
echo "artifacts:   $crashes"
find "$artifacts" -type f -exec echo "  {}" \;

if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    echo "FAILED: libFuzzer exit status $rc; see $log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_segment: check failed)' "$log" | head -n 20
    exit 1
fi
echo "no crashes"
