#!/usr/bin/env bash
# test/t/campaign_race.sh — the contact policy under concurrency: 4 sessions launch 4
# overlapping campaigns at once (each on its own sender), then 4 sessions claim and mark
# sent for those senders at once, the way the worker does, until nothing is due. Afterwards
# no customer has more than the policy allows (one message, since every claim happens within
# 36 hours of the others), every other message of theirs waits at least 36 hours after the
# one sent (or 14 days for customers who are not active), and every message is accounted
# for. And the lock that makes this so: while one claim holds a customer, another
# sender's claim for that customer waits on it (seen in pg_locks), then holds the message back.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

start_cluster || { tap_not_ok "campaign race: cluster start"; tap_done; }
db=wam_camprace_t
tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    { tap_not_ok "campaign race: create database"; tap_done; }
export PGDATABASE=$db PGOPTIONS="-c client_min_messages=warning"
q() { tap_psql -qAt -v ON_ERROR_STOP=1 "$@"; }

SESSIONS=4
CUSTOMERS=2000
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wam-camprace.XXXXXX")
chmod 777 "$tmp"
wam_on_exit "rm -rf '$tmp'"

# customers 1..2000; the active ones (an order this month) are the even ids; four
# campaigns whose audiences overlap: every customer is in two to four of them
q -c "CREATE EXTENSION pg_wamarketing" \
  -c "INSERT INTO wam.customer (id, phone, consent_at, consent_source)
      SELECT g, (15550000000 + g)::text, now() - interval '1 year', 'shop' FROM generate_series(1, $CUSTOMERS) g" \
  -c "INSERT INTO wam.event (customer_id, kind, occurred_at) SELECT g, 'order', now() - interval '3 days'
      FROM generate_series(2, $CUSTOMERS, 2) g" \
  -c "SELECT wam.create_tag('t' || k, 'interest') FROM generate_series(1, $SESSIONS) k" \
  -c "SELECT wam.attach_tag('t' || k, wam.segment_agg(g)) FROM generate_series(1, $SESSIONS) k,
          LATERAL (SELECT g FROM generate_series(1, $CUSTOMERS) g WHERE k <= 2 OR g % k <> 0) x GROUP BY k" \
  -c "SELECT wam.create_sender('s' || k, (106540352242000 + k)::text, 'EAAtoken-' || k, 'secret-' || k, 'https://localhost:9')
      FROM generate_series(1, $SESSIONS) k" \
  -c "SELECT wam.pause_sender('s' || k, 'test') FROM generate_series(1, $SESSIONS) k" \
  -c "SELECT wam.create_campaign('c' || k, 't' || k, '{\"type\":\"template\",\"template\":{\"name\":\"sale\",\"language\":{\"code\":\"en\"}}}',
          ARRAY['s' || k]) FROM generate_series(1, $SESSIONS) k" >/dev/null ||
    { tap_not_ok "campaign race: setup"; tap_done; }
audience=$(q -c "SELECT sum(wam.audience_size('t' || k)) FROM generate_series(1, $SESSIONS) k")

# race NAME GEN: $SESSIONS psql sessions released together by an advisory lock
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

gen_launch() { echo "SELECT recipients FROM wam.launch_campaign('c$1');"; }
race launch gen_launch
tap_is "4 sessions launch 4 overlapping campaigns at once without an error" \
    "$(cat "$tmp"/launch.*.out | grep -c ERROR)" "0"
tap_is "the launches queued every audience member" \
    "$(q -c "SELECT count(*) FROM wam.outbox WHERE campaign_id IS NOT NULL AND status = 'queued'")" "$audience"

