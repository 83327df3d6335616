#!/bin/bash
# test/fuzz/run.sh — build, then fuzz one target for a while and summarize.
#
#     test/fuzz/run.sh [SECONDS]            # fuzz_segment, default 600 s
#     test/fuzz/run.sh TARGET [SECONDS]     # TARGET: segment | expr | phone | csv | refcode
#
# The checked-in seeds (test/fuzz/corpus/ for segment, test/fuzz/corpus_expr/ for expr;
# phone, csv and refcode start empty) are copied into test/fuzz/corpus-work/TARGET/, which
# libFuzzer grows; the checked-in corpus itself is never modified.  Crash reproducers
# land in test/fuzz/build/artifacts-TARGET/.  Both directories are gitignored.
# Exit status is non-zero if libFuzzer found a crash, leak, timeout or OOM.
set -uo pipefail

target=segment
case ${1:-} in
    segment | expr | phone | csv | refcode) target=$1; shift ;;
esac
secs=${1:-600}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build="$here/build"
work="$here/corpus-work/$target"
artifacts="$build/artifacts-$target"
log="$build/fuzz_$target.log"
extra=()
case $target in
    segment) seeds="$here/corpus"; max_len=65536; extra=(-dict="$here/fuzz_segment.dict") ;;
    expr) seeds="$here/corpus_expr"; max_len=4096 ;;
    phone) seeds=""; max_len=256 ;;
    csv) seeds=""; max_len=65536 ;;
    refcode) seeds=""; max_len=128 ;;
esac

"$here/build.sh" || exit 2

rm -rf "$work" "$artifacts"
mkdir -p "$work" "$artifacts"
[ -n "$seeds" ] && cp "$seeds"/* "$work"/

echo "fuzzing for ${secs}s (log: $log)"
"$build/fuzz_$target" \
    -max_total_time="$secs" \
    -max_len="$max_len" \
    -timeout=30 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    "${extra[@]}" \
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

echo "---- fuzz_$target summary ----"
echo "seconds:     $secs"
echo "executions:  ${execs:-?}"
echo "coverage:    cov ${cov:-?}  ft ${ft:-?}"
echo "corpus:      $(find "$work" -type f | wc -l) files, $(du -sh "$work" | cut -f1)"
echo "last status: ${status:-none}"
echo "artifacts:   $crashes"
find "$artifacts" -type f -exec echo "  {}" \;

if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    echo "FAILED: libFuzzer exit status $rc; see $log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_[a-z]*: check failed|check failed)' "$log" | head -n 20
    exit 1
fi
echo "no crashes"
