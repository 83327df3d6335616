/*-------------------------------------------------------------------------
 *
 * expr_parse.c
 *	  Tokenizer and parser of segment expressions (see expr_parse.h).
 *
 * Grammar (keywords are case-insensitive; whitespace separates tokens):
 *
 *		expr	  := term { (OR | "|") term }
 *		term	  := factor { (AND | "&" | EXCLUDE | "-") factor }
 *		factor	  := (NOT | "!") factor | "(" expr ")" | operand
 *		operand   := tag | "@" name | ALL | REACHABLE | [NO] predicate | attribute
 *				   | GROUP "(" name ")"
 *		predicate := EVENT "(" kind { "," key "=" value } ")" [cmp count] [window]
 *				   | ORDERS [cmp count] [window]		(= event(order))
 *				   | (INBOUND | READ | FIRST_ORDER | LAST_ORDER | INTERACTED)
 *					 [window]
 *		window	  := WITHIN number unit | WITHIN number-unit ("7d", "7 days")
 *		attribute := ATTR "(" attr-name ")" test | AGE age-test
 *		test	  := cmp value | BETWEEN value AND value
 *				   | IN "(" value { "," value } ")" | IS [NOT] SET
 *		age-test  := cmp whole | BETWEEN whole AND whole
 *		value	  := "'" { char | "''" } "'" | number | TRUE | FALSE
 *		number	  := ["-"] ("0" | digit1-9 { digit }) ["." digit { digit }]
 *		key		  := bare | '"' { char | '""' } '"'	(details key, case kept)
 *		cmp		  := ">=" | ">" | "<=" | "<" | "=" | "!=" | "<>"
 *		tag, name := bare | '"' { char | '""' } '"'
 *		bare	  := name-char { name-char | "-" }
 *		name-char := ASCII letter or digit | "_" | ":" | "." | any non-ASCII
 *					 character except Unicode white space
 *
 * so NOT binds tighter than AND and EXCLUDE, which bind tighter than OR,
 * and operators of equal precedence group from the left.  A "-" inside a
 * bare name belongs to the name ("cart-abandoned"); as EXCLUDE it must start
 * a token, i.e. follow white space, ")" or a quoted name ("a - b", "a -b").
 * A bare word equal to a keyword is the keyword; such a tag must be quoted.
 * ATTR, GROUP and AGE (and BETWEEN, IN, IS, SET, TRUE, FALSE inside
 * attributes) are keywords only where a tag could not stand: "attr" and
 * "group" before "(", "age" before a comparison or BETWEEN; elsewhere they are tag names, so
 * expressions written before attributes existed keep their meaning.
 * With WAM_EXPR_UTF8, Unicode spaces separate tokens and the fullwidth
 * forms of ! & | ( ) - @ < > = (typed by CJK input methods) are those
 * characters.
 *
 * The parser is an explicit-state operator-precedence (shunting-yard) loop:
 * an operator stack bounded by the nesting limit, one token of look-ahead,
 * no recursion and no allocation after the three up-front buffers, so input
 * of any shape is parsed in linear time and constant stack.
 *
 * src/expr_parse.c
 *
 *-------------------------------------------------------------------------
 */
#include "expr_parse.h"

#include <string.h>

typedef enum WamTokType
{
	TOK_END,
	TOK_WORD,					/* a bare name or keyword */
	TOK_QUOTED,					/* "quoted name" */
	TOK_SEGREF,					/* @name or @"name" */
	TOK_LPAREN,
	TOK_RPAREN,
	TOK_AMP,
	TOK_BAR,
	TOK_MINUS,
	TOK_BANG,
	TOK_CMP,
	TOK_COMMA,
	TOK_STRING					/* 'text': text/text_len inside the quotes */
} WamTokType;

typedef struct WamToken
{
	WamTokType	type;
	uint32_t	start;			/* the whole token */
	uint32_t	len;
	uint32_t	text;			/* WORD: the word; QUOTED, SEGREF: the name
								 * (inside the quotes, escapes not undone) */
	uint32_t	text_len;
	bool		quoted;			/* the name was quoted */
	uint8_t		cmp;			/* CMP: WamExprCmp */
} WamToken;

typedef enum WamKeyword
{
	KW_NONE = 0,
	KW_AND,
	KW_OR,
	KW_NOT,
	KW_EXCLUDE,
	KW_ALL,
	KW_REACHABLE,
	KW_NO,
	KW_EVENT,
	KW_ORDERS,
	KW_INBOUND,
	KW_READ,
	KW_FIRST_ORDER,
	KW_LAST_ORDER,
	KW_INTERACTED,
	KW_CREATED,
	KW_WITHIN
} WamKeyword;

static const struct
{
	const char *word;
	WamKeyword	kw;
}			wam_keywords[] =
{
	{"and", KW_AND},
	{"or", KW_OR},
	{"not", KW_NOT},
	{"exclude", KW_EXCLUDE},
	{"all", KW_ALL},
	{"reachable", KW_REACHABLE},
	{"no", KW_NO},
	{"event", KW_EVENT},
	{"orders", KW_ORDERS},
	{"inbound", KW_INBOUND},
	{"read", KW_READ},
	{"first_order", KW_FIRST_ORDER},
	{"last_order", KW_LAST_ORDER},
	{"interacted", KW_INTERACTED},
	{"created", KW_CREATED},
	{"within", KW_WITHIN}
};

static const struct
{
	const char *word;
	WamExprUnit unit;
}			wam_units[] =
{
	{"h", WAM_UNIT_HOURS}, {"hr", WAM_UNIT_HOURS}, {"hrs", WAM_UNIT_HOURS},
	{"hour", WAM_UNIT_HOURS}, {"hours", WAM_UNIT_HOURS},
	{"d", WAM_UNIT_DAYS}, {"day", WAM_UNIT_DAYS}, {"days", WAM_UNIT_DAYS},
	{"w", WAM_UNIT_WEEKS}, {"wk", WAM_UNIT_WEEKS}, {"wks", WAM_UNIT_WEEKS},
	{"week", WAM_UNIT_WEEKS}, {"weeks", WAM_UNIT_WEEKS}
};

/* Operator stack entries: a binary/NOT WamExprKind or an open parenthesis. */
#define OP_LPAREN	0

typedef struct WamOp
{
	uint8_t		op;
	uint32_t	start;
	uint32_t	len;
} WamOp;

typedef struct WamParser
{
	const uint8_t *src;
	size_t		len;
	size_t		pos;			/* next byte to tokenize */
	int			flags;
	WamExprLimits lim;
	WamExprParse *out;
	uint32_t	cap_nodes;
	size_t		cap_names;
	uint32_t	cap_lits;
	WamOp	   *stack;
	uint32_t	sp;
	uint32_t	cap_stack;
	uint32_t	nest;			/* "(" and NOT entries on the stack */
	bool		have_peek;
	WamToken	peek;
} WamParser;

static const WamExprLimits wam_default_limits = {
	WAM_EXPR_MAX_LENGTH, WAM_EXPR_MAX_NODES, WAM_EXPR_MAX_DEPTH
};

/* -------- characters -------- */

/*
 * Length of the UTF-8 encoded Unicode white space (or BOM / zero width
 * space) at s, or 0.  Matches exact byte sequences only, so invalid UTF-8
 * is harmless: it simply is not white space.
 */
