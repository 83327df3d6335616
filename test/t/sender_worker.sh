#!/usr/bin/env bash
# test/t/sender_worker.sh — the sender worker end to end against the mock Cloud API over TLS
# (test/mock/wa_mock.py), in a cluster of its own with shared_preload_libraries: exact
# accounting (every message the mock accepted is marked sent, nothing missing or doubled),
# TLS verification, each error class, throttling, pause/resume, SIGHUP, kill -9 of the worker
# and an immediate-mode restart mid-batch, webhook round trip, token secrecy, an expired
# 24-hour window.
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

sender_setup || { tap_not_ok "sender worker: cluster and mock start"; tap_done; }

TPL='{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{first_name}"}]}]}}'
q "SELECT wam.create_sender('main', '106540352242922', 'test-token', 'test-app-secret', '$(mock_url)', 6000)" >/dev/null
q "INSERT INTO wam.customer (id, phone, name, consent_at, consent_source)
   SELECT g, '1555' || lpad(g::text, 7, '0'), 'Customer ' || g, now(), 'test' FROM generate_series(1, 5100) g" >/dev/null
tap_is "the worker runs for the database" "$(q "SELECT wam.worker_pid() IS NOT NULL")" t

enqueue_range() { # FROM TO CAMPAIGN
    q "SELECT queued FROM wam.enqueue_segment(wam.segment_range($1, $2), '$TPL', campaign => '$3')"
}

