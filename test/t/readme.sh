#!/usr/bin/env bash
# test/t/readme.sh — README.md is the user's manual, and this test keeps it true.
#
# 1. docs/reference.md (between <!-- reference:begin --> and <!-- reference:end -->)
#    must be exactly what test/lib/reference.sql prints in a fresh database with the
#    extension: every public function, table, view and setting, from the catalog and its
#    comments.
# 2. Every ```sql block of README.md runs, in order, in one psql session in a fresh
#    database. A ```sql block followed directly (blank lines aside) by a ```text block
#    must print exactly that text; a ```sql block without one must print no ERROR.
#    psql's "psql:FILE:LINE: " prefix of errors and notices is the only thing normalised.
#    Blocks that must not run use other fence languages (```sh, ```ini).
# 3. Negative controls: the extraction finds many blocks, and an altered copy of an
#    output block, or an error in a block that shows no output, is reported as a failure.
#
# Runs under `bash test/run check` (reuses its cluster) or alone as root.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"

# shellcheck disable=SC2119  # no extra server settings
start_cluster || { echo "not ok - readme: cluster start"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/wam-readme.XXXXXX")
chmod 777 "$work"
wam_on_exit "rm -rf '$work'"
db=wam_readme
refdb=wam_readme_ref
# the role the walk-through creates (roles are cluster-wide)
drop_all() {
    wam_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "DROP DATABASE IF EXISTS $refdb" \
        -c "DROP ROLE IF EXISTS shop_app" >/dev/null 2>&1
}
drop_all
wam_on_exit drop_all

# ------------------------------------------------------------------ the reference
wam_psql -q -d postgres -c "CREATE DATABASE $refdb" >/dev/null &&
    wam_psql -q -d "$refdb" -c "CREATE EXTENSION pg_wamarketing" >/dev/null ||
    { tap_not_ok "reference: create $refdb"; tap_done; }
ref_got=$(wam_psql -At -d "$refdb" -f "$repo/test/lib/reference.sql" 2>&1)
ref_doc=$(sed -n '/^<!-- reference:begin -->$/,/^<!-- reference:end -->$/p' "$repo/docs/reference.md" | sed '1d;$d')
# compare without leading and trailing blank lines
trim() { sed -e '/./,$!d' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }
ref_got=$(printf '%s\n' "$ref_got" | trim)
ref_doc=$(printf '%s\n' "$ref_doc" | trim)
if [ "$(printf '%s\n' "$ref_got" | grep -c '^- `')" -lt 100 ]; then
    tap_not_ok "reference: the generator lists at least 100 functions" "$ref_got"
else
    tap_ok "reference: the generator lists at least 100 functions"
fi
if printf '%s\n' "$ref_got" | grep -q '^#### Other$'; then
    tap_not_ok "reference: every function belongs to a subsystem" \
        "$(printf '%s\n' "$ref_got" | sed -n '/^#### Other$/,/^####/p')"
else
    tap_ok "reference: every function belongs to a subsystem"
fi
if printf '%s\n' "$ref_got" | grep -q '(no comment)'; then
    tap_not_ok "reference: every public function has a comment" \
        "$(printf '%s\n' "$ref_got" | grep '(no comment)')"
else
    tap_ok "reference: every public function has a comment"
fi
if [ "$ref_got" = "$ref_doc" ]; then
    tap_ok "reference: docs/reference.md holds the generated reference"
else
    tap_not_ok "reference: docs/reference.md holds the generated reference" \
        "regenerate it: psql -X -At -f test/lib/reference.sql (in a database with the extension)" \
        "$(diff <(printf '%s\n' "$ref_doc") <(printf '%s\n' "$ref_got") | head -n 40)"
fi

# ------------------------------------------------------------------ the examples
# Extract the blocks: $work/blocks/N.sql and, when the README shows its output, N.out.
extract() { # README OUTDIR -> prints "sql_blocks output_blocks"
    python3 - "$1" "$2" <<'PY'
import os, re, sys
readme, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
lines = open(readme, encoding='utf-8').read().split('\n')
blocks = []                      # (lang, text)
i = 0
while i < len(lines):
    m = re.match(r'^```([A-Za-z0-9_-]*)\s*$', lines[i])
    if not m:
        i += 1
        continue
    lang, body, start, i = m.group(1), [], i, i + 1
    while i < len(lines) and lines[i].rstrip() != '```':
        body.append(lines[i])
        i += 1
    # after the closing fence: only blank lines may separate a sql block from its output
    blocks.append((lang, '\n'.join(body), start, i))
    i += 1
nsql = nout = 0
for k, (lang, text, start, end) in enumerate(blocks):
    if lang != 'sql':
        continue
    nsql += 1
    with open(os.path.join(out, '%03d.sql' % nsql), 'w', encoding='utf-8') as f:
        f.write(text + '\n')
    if k + 1 < len(blocks) and blocks[k + 1][0] == 'text':
        between = lines[end + 1:blocks[k + 1][2]]
        if all(not l.strip() for l in between):
            nout += 1
            with open(os.path.join(out, '%03d.out' % nsql), 'w', encoding='utf-8') as f:
                f.write(blocks[k + 1][1] + '\n')
print(nsql, nout)
PY
}

# Run every N.sql of DIR in one session; N.got gets each block's output.
run_blocks() { # DIR DB
    local dir=$1 d=$2 f n
    : >"$dir/all.sql"
    for f in "$dir"/*.sql; do
        [ "$(basename "$f")" = all.sql ] && continue
        n=$(basename "$f" .sql)
        printf '\\echo @@block %s@@\n' "$n" >>"$dir/all.sql"
        cat "$f" >>"$dir/all.sql"
    done
    printf '\\echo @@block end@@\n' >>"$dir/all.sql"
    # stdout and stderr in one stream, in order: psql flushes before each message
    "$WAM_PG_BIN/psql" -X -v ON_ERROR_STOP=0 -h "$PGHOST" -p "$PGPORT" -U "${PGUSER:-wamtest}" \
        -d "$d" -f "$dir/all.sql" >"$dir/all.got" 2>&1
    python3 - "$dir" <<'PY'
import re, sys, os
d = sys.argv[1]
cur, buf = None, []
def flush():
    if cur is not None and cur != 'end':
        with open(os.path.join(d, cur + '.got'), 'w', encoding='utf-8') as f:
            f.write(''.join(buf))
for line in open(os.path.join(d, 'all.got'), encoding='utf-8'):
    m = re.match(r'^@@block (\w+)@@$', line.rstrip('\n'))
    if m:
        flush()
        cur, buf = m.group(1), []
        continue
    buf.append(re.sub(r'^psql:[^:]*:[0-9]+: ', '', line))
flush()
PY
}

# check_block DIR N -> 0 when the block's output is right; prints a diagnostic otherwise
check_block() {
    local dir=$1 n=$2 got
    got="$dir/$n.got"
    [ -f "$got" ] || { echo "no output captured"; return 1; }
    if [ -f "$dir/$n.out" ]; then
        # trailing blank lines (psql ends a result with one) are not shown in the README
        if diff <(trim <"$dir/$n.out") <(trim <"$got") >"$dir/$n.diff"; then
            return 0
        fi
        head -n 40 "$dir/$n.diff"
        return 1
    fi
    if grep -q '^ERROR:' "$got"; then
        grep -A3 '^ERROR:' "$got" | head -n 10
        return 1
    fi
    return 0
}

counts=$(extract "$repo/README.md" "$work/blocks") || { tap_not_ok "examples: extraction"; tap_done; }
read -r nsql nout <<<"$counts"
if [ "$nsql" -ge 20 ] && [ "$nout" -ge 10 ]; then
    tap_ok "examples: README.md has $nsql sql blocks, $nout with their output"
else
    tap_not_ok "examples: README.md has at least 20 sql blocks, 10 with their output" "found $nsql and $nout"
fi

wam_psql -q -d postgres -c "CREATE DATABASE $db" >/dev/null || { tap_not_ok "examples: create $db"; tap_done; }
run_blocks "$work/blocks" "$db"
for f in "$work"/blocks/[0-9]*.sql; do
    n=$(basename "$f" .sql)
    first=$(grep -m1 -v '^\s*\(--.*\)\?$' "$f" | cut -c1-60)
    if diag=$(check_block "$work/blocks" "$n"); then
        tap_ok "example $n: $first"
    else
        tap_not_ok "example $n: $first" "$diag" "--- the block:" "$(head -n 15 "$f")"
    fi
done

# ------------------------------------------------------------------ negative controls
# An altered output block must fail, and so must an error in a block without output.
neg=$work/neg
mkdir -p "$neg"
first_out=$(find "$work/blocks" -name '*.out' | sort | head -n 1)
if [ -n "$first_out" ]; then
    n=$(basename "$first_out" .out)
    cp "$work/blocks/$n.got" "$neg/a.got"
    sed '1s/$/ (altered)/' "$first_out" >"$neg/a.out"
    if check_block "$neg" a >/dev/null; then
        tap_not_ok "negative control: an altered output block is a failure"
    else
        tap_ok "negative control: an altered output block is a failure"
    fi
else
    tap_not_ok "negative control: an altered output block is a failure" "no output block found"
fi
printf 'SELECT 1;\n' >"$neg/b.sql"
printf 'psql:x.sql:3: ERROR:  relation "nowhere" does not exist\n' | sed 's/^psql:[^:]*:[0-9]*: //' >"$neg/b.got"
if check_block "$neg" b >/dev/null; then
    tap_not_ok "negative control: an ERROR in a block without output is a failure"
else
    tap_ok "negative control: an ERROR in a block without output is a failure"
fi
# the extraction pairs a sql block with a text block only when nothing but blank lines
# separates them
printf '```sql\nSELECT 1;\n```\n\n```text\nx\n```\n\n```sql\nSELECT 2;\n```\nprose\n```text\ny\n```\n' >"$neg/README.md"
tap_is "negative control: output blocks pair only with the sql block right before them" \
    "$(extract "$neg/README.md" "$neg/x")" "2 1"

tap_done
