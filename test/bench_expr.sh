#!/usr/bin/env bash
# test/bench_expr.sh — segment expressions vs the same query in plain SQL.
#
#     bash test/run build && bash test/bench_expr.sh
#
# Starts its own throwaway PostgreSQL 15 cluster (test/lib/cluster.sh; always stopped at
# exit), loads WAM_BENCH_CUSTOMERS customers (ids 1 … N) into wam.customer, ten tags of
# densities 5 % … 45 % (membership by a deterministic hash, attached with wam.attach_tag()),
# and WAM_BENCH_EVENTS behaviour events in time order over the last 90 days (bulk
# INSERT … SELECT into wam.event, in batches; 70 % of them from a tenth of the customers,
# kinds link_click 40 %, message_read 25 %, reply 10 %, price_inquiry 10 %,
# cart_abandoned 8 %, order 7 %; every link_click has details {"product": P}, P one of twenty
# products, sunscreen the most clicked at 22 %), then measures, each against its plain SQL twin:
#   1. a three-tag count       wam.audience_size('t25 AND t40 EXCLUDE t08')
#   2. a ten-operand count     wam.audience_size('(t25 | t05 | t10) & (t40 | t15) - t08 - (t20 & t30) | (t35 & t45)')
#   3. behaviour               wam.audience_size('event(link_click) >= 3 within 7d EXCLUDE event(order) within 7d')
#   4. kind only               wam.audience_size('event(link_click) >= 3 within 7d')
#   5. event details           wam.audience_size('event(link_click, product = ''sunscreen'') >= 3 within 7d')
#                              (target: at most 1.5 × query 4, at least 3 × faster than plain SQL)
# plus audience / audience_funnel of the same expressions.  Plain SQL runs on the
# extension's own tables (wam.customer_tag, wam.event and their indexes), in the fastest
# form found (EXISTS / NOT EXISTS, INTERSECT / EXCEPT or GROUP BY … HAVING); every pair
# must return the same count.  Times are server side: the median Execution Time of
# EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) after one warm-up run; N runs (N_SLOW when
# the warm-up took over SLOW_MS).
#
# Before loading and again before measuring, waits (up to WAM_BENCH_WAIT_MAX seconds) while
# other benchmarks or fuzzers run (pgrep -f 'bench_|fuzz_'), and notes it in the report
# when the machine was busy anyway.
#
# Prints a Markdown report on stdout (progress on stderr) and writes it to
# bench/results/expr.md (only with the default sizes, unless WAM_BENCH_OUT is set).
#
# Knobs (environment):
#   WAM_BENCH_CUSTOMERS=10000000  customers
#   WAM_BENCH_EVENTS=50000000     events
#   WAM_BENCH_EVENT_BATCH=5000000 events per INSERT statement
#   WAM_BENCH_N=15  WAM_BENCH_N_SLOW=3  WAM_BENCH_SLOW_MS=500
#   WAM_BENCH_WAIT_MAX=600        seconds to wait for other heavy work (before the load, and
#                                 again before the measurements)
#   WAM_BENCH_OUT=FILE            report file (default bench/results/expr.md, default sizes only)
#   WAM_BENCH_PORT=55720          port of the private cluster (unix socket only)
#   WAM_KEEP_CLUSTER_DIR=1        keep the cluster's data directory
#   WAM_BENCH_LOAD_ONLY=1         load, then stop and keep the cluster directory (its path is
#                                 printed) without measuring
#   WAM_BENCH_REUSE=DIR           skip the load: start the server of a cluster directory kept
#                                 by WAM_BENCH_LOAD_ONLY=1 (it runs the installed
#                                 pg_wamarketing.so on the SQL objects created at load time,
#                                 plus any index of wam.event the installed script defines and
#                                 the database lacks) and measure; the directory is kept
# (SC2016: $1 in SQL is not a shell expansion.)
# shellcheck disable=SC2016
set -euo pipefail

# shellcheck source=test/lib/bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

