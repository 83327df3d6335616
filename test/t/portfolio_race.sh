#!/usr/bin/env bash
# test/t/portfolio_race.sh — a business portfolio's messaging limit under concurrency: the
# senders of one portfolio claim at the same time and together never reach more unique
# recipients than its limit, because each claim takes the portfolio's lock (space 6) and
# reads the count the claims before it committed.
#  1. One claim holds the lock in an open transaction; a claim of another sender of the
#     portfolio waits on it (seen in pg_locks), then finds the limit reached.
#  2. Four sessions drain four senders at once, the way the worker does (claim, commit,
#     results, commit), until nothing is due: exactly the limit's worth of recipients went
#     out, the counter equals the recipient table, and every recipient counted once.
#  3. Negative control (so this test can fail): the same as 1 with the lock call taken out
#     of wam_internal.claim_batch, and both claims fill the limit: twice the limit.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

start_cluster || { tap_not_ok "portfolio race: cluster start"; tap_done; }
db=wam_portrace_t
tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    { tap_not_ok "portfolio race: create database"; tap_done; }
export PGDATABASE=$db PGOPTIONS="-c client_min_messages=warning"
q() { tap_psql -qAt -v ON_ERROR_STOP=1 "$@"; }

SESSIONS=4
LIMIT=50
PER_SENDER=100
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wam-portrace.XXXXXX")
chmod 777 "$tmp"
wam_on_exit "rm -rf '$tmp'"

# four senders in portfolio "shop" (limit 50); each has 100 templates waiting, to its own
# 100 customers (400 in all): far more than the limit
q -c "CREATE EXTENSION pg_wamarketing" \
  -c "INSERT INTO wam.customer (id, phone, consent_at, consent_source)
      SELECT g, (15550000000 + g)::text, now() - interval '1 year', 'shop' FROM generate_series(1, $SESSIONS * $PER_SENDER) g" \
  -c "SELECT wam.create_portfolio('shop', $LIMIT)" \
  -c "SELECT wam.create_sender('s' || k, (106540352242000 + k)::text, 'EAAtoken-' || k, 'secret-' || k, 'https://localhost:9')
      FROM generate_series(1, $SESSIONS) k" \
  -c "SELECT wam.configure_sender_account('s' || k, 'shop') FROM generate_series(1, $SESSIONS) k" >/dev/null ||
    { tap_not_ok "portfolio race: setup"; tap_done; }

# fresh queues: every customer's template waiting at its sender, nothing counted
reset_queues() {
    q -c "DELETE FROM wam.outbox" -c "DELETE FROM wam.portfolio_recipient" \
      -c "UPDATE wam.portfolio SET recipients_24h = 0" \
      -c "SELECT count(wam.enqueue_message(g, '{\"type\":\"template\",\"template\":{\"name\":\"sale\",\"language\":{\"code\":\"en\"}}}',
                                          's' || (1 + (g - 1) / $PER_SENDER)))
          FROM generate_series(1, $SESSIONS * $PER_SENDER) g" >/dev/null
}

