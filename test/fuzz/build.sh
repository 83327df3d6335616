#!/bin/bash
# test/fuzz/build.sh — build the libFuzzer target and the seed-corpus generator.
#
#     test/fuzz/build.sh            # outputs test/fuzz/build/{fuzz_segment,make_corpus}
#
# The text parser is fuzzed too (-DWAM_FUZZ_TEXT) as soon as src/segment_text.c
# exists, so this script works both before and after it lands.
# Override the compiler with CC=clang-14 etc.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$here/build"
cc=${CC:-clang}

cd "$root"
mkdir -p "$out"

srcs=(test/fuzz/fuzz_segment.c src/wam_portable.c)
defs=()
if [ -f src/segment_text.c ]; then
    defs+=(-DWAM_FUZZ_TEXT)
    srcs+=(src/segment_text.c)
fi

# -fno-sanitize-recover makes UBSan findings abort, so libFuzzer records them
# as crashes instead of printing a warning and carrying on.
"$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Wall -Wextra -Werror -I src "${defs[@]}" "${srcs[@]}" \
    -lroaring -o "$out/fuzz_segment"

# The generator only runs on trusted input, so no sanitizers are needed.
"$cc" -g -O1 -Wall -Wextra -Werror test/fuzz/make_corpus.c -lroaring \
    -o "$out/make_corpus"

echo "built $out/fuzz_segment${defs[*]:+ (with ${defs[*]})} and $out/make_corpus"
