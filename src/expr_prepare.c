/*-------------------------------------------------------------------------
 *
 * expr_prepare.c
 *	  Segment expressions inside the server: the call's context, and the
 *	  preparation of an expression, i.e. parsing it and resolving every name
 *	  in it, without reading a bitmap (expr_eval.c evaluates it).
 *
 *	- tags: all names of an expression in one query, matched like
 *	  wam.tag_id() matches them (wam.normalize_tag_name()).  A merged tag
 *	  stands for the tag it was merged into; a retired tag still has its
 *	  members and is evaluated as usual; a name that is no tag's name now
 *	  but was renamed (wam.tag_log) stands for the renamed tag.
 *	- saved segments (@name): looked up the same way and prepared
 *	  recursively, each once, with a depth limit and a cycle check (the
 *	  definitions cannot form a cycle, see wam.define_segment(), but a
 *	  concurrent definition or a manual edit could).
 *	- behaviour predicates: reduced to one of a few fixed, parameterised
 *	  queries plus a "complement" flag ("event(x) < 3" is all customers
 *	  minus "event(x) >= 3"), deduplicated.
 * Every query is constant text with $n parameters (cached plans here,
 * SPI_execute_with_args for the predicates in expr_eval.c): nothing typed in
 * an expression is ever spliced into SQL.
 *
 * Problems (syntax, unknown names, limits) are returned as WamExprProblem,
 * so that wam.audience_problem() can report them as text without catching
 * errors, and raised by wam_expr_raise() with the position as the error's
 * internal query position (psql shows a caret under it).
 *
 * src/expr_prepare.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "expr.h"
#include "wam_spi.h"

/* -------- queries -------- */

typedef struct WamQuery
{
	const char *sql;
	Oid			argtype;
	SPIPlanPtr	plan;			/* prepared on first use, kept for the session */
} WamQuery;

static WamQuery wam_queries[WAM_Q_COUNT] = {
	{"SELECT u.i, t.tag_id, t.merged_into "
		"FROM pg_catalog.unnest($1) WITH ORDINALITY AS u(n, i) "
		"JOIN wam.tag t ON t.normalized_name OPERATOR(pg_catalog.=) wam.normalize_tag_name(u.n)",
	TEXTARRAYOID, NULL},
	{"SELECT u.i, k.key, s.name, s.expression "
		"FROM pg_catalog.unnest($1) WITH ORDINALITY AS u(n, i) "
		"CROSS JOIN LATERAL wam.normalize_tag_name(u.n) AS k(key) "
		"LEFT JOIN wam.saved_segment s ON s.normalized_name OPERATOR(pg_catalog.=) k.key",
	TEXTARRAYOID, NULL},
	{"SELECT c.tag_id, c.members FROM wam.tag_chunk c "
		"WHERE c.tag_id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY c.tag_id, c.chunk",
	INT4ARRAYOID, NULL},
	{"SELECT t.merged_into FROM wam.tag t WHERE t.tag_id OPERATOR(pg_catalog.=) $1",
	INT4OID, NULL},
	{"SELECT t.tag_id, t.merged_into FROM wam.tag_log l "
		"JOIN wam.tag t ON t.tag_id OPERATOR(pg_catalog.=) l.tag_id "
		"WHERE l.action OPERATOR(pg_catalog.=) 'rename' "
		"AND wam.normalize_tag_name(l.detail OPERATOR(pg_catalog.->>) 'old_name') "
		"OPERATOR(pg_catalog.=) wam.normalize_tag_name($1) "
		"ORDER BY l.log_id DESC LIMIT 1",
	TEXTOID, NULL},
	{"SELECT u.i, a.attribute_id, a.value_type, a.allowed_values "
		"FROM pg_catalog.unnest($1) WITH ORDINALITY AS u(n, i) "
		"JOIN wam.attribute a ON a.name OPERATOR(pg_catalog.=) u.n",
	TEXTARRAYOID, NULL}
};

static bool wam_prepare_program(WamExprCtx *ctx, WamExprProgram *prog,
								WamExprProblem **problem);

/* -------- hashing names by pointer -------- */

