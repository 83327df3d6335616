#!/bin/bash
# test/t/mock_api.sh — self-test of the mock WhatsApp Cloud API (test/mock/wa_mock.py).
#
# No PostgreSQL needed. test/mock/selftest.py starts the mock on a free loopback port (and a
# second one with TLS and a throwaway CA from test/mock/make_test_ca.sh) and prints one
# `ok - ...` / `not ok - ...` line per check: auth, validation errors, throughput (130429)
# and pair (131056) limits, every fault action, lost responses recorded as accepted, signed
# webhooks (HMAC verified), batching, duplicates, reordering, delays, tampering, inbound
# messages (phone and BSUID), the 24-hour window, reset/stats, HTTP keep-alive details,
# HTTP/2, TLS; then the shell helpers in test/mock/mock.sh.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/tap.sh
. "$root/test/lib/tap.sh"

if ! command -v python3 >/dev/null; then
    tap_not_ok "mock: python3 available"
    tap_done
fi
timeout -k 5 120 python3 "$root/test/mock/selftest.py" | tap_import
rc=${PIPESTATUS[0]}
tap_is "mock: selftest.py exits with status 0" "$rc" 0

# test/mock/mock.sh, the shell helpers other test scripts use
# shellcheck source=test/mock/mock.sh
. "$root/test/mock/mock.sh"
tmp=$(mktemp -d)
trap 'wa_mock_stop; rm -rf "$tmp"' EXIT
if wa_mock_start; then
    tap_ok "mock.sh: wa_mock_start"
    tap_is "mock.sh: WA_MOCK_API" "$WA_MOCK_API" "http://127.0.0.1:$WA_MOCK_PORT/v23.0"
    tap_is "mock.sh: wa_mock_ctl GET /_mock/health" "$(wa_mock_ctl GET /_mock/health)" '{"ok":true}'
    if wa_mock_ctl POST /_mock/config '{"bogus": 1}' >"$tmp/out"; then
        tap_not_ok "mock.sh: wa_mock_ctl fails on HTTP 400" "$(cat "$tmp/out")"
    else
        tap_is "mock.sh: wa_mock_ctl fails on HTTP 400" "$(cat "$tmp/out")" '{"error": "unknown configuration keys: bogus"}'
    fi
    pid=$WA_MOCK_PID
    wa_mock_stop
    if kill -0 "$pid" 2>/dev/null; then
        tap_not_ok "mock.sh: wa_mock_stop stops the mock"
    else
        tap_ok "mock.sh: wa_mock_stop stops the mock"
    fi
else
    tap_not_ok "mock.sh: wa_mock_start"
fi
if bash "$root/test/mock/make_test_ca.sh" "$tmp/ca" >/dev/null &&
    wa_mock_start --tls-cert "$tmp/ca/server.pem" --tls-key "$tmp/ca/server.key"; then
    WA_MOCK_CAFILE=$tmp/ca/ca.pem
    tap_is "mock.sh: HTTPS with WA_MOCK_CAFILE" "$WA_MOCK_URL $(wa_mock_ctl GET /_mock/health)" \
        "https://localhost:$WA_MOCK_PORT {\"ok\":true}"
    wa_mock_stop
else
    tap_not_ok "mock.sh: HTTPS with WA_MOCK_CAFILE"
fi
tap_done
