#!/usr/bin/env bash
# test/t/advisory_keys.sh — a plain role cannot block the extension's locks with
# pg_advisory_lock(): it holds every key the old SQL-visible lock scheme used (tag blocks
# 0x57a3, order statistics 0x57a4, referral persons 0x57a5 in the top 16 bits) and the
# new keys in both pg_advisory_lock() forms (bigint, and the int4 pair classid/objid),
# while a second session with lock_timeout = 5s tags and untags customers, records orders
# (one, several, an update, a recompute) and records a referral. Blocked, that session
# fails with "canceling statement due to lock timeout" instead of hanging.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

start_cluster || { tap_not_ok "advisory keys: cluster start"; tap_done; }
db=wam_advkeys_t
tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" \
    -c "DROP ROLE IF EXISTS wam_intruder" -c "CREATE ROLE wam_intruder LOGIN" >/dev/null ||
    { tap_not_ok "advisory keys: create database"; tap_done; }
# lock_timeout everywhere: blocked, a check fails instead of hanging
export PGDATABASE=$db PGOPTIONS="-c client_min_messages=warning -c lock_timeout=5s"
q() { tap_psql -qAt "$@"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wam-advkeys.XXXXXX")
wam_on_exit "rm -rf '$tmp'"

q -c "CREATE EXTENSION pg_wamarketing" \
  -c "INSERT INTO wam.customer (id, phone) SELECT g, (85290000000 + g)::text FROM generate_series(1, 100) g" \
  -c "SELECT wam.create_tag('held', 'engagement')" \
  -c "SELECT wam.create_referral_program('held', '{\"velocity_per_hour\": 1000, \"cap\": 1000}')" \
  -c "SELECT wam.referral_code(1, 'held')" >/dev/null ||
    { tap_not_ok "advisory keys: setup"; tap_done; }
tag=$(q -c "SELECT wam.tag_id('held')")
prog=$(q -c "SELECT wam.referral_program_id('held')")

# The keys: customers 1..100 are all in id block 0; orders go to customers 1..20;
# the referral is customer 50 invited by customer 1.
cat >"$tmp/keys.sql" <<SQL
CREATE TEMP TABLE k (key bigint PRIMARY KEY);
INSERT INTO k  -- old scheme: tag block, order statistics, referral persons
SELECT (x'57a3'::bigint << 48) | (($tag::bigint & x'ffffffff'::bigint) << 16) | 0
UNION SELECT (x'57a4'::bigint << 48) | (c & x'ffffffff'::bigint) FROM generate_series(1, 20) c
UNION SELECT (x'57a5'::bigint << 48) | (($prog::bigint & x'ffff'::bigint) << 32) | p FROM unnest('{1,50}'::bigint[]) p
-- new keys as bigint (field2:field3)
UNION SELECT ($tag::bigint << 32) | 0
UNION SELECT c FROM generate_series(1, 20) c
UNION SELECT ($prog::bigint << 32) | p FROM unnest('{1,50}'::bigint[]) p;
CREATE TEMP TABLE k2 (a integer, b integer, PRIMARY KEY (a, b));
INSERT INTO k2  -- new keys as int4 pairs (classid, objid)
SELECT $tag, 0 UNION SELECT 0, c FROM generate_series(1, 20) c
UNION SELECT $prog, p FROM unnest('{1,50}'::integer[]) p;
SELECT count(pg_advisory_lock(key)) FROM k;
SELECT count(pg_advisory_lock(a, b)) FROM k2;
SELECT pg_sleep(600);  -- ended by pg_terminate_backend below
SQL
# (its session ends by pg_terminate_backend: the error is expected)
PGUSER=wam_intruder TAP_SQL_ERRORS_OK=1 q -f "$tmp/keys.sql" >"$tmp/intruder.out" 2>&1 &
intruder=$!
want=$(( 1 + 20 + 2 + 1 + 20 + 2 + 1 + 20 + 2 ))
held=0
for _ in $(seq 1 300); do
    held=$(q -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                 WHERE a.usename = 'wam_intruder' AND l.locktype = 'advisory' AND l.granted")
    [ "$held" = "$want" ] && break
    sleep 0.1
done
tap_is "the plain role holds all $want keys (old scheme, new keys as bigint and as int4 pairs)" "$held" "$want"
ipid=$(q -c "SELECT pid FROM pg_stat_activity WHERE usename = 'wam_intruder'")

ops=$(q \
  -c "SELECT wam.attach_tag('held', wam.segment_range(1, 51))" \
  -c "SELECT wam.detach_tag('held', wam.segment_range(1, 11))" \
  -c "BEGIN" -c "SELECT wam_internal.lock_chunks($tag, wam.segment_range(1, 101))" -c "COMMIT" \
  -c "SELECT wam.record_order(1, 10) IS NOT NULL" \
  -c "INSERT INTO wam.customer_order (customer_id, ordered_at, amount) SELECT c, now(), 5 FROM generate_series(2, 20) c" \
  -c "UPDATE wam.customer_order SET amount = 6 WHERE customer_id = 2" \
  -c "SELECT wam.recompute_order_stats('{1,2,3}')" \
  -c "INSERT INTO wam.referral (code, invitee_id) SELECT code, 50 FROM wam.referrer WHERE customer_id = 1" \
  -c "SELECT status FROM wam.referral WHERE invitee_id = 50" 2>&1)
tap_is "with those keys held, attach, detach, lock_chunks, orders (one, several, update, recompute) and a referral complete" \
    "$(echo "$ops" | tr '\n' ' ')" "50 10 1 t 3 pending "
tap_is "statistics of the 20 customers are right" \
    "$(q -c "SELECT count(*) || ' ' || sum(orders) || ' ' || sum(total_amount) FROM wam.customer_stats")" "20 20 106"
tap_is "the plain role still held its keys meanwhile" \
    "$(q -c "SELECT count(*) FROM pg_locks WHERE pid = $ipid AND locktype = 'advisory' AND granted")" "$want"
tap_is "the extension's locks live in their own space (objsubid 22433-22435), not 1 or 2" \
    "$(q -c "BEGIN" -c "SELECT wam_internal.lock_chunks($tag, wam.segment_range(1, 2))" -c "SELECT wam_internal.lock_key(2, 7)" \
         -c "SELECT string_agg(classid || ':' || objid || ':' || objsubid, ' ' ORDER BY objsubid) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'" \
         -c "COMMIT" | sed -n 3p)" "$tag:0:22433 0:7:22434"

q -c "SELECT pg_terminate_backend($ipid)" >/dev/null
wait "$intruder" 2>/dev/null

q -c "GRANT wam_operator TO wam_intruder" >/dev/null
tap_is "an operator cannot call wam_internal.lock_key" \
    "$(PGUSER=wam_intruder sql_error -c "SELECT wam_internal.lock_key(1, 1)")" \
    "42501: permission denied for schema wam_internal"
tap_is "wam_internal.lock_key takes the last lock space (6, portfolios)" \
    "$(q -c "SELECT count(*) FROM (SELECT wam_internal.lock_key(6, 1)) x")" "1"
tap_is "wam_internal.lock_key rejects an unknown lock space, above and below" \
    "$(sql_error -c "SELECT wam_internal.lock_key(7, 1)") / $(sql_error -c "SELECT wam_internal.lock_key(0, 1)")" \
    "22023: lock space 7 does not exist / 22023: lock space 0 does not exist"

tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "DROP ROLE IF EXISTS wam_intruder" >/dev/null 2>&1
tap_done
