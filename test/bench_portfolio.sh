#!/usr/bin/env bash
# test/bench_portfolio.sh — what the business portfolio's messaging limit costs a claim:
# wam_internal.claim_batch of 100 due templates (to new recipients) by a sender whose
# portfolio has already reached 0, 10,000 and 100,000 unique recipients in the last 24
# hours, with
#   A. the portfolio's limit (the way it is done: the counter wam.portfolio.recipients_24h
#      and one wam.portfolio_recipient lookup per candidate, under the portfolio's lock);
#   B. the same limit as the number's own cap (wam.sender.daily_limit: count(DISTINCT
#      recipient) over the sender's messages of the last 24 hours, what counting the
#      portfolio from wam.outbox would cost);
#   C. no limit at all.
# Each claim runs WAM_BENCH_ROUNDS times, undone after each (outside the timed part), the
# variants interleaved; the report gives medians. It also times the start of counting:
# wam.configure_portfolio giving an unlimited portfolio a limit reads the last 24 hours
# of wam.outbox once.
#
#     bash test/run build && bash test/bench_portfolio.sh
#
# Starts its own throwaway PostgreSQL 15 cluster (test/lib/cluster.sh; no workers).
# Prints a Markdown report and writes bench/results/portfolio.md with the default knobs.
#
# Knobs: WAM_BENCH_SIZES="0 10000 100000" recipients in the last 24 hours ·
# WAM_BENCH_ROUNDS=15 · WAM_BENCH_HISTORY=200000 older messages (25 to 73 hours ago) · WAM_BENCH_OUT=FILE · WAM_BENCH_PORT=55736 · WAM_BENCH_BUILD=1
# shellcheck disable=SC2016
set -euo pipefail

# shellcheck source=test/lib/bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

SIZES=${WAM_BENCH_SIZES:-0 10000 100000}
ROUNDS=${WAM_BENCH_ROUNDS:-15}
HISTORY=${WAM_BENCH_HISTORY:-200000}
bench_positive ROUNDS HISTORY
bench_out portfolio.md "$SIZES $ROUNDS $HISTORY" "0 10000 100000 15 200000"
bench_begin bench_portfolio
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
bench_require_extension 'wam_internal.set_portfolio_limit'

WAM_PRELOAD='' bench_cluster 55736 shared_buffers=512MB autovacuum=off
bench_db
export PGOPTIONS="-c client_min_messages=warning"
maxn=0
for n in $SIZES; do [ "$n" -gt "$maxn" ] && maxn=$n; done

log "setup: $((maxn + 100)) customers, one sender in portfolio shop"
q <<SQL >/dev/null
CREATE EXTENSION pg_wamarketing;
INSERT INTO wam.customer (id, phone, consent_at, consent_source)
SELECT g, (15550000000 + g)::text, now() - interval '1 year', 'bench' FROM generate_series(1, $maxn + 100) g;
SELECT wam.create_portfolio('shop');
SELECT wam.create_sender('s', '1001', 'EAAtoken', 'secret', 'https://localhost:9');
SELECT wam.configure_sender_account('s', 'shop');
-- history older than the window, the same at every size (a queue's table is not empty)
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, status, sending_at, sent_at, wamid)
SELECT 1, 1 + g % ($maxn + 100), (15550000000 + 1 + g % ($maxn + 100))::text,
	   '{"type":"template","template":{"name":"sale","language":{"code":"en"}}}', 'read',
	   now() - interval '25 hours' - (g % 172800) * interval '1 second', now() - interval '25 hours', 'wamid.h' || g
FROM generate_series(1, $HISTORY) g;
-- the time wam.configure_portfolio takes to give the unlimited portfolio a limit
CREATE FUNCTION bench_seed() RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	PERFORM wam.configure_portfolio('shop', 1000000);
	RETURN round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1);
END
\$\$;
-- ROUNDS rounds of the three variants (after one not counted): their medians
CREATE FUNCTION bench_rounds(rounds integer, OUT a numeric, OUT b numeric, OUT c numeric) LANGUAGE plpgsql AS \$\$
DECLARE
	ta double precision[] := '{}';
	tb double precision[] := '{}';
	tc double precision[] := '{}';
BEGIN
	FOR i IN 0 .. rounds LOOP
		IF i = 0 THEN
			PERFORM bench_claim('A'), bench_claim('B'), bench_claim('C');
			CONTINUE;
		END IF;
		ta := ta || bench_claim('A');
		tb := tb || bench_claim('B');
		tc := tc || bench_claim('C');
	END LOOP;
	SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY x))::numeric, 2) INTO a FROM unnest(ta) x;
	SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY x))::numeric, 2) INTO b FROM unnest(tb) x;
	SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY x))::numeric, 2) INTO c FROM unnest(tc) x;
END
\$\$;
-- one timed claim of 100, undone; variant A, B or C
CREATE FUNCTION bench_claim(variant text) RETURNS double precision LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz;
	ms double precision;
	ids bigint[];
