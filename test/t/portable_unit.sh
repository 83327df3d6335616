#!/bin/bash
# test/t/portable_unit.sh — unit tests for the portable-format validator (src/segment_portable.c).
#
# Builds test/unit/test_portable.c against src/segment_portable.c and CRoaring in a temp dir
# and runs it; the program prints one `ok - ...` / `not ok - ...` line per case.
# The validator must never read past its buffer, so when gcc can link AddressSanitizer
# the test is built with it (every buffer is handed over as an exact-size malloc copy).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/tap.sh
. "$root/test/lib/tap.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cflags=(-std=c99 -g -O1 -Wall -Wextra -Werror -I "$root/src")
echo 'int main(void){return 0;}' >"$tmp/probe.c"
if gcc -fsanitize=address,undefined "$tmp/probe.c" -o "$tmp/probe" 2>/dev/null &&
    "$tmp/probe"; then
    cflags+=('-fsanitize=address,undefined' -fno-sanitize-recover=all)
fi

if ! out=$(gcc "${cflags[@]}" "$root/test/unit/test_portable.c" "$root/src/segment_portable.c" \
    -lroaring -o "$tmp/test_portable" 2>&1); then
    tap_not_ok "portable: compile test_portable.c" "$out"
    tap_done
fi

"$tmp/test_portable"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "# test_portable exited with status $rc"
fi
exit "$rc"
