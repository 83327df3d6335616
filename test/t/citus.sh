#!/usr/bin/env bash
# test/t/citus.sh — wam.segment on a Citus 13.2.2 cluster: a coordinator and two workers
# (test/lib/citus.sh; unix sockets only, run as the unprivileged test OS user, always stopped),
# with shared_preload_libraries = 'citus,pg_wamarketing'.
#
#   1. The cluster: Citus at the vendored version on every node, two active workers, and
#      CREATE EXTENSION pg_wamarketing on the coordinator propagated to both workers.
#   2. The type on distributed tables: a table distributed by customer_id (4 shards) with tags
#      of 25/40/8 %; every segment aggregate (segment_agg with FILTER, segment_union_agg,
#      segment_intersect_agg, segment_repeat_agg) is planned as worker_partial_agg on each of
#      the 4 shards and coord_combine_agg on the coordinator (EXPLAIN VERBOSE, all tasks
#      shown); the answers equal those of the same data in a local table and of plain SQL;
#      operators and casts in distributed queries, in a co-located join and on a distributed
#      table of segment values; GROUP BY tag and GROUP BY a segment.
#   3. wam.segment_output_format: a worker prints a partial state as {…} or \x… according to
#      its own setting, the coordinator reads both (workers set differently, same answer),
#      and the coordinator's setting decides only the final output.
#   4. segment_repeat_agg ("event(kind) >= n within w") over distributed events, on the workers.
#   5. What fails, and how: clear errors from the workers (an id out of range, a repeat count
#      that differs between rows, a corrupt partial state), never a wrong answer.
#   6. The extension's own tables stay local to the coordinator, where audiences work as on one
#      node; distributing wam.event is refused (its triggers) rather than done half.
#
# Ports: WAM_CITUS_PORT (default 56700) and the next two. Citus must be installed in
# $WAM_PG_CONFIG at 13.2.2 (test/run builds it from the vendored archive: test/lib/citus.sh).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export WAM_REPO_DIR=$repo
# shellcheck source=test/lib/deps.sh
. "$repo/test/lib/deps.sh"
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"
# shellcheck source=test/lib/citus.sh
. "$repo/test/lib/citus.sh"

# the nodes' directory must be reachable by the test OS user (test/run's work dirs are not)
export WAM_TMP_ROOT=${WAM_TMP_ROOT:-${TMPDIR:-/tmp}}

if ! citus_installed; then
    tap_not_ok "Citus $WAM_CITUS_VERSION is installed in $("$WAM_PG_CONFIG" --pkglibdir)" \
        "bash test/run check builds it (test/lib/citus.sh: citus_build_install)"
    tap_done
fi
tap_ok "Citus $WAM_CITUS_VERSION is installed"

if ! citus_start citus.shard_count=4 citus.explain_all_tasks=on; then
    tap_not_ok "the coordinator and two workers start" "$(citus_server_logs | tail -n 40)"
    tap_done
fi
tap_ok "the coordinator and two workers start (citus and pg_wamarketing preloaded)"

# q N [psql args]: node N, quiet, unaligned; errors are recorded by tap_psql
q() {
    local n=$1
    shift
    PGHOST=$(citus_sock "$n") PGPORT=$(citus_port "$n") PGUSER=$CITUS_PGUSER PGDATABASE=postgres \
        PGOPTIONS='-c search_path=public,wam' tap_psql -qAt "$@"
}
# err N SQL: `SQLSTATE: message` of the error SQL raises on node N
err() {
    PGHOST=$(citus_sock "$1") PGPORT=$(citus_port "$1") PGUSER=$CITUS_PGUSER PGDATABASE=postgres \
        PGOPTIONS='-c search_path=public,wam' sql_error -c "$2"
}

# ---------------------------------------------------------------- 1. the cluster
tap_is "every node runs Citus $WAM_CITUS_VERSION" \
    "$(for n in 0 1 2; do q "$n" -c "SELECT split_part(citus_version(), ' ', 2)"; done | sort -u | tr '\n' ' ')" \
    "$WAM_CITUS_VERSION "
