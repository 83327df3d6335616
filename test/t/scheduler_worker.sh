#!/usr/bin/env bash
# test/t/scheduler_worker.sh — the scheduler worker runs the periodic jobs by itself: a due
# job runs and is recorded, a failing job does not stop another due at the same time, a
# changed schedule is picked up, the schedule survives a restart (nothing runs early, a job due during the downtime runs
# once after it). Own cluster with shared_preload_libraries and a short wam.scheduler_naptime;
# every wait polls a condition (no check reads a timing).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export WAM_REPO_DIR=$repo
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

export WAM_TEST_PORT=$((${WAM_TEST_PORT:-55432} + 27))
export WAM_PRELOAD=pg_wamarketing
unset WAM_CLUSTER_RUNNING PGHOST PGPORT
start_cluster "wam.scheduler_naptime=200ms" || { tap_not_ok "cluster start"; tap_done; }

q() { tap_psql -qAt -d postgres -c "$1"; }
wait_for() { # SQL WANT SECONDS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [ "$(TAP_SQL_ERRORS_OK=1 q "$1" 2>/dev/null)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
runs() { q "SELECT count(*) FROM wam.job_run WHERE job = '$1'"; }

q "CREATE EXTENSION pg_wamarketing" >/dev/null
tap_is "the scheduler worker runs (one, named in pg_stat_activity)" \
    "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_wamarketing scheduler'")" 1
# the first look schedules every job; none is due at once
if wait_for "SELECT count(*) FROM wam.job WHERE next_run_at IS NULL" 0 20; then
    tap_ok "the worker schedules the seeded jobs"
else
    tap_not_ok "the worker schedules the seeded jobs" "$(q "SELECT job || ' ' || coalesce(next_run_at::text, '-') FROM wam.job")"
fi
tap_is "no job runs before it is due" "$(q "SELECT count(*) FROM wam.job_run")" 0

# a due job runs and is recorded
q "INSERT INTO wam.customer (phone) SELECT '8529300' || lpad(i::text, 4, '0') FROM generate_series(1, 5) i" >/dev/null
q "SELECT wam.create_tag('trial', 'interest')" >/dev/null
q "SELECT wam.attach_tag('trial', '{1,2,3}', interval '1 hour')" >/dev/null
q "UPDATE wam.customer_tag SET expires_at = now() - interval '1 minute' WHERE customer_id IN (1, 2)" >/dev/null
q "UPDATE wam.job SET next_run_at = now() WHERE job = 'expire tags'" >/dev/null
if wait_for "SELECT count(*) FROM wam.job_run WHERE job = 'expire tags'" 1 20; then
    tap_ok "a due job runs by itself"
else
    tap_not_ok "a due job runs by itself" "$(tail -n 20 "$WAM_SERVER_LOG")"
fi
tap_is "its run is recorded with its result; the expired attachments are gone" \
    "$(q "SELECT last_outcome || ' / ' || last_result FROM wam.job_status WHERE job = 'expire tags'") $(q "SELECT array_agg(customer_id ORDER BY 1) FROM wam.customer_tag")" \
    "ok / 2 expired attachments removed {3}"
tap_is "the next run is one period on" \
    "$(q "SELECT next_run_at - scheduled_for FROM wam.job j JOIN wam.job_run r USING (job) WHERE job = 'expire tags'")" "00:15:00"

# a failing job does not stop another one due at the same time
q "INSERT INTO wam.tag_rule (name, condition, add_tags) VALUES ('broken', '((', '{trial}')" >/dev/null
q "UPDATE wam.job SET next_run_at = now() WHERE job IN ('run tag rules', 'tag health report')" >/dev/null
if wait_for "SELECT count(*) FROM wam.job_run WHERE job IN ('run tag rules', 'tag health report')" 2 20; then
    tap_ok "both due jobs ran"
else
    tap_not_ok "both due jobs ran" "$(tail -n 20 "$WAM_SERVER_LOG")"
fi
tap_is "the failing one is recorded with its error, the other succeeded" \
    "$(q "SELECT string_agg(job || ': ' || last_outcome || coalesce(' (' || left(last_error, 26) || ')', ''), '; ' ORDER BY job) FROM wam.job_status WHERE job IN ('run tag rules', 'tag health report')")" \
    'run tag rules: failed (condition of rule "broken"); tag health report: ok'
tap_is "the report's rows are stored" "$(q "SELECT count(*) FROM wam.tag_health_report_tag WHERE tag = 'trial'")" 1
q "DELETE FROM wam.tag_rule WHERE name = 'broken'" >/dev/null

# a schedule changed by an admin is picked up: run tag rules every minute
q "UPDATE wam.job SET run_every = interval '1 minute' WHERE job = 'run tag rules'" >/dev/null
if wait_for "SELECT next_run_at IS NOT NULL AND next_run_at <= now() + interval '1 minute' FROM wam.job WHERE job = 'run tag rules'" t 20; then
    tap_ok "a changed schedule is rescheduled by the worker"
else
    tap_not_ok "a changed schedule is rescheduled by the worker" "$(q "SELECT next_run_at FROM wam.job WHERE job = 'run tag rules'")"
fi

# the schedule survives a restart; a job due during the downtime runs once after it
q "UPDATE wam.job SET next_run_at = now() + interval '1 day' WHERE job = 'tag audit'" >/dev/null
audit_next=$(q "SELECT next_run_at FROM wam.job WHERE job = 'tag audit'")
report_runs=$(runs 'tag health report')
q "UPDATE wam.job SET next_run_at = now() + interval '2 seconds' WHERE job = 'tag health report'" >/dev/null
_wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$WAM_CLUSTER_DIR/data" -m fast -w -t 60 -s stop >/dev/null 2>&1
sleep 3 # the report becomes due while the server is down
_wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$WAM_CLUSTER_DIR/data" -l "$WAM_SERVER_LOG" -w -t 60 -s start >/dev/null 2>&1
if wait_for "SELECT count(*) FROM wam.job_run WHERE job = 'tag health report'" "$((report_runs + 1))" 20; then
    tap_ok "after a restart the job that fell due meanwhile runs"
else
    tap_not_ok "after a restart the job that fell due meanwhile runs" "$(tail -n 20 "$WAM_SERVER_LOG")"
fi
tap_is "it ran once and is next due in a week's slot; the audit kept its time" \
    "$(runs 'tag health report') $(q "SELECT next_run_at > now() + interval '1 day' FROM wam.job WHERE job = 'tag health report'") $(q "SELECT next_run_at FROM wam.job WHERE job = 'tag audit'")" \
    "$((report_runs + 1)) t $audit_next"
tap_is "server log: no job error outside the recorded runs, no crash" \
    "$(grep -c 'pg_wamarketing scheduler: .* failed\|terminated by signal' "$WAM_SERVER_LOG")" 0

tap_done
