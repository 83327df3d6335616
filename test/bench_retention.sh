#!/usr/bin/env bash
# test/bench_retention.sh — the per-call costs on the monthly partitions of wam.event and
# wam.inbound_message at two sizes, side by side with the same work on plain unpartitioned
# tables (the 0.1 layout: one table, the same indexes), and what retention costs.
#
#     bash test/run build && bash test/bench_retention.sh
#
# Starts its own throwaway PostgreSQL 15 cluster (test/lib/cluster.sh; always stopped at
# exit; no workers) with WAM_BENCH_CUSTOMERS customers and one sender. Events span 400
# days in 14 monthly partitions made by wam.maintain_partitions; the last 7 days always
# hold WAM_BENCH_RECENT of them, whatever the size, and the rest is history (what grows
# with time and what retention bounds). Inbound messages: a tenth of the events, over the
# same 400 days. public.event_plain and public.inbound_plain hold the same rows in one
# table each. For each size of WAM_BENCH_SIZES (events; filled by INSERT ... SELECT, the
# foreign key dropped for the load and validated again afterwards), pgbench (1 client,
# prepared statements) measures the mean latency of
#   1. a behaviour predicate: wam.audience_size('event(link_click) >= 2 within 7d'), the
#      same GROUP BY ... HAVING in plain SQL on wam.event, and on public.event_plain;
#   2. one event insert: INSERT INTO wam.event against INSERT INTO public.event_plain;
#   3. one inbound message per signed body: wam.ingest_webhook (the wamid looked up in every
#      partition, the customer's 24-hour window, the event) against
#      INSERT INTO public.inbound_plain ... ON CONFLICT (wamid) DO NOTHING of the same message;
# each variant WAM_BENCH_ROUNDS times, alternating; the report gives medians. At the
# largest size it then times the hourly job with nothing to do, and retention of the
# oldest month: roll-up and drop of its partitions (wam.maintain_partitions) against
# DELETE of the same rows from the plain tables.
#
# wam.outbox is not partitioned (see the README, Operations): test/bench_outbox.sh
# measures enqueue, the worker's claim and status webhooks at two sizes of it.
#
# Prints a Markdown report on stdout (progress on stderr) and writes it to
# bench/results/retention.md with the default sizes.
#
# Knobs (environment):
#   WAM_BENCH_SIZES="1000000 50000000"   events, ascending
#   WAM_BENCH_RECENT=100000              events in the last 7 days (at every size)
#   WAM_BENCH_CUSTOMERS=200000
#   WAM_BENCH_CALLS=2000                 pgbench transactions per run (predicate: a tenth)
#   WAM_BENCH_ROUNDS=3
#   WAM_BENCH_OUT=FILE                   report file (default: see above)
#   WAM_BENCH_PORT=55724
#   WAM_BENCH_BUILD=1                    run deps + make + make install first
# (SC2016: SQL $1 and $$ are not shell expansions.)
# shellcheck disable=SC2016
set -euo pipefail

# shellcheck source=test/lib/bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

SIZES=${WAM_BENCH_SIZES:-1000000 50000000}
RECENT=${WAM_BENCH_RECENT:-100000}
CUSTOMERS=${WAM_BENCH_CUSTOMERS:-200000}
CALLS=${WAM_BENCH_CALLS:-2000}
ROUNDS=${WAM_BENCH_ROUNDS:-3}
bench_positive RECENT CUSTOMERS CALLS ROUNDS
prev=$RECENT
for n in $SIZES; do
    case $n in
        '' | *[!0-9]*) echo "error: WAM_BENCH_SIZES must be numbers, got '$SIZES'" >&2; exit 2 ;;
    esac
    if [ "$n" -le "$prev" ]; then
        echo "error: WAM_BENCH_SIZES must ascend and exceed WAM_BENCH_RECENT ($RECENT)" >&2
        exit 2
    fi
    prev=$n
done
bench_out retention.md "$SIZES $RECENT $CUSTOMERS $CALLS $ROUNDS" "1000000 50000000 100000 200000 2000 3"
bench_begin bench_retention
bench_require_extension 'wam_create_partition'

