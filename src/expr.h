/*-------------------------------------------------------------------------
 *
 * expr.h
 *	  Segment expressions inside the server: preparation (name resolution,
 *	  saved segments, behaviour predicates: expr_prepare.c), evaluation (the
 *	  bitmap algebra: expr_eval.c) and the SQL-callable functions
 *	  (expr_sql.c).
 *
 * One call of wam.audience() & co. works in a WamExprCtx: a memory
 * context that owns everything it allocates, CRoaring bitmaps included
 * (through WamBitmapHolder reset callbacks, see segment.h), and an open SPI
 * connection.  Preparing an expression parses it and resolves every name
 * (tags, saved segments, recursively) without touching a bitmap; problems
 * are returned as a WamExprProblem, so wam.audience_problem() can report them
 * as text and the other functions raise them.  Evaluating then loads all
 * tag bitmaps in one query and runs the postfix program with an explicit
 * value stack.
 *
 * src/expr.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_EXPR_H
#define WAM_EXPR_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/hsearch.h"

#include "expr_parse.h"
#include "segment.h"

/* Saved segments may reference each other this many levels deep. */
#define WAM_EXPR_MAX_SAVED_DEPTH	32

/* Why an expression cannot be evaluated, in ereport() terms. */
typedef struct WamExprProblem
{
	int			sqlerrcode;
	char	   *message;		/* primary message */
	char	   *detail;			/* NULL if none */
	char	   *hint;			/* NULL if none */
	const char *query;			/* text the position refers to, or NULL */
	int			cursorpos;		/* 1-based character position, 0 if none */
	const char *segment;		/* saved segment the problem is in, or NULL */
} WamExprProblem;

/*
 * A set of customers during evaluation: bm, or all customers minus bm when
 * neg is set (so NOT and the complement predicates cost nothing until a
 * result is materialized).  holder is set when the value owns bm alone
 * and may update it in place; shared values (cached tags, saved segments,
 * predicates) have holder NULL and are never modified.
 */
typedef struct WamValue
{
	roaring_bitmap_t *bm;
	WamBitmapHolder *holder;
	bool		neg;
} WamValue;

typedef struct WamExprSaved WamExprSaved;
typedef struct WamExprPred WamExprPred;

/* expr_prepare.c: the cached queries */
typedef enum WamQueryId
{
	WAM_Q_TAGS,					/* $1 text[] -> (ordinal, tag_id, merged_into) */
	WAM_Q_SAVED,				/* $1 text[] -> (ordinal, key, name, expression),
								 * name NULL if unknown */
	WAM_Q_CHUNKS,				/* $1 int4[] -> (tag_id, members) */
	WAM_Q_MERGED,				/* $1 int4 -> merged_into */
	WAM_Q_RENAMED,				/* $1 text -> (tag_id, merged_into) */
	WAM_Q_ATTRS,				/* $1 text[] -> (ordinal, attribute_id,
								 * value_type, allowed_values) */
	WAM_Q_COUNT
} WamQueryId;

typedef enum WamPredQuery
{
	WAM_PQ_EMPTY,				/* no customer: "event(x) < 0" */
	WAM_PQ_EVENT_ANY,			/* at least one event */
	WAM_PQ_EVENT_GE,			/* at least $3 events */
	WAM_PQ_EVENT_EQ,			/* exactly $3 events (>= 1) */
	WAM_PQ_FIELD,				/* a customer timestamp in the window */
	WAM_PQ_REACHABLE,			/* consented and not opted out */
	WAM_PQ_ATTR					/* a customer attribute test: sql, args */
} WamPredQuery;

#define WAM_PRED_MAX_ARGS	6

/* A predicate query with its parameters (hash entry keyed by key). */
struct WamExprPred
{
	char	   *key;			/* canonical form (hash key, must be first) */
	WamPredQuery query;
	int			field;			/* FIELD: WamExprField */
	const char *kind;			/* EVENT: event kind */
	int64		count;			/* EVENT_GE, EVENT_EQ */
	WamExprUnit unit;
	int64		window;
	Datum		details;		/* EVENT: jsonb the details must contain, or 0 */
	int			ndetails;		/* EVENT: how many keys it has */
	Datum		detail_key;		/* EVENT: its first key (text) and value (jsonb): */
	Datum		detail_value;	/* what wam.event_detail's index is searched by */
	char	   *sql;			/* ATTR: the query (fixed fragments only) */
	int			nargs;			/* ATTR: its parameters */
	Oid			argtypes[WAM_PRED_MAX_ARGS];
	Datum		args[WAM_PRED_MAX_ARGS];
	bool		evaluated;
	roaring_bitmap_t *bm;
};