# --- TLS: the API's certificate is always verified -------------------------------------
bash "$repo/test/mock/make_test_ca.sh" "$WAM_CLUSTER_DIR/otherca" >/dev/null 2>&1
chmod 755 "$WAM_CLUSTER_DIR/otherca" && chmod 644 "$WAM_CLUSTER_DIR/otherca"/*
q "ALTER SYSTEM SET wam.sender_ca_file = '$WAM_CLUSTER_DIR/otherca/ca.pem'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
enqueue_range 1 2 tls >/dev/null
sleep 1.5
tap_is "untrusted certificate: the request is not sent, the message waits to be retried" \
    "$(q "SELECT status || ' ' || (error_detail LIKE 'request not sent: %') FROM wam.outbox WHERE campaign = 'tls'")" "retrying true"
tap_is "untrusted certificate: the mock received nothing" "$(accounting tls)" "0 0 0 0 0"
q "ALTER SYSTEM SET wam.sender_ca_file = '$WAM_CA_DIR/ca.pem'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
wait_drained 20
tap_is "trusted again after SIGHUP: the retry goes out once" "$(accounting tls)" "1 1 1 0 0"

# --- a drain with exact accounting, through the API's throughput limit ------------------
mock POST /_mock/config '{"webhooks": {"read_ratio": 0.5, "duplicate_ratio": 0.3, "reorder_ratio": 0.5, "batch_size": 50}}' >/dev/null
enqueue_range 10 1010 drain >/dev/null
if wait_drained 60; then tap_ok "1,000 messages drained"; else tap_not_ok "1,000 messages drained" "$(statuses drain)"; fi
tap_is "drain: accepted by the mock = marked sent, nothing missing or doubled" "$(accounting drain)" "1000 1000 1000 0 0"
tap_is "drain: every message sent" "$(statuses drain)" "sent=1000"
stats=$(mock GET /_mock/stats)
n429=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rejected_by_code"].get("130429", 0))' "$stats")
if [ "$n429" -gt 0 ] && grep -q 'was throttled by the API; backing off' "$WAM_SERVER_LOG"; then
    tap_ok "130429 answers ($n429) slowed the sender down, and their messages were sent later"
else
    tap_not_ok "130429 answers slowed the sender down" "130429 answers: $n429"
fi
deliveries=$(pump_webhooks)
tap_is "status webhooks (duplicated, reordered) move statuses forward: 500 read, 500 delivered" \
    "$(statuses drain)" "delivered=500 read=500"
tap_is "webhooks: nothing regressed to sent" "$(q "SELECT count(*) FROM wam.outbox WHERE campaign = 'drain' AND (delivered_at IS NULL)")" 0
echo "# $deliveries webhook deliveries ingested"

# --- error classes --------------------------------------------------------------------
q "ALTER SYSTEM SET wam.sender_http_timeout = '2s'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
mock POST /_mock/reset '{}' >/dev/null
mock POST '/_mock/config?replace=1' '{"faults": [
  {"match": {"to": "15550002001"}, "action": "error", "code": 131009},
  {"match": {"to": "15550002002", "next": 1}, "action": "http_500"},
  {"match": {"to": "15550002003"}, "action": "async_fail", "code": 131049},
  {"match": {"to": "15550002004"}, "action": "lose_response"},
  {"match": {"to": "15550002005"}, "action": "timeout", "seconds": 5},
  {"match": {"to": "15550002006", "next": 1}, "action": "error", "code": 131056},
  {"match": {"to": "15550002007", "next": 1}, "action": "error", "code": 131000}
]}' >/dev/null
sleep 0.3
enqueue_range 2001 2008 errors >/dev/null
wait_drained 30
ecls() { q "SELECT status || ' ' || coalesce(error_code::text, '-') || ' ' || attempts FROM wam.outbox WHERE campaign = 'errors' AND customer_id = $1"; }
tap_is "131009 (bad parameter): failed at once, not retried" "$(ecls 2001)" "failed 131009 1"
tap_is "HTTP 500 without a JSON body: retried, then sent" "$(ecls 2002)" "sent - 2"
tap_is "131056 (pair limit): deferred, then sent; the deferral is not an attempt" "$(ecls 2006)" "sent - 1"
tap_is "131000: retried with backoff, then sent" "$(ecls 2007)" "sent - 2"
tap_is "async 131049: accepted (sent) before its webhook" "$(ecls 2003)" "sent - 1"
tap_is "response lost after acceptance: uncertain, never resent" "$(ecls 2004)" "uncertain - 1"
tap_is "timeout after the request left: uncertain, never resent" "$(ecls 2005)" "uncertain - 1"
pump_webhooks >/dev/null
tap_is "webhook: 131049 fails the message with its code" "$(ecls 2003)" "failed 131049 1"
tap_is "webhook: the lost response is settled through biz_opaque_callback_data" "$(ecls 2004)" "delivered - 1"
tap_is "the timed-out request the mock never took stays uncertain" "$(ecls 2005)" "uncertain - 1"
tap_is "errors: accepted by the mock = marked sent" "$(accounting errors)" "5 5 5 0 0"
held=$(q "SELECT wam.enqueue_message(2003, '$TPL', campaign => 'held')")
tap_is "after 131049 a new message to that customer waits 24 hours" \
    "$(q "SELECT next_attempt_at > now() + interval '23 hours' FROM wam.outbox WHERE message_id = $held")" t
q "SELECT wam.cancel_message($held)" >/dev/null
q "ALTER SYSTEM RESET wam.sender_http_timeout" >/dev/null

# --- authentication error: the sender pauses until resumed -----------------------------
mock POST /_mock/reset '{}' >/dev/null
mock POST '/_mock/config?replace=1' '{}' >/dev/null
q "SELECT wam.configure_sender('main', access_token => 'expired-token')" >/dev/null
enqueue_range 2101 2106 auth >/dev/null
sleep 1.5
tap_is "190: the sender is paused with the reason" \
    "$(q "SELECT state || ' | ' || (paused_reason LIKE 'error 190:%') FROM wam.worker_status")" "paused | true"
tap_is "190: the messages wait, none failed or sent" \
    "$(q "SELECT count(*) FILTER (WHERE status IN ('queued', 'retrying')) || ' ' || sum(attempts) FROM wam.outbox WHERE campaign = 'auth'")" "5 0"
q "SELECT wam.configure_sender('main', access_token => 'test-token')" >/dev/null
sleep 1
tap_is "still paused until wam.resume_sender()" "$(accounting auth) $(q "SELECT state FROM wam.worker_status")" "0 0 0 0 0 paused"
q "SELECT wam.resume_sender('main')" >/dev/null
wait_drained 20
tap_is "after resume: all sent once" "$(accounting auth)" "5 5 5 0 0"

# --- SIGHUP: enable switch and rate cap -------------------------------------------------
# First the backoff after the drain's 130429 answers must have worn off (an idle sender's
# rate doubles every 10 s): else the rates below are the caps times a factor below 1.
for _ in $(seq 1 600); do
    [ "$(q "SELECT current_rate_per_minute = configured_rate_per_minute FROM wam.worker_status")" = t ] && break
    sleep 0.1
done
q "ALTER SYSTEM SET wam.worker_enabled = off" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
enqueue_range 2201 2204 switch >/dev/null
sleep 1.2
tap_is "wam.worker_enabled = off: nothing is sent" "$(statuses switch) $(q "SELECT state FROM wam.worker_status")" "queued=3 disabled"
q "ALTER SYSTEM SET wam.sender_max_rate_per_minute = 120" >/dev/null
q "ALTER SYSTEM SET wam.worker_enabled = on" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
wait_drained 20
tap_is "back on: sent" "$(statuses switch)" "sent=3"
# The capped rate, not the current one: that one also carries the back-off factor, which
# depends on how the API answered lately.
tap_is "wam.sender_max_rate_per_minute caps the rate after SIGHUP" \
    "$(q "SELECT capped_rate_per_minute || ' ' || configured_rate_per_minute FROM wam.worker_status")" "120 6000"
q "ALTER SYSTEM RESET wam.sender_max_rate_per_minute" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
q "SELECT wam.configure_sender('main', 60000)" >/dev/null
# the worker rereads the senders when woken; wait (bounded) until it has
for _ in $(seq 1 100); do
    [ "$(q "SELECT capped_rate_per_minute FROM wam.worker_status")" = 60000 ] && break
    sleep 0.1
done
tap_is "a new rate from wam.configure_sender applies without a restart" \
    "$(q "SELECT capped_rate_per_minute || ' ' || configured_rate_per_minute FROM wam.worker_status")" "60000 60000"

# --- token bucket + one-second window: no second over the burst -------------------------
# After an idle spell the bucket is full (10 tokens at 600/min); a bucket alone would let
# that second carry the 10 plus the 10 that refill during it.
mock POST '/_mock/config?replace=1' '{"numbers": {"106540352242922": {"rate_per_second": 0, "pair_limit_seconds": 0}}}' >/dev/null
q "SELECT wam.configure_sender('main', 600)" >/dev/null
sleep 1.2
enqueue_range 2501 2546 burst >/dev/null
wait_drained 60
busiest=$(q "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM wam.outbox WHERE campaign = 'burst'
             GROUP BY date_trunc('second', sending_at)) x")
tap_is "600/min: 45 messages sent, the busiest second (by sending_at) holds at most the burst of 10" \
    "$(statuses burst) $([ "$busiest" -le 10 ] && echo within || echo "over: $busiest")" "sent=45 within"
echo "# burst run: busiest second $busiest, $(q "SELECT round(44 * 60 / extract(epoch FROM max(sending_at) - min(sending_at))) FROM wam.outbox WHERE campaign = 'burst'") per minute"
q "SELECT wam.configure_sender('main', 60000)" >/dev/null

# --- random throttles: 5 % of requests answered 130429, whatever the rate ---------------
# A back-off that pauses and halves at every throttle spirals down under them (1,500 messages
# at 12,000/min once took over 4 minutes): noise is retried and the rate kept.
mock POST '/_mock/config?replace=1' '{"numbers": {"106540352242922": {"rate_per_second": 0, "pair_limit_seconds": 0}},
    "faults": [{"match": {"probability": 0.05, "seed": 7}, "action": "error", "code": 130429}]}' >/dev/null
mock POST /_mock/reset '{}' >/dev/null
q "SELECT wam.configure_sender('main', 12000)" >/dev/null
for _ in $(seq 1 100); do
    [ "$(q "SELECT capped_rate_per_minute FROM wam.worker_status")" = 12000 ] && break
    sleep 0.1
done
backoffs=$(grep -c 'was throttled by the API; backing off' "$WAM_SERVER_LOG")
enqueue_range 1 1501 noise >/dev/null
if wait_drained 90; then tap_ok "5 % random throttles: 1,500 messages drained"; else tap_not_ok "5 % random throttles: drained" "$(statuses noise)"; fi
n429=$(mock GET /_mock/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["rejected_by_code"].get("130429", 0))')
tap_is "5 % random throttles: every message sent once, the throttled ones retried ($n429 answers 130429)" \
    "$(statuses noise) $(accounting noise) $([ "$n429" -gt 0 ] && echo throttled)" "sent=1500 1500 1500 1500 0 0 throttled"
tap_is "5 % random throttles: taken as noise, the sender never backed off" \
    "$(($(grep -c 'was throttled by the API; backing off' "$WAM_SERVER_LOG") - backoffs))" 0
echo "# noise run: drained in $(q "SELECT round(extract(epoch FROM max(sent_at) - min(sending_at))::numeric, 1) FROM wam.outbox WHERE campaign = 'noise'") s (1,500 at 12,000/min: 7.5 s; throttled ones wait 1-2 s to be retried); load $(cut -d' ' -f1-3 /proc/loadavg)"
mock POST '/_mock/config?replace=1' '{"numbers": {"106540352242922": {"rate_per_second": 0, "pair_limit_seconds": 0}}}' >/dev/null
q "SELECT wam.configure_sender('main', 60000)" >/dev/null

# --- wake-up latency (reported, not asserted) -------------------------------------------
mock POST /_mock/reset '{}' >/dev/null
t0=$(q "SELECT extract(epoch FROM clock_timestamp()) FROM (SELECT wam.enqueue_message(2301, '$TPL', campaign => 'wake')) x")
sleep 0.5
t1=$(mock GET /_mock/messages | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m[0]["received_at"] if m else "")')
echo "# enqueue to request at the mock: $(python3 -c "print(round(($t1 - $t0) * 1000, 1))" 2>/dev/null) ms"

# --- crash safety: kill -9 of the worker mid-batch, then an immediate-mode restart ------
mock POST '/_mock/config?replace=1' '{"numbers": {"106540352242922": {"rate_per_second": 0, "pair_limit_seconds": 0}}}' >/dev/null
crash_check() { # NAME CAMPAIGN
    local name=$1 c=$2 acc
    if wait_drained 60; then tap_ok "$name: the queue drains after the restart"; else tap_not_ok "$name: drains" "$(statuses "$c")"; fi
    tap_is "$name: no message left in sending" "$(q "SELECT count(*) FROM wam.outbox WHERE status = 'sending'")" 0
    echo "# $name: before webhooks: $(statuses "$c")"
    mock GET /_mock/stats >/dev/null
    sleep 0.5
    pump_webhooks >/dev/null
    acc=$(accounting "$c")
    set -- $acc
    if [ "$2" = "$1" ] && [ "$4" = 0 ] && [ "$5" = 0 ] && [ "$1" = "$3" ]; then
        tap_ok "$name: accepted by the mock = marked sent, none doubled (accepted $1 of $(q "SELECT count(*) FROM wam.outbox WHERE campaign = '$c'"))"
    else
        tap_not_ok "$name: exact accounting" "accepted distinct marked accepted_not_marked marked_not_accepted: $acc"
    fi
    tap_is "$name: every message visibly sent or uncertain" \
        "$(q "SELECT count(*) FROM wam.outbox WHERE campaign = '$c' AND status NOT IN ('delivered', 'uncertain')")" 0
    echo "# $name: after webhooks: $(statuses "$c")"
}
enqueue_range 1 1501 crash1 >/dev/null
sleep 0.4
pid=$(q "SELECT wam.worker_pid()")
kill -9 "$pid"
sleep 2
for _ in $(seq 1 100); do
    # (while the server restarts a connection may fail: expected, not an error of the test)
    "$WAM_PG_BIN/pg_isready" -q -h "$PGHOST" -p "$PGPORT" && [ -n "$(TAP_SQL_ERRORS_OK=1 q "SELECT wam.worker_pid()" 2>/dev/null)" ] && break
    sleep 0.2
done
crash_check "kill -9 of the worker" crash1
mock POST /_mock/reset '{}' >/dev/null
enqueue_range 3001 4501 crash2 >/dev/null
sleep 0.4
_wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$WAM_CLUSTER_DIR/data" -l "$WAM_SERVER_LOG" -m immediate -w -s restart >/dev/null 2>&1
for _ in $(seq 1 100); do
    [ -n "$(TAP_SQL_ERRORS_OK=1 q "SELECT wam.worker_pid()" 2>/dev/null)" ] && break
    sleep 0.2
done
crash_check "immediate-mode restart" crash2
mock POST /_mock/reset '{}' >/dev/null
enqueue_range 4501 5001 crash3 >/dev/null
sleep 0.3
_wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$WAM_CLUSTER_DIR/data" -l "$WAM_SERVER_LOG" -m fast -w -s restart >/dev/null 2>&1
for _ in $(seq 1 100); do
    [ -n "$(TAP_SQL_ERRORS_OK=1 q "SELECT wam.worker_pid()" 2>/dev/null)" ] && break
    sleep 0.2
done
tap_is "fast shutdown (SIGTERM): the worker stops cleanly" "$(grep -c 'pg_wamarketing sender stopped' "$WAM_SERVER_LOG")" 1
crash_check "fast-shutdown restart" crash3

# --- an expired 24-hour window ----------------------------------------------------------
q "UPDATE wam.customer SET last_inbound_at = now() - interval '24 hours' + interval '2 seconds' WHERE id = 2401" >/dev/null
q "SELECT wam.pause_sender('main', 'test')" >/dev/null
q "SELECT wam.enqueue_message(2401, '{\"type\":\"text\",\"text\":{\"body\":\"Thanks, {name}!\"}}', campaign => 'window')" >/dev/null
sleep 2.5
q "SELECT wam.resume_sender('main')" >/dev/null
sleep 1
tap_is "free-form message whose 24-hour window closed before sending: expired, not sent" \
    "$(statuses window) $(accounting window)" "expired=1 0 0 0 0 0"
tap_is "free-form outside the window is refused at enqueue" \
    "$(sql_error -d postgres -c "SELECT wam.enqueue_message(2401, '{\"type\":\"text\",\"text\":{\"body\":\"hi\"}}')")" \
    "55000: customer 2401's 24-hour window is closed: free-form messages are not allowed"

# --- inbound through the mock: reply and STOP -------------------------------------------
wamid=$(q "SELECT wamid FROM wam.outbox WHERE campaign = 'crash2' AND status = 'delivered' ORDER BY message_id LIMIT 1")
cust=$(q "SELECT customer_id FROM wam.outbox WHERE wamid = '$wamid'")
phone=$(q "SELECT phone FROM wam.customer WHERE id = $cust")
mock POST /_mock/inbound "{\"from\": \"$phone\", \"text\": \"Is it still on?\", \"context_id\": \"$wamid\"}" >/dev/null
mock POST /_mock/inbound "{\"from\": \"$phone\", \"text\": \"STOP\"}" >/dev/null
pump_webhooks >/dev/null
tap_is "inbound reply counted for the message it answers; STOP opts the customer out" \
    "$(q "SELECT (SELECT replies FROM wam.outbox WHERE wamid = '$wamid') || ' ' || (opted_out_at IS NOT NULL) || ' ' || (last_inbound_at > now() - interval '1 minute') FROM wam.customer WHERE id = $cust")" "1 true true"

# --- webhook signature failures ---------------------------------------------------------
for tamper in signature body; do
    mock POST /_mock/inbound "{\"from\": \"15550000001\", \"text\": \"hello $tamper\"}" >/dev/null
    python3 "$repo/test/lib/mockctl.py" "https://localhost:$MOCK_PORT" "$WAM_CA_DIR/ca.pem" \
        webhooks-sql 1 "$tamper" >"$WAM_CLUSTER_DIR/tampered.sql"
    tap_is "a webhook with a tampered $tamper is rejected, nothing applied" \
        "$(sql_error -d postgres -f "$WAM_CLUSTER_DIR/tampered.sql") | $(q "SELECT count(*) FROM wam.inbound_message WHERE body LIKE 'hello %'")" \
        "28000: webhook signature does not match | 0"
done

# --- token secrecy ----------------------------------------------------------------------
leaks=$(q "SELECT string_agg(r, ', ') FROM (
    SELECT 'pg_stat_activity' AS r FROM pg_stat_activity
     WHERE pid <> pg_backend_pid() AND (query LIKE '%' || 'test-' || 'token%' OR query LIKE '%test-app-' || 'secret%')
    UNION ALL SELECT 'worker_status' FROM wam.worker_status t WHERE t::text LIKE '%test-' || 'token%'
    UNION ALL SELECT 'sender' FROM wam.sender t WHERE t::text LIKE '%test-' || 'token%' OR t::text LIKE '%test-app-' || 'secret%'
    UNION ALL SELECT 'outbox' FROM wam.outbox t WHERE t::text LIKE '%test-' || 'token%'
    UNION ALL SELECT 'delivery_report' FROM wam.delivery_report(now() - interval '1 day', now()) t WHERE t::text LIKE '%test-' || 'token%') x")
tap_is "the token and app secret appear in no view, table or pg_stat_activity" "$leaks" ""
# negative control: the same search finds them where they are kept
tap_is "the search finds the token and the app secret in wam.sender_secret" \
    "$(q "SELECT count(*) FROM wam.sender_secret t WHERE t::text LIKE '%test-' || 'token%' AND t::text LIKE '%test-app-' || 'secret%'")" 1
tap_is "no wam view shows them either" \
    "$(q "SELECT coalesce(string_agg(viewname, ', '), '') FROM pg_views v WHERE schemaname = 'wam'
          AND query_to_xml(format('SELECT 1 FROM wam.%I t WHERE t::text LIKE %L OR t::text LIKE %L', viewname,
                                  '%test-' || 'token%', '%test-app-' || 'secret%'), false, false, '')::text LIKE '%<row>%'")" ""
if grep -q -e 'test-token' -e 'test-app-secret' -e 'expired-token' "$WAM_SERVER_LOG"; then
    tap_not_ok "the server log never shows a token or secret" "$(grep -n -e 'test-token' -e 'test-app-secret' -e 'expired-token' "$WAM_SERVER_LOG" | head -3)"
else
    tap_ok "the server log never shows a token or secret"
fi
tap_is "the server log shows no crash other than the intended kill -9" \
    "$(grep -cE 'terminated by signal (4|6|7|8|11):|PANIC:' "$WAM_SERVER_LOG")" 0

tap_done
