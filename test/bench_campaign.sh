#!/usr/bin/env bash
# test/bench_campaign.sh — what a campaign's rules cost at launch and at send time.
#
# A. Launch, at each size N (customers, all in the audience): wam.enqueue_segment of the
#    same audience (consent and opt-out only, {first_name} filled, one vars for all), against
#    wam.preview_campaign and wam.launch_campaign of a campaign with everything on: the
#    contact policy (10 % of the customers got a marketing message 1 to 6 days ago; 10 %
#    ordered and count as active), send windows in each customer's local time (three time
#    zones and the phone's country), the cost cap between push_cost and 3x (the lifetime
#    value decides: 1 % are high value), per-customer {product} and {amount} from a user
#    table (wam.campaign_variable, loaded from it before: timed apart).  Each launch and
#    enqueue runs in a transaction rolled back after the clock stops (then VACUUM), so every
#    round starts from the same data; WAM_BENCH_ROUNDS rounds, the variants interleaved,
#    medians reported.
# B. Send time, against the mock Cloud API (test/mock, as test/bench_sender.sh): a drain of
#    WAM_BENCH_DRAIN messages with the rate far above what the mock answers, plain
#    (wam.enqueue_segment) and as a campaign (contact policy and an always-open send window
#    checked at claim time); then WAM_BENCH_THROTTLED campaign messages at WAM_BENCH_RATE
#    per minute: the rate the worker keeps (target within 2 %).
#
#     bash test/run build && bash test/bench_campaign.sh
#
# Knobs: WAM_BENCH_SIZES="100000 300000" · WAM_BENCH_1M=1 adds 1000000 (about 10 minutes
# more) · WAM_BENCH_ROUNDS=3 (WAM_BENCH_ROUNDS_1M=1 at a million) · WAM_BENCH_DRAIN=20000 · WAM_BENCH_THROTTLED=3000 at
# WAM_BENCH_RATE=3000 (0 skips part B's throttled run; WAM_BENCH_DRAIN=0 skips part B) ·
# WAM_BENCH_OUT=FILE · WAM_BENCH_PORT=55738 (part B: +1) · WAM_BENCH_BUILD=1
# Prints a Markdown report; writes bench/results/campaign.md with the default knobs (and
# with WAM_BENCH_1M=1).
# shellcheck disable=SC2016,SC2086,SC2046,SC2119
set -euo pipefail

# shellcheck source=test/lib/bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

SIZES=${WAM_BENCH_SIZES-100000 300000}
[ "${WAM_BENCH_1M:-0}" = 1 ] && SIZES="$SIZES 1000000"
ROUNDS=${WAM_BENCH_ROUNDS:-3}
ROUNDS_1M=${WAM_BENCH_ROUNDS_1M:-1}
DRAIN=${WAM_BENCH_DRAIN:-20000}
THROTTLED=${WAM_BENCH_THROTTLED:-3000}
RATE=${WAM_BENCH_RATE:-3000}
bench_positive ROUNDS ROUNDS_1M RATE
bench_out campaign.md "${WAM_BENCH_SIZES:-100000 300000} $ROUNDS $DRAIN $THROTTLED $RATE" "100000 300000 3 20000 3000 3000"
bench_begin bench_campaign
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
bench_require_extension 'wam_internal.high_value_customers'
PORT_A=${WAM_BENCH_PORT:-55738}

TPL='{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{first_name}"},{"type":"text","text":"{product}"},{"type":"text","text":"{amount}"}]}]}}'
WINDOWS='tue 10:00-11:00, thu 19:00-20:00, sat 10:00-12:00'

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
# secs SQL...: the seconds the statements take, in a transaction rolled back afterwards
secs_rolled_back() {
    q <<SQL | tail -n 1
BEGIN;
SELECT clock_timestamp() AS t0 \gset
$1;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 2);
ROLLBACK;
SQL
}

# --- A. launch ------------------------------------------------------------------------
WAM_PRELOAD='' bench_cluster "$PORT_A" shared_buffers=512MB max_wal_size=4GB autovacuum=off
export PGOPTIONS="-c client_min_messages=warning"
rows_a=()
for n in $SIZES; do
    wam_psql -q -d postgres -c "DROP DATABASE IF EXISTS wam_bench" >/dev/null
    bench_db
    log "A. $n customers: setting up"
    q -v n="$n" -v tpl="$TPL" -v windows="$WINDOWS" <<'SQL' >/dev/null