static size_t
wam_unicode_space_len(const uint8_t *s, size_t n)
{
	if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0))
		return 2;				/* U+0085, U+00A0 */
	if (n < 3)
		return 0;
	if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80)
		return 3;				/* U+1680 */
	if (s[0] == 0xE2 && s[1] == 0x80 &&
		((s[2] >= 0x80 && s[2] <= 0x8B) || s[2] == 0xA8 || s[2] == 0xA9 ||
		 s[2] == 0xAF))
		return 3;				/* U+2000..U+200B, U+2028, U+2029, U+202F */
	if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F)
		return 3;				/* U+205F */
	if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80)
		return 3;				/* U+3000 ideographic space */
	if (s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
		return 3;				/* U+FEFF */
	return 0;
}

/* Length of the white space at s, or 0. */
static size_t
wam_space_len(const uint8_t *s, size_t n, int flags)
{
	uint8_t		c = s[0];

	if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
		return 1;
	if (c >= 0x80 && (flags & WAM_EXPR_UTF8))
		return wam_unicode_space_len(s, n);
	return 0;
}

/*
 * The character at s: in UTF-8 mode the fullwidth forms of the operator
 * characters, which CJK input methods type, stand for their ASCII selves
 * (！＆｜（）－＠＜＞＝); anything else is its first byte.  *clen is set to
 * the number of bytes consumed.
 */
static uint8_t
wam_char_at(const uint8_t *s, size_t n, int flags, size_t *clen)
{
	*clen = 1;
	if ((flags & WAM_EXPR_UTF8) && n >= 3 && s[0] == 0xEF)
	{
		uint8_t		c = 0;

		if (s[1] == 0xBC)
		{
			switch (s[2])
			{
				case 0x81:
					c = '!';
					break;
				case 0x86:
					c = '&';
					break;
				case 0x88:
					c = '(';
					break;
				case 0x89:
					c = ')';
					break;
				case 0x8D:
					c = '-';
					break;
				case 0x9C:
					c = '<';
					break;
				case 0x9D:
					c = '=';
					break;
				case 0x9E:
					c = '>';
					break;
				case 0xA0:
					c = '@';
					break;
			}
		}
		else if (s[1] == 0xBD && s[2] == 0x9C)
			c = '|';
		if (c != 0)
		{
			*clen = 3;
			return c;
		}
	}
	return s[0];
}

static inline bool
wam_is_name_ascii(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '-' || c == ':' || c == '.';
}

/*
 * Length of the run of bare-name characters at s (the first may be "-").
 * A fullwidth operator ends the name, except the fullwidth hyphen, which
 * like "-" belongs to it.
 */
static size_t
wam_bare_span(const uint8_t *s, size_t n, int flags)
{
	size_t		i = 0;

	while (i < n)
	{
		uint8_t		c = s[i];

		if (c < 0x80)
		{
			if (!wam_is_name_ascii(c))
				break;
			i++;
		}
		else
		{
			size_t		clen;

			if ((flags & WAM_EXPR_UTF8) && wam_unicode_space_len(s + i, n - i) > 0)
				break;
			c = wam_char_at(s + i, n - i, flags, &clen);
			if (clen > 1 && c != '-')
				break;
			i += clen;
		}
	}
	return i;
}

static inline uint8_t
wam_ascii_lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t) (c + ('a' - 'A')) : c;
}

/* Case-insensitive (ASCII) comparison of s[0..n) with a lower-case word. */
static bool
wam_word_eq(const uint8_t *s, size_t n, const char *word)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		if (word[i] == '\0' || wam_ascii_lower(s[i]) != (uint8_t) word[i])
			return false;
	}
	return word[n] == '\0';
}

static WamKeyword
wam_keyword(const uint8_t *s, size_t n)
{
	size_t		i;

	if (n < 2 || n > 11)
		return KW_NONE;
	for (i = 0; i < sizeof(wam_keywords) / sizeof(wam_keywords[0]); i++)
	{
		if (wam_word_eq(s, n, wam_keywords[i].word))
			return wam_keywords[i].kw;
	}
	return KW_NONE;
}

static WamExprUnit
wam_unit(const uint8_t *s, size_t n)
{
	size_t		i;

	for (i = 0; i < sizeof(wam_units) / sizeof(wam_units[0]); i++)
	{
		if (wam_word_eq(s, n, wam_units[i].word))
			return wam_units[i].unit;
	}
	return WAM_UNIT_NONE;
}

static bool
wam_is_predicate_kw(WamKeyword kw)
{
	return kw == KW_EVENT || kw == KW_ORDERS || kw == KW_INBOUND ||
		kw == KW_READ || kw == KW_FIRST_ORDER || kw == KW_LAST_ORDER ||
		kw == KW_INTERACTED || kw == KW_CREATED;
}

/* -------- errors -------- */

static WamExprError
wam_fail(WamParser *p, WamExprError err, size_t pos, size_t len)
{
	p->out->error = err;
	p->out->errpos = (uint32_t) pos;
	p->out->errlen = (uint32_t) len;
	return err;
}

static WamExprError
wam_fail_at(WamParser *p, WamExprError err, const WamToken *t)
{
	return wam_fail(p, err, t->start, t->len);
}

static WamExprError
wam_fail_limit(WamParser *p, WamExprError err, size_t pos, size_t len,
			   uint64_t limit)
{
	p->out->errvalue = limit;
	return wam_fail(p, err, pos, len);
}

/* -------- tokenizer -------- */

/* Scans a quoted name (or, with q = '\'', a string) whose opening quote is at i. */
static WamExprError
wam_lex_quoted(WamParser *p, size_t i, WamToken *t, uint8_t q)
{
	size_t		j = i + 1;

	for (;;)
	{
		if (j >= p->len)
			return wam_fail(p, q == '"' ? WAM_EXPR_ERR_UNTERMINATED_QUOTE :
							WAM_EXPR_ERR_UNTERMINATED_STRING, i, 1);
		if (p->src[j] == '\0')
			return wam_fail(p, WAM_EXPR_ERR_UNEXPECTED_CHAR, j, 1);
		if (p->src[j] == q)
		{
			if (j + 1 < p->len && p->src[j + 1] == q)
			{
				j += 2;
				continue;
			}
			break;
		}
		j++;
	}
	t->text = (uint32_t) (i + 1);
	t->text_len = (uint32_t) (j - i - 1);
	t->quoted = true;
	if (t->text_len == 0 && q == '"')
		return wam_fail(p, WAM_EXPR_ERR_EMPTY_NAME, t->start, j + 1 - t->start);
	t->len = (uint32_t) (j + 1 - t->start);
	return WAM_EXPR_OK;
}

