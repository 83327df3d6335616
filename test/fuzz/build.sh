#!/bin/bash
# test/fuzz/build.sh — build the libFuzzer targets and the seed-corpus generator.
#
#     test/fuzz/build.sh            # outputs test/fuzz/build/{fuzz_segment,fuzz_expr,
#                                   #   fuzz_phone,fuzz_csv,fuzz_refcode,make_corpus}
#
# Every target is compiled with AddressSanitizer and UndefinedBehaviorSanitizer over the
# PostgreSQL-free C files it exercises (the parsers and validators are written without
# PostgreSQL headers precisely so that they can be fuzzed in-process).
# Override the compiler with CC=clang-14 etc.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$here/build"
cc=${CC:-clang}

cd "$root"
mkdir -p "$out"

# -fno-sanitize-recover makes UBSan findings abort, so libFuzzer records them
# as crashes instead of printing a warning and carrying on.
fuzz_cc() { # fuzz_cc OUTPUT SOURCES... [LIBS]
    local target=$1
    shift
    "$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -Wall -Wextra -Werror -I src "$@" -o "$out/$target"
}

fuzz_cc fuzz_segment -DWAM_FUZZ_TEXT test/fuzz/fuzz_segment.c src/segment_portable.c \
    src/segment_text.c -lroaring
fuzz_cc fuzz_expr test/fuzz/fuzz_expr.c src/expr_parse.c src/expr_deparse.c
fuzz_cc fuzz_phone test/fuzz/fuzz_phone.c src/phone.c src/phone_data.c
fuzz_cc fuzz_csv test/fuzz/fuzz_csv.c src/csv.c
fuzz_cc fuzz_refcode test/fuzz/fuzz_refcode.c src/referral_code.c

# The generator only runs on trusted input, so no sanitizers are needed.
"$cc" -g -O1 -Wall -Wextra -Werror test/fuzz/make_corpus.c -lroaring \
    -o "$out/make_corpus"

echo "built $out/{fuzz_segment,fuzz_expr,fuzz_phone,fuzz_csv,fuzz_refcode,make_corpus}"
