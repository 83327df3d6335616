# shellcheck shell=bash
# test/lib/bench.sh — what the benchmark scripts (test/bench_*.sh) share: progress lines,
# failure banner, waiting for other heavy work, and the check that the extension under
# test is installed and current.
#
# Source it after test/lib/deps.sh, then call `bench_begin NAME` (NAME: the script's short
# name, e.g. bench_tags, which busy_procs does not count as other work).
#
#     log MESSAGE...            progress line on stderr, with wall time and seconds elapsed
#     die MESSAGE...            failure banner on stderr, exit 1
#     wait_idle WHAT            wait (up to WAIT_MAX seconds in all, default 600) while other
#                               benchmarks or fuzzers run; note it in BUSY_NOTES if they still do
#     note_busy WHAT            after a measurement: note in BUSY_NOTES if heavy work ran meanwhile
#     bench_require_extension [MARKER]
#                               build and install first when WAM_BENCH_BUILD=1 or nothing is
#                               installed; die unless it is (and, with MARKER, unless the
#                               installed script contains MARKER); warn when the source is newer
#
# Sets START, LOADAVG_START, BUSY_NOTES=(), WAITED_S, sharedir, pkglibdir (read by the
# scripts that source this file).
# shellcheck disable=SC2034

bench_begin() {
    BENCH_NAME=$1
    START=$SECONDS
    LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
    BUSY_NOTES=()
    WAITED_S=0
    WAIT_MAX=${WAIT_MAX:-600}
    sharedir=$("$WAM_PG_CONFIG" --sharedir)
    pkglibdir=$("$WAM_PG_CONFIG" --pkglibdir)
}

log() { printf '[bench %s +%ds] %s\n' "$(date +%H:%M:%S)" $((SECONDS - START)) "$*" >&2; }

die() {
    {
        echo
        echo "######################################################################"
        echo "## BENCHMARK FAILED: $*"
        echo "######################################################################"
    } >&2
    exit 1
}

# Other benchmarks and fuzzers share the 2 CPUs and skew every number.  (Any other
# test/bench_*.sh or fuzz_* process; this script's own subshells share its name.)
busy_procs() {
    pgrep -af 'bench_|fuzz_' 2>/dev/null | grep -v -e "^$$ " -e "$BENCH_NAME" -e pgrep | cut -c1-120 || true
}

wait_idle() { # wait_idle WHAT
    local procs waited=0
    procs=$(busy_procs)
    if [ -n "$procs" ]; then
        log "other heavy work is running; waiting up to $((WAIT_MAX - WAITED_S))s before $1:"
        printf '    %s\n' "$procs" >&2
    fi
    while [ -n "$procs" ] && [ "$WAITED_S" -lt "$WAIT_MAX" ]; do
        sleep 10
        WAITED_S=$((WAITED_S + 10))
        waited=$((waited + 10))
        procs=$(busy_procs)
    done
    [ "$waited" -gt 0 ] && log "waited ${waited}s"
    if [ -n "$procs" ]; then
        log "WARNING: still busy before $1 - numbers will be skewed"
        BUSY_NOTES+=("$1: $(tr '\n' ';' <<<"$procs" | sed 's/;$//') (load average $(cut -d' ' -f1-3 /proc/loadavg))")
    fi
    return 0
}

note_busy() { # note_busy WHAT
    local procs
    procs=$(busy_procs)
    if [ -n "$procs" ]; then
        log "WARNING: other heavy work ran during $1"
        BUSY_NOTES+=("during $1: $(tr '\n' ';' <<<"$procs" | sed 's/;$//')")
    fi
    return 0
}

_bench_installed() {
    [ -f "$sharedir/extension/pg_wamarketing.control" ] && [ -f "$pkglibdir/pg_wamarketing.so" ] &&
        { [ -z "${1:-}" ] || grep -q -- "$1" "$sharedir/extension/pg_wamarketing--0.1.sql" 2>/dev/null; }
}

bench_require_extension() { # bench_require_extension [MARKER]
    local marker=${1:-} newer
    if [ "${WAM_BENCH_BUILD:-0}" = 1 ] || ! _bench_installed "$marker"; then
        log "extension not installed, not current (or WAM_BENCH_BUILD=1): running the deps + build steps of test/run"
        install_deps >&2 || die "installing packages failed (run 'bash test/run build' as root)"
        build_install >&2 || die "make / make install failed (run 'bash test/run build')"
    fi
    _bench_installed "$marker" ||
        die "pg_wamarketing is not installed in $sharedir / $pkglibdir${marker:+ (or lacks $marker)}: run 'bash test/run build' first"
    newer=$(find src Makefile -newer "$pkglibdir/pg_wamarketing.so" \( -name '*.c' -o -name '*.h' -o -name '*.sql' -o -name Makefile \) 2>/dev/null | head -n 3)
    if [ -n "$newer" ]; then
        log "WARNING: the installed pg_wamarketing.so is older than $(echo "$newer" | tr '\n' ' ')- run 'bash test/run build' to benchmark the current source"
    fi
    return 0
}
