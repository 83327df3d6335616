/*-------------------------------------------------------------------------
 *
 * tag_attach.c
 *	  wam.attach_tag() and wam.detach_tag(): give a tag to, or take it from, the
 *	  customers of a segment, keeping wam.customer_tag (the truth) and the
 *	  tag's bitmap blocks in wam.tag_chunk exactly in step.
 *
 * They were PL/pgSQL functions of ten statements each; at one customer per
 * call the statement overhead (~0.1 ms each) was most of the time, so the
 * steps now run here in one call: the tag lookup and the writes of
 * wam.tag_chunk, wam.tag and expiry refreshes go through SPI plans prepared
 * once per session, the membership rows through the bulk writers of
 * tag_membership.c, and the advisory locks and bitmap arithmetic directly.
 * The order of the steps and every error are those of the PL/pgSQL
 * versions:
 *
 *	 1. the tag by normalised name (unknown: error; retired or merged: error
 *		for attach only)
 *	 2. argument checks; every member of the segment must be a customer
 *		(the all-customers bitmap, tag 0)
 *	 3. transaction-scoped advisory locks on the (tag, block) pairs the
 *		segment touches, in ascending order: attach and detach of the same
 *		customers serialize per block and never deadlock, while writers of
 *		other blocks of the same tag proceed in parallel
 *	 4. under a snapshot taken after the locks, the tag's members in those
 *		blocks; the difference (attach) or intersection (detach) with the
 *		segment is exactly what changes
 *	 5. membership rows, then the blocks (row-locked upserts whose new value
 *		is computed from the latest row version, so the triggers of direct
 *		DML on wam.customer_tag, which take no advisory locks, stay safe)
 *
 * Both functions are SECURITY DEFINER with search_path pinned in their SQL
 * definitions; every name below is schema-qualified anyway.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "tag_membership.h"
#include "segment.h"
#include "wam_lock.h"
#include "wam_spi.h"

PG_FUNCTION_INFO_V1(wam_attach);
PG_FUNCTION_INFO_V1(wam_detach);
PG_FUNCTION_INFO_V1(wam_tag_members);

/* A tag as attach/detach need it. */
typedef struct WamTag
{
	int32		tag_id;
	bool		retired;
	bool		has_ttl;
	Interval	default_ttl;
	bool		stale_use;		/* last_attached_at older than an hour */
	char		anchor;			/* expiry anchor: 'a'ttach, first at't'achment, first 'o'rder */
	char	   *name;
	char	   *merged_into;	/* name of the tag it was merged into, or NULL */
} WamTag;

static SPIPlanPtr wam_tag_plan = NULL;
static SPIPlanPtr wam_chunk_add_plan = NULL;
static SPIPlanPtr wam_chunk_remove_plan = NULL;
static SPIPlanPtr wam_chunk_drop_plan = NULL;
static SPIPlanPtr wam_refresh_plan = NULL;
static SPIPlanPtr wam_clear_plan = NULL;
static SPIPlanPtr wam_used_plan = NULL;
static SPIPlanPtr wam_first_order_plan = NULL;

/*
 * The OID of wam.segment the plans above were prepared with.  It changes
 * when the extension is dropped and created again in the same session; the
 * plans are then prepared anew (relations are looked up again by the plan
 * cache, but parameter types are fixed at preparation).
 */
static Oid	wam_plans_segtype = InvalidOid;

static void
wam_plans_check(Oid segtype)
{
	SPIPlanPtr *plans[] = {&wam_tag_plan, &wam_chunk_add_plan, &wam_chunk_remove_plan,
	&wam_chunk_drop_plan, &wam_refresh_plan, &wam_clear_plan, &wam_used_plan,
	&wam_first_order_plan};
	int			i;

	if (segtype == wam_plans_segtype)
		return;
	for (i = 0; i < lengthof(plans); i++)
		wam_spi_forget(plans[i]);
	wam_plans_segtype = segtype;
}

/* The type of argument 1 (who), wam.segment. */
static Oid
wam_segment_argtype(FunctionCallInfo fcinfo)
{
	Oid			t = get_fn_expr_argtype(fcinfo->flinfo, 1);

	if (!OidIsValid(t))
		t = DatumGetObjectId(DirectFunctionCall1(regtypein, CStringGetDatum("wam.segment")));
	return t;
}

/*
 * Generic plans (wam_spi_plan): these statements gain nothing from
 * re-planning per call.
 */
