#!/usr/bin/env bash
# test/bench_event_detail.sh — what keeping wam.event_detail (the index of event detail
# filters) costs an event insert: one event with a two-key details object per transaction,
# the shape an application produces, with the detail triggers and with them disabled (plain
# SQL: the same INSERT into wam.event alone), alternating, on an empty table and after
# WAM_BENCH_HISTORY events.
#
#     bash test/run build && bash test/bench_event_detail.sh
#
# Starts its own throwaway PostgreSQL 15 cluster. Prints a Markdown report on stdout and
# writes it to bench/results/event_detail.md with the default knobs. Takes about two minutes.
#
# Knobs (environment):
#   WAM_BENCH_TX=20000          inserts per round
#   WAM_BENCH_ROUNDS=3          rounds of each variant (median reported)
#   WAM_BENCH_HISTORY=2000000   events recorded before the second measurement
#   WAM_BENCH_OUT=FILE          report file (default bench/results/event_detail.md at the defaults)
#   WAM_BENCH_PORT=55497        port of the private cluster (unix socket only)
#   WAM_BENCH_BUILD=1           run deps + make + make install first
set -euo pipefail

# shellcheck source=test/lib/bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

TX=${WAM_BENCH_TX:-20000}
ROUNDS=${WAM_BENCH_ROUNDS:-3}
HISTORY=${WAM_BENCH_HISTORY:-2000000}
bench_positive TX ROUNDS HISTORY
bench_out event_detail.md "$TX $ROUNDS $HISTORY" "20000 3 2000000"
bench_begin bench_event_detail
bench_require_extension 'wam_internal.event_detail_trigger'

WAM_PRELOAD='' bench_cluster 55497
export PGDATABASE=postgres PGOPTIONS="-c client_min_messages=warning"
scripts=$WAM_CLUSTER_DIR/scripts
mkdir -p "$scripts"
q "CREATE EXTENSION pg_wamarketing" >/dev/null
q "INSERT INTO wam.customer (id, phone) SELECT g, '1555' || lpad(g::text, 7, '0') FROM generate_series(1, 100000) g" >/dev/null
cat >"$scripts/insert.sql" <<'SQL'
\set c random(1, 100000)
\set p random(1, 20)
INSERT INTO wam.event (customer_id, kind, details)
VALUES (:c, 'link_click', jsonb_build_object('product', 'product_' || :p, 'utm_source', 'ig'));
SQL
q "CREATE TABLE public.bench_result (history bigint, variant text, round integer, latency_ms float8)" >/dev/null

run() { # HISTORY VARIANT ROUND
    local out lat
    if [ "$2" = plain ]; then
        q "ALTER TABLE wam.event DISABLE TRIGGER event_detail_insert" >/dev/null
    else
        q "ALTER TABLE wam.event ENABLE TRIGGER event_detail_insert" >/dev/null
    fi
    out=$("$WAM_PG_BIN/pgbench" -n -M prepared -c 1 -t "$TX" -f "$scripts/insert.sql" 2>&1) || die "pgbench $2: $out"
    lat=$(printf '%s\n' "$out" | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p')
    [ -n "$lat" ] || die "pgbench $2: no latency in: $out"
    q "INSERT INTO public.bench_result VALUES ($1, '$2', $3, $lat)" >/dev/null
    log "history $1, $2, round $3: $lat ms"
}
measure() { # HISTORY
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        run "$1" detail "$r"
        run "$1" plain "$r"
    done
    q "ALTER TABLE wam.event ENABLE TRIGGER event_detail_insert" >/dev/null
}
wait_idle "event inserts"
measure 0
log "event history: $HISTORY events"
q "INSERT INTO wam.event (customer_id, kind, occurred_at, details)
   SELECT 1 + g % 100000, 'link_click', now() - g * interval '1 second',
          jsonb_build_object('product', 'product_' || (g % 20), 'utm_source', 'ig')
   FROM generate_series(1, $HISTORY) g" >/dev/null
q "VACUUM ANALYZE wam.event" >/dev/null
q "VACUUM ANALYZE wam.event_detail" >/dev/null
measure "$HISTORY"
note_busy "event inserts"
[ "$(q "SELECT (SELECT count(*) FROM wam.event_detail) < (SELECT 2 * count(*) FROM wam.event)")" = t ] ||
    die "the plain rounds were not plain"

table=$(q -c "SELECT format('| %s | %s | %s | %s |', to_char(history, 'FM999,999,999,990'),
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE variant = 'detail'))::numeric, 3),
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE variant = 'plain'))::numeric, 3),
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE variant = 'detail')
             - percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE variant = 'plain'))::numeric, 3))
    FROM public.bench_result GROUP BY history ORDER BY history")
bench_report "$(cat <<MD
## Event inserts with the detail index

\`bash test/bench_event_detail.sh\` — $(date -u +%Y-%m-%d), PostgreSQL $(q "SHOW server_version"), $(nproc) CPUs;
pgbench, 1 client, $TX transactions per round of one \`INSERT INTO wam.event\` with a two-key
\`details\` object, median of $ROUNDS rounds each, alternating. "with the index": the triggers
keep \`wam.event_detail\` (two rows, four index entries per event); "plain": the trigger that
fills it disabled, the rest of the extension's triggers as they are.

| events already recorded | with the index, ms | plain insert, ms | difference, ms |
|---:|---:|---:|---:|
$table
${BUSY_NOTES[*]:+
Notes: ${BUSY_NOTES[*]}}
MD
)"
