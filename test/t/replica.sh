#!/usr/bin/env bash
# test/t/replica.sh — the extension on a streaming hot standby and through a failover: a
# primary (test/lib/cluster.sh) and a standby made with pg_basebackup over the primary's
# unix socket, both with the sender worker preloaded, and the mock Cloud API over TLS.
#
#   1. On the standby the extension arrives by replication; reads work (segment
#      expressions, saved segments, tag members, delivery report, worker status, the
#      outbox); writes fail with SQLSTATE 25006 (read-only) and nothing crashes; no sender
#      worker runs there and the mock gets no request while the standby holds queued rows.
#   2. Messages sent by the primary reach the mock once.
#   3. Failover: 4 requests held by the mock (2 accepted and recorded, responses lost; 2 never
#      taken) are `sending` on the primary, 6 more queued behind them (wam.sender_max_in_flight = 4);
#      kill -9 of the primary's postmaster; pg_promote() on the standby; the worker starts on
#      the new primary, the 4 replicated `sending` rows become `uncertain` and are not resent,
#      the 6 queued ones are sent once.
#   4. Status webhooks ingested on the new primary settle the 2 recorded uncertain rows
#      through biz_opaque_callback_data; the operator requeues the other 2 with
#      wam.requeue_message(); in the end the mock's record holds every message exactly once.
#
# Ports: WAM_REPLICA_PORT (primary; default WAM_TEST_PORT + 26) and the next one (standby).
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

P_PORT=${WAM_REPLICA_PORT:-$((${WAM_TEST_PORT:-55432} + 26))}
S_PORT=$((P_PORT + 1))
TPL='{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{first_name}"}]}]}}'

# --- the primary: in-flight limit 4 and a long HTTP timeout so that held requests stay
# in flight until the kill (the standby overrides both in its own postgresql.conf)
unset WAM_CLUSTER_RUNNING PGHOST PGPORT
export WAM_TEST_PORT=$P_PORT WAM_PRELOAD=pg_wamarketing
if ! start_cluster wam.sender_max_in_flight=4 wam.sender_http_timeout=60s wal_level=replica max_wal_senders=4; then
    tap_not_ok "replica: primary starts"
    tap_done
fi
P_HOST=$PGHOST
P_DATA=$WAM_CLUSTER_DIR/data
P_LOG=$WAM_SERVER_LOG
mock_start || { tap_not_ok "replica: mock starts"; tap_done; }

# --- standbys: each in a directory of its own, stopped (and removed) at exit before the
# primary's cluster
stop_standby() { # DIR
    local data=$1/data i pids key shm
    if [ -f "$data/postmaster.pid" ]; then
        _wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 -s stop 2>/dev/null ||
            _wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 30 -s stop 2>/dev/null || true
    fi
    for ((i = 0; i < 50; i++)); do
        pids=$(wam_cluster_pids "$data")
        [ -z "$pids" ] && break
        sleep 0.2
    done
    # last resort, only processes of this data dir
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    # a killed postmaster leaves its System V segment (key and id in the pid file): remove
    # that one only, and only when nothing is attached (as stop_cluster does)
    if [ -f "$data/postmaster.pid" ] && command -v ipcs >/dev/null && command -v ipcrm >/dev/null; then
        read -r key shm < <(sed -n 7p "$data/postmaster.pid" 2>/dev/null) || true
        case "$key:$shm" in
            *[!0-9:]* | :* | *:) ;;
            *) ipcs -m 2>/dev/null | awk -v k="$(printf '0x%08x' "$key")" -v id="$shm" \
                   '$1 == k && $2 == id && $6 == 0 { f = 1 } END { exit !f }' && ipcrm -m "$shm" 2>/dev/null ;;
        esac
    fi
    if [ "${WAM_KEEP_CLUSTER_DIR:-0}" = 1 ]; then
        echo "[replica] kept $1" >&2
    else
        rm -rf "$1"
    fi
}
# make_standby UPSTREAM_HOST UPSTREAM_PORT PORT: a streaming standby of that server, started;
# its directory in STANDBY_DIR (data/, sock/, server.log).
# pg_basebackup over the upstream's unix socket (initdb's pg_hba trusts local replication);
# -R writes primary_conninfo and standby.signal. The upstream's ALTER SYSTEM settings so far
# (wam.sender_ca_file) come along in postgresql.auto.conf; later ones stay the upstream's own.
make_standby() {
    local dir
    dir=$(mktemp -d "${WAM_TMP_ROOT:-/tmp}/wam-standby.XXXXXX") || return 1
    STANDBY_DIR=$dir
    chmod 755 "$dir"
    mkdir -p "$dir/sock"
    [ "$(id -u)" -eq 0 ] && chown -R "${WAM_TEST_OS_USER:-wamtest}:" "$dir"
    wam_on_exit "stop_standby '$dir'"
    if ! _wam_as_owner "$WAM_PG_BIN/pg_basebackup" -h "$1" -p "$2" -U "$PGUSER" -D "$dir/data" \
            -R -X stream -c fast >"$dir/basebackup.log" 2>&1; then
        cat "$dir/basebackup.log" >&2
        return 1
    fi
    {
        echo "# --- test/t/replica.sh: a standby ---"
        echo "port = $3"
        echo "unix_socket_directories = '$dir/sock'"
        echo "hot_standby = on"
        echo "wam.sender_max_in_flight = 64"
        echo "wam.sender_http_timeout = '10s'"
    } >>"$dir/data/postgresql.conf"
    _wam_as_owner touch "$dir/server.log"
    if ! _wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -s start; then
        tail -n 30 "$dir/server.log" >&2
        return 1
    fi
}
if ! make_standby "$P_HOST" "$P_PORT" "$S_PORT"; then
    tap_not_ok "standby: pg_basebackup and start"
    tap_done
