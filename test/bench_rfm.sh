#!/usr/bin/env bash
# test/bench_rfm.sh — RFM scoring, order recording and lifetime-value fitting at 1,000,000
# customers and 10,000,000 orders: pg_wamarketing vs plain SQL.
#
#     bash test/run build && bash test/bench_rfm.sh
#
# Starts its own throwaway PostgreSQL 15 cluster (test/lib/cluster.sh; always stopped at
# exit), creates 1,000,000 customers and ~10,000,000 orders from a BG/NBD purchase
# process with fixed pseudo-random numbers (see the data section), inserted as ten bulk
# INSERT ... SELECTs into wam.customer_order (the statement trigger maintains the
# purchase statistics), proves the statistics exact with wam.verify_order_stats(), and
# measures:
#   1. wam.refresh_rfm() (N = 5) vs the plain-SQL way, the same run (N = 3): aggregate the
#      orders per customer, NTILE(5) windows for R, F and M, the same segment map as a CASE;
#      also (for the record, no target) the plain SQL over wam.customer_stats instead of
#      the orders
#   2. one order, each its own committed transaction (N = 1000 of each, interleaved, random
#      customers, order time now()): a plain INSERT into a copy of wam.customer_order
#      without triggers (the baseline), INSERT INTO wam.customer_order (incremental
#      statistics) and wam.record_order() (validation, statistics, customer first/last
#      order, order event, event rules); overhead = median - baseline median
#   3. wam.fit_clv() on all customers (BG/NBD + Gamma-Gamma, time unit 1 day) (N = 3)
# Times are server side: clock_timestamp() around the statement (and its COMMIT) in a
# plpgsql procedure that commits between runs.  Medians over N runs (N printed).
#
# Before anything is timed, the script waits (up to WAM_BENCH_WAIT_MAX seconds) while
# another benchmark or fuzzer runs (pgrep -f 'bench_segment|bench_tags|fuzz_'), and says
# in the report when the machine was busy anyway.
#
# Prints a Markdown report on stdout (progress goes to stderr) and writes it to
# bench/results/rfm.md (the committed "latest results") with the default sizes.  Takes
# ~10-15 minutes.
#
# Knobs (environment):
#   WAM_BENCH_CUSTOMERS=1000000   customers (ids 1 .. N); orders are ~10 per customer
#   WAM_BENCH_N_REFRESH=5         measured wam.refresh_rfm() runs (plain SQL: 3)
#   WAM_BENCH_N_ORDERS=1000       measured single-order transactions per variant
#   WAM_BENCH_N_FIT=3             measured wam.fit_clv() runs
#   WAM_BENCH_WAIT_MAX=900        seconds to wait for other benchmarks / fuzzers to finish
#   WAM_BENCH_OUT=FILE            where to write the report; default bench/results/rfm.md,
#                                 but only with the default sizes
#   WAM_BENCH_PORT=55492          port of the private cluster (unix socket only)
#   WAM_BENCH_BUILD=1             run deps + make + make install first, even if installed
#   WAM_KEEP_CLUSTER_DIR=1        keep the cluster's data directory and server.log
# (SC2016: SQL $1 and $$ are not shell expansions; SC2119: build_install takes optional
# make arguments, none here.)
# shellcheck disable=SC2016,SC2119
set -euo pipefail

WAM_REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WAM_REPO_DIR
cd "$WAM_REPO_DIR"

# shellcheck source=test/lib/deps.sh
. "$WAM_REPO_DIR/test/lib/deps.sh"
# shellcheck source=test/lib/cluster.sh
. "$WAM_REPO_DIR/test/lib/cluster.sh"

