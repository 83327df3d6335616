/*-------------------------------------------------------------------------
 *
 * tag_membership.c
 *	  Bulk writes of tag memberships (wam.customer_tag) for a whole segment,
 *	  and the split of a segment into per-chunk bitmaps.
 *
 * Tagging a million customers through INSERT ... SELECT costs several
 * microseconds per row in executor overhead.  wam.attach_tag() and wam.detach_tag()
 * instead hand the segment to these functions, which write the heap with
 * table_multi_insert() (one WAL record per page instead of per row) and
 * maintain the indexes directly, deleting through the primary key.  They are
 * internal: EXECUTE is revoked from PUBLIC, and they re-check the caller's
 * table privileges.  Because they bypass the executor, row and statement
 * triggers on wam.customer_tag do not fire for them; the calling functions
 * update wam.tag_chunk themselves.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "tag_membership.h"
#include "segment.h"

PG_FUNCTION_INFO_V1(wam_membership_insert);
PG_FUNCTION_INFO_V1(wam_membership_delete);
PG_FUNCTION_INFO_V1(wam_segment_chunks);
PG_FUNCTION_INFO_V1(wam_segment_chunk_keys);

/* Rows per table_multi_insert() call. */
#define WAM_INSERT_BATCH	1000

/* Columns of wam.customer_tag, resolved by name so a column order change
 * in the install script cannot silently misplace values. */
typedef struct WamMembershipColumns
{
	AttrNumber	customer_id;
	AttrNumber	tag_id;
	AttrNumber	attached_at;
	AttrNumber	expires_at;
	AttrNumber	source;
} WamMembershipColumns;

static AttrNumber
wam_column(Relation rel, const char *name, Oid type)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
		{
			if (att->atttypid != type)
				elog(ERROR, "wam.customer_tag.%s has an unexpected type", name);
			return att->attnum;
		}
	}
	elog(ERROR, "wam.customer_tag has no column %s", name);
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/*
 * wam_open_memberships opens wam.customer_tag after checking that the
 * current user may perform `mode` on it.
 */
static Relation
wam_open_memberships(AclMode mode, WamMembershipColumns *cols)
{
	Oid			nsp = get_namespace_oid("wam", false);
	Oid			relid = get_relname_relid("customer_tag", nsp);
	Relation	rel;
	AclResult	aclresult;

	if (!OidIsValid(relid))
		elog(ERROR, "relation wam.customer_tag does not exist");
	aclresult = pg_class_aclcheck(relid, GetUserId(), mode);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, "customer_tag");

	/*
	 * The executor is what refuses writes in a read-only transaction, and
	 * these writes bypass it: without this check a READ ONLY transaction
	 * would write the heap, and on a hot standby (where every transaction
	 * is read-only) the write would fail with an internal error ("cannot
	 * assign TransactionId during recovery") instead of the usual 25006.
	 */
	PreventCommandIfReadOnly(mode == ACL_INSERT ? "INSERT" : "DELETE");
	rel = table_open(relid, RowExclusiveLock);
	cols->customer_id = wam_column(rel, "customer_id", INT8OID);
	cols->tag_id = wam_column(rel, "tag_id", INT4OID);
	cols->attached_at = wam_column(rel, "attached_at", TIMESTAMPTZOID);
	cols->expires_at = wam_column(rel, "expires_at", TIMESTAMPTZOID);
	cols->source = wam_column(rel, "source", TEXTOID);
	return rel;
}

/*
 * wam_membership_insert_bitmap inserts one membership row per member of
 * `bm` for the tag; none of them may hold the tag yet (a duplicate raises a
 * unique violation).  Returns the number of rows inserted.
 */
