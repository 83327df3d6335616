#!/usr/bin/env bash
# test/bench_outbox.sh — the per-call costs of the outbound queue at two sizes of wam.outbox:
# one enqueue, one claim by the sender worker, one status webhook, side by side with the
# plain SQL of the same work on the same table, and what retention of the oldest rows costs.
#
#     bash test/run build && bash test/bench_outbox.sh
#
# Starts its own throwaway PostgreSQL 15 cluster (test/lib/cluster.sh; always stopped at
# exit; no workers) with WAM_BENCH_CUSTOMERS consenting customers and one sender (daily
# limit 100,000). wam.outbox is filled (INSERT ... SELECT, every index in place) with
# history: messages read 2 to 97 days ago (evenly over that span at the largest size, the
# first size's being the oldest), to customers in turn, so that each customer has size / customers old messages. The work of
# the last 24 hours is the same at every size. For each size of WAM_BENCH_SIZES, pgbench
# (1 client, prepared statements) measures the mean latency of
#   1. one enqueue: wam.enqueue_message (consent, opt-out, 24-hour 131049 block, rendering)
#      against INSERT INTO wam.outbox ... SELECT FROM wam.customer of the same message;
#   2. one claim of 10 due messages: wam_internal.claim_batch (pair limit, daily tier,
#      expiry) against UPDATE ... WHERE message_id IN (SELECT ... FOR UPDATE SKIP LOCKED
#      LIMIT 10) of the same order; the queue holds the messages the enqueue runs made;
#   3. one signed status webhook: wam.ingest_webhook against the UPDATE by wamid of
#      the same status (see test/bench_webhook.sh);
# each variant WAM_BENCH_ROUNDS times, alternating; the report gives medians. At the
# largest size it then times one run of retention (wam.maintain_partitions with a keep
# that removes the oldest fortieth, at most the 500,000 of one run: roll-up and delete)
# against the plain DELETE of as many rows.
#
# Prints a Markdown report on stdout (progress on stderr) and writes it to
# bench/results/outbox.md with the default sizes.
#
# Knobs (environment):
#   WAM_BENCH_SIZES="1000000 20000000"   outbox rows, ascending
#   WAM_BENCH_CUSTOMERS=200000
#   WAM_BENCH_CALLS=2000                 pgbench transactions per run (claim: a tenth)
#   WAM_BENCH_ROUNDS=3
#   WAM_BENCH_OUT=FILE                   report file (default: see above)
#   WAM_BENCH_PORT=55734
#   WAM_BENCH_BUILD=1                    run deps + make + make install first
# (SC2016: SQL $1 and $$ are not shell expansions.)
# shellcheck disable=SC2016
set -euo pipefail

# shellcheck source=test/lib/bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

SIZES=${WAM_BENCH_SIZES:-1000000 20000000}
CUSTOMERS=${WAM_BENCH_CUSTOMERS:-200000}
CALLS=${WAM_BENCH_CALLS:-2000}
ROUNDS=${WAM_BENCH_ROUNDS:-3}
bench_positive CUSTOMERS CALLS ROUNDS
if [ $((CALLS % 10)) -ne 0 ]; then
    echo "error: WAM_BENCH_CALLS must be a multiple of 10, got $CALLS" >&2
    exit 2
fi
NSIZES=$(wc -w <<<"$SIZES")
TARGETS=$((CALLS * ROUNDS * 2))
prev=$TARGETS
for n in $SIZES; do
    case $n in
        '' | *[!0-9]*) echo "error: WAM_BENCH_SIZES must be numbers, got '$SIZES'" >&2; exit 2 ;;
    esac
    if [ "$n" -le "$prev" ]; then
        echo "error: WAM_BENCH_SIZES must ascend and exceed $TARGETS (the webhook targets)" >&2
        exit 2
    fi
    prev=$n
done
bench_out outbox.md "$SIZES $CUSTOMERS $CALLS $ROUNDS" "1000000 20000000 200000 2000 3"
bench_begin bench_outbox
bench_require_extension 'wam_internal.purge_outbox'

