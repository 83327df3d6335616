#!/usr/bin/env bash
# test/t/cdnow.sh — the CDNOW validation of the lifetime-value models (Fader, Hardie & Lee
# 2005, "Counting Your Customers the Easy Way"): load CDNOW_sample.txt (2,357 customers,
# 6,919 purchases) with wam.record_order, check that wam.clv_summary(calibration_end =>
# '1997-09-30', time_unit => '1 week') reproduces the published per-customer summaries
# exactly (all 2,357 rows; all 946 repeat buyers with their mean repeat spend), and that
# wam.fit_clv reproduces the published parameters within 1 %:
#   BG/NBD r = 0.2426, alpha = 4.4135, a = 0.7929, b = 2.4258;
#   Gamma-Gamma (946 repeat buyers) p = 6.25, q = 3.74, v = 15.45.
# The data are read by the client (psql \copy) from test/data/cdnow (a copy kept in the
# repository, see its README.md); WAM_CDNOW_DIR overrides the path.
# (SC2119: start_cluster takes optional settings, none here.)
# shellcheck disable=SC2119
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"
# shellcheck source=test/cdnow_load.sh
. "$repo/test/cdnow_load.sh"

dir=${WAM_CDNOW_DIR:-$repo/test/data/cdnow}
if [ ! -r "$dir/CDNOW_sample.txt" ]; then
    tap_not_ok "CDNOW data present" "no $dir/CDNOW_sample.txt (set WAM_CDNOW_DIR)"
    tap_done
fi
tap_ok "CDNOW data present ($dir)"

start_cluster || { echo "not ok - cdnow: cluster start"; exit 1; }
db=wam_cdnow_t
wam_psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    { echo "not ok - cdnow: create database"; exit 1; }
export PGDATABASE=$db PGOPTIONS="-c client_min_messages=warning -c timezone=UTC"
q() { wam_psql -qAt "$@"; }

q -c "CREATE EXTENSION pg_wamarketing" >/dev/null || { echo "not ok - cdnow: create extension"; exit 1; }

out=$(cdnow_load_sql "$dir" | q 2>&1)
tap_is "all 6,919 CDNOW purchases recorded with wam.record_order" "$(tail -n 1 <<<"$out")" "6919"
tap_is "incremental statistics equal those recomputed from the orders" \
    "$(q -c "SELECT customers, ok FROM wam.verify_order_stats()")" "2357|t"

# the calibration period ends 1997-09-30 (39 weeks); the summaries are rounded to 0.01
q -c "CREATE TABLE s AS SELECT * FROM wam.clv_summary('1997-09-30', '1 week')" >/dev/null
tap_is "summary: one row per customer (2,357)" "$(q -c "SELECT count(*) FROM s")" "2357"
tap_is "summary: frequency, recency and T of all 2,357 customers match cdnow_customers_summary.csv" \
    "$(q -c "SELECT count(*) FROM s JOIN cdnow_summary c ON c.id = s.customer_id
             WHERE c.frequency = s.frequency AND c.recency = round(s.recency::numeric, 2)
               AND c.\"T\" = round(s.\"T\"::numeric, 2)")" "2357"
tap_is "summary: the file has 946 repeat buyers" "$(q -c "SELECT count(*) FROM cdnow_summary_tx WHERE x > 0")" "946"
tap_is "summary: x, t_x, T and mean repeat spend (zbar) of all 946 repeat buyers match" \
    "$(q -c "SELECT count(*) FROM s JOIN cdnow_summary_tx t ON t.id = s.customer_id
             WHERE t.x > 0 AND t.x = s.frequency AND t.t_x = round(s.recency::numeric, 2)
               AND t.\"T\" = round(s.\"T\"::numeric, 2) AND t.zbar = round(s.monetary_value::numeric, 2)")" "946"
