#!/bin/bash
# test/mock/bench_mock.sh [REQUESTS] — throughput of the mock Cloud API alone.
#
# Builds test/mock/loadgen.c (libcurl multi), makes a throwaway CA, starts wa_mock.py with
# no rate/pair limits on a free loopback port, and sends REQUESTS (default 20000) POST
# /messages per case: plain HTTP/1.1, HTTPS HTTP/1.1 and HTTPS HTTP/2 (ALPN; libcurl
# multiplexes all streams on one connection), with 32 and 64 concurrent requests. Prints a
# markdown table with requests/s and the CPU time per request of the mock and of the load
# tool, plus the load average (the machine is shared: CPU per request is the number that
# does not depend on what else runs). Needs python3, openssl, gcc, libcurl4-openssl-dev.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
n=${1:-20000}
tmp=$(mktemp -d)
mock_pid=""
cleanup() {
    if [ -n "$mock_pid" ]; then
        kill "$mock_pid" 2>/dev/null || true
        wait "$mock_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

bash "$here/build_loadgen.sh" "$tmp/loadgen"
bash "$here/make_test_ca.sh" "$tmp/ca" >/dev/null
echo '{"numbers":{"106540352242922":{"rate_per_second":0,"pair_limit_seconds":0}}}' >"$tmp/cfg.json"

start_mock() { # start_mock [ARGS...] -> sets mock_pid, port
    python3 "$here/wa_mock.py" --port 0 --config "$tmp/cfg.json" "$@" >"$tmp/mock.out" 2>"$tmp/mock.err" &
    mock_pid=$!
    for _ in $(seq 100); do
        if grep -q '^READY port=' "$tmp/mock.out"; then
            port=$(sed -n 's/^READY port=//p' "$tmp/mock.out")
            return 0
        fi
        sleep 0.1
    done
    echo "mock did not start" >&2
    cat "$tmp/mock.err" >&2
    exit 1
}
stop_mock() {
    kill "$mock_pid"
    wait "$mock_pid" || true
    mock_pid=""
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

echo "## Mock Cloud API alone: $n requests per case ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs)"
echo
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| transport | protocol | concurrency | requests/s | mock CPU µs/request | loadgen CPU µs/request | errors |"
echo "|---|---|---|---|---|---|---|"
for case in "http h1" "https h1" "https h2"; do
    read -r scheme proto <<<"$case"
    if [ "$scheme" = https ]; then
        start_mock --tls-cert "$tmp/ca/server.pem" --tls-key "$tmp/ca/server.key"
        url="https://localhost:$port/v23.0/106540352242922/messages"
        ca="$tmp/ca/ca.pem"
    else
        start_mock
        url="http://127.0.0.1:$port/v23.0/106540352242922/messages"
        ca="-"
    fi
    for conc in 32 64; do
        a=$(ticks "$mock_pid")
        out=$("$tmp/loadgen" "$url" test-token "$conc" "$n" 1000000 "$ca" "$proto" 2>&1) || true
        b=$(ticks "$mock_pid")
        rps=$(sed -n 's/.* rps=\([0-9]*\).*/\1/p' <<<"$out")
        errs=$(sed -n 's/.* transport_errors=\([0-9]*\).*/\1/p' <<<"$out")
        lg=$(sed -n 's/.* client_cpu_seconds=\([0-9.]*\).*/\1/p' <<<"$out" | awk -v n="$n" '{ printf "%.0f", $1 * 1e6 / n }')
        mock=$(awk -v a="$a" -v b="$b" -v hz="$hz" -v n="$n" 'BEGIN { printf "%.0f", (b - a) / hz * 1e6 / n }')
        name=$([ "$proto" = h2 ] && echo "HTTP/2 (1 connection)" || echo "HTTP/1.1 keep-alive")
        echo "| $scheme | $name | $conc | ${rps:-?} | $mock | ${lg:-?} | ${errs:-?} |"
    done
    stop_mock
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
