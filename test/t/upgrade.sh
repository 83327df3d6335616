#!/usr/bin/env bash
# test/t/upgrade.sh — releases and upgrades: an updated installation is the same as a
# fresh one, and a released install script never changes.
#
# Released versions keep their install script, frozen, in src/sql/released/; the
# upgrade scripts live in src/sql/update/.  For the version under development
# (default_version of pg_wamarketing.control):
#   - if it has been released, the script built from src/sql must equal the frozen
#     one byte for byte: a change after a release needs a new version and an
#     upgrade script;
#   - every earlier release must reach it through ALTER EXTENSION ... UPDATE, and the
#     updated catalog (test/lib/catalog.sql: functions with bodies, settings, owners,
#     privileges and comments, types, operators, casts, aggregates, tables with
#     columns, constraints, indexes, triggers, views, sequences, dump configuration,
#     seeded rows) must equal that of a fresh CREATE EXTENSION;
#   - a database of each earlier release, with data, dumped and restored into the
#     new version, keeps its rows.
# A negative control makes sure the catalog comparison sees a one-word change.
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
start_cluster || { echo "not ok - upgrade: cluster start"; exit 1; }

# psql that fails on the first error, its messages on stderr for the diagnostics
sql() { wam_psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }
catalog() { sql -d "$1" -f "$repo/test/lib/catalog.sql"; }
fresh_db() {
    sql -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>&1 >/dev/null
}

current=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$repo/pg_wamarketing.control")
sharedir=$("${WAM_PG_CONFIG:-$WAM_PG_BIN/pg_config}" --sharedir)/extension
tap_is "the control file names the version under development" "$(grep -c . <<<"$current")" 1

# --- the fresh installation everything is compared with
if out=$(fresh_db wam_up_fresh && sql -d wam_up_fresh -c "CREATE EXTENSION pg_wamarketing" 2>&1); then
    tap_ok "fresh CREATE EXTENSION of $current"
else
    tap_not_ok "fresh CREATE EXTENSION of $current" "$out"
fi
fresh=$(catalog wam_up_fresh 2>&1)
nfun=$(grep -c '^function wam\.' <<<"$fresh")
if [ "$nfun" -gt 100 ]; then
    tap_ok "the catalog query runs and sees the public functions ($nfun)"
else
    tap_not_ok "the catalog query runs and sees the public functions" "$(head -5 <<<"$fresh")"
fi

# --- negative control: a one-word change in a copy must show
fresh_db wam_up_changed >/dev/null
sql -d wam_up_changed -c "CREATE EXTENSION pg_wamarketing" \
    -c "COMMENT ON FUNCTION wam.audience_size(text) IS 'changed'" >/dev/null 2>&1
changed=$(catalog wam_up_changed 2>&1)
tap_is "negative control: a changed comment shows in the comparison" \
    "$(diff <(echo "$fresh") <(echo "$changed") | grep -c '^[<>] function wam.audience_size(text)')" 2

# --- a released version's script is frozen
frozen="$repo/src/sql/released/pg_wamarketing--$current.sql"
if [ -f "$frozen" ]; then
    if cmp -s "$frozen" "$sharedir/pg_wamarketing--$current.sql"; then
        tap_ok "$current is released and its install script is unchanged"
    else
        tap_not_ok "$current is released and its install script is unchanged" \
            "the built script differs from $frozen:" \
            "$(diff "$frozen" "$sharedir/pg_wamarketing--$current.sql" | head -20)" \
            "a change after a release needs a new version in pg_wamarketing.control and an upgrade script in src/sql/update/"
    fi
fi

