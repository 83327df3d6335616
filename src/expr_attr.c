/*-------------------------------------------------------------------------
 *
 * expr_attr.c
 *	  Customer attributes and event details in segment expressions: the
 *	  preparation of "attr(name) op values", "age op years" and the detail
 *	  filters of "event(kind, key = value)" (see expr_prepare.c for the rest
 *	  of the preparation and expr_eval.c for the evaluation).
 *
 * An attribute test becomes one query on wam.customer_attribute returning a
 * segment, like the behaviour predicates: its text is put together here
 * from fixed fragments only (the value column of the attribute's type and
 * an operator from a fixed list) and every value typed in the expression is
 * a parameter, converted to the attribute's type now, so a value of the
 * wrong type is a problem with its position before anything is read.
 * "age" is a date range on the built-in attribute birth_date, computed from
 * the transaction's start in the session's time zone: age >= 18 is
 * birth_date <= today - 18 years, so a customer turns 18 on the birthday
 * itself (and on 1 March, in common years, for 29 February).
 *
 * Detail filters are searched in wam.event_detail by their first key and
 * value (one row per scalar value of every event's details, kept by
 * triggers); further filters are checked on the event, as the jsonb its
 * details must contain (details @> '{"product": "sunscreen", "qty": 2}').
 *
 * src/expr_attr.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "expr.h"

/* wam.attribute.value_type, in this order */
typedef enum WamAttrType
{
	WAM_ATYPE_TEXT = 0,
	WAM_ATYPE_NUMBER,
	WAM_ATYPE_DATE,
	WAM_ATYPE_BOOLEAN
} WamAttrType;

static const char *const wam_atype_names[] = {"text", "number", "date", "boolean"};
static const char *const wam_atype_columns[] = {
	"a.value_text", "a.value_number", "a.value_date", "a.value_boolean"
};
static const Oid wam_atype_oids[] = {TEXTOID, NUMERICOID, DATEOID, BOOLOID};
static const Oid wam_atype_array_oids[] = {
	TEXTARRAYOID, NUMERICARRAYOID, DATEARRAYOID, BOOLARRAYOID
};
/* indexed by WamExprAttrOp for the six comparisons */
static const char *const wam_aop_sql[] = {">=", ">", "<=", "<", "=", "<>"};

#define WAM_ATTR_SQL_BASE \
	"SELECT wam.segment_agg(a.customer_id) FROM wam.customer_attribute a " \
	"WHERE a.attribute_id OPERATOR(pg_catalog.=) $1"

/* age: birth_date in (lo, hi], or outside it for != */
static const char wam_age_sql[] =
WAM_ATTR_SQL_BASE " AND (a.value_date OPERATOR(pg_catalog.>) $2 "
"AND a.value_date OPERATOR(pg_catalog.<=) $3) OPERATOR(pg_catalog.=) $4";

/* One attribute as wam.attribute defines it. */
typedef struct WamAttrDef
{
	bool		found;
	int32		id;
	WamAttrType type;
	int			nallowed;		/* -1: any value */
	char	  **allowed;
} WamAttrDef;

/* -------- event details -------- */

/*
 * wam_expr_details returns the jsonb object that an event's details must
 * contain for the filters of nd, and its text in *text (the predicate's
 * key).  Numbers and booleans are JSON numbers and booleans, so
 * quantity = 3 matches {"quantity": 3} and product = '3' matches
 * {"product": "3"}.
 */
Datum
wam_expr_details(const WamExprParse *pp, const WamExprNode *nd, const char **text)
{
	StringInfoData buf;
	uint32		i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < nd->lit_count; i++)
	{
		const WamExprLit *l = &pp->lits[nd->lit_first + i];

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, pp->names + l->key_off);
		appendStringInfoString(&buf, ": ");
		if (l->type == WAM_LIT_STRING)
			escape_json(&buf, pp->names + l->val_off);
		else
			appendStringInfoString(&buf, pp->names + l->val_off);
	}
	appendStringInfoChar(&buf, '}');
	*text = buf.data;
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

/*
 * The first filter of nd as a key (text) and a JSON value (jsonb): the
 * search key of wam.event_detail, which holds one row per scalar value of
 * every event's details.
 */