fi
S_DIR=$STANDBY_DIR
S_DATA=$S_DIR/data
S_HOST=$S_DIR/sock
S_LOG=$S_DIR/server.log

onp() { PGHOST=$P_HOST PGPORT=$P_PORT "$@"; }
ons() { PGHOST=$S_HOST PGPORT=$S_PORT "$@"; }
qp() { onp q "$1"; }
qs() { ons q "$1"; }
# psql's error as its SQLSTATE only ("ERROR:  25006")
sqlstate_of() { # SQL  (on the standby)
    TAP_SQL_ERRORS_OK=1 ons tap_psql -qAt -d postgres -c '\set VERBOSITY sqlstate' -c "$1" 2>&1 | sed -n 's/^ERROR:  *//p'
}
# until SQL (on the standby or primary: FN = qs|qp) prints WANT, at most SECONDS (a server
# that is starting or promoting may refuse connections meanwhile: those errors do not
# count; a condition never met fails the caller's check)
wait_for() { # FN SQL WANT SECONDS
    local i
    for ((i = 0; i < $4 * 10; i++)); do
        [ "$(TAP_SQL_ERRORS_OK=1 "$1" "$2" 2>/dev/null)" = "$3" ] && return 0
        sleep 0.1
    done
    return 1
}
sender_procs() { # DATA: processes of that cluster that are the sender worker
    local p n=0
    for p in $(wam_cluster_pids "$1"); do
        [[ "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" == *"pg_wamarketing sender"* ]] && n=$((n + 1))
    done
    echo "$n"
}
mock_requests() { mock GET /_mock/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages_requests"])'; }
# the mock's record, per outbox id: "id:count" of ids received more than once, or "none"
mock_doubles() {
    mock GET /_mock/messages | python3 -c '
import collections, json, sys
c = collections.Counter(m["biz_opaque_callback_data"] for m in json.load(sys.stdin))
d = sorted("%s:%d" % (k, n) for k, n in c.items() if n > 1)
print(" ".join(d) if d else "none")'
}
# how many times the mock received each message of a campaign, in message_id order: "1 1 0 …"
campaign_ids() { q "SELECT string_agg(message_id::text, ' ' ORDER BY message_id) FROM wam.outbox WHERE campaign = '$1'"; }
mock_counts() { mock_counts_ids "$(campaign_ids "$1")"; } # CAMPAIGN (on the server PGHOST/PGPORT point at)
mock_counts_ids() { # "ID ID …"
    local ids=$1
    mock GET /_mock/messages | python3 -c '
import collections, json, sys
c = collections.Counter(m["biz_opaque_callback_data"] for m in json.load(sys.stdin))
print(" ".join(str(c["wam:" + i]) for i in sys.argv[1].split()))' "$ids"
}
statuses() { # CAMPAIGN
    q "SELECT string_agg(status || '=' || n, ' ' ORDER BY status) FROM (SELECT status, count(*) n FROM wam.outbox WHERE campaign = '$1' GROUP BY 1) s"
}

# --- the extension arrives by replication -------------------------------------------------
export PGHOST=$P_HOST PGPORT=$P_PORT
q "CREATE EXTENSION pg_wamarketing" >/dev/null
q "SELECT wam.create_sender('main', '106540352242922', 'test-token', 'test-app-secret', '$(mock_url)', 6000)" >/dev/null
q "INSERT INTO wam.customer (id, phone, name, consent_at, consent_source)
   SELECT g, '1555' || lpad(g::text, 7, '0'), 'Customer ' || g, now(), 'test' FROM generate_series(1, 200) g" >/dev/null
q "SELECT wam.create_tag('vip', 'interest'), wam.create_tag('churned', 'interest')" >/dev/null
q "SELECT wam.attach_tag('vip', wam.segment_range(1, 51)), wam.attach_tag('churned', wam.segment_range(41, 61))" >/dev/null
q "SELECT wam.define_segment('loyal', 'vip EXCLUDE churned')" >/dev/null
mock POST /_mock/config '{"numbers": {"106540352242922": {"pair_limit_seconds": 0}}}' >/dev/null
if wait_for qs "SELECT count(*) FROM wam.saved_segment" 1 30; then
    tap_ok "standby: CREATE EXTENSION and the data arrive by replication"
else
    tap_not_ok "standby: CREATE EXTENSION and the data arrive by replication" "$(tail -n 20 "$S_LOG")"
fi
tap_is "standby: in recovery; the primary is not" "$(qs "SELECT pg_is_in_recovery()") $(qp "SELECT pg_is_in_recovery()")" "t f"

# --- 2. the primary sends, once --------------------------------------------------------------
qp "SELECT queued FROM wam.enqueue_segment(wam.segment_range(1, 11), '$TPL', campaign => 'first')" >/dev/null
if onp wait_drained 30; then tap_ok "primary: 10 messages drained"; else tap_not_ok "primary: 10 messages drained" "$(onp statuses first)"; fi
tap_is "primary: each of the 10 reached the mock once" "$(onp mock_counts first)" "1 1 1 1 1 1 1 1 1 1"
tap_is "primary: all marked sent, with the mock's wamids" \
    "$(qp "SELECT count(*) FROM wam.outbox WHERE campaign = 'first' AND status = 'sent' AND wamid LIKE 'wamid.%'")" 10

# --- 1. the standby reads ------------------------------------------------------------------
# nothing sends while the standby holds queued rows: the primary's worker is switched off
# (its own ALTER SYSTEM; the standby's configuration keeps wam.worker_enabled on)
qp "ALTER SYSTEM SET wam.worker_enabled = off" >/dev/null
qp "SELECT pg_reload_conf()" >/dev/null
wait_for qp "SELECT state FROM wam.worker_status" disabled 20 ||
    tap_not_ok "primary: worker disabled" "$(qp "SELECT state FROM wam.worker_status")"
qp "SELECT queued FROM wam.enqueue_segment(wam.segment_range(11, 21), '$TPL', campaign => 'held')" >/dev/null
reqs0=$(mock_requests)
if wait_for qs "SELECT count(*) FROM wam.outbox WHERE campaign = 'held' AND status = 'queued'" 10 30 &&
    wait_for qs "SELECT count(*) FROM wam.outbox WHERE campaign = 'first' AND status = 'sent'" 10 30; then
    tap_ok "standby: sees the 10 sent and the 10 queued messages"
else
    tap_not_ok "standby: sees the 10 sent and the 10 queued messages" "$(ons statuses first) / $(ons statuses held)"
fi

for expr in 'vip EXCLUDE churned' 'vip OR churned' 'vip AND churned' '@loyal AND NOT churned' 'reachable EXCLUDE @loyal'; do
    tap_is "standby: audience_size('$expr') = the primary's" \
        "$(qs "SELECT wam.audience_size('$expr')")" "$(qp "SELECT wam.audience_size('$expr')")"
done
tap_is "standby: segment expressions give the expected sizes" \
    "$(qs "SELECT wam.audience_size('vip EXCLUDE churned') || ' ' || wam.segment_cardinality(wam.audience('vip AND churned')) || ' ' || wam.audience_size('reachable EXCLUDE @loyal')")" \
    "40 10 160"
tap_is "standby: audience = the primary's" \
    "$(qs "SELECT wam.audience('(vip OR churned) EXCLUDE vip')::text")" "$(qp "SELECT wam.audience('(vip OR churned) EXCLUDE vip')::text")"
tap_is "standby: audience_funnel works" \
    "$(qs "SELECT string_agg(customers::text, ' ' ORDER BY step) FROM wam.audience_funnel('vip EXCLUDE churned')")" "50 20 40"
tap_is "standby: tag_members and customer_tags" \
    "$(qs "SELECT wam.segment_cardinality(wam.tag_members('churned')) || ' ' || array_to_string(wam.customer_tags(45), ',')")" \
    "$(qp "SELECT wam.segment_cardinality(wam.tag_members('churned')) || ' ' || array_to_string(wam.customer_tags(45), ',')")"
report="SELECT r::text FROM wam.delivery_report(now() - interval '1 day', now() + interval '1 day') r"
tap_is "standby: delivery_report = the primary's" "$(qs "$report")" "$(qp "$report")"
tap_is "standby: delivery_report counts 20 messages, 10 sent, 10 pending" \
    "$(qs "SELECT messages || ' ' || sent || ' ' || pending FROM wam.delivery_report(now() - interval '1 day', now() + interval '1 day')")" "20 10 10"
tap_is "standby: worker_status says not running, queue depth 10" \
    "$(qs "SELECT state || ' ' || queue_depth || ' ' || uncertain FROM wam.worker_status")" "not running 10 0"
tap_is "standby: wam.worker_pid() is NULL; no sender worker in pg_stat_activity (primary: one)" \
    "$(qs "SELECT coalesce(wam.worker_pid()::text, 'null') || ' ' || count(*) FROM pg_stat_activity WHERE backend_type = 'pg_wamarketing sender'") $(qp "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_wamarketing sender'")" \
    "null 0 1"
tap_is "standby: no sender worker process (primary: one)" "$(sender_procs "$S_DATA") $(sender_procs "$P_DATA")" "0 1"
tap_is "standby: no scheduler worker runs periodic jobs (primary: one)" \
    "$(qs "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_wamarketing scheduler'") $(qp "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_wamarketing scheduler'")" "0 1"

# writes: the standard read-only error, no crash
tap_is "standby: wam.enqueue fails with 25006" "$(sqlstate_of "SELECT wam.enqueue_message(1, '$TPL')")" 25006
tap_is "standby: wam.enqueue_segment fails with 25006" "$(sqlstate_of "SELECT wam.enqueue_segment(wam.segment_range(1, 3), '$TPL')")" 25006
# wam.attach_tag/detach_tag write wam.customer_tag past the executor (src/tag_membership.c): they must
# refuse like the executor does, not fail inside the heap with an internal error
tap_is "standby: wam.attach fails with 25006" "$(sqlstate_of "SELECT wam.attach_tag('vip', '{100}')")" 25006
tap_is "standby: wam.detach fails with 25006" "$(sqlstate_of "SELECT wam.detach_tag('vip', '{1}')")" 25006
tap_is "standby: wam.retag fails with 25006" "$(sqlstate_of "SELECT wam.retag_customers('{1}', remove => '{vip}')")" 25006
# (the same on the primary in a READ ONLY transaction: nothing reaches the heap, as the
# transaction's own tuple counters show after the failed calls are rolled back)
ro_out=$(TAP_SQL_ERRORS_OK=1 onp tap_psql -qAt -d postgres -v ON_ERROR_STOP=0 -c '\set VERBOSITY sqlstate' -c 'BEGIN READ ONLY' \
    -c 'SAVEPOINT a' -c "SELECT wam.attach_tag('vip', '{100}')" -c 'ROLLBACK TO a' \
    -c "SELECT wam.detach_tag('vip', '{1}')" -c 'ROLLBACK TO a' \
    -c "SELECT 'written: ' || n_tup_ins || ' ' || n_tup_del FROM pg_stat_xact_user_tables WHERE relname = 'customer_tag'" \
    -c 'ROLLBACK' 2>&1 | sed 's/^ERROR:  *//' | tr '\n' ' ')
tap_is "primary: in a READ ONLY transaction wam.attach and wam.detach fail with 25006 before writing" \
    "$ro_out| $(qp "SELECT wam.segment_cardinality(wam.tag_members('vip'))")" "25006 25006 written: 0 0 | 50"
tap_is "standby: wam.define_segment fails with 25006" "$(sqlstate_of "SELECT wam.define_segment('x', 'vip')")" 25006
tap_is "standby: wam.cancel fails with 25006" "$(sqlstate_of "SELECT wam.cancel_campaign('held')")" 25006
heldid=$(qp "SELECT min(message_id) FROM wam.outbox WHERE campaign = 'held'")
tap_is "standby: wam.requeue_message fails with 25006" "$(sqlstate_of "SELECT wam.requeue_message($heldid)")" 25006
# a correctly signed webhook is refused too: the endpoint must post to the primary
mock POST /_mock/inbound '{"from": "15550000007", "text": "hello standby"}' >/dev/null
python3 "$repo/test/lib/mockctl.py" "https://localhost:$MOCK_PORT" "$WAM_CA_DIR/ca.pem" webhooks-sql 1000 \
    >"$WAM_CLUSTER_DIR/inbound.sql"
tap_is "standby: wam.ingest_webhook of a signed webhook fails with 25006" \
    "$(sqlstate_of "$(grep '^SELECT' "$WAM_CLUSTER_DIR/inbound.sql")")" 25006
tap_is "the same webhook on the primary is applied" \
    "$(onp tap_psql -qAt -d postgres -f "$WAM_CLUSTER_DIR/inbound.sql" >/dev/null 2>&1; qp "SELECT count(*) FROM wam.inbound_message WHERE body = 'hello standby'")" 1
tap_is "standby: still up, no crash in its log" \
    "$(qs "SELECT 1") $(grep -cE 'terminated by signal|PANIC:' "$S_LOG")" "1 0"

# the standby held 10 queued rows all along: give a sender that should not exist time to
# show itself, then the mock must have had no request at all
sleep 2
tap_is "standby: the mock got no request while only the standby could have sent" "$(mock_requests)" "$reqs0"
tap_is "standby: its log shows no sender worker start" "$(grep -c 'pg_wamarketing sender started' "$S_LOG")" 0

qp "ALTER SYSTEM RESET wam.worker_enabled" >/dev/null
qp "SELECT pg_reload_conf()" >/dev/null
if onp wait_drained 30; then tap_ok "primary: the held messages drain once it is on again"; else tap_not_ok "primary: held drain" "$(onp statuses held)"; fi
tap_is "primary: each held message reached the mock once" "$(onp mock_counts held)" "1 1 1 1 1 1 1 1 1 1"

# --- 3. failover with requests in flight -------------------------------------------------
# 2 requests the mock accepts and records but never answers, 2 it never takes; the primary
# may have 4 in flight, so the next 6 stay queued behind them
mock POST /_mock/config '{"faults": [
  {"match": {"to": ["15550000101", "15550000102"]}, "action": "lose_response", "seconds": 120},
  {"match": {"to": ["15550000103", "15550000104"]}, "action": "timeout", "seconds": 120}]}' >/dev/null