WAM_PRELOAD='' bench_cluster 55724 shared_buffers=1GB maintenance_work_mem=512MB max_wal_size=8GB \
    checkpoint_timeout=30min autovacuum=off
bench_db
export PGOPTIONS="-c client_min_messages=warning"
scripts=$WAM_CLUSTER_DIR/scripts
mkdir -p "$scripts"
NSIZES=$(wc -w <<<"$SIZES")
BODIES=$((CALLS * ROUNDS * NSIZES))

log "setup: $CUSTOMERS customers, one sender, the partitions of 14 months, $BODIES inbound bodies"
q <<SQL >/dev/null
CREATE EXTENSION pg_wamarketing;
INSERT INTO wam.customer (id, phone) SELECT g, (15550000000 + g)::text FROM generate_series(1, $CUSTOMERS) g;
SELECT setval('wam.customer_id_seq', $CUSTOMERS);
SELECT wam.create_sender('main', '106540352242922', 'test-token', 'test-app-secret', 'https://localhost:9');
SELECT wam.pause_sender('main', 'benchmark');
-- the months from 13 back to 2 ahead
SELECT count(*) FROM generate_series(0, 13) k, LATERAL wam.maintain_partitions(now() - k * interval '1 month') m;
CREATE TABLE public.event_plain (
	event_id bigint NOT NULL, customer_id bigint NOT NULL, kind text NOT NULL, occurred_at timestamptz NOT NULL,
	details jsonb, PRIMARY KEY (customer_id, event_id));
CREATE INDEX event_plain_kind_time ON public.event_plain (kind, occurred_at) INCLUDE (customer_id);
CREATE SEQUENCE public.event_plain_seq START 900000000000;
CREATE TABLE public.inbound_plain (LIKE wam.inbound_message INCLUDING DEFAULTS, PRIMARY KEY (wamid));
CREATE INDEX inbound_plain_customer ON public.inbound_plain (customer_id);
CREATE FUNCTION public.bench_body(m jsonb) RETURNS text LANGUAGE sql
RETURN jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
	jsonb_build_object('id', '102290129340398', 'changes', jsonb_build_array(jsonb_build_object(
		'field', 'messages', 'value', jsonb_build_object('messaging_product', 'whatsapp',
			'metadata', jsonb_build_object('display_phone_number', '15550783881', 'phone_number_id', '106540352242922'),
			'contacts', jsonb_build_array(jsonb_build_object('wa_id', m->>'from', 'profile', jsonb_build_object('name', 'x'))),
			'messages', jsonb_build_array(m)))))))::text;
CREATE TABLE public.bench_in (i integer PRIMARY KEY, body text, sig text);
INSERT INTO public.bench_in
SELECT g, b.body, 'sha256=' || wam.hmac_sha256('test-app-secret', b.body)
FROM generate_series(1, $BODIES) g,
	 LATERAL (SELECT public.bench_body(jsonb_build_object('from', (15550000000 + 1 + g % $CUSTOMERS)::text,
			'id', 'wamid.bench.' || g, 'timestamp', extract(epoch FROM now())::bigint::text, 'type', 'text',
			'text', jsonb_build_object('body', 'Is the sale still on?'))) AS body) b;
CREATE SEQUENCE public.in_seq_ingest;
CREATE SEQUENCE public.in_seq_plain;
CREATE TABLE public.bench_result (size bigint, op text, variant text, round integer, ms float8);
VACUUM ANALYZE public.bench_in;
SQL

cat >"$scripts/predicate_wam.sql" <<'SQL'
SELECT wam.audience_size('event(link_click) >= 2 within 7d');
SQL
cat >"$scripts/predicate_sql.sql" <<'SQL'
SELECT count(*) FROM (SELECT e.customer_id FROM wam.event e WHERE e.kind = 'link_click'
                      AND e.occurred_at >= now() - interval '7 days' GROUP BY 1 HAVING count(*) >= 2) x;