\set ON_ERROR_STOP 1
CREATE EXTENSION pg_wamarketing;
INSERT INTO wam.customer (id, phone, name, time_zone, consent_at, consent_source, opted_out_at)
SELECT g, '1555' || lpad(g::text, 7, '0'), 'Customer ' || g,
       CASE g % 4 WHEN 0 THEN 'Europe/Berlin' WHEN 1 THEN 'America/New_York' WHEN 2 THEN 'Asia/Tokyo' END,
       CASE WHEN g % 50 <> 0 THEN now() - interval '1 year' END, CASE WHEN g % 50 <> 0 THEN 'bench' END,
       CASE WHEN g % 101 = 0 THEN now() - interval '1 day' END
FROM generate_series(1, :n) g;
-- 10 % ordered three times, the last in the last 90 days (active); 1 % for a lot (high value)
INSERT INTO wam.customer_order (customer_id, ordered_at, amount)
SELECT g, now() - (g % 80 + k * 100) * interval '1 day', CASE WHEN g % 100 = 10 THEN 20000 ELSE 50 END
FROM generate_series(10, :n, 10) g, generate_series(0, 2) k;
SELECT wam.refresh_rfm();
SELECT wam.create_sender('main', '106540352242922', 'test-token', 'test-app-secret', 'https://localhost:9/v23.0', 600000);
SELECT wam.pause_sender('main', 'bench');
-- 10 % got a marketing message 1 to 6 days ago (the contact policy defers them)
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, status, category, campaign_id, sending_at, sent_at, wamid)
SELECT 1, g, '1555' || lpad(g::text, 7, '0'), '{"type":"template","template":{"name":"old","language":{"code":"en"}}}',
       'delivered', 'marketing', 0, now() - (1 + g % 6) * interval '1 day', now() - (1 + g % 6) * interval '1 day', 'wamid.old' || g
FROM generate_series(3, :n, 10) g;
-- pushes cost 0.10, push_cost: the cap is checked, nobody is over it (at 0.15, timed
-- apart, only the high-value customers are within it)
SELECT wam.configure_rfm('push_cost', '0.10');
-- the user's table of per-customer offers (no offer: "missing variable")
CREATE TABLE public.offer AS SELECT g AS customer_id, 'product ' || (g % 17) AS product, (g % 500) + 0.99 AS amount
FROM generate_series(1, :n) g WHERE g % 333 <> 0;
SELECT wam.create_campaign(name, 'all', :'tpl', ARRAY['main'], cost_per_message => cost,
                           send_windows => :'windows', ends_at => now() + interval '14 days')
FROM (VALUES ('spring', 0.10), ('pricey', 0.15)) v(name, cost);
VACUUM ANALYZE;
SQL
    t0=$(now)
    q -c "INSERT INTO wam.campaign_variable (campaign_id, customer_id, vars)
          SELECT 1, o.customer_id, jsonb_build_object('product', o.product, 'amount', o.amount) FROM public.offer o" >/dev/null
    q -c "INSERT INTO wam.campaign_variable SELECT 2, v.customer_id, v.vars FROM wam.campaign_variable v" >/dev/null
    t_vars=$(secs_since "$t0")
    q -c "VACUUM ANALYZE wam.campaign_variable" >/dev/null
    log "A. $n: campaign variables loaded in $t_vars s"
    ts=() tp=() tl=() tq=()
    rounds=$ROUNDS
    [ "$n" -ge 1000000 ] && rounds=$ROUNDS_1M
    for r in $(seq 0 "$rounds"); do
        wait_idle "round $r at $n"
        a=$(secs_rolled_back "SELECT queued FROM wam.enqueue_segment(wam.segment_range(1, $n + 1), $(sqlstr "$TPL"), vars => '{\"product\": \"x\", \"amount\": \"1\"}')")
        q -c "VACUUM wam.outbox" >/dev/null
        t0=$(now)
        preview=$(q -F ' ' -c "SELECT audience_size, opted_out, no_consent, missing_variable, cost_cap, contact_policy, no_send_window, recipients, deferred FROM wam.preview_campaign('spring')")
        b=$(secs_since "$t0")
        c=$(secs_rolled_back "SELECT recipients FROM wam.launch_campaign('spring')")
        q -c "VACUUM wam.outbox" >/dev/null
        t0=$(now)
        pricey=$(q -F ' ' -c "SELECT cost_cap, recipients FROM wam.preview_campaign('pricey')")
        d=$(secs_since "$t0")
        note_busy "round $r at $n"
        log "A. $n round $r: enqueue_segment $a s, preview $b s, launch $c s ($preview); preview at 0.15 $d s ($pricey)"
        # round 0 warms the caches: not counted
        [ "$r" -eq 0 ] && continue
        ts+=("$a") tp+=("$b") tl+=("$c") tq+=("$d")
    done
    launched=$(q -F ' ' -c "BEGIN" -c "SELECT audience_size, opted_out, no_consent, missing_variable, cost_cap, contact_policy, no_send_window, recipients, deferred FROM wam.launch_campaign('spring')" -c "ROLLBACK" | tail -n 1)
    [ "$launched" = "$preview" ] || die "preview ($preview) and launch ($launched) disagree at $n"
    ms=$(echo "${ts[*]}" | median) mp=$(echo "${tp[*]}" | median) ml=$(echo "${tl[*]}" | median) mq=$(echo "${tq[*]}" | median)
    ratio=$(awk -v l="$ml" -v s="$ms" 'BEGIN { printf "%.2f", l / s }')
    set -- $preview
    rows_a+=("| $n ($rounds rounds) | $ms s | **$ml s** (${ratio}x) | **$mp s** | $mq s ($(cut -d' ' -f2 <<<"$pricey") within the cap) | $t_vars s | $8 queued ($9 deferred to a window or the policy); removed: $2 opted out, $3 no consent, $4 missing variable, $5 cost cap, $6 contact policy, $7 no window |")
    log "A. $n: medians enqueue_segment $ms s, launch $ml s (${ratio}x), preview $mp s"
