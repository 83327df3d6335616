#!/usr/bin/env bash
# test/t/offer_trigger_race.sh — offer triggers under concurrent commits (issue 20 item 5):
# 1. an event whose transaction took its id first but commits after a later one is still
#    decided (no "last event id" watermark would see it): the run between the two commits
#    fires the later event only, the next run the late one, each once;
# 2. 4 sessions running wam.run_offer_triggers() in loops while 2 sessions insert 300 events
#    (one per customer), then a last run: every event decided exactly once, one message and one
#    code per customer, none twice.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

start_cluster || { tap_not_ok "offer trigger race: cluster start"; tap_done; }
db=wam_otrace_t
tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    { tap_not_ok "offer trigger race: create database"; tap_done; }
export PGDATABASE=$db PGOPTIONS="-c client_min_messages=warning"
q() { tap_psql -qAt -v ON_ERROR_STOP=1 "$@"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wam-otrace.XXXXXX")
chmod 777 "$tmp"
wam_on_exit "rm -rf '$tmp'"
N=300

q -c "CREATE EXTENSION pg_wamarketing" \
  -c "SELECT wam.create_sender('main', '106540352242922', 'EAAtoken', 'secret', 'https://localhost:9')" \
  -c "INSERT INTO wam.customer (id, phone, consent_at, consent_source) SELECT g, (15550000000 + g)::text, now() - interval '1 year', 'shop' FROM generate_series(1, $N + 2) g" \
  -c "SELECT wam.create_offer('race-ten', audience => 'all', discount_percent => 10)" \
  -c "SELECT wam.create_offer_trigger('race-q', 'question', 'race-ten', '{\"type\":\"template\",\"template\":{\"name\":\"code\",\"language\":{\"code\":\"en\"},\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"{code}\"}]}]}}')" \
  >/dev/null || { tap_not_ok "offer trigger race: setup"; tap_done; }

# 1. the late commit: A takes its id first and commits last
q -c "BEGIN" -c "INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES ($N + 1, 'question', now() - interval '1 minute')" \
  -c "SELECT pg_sleep(4)" -c "COMMIT" >/dev/null 2>"$tmp/a.err" &
a=$!
sleep 1
q -c "INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES ($N + 2, 'question', now() - interval '1 minute')" >/dev/null
tap_is "before the late transaction commits, only the later event is visible" \
    "$(q -c "SELECT count(*) FROM wam.event")" 1
first=$(q -c "SELECT queued FROM wam.run_offer_triggers()")
wait "$a"
second=$(q -c "SELECT queued FROM wam.run_offer_triggers()")
tap_is "the run between the commits fires the committed event, the next run the late one" "$first $second" "1 1"
tap_is "the late event's id is below the first fired one's (a watermark would have skipped it)" \
    "$(q -c "SELECT (SELECT event_id FROM wam.offer_trigger_fire WHERE customer_id = $N + 1) < (SELECT event_id FROM wam.offer_trigger_fire WHERE customer_id = $N + 2)")" t
tap_is "a third run decides nothing" "$(q -c "SELECT queued + refused + left_out FROM wam.run_offer_triggers()")" 0

# 2. 4 evaluating sessions, 2 inserting ones, all at once
q -c "SELECT pg_advisory_lock(4343)" -c "SELECT pg_sleep(1.5)" -c "SELECT pg_advisory_unlock(4343)" >/dev/null 2>&1 &
holder=$!
sleep 0.5
for s in 1 2 3 4; do
    { echo "SELECT pg_advisory_lock_shared(4343); SELECT pg_advisory_unlock_shared(4343);"
      for i in $(seq 1 40); do echo "SELECT count(*) FROM wam.run_offer_triggers();"; done; } | q >"$tmp/run.$s.out" 2>&1 &
done
for s in 0 1; do
    { echo "SELECT pg_advisory_lock_shared(4343); SELECT pg_advisory_unlock_shared(4343);"
      for i in $(seq 1 $((N / 2))); do
          echo "INSERT INTO wam.event (customer_id, kind, occurred_at) VALUES ($((s * N / 2 + i)), 'question', now() - interval '1 second');"
      done; } | q >"$tmp/ins.$s.out" 2>&1 &
done
wait
q -c "SELECT count(*) FROM wam.run_offer_triggers()" >/dev/null
tap_is "no session failed" "$(cat "$tmp"/run.*.out "$tmp"/ins.*.out | grep -c ERROR)" 0
tap_is "every event decided once" \
    "$(q -c "SELECT count(*) || ' ' || count(DISTINCT (customer_id, event_id)) FROM wam.offer_trigger_fire")" "$((N + 2)) $((N + 2))"
tap_is "one message per customer, none twice" \
    "$(q -c "SELECT count(*) || ' ' || count(DISTINCT customer_id) FROM wam.outbox")" "$((N + 2)) $((N + 2))"
tap_is "one code per customer" \
    "$(q -c "SELECT count(*) || ' ' || count(DISTINCT customer_id) FROM wam.offer_code")" "$((N + 2)) $((N + 2))"
tap_is "every fire queued its own message" \
    "$(q -c "SELECT count(*) FROM wam.offer_trigger_fire f JOIN wam.outbox o USING (message_id) WHERE f.outcome = 'queued' AND o.customer_id = f.customer_id")" "$((N + 2))"

q -d postgres -c "DROP DATABASE $db" >/dev/null 2>&1
tap_done