static uint32
wam_strptr_hash(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return hash_bytes((const unsigned char *) s, (int) strlen(s));
}

static int
wam_strptr_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(const char *const *) key1, *(const char *const *) key2);
}

static HTAB *
wam_strptr_hash_create(const char *name, Size entrysize, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(char *);
	ctl.entrysize = entrysize;
	ctl.hash = wam_strptr_hash;
	ctl.match = wam_strptr_match;
	ctl.hcxt = cxt;
	return hash_create(name, 16, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/* -------- SPI -------- */

/*
 * SPI switches to its own memory contexts; these wrappers put the caller's
 * back, so everything else here allocates in the expression's context.
 */
/* wam_expr_select runs a cached query on the caller's snapshot; rows in SPI_tuptable. */
void
wam_expr_select(WamQueryId id, Datum arg)
{
	WamQuery   *q = &wam_queries[id];
	MemoryContext old = CurrentMemoryContext;
	int			rc = SPI_execute_plan(wam_spi_plan(&q->plan, q->sql, 1, &q->argtype, 0),
									  &arg, NULL, true, 0);

	MemoryContextSwitchTo(old);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "wam_select: query %d failed: %s", (int) id,
			 SPI_result_code_string(rc));
}

Datum
wam_expr_col(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* -------- context -------- */

/*
 * wam_expr_begin starts an evaluation: a memory context under the current
 * one, which owns everything the evaluation allocates (bitmaps included),
 * and an SPI connection.  End it with wam_expr_end(); on error both go
 * away with the transaction.
 */
WamExprCtx *
wam_expr_begin(void)
{
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext cxt;
	WamExprCtx *ctx;
	HASHCTL		ctl;

	cxt = AllocSetContextCreate(callercxt, "wam segment expression",
								ALLOCSET_DEFAULT_SIZES);
	ctx = MemoryContextAllocZero(cxt, sizeof(WamExprCtx));
	ctx->callercxt = callercxt;
	ctx->cxt = cxt;
	ctx->rowcxt = AllocSetContextCreate(cxt, "wam segment expression row",
										ALLOCSET_DEFAULT_SIZES);
	ctx->parse_flags = GetDatabaseEncoding() == PG_UTF8 ? WAM_EXPR_UTF8 : 0;
	ctx->now = GetCurrentTransactionStartTimestamp();

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(WamExprTag);
	ctl.hcxt = cxt;
	ctx->tags = hash_create("wam expression tags", 16, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctx->saved = wam_strptr_hash_create("wam expression saved segments",
										sizeof(WamExprSaved), cxt);
	ctx->preds = wam_strptr_hash_create("wam expression predicates",
										sizeof(WamExprPred), cxt);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "wam_expr_begin: SPI_connect failed");
	MemoryContextSwitchTo(cxt);
	return ctx;
}

/* wam_expr_end closes SPI and frees everything (back in the caller's context). */
void
wam_expr_end(WamExprCtx *ctx)
{
	MemoryContext cxt = ctx->cxt;

	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "wam_expr_end: SPI_finish failed");
	MemoryContextSwitchTo(ctx->callercxt);
	MemoryContextDelete(cxt);
}

/* -------- problems -------- */

/* A problem at byte offset pos of prog's text (pos < 0: no position). */
WamExprProblem *
wam_expr_problem(WamExprCtx *ctx, WamExprProgram *prog, int sqlerrcode, int64 pos)
{
	WamExprProblem *p = palloc0(sizeof(WamExprProblem));

	p->sqlerrcode = sqlerrcode;
	if (pos >= 0)
	{
		p->query = pnstrdup(prog->src, prog->srclen);
		p->cursorpos = pg_mbstrlen_with_len(prog->src, (int) pos) + 1;
	}
	if (prog->owner != NULL)
		p->segment = prog->owner->name;
	return p;
}

/* "at character 7" or "at character 7 of saved segment "x"" */
char *
wam_expr_where(const WamExprProblem *p)
{
	if (p->segment != NULL)
		return psprintf("at character %d of saved segment \"%s\"",
						p->cursorpos, p->segment);
	return psprintf("at character %d", p->cursorpos);
}

/* The start of a leaf's own token, past the parentheses its span includes. */
uint32
wam_expr_leaf_pos(const WamExprProgram *prog, const WamExprNode *n)
{
	uint32		pos = n->start;

	while (pos < n->end && (prog->src[pos] == '(' || prog->src[pos] == ' ' ||
							prog->src[pos] == '\t' || prog->src[pos] == '\n' ||
							prog->src[pos] == '\r'))
		pos++;
	return pos;
}

static WamExprProblem *
wam_parse_problem(WamExprCtx *ctx, WamExprProgram *prog, WamExprError rc)
{
	const WamExprParse *pp = &prog->parse;
	WamExprProblem *p;
	char	   *token = NULL;

	switch (rc)
	{
		case WAM_EXPR_ERR_EMPTY:
			p = wam_expr_problem(ctx, prog, ERRCODE_SYNTAX_ERROR, -1);
			p->message = prog->owner ?
				psprintf("saved segment \"%s\" is empty", prog->owner->name) :
				pstrdup("segment expression is empty");
			return p;
		case WAM_EXPR_ERR_TOO_LONG:
			p = wam_expr_problem(ctx, prog, ERRCODE_PROGRAM_LIMIT_EXCEEDED, -1);
			p->message = pstrdup("segment expression is too long");
			p->detail = psprintf("The expression has %zu bytes; the limit is %llu.",
								 prog->srclen, (unsigned long long) pp->errvalue);
			return p;
		case WAM_EXPR_ERR_TOO_MANY:
			p = wam_expr_problem(ctx, prog, ERRCODE_STATEMENT_TOO_COMPLEX, pp->errpos);
			p->message = pstrdup("segment expression is too complex");
			p->detail = psprintf("It has more than %llu operands and operators (the limit is reached %s).",
								 (unsigned long long) pp->errvalue, wam_expr_where(p));
			return p;
		case WAM_EXPR_ERR_TOO_DEEP:
			p = wam_expr_problem(ctx, prog, ERRCODE_STATEMENT_TOO_COMPLEX, pp->errpos);
			p->message = pstrdup("segment expression is too complex");
			p->detail = psprintf("Parentheses and NOT nest more than %llu levels deep %s.",
								 (unsigned long long) pp->errvalue, wam_expr_where(p));
			return p;
		case WAM_EXPR_ERR_OUT_OF_MEMORY:
			p = wam_expr_problem(ctx, prog, ERRCODE_OUT_OF_MEMORY, -1);
			p->message = pstrdup("out of memory");
			return p;
		default:
			break;
	}

	p = wam_expr_problem(ctx, prog, ERRCODE_SYNTAX_ERROR, pp->errpos);
	if (pp->errlen > 0)
	{
		token = pnstrdup(prog->src + pp->errpos,
						 pg_mbcliplen(prog->src + pp->errpos, (int) pp->errlen, 40));
		p->message = psprintf("syntax error in segment expression at or near \"%s\"", token);
	}
	else
		p->message = pstrdup("syntax error in segment expression at end of input");
	p->detail = psprintf("%s %s.", wam_expr_error_phrase(rc), wam_expr_where(p));
	if (pp->err_keyword && token != NULL)
		p->hint = psprintf("\"%s\" is a keyword; to use it as a tag name, write it in double quotes.",
						   token);
	else if (rc == WAM_EXPR_ERR_UNEXPECTED_CHAR && token != NULL && token[0] == '\'')
		p->hint = pstrdup("Write names that need quoting in double quotes, as in \"interest beauty\".");
	else if (rc == WAM_EXPR_ERR_EXPECTED_OPERATOR && token != NULL &&
			 prog->src[pp->errpos] != '(' && pp->errpos > 0 &&
			 prog->src[pp->errpos - 1] == ' ')
		p->hint = pstrdup("Join operands with AND, OR or EXCLUDE; a name with spaces must be written in double quotes.");
	return p;
}

/*
 * wam_expr_problem_text is the one-line form of a problem that
 * wam.audience_problem() returns: the message, then the detail.
 */
char *
wam_expr_problem_text(const WamExprProblem *problem)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, problem->message);
	if (problem->detail != NULL)
	{
		appendStringInfoString(&s, ". ");
		appendStringInfoString(&s, problem->detail);
	}
	return s.data;
}

