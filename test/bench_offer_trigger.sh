#!/usr/bin/env bash
# test/bench_offer_trigger.sh — the cost of behaviour-triggered offers (issue 20 item 5).
# The rules add nothing to an event insert (no trigger on wam.event: the "offer triggers"
# job decides events afterwards); this prints, at growing sizes of wam.event, the median
# time of one event insert with no rule and with 5 rules, and of one run of
# wam.run_offer_triggers() deciding 100 new events (each queues a message with a code).
# Usage: bash test/bench_offer_trigger.sh [sizes...]   (default 10000 100000 1000000)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
start_cluster >/dev/null || { echo "cluster start failed"; exit 1; }
db=wam_bench_ot
q() { wam_psql -qAt -v ON_ERROR_STOP=1 -d $db "$@"; }
sizes=("$@"); [ ${#sizes[@]} -eq 0 ] && sizes=(10000 100000 1000000)
tpl='{"type":"template","template":{"name":"code","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{code}"}]}]}}'
# the median, in ms, of 7 timings of the SQL in $1 (each in its own transaction, rolled back)
median() {
    q -c "CREATE OR REPLACE FUNCTION pg_temp.t() RETURNS double precision LANGUAGE plpgsql AS \$f\$
          DECLARE s timestamptz; BEGIN s := clock_timestamp(); $1; RETURN 1000 * extract(epoch FROM clock_timestamp() - s); END \$f\$" \
      -c "CREATE TEMP TABLE IF NOT EXISTS ms (v double precision)" -c "TRUNCATE ms" \
      -c "DO \$d\$ DECLARE a double precision[] := '{}'; BEGIN FOR i IN 1..7 LOOP BEGIN a := a || pg_temp.t(); RAISE EXCEPTION 'rollback' USING ERRCODE = 'P0004'; EXCEPTION WHEN SQLSTATE 'P0004' THEN NULL; END; END LOOP; INSERT INTO ms SELECT unnest(a); END \$d\$" \
      -c "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::numeric, 3) FROM ms"
}
printf '%-10s | %-18s | %-19s | %-28s\n' events "insert, no rule" "insert, 5 rules" "run deciding 100 events"
for n in "${sizes[@]}"; do
    wam_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    q -c "CREATE EXTENSION pg_wamarketing" -c "SET client_min_messages = warning" \
      -c "SELECT wam.create_sender('main', '106540352242922', 'EAAtoken', 'secret', 'https://localhost:9')" \
      -c "INSERT INTO wam.customer (id, phone, consent_at, consent_source) SELECT g, (15550000000 + g)::text, now() - interval '1 year', 'shop' FROM generate_series(1, 10000) g" \
      -c "INSERT INTO wam.event (customer_id, kind, occurred_at, details) SELECT 1 + g % 10000, (ARRAY['link_click', 'order', 'message_read', 'question'])[1 + g % 4], now() - (g % 20000) * interval '1 minute' - interval '1 day', CASE WHEN g % 4 = 0 THEN '{\"product\": \"A\"}'::jsonb END FROM generate_series(1, $n) g" \
      -c "ANALYZE" -c "SELECT wam.create_offer('bench', audience => 'all', discount_percent => 10)" >/dev/null
    ins="INSERT INTO wam.event (customer_id, kind, details) VALUES (42, 'question', '{\"product\": \"A\"}')"
    a=$(median "$ins")
    q -c "SELECT wam.create_offer_trigger('r' || g, CASE WHEN g = 1 THEN 'question' ELSE 'kind_' || g END, 'bench', '$tpl', event_match => CASE WHEN g = 1 THEN '{\"product\": \"A\"}'::jsonb END) FROM generate_series(1, 5) g" >/dev/null
    b=$(median "$ins")
    c=$(median "INSERT INTO wam.event (customer_id, kind, occurred_at, details) SELECT g, 'question', now() - interval '1 minute', '{\"product\": \"A\"}' FROM generate_series(1001, 1100) g; PERFORM wam.run_offer_triggers()")
    d=$(median "INSERT INTO wam.event (customer_id, kind, occurred_at, details) SELECT g, 'question', now() - interval '1 minute', '{\"product\": \"A\"}' FROM generate_series(1001, 1100) g")
    printf '%-10s | %15s ms | %16s ms | %14s ms (%s ms per event)\n' "$n" "$a" "$b" "$(echo "$c - $d" | bc)" "$(echo "scale=2; ($c - $d) / 100" | bc)"
done
wam_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null
