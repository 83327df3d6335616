# shellcheck shell=bash
# test/lib/tap.sh — TAP (Test Anything Protocol) for test/t/*.sh scripts; test/run runs
# each script through `prove`.
#
#     tap_ok NAME                 # pass: `ok N - NAME`
#     tap_not_ok NAME [DIAG...]   # fail: `not ok N - NAME`, DIAG lines printed as `#   ...`
#     tap_is NAME GOT WANT        # pass iff GOT = WANT (string compare)
#     tap_run NAME CMD [ARGS...]  # pass iff CMD exits 0 (its output is shown as `# ...` on failure)
#     tap_psql [PSQL ARGS...]     # wam_psql that fails loudly: see below
#     sql_error [PSQL ARGS...]    # for an error that is the expected outcome: prints
#                                 # `SQLSTATE: message` of the first error (nothing if none)
#     PROG | tap_import           # PROG's `ok - NAME` / `not ok - NAME` lines as checks of
#                                 # this script (numbered here); other lines pass through
#     tap_done                    # the plan `1..N`; exit 1 if anything failed or no check ran
#
# SQL errors are never swallowed: tap_psql (the `q` helper of every script) records the
# error of a psql that fails, whatever the caller does with its stderr, and the next check
# is reported `not ok` with the error as its diagnostics (tap_done reports an error after
# the last check). Where an error is the expected outcome, assert it with sql_error, or run
# the command as `TAP_SQL_ERRORS_OK=1 q ...` and check its output.
#
# The counters live in files, so that checks made in a subshell (a pipeline, `$(...)`)
# count, and numbers never repeat.

_TAP_DIR=$(mktemp -d "${WAM_TEST_TMP:-${TMPDIR:-/tmp}}/tap.XXXXXX")
: >"$_TAP_DIR/count"
: >"$_TAP_DIR/failed"
: >"$_TAP_DIR/sqlerr"

_tap_count() { stat -c %s "$_TAP_DIR/$1"; }

# _tap_result ok|not ok NAME [DIAG...]
_tap_result() {
    local status=$1 name=$2 line n
    shift 2
    if [ -s "$_TAP_DIR/sqlerr" ]; then
        # an SQL error since the previous check fails this one
        status="not ok"
        set -- "$@" "SQL error(s) since the previous check:" "$(cat "$_TAP_DIR/sqlerr")"
        : >"$_TAP_DIR/sqlerr"
    fi
    printf x >>"$_TAP_DIR/count"
    n=$(_tap_count count)
    [ "$status" = ok ] || printf x >>"$_TAP_DIR/failed"
    printf '%s %d - %s\n' "$status" "$n" "$name"
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/#   /'
    done
}

tap_ok() { _tap_result ok "$1"; }

tap_not_ok() {
    local name=$1
    shift
    _tap_result "not ok" "$name" "$@"
}

tap_is() {
    if [ "$2" = "$3" ]; then
        tap_ok "$1"
    else
        tap_not_ok "$1" "got:  $2" "want: $3"
    fi
}

tap_run() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        tap_ok "$name"
    else
        tap_not_ok "$name" "$out"
    fi
}

tap_import() {
    local line
    while IFS= read -r line; do
        case $line in
            "ok - "*) tap_ok "${line#ok - }" ;;
            "not ok - "*) tap_not_ok "${line#not ok - }" ;;
            *) printf '%s\n' "$line" ;;
        esac
    done
}

# wam_psql (ON_ERROR_STOP=1) whose failure is recorded for the next check; its stderr is
# passed on (after its stdout) as well. With TAP_SQL_ERRORS_OK=1 it is plain wam_psql.
tap_psql() {
    local err rc=0
    # (after tap_done, e.g. in an exit hook, there is no check left to fail)
    if [ "${TAP_SQL_ERRORS_OK:-0}" = 1 ] || [ ! -d "$_TAP_DIR" ]; then
        wam_psql "$@"
        return
    fi
    err=$(mktemp "$_TAP_DIR/err.XXXXXX")
    wam_psql "$@" 2>"$err" || rc=$?
    cat "$err" >&2
    if [ "$rc" -ne 0 ]; then
        {
            printf 'psql (exit status %d): %.300s\n' "$rc" "$*"
            head -c 2000 "$err"
        } >>"$_TAP_DIR/sqlerr"
    fi
    rm -f "$err"
    return "$rc"
}

# sql_error [PSQL ARGS...]: `SQLSTATE: message` of the first error the command raises.
sql_error() {
    TAP_SQL_ERRORS_OK=1 wam_psql -qAt -v VERBOSITY=verbose "$@" 2>&1 >/dev/null |
        sed -n 's/^\(psql:[^ ]* \)\{0,1\}ERROR:  //p' | head -n 1
}

tap_done() {
    local n failed
    if [ -s "$_TAP_DIR/sqlerr" ]; then
        _tap_result "not ok" "no SQL error after the last check"
    fi
    n=$(_tap_count count)
    if [ "$n" -eq 0 ]; then
        _tap_result "not ok" "the script ran at least one check"
        n=1
    fi
    failed=$(_tap_count failed)
    printf '1..%d\n' "$n"
    rm -rf "$_TAP_DIR"
    if [ "$failed" -gt 0 ]; then
        printf '# %d of %d checks failed\n' "$failed" "$n"
        exit 1
    fi
    exit 0
}