CUSTOMERS=${WAM_BENCH_CUSTOMERS:-10000000}
EVENTS=${WAM_BENCH_EVENTS:-50000000}
BATCH=${WAM_BENCH_EVENT_BATCH:-5000000}
N=${WAM_BENCH_N:-15}
N_SLOW=${WAM_BENCH_N_SLOW:-3}
SLOW_MS=${WAM_BENCH_SLOW_MS:-500}
WAIT_MAX=${WAM_BENCH_WAIT_MAX:-600}
bench_positive CUSTOMERS EVENTS BATCH N N_SLOW SLOW_MS
[ "$CUSTOMERS" -le 40000000 ] || { echo "error: at most 40,000,000 customers (phone numbering)" >&2; exit 2; }
bench_out expr.md "$CUSTOMERS $EVENTS $N $N_SLOW" "10000000 50000000 15 3"
bench_begin bench_expr
bench_require_extension audience_funnel

# ------------------------------------------------------------------ cluster

SETTINGS=(
    shared_buffers=4GB
    work_mem=256MB
    maintenance_work_mem=1GB
    max_parallel_workers_per_gather=2
    max_parallel_maintenance_workers=2
    jit=off
    max_wal_size=16GB
    checkpoint_timeout=1h
    autovacuum=off
)
REUSE=${WAM_BENCH_REUSE:-}
if [ -n "$REUSE" ]; then
    [ -f "$REUSE/data/PG_VERSION" ] || die "WAM_BENCH_REUSE=$REUSE is not a kept cluster directory"
    export WAM_KEEP_CLUSTER_DIR=1 WAM_CLUSTER_DIR=$REUSE WAM_SERVER_LOG=$REUSE/server.log
    unset WAM_CLUSTER_RUNNING
    _WAM_CLUSTER_OWNED=1
    _wam_install_traps
    log "starting the kept cluster in $REUSE"
    _wam_as_owner "$WAM_PG_BIN/pg_ctl" -D "$REUSE/data" -l "$WAM_SERVER_LOG" -w -t 120 -s start || die "could not start $REUSE"
    PGHOST=$REUSE/sock PGPORT=$(sed -n 's/^port = //p' "$REUSE/data/postgresql.conf" | tail -n 1)
    if [ "$(id -u)" -eq 0 ]; then PGUSER=${WAM_TEST_OS_USER:-wamtest}; else PGUSER=$(id -un); fi
    export PGHOST PGPORT PGUSER PGDATABASE=wam_bench WAM_CLUSTER_RUNNING=1
else
wait_idle "the load"
[ "${WAM_BENCH_LOAD_ONLY:-0}" = 1 ] && export WAM_KEEP_CLUSTER_DIR=1
bench_cluster 55720 "${SETTINGS[@]}"
bench_db

run_sql "CREATE EXTENSION pg_wamarketing"
# (another build may have been installing at the same moment: check before the long load)
[ "$(q "SELECT count(*) FROM pg_proc WHERE proname IN ('audience_size', 'segment_repeat_agg')")" = 2 ] ||
    die "the extension was created without segment expressions (a concurrent 'make install'?): run it again"
wam_psql -q >/dev/null <<'SQL'
CREATE TABLE bench_load (step text PRIMARY KEY, secs float8);
CREATE TABLE bench_run (name text, run int, exec_ms float8);
CREATE TABLE bench_res (name text PRIMARY KEY, result text, warm_ms float8);
-- bench_query(name, sql, n, n_slow, slow_ms): one warm-up run, then n (or n_slow when the
-- warm-up took over slow_ms) runs under EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON),
-- recording the Execution Time; returns the query's result.
CREATE FUNCTION bench_query(p_name text, p_sql text, p_n int, p_n_slow int, p_slow_ms float8)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    i int;
    n int;
    j json;
    res text;
    t0 timestamptz := clock_timestamp();
BEGIN
    EXECUTE p_sql INTO res;
    n := CASE WHEN 1000 * extract(epoch FROM clock_timestamp() - t0) > p_slow_ms THEN p_n_slow ELSE p_n END;
    INSERT INTO bench_res VALUES (p_name, res, 1000 * extract(epoch FROM clock_timestamp() - t0));
    FOR i IN 1 .. n LOOP
        EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, FORMAT JSON) ' || p_sql INTO j;
        INSERT INTO bench_run VALUES (p_name, i, (j->0->>'Execution Time')::float8);
    END LOOP;
    RETURN res;
