#!/usr/bin/env bash
# test/t/sender_hardening.sh — the sender worker's defences, end to end against the mock
# Cloud API (own cluster, shared_preload_libraries):
#   - proxy environment variables of the postmaster are ignored; wam.sender_http_proxy is used
#     (and its value, credentials included, appears in no log or error)
#   - wam.sender_allowed_hosts / wam.sender_allow_http re-checked by the worker: a sender whose URL is
#     no longer allowed is paused with the reason, nothing is sent
#   - a libcurl failure no retry can cure (an unreadable wam.sender_ca_file) pauses the sender
#   - wam.worker_lock_timeout: a claim blocked by LOCK TABLE is retried, then completes;
#     an operator's open transaction (wam.cancel, a row lock on a claimed row) never holds
#     up result recording; pg_terminate_backend ends a worker blocked on a lock, it restarts
#   - wam.worker_max_senders: 70 senders served, the 71st refused; after lowering it, a warning
#   - invalid UTF-8 and NULs in responses stored as U+FFFD; last_error cut at a character
#     boundary
# Every wait is a bounded poll on a count or a status; nothing reads the clock.
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

# The postmaster (and so the worker) inherits proxies that lead nowhere (port 9: discard,
# nothing listens); libcurl would use them by default.
dead=http://127.0.0.1:9
export https_proxy=$dead HTTPS_PROXY=$dead http_proxy=$dead ALL_PROXY=$dead all_proxy=$dead
sender_setup wam.worker_max_senders=70 || { tap_not_ok "sender hardening: cluster and mock start"; tap_done; }
# our own tools (mockctl.py uses urllib) must not use them either
unset https_proxy HTTPS_PROXY http_proxy ALL_PROXY all_proxy

TPL='{"type":"template","template":{"name":"spring_sale","language":{"code":"en"}}}'
q "SELECT wam.create_sender('main', '106540352242922', 'hard-test-token', 'hard-app-secret', '$(mock_url)', 6000)" >/dev/null
# the mock's number takes our token
mock POST /_mock/config '{"numbers": {"106540352242922": {"token": "hard-test-token", "rate_per_second": 0, "pair_limit_seconds": 0}}}' >/dev/null
q "INSERT INTO wam.customer (id, phone, name, consent_at, consent_source)
   SELECT g, '1555' || lpad(g::text, 7, '0'), 'Customer ' || g, now(), 'test' FROM generate_series(1, 300) g" >/dev/null