SQL
sed 's/wam\.event e/public.event_plain e/' "$scripts/predicate_sql.sql" >"$scripts/predicate_plain.sql"
cat >"$scripts/insert_wam.sql" <<SQL
\\set c random(1, $CUSTOMERS)
INSERT INTO wam.event (customer_id, kind) VALUES (:c, 'visit');
SQL
cat >"$scripts/insert_plain.sql" <<SQL
\\set c random(1, $CUSTOMERS)
INSERT INTO public.event_plain (event_id, customer_id, kind, occurred_at) VALUES (nextval('public.event_plain_seq'), :c, 'visit', now());
SQL
cat >"$scripts/inbound_wam.sql" <<'SQL'
SELECT wam.ingest_webhook(b.body, b.sig) FROM public.bench_in b WHERE b.i = (SELECT nextval('public.in_seq_ingest'));
SQL
cat >"$scripts/inbound_plain.sql" <<'SQL'
INSERT INTO public.inbound_plain (wamid, sender_id, customer_id, from_phone, received_at, kind, body)
SELECT m->>'id', 1, c.id, m->>'from', to_timestamp((m->>'timestamp')::bigint), m->>'type', m->'text'->>'body'
FROM public.bench_in b, jsonb_array_elements(b.body::jsonb->'entry'->0->'changes'->0->'value'->'messages') m
	 LEFT JOIN wam.customer c ON c.phone = m->>'from'
WHERE b.i = (SELECT nextval('public.in_seq_plain'))
ON CONFLICT (wamid) DO NOTHING;
SQL

fill() { # fill FROM TO: events FROM .. TO (the first RECENT in the last 7 days), and a tenth as inbound messages
    local lo=$1 hi
    run_sql "ALTER TABLE wam.event DROP CONSTRAINT event_customer_id_fkey"
    while [ "$lo" -le "$2" ]; do
        hi=$((lo + 999999))
        [ "$hi" -gt "$2" ] && hi=$2
        log "inserting events $lo .. $hi"
        run_sql "INSERT INTO wam.event (customer_id, kind, occurred_at)
                 SELECT 1 + (hashint8(i) & 2147483647) % $CUSTOMERS,
                        (ARRAY['link_click', 'message_read', 'order', 'reply'])[1 + (hashint8(i * 7) & 3)],
                        CASE WHEN i <= $RECENT THEN now() - interval '167 hours' * (i::float8 / $RECENT)
                             ELSE now() - interval '8 days' - ((hashint8(i * 3) & 2147483647) % (392 * 86400)) * interval '1 second' END
                 FROM generate_series($lo::bigint, $hi) i"
        run_sql "INSERT INTO wam.inbound_message (wamid, sender_id, customer_id, from_phone, received_at, kind, body)
                 SELECT 'wamid.hist.' || i, 1, c, (15550000000 + c)::text,
                        now() - interval '8 days' - ((hashint8(i * 5) & 2147483647) % (392 * 86400)) * interval '1 second',
                        'text', 'hello'
                 FROM generate_series($lo::bigint, $hi, 10) i, LATERAL (SELECT 1 + (hashint8(i) & 2147483647) % $CUSTOMERS AS c) x"
        lo=$((hi + 1))
    done
    log "validating the foreign key; copying the new rows to the plain tables"
    run_sql "ALTER TABLE wam.event ADD CONSTRAINT event_customer_id_fkey FOREIGN KEY (customer_id)
                 REFERENCES wam.customer (id) ON DELETE CASCADE"
    run_sql "ALTER TABLE public.event_plain DROP CONSTRAINT IF EXISTS event_plain_customer_fkey"
    run_sql "INSERT INTO public.event_plain SELECT event_id, customer_id, kind, occurred_at, details
             FROM wam.event WHERE event_id > coalesce((SELECT max(event_id) FROM public.event_plain WHERE event_id < 900000000000), 0)"
    run_sql "ALTER TABLE public.event_plain ADD CONSTRAINT event_plain_customer_fkey FOREIGN KEY (customer_id)
                 REFERENCES wam.customer (id) ON DELETE CASCADE"
    run_sql "INSERT INTO public.inbound_plain SELECT * FROM wam.inbound_message m WHERE m.wamid LIKE 'wamid.hist.%'
             ON CONFLICT (wamid) DO NOTHING"
}

