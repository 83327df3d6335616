#!/usr/bin/env bash
# test/bench_referral.sh — 100,000 referral inserts with every abuse check (the C trigger
# on wam.referral) against the same inserts without the trigger, side by side, in one run.
#
#     bash test/run build && bash test/bench_referral.sh
#
# Starts its own throwaway PostgreSQL 15 cluster (test/lib/cluster.sh; always stopped at
# exit) and creates 20,000 referrers with their codes (program with the default settings:
# cap 10, velocity 50 per hour, ring depth 5) and 100,000 new invitees.  The workload is
# 100,000 attempts, 5 per referrer, in a fixed order: a third carry a device fingerprint,
# every 50th is a self-referral, every 100th a mistyped code.  Each variant runs in ONE
# session, as a procedure issuing one single-row INSERT at a time:
#   1. each insert its own committed transaction (referrals arrive one by one)
#   2. 1,000 inserts per transaction (a batch)
#   3. for the record: wam.record_referral() calls (the API: checks the arguments, inserts,
#      returns the status), each its own transaction
# "without trigger" is the same INSERT into the same table with the trigger disabled
# (ALTER TABLE wam.referral DISABLE TRIGGER referral_check): same indexes, same foreign
# key on the invitee.  Between runs the referral tables and counters are reset and
# VACUUM ANALYZEd.  Each variant runs WAM_BENCH_ROUNDS times (default 3), with and without
# the trigger alternating; the report gives the median.  Times are server side
# (clock_timestamp() around the loop, commits included).
#
# Prints a Markdown report on stdout (progress on stderr) and writes it to
# bench/results/referral.md with the default sizes.  Takes ~2-4 minutes.
#
# Knobs (environment):
#   WAM_BENCH_REFERRALS=100000   attempts per run (referrers = attempts / 5)
#   WAM_BENCH_ROUNDS=3           runs of each variant (median reported)
#   WAM_BENCH_OUT=FILE           report file; default bench/results/referral.md with the
#                                default sizes, else none
#   WAM_BENCH_PORT=55493         port of the private cluster (unix socket only)
#   WAM_BENCH_BUILD=1            run deps + make + make install first
# (SC2016: SQL $1 and $$ are not shell expansions.)
# shellcheck disable=SC2016
set -euo pipefail

# shellcheck source=test/lib/bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

N=${WAM_BENCH_REFERRALS:-100000}
ROUNDS=${WAM_BENCH_ROUNDS:-3}
bench_positive N ROUNDS
if [ "$N" -lt 1000 ] || [ "$N" -gt 10000000 ]; then
    echo "error: WAM_BENCH_REFERRALS must be between 1,000 and 10,000,000" >&2
    exit 2
fi
bench_out referral.md "$N $ROUNDS" "100000 3"
REFERRERS=$((N / 5))
bench_begin bench_referral
bench_require_extension 'wam.record_referral'

bench_cluster 55493
export PGDATABASE=postgres PGOPTIONS="-c client_min_messages=warning"

log "setup: $REFERRERS referrers, $N invitees"
q <<SQL >/dev/null
CREATE EXTENSION pg_wamarketing;
INSERT INTO wam.customer (id, phone) SELECT g, (85260000000 + g)::text FROM generate_series(1, $REFERRERS + $N) g;
SELECT wam.create_referral_program('bench');
SELECT count(wam.referral_code(g, 'bench')) FROM generate_series(1, $REFERRERS) g;
-- the workload: attempt i by referrer 1 + i % REFERRERS (5 each, spread out in time)
CREATE TABLE bench_in AS
SELECT i,
       CASE WHEN i % 100 = 0 THEN overlay(r.code placing CASE WHEN substr(r.code, 3, 1) = 'A' THEN 'B' ELSE 'A' END from 3 for 1)
            ELSE r.code END AS code,
       CASE WHEN i % 50 = 0 THEN r.customer_id ELSE $REFERRERS + i END AS invitee,
       CASE WHEN i % 3 = 0 THEN jsonb_build_object('device', 'device-' || i) END AS source
FROM generate_series(1, $N) i
JOIN wam.referrer r ON r.customer_id = 1 + i % $REFERRERS;
CREATE TABLE bench_result (variant text, trigger boolean, round integer, seconds float8, outcome text);
CREATE PROCEDURE bench_reset() LANGUAGE plpgsql AS \$\$
BEGIN
	TRUNCATE wam.referral, wam.customer_fingerprint, wam.referral_review, wam.referral_reward;
	UPDATE wam.referrer SET accepted = 0, qualified = 0, status = 'active', frozen_at = NULL, velocity_since = NULL;
END \$\$;
CREATE PROCEDURE bench_run(variant text, use_trigger boolean, round integer) LANGUAGE plpgsql AS \$\$
DECLARE
	r record;
	n integer := 0;
	t0 timestamptz;
	st text;