int64
wam_membership_insert_bitmap(int32 tag_id, const roaring_bitmap_t *bm,
							 TimestampTz expires_at, bool expires_null, Datum source)
{
	WamMembershipColumns cols;
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slots[WAM_INSERT_BATCH];
	BulkInsertState bistate;
	CommandId	cid;
	MemoryContext batchcxt;
	MemoryContext oldcxt;
	roaring_uint32_iterator_t it;
	uint32		ids[WAM_INSERT_BATCH];
	uint32		n;
	int64		total = 0;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			nslots;
	int			i;
	TupleDesc	slotdesc;

	if (roaring_bitmap_is_empty(bm))
		return 0;
	rel = wam_open_memberships(ACL_INSERT, &cols);
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	/* as many slots as one batch needs: tagging one customer makes one */
	nslots = (int) Min(roaring_bitmap_get_cardinality(bm), (uint64) WAM_INSERT_BATCH);
	/*
	 * The slots share an unpinned copy of the row type: slots made on the
	 * relation's own descriptor would each pin it in the resource owner, and
	 * a thousand pins of one descriptor turn every later pin and unpin of it
	 * (one per unique check of the primary key) into a search through them.
	 */
	slotdesc = CreateTupleDescCopy(RelationGetDescr(rel));
	for (i = 0; i < nslots; i++)
		slots[i] = MakeSingleTupleTableSlot(slotdesc, table_slot_callbacks(rel));
	/* a bulk-insert ring buffer only pays off for many rows */
	bistate = nslots > 1 ? GetBulkInsertState() : NULL;
	cid = GetCurrentCommandId(true);
	batchcxt = AllocSetContextCreate(CurrentMemoryContext, "wam membership batch",
									 ALLOCSET_DEFAULT_SIZES);

	roaring_init_iterator(bm, &it);
	while ((n = roaring_read_uint32_iterator(&it, ids, WAM_INSERT_BATCH)) > 0)
	{
		oldcxt = MemoryContextSwitchTo(batchcxt);
		for (i = 0; i < (int) n; i++)
		{
			TupleTableSlot *slot = slots[i];

			ExecClearTuple(slot);
			memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
			slot->tts_values[cols.customer_id - 1] = Int64GetDatum((int64) ids[i]);
			slot->tts_isnull[cols.customer_id - 1] = false;
			slot->tts_values[cols.tag_id - 1] = Int32GetDatum(tag_id);
			slot->tts_isnull[cols.tag_id - 1] = false;
			slot->tts_values[cols.attached_at - 1] = TimestampTzGetDatum(now);
			slot->tts_isnull[cols.attached_at - 1] = false;
			slot->tts_values[cols.expires_at - 1] = TimestampTzGetDatum(expires_at);
			slot->tts_isnull[cols.expires_at - 1] = expires_null;
			slot->tts_values[cols.source - 1] = source;
			slot->tts_isnull[cols.source - 1] = false;
			ExecStoreVirtualTuple(slot);
		}
		table_multi_insert(rel, slots, (int) n, cid, 0, bistate);
		for (i = 0; i < (int) n; i++)
		{
			List	   *recheck;

			recheck = ExecInsertIndexTuples(rri, slots[i], estate, false, false,
											NULL, NIL);
			list_free(recheck);
		}
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(batchcxt);
		ResetPerTupleExprContext(estate);
		total += n;
		CHECK_FOR_INTERRUPTS();
	}

	if (bistate)
		FreeBulkInsertState(bistate);
	for (i = 0; i < nslots; i++)
		ExecDropSingleTupleTableSlot(slots[i]);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	MemoryContextDelete(batchcxt);
	/* keep the lock until end of transaction, like the executor does */
	table_close(rel, NoLock);
	return total;
}

/*
 * wam_membership_insert(tag_id int, who segment, expires_at timestamptz,
 * source text): SQL access to wam_membership_insert_bitmap.
 */
Datum
wam_membership_insert(PG_FUNCTION_ARGS)
{
	bool		expires_null = PG_ARGISNULL(2);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tag, segment and source must not be null")));
	PG_RETURN_INT64(wam_membership_insert_bitmap(PG_GETARG_INT32(0),
												 PG_GETARG_SEGMENT_BITMAP(1),
												 expires_null ? 0 : PG_GETARG_TIMESTAMPTZ(2),
												 expires_null, PG_GETARG_DATUM(3)));
}

/*
 * Gap (in customer ids) beyond which wam_membership_delete_bitmap descends
 * the primary key again instead of walking its leaf entries forward.
 */
#define WAM_RESEEK_GAP	64

/*
 * wam_membership_delete_bitmap deletes the membership rows of the members of
 * `bm` for the tag.  Members that do not hold the tag are skipped.  Returns
 * the number of rows deleted.
 *
 * The primary key is (tag_id, customer_id), so a tag's rows are one
 * contiguous, customer-ordered stretch of it, and `bm` is sorted: instead of
 * one index descent per member the function walks that stretch forward from
 * the first member, merging it with the member list, and only descends again
 * across a gap of more than WAM_RESEEK_GAP ids.  Keys are read from the index
 * tuples (xs_want_itup), so entries of customers not in `bm` cost no heap
 * visit.
 */