/* Reads the next token into *t (the look-ahead one if there is one). */
static WamExprError
wam_lex(WamParser *p, WamToken *t)
{
	const uint8_t *s = p->src;
	size_t		n;
	size_t		clen;
	size_t		nlen = 1;
	uint8_t		c;
	uint8_t		next;

	if (p->have_peek)
	{
		*t = p->peek;
		p->have_peek = false;
		return WAM_EXPR_OK;
	}
	while (p->pos < p->len &&
		   (n = wam_space_len(s + p->pos, p->len - p->pos, p->flags)) > 0)
		p->pos += n;

	memset(t, 0, sizeof(*t));
	t->start = (uint32_t) p->pos;
	if (p->pos >= p->len)
	{
		t->type = TOK_END;
		return WAM_EXPR_OK;
	}
	c = wam_char_at(s + p->pos, p->len - p->pos, p->flags, &clen);
	next = p->pos + clen < p->len ?
		wam_char_at(s + p->pos + clen, p->len - p->pos - clen, p->flags, &nlen) : 0;
	t->len = (uint32_t) clen;
	switch (c)
	{
		case '(':
			t->type = TOK_LPAREN;
			break;
		case ')':
			t->type = TOK_RPAREN;
			break;
		case '&':
			t->type = TOK_AMP;
			break;
		case '|':
			t->type = TOK_BAR;
			break;
		case '-':
			t->type = TOK_MINUS;
			break;
		case '!':
			if (next == '=')
			{
				t->type = TOK_CMP;
				t->cmp = WAM_CMP_NE;
				t->len = (uint32_t) (clen + nlen);
			}
			else
				t->type = TOK_BANG;
			break;
		case '>':
			t->type = TOK_CMP;
			t->cmp = next == '=' ? WAM_CMP_GE : WAM_CMP_GT;
			if (next == '=')
				t->len = (uint32_t) (clen + nlen);
			break;
		case '<':
			t->type = TOK_CMP;
			if (next == '=')
			{
				t->cmp = WAM_CMP_LE;
				t->len = (uint32_t) (clen + nlen);
			}
			else if (next == '>')
			{
				t->cmp = WAM_CMP_NE;
				t->len = (uint32_t) (clen + nlen);
			}
			else
				t->cmp = WAM_CMP_LT;
			break;
		case '=':
			t->type = TOK_CMP;
			t->cmp = WAM_CMP_EQ;
			if (next == '=')
				t->len = (uint32_t) (clen + nlen);
			break;
		case ',':
			t->type = TOK_COMMA;
			break;
		case '\'':
			{
				WamExprError rc = wam_lex_quoted(p, p->pos, t, '\'');

				if (rc != WAM_EXPR_OK)
					return rc;
				t->type = TOK_STRING;
				break;
			}
		case '"':
			{
				WamExprError rc = wam_lex_quoted(p, p->pos, t, '"');

				if (rc != WAM_EXPR_OK)
					return rc;
				t->type = TOK_QUOTED;
				break;
			}
		case '@':
			t->type = TOK_SEGREF;
			if (next == '"' && nlen == 1)
			{
				WamExprError rc = wam_lex_quoted(p, p->pos + clen, t, '"');

				if (rc != WAM_EXPR_OK)
					return rc;
			}
			else
			{
				n = next == '-' ? 0 :
					wam_bare_span(s + p->pos + clen, p->len - p->pos - clen, p->flags);
				if (n == 0)
					return wam_fail(p, WAM_EXPR_ERR_SEGMENT_NAME, p->pos, clen);
				t->text = (uint32_t) (p->pos + clen);
				t->text_len = (uint32_t) n;
				t->len = (uint32_t) (n + clen);
			}
			break;
		default:
			n = wam_bare_span(s + p->pos, p->len - p->pos, p->flags);
			if (n == 0)
				return wam_fail(p, WAM_EXPR_ERR_UNEXPECTED_CHAR, p->pos, 1);
			t->type = TOK_WORD;
			t->text = t->start;
			t->text_len = (uint32_t) n;
			t->len = (uint32_t) n;
			break;
	}
	p->pos += t->len;
	return WAM_EXPR_OK;
}

/* Looks at the next token without consuming it. */
static WamExprError
wam_peek(WamParser *p, WamToken *t)
{
	if (!p->have_peek)
	{
		WamExprError rc = wam_lex(p, &p->peek);

		if (rc != WAM_EXPR_OK)
			return rc;
		p->have_peek = true;
	}
	*t = p->peek;
	return WAM_EXPR_OK;
}

static WamKeyword
wam_token_keyword(const WamParser *p, const WamToken *t)
{
	if (t->type != TOK_WORD)
		return KW_NONE;
	return wam_keyword(p->src + t->text, t->text_len);
}

/* -------- output -------- */

static WamExprError
wam_new_node(WamParser *p, const WamToken *at, WamExprNode **node)
{
	WamExprParse *out = p->out;
	WamExprNode *n;

	if (out->nnodes >= p->lim.max_nodes || out->nnodes >= p->cap_nodes)
		return wam_fail_limit(p, WAM_EXPR_ERR_TOO_MANY, at->start, at->len,
							  p->lim.max_nodes);
	n = &out->nodes[out->nnodes];
	memset(n, 0, sizeof(*n));
	n->left = -1;
	n->first = (int32_t) out->nnodes;
	out->nnodes++;
	*node = n;
	return WAM_EXPR_OK;
}

/*
 * Appends a name to the names buffer, undoing "" escapes when quoted and
 * folding ASCII to lower case when lower.  Cannot overflow: every name
 * comes from distinct source bytes and the buffer has room for all of them
 * plus one NUL per possible node.
 */
static void
wam_add_text(WamParser *p, const uint8_t *s, size_t len, uint8_t quote,
			 bool lower, uint32_t *off, uint32_t *outlen)
{
	WamExprParse *out = p->out;
	char	   *dst = out->names + out->names_len;
	size_t		i;
	size_t		k = 0;

	for (i = 0; i < len; i++)
	{
		uint8_t		c = s[i];

		if (quote != 0 && c == quote)
			i++;				/* the first of a "" or '' pair */
		dst[k++] = (char) (lower ? wam_ascii_lower(c) : c);
	}
	dst[k] = '\0';
	*off = (uint32_t) out->names_len;
	*outlen = (uint32_t) k;
	out->names_len += k + 1;
}

static void
wam_add_name(WamParser *p, WamExprNode *n, const uint8_t *s, size_t len,
			 bool quoted, bool lower)
{
	wam_add_text(p, s, len, quoted ? '"' : 0, lower, &n->name_off, &n->name_len);
}

/* Emits a NOT or binary node for an operator popped off the stack. */
static WamExprError
wam_emit_op(WamParser *p, const WamOp *op)
{
	WamExprParse *out = p->out;
	WamToken	at;
	WamExprNode *n;
	WamExprError rc;
	int32_t		self = (int32_t) out->nnodes;
	int32_t		right = self - 1;

	memset(&at, 0, sizeof(at));
	at.start = op->start;
	at.len = op->len;
	rc = wam_new_node(p, &at, &n);
	if (rc != WAM_EXPR_OK)
		return rc;
	n->kind = op->op;
	if (op->op == WAM_EXPR_NOT)
	{
		n->first = out->nodes[right].first;
		n->start = op->start;
	}
	else
	{
		int32_t		left = out->nodes[right].first - 1;

		n->left = left;
		n->first = out->nodes[left].first;
		n->start = out->nodes[left].start;
	}
	n->end = out->nodes[right].end;
	return WAM_EXPR_OK;
}