tap_is "summary: all 2,357 rows of the summary with transactions match (zbar 0 without repeats)" \
    "$(q -c "SELECT count(*) FROM s JOIN cdnow_summary_tx t ON t.id = s.customer_id
             WHERE t.x = s.frequency AND t.t_x = round(s.recency::numeric, 2)
               AND t.\"T\" = round(s.\"T\"::numeric, 2) AND t.zbar = round(s.monetary_value::numeric, 2)")" "2357"
mismatch=$(q -c "SELECT s.customer_id, s.frequency, round(s.recency::numeric, 2), round(s.\"T\"::numeric, 2),
                        round(s.monetary_value::numeric, 2), t.x, t.t_x, t.\"T\", t.zbar
                 FROM s JOIN cdnow_summary_tx t ON t.id = s.customer_id
                 WHERE (t.x, t.t_x, t.\"T\", t.zbar) IS DISTINCT FROM
                       (s.frequency, round(s.recency::numeric, 2), round(s.\"T\"::numeric, 2),
                        round(s.monetary_value::numeric, 2)) LIMIT 5")
[ -z "$mismatch" ] || printf '# first mismatches (id, ours, file): %s\n' "$mismatch"

# the fit: published values, each within 1 %
published="('bgnbd', 'r', 0.2426), ('bgnbd', 'alpha', 4.4135), ('bgnbd', 'a', 0.7929), ('bgnbd', 'b', 2.4258),
           ('gammagamma', 'p', 6.25), ('gammagamma', 'q', 3.74), ('gammagamma', 'v', 15.45)"
fit=$(q -c "SELECT string_agg(f.model || '.' || f.parameter || ' ' || round(f.value::numeric, 4) || ' (published '
                              || p.value || ', ' || round(100 * (f.value / p.value - 1)::numeric, 2) || ' %)', '; ')
            FROM wam.fit_clv('1997-09-30', '1 week') f
            JOIN (VALUES $published) p(model, parameter, value) USING (model, parameter)" 2>&1)
echo "# fit in weeks: $fit"
for mp in bgnbd:r:0.2426 bgnbd:alpha:4.4135 bgnbd:a:0.7929 bgnbd:b:2.4258 gammagamma:p:6.25 gammagamma:q:3.74 gammagamma:v:15.45; do
    IFS=: read -r m p v <<<"$mp"
    tap_is "fit: $m $p within 1 % of the published $v" \
        "$(q -c "SELECT abs(value / $v - 1) <= 0.01 FROM wam.clv_parameter WHERE model = '$m' AND parameter = '$p'")" "t"
done
tap_is "fit: 2,357 customers, 946 repeat buyers" "$(q -c "SELECT customers || ' ' || repeat_buyers FROM wam.clv_fit")" "2357 946"
tap_is "fit: BG/NBD log-likelihood -9582.4 (as published)" \
    "$(q -c "SELECT round(bgnbd_log_likelihood::numeric, 1) FROM wam.clv_fit")" "-9582.4"
# the paper's example customer: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in 39 weeks
tap_is "fit: E[purchases in 39 weeks | x = 2, t_x = 30.43, T = 38.86] = 1.226 (as published)" \
    "$(q -c "SELECT round(wam.bgnbd_expected_purchases(bgnbd, 2, 30.43, 38.86, 39)::numeric, 3) FROM wam.clv_fit")" "1.226"
# the same fit in days: alpha is 7 times larger, the other parameters stay
tap_is "fit in days: alpha = 7 x alpha in weeks, r, a, b, p, q, v unchanged (within 0.1 %)" \
    "$(q -c "WITH w AS (SELECT bgnbd, gammagamma FROM wam.clv_fit),
                  d AS (SELECT array_agg(value ORDER BY model, parameter) AS v
                        FROM wam.fit_clv('1997-09-30', '1 day'))
             SELECT bool_and(abs(x.d / x.w - 1) <= 0.001)
             FROM w, (SELECT unnest(ARRAY[w.bgnbd[3], w.bgnbd[2] * 7, w.bgnbd[4], w.bgnbd[1],
                                          w.gammagamma[1], w.gammagamma[2], w.gammagamma[3]]) AS w,
                             unnest((SELECT v FROM d)) AS d FROM w) x")" "t"

# RFM over the same base
tap_is "RFM: the refresh as of 1997-09-30 scores all 2,357 customers" \
    "$(q -c "SELECT sum(customers) FILTER (WHERE tier <> 'Prospects') FROM wam.refresh_rfm('1997-09-30')")" "2357"
tap_is "RFM: ... from the orders (later orders exist)" "$(q -c "SELECT source FROM wam.rfm_cut")" "orders"
tap_is "RFM: the refresh now scores all 2,357 customers" \
    "$(q -c "SELECT sum(customers) FILTER (WHERE tier <> 'Prospects') FROM wam.refresh_rfm()")" "2357"
tap_is "RFM: ... from the statistics" "$(q -c "SELECT source FROM wam.rfm_cut")" "statistics"
tap_is "RFM: wam.rfm_score agrees with the view for every customer" \
    "$(q -c "SELECT count(*) FROM wam.customer_rfm v, wam.rfm_score(v.customer_id) s
             WHERE (s.r, s.f, s.m, s.tier) = (v.r, v.f, v.m, v.tier)")" "2357"
tap_is "RFM: the top 20 % of buyers bring 67.5 % of revenue (value report)" \
    "$(q -c "SELECT revenue_share FROM wam.value_report() WHERE tier = 'top 20% of buyers'")" "67.5"

# concurrent writers: four sessions record orders for the same 60 customers, one
# transaction each (the per-customer lock path), while a fifth inserts 100-row batches
# (the table lock path) and 10-row batches (per-customer locks, set-based merge); the statistics must stay exact and nobody may fail.  (A single
# transaction recording orders of several customers one by one can deadlock with another
# doing so in a different order, as any updates of per-customer rows can.)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wam-cdnow.XXXXXX")
wam_on_exit "rm -rf '$tmp'"
for w in 1 2 3 4; do
    q -c "DO \$\$ BEGIN FOR k IN 1 .. 300 LOOP
            PERFORM wam.record_order(1 + (k * 7 + $w) % 60, 1 + k % 50, now() - ((k * $w) % 400) * interval '1 day');
            COMMIT; END LOOP; END \$\$" >"$tmp/w$w.out" 2>&1 &
done
q -c "DO \$\$ BEGIN FOR i IN 1 .. 20 LOOP
        INSERT INTO wam.customer_order (customer_id, ordered_at, amount)
        SELECT 1 + (i * 3 + k) % 80, now() - ((i + k) % 90) * interval '1 day', 9.99 FROM generate_series(1, 100) k;
        COMMIT;
        FOR j IN 1 .. 3 LOOP
            INSERT INTO wam.customer_order (customer_id, ordered_at, amount)
            SELECT 1 + (i * 5 + j + k) % 70, now() - k * interval '3 days', 1 FROM generate_series(1, 10) k;
            COMMIT;
        END LOOP; END LOOP; END \$\$" >"$tmp/bulk.out" 2>&1 &
wait
tap_is "concurrent writers: no session failed" "$(cat "$tmp"/*.out | grep -c ERROR)" "0"
grep -h ERROR "$tmp"/*.out | head -3 | sed 's/^/# /'
tap_is "concurrent writers: every order arrived" \
    "$(q -c "SELECT count(*) FROM wam.customer_order")" "$((6919 + 4 * 300 + 20 * 100 + 20 * 3 * 10))"
tap_is "concurrent writers: statistics equal those recomputed from the orders" \
    "$(q -c "SELECT mismatched, ok FROM wam.verify_order_stats()")" "0|t"

q -d postgres -c "DROP DATABASE $db" >/dev/null 2>&1 || true
tap_done
