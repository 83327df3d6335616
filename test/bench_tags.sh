#!/usr/bin/env bash
# test/bench_tags.sh — tagging at 10 million customers: pg_wamarketing vs plain SQL.
#
#     bash test/run build && bash test/bench_tags.sh
#
# Starts its own throwaway PostgreSQL 15 cluster (test/lib/cluster.sh; always stopped at
# exit), loads 10,000,000 customers (ids 1 … 10,000,000) and 60 tags whose densities are
# spread geometrically from 0.1 % to 45 % (four of them set to exactly 8 %, 10 %, 25 %
# and 40 %), membership by a deterministic hash, attached with wam.attach_tag(); then copies
# the same memberships into a plain table
#     plain_customer_tag(customer_id, tag_id, attached_at, expires_at, source,
#                        PRIMARY KEY (customer_id, tag_id)) + index (tag_id, customer_id)
# and measures, each side against the other:
#   1. attach one tag to one customer, each its own committed transaction (N = 200)
#      vs INSERT … ON CONFLICT DO NOTHING; plus where the time of one wam.attach goes, and
#      the WAL of one attach right after a checkpoint with full_page_writes = on
#   2. wam.retag_customers(1,000,000 customers, add one tag, remove another) (N = 3, alternating the
#      direction) vs INSERT … SELECT … ON CONFLICT DO NOTHING + DELETE … WHERE … IN (…)
#   3. a three-tag count from wam.tag_members() (tags of 25 %, 40 %, 8 %) vs
#      INTERSECT / EXCEPT and EXISTS / NOT EXISTS on plain_customer_tag (counts must agree)
#   4. wam.import_csv() of a 1,000,000-row CSV (5 % malformed phones, 2 % duplicates, 1-3
#      tags per row, a few unknown tags) vs COPY into a staging table + INSERT customers +
#      INSERT memberships (skipped with a message when wam.import_csv is not installed)
# Times are server side: clock_timestamp() before the statement and after its COMMIT, in a
# plpgsql procedure that commits between runs; WAL bytes are pg_current_wal_insert_lsn()
# deltas over the same span.  Medians over N runs (N printed).
#
# Before anything is timed, the script waits (up to WAM_BENCH_WAIT_MAX seconds) while
# another benchmark or fuzzer runs (pgrep -f 'bench_|fuzz_': test/bench_*.sh, fuzz_*), and says in the
# report when the machine was busy anyway.
#
# Prints a Markdown report on stdout (progress goes to stderr) and writes it to
# bench/results/tags.md (the committed "latest results").  Takes ~15-25 minutes.
#
# Needs the extension built and installed (`bash test/run build`); when it is not
# installed at all, this script runs the same deps + build steps itself (as root).
#
# Knobs (environment):
#   WAM_BENCH_CUSTOMERS=10000000  number of customers (ids 1 .. N; at most 40,000,000)
#   WAM_BENCH_N_ATTACH=200        measured single-customer attaches (after 5 warm-up ones)
#   WAM_BENCH_N_RETAG=3           measured retags
#   WAM_BENCH_AUDIENCE=1000000    customers in the retag segment
#   WAM_BENCH_N=15                measured runs of the 3-tag count (after one warm-up) ...
#   WAM_BENCH_N_SLOW=5            ... or this many when the warm-up took more than
#   WAM_BENCH_SLOW_MS=500         this many milliseconds (the plain SQL forms take seconds)
#   WAM_BENCH_IMPORT_ROWS=1000000 rows of the imported CSV
#   WAM_BENCH_WAIT_MAX=900        seconds to wait for other benchmarks / fuzzers to finish
#   WAM_BENCH_OUT=FILE            where to write the report; default bench/results/tags.md,
#                                 but only with the default values of the size knobs above
#   WAM_BENCH_PORT=55490          port of the private cluster (unix socket only)
#   WAM_BENCH_BUILD=1             run deps + make + make install first, even if installed
#   WAM_KEEP_CLUSTER_DIR=1        keep the cluster's data directory and server.log
# (SC2016: dpkg-query's ${Version} and SQL $1 are not shell expansions; SC2119:
# build_install takes optional make arguments, none here.)
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
N_ATTACH=${WAM_BENCH_N_ATTACH:-200}
N_RETAG=${WAM_BENCH_N_RETAG:-3}
AUDIENCE=${WAM_BENCH_AUDIENCE:-1000000}
N=${WAM_BENCH_N:-15}
N_SLOW=${WAM_BENCH_N_SLOW:-5}
SLOW_MS=${WAM_BENCH_SLOW_MS:-500}
IMPORT_ROWS=${WAM_BENCH_IMPORT_ROWS:-1000000}
WAIT_MAX=${WAM_BENCH_WAIT_MAX:-900}
N_WARM_ATTACH=5   # unrecorded attaches first (plan caches, first touch)
N_PROFILE=50      # attaches timed step by step
N_FPW=50          # attaches right after a checkpoint with full_page_writes = on
for v in CUSTOMERS N_ATTACH N_RETAG AUDIENCE N N_SLOW SLOW_MS IMPORT_ROWS; do
    case ${!v} in
        '' | *[!0-9]* | 0) echo "error: $v must be a positive integer, got '${!v}'" >&2; exit 2 ;;
    esac
done
case $WAIT_MAX in '' | *[!0-9]*) echo "error: WAM_BENCH_WAIT_MAX must be a number" >&2; exit 2 ;; esac
[ "$CUSTOMERS" -le 40000000 ] || { echo "error: at most 40,000,000 customers (phone numbering)" >&2; exit 2; }
[ "$AUDIENCE" -lt "$CUSTOMERS" ] || { echo "error: WAM_BENCH_AUDIENCE must be below WAM_BENCH_CUSTOMERS" >&2; exit 2; }
[ "$IMPORT_ROWS" -le 9000000 ] || { echo "error: at most 9,000,000 import rows (phone numbering)" >&2; exit 2; }
if [ -n "${WAM_BENCH_OUT:-}" ]; then
    OUT=$WAM_BENCH_OUT
elif [ "$CUSTOMERS" = 10000000 ] && [ "$N_ATTACH" = 200 ] && [ "$N_RETAG" = 3 ] &&
    [ "$AUDIENCE" = 1000000 ] && [ "$N" = 15 ] && [ "$N_SLOW" = 5 ] && [ "$SLOW_MS" = 500 ] &&
    [ "$IMPORT_ROWS" = 1000000 ]; then
    OUT=$WAM_REPO_DIR/bench/results/tags.md
else
    OUT=""
fi

# shellcheck source=test/lib/bench.sh
. "$WAM_REPO_DIR/test/lib/bench.sh"
bench_begin bench_tags
bench_require_extension

# ------------------------------------------------------------------ cluster

# Always our own cluster with benchmark settings, never one inherited from test/run.
unset WAM_CLUSTER_RUNNING
export WAM_TEST_PORT=${WAM_BENCH_PORT:-55490}
SETTINGS=(
    shared_buffers=4GB
    max_wal_size=8GB
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
export PGDATABASE=$DB

q() { wam_psql -qAt -F $'\t' -c "$1"; }              # one query, unaligned, tab-separated
run_sql() { wam_psql -q -c "$1" >/dev/null; }
now() { date +%s.%N; }
elapsed_ms() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
sqlstr() { printf "'%s'" "${1//\'/\'\'}"; }
seq_lit() { printf '{%s}' "$(seq -s, 1 "$1")"; }     # seq_lit 3 -> {1,2,3}

# ------------------------------------------------------------------ helpers in the bench db

run_sql "CREATE EXTENSION pg_wamarketing"
wam_psql -q >/dev/null <<'SQL'
CREATE TABLE bench_run (name text, run int, ms float8, wal_bytes numeric, result text);
CREATE TABLE bench_seg (name text PRIMARY KEY, s wam.segment NOT NULL);
CREATE TABLE bench_ids (name text PRIMARY KEY, ids bigint[] NOT NULL);
CREATE TABLE bench_profile (kind text, run int, step int, label text, ms float8);

-- bench_each(name, sql, args, warm): runs sql once per element of args ($1 = the element),
-- each run its own committed transaction; records the time from before the statement to
-- after its COMMIT (clock_timestamp()) and the WAL written meanwhile
-- (pg_current_wal_insert_lsn() delta) for every run after the first `warm` ones.  The
-- result is the statement's first column (SELECT) or its row count (anything else).
CREATE PROCEDURE bench_each(p_name text, p_sql text, p_args bigint[], p_warm int)
LANGUAGE plpgsql AS $$
DECLARE
    i int;
    nrows bigint;
    t0 timestamptz;
    t1 timestamptz;
    l0 pg_lsn;
    l1 pg_lsn;
    res text;
    is_query boolean := p_sql ~* '^\s*(select|with|values)\M';
    ms float8[] := '{}';
    wal numeric[] := '{}';
    rs text[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_args, 1), 0) LOOP
        l0 := pg_current_wal_insert_lsn();
        t0 := clock_timestamp();
        IF is_query THEN
            EXECUTE p_sql INTO res USING p_args[i];
        ELSE
            EXECUTE p_sql USING p_args[i];
            GET DIAGNOSTICS nrows = ROW_COUNT;
            res := nrows::text;
        END IF;
        COMMIT;
        t1 := clock_timestamp();
        l1 := pg_current_wal_insert_lsn();
        IF i > p_warm THEN
            ms := ms || (1000 * extract(epoch FROM t1 - t0))::float8;
            wal := wal || (l1 - l0);
            rs := rs || res;
        END IF;
    END LOOP;
    INSERT INTO bench_run
    SELECT p_name, u.r, u.m, u.w, u.x FROM unnest(ms, wal, rs) WITH ORDINALITY AS u(m, w, x, r);
    COMMIT;
