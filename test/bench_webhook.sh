#!/usr/bin/env bash
# test/bench_webhook.sh — status webhook ingestion (wam.ingest_webhook) against the plain
# UPDATE of the same statuses, side by side in one run, at two sizes of wam.outbox.
#
#     bash test/run build && bash test/bench_webhook.sh
#
# Starts its own throwaway PostgreSQL 15 cluster (test/lib/cluster.sh; always stopped at
# exit; no sender worker) with one sender and WAM_BENCH_TARGETS sent messages, then fills
# wam.outbox with delivered-and-read history rows (INSERT ... SELECT generate_series, with
# every index in place) up to each size of WAM_BENCH_SIZES.  Two shapes, each with pgbench
# (2 clients, prepared statements), every transaction taking its body from a table through a
# sequence, so that each body is used once:
#   1. one signed body with one "delivered" status for a distinct sent message (Meta posts
#      statuses one at a time): wam.ingest_webhook(body, signature) against
#      UPDATE wam.outbox ... FROM jsonb_array_elements(body::jsonb->...) of the same status
#      (no signature, no forward-only rule, no callback-data matching);
#   2. signed bodies of 1,000 statuses, the same two statements.
# Between runs the targets are set back to "sent" and wam.outbox is vacuumed, so every run
# sees the same table.  Each variant runs WAM_BENCH_ROUNDS times, the two alternating; the
# report gives the median and every run.  After each run the script checks that every
# target was delivered.
#
# Prints a Markdown report on stdout (progress on stderr) and writes it to
# bench/results/webhook.md with the default sizes.  Takes ~10 minutes (most of it filling
# 5,000,000 rows).
#
# Knobs (environment):
#   WAM_BENCH_SIZES="100000 5000000"   outbox sizes, ascending (rows in wam.outbox)
#   WAM_BENCH_TARGETS=40000            sent messages the statuses are for (even, a multiple
#                                      of 2,000; at most the smallest size)
#   WAM_BENCH_ROUNDS=3                 runs of each variant (median reported)
#   WAM_BENCH_OUT=FILE                 report file; default bench/results/webhook.md with the
#                                      default sizes, else none
#   WAM_BENCH_PORT=55494               port of the private cluster (unix socket only)
#   WAM_BENCH_BUILD=1                  run deps + make + make install first
# (SC2016: SQL $1 and $$ are not shell expansions.)
# shellcheck disable=SC2016
set -euo pipefail

# shellcheck source=test/lib/bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

SIZES=${WAM_BENCH_SIZES:-100000 5000000}
K=${WAM_BENCH_TARGETS:-40000}
ROUNDS=${WAM_BENCH_ROUNDS:-3}
bench_positive K ROUNDS
if [ $((K % 2000)) -ne 0 ]; then
    echo "error: WAM_BENCH_TARGETS must be a multiple of 2,000, got $K" >&2
    exit 2
fi
prev=0
for n in $SIZES; do
    case $n in
        '' | *[!0-9]*) echo "error: WAM_BENCH_SIZES must be numbers, got '$SIZES'" >&2; exit 2 ;;
    esac
    if [ "$n" -lt "$K" ] || [ "$n" -le "$prev" ]; then
        echo "error: WAM_BENCH_SIZES must ascend and be at least WAM_BENCH_TARGETS ($K)" >&2
        exit 2
    fi
    prev=$n
done
bench_out webhook.md "$SIZES $K $ROUNDS" "100000 5000000 40000 3"
PER_CLIENT=$((K / 2))
BODIES=$((K / 1000))
bench_begin bench_webhook
bench_require_extension 'wam_json_elements'

WAM_PRELOAD='' bench_cluster 55494 shared_buffers=1GB maintenance_work_mem=256MB max_wal_size=8GB \
    checkpoint_timeout=30min autovacuum=off
export PGDATABASE=postgres PGOPTIONS="-c client_min_messages=warning"
scripts=$WAM_CLUSTER_DIR/scripts
mkdir -p "$scripts"

log "setup: one sender, $K sent messages, their bodies (one status each, and $BODIES of 1,000)"
q <<SQL >/dev/null
CREATE EXTENSION pg_wamarketing;
SELECT wam.create_sender('main', '106540352242922', 'test-token', 'test-app-secret', 'https://localhost:9');
SELECT wam.pause_sender('main', 'benchmark');
-- the targets: message_id 1 .. K, sent, waiting for their "delivered"
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, status, attempts, wamid,
						created_at, next_attempt_at, sending_at, sent_at)
