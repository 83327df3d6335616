-- 55_rule_validity: tags a rule adds expire after the rule's validity (default 90
-- days) when the tag has no time to live of its own, renewed while the rule still
-- selects the customer.  Rules of an updated installation keep no validity (their
-- tags keep never expiring) until an admin sets one.

ALTER TABLE wam.tag_rule ADD COLUMN ttl interval CONSTRAINT tag_rule_ttl CHECK (ttl > interval '0');
ALTER TABLE wam.tag_rule ALTER COLUMN ttl SET DEFAULT interval '90 days';
COMMENT ON COLUMN wam.tag_rule.ttl IS 'how long a tag the rule adds stays when the tag has no time to live of its own; renewed while the rule still selects the customer; NULL: never expires (static tags)';

-- The work of wam.retag_customers and of the rules: rule_ttl is the rule's
-- validity for added tags that have no time to live of their own.
CREATE FUNCTION wam_internal.retag(who wam.segment, add text[], remove text[], source text, rule_ttl interval)
	RETURNS TABLE (tag text, added bigint, removed bigint)
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t text;
	is_add boolean;
	both_ways text;
BEGIN
	SELECT string_agg(a, ', ') INTO both_ways FROM unnest(add) a
	WHERE wam.normalize_tag_name(a) IN (SELECT wam.normalize_tag_name(r) FROM unnest(remove) r);
	IF both_ways IS NOT NULL THEN
		RAISE EXCEPTION 'tags cannot be both added and removed: %', both_ways USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- resolve every name first, so an unknown tag changes nothing
	PERFORM wam.tag_id(a, true) FROM unnest(add) a;
	PERFORM wam.tag_id(r) FROM unnest(remove) r;
	-- Tags in id order, so concurrent retags lock the same blocks in the same
	-- order and cannot deadlock.
	FOR t, is_add IN
		SELECT x.name, x.is_add FROM (
			SELECT a AS name, true AS is_add, wam.tag_id(a) AS id FROM unnest(add) a
			UNION ALL
			SELECT r, false, wam.tag_id(r) FROM unnest(remove) r) x
		ORDER BY x.id
	LOOP
		tag := t;
		IF is_add THEN
			added := wam.attach_tag(t, who,
									CASE WHEN (SELECT x.default_ttl FROM wam.tag x WHERE x.tag_id = wam.tag_id(t)) IS NULL
										 THEN rule_ttl END,
									source);
			removed := 0;
		ELSE
			added := 0; removed := wam.detach_tag(t, who);
		END IF;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wam_internal.retag(wam.segment, text[], text[], text, interval) IS 'internal: adds and removes tags for a segment (rules: with their validity); counts per tag';

REVOKE EXECUTE ON FUNCTION wam_internal.retag(wam.segment, text[], text[], text, interval) FROM PUBLIC;

CREATE OR REPLACE FUNCTION wam.retag_customers(who wam.segment, add text[] DEFAULT '{}', remove text[] DEFAULT '{}',
						  source text DEFAULT 'api')
	RETURNS TABLE (tag text, added bigint, removed bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	RETURN QUERY SELECT * FROM wam_internal.retag(who, add, remove, source, NULL);
END
$$;

CREATE OR REPLACE FUNCTION wam.run_tag_rules(only_rule text DEFAULT NULL)
	RETURNS TABLE (rule text, customers bigint, added bigint, removed bigint)
	-- definer: operators run the rules and the run records its counts in
	-- wam.tag_rule, but only admins may change rules (no UPDATE for operators)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	r wam.tag_rule;
	who wam.segment;
BEGIN
	FOR r IN SELECT * FROM wam.tag_rule tr
			 WHERE tr.enabled AND tr.condition IS NOT NULL
			   AND (only_rule IS NULL OR tr.name = only_rule)
			 ORDER BY tr.rule_id
	LOOP
		who := wam.rule_audience(r);
		rule := r.name;
		customers := wam.segment_cardinality(who);
		SELECT coalesce(sum(x.added), 0), coalesce(sum(x.removed), 0) INTO added, removed
		FROM wam_internal.retag(who, r.add_tags, r.remove_tags, 'rule', r.ttl) x;
		UPDATE wam.tag_rule tr SET last_run_at = now(), last_added = added, last_removed = removed
		WHERE tr.rule_id = r.rule_id;
		RAISE NOTICE 'rule "%": % customers, % tags added, % removed', r.name, customers, added, removed;
		RETURN NEXT;
	END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION wam_internal.event_rules_trigger() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, wam, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	r wam.tag_rule;
	ids bigint[];
BEGIN
	-- restored rows already carry their effects (src/backup.c)
	IF wam_internal.restoring() THEN
		RETURN NULL;
	END IF;
	FOR r IN SELECT tr.* FROM wam.tag_rule tr
			 WHERE tr.enabled AND tr.on_event IN (SELECT DISTINCT n.kind FROM new_events n)
			 ORDER BY tr.rule_id
	LOOP
		SELECT array_agg(DISTINCT n.customer_id) INTO ids FROM new_events n WHERE n.kind = r.on_event;
		PERFORM wam_internal.retag(wam.rule_audience(r, ids), r.add_tags, r.remove_tags, 'rule', r.ttl);
	END LOOP;
	RETURN NULL;
END
$$;
