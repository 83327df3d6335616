#!/usr/bin/env bash
# test/t/dump_restore.sh — every row of the extension survives pg_dump / pg_restore, and the
# restore applies nothing twice.
#
# A database is filled through the API with realistic data: the CDNOW sample (2,357
# customers, 6,919 orders through wam.record_order), a contact import with failed rows,
# tags, example rules and their runs, behaviour events, RFM scores, an LTV fit, a saved
# segment, senders with secrets and a verify token, a portfolio with a limit, a sender grant,
# a group with offers, codes and redemptions (one refunded, one with a forced price),
# account webhooks (a paused template, a flagged number), a referral program with judged
# referrals, fingerprints, a qualified referral and its reward, and a campaign drained
# through the worker's own SQL (claim, results) with signed status and inbound webhooks,
# one opt-out among them; a few messages are left "sending" when the dump is taken.
# Events and inbound messages sit in monthly partitions made at run time (and in the
# default partitions), retention having rolled up older ones. It is dumped in custom and
# plain format, whole and --data-only (with --load-via-partition-root, as the README says),
# and restored into new databases (whole; data-only into a fresh CREATE EXTENSION). Each restored database must
# hold the same rows in every table of the extension and the same sequence values, with
# one documented change (messages dumped while in flight come back "uncertain"), pass
# every invariant check, keep the secrets' privileges, and work normally afterwards.
#
# Runs under `bash test/run check` (reuses its cluster) or alone as root.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"
# shellcheck source=test/cdnow_load.sh
. "$repo/test/cdnow_load.sh"

# shellcheck disable=SC2119  # no extra server settings
start_cluster || { tap_not_ok "dump/restore: cluster start"; tap_done; }

work=$(mktemp -d "${TMPDIR:-/tmp}/wam-dump.XXXXXX")
chmod 777 "$work"
wam_on_exit "rm -rf '$work'"
src=wam_dump_src
targets=(wam_dump_custom wam_dump_plain wam_dump_data_custom wam_dump_data_plain wam_dump_inserts)
export PGOPTIONS="-c client_min_messages=warning"

q() { tap_psql -X -At -d "$1" -c "$2"; }
for d in "$src" "${targets[@]}" wam_dump_unrecognised; do
    tap_psql -q -d postgres -c "DROP DATABASE IF EXISTS $d" >/dev/null || { tap_not_ok "dump/restore: drop $d"; tap_done; }
done
wam_on_exit "for d in $src ${targets[*]} wam_dump_unrecognised; do tap_psql -q -d postgres -c \"DROP DATABASE IF EXISTS \$d\" >/dev/null 2>&1; done"

tap_psql -q -d postgres -c "CREATE DATABASE $src" >/dev/null &&
    q "$src" "CREATE EXTENSION pg_wamarketing" >/dev/null ||
    { tap_not_ok "dump/restore: create $src"; tap_done; }

# ------------------------------------------------------------------ fill
if ! cdnow_load_sql "$repo/test/data/cdnow" | tap_psql -q -d "$src" >"$work/load.log" 2>&1; then
    tap_not_ok "CDNOW loads through wam.record_order" "$(tail -n 20 "$work/load.log")"
    tap_done
fi
# the helper tables of the loader are not the extension's
q "$src" "DROP TABLE cdnow_order, cdnow_summary, cdnow_summary_tx" >/dev/null
# the loader gives customers their CDNOW ids; new customers get ids after them
q "$src" "SELECT setval('wam.customer_id_seq', 10000)" >/dev/null

if ! tap_psql -q -d "$src" -v ON_ERROR_STOP=1 >"$work/fill.log" 2>&1 <<'SQL'
SET search_path = public, wam;
-- tags, an import with failures, tagging through every writer
SELECT create_tag_dimension('campaign', '#123456', 'campaign audiences');
SELECT create_tag('interest-beauty', 'interest'), create_tag('vip', 'spending power'),
       create_tag('spring-2026', 'campaign', NULL, '30 days');
SELECT * FROM import_csv(E'phone,tags,name,consent\n+85291234567,interest-beauty,Ada,web form\n'
    '+85291234568,"interest-beauty,vip",Bo,web form\n+85291234567,vip,Ada again,\n'
    'not a phone,vip,X,\n+85291234569,no such tag,Y,\n');