# one claim holds its transaction open; s2's claim starts meanwhile; reports whether s2
# waited on the portfolio's lock and what each claimed
held_race() {
    local name=$1 waiting=0
    q -c "BEGIN" -c "SELECT count(*) FROM wam_internal.claim_batch(wam.sender_id('s1'), 1000)" -c "SELECT pg_sleep(3)" \
      -c "COMMIT" >"$tmp/$name.holder" 2>&1 &
    local holder=$!
    sleep 1
    q -c "SELECT count(*) FROM wam_internal.claim_batch(wam.sender_id('s2'), 1000)" >"$tmp/$name.second" 2>&1 &
    local second=$!
    for _ in $(seq 1 40); do
        # 22438 = 0x57a0 + 6: the portfolio lock space (src/wam_lock.h)
        waiting=$(q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 22438")
        [ "$waiting" = 1 ] && break
        sleep 0.05
    done
    wait "$holder"
    wait "$second"
    echo "$waiting"
}

# --- 1. the lock
reset_queues
waited=$(held_race locked)
tap_is "the first claim fills the limit" "$(cat "$tmp/locked.holder")" "$LIMIT"
tap_is "a claim of another sender of the portfolio waits on the portfolio's lock" "$waited" "1"
tap_is "and then claims nothing" "$(cat "$tmp/locked.second")" "0"
tap_is "the portfolio counts the limit's worth of recipients" \
    "$(q -c "SELECT recipients_24h || ' ' || (SELECT count(*) FROM wam.portfolio_recipient) FROM wam.portfolio WHERE name = 'shop'")" \
    "$LIMIT $LIMIT"

# --- 2. four senders drained at once
reset_queues
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
# claim 7 at a time (so the sessions interleave), commit, mark sent, commit; until a
# few claims in a row get nothing
gen_claim() {
    cat <<SQL
DO \$\$
DECLARE
	sid integer := wam.sender_id('s$1');
	ids bigint[];
	empty integer := 0;
BEGIN
	LOOP
		ids := ARRAY(SELECT b.message_id FROM wam_internal.claim_batch(sid, 7) b);
		COMMIT;
		UPDATE wam.outbox o SET status = 'sent', sent_at = now(), wamid = 'wamid.' || o.message_id
		WHERE o.message_id = ANY (ids);
		COMMIT;
		empty := CASE WHEN cardinality(ids) = 0 THEN empty + 1 ELSE 0 END;
		EXIT WHEN empty >= 3;
		PERFORM pg_sleep(0.01);
	END LOOP;
END
\$\$;
SQL
}
race drain gen_claim
tap_is "4 sessions claiming for 4 senders of one portfolio fail nowhere" "$(cat "$tmp"/drain.*.out | grep -c ERROR)" "0"
tap_is "together they reached exactly the limit's worth of recipients" \
    "$(q -c "SELECT count(DISTINCT recipient) FROM wam.outbox WHERE sending_at IS NOT NULL")" "$LIMIT"
tap_is "more than one sender took part" \
    "$(q -c "SELECT count(DISTINCT sender_id) > 1 FROM wam.outbox WHERE sending_at IS NOT NULL")" "t"
tap_is "the counter equals the recipient table, and the table the recipients sent to" \
    "$(q -c "SELECT p.recipients_24h || ' ' || (SELECT count(*) FROM wam.portfolio_recipient)
                    || ' ' || (SELECT count(*) FROM wam.portfolio_recipient r
                               WHERE NOT EXISTS (SELECT FROM wam.outbox o WHERE o.recipient = r.recipient AND o.sending_at IS NOT NULL))
             FROM wam.portfolio p WHERE p.name = 'shop'")" "$LIMIT $LIMIT 0"
tap_is "the others wait" "$(q -c "SELECT count(*) FROM wam.outbox WHERE status = 'queued'")" \
    "$((SESSIONS * PER_SENDER - LIMIT))"

# --- 3. negative control: without the lock, the same race goes past the limit
q -c "DO \$\$ BEGIN
        EXECUTE replace(pg_get_functiondef('wam_internal.claim_batch(integer, integer)'::regprocedure),
                        'PERFORM wam_internal.lock_key(6, s.portfolio_id);', '');
      END \$\$" >/dev/null
tap_is "the control's claim_batch takes no portfolio lock" \
    "$(q -c "SELECT prosrc LIKE '%lock_key(6%' FROM pg_proc WHERE oid = 'wam_internal.claim_batch(integer, integer)'::regprocedure")" "f"
reset_queues
held_race unlocked >/dev/null
tap_is "without the lock, two claims of one portfolio at once reach twice the limit" \
    "$(( $(cat "$tmp/unlocked.holder") + $(cat "$tmp/unlocked.second") ))" "$((2 * LIMIT))"

tap_done