#define TAG_PLAN(slot, sql, nargs, argtypes) \
	wam_spi_plan(slot, sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN)

/*
 * wam_lookup_tag finds a tag by any spelling that normalises like its name,
 * with the errors of wam.tag_id(tag, for_attach).  Runs inside SPI; the
 * strings are copied into `cxt`.
 */
static void
wam_lookup_tag(text *name, bool for_attach, WamTag *tag, MemoryContext cxt)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			ret;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *status;
	MemoryContext old;

	args[0] = PointerGetDatum(name);
	ret = SPI_execute_plan(TAG_PLAN(&wam_tag_plan,
									"SELECT t.tag_id, t.status, t.default_ttl, t.name,"
									" (SELECT m.name FROM wam.tag m WHERE m.tag_id OPERATOR(pg_catalog.=) t.merged_into),"
									" t.last_attached_at IS NULL OR t.last_attached_at OPERATOR(pg_catalog.<)"
									" (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour'),"
									/* through the row: a 0.1 catalog, not updated yet, has no such column */
									" pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->>) 'expiry_anchor'"
									" FROM wam.tag t"
									" WHERE t.normalized_name OPERATOR(pg_catalog.=) wam.normalize_tag_name($1)",
									1, argtypes),
						   args, NULL, true, 2);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "wam_lookup_tag: SPI_execute_plan returned %d", ret);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tag \"%s\" does not exist", text_to_cstring(name)),
				 errhint("An administrator creates tags with wam.create_tag().")));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	old = MemoryContextSwitchTo(cxt);
	tag->tag_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	status = SPI_getvalue(tup, desc, 2);
	tag->retired = (strcmp(status, "retired") == 0);
	{
		Datum		ttl = SPI_getbinval(tup, desc, 3, &isnull);

		tag->has_ttl = !isnull;
		if (!isnull)
			tag->default_ttl = *DatumGetIntervalP(ttl);
	}
	tag->name = SPI_getvalue(tup, desc, 4);
	tag->merged_into = SPI_getvalue(tup, desc, 5);
	tag->stale_use = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
	{
		char	   *anchor = SPI_getvalue(tup, desc, 7);

		tag->anchor = anchor == NULL ? 'a' : strcmp(anchor, "first_order") == 0 ? 'o' :
			strcmp(anchor, "first_attach") == 0 ? 't' : 'a';
	}
	MemoryContextSwitchTo(old);

	if (for_attach && tag->retired)
	{
		if (tag->merged_into != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tag \"%s\" was merged into \"%s\"", tag->name, tag->merged_into)));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tag \"%s\" is retired", tag->name),
				 errhint("An administrator can reactivate it with wam.reactivate_tag().")));
	}
}

/*
 * wam_lock_blocks takes the locks of the (tag, block) pairs that `who`
 * touches, in ascending block order (so writers never deadlock on them), in
 * the extension's own lock space (wam_lock.h), which pg_advisory_lock()
 * cannot reach.
 */
static void
wam_lock_blocks(int32 tag_id, const roaring_bitmap_t *who)
{
	const roaring_array_t *ra = &who->high_low_container;
	int32		i;

	for (i = 0; i < ra->size; i++)
		wam_xact_lock(WAM_LOCK_TAG_BLOCK,
					  (((int64) tag_id & INT64CONST(0xffffffff)) << 32) | (int64) ra->keys[i]);
}

/* The members of a tag in the blocks `who` touches, read under a new snapshot. */
static const roaring_bitmap_t *
wam_members_near(int32 tag_id, const roaring_bitmap_t *who)
{
	return wam_segment_read(wam_tag_blocks(tag_id, wam_bitmap_chunk_keys(who), true));
}

/*
 * wam_blocks_change adds (add) or removes the members of `change` to or from
 * the tag's blocks, one block at a time in ascending order, so concurrent
 * writers take the row locks in the same order.  Blocks left empty are
 * deleted.  Runs inside SPI.
 */