WAM_PRELOAD='' bench_cluster 55734 shared_buffers=1GB maintenance_work_mem=512MB max_wal_size=8GB \
    checkpoint_timeout=30min autovacuum=off
bench_db
export PGOPTIONS="-c client_min_messages=warning"
scripts=$WAM_CLUSTER_DIR/scripts
mkdir -p "$scripts"

log "setup: $CUSTOMERS customers, one sender, $TARGETS sent messages waiting for a status"
q <<SQL >/dev/null
CREATE EXTENSION pg_wamarketing;
INSERT INTO wam.customer (id, phone, name, consent_at, consent_source)
SELECT g, (15550000000 + g)::text, 'Customer ' || g, now() - interval '1 year', 'bench' FROM generate_series(1, $CUSTOMERS) g;
SELECT setval('wam.customer_id_seq', $CUSTOMERS);
SELECT wam.create_sender('main', '106540352242922', 'test-token', 'test-app-secret', 'https://localhost:9');
UPDATE wam.sender SET daily_limit = 100000;
-- the status webhook targets: message_id 1 .. TARGETS, sent an hour ago
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, status, attempts, wamid,
						created_at, next_attempt_at, sending_at, sent_at)
SELECT 1, c, (15550000000 + c)::text,
	   '{"type":"template","template":{"name":"spring_sale","language":{"code":"en"}}}', 'spring', 'sent', 1,
	   'wamid.HBgLMTU1NTAwMDAwMDEVAgARGBJ' || lpad(g::text, 10, '0'), now() - interval '1 hour',
	   now() - interval '1 hour', now() - interval '50 minutes', now() - interval '50 minutes'
FROM generate_series(1, $TARGETS) g, LATERAL (SELECT 1 + g % $CUSTOMERS AS c) x;
CREATE FUNCTION public.bench_body(statuses jsonb) RETURNS text LANGUAGE sql
RETURN jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
	jsonb_build_object('id', '102290129340398', 'changes', jsonb_build_array(jsonb_build_object(
		'field', 'messages', 'value', jsonb_build_object('messaging_product', 'whatsapp',
			'metadata', jsonb_build_object('display_phone_number', '15550783881', 'phone_number_id', '106540352242922'),
			'statuses', statuses))))))::text;
CREATE TABLE public.bench_status (i integer PRIMARY KEY, body text, sig text);
INSERT INTO public.bench_status SELECT g, b.body, 'sha256=' || wam.hmac_sha256('test-app-secret', b.body)
FROM generate_series(1, $TARGETS) g,
	 LATERAL (SELECT public.bench_body(jsonb_build_array(jsonb_build_object(
		'id', 'wamid.HBgLMTU1NTAwMDAwMDEVAgARGBJ' || lpad(g::text, 10, '0'), 'status', 'delivered',
		'timestamp', extract(epoch FROM now())::bigint::text, 'recipient_id', (15550000000 + 1 + g % $CUSTOMERS)::text,
		'biz_opaque_callback_data', 'wam:' || g,
		'pricing', jsonb_build_object('billable', true, 'pricing_model', 'PMP', 'category', 'marketing')))) AS body) b;
CREATE SEQUENCE public.status_seq_wam;
CREATE SEQUENCE public.status_seq_plain START $((TARGETS / 2 + 1));
CREATE SEQUENCE public.customer_seq;
CREATE TABLE public.bench_result (size bigint, op text, variant text, round integer, ms float8);
VACUUM ANALYZE public.bench_status;
SQL

cat >"$scripts/enqueue_wam.sql" <<SQL
SELECT wam.enqueue_message(1 + nextval('public.customer_seq') % $CUSTOMERS,
	'{"type":"template","template":{"name":"summer_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{name}"}]}]}}',
	'main', campaign => 'summer');
