/*-------------------------------------------------------------------------
 *
 * sender_payload.c
 *	  Personalised message payloads (R-M4): a template's {placeholders}
 *	  filled from one customer's fields and the caller's vars.
 *
 * wam.enqueue_segment renders one payload per customer of a segment, a
 * million in one statement.  Replacing the placeholders in the template's
 * JSON text and parsing the result back cost about 3 s of CPU per million
 * rows; here the template is expanded once per statement (cached in
 * fn_extra) into a tree of JSON values, and each row only swaps the strings
 * that carry placeholders and serialises the tree.  A template whose object
 * keys carry placeholders (rare: reordering keys would break the tree) goes
 * the slower way through the JSON text, with the same result.
 *
 * The cache is keyed by the template alone, in a memory context of its own
 * (replaced when the template changes).  The fallbacks from vars are cached
 * for the vars it was built with; a call with other vars (a campaign's
 * per-customer variables: different on every row) looks its fallbacks up in
 * that call's memory, so neither the tree is rebuilt nor memory kept per row.
 *
 * Placeholders are {word} with word matching [a-z_][a-z0-9_]*.  {name},
 * {first_name}, {phone}, {locale} and {customer_id} come from the customer;
 * when the customer has no value (or for any other word) the value is
 * vars->>word.  When a placeholder still has no value, the result is NULL
 * (the caller refuses the message).  Values are inserted once, left to
 * right: a value that itself looks like a {placeholder} stays as it is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

typedef enum
{
	FIELD_VAR,					/* only from vars */
	FIELD_NAME,
	FIELD_FIRST_NAME,
	FIELD_PHONE,
	FIELD_LOCALE,
	FIELD_CUSTOMER_ID
} PlaceholderField;

typedef struct Placeholder
{
	char	   *word;			/* without braces */
	int			len;
	PlaceholderField field;
	char	   *fallback;		/* vars->>word, or NULL */
	int			fallback_len;
} Placeholder;

typedef struct RenderCache
{
	MemoryContext cxt;			/* holds the cache itself */
	/* the arguments the cache was built for (compared byte by byte) */
	Jsonb	   *tpl;
	Jsonb	   *vars;			/* NULL when vars was NULL */
	bool		use_tree;
	JsonbValue *root;			/* tree mode: the expanded template */
	int			nleaves;
	JsonbValue **leaves;		/* tree mode: strings with placeholders */
	char	  **leaf_text;		/* ... and their original text */
	int		   *leaf_len;
	char	   *tpl_text;		/* text mode: the template as JSON text */
	int			nholders;
	Placeholder *holders;
} RenderCache;

/* length of the {word} starting at s[0] == '{', or 0 if none starts there */
static int
placeholder_at(const char *s, int len)
{
	int			i;

	if (len < 3 || s[0] != '{' || !((s[1] >= 'a' && s[1] <= 'z') || s[1] == '_'))
		return 0;
	for (i = 2; i < len; i++)
	{
		char		c = s[i];

		if (c == '}')
			return i + 1;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 0;
}

static bool
has_placeholder(const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
		if (s[i] == '{' && placeholder_at(s + i, len - i) > 0)
			return true;
	return false;
}

static Placeholder *
find_holder(RenderCache *rc, const char *word, int len)
{
	int			i;

	for (i = 0; i < rc->nholders; i++)
		if (rc->holders[i].len == len && memcmp(rc->holders[i].word, word, len) == 0)
			return &rc->holders[i];
	return NULL;
}

/* remember every distinct placeholder of s (cache context is current) */
static void
collect_holders(RenderCache *rc, const char *s, int len, int *cap)
{
	int			i = 0;

	while (i < len)
	{
		int			n = (s[i] == '{') ? placeholder_at(s + i, len - i) : 0;
		Placeholder *p;

		if (n == 0)
		{
			i++;
			continue;
		}
		if (find_holder(rc, s + i + 1, n - 2) == NULL)
		{
			if (rc->nholders == *cap)
			{
				*cap *= 2;
				rc->holders = repalloc(rc->holders, sizeof(Placeholder) * *cap);
			}
			p = &rc->holders[rc->nholders++];
			p->len = n - 2;
			p->word = pnstrdup(s + i + 1, p->len);
			p->field = FIELD_VAR;
			if (strcmp(p->word, "name") == 0)
				p->field = FIELD_NAME;
			else if (strcmp(p->word, "first_name") == 0)
				p->field = FIELD_FIRST_NAME;
			else if (strcmp(p->word, "phone") == 0)
				p->field = FIELD_PHONE;
			else if (strcmp(p->word, "locale") == 0)
				p->field = FIELD_LOCALE;
			else if (strcmp(p->word, "customer_id") == 0)
				p->field = FIELD_CUSTOMER_ID;
			p->fallback = NULL;
			p->fallback_len = 0;
		}
		i += n;
	}
}

/* vars->>word, as the ->> operator gives it (NULL, 0 when none), in the
 * current memory context */
static void
lookup_fallback(const Placeholder *p, Jsonb *vars, char **out, int *outlen)
{
	JsonbValue	v;
	char	   *s = NULL;

	*out = NULL;
	*outlen = 0;
	if (vars == NULL || !JB_ROOT_IS_OBJECT(vars))
		return;
	if (getKeyJsonValueFromContainer(&vars->root, p->word, p->len, &v) == NULL)
		return;
	switch (v.type)
	{
		case jbvNull:
			return;
		case jbvString:
			/* points into vars, which outlives the call */
			*out = v.val.string.val;
			*outlen = v.val.string.len;
			return;
		case jbvNumeric:
			s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));
			break;
		case jbvBool:
			s = pstrdup(v.val.boolean ? "true" : "false");
			break;
		default:
			s = JsonbToCString(NULL, v.val.binary.data, v.val.binary.len);
			break;
	}
	*out = s;
	*outlen = strlen(s);
}