static void
wam_blocks_change(int32 tag_id, const roaring_bitmap_t *change, bool add)
{
	Oid			argtypes[3] = {INT4OID, INT4OID, InvalidOid};
	int32		n = change->high_low_container.size;
	int32		i;

	if (n == 0)
		return;
	argtypes[2] = wam_plans_segtype;
	for (i = 0; i < n; i++)
	{
		roaring_bitmap_t *part = wam_bitmap_container(change, i);
		Datum		args[3];
		int			ret;

		args[0] = Int32GetDatum(tag_id);
		args[1] = Int32GetDatum((int32) change->high_low_container.keys[i]);
		args[2] = PointerGetDatum(wam_segment_flatten(part));
		if (add)
		{
			ret = SPI_execute_plan(TAG_PLAN(&wam_chunk_add_plan,
											"INSERT INTO wam.tag_chunk AS c (tag_id, chunk, members) VALUES ($1, $2, $3)"
											" ON CONFLICT ON CONSTRAINT tag_chunk_pkey"
											" DO UPDATE SET members = c.members OPERATOR(wam.|) EXCLUDED.members",
											3, argtypes),
								   args, NULL, false, 0);
			if (ret != SPI_OK_INSERT)
				elog(ERROR, "wam_blocks_change: insert returned %d", ret);
		}
		else
		{
			bool		isnull;

			ret = SPI_execute_plan(TAG_PLAN(&wam_chunk_remove_plan,
											"UPDATE wam.tag_chunk c SET members = c.members OPERATOR(wam.-) $3"
											" WHERE c.tag_id OPERATOR(pg_catalog.=) $1 AND c.chunk OPERATOR(pg_catalog.=) $2"
											" RETURNING wam.segment_is_empty(c.members)",
											3, argtypes),
								   args, NULL, false, 0);
			if (ret != SPI_OK_UPDATE_RETURNING)
				elog(ERROR, "wam_blocks_change: update returned %d", ret);
			/* no empty blocks are kept */
			if (SPI_processed == 1 &&
				DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			{
				ret = SPI_execute_plan(TAG_PLAN(&wam_chunk_drop_plan,
												"DELETE FROM wam.tag_chunk c"
												" WHERE c.tag_id OPERATOR(pg_catalog.=) $1 AND c.chunk OPERATOR(pg_catalog.=) $2",
												2, argtypes),
									   args, NULL, false, 0);
				if (ret != SPI_OK_DELETE)
					elog(ERROR, "wam_blocks_change: delete returned %d", ret);
			}
		}
		pfree(DatumGetPointer(args[2]));
	}
}

/*
 * wam.attach_tag(tag text, who wam.segment, ttl interval DEFAULT NULL,
 * source text DEFAULT 'api') RETURNS bigint: gives the tag to the customers
 * of `who`; returns how many did not have it.  Those who had it get their
 * expiry refreshed when the tag's expiry is anchored to each attachment
 * (expiry_anchor 'attach'); a tag anchored to the first attachment or to the
 * customer's first order keeps the expiry its members got when they first
 * received it.
 */
Datum
wam_attach(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	WamTag		tag;
	const roaring_bitmap_t *who;
	const roaring_bitmap_t *known;
	roaring_bitmap_t *unknown;
	roaring_bitmap_t *fresh;
	Interval   *ttl = PG_ARGISNULL(2) ? NULL : PG_GETARG_INTERVAL_P(2);
	char	   *source;
	bool		expires_null;
	TimestampTz expires_at = 0;
	int64		n;
	uint64		who_card;

	wam_not_null(PG_ARGISNULL(0), "tag name");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "wam_attach: SPI_connect failed");
	wam_plans_check(wam_segment_argtype(fcinfo));
	wam_lookup_tag(PG_GETARG_TEXT_PP(0), true, &tag, callcxt);

	wam_not_null(PG_ARGISNULL(1), "segment of customers");
	if (ttl != NULL)
	{
		Interval	zero;

		memset(&zero, 0, sizeof(zero));
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(ttl),
											  IntervalPGetDatum(&zero))) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time to live must be positive, not %s",
							DatumGetCString(DirectFunctionCall1(interval_out,
																IntervalPGetDatum(ttl))))));
	}
	source = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (source == NULL ||
		(strcmp(source, "import") != 0 && strcmp(source, "rule") != 0 &&
		 strcmp(source, "manual") != 0 && strcmp(source, "api") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown membership source \"%s\"", source ? source : "<NULL>"),
				 errhint("The sources are import, rule, manual and api.")));

	MemoryContextSwitchTo(callcxt);
	who = PG_GETARG_SEGMENT_BITMAP(1);
	who_card = roaring_bitmap_get_cardinality(who);

	/* every member must be a customer (tag 0 holds all customers) */
	known = wam_members_near(0, who);
	unknown = wam_bitmap_hold(roaring_bitmap_andnot(who, known), callcxt)->bm;
	if (!roaring_bitmap_is_empty(unknown))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("%llu of the customers do not exist",
						(unsigned long long) roaring_bitmap_get_cardinality(unknown)),
				 errdetail("For example customer %u.", roaring_bitmap_minimum(unknown)),
				 errhint("Create customers with wam.upsert_customer(phone, ...) or wam.import_csv(...).")));

	/* expiry: now() + the given time to live, else the tag's default */
	if (ttl != NULL || tag.has_ttl)
	{
		expires_at = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
															 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
															 IntervalPGetDatum(ttl ? ttl : &tag.default_ttl)));
		expires_null = false;
	}
	else
		expires_null = true;

	wam_lock_blocks(tag.tag_id, who);
	/*
	 * Only customers that do not hold the tag yet are inserted: the bitmap
	 * difference is far cheaper than a conflict check per row, and the locks
	 * above make it exact against concurrent attach/detach.
	 */
	fresh = wam_bitmap_hold(roaring_bitmap_andnot(who, wam_members_near(tag.tag_id, who)),
							callcxt)->bm;
	n = wam_membership_insert_bitmap(tag.tag_id, fresh, expires_at, expires_null,
									 CStringGetTextDatum(source));
	wam_blocks_change(tag.tag_id, fresh, true);

	/*
	 * Anchored to the first order: the new members who have ordered expire
	 * the time to live after their first order (which may already be past:
	 * the next wam.expire_tags() removes them), the others after now.  Only
	 * tags with this anchor pay for the lookup.
	 */
	if (tag.anchor == 'o' && !expires_null && n > 0)
	{
		WamSegmentExpanded *added = wam_segment_expand(wam_bitmap_check_alloc(roaring_bitmap_copy(fresh)),
													   callcxt);
		Oid			argtypes[3] = {INT4OID, InvalidOid, INTERVALOID};
		Datum		args[3];
		int			ret;

		argtypes[1] = wam_plans_segtype;
		args[0] = Int32GetDatum(tag.tag_id);
		args[1] = EOHPGetRODatum(&added->hdr);
		args[2] = IntervalPGetDatum(ttl ? ttl : &tag.default_ttl);
		ret = SPI_execute_plan(TAG_PLAN(&wam_first_order_plan,
										"UPDATE wam.customer_tag ct"
										" SET expires_at = c.first_order_at OPERATOR(pg_catalog.+) $3"
										" FROM wam.segment_members($2) m, wam.customer c"
										" WHERE c.id OPERATOR(pg_catalog.=) m AND c.first_order_at IS NOT NULL"
										" AND ct.customer_id OPERATOR(pg_catalog.=) m AND ct.tag_id OPERATOR(pg_catalog.=) $1",
										3, argtypes),
							   args, NULL, false, 0);
		if (ret != SPI_OK_UPDATE)
			elog(ERROR, "wam_attach: first-order expiry returned %d", ret);
	}

	/*
	 * Re-attaching refreshes the expiry of those who already hold the tag.
	 * An expiry already within 1 % of the time to live (at most a day) of
	 * the new one is left as it is: a rule that runs every few minutes
	 * re-attaches its tags to everyone it still selects, and would otherwise
	 * rewrite every holder's row on every run.
	 */
	if (who_card > (uint64) n && tag.anchor == 'a')
	{
		/* passed as a read-only expanded object: no serialization, no re-reading per row */
		WamSegmentExpanded *held = wam_segment_expand(wam_bitmap_check_alloc(roaring_bitmap_andnot(who, fresh)),
													  callcxt);
		Oid			argtypes[4] = {INT4OID, InvalidOid, TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum		args[4];
		char		nulls[4] = {' ', ' ', expires_null ? 'n' : ' ', expires_null ? 'n' : ' '};
		int			ret;

		argtypes[1] = wam_plans_segtype;
		args[0] = Int32GetDatum(tag.tag_id);
		args[1] = EOHPGetRODatum(&held->hdr);
		args[2] = TimestampTzGetDatum(expires_at);
		args[3] = TimestampTzGetDatum(expires_null ? 0 :
									  expires_at - Min(Max(expires_at - GetCurrentTransactionStartTimestamp(), 0) / 100,
													   USECS_PER_DAY));
		if (expires_null)
		{
			/*
			 * Clearing the expiry: only rows that have one change, and the
			 * partial index on expires_at finds them without a probe per
			 * member (re-attaching a million customers without a time to
			 * live would otherwise look up every one of them).
			 */
			ret = SPI_execute_plan(TAG_PLAN(&wam_clear_plan,
											"UPDATE wam.customer_tag ct SET expires_at = NULL"
											" WHERE ct.expires_at IS NOT NULL AND ct.tag_id OPERATOR(pg_catalog.=) $1"
											" AND wam.segment_has($2, ct.customer_id)",
											2, argtypes),
								   args, NULL, false, 0);
		}
		else
			ret = SPI_execute_plan(TAG_PLAN(&wam_refresh_plan,
											"UPDATE wam.customer_tag ct SET expires_at = $3"
											" FROM wam.segment_members($2) m"
											" WHERE ct.customer_id OPERATOR(pg_catalog.=) m AND ct.tag_id OPERATOR(pg_catalog.=) $1"
											" AND (ct.expires_at IS NULL OR ct.expires_at OPERATOR(pg_catalog.<) $4"
											" OR ct.expires_at OPERATOR(pg_catalog.>) $3)",
											4, argtypes),
								   args, nulls, false, 0);
		if (ret != SPI_OK_UPDATE)
			elog(ERROR, "wam_attach: expiry refresh returned %d", ret);
	}

	/*
	 * Note the use for the health report without ever waiting: at most once
	 * an hour, and skipped while another transaction holds the tag row.
	 */
	if (tag.stale_use)
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		args[1];
		int			ret;

		args[0] = Int32GetDatum(tag.tag_id);
		ret = SPI_execute_plan(TAG_PLAN(&wam_used_plan,
										"UPDATE wam.tag t SET last_attached_at = pg_catalog.now()"
										" WHERE t.tag_id IN (SELECT t2.tag_id FROM wam.tag t2"
										"  WHERE t2.tag_id OPERATOR(pg_catalog.=) $1"
										"  AND (t2.last_attached_at IS NULL OR t2.last_attached_at OPERATOR(pg_catalog.<)"
										"       (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour'))"
										"  FOR NO KEY UPDATE SKIP LOCKED)",
										1, argtypes),
							   args, NULL, false, 0);
		if (ret != SPI_OK_UPDATE)
			elog(ERROR, "wam_attach: tag use update returned %d", ret);
	}

	SPI_finish();
	PG_RETURN_INT64(n);
}