/* wam_expr_raise reports a problem as an error, with the caret position. */
void
wam_expr_raise(const WamExprProblem *p)
{
	ereport(ERROR,
			(errcode(p->sqlerrcode),
			 errmsg_internal("%s", p->message),
			 p->detail ? errdetail_internal("%s", p->detail) : 0,
			 p->hint ? errhint("%s", p->hint) : 0,
			 p->query ? internalerrquery(p->query) : 0,
			 p->cursorpos > 0 ? internalerrposition(p->cursorpos) : 0,
			 p->segment ? errcontext("saved segment \"%s\"", p->segment) : 0));
	pg_unreachable();
}

/* -------- preparation: tags -------- */

/* Follows merged_into from a merged tag to the tag that holds its members. */
static int32
wam_follow_merges(int32 tag_id, int32 merged_into)
{
	int			hops;

	for (hops = 0; hops < 64; hops++)
	{
		bool		isnull;
		Datum		d;

		tag_id = merged_into;
		wam_expr_select(WAM_Q_MERGED, Int32GetDatum(tag_id));
		d = SPI_processed > 0 ? wam_expr_col(0, 1, &isnull) : (isnull = true, (Datum) 0);
		merged_into = isnull ? 0 : DatumGetInt32(d);
		SPI_freetuptable(SPI_tuptable);
		if (isnull)
			return tag_id;
	}
	elog(ERROR, "wam_follow_merges: tag %d is merged in a loop", tag_id);
	return tag_id;				/* keep compiler quiet */
}

