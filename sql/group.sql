-- WhatsApp groups and communities (issue 20, item 1): members with join/leave
-- history, built from segments and expressions, group(name) in segment expressions,
-- the size view, bad input and who may do what
SET client_min_messages = warning;
DROP EXTENSION pg_wamarketing CASCADE;
CREATE EXTENSION pg_wamarketing;
RESET client_min_messages;
SET search_path = public, wam;
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.who(e text) RETURNS text LANGUAGE sql
	RETURN (SELECT coalesce(string_agg(m::text, ',' ORDER BY m), '-') FROM segment_members(audience(e)) m);
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

INSERT INTO customer (id, phone) SELECT g, (85290000000 + g)::text FROM generate_series(1, 12) g;
SELECT create_tag('city-taipei', 'interest') IS NOT NULL AS tagged;
SELECT attach_tag('city-taipei', segment(ARRAY[3, 4, 5, 6, 7]::bigint[])) AS attached;
SELECT create_sender('tw', '1001', 'EAAtoken', 'app-secret', 'https://localhost:9') AS tw \gset

-- creating: a slug name, group or community, an existing sender
SELECT create_group('mums-taipei-east', 'group', 'tw') AS g1, create_group('mums-taipei') AS g2,
	   create_group('taipei-parents', 'community') AS g3;
SELECT pg_temp.err($$SELECT create_group('Mums Taipei')$$) AS not_a_slug,
	   pg_temp.err($$SELECT create_group('-mums')$$) AS leading_hyphen,
	   pg_temp.err($$SELECT create_group('mums--east')$$) AS double_hyphen,
	   pg_temp.err($$SELECT create_group('')$$) AS empty;
BEGIN;
SELECT pg_temp.err($$SELECT create_group(repeat('a', 101))$$) = '22023: invalid group name "' || repeat('a', 100) || '"' AS too_long,
	   pg_temp.err($$SELECT create_group(repeat('a', 100))$$) AS longest;
ROLLBACK;
SELECT pg_temp.err($$SELECT create_group('mums-taipei')$$) AS duplicate,
	   pg_temp.err($$SELECT create_group('x', 'channel')$$) AS bad_kind,
	   pg_temp.err($$SELECT create_group('x', 'group', 'nope')$$) AS unknown_sender;
SELECT pg_temp.err($$SELECT create_group(NULL)$$) AS null_name,
	   pg_temp.err($$SELECT create_group('x', NULL)$$) AS null_kind;

-- members: from a segment, from an expression; customers that do not exist are skipped;
-- adding again changes nothing, adding as admin promotes
SELECT add_group_members('mums-taipei-east', segment(ARRAY[1, 2, 3, 99]::bigint[])) AS added;
SELECT add_group_members('mums-taipei-east', segment(ARRAY[1, 2, 3]::bigint[])) AS added_again;
SELECT add_group_members('mums-taipei-east', segment(ARRAY[1]::bigint[]), 'admin') AS promoted;
SELECT add_group_members('mums-taipei', 'city-taipei') AS from_expression;
SELECT add_group_members('mums-taipei', 'city-taipei AND group(mums-taipei)', 'admin') AS all_promoted;
SELECT add_group_members('taipei-parents', 'group(mums-taipei-east) | group(mums-taipei)') AS community;
SELECT add_group_members('mums-taipei', segment(ARRAY[]::bigint[])) AS empty_segment;
SELECT pg_temp.err($$SELECT add_group_members('nope', segment_range(1, 3))$$) AS unknown_group,
	   pg_temp.err($$SELECT add_group_members('mums-taipei', segment_range(1, 3), 'owner')$$) AS bad_role,
	   pg_temp.err($$SELECT add_group_members('mums-taipei', NULL::segment)$$) AS null_members,
	   pg_temp.err($$SELECT add_group_members('mums-taipei', 'no-such-tag')$$) AS bad_expression;
SELECT name, kind, sender, members, admins, left_members FROM group_size ORDER BY name;

-- a customer in several groups
SELECT g.name, m.role FROM group_member m JOIN wa_group g USING (group_id) WHERE m.customer_id = 3 ORDER BY 1;