END $$;

CREATE VIEW bench_stats AS
SELECT name, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95_ms,
       min(ms) AS min_ms, max(ms) AS max_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY wal_bytes) AS median_wal,
       max(wal_bytes) AS max_wal,
       string_agg(DISTINCT result, ' / ') AS results
FROM bench_run GROUP BY name;

-- The steps of wam.attach_tag(), one by one with clock_timestamp() between them, through the
-- SQL-callable internal functions, for a segment of new members (no expiry refresh): a
-- diagnostic of what each step costs as a statement of its own.  wam.attach itself runs the
-- same steps in one C call (src/tag_attach.c).  It performs a real attach_tag (same writes).
CREATE FUNCTION bench_attach_steps(p_tag text, who wam.segment) RETURNS float8[]
LANGUAGE plpgsql AS $$
DECLARE
    ts timestamptz[] := ARRAY[clock_timestamp()];
    id integer;
    expiry timestamptz;
    held wam.segment;
    fresh wam.segment;
    n bigint;
BEGIN
    id := wam.tag_id(p_tag, true);
    ts := ts || clock_timestamp();
    PERFORM wam_internal.check_customers(who);
    ts := ts || clock_timestamp();
    expiry := now() + (SELECT t.default_ttl FROM wam.tag t WHERE t.tag_id = id);
    ts := ts || clock_timestamp();
    PERFORM wam_internal.lock_chunks(id, who);
    ts := ts || clock_timestamp();
    IF to_regprocedure('wam_internal.chunk_members(integer, wam.segment)') IS NOT NULL THEN
        held := wam_internal.chunk_members(id, who);
    ELSE
        held := wam.tag_members(p_tag);
    END IF;
    ts := ts || clock_timestamp();
    fresh := who OPERATOR(wam.-) held;
    ts := ts || clock_timestamp();
    n := wam_internal.membership_insert(id, fresh, expiry, 'api');
    ts := ts || clock_timestamp();
    IF to_regprocedure('wam_internal.chunks_add(integer, wam.segment)') IS NOT NULL THEN
        PERFORM wam_internal.chunks_add(id, fresh);
    ELSE
        INSERT INTO wam.tag_chunk AS c (tag_id, chunk, members)
        SELECT id, f.chunk, f.members FROM wam.segment_chunks(fresh) f ORDER BY f.chunk
        ON CONFLICT (tag_id, chunk) DO UPDATE SET members = c.members OPERATOR(wam.|) EXCLUDED.members;
    END IF;
    ts := ts || clock_timestamp();
    UPDATE wam.tag t SET last_attached_at = now()
    WHERE t.tag_id IN (SELECT t2.tag_id FROM wam.tag t2
                       WHERE t2.tag_id = id
                         AND (t2.last_attached_at IS NULL OR t2.last_attached_at < now() - interval '1 hour')
                       FOR NO KEY UPDATE SKIP LOCKED);
    ts := ts || clock_timestamp();
    IF n <> wam.segment_cardinality(who) THEN
        RAISE EXCEPTION 'bench_attach_steps: % of % customers already held the tag', wam.segment_cardinality(who) - n, wam.segment_cardinality(who);
    END IF;
    RETURN ARRAY(SELECT (1000 * extract(epoch FROM ts[i + 1] - ts[i]))::float8
                 FROM generate_series(1, array_length(ts, 1) - 1) i ORDER BY i);
END $$;

CREATE FUNCTION bench_step_labels() RETURNS text[] LANGUAGE sql STABLE
RETURN ARRAY['wam.tag_id(tag)', 'wam_internal.check_customers(who) (are they all customers?)',
             'expiry (tag default_ttl)', 'wam_internal.lock_chunks(tag, who)',
             CASE WHEN to_regprocedure('wam_internal.chunk_members(integer, wam.segment)') IS NOT NULL
                  THEN 'wam_internal.chunk_members(tag, who) (the blocks of the tag that who touches)'
                  ELSE 'wam.tag_members(tag) (the whole tag bitmap)' END,
             'who - held',
             'wam_internal.membership_insert (C: heap + primary key)',
             'wam_internal.chunks_add(tag, fresh) (upsert of the 8 KB wam.tag_chunk blocks)',
             'UPDATE wam.tag last_attached_at (SKIP LOCKED)'];

CREATE PROCEDURE bench_attach_profile(p_tag text, p_ids bigint[], p_warm int)
LANGUAGE plpgsql AS $$
DECLARE
    labels text[] := bench_step_labels() || 'COMMIT'::text;
    d float8[];
    t0 timestamptz;
    i int;
BEGIN
    FOR i IN 1 .. array_length(p_ids, 1) LOOP
        d := bench_attach_steps(p_tag, wam.segment(ARRAY[p_ids[i]]));
        t0 := clock_timestamp();
        COMMIT;
        d := d || (1000 * extract(epoch FROM clock_timestamp() - t0))::float8;
        IF i > p_warm THEN
            INSERT INTO bench_profile SELECT 'attach', i - p_warm, s, labels[s], d[s] FROM generate_series(1, array_length(d, 1)) s;
        END IF;
    END LOOP;
    COMMIT;
END $$;

-- One retag done by hand: the steps of wam.attach_tag(add, who), then wam.detach_tag(remove, who)
-- as a whole, then COMMIT.
CREATE PROCEDURE bench_retag_profile(p_add text, p_remove text)
LANGUAGE plpgsql AS $$
DECLARE
    who wam.segment := (SELECT s FROM bench_seg WHERE name = 'audience');
    labels text[] := (SELECT array_agg('attach: ' || l) FROM unnest(bench_step_labels()) l)
                     || 'wam.detach_tag(remove, who) (lock_chunks, members, C membership_delete, chunks_remove)'::text
                     || 'COMMIT'::text;
    d float8[];
    t0 timestamptz;
BEGIN
    d := bench_attach_steps(p_add, who);
    t0 := clock_timestamp();
    PERFORM wam.detach_tag(p_remove, who);
    d := d || (1000 * extract(epoch FROM clock_timestamp() - t0))::float8;
    t0 := clock_timestamp();
    COMMIT;
    d := d || (1000 * extract(epoch FROM clock_timestamp() - t0))::float8;
    INSERT INTO bench_profile SELECT 'retag', 1, s, labels[s], d[s] FROM generate_series(1, array_length(d, 1)) s;
    COMMIT;
END $$;

