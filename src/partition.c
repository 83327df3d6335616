/*-------------------------------------------------------------------------
 *
 * partition.c
 *	  Creating and dropping the time partitions of the growing tables
 *	  (wam.event, wam.inbound_message), as the tables' owner.
 *
 * The partition maintenance runs as a periodic job, that is as wam_definer
 * (src/sql/retention.sql).  Partition DDL needs the ownership of the
 * partitioned table, and wam_definer must own no table: it holds only the
 * row privileges granted beside each table, so that a flaw in a definer
 * function can never alter or drop a table.  These two functions are the
 * only way around that, and a narrow one: they take no SQL, only a parent
 * from a fixed list, a partition name of a fixed shape and two bound
 * values (quoted as literals, parsed as the partition key's type), and run
 * fixed statements as the parent's owner, with the security restrictions
 * of a maintenance command (SECURITY_RESTRICTED_OPERATION, as VACUUM and
 * REFRESH MATERIALIZED VIEW run index expressions).  Their EXECUTE is
 * granted to no role but wam_definer.
 *
 * A partition thus belongs to the parent's owner, like the parent, and gets
 * the parent's table privileges, so that nobody reads a partition directly
 * who may not read the parent, and the default partition's indexes (the
 * partitioned tables have none: see wam.event in src/sql/core.sql).
 *
 * Rows that arrived while no partition covered their time sit in the
 * DEFAULT partition (the safety net: an insert never fails for want of a
 * partition).  PostgreSQL refuses to create a partition over a range the
 * default partition holds rows of, so then the new partition is built
 * beside the table instead: the default partition is detached, its rows of
 * the range moved into a plain table (no trigger fires: the rows are not
 * new, their rules already ran), which is attached with a CHECK constraint
 * that spares the scan, and the default partition is attached again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "access/htup_details.h"

#include "wam_spi.h"

/* the partitioned tables and their partition key */
typedef struct WamPartitioned
{
	const char *table;
	const char *key;
} WamPartitioned;

static const WamPartitioned wam_partitioned[] = {
	{"event", "occurred_at"},
	{"inbound_message", "received_at"},
};

/* The entry of a partitioned table of the list, or an error. */
static const WamPartitioned *
wam_partitioned_table(Oid relid)
{
	Oid			wam = get_namespace_oid("wam", false);
	char	   *name = get_rel_name(relid);

	if (name != NULL && get_rel_namespace(relid) == wam &&
		get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
	{
		for (int i = 0; i < lengthof(wam_partitioned); i++)
			if (strcmp(name, wam_partitioned[i].table) == 0)
				return &wam_partitioned[i];
	}
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("\"%s\" is not a partitioned table of pg_wamarketing",
					name ? name : "?")));
	return NULL;				/* keep the compiler quiet */
}

/* Runs one statement (the caller is connected to SPI). */
static uint64
wam_partition_exec(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed for \"%s\": %s", sql, SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Runs as the owner of `relid` until wam_partition_leave: returns what
 * wam_partition_leave needs to put the caller back.
 */
typedef struct WamOwnerContext
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} WamOwnerContext;

static void
wam_partition_enter(Oid relid, WamOwnerContext *ctx)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	GetUserIdAndSecContext(&ctx->save_userid, &ctx->save_sec_context);
	SetUserIdAndSecContext(owner, ctx->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	ctx->save_nestlevel = NewGUCNestLevel();
	/* every name below is qualified; nothing may resolve through another schema */
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/*
	 * DDL on a partitioned table waits for every query on it, and queries
	 * arriving meanwhile wait behind the DDL: give up soon rather than stall
	 * the sender and the webhooks (the job fails and runs again next time).
	 */
	(void) set_config_option("lock_timeout", "2s", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
wam_partition_leave(WamOwnerContext *ctx)
{
	SPI_finish();
	AtEOXact_GUC(false, ctx->save_nestlevel);
	SetUserIdAndSecContext(ctx->save_userid, ctx->save_sec_context);
}

/* A partition name: lower-case letters, digits and underscores. */
static void
wam_check_partition_name(const char *name)
{
	size_t		len = strlen(name);
	bool		ok = len > 0 && len < NAMEDATALEN && name[0] >= 'a' && name[0] <= 'z';

	for (size_t i = 0; ok && i < len; i++)
		ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_';
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid partition name \"%s\"", name)));
}

