/*-------------------------------------------------------------------------
 *
 * expr_parse.h
 *	  Tokenizer and parser of segment expressions, the one-line language
 *	  of wam.audience() and friends:
 *
 *		interest-beauty AND stage-purchased EXCLUDE product-lipstick
 *		event(link_click) >= 3 within 7d - event(order) within 7d
 *
 * Deliberately free of PostgreSQL headers, like segment_text.h: the parser
 * allocates through a callback, never recurses, and reports errors as a
 * code plus a byte position, so the same code runs inside the server
 * (expr_prepare.c) and under libFuzzer (test/fuzz/fuzz_expr.c).
 *
 * Output is a flat array of nodes in postfix (evaluation) order: every
 * node's operands come before it, the right operand of a binary node is the
 * node just before it, and the root is the last node.  Each node keeps the
 * byte span of the source text it was parsed from, so errors and the
 * funnel of wam.audience_funnel() can quote what the user wrote.
 *
 * src/expr_parse.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_EXPR_PARSE_H
#define WAM_EXPR_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default limits (see WamExprLimits). */
#define WAM_EXPR_MAX_LENGTH		65536	/* bytes of source text */
#define WAM_EXPR_MAX_NODES		10000	/* operands + operators */
#define WAM_EXPR_MAX_DEPTH		200 /* nested "(" and NOT */

/* Largest count in "event(kind) >= N" and largest windows. */
#define WAM_EXPR_MAX_COUNT		1000000000
#define WAM_EXPR_MAX_HOURS		876000	/* 100 years */
#define WAM_EXPR_MAX_DAYS		36500
#define WAM_EXPR_MAX_WEEKS		5214
/* Longest event kind and attribute name, in bytes. */
#define WAM_EXPR_MAX_KIND		100
/* Detail filters of one event predicate: event(kind, k1 = v1, ...). */
#define WAM_EXPR_MAX_FILTERS	16
/* Longest details key, and longest number literal, in bytes. */
#define WAM_EXPR_MAX_KEY		200
#define WAM_EXPR_MAX_NUMBER		40
/* Largest age in "age >= N". */
#define WAM_EXPR_MAX_AGE		200

/* parse flags */
#define WAM_EXPR_UTF8			0x01	/* source is UTF-8: Unicode spaces
										 * separate tokens */

typedef enum WamExprKind
{
	/* operands */
	WAM_EXPR_TAG = 1,			/* name: tag name as written (unescaped) */
	WAM_EXPR_SEGMENT,			/* @name: saved segment name */
	WAM_EXPR_ALL,				/* all */
	WAM_EXPR_REACHABLE,			/* reachable */
	WAM_EXPR_EVENT,				/* [no] event(kind) [cmp count] [within w] */
	WAM_EXPR_FIELD,				/* [no] inbound|read|... [within w] */
	WAM_EXPR_ATTR,				/* attr(name) op values, age op values */
	WAM_EXPR_GROUP,				/* group(name): current members of a group */
	/* operators */
	WAM_EXPR_NOT,				/* NOT x, !x */
	WAM_EXPR_AND,				/* x AND y, x & y */
	WAM_EXPR_OR,				/* x OR y, x | y */
	WAM_EXPR_EXCLUDE			/* x EXCLUDE y, x - y (= x AND NOT y) */
} WamExprKind;

/* Comparison of an event count. */
typedef enum WamExprCmp
{
	WAM_CMP_GE = 0,				/* >= */
	WAM_CMP_GT,					/* > */
	WAM_CMP_LE,					/* <= */
	WAM_CMP_LT,					/* < */
	WAM_CMP_EQ,					/* = */
	WAM_CMP_NE					/* != or <> */
} WamExprCmp;

/* Customer timestamps a FIELD predicate tests. */
typedef enum WamExprField
{
	WAM_FIELD_INBOUND = 0,		/* inbound: last_inbound_at */
	WAM_FIELD_READ,				/* read: last_read_at */
	WAM_FIELD_FIRST_ORDER,		/* first_order: first_order_at */
	WAM_FIELD_LAST_ORDER,		/* last_order: last_order_at */
	WAM_FIELD_INTERACTED,		/* interacted: any of inbound, read, order */
	WAM_FIELD_CREATED			/* created: created_at (became a customer) */
} WamExprField;

/* The test of an ATTR node (WamExprNode.aop). */
typedef enum WamExprAttrOp
{
	WAM_AOP_GE = 0,				/* the six comparisons, as WamExprCmp */
	WAM_AOP_GT,
	WAM_AOP_LE,
	WAM_AOP_LT,
	WAM_AOP_EQ,
	WAM_AOP_NE,
	WAM_AOP_BETWEEN,			/* BETWEEN lo AND hi (inclusive) */
	WAM_AOP_IN,					/* IN (v, ...) */
	WAM_AOP_SET,				/* IS SET */
	WAM_AOP_NOT_SET				/* IS NOT SET */
} WamExprAttrOp;