SELECT attach_tag('interest-beauty', wam.segment_range(1, 800)), attach_tag('vip', wam.segment_range(500, 600)),
       attach_tag('spring-2026', '{1,2,3,4,5}');
SELECT sum(added) FROM retag_customers(wam.segment_range(700, 900), '{vip}', '{interest-beauty}');
SELECT detach_tag('vip', '{510,511}');
SELECT rename_tag('spring-2026', 'spring-26');
-- rules and events
SELECT count(*) FROM install_example_tag_rules();
INSERT INTO event (customer_id, kind, occurred_at, details)
SELECT c, k, timestamptz '1998-06-01' + (c % 20) * interval '1 day', jsonb_build_object('n', c)
FROM generate_series(1, 600) c, unnest(ARRAY['link_click', 'message_read']) k;
SELECT count(*) FROM run_tag_rules();
SELECT define_segment('beauty vips', 'interest-beauty AND vip');
-- customer attributes: built-in and user-defined, used in a saved segment
SELECT define_attribute('skin_type', 'text', '{dry,oily}');
SELECT count(set_attribute(c, 'gender', CASE WHEN c % 2 = 0 THEN 'female' ELSE 'male' END))
FROM generate_series(1, 50) c;
SELECT set_attribute(1, 'skin_type', 'dry'), set_attribute(2, 'birth_date', '1990-04-01');
SELECT define_segment('dry skin women', 'attr(skin_type) = ''dry'' OR attr(gender) = ''female'' AND age >= 30');
-- the periodic jobs: a changed schedule, a run of the weekly report (its rows and the run's)
UPDATE job SET time_zone = 'Asia/Taipei', at_time = '09:00' WHERE job = 'tag health report';
UPDATE job SET next_run_at = now() WHERE job = 'tag health report';
SELECT count(*) FROM run_due_jobs();
-- consent for the campaign and the referral program
SELECT count(record_consent(id, 'web form')) FROM customer WHERE id <= 1000;
-- RFM and LTV on the CDNOW history
SELECT configure_rfm('high_spend_order_value', '300');
SELECT count(*) FROM refresh_rfm('1998-07-01');
SELECT count(*) FROM fit_clv('1998-06-30');
-- senders, secrets, the verify token
SELECT create_sender('main', '106540352242922', 'EAAtoken-main', 'main-secret');
SELECT create_sender('other', '200', 'EAAtoken-other', 'other-secret');
SELECT configure_webhook('verify-me');
-- a portfolio with a limit (the claims below count its recipients), a staff grant, and
-- account webhooks: a template paused, a number flagged
SELECT create_portfolio('shop', 100000);
SELECT configure_sender_account('main', 'shop', '102290129340398', '+1 555 078 3881');
SELECT grant_sender('other', 'wam_operator');
SELECT ingest_webhook(b, 'sha256=' || hmac_sha256('main-secret', b))
FROM (SELECT '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1750000000,"changes":['
             '{"field":"message_template_status_update","value":{"event":"PAUSED","message_template_id":1,'
             '"message_template_name":"winter_sale","message_template_language":"en_US","reason":"NONE"}},'
             '{"field":"phone_number_quality_update","value":{"display_phone_number":"15550783881","event":"FLAGGED"}}]}]}'
             AS b) w;
-- a group (one member left) and its offers: a redemption with a gift, a refunded one, a
-- unique code redeemed, the others issued, a forced group price
SELECT create_group('mums-taipei-east');
SELECT add_group_members('mums-taipei-east', segment_range(1, 21));
SELECT remove_group_members('mums-taipei-east', segment_range(20, 21));
SELECT create_offer('group 50', 'mums-taipei-east', code => 'GROUP50', discount_percent => 50, total_limit => 10,
                    per_group_limit => 5);
SELECT set_offer_gifts('group 50', '[{"min_amount": 100, "gift": "sample pack", "cost": 45}]');
SELECT create_offer('welcome', 'mums-taipei-east', discount_amount => 30, group_price => 95, public_price => 100,
                    force_reason => 'launch');
SELECT count(*) FROM issue_offer_codes('welcome');
SELECT record_order(1, 150, code => 'GROUP50'), record_order(2, 150, code => 'group50');
SELECT refund_order(2, (SELECT max(order_id) FROM customer_order WHERE customer_id = 2));
SELECT record_order(3, 80, code => (SELECT code FROM offer_code WHERE customer_id = 3));
-- a referral program: a pending, a self-referral, a mistyped code, an already referred,
-- a qualified one with its reward and message
SELECT create_referral_program('main', '{"reward_template": {"name": "referral_reward", "language": "en",
    "parameters": ["{redemption_code}"]}, "sender": "main"}');