static WamExprError
wam_push_op(WamParser *p, uint8_t op, const WamToken *t)
{
	if (op == OP_LPAREN || op == WAM_EXPR_NOT)
	{
		if (p->nest >= p->lim.max_depth)
			return wam_fail_limit(p, WAM_EXPR_ERR_TOO_DEEP, t->start, t->len,
								  p->lim.max_depth);
		p->nest++;
	}
	/* cannot happen: at most two binary operators per nesting level */
	if (p->sp >= p->cap_stack)
		return wam_fail_limit(p, WAM_EXPR_ERR_TOO_DEEP, t->start, t->len,
							  p->lim.max_depth);
	p->stack[p->sp].op = op;
	p->stack[p->sp].start = t->start;
	p->stack[p->sp].len = t->len;
	p->sp++;
	return WAM_EXPR_OK;
}

/* Pops the top operator and emits it (it must not be a parenthesis). */
static WamExprError
wam_pop_emit(WamParser *p)
{
	WamOp		op = p->stack[--p->sp];

	if (op.op == WAM_EXPR_NOT)
		p->nest--;
	return wam_emit_op(p, &op);
}

static int
wam_precedence(uint8_t op)
{
	switch (op)
	{
		case WAM_EXPR_NOT:
			return 3;
		case WAM_EXPR_AND:
		case WAM_EXPR_EXCLUDE:
			return 2;
		case WAM_EXPR_OR:
			return 1;
		default:
			return 0;			/* OP_LPAREN */
	}
}

/* -------- operands -------- */

/* A name operand: tag (bare or quoted) or saved segment reference. */
static WamExprError
wam_name_operand(WamParser *p, const WamToken *t, WamExprKind kind)
{
	WamExprNode *n;
	WamExprError rc = wam_new_node(p, t, &n);

	if (rc != WAM_EXPR_OK)
		return rc;
	n->kind = kind;
	n->quoted = t->quoted;
	n->start = t->start;
	n->end = t->start + t->len;
	wam_add_name(p, n, p->src + t->text, t->text_len, t->quoted, false);
	return WAM_EXPR_OK;
}

static WamExprError
wam_simple_operand(WamParser *p, const WamToken *t, WamExprKind kind)
{
	WamExprNode *n;
	WamExprError rc = wam_new_node(p, t, &n);

	if (rc != WAM_EXPR_OK)
		return rc;
	n->kind = kind;
	n->start = t->start;
	n->end = t->start + t->len;
	return WAM_EXPR_OK;
}

/* Parses the whole number of a token; false if it is not one. */
static bool
wam_parse_count(const WamParser *p, const WamToken *t, int64_t *value)
{
	const uint8_t *s = p->src + t->text;
	uint64_t	v = 0;
	uint32_t	i;

	if (t->type != TOK_WORD)
		return false;
	for (i = 0; i < t->text_len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		/* saturate instead of overflowing; the caller checks the range */
		if (v <= (uint64_t) WAM_EXPR_MAX_COUNT)
			v = v * 10 + (uint64_t) (s[i] - '0');
	}
	*value = (int64_t) v;
	return true;
}

/* Parses the duration after "within": "7d", "7 days", "48h", "2w". */
static WamExprError
wam_parse_window(WamParser *p, WamExprNode *n, uint32_t *end)
{
	WamToken	t;
	WamToken	u;
	WamExprError rc;
	const uint8_t *s;
	uint32_t	i = 0;
	uint64_t	v = 0;
	WamExprUnit unit;
	uint64_t	max;

	if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
		return rc;
	if (t.type != TOK_WORD)
		return wam_fail_at(p, WAM_EXPR_ERR_DURATION, &t);
	s = p->src + t.text;
	while (i < t.text_len && s[i] >= '0' && s[i] <= '9')
	{
		if (v <= (uint64_t) WAM_EXPR_MAX_COUNT)
			v = v * 10 + (uint64_t) (s[i] - '0');
		i++;
	}
	if (i == 0)
		return wam_fail_at(p, WAM_EXPR_ERR_DURATION, &t);
	*end = t.start + t.len;
	if (i == t.text_len)
	{
		/* "7 days": the unit is the next word */
		if ((rc = wam_peek(p, &u)) != WAM_EXPR_OK)
			return rc;
		unit = u.type == TOK_WORD ? wam_unit(p->src + u.text, u.text_len) : WAM_UNIT_NONE;
		if (unit == WAM_UNIT_NONE)
			return wam_fail_at(p, WAM_EXPR_ERR_DURATION_UNIT, &u);
		p->have_peek = false;
		*end = u.start + u.len;
	}
	else
	{
		unit = wam_unit(s + i, t.text_len - i);
		if (unit == WAM_UNIT_NONE)
			return wam_fail_at(p, WAM_EXPR_ERR_DURATION_UNIT, &t);
	}
	max = unit == WAM_UNIT_HOURS ? WAM_EXPR_MAX_HOURS :
		unit == WAM_UNIT_DAYS ? WAM_EXPR_MAX_DAYS : WAM_EXPR_MAX_WEEKS;
	if (v == 0 || v > max)
		return wam_fail_at(p, WAM_EXPR_ERR_DURATION_RANGE, &t);
	n->unit = (uint8_t) unit;
	n->window = (int64_t) v;
	return WAM_EXPR_OK;
}

/* Checks (and lower-cases) an event kind: ^[a-z][a-z0-9_]*$. */
static bool
wam_valid_kind(const uint8_t *s, size_t len)
{
	size_t		i;

	if (len == 0 || len > WAM_EXPR_MAX_KIND)
		return false;
	for (i = 0; i < len; i++)
	{
		uint8_t		c = wam_ascii_lower(s[i]);

		if (!((c >= 'a' && c <= 'z') ||
			  (i > 0 && ((c >= '0' && c <= '9') || c == '_'))))
			return false;
	}
	return true;
}

static WamExprError wam_parse_filters(WamParser *p, WamExprNode *n, uint32_t *end);