/* Grants the parent's table privileges on the partition, as they stand. */
static void
wam_copy_privileges(Oid parent, const char *qpart)
{
	StringInfoData sql;
	uint64		n;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT pg_catalog.format('GRANT %%s ON TABLE %%s TO %%s', "
					 "pg_catalog.string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type), %s, "
					 "CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' "
					 "ELSE pg_catalog.quote_ident(a.grantee::pg_catalog.regrole::pg_catalog.text) END) "
					 "FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a "
					 "WHERE c.oid OPERATOR(pg_catalog.=) %u AND a.grantee OPERATOR(pg_catalog.<>) c.relowner "
					 "GROUP BY a.grantee",
					 quote_literal_cstr(qpart), parent);
	n = wam_partition_exec(sql.data);
	if (n > 0)
	{
		SPITupleTable *tt = SPI_tuptable;
		char	  **grants = palloc(sizeof(char *) * n);

		/* the next SPI_execute frees the result: keep the statements first */
		for (uint64 i = 0; i < n; i++)
			grants[i] = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		for (uint64 i = 0; i < n; i++)
			wam_partition_exec(grants[i]);
	}
}

/*
 * Gives the new partition the default partition's indexes (the primary key
 * as a primary key), under names PostgreSQL chooses.  The partitioned table
 * has none of its own: see wam.event in src/sql/core.sql.
 */
static void
wam_copy_indexes(Oid def, const char *qpart)
{
	StringInfoData sql;
	uint64		n;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT CASE WHEN i.indisprimary "
					 "THEN pg_catalog.format('ALTER TABLE %%s ADD PRIMARY KEY %%s', %s, "
					 "pg_catalog.substring(d, 'USING btree (\\(.*\\))$')) "
					 "ELSE pg_catalog.regexp_replace(d, '^CREATE (UNIQUE )?INDEX \\S+ ON \\S+ ', "
					 "'CREATE \\1INDEX ON ' OPERATOR(pg_catalog.||) %s OPERATOR(pg_catalog.||) ' ') END "
					 "FROM pg_catalog.pg_index i, pg_catalog.pg_get_indexdef(i.indexrelid) d "
					 "WHERE i.indrelid OPERATOR(pg_catalog.=) %u ORDER BY i.indexrelid",
					 quote_literal_cstr(qpart), quote_literal_cstr(qpart), def);
	n = wam_partition_exec(sql.data);
	if (n > 0)
	{
		SPITupleTable *tt = SPI_tuptable;
		char	  **stmts = palloc(sizeof(char *) * n);

		for (uint64 i = 0; i < n; i++)
			stmts[i] = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		for (uint64 i = 0; i < n; i++)
			wam_partition_exec(stmts[i]);
	}
}

/*
 * wam_internal.create_partition(parent regclass, name text, lo text, hi text)
 * returns bigint: creates wam.<name> as the partition of parent for key values
 * from lo (inclusive) to hi (exclusive); returns the number of rows moved into
 * it from the default partition.
 */
PG_FUNCTION_INFO_V1(wam_create_partition);

