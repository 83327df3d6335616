#!/usr/bin/env bash
# test/t/decay_alert.sh — decay alerts reach a listener by themselves: a session LISTENs on
# wam_alerts, the scheduler worker runs the "decay alerts" job when it is due, and the
# session receives the notification of the alert the job raised (a saved segment whose
# weekly click rate fell to nothing two weeks in a row); a segment that did not fall, and
# one below the minimum sample, raise nothing. Own cluster with the scheduler and a short
# wam.scheduler_naptime; every wait polls a condition (no check reads a timing).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export WAM_REPO_DIR=$repo
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

export WAM_TEST_PORT=$((${WAM_TEST_PORT:-55432} + 43))
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
wait_file() { # FILE PATTERN SECONDS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

q "CREATE EXTENSION pg_wamarketing" >/dev/null
wait_for "SELECT count(*) FROM wam.job WHERE next_run_at IS NULL" 0 20 || tap_not_ok "the worker schedules the jobs"

# 30 customers; "vip" (1..10) clicked every campaign message for 4 weeks and none
# in the 2 weeks since; "rest" (11..30) clicks on; "few" (1..3) is below the guard
# of 5 messages a week. Weeks are those before the current one, as the job sees them now.
q "INSERT INTO wam.customer (id, phone) SELECT g, '8529300' || lpad(g::text, 4, '0') FROM generate_series(1, 30) g" >/dev/null
q "SELECT wam.create_tag(t, 'interest') FROM unnest('{vip,rest,few}'::text[]) t" >/dev/null
q "SELECT wam.attach_tag('vip', wam.segment_range(1, 11)), wam.attach_tag('rest', wam.segment_range(11, 31)), wam.attach_tag('few', wam.segment_range(1, 4))" >/dev/null
q "SELECT wam.define_segment(s, s) FROM unnest('{vip,rest,few}'::text[]) s" >/dev/null
q "SELECT wam.create_sender('main', '106540352242922', 'EAAtoken-main', 'main-secret', 'https://localhost:9')" >/dev/null
q "INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, campaign_id, category, status,
                          created_at, sending_at, sent_at, wamid)
   SELECT 1, c, '8529300' || lpad(c::text, 4, '0'), '{}', 'weekly', 1, 'marketing', 'sent', t, t, t, 'wamid.' || c || '.' || w
   FROM generate_series(1, 30) c, generate_series(1, 6) w,
        LATERAL (SELECT (date_trunc('week', (now() - interval '1 day') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
                        - interval '42 days' + (w - 1) * interval '7 days' + interval '2 days 10 hours' AS t) x" >/dev/null
q "SELECT count(wam.record_click(o.message_id, 'https://shop.example.com/x', o.sent_at + interval '1 hour'))
   FROM wam.outbox o WHERE o.customer_id > 10 OR right(o.wamid, 1)::integer <= 4" >/dev/null
q "UPDATE wam.job SET options = options || '{\"min_messages\": 5}' WHERE job = 'decay alerts'" >/dev/null
tap_is "the report: vip fell two weeks in a row, rest did not, few is below the guard" \
    "$(q "SELECT string_agg(group_name || ' ' || alert, ', ' ORDER BY group_name) FROM wam.click_decay(now(), '{\"min_messages\": 5}')")" \
    "few false, rest false, vip true"

# a listening session: LISTEN, then short statements (psql prints a notification after
# the statement during which it arrived)
listen_out=$WAM_CLUSTER_DIR/listen.out
{
    echo "LISTEN wam_alerts;"
    for ((i = 0; i < 600; i++)); do echo "SELECT pg_sleep(0.1);"; done
} | "$WAM_PG_BIN/psql" -X -d postgres > "$listen_out" 2>&1 &
listener=$!
wam_on_exit "kill $listener 2>/dev/null"
if wait_for "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(0.1)%' AND pid <> pg_backend_pid()" 1 20; then
    tap_ok "a session listens on wam_alerts"
else
    tap_not_ok "a session listens on wam_alerts" "$(cat "$listen_out")"
fi
tap_is "nothing was sent before the job ran" "$(grep -c 'Asynchronous notification' "$listen_out")" 0

# the job becomes due: the worker runs it by itself
q "UPDATE wam.job SET next_run_at = now() WHERE job = 'decay alerts'" >/dev/null
if wait_for "SELECT count(*) FROM wam.job_run WHERE job = 'decay alerts'" 1 30; then
    tap_ok "the worker runs the decay alerts job when it is due"
else
    tap_not_ok "the worker runs the decay alerts job when it is due" "$(tail -n 20 "$WAM_SERVER_LOG")"
fi
tap_is "the run is recorded with its result" \
    "$(q "SELECT ok || ' / ' || result FROM wam.job_run WHERE job = 'decay alerts'")" \
    "true / 3 groups checked, 1 click decay alerts raised"
tap_is "the alert is in wam.alert" \
    "$(q "SELECT kind || ' / ' || subject || ' / ' || (detail ->> 'clicks') FROM wam.alert")" \
    "click decay / segment vip / [10, 10, 10, 10, 0, 0]"
if wait_file "$listen_out" 'Asynchronous notification "wam_alerts"' 20; then
    tap_ok "the listening session receives the notification"
else
    tap_not_ok "the listening session receives the notification" "$(tail -n 5 "$listen_out")"
fi
tap_is "its payload names the alert" \
    "$(grep 'Asynchronous notification "wam_alerts"' "$listen_out" | grep -c '"kind" : "click decay", "subject" : "segment vip"')" 1
tap_is "one notification, one alert" "$(grep -c 'Asynchronous notification "wam_alerts"' "$listen_out")" 1
tap_is "the job is scheduled again for a Tuesday 06:00 UTC" \
    "$(q "SELECT extract(isodow FROM next_run_at AT TIME ZONE 'UTC') || ' ' || to_char(next_run_at AT TIME ZONE 'UTC', 'HH24:MI') FROM wam.job WHERE job = 'decay alerts'")" \
    "2 06:00"

kill "$listener" 2>/dev/null
tap_done