/* Parses a behaviour predicate; t0 is its first word (the keyword or "no"). */
static WamExprError
wam_parse_predicate(WamParser *p, const WamToken *t0, WamKeyword kw)
{
	WamExprNode *n;
	WamExprError rc;
	WamToken	t;
	bool		negated = false;
	uint32_t	end = t0->start + t0->len;

	if (kw == KW_NO)
	{
		if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
			return rc;
		kw = wam_token_keyword(p, &t);
		if (!wam_is_predicate_kw(kw))
			return wam_fail_at(p, WAM_EXPR_ERR_NO_PREDICATE, &t);
		negated = true;
		end = t.start + t.len;
	}
	if ((rc = wam_new_node(p, t0, &n)) != WAM_EXPR_OK)
		return rc;
	n->negated = negated;
	n->start = t0->start;
	n->cmp = WAM_CMP_GE;
	n->count = 1;

	switch (kw)
	{
		case KW_EVENT:
			n->kind = WAM_EXPR_EVENT;
			if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
				return rc;
			if (t.type != TOK_LPAREN)
				return wam_fail_at(p, WAM_EXPR_ERR_EVENT_OPEN, &t);
			if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
				return rc;
			if (t.type != TOK_WORD && t.type != TOK_QUOTED)
				return wam_fail_at(p, WAM_EXPR_ERR_EVENT_KIND, &t);
			if (!wam_valid_kind(p->src + t.text, t.text_len))
				return wam_fail_at(p, WAM_EXPR_ERR_EVENT_KIND_INVALID, &t);
			wam_add_name(p, n, p->src + t.text, t.text_len, false, true);
			if ((rc = wam_parse_filters(p, n, &end)) != WAM_EXPR_OK)
				return rc;
			break;
		case KW_ORDERS:
			n->kind = WAM_EXPR_EVENT;
			wam_add_name(p, n, (const uint8_t *) "order", 5, false, false);
			break;
		case KW_INBOUND:
		case KW_READ:
		case KW_FIRST_ORDER:
		case KW_LAST_ORDER:
		case KW_INTERACTED:
		case KW_CREATED:
			n->kind = WAM_EXPR_FIELD;
			n->field = kw == KW_INBOUND ? WAM_FIELD_INBOUND :
				kw == KW_READ ? WAM_FIELD_READ :
				kw == KW_FIRST_ORDER ? WAM_FIELD_FIRST_ORDER :
				kw == KW_LAST_ORDER ? WAM_FIELD_LAST_ORDER :
				kw == KW_CREATED ? WAM_FIELD_CREATED : WAM_FIELD_INTERACTED;
			break;
		default:
			return wam_fail_at(p, WAM_EXPR_ERR_NO_PREDICATE, t0);	/* not reached */
	}

	/* event counts: "event(x) >= 3" */
	if (n->kind == WAM_EXPR_EVENT)
	{
		if ((rc = wam_peek(p, &t)) != WAM_EXPR_OK)
			return rc;
		if (t.type == TOK_CMP)
		{
			p->have_peek = false;
			n->cmp = t.cmp;
			if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
				return rc;
			if (!wam_parse_count(p, &t, &n->count))
				return wam_fail_at(p, WAM_EXPR_ERR_NUMBER, &t);
			if (n->count > WAM_EXPR_MAX_COUNT)
				return wam_fail_at(p, WAM_EXPR_ERR_NUMBER_RANGE, &t);
			end = t.start + t.len;
		}
	}

	/* the window: "within 7d" */
	if ((rc = wam_peek(p, &t)) != WAM_EXPR_OK)
		return rc;
	if (wam_token_keyword(p, &t) == KW_WITHIN)
	{
		p->have_peek = false;
		if ((rc = wam_parse_window(p, n, &end)) != WAM_EXPR_OK)
			return rc;
	}
	n->end = end;
	return WAM_EXPR_OK;
}

/* -------- literals -------- */

static WamExprError
wam_new_lit(WamParser *p, WamExprNode *n, const WamToken *at, WamExprLit **lit)
{
	WamExprParse *out = p->out;
	WamExprLit *l;

	/* literals count against the node limit: they take the same room */
	if (out->nlits >= p->lim.max_nodes || out->nlits >= p->cap_lits)
		return wam_fail_limit(p, WAM_EXPR_ERR_TOO_MANY, at->start, at->len,
							  p->lim.max_nodes);
	l = &out->lits[out->nlits];
	memset(l, 0, sizeof(*l));
	if (n->lit_count == 0)
		n->lit_first = out->nlits;
	n->lit_count++;
	out->nlits++;
	*lit = l;
	return WAM_EXPR_OK;
}

/* True when s[0..n) is a number: (0|[1-9][0-9]*)(.[0-9]+)? */
static bool
wam_is_number(const uint8_t *s, size_t n)
{
	size_t		i = 0;

	if (n == 0 || s[0] < '0' || s[0] > '9' || (s[0] == '0' && n > 1 && s[1] != '.'))
		return false;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i < n)
	{
		if (s[i] != '.' || i + 1 >= n)
			return false;
		for (i++; i < n; i++)
		{
			if (s[i] < '0' || s[i] > '9')
				return false;
		}
	}
	return true;
}

/*
 * Parses a value into a new literal of n: 'text', a number (optionally
 * negative: "-" right before it) or true/false.  *end is set past it.
 */
static WamExprError
wam_parse_value(WamParser *p, WamExprNode *n, WamExprLit **litp, uint32_t *end)
{
	WamToken	t;
	WamToken	num;
	WamExprError rc;
	WamExprLit *lit;
	const uint8_t *s;
	bool		neg = false;

	if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
		return rc;
	num = t;
	if (t.type == TOK_MINUS)
	{
		if ((rc = wam_peek(p, &num)) != WAM_EXPR_OK)
			return rc;
		if (num.type != TOK_WORD || num.start != t.start + t.len ||
			p->src[num.text] < '0' || p->src[num.text] > '9')
			return wam_fail_at(p, WAM_EXPR_ERR_VALUE, &t);
		p->have_peek = false;
		neg = true;
	}
	else if (t.type != TOK_STRING && t.type != TOK_WORD)
		return wam_fail_at(p, WAM_EXPR_ERR_VALUE, &t);
	if ((rc = wam_new_lit(p, n, &t, &lit)) != WAM_EXPR_OK)
		return rc;
	lit->start = t.start;
	lit->end = num.start + num.len;
	*end = lit->end;
	s = p->src + num.text;
	if (t.type == TOK_STRING)
	{
		lit->type = WAM_LIT_STRING;
		wam_add_text(p, s, num.text_len, '\'', false, &lit->val_off, &lit->val_len);
	}
	else if (!neg && (wam_word_eq(s, num.text_len, "true") ||
					  wam_word_eq(s, num.text_len, "false")))
	{
		lit->type = WAM_LIT_BOOL;
		wam_add_text(p, s, num.text_len, 0, true, &lit->val_off, &lit->val_len);
	}
	else if (s[0] >= '0' && s[0] <= '9')
	{
		if (!wam_is_number(s, num.text_len) ||
			num.text_len + (neg ? 1 : 0) > WAM_EXPR_MAX_NUMBER)
			return wam_fail_at(p, WAM_EXPR_ERR_NUMBER_INVALID, &num);
		lit->type = WAM_LIT_NUMBER;
		/* "-" and the digits are adjacent in the source: one span */
		wam_add_text(p, p->src + lit->start, lit->end - lit->start, 0, false,
					 &lit->val_off, &lit->val_len);
	}
	else
		return wam_fail_at(p, WAM_EXPR_ERR_VALUE, &t);
	*litp = lit;
	return WAM_EXPR_OK;
}

/*
 * The detail filters of event(kind, key = value, ...), after the kind; the
 * closing ")" is consumed and *end set past it.
 */