SELECT 1, g, '1555' || lpad(g::text, 7, '0'),
	   '{"type":"template","template":{"name":"spring_sale","language":{"code":"en"}}}', 'spring', 'sent', 1,
	   'wamid.HBgLMTU1NTAwMDAwMDEVAgARGBJ' || lpad(g::text, 10, '0'), now() - interval '1 hour',
	   now() - interval '1 hour', now() - interval '50 minutes', now() - interval '50 minutes'
FROM generate_series(1, $K) g;
CREATE TABLE public.bench_status AS
SELECT g AS i, jsonb_build_object('id', 'wamid.HBgLMTU1NTAwMDAwMDEVAgARGBJ' || lpad(g::text, 10, '0'),
		'status', 'delivered', 'timestamp', extract(epoch FROM now())::bigint::text,
		'recipient_id', '1555' || lpad(g::text, 7, '0'), 'biz_opaque_callback_data', 'wam:' || g,
		'conversation', jsonb_build_object('id', md5(g::text), 'origin', jsonb_build_object('type', 'marketing')),
		'pricing', jsonb_build_object('billable', true, 'pricing_model', 'PMP', 'category', 'marketing')) AS st
FROM generate_series(1, $K) g;
CREATE FUNCTION public.bench_body(statuses jsonb) RETURNS text LANGUAGE sql
RETURN jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
	jsonb_build_object('id', '102290129340398', 'changes', jsonb_build_array(jsonb_build_object(
		'field', 'messages', 'value', jsonb_build_object('messaging_product', 'whatsapp',
			'metadata', jsonb_build_object('display_phone_number', '15550783881', 'phone_number_id', '106540352242922'),
			'statuses', statuses))))))::text;
CREATE TABLE public.bench_single (i integer PRIMARY KEY, body text, sig text);
INSERT INTO public.bench_single SELECT s.i, b.body, 'sha256=' || wam.hmac_sha256('test-app-secret', b.body)
FROM public.bench_status s, LATERAL (SELECT public.bench_body(jsonb_build_array(s.st)) AS body) b;
CREATE TABLE public.bench_batch (i integer PRIMARY KEY, body text, sig text);
INSERT INTO public.bench_batch SELECT x.n, x.body, 'sha256=' || wam.hmac_sha256('test-app-secret', x.body)
FROM (SELECT (s.i - 1) / 1000 + 1 AS n, public.bench_body(jsonb_agg(s.st ORDER BY s.i)) AS body
	  FROM public.bench_status s GROUP BY 1) x;
CREATE SEQUENCE public.bench_seq;
CREATE TABLE public.bench_result (size bigint, shape text, variant text, round integer, tps float8, statuses float8);
VACUUM ANALYZE public.bench_single, public.bench_batch;
SQL
body_bytes=$(q -c "SELECT round(avg(octet_length(body))) FROM public.bench_single")

# each transaction takes the next body; the plain UPDATE reads the same body the same way
cat >"$scripts/single_ingest.sql" <<'SQL'
SELECT wam.ingest_webhook(b.body, b.sig) FROM public.bench_single b WHERE b.i = (SELECT nextval('public.bench_seq'));
SQL
cat >"$scripts/single_plain.sql" <<'SQL'
UPDATE wam.outbox o SET status = 'delivered', delivered_at = to_timestamp((s->>'timestamp')::bigint)
FROM public.bench_single b, jsonb_array_elements(b.body::jsonb->'entry'->0->'changes'->0->'value'->'statuses') s
WHERE b.i = (SELECT nextval('public.bench_seq')) AND o.wamid = s->>'id';
SQL
sed 's/bench_single/bench_batch/' "$scripts/single_ingest.sql" >"$scripts/batch_ingest.sql"
sed 's/bench_single/bench_batch/' "$scripts/single_plain.sql" >"$scripts/batch_plain.sql"

fill() { # fill FROM TO: history rows, delivered and read weeks ago
    q <<SQL >/dev/null
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, status, attempts, wamid, created_at,
						next_attempt_at, sending_at, sent_at, delivered_at, read_at)
