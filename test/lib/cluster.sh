# shellcheck shell=bash
# test/lib/cluster.sh — throwaway PostgreSQL 15 cluster for tests, demo and benchmarks.
#
# Source it, then:
#     start_cluster [name=value ...]   # extra server settings (override the defaults)
#     wam_psql -c 'SELECT 1'           # psql -X -v ON_ERROR_STOP=1 against that cluster
#     wam_on_exit 'kill "$MOCK_PID"'   # extra cleanup, run (last first) before the cluster stops
#     stop_cluster                     # optional: also runs automatically on EXIT/INT/TERM
#     wam_cleanup                      # optional: run the exit hooks + stop_cluster right now
#
# If the caller already runs inside a cluster started by test/run (WAM_CLUSTER_RUNNING=1 with
# PGHOST and PGPORT exported), start_cluster reuses it and stop_cluster leaves it alone.
#
# The cluster lives in a fresh `mktemp -d` directory owned by the unprivileged OS user
# wamtest (initdb refuses root); it listens on no TCP address, only on a unix socket in
# that directory, on port $WAM_TEST_PORT (default 55432). The server never reads repo files.
#
# Environment knobs:
#   WAM_TEST_PORT        port number (default 55432)
#   WAM_TEST_OS_USER     OS user that owns the cluster when running as root (default wamtest)
#   WAM_TMP_ROOT         where the temp dir is created (default /tmp; must be traversable by
#                        the OS user)
#   WAM_PRELOAD          shared_preload_libraries (default pg_wamarketing; '' to disable)
#   WAM_PG_EXTRA_CONF    extra postgresql.conf lines appended after the defaults and args
#   WAM_KEEP_CLUSTER_DIR =1 keeps the temp dir (data + server.log) after stopping
#
# Exported after start_cluster: PGHOST PGPORT PGUSER PGDATABASE WAM_CLUSTER_RUNNING=1
# WAM_CLUSTER_DIR (temp dir) WAM_SERVER_LOG (server log file) WAM_PG_BIN.
#
# Callers must not install their own EXIT/INT/TERM trap after start_cluster (it would
# replace ours); register cleanup with wam_on_exit instead.

WAM_PG_BIN=${WAM_PG_BIN:-/usr/lib/postgresql/15/bin}
export WAM_PG_BIN

# Non-exported state: only the shell that started the cluster owns (and stops) it.
_WAM_CLUSTER_OWNED=0
_WAM_EXIT_HOOKS=()
_WAM_EXIT_DONE=0
_WAM_TRAPS_SET=0

_wam_log() { printf '[cluster] %s\n' "$*" >&2; }

# Run a command as the cluster's OS user (wamtest when we are root, else ourselves),
# from inside the cluster dir so a repo dir it cannot read is never its cwd.
_wam_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "${WAM_CLUSTER_DIR:-/}" && runuser -u "${WAM_TEST_OS_USER:-wamtest}" -- "$@")
    else
        (cd "${WAM_CLUSTER_DIR:-/}" && "$@")
    fi
}

# Create the unprivileged OS user if it is missing (root only).
ensure_test_user() {
    local u=${WAM_TEST_OS_USER:-wamtest}
    [ "$(id -u)" -eq 0 ] || return 0
    if ! id -u "$u" >/dev/null 2>&1; then
        _wam_log "creating system user $u"
        useradd --system --create-home --shell /bin/bash "$u" || return 1
    fi
}

# Register a cleanup command (a string evaluated with eval) run at exit, last one first,
# before the cluster is stopped.
wam_on_exit() {
    _wam_exit_hooks_add "$1"
    _wam_install_traps
}

_wam_exit_hooks_add() { _WAM_EXIT_HOOKS+=("$1"); }

_wam_install_traps() {
    [ "$_WAM_TRAPS_SET" -eq 1 ] && return 0
    _WAM_TRAPS_SET=1
    trap '_wam_exit_handler' EXIT
    trap '_wam_exit_handler; trap - EXIT; exit 130' INT
    trap '_wam_exit_handler; trap - EXIT; exit 143' TERM
}

# Run the exit hooks and stop the cluster now (idempotent; the traps then do nothing more).
wam_cleanup() { _wam_exit_handler; }