CUSTOMERS=${WAM_BENCH_CUSTOMERS:-1000000}
N_REFRESH=${WAM_BENCH_N_REFRESH:-5}
N_PLAIN=3
N_ORDERS=${WAM_BENCH_N_ORDERS:-1000}
N_FIT=${WAM_BENCH_N_FIT:-3}
WAIT_MAX=${WAM_BENCH_WAIT_MAX:-900}
for v in CUSTOMERS N_REFRESH N_ORDERS N_FIT; do
    case ${!v} in
        '' | *[!0-9]* | 0) echo "error: $v must be a positive integer, got '${!v}'" >&2; exit 2 ;;
    esac
done
case $WAIT_MAX in '' | *[!0-9]*) echo "error: WAM_BENCH_WAIT_MAX must be a number" >&2; exit 2 ;; esac
if [ "$CUSTOMERS" -lt 1000 ] || [ "$CUSTOMERS" -gt 20000000 ]; then
    echo "error: WAM_BENCH_CUSTOMERS must be between 1,000 and 20,000,000" >&2
    exit 2
fi
if [ -n "${WAM_BENCH_OUT:-}" ]; then
    OUT=$WAM_BENCH_OUT
elif [ "$CUSTOMERS" = 1000000 ] && [ "$N_REFRESH" = 5 ] && [ "$N_ORDERS" = 1000 ] && [ "$N_FIT" = 3 ]; then
    OUT=$WAM_REPO_DIR/bench/results/rfm.md
else
    OUT=""
fi

# shellcheck source=test/lib/bench.sh
. "$WAM_REPO_DIR/test/lib/bench.sh"
bench_begin bench_rfm
bench_require_extension 'wam.refresh_rfm'

# ------------------------------------------------------------------ cluster

unset WAM_CLUSTER_RUNNING
export WAM_TEST_PORT=${WAM_BENCH_PORT:-55492}
SETTINGS=(
    shared_buffers=2GB
    max_wal_size=16GB
    checkpoint_timeout=30min
    work_mem=256MB
    maintenance_work_mem=1GB
    jit=off
    autovacuum=off
    max_parallel_workers_per_gather=2
    max_parallel_maintenance_workers=2
)
log "starting a throwaway cluster: ${SETTINGS[*]}"
start_cluster "${SETTINGS[@]}" || die "could not start the cluster"

DB=wam_bench
wam_psql -q -d postgres -c "CREATE DATABASE $DB" >/dev/null
wam_psql -q -d postgres -c "ALTER DATABASE $DB SET search_path = public, wam" >/dev/null
wam_psql -q -d postgres -c "ALTER DATABASE $DB SET timezone = 'UTC'" >/dev/null
export PGDATABASE=$DB

q() { wam_psql -qAt -F $'\t' -c "$1"; }
run_sql() { wam_psql -q -c "$1" >/dev/null; }

run_sql "CREATE EXTENSION pg_wamarketing"
wam_psql -q >/dev/null <<'SQL'
CREATE TABLE bench_run (name text, run int, ms float8, result text);

-- u(x, k): a fixed pseudo-random number in [0, 1)
CREATE FUNCTION bench_u(x bigint, k integer) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN (hashint8(x * 64 + k)::bigint & 2147483647) / 2147483648.0;

-- runs a statement n times, each in its own transaction, and records the times
CREATE PROCEDURE bench_time(name text, sql text, n integer) LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	res text;
BEGIN
	FOR i IN 1 .. n LOOP
		t0 := clock_timestamp();
		BEGIN
			EXECUTE sql INTO res;
		EXCEPTION WHEN OTHERS THEN
			res := 'ERROR: ' || SQLERRM;
		END;
		COMMIT;
		INSERT INTO bench_run VALUES (name, i, 1000 * extract(epoch FROM clock_timestamp() - t0), res);
		COMMIT;
	END LOOP;
END
$$;

-- one order per transaction, the three ways interleaved (so that drift of the machine
-- or of the caches favours none): a plain INSERT into a copy of wam.customer_order
-- without triggers, INSERT INTO wam.customer_order (statistics trigger) and
-- wam.record_order; each for its own pseudo-random customer
CREATE PROCEDURE bench_orders(n integer, customers bigint, seed integer, record boolean) LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	c bigint;
	amt numeric;
	plain float8[] := '{}';
	ins float8[] := '{}';
	rec float8[] := '{}';