Datum
wam_create_partition(PG_FUNCTION_ARGS)
{
	Oid			parent;
	const WamPartitioned *p;
	char	   *name;
	char	   *lo;
	char	   *hi;
	const char *qparent;
	char	   *qpart;
	const char *qkey;
	char	   *range;
	Oid			def;
	WamOwnerContext ctx;
	StringInfoData sql;
	int64		moved = 0;

	wam_not_null(PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3),
				 "parent, name and bounds");
	parent = PG_GETARG_OID(0);
	p = wam_partitioned_table(parent);
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	lo = quote_literal_cstr(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	hi = quote_literal_cstr(text_to_cstring(PG_GETARG_TEXT_PP(3)));
	wam_check_partition_name(name);
	qparent = quote_qualified_identifier("wam", p->table);
	qpart = quote_qualified_identifier("wam", name);
	qkey = quote_identifier(p->key);
	range = psprintf("FROM (%s) TO (%s)", lo, hi);
	def = get_default_partition_oid(parent);
	if (!OidIsValid(def))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("\"%s\" has no default partition", p->table),
				 errdetail("New partitions take their indexes from the default partition.")));

	initStringInfo(&sql);
	wam_partition_enter(parent, &ctx);
	{
		char	   *qdef = quote_qualified_identifier(get_namespace_name(get_rel_namespace(def)),
													  get_rel_name(def));

		appendStringInfo(&sql, "SELECT FROM ONLY %s WHERE %s OPERATOR(pg_catalog.>=) %s AND %s OPERATOR(pg_catalog.<) %s LIMIT 1",
						 qdef, qkey, lo, qkey, hi);
		if (wam_partition_exec(sql.data) > 0)
		{
			char	   *cols;

			resetStringInfo(&sql);
			appendStringInfo(&sql,
							 "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) "
							 "FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) %u "
							 "AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped", parent);
			wam_partition_exec(sql.data);
			cols = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			resetStringInfo(&sql);
			appendStringInfo(&sql, "ALTER TABLE %s DETACH PARTITION %s", qparent, qdef);
			wam_partition_exec(sql.data);
			resetStringInfo(&sql);
			appendStringInfo(&sql, "CREATE TABLE %s (LIKE %s INCLUDING CONSTRAINTS)", qpart, qparent);
			wam_partition_exec(sql.data);
			resetStringInfo(&sql);
			appendStringInfo(&sql,
							 "WITH m AS (DELETE FROM ONLY %s WHERE %s OPERATOR(pg_catalog.>=) %s "
							 "AND %s OPERATOR(pg_catalog.<) %s RETURNING %s) INSERT INTO %s (%s) SELECT %s FROM m",
							 qdef, qkey, lo, qkey, hi, cols, qpart, cols, cols);
			moved = (int64) wam_partition_exec(sql.data);
			/* built after the rows are in, which is faster */
			wam_copy_indexes(def, qpart);
			resetStringInfo(&sql);
			appendStringInfo(&sql,
							 "ALTER TABLE %s ADD CONSTRAINT wam_partition_bound CHECK (%s IS NOT NULL "
							 "AND %s OPERATOR(pg_catalog.>=) %s AND %s OPERATOR(pg_catalog.<) %s)",
							 qpart, qkey, qkey, lo, qkey, hi);
			wam_partition_exec(sql.data);
			resetStringInfo(&sql);
			appendStringInfo(&sql, "ALTER TABLE %s ATTACH PARTITION %s FOR VALUES %s", qparent, qpart, range);
			wam_partition_exec(sql.data);
			resetStringInfo(&sql);
			appendStringInfo(&sql, "ALTER TABLE %s DROP CONSTRAINT wam_partition_bound", qpart);
			wam_partition_exec(sql.data);
			resetStringInfo(&sql);
			appendStringInfo(&sql, "ALTER TABLE %s ATTACH PARTITION %s DEFAULT", qparent, qdef);
			wam_partition_exec(sql.data);
			wam_copy_privileges(parent, qpart);
			wam_partition_leave(&ctx);
			PG_RETURN_INT64(moved);
		}
	}
	resetStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s PARTITION OF %s FOR VALUES %s", qpart, qparent, range);
	wam_partition_exec(sql.data);
	wam_copy_indexes(def, qpart);
	wam_copy_privileges(parent, qpart);
	wam_partition_leave(&ctx);
	PG_RETURN_INT64(moved);
}

/*
 * wam_internal.drop_partition(part regclass): drops a partition (not the
 * default one) of a partitioned table of the list.
 */
PG_FUNCTION_INFO_V1(wam_drop_partition);

Datum
wam_drop_partition(PG_FUNCTION_ARGS)
{
	Oid			part;
	Oid			parent;
	WamOwnerContext ctx;
	char	   *sql;

	wam_not_null(PG_ARGISNULL(0), "partition");
	part = PG_GETARG_OID(0);
	if (!get_rel_relispartition(part))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a partition", get_rel_name(part) ? get_rel_name(part) : "?")));
	parent = get_partition_parent(part, false);
	(void) wam_partitioned_table(parent);
	if (get_default_partition_oid(parent) == part)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("the default partition \"%s\" is never dropped", get_rel_name(part))));
	sql = psprintf("DROP TABLE %s",
				   quote_qualified_identifier(get_namespace_name(get_rel_namespace(part)), get_rel_name(part)));
	wam_partition_enter(parent, &ctx);
	wam_partition_exec(sql);
	wam_partition_leave(&ctx);
	PG_RETURN_VOID();
}
