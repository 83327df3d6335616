#!/usr/bin/env bash
# test/t/offer_race.sh — first-N redemption under concurrency (issue 20): 8 sessions make
# 1,000 attempts, one order each with the shared code of an offer limited to 50, all at
# once; exactly 50 succeed, under READ COMMITTED and under REPEATABLE READ (where the
# caller retries a serialization failure, 40001, as documented), and the refused attempts
# leave no order, redemption or counter behind. Then the other limits the same way: 8
# sessions redeeming one customer's code per-customer-limited to 3, a group's members
# against a per-group limit of 20, and one unique code: exactly 3, 20 and 1.
# Negative control (so this test can fail): a check-then-act version of the total limit
# (read the counter, then increment it unconditionally) oversells under the same race.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

start_cluster || { tap_not_ok "offer race: cluster start"; tap_done; }
db=wam_offerrace_t
tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    { tap_not_ok "offer race: create database"; tap_done; }
export PGDATABASE=$db PGOPTIONS="-c client_min_messages=warning"
q() { tap_psql -qAt -v ON_ERROR_STOP=1 "$@"; }

SESSIONS=8
ATTEMPTS=1000
PER=$((ATTEMPTS / SESSIONS))
LIMIT=50
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wam-offerrace.XXXXXX")
chmod 777 "$tmp"
wam_on_exit "rm -rf '$tmp'"

# 1,000 customers, all in the group; a results table the sessions write their counts to
q -c "CREATE EXTENSION pg_wamarketing" \
  -c "INSERT INTO wam.customer (id, phone) SELECT g, (15550000000 + g)::text FROM generate_series(1, $ATTEMPTS) g" \
  -c "SELECT wam.create_group('race-mums')" \
  -c "SELECT wam.add_group_members('race-mums', wam.segment_range(1, $ATTEMPTS + 1))" \
  -c "CREATE TABLE race_result (run text, session int, ok int, refused int, retries int, other text)" \
  -c "GRANT ALL ON race_result TO PUBLIC" >/dev/null ||
    { tap_not_ok "offer race: setup"; tap_done; }

# starts SESSIONS sessions at once (they wait on an advisory lock held for a moment), each
# running the SQL that "$gen" prints for it, with the isolation level $iso
race() {
    local iso=$1 gen=$2 s
    tap_psql -qAt -c "SELECT pg_advisory_lock(4243)" -c "SELECT pg_sleep(1.5)" -c "SELECT pg_advisory_unlock(4243)" \
        >/dev/null 2>&1 &
    local holder=$!
    sleep 0.5
    for s in $(seq 1 "$SESSIONS"); do
        { echo "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL $iso;"
          echo "SELECT pg_advisory_lock_shared(4243); SELECT pg_advisory_unlock_shared(4243);"; "$gen" "$s"; } |
            q >"$tmp/race.$s.out" 2>&1 &
    done
    wait
    wait "$holder" 2>/dev/null || true
}

# session $1 of run $2: attempts customer($i) and code($i) (SQL expressions of i), one
# transaction each; a serialization failure is retried in a new transaction, refusals
# counted by SQLSTATE (23514: a limit, 23505: already used)
gen_attempts() {
    local s=$1 run=$2 cust=$3 code=$4 n=$5
    cat <<SQL
DO \$\$
DECLARE
	st text;
	ok int := 0;
	refused int := 0;
	retries int := 0;
	other text := '';
BEGIN
	FOR i IN 1 .. $n LOOP
		LOOP
			BEGIN
				PERFORM wam.record_order($cust, 100, code => $code);
				st := 'ok';
			EXCEPTION
				WHEN serialization_failure THEN st := 'retry';
				WHEN check_violation OR unique_violation THEN st := 'refused';
				WHEN OTHERS THEN st := 'other'; other := other || SQLSTATE || ' ' || SQLERRM || '; ';
			END;
			COMMIT;
			EXIT WHEN st <> 'retry';
			retries := retries + 1;
		END LOOP;
		IF st = 'ok' THEN ok := ok + 1; ELSIF st = 'refused' THEN refused := refused + 1; END IF;
	END LOOP;
	INSERT INTO race_result VALUES ('$run', $s, ok, refused, retries, other);
END
\$\$;
SQL
}
gen_total() { gen_attempts "$1" "$RUN" "($1 - 1) * $PER + i" "'FIRST50'" "$PER"; }

# a fresh offer of 50 with a shared code, nothing ordered yet
fresh_offer() {
    q -c "DELETE FROM wam.code_redemption" -c "DELETE FROM wam.offer_customer_usage" -c "DELETE FROM wam.offer_group_usage" \
      -c "DELETE FROM wam.offer_code" -c "DELETE FROM wam.offer" -c "DELETE FROM wam.customer_order" \
      -c "DELETE FROM race_result" \
      -c "SELECT wam.create_offer('first 50', group_name => 'race-mums', code => 'FIRST50', discount_percent => 20,
                                  total_limit => $LIMIT $*)" >/dev/null
}
sum() { q -c "SELECT coalesce(sum($1), 0) FROM race_result"; }
state() {
    q -c "SELECT o.redeemed || ' ' || (SELECT count(*) FROM wam.code_redemption) || ' ' || (SELECT count(*) FROM wam.customer_order)
                 || ' ' || (SELECT coalesce(sum(redeemed), 0) FROM wam.offer_customer_usage)
          FROM wam.offer o"
}