/*
 * wam.detach_tag(tag text, who wam.segment) RETURNS bigint: takes the tag from
 * the customers of `who`; returns how many had it.  Retired tags can be
 * taken away.
 */
Datum
wam_detach(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	WamTag		tag;
	const roaring_bitmap_t *who;
	roaring_bitmap_t *gone;
	int64		n;

	wam_not_null(PG_ARGISNULL(0), "tag name");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "wam_detach: SPI_connect failed");
	wam_plans_check(wam_segment_argtype(fcinfo));
	wam_lookup_tag(PG_GETARG_TEXT_PP(0), false, &tag, callcxt);
	wam_not_null(PG_ARGISNULL(1), "segment of customers");

	MemoryContextSwitchTo(callcxt);
	who = PG_GETARG_SEGMENT_BITMAP(1);
	wam_lock_blocks(tag.tag_id, who);
	gone = wam_bitmap_hold(roaring_bitmap_and(who, wam_members_near(tag.tag_id, who)),
						   callcxt)->bm;
	n = wam_membership_delete_bitmap(tag.tag_id, gone);
	wam_blocks_change(tag.tag_id, gone, false);
	SPI_finish();
	PG_RETURN_INT64(n);
}

/*
 * wam.tag_members(tag text) RETURNS wam.segment: the customers holding a
 * tag (any spelling that normalises like its name; unknown: error).  In C
 * rather than SQL so that the segment is handed to the next operator as a
 * live bitmap (see wam_tag_blocks), not copied through a SQL function.
 */
Datum
wam_tag_members(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	WamTag		tag;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "wam_tag_members: SPI_connect failed");
	wam_plans_check(get_fn_expr_rettype(fcinfo->flinfo));
	wam_lookup_tag(PG_GETARG_TEXT_PP(0), false, &tag, callcxt);
	SPI_finish();
	PG_RETURN_DATUM(wam_tag_blocks(tag.tag_id, NULL, false));
}
