#!/usr/bin/env bash
# test/bench_scheduler.sh — the scheduler worker's idle tick: what it costs the worker to
# look at wam.job when nothing is due, against an empty statement, in one run, with an
# empty and with a long job history (wam.job_run).
#
#     bash test/run build && bash test/bench_scheduler.sh
#
# Starts its own throwaway PostgreSQL 15 cluster (no preloading, so no worker runs; the
# script runs the worker's tick statements itself).  A tick is two statements in one
# transaction: the lookup of the extension in pg_extension and
# wam_internal.due_jobs(now()) (the due jobs and the time until the next).  Every job is
# scheduled a day ahead, so nothing is due.  pgbench (1 client, prepared statements) runs
# WAM_BENCH_TX ticks per round, against `SELECT 1` (the cost of any statement at all),
# alternating, WAM_BENCH_ROUNDS rounds each; the report gives the median latency per tick.
# Then wam.job_run gets WAM_BENCH_HISTORY rows and the tick is measured again.
#
# Prints a Markdown report on stdout and writes it to bench/results/scheduler.md with the
# default knobs.  Takes about a minute.
#
# Knobs (environment):
#   WAM_BENCH_TX=20000          ticks per round
#   WAM_BENCH_ROUNDS=3          rounds of each variant (median reported)
#   WAM_BENCH_HISTORY=1000000   rows of job history for the second measurement
#   WAM_BENCH_OUT=FILE          report file (default bench/results/scheduler.md at the defaults)
#   WAM_BENCH_PORT=55496        port of the private cluster (unix socket only)
#   WAM_BENCH_BUILD=1           run deps + make + make install first
set -euo pipefail

# shellcheck source=test/lib/bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

TX=${WAM_BENCH_TX:-20000}
ROUNDS=${WAM_BENCH_ROUNDS:-3}
HISTORY=${WAM_BENCH_HISTORY:-1000000}
bench_positive TX ROUNDS HISTORY
bench_out scheduler.md "$TX $ROUNDS $HISTORY" "20000 3 1000000"
bench_begin bench_scheduler
bench_require_extension 'wam_internal.due_jobs'

WAM_PRELOAD='' bench_cluster 55496
export PGDATABASE=postgres PGOPTIONS="-c client_min_messages=warning"
scripts=$WAM_CLUSTER_DIR/scripts
mkdir -p "$scripts"
q "CREATE EXTENSION pg_wamarketing" >/dev/null
q "UPDATE wam.job SET next_run_at = now() + interval '1 day'" >/dev/null
cat >"$scripts/tick.sql" <<'SQL'
BEGIN;
SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_wamarketing';
SELECT due, next_in_ms FROM wam_internal.due_jobs(pg_catalog.now());
COMMIT;
SQL
cat >"$scripts/empty.sql" <<'SQL'
SELECT 1;
SQL
q "CREATE TABLE public.bench_result (history bigint, variant text, round integer, latency_ms float8)" >/dev/null

run() { # HISTORY VARIANT ROUND
    local out lat
    out=$("$WAM_PG_BIN/pgbench" -n -M prepared -c 1 -t "$TX" -f "$scripts/$2.sql" 2>&1) || die "pgbench $2: $out"
    lat=$(printf '%s\n' "$out" | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p')
    [ -n "$lat" ] || die "pgbench $2: no latency in: $out"
    q "INSERT INTO public.bench_result VALUES ($1, '$2', $3, $lat)" >/dev/null
    log "history $1, $2, round $3: $lat ms"
}
measure() { # HISTORY
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        run "$1" tick "$r"
        run "$1" empty "$r"
    done
}
wait_idle "the idle tick"
measure 0
[ "$(q "SELECT count(*) FROM wam_internal.due_jobs(now()) WHERE due IS NULL")" = 1 ] || die "a job was due"
log "job history: $HISTORY rows"
q "INSERT INTO wam.job_run (job, scheduled_for, started_at, finished_at, ok, result)
   SELECT (ARRAY['expire tags', 'run tag rules', 'tag health report', 'tag audit'])[1 + g % 4],
          now() - g * interval '1 second', now() - g * interval '1 second', now() - g * interval '1 second', true, 'ok'
   FROM generate_series(1, $HISTORY) g" >/dev/null
q "VACUUM ANALYZE wam.job_run" >/dev/null
measure "$HISTORY"
note_busy "the idle tick"

table=$(q -c "SELECT format('| %s | %s | %s | %s |', to_char(history, 'FM999,999,999,990'),
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE variant = 'tick'))::numeric, 3),
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE variant = 'empty'))::numeric, 3),
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE variant = 'tick')
             - percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE variant = 'empty'))::numeric, 3))
    FROM public.bench_result GROUP BY history ORDER BY history")
bench_report "$(cat <<MD
## Scheduler: the idle tick

\`bash test/bench_scheduler.sh\` — $(date -u +%Y-%m-%d), PostgreSQL $(q "SHOW server_version"), $(nproc) CPUs;
pgbench, 1 client, $TX ticks per round, median of $ROUNDS rounds.  A tick with nothing due is
what the scheduler worker runs every \`wam.scheduler_naptime\` (default 10 s) or when the next job
falls due.

| job history (rows of wam.job_run) | idle tick, ms | \`SELECT 1\`, ms | tick less \`SELECT 1\`, ms |
|---:|---:|---:|---:|
$table
${BUSY_NOTES[*]:+
Notes: ${BUSY_NOTES[*]}}
MD
)"
