/*-------------------------------------------------------------------------
 *
 * expr_deparse.c
 *	  Canonical text of a parsed segment expression (see expr_parse.h):
 *	  keywords in upper case, every operand that is itself an operator in
 *	  parentheses, names quoted only when they must be, predicates spelt
 *	  out in full ("event(order) >= 1 within 7d").  Parsing the text gives
 *	  the same program, which test/fuzz/fuzz_expr.c checks.
 *
 * Free of PostgreSQL headers and iterative (an explicit stack as deep as
 * the tree), like the parser.  The fuzzer uses it to check the parser
 * against itself; the server does not need it yet, so it is not in OBJS
 * (a SQL function returning the canonical text would link it).
 *
 * src/expr_deparse.c
 *
 *-------------------------------------------------------------------------
 */
#include "expr_parse.h"

#include <stdio.h>
#include <string.h>

typedef struct WamOut
{
	char	   *buf;
	size_t		size;
	size_t		len;			/* bytes wanted so far (may exceed size) */
} WamOut;

static void
wam_put(WamOut *o, const char *s, size_t n)
{
	if (o->size > 0 && o->len < o->size - 1)
	{
		size_t		room = o->size - 1 - o->len;

		memcpy(o->buf + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void
wam_puts(WamOut *o, const char *s)
{
	wam_put(o, s, strlen(s));
}

/* Writes a name bare when it reads back as the same name, else quoted. */
static void
wam_put_name(WamOut *o, const char *name, size_t len, int flags,
			 bool keywords_ok)
{
	size_t		i;

	if (wam_expr_name_is_bare(name, len, flags, keywords_ok))
	{
		wam_put(o, name, len);
		return;
	}
	wam_put(o, "\"", 1);
	for (i = 0; i < len; i++)
	{
		if (name[i] == '"')
			wam_put(o, "\"", 1);
		wam_put(o, name + i, 1);
	}
	wam_put(o, "\"", 1);
}

/* A literal value: strings in single quotes ('' for a quote), others as parsed. */
static void
wam_put_value(WamOut *o, const WamExprParse *parse, const WamExprLit *l)
{
	const char *v = parse->names + l->val_off;
	size_t		i;

	if (l->type != WAM_LIT_STRING)
	{
		wam_put(o, v, l->val_len);
		return;
	}
	wam_put(o, "'", 1);
	for (i = 0; i < l->val_len; i++)
	{
		if (v[i] == '\'')
			wam_put(o, "'", 1);
		wam_put(o, v + i, 1);
	}
	wam_put(o, "'", 1);
}

/* attr(name) or age, then the test: "= 'x'", "BETWEEN a AND b", "IN (a, b)", "IS SET" */
static void
wam_put_attr(WamOut *o, const WamExprParse *parse, const WamExprNode *n)
{
	const WamExprLit *lits = parse->lits + n->lit_first;
	uint32_t	i;

	if (n->field == WAM_ATTR_AGE)
		wam_puts(o, "age");
	else
	{
		wam_puts(o, "attr(");
		wam_put(o, parse->names + n->name_off, n->name_len);
		wam_puts(o, ")");
	}
	switch ((WamExprAttrOp) n->aop)
	{
		case WAM_AOP_BETWEEN:
			wam_puts(o, " BETWEEN ");
			wam_put_value(o, parse, &lits[0]);
			wam_puts(o, " AND ");
			wam_put_value(o, parse, &lits[1]);
			return;
		case WAM_AOP_IN:
			wam_puts(o, " IN (");
			for (i = 0; i < n->lit_count; i++)
			{
				if (i > 0)
					wam_puts(o, ", ");
				wam_put_value(o, parse, &lits[i]);
			}
			wam_puts(o, ")");
			return;
		case WAM_AOP_SET:
			wam_puts(o, " IS SET");
			return;
		case WAM_AOP_NOT_SET:
			wam_puts(o, " IS NOT SET");
			return;
		default:
			wam_puts(o, " ");
			wam_puts(o, wam_expr_cmp_text((WamExprCmp) n->aop));
			wam_puts(o, " ");
			wam_put_value(o, parse, &lits[0]);
			return;
	}
}

static void
wam_put_leaf(WamOut *o, const WamExprParse *parse, const WamExprNode *n,
			 int flags)
{
	static const char *const fields[] = {
		"inbound", "read", "first_order", "last_order", "interacted", "created"
	};
	char		num[32];

	switch ((WamExprKind) n->kind)
	{
		case WAM_EXPR_TAG:
			wam_put_name(o, parse->names + n->name_off, n->name_len, flags, false);
			return;
		case WAM_EXPR_SEGMENT:
			wam_put(o, "@", 1);
			wam_put_name(o, parse->names + n->name_off, n->name_len, flags, true);
			return;
		case WAM_EXPR_ALL:
			wam_puts(o, "ALL");
			return;
		case WAM_EXPR_REACHABLE:
			wam_puts(o, "REACHABLE");
			return;
		case WAM_EXPR_EVENT:
		case WAM_EXPR_FIELD:
			if (n->negated)
				wam_puts(o, "no ");
			if (n->kind == WAM_EXPR_EVENT)
			{
				uint32_t	i;

				wam_puts(o, "event(");
				wam_put(o, parse->names + n->name_off, n->name_len);
				for (i = 0; i < n->lit_count; i++)
				{
					const WamExprLit *l = &parse->lits[n->lit_first + i];

					wam_puts(o, ", ");
					wam_put_name(o, parse->names + l->key_off, l->key_len, flags, true);
					wam_puts(o, " = ");
					wam_put_value(o, parse, l);
				}
				snprintf(num, sizeof(num), ") %s %lld",
						 wam_expr_cmp_text((WamExprCmp) n->cmp), (long long) n->count);
				wam_puts(o, num);
			}
			else
				wam_puts(o, n->field <= WAM_FIELD_CREATED ? fields[n->field] : "?");
			if (n->unit != WAM_UNIT_NONE)
			{
				snprintf(num, sizeof(num), " within %lld%s", (long long) n->window,
						 wam_expr_unit_suffix((WamExprUnit) n->unit));
				wam_puts(o, num);
			}
			return;
		case WAM_EXPR_ATTR:
			wam_put_attr(o, parse, n);
			return;
		case WAM_EXPR_GROUP:
			wam_puts(o, "group(");
			wam_put_name(o, parse->names + n->name_off, n->name_len, flags, true);
			wam_puts(o, ")");
			return;
		default:
			wam_puts(o, "?");
			return;
	}
}

static bool
wam_is_binary(const WamExprNode *n)
{
	return n->kind == WAM_EXPR_AND || n->kind == WAM_EXPR_OR ||
		n->kind == WAM_EXPR_EXCLUDE;
}

size_t
wam_expr_deparse(const WamExprParse *parse, int flags,
				 WamExprAlloc alloc, void *alloc_arg,
				 char *buf, size_t bufsize)
{
	typedef struct
	{
		int32_t		node;
		int			state;		/* 0 enter, 1 after the first operand, 2 after
								 * the second */
	}			Frame;
	WamOut		o = {buf, bufsize, 0};
	Frame	   *stack;
	size_t		sp = 0;

	if (parse->nnodes == 0)
	{
		if (bufsize > 0)
			buf[0] = '\0';
		return 0;
	}
	stack = alloc(alloc_arg, sizeof(Frame) * parse->nnodes);
	if (stack == NULL)
		return (size_t) -1;
	stack[sp].node = (int32_t) parse->nnodes - 1;
	stack[sp].state = 0;
	sp++;
	while (sp > 0)
	{
		Frame	   *f = &stack[sp - 1];
		const WamExprNode *n = &parse->nodes[f->node];
		const WamExprNode *child;

		if (n->kind == WAM_EXPR_NOT)
		{
			child = &parse->nodes[f->node - 1];
			if (f->state == 0)
			{
				wam_puts(&o, "NOT ");
				if (wam_is_binary(child))
					wam_puts(&o, "(");
				f->state = 1;
				stack[sp].node = f->node - 1;
				stack[sp].state = 0;
				sp++;
			}
			else
			{
				if (wam_is_binary(child))
					wam_puts(&o, ")");
				sp--;
			}
		}
		else if (wam_is_binary(n))
		{
			const WamExprNode *left = &parse->nodes[n->left];
			const WamExprNode *right = &parse->nodes[f->node - 1];

			if (f->state == 0)
			{
				if (wam_is_binary(left))
					wam_puts(&o, "(");
				f->state = 1;
				stack[sp].node = n->left;
				stack[sp].state = 0;
				sp++;
			}
			else if (f->state == 1)
			{
				if (wam_is_binary(left))
					wam_puts(&o, ")");
				wam_puts(&o, n->kind == WAM_EXPR_AND ? " AND " :
						 n->kind == WAM_EXPR_OR ? " OR " : " EXCLUDE ");
				if (wam_is_binary(right))
					wam_puts(&o, "(");
				f->state = 2;
				stack[sp].node = f->node - 1;
				stack[sp].state = 0;
				sp++;
			}
			else
			{
				if (wam_is_binary(right))
					wam_puts(&o, ")");
				sp--;
			}
		}
		else
		{
			wam_put_leaf(&o, parse, n, flags);
			sp--;
		}
	}
	if (bufsize > 0)
		buf[o.len < bufsize ? o.len : bufsize - 1] = '\0';
	return o.len;
}