SELECT record_fingerprint(10, '{"device": "d-10", "payment": "card-10"}'),
       record_fingerprint(11, '{"device": "d-11"}');
INSERT INTO customer (id, phone, name) VALUES (5001, '15550005001', 'Invitee 1'), (5002, '15550005002', 'Invitee 2'),
    (5003, '15550005003', 'Invitee 3');
SELECT record_consent(5001, 'referral'), record_consent(5002, 'referral'), record_consent(5003, 'referral');
SELECT record_referral(referral_code(10, 'main'), 5001);
SELECT record_referral(referral_code(11, 'main'), 11);
SELECT record_referral('XXXX-XXXX', 5002);
SELECT record_referral(referral_code(12, 'main'), 5001);
SELECT record_referral(referral_code(12, 'main'), 5003);
-- a reward A/B test: the qualified referral's reward records its variant
SELECT configure_referral_program('main', '{"reward_variants": [{"name": "discount"}, {"name": "trial"}]}') IS NOT NULL;
SELECT record_order(5003, 250, now());
-- a burst of attempts freezes a referrer for review
SELECT create_referral_program('burst', '{"velocity_per_hour": 1}');
INSERT INTO customer (id, phone) SELECT i, '1555000' || i FROM generate_series(5004, 5007) i;
SELECT record_referral(referral_code(13, 'burst'), i) FROM generate_series(5004, 5007) i;
-- a campaign object, with a customer's own value and a link to the shop's domain,
-- launched and drained with the rest
INSERT INTO link_domain (domain) VALUES ('shop.example.com');
SELECT create_campaign('autumn', 'all', '{"type":"template","template":{"name":"autumn","language":{"code":"en"},
    "components":[{"type":"body","parameters":[{"type":"text","text":"{product}"}]}]}}', ARRAY['main'],
    vars => '{"product": "scarf https://shop.example.com/scarf"}', category => 'utility');
INSERT INTO campaign_variable SELECT campaign_id, 5, '{"product": "hat"}' FROM campaign WHERE name = 'autumn';
SELECT recipients FROM launch_campaign('autumn');
-- a campaign, drained through the worker's own SQL
SELECT * FROM enqueue_segment(wam.segment_range(1, 300) - '{4}',
    '{"type":"template","template":{"name":"spring_sale","language":{"code":"en"}}}', 'main',
    campaign => 'spring');
SELECT count(*) FROM (
    SELECT wam_internal.record_results(array_agg(b.message_id), array_fill('http'::text, ARRAY[count(*)::int]),
                          array_fill(200, ARRAY[count(*)::int]),
                          array_agg('{"messages":[{"id":"wamid.' || b.message_id || '"}]}'),
                          array_fill(NULL::text, ARRAY[count(*)::int]))
    FROM wam_internal.claim_batch(1, 250) b) x;
-- the campaign's report an hour after its launch
SELECT count(*) FROM advance_campaigns(now() + interval '61 minutes');
-- left in flight when the dump is taken
SELECT count(*) AS in_flight FROM wam_internal.claim_batch(1, 5);
-- webhooks: delivered and read statuses, a reply and a STOP
SELECT ingest_webhook(b, 'sha256=' || hmac_sha256('main-secret', b))
FROM (SELECT format('{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",'
                    '"value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[%s]}}]}]}',
                    string_agg(format('{"id":"%s","status":"%s","timestamp":"%s","recipient_id":"1"}',
                                      o.wamid, CASE WHEN o.message_id % 3 = 0 THEN 'read' ELSE 'delivered' END,
                                      extract(epoch FROM now())::bigint), ',')) AS b
      FROM outbox o WHERE o.wamid IS NOT NULL AND o.message_id % 5 <> 0
      GROUP BY o.message_id / 50) w;