done
stop_cluster

# --- B. send time ---------------------------------------------------------------------
rows_b=()
if [ "$DRAIN" -gt 0 ]; then
    # shellcheck source=test/lib/sender.sh
    . "$WAM_REPO_DIR/test/lib/sender.sh"
    export WAM_SENDER_PORT=$((PORT_A + 1))
    export PGDATABASE=postgres
    sender_setup shared_buffers=512MB max_wal_size=4GB || die "sender setup failed"
    TPL1='{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{first_name}"}]}]}}'
    big=$((DRAIN > THROTTLED ? DRAIN : THROTTLED))
    q "INSERT INTO wam.customer (id, phone, name, time_zone, consent_at, consent_source)
       SELECT g, '1555' || lpad(g::text, 7, '0'), 'Customer ' || g,
              CASE g % 3 WHEN 0 THEN 'Europe/Berlin' WHEN 1 THEN 'America/New_York' END, now(), 'bench'
       FROM generate_series(1, $big) g" >/dev/null
    q "SELECT wam.create_sender('main', '106540352242922', 'test-token', 'test-app-secret', '$(mock_url)', 600)" >/dev/null
    q "SELECT wam.configure_sender('main', 3600000, burst => 100000)" >/dev/null
    q "SELECT wam.pause_sender('main', 'benchmark set-up')" >/dev/null
    mock POST '/_mock/config?replace=1' '{"numbers": {"106540352242922": {"rate_per_second": 0, "pair_limit_seconds": 0}}, "webhooks": {"sent": false, "delivered_ratio": 0}}' >/dev/null
    drain() { # drain LABEL CAMPAIGN: msg/s of one drain
        mock POST /_mock/reset '{}' >/dev/null
        q "SELECT wam.resume_sender('main')" >/dev/null
        wait_drained 900 || die "drain $1 did not finish"
        q "SELECT wam.pause_sender('main', 'benchmark')" >/dev/null
        q "SELECT count(*) || ' ' || round(count(*) / extract(epoch FROM max(sent_at) - min(sending_at))) FROM wam.outbox WHERE campaign = '$2' AND status = 'sent'"
    }
    dp=() dc=()
    for r in 1 2 3; do
        wait_idle "drain round $r"
        q "SELECT queued FROM wam.enqueue_segment(wam.segment_range(1, $DRAIN + 1), '$TPL1', campaign => 'plain$r')" >/dev/null
        set -- $(drain plain "plain$r"); dp+=("$2"); log "B. plain drain $r: $1 sent, $2 msg/s"
        q "DELETE FROM wam.outbox" >/dev/null
        q "SELECT wam.create_campaign('camp$r', 'all', '$TPL1', ARRAY['main'], send_windows => 'daily 00:00-24:00')" >/dev/null
        q "SELECT recipients FROM wam.launch_campaign('camp$r', now() - interval '1 second')" >/dev/null
        q "UPDATE wam.outbox SET status = 'cancelled' WHERE campaign = 'camp$r' AND customer_id > $DRAIN" >/dev/null
        set -- $(drain campaign "camp$r"); dc+=("$2"); log "B. campaign drain $r: $1 sent, $2 msg/s"
        note_busy "drain round $r"
        q "DELETE FROM wam.outbox" >/dev/null
        # the policy would hold the next round's campaign: a clean slate
    done
    mdp=$(echo "${dp[*]}" | median) mdc=$(echo "${dc[*]}" | median)
    rows_b+=("| drain of $DRAIN, rate far above the mock | $mdp msg/s | **$mdc msg/s** | rounds: plain ${dp[*]}; campaign ${dc[*]} |")
    if [ "$THROTTLED" -gt 0 ]; then
        mock POST '/_mock/config?replace=1' '{"webhooks": {"sent": false, "delivered_ratio": 0}}' >/dev/null
        mock POST /_mock/reset '{}' >/dev/null
        q "UPDATE wam.sender SET burst = NULL" >/dev/null
        q "SELECT wam.configure_sender('main', $RATE)" >/dev/null
        q "SELECT wam.create_campaign('throttled', 'all', '$TPL1', ARRAY['main'], send_windows => 'daily 00:00-24:00')" >/dev/null
        q "SELECT recipients FROM wam.launch_campaign('throttled', now() - interval '1 second')" >/dev/null
        q "UPDATE wam.outbox SET status = 'cancelled' WHERE campaign = 'throttled' AND customer_id > $THROTTLED" >/dev/null
        wait_idle "throttled run"
        log "B. throttled: $THROTTLED campaign messages at $RATE/min"
        q "SELECT wam.resume_sender('main')" >/dev/null
        wait_drained $((THROTTLED * 60 / RATE + 300)) || die "throttled drain did not finish"
        note_busy "throttled run"
        thr=$(q "WITH s AS (SELECT sending_at FROM wam.outbox WHERE campaign = 'throttled' AND status = 'sent')
                 SELECT (SELECT count(*) FROM s) || ' ' ||
                        round(((SELECT count(*) FROM s) - 1) * 60 / extract(epoch FROM (SELECT max(sending_at) - min(sending_at) FROM s)), 1) || ' ' ||
                        round(extract(epoch FROM (SELECT max(sending_at) - min(sending_at) FROM s))::numeric, 1)")
        set -- $thr
        dev=$(awk -v r="$2" -v c="$RATE" 'BEGIN { printf "%+.2f", (r - c) * 100 / c }')
        verdict=$(awk -v r="$2" -v c="$RATE" 'BEGIN { d = (r - c) / c; print (d <= 0.02 && d >= -0.02) ? "met" : "MISSED" }')
        rows_b+=("| throttled: $THROTTLED campaign messages at $RATE/min | — | **$2 per minute** ($dev %, within 2 %: $verdict) | $1 sent in $3 s |")
    fi
    stop_cluster
fi

report="# Campaign benchmarks

\`bash test/bench_campaign.sh\` — started $STARTED on $(nproc) CPUs shared with other engineers
(load average $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end); PostgreSQL 15,
shared_buffers 512MB, autovacuum off. Medians of the rounds given (each after one round not counted);
each enqueue and launch is timed inside a transaction that is then rolled back (and the queue vacuumed),
so every round starts from the same data. Other engineers' builds, tests and benchmarks share the two
CPUs: compare the columns of one row (measured in the same minutes), not absolute times across runs.

## A. Launch: \`wam.enqueue_segment\` vs the campaign with every rule

| customers | \`wam.enqueue_segment\` | \`wam.launch_campaign\` (× enqueue) | \`wam.preview_campaign\` | preview, cost 0.15 (lifetime value decides) | loading \`wam.campaign_variable\` | outcome at 0.10 (preview = launch) |
|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows_a[@]}")
"
if [ "${#rows_b[@]}" -gt 0 ]; then
    report+="
## B. Send time: the sender worker against the mock Cloud API

| what | plain (\`wam.enqueue_segment\`) | campaign (contact policy + send window at claim) | note |
|---|---|---|---|
$(printf '%s\n' "${rows_b[@]}")
"
fi
if [ "${#BUSY_NOTES[@]}" -gt 0 ]; then
    report+="
Other heavy work ran meanwhile: $(printf '%s; ' "${BUSY_NOTES[@]}")
"
fi
# the hand-written analysis below the marker in the earlier report stays
if [ -n "$OUT" ] && [ -f "$OUT" ] && grep -q '^<!-- notes -->' "$OUT"; then
    report+="
$(sed -n '/^<!-- notes -->/,$p' "$OUT")"
fi
bench_report "$report"
