#!/bin/bash
# test/t/mock_api.sh — self-test of the mock WhatsApp Cloud API (test/mock/wa_mock.py).
#
# No PostgreSQL needed. test/mock/selftest.py starts the mock on a free loopback port (and a
# second one with TLS and a throwaway CA from test/mock/make_test_ca.sh) and prints one
# `ok - ...` / `not ok - ...` line per check: auth, validation errors, throughput (130429)
# and pair (131056) limits, every fault action, lost responses recorded as accepted, signed
# webhooks (HMAC verified), batching, duplicates, reordering, delays, tampering, inbound
# messages (phone and BSUID), the 24-hour window, reset/stats, HTTP keep-alive details, TLS.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/tap.sh
. "$root/test/lib/tap.sh"

if ! command -v python3 >/dev/null; then
    tap_not_ok "mock: python3 available"
    tap_done
fi
timeout -k 5 120 python3 "$root/test/mock/selftest.py"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "# selftest.py exited with status $rc"
fi
exit "$rc"