static WamExprError
wam_parse_filters(WamParser *p, WamExprNode *n, uint32_t *end)
{
	WamToken	t;
	WamExprError rc;

	for (;;)
	{
		WamToken	key;
		WamExprLit *lit;
		uint32_t	key_off;
		uint32_t	key_len;
		uint32_t	vend;
		uint32_t	k;

		if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
			return rc;
		if (t.type == TOK_RPAREN)
		{
			*end = t.start + t.len;
			return WAM_EXPR_OK;
		}
		if (t.type != TOK_COMMA)
			return wam_fail_at(p, WAM_EXPR_ERR_EVENT_CLOSE, &t);
		if ((rc = wam_lex(p, &key)) != WAM_EXPR_OK)
			return rc;
		if ((key.type != TOK_WORD && key.type != TOK_QUOTED) ||
			key.text_len == 0 || key.text_len > WAM_EXPR_MAX_KEY ||
			(key.type == TOK_WORD && p->src[key.text] == '-'))
			return wam_fail_at(p, WAM_EXPR_ERR_DETAIL_KEY, &key);
		if (n->lit_count >= WAM_EXPR_MAX_FILTERS)
			return wam_fail_at(p, WAM_EXPR_ERR_DETAIL_TOO_MANY, &key);
		if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
			return rc;
		if (t.type != TOK_CMP || t.cmp != WAM_CMP_EQ)
			return wam_fail_at(p, WAM_EXPR_ERR_DETAIL_EQ, &t);
		wam_add_text(p, p->src + key.text, key.text_len, key.quoted ? '"' : 0, false,
					 &key_off, &key_len);
		for (k = 0; k < n->lit_count; k++)
		{
			const WamExprLit *o = &p->out->lits[n->lit_first + k];

			if (o->key_len == key_len &&
				memcmp(p->out->names + o->key_off, p->out->names + key_off, key_len) == 0)
				return wam_fail_at(p, WAM_EXPR_ERR_DETAIL_DUPLICATE, &key);
		}
		if ((rc = wam_parse_value(p, n, &lit, &vend)) != WAM_EXPR_OK)
			return rc;
		lit->key_off = key_off;
		lit->key_len = key_len;
		lit->key_start = key.start;
	}
}

/* A whole number up to WAM_EXPR_MAX_AGE as the next value of an age test. */
static WamExprError
wam_parse_age(WamParser *p, WamExprNode *n, uint32_t *end)
{
	WamToken	t;
	WamExprError rc;
	WamExprLit *lit;
	int64_t		v;

	if ((rc = wam_peek(p, &t)) != WAM_EXPR_OK)
		return rc;
	if (!wam_parse_count(p, &t, &v) || v > WAM_EXPR_MAX_AGE ||
		(t.text_len > 1 && p->src[t.text] == '0'))
		return wam_fail_at(p, WAM_EXPR_ERR_AGE, &t);
	return wam_parse_value(p, n, &lit, end);
}

/*
 * attr(name) test, or age test (age: t0 is the word "age"); the node is
 * an ATTR with aop and its values as literals.
 */
static WamExprError
wam_parse_attr(WamParser *p, const WamToken *t0, bool age)
{
	WamExprNode *n;
	WamExprError rc;
	WamToken	t;
	WamExprLit *lit;
	uint32_t	end = t0->start + t0->len;

	if ((rc = wam_new_node(p, t0, &n)) != WAM_EXPR_OK)
		return rc;
	n->kind = WAM_EXPR_ATTR;
	n->start = t0->start;
	n->cmp = WAM_CMP_GE;
	n->count = 1;
	n->field = age ? WAM_ATTR_AGE : WAM_ATTR_NAMED;
	if (!age)
	{
		if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)	/* "(", peeked by the caller */
			return rc;
		if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
			return rc;
		if ((t.type != TOK_WORD && t.type != TOK_QUOTED) ||
			!wam_valid_kind(p->src + t.text, t.text_len))
			return wam_fail_at(p, WAM_EXPR_ERR_ATTR_NAME, &t);
		wam_add_name(p, n, p->src + t.text, t.text_len, false, true);
		if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
			return rc;
		if (t.type != TOK_RPAREN)
			return wam_fail_at(p, WAM_EXPR_ERR_ATTR_CLOSE, &t);
	}

	if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
		return rc;
	if (t.type == TOK_CMP)
	{
		n->aop = t.cmp;			/* WamExprAttrOp starts with the comparisons */
		rc = age ? wam_parse_age(p, n, &end) : wam_parse_value(p, n, &lit, &end);
	}
	else if (t.type == TOK_WORD && wam_word_eq(p->src + t.text, t.text_len, "between"))
	{
		n->aop = WAM_AOP_BETWEEN;
		rc = age ? wam_parse_age(p, n, &end) : wam_parse_value(p, n, &lit, &end);
		if (rc != WAM_EXPR_OK)
			return rc;
		if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
			return rc;
		if (wam_token_keyword(p, &t) != KW_AND)
			return wam_fail_at(p, WAM_EXPR_ERR_BETWEEN_AND, &t);
		rc = age ? wam_parse_age(p, n, &end) : wam_parse_value(p, n, &lit, &end);
	}
	else if (age)
		return wam_fail_at(p, WAM_EXPR_ERR_AGE, &t);
	else if (t.type == TOK_WORD && wam_word_eq(p->src + t.text, t.text_len, "in"))
	{
		n->aop = WAM_AOP_IN;
		if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
			return rc;
		if (t.type != TOK_LPAREN)
			return wam_fail_at(p, WAM_EXPR_ERR_IN_LIST, &t);
		for (;;)
		{
			if ((rc = wam_parse_value(p, n, &lit, &end)) != WAM_EXPR_OK)
				return rc;
			if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
				return rc;
			if (t.type == TOK_RPAREN)
				break;
			if (t.type != TOK_COMMA)
				return wam_fail_at(p, WAM_EXPR_ERR_IN_LIST, &t);
		}
		end = t.start + t.len;
	}
	else if (t.type == TOK_WORD && wam_word_eq(p->src + t.text, t.text_len, "is"))
	{
		n->aop = WAM_AOP_SET;
		if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
			return rc;
		if (wam_token_keyword(p, &t) == KW_NOT)
		{
			n->aop = WAM_AOP_NOT_SET;
			if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
				return rc;
		}
		if (t.type != TOK_WORD || !wam_word_eq(p->src + t.text, t.text_len, "set"))
			return wam_fail_at(p, WAM_EXPR_ERR_IS_SET, &t);
		end = t.start + t.len;
	}
	else
		return wam_fail_at(p, WAM_EXPR_ERR_ATTR_TEST, &t);
	if (rc != WAM_EXPR_OK)
		return rc;
	n->end = end;
	return WAM_EXPR_OK;
}

/*
 * group(name): the current members of a group (t0 is the word "group",
 * the "(" was peeked by the caller).  The name, bare or quoted, is kept in
 * lower case, as group names are slugs.
 */
static WamExprError
wam_parse_group(WamParser *p, const WamToken *t0)
{
	WamExprNode *n;
	WamExprError rc;
	WamToken	t;

	if ((rc = wam_new_node(p, t0, &n)) != WAM_EXPR_OK)
		return rc;
	n->kind = WAM_EXPR_GROUP;
	n->start = t0->start;
	if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)	/* "(" */
		return rc;
	if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
		return rc;
	if (t.type != TOK_WORD && t.type != TOK_QUOTED)
		return wam_fail_at(p, WAM_EXPR_ERR_GROUP_NAME, &t);
	n->quoted = t.quoted;
	wam_add_name(p, n, p->src + t.text, t.text_len, t.quoted, true);
	if ((rc = wam_lex(p, &t)) != WAM_EXPR_OK)
		return rc;
	if (t.type != TOK_RPAREN)
		return wam_fail_at(p, WAM_EXPR_ERR_GROUP_CLOSE, &t);
	n->end = t.start + t.len;
	return WAM_EXPR_OK;
}

/* -------- the parser -------- */

