# shellcheck shell=bash
# test/lib/citus.sh — Citus for the tests: build it from the vendored archive, run a cluster.
#
#     citus_installed       # true when $WAM_PG_CONFIG's citus.so is Citus $WAM_CITUS_VERSION
#     citus_build_install   # configure, make -j2, make install-extension (skipped if installed)
#     citus_start           # coordinator + 2 workers (ports WAM_CITUS_PORT .. +2), citus and
#                           # pg_wamarketing preloaded, the workers added; stopped at exit
#     citus_psql N [ARGS]   # psql -X -v ON_ERROR_STOP=1 against node N (0 = coordinator)
#     citus_stop            # stop every node (also runs at EXIT/INT/TERM through cluster.sh)
#
# The archive is Citus's source exactly as tagged upstream (AGPL-3.0, see its LICENSE); no
# Citus code is kept in this repository. The one local change is made at build time:
# Debian's PostgreSQL 15.18+ exports have_createdb_privilege() from commands/dbcommands.h,
# while Citus's src/include/pg_version_compat.h defines a `static inline` copy for PG 15, so
# that copy is replaced by the include (only when the server headers declare the function).
# Build dependencies are in WAM_APT_PACKAGES (test/lib/deps.sh); the build needs no libcurl.
#
# The nodes run as the unprivileged test OS user (cluster.sh's wamtest when root) in one
# mktemp directory, each listening on a unix socket in its own private directory; Citus's
# connections between nodes go over those sockets (node name = the socket directory), so no
# TCP port is opened.
#
# Knobs: WAM_CITUS_ARCHIVE (default /work/shared/vendor/citus-13.2.2.tar.gz, else
# $WAM_REPO_DIR/../shared/vendor/...), WAM_CITUS_PORT (default 56700), WAM_CITUS_VERSION.

WAM_CITUS_VERSION=${WAM_CITUS_VERSION:-13.2.2}
WAM_CITUS_PORT=${WAM_CITUS_PORT:-56700}

citus_archive() {
    local a
    for a in "${WAM_CITUS_ARCHIVE:-}" \
        "$WAM_REPO_DIR/../shared/vendor/citus-$WAM_CITUS_VERSION.tar.gz" \
        "/work/shared/vendor/citus-$WAM_CITUS_VERSION.tar.gz"; do
        [ -n "$a" ] && [ -f "$a" ] && { printf '%s\n' "$a"; return 0; }
    done
    return 1
}

citus_installed() {
    local so
    so="$("$WAM_PG_CONFIG" --pkglibdir)/citus.so"
    [ -f "$so" ] && grep -aq "Citus $WAM_CITUS_VERSION " "$so" &&
        [ -f "$("$WAM_PG_CONFIG" --sharedir)/extension/citus.control" ]
}

citus_build_install() {
    local archive build rc=0 start=$SECONDS inc
    if citus_installed; then
        echo "[citus] Citus $WAM_CITUS_VERSION already installed in $("$WAM_PG_CONFIG" --pkglibdir): build skipped"
        return 0
    fi
    archive=$(citus_archive) || { echo "[citus] no citus-$WAM_CITUS_VERSION.tar.gz found" >&2; return 1; }
    build=$(mktemp -d "${TMPDIR:-/tmp}/wam-citus-build.XXXXXX") || return 1
    echo "[citus] building Citus $WAM_CITUS_VERSION from $archive in $build"
    (
        # (set -e does not hold in a subshell tested by ||: every step checks for itself)
        cd "$build" || exit 1
        tar xzf "$archive" || exit 1
        cd "citus-$WAM_CITUS_VERSION" || exit 1
        inc=$("$WAM_PG_CONFIG" --includedir-server) || exit 1
        if grep -q 'have_createdb_privilege' "$inc/commands/dbcommands.h"; then
            # drop Citus's static inline copy, use the server's exported declaration
            sed -i '/^static inline bool$/{N;/\nhave_createdb_privilege(void)$/{:a;N;/\n}$/!ba;s/.*/#include "commands\/dbcommands.h"/}}' \
                src/include/pg_version_compat.h || exit 1
            grep -q '^#include "commands/dbcommands.h"$' src/include/pg_version_compat.h ||
                { echo "[citus] the pg_version_compat.h fix did not apply" >&2; exit 1; }
        fi
        ./configure -q --without-libcurl PG_CONFIG="$WAM_PG_CONFIG" >configure.log 2>&1 ||
            { tail -n 30 configure.log; exit 1; }
        make -s -j2 >make.log 2>&1 || { grep -E 'error|Error' make.log | head -n 30; exit 1; }
        # the extension only (citus + columnar); no headers into the server's include dir
        make -s install-extension >install.log 2>&1 || { tail -n 30 install.log; exit 1; }
    ) || rc=$?
    rm -rf "$build"
    if [ "$rc" -ne 0 ]; then
        echo "[citus] build failed" >&2
        return 1
    fi
    citus_installed || { echo "[citus] installed citus.so does not report $WAM_CITUS_VERSION" >&2; return 1; }
    echo "[citus] built and installed Citus $WAM_CITUS_VERSION in $((SECONDS - start))s"
}