/* every string of the tree with a placeholder; false if a key has one */
static bool
collect_leaves(RenderCache *rc, JsonbValue *v, int *cap, int *hcap)
{
	int			i;

	switch (v->type)
	{
		case jbvString:
			if (has_placeholder(v->val.string.val, v->val.string.len))
			{
				if (rc->nleaves == *cap)
				{
					*cap *= 2;
					rc->leaves = repalloc(rc->leaves, sizeof(JsonbValue *) * *cap);
				}
				rc->leaves[rc->nleaves++] = v;
				collect_holders(rc, v->val.string.val, v->val.string.len, hcap);
			}
			return true;
		case jbvArray:
			for (i = 0; i < v->val.array.nElems; i++)
				if (!collect_leaves(rc, &v->val.array.elems[i], cap, hcap))
					return false;
			return true;
		case jbvObject:
			for (i = 0; i < v->val.object.nPairs; i++)
			{
				JsonbValue *k = &v->val.object.pairs[i].key;

				if (has_placeholder(k->val.string.val, k->val.string.len))
					return false;
				if (!collect_leaves(rc, &v->val.object.pairs[i].value, cap, hcap))
					return false;
			}
			return true;
		default:
			return true;
	}
}

static RenderCache *
build_cache(FunctionCallInfo fcinfo, Jsonb *tpl, Jsonb *vars)
{
	MemoryContext cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "wam payload template",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	RenderCache *rc = palloc0(sizeof(RenderCache));
	JsonbIterator *it;
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbIteratorToken r;
	int			cap = 8;
	int			hcap = 8;
	int			i;

	rc->cxt = cxt;
	rc->tpl = palloc(VARSIZE(tpl));
	memcpy(rc->tpl, tpl, VARSIZE(tpl));
	if (vars != NULL)
	{
		rc->vars = palloc(VARSIZE(vars));
		memcpy(rc->vars, vars, VARSIZE(vars));
	}
	rc->holders = palloc(sizeof(Placeholder) * hcap);
	rc->leaves = palloc(sizeof(JsonbValue *) * cap);

	/* expand the (copied) template into a tree whose strings point into it */
	it = JsonbIteratorInit(&rc->tpl->root);
	while ((r = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (r == WJB_KEY || r == WJB_VALUE || r == WJB_ELEM)
			rc->root = pushJsonbValue(&st, r, &v);
		else if (r == WJB_BEGIN_ARRAY && v.val.array.rawScalar)
			rc->root = pushJsonbValue(&st, r, &v);
		else
			rc->root = pushJsonbValue(&st, r, NULL);
	}
	rc->use_tree = collect_leaves(rc, rc->root, &cap, &hcap);
	if (!rc->use_tree)
	{
		/* keys with placeholders: work on the JSON text instead */
		rc->tpl_text = JsonbToCString(NULL, &rc->tpl->root, VARSIZE(rc->tpl));
		rc->nholders = 0;
		collect_holders(rc, rc->tpl_text, strlen(rc->tpl_text), &hcap);
	}
	else
	{
		rc->leaf_text = palloc(sizeof(char *) * Max(rc->nleaves, 1));
		rc->leaf_len = palloc(sizeof(int) * Max(rc->nleaves, 1));
		for (i = 0; i < rc->nleaves; i++)
		{
			rc->leaf_len[i] = rc->leaves[i]->val.string.len;
			rc->leaf_text[i] = pnstrdup(rc->leaves[i]->val.string.val, rc->leaf_len[i]);
		}
	}
	for (i = 0; i < rc->nholders; i++)
	{
		Placeholder *p = &rc->holders[i];

		lookup_fallback(p, rc->vars, &p->fallback, &p->fallback_len);
	}
	MemoryContextSwitchTo(old);
	return rc;
}

static bool
same_jsonb(Jsonb *a, Jsonb *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

/* s without leading and trailing spaces (as btrim(s) does) */
static void
trim_spaces(const char *s, int len, const char **out, int *outlen)
{
	while (len > 0 && s[0] == ' ')
	{
		s++;
		len--;
	}
	while (len > 0 && s[len - 1] == ' ')
		len--;
	*out = s;
	*outlen = len;
}

/*
 * fill_placeholders appends src (len bytes) to out with each {word}
 * replaced by its value (val[h], vlen[h] for holder h); json_escape escapes
 * the values for use inside a JSON string literal.
 */
static void
fill_placeholders(RenderCache *rc, const char *src, int len, const char **val, int *vlen,
				  bool json_escape, StringInfo out)
{
	int			j = 0;

	while (j < len)
	{
		int			n = (src[j] == '{') ? placeholder_at(src + j, len - j) : 0;

		if (n > 0)
		{
			Placeholder *p = find_holder(rc, src + j + 1, n - 2);
			int			h = p - rc->holders;

			if (json_escape)
			{
				char	   *v = pnstrdup(val[h], vlen[h]);
				StringInfoData esc;

				initStringInfo(&esc);
				escape_json(&esc, v);
				/* without the quotes escape_json puts around it */
				appendBinaryStringInfo(out, esc.data + 1, esc.len - 2);
				pfree(esc.data);
				pfree(v);
			}
			else
				appendBinaryStringInfo(out, val[h], vlen[h]);
			j += n;
		}
		else
			appendStringInfoChar(out, src[j++]);
	}
}

/*
 * wam.render_customer_payload(payload jsonb, vars jsonb, customer_id bigint,
 *						   phone text, name text, locale text) RETURNS jsonb
 */
PG_FUNCTION_INFO_V1(wam_render_for_customer);
Datum
wam_render_for_customer(PG_FUNCTION_ARGS)
{
	Jsonb	   *tpl;
	Jsonb	   *vars = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	RenderCache *rc;
	const char **val;
	int		   *vlen;
	char		idbuf[32];
	int			i;
	bool		own_vars;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	tpl = PG_GETARG_JSONB_P(0);
	rc = (RenderCache *) fcinfo->flinfo->fn_extra;
	if (rc == NULL || !same_jsonb(rc->tpl, tpl))
	{
		if (rc != NULL)
			MemoryContextDelete(rc->cxt);
		fcinfo->flinfo->fn_extra = NULL;
		rc = build_cache(fcinfo, tpl, vars);
		fcinfo->flinfo->fn_extra = rc;
	}
	own_vars = same_jsonb(rc->vars, vars);
	if (rc->nholders == 0)
		PG_RETURN_JSONB_P(tpl);

	/* this customer's value of each placeholder */
	val = palloc(sizeof(char *) * rc->nholders);
	vlen = palloc(sizeof(int) * rc->nholders);
	for (i = 0; i < rc->nholders; i++)
	{
		Placeholder *p = &rc->holders[i];
		const char *s = NULL;
		int			n = 0;

		switch (p->field)
		{
			case FIELD_NAME:
			case FIELD_FIRST_NAME:
				if (!PG_ARGISNULL(4))
				{
					text	   *name = PG_GETARG_TEXT_PP(4);

					trim_spaces(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), &s, &n);
					if (p->field == FIELD_FIRST_NAME)
					{
						const char *sp = memchr(s, ' ', n);

						if (sp != NULL)
							n = sp - s;
					}
					if (n == 0)
						s = NULL;
				}
				break;
			case FIELD_PHONE:
				if (!PG_ARGISNULL(3))
				{
					text	   *phone = PG_GETARG_TEXT_PP(3);
					char	   *buf = palloc(VARSIZE_ANY_EXHDR(phone) + 1);

					buf[0] = '+';
					memcpy(buf + 1, VARDATA_ANY(phone), VARSIZE_ANY_EXHDR(phone));
					s = buf;
					n = VARSIZE_ANY_EXHDR(phone) + 1;
				}
				break;
			case FIELD_LOCALE:
				if (!PG_ARGISNULL(5))
				{
					text	   *locale = PG_GETARG_TEXT_PP(5);

					s = VARDATA_ANY(locale);
					n = VARSIZE_ANY_EXHDR(locale);
				}
				break;
			case FIELD_CUSTOMER_ID:
				if (!PG_ARGISNULL(2))
				{
					n = snprintf(idbuf, sizeof(idbuf), INT64_FORMAT, PG_GETARG_INT64(2));
					s = idbuf;
				}
				break;
			case FIELD_VAR:
				break;
		}
		if (s == NULL && own_vars)
		{
			s = p->fallback;
			n = p->fallback_len;
		}
		else if (s == NULL)
		{
			char	   *f;

			lookup_fallback(p, vars, &f, &n);
			s = f;
		}
		if (s == NULL)
			PG_RETURN_NULL();	/* no value: the message is refused */
		val[i] = s;
		vlen[i] = n;
	}

	if (rc->use_tree)
	{
		for (i = 0; i < rc->nleaves; i++)
		{
			StringInfoData buf;

			initStringInfo(&buf);
			fill_placeholders(rc, rc->leaf_text[i], rc->leaf_len[i], val, vlen, false, &buf);
			rc->leaves[i]->val.string.val = buf.data;
			rc->leaves[i]->val.string.len = buf.len;
		}
		PG_RETURN_JSONB_P(JsonbValueToJsonb(rc->root));
	}
	else
	{
		/* the JSON text with each {word} replaced by its JSON-escaped value */
		StringInfoData buf;

		initStringInfo(&buf);
		fill_placeholders(rc, rc->tpl_text, strlen(rc->tpl_text), val, vlen, true, &buf);
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
	}
}
