#!/usr/bin/env bash
# test/bench_segment.sh — wam.segment vs plain SQL for a 3-tag audience count.
#
#     bash test/bench_segment.sh
#
# Starts its own throwaway PostgreSQL 15 cluster (test/lib/cluster.sh; always stopped at
# exit), loads 10,000,000 customers with three tags of density 25 %, 40 % and 8 % (a
# deterministic hash, identical on every run), and measures the count of
# (tag 1 AND tag 2) EXCLUDE tag 3 three ways:
#   wam.segment          three stored (TOASTed) segments in tag_segment(tag_id, members)
#   plain SQL (btree)    customer_tags(customer_id, tag_id) + btree (tag_id, customer_id)
#   plain SQL (GIN)      customers(id, tags int[]) + GIN (tags)
# plus the segment build time and stored size.  Query times are server side: the median
# "Execution Time" of EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON), after a warm-up run, so
# the segments are read and detoasted from the table on every run.  The script fails if
# the three approaches do not return the same count.
#
# Prints a Markdown report on stdout (progress goes to stderr) and writes it to
# bench/results/segment.md (the committed "latest results").  Takes ~5-10 minutes.
#
# Needs the extension built and installed (`bash test/run build`); when it is not
# installed at all, this script runs the same deps + build steps itself (as root).
#
# Knobs (environment):
#   WAM_BENCH_CUSTOMERS=10000000  number of customers (ids 0 .. N-1)
#   WAM_BENCH_N=15                measured runs per query (after one warm-up run) ...
#   WAM_BENCH_N_SLOW=5            ... or this many when the warm-up took more than
#   WAM_BENCH_SLOW_MS=500         this many milliseconds (the plain SQL queries take seconds)
#   WAM_BENCH_N_BUILD=3           measured builds per segment (after one warm-up build)
#   WAM_BENCH_OUT=FILE            where to write the report; default
#                                 bench/results/segment.md, but only with the default
#                                 values of the knobs above (other runs write nothing
#                                 unless WAM_BENCH_OUT is set)
#   WAM_BENCH_PORT=55442          port of the private cluster (unix socket only)
#   WAM_BENCH_BUILD=1             run deps + make + make install first, even if installed
#   WAM_KEEP_CLUSTER_DIR=1        keep the cluster's data directory and server.log
# (SC2016: dpkg-query's ${Version} is not a shell expansion; SC2119: build_install takes
# optional make arguments, none here.)
# shellcheck disable=SC2016,SC2119
set -euo pipefail

WAM_REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WAM_REPO_DIR
cd "$WAM_REPO_DIR"

# shellcheck source=test/lib/deps.sh
. "$WAM_REPO_DIR/test/lib/deps.sh"
# shellcheck source=test/lib/cluster.sh
. "$WAM_REPO_DIR/test/lib/cluster.sh"

CUSTOMERS=${WAM_BENCH_CUSTOMERS:-10000000}
N=${WAM_BENCH_N:-15}
NB=${WAM_BENCH_N_BUILD:-3}
N_SLOW=${WAM_BENCH_N_SLOW:-5}
SLOW_MS=${WAM_BENCH_SLOW_MS:-500}
for v in CUSTOMERS N NB N_SLOW SLOW_MS; do
    case ${!v} in
        '' | *[!0-9]* | 0) echo "error: $v must be a positive integer, got '${!v}'" >&2; exit 2 ;;
    esac
done
if [ -n "${WAM_BENCH_OUT:-}" ]; then
    OUT=$WAM_BENCH_OUT
elif [ "$CUSTOMERS" = 10000000 ] && [ "$N" = 15 ] && [ "$NB" = 3 ] && [ "$N_SLOW" = 5 ] &&
    [ "$SLOW_MS" = 500 ]; then
    OUT=$WAM_REPO_DIR/bench/results/segment.md
else
    OUT=""
fi

# shellcheck source=test/lib/bench.sh
. "$WAM_REPO_DIR/test/lib/bench.sh"
bench_begin bench_segment
bench_require_extension

# ------------------------------------------------------------------ cluster