/*
 * The names of the operands of one kind (tags or saved segments) as text
 * Datums, ready for one array parameter, and the node each came from.
 */
static int
wam_collect_names(const WamExprParse *pp, WamExprKind kind, Datum **names_out,
				  int **node_of_out)
{
	Datum	   *names = palloc(sizeof(Datum) * pp->nnodes);
	int		   *node_of = palloc(sizeof(int) * pp->nnodes);
	int			n = 0;
	uint32		i;

	for (i = 0; i < pp->nnodes; i++)
	{
		const WamExprNode *nd = &pp->nodes[i];

		if (nd->kind != kind)
			continue;
		names[n] = PointerGetDatum(cstring_to_text_with_len(pp->names + nd->name_off,
															(int) nd->name_len));
		node_of[n++] = (int) i;
	}
	*names_out = names;
	*node_of_out = node_of;
	return n;
}

static bool
wam_resolve_tags(WamExprCtx *ctx, WamExprProgram *prog, WamExprProblem **problem)
{
	const WamExprParse *pp = &prog->parse;
	Datum	   *names;
	int		   *node_of;
	bool	   *found;
	int			n;
	int			k;
	uint64		r;

	n = wam_collect_names(pp, WAM_EXPR_TAG, &names, &node_of);
	if (n == 0)
		return true;

	found = palloc0(sizeof(bool) * n);
	wam_expr_select(WAM_Q_TAGS,
			   PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT)));
	/* rows of merged tags need more queries: collect first, then resolve */
	{
		int64	   *ords = palloc(sizeof(int64) * (SPI_processed + 1));
		int32	   *ids = palloc(sizeof(int32) * (SPI_processed + 1));
		int32	   *merged = palloc(sizeof(int32) * (SPI_processed + 1));
		uint64		nrows = SPI_processed;

		for (r = 0; r < nrows; r++)
		{
			bool		isnull;

			ords[r] = DatumGetInt64(wam_expr_col((int) r, 1, &isnull));
			ids[r] = DatumGetInt32(wam_expr_col((int) r, 2, &isnull));
			merged[r] = DatumGetInt32(wam_expr_col((int) r, 3, &isnull));
			if (isnull)
				merged[r] = 0;
		}
		SPI_freetuptable(SPI_tuptable);
		for (r = 0; r < nrows; r++)
		{
			k = (int) ords[r] - 1;
			if (k < 0 || k >= n)
				elog(ERROR, "wam_resolve_tags: unexpected ordinal " INT64_FORMAT, ords[r]);
			prog->tag_ids[node_of[k]] = merged[r] != 0 ?
				wam_follow_merges(ids[r], merged[r]) : ids[r];
			found[k] = true;
		}
	}

	for (k = 0; k < n; k++)
	{
		const WamExprNode *nd = &pp->nodes[node_of[k]];
		bool		tag_found;

		if (found[k])
			continue;
		/* a former name of a renamed tag */
		wam_expr_select(WAM_Q_RENAMED, names[k]);
		tag_found = SPI_processed > 0;
		if (tag_found)
		{
			bool		isnull;
			int32		id = DatumGetInt32(wam_expr_col(0, 1, &isnull));
			Datum		merged = wam_expr_col(0, 2, &isnull);

			SPI_freetuptable(SPI_tuptable);
			prog->tag_ids[node_of[k]] = isnull ? id :
				wam_follow_merges(id, DatumGetInt32(merged));
		}
		else
			SPI_freetuptable(SPI_tuptable);
		if (!tag_found)
		{
			WamExprProblem *p = wam_expr_problem(ctx, prog, ERRCODE_UNDEFINED_OBJECT,
											wam_expr_leaf_pos(prog, nd));

			p->message = psprintf("tag \"%s\" does not exist", pp->names + nd->name_off);
			p->detail = psprintf("The name is %s.", wam_expr_where(p));
			p->hint = pstrdup("Tag names ignore case, spaces and punctuation; the tags are listed in wam.tag.");
			*problem = p;
			return false;
		}
	}

	for (k = 0; k < n; k++)
	{
		int32		id = prog->tag_ids[node_of[k]];
		bool		isfound;
		WamExprTag *t = hash_search(ctx->tags, &id, HASH_ENTER, &isfound);

		if (!isfound)
			t->bm = NULL;
	}
	return true;
}