WamExprError
wam_expr_parse(const char *src, size_t len, int flags,
			   const WamExprLimits *limits,
			   WamExprAlloc alloc, void *alloc_arg, WamExprParse *out)
{
	WamParser	p;
	WamToken	t;
	WamExprError rc;
	bool		expect_operand = true;
	int64_t		i;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	p.src = (const uint8_t *) src;
	p.len = len;
	p.flags = flags;
	p.lim = limits ? *limits : wam_default_limits;
	if (p.lim.max_depth == 0)
		p.lim.max_depth = 1;
	p.out = out;

	if (len > p.lim.max_length)
		return wam_fail_limit(&p, WAM_EXPR_ERR_TOO_LONG, 0, 0, p.lim.max_length);

	/* every node consumes at least one byte of the source */
	p.cap_nodes = (uint32_t) (len < p.lim.max_nodes ? len + 1 : p.lim.max_nodes);
	/* names, keys and values (each from its own source bytes) and a NUL for each */
	p.cap_lits = p.cap_nodes;
	p.cap_names = len + p.cap_nodes + 2 * (size_t) p.cap_lits + 1;
	p.cap_stack = 3 * p.lim.max_depth + 4;
	out->nodes = alloc(alloc_arg, sizeof(WamExprNode) * p.cap_nodes);
	out->names = alloc(alloc_arg, p.cap_names);
	out->lits = alloc(alloc_arg, sizeof(WamExprLit) * p.cap_lits);
	p.stack = alloc(alloc_arg, sizeof(WamOp) * p.cap_stack);
	if (out->nodes == NULL || out->names == NULL || out->lits == NULL || p.stack == NULL)
		return wam_fail(&p, WAM_EXPR_ERR_OUT_OF_MEMORY, 0, 0);

	for (;;)
	{
		if ((rc = wam_lex(&p, &t)) != WAM_EXPR_OK)
			return rc;
		/* values and "," belong inside predicates: elsewhere, as before they
		 * existed, the character itself is the error */
		if (t.type == TOK_STRING || t.type == TOK_COMMA)
			return wam_fail(&p, WAM_EXPR_ERR_UNEXPECTED_CHAR, t.start, 1);

		if (expect_operand)
		{
			WamKeyword	kw;

			switch (t.type)
			{
				case TOK_LPAREN:
					rc = wam_push_op(&p, OP_LPAREN, &t);
					break;
				case TOK_BANG:
					rc = wam_push_op(&p, WAM_EXPR_NOT, &t);
					break;
				case TOK_QUOTED:
					rc = wam_name_operand(&p, &t, WAM_EXPR_TAG);
					expect_operand = false;
					break;
				case TOK_SEGREF:
					rc = wam_name_operand(&p, &t, WAM_EXPR_SEGMENT);
					expect_operand = false;
					break;
				case TOK_WORD:
					kw = wam_token_keyword(&p, &t);
					if (kw == KW_NOT)
						rc = wam_push_op(&p, WAM_EXPR_NOT, &t);
					else if (kw == KW_ALL || kw == KW_REACHABLE)
					{
						rc = wam_simple_operand(&p, &t, kw == KW_ALL ?
												WAM_EXPR_ALL : WAM_EXPR_REACHABLE);
						expect_operand = false;
					}
					else if (kw == KW_NO || wam_is_predicate_kw(kw))
					{
						rc = wam_parse_predicate(&p, &t, kw);
						expect_operand = false;
					}
					else if (kw == KW_NONE)
					{
						WamToken	nx;
						bool		is_attr = wam_word_eq(p.src + t.text, t.text_len, "attr");
						bool		is_age = wam_word_eq(p.src + t.text, t.text_len, "age");
						bool		is_group = wam_word_eq(p.src + t.text, t.text_len, "group");

						if (is_attr || is_age || is_group)
						{
							if ((rc = wam_peek(&p, &nx)) != WAM_EXPR_OK)
								return rc;
							is_attr = is_attr && nx.type == TOK_LPAREN;
							is_group = is_group && nx.type == TOK_LPAREN;
							is_age = is_age && (nx.type == TOK_CMP ||
												(nx.type == TOK_WORD &&
												 wam_word_eq(p.src + nx.text, nx.text_len, "between")));
						}
						if (is_group)
							rc = wam_parse_group(&p, &t);
						else if (is_attr || is_age)
							rc = wam_parse_attr(&p, &t, is_age);
						else
							rc = wam_name_operand(&p, &t, WAM_EXPR_TAG);
						expect_operand = false;
					}
					else
					{
						/* AND, OR, EXCLUDE or WITHIN where a tag belongs */
						out->err_keyword = true;
						rc = wam_fail_at(&p, WAM_EXPR_ERR_EXPECTED_OPERAND, &t);
					}
					break;
				case TOK_END:
					if (out->nnodes == 0 && p.sp == 0)
						rc = wam_fail(&p, WAM_EXPR_ERR_EMPTY, 0, 0);
					else
						rc = wam_fail_at(&p, WAM_EXPR_ERR_EXPECTED_OPERAND, &t);
					break;
				default:
					rc = wam_fail_at(&p, WAM_EXPR_ERR_EXPECTED_OPERAND, &t);
					break;
			}
			if (rc != WAM_EXPR_OK)
				return rc;
			continue;
		}

		/* expecting an operator, ")" or the end */
		{
			uint8_t		bin = 0;

			switch (t.type)
			{
				case TOK_AMP:
					bin = WAM_EXPR_AND;
					break;
				case TOK_BAR:
					bin = WAM_EXPR_OR;
					break;
				case TOK_MINUS:
					bin = WAM_EXPR_EXCLUDE;
					break;
				case TOK_WORD:
					switch (wam_token_keyword(&p, &t))
					{
						case KW_AND:
							bin = WAM_EXPR_AND;
							break;
						case KW_OR:
							bin = WAM_EXPR_OR;
							break;
						case KW_EXCLUDE:
							bin = WAM_EXPR_EXCLUDE;
							break;
						default:
							return wam_fail_at(&p, WAM_EXPR_ERR_EXPECTED_OPERATOR, &t);
					}
					break;
				case TOK_RPAREN:
					while (p.sp > 0 && p.stack[p.sp - 1].op != OP_LPAREN)
					{
						if ((rc = wam_pop_emit(&p)) != WAM_EXPR_OK)
							return rc;
					}
					if (p.sp == 0)
						return wam_fail_at(&p, WAM_EXPR_ERR_UNMATCHED_CLOSE, &t);
					p.sp--;
					p.nest--;
					/* the group's root now spans its parentheses */
					out->nodes[out->nnodes - 1].start = p.stack[p.sp].start;
					out->nodes[out->nnodes - 1].end = t.start + t.len;
					continue;
				case TOK_END:
					while (p.sp > 0)
					{
						if (p.stack[p.sp - 1].op == OP_LPAREN)
							return wam_fail(&p, WAM_EXPR_ERR_UNMATCHED_OPEN,
											p.stack[p.sp - 1].start, 1);
						if ((rc = wam_pop_emit(&p)) != WAM_EXPR_OK)
							return rc;
					}
					break;
				default:
					return wam_fail_at(&p, WAM_EXPR_ERR_EXPECTED_OPERATOR, &t);
			}
			if (t.type == TOK_END)
				break;

			while (p.sp > 0 &&
				   wam_precedence(p.stack[p.sp - 1].op) >= wam_precedence(bin))
			{
				if ((rc = wam_pop_emit(&p)) != WAM_EXPR_OK)
					return rc;
			}
			if ((rc = wam_push_op(&p, bin, &t)) != WAM_EXPR_OK)
				return rc;
			expect_operand = true;
		}
	}

	/* depths, from the root down (parents come after their operands) */
	out->nodes[out->nnodes - 1].depth = 0;
	for (i = (int64_t) out->nnodes - 1; i >= 0; i--)
	{
		WamExprNode *n = &out->nodes[i];

		if (n->kind == WAM_EXPR_NOT)
			out->nodes[i - 1].depth = n->depth + 1;
		else if (n->kind == WAM_EXPR_AND || n->kind == WAM_EXPR_OR ||
				 n->kind == WAM_EXPR_EXCLUDE)
		{
			out->nodes[i - 1].depth = n->depth + 1;
			out->nodes[n->left].depth = n->depth + 1;
		}
	}
	return WAM_EXPR_OK;
}