# each session drains its sender: claim 50, commit, mark them sent, commit; until nothing
# of its sender is due
gen_claim() {
    local s=$1
    cat <<SQL
UPDATE wam.sender SET paused = false WHERE name = 's$s';
DO \$\$
DECLARE
	sid integer := wam.sender_id('s$s');
	n integer;
	ids bigint[];
	empty integer := 0;
BEGIN
	LOOP
		-- the claim commits first (as the worker's does), then the results
		ids := ARRAY(SELECT b.message_id FROM wam_internal.claim_batch(sid, 50) b);
		n := cardinality(ids);
		COMMIT;
		UPDATE wam.outbox o SET status = 'sent', sent_at = now(), wamid = 'wamid.' || o.message_id
		WHERE o.message_id = ANY (ids);
		COMMIT;
		-- a claim that holds back every message it looked at returns none:
		-- done only when nothing of this sender is due
		empty := CASE WHEN n = 0 THEN empty + 1 ELSE 0 END;
		EXIT WHEN empty >= 3 AND NOT EXISTS (SELECT FROM wam.outbox o WHERE o.sender_id = sid
											 AND o.status = 'queued' AND o.next_attempt_at <= now());
		PERFORM pg_sleep(0.01);
	END LOOP;
END
\$\$;
SQL
}
race claim gen_claim
tap_is "4 sessions claiming for 4 senders at once fail nowhere" "$(cat "$tmp"/claim.*.out | grep -c ERROR)" "0"

tap_is "no customer got more than one message" \
    "$(q -c "SELECT count(*) FROM (SELECT customer_id FROM wam.outbox WHERE campaign_id IS NOT NULL AND sending_at IS NOT NULL
                                 GROUP BY 1 HAVING count(*) > 1) x")" "0"
tap_is "every customer got exactly one" \
    "$(q -c "SELECT count(DISTINCT customer_id) FROM wam.outbox WHERE campaign_id IS NOT NULL AND sending_at IS NOT NULL")" \
    "$CUSTOMERS"
tap_is "every other message waits: 36 hours after the sent one (active), 14 days (inactive)" \
    "$(q -c "SELECT count(*) FILTER (WHERE w.status = 'queued' AND w.next_attempt_at >= s.sending_at + CASE WHEN w.contact_class = 'active'
                                                 THEN interval '36 hours' ELSE interval '14 days' END) || ' ' || count(*)
             FROM wam.outbox w JOIN wam.outbox s ON s.customer_id = w.customer_id AND s.sending_at IS NOT NULL
             WHERE w.campaign_id IS NOT NULL AND w.sending_at IS NULL")" \
    "$((audience - CUSTOMERS)) $((audience - CUSTOMERS))"
tap_is "the active customers are the even ids" \
    "$(q -c "SELECT count(*) FILTER (WHERE (contact_class = 'active') = (customer_id % 2 = 0)) = count(*) FROM wam.outbox WHERE campaign_id IS NOT NULL")" "t"

# the lock: while a session holds customer 1's contact lock, a claim for another sender
# with a message due to customer 1 waits
q -c "UPDATE wam.outbox SET status = 'cancelled' WHERE status = 'queued'" \
  -c "INSERT INTO wam.customer (id, phone, consent_at, consent_source) VALUES (9001, '15550009001', now(), 'shop')" \
  -c "SELECT wam.create_tag('solo', 'interest')" -c "SELECT wam.attach_tag('solo', '{9001}')" \
  -c "SELECT wam.create_campaign('solo' || k, 'solo', '{\"type\":\"template\",\"template\":{\"name\":\"x\",\"language\":{\"code\":\"en\"}}}',
          ARRAY['s' || k]) FROM generate_series(1, 2) k" \
  -c "SELECT wam.launch_campaign('solo' || k) FROM generate_series(1, 2) k" >/dev/null
q -c "BEGIN" -c "SELECT count(*) FROM wam_internal.claim_batch(wam.sender_id('s1'), 10)" -c "SELECT pg_sleep(3)" -c "COMMIT" \
    >"$tmp/holder.out" 2>&1 &
holder=$!
sleep 1
q -c "SELECT count(*) FROM wam_internal.claim_batch(wam.sender_id('s2'), 10)" >"$tmp/second.out" 2>&1 &
second=$!
waiting=0
for _ in $(seq 1 40); do
    waiting=$(q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 22437")
    [ "$waiting" = 1 ] && break
    sleep 0.05
done
wait "$holder"
wait "$second"
tap_is "the first claim took customer 9001's message" "$(cat "$tmp/holder.out")" "1"
tap_is "a claim for another sender waits on that customer's contact lock" "$waiting" "1"
tap_is "and then sends nothing to 9001" "$(cat "$tmp/second.out")" "0"
tap_is "that message waits 36 hours" \
    "$(q -c "SELECT next_attempt_at >= now() + interval '35 hours' FROM wam.outbox WHERE campaign = 'solo2'")" "t"

tap_done
