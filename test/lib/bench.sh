# shellcheck shell=bash
# test/lib/bench.sh — what the benchmark scripts (test/bench_*.sh) share: the preamble
# (repository, test/lib/deps.sh and test/lib/cluster.sh, knob checks, report file, a
# throwaway cluster and database), progress lines, failure banner, waiting for other heavy
# work, the check that the extension under test is installed and current, psql helpers.
#
# Source it first (after `set -euo pipefail`):
#     . "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"
# It sets and exports WAM_REPO_DIR, changes to it and sources deps.sh and cluster.sh.  Then:
#
#     bench_positive VAR...     exit 2 unless each named variable is a positive integer
#     bench_out FILE ACTUAL DEFAULTS
#                               OUT = WAM_BENCH_OUT if set, else bench/results/FILE when
#                               ACTUAL = DEFAULTS (the knobs at their default sizes), else ""
#     bench_begin NAME          start the clock (NAME: the script's short name, e.g.
#                               bench_tags, which busy_procs does not count as other work)
#     bench_cluster PORT [SETTING...]
#                               start a throwaway cluster of its own (never one inherited from
#                               test/run) on WAM_BENCH_PORT, default PORT, with these settings
#     bench_db [NAME=VALUE...]  create database wam_bench (search_path public, wam, and these
#                               settings) and make it PGDATABASE
#     log MESSAGE...            progress line on stderr, with wall time and seconds elapsed
#     die MESSAGE...            failure banner on stderr, exit 1
#     wait_idle WHAT            wait (up to WAIT_MAX seconds in all, default 600) while other
#                               benchmarks or fuzzers run; note it in BUSY_NOTES if they still do
#     note_busy WHAT            after a measurement: note in BUSY_NOTES if heavy work ran meanwhile
#     bench_require_extension [MARKER]
#                               build and install first when WAM_BENCH_BUILD=1 or nothing is
#                               installed; die unless it is (and, with MARKER, unless the
#                               installed script contains MARKER); warn when the source is newer
#     bench_report TEXT         print the report on stdout and write it to OUT (if set)
#     q SQL                     one statement: unaligned, tab-separated, no headers
#     q [PSQL-ARG...]           psql -qAt with these arguments (-c ... -c ..., or SQL on stdin)
#     run_sql SQL               one statement, output discarded
#     now, elapsed_ms T0, secs_since T0, sqlstr TEXT (a quoted SQL literal)
#
# Sets START, LOADAVG_START, BUSY_NOTES=(), WAITED_S, sharedir, pkglibdir, OUT, DB (read by
# the scripts that source this file).
# shellcheck disable=SC2034

WAM_REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export WAM_REPO_DIR
cd "$WAM_REPO_DIR" || exit 1
# shellcheck source=test/lib/deps.sh
. "$WAM_REPO_DIR/test/lib/deps.sh"
# shellcheck source=test/lib/cluster.sh
. "$WAM_REPO_DIR/test/lib/cluster.sh"

bench_positive() { # bench_positive VAR...
    local v
    for v in "$@"; do
        case ${!v} in
            '' | *[!0-9]* | 0) echo "error: $v must be a positive integer, got '${!v}'" >&2; exit 2 ;;
        esac
    done
}

bench_out() { # bench_out FILE ACTUAL DEFAULTS
    if [ -n "${WAM_BENCH_OUT:-}" ]; then
        OUT=$WAM_BENCH_OUT
    elif [ "$2" = "$3" ]; then
        OUT=$WAM_REPO_DIR/bench/results/$1
    else
        OUT=""
    fi
}

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
        { [ -z "${1:-}" ] || grep -q -- "$1" "$sharedir/extension/pg_wamarketing--$(sed -n "s/^default_version = '\(.*\)'$/\1/p" \
            "$sharedir/extension/pg_wamarketing.control").sql" 2>/dev/null; }
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

bench_cluster() { # bench_cluster PORT [SETTING...]
    unset WAM_CLUSTER_RUNNING
    export WAM_TEST_PORT=${WAM_BENCH_PORT:-$1}
    shift
    log "starting a throwaway cluster: $*"
    start_cluster "$@" >&2 || die "could not start the cluster"
}

bench_db() { # bench_db [NAME=VALUE...]
    local s
    DB=wam_bench
    wam_psql -q -d postgres -c "CREATE DATABASE $DB" >/dev/null
    wam_psql -q -d postgres -c "ALTER DATABASE $DB SET search_path = public, wam" >/dev/null
    for s in "$@"; do
        wam_psql -q -d postgres -c "ALTER DATABASE $DB SET ${s%%=*} = '${s#*=}'" >/dev/null
    done
    export PGDATABASE=$DB
}

q() {
    if [ $# -eq 1 ] && [ "${1:0:1}" != - ]; then
        wam_psql -qAt -F $'\t' -c "$1"
    else
        wam_psql -qAt "$@"
    fi
}
bench_report() { # bench_report TEXT
    printf '%s\n' "$1"
    if [ -n "$OUT" ]; then
        mkdir -p "$(dirname "$OUT")"
        printf '%s\n' "$1" >"$OUT"
        log "wrote $OUT"
    else
        log "non-default settings: report not written (set WAM_BENCH_OUT=FILE to write it)"
    fi
}

run_sql() { wam_psql -q -c "$1" >/dev/null; }
now() { date +%s.%N; }
elapsed_ms() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
sqlstr() { printf "'%s'" "${1//\'/\'\'}"; }