SELECT 1, c, '1555' || lpad(c::text, 7, '0'),
	   '{"type":"template","template":{"name":"winter_sale","language":{"code":"en"}}}', 'winter', 'read', 1,
	   'wamid.HBgLMTU1NTAwMDAwMDEVAgARGBH' || lpad(g::text, 10, '0'), t, t, t, t, t + interval '1 minute',
	   t + interval '2 hours'
FROM generate_series($1, $2) g, LATERAL (SELECT g % 1000000 + 1 AS c,
											now() - interval '60 days' + g * interval '1 second' AS t) x;
SQL
}

reset_targets() {
    q -c "UPDATE wam.outbox SET status = 'sent', delivered_at = NULL WHERE message_id <= $K AND status <> 'sent'" \
        -c "VACUUM wam.outbox" -c "SELECT setval('public.bench_seq', 1, false)" >/dev/null
}

run() { # run SIZE SHAPE VARIANT ROUND
    local size=$1 shape=$2 variant=$3 round=$4 per tps delivered statuses
    per=$PER_CLIENT
    [ "$shape" = batch ] && per=$((BODIES / 2))
    reset_targets
    wait_idle "$shape $variant at $size rows"
    tps=$("$WAM_PG_BIN/pgbench" -n -M prepared -c 2 -j 2 -t "$per" -f "$scripts/${shape}_$variant.sql" \
        -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" postgres 2>&1 |
        sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p')
    [ -n "$tps" ] || die "pgbench failed: $shape $variant at $size rows"
    note_busy "$shape $variant at $size rows"
    delivered=$(q -c "SELECT count(*) FROM wam.outbox WHERE message_id <= $K AND status = 'delivered'")
    [ "$delivered" = "$K" ] || die "$shape $variant at $size rows: $delivered of $K targets delivered"
    statuses=$tps
    [ "$shape" = batch ] && statuses=$(python3 -c "print($tps * 1000)")
    q -c "INSERT INTO public.bench_result VALUES ($size, '$shape', '$variant', $round, $tps, $statuses)" >/dev/null
    log "$size rows, $shape, $variant, round $round: $(printf '%.0f' "$statuses") statuses/s"
}

filled=$K
SIZES_MD=""
for size in $SIZES; do
    if [ "$size" -gt "$filled" ]; then
        log "filling wam.outbox to $size rows"
        fill $((filled + 1)) "$size"
        filled=$size
    fi
    q -c "VACUUM ANALYZE wam.outbox" >/dev/null
    log "wam.outbox: $(q -c "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('wam.outbox')) FROM wam.outbox")"
    SIZES_MD="$SIZES_MD${SIZES_MD:+, }$(q -c "SELECT to_char($size, 'FM999,999,999') || ' rows (' || pg_size_pretty(pg_total_relation_size('wam.outbox')) || ' with indexes)'")"
    for round in $(seq 1 "$ROUNDS"); do
        for shape in single batch; do
            if [ $((round % 2)) = 1 ]; then
                run "$size" "$shape" ingest "$round"; run "$size" "$shape" plain "$round"
            else
                run "$size" "$shape" plain "$round"; run "$size" "$shape" ingest "$round"
            fi
        done
    done
done

# the plans inside wam.ingest_webhook, at the largest size
plan_of() { # plan_of QUERY-TEXT-START TABLE: the plan of that statement inside the first body's ingestion
    wam_psql -qAt -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" \
        -c "SET auto_explain.log_nested_statements = on" -c "SET auto_explain.log_level = notice" \
        -c "SET auto_explain.log_analyze = on" -c "SET auto_explain.log_timing = off" -c "SET client_min_messages = notice" \
        -c "SELECT wam.ingest_webhook(b.body, b.sig) FROM public.$2 b WHERE b.i = 1" 2>&1 |
        awk -v start="Query Text: $1" 'index($0, start) == 1 { on = 1; next } on && /^NOTICE/ { exit } on' |
        grep -E '^ *(->|[A-Z][a-z]+( [A-Z][a-z]+)* (on|using|Scan|Loop|Join)|Update|Aggregate|GroupAggregate|WindowAgg|Sort|Nested|Hash|Result|Index Cond|Filter|Group Key|Sort Key|SubPlan|InitPlan)' || true
}
reset_targets
plan_single=$(plan_of "UPDATE wam.outbox o SET" bench_single)
reset_targets
plan_batch=$(plan_of "WITH st AS" bench_batch)
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