END $$;
CREATE VIEW bench_stats AS
SELECT name, count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY exec_ms) AS median_ms,
       min(exec_ms) AS min_ms, max(exec_ms) AS max_ms
FROM bench_run GROUP BY name;
SQL

# ------------------------------------------------------------------ data

declare -A LOAD_S
t=$(now)
log "loading $CUSTOMERS customers into wam.customer"
run_sql "INSERT INTO wam.customer (id, phone) SELECT id, '852' || (50000000 + id) FROM (SELECT generate_series(1, $CUSTOMERS) id) s"
run_sql "SELECT setval('wam.customer_id_seq', $CUSTOMERS)"
LOAD_S[customers]=$(secs_since "$t")

# ten tags tNN holding NN % of the customers: (hashint8(id * 61 + NN) & 1048575) < NN % of 2^20
TAGS=(05 08 10 15 20 25 30 35 40 45)
t=$(now)
for d in "${TAGS[@]}"; do
    log "attaching t$d ($((10#$d)) %)"
    run_sql "SELECT wam.create_tag('t$d', 'interest')"
    run_sql "SELECT wam.attach_tag('t$d', (SELECT wam.segment_agg(id) FROM (SELECT generate_series(1, $CUSTOMERS) id) s
                                       WHERE (hashint8(id * 61 + $((10#$d))) & 1048575) < $((10#$d)) * 1048576 / 100))"
done
LOAD_S[tags]=$(secs_since "$t")

# events: event i of EVENTS happens at now() - 90 days * (1 - i / EVENTS); 70 % of them
# come from the first tenth of the customers.  The indexes and the foreign key of
# wam.event are dropped for the bulk load and built again afterwards, exactly as the
# extension defines them (a throwaway cluster: this only shortens the load).
# products of link_click details: the n-th of twenty has probability sqrt(n/20) - sqrt((n-1)/20)
PRODUCTS="'sunscreen', 'lipstick', 'serum', 'toner', 'cleanser', 'mascara', 'foundation', 'blush', 'eyeliner', 'primer',
          'concealer', 'bronzer', 'highlighter', 'moisturizer', 'face_mask', 'lip_balm', 'shampoo', 'conditioner', 'perfume', 'nail_polish'"
t=$(now)
run_sql "ALTER TABLE wam.event DROP CONSTRAINT event_customer_id_fkey;
         ALTER TABLE wam.event_default DROP CONSTRAINT event_default_pkey;
         DROP INDEX wam.event_default_kind_time; DROP INDEX wam.event_detail_search; DROP INDEX wam.event_detail_event"
lo=1
while [ "$lo" -le "$EVENTS" ]; do
    hi=$((lo + BATCH - 1))
    [ "$hi" -gt "$EVENTS" ] && hi=$EVENTS
    log "inserting events $lo .. $hi of $EVENTS"
    run_sql "INSERT INTO wam.event (customer_id, kind, occurred_at, details)
             SELECT CASE WHEN (h1 & 1023) < 717 THEN 1 + (h2 % ($CUSTOMERS / 10)) ELSE 1 + (h2 % $CUSTOMERS) END,
                    CASE WHEN k < 40 THEN 'link_click' WHEN k < 65 THEN 'message_read' WHEN k < 75 THEN 'reply'
                         WHEN k < 85 THEN 'price_inquiry' WHEN k < 93 THEN 'cart_abandoned' ELSE 'order' END,
                    now() - interval '90 days' * (1 - i::float8 / $EVENTS),
                    CASE WHEN k < 40 THEN jsonb_build_object('product', (ARRAY[$PRODUCTS])[1 + floor(20 * u * u)::int]) END
             FROM (SELECT i, hashint8(i) AS h1, (hashint8(i * 7 + 3) & 2147483647) AS h2,
                          (hashint8(i * 13 + 5) & 2147483647) % 100 AS k,
                          (hashint8(i * 17 + 11) & 1048575) / 1048576.0 AS u
                   FROM (SELECT generate_series($lo::bigint, $hi) i) g) x"
    lo=$((hi + 1))
done
log "building the indexes and the foreign key of wam.event again"
run_sql "SET maintenance_work_mem = '1GB';
         ALTER TABLE wam.event_default ADD CONSTRAINT event_default_pkey PRIMARY KEY (customer_id, event_id);
         CREATE INDEX event_default_kind_time ON wam.event_default (kind, occurred_at) INCLUDE (customer_id);
         CREATE INDEX event_detail_search ON wam.event_detail (kind, key, value, occurred_at) INCLUDE (customer_id, event_id);
         CREATE INDEX event_detail_event ON wam.event_detail (customer_id, event_id);
         ALTER TABLE wam.event ADD CONSTRAINT event_customer_id_fkey FOREIGN KEY (customer_id)
             REFERENCES wam.customer (id) ON DELETE CASCADE"
LOAD_S[events]=$(secs_since "$t")
t=$(now)
log "VACUUM ANALYZE"
run_sql "VACUUM (ANALYZE) wam.customer"
run_sql "VACUUM (ANALYZE) wam.customer_tag"
run_sql "VACUUM (ANALYZE) wam.tag_chunk"
run_sql "VACUUM (ANALYZE) wam.event"
run_sql "VACUUM (ANALYZE) wam.event_detail"
LOAD_S[vacuum]=$(secs_since "$t")
for k in "${!LOAD_S[@]}"; do run_sql "INSERT INTO bench_load VALUES ('$k', ${LOAD_S[$k]})"; done
if [ "${WAM_BENCH_LOAD_ONLY:-0}" = 1 ]; then
    log "loaded (WAM_BENCH_LOAD_ONLY=1): measure with WAM_BENCH_REUSE=$WAM_CLUSTER_DIR"
    echo "$WAM_CLUSTER_DIR"
    exit 0
fi
fi # (not WAM_BENCH_REUSE)

# Reusing a directory loaded by an earlier build: indexes of wam.event the installed
# script defines and the database lacks are built as that script defines them.
if [ -n "$REUSE" ]; then
    declare -A LOAD_S
    while IFS=$'\t' read -r k v; do LOAD_S[$k]=$v; done < <(q "SELECT step, secs FROM bench_load")
    run_sql "TRUNCATE bench_run, bench_res"
    script=$sharedir/extension/pg_wamarketing--$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$sharedir/extension/pg_wamarketing.control").sql
    while IFS= read -r ddl; do
        idx=$(sed -n 's/^CREATE INDEX \([a-z_]*\) ON wam\.event .*/\1/p' <<<"$ddl")
        if [ -n "$idx" ] && [ "$(q "SELECT to_regclass('wam.$idx') IS NULL")" = t ]; then
            log "building index $idx of the installed script: $ddl"
            run_sql "SET maintenance_work_mem = '1GB'; $ddl"
            run_sql "ANALYZE wam.event"
        fi
    done < <(grep '^CREATE INDEX [a-z_]* ON wam\.event ' "$script")
fi
SIZES=$(q "SELECT pg_size_pretty(pg_total_relation_size('wam.event')), pg_size_pretty(pg_total_relation_size('wam.customer_tag')),
                  pg_size_pretty(pg_total_relation_size('wam.tag_chunk')), (SELECT count(*) FROM wam.customer_tag),
                  (SELECT count(*) FROM wam.event WHERE occurred_at >= now() - interval '7 days')")
IFS=$'\t' read -r EVENT_SIZE CT_SIZE CHUNK_SIZE CT_ROWS EVENTS_7D <<<"$SIZES"

# ------------------------------------------------------------------ queries

E1='t25 AND t40 EXCLUDE t08'
E2='(t25 | t05 | t10) & (t40 | t15) - t08 - (t20 & t30) | (t35 & t45)'
E3='event(link_click) >= 3 within 7d EXCLUDE event(order) within 7d'
E4='event(link_click) >= 3 within 7d'
E5="event(link_click, product = 'sunscreen') >= 3 within 7d"
# plain SQL gets the tag ids as constants (a wam.tag_id() call in a scan filter would run per row)
declare -A TID
while IFS=$'\t' read -r name id; do TID[$name]=$id; done < <(q "SELECT name, tag_id FROM wam.tag")
has() { printf 'EXISTS (SELECT FROM wam.customer_tag ct WHERE ct.customer_id = c.id AND ct.tag_id = %s)' "${TID[t$1]}"; }
P1_EXISTS="SELECT count(*) FROM wam.customer c WHERE $(has 25) AND $(has 40) AND NOT $(has 08)"
P1_SETOP="SELECT count(*) FROM (SELECT customer_id FROM wam.customer_tag WHERE tag_id = ${TID[t25]}
          INTERSECT SELECT customer_id FROM wam.customer_tag WHERE tag_id = ${TID[t40]}
          EXCEPT SELECT customer_id FROM wam.customer_tag WHERE tag_id = ${TID[t08]}) x"
b() { printf "bool_or(ct.tag_id = %s)" "${TID[t$1]}"; }
P2_GROUP="SELECT count(*) FROM (SELECT ct.customer_id FROM wam.customer_tag ct GROUP BY ct.customer_id
          HAVING (($(b 25) OR $(b 05) OR $(b 10)) AND ($(b 40) OR $(b 15)) AND NOT $(b 08)
                  AND NOT ($(b 20) AND $(b 30))) OR ($(b 35) AND $(b 45))) x"
P2_EXISTS="SELECT count(*) FROM wam.customer c WHERE (($(has 25) OR $(has 05) OR $(has 10)) AND ($(has 40) OR $(has 15))
          AND NOT $(has 08) AND NOT ($(has 20) AND $(has 30))) OR ($(has 35) AND $(has 45))"
P3_SETOP="SELECT count(*) FROM (SELECT customer_id FROM wam.event WHERE kind = 'link_click' AND occurred_at >= now() - interval '7 days'
          GROUP BY customer_id HAVING count(*) >= 3
          EXCEPT SELECT customer_id FROM wam.event WHERE kind = 'order' AND occurred_at >= now() - interval '7 days') x"
P3_NOTEXISTS="SELECT count(*) FROM (SELECT customer_id FROM wam.event e WHERE kind = 'link_click' AND occurred_at >= now() - interval '7 days'
          GROUP BY customer_id HAVING count(*) >= 3) x
          WHERE NOT EXISTS (SELECT FROM wam.event o WHERE o.customer_id = x.customer_id AND o.kind = 'order'
                            AND o.occurred_at >= now() - interval '7 days')"