BEGIN
	FOR i IN 1 .. n LOOP
		amt := round((5 + 200 * bench_u(i, seed + 3))::numeric, 2);
		c := 1 + floor(bench_u(i, seed) * customers)::bigint;
		t0 := clock_timestamp();
		INSERT INTO plain_order (customer_id, ordered_at, amount) VALUES (c, now(), amt);
		COMMIT;
		plain := plain || 1000 * extract(epoch FROM clock_timestamp() - t0)::float8;
		c := 1 + floor(bench_u(i, seed + 1) * customers)::bigint;
		t0 := clock_timestamp();
		INSERT INTO wam.customer_order (customer_id, ordered_at, amount) VALUES (c, now(), amt);
		COMMIT;
		ins := ins || 1000 * extract(epoch FROM clock_timestamp() - t0)::float8;
		c := 1 + floor(bench_u(i, seed + 2) * customers)::bigint;
		t0 := clock_timestamp();
		PERFORM wam.record_order(c, amt, now(), false, '{"units": 1}');
		COMMIT;
		rec := rec || 1000 * extract(epoch FROM clock_timestamp() - t0)::float8;
	END LOOP;
	IF record THEN
		INSERT INTO bench_run SELECT 'plain_insert', o, t, NULL FROM unnest(plain) WITH ORDINALITY u(t, o);
		INSERT INTO bench_run SELECT 'insert_customer_order', o, t, NULL FROM unnest(ins) WITH ORDINALITY u(t, o);
		INSERT INTO bench_run SELECT 'record_order', o, t, NULL FROM unnest(rec) WITH ORDINALITY u(t, o);
	END IF;
	COMMIT;
END
$$;
SQL

# ------------------------------------------------------------------ data

# (the data load does not wait for other heavy work: only the measurements do)
log "loading $CUSTOMERS customers"
T0=$SECONDS
run_sql "INSERT INTO wam.customer (id, phone) SELECT g, (85200000000 + g)::text FROM generate_series(1, $CUSTOMERS) g"
CUSTOMER_S=$((SECONDS - T0))

# A BG/NBD purchase process, so that the lifetime-value fit has something to find:
# customer c makes a first purchase on a day in 2022-01-01 .. 2025-09-30, buys at rate
# lambda_c ~ Gamma(1, 25 days) (exponential gaps) and drops out after each purchase with
# probability p_c ~ Uniform(0.02, 0.18) (mean 0.10); at most 61 orders, none after now;
# spend around a personal mean of 10 .. 300, 30 % with a coupon, 1-3 units.  About 10
# orders per customer.  (A fit should recover r ~ 1, alpha ~ 25 days, a / (a + b) ~ 0.10.)
BATCHES=10
PER=$(((CUSTOMERS + BATCHES - 1) / BATCHES))
T0=$SECONDS
for ((b = 0; b < BATCHES; b++)); do
    lo=$((b * PER + 1)); hi=$(((b + 1) * PER)); [ "$hi" -le "$CUSTOMERS" ] || hi=$CUSTOMERS
    log "orders of customers $lo .. $hi (bulk INSERT, statistics by the statement trigger)"
    run_sql "