tap_is "two active workers" "$(q 0 -c 'SELECT count(*) FROM citus_get_active_worker_nodes()')" 2
q 0 -c 'CREATE EXTENSION pg_wamarketing CASCADE'
ver=$(q 0 -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_wamarketing'")
tap_is "CREATE EXTENSION pg_wamarketing on the coordinator reaches both workers" \
    "$(for n in 1 2; do q "$n" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_wamarketing'"; done | tr '\n' ' ')" \
    "$ver $ver "

# ---------------------------------------------------------------- 2. distributed tables
# 60,000 customers; tags a/b/c on 25/40/8 % of them (hash-chosen), orders for a third of
# them, and the same rows in local tables on the coordinator for the single-node answers
q 0 <<'SQL'
CREATE TABLE cust_tag (customer_id bigint NOT NULL, tag text NOT NULL);
CREATE TABLE cust_order (customer_id bigint NOT NULL, amount numeric NOT NULL);
CREATE TABLE cust_tag_local (customer_id bigint NOT NULL, tag text NOT NULL);
CREATE TABLE cust_order_local (customer_id bigint NOT NULL, amount numeric NOT NULL);
INSERT INTO cust_tag_local
SELECT g, t FROM generate_series(1, 60000) g,
	LATERAL (VALUES ('a', (hashint8(g) & 1023) < 256), ('b', (hashint8(g + 1000003) & 1023) < 410),
				   ('c', (hashint8(g + 2000003) & 1023) < 82)) v(t, hit)
WHERE hit;
INSERT INTO cust_order_local SELECT g, g % 97 FROM generate_series(1, 60000, 3) g;
SELECT create_distributed_table('cust_tag', 'customer_id');
SELECT create_distributed_table('cust_order', 'customer_id', colocate_with => 'cust_tag');
INSERT INTO cust_tag SELECT * FROM cust_tag_local;
INSERT INTO cust_order SELECT * FROM cust_order_local;
SQL
tap_is "cust_tag is distributed by customer_id over 4 shards on both workers" \
    "$(q 0 -c "SELECT count(*), count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'cust_tag'::regclass")" \
    "4|2"

# the three-tag count: distributed, local, plain SQL
THREE="segment_cardinality(segment_agg(customer_id) FILTER (WHERE tag = 'a')
    & segment_agg(customer_id) FILTER (WHERE tag = 'b') & segment_agg(customer_id) FILTER (WHERE tag = 'c'))"
dist=$(q 0 -c "SELECT wam.$THREE FROM cust_tag")
loc=$(q 0 -c "SET search_path = wam, public; SELECT $THREE FROM cust_tag_local")
plain=$(q 0 -c "SELECT count(*) FROM (SELECT customer_id FROM cust_tag_local GROUP BY customer_id
    HAVING bool_or(tag = 'a') AND bool_or(tag = 'b') AND bool_or(tag = 'c')) x")
tap_is "three-tag count: distributed = single node ($loc)" "$dist" "$loc"
tap_is "three-tag count: single node = plain SQL" "$loc" "$plain"
if [ "${plain:-0}" -gt 100 ]; then
    tap_ok "three-tag count is not trivial ($plain)"
else
    tap_not_ok "three-tag count is not trivial" "$plain"
fi