SELECT ingest_webhook(b, 'sha256=' || hmac_sha256('main-secret', b))
FROM (SELECT format('{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",'
                    '"value":{"metadata":{"phone_number_id":"106540352242922"},"contacts":[{"wa_id":"%s","user_id":"US.%s"}],'
                    '"messages":[{"from":"%s","id":"wamid.in.%s","timestamp":"%s","type":"text",'
                    '"text":{"body":"%s"}}]}}]}]}', c.phone, c.id, c.phone, c.id, extract(epoch FROM now())::bigint,
                    CASE WHEN c.id = 7 THEN 'STOP' ELSE 'Nice, thanks' END) AS b
      FROM customer c WHERE c.id IN (6, 7, 8)) w;
-- a click on a campaign message, an operator's word that a recipient was mis-targeted,
-- a reply that says so, a feedback keyword and a media size of the business's own
SELECT record_click(min(message_id), 'https://shop.example.com/scarf') IS NOT NULL AS clicked
FROM outbox WHERE campaign = 'autumn' AND wamid IS NOT NULL;
SELECT record_mistargeting(customer_id, 'autumn', 'called the shop') IS NOT NULL AS mistargeted
FROM outbox WHERE campaign = 'autumn' AND wamid IS NOT NULL ORDER BY message_id LIMIT 1;
INSERT INTO event (customer_id, kind, details)
SELECT customer_id, 'reply', jsonb_build_object('text', 'wrong number', 'answers', message_id)
FROM outbox WHERE campaign = 'autumn' AND wamid IS NOT NULL ORDER BY message_id DESC LIMIT 1;
INSERT INTO feedback_keyword VALUES ('falsche person', 'de');
-- an A/B campaign (split: a small audience), and an alert
SELECT create_campaign('autumn ab', 'all', '{"type":"template","template":{"name":"autumn","language":{"code":"en"}}}',
    ARRAY['main'], category => 'utility') IS NOT NULL AS created;
SELECT add_campaign_variant('autumn ab', '{"type":"template","template":{"name":"autumn_b","language":{"code":"en"}}}');
SELECT (configure_campaign_test('autumn ab', '{"seed": 7, "metric": "click"}')).metric;
SELECT recipients FROM launch_campaign('autumn ab');
-- a behaviour-triggered offer: its rule, campaign, a decided event and the code it issued
SELECT create_offer('dump-ten', audience => 'all', discount_percent => 10) IS NOT NULL AS offered;
SELECT create_offer_trigger('dump-question', 'question', 'dump-ten',
    '{"type":"template","template":{"name":"code","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"{code}"}]}]}}',
    ARRAY['main']) IS NOT NULL AS triggered;
INSERT INTO event (customer_id, kind, occurred_at) SELECT id, 'question', now() - interval '1 minute' FROM customer WHERE id IN (5, 6);
SELECT queued + refused FROM run_offer_triggers() WHERE offer_trigger = 'dump-question';
SELECT wam_internal.raise_alert('test alert', 'dump', 'kept through a restore') IS NOT NULL AS alerted;
INSERT INTO media_asset (ref, media_type, bytes) VALUES ('https://shop.example.com/scarf.jpg', 'image', 420000);
-- partitions made at run time, with rows: old inbound messages and events, then the
-- months of June 1998 and retention as of then (rolls up and deletes the 1997 rows)
SELECT ingest_webhook(b, 'sha256=' || hmac_sha256('main-secret', b))
FROM (SELECT format('{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",'
                    '"value":{"metadata":{"phone_number_id":"106540352242922"},'
                    '"messages":[{"from":"%s","id":"wamid.old.%s","timestamp":"%s","type":"text",'
                    '"text":{"body":"old"}}]}}]}]}', c.phone, c.id,
                    CASE WHEN c.id = 6 THEN 852076800 ELSE 896990400 END) AS b
      FROM customer c WHERE c.id IN (6, 8)) w;
INSERT INTO event (customer_id, kind, occurred_at) SELECT c, 'link_click', '1997-01-01' FROM generate_series(1, 10) c;
-- and an old campaign's delivered messages, which retention rolls up into outbox_daily
UPDATE outbox SET created_at = '1997-01-01', campaign = 'winter' WHERE status = 'delivered' AND message_id % 7 = 0;
UPDATE retention SET keep = '400 days';
SELECT count(*) FROM maintain_partitions('1998-06-10');
SQL
then
    tap_not_ok "the source database fills through the API" "$(tail -n 30 "$work/fill.log")"
    tap_done
fi
tap_ok "the source database fills through the API"