/* -------- preparation: predicates -------- */

/* The query for "at least count events": count >= 1. */
static WamPredQuery
wam_at_least(int64 count)
{
	return count <= 1 ? WAM_PQ_EVENT_ANY : WAM_PQ_EVENT_GE;
}

/*
 * wam_register_preds reduces each predicate node to a query and a
 * complement flag, sharing one WamExprPred per distinct query.
 */
static void
wam_register_preds(WamExprCtx *ctx, WamExprProgram *prog)
{
	const WamExprParse *pp = &prog->parse;
	uint32		i;

	for (i = 0; i < pp->nnodes; i++)
	{
		const WamExprNode *nd = &pp->nodes[i];
		WamPredQuery q;
		bool		neg = false;
		int64		count = 0;
		int			field = 0;
		const char *kind = "";
		WamExprUnit unit = WAM_UNIT_NONE;
		int64		window = 0;
		char	   *key;
		bool		found;
		WamExprPred *pred;
		Datum		details = (Datum) 0;
		Datum		detail_key = (Datum) 0;
		Datum		detail_value = (Datum) 0;
		int			ndetails = 0;
		const char *details_text = "";

		switch (nd->kind)
		{
			case WAM_EXPR_REACHABLE:
				q = WAM_PQ_REACHABLE;
				break;
			case WAM_EXPR_FIELD:
				q = WAM_PQ_FIELD;
				field = nd->field;
				unit = (WamExprUnit) nd->unit;
				window = nd->window;
				neg = nd->negated;
				break;
			case WAM_EXPR_EVENT:
				kind = pp->names + nd->name_off;
				unit = (WamExprUnit) nd->unit;
				window = nd->window;
				count = nd->count;
				switch ((WamExprCmp) nd->cmp)
				{
					case WAM_CMP_GE:	/* >= 0 is everybody */
						if (count == 0)
						{
							q = WAM_PQ_EMPTY;
							neg = true;
						}
						else
							q = wam_at_least(count);
						break;
					case WAM_CMP_GT:
						q = wam_at_least(++count);
						break;
					case WAM_CMP_LE:
						q = wam_at_least(++count);
						neg = true;
						break;
					case WAM_CMP_LT:	/* < 0 is nobody */
						if (count == 0)
							q = WAM_PQ_EMPTY;
						else
						{
							q = wam_at_least(count);
							neg = true;
						}
						break;
					case WAM_CMP_EQ:
						if (count == 0)
						{
							q = WAM_PQ_EVENT_ANY;
							neg = true;
						}
						else
							q = WAM_PQ_EVENT_EQ;
						break;
					case WAM_CMP_NE:
					default:
						if (count == 0)
							q = WAM_PQ_EVENT_ANY;
						else
						{
							q = WAM_PQ_EVENT_EQ;
							neg = true;
						}
						break;
				}
				if (nd->negated)
					neg = !neg;
				if (q == WAM_PQ_EVENT_ANY)
					count = 1;
				if (q == WAM_PQ_EMPTY)
				{
					kind = "";
					unit = WAM_UNIT_NONE;
					window = 0;
					count = 0;
				}
				else if (nd->lit_count > 0)
				{
					details = wam_expr_details(pp, nd, &details_text);
					wam_expr_detail_first(pp, nd, &detail_key, &detail_value);
					ndetails = (int) nd->lit_count;
				}
				break;
			default:
				continue;
		}
		key = psprintf("%d|%d|" INT64_FORMAT "|%d|" INT64_FORMAT "|%s|%s",
					   (int) q, field, count, (int) unit, window, kind, details_text);
		pred = hash_search(ctx->preds, &key, HASH_ENTER, &found);
		if (!found)
		{
			pred->query = q;
			pred->field = field;
			pred->kind = kind;
			pred->count = count;
			pred->unit = unit;
			pred->window = window;
			pred->details = details;
			pred->ndetails = ndetails;
			pred->detail_key = detail_key;
			pred->detail_value = detail_value;
			pred->sql = NULL;
			pred->nargs = 0;
			pred->evaluated = false;
			pred->bm = NULL;
		}
		prog->preds[i] = pred;
		prog->pred_neg[i] = neg;
	}
}