# pushdown_ok NAME QUERY: EXPLAIN VERBOSE shows worker_partial_agg in each of the 4 tasks'
# queries and coord_combine_agg on the coordinator
pushdown_ok() {
    local plan tasks partial combine
    plan=$(q 0 -c "SET search_path = wam, public" -c "EXPLAIN (VERBOSE, COSTS OFF) $2")
    tasks=$(printf '%s\n' "$plan" | grep -c -- '->  Task$' || true)
    partial=$(printf '%s\n' "$plan" | grep -cE '^ *Query: SELECT .*worker_partial_agg' || true)
    combine=$(printf '%s\n' "$plan" | grep -c 'coord_combine_agg' || true)
    if [ "$tasks" = 4 ] && [ "$partial" = 4 ] && [ "$combine" -ge 1 ]; then
        tap_ok "pushed down: $1 (worker_partial_agg on 4 of 4 shards, coord_combine_agg)"
    else
        tap_not_ok "pushed down: $1" "tasks=$tasks partial=$partial combine=$combine" "$plan"
    fi
}
pushdown_ok "segment_agg with FILTER (three-tag count)" "SELECT $THREE FROM cust_tag"
pushdown_ok "segment_agg GROUP BY tag" "SELECT tag, segment_agg(customer_id) FROM cust_tag GROUP BY tag"

# GROUP BY tag: the segments themselves (hex, so that they compare as text)
tap_is "segment per tag: distributed = single node" \
    "$(q 0 -c "SET wam.segment_output_format = hex" -c "SELECT string_agg(tag || '=' || s::text, ' ' ORDER BY tag) FROM (SELECT tag, wam.segment_agg(customer_id) s FROM cust_tag GROUP BY tag) x" | md5sum)" \
    "$(q 0 -c "SET wam.segment_output_format = hex" -c "SELECT string_agg(tag || '=' || s::text, ' ' ORDER BY tag) FROM (SELECT tag, wam.segment_agg(customer_id) s FROM cust_tag_local GROUP BY tag) x" | md5sum)"
tap_is "segment per tag: members equal plain SQL" \
    "$(q 0 -c "SELECT string_agg(tag || ':' || n, ' ' ORDER BY tag) FROM (SELECT tag, wam.segment_cardinality(wam.segment_agg(customer_id)) n FROM cust_tag GROUP BY tag) x")" \
    "$(q 0 -c "SELECT string_agg(tag || ':' || n, ' ' ORDER BY tag) FROM (SELECT tag, count(DISTINCT customer_id) n FROM cust_tag_local GROUP BY tag) x")"

# operators and casts inside the distributed query (run on the workers), and a co-located join
tap_is "operators and casts in a distributed WHERE (@>, && with a constant segment) = single node" \
    "$(q 0 -c "SELECT count(*) FROM cust_tag WHERE '{5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20}'::wam.segment OPERATOR(wam.@>) customer_id AND tag = 'b'")" \
    "$(q 0 -c "SELECT count(*) FROM cust_tag_local WHERE '{5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20}'::wam.segment OPERATOR(wam.@>) customer_id AND tag = 'b'")"
JOIN="SELECT segment_cardinality(segment_agg(o.customer_id) FILTER (WHERE o.amount > 50) - segment_agg(t.customer_id) FILTER (WHERE t.tag = 'c'))"
tap_is "co-located join (orders x tags, segment difference) = single node" \
    "$(q 0 -c "SET search_path = wam, public" -c "$JOIN FROM cust_order o JOIN cust_tag t USING (customer_id)")" \
    "$(q 0 -c "SET search_path = wam, public" -c "$JOIN FROM cust_order_local o JOIN cust_tag_local t USING (customer_id)")"
pushdown_ok "segment_agg over a co-located join" "$JOIN FROM cust_order o JOIN cust_tag t USING (customer_id)"
tap_is "co-located join: a segment built on the workers, cast to bigint[] and to bytea on the coordinator" \
    "$(q 0 -c "SELECT md5(s::bytea::text) || ' ' || cardinality(s::bigint[]) FROM (SELECT wam.segment_agg(o.customer_id) s FROM cust_order o JOIN cust_tag t USING (customer_id) WHERE t.tag = 'a') x")" \
    "$(q 0 -c "SELECT md5(s::bytea::text) || ' ' || cardinality(s::bigint[]) FROM (SELECT wam.segment_agg(o.customer_id) s FROM cust_order_local o JOIN cust_tag_local t USING (customer_id) WHERE t.tag = 'a') x")"