SQL
cat >"$scripts/enqueue_plain.sql" <<SQL
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign)
SELECT 1, c.id, c.phone,
	jsonb_build_object('type', 'template', 'template', jsonb_build_object('name', 'summer_sale', 'language', '{"code":"en"}'::jsonb,
		'components', jsonb_build_array(jsonb_build_object('type', 'body', 'parameters',
			jsonb_build_array(jsonb_build_object('type', 'text', 'text', c.name)))))), 'summer'
FROM wam.customer c WHERE c.id = (SELECT 1 + nextval('public.customer_seq') % $CUSTOMERS);
SQL
cat >"$scripts/claim_wam.sql" <<'SQL'
SELECT count(*) FROM wam_internal.claim_batch(1, 10);
SQL
cat >"$scripts/claim_plain.sql" <<'SQL'
UPDATE wam.outbox o SET status = 'sending', sending_at = now(), attempts = o.attempts + 1
WHERE o.message_id IN (SELECT x.message_id FROM wam.outbox x
					   WHERE x.sender_id = 1 AND x.status IN ('queued', 'retrying') AND x.next_attempt_at <= now()
					   ORDER BY x.priority DESC, x.next_attempt_at, x.message_id LIMIT 10 FOR UPDATE SKIP LOCKED);
SQL
cat >"$scripts/webhook_wam.sql" <<'SQL'
SELECT wam.ingest_webhook(b.body, b.sig) FROM public.bench_status b WHERE b.i = (SELECT nextval('public.status_seq_wam'));
SQL
cat >"$scripts/webhook_plain.sql" <<'SQL'
UPDATE wam.outbox o SET status = 'delivered', delivered_at = to_timestamp((s->>'timestamp')::bigint)
FROM public.bench_status b, jsonb_array_elements(b.body::jsonb->'entry'->0->'changes'->0->'value'->'statuses') s
WHERE b.i = (SELECT nextval('public.status_seq_plain')) AND o.wamid = s->>'id';
SQL

LARGEST=${SIZES##* }
PURGE=$((LARGEST / 40 < 500000 ? LARGEST / 40 : 500000))
fill() { # fill FROM TO: history rows FROM .. TO, read, 2 to 97 days ago (the oldest first)
    local lo=$1 hi
    while [ "$lo" -le "$2" ]; do
        hi=$((lo + 999999))
        [ "$hi" -gt "$2" ] && hi=$2
        log "inserting history $lo .. $hi"
        run_sql "INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, campaign, status, attempts, wamid,
                                         created_at, next_attempt_at, sending_at, sent_at, delivered_at, read_at)
                 SELECT 1, c, (15550000000 + c)::text,
                        '{\"type\":\"template\",\"template\":{\"name\":\"winter_sale\",\"language\":{\"code\":\"en\"}}}',
                        'winter', 'read', 1, 'wamid.HBgLMTU1NTAwMDAwMDEVAgARGBH' || lpad(g::text, 10, '0'), t, t, t, t,
                        t + interval '1 minute', t + interval '2 hours'
                 FROM generate_series($lo::bigint, $hi) g,
                      LATERAL (SELECT 1 + g % $CUSTOMERS AS c,
                                      now() - interval '2 days' - ($LARGEST - g + 1) * interval '95 days' / $LARGEST AS t) x"
        lo=$((hi + 1))
    done
}

settle() { # the claimed messages are answered: sent, as after the worker's results
    run_sql "UPDATE wam.outbox SET status = 'sent', sent_at = now(), wamid = 'wamid.bench.' || message_id
             WHERE status = 'sending'"
}