int64
wam_membership_delete_bitmap(int32 tag_id, const roaring_bitmap_t *bm)
{
	WamMembershipColumns cols;
	Relation	rel;
	Relation	pkrel;
	Oid			pkoid;
	IndexScanDesc scan;
	ScanKeyData keys[2];
	TupleTableSlot *slot;
	Snapshot	snapshot;
	CommandId	cid;
	roaring_uint32_iterator_t it;
	bool		need_seek = true;
	int64		total = 0;
	uint32		steps = 0;

	if (roaring_bitmap_is_empty(bm))
		return 0;
	rel = wam_open_memberships(ACL_DELETE, &cols);
	pkoid = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(pkoid))
		elog(ERROR, "wam.customer_tag has no primary key");
	pkrel = index_open(pkoid, RowExclusiveLock);
	if (pkrel->rd_rel->relam != BTREE_AM_OID ||
		pkrel->rd_index->indnatts != 2 ||
		pkrel->rd_index->indkey.values[0] != cols.tag_id ||
		pkrel->rd_index->indkey.values[1] != cols.customer_id)
		elog(ERROR, "wam.customer_tag primary key is not a btree on (tag_id, customer_id)");

	snapshot = RegisterSnapshot(GetLatestSnapshot());
	cid = GetCurrentCommandId(true);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, pkrel, snapshot, 2, 0);
	scan->xs_want_itup = true;

	roaring_init_iterator(bm, &it);
	while (it.has_value)
	{
		ItemPointer tid;
		bool		isnull;
		int64		entry_customer;

		if (need_seek)
		{
			ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ,
						Int32GetDatum(tag_id));
			ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE,
						Int64GetDatum((int64) it.current_value));
			index_rescan(scan, keys, 2, NULL, 0);
			need_seek = false;
		}
		if ((++steps & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();

		tid = index_getnext_tid(scan, ForwardScanDirection);
		if (tid == NULL)
			break;				/* no more members of the tag */
		entry_customer = DatumGetInt64(index_getattr(scan->xs_itup, 2,
													 scan->xs_itupdesc, &isnull));

		if (entry_customer > (int64) it.current_value)
		{
			/* catch the member list up with the index */
			/*
			 * Step rather than roaring_move_uint32_iterator_equalorlarger(),
			 * which is slow in CRoaring 0.2.66; the steps add up to at most
			 * the number of members.
			 */
			while (it.has_value && (int64) it.current_value < entry_customer)
			{
				roaring_advance_uint32_iterator(&it);
				if ((++steps & 0xFFFF) == 0)
					CHECK_FOR_INTERRUPTS();
			}
			if (!it.has_value)
				break;
		}
		if ((int64) it.current_value != entry_customer)
		{
			/* the index is behind: walk on, or descend across a wide gap */
			if ((int64) it.current_value - entry_customer > WAM_RESEEK_GAP)
				need_seek = true;
			continue;
		}

		if (index_fetch_heap(scan, slot))
		{
			TM_FailureData tmfd;
			TM_Result	result;

			result = table_tuple_delete(rel, &slot->tts_tid, cid, snapshot,
										InvalidSnapshot, true, &tmfd, false);
			switch (result)
			{
				case TM_Ok:
					total++;
					break;
				case TM_SelfModified:
				case TM_Deleted:
					/* already gone: the outcome we want */
					break;
				case TM_Updated:
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("could not serialize access due to concurrent update of a tag membership"),
							 errhint("Retry the transaction.")));
					break;
				default:
					elog(ERROR, "wam_membership_delete: unexpected result %d from table_tuple_delete",
						 (int) result);
			}
		}
	}

	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(pkrel, NoLock);
	table_close(rel, NoLock);
	return total;
}

/*
 * wam_membership_delete(tag_id int, who segment): SQL access to
 * wam_membership_delete_bitmap.
 */
Datum
wam_membership_delete(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tag and segment must not be null")));
	PG_RETURN_INT64(wam_membership_delete_bitmap(PG_GETARG_INT32(0),
												 PG_GETARG_SEGMENT_BITMAP(1)));
}

typedef struct WamChunksState
{
	roaring_bitmap_t *bm;		/* private copy being consumed */
	roaring_uint32_iterator_t it;
	TupleDesc	desc;
} WamChunksState;

/*
 * wam_segment_chunks(segment) returns (chunk int, members segment) for each
 * block of 65,536 ids that holds members, in ascending order: the layout of
 * wam.tag_chunk.
 */
