#!/bin/bash
# test/t/throttle_unit.sh — unit tests for the sender's rate control (src/worker_throttle.c).
#
# Builds test/unit/test_throttle.c against src/worker_throttle.c (PostgreSQL's headers only,
# no server) and runs it: a simulated API (random throttles, a real limit, both, everything
# throttled) on a simulated clock, so the checks are exact and read no timing.  The program
# prints one `ok - ...` / `not ok - ...` line per case, which become this script's TAP checks.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/tap.sh
. "$root/test/lib/tap.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pg_config=${WAM_PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
cflags=(-O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -I "$root/src" -I "$("$pg_config" --includedir-server)")
echo 'int main(void){return 0;}' >"$tmp/probe.c"
if gcc -fsanitize=address,undefined "$tmp/probe.c" -o "$tmp/probe" 2>/dev/null &&
    "$tmp/probe"; then
    cflags+=('-fsanitize=address,undefined' -fno-sanitize-recover=all)
fi

if ! out=$(gcc "${cflags[@]}" "$root/test/unit/test_throttle.c" "$root/src/worker_throttle.c" \
    -lm -o "$tmp/test_throttle" 2>&1); then
    tap_not_ok "throttle: compile test_throttle.c" "$out"
    tap_done
fi

"$tmp/test_throttle" | tap_import
rc=${PIPESTATUS[0]}
tap_is "throttle: test_throttle exits with status 0" "$rc" 0
tap_done