# --- every earlier release updates to the same catalog, and its dump restores
earlier=0
for f in "$repo"/src/sql/released/pg_wamarketing--*.sql; do
    [ -f "$f" ] || continue
    v=$(basename "$f" .sql); v=${v#pg_wamarketing--}
    [ "$v" = "$current" ] && continue
    earlier=$((earlier + 1))
    db=wam_up_from_${v//[^0-9a-z]/_}
    fresh_db "$db" >/dev/null
    if out=$(sql -d "$db" -c "CREATE EXTENSION pg_wamarketing VERSION '$v'" \
                 -c "ALTER EXTENSION pg_wamarketing UPDATE" \
                 -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_wamarketing'" 2>&1) &&
       [ "$(tail -1 <<<"$out")" = "$current" ]; then
        tap_ok "$v updates to $current"
    else
        tap_not_ok "$v updates to $current" "$out"
        continue
    fi
    updated=$(catalog "$db" 2>&1)
    if [ "$updated" = "$fresh" ]; then
        tap_ok "$v updated to $current has the catalog of a fresh $current"
    else
        tap_not_ok "$v updated to $current has the catalog of a fresh $current" \
            "$(diff <(echo "$fresh") <(echo "$updated") | head -40)"
    fi
    # a dump of the old version, with data, restores into the new one
    src=wam_up_dump_${v//[^0-9a-z]/_}
    fresh_db "$src" >/dev/null
    # the data is written through the API of version $v, so it uses only what $v has
    if ! out=$(sql -d "$src" -c "CREATE EXTENSION pg_wamarketing VERSION '$v'" \
                 -c "SELECT wam.create_tag('upgrade-check', 'interest')" \
                 -c "SELECT wam.upsert_customer('+85291234' || lpad(g::text, 3, '0')) FROM generate_series(1, 40) g" \
                 -c "SELECT wam.attach_tag('upgrade-check', wam.segment_agg(id)) FROM wam.customer WHERE id % 3 = 0" \
                 -c "SELECT wam.record_order(id, 10 * id) FROM wam.customer WHERE id <= 5" 2>&1); then
        tap_not_ok "a $v database is filled through its API" "$out"
        continue
    fi
    # rows and invariants, as seen on either side of the dump
    state="SELECT (SELECT count(*) FROM wam.customer) || ' customers, '
                  || wam.segment_cardinality(wam.tag_members('upgrade-check')) || ' tagged, '
                  || (SELECT count(*) FROM wam.customer_order) || ' orders, tag index '
                  || (SELECT bool_and(ok) FROM wam.verify_tag_index()) || ', order stats '
                  || (SELECT ok FROM wam.verify_order_stats())"
    tap_is "the $v database holds its data" "$(sql -d "$src" -c "$state" 2>&1)" \
        "40 customers, 13 tagged, 5 orders, tag index true, order stats true"
    dst=${src}_restored
    fresh_db "$dst" >/dev/null
    # A function whose signature changed since $v (DROP + CREATE in the update script) is
    # named with its old signature by the privileges in the old dump: restoring those
    # fails, harmlessly (the new function has its own). Those errors, and no other, are
    # expected. Signatures changed in 0.2: wam.record_order gained "code".
    changed_sigs='function wam.record_order(bigint, numeric, timestamp with time zone, boolean, jsonb) does not exist'
    out=$(_wam_as_owner "$WAM_PG_BIN/pg_dump" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -Fc -d "$src" |
          _wam_as_owner "$WAM_PG_BIN/pg_restore" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$dst" 2>&1)
    rc=$?
    unexpected=$(printf '%s\n' "$out" | grep -E 'ERROR:' | grep -vF "$changed_sigs")
    if [ "$rc" -eq 0 ] || { [ -z "$unexpected" ] && [ -n "$out" ]; }; then
        tap_is "a $v dump restores into $current with its rows and invariants" \
            "$(sql -d "$dst" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_wamarketing'" -c "$state" 2>&1 | tr '\n' ' ')" \
            "$current 40 customers, 13 tagged, 5 orders, tag index true, order stats true "
    else
        tap_not_ok "a $v dump restores into $current with its rows and invariants" "$out"
    fi
done
if [ "$earlier" -eq 0 ]; then
    echo "# no release before $current: nothing to update from yet"
fi
tap_is "every released version has an update path to $current" \
    "$(sql -d wam_up_fresh -c "SELECT count(*) FROM pg_extension_update_paths('pg_wamarketing')
                                WHERE target = '$current' AND source <> '$current' AND path IS NULL" 2>&1)" 0

for db in wam_up_fresh wam_up_changed; do sql -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; done
stop_cluster
tap_done