-- Plain SQL retag: the same work as wam.retag_customers(audience, ARRAY[add], ARRAY[remove]).
CREATE FUNCTION bench_plain_retag(p_add int, p_remove int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    added bigint;
    removed bigint;
BEGIN
    INSERT INTO plain_customer_tag (customer_id, tag_id, attached_at, expires_at, source)
    SELECT a.customer_id, p_add, now(), NULL, 'api' FROM plain_audience a
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    DELETE FROM plain_customer_tag
    WHERE tag_id = p_remove AND customer_id IN (SELECT a.customer_id FROM plain_audience a);
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN format('+%s -%s', added, removed);
END $$;

-- Compact one-line plan of a query (EXPLAIN without ANALYZE).
CREATE FUNCTION bench_plan_line(p json) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s text := p->>'Node Type';
    c json;
    kids text[] := '{}';
BEGIN
    IF p->>'Strategy' = 'Hashed' THEN
        s := 'Hash' || s;
    END IF;
    IF p->>'Partial Mode' IN ('Partial', 'Finalize') THEN
        s := (p->>'Partial Mode') || ' ' || s;
    END IF;
    IF coalesce(p->>'Join Type', 'Inner') NOT IN ('Inner') THEN
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
    FOR c IN SELECT json_array_elements(p->'Plans') LOOP
        kids := kids || bench_plan_line(c);
    END LOOP;
    IF cardinality(kids) > 0 THEN
        s := s || '(' || array_to_string(kids, ', ') || ')';
    END IF;
    RETURN s;
END $$;
CREATE FUNCTION bench_explain_line(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_sql INTO j;
    RETURN bench_plan_line(j->0->'Plan');
END $$;
SQL

# ------------------------------------------------------------------ setup

wait_idle "the setup"
SETUP_START=$SECONDS
declare -A SETUP_S
step_start() { STEP_T=$(now); log "$1"; }
step_end() { SETUP_S[$1]=$(awk -v a="$STEP_T" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'); }

step_start "loading $CUSTOMERS customers into wam.customer (INSERT … SELECT generate_series; statement trigger)"
run_sql "INSERT INTO wam.customer (id, phone, name)
         SELECT id, '852' || (50000000 + id), 'Customer ' || id FROM (SELECT generate_series(1, $CUSTOMERS) id) s"
run_sql "SELECT setval('wam.customer_id_seq', $CUSTOMERS)"
step_end customers

# 60 tags, densities geometric from 0.1 % to 45 %; the four tags nearest 8 %, 10 %, 25 %
# and 40 % get exactly those densities (used by the measurements below).
wam_psql -q >/dev/null <<'SQL'
CREATE TABLE bench_tag AS
SELECT t, 't_' || t AS name, 0.001 * power(450, (t - 1) / 59.0) AS density, NULL::text AS role
FROM generate_series(1, 60) t;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES (0.08, 'q3 (8 %)'), (0.10, 'attach_tag (10 %)'), (0.25, 'q1 (25 %)'), (0.40, 'q2 (40 %)')) v(d, role) LOOP
        UPDATE bench_tag SET density = r.d, role = r.role
        WHERE t = (SELECT t FROM bench_tag WHERE role IS NULL ORDER BY abs(density - r.d), t LIMIT 1);
    END LOOP;
END $$;
ALTER TABLE bench_tag ADD COLUMN threshold int;
UPDATE bench_tag SET threshold = round(density * 1048576);
SELECT wam.create_tag(name, (ARRAY['spending power', 'interest', 'purchase stage', 'source channel', 'engagement'])[1 + t % 5])
FROM bench_tag ORDER BY t;
SELECT wam.create_tag('retag_a', 'engagement'), wam.create_tag('retag_b', 'engagement');
SQL
tag_of_role() { q "SELECT name FROM bench_tag WHERE role LIKE '$1%'"; }
T_ATTACH=$(tag_of_role attach)
T_Q1=$(tag_of_role q1)
T_Q2=$(tag_of_role q2)
T_Q3=$(tag_of_role q3)

# (generate_series in the target list: streamed; in FROM it is materialized, 5x slower)
step_start "attaching 60 tags with wam.attach_tag(tag, (SELECT wam.segment_agg(id) FROM (SELECT generate_series …) s WHERE hash < density))"
while IFS=$'\t' read -r t name thr; do
    run_sql "SELECT wam.attach_tag('$name', (SELECT wam.segment_agg(id) FROM (SELECT generate_series(1, $CUSTOMERS) id) s
                                         WHERE (hashint8(id * 61 + $t) & 1048575) < $thr))"
    if [ $((t % 10)) = 0 ]; then log "  $t tags attached"; fi
done < <(q "SELECT t, name, threshold FROM bench_tag ORDER BY t")
step_end tags

step_start "the retag audience: $AUDIENCE customers by hash, holding retag_b"
run_sql "INSERT INTO bench_seg
         SELECT 'audience', wam.segment_agg(id) FROM (
             SELECT id FROM (SELECT generate_series(1, $CUSTOMERS) id) s
             ORDER BY hashint8(id * 61 + 997), id LIMIT $AUDIENCE) x"
run_sql "SELECT wam.attach_tag('retag_b', (SELECT s FROM bench_seg WHERE name = 'audience'))"
step_end audience

step_start "plain SQL tables: plain_customer, plain_customer_tag (INSERT … SELECT, then indexes), plain_audience"
wam_psql -q >/dev/null <<SQL
CREATE TABLE plain_customer (LIKE wam.customer INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE SEQUENCE plain_customer_id_seq OWNED BY plain_customer.id;
ALTER TABLE plain_customer ALTER COLUMN id SET DEFAULT nextval('plain_customer_id_seq');
INSERT INTO plain_customer SELECT * FROM wam.customer;
SELECT setval('plain_customer_id_seq', $CUSTOMERS);
ALTER TABLE plain_customer ADD PRIMARY KEY (id), ADD UNIQUE (phone);

CREATE TABLE plain_customer_tag (
    customer_id bigint NOT NULL,
    tag_id int NOT NULL,
    attached_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    source text NOT NULL DEFAULT 'api'
);
INSERT INTO plain_customer_tag SELECT customer_id, tag_id, attached_at, expires_at, source FROM wam.customer_tag;
ALTER TABLE plain_customer_tag ADD PRIMARY KEY (customer_id, tag_id);
CREATE INDEX plain_customer_tag_tag ON plain_customer_tag (tag_id, customer_id);

CREATE TABLE plain_audience AS SELECT m AS customer_id FROM wam.segment_members((SELECT s FROM bench_seg WHERE name = 'audience')) m;
ALTER TABLE plain_audience ADD PRIMARY KEY (customer_id);
SQL
step_end plain

step_start "VACUUM (ANALYZE) + CHECKPOINT"
run_sql "VACUUM (ANALYZE)"
run_sql "CHECKPOINT"
step_end vacuum
SETUP_TOTAL_S=$((SECONDS - SETUP_START))
log "setup done in ${SETUP_TOTAL_S}s"

# ------------------------------------------------------------------ sanity checks

log "checking the data"
MEMBERSHIPS=$(q "SELECT count(*) FROM wam.customer_tag")
PLAIN_MEMBERSHIPS=$(q "SELECT count(*) FROM plain_customer_tag")
BITMAP_MEMBERSHIPS=$(q "SELECT sum(wam.segment_cardinality(members)) FROM wam.tag_chunk WHERE tag_id <> 0")
{ [ "$MEMBERSHIPS" = "$PLAIN_MEMBERSHIPS" ] && [ "$MEMBERSHIPS" = "$BITMAP_MEMBERSHIPS" ]; } ||
    die "memberships differ: wam.customer_tag $MEMBERSHIPS, plain_customer_tag $PLAIN_MEMBERSHIPS, wam.tag_chunk bitmaps $BITMAP_MEMBERSHIPS"
ALL_CUSTOMERS=$(q "SELECT wam.segment_cardinality(wam.all_customers())")
[ "$ALL_CUSTOMERS" = "$CUSTOMERS" ] || die "wam.all_customers() has $ALL_CUSTOMERS members, expected $CUSTOMERS"
AUDIENCE_REAL=$(q "SELECT wam.segment_cardinality(s) FROM bench_seg WHERE name = 'audience'")
[ "$AUDIENCE_REAL" = "$AUDIENCE" ] || die "the audience has $AUDIENCE_REAL customers, expected $AUDIENCE"
# The hash gives each tag the expected share (tolerance: 5 standard deviations + 1).
BAD_TAGS=$(q "SELECT string_agg(format('%s: %s members, expected ~%s', b.name, m.n, round(b.density * $CUSTOMERS)), '; ')
              FROM bench_tag b, LATERAL (SELECT wam.segment_cardinality(wam.tag_members(b.name)) n) m
              WHERE abs(m.n - b.density * $CUSTOMERS) > 5 * sqrt(b.density * $CUSTOMERS) + 1")
[ -z "$BAD_TAGS" ] || die "tags with unexpected member counts: $BAD_TAGS"
TAG_TABLE=$(q "SELECT string_agg(format('%s %s%%', name, round(100 * density, 2)), ', ' ORDER BY t) FROM bench_tag")
declare -A TAG_MEMBERS TAG_ID
while IFS=$'\t' read -r name id n; do
    TAG_ID[$name]=$id; TAG_MEMBERS[$name]=$n
done < <(q "SELECT t.name, t.tag_id, wam.segment_cardinality(wam.tag_members(t.name)) FROM wam.tag t")
WAM_PKEY=$(q "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'wam.customer_tag'::regclass AND contype = 'p'")
SIZES=$(q "SELECT format('wam.customer_tag %s MB (+ indexes %s MB), wam.tag_chunk %s MB; plain_customer_tag %s MB (+ indexes %s MB)',
                  pg_table_size('wam.customer_tag') / 1048576, pg_indexes_size('wam.customer_tag') / 1048576,
                  pg_total_relation_size('wam.tag_chunk') / 1048576,
                  pg_table_size('plain_customer_tag') / 1048576, pg_indexes_size('plain_customer_tag') / 1048576)")

# ------------------------------------------------------------------ 3. three-tag count

wait_idle "the measurements"
LOADAVG_MEASURE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

SEG_Q="SELECT wam.segment_andnot_cardinality(wam.tag_members('$T_Q1') OPERATOR(wam.&) wam.tag_members('$T_Q2'), wam.tag_members('$T_Q3'))"
A=${TAG_ID[$T_Q1]}; B=${TAG_ID[$T_Q2]}; C=${TAG_ID[$T_Q3]}
BT_SETOP="SELECT count(*) FROM (SELECT customer_id FROM plain_customer_tag WHERE tag_id = $A INTERSECT SELECT customer_id FROM plain_customer_tag WHERE tag_id = $B EXCEPT SELECT customer_id FROM plain_customer_tag WHERE tag_id = $C) x"
BT_EXISTS="SELECT count(*) FROM plain_customer_tag a WHERE a.tag_id = $A AND EXISTS (SELECT 1 FROM plain_customer_tag b WHERE b.tag_id = $B AND b.customer_id = a.customer_id) AND NOT EXISTS (SELECT 1 FROM plain_customer_tag c WHERE c.tag_id = $C AND c.customer_id = a.customer_id)"

count_bench() { # count_bench NAME SQL: one warm-up run, then N (or N_SLOW) measured runs
    local warm_ms n
    run_sql "CALL bench_each($(sqlstr "warm $1"), $(sqlstr "$2"), '{0}', 0)"
    warm_ms=$(q "SELECT ms FROM bench_run WHERE name = $(sqlstr "warm $1")")
    n=$N
    awk -v x="$warm_ms" -v s="$SLOW_MS" 'BEGIN { exit !(x > s) }' && n=$N_SLOW
    log "  $1: warm-up $(printf '%.0f' "$warm_ms") ms, now $n runs"
    run_sql "CALL bench_each($(sqlstr "$1"), $(sqlstr "$2"), '$(seq_lit "$n")', 0)"
}
log "3. three-tag count: $T_Q1 AND $T_Q2 EXCLUDE $T_Q3"
count_bench q_wam "$SEG_Q"
count_bench q_setop "$BT_SETOP"
count_bench q_exists "$BT_EXISTS"
# the three wam.tag_members() calls of the wam query on their own
count_bench "m_$T_Q1" "SELECT wam.segment_cardinality(wam.tag_members('$T_Q1'))"
count_bench "m_$T_Q2" "SELECT wam.segment_cardinality(wam.tag_members('$T_Q2'))"
count_bench "m_$T_Q3" "SELECT wam.segment_cardinality(wam.tag_members('$T_Q3'))"
note_busy "the 3-tag count"
PLAN_SETOP=$(q "SELECT bench_explain_line($(sqlstr "$BT_SETOP"))")
PLAN_EXISTS=$(q "SELECT bench_explain_line($(sqlstr "$BT_EXISTS"))")
R_WAM=$(q "SELECT results FROM bench_stats WHERE name = 'q_wam'")
R_SETOP=$(q "SELECT results FROM bench_stats WHERE name = 'q_setop'")
R_EXISTS=$(q "SELECT results FROM bench_stats WHERE name = 'q_exists'")
R_HASH=$(q "SELECT count(*) FROM (SELECT generate_series(1, $CUSTOMERS) id) s
            WHERE (hashint8(id * 61 + $(q "SELECT t FROM bench_tag WHERE name = '$T_Q1'")) & 1048575) < $(q "SELECT threshold FROM bench_tag WHERE name = '$T_Q1'")
              AND (hashint8(id * 61 + $(q "SELECT t FROM bench_tag WHERE name = '$T_Q2'")) & 1048575) < $(q "SELECT threshold FROM bench_tag WHERE name = '$T_Q2'")
              AND NOT (hashint8(id * 61 + $(q "SELECT t FROM bench_tag WHERE name = '$T_Q3'")) & 1048575) < $(q "SELECT threshold FROM bench_tag WHERE name = '$T_Q3'")")
if [ "$R_WAM" != "$R_SETOP" ] || [ "$R_WAM" != "$R_EXISTS" ] || [ "$R_WAM" != "$R_HASH" ]; then
    die "3-tag counts differ: wam $R_WAM, INTERSECT/EXCEPT $R_SETOP, EXISTS/NOT EXISTS $R_EXISTS, recomputed from the hash $R_HASH"
fi
log "  all agree: $R_WAM customers"

# ------------------------------------------------------------------ 1. attach one customer

# Customers not holding the attach tag, in hash order (deterministic), enough for every loop.
N_IDS=$((N_WARM_ATTACH + N_ATTACH + 3 + N_PROFILE + N_FPW))
run_sql "INSERT INTO bench_ids
         SELECT 'attach', array_agg(id ORDER BY h, id) FROM (
             SELECT id, hashint8(id * 61 + 4242) h
             FROM (SELECT generate_series(1, $CUSTOMERS) id) g,
                  (SELECT wam.tag_members('$T_ATTACH') m) s
             WHERE (hashint8(id * 61 + 4242) & 1048575) < greatest(1, ceil(4.0 * $N_IDS * 1048576 / $CUSTOMERS))
               AND NOT wam.segment_has(s.m, id)
             ORDER BY h, id LIMIT $N_IDS) x"
[ "$(q "SELECT cardinality(ids) FROM bench_ids WHERE name = 'attach'")" = "$N_IDS" ] || die "could not pick $N_IDS customers without $T_ATTACH"
# CALL arguments cannot hold subqueries: pass the ids as an array literal.
ids() { sqlstr "$(q "SELECT ids[$1:$2] FROM bench_ids WHERE name = 'attach'")"; }
ATT_TID=${TAG_ID[$T_ATTACH]}
ATTACH_SQL="SELECT wam.attach_tag('$T_ATTACH', wam.segment(ARRAY[\$1]))"
PLAIN_ATTACH_SQL="INSERT INTO plain_customer_tag VALUES (\$1, $ATT_TID, now(), NULL, 'api') ON CONFLICT DO NOTHING"
lo=1; hi=$((N_WARM_ATTACH + N_ATTACH))
log "1. attach one customer to $T_ATTACH: $N_WARM_ATTACH warm-up + $N_ATTACH measured, each committed"
run_sql "CALL bench_each('attach_wam', $(sqlstr "$ATTACH_SQL"), $(ids $lo $hi), $N_WARM_ATTACH)"
run_sql "CALL bench_each('attach_plain', $(sqlstr "$PLAIN_ATTACH_SQL"), $(ids $lo $hi), $N_WARM_ATTACH)"
note_busy "the single attaches"
ATTACH_RESULTS=$(q "SELECT results FROM bench_stats WHERE name = 'attach_wam'")
PLAIN_ATTACH_RESULTS=$(q "SELECT results FROM bench_stats WHERE name = 'attach_plain'")
[ "$ATTACH_RESULTS" = 1 ] || die "wam.attach of one new customer returned '$ATTACH_RESULTS', expected 1 each time"
[ "$PLAIN_ATTACH_RESULTS" = 1 ] || die "the plain INSERT of one new membership inserted '$PLAIN_ATTACH_RESULTS' rows, expected 1 each time"

log "   where the time of one wam.attach goes: $N_PROFILE attaches step by step, and two baselines"
# the harness alone (EXECUTE + COMMIT), and the fixed cost of one membership_insert call
run_sql "CALL bench_each('noop', 'SELECT 1', '$(seq_lit $((3 + N_PROFILE)))', 3)"
run_sql "CALL bench_each('membership_insert_empty', 'SELECT wam_internal.membership_insert($ATT_TID, ''{}''::wam.segment, NULL, ''api'')', '$(seq_lit $((3 + N_PROFILE)))', 3)"
lo=$((hi + 1)); hi=$((hi + 3 + N_PROFILE))
run_sql "CALL bench_attach_profile('$T_ATTACH', $(ids $lo $hi), 3)"
ATTACH_CHUNKS=$(q "SELECT count(*) FROM wam.tag_chunk WHERE tag_id = $ATT_TID")
ATTACH_CHUNK_BYTES=$(q "SELECT pg_column_size(members) FROM wam.tag_chunk WHERE tag_id = $ATT_TID ORDER BY chunk LIMIT 1 OFFSET 1")
ATTACH_LANG=$(q "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = 'wam.attach_tag(text, wam.segment, interval, text)'::regprocedure")
ATTACH_SRC_OK=yes
if [ "$ATTACH_LANG" != c ]; then
    ATTACH_SRC=$(q "SELECT prosrc FROM pg_proc WHERE oid = 'wam.attach_tag(text, wam.segment, interval, text)'::regprocedure")
    for part in check_customers lock_chunks 'chunk_members|tag_members' membership_insert 'chunks_add|INSERT INTO wam.tag_chunk'; do
        grep -qE "$part" <<<"$ATTACH_SRC" || ATTACH_SRC_OK=no
    done
fi

log "   WAL of one attach right after a CHECKPOINT with full_page_writes = on ($N_FPW each)"
lo=$((hi + 1)); hi=$((hi + N_FPW))
run_sql "ALTER SYSTEM SET full_page_writes = on"
run_sql "SELECT pg_reload_conf()"
sleep 1
FPW_NOW=$(q "SHOW full_page_writes")
run_sql "CHECKPOINT"
run_sql "CALL bench_each('attach_wam_fpw', $(sqlstr "$ATTACH_SQL"), $(ids $lo $hi), 0)"
run_sql "CALL bench_each('attach_plain_fpw', $(sqlstr "$PLAIN_ATTACH_SQL"), $(ids $lo $hi), 0)"
run_sql "ALTER SYSTEM RESET full_page_writes"
run_sql "SELECT pg_reload_conf()"
sleep 1

# ------------------------------------------------------------------ 2. retag a million

log "2. retag $AUDIENCE customers: add one tag, remove another ($N_RETAG runs, alternating)"
RETAG_SQL="SELECT string_agg(format('%s +%s -%s', r.tag, r.added, r.removed), ', ' ORDER BY r.tag)
           FROM wam.retag_customers((SELECT s FROM bench_seg WHERE name = 'audience'),
                          CASE WHEN \$1 % 2 = 1 THEN ARRAY['retag_a'] ELSE ARRAY['retag_b'] END,
                          CASE WHEN \$1 % 2 = 1 THEN ARRAY['retag_b'] ELSE ARRAY['retag_a'] END) r"
RA=${TAG_ID[retag_a]}; RB=${TAG_ID[retag_b]}
PLAIN_RETAG_SQL="SELECT CASE WHEN \$1 % 2 = 1 THEN bench_plain_retag($RA, $RB) ELSE bench_plain_retag($RB, $RA) END"
# Shared-buffer hits and misses (misses = reads from the OS cache or disk) of the
# membership tables over the retags; each psql backend flushes its statistics at exit.
statio() { # statio TABLE -> "heap_hit heap_read idx_hit idx_read"
    q "SELECT concat_ws(' ', heap_blks_hit, heap_blks_read, coalesce(idx_blks_hit, 0), coalesce(idx_blks_read, 0))
       FROM pg_statio_all_tables WHERE relid = '$1'::regclass"
}
statio_delta() { # statio_delta BEFORE AFTER RUNS -> per run: "heap hit/read, index hit/read"
    awk -v b="$1" -v a="$2" -v n="$3" 'BEGIN { split(b, x, " "); split(a, y, " ");
        printf "heap %d hit / %d read, indexes %d hit / %d read", (y[1]-x[1])/n, (y[2]-x[2])/n, (y[3]-x[3])/n, (y[4]-x[4])/n }'
}
S0=$(statio wam.customer_tag)
run_sql "CALL bench_each('retag_wam', $(sqlstr "$RETAG_SQL"), '$(seq_lit "$N_RETAG")', 0)"
sleep 1
S1=$(statio wam.customer_tag)
P0=$(statio plain_customer_tag)
run_sql "CALL bench_each('retag_plain', $(sqlstr "$PLAIN_RETAG_SQL"), '$(seq_lit "$N_RETAG")', 0)"
sleep 1
P1=$(statio plain_customer_tag)
RETAG_BUF_WAM=$(statio_delta "$S0" "$S1" "$N_RETAG")
RETAG_BUF_PLAIN=$(statio_delta "$P0" "$P1" "$N_RETAG")
note_busy "the retags"
log "   one more retag, step by step"
if [ $((N_RETAG % 2)) = 1 ]; then
    run_sql "CALL bench_retag_profile('retag_b', 'retag_a')"
else
    run_sql "CALL bench_retag_profile('retag_a', 'retag_b')"
fi
RETAG_BAD=$(q "SELECT string_agg(result, '; ') FROM bench_run WHERE name = 'retag_wam'
               AND result NOT IN ('retag_a +$AUDIENCE -0, retag_b +0 -$AUDIENCE', 'retag_a +0 -$AUDIENCE, retag_b +$AUDIENCE -0')")
[ -z "$RETAG_BAD" ] || die "wam.retag did not move exactly $AUDIENCE customers: $RETAG_BAD"
PLAIN_RETAG_BAD=$(q "SELECT string_agg(result, '; ') FROM bench_run WHERE name = 'retag_plain' AND result <> '+$AUDIENCE -$AUDIENCE'")
[ -z "$PLAIN_RETAG_BAD" ] || die "the plain retag did not move exactly $AUDIENCE customers: $PLAIN_RETAG_BAD"

# ------------------------------------------------------------------ 4. CSV import

log "4. generating the $IMPORT_ROWS-row CSV (server side, string_agg)"
# Row k: phone +852 7xxxxxxx (none of them exists: customers are 852 5xxxxxxx/6xxxxxxx) in
# three spellings; k % 20 = 3: a malformed phone (5 %); k % 50 = 0: the phone of row k-1
# again (2 %); 1-3 existing tags, quoted; k % 1000 = 501: plus an unknown tag (0.1 %;
# wam.import_csv refuses such a row, the plain import ignores the unknown name).
wam_psql -q >/dev/null <<'SQL'
CREATE FUNCTION bench_csv_phone(k bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN k % 20 = 3 THEN (ARRAY['abc' || k, '12345', '+852 1234', '', '+852 7000 0000 0000 0000', '852-70A0-' || k])[1 + (k / 20) % 6]
        WHEN n % 3 = 0 THEN '+852 ' || substr(n::text, 1, 4) || ' ' || substr(n::text, 5)
        WHEN n % 3 = 1 THEN '+852' || n
        ELSE '+852-' || substr(n::text, 1, 4) || '-' || substr(n::text, 5)
    END
    FROM (SELECT 70000000 + CASE WHEN k % 50 = 0 THEN k - 1 ELSE k END AS n) x
$$;
CREATE FUNCTION bench_csv_tags(k bigint) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT array_remove(ARRAY['t_' || (1 + (k * 7) % 60),
                              CASE WHEN k % 3 >= 1 THEN 't_' || (1 + (k * 13 + 5) % 60) END,
                              CASE WHEN k % 3 = 2 THEN 't_' || (1 + (k * 29 + 11) % 60) END], NULL)
$$;
CREATE TABLE bench_csv (data text);
ALTER TABLE bench_csv ALTER COLUMN data SET STORAGE EXTERNAL;
SQL
run_sql "INSERT INTO bench_csv
         SELECT 'phone,tags,name' || E'\n' || string_agg(
             concat_ws(',', bench_csv_phone(k),
                       '\"' || array_to_string(bench_csv_tags(k) || CASE WHEN k % 1000 = 501 THEN 'no_such_tag_' || (k % 7) END, ',') || '\"',
                       'Customer ' || k),
             E'\n' ORDER BY k) || E'\n'
         FROM (SELECT generate_series(1, $IMPORT_ROWS)::bigint k) g"
CSV_BYTES=$(q "SELECT octet_length(data) FROM bench_csv")
CSV_FILE=$WAM_CLUSTER_DIR/import.csv
# (psql adds a newline after the value, which already ends with one: drop it)
q "SELECT data FROM bench_csv" | head -c -1 >"$CSV_FILE"
chmod 644 "$CSV_FILE"
[ "$(wc -l <"$CSV_FILE")" -ge $((IMPORT_ROWS + 1)) ] || die "the CSV file has $(wc -l <"$CSV_FILE") lines, expected $((IMPORT_ROWS + 1))"
CSV_SAMPLE=$(q "SELECT string_agg(l, E'\n') FROM (SELECT unnest(string_to_array(left(data, 2000), E'\n')) l FROM bench_csv LIMIT 6) x")
EXP_MALFORMED=$(q "SELECT count(*) FROM generate_series(1, $IMPORT_ROWS) k WHERE k % 20 = 3")
EXP_DUPS=$(q "SELECT count(*) FROM generate_series(1, $IMPORT_ROWS) k WHERE k % 50 = 0")
EXP_UNKNOWN=$(q "SELECT count(*) FROM generate_series(1, $IMPORT_ROWS) k WHERE k % 1000 = 501")
EXP_NEW=$((IMPORT_ROWS - EXP_MALFORMED - EXP_DUPS))
# memberships: the distinct existing tags of the first row of each valid phone
EXP_TAGS=$(q "SELECT count(DISTINCT (k, t)) FROM generate_series(1, $IMPORT_ROWS) k, unnest(bench_csv_tags(k)) t
              WHERE k % 20 <> 3 AND k % 50 <> 0")
EXP_TAGS_UNKNOWN=$(q "SELECT count(DISTINCT (k, t)) FROM generate_series(1, $IMPORT_ROWS) k, unnest(bench_csv_tags(k)) t
                      WHERE k % 1000 = 501")

HAVE_IMPORT=$(q "SELECT count(*) FROM pg_proc WHERE pronamespace = 'wam'::regnamespace AND proname IN ('import_csv', 'normalize_phone', 'phone_problem', 'csv_rows')
                 HAVING count(DISTINCT proname) = 4")
IMPORT_NOTE=""
if [ -n "$HAVE_IMPORT" ]; then
    log "   wam.import_csv of $CSV_BYTES bytes"
    run_sql "CALL bench_each('import_wam', 'SELECT row_to_json(r)::text FROM wam.import_csv((SELECT data FROM bench_csv)) r', '{0}', 0)"
    note_busy "wam.import_csv"
    WAM_CREATED=$(q "SELECT count(*) FROM wam.customer WHERE id > $CUSTOMERS")
    WAM_IMPORT_TAGS=$(q "SELECT count(*) FROM wam.customer_tag WHERE customer_id > $CUSTOMERS")
    # Expected: malformed phones and rows naming an unknown tag fail; repeats are duplicates.
    WAM_IMPORT_GOT=$(q "SELECT concat_ws(' ', r->>'rows_read', r->>'created', r->>'duplicates', r->>'failed')
                        FROM (SELECT result::json r FROM bench_run WHERE name = 'import_wam') x")
    WAM_IMPORT_EXP="$IMPORT_ROWS $((EXP_NEW - EXP_UNKNOWN)) $EXP_DUPS $((EXP_MALFORMED + EXP_UNKNOWN))"
    if [ "$WAM_IMPORT_GOT" != "$WAM_IMPORT_EXP" ] || [ "$WAM_CREATED" != $((EXP_NEW - EXP_UNKNOWN)) ] ||
        [ "$WAM_IMPORT_TAGS" != $((EXP_TAGS - EXP_TAGS_UNKNOWN)) ]; then
        IMPORT_NOTE="⚠ wam.import_csv's report (rows_read created duplicates failed) is '$WAM_IMPORT_GOT', expected '$WAM_IMPORT_EXP'; customers created $WAM_CREATED (expected $((EXP_NEW - EXP_UNKNOWN))), memberships $WAM_IMPORT_TAGS (expected $((EXP_TAGS - EXP_TAGS_UNKNOWN)))"
        log "WARNING: $IMPORT_NOTE"
    fi
else
    IMPORT_NOTE="wam.import_csv (with wam.csv_rows, wam.normalize_phone, wam.phone_problem) is not in the installed extension: the wam side of the import was skipped"
    log "   SKIPPED the wam side: $IMPORT_NOTE"
fi

log "   plain SQL: COPY into a staging table + INSERT customers + INSERT memberships"
PLAIN_IMPORT_SQL="SELECT bench_plain_import($(sqlstr "$CSV_FILE"))"
wam_psql -q >/dev/null <<'SQL'
-- A hand-written import: COPY into a temp table, strip spaces/dashes/parentheses/+ from
-- the phone and check it with a regex, the first row per phone wins, new customers only
-- (ON CONFLICT DO NOTHING), memberships for the tag names that exist (others ignored).
CREATE FUNCTION bench_plain_import(p_file text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    n_read bigint;
    n_bad bigint;
    n_dup bigint;
    n_new bigint;
    n_tags bigint;
BEGIN
    CREATE TEMP TABLE staging (phone text, tags text, name text) ON COMMIT DROP;
    EXECUTE format('COPY staging FROM %L (FORMAT csv, HEADER true)', p_file);
    GET DIAGNOSTICS n_read = ROW_COUNT;
    CREATE TEMP TABLE staged ON COMMIT DROP AS
    SELECT line, phone, tags, name, ok,
           ok AND row_number() OVER (PARTITION BY ok, phone ORDER BY line) = 1 AS first
    FROM (SELECT line, phone, tags, name, coalesce(phone ~ '^[1-9][0-9]{7,14}$', false) AS ok
          FROM (SELECT row_number() OVER () AS line, regexp_replace(phone, '[\s()+-]', '', 'g') AS phone,
                       tags, name
                FROM staging) r) v;
    SELECT count(*) FILTER (WHERE NOT ok), count(*) FILTER (WHERE ok AND NOT first)
    INTO n_bad, n_dup FROM staged;
    INSERT INTO plain_customer (phone, name)
    SELECT s.phone, s.name FROM staged s WHERE s.first ORDER BY s.line
    ON CONFLICT (phone) DO NOTHING;
    GET DIAGNOSTICS n_new = ROW_COUNT;
    INSERT INTO plain_customer_tag (customer_id, tag_id, attached_at, expires_at, source)
    SELECT DISTINCT c.id, t.tag_id, now(), NULL::timestamptz, 'import'
    FROM staged s
    JOIN plain_customer c ON c.phone = s.phone
    CROSS JOIN LATERAL unnest(string_to_array(s.tags, ',')) AS x(tag)
    JOIN wam.tag t ON t.name = btrim(x.tag)
    WHERE s.first
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_tags = ROW_COUNT;
    RETURN json_build_object('rows_read', n_read, 'created', n_new, 'duplicates', n_dup,
                             'failed', n_bad, 'memberships', n_tags)::text;
END $$;
SQL
run_sql "CALL bench_each('import_plain', $(sqlstr "$PLAIN_IMPORT_SQL"), '{0}', 0)"
note_busy "the plain import"
PLAIN_IMPORT_RESULT=$(q "SELECT result FROM bench_run WHERE name = 'import_plain'")
PLAIN_IMPORT_GOT=$(q "SELECT concat_ws(' ', r->>'rows_read', r->>'created', r->>'duplicates', r->>'failed', r->>'memberships')
                      FROM (SELECT result::json r FROM bench_run WHERE name = 'import_plain') x")
[ "$PLAIN_IMPORT_GOT" = "$IMPORT_ROWS $EXP_NEW $EXP_DUPS $EXP_MALFORMED $EXP_TAGS" ] ||
    die "the plain import's counts (rows_read created duplicates failed memberships) are '$PLAIN_IMPORT_GOT', expected '$IMPORT_ROWS $EXP_NEW $EXP_DUPS $EXP_MALFORMED $EXP_TAGS'"

log "checking the tag index (wam.verify_tag_index)"
VERIFY=$(q "SELECT string_agg(tag, ', ') FROM wam.verify_tag_index() WHERE NOT ok")
[ -z "$VERIFY" ] || die "wam.verify_tag_index() reports a mismatch for: $VERIFY"

# ------------------------------------------------------------------ results

declare -A MED P95 MIN MAX WAL MAXWAL NRUN RES
while IFS=$'\t' read -r name n med p95 mn mx wal maxwal res; do
    MED[$name]=$med; P95[$name]=$p95; MIN[$name]=$mn; MAX[$name]=$mx; WAL[$name]=$wal
    MAXWAL[$name]=$maxwal; NRUN[$name]=$n; RES[$name]=$res
done < <(q "SELECT name, n, median_ms, p95_ms, min_ms, max_ms, median_wal, max_wal, coalesce(results, '') FROM bench_stats")

fmt_ms() { awk -v x="$1" 'BEGIN { if (x < 10) printf "%.2f ms", x; else if (x < 100) printf "%.1f ms", x; else if (x < 10000) printf "%.0f ms", x; else printf "%.1f s", x / 1000 }'; }
fmt_s() { awk -v x="$1" 'BEGIN { printf "%.1f s", x / 1000 }'; }
fmt_bytes() { awk -v x="$1" 'BEGIN { if (x < 10240) printf "%.0f B", x; else if (x < 10485760) printf "%.1f KB", x / 1024; else printf "%.1f MB", x / 1048576 }'; }
fmt_x() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; if (r < 10) printf "%.1f×", r; else printf "%.0f×", r }'; }
fmt_int() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
# rel WAM PLAIN [faster slower]: "3.2× faster" when WAM < PLAIN, else "1.5× slower"
rel() {
    awk -v a="$1" -v b="$2" -v f="${3:-faster}" -v sl="${4:-slower}" 'BEGIN {
        if (a <= 0 || b <= 0) { print "–"; exit }
        r = (a < b) ? b / a : a / b; w = (a < b) ? f : sl
        if (r < 10) printf "%.1f× %s", r, w; else printf "%.0f× %s", r, w }'
}
ok() { if le "$1" "$2"; then echo "✅ met"; else echo "❌ missed"; fi; }

Q_BEST=q_setop; le "${MED[q_exists]}" "${MED[q_setop]}" && Q_BEST=q_exists
Q_OTHER=q_exists; [ "$Q_BEST" = q_exists ] && Q_OTHER=q_setop
declare -A QLABEL=([q_setop]='INTERSECT / EXCEPT' [q_exists]='EXISTS / NOT EXISTS')
declare -A QPLAN=([q_setop]=$PLAN_SETOP [q_exists]=$PLAN_EXISTS)

PROFILE=$(q "SELECT step, label, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY ms), count(*)
             FROM bench_profile WHERE kind = 'attach' GROUP BY step, label ORDER BY step")
PROFILE_TOTAL=$(q "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) FROM (SELECT run, sum(ms) s FROM bench_profile WHERE kind = 'attach' GROUP BY run) x")
RETAG_PROFILE=$(q "SELECT step, label, ms FROM bench_profile WHERE kind = 'retag' ORDER BY step")
RETAG_PROFILE_TOTAL=$(q "SELECT sum(ms) FROM bench_profile WHERE kind = 'retag'")

PG_VERSION=$(q "SELECT version()")
EXT_VERSION=$(q "SELECT extversion FROM pg_extension WHERE extname = 'pg_wamarketing'")
ROARING_VERSION=$(dpkg-query -W -f '${Version}' libroaring-dev 2>/dev/null || echo unknown)
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
MEM_TOTAL=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
GIT_REV=$(git -C "$WAM_REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$GIT_REV" != unknown ] && [ -n "$(git -C "$WAM_REPO_DIR" status --porcelain -- src sql Makefile 2>/dev/null)" ]; then
    GIT_REV="$GIT_REV + uncommitted changes in src/"
fi
MALLOC_ENV=$(env | grep -E '^(MALLOC_|GLIBC_TUNABLES=)' | tr '\n' ' ' | sed 's/ $//' || true)
TOTAL_S=$((SECONDS - START))
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

report() {
    local step label med p95 _cnt imp_ms
    echo "# Tagging benchmark: pg_wamarketing vs plain SQL at $(fmt_int "$CUSTOMERS") customers"
    echo
    echo "$(fmt_int "$CUSTOMERS") customers, 60 tags (densities 0.1 % … 45 %), $(fmt_int "$MEMBERSHIPS") memberships in"
    echo "\`wam.customer_tag\` ($WAM_PKEY) + \`wam.tag_chunk\` bitmaps, and the same memberships in \`plain_customer_tag\`"
    echo "(PRIMARY KEY (customer_id, tag_id) + index (tag_id, customer_id)). Times are server side, from before the"
    echo "statement to after its COMMIT (clock_timestamp() in a plpgsql procedure that commits between runs); WAL is the"
    echo "\`pg_current_wal_insert_lsn()\` delta over the same span (with full_page_writes = off, i.e. without full-page"
    echo "images, except in the row marked FPW). Medians over N runs."
    echo
    if [ "${#BUSY_NOTES[@]}" -gt 0 ]; then
        echo "**⚠ The machine was busy with other heavy work during part of this run; numbers may be skewed:**"
        printf -- '- %s\n' "${BUSY_NOTES[@]}"
        echo
    fi
    echo "| measurement | N | wam | plain SQL | wam vs plain | target | met? |"
    echo "|---|---|---|---|---|---|---|"
    echo "| 1. attach one tag ($T_ATTACH, 10 %) to one customer, own transaction: median / p95 | ${NRUN[attach_wam]} | **$(fmt_ms "${MED[attach_wam]}")** / $(fmt_ms "${P95[attach_wam]}") | $(fmt_ms "${MED[attach_plain]}") / $(fmt_ms "${P95[attach_plain]}") (INSERT … ON CONFLICT DO NOTHING) | $(rel "${MED[attach_wam]}" "${MED[attach_plain]}") | ≤ 1 ms median | $(ok "${MED[attach_wam]}" 1) |"
    echo "| 1. WAL per attach: median (max) | ${NRUN[attach_wam]} | **$(fmt_bytes "${WAL[attach_wam]}")** ($(fmt_bytes "${MAXWAL[attach_wam]}")) | $(fmt_bytes "${WAL[attach_plain]}") ($(fmt_bytes "${MAXWAL[attach_plain]}")) | $(rel "${WAL[attach_wam]}" "${WAL[attach_plain]}" less more) | ≤ 64 KB | $(ok "${WAL[attach_wam]}" 65536) |"
    echo "| 1. FPW: WAL per attach right after a CHECKPOINT, full_page_writes = $FPW_NOW: median (max); time median | ${NRUN[attach_wam_fpw]} | $(fmt_bytes "${WAL[attach_wam_fpw]}") ($(fmt_bytes "${MAXWAL[attach_wam_fpw]}")); $(fmt_ms "${MED[attach_wam_fpw]}") | $(fmt_bytes "${WAL[attach_plain_fpw]}") ($(fmt_bytes "${MAXWAL[attach_plain_fpw]}")); $(fmt_ms "${MED[attach_plain_fpw]}") | $(rel "${WAL[attach_wam_fpw]}" "${WAL[attach_plain_fpw]}" less more) | ≤ 64 KB | $(ok "${WAL[attach_wam_fpw]}" 65536) |"
    echo "| 2. retag $(fmt_int "$AUDIENCE") customers: add one tag, remove another: median (min … max) | ${NRUN[retag_wam]} | **$(fmt_s "${MED[retag_wam]}")** ($(fmt_s "${MIN[retag_wam]}") … $(fmt_s "${MAX[retag_wam]}")) | $(fmt_s "${MED[retag_plain]}") ($(fmt_s "${MIN[retag_plain]}") … $(fmt_s "${MAX[retag_plain]}")) | $(rel "${MED[retag_wam]}" "${MED[retag_plain]}") | ≤ 3 s | $(ok "${MED[retag_wam]}" 3000) |"
    echo "| 2. retag: counts per run; WAL median | ${NRUN[retag_wam]} | ${RES[retag_wam]}; $(fmt_bytes "${WAL[retag_wam]}") | ${RES[retag_plain]}; $(fmt_bytes "${WAL[retag_plain]}") | $(rel "${WAL[retag_wam]}" "${WAL[retag_plain]}" less more) | | |"
    echo "| 2. retag: shared buffers of the membership table per run (8 KB blocks; read = not in shared_buffers) | ${NRUN[retag_wam]} | $RETAG_BUF_WAM | $RETAG_BUF_PLAIN | | | |"
    echo "| 3. count ($T_Q1 AND $T_Q2) EXCLUDE $T_Q3 (25 % / 40 % / 8 %): median (min … max) | ${NRUN[q_wam]} / ${NRUN[$Q_BEST]} | **$(fmt_ms "${MED[q_wam]}")** ($(fmt_ms "${MIN[q_wam]}") … $(fmt_ms "${MAX[q_wam]}")) | $(fmt_ms "${MED[$Q_BEST]}") ($(fmt_ms "${MIN[$Q_BEST]}") … $(fmt_ms "${MAX[$Q_BEST]}")) ${QLABEL[$Q_BEST]}; ${QLABEL[$Q_OTHER]} $(fmt_ms "${MED[$Q_OTHER]}") (N = ${NRUN[$Q_OTHER]}) | $(rel "${MED[q_wam]}" "${MED[$Q_BEST]}") | ≤ 10 ms | $(ok "${MED[q_wam]}" 10) |"
    echo "| 3. of which the three \`wam.tag_members()\` alone: median | ${NRUN[m_$T_Q1]} | $T_Q1 $(fmt_ms "${MED[m_$T_Q1]}"), $T_Q2 $(fmt_ms "${MED[m_$T_Q2]}"), $T_Q3 $(fmt_ms "${MED[m_$T_Q3]}") | | | | |"
    echo "| 3. count result (must be equal; checked, also against the hash) | | $(fmt_int "$R_WAM") | $(fmt_int "$R_SETOP") / $(fmt_int "$R_EXISTS") | equal ✅ | | |"
    if [ -n "$HAVE_IMPORT" ]; then
        imp_ms=${MED[import_wam]}
        echo "| 4. import $(fmt_int "$IMPORT_ROWS") CSV rows ($(fmt_bytes "$CSV_BYTES")) | 1 | **$(fmt_s "$imp_ms")** | $(fmt_s "${MED[import_plain]}") (COPY + INSERT, regex check only) | $(rel "$imp_ms" "${MED[import_plain]}") | ≤ 60 s | $(ok "$imp_ms" 60000) |"
        echo "| 4. import report | | \`${RES[import_wam]}\`; customers created $(fmt_int "$WAM_CREATED"), memberships $(fmt_int "$WAM_IMPORT_TAGS") | \`$PLAIN_IMPORT_RESULT\` | expected: wam created $(fmt_int $((EXP_NEW - EXP_UNKNOWN))), duplicates $(fmt_int "$EXP_DUPS"), failed $(fmt_int $((EXP_MALFORMED + EXP_UNKNOWN))) ($(fmt_int "$EXP_MALFORMED") bad phones + $(fmt_int "$EXP_UNKNOWN") rows with an unknown tag), memberships $(fmt_int $((EXP_TAGS - EXP_TAGS_UNKNOWN))); plain created $(fmt_int "$EXP_NEW"), memberships $(fmt_int "$EXP_TAGS") (ignores unknown tags) | | |"
    else
        echo "| 4. import $(fmt_int "$IMPORT_ROWS") CSV rows ($(fmt_bytes "$CSV_BYTES")) | 1 | **skipped**: not installed | $(fmt_s "${MED[import_plain]}") (COPY + INSERT, regex check only) | | ≤ 60 s | ⏭ not run |"
        echo "| 4. import report | | — | \`$PLAIN_IMPORT_RESULT\` | expected: created $(fmt_int "$EXP_NEW"), duplicates $(fmt_int "$EXP_DUPS"), failed $(fmt_int "$EXP_MALFORMED"), memberships $(fmt_int "$EXP_TAGS") | | |"
    fi
    echo "| setup: customers, 60 tags attached, plain copy, VACUUM | 1 | $(fmt_int "$SETUP_TOTAL_S") s in total: customers ${SETUP_S[customers]} s, 60 × wam.attach ${SETUP_S[tags]} s, audience ${SETUP_S[audience]} s | plain tables + indexes ${SETUP_S[plain]} s | | | |"
    echo
    [ -n "$IMPORT_NOTE" ] && { echo "Import: $IMPORT_NOTE."; echo; }
    echo "## Where the time of one wam.attach goes"
    echo
    if [ "$ATTACH_LANG" = c ]; then
        echo "\`wam.attach\` runs its steps in one C call (src/tag_attach.c). Below, the same steps run one by one as"
        echo "statements of their own, through the SQL-callable internal functions, with clock_timestamp() between them"
        echo "(\`bench_attach_steps\`): what each step costs when issued as a statement, so their sum is above the time of"
        echo "\`wam.attach\` in the table above. One new customer each, $N_PROFILE attaches after 3 warm-up ones, tag $T_ATTACH with"
        echo "$(fmt_int "${TAG_MEMBERS[$T_ATTACH]:-?}") members in $ATTACH_CHUNKS chunks of ~$(fmt_bytes "$ATTACH_CHUNK_BYTES") each."
    else
        echo "The steps of \`wam.attach\` run one by one with clock_timestamp() between them (\`bench_attach_steps\`, a copy"
        echo "of its body; one new customer each, $N_PROFILE attaches after 3 warm-up ones, tag $T_ATTACH with $(fmt_int "${TAG_MEMBERS[$T_ATTACH]:-?}") members"
        echo "in $ATTACH_CHUNKS chunks of ~$(fmt_bytes "$ATTACH_CHUNK_BYTES") each)."
    fi
    [ "$ATTACH_SRC_OK" = yes ] || echo "**Note: wam.attach no longer contains all the steps copied here; this breakdown may be stale.**"
    echo
    echo "| step | median | p95 |"
    echo "|---|---|---|"
    while IFS=$'\t' read -r step label med p95 _cnt; do
        echo "| $step. $label | $(fmt_ms "$med") | $(fmt_ms "$p95") |"
    done <<<"$PROFILE"
    echo "| total (median of the per-attach sums) | $(fmt_ms "$PROFILE_TOTAL") | |"
    echo
    echo "The same for one retag of the $(fmt_int "$AUDIENCE") customers (done by hand, N = 1, after the measured retags; step 10 is the real \`wam.detach\`):"
    echo
    echo "| step | time |"
    echo "|---|---|"
    while IFS=$'\t' read -r step label med; do
        echo "| $step. $label | $(fmt_ms "$med") |"
    done <<<"$RETAG_PROFILE"
    echo "| total | $(fmt_ms "$RETAG_PROFILE_TOTAL") |"
    echo
    echo "Baselines (N = ${NRUN[noop]}, each its own transaction, same harness as the measurements): \`SELECT 1\` + COMMIT"
    echo "$(fmt_ms "${MED[noop]}") median; \`SELECT wam_internal.membership_insert(tag, '{}', NULL, 'api')\` (inserts nothing) + COMMIT"
    echo "$(fmt_ms "${MED[membership_insert_empty]}") median: the fixed cost of one membership_insert call, whatever the number of rows."
    echo
    echo "## Details"
    echo
    echo "- tags: $TAG_TABLE; plus retag_a / retag_b for the retag"
    echo "  (membership of tag t: \`(hashint8(id * 61 + t) & 1048575) < round(density * 2^20)\`)"
    echo "- sizes after setup: $SIZES"
    echo "- 1: \`$ATTACH_SQL\` vs \`$PLAIN_ATTACH_SQL\`, \$1 = a customer not holding $T_ATTACH (a different one each run, hash order); $N_WARM_ATTACH warm-up runs first; min … max: wam $(fmt_ms "${MIN[attach_wam]}") … $(fmt_ms "${MAX[attach_wam]}"), plain $(fmt_ms "${MIN[attach_plain]}") … $(fmt_ms "${MAX[attach_plain]}")"
    echo "- 2: \`wam.retag_customers(audience, ARRAY['retag_a'], ARRAY['retag_b'])\` then the other way round, alternately; the audience: $(fmt_int "$AUDIENCE") customers by hash, all holding exactly one of the two; plain: \`INSERT INTO plain_customer_tag SELECT customer_id, add, … FROM plain_audience ON CONFLICT DO NOTHING\` + \`DELETE FROM plain_customer_tag WHERE tag_id = remove AND customer_id IN (SELECT customer_id FROM plain_audience)\` in one transaction"
    echo "- 3: \`$SEG_Q\`; plain forms: \`$BT_SETOP\` — plan ${QPLAN[q_setop]}; \`$BT_EXISTS\` — plan ${QPLAN[q_exists]}; one warm-up run each, then N = $N (or $N_SLOW when the warm-up took > $SLOW_MS ms)"
    echo "- 4: CSV \`phone,tags,name\`, $(fmt_int "$IMPORT_ROWS") rows: phones +852 7xxxxxxx (new) written three ways, every 20th malformed, every 50th repeats the previous row's phone, 1-3 existing tags per row (quoted), every 1000th row also an unknown tag; passed as one text value (\`wam.import_csv((SELECT data FROM bench_csv))\`); plain: \`bench_plain_import\` (COPY from a file into a temp table, strip \`[\\s()+-]\`, regex \`^[1-9][0-9]{7,14}\$\`, first row per phone, INSERT … ON CONFLICT (phone) DO NOTHING into plain_customer (a copy of the $(fmt_int "$CUSTOMERS") customers with PRIMARY KEY + UNIQUE (phone)), memberships by exact tag name)"
    echo "  <details><summary>first CSV lines</summary>"
    echo
    echo '```'
    echo "$CSV_SAMPLE"
    echo '```'
    echo "  </details>"
    echo
    echo "## Setup"
    echo
    echo "- machine: $(nproc) CPUs ($CPU_MODEL), $MEM_TOTAL RAM, $(uname -sr); load average (1/5/15 min) $LOADAVG_START at the start, $LOADAVG_MEASURE before the measurements, $LOADAVG_END at the end; waited ${WAITED_S}s for other benchmarks/fuzzers$([ "${#BUSY_NOTES[@]}" -gt 0 ] && echo " (still busy: see the warning above)" || echo " (none ran during the measurements)")"
    echo "- $PG_VERSION"
    echo "- pg_wamarketing $EXT_VERSION (git $GIT_REV), CRoaring (libroaring-dev) $ROARING_VERSION"
    echo "- server settings: ${SETTINGS[*]} (+ fsync = off, synchronous_commit = off, full_page_writes = off from test/lib/cluster.sh)"
    echo "- glibc malloc tuning in the server's environment: ${MALLOC_ENV:-none (glibc defaults)}"
    echo "- generated by \`bash test/bench_tags.sh\` in $((TOTAL_S / 60))m$(printf '%02d' $((TOTAL_S % 60)))s on $(date -u '+%Y-%m-%d %H:%M UTC')"
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