Datum
wam_segment_chunks(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	WamChunksState *st;
	roaring_bitmap_t *part;
	uint32		key;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	HeapTuple	tuple;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext oldcxt;
		TupleDesc	desc;

		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "wam_segment_chunks: return type must be a row type");
		st = palloc(sizeof(WamChunksState));
		st->desc = BlessTupleDesc(desc);
		st->bm = wam_segment_copy(PG_GETARG_DATUM(0));
		roaring_init_iterator(st->bm, &st->it);
		funcctx->user_fctx = st;
		MemoryContextSwitchTo(oldcxt);
	}
	funcctx = SRF_PERCALL_SETUP();
	st = (WamChunksState *) funcctx->user_fctx;
	if (!st->it.has_value)
		SRF_RETURN_DONE(funcctx);

	/* take every member of the current 64K block */
	key = st->it.current_value >> 16;
	part = wam_bitmap_new();
	do
	{
		uint32		batch[1024];
		uint32		n = 0;

		while (n < lengthof(batch) && st->it.has_value &&
			   (st->it.current_value >> 16) == key)
		{
			batch[n++] = st->it.current_value;
			roaring_advance_uint32_iterator(&st->it);
		}
		roaring_bitmap_add_many(part, n, batch);
	} while (st->it.has_value && (st->it.current_value >> 16) == key);

	values[0] = Int32GetDatum((int32) key);
	values[1] = PointerGetDatum(wam_segment_flatten(part));
	tuple = heap_form_tuple(st->desc, values, nulls);
	SRF_RETURN_NEXT(funcctx, HeapTupleGetDatum(tuple));
}

/*
 * wam_segment_chunk_keys(segment) returns the distinct blocks (id >> 16)
 * holding members, ascending: the rows of wam.tag_chunk a change touches.
 * It reads the container keys, so it costs nothing per member.
 */
Datum
wam_segment_chunk_keys(PG_FUNCTION_ARGS)
{
	PG_RETURN_ARRAYTYPE_P(wam_bitmap_chunk_keys(PG_GETARG_SEGMENT_BITMAP(0)));
}

/* Saved plans reading wam.tag_chunk (prepared on first use, kept for the session). */
static SPIPlanPtr wam_blocks_all_plan = NULL;
static SPIPlanPtr wam_blocks_some_plan = NULL;