_wam_exit_handler() {
    local i
    [ "$_WAM_EXIT_DONE" -eq 1 ] && return 0
    _WAM_EXIT_DONE=1
    for ((i = ${#_WAM_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
        eval "${_WAM_EXIT_HOOKS[i]}" || true
    done
    stop_cluster || true
}

_wam_conf_quote() { printf "'%s'" "${1//\'/\'\'}"; }

# start_cluster [name=value ...]
start_cluster() {
    local port dir sock data conf kv name value tries

    if [ "${WAM_CLUSTER_RUNNING:-0}" = 1 ] && [ -n "${PGHOST:-}" ] && [ -n "${PGPORT:-}" ]; then
        if "$WAM_PG_BIN/pg_isready" -q -h "$PGHOST" -p "$PGPORT" -t 10; then
            _wam_log "reusing running cluster (PGHOST=$PGHOST PGPORT=$PGPORT)"
            export PGUSER=${PGUSER:-wamtest} PGDATABASE=${PGDATABASE:-postgres}
            return 0
        fi
        _wam_log "WAM_CLUSTER_RUNNING=1 but no server answers at $PGHOST:$PGPORT"
        return 1
    fi
    if [ "$_WAM_CLUSTER_OWNED" -eq 1 ]; then
        _wam_log "cluster already started by this shell"
        return 0
    fi

    port=${WAM_TEST_PORT:-55432}
    case $port in
        '' | *[!0-9]*) _wam_log "WAM_TEST_PORT must be a number, got '$port'"; return 1 ;;
    esac
    [ -x "$WAM_PG_BIN/initdb" ] || { _wam_log "no $WAM_PG_BIN/initdb (is postgresql-15 installed?)"; return 1; }
    ensure_test_user || return 1

    dir=$(mktemp -d "${WAM_TMP_ROOT:-/tmp}/wam-cluster.XXXXXX") || return 1
    chmod 755 "$dir"
    sock=$dir/sock
    data=$dir/data
    mkdir -p "$sock"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "${WAM_TEST_OS_USER:-wamtest}:" "$dir" || { rm -rf "$dir"; return 1; }
    fi
    # From here on a failure must still clean up: own it and arm the traps first.
    export WAM_CLUSTER_DIR=$dir
    _WAM_CLUSTER_OWNED=1
    _wam_install_traps

    if ! _wam_as_owner "$WAM_PG_BIN/initdb" -D "$data" -A trust --no-sync -E UTF8 \
            --locale=C.UTF-8 >"$dir/initdb.log" 2>&1; then
        _wam_log "initdb failed:"
        cat "$dir/initdb.log" >&2
        stop_cluster
        return 1
    fi

    conf=$data/postgresql.conf
    {
        echo
        echo "# --- test/lib/cluster.sh ---"
        echo "port = $port"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = $(_wam_conf_quote "$sock")"
        echo "shared_preload_libraries = $(_wam_conf_quote "${WAM_PRELOAD-pg_wamarketing}")"
        echo "max_worker_processes = 16"
        echo "max_connections = 100"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        echo "logging_collector = off"
        echo "log_line_prefix = '%m [%p] %q%a '"
        echo "lc_messages = 'C'"
        # the mock Cloud API (test/mock) serves https://localhost:PORT; sql/referral.sql
        # names graph.example (never contacted)
        echo "wam.sender_allowed_hosts = 'graph.facebook.com, localhost, graph.example'"
        for kv in "$@"; do
            case $kv in
                *=*) name=${kv%%=*}; value=${kv#*=} ;;
                *) _wam_log "bad setting '$kv' (want name=value)"; stop_cluster; return 1 ;;
            esac
            echo "$name = $(_wam_conf_quote "$value")"
        done
        if [ -n "${WAM_PG_EXTRA_CONF:-}" ]; then
            printf '%s\n' "$WAM_PG_EXTRA_CONF"
        fi
    } >>"$conf"

    export WAM_SERVER_LOG=$dir/server.log
    _wam_as_owner touch "$WAM_SERVER_LOG"
    if ! _wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$data" -l "$WAM_SERVER_LOG" -w -t 60 -s start; then
        _wam_log "server failed to start; last lines of $WAM_SERVER_LOG:"
        tail -n 40 "$WAM_SERVER_LOG" >&2 || true
        stop_cluster
        return 1
    fi

    export PGHOST=$sock PGPORT=$port PGDATABASE=postgres WAM_CLUSTER_RUNNING=1
    if [ "$(id -u)" -eq 0 ]; then
        export PGUSER=${WAM_TEST_OS_USER:-wamtest}
    else
        PGUSER=$(id -un)
        export PGUSER
    fi
    # pg_ctl -w already waited; double-check the socket answers.
    tries=0
    until "$WAM_PG_BIN/pg_isready" -q -h "$PGHOST" -p "$PGPORT"; do
        tries=$((tries + 1))
        if [ "$tries" -ge 30 ]; then
            _wam_log "server does not answer on $PGHOST:$PGPORT"
            stop_cluster
            return 1
        fi
        sleep 1
    done
    _wam_log "started PostgreSQL $("$WAM_PG_BIN/postgres" -V | awk '{print $3}') in $dir (port $PGPORT, socket dir $PGHOST)"
}

# Processes of the cluster in data dir $1: PostgreSQL's postmaster and every process it
# forked run with the data directory as their working directory, so that identifies them
# (a pid alone may have been reused once the postmaster died). Zombies have no cwd.
wam_cluster_pids() {
    local real pat
    real=$(readlink -f "$1" 2>/dev/null) || return 0
    [ -n "$real" ] || return 0
    # one find for all of /proc (-lname matches the link's target as a pattern: escape it)
    pat=$(printf '%s' "$real" | sed 's/[][*?\\]/\\&/g')
    find /proc/[0-9]*/cwd -maxdepth 0 -lname "$pat" 2>/dev/null | sed 's|^/proc/\([0-9]*\)/cwd$|\1|'
    return 0
}

# Stop the cluster this shell started (no-op for a reused or already stopped one). Copes
# with a postmaster that is already dead (kill -9 in a test): its children are given time to
# notice and exit, stragglers of this data dir (and only those) are killed, the left-over
# System V shared memory segment is removed, and the directory goes as usual.
stop_cluster() {
    local dir=${WAM_CLUSTER_DIR:-} data pid pids shm key i
    [ "$_WAM_CLUSTER_OWNED" -eq 1 ] || return 0
    _WAM_CLUSTER_OWNED=0
    [ -n "$dir" ] || return 0
    data=$dir/data
    if [ -f "$data/postmaster.pid" ]; then
        pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
        case $pid in '' | *[!0-9]*) pid="" ;; esac
        # (without a readable /proc, trust the pid file as pg_ctl does)
        # (no `| grep -q`: under pipefail the writer's SIGPIPE would fail the test)
        if [ -n "$pid" ] && { case " $(echo $(wam_cluster_pids "$data")) " in *" $pid "*) true ;; *) false ;; esac ||
            { [ ! -r /proc/self/cwd ] && kill -0 "$pid" 2>/dev/null; }; }; then
            if ! _wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 -s stop 2>/dev/null; then
                _wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 30 -s stop 2>/dev/null || true
            fi
        fi
        # A dead postmaster's children exit on their own within moments; wait, then kill
        # whatever of this data dir is left (last resort, never a bare pid).
        for ((i = 0; i < 50; i++)); do
            pids=$(wam_cluster_pids "$data")
            [ -z "$pids" ] && break
            sleep 0.2
        done
        if [ -n "$pids" ]; then
            _wam_log "killing left-over processes of $data: $(echo $pids)"
            # shellcheck disable=SC2086
            kill -9 $pids 2>/dev/null || true
            sleep 0.5
        fi
        # The postmaster removes its System V segment only on a clean exit.
        if [ -f "$data/postmaster.pid" ] && command -v ipcs >/dev/null && command -v ipcrm >/dev/null; then
            read -r key shm < <(sed -n 7p "$data/postmaster.pid" 2>/dev/null) || true
            case "$key:$shm" in
                *[!0-9:]* | :* | *:) ;;
                *)
                    # only that segment (key and id as the pid file says) and only if unused
                    if ipcs -m 2>/dev/null | awk -v k="$(printf '0x%08x' "$key")" -v id="$shm" \
                        '$1 == k && $2 == id && $6 == 0 { f = 1 } END { exit !f }'; then
                        ipcrm -m "$shm" 2>/dev/null || true
                    fi
                    ;;
            esac
        fi
    fi
    if [ "${WAM_KEEP_CLUSTER_DIR:-0}" = 1 ]; then
        _wam_log "stopped; kept $dir (WAM_KEEP_CLUSTER_DIR=1)"
    else
        rm -rf "$dir"
        _wam_log "stopped and removed $dir"
    fi
    unset WAM_CLUSTER_DIR WAM_CLUSTER_RUNNING WAM_SERVER_LOG PGHOST PGPORT
}

# psql against the test cluster: no psqlrc, stop on the first error.
wam_psql() {
    "$WAM_PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h "${PGHOST:?start_cluster first}" \
        -p "${PGPORT:?start_cluster first}" -U "${PGUSER:-wamtest}" "$@"
}