void
wam_expr_detail_first(const WamExprParse *pp, const WamExprNode *nd, Datum *key, Datum *value)
{
	const WamExprLit *l = &pp->lits[nd->lit_first];
	StringInfoData buf;

	initStringInfo(&buf);
	if (l->type == WAM_LIT_STRING)
		escape_json(&buf, pp->names + l->val_off);
	else
		appendStringInfoString(&buf, pp->names + l->val_off);
	*key = CStringGetTextDatum(pp->names + l->key_off);
	*value = DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

/* -------- attribute values -------- */

static const char *
wam_lit_kind(const WamExprLit *l)
{
	return l->type == WAM_LIT_STRING ? "text in single quotes" :
		l->type == WAM_LIT_NUMBER ? "a number" : "a boolean";
}

/* Parses 'YYYY-MM-DD' (a real calendar day from year 1 on). */
static bool
wam_iso_date(const char *s, DateADT *out)
{
	int			y;
	int			m;
	int			d;
	int			i;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (i = 0; i < 10; i++)
	{
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	}
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] ||
		(m == 2 && d == 29 && !isleap(y)))
		return false;
	*out = date2j(y, m, d) - POSTGRES_EPOCH_JDATE;
	return true;
}

/* The day n years before day. */
static DateADT
wam_years_before(DateADT day, int n)
{
	Interval	iv;
	Timestamp	ts;

	memset(&iv, 0, sizeof(iv));
	iv.month = n * MONTHS_PER_YEAR;
	ts = DatumGetTimestamp(DirectFunctionCall2(date_mi_interval, DateADTGetDatum(day),
											   IntervalPGetDatum(&iv)));
	return DatumGetDateADT(DirectFunctionCall1(timestamp_date, TimestampGetDatum(ts)));
}

/*
 * Converts literal l to a value of the attribute's type, or returns false
 * with *problem set (pointing at the literal).
 */
