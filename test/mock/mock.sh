# shellcheck shell=bash
# test/mock/mock.sh — source it from test scripts to run the mock Cloud API (wa_mock.py).
#
#     wa_mock_start [wa_mock.py options]   # --port 0 unless given; waits for READY; sets
#                                          # WA_MOCK_PID, WA_MOCK_PORT, WA_MOCK_URL (base URL,
#                                          # https://localhost:PORT with --tls-cert) and
#                                          # WA_MOCK_API (…/v23.0 — the sender's api_base_url)
#     wa_mock_ctl METHOD PATH [JSON]       # control API, e.g. wa_mock_ctl POST /_mock/reset;
#                                          # prints the body; exit 1 unless HTTP 200
#     wa_mock_stop                         # SIGTERM, wait (also run at exit when wam_on_exit
#                                          # from test/lib/cluster.sh is available)
#
# Set WA_MOCK_CAFILE to the test CA (make_test_ca.sh OUTDIR → OUTDIR/ca.pem) when the mock
# serves HTTPS. Needs only python3 (no curl CLI). See test/mock/PROTOCOL.md.

WA_MOCK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WA_MOCK_PID=""
WA_MOCK_PORT=""
WA_MOCK_URL=""
WA_MOCK_API=""

wa_mock_start() {
    local out a port_given=0 tls=0 i
    for a in "$@"; do
        case $a in
            --port) port_given=1 ;;
            --tls-cert) tls=1 ;;
        esac
    done
    out=$(mktemp)
    if [ "$port_given" = 1 ]; then
        python3 "$WA_MOCK_DIR/wa_mock.py" "$@" >"$out" &
    else
        python3 "$WA_MOCK_DIR/wa_mock.py" --port 0 "$@" >"$out" &
    fi
    WA_MOCK_PID=$!
    if declare -F wam_on_exit >/dev/null; then
        wam_on_exit wa_mock_stop
    fi
    for i in $(seq 200); do
        if grep -q '^READY port=' "$out"; then
            WA_MOCK_PORT=$(sed -n 's/^READY port=//p' "$out")
            rm -f "$out"
            if [ "$tls" = 1 ]; then
                WA_MOCK_URL="https://localhost:$WA_MOCK_PORT"
            else
                WA_MOCK_URL="http://127.0.0.1:$WA_MOCK_PORT"
            fi
            WA_MOCK_API="$WA_MOCK_URL/v23.0"
            export WA_MOCK_PID WA_MOCK_PORT WA_MOCK_URL WA_MOCK_API
            return 0
        fi
        if ! kill -0 "$WA_MOCK_PID" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    echo "wa_mock_start: the mock did not start (after ${i} tries)" >&2
    rm -f "$out"
    wa_mock_stop
    return 1
}

wa_mock_stop() {
    if [ -n "$WA_MOCK_PID" ]; then
        kill -TERM "$WA_MOCK_PID" 2>/dev/null || true
        wait "$WA_MOCK_PID" 2>/dev/null || true
        WA_MOCK_PID=""
    fi
}

wa_mock_ctl() {
    local method=$1 path=$2 body=${3:-}
    python3 - "$method" "$WA_MOCK_URL$path" "$body" "${WA_MOCK_CAFILE:-}" <<'PY'
import ssl, sys, urllib.error, urllib.request
method, url, body, ca = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca) if ca else None
req = urllib.request.Request(url, data=body.encode() if body else (b"" if method == "POST" else None),
                             method=method, headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
        sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    sys.stdout.write(e.read().decode())
    sys.exit(1)
PY
}