/* ATTR nodes: WamExprNode.field */
#define WAM_ATTR_NAMED	0		/* attr(name): name in name_off */
#define WAM_ATTR_AGE	1		/* age: whole years since attr(birth_date) */

/* Type of a literal value. */
typedef enum WamExprLitType
{
	WAM_LIT_STRING = 1,			/* 'text' ('' for a quote) */
	WAM_LIT_NUMBER,				/* -?(0|[1-9][0-9]*)(.[0-9]+)? */
	WAM_LIT_BOOL				/* true or false (value "true" / "false") */
} WamExprLitType;

/*
 * A literal: a value of an ATTR node, or one detail filter "key = value" of
 * an EVENT node (key_len > 0).  Texts are in WamExprParse.names.
 */
typedef struct WamExprLit
{
	uint8_t		type;			/* WamExprLitType */
	uint8_t		reserved[3];
	uint32_t	key_off;		/* EVENT: the details key as written (quotes
								 * removed, case kept) */
	uint32_t	key_len;
	uint32_t	val_off;		/* the value: unescaped string, number as
								 * written with its sign, "true"/"false" */
	uint32_t	val_len;
	uint32_t	start;			/* byte span of the value in the source */
	uint32_t	end;
	uint32_t	key_start;		/* byte offset of the key in the source */
} WamExprLit;

/* Unit of a "within" window; NONE means no window (all time). */
typedef enum WamExprUnit
{
	WAM_UNIT_NONE = 0,
	WAM_UNIT_HOURS,
	WAM_UNIT_DAYS,
	WAM_UNIT_WEEKS
} WamExprUnit;

typedef struct WamExprNode
{
	uint8_t		kind;			/* WamExprKind */
	uint8_t		cmp;			/* EVENT: WamExprCmp */
	uint8_t		field;			/* FIELD: WamExprField */
	uint8_t		unit;			/* EVENT, FIELD: WamExprUnit */
	uint8_t		negated;		/* EVENT, FIELD: written with "no" */
	uint8_t		quoted;			/* TAG, SEGMENT: name was double-quoted */
	uint8_t		aop;			/* ATTR: WamExprAttrOp */
	uint8_t		reserved;
	int32_t		left;			/* AND/OR/EXCLUDE: index of the left operand;
								 * -1 otherwise */
	int32_t		first;			/* index of the first node of this subtree */
	uint32_t	start;			/* byte span [start, end) in the source,
								 * including enclosing parentheses */
	uint32_t	end;
	uint32_t	depth;			/* 0 for the root, parent's depth + 1 */
	uint32_t	name_off;		/* TAG, SEGMENT: name; EVENT: event kind;
								 * ATTR: attribute name (lower case);
								 * GROUP: group name (lower case) */
	uint32_t	name_len;		/* (offset into WamExprParse.names, which
								 * NUL-terminates every name) */
	int64_t		count;			/* EVENT: the N of "cmp N" (default >= 1) */
	int64_t		window;			/* EVENT, FIELD: amount of unit; 0 if none */
	uint32_t	lit_first;		/* EVENT: detail filters, ATTR: values */
	uint32_t	lit_count;		/* (WamExprParse.lits[lit_first ...]) */
} WamExprNode;