/* -------- preparation: saved segments -------- */

static bool
wam_resolve_segments(WamExprCtx *ctx, WamExprProgram *prog, WamExprProblem **problem)
{
	const WamExprParse *pp = &prog->parse;
	Datum	   *names;
	int		   *node_of;
	bool	   *self_ref;
	int			n;
	int			k;
	uint64		r;

	n = wam_collect_names(pp, WAM_EXPR_SEGMENT, &names, &node_of);
	if (n == 0)
		return true;

	self_ref = palloc0(sizeof(bool) * n);
	wam_expr_select(WAM_Q_SAVED,
			   PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT)));
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		ord = DatumGetInt64(wam_expr_col((int) r, 1, &isnull));
		Datum		keyd = wam_expr_col((int) r, 2, &isnull);
		char	   *key = isnull ? "" : TextDatumGetCString(keyd);
		bool		found;
		WamExprSaved *s;

		if (ord < 1 || ord > n)
			elog(ERROR, "wam_resolve_segments: unexpected ordinal " INT64_FORMAT, ord);
		if (ctx->self_key != NULL && strcmp(key, ctx->self_key) == 0)
		{
			self_ref[ord - 1] = true;
			continue;
		}
		(void) wam_expr_col((int) r, 3, &isnull);
		if (isnull)
			continue;			/* no such saved segment */
		s = hash_search(ctx->saved, &key, HASH_ENTER, &found);
		if (!found)
		{
			s->name = TextDatumGetCString(wam_expr_col((int) r, 3, &isnull));
			s->expression = TextDatumGetCString(wam_expr_col((int) r, 4, &isnull));
			s->state = WAM_SAVED_FOUND;
			s->prog = NULL;
			s->evaluated = false;
		}
		prog->segs[node_of[ord - 1]] = s;
	}
	SPI_freetuptable(SPI_tuptable);

	for (k = 0; k < n; k++)
	{
		const WamExprNode *nd = &pp->nodes[node_of[k]];
		WamExprSaved *s = prog->segs[node_of[k]];
		WamExprProblem *p;

		if (self_ref[k])
		{
			/* the segment being defined: named directly, or through ctx->via */
			p = wam_expr_problem(ctx, prog, ERRCODE_INVALID_RECURSION, wam_expr_leaf_pos(prog, nd));
			p->message = ctx->via == NULL ?
				psprintf("saved segment \"%s\" cannot reference itself",
						 pp->names + nd->name_off) :
				psprintf("saved segment \"%s\" would reference itself through saved segment \"%s\"",
						 pp->names + nd->name_off, ctx->via);
			p->detail = psprintf("The reference is %s.", wam_expr_where(p));
			*problem = p;
			return false;
		}
		if (s != NULL && s->state == WAM_SAVED_READY)
			continue;
		if (s == NULL)
		{
			p = wam_expr_problem(ctx, prog, ERRCODE_UNDEFINED_OBJECT, wam_expr_leaf_pos(prog, nd));
			p->message = psprintf("saved segment \"%s\" does not exist",
								  pp->names + nd->name_off);
			p->detail = psprintf("The name is %s.", wam_expr_where(p));
			p->hint = pstrdup("Saved segments are listed in wam.saved_segment; define one with wam.define_segment().");
			*problem = p;
			return false;
		}
		if (s->state == WAM_SAVED_PREPARING)
		{
			p = wam_expr_problem(ctx, prog, ERRCODE_INVALID_RECURSION, wam_expr_leaf_pos(prog, nd));
			p->message = psprintf("saved segment \"%s\" references itself", s->name);
			p->detail = psprintf("The reference is %s.", wam_expr_where(p));
			*problem = p;
			return false;
		}
		if (ctx->saved_depth >= WAM_EXPR_MAX_SAVED_DEPTH)
		{
			p = wam_expr_problem(ctx, prog, ERRCODE_STATEMENT_TOO_COMPLEX, wam_expr_leaf_pos(prog, nd));
			p->message = pstrdup("segment expression is too complex");
			p->detail = psprintf("Saved segments nest more than %d levels deep %s.",
								 WAM_EXPR_MAX_SAVED_DEPTH, wam_expr_where(p));
			*problem = p;
			return false;
		}
		s->state = WAM_SAVED_PREPARING;
		s->prog = palloc0(sizeof(WamExprProgram));
		s->prog->src = s->expression;
		s->prog->srclen = strlen(s->expression);
		s->prog->owner = s;
		if (ctx->saved_depth == 0)
			ctx->via = s->name;
		ctx->saved_depth++;
		if (!wam_prepare_program(ctx, s->prog, problem))
			return false;
		ctx->saved_depth--;
		if (ctx->saved_depth == 0)
			ctx->via = NULL;
		s->state = WAM_SAVED_READY;
	}
	return true;
}