# Every table (and sequence) the extension registered for dumping; all of them hold rows.
# A partitioned table is compared whole: its partitions made at run time are no members
# of the extension (pg_dump dumps them as ordinary tables).
tables=$(q "$src" "SELECT string_agg(c.relname, ' ' ORDER BY c.relname)
                   FROM pg_extension e, unnest(e.extconfig) x(oid) JOIN pg_class c ON c.oid = x.oid
                   WHERE e.extname = 'pg_wamarketing' AND c.relkind IN ('r', 'p')")
seqs=$(q "$src" "SELECT string_agg(c.relname, ' ' ORDER BY c.relname)
                 FROM pg_extension e, unnest(e.extconfig) x(oid) JOIN pg_class c ON c.oid = x.oid
                 WHERE e.extname = 'pg_wamarketing' AND c.relkind = 'S'")
tap_is "every table of the extension is registered for pg_dump" \
    "$(q "$src" "SELECT string_agg(c.relname, ' ') FROM pg_class c
                 WHERE c.relnamespace = 'wam'::regnamespace AND c.relkind IN ('r', 'p', 'S')
                   AND NOT (c.relispartition AND NOT EXISTS (SELECT FROM pg_depend d
                                                             WHERE d.objid = c.oid AND d.deptype = 'e'))
                   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'pg_wamarketing')::oid[])")" ""
empty=""
for t in $tables; do
    [ "$(q "$src" "SELECT count(*) FROM wam.$t")" = 0 ] && empty="$empty $t"
done
tap_is "the fill leaves no table of the extension empty" "$empty" ""
tap_is "the qualified referral's reward records its A/B variant" \
    "$(q "$src" "SELECT count(*) || ' ' || count(variant) || ' ' || (min(variant) IN ('discount', 'trial')) FROM wam.referral_reward")" "1 1 true"
tap_is "five messages are in flight at the dump" "$(q "$src" "SELECT count(*) FROM wam.outbox WHERE status = 'sending'")" 5
# the partitions of the source, with their bounds and rows
partitions() { q "$1" "SELECT string_agg(c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid) || ' '
                                         || (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1]::text,
                                         '; ' ORDER BY c.relname)
                        FROM pg_class c WHERE c.relispartition AND c.relkind = 'r' AND c.relnamespace = 'wam'::regnamespace"; }
src_partitions=$(partitions "$src")
tap_is "the source has partitions made at run time, with rows" \
    "$(q "$src" "SELECT count(*) FILTER (WHERE n > 0) FROM (SELECT (SELECT count(*) FROM wam.event_p1998_06) AS n
                 UNION ALL SELECT (SELECT count(*) FROM wam.inbound_message_p1998_06)) x")" 2