# a distributed table of segment values (one per campaign and customer block): union and
# intersection pushed down, operators and casts on the workers, GROUP BY a segment
q 0 <<'SQL'
CREATE TABLE campaign_seg (campaign_id int NOT NULL, block int NOT NULL, audience wam.segment NOT NULL);
CREATE TABLE campaign_seg_local (LIKE campaign_seg);
INSERT INTO campaign_seg_local
SELECT c, b, wam.segment_agg(customer_id)
FROM generate_series(1, 6) c, generate_series(0, 5) b, cust_tag_local t
WHERE t.customer_id / 10000 = b AND t.tag = chr(ascii('a') + c % 3) AND t.customer_id % c = 0
GROUP BY c, b;
INSERT INTO campaign_seg_local VALUES (7, 0, '{1,2,3}'), (8, 0, '{1,2,3}'), (9, 0, '\x3a30000000000000');
SELECT create_distributed_table('campaign_seg', 'campaign_id', colocate_with => 'none');
INSERT INTO campaign_seg SELECT * FROM campaign_seg_local;
SQL
UNION_Q="SELECT string_agg(campaign_id || ':' || segment_cardinality(u) || ':' || segment_cardinality(i) || ':' || md5(u::bytea::text), ' ' ORDER BY campaign_id) FROM (SELECT campaign_id, segment_union_agg(audience) u, segment_intersect_agg(audience | '{1}') i FROM"
tap_is "segment_union_agg / segment_intersect_agg by campaign: distributed = single node" \
    "$(q 0 -c "SET search_path = wam, public" -c "$UNION_Q campaign_seg GROUP BY campaign_id) x")" \
    "$(q 0 -c "SET search_path = wam, public" -c "$UNION_Q campaign_seg_local GROUP BY campaign_id) x")"
pushdown_ok "segment_union_agg and segment_intersect_agg over all campaigns" \
    "SELECT segment_union_agg(audience), segment_intersect_agg(audience | '{1}') FROM campaign_seg"
tap_is "segment_union_agg over all campaigns: distributed = single node = segment_agg of the tags" \
    "$(q 0 -c "SET search_path = wam, public" -c "SELECT md5(segment_union_agg(audience)::bytea::text) FROM campaign_seg WHERE campaign_id <= 6")" \
    "$(q 0 -c "SET search_path = wam, public" -c "SELECT md5(segment_union_agg(audience)::bytea::text) FROM campaign_seg_local WHERE campaign_id <= 6")"
tap_is "operators, casts and functions on segment columns run on the workers = single node" \
    "$(q 0 -c "SET search_path = wam, public" -c "SELECT string_agg(campaign_id || '/' || block || ':' || segment_cardinality(audience - '{1,2}') || ':' || (audience && '{3}') || ':' || cardinality(audience::int[]), ' ' ORDER BY campaign_id, block) FROM campaign_seg WHERE audience @> 3::bigint OR audience = '{}'")" \
    "$(q 0 -c "SET search_path = wam, public" -c "SELECT string_agg(campaign_id || '/' || block || ':' || segment_cardinality(audience - '{1,2}') || ':' || (audience && '{3}') || ':' || cardinality(audience::int[]), ' ' ORDER BY campaign_id, block) FROM campaign_seg_local WHERE audience @> 3::bigint OR audience = '{}'")"
tap_is "GROUP BY a segment over a distributed table (hash opclass; equal sets group together)" \
    "$(q 0 -c "SELECT string_agg(n || 'x' || wam.segment_cardinality(audience), ' ' ORDER BY n, wam.segment_cardinality(audience)) FROM (SELECT audience, count(*) n FROM campaign_seg WHERE block = 0 GROUP BY audience) x")" \
    "$(q 0 -c "SELECT string_agg(n || 'x' || wam.segment_cardinality(audience), ' ' ORDER BY n, wam.segment_cardinality(audience)) FROM (SELECT audience, count(*) n FROM campaign_seg_local WHERE block = 0 GROUP BY audience) x")"

