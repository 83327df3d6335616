#!/usr/bin/env bash
# test/t/worker_pm_death.sh — the sender worker exits when the postmaster dies: kill -9 of
# the postmaster of a throwaway cluster, once while the worker is idle and once while it
# waits on requests in flight (the mock holds them), and the worker is gone within seconds,
# no orphan of the cluster left behind. stop_cluster (test/lib/cluster.sh) then copes with
# the dead postmaster: it kills nothing but left-overs of that data dir, removes the System
# V segment and the directory.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export WAM_REPO_DIR=$repo
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"
# shellcheck source=test/lib/sender.sh
. "$repo/test/lib/sender.sh"

base_port=${WAM_TEST_PORT:-55432}
TPL='{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{first_name}"}]}]}}'

proc_gone() { # PID: gone, or a zombie (exited; only not yet reaped)
    [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ] ||
        [ ! -e "/proc/$1/stat" ]
}

# one round: NAME SETUP — SETUP (a function) brings the worker into the state to test
round() {
    local name=$1 setup=$2 data wpid ppid i t0 gone="" left dir
    export WAM_SENDER_PORT=$((base_port + 24))
    if ! sender_setup; then
        tap_not_ok "$name: cluster and mock start"
        wam_cleanup
        return
    fi
    dir=$WAM_CLUSTER_DIR
    data=$dir/data
    q "SELECT wam.create_sender('main', '106540352242922', 'test-token', 'test-app-secret', '$(mock_url)', 6000)" >/dev/null
    q "INSERT INTO wam.customer (id, phone, name, consent_at, consent_source)
       SELECT g, '1555' || lpad(g::text, 7, '0'), 'Customer ' || g, now(), 'test' FROM generate_series(1, 10) g" >/dev/null
    "$setup"
    wpid=$(q "SELECT wam.worker_pid()")
    ppid=$(head -n 1 "$data/postmaster.pid")
    if [ -z "$wpid" ] || [[ "$(tr '\0' ' ' <"/proc/$wpid/cmdline" 2>/dev/null)" != *"pg_wamarketing sender"* ]]; then
        tap_not_ok "$name: the worker runs before the kill" "worker pid: '$wpid'"
        wam_cleanup
        return
    fi
    echo "# $name: worker $wpid, postmaster $ppid, $(q "SELECT count(*) FROM wam.outbox WHERE status = 'sending'") requests in flight"
    kill -9 "$ppid"
    t0=$(date +%s.%N)
    for ((i = 0; i < 150; i++)); do
        if proc_gone "$wpid"; then
            gone=$(python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
            break
        fi
        sleep 0.1
    done
    if [ -n "$gone" ]; then
        tap_ok "$name: the worker exits after kill -9 of the postmaster (gone after ${gone} s)"
    else
        tap_not_ok "$name: the worker exits after kill -9 of the postmaster" "still there after 15 s: $(ps -o pid,stat,cmd -p "$wpid" | tail -n +2)"
    fi
    # PostgreSQL's own processes notice too; whatever of this cluster is left is an orphan
    for ((i = 0; i < 100; i++)); do
        left=$(wam_cluster_pids "$data")
        [ -z "$left" ] && break
        sleep 0.1
    done
    tap_is "$name: no process of the cluster is left" "$left" ""
    wam_cleanup
    tap_is "$name: stop_cluster copes with the dead postmaster: directory removed, nothing left" \
        "$([ -e "$dir" ] && echo "$dir still there") $(wam_cluster_pids "$data")" " "
    # a fresh round may start its own cluster and traps
    _WAM_EXIT_DONE=0 _WAM_EXIT_HOOKS=() _WAM_TRAPS_SET=0
    trap - EXIT INT TERM
}

idle() {
    # no message waiting: the worker sleeps on its latch
    sleep 1
}

in_flight() {
    # the mock holds every request; the worker waits on the HTTP transfers
    q "ALTER SYSTEM SET wam.sender_http_timeout = '60s'" >/dev/null
    q "SELECT pg_reload_conf()" >/dev/null
    mock POST '/_mock/config?replace=1' '{"faults": [{"match": {}, "action": "timeout", "seconds": 60}]}' >/dev/null
    q "SELECT wam.enqueue_segment(wam.segment_range(1, 4), '$TPL')" >/dev/null
    for ((i = 0; i < 100; i++)); do
        [ "$(q "SELECT count(*) FROM wam.outbox WHERE status = 'sending'")" = 3 ] && break
        sleep 0.1
    done
}

round "idle worker" idle
round "worker with requests in flight" in_flight

tap_done
