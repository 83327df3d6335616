# shellcheck shell=bash
# test/lib/sender.sh — a cluster with the sender worker and the mock Cloud API over TLS,
# for test/t/sender_*.sh, the demo and test/bench_sender.sh.
#
#     sender_setup [name=value ...]  own cluster (wam.worker_database=postgres; port
#                                    WAM_TEST_PORT+20 unless WAM_SENDER_PORT is set), mock_start,
#                                    CREATE EXTENSION
#     mock_start                     in the running cluster: a test CA under the cluster dir
#                                    trusted through wam.sender_ca_file (ALTER SYSTEM + reload), the
#                                    mock with TLS on WAM_MOCK_PORT, or by default on a
#                                    free port the system picks (then in MOCK_PORT)
#     mock GET|POST PATH [JSON]      control API of the mock
#     mock_url                       https://localhost:PORT (the API base for create_sender)
#     pump_webhooks                  pop the mock's webhooks and feed them to wam.ingest_webhook;
#                                    prints the number of deliveries
#     wait_drained [SECONDS]         until no message is queued, retrying or sending
#     q SQL                          one value from psql (unaligned, tuples only)
#     accounting CAMPAIGN            the mock's record against wam.outbox for a campaign
#     statuses CAMPAIGN              the campaign's messages counted by status
# Needs cluster.sh and tap.sh sourced first.

MOCK_PID=""
MOCK_PORT=${WAM_MOCK_PORT:-0}
WAM_CA_DIR=""

q() { wam_psql -qAt -d postgres -c "$1"; }

mock() {
    python3 "$WAM_REPO_DIR/test/lib/mockctl.py" "https://localhost:$MOCK_PORT" "$WAM_CA_DIR/ca.pem" \
        "$(echo "$1" | tr '[:upper:]' '[:lower:]')" "$2" ${3+"$3"}
}

mock_url() { echo "https://localhost:$MOCK_PORT/v23.0"; }

sender_setup() {
    unset WAM_CLUSTER_RUNNING PGHOST PGPORT
    export WAM_TEST_PORT=${WAM_SENDER_PORT:-$((${WAM_TEST_PORT:-55432} + 20))}
    export WAM_PRELOAD=pg_wamarketing
    start_cluster "$@" || return 1
    mock_start || return 1
    q "CREATE EXTENSION IF NOT EXISTS pg_wamarketing" >/dev/null
}

# mock_start: a test CA under the (running) cluster's dir, trusted by the worker through
# wam.sender_ca_file (ALTER SYSTEM + reload), and the mock serving TLS on MOCK_PORT (0: any free
# port; MOCK_PORT is the port it got afterwards).
mock_start() {
    WAM_CA_DIR=$WAM_CLUSTER_DIR/ca
    bash "$WAM_REPO_DIR/test/mock/make_test_ca.sh" "$WAM_CA_DIR" >/dev/null 2>&1 || return 1
    chmod 755 "$WAM_CA_DIR" && chmod 644 "$WAM_CA_DIR"/*
    python3 "$WAM_REPO_DIR/test/mock/wa_mock.py" --port "$MOCK_PORT" --host 127.0.0.1 \
        --tls-cert "$WAM_CA_DIR/server.pem" --tls-key "$WAM_CA_DIR/server.key" \
        >"$WAM_CLUSTER_DIR/mock.out" 2>"$WAM_CLUSTER_DIR/mock.err" &
    MOCK_PID=$!
    wam_on_exit 'kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null'
    local i
    for i in $(seq 1 100); do
        grep -q '^READY' "$WAM_CLUSTER_DIR/mock.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '^READY' "$WAM_CLUSTER_DIR/mock.out" || { cat "$WAM_CLUSTER_DIR/mock.err" >&2; return 1; }
    # port 0: the system picked a free one (two test runs on one machine do not collide)
    MOCK_PORT=$(sed -n 's/^READY port=\([0-9][0-9]*\).*/\1/p' "$WAM_CLUSTER_DIR/mock.out" | head -n 1)
    q "ALTER SYSTEM SET wam.sender_ca_file = '$WAM_CA_DIR/ca.pem'" >/dev/null &&
        q "SELECT pg_reload_conf()" >/dev/null
}

pump_webhooks() {
    local f=$WAM_CLUSTER_DIR/webhooks.sql
    mock GET /_mock/stats >/dev/null
    python3 "$WAM_REPO_DIR/test/lib/mockctl.py" "https://localhost:$MOCK_PORT" "$WAM_CA_DIR/ca.pem" \
        webhooks-sql 1000 >"$f" || return 1
    wam_psql -q -At -d postgres -f "$f" >/dev/null || return 1
    grep -c '^SELECT' "$f"
}

wait_drained() {
    local limit=${1:-60} i
    for ((i = 0; i < limit * 10; i++)); do
        [ "$(q "SELECT count(*) FROM wam.outbox WHERE status IN ('queued', 'retrying', 'sending')" 2>/dev/null)" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}

# The mock's record against wam.outbox for one campaign, and its status counts.
# accounting CAMPAIGN -> "accepted distinct marked accepted_not_marked marked_not_accepted"
accounting() {
    local f=$WAM_CLUSTER_DIR/accounting.sql
    mock GET /_mock/messages >"$WAM_CLUSTER_DIR/messages.json" || return 1
    cat >"$f" <<SQL
\set js \`cat $WAM_CLUSTER_DIR/messages.json\`
WITH m AS (SELECT substr(e->>'biz_opaque_callback_data', 5)::bigint AS id
           FROM jsonb_array_elements(:'js'::jsonb) e),
     o AS (SELECT message_id, wamid FROM wam.outbox WHERE campaign = '$1')
SELECT (SELECT count(*) FROM m WHERE id IN (SELECT message_id FROM o)),
       (SELECT count(DISTINCT id) FROM m WHERE id IN (SELECT message_id FROM o)),
       (SELECT count(*) FROM o WHERE wamid IS NOT NULL),
       (SELECT count(*) FROM m WHERE id IN (SELECT message_id FROM o WHERE wamid IS NULL)),
       (SELECT count(*) FROM o WHERE wamid IS NOT NULL AND message_id NOT IN (SELECT id FROM m WHERE id IS NOT NULL));
SQL
    wam_psql -qAt -d postgres -F ' ' -f "$f"
}
statuses() { q "SELECT string_agg(status || '=' || n, ' ' ORDER BY status) FROM (SELECT status, count(*) n FROM wam.outbox WHERE campaign = '$1' GROUP BY 1) s"; }