# ---------------------------------------------------------------- the cluster

_CITUS_DIR=""
_CITUS_STARTED=()

_citus_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$_CITUS_DIR" && runuser -u "${WAM_TEST_OS_USER:-wamtest}" -- "$@")
    else
        (cd "$_CITUS_DIR" && "$@")
    fi
}

citus_sock() { printf '%s/sock%d' "$_CITUS_DIR" "$1"; }
citus_port() { printf '%d' $((WAM_CITUS_PORT + $1)); }

citus_psql() {
    local n=$1
    shift
    "$WAM_PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h "$(citus_sock "$n")" -p "$(citus_port "$n")" \
        -U "${CITUS_PGUSER:?citus_start first}" -d "${CITUS_DB:-postgres}" "$@"
}

# citus_start [name=value ...]: extra server settings for every node
citus_start() {
    local n data kv
    ensure_test_user || return 1
    _CITUS_DIR=$(mktemp -d "${WAM_TMP_ROOT:-${TMPDIR:-/tmp}}/wam-citus.XXXXXX") || return 1
    chmod 755 "$_CITUS_DIR"
    for n in 0 1 2; do mkdir -p "$(citus_sock $n)"; chmod 700 "$(citus_sock $n)"; done
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "${WAM_TEST_OS_USER:-wamtest}:" "$_CITUS_DIR" || return 1
        CITUS_PGUSER=${WAM_TEST_OS_USER:-wamtest}
    else
        CITUS_PGUSER=$(id -un)
    fi
    export CITUS_PGUSER
    wam_on_exit citus_stop
    for n in 0 1 2; do
        data=$_CITUS_DIR/data$n
        _citus_as_owner "$WAM_PG_BIN/initdb" -D "$data" -A trust --no-sync -E UTF8 --locale=C.UTF-8 \
            >"$_CITUS_DIR/initdb$n.log" 2>&1 || { cat "$_CITUS_DIR/initdb$n.log" >&2; return 1; }
        {
            echo "port = $(citus_port $n)"
            echo "listen_addresses = ''"
            echo "unix_socket_directories = '$(citus_sock $n)'"
            echo "shared_preload_libraries = 'citus,pg_wamarketing'"
            echo "max_worker_processes = 16"
            echo "max_connections = 60"
            echo "shared_buffers = 64MB"
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
            echo "lc_messages = 'C'"
            echo "log_line_prefix = '%m [%p] node$n '"
            echo "citus.enable_statistics_collection = off"
            echo "citus.max_background_task_executors_per_node = 1"
            for kv in "$@"; do echo "${kv%%=*} = '${kv#*=}'"; done
        } | _citus_as_owner tee -a "$data/postgresql.conf" >/dev/null
        _citus_as_owner touch "$_CITUS_DIR/server$n.log"
        _CITUS_STARTED+=("$n")
        if ! _citus_as_owner "$WAM_PG_BIN/pg_ctl" -D "$data" -l "$_CITUS_DIR/server$n.log" -w -t 60 -s start; then
            tail -n 30 "$_CITUS_DIR/server$n.log" >&2
            return 1
        fi
    done
    for n in 0 1 2; do
        citus_psql "$n" -q -c 'CREATE EXTENSION citus' || return 1
    done
    citus_psql 0 -q -At \
        -c "SELECT citus_set_coordinator_host('$(citus_sock 0)', $(citus_port 0))" \
        -c "SELECT citus_add_node('$(citus_sock 1)', $(citus_port 1))" \
        -c "SELECT citus_add_node('$(citus_sock 2)', $(citus_port 2))" >/dev/null || return 1
    echo "[citus] coordinator + 2 workers running in $_CITUS_DIR (ports $(citus_port 0)-$(citus_port 2))" >&2
}

citus_server_logs() { cat "$_CITUS_DIR"/server[0-2].log 2>/dev/null; }

citus_stop() {
    local n data
    [ -n "$_CITUS_DIR" ] || return 0
    for n in "${_CITUS_STARTED[@]}"; do
        data=$_CITUS_DIR/data$n
        [ -f "$data/postmaster.pid" ] || continue
        _citus_as_owner "$WAM_PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 -s stop 2>/dev/null ||
            _citus_as_owner "$WAM_PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 30 -s stop 2>/dev/null || true
    done
    _CITUS_STARTED=()
    if [ "${WAM_KEEP_CLUSTER_DIR:-0}" = 1 ]; then
        echo "[citus] stopped; kept $_CITUS_DIR" >&2
    else
        rm -rf "$_CITUS_DIR"
    fi
    _CITUS_DIR=""
}