-- leaving keeps the history; joining again is a new membership
SELECT remove_group_members('mums-taipei-east', segment(ARRAY[2, 3, 12]::bigint[])) AS left_group;
SELECT remove_group_members('mums-taipei-east', segment(ARRAY[2]::bigint[])) AS left_again;
SELECT add_group_members('mums-taipei-east', segment(ARRAY[2]::bigint[])) AS rejoined;
SELECT customer_id, role, left_at IS NOT NULL AS has_left FROM group_member m JOIN wa_group g USING (group_id)
WHERE g.name = 'mums-taipei-east' ORDER BY customer_id, joined_at, left_at NULLS LAST;
SELECT pg_temp.err($$SELECT remove_group_members('nope', segment_range(1, 3))$$) AS unknown_group,
	   pg_temp.err($$SELECT remove_group_members('mums-taipei', NULL)$$) AS null_members;
SELECT name, members, admins, left_members FROM group_size ORDER BY name;

-- group(name) in segment expressions: the current members
SELECT pg_temp.who('group(mums-taipei-east)') AS east, pg_temp.who('group(mums-taipei)') AS taipei,
	   pg_temp.who('group(taipei-parents)') AS parents;
SELECT pg_temp.who('group(mums-taipei) AND NOT group(mums-taipei-east)') AS taipei_only,
	   pg_temp.who('group(mums-taipei-east) | city-taipei') AS east_or_city,
	   pg_temp.who('group("MUMS-Taipei-East")') AS quoted_any_case,
	   pg_temp.who('GROUP ( mums-taipei-east )') AS spaced;
SELECT audience_size('group(mums-taipei)') AS size, audience_size('NOT group(mums-taipei)') AS outside;
SELECT * FROM audience_funnel('group(mums-taipei) - group(mums-taipei-east)');
-- saved segments may name groups; a group named in one is found when it is used
SELECT define_segment('east-mums', 'group(mums-taipei-east) AND reachable') IS NOT NULL AS defined;
SELECT pg_temp.who('@east-mums | group(mums-taipei-east)') AS via_saved;
-- "group" is still a tag name where no "(" follows
SELECT create_tag('group', 'interest') IS NOT NULL AS tag_named_group;
SELECT attach_tag('group', segment(ARRAY[9]::bigint[])) AS attached;
SELECT pg_temp.who('group') AS the_tag, pg_temp.who('group OR group(mums-taipei-east)') AS tag_or_group;
-- unknown groups and syntax errors, with positions
SELECT audience_problem('group(mums-taipei-west)') AS unknown;
SELECT audience_problem('city-taipei AND group(nope)') AS unknown_second;
SELECT audience_size('group(nope)');
SELECT audience_problem('group(') AS no_name, audience_problem('group()') AS empty_parens,
	   audience_problem('group(a b)') AS two_words, audience_problem('group(a') AS unclosed;
SELECT audience_problem('group(@x)') AS segment_inside, audience_problem('group("")') AS empty_quoted;
SELECT pg_temp.err($$SELECT define_segment('bad', 'group(nope)')$$) AS saved_unknown;

-- who may do what: administrators create groups and change members; operators and
-- readers read the groups (segment expressions name them) but change nothing
SET ROLE wam_operator;
SELECT pg_temp.err($$SELECT create_group('mallory-group')$$) AS operator_create,
	   pg_temp.err($$SELECT add_group_members('mums-taipei', segment_range(1, 12))$$) AS operator_add,
	   pg_temp.err($$SELECT add_group_members('mums-taipei', 'ALL', 'admin')$$) AS operator_add_expr,
	   pg_temp.err($$SELECT remove_group_members('mums-taipei', segment_range(1, 12))$$) AS operator_remove;
SELECT pg_temp.err($$INSERT INTO group_member (group_id, customer_id, role) VALUES (1, 12, 'admin')$$) AS operator_insert,
	   pg_temp.err($$UPDATE group_member SET role = 'admin'$$) AS operator_update,
	   pg_temp.err($$DELETE FROM group_member$$) AS operator_delete,
	   pg_temp.err($$UPDATE wa_group SET name = 'x'$$) AS operator_rename;
RESET ROLE;
SET ROLE wam_reader;
SELECT name, members FROM group_size ORDER BY name;
SELECT audience_size('group(mums-taipei)') AS reader_expression;
SELECT pg_temp.err($$SELECT create_group('reader-group')$$) AS reader_create;
RESET ROLE;
SET ROLE wam_admin;
SELECT create_group('admins-group') AS admin_create;
SELECT add_group_members('admins-group', 'group(mums-taipei)') AS admin_add;
SELECT remove_group_members('admins-group', segment_range(1, 5)) AS admin_remove;
RESET ROLE;
-- deleting a customer deletes their memberships
DELETE FROM customer WHERE id = 4;
SELECT count(*) AS memberships_of_4 FROM group_member WHERE customer_id = 4;