static void *
wam_parse_alloc(void *arg, size_t size)
{
	return MemoryContextAlloc((MemoryContext) arg, size);
}

/*
 * wam_resolve_groups looks up the group of every group(name) node and
 * turns it into a predicate query (its current members), shared between
 * equal names.  An unknown group is a problem, like an unknown tag.
 */
static bool
wam_resolve_groups(WamExprCtx *ctx, WamExprProgram *prog, WamExprProblem **problem)
{
	const WamExprParse *pp = &prog->parse;
	uint32		i;

	for (i = 0; i < pp->nnodes; i++)
	{
		const WamExprNode *nd = &pp->nodes[i];
		Oid			type = TEXTOID;
		Datum		arg;
		MemoryContext old;
		int			rc;
		bool		isnull;
		int64		id;
		WamExprPred tmp;
		WamExprPred *pred;
		bool		found;

		if (nd->kind != WAM_EXPR_GROUP)
			continue;
		arg = CStringGetTextDatum(pp->names + nd->name_off);
		old = CurrentMemoryContext;
		rc = SPI_execute_with_args("SELECT g.group_id FROM wam.wa_group g "
								   "WHERE g.name OPERATOR(pg_catalog.=) $1",
								   1, &type, &arg, NULL, true, 1);
		MemoryContextSwitchTo(old);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "wam_resolve_groups: query failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 0)
		{
			WamExprProblem *p = wam_expr_problem(ctx, prog, ERRCODE_UNDEFINED_OBJECT,
												 wam_expr_leaf_pos(prog, nd));

			SPI_freetuptable(SPI_tuptable);
			p->message = psprintf("group \"%s\" does not exist", pp->names + nd->name_off);
			p->detail = psprintf("The group is %s.", wam_expr_where(p));
			p->hint = pstrdup("Groups are listed in wam.wa_group; create one with wam.create_group().");
			*problem = p;
			return false;
		}
		id = DatumGetInt64(wam_expr_col(0, 1, &isnull));
		SPI_freetuptable(SPI_tuptable);

		memset(&tmp, 0, sizeof(tmp));
		tmp.query = WAM_PQ_ATTR;
		tmp.sql = pstrdup("SELECT wam.segment_agg(m.customer_id) FROM wam.group_member m "
						  "WHERE m.group_id OPERATOR(pg_catalog.=) $1 AND m.left_at IS NULL");
		tmp.nargs = 1;
		tmp.argtypes[0] = INT8OID;
		tmp.args[0] = Int64GetDatum(id);
		tmp.key = psprintf("group|" INT64_FORMAT, id);
		pred = hash_search(ctx->preds, &tmp.key, HASH_ENTER, &found);
		if (!found)
		{
			char	   *key = pred->key;

			*pred = tmp;
			pred->key = key;
			pred->evaluated = false;
			pred->bm = NULL;
		}
		prog->preds[i] = pred;
		prog->pred_neg[i] = false;
	}
	return true;
}