P4_GROUP="SELECT count(*) FROM (SELECT customer_id FROM wam.event WHERE kind = 'link_click' AND occurred_at >= now() - interval '7 days'
          GROUP BY customer_id HAVING count(*) >= 3) x"
P5_ARROW="SELECT count(*) FROM (SELECT customer_id FROM wam.event WHERE kind = 'link_click' AND occurred_at >= now() - interval '7 days'
          AND details->>'product' = 'sunscreen' GROUP BY customer_id HAVING count(*) >= 3) x"
P5_CONTAINS="SELECT count(*) FROM (SELECT customer_id FROM wam.event WHERE kind = 'link_click' AND occurred_at >= now() - interval '7 days'
          AND details @> '{\"product\": \"sunscreen\"}' GROUP BY customer_id HAVING count(*) >= 3) x"

bench() { # bench NAME SQL
    log "query $1: warm-up, then $N runs (or $N_SLOW when slower than $SLOW_MS ms)"
    q "SELECT bench_query($(sqlstr "$1"), $(sqlstr "$2"), $N, $N_SLOW, $SLOW_MS)"
}
seg() { printf "SELECT wam.audience_size(%s)" "$(sqlstr "$1")"; }

wait_idle "the measurements"
MEASURE_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A R
R[e1]=$(bench e1 "$(seg "$E1")")
R[e1_eval]=$(bench e1_eval "SELECT wam.segment_cardinality(wam.audience($(sqlstr "$E1")))")
R[e1_explain]=$(bench e1_explain "SELECT max(customers) FILTER (WHERE depth = 0) FROM wam.audience_funnel($(sqlstr "$E1"))")
R[p1_exists]=$(bench p1_exists "$P1_EXISTS")
R[p1_setop]=$(bench p1_setop "$P1_SETOP")
R[e2]=$(bench e2 "$(seg "$E2")")
R[e2_eval]=$(bench e2_eval "SELECT wam.segment_cardinality(wam.audience($(sqlstr "$E2")))")
R[p2_group]=$(bench p2_group "$P2_GROUP")
R[p2_exists]=$(bench p2_exists "$P2_EXISTS")
R[e3]=$(bench e3 "$(seg "$E3")")
R[e3_explain]=$(bench e3_explain "SELECT max(customers) FILTER (WHERE depth = 0) FROM wam.audience_funnel($(sqlstr "$E3"))")
R[p3_setop]=$(bench p3_setop "$P3_SETOP")
R[p3_notexists]=$(bench p3_notexists "$P3_NOTEXISTS")
R[e4]=$(bench e4 "$(seg "$E4")")
R[p4_group]=$(bench p4_group "$P4_GROUP")
R[e5]=$(bench e5 "$(seg "$E5")")
R[e5_explain]=$(bench e5_explain "SELECT max(customers) FILTER (WHERE depth = 0) FROM wam.audience_funnel($(sqlstr "$E5"))")
R[p5_arrow]=$(bench p5_arrow "$P5_ARROW")
R[p5_contains]=$(bench p5_contains "$P5_CONTAINS")
MEASURE_LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
STILL_BUSY=$(busy_procs)
[ -n "$STILL_BUSY" ] && BUSY_NOTES+=("during the measurements: $(tr '\n' ';' <<<"$STILL_BUSY" | sed 's/;$//')")