qp "SELECT queued FROM wam.enqueue_segment(wam.segment_range(101, 105), '$TPL', campaign => 'inflight')" >/dev/null
wait_for qp "SELECT count(*) FROM wam.outbox WHERE campaign = 'inflight' AND status = 'sending'" 4 30
# the two lost ones are in the mock's record once it has accepted them
for ((i = 0; i < 300; i++)); do
    [ "$(onp mock_counts inflight)" = "1 1 0 0" ] && break
    sleep 0.1
done
tap_is "primary: 4 requests in flight (sending); the mock recorded 2 of them" \
    "$(onp statuses inflight) | $(onp mock_counts inflight)" "sending=4 | 1 1 0 0"
qp "SELECT queued FROM wam.enqueue_segment(wam.segment_range(105, 111), '$TPL', campaign => 'queued')" >/dev/null
if wait_for qs "SELECT count(*) FILTER (WHERE campaign = 'inflight' AND status = 'sending') || ' ' || count(*) FILTER (WHERE campaign = 'queued' AND status = 'queued') FROM wam.outbox" "4 6" 30; then
    tap_ok "standby: has replayed 4 sending and 6 queued rows"
else
    tap_not_ok "standby: has replayed 4 sending and 6 queued rows" "$(ons statuses inflight) / $(ons statuses queued)"