table=$(q <<SQL
WITH m AS (
	SELECT size, shape, variant, percentile_cont(0.5) WITHIN GROUP (ORDER BY statuses) AS v,
		   string_agg(round(statuses)::text, ', ' ORDER BY round) AS runs
	FROM public.bench_result GROUP BY 1, 2, 3
), t AS (
	SELECT i.size, i.shape, i.v AS ingest, p.v AS plain, i.runs AS ingest_runs, p.runs AS plain_runs,
		   first_value(i.v) OVER (PARTITION BY i.shape ORDER BY i.size) AS smallest
	FROM m i JOIN m p ON p.size = i.size AND p.shape = i.shape AND p.variant = 'plain'
	WHERE i.variant = 'ingest'
)
SELECT format('| %s | %s | **%s/s** | %s/s | %s× | %s | %s |',
			  to_char(size, 'FM999,999,999'),
			  CASE shape WHEN 'single' THEN '1 status per body' ELSE '1,000 statuses per body' END,
			  to_char(ingest, 'FM999,999,990'), to_char(plain, 'FM999,999,990'), round((ingest / plain)::numeric, 2),
			  CASE WHEN shape = 'single' THEN
					   CASE WHEN ingest >= 0.5 * plain THEN 'met' ELSE 'MISSED' END || ' (≥ 0.5× plain)'
				   ELSE CASE WHEN ingest >= 20000 THEN 'met' ELSE 'MISSED' END || ' (≥ 20,000/s)' END,
			  CASE WHEN size = (SELECT min(size) FROM public.bench_result) THEN '—'
				   ELSE round((100 * (ingest / smallest - 1))::numeric, 1) || ' %' ||
						CASE WHEN shape = 'single' THEN CASE WHEN ingest >= 0.9 * smallest THEN ' (met)' ELSE ' (MISSED)' END
							 ELSE '' END END)
FROM t ORDER BY shape DESC, size;
SQL
)
runs=$(q -c "SELECT string_agg(format('%s rows, %s, %s: %s', to_char(size, 'FM999,999,999'), shape, variant, runs), '; ' ORDER BY size, shape DESC, variant)
FROM (SELECT size, shape, variant, string_agg(round(statuses)::text, ', ' ORDER BY round) AS runs FROM public.bench_result GROUP BY 1, 2, 3) x")
busy=""
if [ "${#BUSY_NOTES[@]}" -gt 0 ]; then
    busy=$(printf -- '- %s\n' "${BUSY_NOTES[@]}")
fi

md=$(cat <<EOF
# Status webhooks: wam.ingest_webhook vs the plain UPDATE

Command: \`bash test/bench_webhook.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), PostgreSQL $("$WAM_PG_BIN/postgres" -V | awk '{print $3}'),
$(nproc) CPUs, load average at start $LOADAVG_START, at end $LOADAVG_END; fsync and synchronous_commit off).

\`wam.outbox\` at $SIZES_MD, every index in place; $K of its rows are sent
messages waiting for their \`delivered\` status. pgbench, 2 clients, prepared statements;
each transaction takes the next signed body from a table (one use each). One status per body
($body_bytes bytes, as Meta posts them, with \`biz_opaque_callback_data\`, conversation and
pricing): $K transactions per run; 1,000 statuses per body: $BODIES transactions. The plain
variant is \`UPDATE wam.outbox … FROM jsonb_array_elements(body::jsonb->…)\` of the same
statuses (no signature, no forward-only rule, no callback-data matching). Between runs the
targets go back to \`sent\` and the table is vacuumed; each run checks that all $K were
delivered. Medians of $ROUNDS runs, the two variants alternating.

| outbox rows | shape | wam.ingest_webhook (statuses/s) | plain UPDATE | ratio | target | vs the smallest outbox |
|---|---|---|---|---|---|---|
$table

Each run (statuses/s): $runs.

The statements that apply the statuses at the largest size (\`auto_explain\`, actual rows):
one status (by its wamid),

\`\`\`
$plan_single
\`\`\`

and 1,000 statuses (the general statement: every rule for several statuses of one message,
\`biz_opaque_callback_data\` for rows whose wamid is not known yet):

\`\`\`
$plan_batch
\`\`\`
${busy:+
Other heavy work during the run:

$busy}
EOF
)
bench_report "$md"