# ---------------------------------------------------------------- 3. output format of partial states
shard=$(q 0 -c "SELECT shard_name FROM citus_shards WHERE table_name = 'cust_tag'::regclass AND nodeport = $(citus_port 1) LIMIT 1")
PARTIAL="SELECT left(worker_partial_agg('wam.segment_agg(bigint)'::regprocedure, customer_id)::text, 2) FROM $shard"
tap_is "a worker prints a partial state as a {…} list by default (wam.segment_output_format = array)" \
    "$(q 1 -c "$PARTIAL")" "{$(q 1 -c "SELECT min(customer_id) FROM $shard" | cut -c1)"
tap_is "a worker prints a partial state as \\x… hex when wam.segment_output_format = hex" \
    "$(q 1 -c "SET wam.segment_output_format = hex" -c "$PARTIAL")" '\x'
q 2 -c "ALTER SYSTEM SET wam.segment_output_format = hex" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
tap_is "workers set differently (array on one, hex on the other): same three-tag count" \
    "$(q 0 -c "SELECT wam.$THREE FROM cust_tag")" "$loc"
tap_is "workers set differently: same segments per tag (coordinator prints hex)" \
    "$(q 0 -c "SET wam.segment_output_format = hex" -c "SELECT string_agg(tag || '=' || s::text, ' ' ORDER BY tag) FROM (SELECT tag, wam.segment_agg(customer_id) s FROM cust_tag GROUP BY tag) x" | md5sum)" \
    "$(q 0 -c "SET wam.segment_output_format = hex" -c "SELECT string_agg(tag || '=' || s::text, ' ' ORDER BY tag) FROM (SELECT tag, wam.segment_agg(customer_id) s FROM cust_tag_local GROUP BY tag) x" | md5sum)"
FEW="SET wam.segment_output_format = 'array'; SELECT segment_agg(customer_id) FROM %s WHERE customer_id IN (3, 12, 70, 59999, 4000, 40001)"
# shellcheck disable=SC2059
few=$(q 0 -c "$(printf "$FEW" cust_tag)")
# shellcheck disable=SC2059
tap_is "the coordinator's setting decides the final output only (array)" \
    "$few" "$(q 0 -c "$(printf "$FEW" cust_tag_local)")"
case $few in "{3,"*) tap_ok "the final output is a {…} list ($few)" ;; *) tap_not_ok "the final output is a {…} list" "$few" ;; esac
q 1 -c "ALTER SYSTEM SET wam.segment_output_format = hex" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
tap_is "both workers hex: same three-tag count" "$(q 0 -c "SELECT wam.$THREE FROM cust_tag")" "$loc"
for n in 1 2; do q "$n" -c "ALTER SYSTEM RESET wam.segment_output_format" -c "SELECT pg_reload_conf()" >/dev/null; done

# ---------------------------------------------------------------- 4. segment_repeat_agg over distributed events
q 0 <<'SQL'
CREATE TABLE ev (customer_id bigint NOT NULL, kind text NOT NULL, occurred_at timestamptz NOT NULL);
CREATE TABLE ev_local (LIKE ev);
INSERT INTO ev_local
SELECT (hashint8(g) & 32767) + 1, CASE WHEN g % 3 = 0 THEN 'order' ELSE 'link_click' END,
	   timestamptz '2026-01-01' + (g % 40) * interval '1 day'