fi
tap_is "primary: the 6 wait behind the in-flight limit" "$(onp statuses queued)" "queued=6"

# the primary dies: kill -9 of its postmaster; its worker and backends follow
ppid=$(head -n 1 "$P_DATA/postmaster.pid")
kill -9 "$ppid"
for ((i = 0; i < 150; i++)); do
    [ -z "$(wam_cluster_pids "$P_DATA")" ] && break
    sleep 0.1
done
tap_is "old primary: every process gone after kill -9 of the postmaster" "$(wam_cluster_pids "$P_DATA")" ""
# the mock answers normally from now on: a resend would show in its record
mock POST /_mock/config '{"faults": []}' >/dev/null
before_promote=$(mock_requests)

export PGHOST=$S_HOST PGPORT=$S_PORT
tap_is "standby: pg_promote() succeeds" "$(q "SELECT pg_promote(true, 60)")" t
if wait_for qs "SELECT wam.worker_pid() IS NOT NULL" t 30; then
    tap_ok "new primary: the sender worker starts after promotion"
    if wait_for qs "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_wamarketing scheduler'" 1 30; then
        tap_ok "new primary: the scheduler worker starts after promotion"
    else
        tap_not_ok "new primary: the scheduler worker starts after promotion" "$(tail -n 20 "$S_LOG")"
    fi