INSERT INTO wam.customer_order (customer_id, ordered_at, amount, coupon_used, units)
WITH RECURSIVE c AS (
    SELECT c, floor(bench_u(c, 1) * 1369)::integer AS first_day, greatest(-ln(1 - bench_u(c, 2)), 1e-6) / 25 AS lambda,
           0.02 + 0.16 * bench_u(c, 3) AS p, 10 + 290 * bench_u(c, 4) ^ 2 AS spend
    FROM generate_series($lo, $hi) c
), o AS (
    SELECT c.c, 0 AS j, 0::float8 AS t, true AS alive FROM c
    UNION ALL
    SELECT o.c, o.j + 1, o.t + (-ln(1 - bench_u(o.c * 64 + o.j, 5)) / c.lambda), bench_u(o.c * 64 + o.j, 6) >= c.p
    FROM o JOIN c ON c.c = o.c WHERE o.alive AND o.j < 60 AND c.first_day + o.t < 2000
)
SELECT o.c, timestamptz '2022-01-01' + (c.first_day + o.t) * interval '1 day',
       round((c.spend * (0.5 + bench_u(o.c * 64 + o.j, 7)))::numeric, 2),
       bench_u(o.c * 64 + o.j, 8) < 0.3, 1 + floor(bench_u(o.c * 64 + o.j, 9) * 3)::integer
FROM o JOIN c ON c.c = o.c
WHERE timestamptz '2022-01-01' + (c.first_day + o.t) * interval '1 day' < now() - interval '1 hour'"
done
ORDERS_S=$((SECONDS - T0))
log "VACUUM ANALYZE"
run_sql "VACUUM ANALYZE"
ORDERS=$(q "SELECT count(*) FROM wam.customer_order")
STATS=$(q "SELECT count(*) FROM wam.customer_stats")
log "$ORDERS orders, $STATS customers with statistics; checking the statistics against the orders"
T0=$SECONDS
VERIFY=$(q "SELECT customers || ' customers, ' || mismatched || ' mismatched, ok = ' || ok FROM wam.verify_order_stats()")
VERIFY_S=$((SECONDS - T0))
log "verify_order_stats: $VERIFY (${VERIFY_S}s)"
SIZES=$(q "SELECT 'wam.customer_order ' || pg_size_pretty(pg_table_size('wam.customer_order')) || ' (+ indexes ' || pg_size_pretty(pg_indexes_size('wam.customer_order')) || '), wam.customer_stats ' || pg_size_pretty(pg_table_size('wam.customer_stats')) || ' (+ index ' || pg_size_pretty(pg_indexes_size('wam.customer_stats')) || ')'")

# plain copy for the insert baseline: same columns and indexes, no triggers
run_sql "CREATE TABLE plain_order (LIKE wam.customer_order INCLUDING DEFAULTS INCLUDING INDEXES);
         ALTER TABLE plain_order ALTER order_id ADD GENERATED BY DEFAULT AS IDENTITY (START 100000000)"

# ------------------------------------------------------------------ 1. RFM refresh

PLAIN_SQL="
WITH m AS (
    SELECT customer_id, max(ordered_at) AS last_at, count(*) AS f, sum(amount) AS m
    FROM wam.customer_order WHERE ordered_at <= now() GROUP BY customer_id
), s AS (
    SELECT ntile(5) OVER (ORDER BY last_at) AS r, ntile(5) OVER (ORDER BY f) AS f, ntile(5) OVER (ORDER BY m) AS m
    FROM m
)
SELECT string_agg(tier || ' ' || n, ', ' ORDER BY tier) FROM (
    SELECT CASE
        WHEN r >= 4 AND (f + m) / 2.0 >= 4 THEN 'Champions'
        WHEN r = 1 AND (f + m) / 2.0 >= 4 THEN 'Can''t lose them'
        WHEN r BETWEEN 2 AND 3 AND (f + m) / 2.0 BETWEEN 2 AND 3 THEN 'Need attention'
        WHEN r <= 2 AND (f + m) / 2.0 >= 2 THEN 'At risk'
        WHEN (f + m) / 2.0 >= 3 THEN 'Loyal'
        WHEN r = 1 AND (f + m) / 2.0 = 1 THEN 'Lost'
        WHEN r <= 2 AND (f + m) / 2.0 <= 2 THEN 'Hibernating'
        WHEN r <= 3 AND (f + m) / 2.0 <= 2 THEN 'About to sleep'
        WHEN r <= 4 AND (f + m) / 2.0 = 1 THEN 'Promising'
        WHEN (f + m) / 2.0 = 1 THEN 'New'
        ELSE 'Potential loyalist' END AS tier, count(*) AS n
    FROM s GROUP BY 1) t"