# The behaviour counts depend on now(): time passes between the timed runs and customers
# leave the 7-day window, so all four forms are compared in one statement (one now()).
R3=$(q "SELECT ($(seg "$E3")), (SELECT max(customers) FILTER (WHERE depth = 0) FROM wam.audience_funnel($(sqlstr "$E3"))),
               ($P3_SETOP), ($P3_NOTEXISTS)")
IFS=$'\t' read -r R[e3] R[e3_explain] R[p3_setop] R[p3_notexists] <<<"$R3"
R45=$(q "SELECT ($(seg "$E4")), ($P4_GROUP), ($(seg "$E5")),
                (SELECT max(customers) FILTER (WHERE depth = 0) FROM wam.audience_funnel($(sqlstr "$E5"))), ($P5_ARROW), ($P5_CONTAINS)")
IFS=$'\t' read -r 'R[e4]' 'R[p4_group]' 'R[e5]' 'R[e5_explain]' 'R[p5_arrow]' 'R[p5_contains]' <<<"$R45"
for pair in "e1 e1_eval e1_explain p1_exists p1_setop" "e2 e2_eval p2_group p2_exists" "e3 e3_explain p3_setop p3_notexists" \
            "e4 p4_group" "e5 e5_explain p5_arrow p5_contains"; do
    read -r -a names <<<"$pair"
    for nm in "${names[@]}"; do
        [ "${R[$nm]}" = "${R[${names[0]}]}" ] || die "counts differ: ${names[0]} = ${R[${names[0]}]}, $nm = ${R[$nm]}"
    done
done
log "all counts agree: ${R[e1]} / ${R[e2]} / ${R[e3]} / ${R[e4]} / ${R[e5]}"

# ------------------------------------------------------------------ report

declare -A MED MIN MAX NRUN
while IFS=$'\t' read -r name n med mn mx; do
    MED[$name]=$med; MIN[$name]=$mn; MAX[$name]=$mx; NRUN[$name]=$n
done < <(q "SELECT name, n, median_ms, min_ms, max_ms FROM bench_stats")
fmt_ms() { awk -v x="$1" 'BEGIN { if (x < 10) printf "%.2f ms", x; else if (x < 100) printf "%.1f ms", x; else printf "%.0f ms", x }'; }
fmt_int() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; if (r < 10) printf "%.1f×", r; else printf "%.0f×", r }'; }
best() { local b=$1 x; shift; for x in "$@"; do awk -v a="${MED[$x]}" -v c="${MED[$b]}" 'BEGIN { exit !(a < c) }' && b=$x; done; echo "$b"; }
cell() { printf '**%s** (N = %s; %s … %s)' "$(fmt_ms "${MED[$1]}")" "${NRUN[$1]}" "$(fmt_ms "${MIN[$1]}")" "$(fmt_ms "${MAX[$1]}")"; }
met() { awk -v a="${MED[$1]}" -v t="$2" 'BEGIN { exit !(a <= t) }' && echo "✅ met" || echo "❌ missed"; }
declare -A LABEL=(
    [p1_exists]='EXISTS / NOT EXISTS' [p1_setop]='INTERSECT / EXCEPT'
    [p2_group]='GROUP BY … HAVING bool_or' [p2_exists]='EXISTS / NOT EXISTS'
    [p3_setop]='GROUP BY … HAVING, EXCEPT' [p3_notexists]='GROUP BY … HAVING, NOT EXISTS'
    [p4_group]='GROUP BY … HAVING' [p5_arrow]="GROUP BY … HAVING, details->>'product' =" [p5_contains]='GROUP BY … HAVING, details @> (GIN index)'
)
B1=$(best p1_exists p1_setop)
B2=$(best p2_group p2_exists)
B3=$(best p3_setop p3_notexists)
B5=$(best p5_arrow p5_contains)
metratio() { awk -v a="$1" -v b="$2" -v t="$3" -v dir="$4" 'BEGIN { r = a / b; exit !(dir == "le" ? r <= t : r >= t) }' && echo "✅ met" || echo "❌ missed"; }
report() {
    cat <<EOF
# Segment expressions vs plain SQL

$(fmt_int "$CUSTOMERS") customers, ten tags t05 … t45 (tNN holds NN % of them; $(fmt_int "$CT_ROWS") rows in
\`wam.customer_tag\` ($CT_SIZE with its index), $CHUNK_SIZE of \`wam.tag_chunk\` bitmaps), $(fmt_int "$EVENTS") events over 90 days in
\`wam.event\` ($EVENT_SIZE with indexes; $(fmt_int "$EVENTS_7D") in the last 7 days). Plain SQL runs on the
same tables and indexes. Times are server side: median \`Execution Time\` of
\`EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON)\` after one warm-up run (warm cache), N runs.

| query | wam.audience_size | plain SQL (fastest form) | speed-up | target | met? |
|---|---|---|---|---|---|
| 1. \`$E1\` | $(cell e1) | $(cell "$B1") ${LABEL[$B1]} | $(ratio "${MED[$B1]}" "${MED[e1]}") | ≤ 10 ms | $(met e1 10) |
| 2. \`$E2\` (ten operands) | $(cell e2) | $(cell "$B2") ${LABEL[$B2]} | $(ratio "${MED[$B2]}" "${MED[e2]}") | ≤ 30 ms | $(met e2 30) |
| 3. \`$E3\` ($(fmt_int "$EVENTS") events) | $(cell e3) | $(cell "$B3") ${LABEL[$B3]} | $(ratio "${MED[$B3]}" "${MED[e3]}") | ≤ 1 s | $(met e3 1000) |
| 4. \`$E4\` (kind only) | $(cell e4) | $(cell p4_group) ${LABEL[p4_group]} | $(ratio "${MED[p4_group]}" "${MED[e4]}") | | |
| 5. \`$E5\` (event details) | $(cell e5) | $(cell "$B5") ${LABEL[$B5]} | $(ratio "${MED[$B5]}" "${MED[e5]}") | ≥ 3× | $(metratio "${MED[$B5]}" "${MED[e5]}" 3 ge) |

Event details against kind only: query 5 takes $(ratio "${MED[e5]}" "${MED[e4]}") the time of query 4 (target ≤ 1.5×: $(metratio "${MED[e5]}" "${MED[e4]}" 1.5 le)).

Counts (checked equal across every form): 1. $(fmt_int "${R[e1]}"), 2. $(fmt_int "${R[e2]}"), 3. $(fmt_int "${R[e3]}"), 4. $(fmt_int "${R[e4]}"), 5. $(fmt_int "${R[e5]}").

## All measurements

| measurement | N | median | min | max |
|---|---|---|---|---|
$(for nm in e1 e1_eval e1_explain p1_exists p1_setop e2 e2_eval p2_group p2_exists e3 e3_explain p3_setop p3_notexists \
            e4 p4_group e5 e5_explain p5_arrow p5_contains; do
    case $nm in
        e1) l="wam.audience_size('$E1')" ;; e1_eval) l="wam.segment_cardinality(wam.audience(…1…)) (builds the result)" ;;
        e1_explain) l="wam.audience_funnel(…1…) (size at every step)" ;;
        e2) l="wam.audience_size('$E2')" ;; e2_eval) l="wam.segment_cardinality(wam.audience(…2…))" ;;
        e3) l="wam.audience_size('$E3')" ;; e3_explain) l="wam.audience_funnel(…3…)" ;;
        e4) l="wam.audience_size('$E4')" ;;
        e5) l="wam.audience_size('$E5')" ;; e5_explain) l="wam.audience_funnel(…5…)" ;;
        *) l="plain SQL: ${LABEL[$nm]}" ;;
    esac
    printf '| %s | %s | %s | %s | %s |\n' "$l" "${NRUN[$nm]}" "$(fmt_ms "${MED[$nm]}")" "$(fmt_ms "${MIN[$nm]}")" "$(fmt_ms "${MAX[$nm]}")"
done)

Plain SQL queries:

- 1, EXISTS: \`$(tr -s ' \n' ' ' <<<"$P1_EXISTS")\`
- 1, INTERSECT: \`$(tr -s ' \n' ' ' <<<"$P1_SETOP")\`
- 2, GROUP BY: \`$(tr -s ' \n' ' ' <<<"$P2_GROUP")\`
- 2, EXISTS: \`$(tr -s ' \n' ' ' <<<"$P2_EXISTS")\`
- 3, EXCEPT: \`$(tr -s ' \n' ' ' <<<"$P3_SETOP")\`
- 3, NOT EXISTS: \`$(tr -s ' \n' ' ' <<<"$P3_NOTEXISTS")\`
- 4: \`$(tr -s ' \n' ' ' <<<"$P4_GROUP")\`
- 5, ->>: \`$(tr -s ' \n' ' ' <<<"$P5_ARROW")\`
- 5, @>: \`$(tr -s ' \n' ' ' <<<"$P5_CONTAINS")\`

## Setup

- machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; load average $MEASURE_LOAD_START before the measurements, $MEASURE_LOAD_END after
- $("$WAM_PG_BIN/postgres" -V); server settings ${SETTINGS[*]} (+ fsync = off, synchronous_commit = off from test/lib/cluster.sh)
- pg_wamarketing (git $(git -C "$WAM_REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$WAM_REPO_DIR" diff --quiet 2>/dev/null || echo ' + uncommitted changes')), CRoaring $(dpkg-query -W -f='${Version}' libroaring-dev 2>/dev/null || echo '?')
- load: customers ${LOAD_S[customers]} s, ten wam.attach ${LOAD_S[tags]} s, events ${LOAD_S[events]} s (INSERT … SELECT in batches of $(fmt_int "$BATCH"), with the event-rule statement trigger; primary key, indexes and foreign key of wam.event dropped for the load and built again after it, included), VACUUM ANALYZE ${LOAD_S[vacuum]} s$( [ -n "$REUSE" ] && echo "; measured on the kept load (WAM_BENCH_REUSE) with the installed build")
$(if [ "${#BUSY_NOTES[@]}" -gt 0 ]; then printf -- '- other heavy work on the machine: %s\n' "${BUSY_NOTES[@]}"; else echo "- no other benchmark or fuzzer ran during the measurements"; fi)
- generated by \`bash test/bench_expr.sh\` in $(((SECONDS - START) / 60)) min on $(date -u '+%Y-%m-%d %H:%M') UTC
EOF
}
bench_report "$(report)"
