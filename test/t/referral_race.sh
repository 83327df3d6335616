#!/usr/bin/env bash
# test/t/referral_race.sh — the referral abuse checks under concurrency: sessions racing
# with one referrer's code leave exactly `cap` accepted referrals; a burst faster than
# velocity_per_hour from parallel sessions freezes the referrer exactly once, with one
# review item and every accepted referral under review; referrers racing for one invitee
# leave exactly one live referral (first valid one wins); a transaction holding the
# referrer's row makes the others wait instead of slipping past the checks; racing
# sessions store each fingerprint once; under REPEATABLE READ a concurrent attempt with
# the same code is a serialization failure; rings of two and three people closed by
# concurrent attempts are caught, also when the first attempt's locks were released before
# its commit; one transaction can record 20,000 referrals.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

start_cluster || { tap_not_ok "referral race: cluster start"; tap_done; }
db=wam_refrace_t
tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    { tap_not_ok "referral race: create database"; tap_done; }
export PGDATABASE=$db PGOPTIONS="-c client_min_messages=warning"
q() { tap_psql -qAt "$@"; }

SESSIONS=8
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wam-refrace.XXXXXX")
chmod 777 "$tmp"
wam_on_exit "rm -rf '$tmp'"

q -c "CREATE EXTENSION pg_wamarketing" \
  -c "INSERT INTO wam.customer (id, phone) SELECT g, (85290000000 + g)::text FROM generate_series(1, 32000) g" \
  -c "SELECT wam.create_referral_program('capped', '{\"cap\": 5, \"velocity_per_hour\": 100000}')" \
  -c "SELECT wam.create_referral_program('burst', '{\"velocity_per_hour\": 10, \"cap\": 100000}')" \
  -c "SELECT wam.create_referral_program('crowd', '{\"velocity_per_hour\": 100000, \"cap\": 100}')" >/dev/null ||
    { tap_not_ok "referral race: setup"; tap_done; }

# race NAME SQL_FOR_SESSION: starts $SESSIONS psql sessions that block on an advisory
# lock held by this shell, releases them together, waits, and collects their output.
race() {
    local name=$1 gen=$2 s
    tap_psql -qAt -c "SELECT pg_advisory_lock(4242)" -c "SELECT pg_sleep(2)" -c "SELECT pg_advisory_unlock(4242)" \
        >/dev/null 2>&1 &
    local holder=$!
    sleep 0.5
    for s in $(seq 1 "$SESSIONS"); do
        { echo "SELECT pg_advisory_lock_shared(4242); SELECT pg_advisory_unlock_shared(4242);"; "$gen" "$s"; } |
            q >"$tmp/$name.$s.out" 2>&1 &
    done
    wait
    wait "$holder" 2>/dev/null || true
}
# race_no_errors LABEL NAME: no session of race NAME printed an error
race_no_errors() { tap_is "$1: no session failed" "$(cat "$tmp/$2".*.out | grep -c ERROR)" "0"; }

# 1. cap: 8 sessions x 10 invitations with the same code (each its own transaction)
code=$(q -c "SELECT wam.referral_code(1, 'capped')")
gen_cap() {
    local s=$1 i
    for i in $(seq 1 10); do
        echo "SELECT wam.record_referral('$code', $((100 + s * 10 + i)));"
    done
}
race cap gen_cap
race_no_errors "cap race" cap
tap_is "cap race: exactly 5 of 80 accepted, 75 rejected for the cap" \
    "$(q -c "SELECT count(*) FILTER (WHERE status = 'pending') || ' ' || count(*) FILTER (WHERE reason = 'cap') || ' ' || count(*) FROM wam.referral WHERE referrer_id = 1")" \
    "5 75 80"
tap_is "cap race: the counter agrees" \
    "$(q -c "SELECT accepted FROM wam.referrer WHERE customer_id = 1 AND program_id = wam.referral_program_id('capped')")" "5"

# 2. velocity: 8 sessions x 5 invitations against a limit of 10 per hour
code=$(q -c "SELECT wam.referral_code(2, 'burst')")
gen_burst() {
    local s=$1 i
    for i in $(seq 1 5); do
        echo "SELECT wam.record_referral('$code', $((300 + s * 10 + i)));"
    done
}
race burst gen_burst
race_no_errors "velocity race" burst
tap_is "velocity race: frozen once, one open review item" \
    "$(q -c "SELECT r.status || ' ' || (SELECT count(*) FROM wam.referral_review v WHERE v.referrer_id = 2) FROM wam.referrer r WHERE r.customer_id = 2")" \
    "frozen 1"