for iso in "read committed" "repeatable read"; do
    RUN=total
    fresh_offer
    race "$iso" gen_total
    tap_is "$iso: no attempt failed otherwise" "$(q -c "SELECT string_agg(other, '') FROM race_result WHERE other <> ''")" ""
    tap_is "$iso: all 8 sessions reported" "$(q -c "SELECT count(*) FROM race_result")" "$SESSIONS"
    tap_is "$iso: exactly $LIMIT of $ATTEMPTS attempts succeeded" "$(sum ok)" "$LIMIT"
    tap_is "$iso: the other attempts were refused at the limit" "$(sum refused)" "$((ATTEMPTS - LIMIT))"
    tap_is "$iso: the counter, the redemptions, the orders and the per-customer counts are all $LIMIT" \
        "$(state)" "$LIMIT $LIMIT $LIMIT $LIMIT"
    # the sessions really raced: under READ COMMITTED the waiters take the row lock in turn,
    # so several sessions succeed; under REPEATABLE READ one session may win every round
    # (the others retry), and the retries show the race
    if [ "$iso" = "read committed" ]; then
        tap_is "read committed: more than one session succeeded" "$(q -c "SELECT count(*) > 1 FROM race_result WHERE ok > 0")" "t"
    else
        tap_is "repeatable read: serialization failures happened and were retried" "$(q -c "SELECT sum(retries) > 0 FROM race_result")" "t"
    fi
done

# per customer: 8 sessions, 20 attempts each, all by customer 7, limit 3 per customer
gen_customer() { gen_attempts "$1" "$RUN" "7" "'FIRST50'" 20; }
# per group: 8 sessions x 10 distinct customers against a per-group limit of 20
gen_group() { gen_attempts "$1" "$RUN" "($1 - 1) * 10 + i" "'FIRST50'" 10; }
for iso in "read committed" "repeatable read"; do
    RUN=customer
    fresh_offer ", per_customer_limit => 3"
    race "$iso" gen_customer
    tap_is "$iso: one customer from 8 sessions at once: exactly 3 (the per-customer limit)" \
        "$(sum ok) $(sum refused) $(state)" "3 157 3 3 3 3"
    RUN=group
    fresh_offer ", per_group_limit => 20"
    race "$iso" gen_group
    tap_is "$iso: 80 members from 8 sessions at once: exactly 20 (the per-group limit)" \
        "$(sum ok) $(sum refused) $(q -c "SELECT redeemed FROM wam.offer_group_usage")" "20 60 20"
done

# one unique code, 8 sessions, each trying it 5 times for its owner
RUN=unique
q -c "DELETE FROM wam.code_redemption" -c "DELETE FROM wam.offer_customer_usage" -c "DELETE FROM wam.offer_code" \
  -c "DELETE FROM wam.offer" -c "DELETE FROM wam.customer_order" -c "DELETE FROM race_result" \
  -c "SELECT wam.create_offer('mine', group_name => 'race-mums', discount_amount => 30, per_customer_limit => NULL)" \
  -c "SELECT count(*) FROM wam.issue_offer_codes('mine', wam.segment(ARRAY[9]::bigint[]))" >/dev/null
ucode=$(q -c "SELECT code FROM wam.offer_code WHERE customer_id = 9")
gen_unique() { gen_attempts "$1" "$RUN" "9" "'$ucode'" 5; }
for iso in "read committed" "repeatable read"; do
    q -c "DELETE FROM wam.code_redemption" -c "UPDATE wam.offer_code SET used_at = NULL" -c "UPDATE wam.offer SET redeemed = 0" \
      -c "DELETE FROM wam.customer_order" -c "DELETE FROM race_result" >/dev/null
    race "$iso" gen_unique
    tap_is "$iso: one unique code from 8 sessions at once: used exactly once" \
        "$(sum ok) $(sum refused) $(q -c "SELECT count(*) FROM wam.code_redemption")" "1 39 1"
done

# --- negative control: check-then-act oversells
RUN=control
fresh_offer
q -c "DO \$\$ BEGIN
        EXECUTE replace(replace(pg_get_functiondef('wam_internal.redeem_code(text, bigint, bigint, numeric, timestamptz)'::regprocedure),
                        'AND (x.total_limit IS NULL OR x.redeemed < x.total_limit)', ''),
                        'IF o.per_customer_limit IS NOT NULL THEN',
                        'IF (SELECT x.redeemed >= x.total_limit FROM wam.offer x WHERE x.offer_id = o.offer_id) THEN
                            PERFORM wam_internal.code_refused(typed, ''limit reached'');
                         END IF;
                         PERFORM pg_sleep(0.002);
                         IF o.per_customer_limit IS NOT NULL THEN');
      END \$\$" -c "ALTER TABLE wam.offer DROP CONSTRAINT offer_redeemed" >/dev/null
tap_is "the control reads the counter and then increments it unconditionally" \
    "$(q -c "SELECT prosrc LIKE '%x.redeemed < x.total_limit%' FROM pg_proc WHERE oid = 'wam_internal.redeem_code(text, bigint, bigint, numeric, timestamptz)'::regprocedure")" "f"
race "read committed" gen_total
tap_is "the control's attempts fail only at its limit" "$(q -c "SELECT string_agg(other, '') FROM race_result WHERE other <> ''")" ""
tap_is "check-then-act under the same race sells more than the limit" "$(q -c "SELECT sum(ok) > $LIMIT FROM race_result")" "t"

tap_done
