-- src/sql/backup.sql: every row survives pg_dump / pg_restore (see src/backup.c)

CREATE FUNCTION wam_internal.restoring() RETURNS boolean
	AS 'MODULE_PATHNAME', 'wam_restoring_sql' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION wam_internal.restoring() IS 'internal: true while the session restores a backup (a superuser''s COPY FROM stdin with pg_dump''s empty search_path, or wam.restoring = on): the triggers stand aside';

-- Tables the install script fills (dimensions, RFM settings and schemes, job schedules, opt-out
-- keywords, feedback keywords, the referral secret, the built-in customer attributes, send window
-- presets, countries' time zones, the default portfolio) are dumped whole: a restore replaces the
-- row the new installation seeded with the dumped one of the same key, so
-- built-in rows are not doubled and changed or added ones come back as they were.
CREATE FUNCTION wam_internal.restore_replace_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
DECLARE
	keys text;
	cols text;
	vals text;
	n bigint;
BEGIN
	IF NOT wam_internal.restoring() THEN
		RETURN NEW;
	END IF;
	-- an UPDATE in place, not DELETE + INSERT: other seeded rows refer to these
	SELECT string_agg(pg_catalog.format('t.%1$I IS NOT DISTINCT FROM ($1).%1$I', a.attname), ' AND ')
	INTO keys
	FROM pg_catalog.pg_index i
	JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
	WHERE i.indrelid = TG_RELID AND i.indisprimary;
	SELECT string_agg(pg_catalog.format('%I', a.attname), ', ' ORDER BY a.attnum),
		   string_agg(pg_catalog.format('($1).%I', a.attname), ', ' ORDER BY a.attnum)
	INTO cols, vals
	FROM pg_catalog.pg_attribute a
	WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
	EXECUTE pg_catalog.format('UPDATE %s t SET (%s) = ROW(%s) WHERE %s',
							  TG_RELID::pg_catalog.regclass, cols, vals, keys) USING NEW;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION wam_internal.restore_replace_trigger() IS 'internal: during a restore, a dumped row replaces the seeded row with the same primary key';
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.tag_dimension
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.rfm_config
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.rfm_scheme
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.rfm_tier_rule
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.opt_out_keyword
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.referral_secret
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.job
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.attribute
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.retention
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
-- administrators insert into these directly: the WHEN clause keeps the trigger
-- (and its wam_internal calls, which they may not make) off their inserts
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.send_window_preset
	FOR EACH ROW WHEN (wam_internal.restoring()) EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.country_time_zone
	FOR EACH ROW WHEN (wam_internal.restoring()) EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.contact_policy
	FOR EACH ROW EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.feedback_keyword
	FOR EACH ROW WHEN (wam_internal.restoring()) EXECUTE FUNCTION wam_internal.restore_replace_trigger();
CREATE TRIGGER restore_replace BEFORE INSERT ON wam.portfolio
	FOR EACH ROW WHEN (wam_internal.restoring()) EXECUTE FUNCTION wam_internal.restore_replace_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.restore_replace_trigger() FROM PUBLIC;

-- A message dumped while its request was in flight may or may not have gone
-- out: restored, it is uncertain (as after a worker crash), never sent again
-- by itself.  Normal inserts are never 'sending', so the WHEN clause keeps this
-- off the enqueue path.
CREATE FUNCTION wam_internal.outbox_restored_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, wam, pg_temp
AS $$
BEGIN
	IF wam_internal.restoring() THEN
		NEW.status := 'uncertain';
		NEW.uncertain_at := pg_catalog.now();
		NEW.error_detail := 'restored from a backup taken while the request was in flight; not resent (see wam.requeue_message)';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION wam_internal.outbox_restored_trigger() IS 'internal: a message restored in state sending becomes uncertain';
CREATE TRIGGER outbox_restored BEFORE INSERT ON wam.outbox
	FOR EACH ROW WHEN (NEW.status = 'sending') EXECUTE FUNCTION wam_internal.outbox_restored_trigger();

REVOKE EXECUTE ON FUNCTION wam_internal.outbox_restored_trigger() FROM PUBLIC;

-- Every table and sequence of the extension is dumped with its rows.  This
-- runs over the catalog, so a table added later cannot be forgotten.
DO $dump$
DECLARE
	r pg_catalog.regclass;
BEGIN
	FOR r IN SELECT c.oid FROM pg_catalog.pg_class c
			 WHERE c.relnamespace OPERATOR(pg_catalog.=) ANY (ARRAY['wam', 'wam_internal']::pg_catalog.regnamespace[])
			   AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'S']::"char"[])
			 ORDER BY c.oid
	LOOP
		PERFORM pg_catalog.pg_extension_config_dump(r, '');
	END LOOP;
END
$dump$;