FROM generate_series(1, 150000) g;
SELECT create_distributed_table('ev', 'customer_id', colocate_with => 'cust_tag');
INSERT INTO ev SELECT * FROM ev_local;
SQL
REPEAT="SELECT md5(s::bytea::text) || ':' || segment_cardinality(s) FROM (SELECT segment_repeat_agg(customer_id, %s) FILTER (WHERE kind = 'link_click' AND occurred_at >= timestamptz '2026-01-01' + interval '33 days') s FROM %s) x"
for args in "1, false" "3, false" "5, true" "15, true" "16, false"; do
    # shellcheck disable=SC2059
    tap_is "segment_repeat_agg($args) over distributed events = single node" \
        "$(q 0 -c "$(printf "$REPEAT" "$args" ev)")" "$(q 0 -c "$(printf "$REPEAT" "$args" ev_local)")"
done
tap_is "segment_repeat_agg >= 3 within 7d = plain SQL (GROUP BY … HAVING count(*) >= 3)" \
    "$(q 0 -c "SELECT wam.segment_cardinality(wam.segment_repeat_agg(customer_id, 3, false)) FROM ev WHERE kind = 'link_click' AND occurred_at >= timestamptz '2026-01-01' + interval '33 days'")" \
    "$(q 0 -c "SELECT count(*) FROM (SELECT customer_id FROM ev_local WHERE kind = 'link_click' AND occurred_at >= timestamptz '2026-01-01' + interval '33 days' GROUP BY customer_id HAVING count(*) >= 3) x")"
pushdown_ok "segment_repeat_agg (event(link_click) >= 3 within 7d)" \
    "SELECT segment_repeat_agg(customer_id, 3, false) FROM ev WHERE kind = 'link_click' AND occurred_at >= timestamptz '2026-01-01' + interval '33 days'"
pushdown_ok "segment_repeat_agg combined with a tag segment over a co-located join" \
    "SELECT segment_cardinality(segment_repeat_agg(e.customer_id, 2, false) & segment_agg(t.customer_id) FILTER (WHERE t.tag = 'b')) FROM ev e JOIN cust_tag t USING (customer_id)"
tap_is "segment_repeat_agg & tag segment over a co-located join = single node" \
    "$(q 0 -c "SET search_path = wam, public" -c "SELECT segment_cardinality(segment_repeat_agg(e.customer_id, 2, false) & segment_agg(t.customer_id) FILTER (WHERE t.tag = 'b')) FROM ev e JOIN cust_tag t USING (customer_id)")" \
    "$(q 0 -c "SET search_path = wam, public" -c "SELECT segment_cardinality(segment_repeat_agg(e.customer_id, 2, false) & segment_agg(t.customer_id) FILTER (WHERE t.tag = 'b')) FROM ev_local e JOIN cust_tag_local t USING (customer_id)")"
tap_is "segment_repeat_agg over no rows is NULL, distributed as on one node" \
    "$(q 0 -c "SELECT wam.segment_repeat_agg(customer_id, 2, false) IS NULL FROM ev WHERE kind = 'none'")" t
tap_is "a worker's partial repeat state is \\x… hex text (bytea), read back by the coordinator" \
    "$(q 1 -c "SELECT left(worker_partial_agg('wam.segment_repeat_agg(bigint,integer,boolean)'::regprocedure, (customer_id, 2, false))::text, 2) FROM $(q 0 -c "SELECT shard_name FROM citus_shards WHERE table_name = 'ev'::regclass AND nodeport = $(citus_port 1) LIMIT 1")")" '\x'

# ---------------------------------------------------------------- 5. what fails, and how
q 0 -c "INSERT INTO cust_tag VALUES (-5, 'bad'), (4294967296, 'bad')"
tap_is "an id out of range fails on the worker with the single-node error (22003)" \
    "$(err 0 "SELECT wam.segment_agg(customer_id) FROM cust_tag WHERE tag = 'bad' AND customer_id < 0")" \
    "$(err 0 "SELECT wam.segment_agg(-5::bigint)")"
tap_is "segment_repeat_agg with a count that differs between rows fails (22023)" \
    "$(err 0 "SELECT wam.segment_repeat_agg(customer_id, (customer_id % 2)::int + 1, false) FROM ev" | cut -c1-60)" \
    "22023: repeat count must be the same for every row"