# ------------------------------------------------------------------ dump and restore
# pg_dump and pg_restore run as the cluster's OS user, like a DBA's cron job.
_dump() { _wam_as_owner "$WAM_PG_BIN/pg_dump" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$@"; }
_restore() { _wam_as_owner "$WAM_PG_BIN/pg_restore" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$@"; }
_psqlf() { _wam_as_owner "$WAM_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$@"; }

ok=1
_dump -Fc -f "$work/whole.dump" "$src" &&
    _dump -Fp -f "$work/whole.sql" "$src" &&
    _dump -Fc --data-only --load-via-partition-root -f "$work/data.dump" "$src" &&
    _dump -Fp --data-only --load-via-partition-root -f "$work/data.sql" "$src" &&
    _dump -Fp --data-only --load-via-partition-root --inserts -f "$work/inserts.sql" "$src" || ok=0
tap_is "pg_dump writes custom and plain, whole and data-only, COPY and INSERT" "$ok" 1

for d in "${targets[@]}" wam_dump_unrecognised; do
    tap_psql -q -d postgres -c "CREATE DATABASE $d" >/dev/null || { tap_not_ok "dump/restore: create $d"; tap_done; }
done
q wam_dump_data_custom "CREATE EXTENSION pg_wamarketing" >/dev/null
q wam_dump_data_plain "CREATE EXTENSION pg_wamarketing" >/dev/null
q wam_dump_inserts "CREATE EXTENSION pg_wamarketing" >/dev/null
q wam_dump_unrecognised "CREATE EXTENSION pg_wamarketing" >/dev/null
_restore --exit-on-error -d wam_dump_custom "$work/whole.dump" >"$work/r1.log" 2>&1
tap_is "pg_restore of the custom dump succeeds" "$?:$(head -c 600 "$work/r1.log")" "0:"
_psqlf -d wam_dump_plain -f "$work/whole.sql" >/dev/null 2>"$work/r2.log"
tap_is "psql restores the plain dump" "$?:$(head -c 600 "$work/r2.log")" "0:"
_restore --exit-on-error --data-only -d wam_dump_data_custom "$work/data.dump" >"$work/r3.log" 2>&1
tap_is "pg_restore --data-only into a fresh CREATE EXTENSION succeeds" "$?:$(head -c 600 "$work/r3.log")" "0:"
_psqlf -d wam_dump_data_plain -f "$work/data.sql" >/dev/null 2>"$work/r4.log"
tap_is "psql restores the plain data-only dump into a fresh CREATE EXTENSION" "$?:$(head -c 600 "$work/r4.log")" "0:"
# a dump of INSERT statements is not recognised as a restore: wam.restoring = on says so
PGOPTIONS="$PGOPTIONS -c wam.restoring=on" _psqlf -d wam_dump_inserts -f "$work/inserts.sql" >/dev/null 2>"$work/r5.log"
tap_is "psql restores an --inserts data-only dump with wam.restoring = on" "$?:$(head -c 600 "$work/r5.log")" "0:"
# The control: the same COPY dump, with the session not set up the way pg_dump sets it,
# is not recognised; the triggers then apply the rows' effects again and the restore fails.
sed 's/^SET row_security = off;/SET row_security = on;/' "$work/data.sql" >"$work/unrecognised.sql"
_psqlf -d wam_dump_unrecognised -f "$work/unrecognised.sql" >/dev/null 2>"$work/r6.log"
tap_is "control: a restore the triggers do not stand aside for fails on the doubled effects" \
    "$?:$(grep -c 'duplicate key value' "$work/r6.log")" "3:1"

# ------------------------------------------------------------------ compare
# A table's contents as one digest (rows in a fixed order); outbox rows in flight at the
# dump are compared apart, as they change on restore by design.
digest() { # digest DB TABLE
    local where=""
    [ "$2" = outbox ] && where="WHERE t.status <> 'sending' AND t.error_detail IS DISTINCT FROM
        'restored from a backup taken while the request was in flight; not resent (see wam.requeue_message)'"
    q "$1" "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '-')
            FROM wam.$2 t $where"
}
for t in $tables; do
    digest "$src" "$t" >"$work/src.$t"
done
seqvals() { q "$1" "SELECT string_agg(c.relname || '=' || s.last_value, ' ' ORDER BY c.relname)
                    FROM pg_class c, LATERAL (SELECT 1) x,
                         LATERAL pg_sequence_last_value(c.oid) s(last_value)
                    WHERE c.relnamespace = 'wam'::regnamespace AND c.relkind = 'S'"; }
src_seqs=$(seqvals "$src")
in_flight=$(q "$src" "SELECT string_agg(message_id::text, ',' ORDER BY message_id) FROM wam.outbox WHERE status = 'sending'")

for d in "${targets[@]}"; do
    diff_tables=""
    for t in $tables; do
        # restored data-only through the partition root, the rows of the source's
        # partitions are in the default ones: compared whole, in the parent
        case $d in wam_dump_data_* | wam_dump_inserts) case $t in *_default) continue ;; esac ;; esac
        [ "$(digest "$d" "$t")" = "$(cat "$work/src.$t")" ] || diff_tables="$diff_tables $t"
    done
    tap_is "$d: every table holds the same rows" "$diff_tables" ""
    tap_is "$d: every sequence continues where it was" "$(seqvals "$d")" "$src_seqs"
    case $d in
        wam_dump_custom | wam_dump_plain)
            tap_is "$d: the partitions come back with their bounds and rows" "$(partitions "$d")" "$src_partitions" ;;
        *)
            # data only, through the partition root: the rows land in the partitions the
            # fresh installation has (its default ones)
            tap_is "$d: the rows of the partitions land in the default partitions" \
                "$(q "$d" "SELECT count(*) FROM wam.event_default") $(q "$d" "SELECT count(*) FROM wam.inbound_message_default")" \
                "$(q "$src" "SELECT count(*) FROM wam.event") $(q "$src" "SELECT count(*) FROM wam.inbound_message")" ;;
    esac
    tap_is "$d: messages in flight at the dump are uncertain, never resent" \
        "$(q "$d" "SELECT string_agg(message_id || ' ' || status || ' ' || (uncertain_at IS NOT NULL), ',' ORDER BY message_id)
                   FROM wam.outbox WHERE message_id IN ($in_flight)")" \
        "$(q "$src" "SELECT string_agg(message_id || ' uncertain true', ',' ORDER BY message_id)
                     FROM wam.outbox WHERE message_id IN ($in_flight)")"
    tap_is "$d: nothing is queued again (queued, sending, retrying)" \
        "$(q "$d" "SELECT count(*) FROM wam.outbox WHERE status IN ('queued', 'sending', 'retrying')")" \
        "$(q "$src" "SELECT count(*) FROM wam.outbox WHERE status IN ('queued', 'retrying')")"
    tap_is "$d: verify_tag_index holds" "$(q "$d" "SELECT count(*) FILTER (WHERE NOT ok) FROM wam.verify_tag_index()")" 0
    tap_is "$d: verify_order_stats holds" "$(q "$d" "SELECT mismatched FROM wam.verify_order_stats()")" 0
    tap_is "$d: the reward A/B test (variants, recorded variant, report) is the same" \
        "$(q "$d" "SELECT (SELECT reward_variants::text FROM wam.referral_program WHERE name = 'main') || ' ' || (SELECT string_agg(variant, ',') FROM wam.referral_reward) || ' ' || (SELECT string_agg(r.variant || ':' || r.invitees || ':' || r.first_orders, ',') FROM wam.referral_reward_report('main') r)")" \
        "$(q "$src" "SELECT (SELECT reward_variants::text FROM wam.referral_program WHERE name = 'main') || ' ' || (SELECT string_agg(variant, ',') FROM wam.referral_reward) || ' ' || (SELECT string_agg(r.variant || ':' || r.invitees || ':' || r.first_orders, ',') FROM wam.referral_reward_report('main') r)")"
    tap_is "$d: the referral report is the same" \
        "$(q "$d" "SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM wam.referral_report('main', '-infinity', 'infinity') r")" \
        "$(q "$src" "SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM wam.referral_report('main', '-infinity', 'infinity') r")"
    tap_is "$d: the delivery report is the same but for the in-flight messages" \
        "$(q "$d" "SELECT sent || ' ' || delivered || ' ' || read || ' ' || replied || ' ' || pending
                   FROM wam.delivery_report('-infinity', 'infinity', 'main')")" \
        "$(q "$src" "SELECT sent || ' ' || delivered || ' ' || read || ' ' || replied || ' ' || pending
                     FROM wam.delivery_report('-infinity', 'infinity', 'main')")"
    tap_is "$d: secrets stay readable by wam_admin only" \
        "$(q "$d" "SELECT string_agg(r || '=' || has_table_privilege(r, 'wam.sender_secret', 'SELECT'), ' ')
                   FROM unnest(ARRAY['wam_reader', 'wam_operator', 'wam_admin']) r")" \
        "wam_reader=false wam_operator=false wam_admin=true"
    offers_before=$(q "$d" "SELECT (SELECT redeemed FROM wam.offer WHERE name = 'group 50') || ' '
                            || (wam.record_order(4, 150, code => 'GROUP50') > 0)")
    offers_after=$(q "$d" "SELECT (SELECT redeemed FROM wam.offer WHERE name = 'group 50') || ' '
                           || (SELECT redeemed FROM wam.offer_group_usage) || ' '
                           || (SELECT count(used_at) FROM wam.offer_code) || ' '
                           || wam.audience_size('group(mums-taipei-east)')")
    tap_is "$d: offers, codes and groups come back and redeem as before" "$offers_before $offers_after" "1 true 2 2 1 19"
    # the triggers are live again after the restore
    tap_is "$d: afterwards, tagging, orders and referrals work as before" \
        "$(q "$d" "SELECT wam.attach_tag('vip', '{2000,2001}') || ' '
                   || (SELECT count(*) FILTER (WHERE NOT ok) FROM wam.verify_tag_index()) || ' '
                   || (wam.record_order(2000, 42) > 0) || ' '
                   || (SELECT mismatched FROM wam.verify_order_stats()) || ' '
                   || wam.record_referral(wam.referral_code(20, 'main'), 20)")" \
        "2 0 true 0 rejected: self-referral"
done

tap_done
