#!/usr/bin/env bash
# test/t/memory.sh — CRoaring allocates with malloc, outside PostgreSQL's memory
# contexts.  Every bitmap is owned by a context reset callback, so nothing may leak
# when operations succeed, fail half-way, or are cancelled.  This drives thousands of
# operations and errors through one backend and checks that its resident set size
# stays flat.
#
# Runs under `bash test/run check` (reuses its cluster) or alone as root.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

start_cluster || { tap_not_ok "memory: cluster start"; tap_done; }

db=wam_memory_t
tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    { tap_not_ok "memory: create database $db"; tap_done; }

# Growth allowed between the warm-up and the end, in kB.  A leak of the bitmaps
# below would grow the backend by hundreds of megabytes.
LIMIT_KB=16384

# ON_ERROR_STOP=0: the 16 cancelled statements at the end are errors on purpose; every
# ERROR line is checked below (16 cancels, nothing else).
out=$(TAP_SQL_ERRORS_OK=1 tap_psql -X -q -v ON_ERROR_STOP=0 -d "$db" 2>&1 <<'SQL'
CREATE EXTENSION pg_wamarketing;
SET client_min_messages = warning;
SET search_path = public, wam;
CREATE FUNCTION pg_temp.rss_kb() RETURNS bigint LANGUAGE sql AS
$$ SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\s+(\d+)'))[1]::bigint $$;

CREATE TABLE seg (id int PRIMARY KEY, s wam.segment);
INSERT INTO seg SELECT g, (SELECT wam.segment_agg(x) FROM generate_series(g, 400000, 3 + g) x)
    FROM generate_series(1, 4) g;

-- one round of everything: successes, errors raised half-way through an
-- operation (inputs, aggregates, set-returning functions), in subtransactions
CREATE PROCEDURE pg_temp.churn(n int) LANGUAGE plpgsql AS $$
DECLARE
    i int;
    s wam.segment;
    t wam.segment;
BEGIN
    FOR i IN 1..n LOOP
        s := wam.segment_range(0, 200000 + i) | (SELECT seg.s FROM seg WHERE seg.id = 1 + i % 4);
        t := s - wam.segment_range(i, i + 50000);
        PERFORM wam.segment_cardinality(s & t), wam.segment_and_cardinality(s, t), wam.segment_xor_cardinality(s, t);
        PERFORM wam.segment_to_array(wam.segment_range(i, i + 1000));
        PERFORM wam.segment_add(t, i), wam.segment_remove(t, i), s = t, s < t, wam_internal.segment_hash(s);
        PERFORM (s::bytea)::wam.segment;
        PERFORM count(*) FROM wam.segment_split(t, 3, i);
        PERFORM count(*) FROM (SELECT wam.segment_members(s) LIMIT 10) m;
        BEGIN
            PERFORM '\x3a300000010000000000020010000000050001000900'::text::wam.segment;
        EXCEPTION WHEN others THEN NULL;
        END;
        BEGIN
            PERFORM ('{1,2,3,' || i || ',x}')::text::wam.segment;
        EXCEPTION WHEN others THEN NULL;
        END;
        BEGIN
            PERFORM wam.segment_add(s, -1);
        EXCEPTION WHEN others THEN NULL;
        END;
        BEGIN   -- fails after 5,000 ids went into the aggregate state
            PERFORM wam.segment_agg(CASE WHEN g = 5000 THEN -1 ELSE g END)
                FROM generate_series(1, 10000) g;
        EXCEPTION WHEN others THEN NULL;
        END;
        BEGIN   -- fails in the middle of segment_union_agg over stored segments
            PERFORM wam.segment_union_agg(CASE WHEN seg.id = 3 THEN ('{' || seg.id || 'x}')::wam.segment ELSE seg.s END)
                FROM seg;
        EXCEPTION WHEN others THEN NULL;
        END;
        BEGIN   -- fails while members() is streaming
            PERFORM count(*) FROM wam.segment_members(s) m WHERE 1 / (m - 100) > 0;
        EXCEPTION WHEN others THEN NULL;
        END;
        BEGIN   -- fails after split() built its buckets
            PERFORM count(*) FROM wam.segment_split(s, 4, i) p WHERE 1 / (wam.segment_cardinality(p) * 0) = 1;
        EXCEPTION WHEN others THEN NULL;
        END;
    END LOOP;
END $$;

CALL pg_temp.churn(100);
SELECT pg_temp.rss_kb() AS rss_warm \gset
\echo rss_warm=:rss_warm
CALL pg_temp.churn(600);
SELECT pg_temp.rss_kb() AS rss_churn \gset
\echo rss_churn=:rss_churn

-- cancelled queries: statement_timeout fires in the middle of building a
-- large aggregate state and of a large set operation
SET statement_timeout = '150ms';
SELECT wam.segment_cardinality(wam.segment_agg(g)) FROM generate_series(1, 100000000) g;
SELECT wam.segment_cardinality(wam.segment_agg(g)) FROM generate_series(1, 100000000) g;
SELECT wam.segment_cardinality(wam.segment_agg(g)) FROM generate_series(1, 100000000) g;
SELECT wam.segment_cardinality(wam.segment_agg(g)) FROM generate_series(1, 100000000) g;
SELECT wam.segment_cardinality(wam.segment_agg(g)) FROM generate_series(1, 100000000) g;
SELECT count(*) FROM wam.segment_members(wam.segment_range(0, 4000000000));
SELECT count(*) FROM wam.segment_members(wam.segment_range(0, 4000000000));
SELECT count(*) FROM wam.segment_members(wam.segment_range(0, 4000000000));
RESET statement_timeout;
SELECT pg_temp.rss_kb() AS rss_cancel1 \gset
\echo rss_cancel1=:rss_cancel1
SET statement_timeout = '150ms';
SELECT wam.segment_cardinality(wam.segment_agg(g)) FROM generate_series(1, 100000000) g;
SELECT wam.segment_cardinality(wam.segment_agg(g)) FROM generate_series(1, 100000000) g;
SELECT wam.segment_cardinality(wam.segment_agg(g)) FROM generate_series(1, 100000000) g;
SELECT wam.segment_cardinality(wam.segment_agg(g)) FROM generate_series(1, 100000000) g;
SELECT wam.segment_cardinality(wam.segment_agg(g)) FROM generate_series(1, 100000000) g;
SELECT count(*) FROM wam.segment_members(wam.segment_range(0, 4000000000));
SELECT count(*) FROM wam.segment_members(wam.segment_range(0, 4000000000));
SELECT count(*) FROM wam.segment_members(wam.segment_range(0, 4000000000));
RESET statement_timeout;
SELECT pg_temp.rss_kb() AS rss_cancel2 \gset
\echo rss_cancel2=:rss_cancel2
SELECT count(*) AS cancelled_ok FROM seg \gset
\echo still_working=:cancelled_ok
SQL
)

