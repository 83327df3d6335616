/*-------------------------------------------------------------------------
 *
 * fuzz_expr.c
 *	  libFuzzer target for the segment expression parser (src/expr_parse.c).
 *
 * Build and run (from the repository root):
 *	  clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *		  -fno-sanitize-recover=undefined -Wall -Wextra -Werror -I src \
 *		  test/fuzz/fuzz_expr.c src/expr_parse.c src/expr_deparse.c \
 *		  -o test/fuzz/build/fuzz_expr
 *	  mkdir -p test/fuzz/corpus-work/expr && cp -r test/fuzz/corpus_expr/. test/fuzz/corpus-work/expr/
 *	  test/fuzz/build/fuzz_expr -max_total_time=600 -max_len=4096 -timeout=10 \
 *		  test/fuzz/corpus-work/expr
 *
 * Input layout: byte 0 holds flags (bit 0: parse as UTF-8, so Unicode
 * spaces separate tokens; bit 1: tiny limits, so the limit paths are hit
 * often), the rest is the expression.  It is copied into a buffer of
 * exactly its size, so AddressSanitizer flags any read past its end.
 *
 * Checks, on every input:
 *	- an error has a phrase, a position and length inside the input, and
 *	  limit errors report the limit;
 *	- a parse is a well-formed postfix program: the operand stack never
 *	  underflows and ends with one value; every operator's left/first links
 *	  agree with the operand stack; spans nest (an operator's span covers
 *	  its operands', the left operand's before the right's); depths go from
 *	  0 at the root down by one per level; names are NUL-terminated, hold no
 *	  NUL, and bare names equal their source text; counts and windows are
 *	  in range;
 *	- the canonical text (wam_expr_deparse) parses back into the same
 *	  program, and printing that again gives the same text.
 *
 * Failed checks call abort() so that they fire however this is compiled.
 *
 * test/fuzz/fuzz_expr.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_parse.h"

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_expr: check failed: %s (%s:%d)\n", \
					#cond, __FILE__, __LINE__); \
			abort(); \
		} \
	} while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An arena: every allocation of one input, freed together. */
typedef struct Arena
{
	void	   *ptrs[64];
	int			n;
} Arena;

static void *
arena_alloc(void *arg, size_t size)
{
	Arena	   *a = arg;
	void	   *p;

	CHECK(a->n < 64);
	p = malloc(size ? size : 1);
	CHECK(p != NULL);
	a->ptrs[a->n++] = p;
	return p;
}

static void
arena_free(Arena *a)
{
	while (a->n > 0)
		free(a->ptrs[--a->n]);
}

static int
is_binary(const WamExprNode *n)
{
	return n->kind == WAM_EXPR_AND || n->kind == WAM_EXPR_OR ||
		n->kind == WAM_EXPR_EXCLUDE;
}