enqueue_range() { # FROM TO CAMPAIGN [SENDER (main)]
    q "SELECT queued FROM wam.enqueue_segment(wam.segment_range($1, $2), '$TPL', sender => '${4:-main}', campaign => '$3')"
}
# poll SQL WANT [TRIES]: until the value is WANT (at most TRIES x 0.1 s); prints the last value
poll() {
    local i v
    for ((i = 0; i < ${3:-150}; i++)); do
        v=$(q "$1")
        [ "$v" = "$2" ] && break
        sleep 0.1
    done
    printf '%s' "$v"
}
log_count() { grep -c -e "$1" "$WAM_SERVER_LOG"; }
# wait_log PATTERN N: until the server log has at least N lines matching
wait_log() {
    local i
    for ((i = 0; i < 150; i++)); do
        [ "$(log_count "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
reload() { q "SELECT pg_reload_conf()" >/dev/null; sleep 0.3; }
# a second session holding locks: statements go in through a fifo
hold_start() {
    HOLD_FIFO=$WAM_CLUSTER_DIR/hold.fifo
    rm -f "$HOLD_FIFO"
    mkfifo "$HOLD_FIFO"
    tap_psql -qAt -d postgres <"$HOLD_FIFO" >"$WAM_CLUSTER_DIR/hold.out" 2>&1 &
    HOLD_PID=$!
    exec 7>"$HOLD_FIFO"
}
hold() { echo "$1" >&7; }
hold_wait() { # until the holder printed its Nth line
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(wc -l <"$WAM_CLUSTER_DIR/hold.out")" -ge "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
hold_stop() { exec 7>&-; wait "$HOLD_PID" 2>/dev/null; }
worker_pid() { q "SELECT wam.worker_pid()"; }

pid0=$(worker_pid)
tap_is "the worker runs" "$([ -n "$pid0" ] && echo yes)" yes

# --- proxies: environment ignored, wam.sender_http_proxy used --------------------------------
# (the postmaster's: a child's /proc/PID/environ holds its process title instead)
pm=$(head -n 1 "$WAM_CLUSTER_DIR/data/postmaster.pid")
tap_is "the postmaster's environment, which the worker inherits, names proxies" \
    "$(tr '\0' '\n' </proc/"$pm"/environ | grep -c -E '^(https_proxy|HTTPS_PROXY|ALL_PROXY)=http://127.0.0.1:9$')" 3
enqueue_range 1 4 env >/dev/null
wait_drained 20
tap_is "proxy environment variables are ignored: the messages reach the API directly" "$(accounting env)" "3 3 3 0 0"

restart() {
    _wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$WAM_CLUSTER_DIR/data" -l "$WAM_SERVER_LOG" -m fast -w -s restart >/dev/null 2>&1
    # (connections fail until the server is back: expected)
    TAP_SQL_ERRORS_OK=1 poll "SELECT wam.worker_pid() IS NOT NULL" t 100 >/dev/null 2>&1
}
q "ALTER SYSTEM SET wam.sender_http_proxy = 'http://proxyuser:proxy-pass-secret@127.0.0.1:9'" >/dev/null
restart
enqueue_range 4 5 viaproxy >/dev/null
tap_is "wam.sender_http_proxy set (a dead one): the request goes to the proxy and is not sent" \
    "$(poll "SELECT status || ' ' || error_detail FROM wam.outbox WHERE campaign = 'viaproxy'" "retrying request not sent: Couldn't connect to server")" \
    "retrying request not sent: Couldn't connect to server"
tap_is "wam.sender_http_proxy: the mock received nothing" "$(accounting viaproxy)" "0 0 0 0 0"
q "CREATE ROLE hard_admin IN ROLE wam_admin" >/dev/null
tap_is "wam.sender_http_proxy is hidden from non-superusers" \
    "$(sql_error -d postgres -c "SET ROLE hard_admin" -c "SHOW wam.sender_http_proxy")" \
    '42501: must be superuser or have privileges of pg_read_all_settings to examine "wam.sender_http_proxy"'
q "ALTER SYSTEM RESET wam.sender_http_proxy" >/dev/null
restart
wait_drained 20
tap_is "wam.sender_http_proxy reset: the retry goes out directly, once" "$(accounting viaproxy)" "1 1 1 0 0"
pid0=$(worker_pid) # (the restarts started a new one)

# --- the allowlist, re-checked by the worker ------------------------------------------
q "SELECT wam.pause_sender('main', 'hold')" >/dev/null
q "ALTER SYSTEM SET wam.sender_allowed_hosts = 'graph.facebook.com'" >/dev/null
reload
poll "SHOW wam.sender_allowed_hosts" graph.facebook.com >/dev/null
tap_is "create_sender refuses a host the list no longer names" \
    "$(sql_error -d postgres -c "SELECT wam.create_sender('late', '333', 'refused-token', 's', '$(mock_url)')")" \
    '22023: api_base_url host "localhost" is not in wam.sender_allowed_hosts'
enqueue_range 5 7 allow >/dev/null
q "SELECT wam.resume_sender('main')" >/dev/null
tap_is "the worker pauses a sender whose host is no longer allowed, with the reason" \
    "$(poll "SELECT paused_reason FROM wam.sender WHERE name = 'main' AND paused" 'api_base_url is not allowed: api_base_url host "localhost" is not in wam.sender_allowed_hosts')" \
    'api_base_url is not allowed: api_base_url host "localhost" is not in wam.sender_allowed_hosts'
tap_is "not allowed: nothing claimed or sent" "$(statuses allow) $(q "SELECT sum(attempts) FROM wam.outbox WHERE campaign = 'allow'") $(accounting allow)" "queued=2 0 0 0 0 0 0"
tap_is "not allowed: wam.worker_status shows the pause and the reason" \
    "$(q "SELECT state || ' | ' || last_error FROM wam.worker_status WHERE sender = 'main'")" \
    'paused | api_base_url is not allowed: api_base_url host "localhost" is not in wam.sender_allowed_hosts'
q "ALTER SYSTEM RESET wam.sender_allowed_hosts" >/dev/null # back to the cluster's list
reload
q "SELECT wam.resume_sender('main')" >/dev/null
wait_drained 20
tap_is "allowed again and resumed: sent once" "$(accounting allow)" "2 2 2 0 0"

# plain http: only while wam.sender_allow_http is on, and re-checked by the worker
tap_is "create_sender refuses http:// (wam.sender_allow_http off)" \
    "$(sql_error -d postgres -c "SELECT wam.create_sender('plain', '444', 'refused-token', 's', 'http://localhost:9/v23.0')")" \
    '22023: api_base_url must be an https URL'
q "ALTER SYSTEM SET wam.sender_allow_http = on" >/dev/null
reload
poll "SHOW wam.sender_allow_http" on >/dev/null
q "SELECT wam.create_sender('plain', '444', 'hard-test-token', 's', 'http://localhost:9/v23.0')" >/dev/null
q "SELECT wam.pause_sender('plain', 'hold')" >/dev/null
q "ALTER SYSTEM RESET wam.sender_allow_http" >/dev/null
reload
poll "SHOW wam.sender_allow_http" off >/dev/null
enqueue_range 7 8 plain plain >/dev/null
q "SELECT wam.resume_sender('plain')" >/dev/null
tap_is "wam.sender_allow_http turned off: the worker pauses the http:// sender, nothing sent" \
    "$(poll "SELECT paused_reason FROM wam.sender WHERE name = 'plain' AND paused" 'api_base_url is not allowed: api_base_url must be an https URL') $(statuses plain)" \
    'api_base_url is not allowed: api_base_url must be an https URL queued=1'
q "SELECT wam.cancel_campaign('plain')" >/dev/null

# --- a failure no retry can cure pauses the sender --------------------------------------
q "ALTER SYSTEM SET wam.sender_ca_file = '$WAM_CLUSTER_DIR/no-such-ca.pem'" >/dev/null
reload
enqueue_range 10 13 cafile >/dev/null
tap_is "unreadable wam.sender_ca_file: the sender is paused with libcurl's reason" \
    "$(poll "SELECT paused_reason FROM wam.sender WHERE name = 'main' AND paused" 'request not sent, and retrying cannot help: Problem with the SSL CA cert (path? access rights?)')" \
    'request not sent, and retrying cannot help: Problem with the SSL CA cert (path? access rights?)'
tap_is "unreadable wam.sender_ca_file: no attempt counted, nothing sent" \
    "$(q "SELECT count(*) FILTER (WHERE status IN ('queued', 'retrying')) || ' ' || sum(attempts) FROM wam.outbox WHERE campaign = 'cafile'") $(accounting cafile)" \
    "3 0 0 0 0 0 0"
q "ALTER SYSTEM SET wam.sender_ca_file = '$WAM_CA_DIR/ca.pem'" >/dev/null
reload
q "SELECT wam.resume_sender('main')" >/dev/null
wait_drained 20
tap_is "CA file fixed and resumed: sent once" "$(accounting cafile)" "3 3 3 0 0"

# --- lock timeout: a claim blocked by LOCK TABLE is retried -----------------------------
q "ALTER SYSTEM SET wam.worker_lock_timeout = '200ms'" >/dev/null
reload
q "SELECT wam.pause_sender('main', 'hold')" >/dev/null
enqueue_range 20 25 locked >/dev/null
hold_start
hold "BEGIN; LOCK TABLE wam.outbox IN EXCLUSIVE MODE; SELECT 'locked';"
hold_wait 1
before=$(log_count 'claiming messages waited longer than wam.worker_lock_timeout for a lock; trying again')
q "SELECT wam.resume_sender('main')" >/dev/null
if wait_log 'claiming messages waited longer than wam.worker_lock_timeout for a lock; trying again' $((before + 3)); then
    tap_ok "a claim blocked by LOCK TABLE times out and is tried again (3 times seen)"
else
    tap_not_ok "a claim blocked by LOCK TABLE times out and is tried again" "$(tail -5 "$WAM_SERVER_LOG")"
fi
tap_is "while locked: nothing claimed or sent, the worker is the same process" \
    "$(statuses locked) $(accounting locked) $([ "$(worker_pid)" = "$pid0" ] && echo same)" "queued=5 0 0 0 0 0 same"
hold "COMMIT;"
wait_drained 20
tap_is "lock released: the claim completes, each message sent once" "$(accounting locked)" "5 5 5 0 0"
hold_stop

# --- an operator's open transaction never holds up result recording ---------------------
# The mock holds the request of customer 30 for 2 s, then drops the connection (uncertain).
mock POST '/_mock/config?replace=1' '{"numbers": {"106540352242922": {"token": "hard-test-token", "rate_per_second": 0, "pair_limit_seconds": 0}}, "faults": [{"match": {"to": ["15550000030", "15550000032"]}, "action": "lose_response", "seconds": 2}]}' >/dev/null
enqueue_range 30 31 opencancel >/dev/null
id30=$(q "SELECT message_id FROM wam.outbox WHERE campaign = 'opencancel'")
poll "SELECT status FROM wam.outbox WHERE message_id = $id30" sending >/dev/null
hold_start
hold "BEGIN; SELECT wam.cancel_message($id30);"
hold_wait 1
tap_is "wam.cancel of a claimed message in an open transaction: false" "$(head -1 "$WAM_CLUSTER_DIR/hold.out")" f
tap_is "its result is recorded while that transaction stays open" \
    "$(poll "SELECT status FROM wam.outbox WHERE message_id = $id30" uncertain)" uncertain
hold "COMMIT;"
hold_stop

# a session that locks a claimed row itself (as an open webhook transaction would)
enqueue_range 32 33 rowlock >/dev/null
id32=$(q "SELECT message_id FROM wam.outbox WHERE campaign = 'rowlock'")
poll "SELECT status FROM wam.outbox WHERE message_id = $id32" sending >/dev/null
hold_start
hold "BEGIN; SELECT message_id FROM wam.outbox WHERE message_id = $id32 FOR UPDATE;"
hold_wait 1
before=$(log_count 'results wait: another session holds a lock on their rows')
if wait_log 'results wait: another session holds a lock on their rows' $((before + 1)); then
    tap_ok "the result of the locked row is held back, not waited for"
else
    tap_not_ok "the result of the locked row is held back" "$(tail -5 "$WAM_SERVER_LOG")"
fi
enqueue_range 34 37 meanwhile >/dev/null
tap_is "meanwhile other messages are sent and recorded; the locked row is still sending" \
    "$(poll "SELECT count(*) FROM wam.outbox WHERE campaign = 'meanwhile' AND status = 'sent'" 3) $(q "SELECT status FROM wam.outbox WHERE message_id = $id32")" "3 sending"
hold "COMMIT;"
hold_stop
tap_is "lock released: the held-back result is recorded" \
    "$(poll "SELECT status FROM wam.outbox WHERE message_id = $id32" uncertain)" uncertain
tap_is "the worker never restarted for any of this" "$(worker_pid)" "$pid0"

# --- pg_terminate_backend ends a worker blocked on a lock; it restarts -------------------
q "ALTER SYSTEM SET wam.worker_lock_timeout = '10min'" >/dev/null
reload
q "SELECT wam.pause_sender('main', 'hold')" >/dev/null
enqueue_range 40 43 terminate >/dev/null
hold_start
hold "BEGIN; LOCK TABLE wam.outbox IN EXCLUSIVE MODE; SELECT 'locked';"
hold_wait 1
q "SELECT wam.resume_sender('main')" >/dev/null
tap_is "the worker waits for the table lock" \
    "$(poll "SELECT count(*) FROM pg_locks WHERE pid = $pid0 AND NOT granted AND relation = 'wam.outbox'::regclass" 1)" 1
q "SELECT pg_terminate_backend($pid0)" >/dev/null
tap_is "pg_terminate_backend ends it while it waits" \
    "$(poll "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid0" 0 50)" 0
tap_is "it ended as terminated by the administrator" \
    "$(log_count 'terminating background worker "pg_wamarketing sender" due to administrator command')" 1
hold "COMMIT;"
hold_stop
q "ALTER SYSTEM RESET wam.worker_lock_timeout" >/dev/null
reload
pid1=$(poll "SELECT wam.worker_pid() IS NOT NULL AND wam.worker_pid() <> $pid0" t 200)
tap_is "the worker restarts" "$pid1" t
wait_drained 20
tap_is "after the restart the messages are sent once" "$(accounting terminate)" "3 3 3 0 0"

# --- wam.worker_max_senders --------------------------------------------------------------------
q "SELECT count(wam.create_sender('extra ' || g, (5000 + g)::text, 'hard-test-token', 's', '$(mock_url)'))
   FROM generate_series(1, 70 - (SELECT count(*)::int FROM wam.sender)) g" >/dev/null
tap_is "70 senders (wam.worker_max_senders = 70): the worker serves every one" \
    "$(poll "SELECT count(*) FROM wam_internal.worker_sender_state()" 70)" 70
tap_is "the 71st is refused" \
    "$(sql_error -d postgres -c "SELECT wam.create_sender('too many', '9999', 'refused-token', 's', '$(mock_url)')")" \
    '53400: cannot create more than 70 senders'
enqueue_range 50 52 many >/dev/null
wait_drained 20
tap_is "with 70 senders, messages still go out" "$(accounting many)" "2 2 2 0 0"
q "ALTER SYSTEM SET wam.worker_max_senders = 65" >/dev/null
restart
tap_is "wam.worker_max_senders lowered below the senders that exist: a warning, not silence" \
    "$(poll "SELECT count(*) FROM wam_internal.worker_sender_state()" 65 100) $(log_count 'WARNING:  pg_wamarketing sender: 70 senders exist but wam.worker_max_senders is 65; senders after the first 65 (by id) are not served')" "65 1"

# --- text from the API: valid UTF-8 only, cut at character boundaries --------------------
# 404 "not \xff\xfe found \x00 end"; a JSON error whose details hold "\xc3(" (a broken
# two-byte sequence); a JSON error whose details are 300 x U+20AC (3 bytes each)
hex404=$(printf 'not \377\376 found \000 end' | od -An -tx1 | tr -d ' \n')
hexjson=$(printf '{"error":{"message":"m","type":"OAuthException","code":131009,"error_data":{"details":"bad \303( byte"}}}' | od -An -tx1 | tr -d ' \n')
euros=$(python3 -c 'print("\u20ac" * 300)')
mock POST '/_mock/config?replace=1' "{\"numbers\": {\"106540352242922\": {\"token\": \"hard-test-token\", \"rate_per_second\": 0, \"pair_limit_seconds\": 0}},
  \"faults\": [{\"match\": {\"to\": \"15550000060\"}, \"action\": \"raw\", \"http_status\": 404, \"body_hex\": \"$hex404\"},
               {\"match\": {\"to\": \"15550000061\"}, \"action\": \"raw\", \"http_status\": 400, \"body_hex\": \"$hexjson\"},
               {\"match\": {\"to\": \"15550000062\"}, \"action\": \"error\", \"code\": 131009, \"details\": \"$euros\"}]}" >/dev/null
enqueue_range 60 62 enc >/dev/null
wait_drained 20
detail() { q "SELECT status || ' | ' || error_detail FROM wam.outbox WHERE campaign = '$1' AND customer_id = $2"; }
tap_is "invalid bytes and a NUL in a non-JSON body: stored as U+FFFD" "$(detail enc 60)" "failed | HTTP 404: not �� found � end"
tap_is "a broken sequence inside a JSON error: U+FFFD, and the JSON still read" "$(detail enc 61)" "failed | bad �( byte"
enqueue_range 62 63 enc2 >/dev/null
wait_drained 20
tap_is "a 300-character multi-byte error: stored whole" "$(q "SELECT error_detail = repeat('€', 300) FROM wam.outbox WHERE campaign = 'enc2'")" t
tap_is "last_error (255 bytes at most) is cut at a character boundary" \
    "$(q "SELECT last_error = 'error 131009: ' || repeat('€', 80) FROM wam.worker_status WHERE sender = 'main'")" t

# --- secrets ----------------------------------------------------------------------------
if grep -q -e 'hard-test-token' -e 'hard-app-secret' -e 'proxy-pass-secret' -e 'proxyuser' "$WAM_SERVER_LOG"; then
    tap_not_ok "the server log never shows the token, the app secret or the proxy's credentials" \
        "$(grep -n -e 'hard-test-token' -e 'hard-app-secret' -e 'proxy-pass-secret' -e 'proxyuser' "$WAM_SERVER_LOG" | head -3)"
else
    tap_ok "the server log never shows the token, the app secret or the proxy's credentials"
fi
tap_is "no outbox row or sender shows them either" \
    "$(q "SELECT count(*) FROM wam.outbox o WHERE o::text ~ 'hard-test-token|proxy-pass-secret|proxyuser'") $(q "SELECT count(*) FROM wam.sender s WHERE s::text ~ 'hard-test-token|hard-app-secret|proxy'")" "0 0"
tap_is "no crash in the server log" "$(grep -cE 'terminated by signal|PANIC:' "$WAM_SERVER_LOG")" 0

tap_done