val() { printf '%s\n' "$out" | sed -n "s/^$1=\([0-9]*\)$/\1/p" | tail -n 1; }
warm=$(val rss_warm)
churn=$(val rss_churn)
c1=$(val rss_cancel1)
c2=$(val rss_cancel2)
alive=$(val still_working)

if [ -z "$warm" ] || [ -z "$churn" ] || [ -z "$c1" ] || [ -z "$c2" ]; then
    tap_not_ok "memory: measurements taken" "$(printf '%s\n' "$out" | tail -n 20)"
    tap_done
fi
echo "# backend RSS: after warm-up ${warm} kB, after 600 rounds ${churn} kB," \
    "after cancels ${c1} kB then ${c2} kB"

growth=$((churn - warm))
if [ "$growth" -le "$LIMIT_KB" ]; then
    tap_ok "memory: RSS flat over 600 rounds of operations and errors (+${growth} kB)"
else
    tap_not_ok "memory: RSS flat over 600 rounds of operations and errors" \
        "grew by ${growth} kB (limit ${LIMIT_KB} kB)"
fi

# The first batch of cancels may grow the heap once (a large state is built
# before the timeout fires); the second batch must not add to it.
growth=$((c2 - c1))
if [ "$growth" -le "$LIMIT_KB" ]; then
    tap_ok "memory: RSS flat over repeated cancelled aggregates (+${growth} kB)"
else
    tap_not_ok "memory: RSS flat over repeated cancelled aggregates" \
        "grew by ${growth} kB (limit ${LIMIT_KB} kB)"
fi
tap_is "memory: backend still answers after the cancels" "$alive" 4

cancels=$(printf '%s\n' "$out" | grep -c 'canceling statement due to statement timeout')
tap_is "memory: all 16 long statements were cancelled by statement_timeout" "$cancels" 16
tap_is "memory: no other error" \
    "$(printf '%s\n' "$out" | grep 'ERROR' | grep -v 'canceling statement due to statement timeout')" ""

tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null
tap_done