else
    tap_not_ok "new primary: the sender worker starts after promotion" "$(tail -n 20 "$S_LOG")"
fi
if wait_drained 30; then tap_ok "new primary: the queue drains"; else tap_not_ok "new primary: the queue drains" "$(statuses queued)"; fi
tap_is "new primary: the worker's log says the 4 in-flight rows became uncertain" \
    "$(grep -c 'pg_wamarketing sender: 4 messages were in flight when the worker last stopped; they are now uncertain' "$S_LOG")" 1
tap_is "new primary: the 4 replicated sending rows are uncertain, with the reason" \
    "$(q "SELECT string_agg(status || ':' || (error_detail LIKE 'the sender worker stopped while the request was in flight%'), ' ') FROM wam.outbox WHERE campaign = 'inflight'")" \
    "uncertain:true uncertain:true uncertain:true uncertain:true"
tap_is "new primary: the 6 queued ones are sent" "$(statuses queued)" "sent=6"
tap_is "new primary: the 6 reached the mock once each" "$(mock_counts queued)" "1 1 1 1 1 1"
tap_is "new primary: the uncertain ones were not resent (mock: 2 recorded before the kill, 2 never)" \
    "$(mock_counts inflight)" "1 1 0 0"
tap_is "new primary: since the promotion the mock got exactly the 6 queued requests" \
    "$(($(mock_requests) - before_promote))" 6