tap_is "segment_repeat_agg with a count out of range fails as on one node (22023)" \
    "$(err 0 "SELECT wam.segment_repeat_agg(customer_id, 17, false) FROM ev")" \
    "$(err 0 "SELECT wam.segment_repeat_agg(customer_id, 17, false) FROM ev_local")"
tap_is "a corrupt partial repeat state is refused when combined on the coordinator (22P03)" \
    "$(err 0 "SELECT coord_combine_agg('wam.segment_repeat_agg(bigint,integer,boolean)'::regprocedure, '\\x0300000000000000'::cstring, NULL::wam.segment)" | cut -c1-48)" \
    "22P03: invalid wam.segment_repeat_agg state"
tap_is "a truncated repeat state is refused by the final function (22P03)" \
    "$(err 0 "SELECT wam_internal.segment_repeat_final('\\x030000000000000004000000'::bytea)")" \
    "22P03: invalid wam.segment_repeat_agg state"
tap_is "a corrupt partial segment state is refused by the input function (22P03)" \
    "$(err 0 "SELECT coord_combine_agg('wam.segment_agg(bigint)'::regprocedure, '\\x3a30ffff'::cstring, NULL::wam.segment)" | cut -c1-6)" \
    "22P03:"

got=$(err 0 "EXPLAIN (ANALYZE, COSTS OFF) SELECT segment_agg(customer_id) FROM cust_tag")
tap_is "EXPLAIN ANALYZE of a pushed-down segment aggregate fails (a Citus bug before 14), plain EXPLAIN works" \
    "${got#*: }" 'column "field_0" has pseudo-type cstring'

# ---------------------------------------------------------------- 6. the extension's own tables
# They stay local tables of the coordinator: tags, events and audiences work there as on one
# node (every query of the extension reads them locally); the workers' copies stay empty.
q 0 <<'SQL'
INSERT INTO customer (id, phone) SELECT g, (85290000000 + g)::text FROM generate_series(1, 300) g;
SELECT create_tag('vip', 'spending power');
SELECT attach_tag('vip', segment_range(1, 101));
INSERT INTO event (customer_id, kind, occurred_at)
SELECT g % 200 + 1, 'link_click', now() - interval '1 hour' FROM generate_series(1, 600) g;
SQL
tap_is "on the coordinator, an audience over local tags and events = plain SQL" \
    "$(q 0 -c "SELECT audience_size('vip AND event(link_click) >= 3 within 7d')")" \
    "$(q 0 -c "SELECT count(*) FROM (SELECT customer_id FROM event WHERE kind = 'link_click' GROUP BY customer_id HAVING count(*) >= 3) e WHERE customer_id <= 100")"
tap_is "the extension's tables are local to the coordinator (none is in Citus's metadata)" \
    "$(q 0 -c "SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid WHERE c.relnamespace = 'wam'::regnamespace")" 0
tap_is "the workers' copies of the extension's tables stay empty" \
    "$(for n in 1 2; do q "$n" -c "SELECT (SELECT count(*) FROM customer) + (SELECT count(*) FROM event)"; done | tr '\n' ' ')" "0 0 "
# Distributing wam.event is refused, not half done: its triggers (tag rules, event details,
# reply feedback) would run on the shards against the workers' empty tables
tap_is "create_distributed_table('wam.event') is refused while the event triggers exist" \
    "$(err 0 "BEGIN; ALTER TABLE event DROP CONSTRAINT event_customer_id_fkey; SELECT create_distributed_table('event', 'customer_id')")" \
    'XX000: cannot distribute relation "event" because it has triggers'

# ---------------------------------------------------------------- end
crashes=$(citus_server_logs | grep -E 'terminated by signal|PANIC:|TRAP:' || true)
tap_is "no node crashed" "$crashes" ""
tap_done