tap_is "velocity race: all 40 under review, none pending: 11 for velocity, 29 for the frozen referrer" \
    "$(q -c "SELECT count(*) FILTER (WHERE status = 'review') || ' ' || count(*) FILTER (WHERE status = 'pending') || ' ' || count(*) FILTER (WHERE reason = 'velocity') || ' ' || count(*) FILTER (WHERE reason = 'referrer frozen') FROM wam.referral WHERE referrer_id = 2")" \
    "40 0 11 29"
tap_is "velocity race: the review item counted 11 invitations" \
    "$(q -c "SELECT details->>'invitations_last_hour' FROM wam.referral_review WHERE referrer_id = 2")" "11"

# 3. first valid referral wins: 8 referrers race for each of 20 invitees
gen_crowd() {
    local s=$1 i
    echo "SELECT wam.referral_code($((1000 + s)), 'crowd') AS c \\gset"
    for i in $(seq 1 20); do
        echo "SELECT wam.record_referral(:'c', $((1500 + i)));"
    done
}
race crowd gen_crowd
race_no_errors "invitee race" crowd
tap_is "invitee race: each of 20 invitees has exactly one live referral, 140 already referred" \
    "$(q -c "SELECT count(DISTINCT invitee_id) FILTER (WHERE status = 'pending') || ' ' || count(*) FILTER (WHERE status = 'pending') || ' ' || count(*) FILTER (WHERE reason = 'already referred') FROM wam.referral WHERE program_id = wam.referral_program_id('crowd')")" \
    "20 20 140"

# 4. a transaction that holds the referrer (cap 5 already reached by step 1 for customer 1;
#    here a fresh referrer with cap 1): the second session waits for the first to commit
#    and then sees its referral, so it is rejected for the cap rather than accepted too
q -c "SELECT wam.configure_referral_program('capped', '{\"cap\": 1}')" >/dev/null
code=$(q -c "SELECT wam.referral_code(3, 'capped')")
q -c "BEGIN" -c "SELECT wam.record_referral('$code', 901)" -c "SELECT pg_sleep(1.5)" -c "COMMIT" \
    >"$tmp/hold.a.out" 2>&1 &
pid_a=$!
sleep 0.5
start=$(date +%s%N)
b=$(q -c "SELECT wam.record_referral('$code', 902)" 2>&1)
waited=$((($(date +%s%N) - start) / 1000000))
wait "$pid_a"
tap_is "held referrer: the first session's referral is pending" "$(sed -n 1p "$tmp/hold.a.out")" "pending"
tap_is "held referrer: the second waits for it, then is rejected for the cap" "$b" "rejected: cap"
if [ "$waited" -ge 500 ]; then
    tap_ok "held referrer: the second session waited (${waited} ms)"
else
    tap_not_ok "held referrer: the second session waited" "it returned after ${waited} ms"
fi

# 4b. a referrer deleted while an attempt waits for its row: the attempt is recorded as
#     an unknown code once the deletion commits (the row it waited for is gone)
code=$(q -c "SELECT wam.referral_code(1990, 'capped')")
q -c "BEGIN" -c "DELETE FROM wam.customer WHERE id = 1990" -c "SELECT pg_sleep(1)" -c "COMMIT" >"$tmp/del.a.out" 2>&1 &
pid_a=$!
sleep 0.4
b=$(q -c "SELECT wam.record_referral('$code', 905)" 2>&1)
wait "$pid_a"
tap_is "deleted referrer: the waiting attempt is rejected as an unknown code" "$b" "rejected: unknown code"