static SPIPlanPtr
wam_blocks_plan(bool all_blocks)
{
	SPIPlanPtr *slot = all_blocks ? &wam_blocks_all_plan : &wam_blocks_some_plan;

	if (*slot == NULL)
	{
		Oid			argtypes[2] = {INT4OID, INT4ARRAYOID};
		SPIPlanPtr	plan;

		/*
		 * A generic plan: the plan cache would otherwise keep planning
		 * "chunk = ANY ($2)" anew for every call, a third of the time of
		 * attaching one customer.
		 */
		plan = SPI_prepare_cursor(all_blocks
								  ? "SELECT members FROM wam.tag_chunk WHERE tag_id OPERATOR(pg_catalog.=) $1 ORDER BY chunk"
								  : "SELECT members FROM wam.tag_chunk WHERE tag_id OPERATOR(pg_catalog.=) $1 AND chunk OPERATOR(pg_catalog.=) ANY ($2) ORDER BY chunk",
								  all_blocks ? 1 : 2, argtypes, CURSOR_OPT_GENERIC_PLAN);
		if (plan == NULL)
			elog(ERROR, "wam_tag_blocks: SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "wam_tag_blocks: SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

/*
 * wam_bitmap_chunk_keys: the distinct blocks (id >> 16) holding members of
 * bm, ascending, as int4[].  It reads the container keys, so it costs nothing
 * per member.
 */
ArrayType *
wam_bitmap_chunk_keys(const roaring_bitmap_t *bm)
{
	const roaring_array_t *ra = &bm->high_low_container;
	Datum	   *keys;
	int32		i;

	if (ra->size == 0)
		return construct_empty_array(INT4OID);
	keys = palloc(sizeof(Datum) * ra->size);
	for (i = 0; i < ra->size; i++)
		keys[i] = Int32GetDatum((int32) ra->keys[i]);
	return construct_array(keys, ra->size, INT4OID, 4, true, TYPALIGN_INT);
}

/*
 * wam_bitmap_container: a new bitmap (owned by the current memory context)
 * holding only container number i of bm, i.e. bm's members in one block.
 */
roaring_bitmap_t *
wam_bitmap_container(const roaring_bitmap_t *bm, int32 i)
{
	roaring_bitmap_t *part = wam_bitmap_new();

	ra_append_copy(&part->high_low_container, &bm->high_low_container,
				   (uint16) i, false);
	return wam_bitmap_check_alloc(part);
}

/*
 * Assembling a tag's segment from its blocks.
 *
 * Every row of wam.tag_chunk holds one Roaring container (the block of
 * 65,536 ids it is keyed by), already in canonical form, and the blocks of a
 * tag are disjoint.  Their union is therefore built by deserializing each
 * block and moving its one container to the end of the result: no merge, and
 * each container is copied once, straight from the stored block.
 *
 * The result is returned as an expanded object, so that operators applied to
 * it (tag_members(a) & tag_members(b)) work on the live bitmap: an earlier
 * version returned the flat serialization, which the next operator had to
 * deserialize again, and PostgreSQL copied it once more through the
 * SQL-function wrapper; at 150 blocks of 8 KB per dense tag those copies
 * (and the page faults of fresh memory for each of them) were most of the
 * time of a three-tag count.  The result is flattened only when it is stored
 * or sent.
 */

/*
 * wam_tag_blocks returns the union of a tag's blocks (only_blocks NULL) or
 * of the listed ones as an expanded segment in the current memory context.
 */
Datum
wam_tag_blocks(int32 tag_id, ArrayType *only_blocks, bool fresh_snapshot)
{
	bool		all_blocks = (only_blocks == NULL);
	Datum		args[2];
	int			ret;
	uint64		nrows;
	uint64		i;
	MemoryContext callcxt = CurrentMemoryContext;
	WamBitmapHolder *acc;
	roaring_array_t *ra;

	args[0] = Int32GetDatum(tag_id);
	args[1] = all_blocks ? (Datum) 0 : PointerGetDatum(only_blocks);

	acc = wam_bitmap_hold(wam_bitmap_check_alloc(roaring_bitmap_create()), callcxt);
	ra = &acc->bm->high_low_container;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "wam_tag_blocks: SPI_connect failed");
	/* read_only = false takes a new snapshot for the query */
	ret = SPI_execute_plan(wam_blocks_plan(all_blocks), args, NULL, !fresh_snapshot, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "wam_tag_blocks: SPI_execute_plan returned %d", ret);
	nrows = SPI_processed;

	for (i = 0; i < nrows; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		WamSegmentFlat *flat;
		roaring_bitmap_t *part;
		WamBitmapHolder *blk;
		roaring_array_t *bra;

		if (isnull)
			elog(ERROR, "wam_tag_blocks: NULL block for tag %d", tag_id);
		flat = (WamSegmentFlat *) PG_DETOAST_DATUM(d);
		/* stored blocks were written by us: checked by the portable reader only */
		part = roaring_bitmap_portable_deserialize_safe(flat->data, WAM_SEGMENT_DATA_LEN(flat));
		if (part == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("bitmap block of tag %d is not a valid segment", tag_id)));
		blk = wam_bitmap_hold(part, CurrentMemoryContext);
		bra = &blk->bm->high_low_container;
		if (bra->size == 1 && (ra->size == 0 || bra->keys[0] > ra->keys[ra->size - 1]))
		{
			/* the usual case: one container, after the ones we have */
			ra_append_move_range(ra, bra, 0, 1);
			bra->size = 0;		/* moved: not freed with the block */
		}
		else
			roaring_bitmap_or_inplace(acc->bm, blk->bm);
		wam_bitmap_release(blk);
		if ((Pointer) flat != DatumGetPointer(d))
			pfree(flat);
	}
	SPI_finish();

	/* hand the bitmap over to an expanded object in the caller's context */
	{
		roaring_bitmap_t *bm = acc->bm;

		acc->bm = NULL;
		wam_bitmap_release(acc);
		return EOHPGetRWDatum(&wam_segment_expand(bm, callcxt)->hdr);
	}
}

PG_FUNCTION_INFO_V1(wam_tag_blocks_segment);

/*
 * wam_tag_blocks_segment(tag_id int, only_blocks int[] DEFAULT NULL)
 * returns the union of a tag's blocks (or of the listed ones) as a segment.
 */
Datum
wam_tag_blocks_segment(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(wam_tag_blocks(PG_GETARG_INT32(0),
								   PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1),
								   false));
}