run() { # run SIZE OP VARIANT ROUND
    local size=$1 op=$2 variant=$3 round=$4 n=$CALLS ms
    [ "$op" = claim ] && n=$((CALLS / 10))
    [ "$op" = webhook ] && n=$((CALLS / NSIZES))
    wait_idle "$op $variant at $size rows"
    ms=$("$WAM_PG_BIN/pgbench" -n -M prepared -c 1 -t "$n" -f "$scripts/${op}_$variant.sql" \
        -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$PGDATABASE" 2>&1 |
        sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p')
    [ -n "$ms" ] || die "pgbench failed: $op $variant at $size rows"
    note_busy "$op $variant at $size rows"
    q -c "INSERT INTO public.bench_result VALUES ($size, '$op', '$variant', $round, $ms)" >/dev/null
    log "$size rows, $op, $variant, round $round: $ms ms"
}

filled=$TARGETS
SIZES_MD=""
for size in $SIZES; do
    log "filling wam.outbox to $size rows"
    fill $((filled + 1)) "$size"
    filled=$size
    settle
    run_sql "VACUUM ANALYZE"
    SIZES_MD="$SIZES_MD${SIZES_MD:+; }$(q -c "SELECT to_char(count(*), 'FM999,999,999') || ' rows (' ||
        pg_size_pretty(pg_total_relation_size('wam.outbox')) || ' with indexes, ' ||
        to_char(count(*) FILTER (WHERE created_at > now() - interval '24 hours'), 'FM999,999,999') || ' in the last 24 hours)'
        FROM wam.outbox")"
    for round in $(seq 1 "$ROUNDS"); do
        for op in enqueue claim webhook; do
            variants="wam plain"
            [ $((round % 2)) = 0 ] && variants="plain wam"
            for v in $variants; do
                run "$size" "$op" "$v" "$round"
            done
        done
        left=$(q -c "SELECT count(*) FROM wam.outbox WHERE status IN ('queued', 'retrying')")
        [ "$left" = 0 ] || die "round $round at $size rows: $left messages left in the queue after the claims"
        settle
    done
    # this size's messages become history, so that the next size's last 24 hours
    # (which the daily tier counts) hold the same work
    run_sql "UPDATE wam.outbox SET created_at = created_at - interval '3 days', next_attempt_at = next_attempt_at - interval '3 days',
                                   sending_at = sending_at - interval '3 days', sent_at = sent_at - interval '3 days'
             WHERE campaign = 'summer'"
done
delivered=$(q -c "SELECT count(*) FROM wam.outbox WHERE message_id <= $TARGETS AND status = 'delivered'")
[ "$delivered" = "$TARGETS" ] || die "$delivered of $TARGETS webhook targets delivered"

# retention: one run of the hourly job removing the oldest PURGE messages (a fortieth of
# the largest size, at most the 500,000 of one run)
log "retention: one run of wam.maintain_partitions"
run_sql "VACUUM ANALYZE wam.outbox"
cut=$(q -c "SELECT created_at FROM wam.outbox ORDER BY created_at OFFSET $PURGE LIMIT 1")
keep_s=$(q -c "SELECT ceil(extract(epoch FROM now() - '$cut'::timestamptz))")
run_sql "UPDATE wam.retention SET keep = '$keep_s seconds'::interval WHERE table_name = 'outbox'"
t=$(now)
purged=$(q -c "SELECT coalesce(sum(rows), 0) FROM wam.maintain_partitions() WHERE table_name = 'outbox'")
purge_ms=$(elapsed_ms "$t")
run_sql "CREATE TABLE public.outbox_plain AS SELECT * FROM wam.outbox ORDER BY created_at LIMIT 600000"
run_sql "CREATE INDEX ON public.outbox_plain (created_at)"
plain_cut=$(q -c "SELECT created_at FROM public.outbox_plain ORDER BY created_at OFFSET $purged LIMIT 1")
t=$(now)
run_sql "DELETE FROM public.outbox_plain WHERE created_at < '$plain_cut'"
delete_ms=$(elapsed_ms "$t")
rolled=$(q -c "SELECT sum(messages) FROM wam.outbox_daily")
[ "$rolled" = "$purged" ] || die "retention removed $purged messages, the roll-up holds $rolled"
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

table=$(q <<SQL
WITH m AS (
	SELECT size, op, variant, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS v
	FROM public.bench_result GROUP BY 1, 2, 3
), s AS (
	SELECT m.*, first_value(v) OVER (PARTITION BY op, variant ORDER BY size) AS smallest FROM m
)
SELECT format('| %s | %s | %s | **%s ms** | %s |', op_name, to_char(size, 'FM999,999,999'), variant_name,
			  to_char(v, 'FM999,990.000'),
			  CASE WHEN size = (SELECT min(size) FROM public.bench_result) THEN '—'
				   ELSE to_char(100 * (v / smallest - 1), 'FM990.0') || ' %'
						|| CASE WHEN variant = 'wam' THEN CASE WHEN v <= 1.1 * smallest THEN ' (met)' ELSE ' (MISSED)' END ELSE '' END END)
FROM s, LATERAL (SELECT CASE op WHEN 'enqueue' THEN 'one enqueue' WHEN 'claim' THEN 'one claim of 10 messages'
								ELSE 'one status webhook' END AS op_name,
						CASE variant WHEN 'wam' THEN CASE op WHEN 'enqueue' THEN 'wam.enqueue_message'
															  WHEN 'claim' THEN 'the worker''s claim (claim_batch)'
															  ELSE 'wam.ingest_webhook' END
									 ELSE CASE op WHEN 'enqueue' THEN 'INSERT … SELECT'
												  WHEN 'claim' THEN 'UPDATE … FOR UPDATE SKIP LOCKED'
												  ELSE 'UPDATE by wamid' END END AS variant_name) n
ORDER BY CASE op WHEN 'enqueue' THEN 1 WHEN 'claim' THEN 2 ELSE 3 END, CASE variant WHEN 'wam' THEN 1 ELSE 2 END, size;
SQL
)
runs=$(q -c "SELECT string_agg(format('%s %s %s: %s', to_char(size, 'FM999,999,999'), op, variant, runs), '; ' ORDER BY op, variant, size)
FROM (SELECT size, op, variant, string_agg(ms::text, ', ' ORDER BY round) AS runs FROM public.bench_result GROUP BY 1, 2, 3) x")
busy=""
if [ "${#BUSY_NOTES[@]}" -gt 0 ]; then
    busy="- ${#BUSY_NOTES[@]} notes over $(q -c "SELECT count(*) FROM public.bench_result") measurements, other work: $(printf '%s\n' "${BUSY_NOTES[@]}" |
        grep -o 'bench_[a-z_]*\.sh\|fuzz_[a-z_]*' | sort -u | tr '\n' ' ')(load average at the end $LOADAVG_END)"
fi

md=$(cat <<EOF
# The outbound queue: per-call costs at two sizes of wam.outbox

Command: \`WAM_BENCH_SIZES="$SIZES" bash test/bench_outbox.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), PostgreSQL $("$WAM_PG_BIN/postgres" -V | awk '{print $3}'),
$(nproc) CPUs, load average at start $LOADAVG_START, at end $LOADAVG_END; fsync and synchronous_commit off).

Sizes: $SIZES_MD. $(printf "%'d" "$CUSTOMERS") customers, one sender with a daily limit of 100,000. History:
messages read 2 to 97 days ago, to every customer in turn; the last 24 hours hold only the benchmark's own
work at every size. pgbench, 1 client, prepared statements, mean latency per call ($CALLS enqueues, $((CALLS / 10))
claims of 10 and $((CALLS / NSIZES)) status webhooks per run); medians of $ROUNDS runs, the variants alternating. The plain
variants do the same work on the same table without the extension's rules.
The target: the extension's per-call cost at the larger size within 10 % of the smaller one.

| operation | outbox rows | variant | per call | vs the smaller size |
|---|---|---|---|---|
$table

Each run (ms): $runs.

Retention at $(printf "%'d" "$filled") rows: one run of the hourly job (\`wam.maintain_partitions\`, keep = $keep_s s)
rolled up and deleted the oldest $(printf "%'d" "$purged") messages in $(printf "%'d" "$purge_ms") ms; a plain DELETE of as many rows by
enqueue time (from a copy with one index) took $(printf "%'d" "$delete_ms") ms.
${busy:+
Other heavy work during the run:

$busy}
EOF
)
bench_report "$md"