/* Parses prog and resolves its names, recursing into saved segments. */
static bool
wam_prepare_program(WamExprCtx *ctx, WamExprProgram *prog, WamExprProblem **problem)
{
	WamExprError rc;
	uint32		n;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	rc = wam_expr_parse(prog->src, prog->srclen, ctx->parse_flags, NULL,
						wam_parse_alloc, ctx->cxt, &prog->parse);
	if (rc != WAM_EXPR_OK)
	{
		*problem = wam_parse_problem(ctx, prog, rc);
		return false;
	}
	n = prog->parse.nnodes;
	prog->tag_ids = palloc0(sizeof(int32) * n);
	prog->segs = palloc0(sizeof(WamExprSaved *) * n);
	prog->preds = palloc0(sizeof(WamExprPred *) * n);
	prog->pred_neg = palloc0(sizeof(bool) * n);
	if (!wam_resolve_tags(ctx, prog, problem))
		return false;
	wam_register_preds(ctx, prog);
	if (!wam_expr_resolve_attrs(ctx, prog, problem))
		return false;
	if (!wam_resolve_groups(ctx, prog, problem))
		return false;
	return wam_resolve_segments(ctx, prog, problem);
}

/*
 * wam_expr_set_self makes preparation refuse any @reference, direct or
 * through other saved segments, to the saved segment named self (the one
 * wam.define_segment() is defining).
 */
void
wam_expr_set_self(WamExprCtx *ctx, text *self)
{
	Oid			type = TEXTOID;
	Datum		arg = PointerGetDatum(self);
	MemoryContext old = CurrentMemoryContext;
	int			rc = SPI_execute_with_args("SELECT wam.normalize_tag_name($1)", 1, &type,
										   &arg, NULL, true, 1);
	bool		isnull;
	Datum		d;

	MemoryContextSwitchTo(old);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "wam_expr_set_self: query failed: %s", SPI_result_code_string(rc));
	d = wam_expr_col(0, 1, &isnull);
	ctx->self_key = isnull ? NULL : TextDatumGetCString(d);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * wam_expr_prepare parses an expression and resolves every name in it.
 * Returns the program, or NULL with *problem set.
 */
WamExprProgram *
wam_expr_prepare(WamExprCtx *ctx, const char *src, size_t len,
				 WamExprProblem **problem)
{
	WamExprProgram *prog = palloc0(sizeof(WamExprProgram));

	prog->src = src;
	prog->srclen = len;
	*problem = NULL;
	if (!wam_prepare_program(ctx, prog, problem))
		return NULL;
	return prog;
}
