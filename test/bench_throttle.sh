#!/usr/bin/env bash
# test/bench_throttle.sh — the sender worker's rate under throttling answers, against the mock
# Cloud API over TLS on loopback: a drain at 12,000 per minute (200/s) with no throttles, with
# 5 % of requests answered 130429 at random (whatever the rate), against a real limit of 80/s
# (the mock's sliding one-second window), and both. Prints a table and writes
# bench/results/throttle.md.
#
#   bash test/bench_throttle.sh
#
# Knobs: WAM_BENCH_N=3000 messages per run · WAM_BENCH_RATE=12000 per minute ·
# WAM_BENCH_RUNS='1 2 3 4' which of the four runs (in the order above) ·
# WAM_MOCK_PORT (18260) · WAM_BENCH_PORT (WAM_TEST_PORT + 30).
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WAM_REPO_DIR=$repo
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/sender.sh
. "$repo/test/lib/sender.sh"

N=${WAM_BENCH_N:-3000}
RATE=${WAM_BENCH_RATE:-12000}
export WAM_SENDER_PORT=${WAM_BENCH_PORT:-$((${WAM_TEST_PORT:-55432} + 30))}
out=$repo/bench/results/throttle.md
mkdir -p "$repo/bench/results"

log() { echo "[bench] $*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

sender_setup || { echo "setup failed" >&2; exit 1; }
TPL='{"type":"template","template":{"name":"spring_sale","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{first_name}"}]}]}}'
q "SELECT wam.create_sender('main', '106540352242922', 'test-token', 'test-app-secret', '$(mock_url)', $RATE)" >/dev/null
q "INSERT INTO wam.customer (id, phone, name, consent_at, consent_source)
   SELECT g, '1555' || lpad(g::text, 7, '0'), 'Customer ' || g, now(), 'bench' FROM generate_series(1, $N) g" >/dev/null
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(load)
rows=()
RUNS=" ${WAM_BENCH_RUNS:-1 2 3 4} "

run() { # NAME LIMIT_PER_S FAULTS_JSON
    local name=$1 limit=$2 faults=$3 r n429 backoffs
    # the rate of the previous run has grown back (an idle sender's rate doubles every 10 s)
    for _ in $(seq 1 900); do
        [ "$(q "SELECT coalesce(bool_and(current_rate_per_minute = configured_rate_per_minute), true) FROM wam.worker_status")" = t ] && break
        sleep 0.1
    done
    mock POST '/_mock/config?replace=1' "{\"numbers\": {\"106540352242922\": {\"rate_per_second\": $limit, \"pair_limit_seconds\": 0}},
        \"webhooks\": {\"sent\": false, \"delivered_ratio\": 0}, \"faults\": $faults}" >/dev/null
    mock POST /_mock/reset '{}' >/dev/null
    backoffs=$(grep -c 'was throttled by the API; backing off' "$WAM_SERVER_LOG")
    q "SELECT queued FROM wam.enqueue_segment(wam.segment_range(1, $N + 1), '$TPL', campaign => '$name', vars => '{\"first_name\": \"x\"}')" >/dev/null
    wait_drained 900 || log "$name: not drained"
    n429=$(mock GET /_mock/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["rejected_by_code"].get("130429", 0))')
    # steady: the messages taken in the middle of the drain, 3 s after its start to 3 s before its end
    r=$(q "WITH o AS (SELECT * FROM wam.outbox WHERE campaign = '$name'),
                s AS (SELECT min(sending_at) AS t0, max(sent_at) AS t1 FROM o)
           SELECT count(*) FILTER (WHERE status = 'sent') || ' ' || round(extract(epoch FROM t1 - t0)::numeric, 1)
              || ' ' || round(count(*) FILTER (WHERE status = 'sent') / extract(epoch FROM t1 - t0), 1)
              || ' ' || round(count(*) FILTER (WHERE sent_at > t0 + interval '3 s' AND sent_at <= t1 - interval '3 s')
                              / (extract(epoch FROM t1 - t0) - 6), 1)
           FROM o, s GROUP BY t0, t1")
    set -- $r
    rows+=("| $name | $1 | $2 s | **$3/s** | $4/s | $(python3 -c "print(round(100.0 * $3 / ($RATE / 60.0)))") % | $n429 ($(python3 -c "print(round(100.0 * $n429 / ($n429 + $1), 1))") % of requests) | $(($(grep -c 'was throttled by the API; backing off' "$WAM_SERVER_LOG") - backoffs)) |")
    log "${rows[-1]}"
}

random5='[{"match": {"probability": 0.05, "seed": 7}, "action": "error", "code": 130429}]'
[[ $RUNS == *" 1 "* ]] && run "no throttles" 0 '[]'
[[ $RUNS == *" 2 "* ]] && run "5 % random 130429" 0 "$random5"
[[ $RUNS == *" 3 "* ]] && run "real limit 80/s" 80 '[]'
[[ $RUNS == *" 4 "* ]] && run "real limit 80/s + 5 % random" 80 "$random5"

{
    echo "# Sender rate under throttling"
    echo
    echo "\`bash test/bench_throttle.sh\` — started $started on $(nproc) CPUs; load average $load_start at"
    echo "the start, $(load) at the end. $N messages per run at a configured $RATE per minute"
    echo "($((RATE / 60))/s), the mock Cloud API (\`test/mock/wa_mock.py\`, TLS) on loopback; throttled"
    echo "messages are retried 1–2 s later. Rate = messages sent ÷ (last \`sent_at\` − first \`sending_at\`),"
    echo "so the retries' wait at the end of each drain counts against it; steady = messages sent from 3 s"
    echo "after the start to 3 s before the end, per second."
    echo
    echo "| API answers | sent | drain | rate | steady | rate of configured | 130429 answers | back-offs logged |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} >"$out"
cat "$out"