/* A literal's texts are inside names, NUL-terminated, and well-formed. */
static void
check_lit(const WamExprParse *r, const WamExprLit *l, size_t len, int is_filter)
{
	const char *v = r->names + l->val_off;

	CHECK(l->type >= WAM_LIT_STRING && l->type <= WAM_LIT_BOOL);
	CHECK((size_t) l->val_off + l->val_len < r->names_len);
	CHECK(v[l->val_len] == '\0');
	CHECK(l->start < l->end && l->end <= len);
	if (l->type == WAM_LIT_STRING)
		CHECK(memchr(v, '\0', l->val_len) == NULL);
	else if (l->type == WAM_LIT_BOOL)
		CHECK(strcmp(v, "true") == 0 || strcmp(v, "false") == 0);
	else
		CHECK(l->val_len > 0 && l->val_len <= WAM_EXPR_MAX_NUMBER &&
			  (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')));
	if (is_filter)
	{
		CHECK(l->key_len > 0 && l->key_len <= WAM_EXPR_MAX_KEY);
		CHECK((size_t) l->key_off + l->key_len < r->names_len);
		CHECK(r->names[l->key_off + l->key_len] == '\0');
		CHECK(memchr(r->names + l->key_off, '\0', l->key_len) == NULL);
		CHECK(l->key_start < l->start);
	}
	else
		CHECK(l->key_len == 0);
}

/* Structural checks of a successful parse of src[0..len). */
static void
check_program(const WamExprParse *r, const char *src, size_t len,
			  const WamExprLimits *lim)
{
	uint32_t	i;
	int64_t		height = 0;

	CHECK(r->nnodes >= 1);
	CHECK(r->nnodes <= lim->max_nodes);
	CHECK(r->nodes[r->nnodes - 1].depth == 0);
	for (i = 0; i < r->nnodes; i++)
	{
		const WamExprNode *n = &r->nodes[i];

		CHECK(n->start < n->end);
		CHECK(n->end <= len);
		CHECK(n->first >= 0 && (uint32_t) n->first <= i);
		switch (n->kind)
		{
			case WAM_EXPR_NOT:
				{
					const WamExprNode *c = &r->nodes[i - 1];

					CHECK(height >= 1);
					CHECK(i >= 1);
					CHECK(n->left == -1);
					CHECK(n->first == c->first);
					CHECK(n->start <= c->start && c->end <= n->end);
					CHECK(c->depth == n->depth + 1);
					break;
				}
			case WAM_EXPR_AND:
			case WAM_EXPR_OR:
			case WAM_EXPR_EXCLUDE:
				{
					const WamExprNode *rt = &r->nodes[i - 1];
					const WamExprNode *lt;

					CHECK(height >= 2);
					CHECK(n->left >= 0 && n->left == rt->first - 1);
					lt = &r->nodes[n->left];
					CHECK(n->first == lt->first);
					CHECK(n->start <= lt->start && lt->end <= rt->start &&
						  rt->end <= n->end);
					CHECK(lt->depth == n->depth + 1 && rt->depth == n->depth + 1);
					height--;
					break;
				}
			case WAM_EXPR_TAG:
			case WAM_EXPR_SEGMENT:
				CHECK(n->first == (int32_t) i && n->left == -1);
				CHECK(n->name_len > 0);
				CHECK((size_t) n->name_off + n->name_len < r->names_len);
				CHECK(r->names[n->name_off + n->name_len] == '\0');
				CHECK(memchr(r->names + n->name_off, '\0', n->name_len) == NULL);
				/* a bare name is its source text (the span may add parentheses) */
				CHECK(n->name_len <= n->end - n->start);
				if (!n->quoted)
					CHECK(memmem(src + n->start, n->end - n->start,
								 r->names + n->name_off, n->name_len) != NULL);
				height++;
				break;
			case WAM_EXPR_ALL:
			case WAM_EXPR_REACHABLE:
				CHECK(n->first == (int32_t) i && n->left == -1);
				height++;
				break;
			case WAM_EXPR_GROUP:
				CHECK(n->first == (int32_t) i && n->left == -1);
				CHECK(n->name_len > 0);
				CHECK(r->names[n->name_off + n->name_len] == '\0');
				height++;
				break;
			case WAM_EXPR_ATTR:
				{
					uint32_t	k;

					CHECK(n->first == (int32_t) i && n->left == -1);
					CHECK(n->field == WAM_ATTR_NAMED || n->field == WAM_ATTR_AGE);
					CHECK(n->aop <= WAM_AOP_NOT_SET);
					CHECK((uint64_t) n->lit_first + n->lit_count <= r->nlits);
					if (n->field == WAM_ATTR_AGE)
						CHECK(n->aop <= WAM_AOP_BETWEEN);
					else
					{
						CHECK(n->name_len > 0 && n->name_len <= WAM_EXPR_MAX_KIND);
						CHECK(r->names[n->name_off + n->name_len] == '\0');
					}
					CHECK(n->lit_count == (n->aop <= WAM_AOP_NE ? 1 :
										   n->aop == WAM_AOP_BETWEEN ? 2 :
										   n->aop == WAM_AOP_IN ? n->lit_count : 0));
					if (n->aop == WAM_AOP_IN)
						CHECK(n->lit_count >= 1);
					for (k = 0; k < n->lit_count; k++)
					{
						const WamExprLit *l = &r->lits[n->lit_first + k];

						check_lit(r, l, len, 0);
						CHECK(n->start <= l->start && l->end <= n->end);
						if (n->field == WAM_ATTR_AGE)
							CHECK(l->type == WAM_LIT_NUMBER);
					}
					height++;
					break;
				}
			case WAM_EXPR_EVENT:
			case WAM_EXPR_FIELD:
				CHECK(n->first == (int32_t) i && n->left == -1);
				CHECK(n->negated <= 1);
				CHECK(n->cmp <= WAM_CMP_NE);
				CHECK(n->count >= 0 && n->count <= WAM_EXPR_MAX_COUNT);
				if (n->kind == WAM_EXPR_FIELD)
					CHECK(n->field <= WAM_FIELD_INTERACTED && n->cmp == WAM_CMP_GE &&
						  n->count == 1);
				else
				{
					uint32_t	k;

					CHECK(n->name_len > 0 && n->name_len <= WAM_EXPR_MAX_KIND);
					CHECK(r->names[n->name_off + n->name_len] == '\0');
					CHECK(n->lit_count <= WAM_EXPR_MAX_FILTERS);
					CHECK((uint64_t) n->lit_first + n->lit_count <= r->nlits);
					for (k = 0; k < n->lit_count; k++)
					{
						const WamExprLit *l = &r->lits[n->lit_first + k];
						uint32_t	j;

						check_lit(r, l, len, 1);
						CHECK(n->start <= l->key_start && l->end <= n->end);
						for (j = 0; j < k; j++)
						{
							const WamExprLit *o = &r->lits[n->lit_first + j];

							CHECK(o->key_len != l->key_len ||
								  memcmp(r->names + o->key_off, r->names + l->key_off,
										 l->key_len) != 0);
						}
					}
					for (k = 0; k < n->name_len; k++)
					{
						char		c = r->names[n->name_off + k];

						CHECK((c >= 'a' && c <= 'z') ||
							  (k > 0 && ((c >= '0' && c <= '9') || c == '_')));
					}
				}
				if (n->unit == WAM_UNIT_NONE)
					CHECK(n->window == 0);
				else
					CHECK(n->unit <= WAM_UNIT_WEEKS && n->window >= 1 &&
						  n->window <= (n->unit == WAM_UNIT_HOURS ? WAM_EXPR_MAX_HOURS :
										n->unit == WAM_UNIT_DAYS ? WAM_EXPR_MAX_DAYS :
										WAM_EXPR_MAX_WEEKS));
				height++;
				break;
			default:
				CHECK(!"unknown node kind");
		}
		/* a node's left operand (if any) is at the same depth as its right */
		if (is_binary(n))
			CHECK(r->nodes[n->left].depth == r->nodes[i - 1].depth);
	}
	CHECK(height == 1);
	CHECK(r->nodes[r->nnodes - 1].first == 0);
}

/* Same program, ignoring source positions and quoting. */
static void
check_same_program(const WamExprParse *a, const WamExprParse *b)
{
	uint32_t	i;

	CHECK(a->nnodes == b->nnodes);
	for (i = 0; i < a->nnodes; i++)
	{
		const WamExprNode *x = &a->nodes[i];
		const WamExprNode *y = &b->nodes[i];

		CHECK(x->kind == y->kind);
		CHECK(x->left == y->left && x->first == y->first && x->depth == y->depth);
		CHECK(x->cmp == y->cmp && x->field == y->field && x->unit == y->unit);
		CHECK(x->negated == y->negated);
		CHECK(x->count == y->count && x->window == y->window);
		CHECK(x->name_len == y->name_len);
		CHECK(memcmp(a->names + x->name_off, b->names + y->name_off, x->name_len) == 0);
		CHECK(x->aop == y->aop && x->lit_count == y->lit_count);
		if (x->kind == WAM_EXPR_EVENT || x->kind == WAM_EXPR_ATTR)
		{
			uint32_t	k;

			for (k = 0; k < x->lit_count; k++)
			{
				const WamExprLit *p = &a->lits[x->lit_first + k];
				const WamExprLit *q = &b->lits[y->lit_first + k];

				CHECK(p->type == q->type);
				CHECK(p->key_len == q->key_len && p->val_len == q->val_len);
				CHECK(memcmp(a->names + p->key_off, b->names + q->key_off, p->key_len) == 0);
				CHECK(memcmp(a->names + p->val_off, b->names + q->val_off, p->val_len) == 0);
			}
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const WamExprLimits tiny = {512, 64, 8};
	static const WamExprLimits normal = {
		WAM_EXPR_MAX_LENGTH, WAM_EXPR_MAX_NODES, WAM_EXPR_MAX_DEPTH
	};
	Arena		arena = {{0}, 0};
	WamExprParse r;
	WamExprParse r2;
	WamExprError rc;
	const WamExprLimits *lim;
	WamExprLimits relim;
	int			flags;
	char	   *src;
	size_t		len;
	size_t		need;
	size_t		need2;
	char	   *text;
	char	   *text2;

	if (size < 1)
		return 0;
	flags = (data[0] & 1) ? WAM_EXPR_UTF8 : 0;
	lim = (data[0] & 2) ? &tiny : &normal;
	len = size - 1;
	src = arena_alloc(&arena, len);
	memcpy(src, data + 1, len);

	rc = wam_expr_parse(src, len, flags, lim, arena_alloc, &arena, &r);
	CHECK(wam_expr_error_phrase(rc) != NULL);
	if (rc != WAM_EXPR_OK)
	{
		CHECK(wam_expr_error_is_limit(rc) ==
			  (rc == WAM_EXPR_ERR_TOO_LONG || rc == WAM_EXPR_ERR_TOO_MANY ||
			   rc == WAM_EXPR_ERR_TOO_DEEP));
		CHECK(r.error == rc);
		CHECK(rc != WAM_EXPR_ERR_OUT_OF_MEMORY);
		CHECK(r.errpos <= len && r.errpos + r.errlen <= len);
		if (rc == WAM_EXPR_ERR_TOO_LONG)
			CHECK(len > lim->max_length && r.errvalue == lim->max_length);
		if (rc == WAM_EXPR_ERR_TOO_MANY)
			CHECK(r.errvalue == lim->max_nodes);
		if (rc == WAM_EXPR_ERR_TOO_DEEP)
			CHECK(r.errvalue == lim->max_depth);
		if (rc == WAM_EXPR_ERR_EMPTY)
			CHECK(r.errpos == 0 && r.errlen == 0);
		arena_free(&arena);
		return 0;
	}
	CHECK(len <= lim->max_length);
	check_program(&r, src, len, lim);

	/* canonical text: measure, print, parse back, print again */
	need = wam_expr_deparse(&r, flags, arena_alloc, &arena, NULL, 0);
	CHECK(need != (size_t) -1 && need > 0);
	text = arena_alloc(&arena, need + 1);
	CHECK(wam_expr_deparse(&r, flags, arena_alloc, &arena, text, need + 1) == need);
	CHECK(strlen(text) == need);

	/* canonical text parenthesises every nested operator: allow the depth */
	relim.max_length = need + 1;
	relim.max_nodes = lim->max_nodes;
	relim.max_depth = r.nnodes + 1;
	rc = wam_expr_parse(text, need, flags, &relim, arena_alloc, &arena, &r2);
	if (rc != WAM_EXPR_OK)
	{
		fprintf(stderr, "fuzz_expr: canonical text does not parse (%s at %u): %s\n",
				wam_expr_error_phrase(rc), r2.errpos, text);
		abort();
	}
	check_program(&r2, text, need, &relim);
	check_same_program(&r, &r2);
	need2 = wam_expr_deparse(&r2, flags, arena_alloc, &arena, NULL, 0);
	CHECK(need2 == need);
	text2 = arena_alloc(&arena, need2 + 1);
	wam_expr_deparse(&r2, flags, arena_alloc, &arena, text2, need2 + 1);
	CHECK(memcmp(text, text2, need) == 0);

	arena_free(&arena);
	return 0;
}