run() { # run SIZE OP VARIANT ROUND
    local size=$1 op=$2 variant=$3 round=$4 n=$CALLS ms
    [ "$op" = predicate ] && n=$((CALLS / 10))
    wait_idle "$op $variant at $size events"
    ms=$("$WAM_PG_BIN/pgbench" -n -M prepared -c 1 -t "$n" -f "$scripts/${op}_$variant.sql" \
        -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$PGDATABASE" 2>&1 |
        sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p')
    [ -n "$ms" ] || die "pgbench failed: $op $variant at $size events"
    note_busy "$op $variant at $size events"
    q -c "INSERT INTO public.bench_result VALUES ($size, '$op', '$variant', $round, $ms)" >/dev/null
    log "$size events, $op, $variant, round $round: $ms ms"
}

filled=0
SIZES_MD=""
for size in $SIZES; do
    log "filling to $size events"
    fill $((filled + 1)) "$size"
    filled=$size
    run_sql "VACUUM ANALYZE"
    SIZES_MD="$SIZES_MD${SIZES_MD:+; }$(q -c "SELECT to_char($size, 'FM999,999,999') || ' events (wam.event ' ||
        pg_size_pretty((SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent = 'wam.event'::regclass)::bigint) || ' in '
        || (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = 'wam.event'::regclass) || ' partitions, ' ||
        to_char((SELECT count(*) FROM wam.event WHERE occurred_at >= now() - interval '7 days'), 'FM999,999,999') || ' in the last 7 days), ' ||
        to_char((SELECT count(*) FROM wam.inbound_message), 'FM999,999,999') || ' inbound messages'")"
    for round in $(seq 1 "$ROUNDS"); do
        for op in predicate insert inbound; do
            variants="wam plain"
            [ "$op" = predicate ] && variants="wam sql plain"
            [ $((round % 2)) = 0 ] && variants=$(tr ' ' '\n' <<<"$variants" | tac | tr '\n' ' ')
            for v in $variants; do
                run "$size" "$op" "$v" "$round"
            done
        done
    done
done

# the hourly job with nothing to do, and retention of the oldest month
log "maintenance: the job with nothing to do"
cat >"$scripts/maintain.sql" <<'SQL'
SELECT count(*) FROM wam.maintain_partitions();
SQL
idle_ms=$("$WAM_PG_BIN/pgbench" -n -M prepared -c 1 -t 50 -f "$scripts/maintain.sql" \
    -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$PGDATABASE" 2>&1 | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p')
oldest=$(q -c "SELECT x.hi FROM wam_internal.partitions('wam.event') x ORDER BY x.lo::timestamptz LIMIT 1")
keep=$(q -c "SELECT floor(extract(epoch FROM now() - '$oldest'::timestamptz) / 86400) || ' days'")
month_rows=$(q -c "SELECT count(*) FROM wam.event WHERE occurred_at < '$oldest'")
in_rows=$(q -c "SELECT count(*) FROM wam.inbound_message WHERE received_at < '$oldest'")
run_sql "UPDATE wam.retention SET keep = '$keep'"
t=$(now)
dropped=$(q -c "SELECT string_agg(partition_name || ' ' || action || ' ' || rows, ', ' ORDER BY partition_name)
                FROM wam.maintain_partitions() WHERE action <> 'created'")
drop_ms=$(elapsed_ms "$t")
t=$(now)
run_sql "DELETE FROM public.event_plain WHERE occurred_at < '$oldest'"
run_sql "DELETE FROM public.inbound_plain WHERE received_at < '$oldest'"
delete_ms=$(elapsed_ms "$t")
rolled=$(q -c "SELECT (SELECT sum(events) FROM wam.event_daily) || ' events, ' || (SELECT sum(messages) FROM wam.inbound_daily) || ' inbound messages'")
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

table=$(q <<SQL
WITH m AS (
	SELECT size, op, variant, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS v,
		   string_agg(ms::text, ', ' ORDER BY round) AS runs
	FROM public.bench_result GROUP BY 1, 2, 3
), s AS (
	SELECT m.*, first_value(v) OVER (PARTITION BY op, variant ORDER BY size) AS smallest FROM m
)
SELECT format('| %s | %s | %s | **%s ms** | %s |', op_name, to_char(size, 'FM999,999,999'), variant_name,
			  to_char(v, 'FM999,990.000'),
			  CASE WHEN size = (SELECT min(size) FROM public.bench_result) THEN '—'
				   ELSE to_char(100 * (v / smallest - 1), 'FM990.0') || ' %'
						|| CASE WHEN variant = 'wam' THEN CASE WHEN v <= 1.1 * smallest THEN ' (met)' ELSE ' (MISSED)' END ELSE '' END END)
FROM s, LATERAL (SELECT CASE op WHEN 'predicate' THEN 'behaviour predicate, 7 days'
								WHEN 'insert' THEN 'one event insert' ELSE 'one inbound message (webhook)' END AS op_name,
						CASE variant WHEN 'wam' THEN CASE op WHEN 'predicate' THEN 'wam.audience_size, partitioned'
															  WHEN 'insert' THEN 'INSERT INTO wam.event, partitioned'
															  ELSE 'wam.ingest_webhook, partitioned' END
									 WHEN 'sql' THEN 'GROUP BY … HAVING on wam.event, partitioned'
									 ELSE CASE op WHEN 'inbound' THEN 'INSERT … ON CONFLICT, one plain table'
												  ELSE 'plain SQL, one plain table' END END AS variant_name) n
ORDER BY CASE op WHEN 'predicate' THEN 1 WHEN 'insert' THEN 2 ELSE 3 END, CASE variant WHEN 'wam' THEN 1 WHEN 'sql' THEN 2 ELSE 3 END, size;
SQL
)
runs=$(q -c "SELECT string_agg(format('%s %s %s: %s', to_char(size, 'FM999,999,999'), op, variant, runs), '; ' ORDER BY op, variant, size)
FROM (SELECT size, op, variant, string_agg(ms::text, ', ' ORDER BY round) AS runs FROM public.bench_result GROUP BY 1, 2, 3) x")
busy=""
if [ "${#BUSY_NOTES[@]}" -gt 0 ]; then
    # one line: how many of the measurements overlapped which other benchmarks
    busy="- ${#BUSY_NOTES[@]} notes over $(q -c "SELECT count(*) FROM public.bench_result") measurements, other work: $(printf '%s\n' "${BUSY_NOTES[@]}" |
        grep -o 'bench_[a-z_]*\.sh\|fuzz_[a-z_]*' | sort -u | tr '\n' ' ')(load average at the end $LOADAVG_END)"
fi

md=$(cat <<EOF
# Partitions and retention: per-call costs at two sizes

Command: \`WAM_BENCH_SIZES="$SIZES" bash test/bench_retention.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), PostgreSQL $("$WAM_PG_BIN/postgres" -V | awk '{print $3}'),
$(nproc) CPUs, load average at start $LOADAVG_START, at end $LOADAVG_END; fsync and synchronous_commit off).

Sizes: $SIZES_MD. $(printf "%'d" "$CUSTOMERS") customers. Events span 400 days in monthly
partitions (\`wam.maintain_partitions\`); the last 7 days hold $(printf "%'d" "$RECENT") events at every size, the rest is
history. The plain variants run on \`public.event_plain\` / \`public.inbound_plain\`: the same rows in one
table each with the indexes of 0.1. pgbench, 1 client, prepared statements, mean latency per call
(the predicate $((CALLS / 10)) calls per run, the others $CALLS); medians of $ROUNDS runs, the variants alternating.
The target: the extension's per-call cost at the larger size within 10 % of the smaller one.

| operation | events | variant | per call | vs the smaller size |
|---|---|---|---|---|
$table

Each run (ms): $runs.

Maintenance at $(printf "%'d" "$filled") events: the hourly job with nothing to do takes $idle_ms ms. Retention of the
oldest month ($(printf "%'d" "$month_rows") events, $(printf "%'d" "$in_rows") inbound messages; keep = $keep): roll-up and
drop of its partitions $(printf "%'d" "$drop_ms") ms ($dropped; the roll-ups then hold $rolled), against
$(printf "%'d" "$delete_ms") ms for DELETE of the same rows from the plain tables (before any VACUUM).

wam.outbox is not partitioned (its retention deletes): enqueue, the worker's claim and status webhooks
at 1,000,000 and 20,000,000 outbox rows are in \`bench/results/outbox.md\` (\`bash test/bench_outbox.sh\`).
${busy:+
Other heavy work during the run:

$busy}
EOF
)
bench_report "$md"