static bool
wam_attr_value(WamExprCtx *ctx, WamExprProgram *prog, const char *name,
			   const WamAttrDef *def, const WamExprLit *l, bool check_allowed,
			   Datum *value, WamExprProblem **problem)
{
	const char *v = prog->parse.names + l->val_off;
	WamExprProblem *p;
	static const WamExprLitType wants[] = {
		WAM_LIT_STRING, WAM_LIT_NUMBER, WAM_LIT_STRING, WAM_LIT_BOOL
	};
	static const char *const hints[] = {
		"Write text in single quotes, as in attr(city) = 'Taipei'.",
		"Write numbers without quotes, as in attr(visits) >= 3 or attr(score) < 2.5.",
		"Write dates in single quotes as 'YYYY-MM-DD', as in attr(birth_date) < '2000-01-01'.",
		"Write true or false without quotes."
	};

	if (l->type != wants[def->type])
	{
		p = wam_expr_problem(ctx, prog, ERRCODE_DATATYPE_MISMATCH, l->start);
		p->message = psprintf("attribute \"%s\" is of type %s, but the value is %s",
							  name, wam_atype_names[def->type], wam_lit_kind(l));
		p->detail = psprintf("The value is %s.", wam_expr_where(p));
		p->hint = pstrdup(hints[def->type]);
		*problem = p;
		return false;
	}
	switch (def->type)
	{
		case WAM_ATYPE_TEXT:
			if (check_allowed && def->nallowed >= 0)
			{
				int			i;
				StringInfoData list;

				for (i = 0; i < def->nallowed; i++)
				{
					if (strcmp(def->allowed[i], v) == 0)
						break;
				}
				if (i == def->nallowed)
				{
					initStringInfo(&list);
					for (i = 0; i < def->nallowed; i++)
						appendStringInfo(&list, "%s'%s'", i > 0 ? ", " : "", def->allowed[i]);
					p = wam_expr_problem(ctx, prog, ERRCODE_INVALID_PARAMETER_VALUE, l->start);
					p->message = psprintf("'%s' is not an allowed value of attribute \"%s\"",
										  v, name);
					p->detail = psprintf("The value is %s; the allowed values are %s.",
										 wam_expr_where(p), list.data);
					*problem = p;
					return false;
				}
			}
			*value = CStringGetTextDatum(v);
			return true;
		case WAM_ATYPE_NUMBER:
			/* the parser admits only digits, a fraction and a sign: cannot fail */
			*value = DirectFunctionCall3(numeric_in, CStringGetDatum(v),
										 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
			return true;
		case WAM_ATYPE_DATE:
			{
				DateADT		d;

				if (!wam_iso_date(v, &d))
				{
					p = wam_expr_problem(ctx, prog, ERRCODE_INVALID_DATETIME_FORMAT, l->start);
					p->message = psprintf("invalid date '%s' for attribute \"%s\"", v, name);
					p->detail = psprintf("The value is %s.", wam_expr_where(p));
					p->hint = pstrdup(hints[WAM_ATYPE_DATE]);
					*problem = p;
					return false;
				}
				*value = DateADTGetDatum(d);
				return true;
			}
		case WAM_ATYPE_BOOLEAN:
		default:
			*value = BoolGetDatum(strcmp(v, "true") == 0);
			return true;
	}
}

/* The byte offset of the attribute name in attr( name ). */
static uint32
wam_attr_name_pos(const WamExprProgram *prog, const WamExprNode *nd)
{
	uint32		pos = wam_expr_leaf_pos(prog, nd);

	while (pos < nd->end && prog->src[pos] != '(')
		pos++;
	if (pos < nd->end)
		pos++;
	while (pos < nd->end && (prog->src[pos] == ' ' || prog->src[pos] == '\t' ||
							 prog->src[pos] == '\n' || prog->src[pos] == '\r'))
		pos++;
	return pos;
}

/* Fills pred with the query of an age test on birth_date (def). */
static void
wam_age_pred(WamExprCtx *ctx, const WamExprProgram *prog, const WamExprNode *nd,
			 const WamAttrDef *def, WamExprPred *pred)
{
	const WamExprLit *lits = prog->parse.lits + nd->lit_first;
	int			a = atoi(prog->parse.names + lits[0].val_off);
	int			b = nd->aop == WAM_AOP_BETWEEN ? atoi(prog->parse.names + lits[1].val_off) : a;
	DateADT		today = DatumGetDateADT(DirectFunctionCall1(timestamptz_date,
															TimestampTzGetDatum(ctx->now)));
	DateADT		lo = DATEVAL_NOBEGIN;
	DateADT		hi = DATEVAL_NOEND;
	bool		inside = true;

	/* age >= n  <=>  birth_date <= today - n years */
	switch ((WamExprAttrOp) nd->aop)
	{
		case WAM_AOP_GE:
			hi = wam_years_before(today, a);
			break;
		case WAM_AOP_GT:
			hi = wam_years_before(today, a + 1);
			break;
		case WAM_AOP_LE:
			lo = wam_years_before(today, a + 1);
			break;
		case WAM_AOP_LT:
			lo = wam_years_before(today, a);
			break;
		case WAM_AOP_NE:
			inside = false;
			/* FALLTHROUGH */
		case WAM_AOP_EQ:
		case WAM_AOP_BETWEEN:
		default:
			lo = wam_years_before(today, b + 1);
			hi = wam_years_before(today, a);
			break;
	}
	pred->sql = pstrdup(wam_age_sql);
	pred->nargs = 4;
	pred->argtypes[0] = INT4OID;
	pred->args[0] = Int32GetDatum(def->id);
	pred->argtypes[1] = DATEOID;
	pred->args[1] = DateADTGetDatum(lo);
	pred->argtypes[2] = DATEOID;
	pred->args[2] = DateADTGetDatum(hi);
	pred->argtypes[3] = BOOLOID;
	pred->args[3] = BoolGetDatum(inside);
	pred->key = psprintf("age|%d|%d|%d|%d", def->id, (int) lo, (int) hi, (int) inside);
}

/*
 * Fills pred with the query of attr(name) test, or returns false with
 * *problem set.
 */
static bool
wam_named_pred(WamExprCtx *ctx, WamExprProgram *prog, const WamExprNode *nd,
			   const WamAttrDef *def, WamExprPred *pred, WamExprProblem **problem)
{
	const WamExprParse *pp = &prog->parse;
	const char *name = pp->names + nd->name_off;
	const char *col = wam_atype_columns[def->type];
	WamExprAttrOp aop = (WamExprAttrOp) nd->aop;
	StringInfoData key;
	uint32		i;

	pred->argtypes[0] = INT4OID;
	pred->args[0] = Int32GetDatum(def->id);
	pred->nargs = 1;
	if (def->type == WAM_ATYPE_BOOLEAN && aop != WAM_AOP_EQ && aop != WAM_AOP_NE &&
		aop != WAM_AOP_IN && aop != WAM_AOP_SET && aop != WAM_AOP_NOT_SET)
	{
		WamExprProblem *p = wam_expr_problem(ctx, prog, ERRCODE_UNDEFINED_FUNCTION,
											 wam_expr_leaf_pos(prog, nd));

		p->message = psprintf("attribute \"%s\" is boolean: only =, <>, IN and IS SET apply", name);
		p->detail = psprintf("The test is %s.", wam_expr_where(p));
		*problem = p;
		return false;
	}

	initStringInfo(&key);
	appendStringInfo(&key, "attr|%d|%d", def->id, (int) aop);
	switch (aop)
	{
		case WAM_AOP_SET:
		case WAM_AOP_NOT_SET:
			pred->sql = pstrdup(WAM_ATTR_SQL_BASE);
			break;
		case WAM_AOP_BETWEEN:
			for (i = 0; i < 2; i++)
			{
				if (!wam_attr_value(ctx, prog, name, def, &pp->lits[nd->lit_first + i], false,
									&pred->args[1 + i], problem))
					return false;
				pred->argtypes[1 + i] = wam_atype_oids[def->type];
			}
			pred->nargs = 3;
			pred->sql = psprintf(WAM_ATTR_SQL_BASE " AND %s OPERATOR(pg_catalog.>=) $2 "
								 "AND %s OPERATOR(pg_catalog.<=) $3", col, col);
			break;
		case WAM_AOP_IN:
			{
				Datum	   *vals = palloc(sizeof(Datum) * nd->lit_count);
				int16		typlen;
				bool		typbyval;
				char		typalign;

				for (i = 0; i < nd->lit_count; i++)
				{
					if (!wam_attr_value(ctx, prog, name, def, &pp->lits[nd->lit_first + i], true,
										&vals[i], problem))
						return false;
				}
				get_typlenbyvalalign(wam_atype_oids[def->type], &typlen, &typbyval, &typalign);
				pred->args[1] = PointerGetDatum(construct_array(vals, (int) nd->lit_count,
																wam_atype_oids[def->type],
																typlen, typbyval, typalign));
				pred->argtypes[1] = wam_atype_array_oids[def->type];
				pred->nargs = 2;
				pred->sql = psprintf(WAM_ATTR_SQL_BASE " AND %s OPERATOR(pg_catalog.=) ANY ($2)", col);
				break;
			}
		default:
			if (!wam_attr_value(ctx, prog, name, def, &pp->lits[nd->lit_first],
								aop == WAM_AOP_EQ || aop == WAM_AOP_NE, &pred->args[1], problem))
				return false;
			pred->argtypes[1] = wam_atype_oids[def->type];
			pred->nargs = 2;
			pred->sql = psprintf(WAM_ATTR_SQL_BASE " AND %s OPERATOR(pg_catalog.%s) $2",
								 col, wam_aop_sql[aop]);
			break;
	}
	/* IS NOT SET is the complement of IS SET: one query for both */
	if (aop == WAM_AOP_NOT_SET)
		resetStringInfo(&key), appendStringInfo(&key, "attr|%d|%d", def->id, (int) WAM_AOP_SET);
	for (i = 0; i < nd->lit_count; i++)
	{
		const WamExprLit *l = &pp->lits[nd->lit_first + i];

		appendStringInfo(&key, "|%u:%s", l->val_len, pp->names + l->val_off);
	}
	pred->key = key.data;
	return true;
}

/*
 * wam_expr_resolve_attrs looks up the attributes prog names (all in one
 * query), checks every value against its attribute's type and turns each
 * test into a predicate query, shared between equal tests.
 */
bool
wam_expr_resolve_attrs(WamExprCtx *ctx, WamExprProgram *prog, WamExprProblem **problem)
{
	const WamExprParse *pp = &prog->parse;
	Datum	   *names = palloc(sizeof(Datum) * pp->nnodes);
	int		   *node_of = palloc(sizeof(int) * pp->nnodes);
	WamAttrDef *defs;
	int			n = 0;
	int			k;
	uint32		i;
	uint64		r;

	for (i = 0; i < pp->nnodes; i++)
	{
		const WamExprNode *nd = &pp->nodes[i];

		if (nd->kind != WAM_EXPR_ATTR)
			continue;
		names[n] = CStringGetTextDatum(nd->field == WAM_ATTR_AGE ? "birth_date" :
									   pp->names + nd->name_off);
		node_of[n++] = (int) i;
	}
	if (n == 0)
		return true;

	defs = palloc0(sizeof(WamAttrDef) * n);
	wam_expr_select(WAM_Q_ATTRS,
					PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT)));
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		ord = DatumGetInt64(wam_expr_col((int) r, 1, &isnull));
		WamAttrDef *def;
		char	   *type;
		Datum		allowed;

		if (ord < 1 || ord > n)
			elog(ERROR, "wam_expr_resolve_attrs: unexpected ordinal " INT64_FORMAT, ord);
		def = &defs[ord - 1];
		def->found = true;
		def->id = DatumGetInt32(wam_expr_col((int) r, 2, &isnull));
		type = TextDatumGetCString(wam_expr_col((int) r, 3, &isnull));
		for (k = 0; k < 4; k++)
		{
			if (strcmp(type, wam_atype_names[k]) == 0)
				break;
		}
		if (k == 4)
			elog(ERROR, "wam_expr_resolve_attrs: unknown attribute type \"%s\"", type);
		def->type = (WamAttrType) k;
		def->nallowed = -1;
		allowed = wam_expr_col((int) r, 4, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			ne;
			int			j;

			deconstruct_array(DatumGetArrayTypePCopy(allowed), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &nulls, &ne);
			def->allowed = palloc(sizeof(char *) * (ne + 1));
			def->nallowed = 0;
			for (j = 0; j < ne; j++)
			{
				if (!nulls[j])
					def->allowed[def->nallowed++] = TextDatumGetCString(elems[j]);
			}
		}
	}
	SPI_freetuptable(SPI_tuptable);

	for (k = 0; k < n; k++)
	{
		const WamExprNode *nd = &pp->nodes[node_of[k]];
		const WamAttrDef *def = &defs[k];
		WamExprPred tmp;
		WamExprPred *pred;
		bool		found;

		if (!def->found || (nd->field == WAM_ATTR_AGE && def->type != WAM_ATYPE_DATE))
		{
			WamExprProblem *p;

			if (nd->field == WAM_ATTR_AGE)
			{
				p = wam_expr_problem(ctx, prog, ERRCODE_UNDEFINED_OBJECT, wam_expr_leaf_pos(prog, nd));
				p->message = pstrdup("age needs the date attribute \"birth_date\"");
				p->detail = psprintf("age is %s.", wam_expr_where(p));
			}
			else
			{
				p = wam_expr_problem(ctx, prog, ERRCODE_UNDEFINED_OBJECT, wam_attr_name_pos(prog, nd));
				p->message = psprintf("attribute \"%s\" does not exist", pp->names + nd->name_off);
				p->detail = psprintf("The name is %s.", wam_expr_where(p));
				p->hint = pstrdup("Attributes are listed in wam.attribute; define one with wam.define_attribute().");
			}
			*problem = p;
			return false;
		}
		memset(&tmp, 0, sizeof(tmp));
		if (nd->field == WAM_ATTR_AGE)
			wam_age_pred(ctx, prog, nd, def, &tmp);
		else if (!wam_named_pred(ctx, prog, nd, def, &tmp, problem))
			return false;
		tmp.query = WAM_PQ_ATTR;
		pred = hash_search(ctx->preds, &tmp.key, HASH_ENTER, &found);
		if (!found)
		{
			char	   *key = pred->key;

			*pred = tmp;
			pred->key = key;
			pred->evaluated = false;
			pred->bm = NULL;
		}
		prog->preds[node_of[k]] = pred;
		prog->pred_neg[node_of[k]] = nd->aop == WAM_AOP_NOT_SET;
	}
	return true;
}
