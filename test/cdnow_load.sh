#!/usr/bin/env bash
# test/cdnow_load.sh — prints a psql script that loads the CDNOW sample (Fader, Hardie &
# Lee 2005: 2,357 customers, 6,919 purchases from 1997-01 to 1998-06) into pg_wamarketing
# through wam.record_order, and the published per-customer summaries into tables to
# check against:
#
#     bash test/cdnow_load.sh ../shared/data/cdnow | psql -X -v ON_ERROR_STOP=1 -d DB
#
# or, sourced, `cdnow_load_sql DIR`.  The client reads the files (\copy); the server never
# does.  The script creates customers 1 .. 2357 (id = CDNOW customer id, phone
# 1555xxxxxxx) and the tables cdnow_order, cdnow_summary and cdnow_summary_tx.  A CDNOW
# row is one order of `dollars` with units = CDs at midnight UTC of its date (UTC is the
# default day_time_zone); rows are recorded in file order.  (\copy does not expand psql
# variables, hence the paths are written into the script.)

cdnow_load_sql() {
    local dir=$1 f
    for f in CDNOW_sample.txt cdnow_customers_summary.csv cdnow_customers_summary_with_transactions.csv; do
        [ -r "$dir/$f" ] || { echo "cdnow_load: cannot read $dir/$f" >&2; return 1; }
    done
    _cdnow_q() { printf "'%s'" "${1//\'/\'\'}"; }
    cat <<SQL
\set ON_ERROR_STOP 1
CREATE TEMP TABLE cdnow_raw (line_no bigint GENERATED ALWAYS AS IDENTITY, line text);
\copy cdnow_raw (line) FROM $(_cdnow_q "$dir/CDNOW_sample.txt")
-- columns: original id, customer id 1 .. 2357, date YYYYMMDD, CDs, dollars
CREATE TABLE cdnow_order AS
SELECT r.line_no, f[1]::integer AS original_id, f[2]::bigint AS customer_id, to_date(f[3], 'YYYYMMDD') AS day,
       f[4]::integer AS cds, f[5]::numeric AS dollars
FROM cdnow_raw r, regexp_split_to_array(btrim(r.line), '\s+') f;
CREATE TABLE cdnow_summary (id bigint PRIMARY KEY, frequency integer, recency numeric, "T" numeric);
\copy cdnow_summary FROM $(_cdnow_q "$dir/cdnow_customers_summary.csv") WITH (FORMAT csv, HEADER)
CREATE TABLE cdnow_summary_tx (id bigint PRIMARY KEY, x integer, t_x numeric, "T" numeric, zbar numeric);
\copy cdnow_summary_tx FROM $(_cdnow_q "$dir/cdnow_customers_summary_with_transactions.csv") WITH (FORMAT csv, HEADER)
INSERT INTO wam.customer (id, phone) SELECT g, (15550000000 + g)::text FROM generate_series(1, 2357) g;
SELECT count(*) AS orders_recorded
FROM (SELECT wam.record_order(o.customer_id, o.dollars, o.day::timestamp AT TIME ZONE 'UTC', false,
                              jsonb_build_object('units', o.cds))
      FROM cdnow_order o ORDER BY o.line_no) x;
SQL
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    [ $# -eq 1 ] || { echo "usage: $0 CDNOW_DIR" >&2; exit 2; }
    cdnow_load_sql "$1"
fi