PLAIN_STATS_SQL=${PLAIN_SQL/FROM wam.customer_order WHERE ordered_at <= now() GROUP BY customer_id/FROM (SELECT customer_id, last_order_at AS ordered_at, orders, total_amount AS amount FROM wam.customer_stats) o GROUP BY customer_id}
PLAIN_STATS_SQL=${PLAIN_STATS_SQL/count(*) AS f, sum(amount) AS m/max(orders) AS f, max(amount) AS m}

wait_idle "the RFM refresh"
log "wam.refresh_rfm() x $N_REFRESH (after a warm-up run)"
run_sql "SELECT count(*) FROM wam.refresh_rfm()"
wam_psql -q -c "CALL bench_time('rfm_refresh', \$q\$SELECT string_agg(tier || ' ' || customers, ', ') FROM wam.refresh_rfm()\$q\$, $N_REFRESH)" >/dev/null
log "plain SQL over the orders x $N_PLAIN (after a warm-up run)"
run_sql "$PLAIN_SQL"
wam_psql -q -c "CALL bench_time('plain_rfm', \$q\$$PLAIN_SQL\$q\$, $N_PLAIN)" >/dev/null
log "plain SQL over wam.customer_stats x $N_PLAIN"
wam_psql -q -c "CALL bench_time('plain_rfm_stats', \$q\$$PLAIN_STATS_SQL\$q\$, $N_PLAIN)" >/dev/null
note_busy "the RFM refresh"
PLAIN_PLAN=$(wam_psql -qAt -c "EXPLAIN (COSTS OFF) $PLAIN_SQL" | grep -oE '(Finalize |Partial |Parallel )?(HashAggregate|GroupAggregate|Aggregate|WindowAgg|Seq Scan on [a-z_]+|Index Only Scan using [a-z_]+|Sort|Gather Merge|Gather)' | head -n 12 | paste -sd '>' | sed 's/>/ > /g')

# ------------------------------------------------------------------ 2. one order

wait_idle "the order inserts"
log "one order per transaction x $N_ORDERS x 3, interleaved: plain INSERT, INSERT INTO wam.customer_order, wam.record_order"
wam_psql -q -c "CALL bench_orders(20, $CUSTOMERS, 40, false)" >/dev/null
wam_psql -q -c "CALL bench_orders($N_ORDERS, $CUSTOMERS, 10, true)" >/dev/null
note_busy "the order inserts"
VERIFY2=$(q "SELECT mismatched || ' mismatched of ' || customers FROM wam.verify_order_stats()")
log "statistics after the inserts: $VERIFY2"

# ------------------------------------------------------------------ 3. fit

wait_idle "the lifetime-value fit"
log "wam.fit_clv() x $N_FIT"
wam_psql -q -c "CALL bench_time('fit_clv', \$q\$SELECT string_agg(parameter || ' = ' || round(value::numeric, 4), ', ') FROM wam.fit_clv()\$q\$, $N_FIT)" >/dev/null
note_busy "the lifetime-value fit"
FIT_DROPOUT=$(q "SELECT round((bgnbd[3] / (bgnbd[3] + bgnbd[4]))::numeric, 3) FROM wam.clv_fit")
FIT_INFO=$(q "SELECT customers || ' customers, ' || repeat_buyers || ' repeat buyers, ' || evaluations || ' likelihood evaluations (both models, last run)' FROM wam.clv_fit")
SUMMARY_MS=$(q "SELECT round(1000 * extract(epoch FROM clock_timestamp() - t0))::text FROM (SELECT clock_timestamp() AS t0) x, LATERAL (SELECT count(*) FROM wam.clv_summary()) y")

# ------------------------------------------------------------------ report

