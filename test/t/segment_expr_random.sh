#!/usr/bin/env bash
# test/t/segment_expr_random.sh — segment expressions against plain SQL on random data,
# many seeds: runs sql/segment_expr_random.sql (the pg_regress test runs seeds 1-3) for
# seeds 100 .. 100 + WAM_EXPR_SEEDS - 1, WAM_EXPR_PER_SEED random expressions each, in its
# own database.  Every expression's audience() must equal the customers its plain SQL
# condition selects, audience_size() their number, and every audience_funnel() step the
# count of its own text.  One `ok` line per seed.
#
# Runs under `bash test/run check` (reuses its cluster) or alone as root.
# Knobs: WAM_EXPR_SEEDS=15  WAM_EXPR_PER_SEED=40  WAM_EXPR_FIRST_SEED=100
# (SC2119: start_cluster takes optional settings, none here.)
# shellcheck disable=SC2119
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

seeds=${WAM_EXPR_SEEDS:-15}
per_seed=${WAM_EXPR_PER_SEED:-40}
first=${WAM_EXPR_FIRST_SEED:-100}

start_cluster || { echo "not ok - segment_expr_random: cluster start"; exit 1; }

db=wam_expr_random_t
wam_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    { echo "not ok - segment_expr_random: create database $db"; exit 1; }
wam_on_exit "wam_psql -q -d postgres -c 'DROP DATABASE IF EXISTS $db' >/dev/null 2>&1"

# The SQL file reads the seeds from psql variables; its last queries print one
# "seed|expressions|failures" line per seed and then the failing expressions.
out=$(wam_psql -X -q -At -F '|' -d "$db" -v first_seed="$first" -v seeds="$seeds" \
    -v per_seed="$per_seed" -f "$repo/sql/segment_expr_random.sql" 2>&1)
rc=$?
if [ "$rc" -ne 0 ]; then
    tap_not_ok "segment_expr_random: psql exited with $rc" "$(tail -n 20 <<<"$out")"
    tap_done
fi

seen=0
for ((s = first; s < first + seeds; s++)); do
    line=$(grep -E "^$s\|[0-9]+\|[0-9]+$" <<<"$out" | head -n 1)
    if [ -z "$line" ]; then
        tap_not_ok "seed $s: no result line"
        continue
    fi
    seen=$((seen + 1))
    IFS='|' read -r _ n fails <<<"$line"
    if [ "$n" = "$per_seed" ] && [ "$fails" = 0 ]; then
        tap_ok "seed $s: $n random expressions agree with plain SQL"
    else
        tap_not_ok "seed $s: $fails of $n expressions disagree with plain SQL" \
            "$(grep -E "^$s\|[0-9]+\|" <<<"$out" | grep -vE "^$s\|[0-9]+\|[0-9]+$" | head -n 5)"
    fi
done
if grep -q '^t$' <<<"$(tail -n 1 <<<"$out")"; then
    tap_ok "the random expressions used every operand kind and operator spelling"
else
    tap_not_ok "the random expressions used every operand kind and operator spelling" "$(tail -n 3 <<<"$out")"
fi
echo "# $seen seeds x $per_seed expressions"
tap_done