# 5. fingerprints: 8 referrers race for each of 20 invitees, every attempt carrying the
#    invitee's device and payment fingerprints; each is remembered exactly once (the
#    trigger's insert is INSERT ... ON CONFLICT DO NOTHING, racing sessions included)
q -c "SELECT wam.create_referral_program('prints', '{\"velocity_per_hour\": 100000, \"cap\": 100}')" >/dev/null
gen_prints() {
    local s=$1 i
    echo "SELECT wam.referral_code($((1100 + s)), 'prints') AS c \\gset"
    for i in $(seq 1 20); do
        echo "SELECT wam.record_referral(:'c', $((1600 + i)), '{\"device\": \"phone-$i\", \"payment\": \"card-$i\"}');"
    done
}
race prints gen_prints
race_no_errors "fingerprint race" prints
tap_is "fingerprint race: one live referral per invitee, each fingerprint stored once" \
    "$(q -c "SELECT (SELECT count(*) FROM wam.referral WHERE program_id = wam.referral_program_id('prints') AND status = 'pending') || ' ' || count(*) || ' ' || count(DISTINCT (customer_id, kind)) FROM wam.customer_fingerprint WHERE customer_id BETWEEN 1601 AND 1620")" \
    "20 40 40"

# 6. REPEATABLE READ: a transaction whose snapshot predates a concurrent attempt with the
#    same code cannot count it, so it fails with a serialization error (SQLSTATE 40001)
#    instead of slipping past the cap; retried, it is checked against the new count
code=$(q -c "SELECT wam.referral_code(4, 'capped')")
q -c "BEGIN" -c "SELECT wam.record_referral('$code', 903)" -c "SELECT pg_sleep(1.5)" -c "COMMIT" \
    >"$tmp/rr.a.out" 2>&1 &
pid_a=$!
sleep 0.5
b=$(sql_error -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM wam.referral" \
    -c "SELECT wam.record_referral('$code', 904)" -c "COMMIT")
wait "$pid_a"
tap_is "repeatable read: the concurrent attempt with the same code fails to serialize" \
    "$b" "40001: could not serialize access due to concurrent update"
tap_is "repeatable read: retried, it is rejected for the cap" \
    "$(q -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT wam.record_referral('$code', 904)" -c "COMMIT")" "rejected: cap"

# 6b. REPEATABLE READ, two referrers and one invitee: a transaction whose snapshot predates
#     another's committed referral of the invitee fails to serialize (40001) rather than
#     with a unique violation
c1=$(q -c "SELECT wam.referral_code(5, 'crowd')"); c2=$(q -c "SELECT wam.referral_code(6, 'crowd')")
q -c "BEGIN" -c "SELECT wam.record_referral('$c1', 1590)" -c "SELECT pg_sleep(0.8)" -c "COMMIT" >"$tmp/rr2.a.out" 2>&1 &
pid_a=$!
sleep 0.3
b=$(sql_error -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM wam.referral" -c "SELECT pg_sleep(1)" \
    -c "SELECT wam.record_referral('$c2', 1590)" -c "COMMIT")
wait "$pid_a"
tap_is "repeatable read: a referral committed after the snapshot is a serialization failure, not a unique violation" \
    "$b" "40001: could not serialize access due to a concurrent referral of customer 1590"
tap_is "repeatable read: retried, the invitee is already referred" \
    "$(q -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT wam.record_referral('$c2', 1590)" -c "COMMIT")" "rejected: already referred"

# 7. rings closed by concurrent attempts: for 12 pairs, A invites B in one session while B
#    invites A in another (each holds its transaction open for 0.2 s, so the two always
#    overlap); for 8 triples with A -> B recorded first, B invites C while C invites A.
#    Exactly one attempt of each pair and each triple must be rejected as a ring.  Each
#    transaction records one more, unrelated referral after its racing one.
q -c "SELECT wam.create_referral_program('circle', '{\"velocity_per_hour\": 100000, \"cap\": 100}')" >/dev/null
for t in $(seq 1 8); do
    a=$((1800 + t * 3)); b=$((a + 1))
    q -c "SELECT wam.record_referral(wam.referral_code($a, 'circle'), $b)" >/dev/null