BEGIN
	IF use_trigger THEN
		ALTER TABLE wam.referral ENABLE TRIGGER referral_check;
	ELSE
		ALTER TABLE wam.referral DISABLE TRIGGER referral_check;
	END IF;
	COMMIT;
	t0 := clock_timestamp();
	FOR r IN SELECT * FROM bench_in ORDER BY i LOOP
		IF variant = 'api' THEN
			st := wam.record_referral(r.code, r.invitee, r.source);
		ELSE
			INSERT INTO wam.referral (code, invitee_id, source) VALUES (r.code, r.invitee, r.source);
		END IF;
		n := n + 1;
		IF variant <> 'batch' OR n % 1000 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
	COMMIT;
	INSERT INTO bench_result
	SELECT variant, use_trigger, round, extract(epoch FROM clock_timestamp() - t0),
		   (SELECT string_agg(format('%s %s', x.c, x.s), ', ' ORDER BY x.c DESC)
			FROM (SELECT coalesce(status || coalesce(' (' || reason || ')', ''), '?') AS s, count(*) AS c
				  FROM wam.referral GROUP BY 1) x);
	COMMIT;
	ALTER TABLE wam.referral ENABLE TRIGGER referral_check;
END \$\$;
SQL

run() { # run VARIANT TRIGGER ROUND
    q -c "CALL bench_reset()" -c "VACUUM ANALYZE wam.referral, wam.referrer, wam.customer_fingerprint" >/dev/null
    q -c "CALL bench_run('$1', $2, $3)" >/dev/null
    log "$1 trigger=$2 round $3: $(q -c "SELECT round(seconds::numeric, 2) || ' s' FROM bench_result WHERE variant = '$1' AND trigger = $2 AND round = $3")"
}
for round in $(seq 1 "$ROUNDS"); do
    for variant in single batch; do
        if [ $((round % 2)) = 1 ]; then
            run "$variant" false "$round"; run "$variant" true "$round"
        else
            run "$variant" true "$round"; run "$variant" false "$round"
        fi
    done
    run api true "$round"
done
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

report=$(q <<SQL
WITH m AS (
	SELECT variant, trigger, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS s, count(*) AS runs
	FROM bench_result GROUP BY 1, 2
), t AS (
	SELECT v.variant, v.label, a.s AS plain, b.s AS checked, b.runs
	FROM (VALUES (1, 'single', 'each insert its own transaction'), (2, 'batch', '1,000 inserts per transaction'),
				 (3, 'api', 'wam.record_referral(), each its own transaction')) v(o, variant, label)
	LEFT JOIN m a ON a.variant = v.variant AND NOT a.trigger
	JOIN m b ON b.variant = v.variant AND b.trigger
	ORDER BY v.o
)
SELECT format('| %s | %s | %s | %s | %s | %s |', label,
			  coalesce(to_char($N / plain, 'FM999,999,990') || '/s (' || round(plain::numeric, 2) || ' s)', '—'),
			  to_char($N / checked, 'FM999,999,990') || '/s (' || round(checked::numeric, 2) || ' s)',
			  coalesce(round((checked / plain)::numeric, 2) || '×', '—'),
			  CASE WHEN $N / checked >= 5000 THEN 'met' ELSE 'MISSED' END,
			  CASE WHEN plain IS NULL THEN '—' WHEN checked <= 2 * plain THEN 'met' ELSE 'MISSED' END)
FROM t;
SQL
)
outcome=$(q -c "SELECT outcome FROM bench_result WHERE trigger AND variant = 'single' ORDER BY round LIMIT 1")
runs=$(q -c "SELECT string_agg(format('%s %s: %s', variant, CASE WHEN trigger THEN 'with' ELSE 'without' END, times), '; ' ORDER BY o, NOT trigger)
FROM (SELECT variant, trigger, CASE variant WHEN 'single' THEN 1 WHEN 'batch' THEN 2 ELSE 3 END AS o,
             string_agg(round(seconds::numeric, 2)::text || ' s', ', ' ORDER BY round) AS times
      FROM bench_result GROUP BY 1, 2) x")

md=$(cat <<EOF
# Referral inserts with every abuse check: C trigger vs no trigger

Command: \`bash test/bench_referral.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), PostgreSQL $("$WAM_PG_BIN/postgres" -V | awk '{print $3}'),
$(nproc) CPUs, load average at start $LOADAVG_START, at end $LOADAVG_END).

$N single-row inserts into \`wam.referral\` in one session, $REFERRERS referrers (5 attempts each),
median of $ROUNDS runs, server-side time including commits. The trigger looks up and locks
the referrer, checks self-referral, phone and device fingerprints, existing customer, first
referral wins (advisory locks on the invitee and the referrer), rings (depth 5), cap and velocity (rolling hour), and
updates the referrer's counter.

| variant | without trigger | with the checks (C trigger) | cost ratio | ≥ 5,000/s | ≤ 2× |
|---|---|---|---|---|---|
$report

Each run, in order: $runs.

Outcome of a run with the trigger: $outcome.
EOF
)
bench_report "$md"