med() { q "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, ${2:-1}) FROM bench_run WHERE name = '$1'"; }
pct() { q "SELECT round(percentile_cont($2) WITHIN GROUP (ORDER BY ms)::numeric, ${3:-3}) FROM bench_run WHERE name = '$1'"; }
rng() { q "SELECT round(min(ms)::numeric, ${2:-1}) || ' … ' || round(max(ms)::numeric, ${2:-1}) FROM bench_run WHERE name = '$1'"; }
last_result() { q "SELECT result FROM bench_run WHERE name = '$1' ORDER BY run DESC LIMIT 1"; }
fmt_s() { awk -v ms="$1" 'BEGIN { printf "%.2f s", ms / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
ok() { if awk "BEGIN { exit !($1) }"; then echo "✅ met"; else echo "❌ missed"; fi; } # ok 'awk expression'

REFRESH_MS=$(med rfm_refresh 0); PLAIN_MS=$(med plain_rfm 0); PLAIN_STATS_MS=$(med plain_rfm_stats 0)
SPEEDUP=$(ratio "$PLAIN_MS" "$REFRESH_MS"); SPEEDUP_STATS=$(ratio "$PLAIN_STATS_MS" "$REFRESH_MS")
BASE=$(pct plain_insert 0.5); BASE95=$(pct plain_insert 0.95)
INS=$(pct insert_customer_order 0.5); INS95=$(pct insert_customer_order 0.95)
REC=$(pct record_order 0.5); REC95=$(pct record_order 0.95)
OVH_INS=$(awk -v a="$INS" -v b="$BASE" 'BEGIN { printf "%.3f", a - b }')
OVH_REC=$(awk -v a="$REC" -v b="$BASE" 'BEGIN { printf "%.3f", a - b }')
FIT_MS=$(med fit_clv 0)
ERRORS=$(q "SELECT count(*) FROM bench_run WHERE result LIKE 'ERROR%'")
[ "$ERRORS" = 0 ] || log "WARNING: $ERRORS measured runs failed (see the results in the report)"
PG_VERSION=$(q "SHOW server_version")
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')

REPORT=$(cat <<EOF
# RFM and lifetime-value benchmark: pg_wamarketing vs plain SQL

$(printf "%'d" "$CUSTOMERS") customers, $(printf "%'d" "$ORDERS") orders in \`wam.customer_order\`
($(printf "%'d" "$STATS") customers with purchase statistics in \`wam.customer_stats\`). Times are server side,
from before the statement to after its COMMIT (clock_timestamp() in a plpgsql procedure that commits between
runs). Medians over N runs. PostgreSQL $PG_VERSION, $(nproc) CPUs ($CPU), settings: ${SETTINGS[*]}.

| measurement | N | wam | plain SQL | wam vs plain | target | met? |
|---|---|---|---|---|---|---|
| 1. RFM refresh of all customers: median (min … max) | $N_REFRESH / $N_PLAIN | **$(fmt_s "$REFRESH_MS")** ($(rng rfm_refresh 0) ms) | $(fmt_s "$PLAIN_MS") ($(rng plain_rfm 0) ms): aggregate the orders, NTILE(5) ×3, CASE | **${SPEEDUP}× faster** | ≤ 3 s and ≥ 10× | $(ok "$REFRESH_MS <= 3000 && $PLAIN_MS >= 10 * $REFRESH_MS && $ERRORS == 0") |
| 1. (for the record) plain SQL over \`wam.customer_stats\` instead of the orders | $N_PLAIN | | $(fmt_s "$PLAIN_STATS_MS") | ${SPEEDUP_STATS}× | | |
| 2. one order, own transaction: median / p95 | $N_ORDERS each, interleaved | \`wam.record_order\` **$REC ms** / $REC95 ms; \`INSERT INTO wam.customer_order\` $INS ms / $INS95 ms | plain INSERT, no triggers: $BASE ms / $BASE95 ms | overhead: incremental statistics **+$OVH_INS ms**; whole \`record_order\` +$OVH_REC ms | ≤ 0.5 ms median overhead | $(ok "$OVH_INS <= 0.5") (statistics), $(ok "$OVH_REC <= 0.5") (record_order) |
| 3. \`wam.fit_clv()\` (BG/NBD + Gamma-Gamma, all customers): median (min … max) | $N_FIT | **$(fmt_s "$FIT_MS")** ($(rng fit_clv 0) ms) | | | BG/NBD ≤ 10 s | $(ok "$FIT_MS <= 10000 && $ERRORS == 0") |
| setup | 1 | customers ${CUSTOMER_S} s; orders ${ORDERS_S} s (10 bulk INSERTs, statistics by the trigger); \`wam.verify_order_stats()\` ${VERIFY_S} s: $VERIFY | | | | |

## Details

- 1: \`SELECT … FROM wam.refresh_rfm()\` (one warm-up run first). Result of the last run: $(last_result rfm_refresh).
  The plain SQL (one warm-up run first) aggregates \`wam.customer_order\` per customer (last order, count, sum),
  computes \`ntile(5)\` over each, and maps R and FM = (F+M)/2 with the same segment map as a CASE; plan: $PLAIN_PLAN.
  Its result (last run): $(last_result plain_rfm). The counts differ from \`wam.refresh_rfm\` by design: NTILE splits
  tied values over buckets by row order and spreads one-order customers over F = 1 … 3, while the extension scores
  by mid-rank (ties share a score) and pins F = 1 to one-order customers.
- 2: customers drawn by a fixed hash among all $(printf "%'d" "$CUSTOMERS") (so the statistics row exists: the
  update path), amount 5 … 205, order time now(); the three variants interleaved order by order, after 20
  unrecorded warm-up rounds. The baseline
  \`plain_order\` is \`LIKE wam.customer_order INCLUDING DEFAULTS INCLUDING INDEXES\` (primary key + (customer_id,
  ordered_at)) without triggers or foreign key. \`INSERT INTO wam.customer_order\` adds the foreign-key check and
  the statement trigger that merges the order into \`wam.customer_stats\` and \`wam.customer\` first/last order;
  \`wam.record_order\` adds validation, the currency and units logic and the \`order\` event (with the event-rule
  trigger). Min … max: plain $(rng plain_insert 3) ms, insert $(rng insert_customer_order 3) ms, record_order
  $(rng record_order 3) ms. Statistics checked against the orders afterwards: $VERIFY2.
- 3: \`SELECT … FROM wam.fit_clv()\` (calibration end now(), time unit 1 day): reads \`wam.customer_stats\`
  through \`wam.clv_summary()\` (alone: $SUMMARY_MS ms) twice (counts, then both fitting aggregates), groups
  equal histories, fits BG/NBD on a ladder of 1-in-k subsamples of the groups (20,000, 200,000, ... groups) and
  then on all of them. $FIT_INFO. Parameters (last run): $(last_result fit_clv); the data were generated
  with r = 1, alpha = 25 days, mean drop-out 0.10 (fitted a / (a + b) = $FIT_DROPOUT).
- sizes: $SIZES
- load average at start $LOADAVG_START, at end $(cut -d' ' -f1-3 /proc/loadavg); total time $((SECONDS - START)) s
$(if [ "${#BUSY_NOTES[@]}" -gt 0 ]; then echo "- **the machine was busy**: $(printf '%s; ' "${BUSY_NOTES[@]}")"; else echo "- no other benchmark or fuzzer ran during the measurements"; fi)
$(if [ "$WAITED_S" -gt 0 ]; then echo "- waited ${WAITED_S} s for other benchmarks / fuzzers to finish before measuring"; fi)
EOF
)
echo "$REPORT"
if [ -n "$OUT" ]; then
    mkdir -p "$(dirname "$OUT")"
    printf '%s\n' "$REPORT" >"$OUT"
    log "report written to $OUT"
fi