/* A tag's members (hash entry keyed by tag id). */
typedef struct WamExprTag
{
	int32		tag_id;
	roaring_bitmap_t *bm;
} WamExprTag;

/* One parsed expression: the argument, or a saved segment's definition. */
typedef struct WamExprProgram
{
	const char *src;			/* the text (not NUL-terminated) */
	size_t		srclen;
	WamExprSaved *owner;		/* the saved segment, NULL for the argument */
	WamExprParse parse;
	int32	   *tag_ids;		/* per node: TAG's resolved tag id */
	WamExprSaved **segs;		/* per node: SEGMENT's saved segment */
	WamExprPred **preds;		/* per node: EVENT/FIELD/REACHABLE's query */
	bool	   *pred_neg;		/* per node: complement the query's set */
} WamExprProgram;

typedef enum WamSavedState
{
	WAM_SAVED_FOUND,			/* looked up, not yet parsed */
	WAM_SAVED_PREPARING,		/* being resolved (on the current path) */
	WAM_SAVED_READY
} WamSavedState;

/* A saved segment (hash entry keyed by its normalized name). */
struct WamExprSaved
{
	char	   *key;			/* normalized name (hash key, must be first) */
	char	   *name;			/* name as defined */
	char	   *expression;
	WamSavedState state;
	WamExprProgram *prog;
	bool		evaluated;
	WamValue	value;
};

typedef struct WamExprCtx
{
	MemoryContext callercxt;	/* current when the call began: results */
	MemoryContext cxt;			/* owns everything below */
	MemoryContext rowcxt;		/* reset per row read */
	int			parse_flags;	/* WAM_EXPR_UTF8 when the database is UTF-8 */
	TimestampTz now;			/* now(): the transaction start */
	HTAB	   *tags;			/* tag id -> WamExprTag */
	HTAB	   *saved;			/* normalized name -> WamExprSaved */
	HTAB	   *preds;			/* canonical key -> WamExprPred */
	int			saved_depth;	/* saved segments on the preparation path */
	const char *self_key;		/* normalized name of the saved segment being
								 * defined (no @reference may reach it) */
	const char *via;			/* the saved segment named by the argument
								 * that is being prepared */
	bool		tags_loaded;
	roaring_bitmap_t *all;		/* all customers (tag 0), NULL until needed */
	uint64		all_card;
	roaring_bitmap_t *empty;	/* an empty set, NULL until needed */
} WamExprCtx;

/* One row of wam.audience_funnel(). */
typedef struct WamExplainRow
{
	int32		step;
	int32		depth;
	char	   *expression;
	int64		customers;
} WamExplainRow;

/* expr_prepare.c */
extern void wam_expr_select(WamQueryId id, Datum arg);
extern Datum wam_expr_col(int row, int col, bool *isnull);
extern WamExprCtx *wam_expr_begin(void);
extern void wam_expr_end(WamExprCtx *ctx);
extern void wam_expr_set_self(WamExprCtx *ctx, text *self);
extern WamExprProgram *wam_expr_prepare(WamExprCtx *ctx, const char *src,
										size_t len, WamExprProblem **problem);
extern void wam_expr_raise(const WamExprProblem *problem) pg_attribute_noreturn();
extern WamExprProblem *wam_expr_problem(WamExprCtx *ctx, WamExprProgram *prog,
										int sqlerrcode, int64 pos);
extern char *wam_expr_where(const WamExprProblem *p);
extern uint32 wam_expr_leaf_pos(const WamExprProgram *prog, const WamExprNode *n);

/* expr_attr.c */
extern void wam_expr_detail_first(const WamExprParse *pp, const WamExprNode *nd,
								  Datum *key, Datum *value);
extern Datum wam_expr_details(const WamExprParse *pp, const WamExprNode *nd,
							  const char **text);
extern bool wam_expr_resolve_attrs(WamExprCtx *ctx, WamExprProgram *prog,
								   WamExprProblem **problem);
extern char *wam_expr_problem_text(const WamExprProblem *problem);

/* expr_eval.c */
extern int64 wam_expr_run_count(WamExprCtx *ctx, WamExprProgram *prog);
extern roaring_bitmap_t *wam_expr_run_segment(WamExprCtx *ctx,
											  WamExprProgram *prog);
extern WamExplainRow *wam_expr_run_explain(WamExprCtx *ctx,
										   WamExprProgram *prog);

#endif							/* WAM_EXPR_H */