# Always our own cluster with benchmark settings, never one inherited from test/run.
unset WAM_CLUSTER_RUNNING
export WAM_TEST_PORT=${WAM_BENCH_PORT:-55442}
SETTINGS=(
    shared_buffers=2GB
    work_mem=256MB
    maintenance_work_mem=1GB
    max_parallel_workers_per_gather=2
    max_parallel_maintenance_workers=2
    jit=off
    max_wal_size=8GB
    checkpoint_timeout=1h
    autovacuum=off
)
log "starting a throwaway cluster: ${SETTINGS[*]}"
start_cluster "${SETTINGS[@]}" || die "could not start the cluster"

DB=wam_bench
wam_psql -q -d postgres -c "CREATE DATABASE $DB" >/dev/null
wam_psql -q -d postgres -c "ALTER DATABASE $DB SET search_path = public, wam" >/dev/null
export PGDATABASE=$DB

q() { wam_psql -qAt -F $'\t' -c "$1"; }              # one query, unaligned, tab-separated
run_sql() { wam_psql -q -c "$1" >/dev/null; }
now() { date +%s.%N; }
elapsed_ms() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

# ------------------------------------------------------------------ helpers in the bench db

run_sql "CREATE EXTENSION pg_wamarketing"
wam_psql -q >/dev/null <<'SQL'
-- Tag membership: a deterministic hash of (customer id, tag); density in percent.
CREATE FUNCTION bench_tag_pct(tag int) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE tag WHEN 1 THEN 25 WHEN 2 THEN 40 WHEN 3 THEN 8 END $$;

CREATE FUNCTION bench_has_tag(id bigint, tag int) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashint8extended(id, tag) & 9223372036854775807) % 100 < bench_tag_pct(tag) $$;

CREATE TABLE bench_run (name text, kind text, run int, exec_ms float8, plan_ms float8);
CREATE TABLE bench_plan (name text PRIMARY KEY, plan json, buffers json, result text);

-- Compact one-line plan: Node(child, child) with the interesting details.
CREATE FUNCTION bench_plan_line(p json) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s text := p->>'Node Type';
    c json;
    kids text[] := '{}';
BEGIN
    IF p->>'Strategy' = 'Hashed' THEN
        s := 'Hash' || s;
    ELSIF p->>'Strategy' = 'Sorted' AND s = 'Aggregate' THEN
        s := 'GroupAggregate';
    ELSIF p->>'Strategy' = 'Mixed' THEN
        s := 'MixedAggregate';
    END IF;
    IF p->>'Partial Mode' IN ('Partial', 'Finalize') THEN
        s := (p->>'Partial Mode') || ' ' || s;
    END IF;
    IF coalesce(p->>'Join Type', 'Inner') <> 'Inner' THEN
        s := replace(s, ' Join', ' ' || (p->>'Join Type') || ' Join');
    END IF;
    IF (p->>'Parallel Aware')::boolean THEN
        s := 'Parallel ' || s;
    END IF;
    IF p->>'Index Name' IS NOT NULL THEN
        s := s || ' using ' || (p->>'Index Name');
    ELSIF p->>'Relation Name' IS NOT NULL THEN
        s := s || ' on ' || (p->>'Relation Name');
    END IF;
    IF p->>'Workers Launched' IS NOT NULL THEN
        s := s || ' [' || (p->>'Workers Launched') || ' workers]';
    END IF;
    FOR c IN SELECT json_array_elements(p->'Plans') LOOP
        kids := kids || bench_plan_line(c);
    END LOOP;
    IF cardinality(kids) > 0 THEN
        s := s || '(' || array_to_string(kids, ', ') || ')';
    END IF;
    RETURN s;
END $$;

