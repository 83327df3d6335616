#!/usr/bin/env bash
# test/t/referral_stress.sh — the referral abuse trigger under random concurrent load:
# 8 sessions x 150 transactions of 1 to 3 attempts each (a tenth rolled back), drawn from
# 40 referrers and 400 invitees of one program, so that the same people meet all the time.
# Afterwards the bookkeeping must agree with the rows, whatever the interleaving:
#   - every referrer's accepted count = its referrals not rejected, and never above the cap;
#   - at most one live referral per invitee (first valid one wins);
#   - no ring of two or three people among the live referrals;
#   - each fingerprint stored once; the only errors are deadlocks between transactions
#     that touch the same referrers in different orders (PostgreSQL resolves them).
# The draws are deterministic (WAM_STRESS_SEED, default 7); the interleaving is not.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

start_cluster || { tap_not_ok "referral stress: cluster start"; tap_done; }
db=wam_refstress_t
tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    { tap_not_ok "referral stress: create database"; tap_done; }
export PGDATABASE=$db PGOPTIONS="-c client_min_messages=warning"
q() { tap_psql -qAt "$@"; }

SESSIONS=8
TXNS=150
SEED=${WAM_STRESS_SEED:-7}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wam-refstress.XXXXXX")
chmod 777 "$tmp"
wam_on_exit "rm -rf '$tmp'"

# referrers 1..40, invitees 41..440 (all customers since now: none is an existing customer)
q -c "CREATE EXTENSION pg_wamarketing" \
  -c "INSERT INTO wam.customer (id, phone) SELECT g, (85290000000 + g)::text FROM generate_series(1, 440) g" \
  -c "SELECT wam.create_referral_program('stress', '{\"cap\": 6, \"velocity_per_hour\": 45}')" \
  -c "CREATE TABLE codes AS SELECT g AS customer_id, wam.referral_code(g, 'stress') AS code FROM generate_series(1, 440) g" \
  >/dev/null || { tap_not_ok "referral stress: setup"; tap_done; }

# one SQL script per session; attempts: a referrer (1..40, or now and then an invitee who
# may already have been referred: rings), an invitee (41..440, or now and then a referrer),
# a device fingerprint for a third of them
RANDOM=$SEED
for s in $(seq 1 "$SESSIONS"); do
    {
        echo "\\set ON_ERROR_STOP 0"
        for _ in $(seq 1 "$TXNS"); do
            echo "BEGIN;"
            for _a in $(seq 1 $((1 + RANDOM % 3))); do
                if [ $((RANDOM % 5)) = 0 ]; then r=$((41 + RANDOM % 400)); else r=$((1 + RANDOM % 40)); fi
                if [ $((RANDOM % 6)) = 0 ]; then i=$((1 + RANDOM % 40)); else i=$((41 + RANDOM % 400)); fi
                src="NULL"
                [ $((RANDOM % 3)) = 0 ] && src="'{\"device\": \"dev-$((RANDOM % 60))\"}'"
                echo "SELECT wam.record_referral((SELECT code FROM codes WHERE customer_id = $r), $i::bigint, $src);"
            done
            if [ $((RANDOM % 10)) = 0 ]; then echo "ROLLBACK;"; else echo "COMMIT;"; fi
        done
    } >"$tmp/s$s.sql"
done

for s in $(seq 1 "$SESSIONS"); do
    # (ON_ERROR_STOP 0: deadlocks are expected; every ERROR line is checked below)
    TAP_SQL_ERRORS_OK=1 q -f "$tmp/s$s.sql" >"$tmp/s$s.out" 2>&1 &
done
wait

errors=$(cat "$tmp"/s*.out | grep -E '^(psql:.*)?ERROR' | grep -v -e 'deadlock detected' -e 'current transaction is aborted' | sort | uniq -c | head -5)
deadlocks=$(cat "$tmp"/s*.out | grep -c 'deadlock detected')
tap_is "stress: no error but deadlocks ($deadlocks deadlocks)" "$errors" ""
tap_is "stress: every referral attempt of a committed transaction is recorded" \
    "$(q -c "SELECT count(*) > 1000 FROM wam.referral")" "t"
tap_is "stress: accepted = referrals not rejected, per referrer" \
    "$(q -c "SELECT count(*) FROM wam.referrer r WHERE r.accepted <> (SELECT count(*) FROM wam.referral x WHERE x.referrer_id = r.customer_id AND x.program_id = r.program_id AND x.status <> 'rejected')")" "0"
tap_is "stress: no referrer above the cap of 6" \
    "$(q -c "SELECT count(*) FROM wam.referrer WHERE accepted > 6")" "0"
tap_is "stress: at most one live referral per invitee" \
    "$(q -c "SELECT count(*) FROM (SELECT invitee_id FROM wam.referral WHERE status IN ('pending', 'review', 'qualified') GROUP BY 1 HAVING count(*) > 1) x")" "0"
tap_is "stress: no live ring of two or three people" \
    "$(q -c "WITH l AS (SELECT referrer_id AS a, invitee_id AS b FROM wam.referral WHERE status IN ('pending', 'review', 'qualified'))
             SELECT (SELECT count(*) FROM l x JOIN l y ON x.b = y.a AND y.b = x.a) + (SELECT count(*) FROM l x JOIN l y ON x.b = y.a JOIN l z ON y.b = z.a AND z.b = x.a)")" "0"
# (a fingerprint is stored once by the primary key; a racing duplicate would have been an
# error, which the first check counts)
tap_is "stress: fingerprints were stored, each for an invitee of a recorded attempt (none of a rolled-back one)" \
    "$(q -c "SELECT (count(*) > 0) || ' ' || count(*) FILTER (WHERE NOT EXISTS (SELECT FROM wam.referral r WHERE r.invitee_id = f.customer_id)) FROM wam.customer_fingerprint f")" "true 0"
tap_is "stress: a frozen referrer has its open review item, and the others none" \
    "$(q -c "SELECT count(*) FROM wam.referrer r WHERE (r.status = 'frozen') <> EXISTS (SELECT FROM wam.referral_review v WHERE v.referrer_id = r.customer_id AND v.resolved_at IS NULL)")" "0"
echo "# outcomes: $(q -c "SELECT string_agg(format('%s %s', n, s), ', ' ORDER BY n DESC) FROM (SELECT coalesce(reason, status) AS s, count(*) AS n FROM wam.referral GROUP BY 1) x")"

tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
tap_done