done
# a second, unrelated attempt in the same transaction: it releases the first one's
# (program, person) locks long before the commit, so the other session must find the
# first attempt's uncommitted row and wait for its transaction
other() { echo "SELECT wam.record_referral(wam.referral_code($((1950 + $1)), 'circle'), $((2400 + $1 * 10 + $2)));"; }
gen_circle() {
    local s=$1 k a b c
    if [ "$s" -le 4 ]; then
        # sessions 1-2, 3-4: pairs, from both ends
        for k in $(seq 1 6); do
            a=$((1700 + ((s - 1) / 2) * 12 + k * 2)); b=$((a + 1))
            if [ $((s % 2)) = 1 ]; then c="$a $b"; else c="$b $a"; fi
            set -- $c
            echo "BEGIN; SELECT wam.record_referral(wam.referral_code($1, 'circle'), $2); $(other "$s" "$k") SELECT pg_sleep(0.2); COMMIT;"
        done
    else
        # sessions 5-6, 7-8: triples, B -> C against C -> A
        for k in $(seq 1 4); do
            a=$((1800 + (((s - 5) / 2) * 4 + k) * 3)); b=$((a + 1)); c=$((a + 2))
            if [ $((s % 2)) = 1 ]; then set -- "$b" "$c"; else set -- "$c" "$a"; fi
            echo "BEGIN; SELECT wam.record_referral(wam.referral_code($1, 'circle'), $2); $(other "$s" "$k") SELECT pg_sleep(0.2); COMMIT;"
        done
    fi
}
race circle gen_circle
race_no_errors "ring race" circle
tap_is "ring race: each of 12 pairs and 8 triples has exactly one attempt rejected as a ring" \
    "$(q -c "SELECT count(*) FILTER (WHERE status = 'pending') || ' ' || count(*) FILTER (WHERE reason = 'ring') || ' ' || count(*) FROM wam.referral WHERE program_id = wam.referral_program_id('circle') AND invitee_id <= 2400")" \
    "28 20 48"
tap_is "ring race: the unrelated referrals are all pending" \
    "$(q -c "SELECT count(*) FROM wam.referral WHERE program_id = wam.referral_program_id('circle') AND invitee_id > 2400 AND status = 'pending'")" "40"
tap_is "ring race: no pair has both directions live" \
    "$(q -c "SELECT count(*) FROM wam.referral x JOIN wam.referral y ON x.referrer_id = y.invitee_id AND x.invitee_id = y.referrer_id AND x.program_id = y.program_id WHERE x.program_id = wam.referral_program_id('circle') AND x.status = 'pending' AND y.status = 'pending'")" "0"

# 8. first valid referral wins when the winner's locks are released before it commits: 8
#    referrers race for each of 10 invitees, each transaction recording a second, unrelated
#    referral after the racing one and committing 50 ms later
q -c "SELECT wam.create_referral_program('crowd2', '{\"velocity_per_hour\": 100000, \"cap\": 100}')" >/dev/null
gen_crowd2() {
    local s=$1 i
    echo "SELECT wam.referral_code($((1200 + s)), 'crowd2') AS c \\gset"
    for i in $(seq 1 10); do
        echo "BEGIN; SELECT wam.record_referral(:'c', $((2100 + i))); SELECT wam.record_referral(:'c', $((2200 + s * 20 + i))); SELECT pg_sleep(0.05); COMMIT;"
    done
}
race crowd2 gen_crowd2
race_no_errors "released-lock race" crowd2
tap_is "released-lock race: each of 10 invitees has exactly one live referral, 70 already referred, 80 unrelated pending" \
    "$(q -c "SELECT count(DISTINCT invitee_id) FILTER (WHERE status = 'pending' AND invitee_id <= 2110) || ' ' || count(*) FILTER (WHERE reason = 'already referred') || ' ' || count(*) FILTER (WHERE status = 'pending' AND invitee_id > 2200) FROM wam.referral WHERE program_id = wam.referral_program_id('crowd2')")" \
    "10 70 80"

# 9. one transaction records 20,000 referrals (20,000 invitees, 1,000 referrers) in one
#    statement: the (program, person) locks do not pile up until commit
q -c "SELECT wam.create_referral_program('bulk', '{\"velocity_per_hour\": 100000, \"cap\": 100000}')" \
  -c "SELECT count(wam.referral_code(g, 'bulk')) FROM generate_series(1, 1000) g" >/dev/null
bulk=$(q -c "BEGIN" \
    -c "INSERT INTO wam.referral (code, invitee_id) SELECT r.code, g FROM generate_series(12001, 32000) g JOIN wam.referrer r ON r.customer_id = 1 + g % 1000 AND r.program_id = wam.referral_program_id('bulk')" \
    -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()" -c "COMMIT" 2>&1)
tap_is "bulk: 20,000 referrals in one transaction hold at most 2 person locks before commit" "$bulk" "2"
tap_is "bulk: all 20,000 recorded as pending" \
    "$(q -c "SELECT count(*) FILTER (WHERE status = 'pending') FROM wam.referral WHERE program_id = wam.referral_program_id('bulk')")" "20000"

tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
tap_done
