#!/usr/bin/env bash
# test/t/tag_concurrency.sh — concurrent taggers: the bitmaps stay exact, writers of
# the same customers serialize without errors, writers of other id blocks of the same
# tag do not wait for each other, and a storm of concurrent attach/detach leaves
# wam.verify_tag_index() clean.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

start_cluster || { echo "not ok - tag concurrency: cluster start"; exit 1; }
db=wam_tagconc_t
wam_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    { echo "not ok - tag concurrency: create database"; exit 1; }
export PGDATABASE=$db PGOPTIONS="-c client_min_messages=warning"
q() { wam_psql -qAt "$@"; }

q -c "CREATE EXTENSION pg_wamarketing" \
  -c "INSERT INTO wam.customer (id, phone) SELECT g, (852900000000 + g)::text FROM generate_series(1, 400000) g" \
  -c "SELECT wam.create_tag('busy', 'engagement')" >/dev/null

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wam-tagconc.XXXXXX")
wam_on_exit "rm -rf '$tmp'"

# 1. Two sessions attach overlapping customers: the second waits for the first and
#    then inserts only the customers the first did not.
q -c "BEGIN" -c "SELECT wam.attach_tag('busy', wam.segment_range(1, 1001))" -c "SELECT pg_sleep(1.5)" \
  -c "COMMIT" >"$tmp/a.out" 2>&1 &
pid_a=$!
sleep 0.5
b=$(q -c "SELECT wam.attach_tag('busy', wam.segment_range(501, 1501))" 2>&1)
wait "$pid_a"
tap_is "overlapping attach: the first inserts 1000" "$(sed -n 1p "$tmp/a.out")" "1000"
tap_is "overlapping attach: the second waits, then inserts only the 500 new ones" "$b" "500"

# 2. A writer of another block of ids (chunk 5 = ids 327680..393215) of the same tag
#    does not wait for a long transaction on chunk 0.
q -c "BEGIN" -c "SELECT wam.attach_tag('busy', wam.segment_range(2000, 3000))" -c "SELECT pg_sleep(3)" \
  -c "COMMIT" >/dev/null 2>&1 &
pid_a=$!
sleep 0.5
c=$(q -c "SET lock_timeout = '1s'" -c "SELECT wam.attach_tag('busy', wam.segment_range(330000, 331000))" 2>&1)
tap_is "other id block of the same tag: no waiting (lock_timeout 1s not hit)" "$c" "1000"
d=$(q -c "SET lock_timeout = '1s'" -c "SELECT wam.detach_tag('busy', wam.segment_range(330000, 330500))" 2>&1)
tap_is "other id block: detach does not wait either" "$d" "500"
wait "$pid_a"

# 3. A storm: 4 sessions x 40 transactions of random attach/detach over shared ranges.
for s in 1 2 3 4; do
    q >"$tmp/storm$s.out" 2>&1 <<SQL &
SELECT setseed(0.$s);
DO \$\$
DECLARE
    i int;
    lo bigint;
BEGIN
    FOR i IN 1..40 LOOP
        lo := 1 + floor(random() * 390000)::bigint;
        IF random() < 0.6 THEN
            PERFORM wam.attach_tag('busy', wam.segment_range(lo, lo + floor(random() * 5000)::bigint));
        ELSE
            PERFORM wam.detach_tag('busy', wam.segment_range(lo, lo + floor(random() * 5000)::bigint));
        END IF;
        COMMIT;
    END LOOP;
END
\$\$;
SQL
done
wait
errors=$(cat "$tmp"/storm*.out | grep -c ERROR)
tap_is "storm: no session failed" "$errors" "0"
[ "$errors" = 0 ] || cat "$tmp"/storm*.out | grep ERROR | head -5 | sed 's/^/# /'
tap_is "storm: bitmaps and membership rows agree" \
    "$(q -c "SELECT bool_and(ok) FROM wam.verify_tag_index()")" "t"
tap_is "storm: tag_members equals the rows" \
    "$(q -c "SELECT wam.segment_cardinality(wam.tag_members('busy')) = (SELECT count(*) FROM wam.customer_tag WHERE tag_id = wam.tag_id('busy'))")" "t"

wam_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
tap_done