tap_is "new primary: worker_status shows 4 uncertain" "$(q "SELECT uncertain FROM wam.worker_status")" 4

# --- 4. webhooks settle what reached the API; the operator decides about the rest ------------
pump_webhooks >/dev/null
tap_is "new primary: webhooks settle the 2 recorded uncertain rows (biz_opaque_callback_data); 2 stay uncertain" \
    "$(q "SELECT string_agg(status, ' ' ORDER BY message_id) FROM wam.outbox WHERE campaign = 'inflight'")" \
    "delivered delivered uncertain uncertain"
lost_wamids=$(mock GET /_mock/messages | python3 -c '
import json, sys
print(" ".join(sorted(m["wamid"] for m in json.load(sys.stdin) if m["lost"])))')
tap_is "new primary: the settled rows carry the wamids the mock gave them" \
    "$(q "SELECT string_agg(wamid, ' ' ORDER BY wamid) FROM wam.outbox WHERE campaign = 'inflight' AND status = 'delivered'")" "$lost_wamids"
tap_is "new primary: the earlier campaigns are delivered too" "$(statuses first) $(statuses held) $(statuses queued)" \
    "delivered=10 delivered=10 delivered=6"
settled=$(q "SELECT min(message_id) FROM wam.outbox WHERE campaign = 'inflight'")
tap_is "wam.requeue_message on a settled message: false, nothing queued" \
    "$(q "SELECT wam.requeue_message($settled)") $(q "SELECT status FROM wam.outbox WHERE message_id = $settled")" "f delivered"
tap_is "the operator requeues the 2 still uncertain" \
    "$(q "SELECT string_agg(CASE WHEN wam.requeue_message(message_id) THEN 't' ELSE 'f' END, ' ' ORDER BY message_id) FROM wam.outbox WHERE campaign = 'inflight' AND status = 'uncertain'")" "t t"
if wait_drained 30; then tap_ok "new primary: the requeued messages drain"; else tap_not_ok "requeued drain" "$(statuses inflight)"; fi
tap_is "the requeued messages are sent; each message of the failover reached the mock once" \
    "$(statuses inflight) | $(mock_counts inflight)" "delivered=2 sent=2 | 1 1 1 1"
tap_is "the mock's record: no message received twice" "$(mock_doubles)" none
mock_wamids=$(mock GET /_mock/messages | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(len(m), " ".join(sorted(x["wamid"] for x in m)))')
tap_is "the mock's record: 30 messages, the same wamids as the outbox's" \
    "$mock_wamids" "$(q "SELECT count(*) || ' ' || string_agg(wamid, ' ' ORDER BY wamid COLLATE \"C\") FROM wam.outbox WHERE wamid IS NOT NULL")"
tap_is "the outbox: 30 messages, each with a wamid" "$(q "SELECT count(*) FILTER (WHERE wamid IS NOT NULL) || ' ' || count(*) FROM wam.outbox")" "30 30"
# --- 5. asynchronous and synchronous replication --------------------------------------------
# With asynchronous replication (the default) a claim committed on the primary may not have
# reached the standby when the primary dies: the new primary sees the row queued and sends it
# again. With synchronous replication the worker's claim commit (synchronous_commit = on, always)
# waits until the standby has it, so no request leaves before the standby knows.
# A second standby T of the new primary S gets two messages, not due for an hour, and is then
# stopped; on S they are made due, one with asynchronous, one with synchronous replication.
# (On T, after its promotion, the test makes them due too instead of waiting an hour.)
T_PORT=$((P_PORT + 2))
if ! make_standby "$S_HOST" "$S_PORT" "$T_PORT"; then
    tap_not_ok "second standby: pg_basebackup and start"
    tap_done
fi
T_DIR=$STANDBY_DIR
T_DATA=$T_DIR/data
T_HOST=$T_DIR/sock
T_LOG=$T_DIR/server.log
qt() { PGHOST=$T_HOST PGPORT=$T_PORT q "$1"; }
q "SELECT wam.enqueue_message(121, '$TPL', campaign => 'async', not_before => now() + interval '1 hour')" >/dev/null
q "SELECT wam.enqueue_message(122, '$TPL', campaign => 'sync', not_before => now() + interval '1 hour')" >/dev/null
if wait_for qs "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" 1 30 &&
    wait_for qt "SELECT count(*) FROM wam.outbox WHERE campaign IN ('async', 'sync') AND status = 'queued'" 2 30; then
    tap_ok "second standby streams from the new primary and has the 2 queued messages"
else
    tap_not_ok "second standby streams from the new primary and has the 2 queued messages" "$(tail -n 20 "$T_LOG")"
fi
_wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$T_DATA" -m fast -w -t 30 -s stop
wait_for qs "SELECT count(*) FROM pg_stat_replication" 0 30
async_ids=$(campaign_ids async)
sync_ids=$(campaign_ids sync)

q "UPDATE wam.outbox SET next_attempt_at = now() WHERE campaign = 'async'" >/dev/null
wait_for qs "SELECT status FROM wam.outbox WHERE campaign = 'async'" sent 30
tap_is "asynchronous: with the standby away the message is sent (once so far)" \
    "$(statuses async) | $(mock_counts_ids "$async_ids")" "sent=1 | 1"

# make_due_synchronously CAMPAIGN (on PGHOST/PGPORT, after synchronous_standby_names is set):
# the update making the campaign due commits synchronously (psql sessions here commit
# asynchronously): once it waits, the server requires the standby; cancelling its wait
# leaves it committed (on this server only), and the worker sees the rows due
make_due_synchronously() {
    local pid
    PGAPPNAME=replica-due tap_psql -qAt -d postgres -c "SET synchronous_commit = on" \
        -c "UPDATE wam.outbox SET next_attempt_at = now() WHERE campaign = '$1'" >/dev/null 2>&1 &
    pid=$!
    wait_for q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'replica-due' AND wait_event = 'SyncRep'" 1 30 ||
        tap_not_ok "synchronous: a synchronous commit waits for the standby ($1)"
    q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'replica-due'" >/dev/null
    wait "$pid"
}
worker_waits_syncrep() { # FN: qs|qt
    wait_for "$1" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_wamarketing sender' AND wait_event = 'SyncRep'" 1 30
}
q "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
make_due_synchronously sync
if worker_waits_syncrep qs; then
    tap_ok "synchronous: the worker's claim commit waits for the standby"
else
    tap_not_ok "synchronous: the worker's claim commit waits for the standby" "$(statuses sync)"
fi
tap_is "synchronous: meanwhile the request has not left; to other sessions the row is still queued" \
    "$(mock_counts_ids "$sync_ids") $(statuses sync)" "0 queued=1"
# a cancel would end the wait with a warning and let the commit stand on S alone: ignored
q "SELECT pg_cancel_backend(wam.worker_pid())" >/dev/null
sleep 1
tap_is "synchronous: pg_cancel_backend() of the worker does not end its wait; nothing sent" \
    "$(q "SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'pg_wamarketing sender'") $(mock_counts_ids "$sync_ids") $(grep 'canceling wait for synchronous replication' "$S_LOG" | grep -vc replica-due)" "SyncRep 0 0"

# S dies while its worker waits: PostgreSQL then ends the wait (the claim is committed on S
# only) and the worker must exit before sending
ppid=$(head -n 1 "$S_DATA/postmaster.pid")
kill -9 "$ppid"
for ((i = 0; i < 150; i++)); do
    [ -z "$(wam_cluster_pids "$S_DATA")" ] && break
    sleep 0.1
done
tap_is "S: every process gone after kill -9 of its postmaster" "$(wam_cluster_pids "$S_DATA")" ""
tap_is "synchronous: the worker did not send once its wait was cut short by the postmaster's death" \
    "$(mock_counts_ids "$sync_ids")" 0

_wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$T_DATA" -l "$T_LOG" -w -t 60 -s start
export PGHOST=$T_HOST PGPORT=$T_PORT
tap_is "second standby: pg_promote() succeeds" "$(q "SELECT pg_promote(true, 60)")" t
wait_for qt "SELECT wam.worker_pid() IS NOT NULL" t 30 || tap_not_ok "T: the worker starts" "$(tail -n 20 "$T_LOG")"
tap_is "T: both messages are queued there (neither claim reached it)" \
    "$(statuses async) $(statuses sync)" "queued=1 queued=1"
q "UPDATE wam.outbox SET next_attempt_at = now() WHERE campaign IN ('async', 'sync')" >/dev/null
if wait_drained 30; then tap_ok "T: the queue drains"; else tap_not_ok "T: the queue drains" "$(statuses async) $(statuses sync)"; fi
tap_is "synchronous: the message is sent once, by the new primary" "$(statuses sync) | $(mock_counts_ids "$sync_ids")" "sent=1 | 1"
tap_is "asynchronous: the claim the standby never got is sent again by the new primary (2 at the mock)" \
    "$(statuses async) | $(mock_counts_ids "$async_ids")" "sent=1 | 2"
tap_is "T: no row was left in sending, nothing became uncertain" \
    "$(grep -c 'were in flight when the worker last stopped' "$T_LOG") $(q "SELECT count(*) FROM wam.outbox WHERE status = 'uncertain'")" "0 0"

# a fast shutdown while the worker's claim waits for an absent synchronous standby: the
# worker ends the wait and exits without sending; at the next start the row is uncertain
q "SELECT wam.enqueue_message(123, '$TPL', campaign => 'shutdown', not_before => now() + interval '1 hour')" >/dev/null
shutdown_ids=$(campaign_ids shutdown)
q "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
make_due_synchronously shutdown
worker_waits_syncrep qt || tap_not_ok "T: the worker's claim waits for the (absent) synchronous standby"
if _wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$T_DATA" -m fast -w -t 30 -s stop; then
    tap_ok "T: a fast shutdown completes while the worker waits for a synchronous standby"
else
    tap_not_ok "T: a fast shutdown completes while the worker waits for a synchronous standby" "$(tail -n 8 "$T_LOG")" \
        "$(for p in $(wam_cluster_pids "$T_DATA"); do ps -o pid=,stat=,wchan:24=,cmd= -p "$p"; done)" \
        "$(for p in $(wam_cluster_pids "$T_DATA"); do grep -q 'sender' /proc/$p/cmdline && gdb -p $p -batch -ex bt 2>/dev/null | grep '^#'; done)"
    _wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$T_DATA" -m immediate -w -t 30 -s stop
fi
tap_is "T: the claimed message was not sent" "$(mock_counts_ids "$shutdown_ids")" 0
_wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$T_DATA" -l "$T_LOG" -w -t 60 -s start
# the worker's start-up commit waits for the standby too, until replication is made asynchronous
q "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
wait_for qt "SELECT status FROM wam.outbox WHERE campaign = 'shutdown'" uncertain 30
tap_is "T restarted: the row left in sending is uncertain, the mock never got it" \
    "$(statuses shutdown) $(mock_counts_ids "$shutdown_ids")" "uncertain=1 0"

tap_is "no crash in any log" "$(cat "$P_LOG" "$S_LOG" "$T_LOG" | grep -cE 'terminated by signal (4|6|7|8|11):|PANIC:')" 0

tap_done