-- bench_query(name, sql, n_fast, n_slow, slow_ms, settings): apply the settings (name,
-- value pairs) for this transaction; warm up with one EXPLAIN (ANALYZE, BUFFERS) run
-- (kept for the plan and buffer counts); then n runs under
-- EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) recording Execution / Planning Time, and n
-- runs as `EXECUTE sql INTO result` between clock_timestamp() calls (a cross-check of
-- the EXPLAIN overhead; includes planning).  n = n_slow when the warm-up took more than
-- slow_ms, else n_fast.  Returns the query's result.
CREATE FUNCTION bench_query(p_name text, p_sql text, p_n_fast int, p_n_slow int,
                            p_slow_ms float8, p_settings text[] DEFAULT '{}')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    i int;
    n int;
    j json;
    jb json;
    res text;
    t0 timestamptz;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_settings, 1), 0) BY 2 LOOP
        PERFORM set_config(p_settings[i], p_settings[i + 1], true);
    END LOOP;
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY ON, FORMAT JSON) ' || p_sql INTO jb;
    n := CASE WHEN (jb->0->>'Execution Time')::float8 > p_slow_ms THEN p_n_slow ELSE p_n_fast END;
    FOR i IN 1 .. n LOOP
        EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, FORMAT JSON) ' || p_sql INTO j;
        INSERT INTO bench_run VALUES (p_name, 'explain', i, (j->0->>'Execution Time')::float8,
                                      (j->0->>'Planning Time')::float8);
    END LOOP;
    FOR i IN 1 .. n LOOP
        t0 := clock_timestamp();
        EXECUTE p_sql INTO res;
        INSERT INTO bench_run VALUES (p_name, 'wall', i,
                                      1000 * extract(epoch FROM clock_timestamp() - t0), NULL);
    END LOOP;
    INSERT INTO bench_plan VALUES (p_name, j, jb, res);
    RETURN res;
END $$;

-- bench_build(tag, n): build the tag's segment from customer_tags n + 1 times (the first
-- is a warm-up), timing each INSERT (aggregate + TOAST write) with clock_timestamp().
CREATE FUNCTION bench_build(p_tag int, p_n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    i int;
    t0 timestamptz;
BEGIN
    FOR i IN 0 .. p_n LOOP
        DELETE FROM tag_segment WHERE tag_id = p_tag;
        t0 := clock_timestamp();
        INSERT INTO tag_segment
            SELECT tag_id, wam.segment_agg(customer_id) FROM customer_tags
            WHERE tag_id = p_tag GROUP BY tag_id;
        IF i > 0 THEN
            INSERT INTO bench_run VALUES ('build ' || p_tag, 'wall', i,
                                          1000 * extract(epoch FROM clock_timestamp() - t0), NULL);
        END IF;
    END LOOP;
END $$;

-- One-line plan of a query (EXPLAIN without ANALYZE).
CREATE FUNCTION bench_explain_line(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_sql INTO j;
    RETURN bench_plan_line(j->0->'Plan');
END $$;

CREATE VIEW bench_stats AS
SELECT name || '/' || kind AS key, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY exec_ms) AS median_ms,
       min(exec_ms) AS min_ms, max(exec_ms) AS max_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY plan_ms) AS plan_ms
FROM bench_run GROUP BY name, kind;
SQL

# ------------------------------------------------------------------ data

log "loading customer_tags: $CUSTOMERS customers x 3 tags (25 % / 40 % / 8 %)"
t=$(now)
run_sql "CREATE UNLOGGED TABLE customer_tags (customer_id bigint NOT NULL, tag_id int NOT NULL)"
run_sql "INSERT INTO customer_tags
         SELECT id, tag FROM generate_series(0, $CUSTOMERS - 1) id, (VALUES (1), (2), (3)) t(tag)
         WHERE bench_has_tag(id, tag)"
LOAD_CT_MS=$(elapsed_ms "$t")
t=$(now)
run_sql "ALTER TABLE customer_tags ADD PRIMARY KEY (tag_id, customer_id)"
INDEX_BT_MS=$(elapsed_ms "$t")

log "loading customers(id, tags int[])"
t=$(now)
run_sql "CREATE UNLOGGED TABLE customers (id bigint NOT NULL, tags int[] NOT NULL)"
run_sql "INSERT INTO customers
         SELECT id, array_remove(ARRAY[CASE WHEN bench_has_tag(id, 1) THEN 1 END,
                                       CASE WHEN bench_has_tag(id, 2) THEN 2 END,
                                       CASE WHEN bench_has_tag(id, 3) THEN 3 END], NULL)
         FROM generate_series(0, $CUSTOMERS - 1) id"
LOAD_CU_MS=$(elapsed_ms "$t")
log "creating the GIN index on customers(tags)"
t=$(now)
run_sql "CREATE INDEX customers_tags_gin ON customers USING gin (tags)"
INDEX_GIN_MS=$(elapsed_ms "$t")

log "VACUUM ANALYZE"
run_sql "VACUUM (ANALYZE) customer_tags"
run_sql "VACUUM (ANALYZE) customers"

# ------------------------------------------------------------------ segment builds

