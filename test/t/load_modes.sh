#!/usr/bin/env bash
# test/t/load_modes.sh — the library works both loaded on demand and from
# shared_preload_libraries (only the sender worker needs preloading).  Starts its own cluster without preloading, on its own port, so it
# also runs under `bash test/run check`, whose cluster preloads the library.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

# A cluster of our own, whatever test/run started.
preloaded_host=${PGHOST:-}
preloaded_port=${PGPORT:-}
preloaded_running=${WAM_CLUSTER_RUNNING:-0}
unset WAM_CLUSTER_RUNNING PGHOST PGPORT
export WAM_TEST_PORT=$(( ${WAM_TEST_PORT:-55432} + 7 ))
export WAM_PRELOAD=''

# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

start_cluster || { echo "not ok - load modes: cluster start"; exit 1; }

q() { wam_psql -qAt -d postgres "$@"; }

tap_is "on demand: shared_preload_libraries is empty" "$(q -c 'SHOW shared_preload_libraries')" ""
tap_is "on demand: CREATE EXTENSION and a segment query work" \
    "$(q -c 'CREATE EXTENSION pg_wamarketing' -c "SELECT wam.segment_cardinality('{1,2,3}')")" "3"
tap_is "on demand: the wam.* settings exist once loaded" \
    "$(q -c "SELECT '{1}'::wam.segment IS NOT NULL" -c "SHOW wam.segment_output_format")" "$(printf 't\narray')"
tap_is "on demand: a new session loads the library by itself" \
    "$(q -c "SELECT wam.segment_to_array(wam.segment_range(1, 4))")" "{1,2,3}"
tap_is "on demand: DROP EXTENSION leaves no schema" \
    "$(q -c 'DROP EXTENSION pg_wamarketing' -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'wam'")" "0"
stop_cluster

# The preloaded case: test/run's cluster (or a fresh one when run alone).
if [ "$preloaded_running" = 1 ]; then
    export PGHOST=$preloaded_host PGPORT=$preloaded_port WAM_CLUSTER_RUNNING=1
else
    export WAM_TEST_PORT=$(( WAM_TEST_PORT + 1 ))
fi
unset WAM_PRELOAD
start_cluster || { echo "not ok - load modes: preloaded cluster start"; exit 1; }
tap_is "preloaded: shared_preload_libraries names the library" \
    "$(q -c 'SHOW shared_preload_libraries')" "pg_wamarketing"
tap_is "preloaded: the settings exist before any call" \
    "$(q -c 'SHOW wam.segment_output_format')" "array"
db=wam_load_modes_t
q -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
tap_is "preloaded: CREATE EXTENSION and a segment query work" \
    "$(wam_psql -qAt -d $db -c 'CREATE EXTENSION pg_wamarketing' -c "SELECT wam.segment_cardinality('{1,2,3}')")" "3"
q -q -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
tap_done
