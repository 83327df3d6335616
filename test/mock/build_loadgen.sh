#!/bin/bash
# test/mock/build_loadgen.sh OUTFILE — compile test/mock/loadgen.c (needs build-essential and
# libcurl4-openssl-dev, both in WAM_APT_PACKAGES).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: $0 OUTFILE}
gcc -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra -Werror -o "$out" "$here/loadgen.c" -lcurl
