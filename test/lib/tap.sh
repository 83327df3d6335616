# shellcheck shell=bash
# test/lib/tap.sh — tiny helpers for test/t/*.sh scripts.
#
# test/run counts lines starting with `ok - NAME` and `not ok - NAME`; a script that exits
# non-zero without printing any `not ok` line counts as one failure.
#
#     tap_ok NAME                 # pass
#     tap_not_ok NAME [DIAG...]   # fail, DIAG lines printed as `# ...`
#     tap_is NAME GOT WANT        # pass iff GOT = WANT (string compare)
#     tap_run NAME CMD [ARGS...]  # pass iff CMD exits 0 (its output is shown as `# ...` on failure)
#     tap_done                    # exit 1 if anything failed, else 0

_TAP_FAILED=0
_TAP_COUNT=0

tap_ok() {
    _TAP_COUNT=$((_TAP_COUNT + 1))
    printf 'ok - %s\n' "$1"
}

tap_not_ok() {
    local name=$1 line
    shift
    _TAP_COUNT=$((_TAP_COUNT + 1))
    _TAP_FAILED=$((_TAP_FAILED + 1))
    printf 'not ok - %s\n' "$name"
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/#   /'
    done
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

tap_done() {
    if [ "$_TAP_FAILED" -gt 0 ]; then
        printf '# %d of %d checks failed\n' "$_TAP_FAILED" "$_TAP_COUNT"
        exit 1
    fi
    exit 0
}