run_sql "CREATE TABLE tag_segment (tag_id int PRIMARY KEY, members wam.segment NOT NULL)"
BUILD_PLAN=$(q "SELECT bench_explain_line('SELECT tag_id, wam.segment_agg(customer_id) FROM customer_tags WHERE tag_id = 2 GROUP BY tag_id')")
for tag in 1 2 3; do
    log "building the segment of tag $tag (1 warm-up + $NB measured builds)"
    run_sql "SELECT bench_build($tag, $NB)"
done
run_sql "VACUUM (ANALYZE) tag_segment"

# ------------------------------------------------------------------ sanity checks

log "checking the data"
declare -A CNT_CT CNT_CU CARD SIZE
while IFS=$'\t' read -r tag ct cu card size; do
    CNT_CT[$tag]=$ct; CNT_CU[$tag]=$cu; CARD[$tag]=$card; SIZE[$tag]=$size
done < <(q "SELECT t,
                   (SELECT count(*) FROM customer_tags WHERE tag_id = t),
                   (SELECT count(*) FROM customers WHERE tags @> ARRAY[t]),
                   (SELECT wam.segment_cardinality(members) FROM tag_segment WHERE tag_id = t),
                   (SELECT pg_column_size(members) FROM tag_segment WHERE tag_id = t)
            FROM generate_series(1, 3) t ORDER BY t")
for tag in 1 2 3; do
    if [ "${CNT_CT[$tag]}" != "${CNT_CU[$tag]}" ] || [ "${CNT_CT[$tag]}" != "${CARD[$tag]}" ]; then
        die "tag $tag: customer_tags has ${CNT_CT[$tag]} rows, customers ${CNT_CU[$tag]}, the segment ${CARD[$tag]} members"
    fi
done
TOAST_BYTES=$(q "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'tag_segment'::regclass")
INLINE_BYTES=$(q "SELECT pg_relation_size('tag_segment')")
# Out of line: the heap stays one page while the toast table holds the ~MB values.
[ "$TOAST_BYTES" -gt "${SIZE[2]}" ] || die "tag_segment's segments are not TOASTed (toast table: $TOAST_BYTES bytes)"

# ------------------------------------------------------------------ queries

SEG_A="SELECT wam.segment_andnot_cardinality(a.members & b.members, c.members) FROM tag_segment a, tag_segment b, tag_segment c WHERE a.tag_id = 1 AND b.tag_id = 2 AND c.tag_id = 3"
SEG_B="SELECT wam.segment_cardinality((a.members & b.members) - c.members) FROM tag_segment a, tag_segment b, tag_segment c WHERE a.tag_id = 1 AND b.tag_id = 2 AND c.tag_id = 3"
BT_SETOP="SELECT count(*) FROM (SELECT customer_id FROM customer_tags WHERE tag_id = 1 INTERSECT SELECT customer_id FROM customer_tags WHERE tag_id = 2 EXCEPT SELECT customer_id FROM customer_tags WHERE tag_id = 3) x"
BT_EXISTS="SELECT count(*) FROM customer_tags a WHERE a.tag_id = 1 AND EXISTS (SELECT 1 FROM customer_tags b WHERE b.tag_id = 2 AND b.customer_id = a.customer_id) AND NOT EXISTS (SELECT 1 FROM customer_tags c WHERE c.tag_id = 3 AND c.customer_id = a.customer_id)"
BT_GROUP="SELECT count(*) FROM (SELECT customer_id FROM customer_tags WHERE tag_id IN (1, 2, 3) GROUP BY customer_id HAVING bool_or(tag_id = 1) AND bool_or(tag_id = 2) AND NOT bool_or(tag_id = 3)) x"
GIN_Q="SELECT count(*) FROM customers WHERE tags @> '{1,2}' AND NOT tags @> '{3}'"

sqlstr() { printf "'%s'" "${1//\'/\'\'}"; }
bench() { # bench NAME SQL [SETTINGS-ARRAY-LITERAL]
    local settings=${3:-'{}'}
    log "query $1: warm-up, then $N runs (or $N_SLOW if the warm-up took > $SLOW_MS ms) under EXPLAIN ANALYZE and as many with clock_timestamp()"
    q "SELECT bench_query($(sqlstr "$1"), $(sqlstr "$2"), $N, $N_SLOW, $SLOW_MS, $(sqlstr "$settings")::text[])"
}

R_SEG_A=$(bench seg_andnot "$SEG_A")
R_SEG_B=$(bench seg_minus "$SEG_B")
R_BT_SETOP=$(bench bt_setop "$BT_SETOP")
R_BT_EXISTS=$(bench bt_exists "$BT_EXISTS")
R_BT_GROUP=$(bench bt_group "$BT_GROUP")

# The GIN query must use the GIN index; disable seq scans only if the planner won't.
GIN_DEFAULT_PLAN=$(q "SELECT bench_explain_line($(sqlstr "$GIN_Q"))")
GIN_SETTINGS='{}'
GIN_NOTE="the planner's own choice (no setting changed)"
if [[ $GIN_DEFAULT_PLAN != *"Bitmap Index Scan using customers_tags_gin"* ]]; then
    GIN_SETTINGS='{enable_seqscan,off}'
    GIN_NOTE="measured with enable_seqscan = off, because the planner's own choice was: $GIN_DEFAULT_PLAN (also measured, see below)"
    log "the planner does not pick the GIN index by itself; measuring it with enable_seqscan = off, and its own plan separately"
    R_GIN_DEFAULT=$(bench gin_default "$GIN_Q")
fi
R_GIN=$(bench gin "$GIN_Q" "$GIN_SETTINGS")

# ------------------------------------------------------------------ results

for v in R_SEG_B R_BT_SETOP R_BT_EXISTS R_BT_GROUP R_GIN ${R_GIN_DEFAULT+R_GIN_DEFAULT}; do
    [ "${!v}" = "$R_SEG_A" ] || die "counts differ: wam.segment_andnot_cardinality says $R_SEG_A, ${v#R_} says ${!v} (SEG_B=$R_SEG_B BT_SETOP=$R_BT_SETOP BT_EXISTS=$R_BT_EXISTS BT_GROUP=$R_BT_GROUP GIN=$R_GIN)"
done
EXPECTED=$(q "SELECT count(*) FROM generate_series(0, $CUSTOMERS - 1) id
              WHERE bench_has_tag(id, 1) AND bench_has_tag(id, 2) AND NOT bench_has_tag(id, 3)")
[ "$EXPECTED" = "$R_SEG_A" ] || die "all methods say $R_SEG_A but recomputing the hash says $EXPECTED"
log "all methods agree: $R_SEG_A customers"

# MED[name/explain], MED[name/wall], MED[build T/wall] ...
declare -A MED MIN MAX PLANMS NRUN
while IFS=$'\t' read -r key n med mn mx pl; do
    MED[$key]=$med; MIN[$key]=$mn; MAX[$key]=$mx; PLANMS[$key]=$pl; NRUN[$key]=$n
done < <(q "SELECT key, n, median_ms, min_ms, max_ms, coalesce(plan_ms::text, '') FROM bench_stats")
declare -A PLAN BUF
while IFS=$'\t' read -r name plan buf; do
    PLAN[$name]=$plan; BUF[$name]=$buf
done < <(q "SELECT name, bench_plan_line(plan->0->'Plan'),
                   concat_ws(' / ', 'hit ' || (buffers->0->'Plan'->>'Shared Hit Blocks'),
                             'read ' || (buffers->0->'Plan'->>'Shared Read Blocks'),
                             'temp ' || ((buffers->0->'Plan'->>'Temp Read Blocks')::bigint
                                         + (buffers->0->'Plan'->>'Temp Written Blocks')::bigint))
            FROM bench_plan")

fmt_ms() { awk -v x="$1" 'BEGIN { if (x < 10) printf "%.2f ms", x; else if (x < 100) printf "%.1f ms", x; else printf "%.0f ms", x }'; }
fmt_x() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; if (r < 10) printf "%.1f×", r; else printf "%.0f×", r }'; }
fmt_mb() { awk -v x="$1" 'BEGIN { printf "%.2f MB", x / 1048576 }'; }
fmt_int() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }
# cell NAME: "**median** (N = n)" of the EXPLAIN Execution Time
cell() { printf '**%s** (N = %s)' "$(fmt_ms "${MED[$1/explain]}")" "${NRUN[$1/explain]}"; }

# Best segment form / best btree form (by median Execution Time).
SEG_BEST=seg_andnot; gt "${MED[seg_andnot/explain]}" "${MED[seg_minus/explain]}" && SEG_BEST=seg_minus
SEG_OTHER=seg_minus; [ "$SEG_BEST" = seg_minus ] && SEG_OTHER=seg_andnot
BT_BEST=bt_setop
for f in bt_exists bt_group; do gt "${MED[$BT_BEST/explain]}" "${MED[$f/explain]}" && BT_BEST=$f; done
declare -A LABEL=(
    [seg_andnot]='`wam.segment_andnot_cardinality(a & b, c)`'
    [seg_minus]='`wam.segment_cardinality((a & b) - c)`'
    [bt_setop]='INTERSECT / EXCEPT'
    [bt_exists]='EXISTS / NOT EXISTS'
    [bt_group]='GROUP BY … HAVING bool_or'
    [gin]='`tags @> {1,2} AND NOT tags @> {3}`'
    [gin_default]='GIN query, planner default plan'
)
declare -A SQLTEXT=(
    [seg_andnot]=$SEG_A [seg_minus]=$SEG_B [bt_setop]=$BT_SETOP [bt_exists]=$BT_EXISTS
    [bt_group]=$BT_GROUP [gin]=$GIN_Q
)

SEG_TOTAL=$((SIZE[1] + SIZE[2] + SIZE[3]))
BT_BYTES=$(q "SELECT pg_total_relation_size('customer_tags')")
BT_IDX_BYTES=$(q "SELECT pg_indexes_size('customer_tags')")
GIN_IDX_BYTES=$(q "SELECT pg_relation_size('customers_tags_gin')")
CU_BYTES=$(q "SELECT pg_table_size('customers')")
BUILD_SUM=$(awk -v a="${MED[build 1/wall]}" -v b="${MED[build 2/wall]}" -v c="${MED[build 3/wall]}" 'BEGIN { print a + b + c }')
TARGET_SIZE=$((13 * 1048576 / 10))

PG_VERSION=$(q "SELECT version()")
EXT_VERSION=$(q "SELECT extversion FROM pg_extension WHERE extname = 'pg_wamarketing'")
ROARING_VERSION=$(dpkg-query -W -f '${Version}' libroaring-dev 2>/dev/null || echo unknown)
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
MEM_TOTAL=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
GIT_REV=$(git -C "$WAM_REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$GIT_REV" != unknown ] && [ -n "$(git -C "$WAM_REPO_DIR" status --porcelain -- src sql Makefile 2>/dev/null)" ]; then
    GIT_REV="$GIT_REV + uncommitted changes in src/"
fi
# Cost of a page fault (first touch of fresh anonymous memory): large in some VMs, and
# every MB a query mallocs anew from the kernel costs 256 of them.
PAGE_FAULT_US=$(python3 - <<'PY' 2>/dev/null || echo unknown
import mmap, time
n, best = 64 << 20, None
for _ in range(3):
    m = mmap.mmap(-1, n)
    t = time.perf_counter()
    for i in range(0, n, 4096):
        m[i] = 1
    d = time.perf_counter() - t
    m.close()
    best = d if best is None or d < best else best
print("%.2f" % (best / (n / 4096) * 1e6))
PY
)
TOTAL_S=$((SECONDS - START))
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

seg_med=${MED[$SEG_BEST/explain]}
gin_med=${MED[gin/explain]}
bt_med=${MED[$BT_BEST/explain]}
target_ms_ok=$(awk -v x="$seg_med" 'BEGIN { print (x <= 5) ? "✅ met" : "❌ missed" }')
target_sz_ok=$([ "${SIZE[2]}" -le "$TARGET_SIZE" ] && echo "✅ met" || echo "❌ missed")

report() {
    local t name bt_list="" f
    echo "# wam.segment benchmark: (tag 1 AND tag 2) EXCLUDE tag 3"
    echo
    echo "$(fmt_int "$CUSTOMERS") customers (ids 0 … $(fmt_int $((CUSTOMERS - 1)))); tag 1 = 25 %, tag 2 = 40 %, tag 3 = 8 % of them,"
    echo "chosen by \`(hashint8extended(id, tag) & 2^63-1) % 100 < pct\` (identical on every run)."
    echo "Times are server side: the median \`Execution Time\` of \`EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON)\`"
    echo "over N runs (N = $N, or N = $N_SLOW for queries slower than $SLOW_MS ms), after one warm-up run (warm cache:"
    echo "every table and index fits in shared_buffers). The segments are read from \`tag_segment\` and"
    echo "detoasted on every run (no CTE, no caching)."
    echo
    echo "| measurement | wam.segment | plain SQL (btree) | plain SQL (GIN int[]) | speed-up vs GIN |"
    echo "|---|---|---|---|---|"
    echo "| 3-tag count, median (fastest form) | $(cell "$SEG_BEST") ${LABEL[$SEG_BEST]} | $(cell "$BT_BEST") ${LABEL[$BT_BEST]} | $(cell gin) | **$(fmt_x "$gin_med" "$seg_med")** (segment vs btree: $(fmt_x "$bt_med" "$seg_med")) |"
    for f in bt_setop bt_exists bt_group; do
        [ "$f" = "$BT_BEST" ] && continue
        bt_list+="${bt_list:+; }$(fmt_ms "${MED[$f/explain]}") ${LABEL[$f]}"
    done
    echo "| 3-tag count, median (other forms) | $(fmt_ms "${MED[$SEG_OTHER/explain]}") ${LABEL[$SEG_OTHER]} | $bt_list | ${R_GIN_DEFAULT+$(fmt_ms "${MED[gin_default/explain]}") planner default plan} | $(fmt_x "$gin_med" "${MED[$SEG_OTHER/explain]}") |"
    echo "| min … max (fastest form) | $(fmt_ms "${MIN[$SEG_BEST/explain]}") … $(fmt_ms "${MAX[$SEG_BEST/explain]}") | $(fmt_ms "${MIN[$BT_BEST/explain]}") … $(fmt_ms "${MAX[$BT_BEST/explain]}") | $(fmt_ms "${MIN[gin/explain]}") … $(fmt_ms "${MAX[gin/explain]}") | |"
    echo "| cross-check: median statement time incl. planning (plpgsql \`EXECUTE … INTO\` + clock_timestamp()) | $(fmt_ms "${MED[$SEG_BEST/wall]}") | $(fmt_ms "${MED[$BT_BEST/wall]}") | $(fmt_ms "${MED[gin/wall]}") | $(fmt_x "${MED[gin/wall]}" "${MED[$SEG_BEST/wall]}") |"
    echo "| result (must be equal; checked) | $(fmt_int "$R_SEG_A") | $(fmt_int "$R_BT_EXISTS") | $(fmt_int "$R_GIN") | equal ✅ |"
    echo "| plan | ${PLAN[$SEG_BEST]} | ${PLAN[$BT_BEST]} | ${PLAN[gin]} | |"
    echo "| shared buffers touched by one run (hit / read / temp) | ${BUF[$SEG_BEST]} | ${BUF[$BT_BEST]} | ${BUF[gin]} | |"
    echo "| stored size of the tag data | $(fmt_mb "$SEG_TOTAL") (3 segments) | $(fmt_mb "$BT_BYTES") (heap + btree $(fmt_mb "$BT_IDX_BYTES")) | $(fmt_mb "$GIN_IDX_BYTES") GIN index (+ $(fmt_mb "$CU_BYTES") customers heap) | GIN index is $(fmt_x "$GIN_IDX_BYTES" "$SEG_TOTAL") larger |"
    echo "| build | $(fmt_ms "$BUILD_SUM") (3 segments from customer_tags, sum of medians) | $(fmt_ms "$INDEX_BT_MS") (CREATE btree, N = 1) | $(fmt_ms "$INDEX_GIN_MS") (CREATE GIN, N = 1) | |"
    echo
    echo "GIN plan: $GIN_NOTE."
    echo
    echo "Target, 3-tag count from stored segments ≤ 5 ms median: $target_ms_ok ($(fmt_ms "$seg_med") with ${LABEL[$SEG_BEST]}, $(fmt_ms "${MED[$SEG_OTHER/explain]}") with ${LABEL[$SEG_OTHER]})."
    echo
    echo "## Segments"
    echo
    echo "| tag | density | members | stored size \`pg_column_size(members)\` | bytes / member | build median (N = $NB) | build min … max |"
    echo "|---|---|---|---|---|---|---|"
    for t in 1 2 3; do
        echo "| $t | $(q "SELECT bench_tag_pct($t)") % | $(fmt_int "${CARD[$t]}") | $(fmt_int "${SIZE[$t]}") B ($(fmt_mb "${SIZE[$t]}")) | $(awk -v s="${SIZE[$t]}" -v c="${CARD[$t]}" 'BEGIN { printf "%.3f", s / c }') | $(fmt_ms "${MED[build $t/wall]}") | $(fmt_ms "${MIN[build $t/wall]}") … $(fmt_ms "${MAX[build $t/wall]}") |"
    done
    echo
    echo "Build: \`INSERT INTO tag_segment SELECT tag_id, wam.segment_agg(customer_id) FROM customer_tags WHERE tag_id = \$t GROUP BY tag_id\`,"
    echo "timed with clock_timestamp() around the INSERT (aggregate + TOAST write) after one warm-up build; plan: $BUILD_PLAN."
    echo
    echo "Target, the 40 % segment ≤ 1.3 MB: $target_sz_ok ($(fmt_int "${SIZE[2]}") B = $(fmt_mb "${SIZE[2]}"))."
    echo "The segments are stored out of line: tag_segment's heap is $(fmt_int "$INLINE_BYTES") B, its TOAST table $(fmt_int "$TOAST_BYTES") B (STORAGE external: uncompressed)."
    echo
    echo "## All measurements"
    echo
    echo "| query | N | median | min | max | planning (median) | cross-check: statement time, median | plan |"
    echo "|---|---|---|---|---|---|---|---|"
    for name in seg_andnot seg_minus bt_setop bt_exists bt_group ${R_GIN_DEFAULT+gin_default} gin; do
        echo "| $name: ${LABEL[$name]} | ${NRUN[$name/explain]} | $(fmt_ms "${MED[$name/explain]}") | $(fmt_ms "${MIN[$name/explain]}") | $(fmt_ms "${MAX[$name/explain]}") | $(fmt_ms "${PLANMS[$name/explain]}") | $(fmt_ms "${MED[$name/wall]}") | ${PLAN[$name]} |"
    done
    echo
    echo "Queries:"
    echo
    for name in seg_andnot seg_minus bt_setop bt_exists bt_group gin; do
        echo "- $name: \`${SQLTEXT[$name]}\`"
    done
    echo
    echo "## Setup"
    echo
    echo "- machine: $(nproc) CPUs ($CPU_MODEL), $MEM_TOTAL RAM, $(uname -sr); load average (1/5/15 min) $LOADAVG_START at the start, $LOADAVG_END at the end (other work on the machine adds noise); a page fault (first touch of fresh memory) costs $PAGE_FAULT_US µs per 4 KiB page"
    echo "- $PG_VERSION"
    echo "- pg_wamarketing $EXT_VERSION (git $GIT_REV), CRoaring (libroaring-dev) $ROARING_VERSION"
    echo "- server settings: ${SETTINGS[*]} (+ fsync = off, synchronous_commit = off, full_page_writes = off from test/lib/cluster.sh); search_path = public, wam"
    echo "- customer_tags ($(fmt_int "${CNT_CT[1]}") + $(fmt_int "${CNT_CT[2]}") + $(fmt_int "${CNT_CT[3]}") rows, PRIMARY KEY (tag_id, customer_id)) and customers ($(fmt_int "$CUSTOMERS") rows, GIN (tags)) are UNLOGGED (faster load; reading them is the same as reading logged tables); tag_segment is a normal table."
    echo "  Load (INSERT … SELECT generate_series): customer_tags $(fmt_ms "$LOAD_CT_MS"), customers $(fmt_ms "$LOAD_CU_MS"); then VACUUM (ANALYZE) of every table."
    echo "- generated by \`bash test/bench_segment.sh\` in $((TOTAL_S / 60))m$(printf '%02d' $((TOTAL_S % 60)))s on $(date -u '+%Y-%m-%d %H:%M UTC')"
}

REPORT=$(report)
printf '%s\n' "$REPORT"
if [ -n "$OUT" ]; then
    mkdir -p "$(dirname "$OUT")"
    printf '%s\n' "$REPORT" >"$OUT"
    log "wrote $OUT"
else
    log "non-default settings: report not written (set WAM_BENCH_OUT=FILE to write it)"
fi
log "done in $((SECONDS - START))s"