BEGIN
	UPDATE wam.sender SET daily_limit = CASE WHEN variant = 'B' THEN 1000000 END WHERE name = 's';
	IF variant = 'A' THEN
		UPDATE wam.portfolio SET daily_limit = 1000000 WHERE name = 'shop';
	ELSE
		UPDATE wam.portfolio SET daily_limit = NULL WHERE name = 'shop';
	END IF;
	t0 := clock_timestamp();
	ids := ARRAY(SELECT b.message_id FROM wam_internal.claim_batch(wam.sender_id('s'), 100) b);
	ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
	IF cardinality(ids) <> 100 THEN
		RAISE EXCEPTION 'claimed % messages, not 100', cardinality(ids);
	END IF;
	-- undone: the messages wait again, their recipients are not counted
	UPDATE wam.outbox SET status = 'queued', sending_at = NULL, attempts = 0 WHERE message_id = ANY (ids);
	WITH d AS (DELETE FROM wam.portfolio_recipient r USING wam.outbox o
			   WHERE o.message_id = ANY (ids) AND r.recipient = o.recipient RETURNING 1)
	UPDATE wam.portfolio p SET recipients_24h = p.recipients_24h - (SELECT count(*) FROM d) WHERE p.name = 'shop';
	RETURN ms;
END
\$\$;
SQL

rows=()
seed_rows=()
for n in $SIZES; do
    log "size $n: $n templates sent in the last 24 hours, 100 due"
    q <<SQL >/dev/null
DELETE FROM wam.outbox WHERE sending_at IS NULL OR sending_at > now() - interval '24 hours';
UPDATE wam.portfolio SET daily_limit = NULL WHERE name = 'shop';
SELECT wam.configure_portfolio('shop', 0);
INSERT INTO wam.outbox (sender_id, customer_id, recipient, payload, status, sending_at, sent_at, wamid)
SELECT 1, g, (15550000000 + g)::text, '{"type":"template","template":{"name":"sale","language":{"code":"en"}}}',
	   'sent', now() - (g % 82800) * interval '1 second', now() - (g % 82800) * interval '1 second', 'wamid.' || g
FROM generate_series(1, $n) g;
SELECT count(wam.enqueue_message(g, '{"type":"template","template":{"name":"sale","language":{"code":"en"}}}', 's'))
FROM generate_series($maxn + 1, $maxn + 100) g;
VACUUM ANALYZE wam.outbox;
SQL
    seed_ms=$(q "SELECT bench_seed()")
    counted=$(q "SELECT recipients_24h FROM wam.portfolio WHERE name = 'shop'")
    [ "$counted" = "$n" ] || die "size $n: the portfolio counts $counted recipients"
    run_sql "VACUUM ANALYZE wam.portfolio_recipient"
    seed_rows+=("| $n | $seed_ms ms |")
    # one session: the claims' plans are cached as in the worker; one warm-up round first
    IFS=$'\t' read -r ma mb mc < <(q "SELECT * FROM bench_rounds($ROUNDS)")
    rows+=("| $n | **$ma ms** | $mb ms | $mc ms |")
    note_busy "size $n"
done

md="# What the portfolio's messaging limit costs a claim

\`bash test/bench_portfolio.sh\` — started $STARTED on $(nproc) CPUs; load
average $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end.

One claim (\`wam_internal.claim_batch\`) of 100 due templates to new recipients, by a sender
whose portfolio already reached 0, 10,000 or 100,000 unique recipients in the last 24 hours
(that many sent templates in \`wam.outbox\`, spread over 23 hours, beside $HISTORY older ones sent
25 to 73 hours ago). Median of $ROUNDS claims per
cell, in one session (plans cached, as in the worker; one round first, not counted), each
claim undone after it (outside the timed part), the variants interleaved:

- **portfolio limit**: the way claims count now — \`wam.portfolio.recipients_24h\` read under
  the portfolio's lock, expired recipients deleted by index range, one
  \`wam.portfolio_recipient\` lookup per candidate, the new recipients upserted;
- **per-number cap**: the same limit as \`wam.sender.daily_limit\` — \`count(DISTINCT recipient)\`
  over the sender's messages of the last 24 hours, which is what counting the portfolio's
  recipients from \`wam.outbox\` at every claim would cost (over all its senders);
- **no limit**: neither.

| recipients in 24 h | portfolio limit | per-number cap (count over wam.outbox) | no limit |
|---|---|---|---|
$(printf '%s\n' "${rows[@]}")

The portfolio limit's cost does not grow with the day's volume: the count is one counter,
kept by the claims (each deletes the recipients that left the 24-hour window since the
last claim and adds its new ones), so it adds about the same few milliseconds to a claim of
100 at every size (the lock, a lookup and an upsert per recipient). Counting over
\`wam.outbox\` grows with the volume, at every claim.

Starting to count: \`wam.configure_portfolio\` giving an unlimited portfolio a limit reads the last
24 hours of its senders' templates once (\`wam_internal.set_portfolio_limit\`):

| recipients in 24 h | configure_portfolio |
|---|---|
$(printf '%s\n' "${seed_rows[@]}")
${BUSY_NOTES[*]:+
Other work during the run: ${BUSY_NOTES[*]}.}"
bench_report "$md"