/* -------- messages and names -------- */

const char *
wam_expr_error_phrase(WamExprError err)
{
	switch (err)
	{
		case WAM_EXPR_OK:
			return "No error";
		case WAM_EXPR_ERR_EMPTY:
			return "The expression is empty";
		case WAM_EXPR_ERR_UNEXPECTED_CHAR:
			return "Unexpected character";
		case WAM_EXPR_ERR_UNTERMINATED_QUOTE:
			return "Unterminated quoted name starting";
		case WAM_EXPR_ERR_EMPTY_NAME:
			return "Empty quoted name";
		case WAM_EXPR_ERR_EXPECTED_OPERAND:
			return "Expected a tag, @segment, behaviour predicate, ALL, REACHABLE, NOT or \"(\"";
		case WAM_EXPR_ERR_EXPECTED_OPERATOR:
			return "Expected AND, OR, EXCLUDE (or &, |, -) or \")\"";
		case WAM_EXPR_ERR_UNMATCHED_OPEN:
			return "Unmatched \"(\"";
		case WAM_EXPR_ERR_UNMATCHED_CLOSE:
			return "Unmatched \")\"";
		case WAM_EXPR_ERR_SEGMENT_NAME:
			return "Expected a saved segment name after \"@\"";
		case WAM_EXPR_ERR_EVENT_OPEN:
			return "Expected \"(\" after \"event\"";
		case WAM_EXPR_ERR_EVENT_KIND:
			return "Expected an event kind such as order or link_click";
		case WAM_EXPR_ERR_EVENT_KIND_INVALID:
			return "Invalid event kind (a letter, then letters, digits or \"_\")";
		case WAM_EXPR_ERR_EVENT_CLOSE:
			return "Expected \")\" after the event kind";
		case WAM_EXPR_ERR_NUMBER:
			return "Expected a whole number after the comparison";
		case WAM_EXPR_ERR_NUMBER_RANGE:
			return "Count out of range (0 to 1000000000)";
		case WAM_EXPR_ERR_DURATION:
			return "Expected a duration such as 7d, 24h or 2w after \"within\"";
		case WAM_EXPR_ERR_DURATION_UNIT:
			return "Expected a duration unit (h, d, w, hours, days or weeks)";
		case WAM_EXPR_ERR_DURATION_RANGE:
			return "Duration out of range (1 hour to 36500 days)";
		case WAM_EXPR_ERR_NO_PREDICATE:
			return "Expected a behaviour predicate (event, orders, inbound, read, first_order, last_order, interacted, created) after \"no\"";
		case WAM_EXPR_ERR_UNTERMINATED_STRING:
			return "Unterminated text value starting";
		case WAM_EXPR_ERR_DETAIL_KEY:
			return "Expected a details key after \",\" (a name, or a quoted one)";
		case WAM_EXPR_ERR_DETAIL_EQ:
			return "Expected \"=\" after the details key";
		case WAM_EXPR_ERR_DETAIL_DUPLICATE:
			return "Details key given twice";
		case WAM_EXPR_ERR_DETAIL_TOO_MANY:
			return "Too many details filters (at most 16)";
		case WAM_EXPR_ERR_VALUE:
			return "Expected a value: 'text', a number, true or false";
		case WAM_EXPR_ERR_NUMBER_INVALID:
			return "Invalid number (digits, an optional fraction, at most 40 characters)";
		case WAM_EXPR_ERR_ATTR_NAME:
			return "Expected an attribute name such as gender or city";
		case WAM_EXPR_ERR_ATTR_CLOSE:
			return "Expected \")\" after the attribute name";
		case WAM_EXPR_ERR_ATTR_TEST:
			return "Expected a comparison, BETWEEN, IN or IS [NOT] SET after the attribute";
		case WAM_EXPR_ERR_BETWEEN_AND:
			return "Expected AND between the two values of BETWEEN";
		case WAM_EXPR_ERR_IN_LIST:
			return "Expected a list of values in parentheses after IN, separated by \",\"";
		case WAM_EXPR_ERR_IS_SET:
			return "Expected SET or NOT SET after IS";
		case WAM_EXPR_ERR_AGE:
			return "Expected a comparison or BETWEEN with whole numbers of years (0 to 200) after age";
		case WAM_EXPR_ERR_GROUP_NAME:
			return "Expected a group name such as mums-taipei-east";
		case WAM_EXPR_ERR_GROUP_CLOSE:
			return "Expected \")\" after the group name";
		case WAM_EXPR_ERR_TOO_LONG:
			return "The expression is too long";
		case WAM_EXPR_ERR_TOO_MANY:
			return "Too many operands and operators";
		case WAM_EXPR_ERR_TOO_DEEP:
			return "Parentheses and NOT nested too deeply";
		case WAM_EXPR_ERR_OUT_OF_MEMORY:
			return "Out of memory";
	}
	return "Unknown error";
}

bool
wam_expr_error_is_limit(WamExprError err)
{
	return err == WAM_EXPR_ERR_TOO_LONG || err == WAM_EXPR_ERR_TOO_MANY ||
		err == WAM_EXPR_ERR_TOO_DEEP;
}

const char *
wam_expr_unit_suffix(WamExprUnit unit)
{
	switch (unit)
	{
		case WAM_UNIT_HOURS:
			return "h";
		case WAM_UNIT_DAYS:
			return "d";
		case WAM_UNIT_WEEKS:
			return "w";
		case WAM_UNIT_NONE:
			break;
	}
	return "";
}

const char *
wam_expr_cmp_text(WamExprCmp cmp)
{
	static const char *const text[] = {">=", ">", "<=", "<", "=", "!="};

	return cmp <= WAM_CMP_NE ? text[cmp] : "?";
}

/*
 * wam_expr_name_is_bare tells whether a name can be written without quotes
 * and read back as the same name: not empty, not starting with "-", only
 * bare-name characters and, unless keywords_ok (after "@"), no keyword.
 */
bool
wam_expr_name_is_bare(const char *name, size_t len, int flags, bool keywords_ok)
{
	const uint8_t *s = (const uint8_t *) name;
	size_t		clen;

	return len > 0 && wam_char_at(s, len, flags, &clen) != '-' &&
		wam_bare_span(s, len, flags) == len &&
		(keywords_ok || wam_keyword(s, len) == KW_NONE);
}