typedef enum WamExprError
{
	WAM_EXPR_OK = 0,
	WAM_EXPR_ERR_EMPTY,			/* nothing but whitespace */
	WAM_EXPR_ERR_UNEXPECTED_CHAR,
	WAM_EXPR_ERR_UNTERMINATED_QUOTE,
	WAM_EXPR_ERR_EMPTY_NAME,	/* "" or @"" */
	WAM_EXPR_ERR_EXPECTED_OPERAND,
	WAM_EXPR_ERR_EXPECTED_OPERATOR,
	WAM_EXPR_ERR_UNMATCHED_OPEN,
	WAM_EXPR_ERR_UNMATCHED_CLOSE,
	WAM_EXPR_ERR_SEGMENT_NAME,	/* "@" not followed by a name */
	WAM_EXPR_ERR_EVENT_OPEN,	/* "event" not followed by "(" */
	WAM_EXPR_ERR_EVENT_KIND,	/* no kind inside event( ) */
	WAM_EXPR_ERR_EVENT_KIND_INVALID,
	WAM_EXPR_ERR_EVENT_CLOSE,	/* no ")" after the kind */
	WAM_EXPR_ERR_NUMBER,		/* no whole number after a comparison */
	WAM_EXPR_ERR_NUMBER_RANGE,
	WAM_EXPR_ERR_DURATION,		/* no duration after "within" */
	WAM_EXPR_ERR_DURATION_UNIT,
	WAM_EXPR_ERR_DURATION_RANGE,
	WAM_EXPR_ERR_NO_PREDICATE,	/* "no" not followed by a predicate */
	WAM_EXPR_ERR_UNTERMINATED_STRING,	/* 'text without its closing quote */
	WAM_EXPR_ERR_DETAIL_KEY,	/* no details key after "," in event( ) */
	WAM_EXPR_ERR_DETAIL_EQ,		/* no "=" after a details key */
	WAM_EXPR_ERR_DETAIL_DUPLICATE,	/* the same key twice */
	WAM_EXPR_ERR_DETAIL_TOO_MANY,	/* more than WAM_EXPR_MAX_FILTERS */
	WAM_EXPR_ERR_VALUE,			/* no 'text', number, true or false */
	WAM_EXPR_ERR_NUMBER_INVALID,	/* a malformed or too long number */
	WAM_EXPR_ERR_ATTR_NAME,		/* no valid attribute name inside attr( ) */
	WAM_EXPR_ERR_ATTR_CLOSE,	/* no ")" after the attribute name */
	WAM_EXPR_ERR_ATTR_TEST,		/* no comparison, BETWEEN, IN or IS after attr(x) */
	WAM_EXPR_ERR_BETWEEN_AND,	/* no AND in BETWEEN x AND y */
	WAM_EXPR_ERR_IN_LIST,		/* IN not followed by "(" v, ... ")" */
	WAM_EXPR_ERR_IS_SET,		/* IS not followed by SET or NOT SET */
	WAM_EXPR_ERR_AGE,			/* age: no comparison or BETWEEN, or a value
								 * that is not a whole number up to 200 */
	WAM_EXPR_ERR_GROUP_NAME,	/* no group name inside group( ) */
	WAM_EXPR_ERR_GROUP_CLOSE,	/* no ")" after the group name */
	WAM_EXPR_ERR_TOO_LONG,		/* limit: source length */
	WAM_EXPR_ERR_TOO_MANY,		/* limit: node count */
	WAM_EXPR_ERR_TOO_DEEP,		/* limit: nesting depth */
	WAM_EXPR_ERR_OUT_OF_MEMORY	/* the allocator returned NULL */
} WamExprError;

/* Allocator: returns size bytes or NULL.  Nothing is ever freed by the
 * parser; the caller owns (and frees) whatever it handed out. */
typedef void *(*WamExprAlloc) (void *arg, size_t size);

typedef struct WamExprLimits
{
	size_t		max_length;
	uint32_t	max_nodes;
	uint32_t	max_depth;
} WamExprLimits;

typedef struct WamExprParse
{
	/* result */
	WamExprNode *nodes;			/* postfix order; the root is last */
	uint32_t	nnodes;
	char	   *names;			/* NUL-terminated names, see name_off */
	size_t		names_len;
	WamExprLit *lits;			/* literals, see lit_first */
	uint32_t	nlits;

	/* error (when the parse returned something other than WAM_EXPR_OK) */
	WamExprError error;
	uint32_t	errpos;			/* byte offset of the offending token */
	uint32_t	errlen;			/* its length in bytes; 0 at end of input */
	bool		err_keyword;	/* the token is a keyword that a tag name
								 * could be confused with */
	uint64_t	errvalue;		/* limit errors: the limit exceeded */
} WamExprParse;

/*
 * Parses len bytes of src (which need not be NUL-terminated and may contain
 * any bytes).  Limits may be NULL for the defaults.  Returns WAM_EXPR_OK and
 * fills out->nodes, or an error code with out->errpos etc. set.  Runs in
 * time linear in len, with stack use independent of the input.
 */
extern WamExprError wam_expr_parse(const char *src, size_t len, int flags,
								   const WamExprLimits *limits,
								   WamExprAlloc alloc, void *alloc_arg,
								   WamExprParse *out);

/* Phrase describing an error; reads as "<phrase> at character N." */
extern const char *wam_expr_error_phrase(WamExprError err);

/* True for the limit errors (too long, too many nodes, too deep). */
extern bool wam_expr_error_is_limit(WamExprError err);

/*
 * True when a name can be written without double quotes and read back as
 * the same name (keywords_ok: after "@", where keywords are names too).
 */
extern bool wam_expr_name_is_bare(const char *name, size_t len, int flags,
								  bool keywords_ok);

/* "h", "d" or "w" for a window unit; "" for none. */
extern const char *wam_expr_unit_suffix(WamExprUnit unit);

/* ">=", ">", ... for a comparison. */
extern const char *wam_expr_cmp_text(WamExprCmp cmp);

/*
 * expr_deparse.c: writes the canonical text of a parsed expression into buf (at most
 * bufsize bytes including a terminating NUL) and returns the length it
 * needs without the NUL (call with bufsize 0 to measure).  Keywords are
 * upper case, every operator's operands that are themselves operators are
 * parenthesised, names are quoted only when they must be, and predicates
 * are spelt out in full, so parsing the text gives the same tree.
 * Allocates a work stack through alloc; returns (size_t) -1 if that fails.
 */
extern size_t wam_expr_deparse(const WamExprParse *parse, int flags,
							   WamExprAlloc alloc, void *alloc_arg,
							   char *buf, size_t bufsize);

#endif							/* WAM_EXPR_PARSE_H */
