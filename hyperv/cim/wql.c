/*
 * wql — the WQL parser: SELECT with a WHERE expression tree, ASSOCIATORS OF and REFERENCES OF
 * with their keyword clauses, into the AST declared in cim.h, with every error naming the byte
 * position and what was expected there.
 *
 * A hand-written lexer (one token of look-ahead) and a recursive-descent parser whose recursion
 * is bounded by WQL_MAX_DEPTH (parentheses and NOTs) and whose output is bounded by WQL_MAX_NODES,
 * so no input can exhaust the stack or memory. Must not: know any class or property (unknown
 * names are the translator's error), or evaluate anything.
 */
#include "cim_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tk { TK_END, TK_IDENT, TK_STRING, TK_INT, TK_UINT, TK_REAL, TK_OP, TK_LPAREN, TK_RPAREN,
	  TK_COMMA, TK_STAR, TK_BRACE };

struct token {
	enum tk kind;
	size_t pos, len;      /* source span */
	enum wql_op op;       /* TK_OP */
	char *s;              /* TK_STRING: unescaped, owned */
	int64_t i;            /* TK_INT */
	uint64_t u;           /* TK_UINT */
	double r;             /* TK_REAL */
	size_t inner, inner_len; /* TK_BRACE: the span between the braces */
};

struct wp {
	const char *s;
	size_t n, i; /* text, length, lexer cursor */
	struct token t;
	size_t err_pos;
	size_t op_pos; /* position of the last comparison operator consumed */
	unsigned nodes;
};

static int werr(struct wp *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int werr(struct wp *p, size_t pos, const char *fmt, ...)
{
	char cause[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cause, sizeof cause, fmt, ap);
	va_end(ap);
	p->err_pos = pos;
	return hv_err(HV_EINVAL, "WQL: position %zu: %s", pos, cause);
}

static const char *desc(const struct wp *p, char *buf, size_t n)
{
	const struct token *t = &p->t;
	int len = (int)(t->len > 40 ? 40 : t->len);
	switch (t->kind) {
	case TK_END: return "end of query";
	case TK_IDENT: snprintf(buf, n, "'%.*s'", len, p->s + t->pos); break;
	case TK_STRING: snprintf(buf, n, "string %.*s", len, p->s + t->pos); break;
	case TK_INT:
	case TK_UINT:
	case TK_REAL: snprintf(buf, n, "number %.*s", len, p->s + t->pos); break;
	case TK_BRACE: return "'{'";
	default: snprintf(buf, n, "'%.*s'", len, p->s + t->pos);
	}
	return buf;
}

static int expected(struct wp *p, const char *what)
{
	char buf[64];
	return werr(p, p->t.pos, "expected %s, found %s", what, desc(p, buf, sizeof buf));
}

/* ---- lexer ----------------------------------------------------------------------------------*/

/* '...' or "..." with \\ \" \' escapes. */
static int lex_string(struct wp *p)
{
	size_t open = p->i;
	char q = p->s[p->i++];
	struct cim_sb b = {0};
	for (;;) {
		if (p->i >= p->n) {
			cim_sb_discard(&b);
			return werr(p, open, "unterminated string (no closing %c)", q);
		}
		char c = p->s[p->i];
		if (c == q)
			break;
		if (c == '\\' && p->i + 1 >= p->n) {
			cim_sb_discard(&b);
			return werr(p, open, "unterminated string (no closing %c)", q);
		}
		if (c == '\\') {
			char e = p->s[p->i + 1];
			if (e != '\\' && e != '"' && e != '\'') {
				cim_sb_discard(&b);
				return werr(p, p->i, "unknown escape in string (WQL escapes are \\\\, "
						     "\\\" and \\')");
			}
			c = e;
			p->i++;
		}
		cim_sb_addc(&b, c);
		p->i++;
	}
	p->i++;
	if (p->i < p->n && p->s[p->i] == q) {
		cim_sb_discard(&b);
		return werr(p, p->i, "doubled quote is not a WQL escape (write \\%c inside %c...%c)",
			    q, q, q);
	}
	p->t.kind = TK_STRING;
	return (p->t.s = cim_sb_finish(&b)) ? 0 : HV_ENOMEM;
}

static size_t digits_at(const char *s, size_t i, size_t n, bool hex)
{
	size_t k = i;
	while (k < n && (cim_is_digit(s[k]) ||
			 (hex && cim_lower(s[k]) >= 'a' && cim_lower(s[k]) <= 'f')))
		k++;
	return k - i;
}

/* Integer (decimal, 0x hex, signed) or real; the sign is part of the literal (WQL has no
 * arithmetic). */
static int lex_number(struct wp *p)
{
	const char *s = p->s;
	size_t start = p->i, i = p->i;
	bool real = false;
	if (s[i] == '+' || s[i] == '-')
		i++;
	if (s[i] == '0' && i + 1 < p->n && cim_lower(s[i + 1]) == 'x') {
		size_t d = digits_at(s, i + 2, p->n, true);
		if (!d)
			return werr(p, start, "malformed hex number");
		i += 2 + d;
	} else {
		size_t d = digits_at(s, i, p->n, false);
		i += d;
		if (i < p->n && s[i] == '.') {
			size_t f = digits_at(s, i + 1, p->n, false);
			if (!d && !f)
				return werr(p, start, "malformed number");
			i += 1 + f;
			real = true;
		}
		if (i < p->n && cim_lower(s[i]) == 'e') {
			size_t j = i + 1 + (i + 1 < p->n && (s[i + 1] == '+' || s[i + 1] == '-'));
			size_t e = digits_at(s, j, p->n, false);
			if (!e)
				return werr(p, start, "malformed number (exponent without digits)");
			i = j + e;
			real = true;
		}
	}
	if (i < p->n && (cim_is_ident(s[i]) || s[i] == '.'))
		return werr(p, start, "malformed number");
	char text[80];
	if (i - start >= sizeof text)
		return werr(p, start, "number too long");
	memcpy(text, s + start, i - start);
	text[i - start] = 0;
	p->i = i;
	if (real) {
		errno = 0;
		p->t.r = strtod(text, NULL);
		if (errno == ERANGE || isinf(p->t.r))
			return werr(p, start, "real number out of range");
		p->t.kind = TK_REAL;
		return 0;
	}
	bool neg;
	uint64_t mag;
	if (!cim_parse_int(text, &neg, &mag) || (neg && mag > (uint64_t)INT64_MAX + 1))
		return werr(p, start, "integer out of range");
	if (neg)
		p->t.i = mag ? -(int64_t)(mag - 1) - 1 : 0;
	else if (mag <= INT64_MAX)
		p->t.i = (int64_t)mag;
	else
		p->t.u = mag;
	p->t.kind = !neg && mag > INT64_MAX ? TK_UINT : TK_INT;
	return 0;
}

static int lex_op(struct wp *p)
{
	static const struct {
		const char *text;
		enum wql_op op;
	} ops[] = {{"<>", WQL_OP_NE}, {"!=", WQL_OP_NE}, {"<=", WQL_OP_LE}, {">=", WQL_OP_GE},
		   {"=", WQL_OP_EQ},  {"<", WQL_OP_LT},  {">", WQL_OP_GT}};
	for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
		size_t len = strlen(ops[k].text);
		if (p->i + len <= p->n && !memcmp(p->s + p->i, ops[k].text, len)) {
			p->t.kind = TK_OP;
			p->t.op = ops[k].op;
			p->i += len;
			return 0;
		}
	}
	return werr(p, p->i, "unexpected character '!' (did you mean '!='?)");
}

/* {object path}: the braces' content is kept raw; quotes inside may hold '}'. */
static int lex_brace(struct wp *p)
{
	size_t open = p->i;
	char q = 0;
	for (size_t i = open + 1; i < p->n; i++) {
		char c = p->s[i];
		if (q && c == '\\' && i + 1 < p->n)
			i++;
		else if (q && c == q)
			q = 0;
		else if (!q && (c == '"' || c == '\''))
			q = c;
		else if (!q && c == '}') {
			p->t.kind = TK_BRACE;
			p->t.inner = open + 1;
			p->t.inner_len = i - open - 1;
			p->i = i + 1;
			return 0;
		}
	}
	return werr(p, open, "unterminated '{' (no matching '}')");
}

static int lex_other(struct wp *p)
{
	const char *s = p->s;
	size_t i = p->i;
	char c = s[i];
	static const char single[] = "(),*";
	static const enum tk kinds[] = {TK_LPAREN, TK_RPAREN, TK_COMMA, TK_STAR};
	const char *k = strchr(single, c);
	if (c && k) {
		p->t.kind = kinds[k - single];
		p->i++;
		return 0;
	}
	if (cim_is_ident_start(c)) {
		while (p->i < p->n && cim_is_ident(s[p->i]))
			p->i++;
		p->t.kind = TK_IDENT;
		return 0;
	}
	if (c == '\'' || c == '"')
		return lex_string(p);
	if (cim_is_digit(c) || ((c == '-' || c == '+' || c == '.') && i + 1 < p->n &&
				(cim_is_digit(s[i + 1]) || s[i + 1] == '.')))
		return lex_number(p);
	if (strchr("=<>!", c))
		return lex_op(p);
	if (c == '{')
		return lex_brace(p);
	if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
		return werr(p, i, "unexpected character '%c'", c);
	return werr(p, i, "unexpected byte 0x%02x", (unsigned char)c);
}

static int lex(struct wp *p)
{
	free(p->t.s);
	memset(&p->t, 0, sizeof p->t);
	while (p->i < p->n && cim_is_space(p->s[p->i]))
		p->i++;
	p->t.pos = p->i;
	int rc = p->i >= p->n ? 0 : lex_other(p);
	p->t.len = p->i - p->t.pos;
	return rc;
}

static bool kw(const struct wp *p, const char *word)
{
	return p->t.kind == TK_IDENT && cim_ieqn(p->s + p->t.pos, p->t.len, word);
}

static bool reserved(const struct wp *p)
{
	static const char *const words[] = {"AND", "OR", "NOT", "NULL", "TRUE", "FALSE", "LIKE",
					    "IS", "ISA", "FROM", "WHERE", "SELECT", "OF"};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (kw(p, words[i]))
			return true;
	return false;
}

static bool is_prop(const struct wp *p) { return p->t.kind == TK_IDENT && !reserved(p); }

static bool is_literal(const struct wp *p)
{
	return p->t.kind == TK_STRING || p->t.kind == TK_INT || p->t.kind == TK_UINT ||
	       p->t.kind == TK_REAL || kw(p, "TRUE") || kw(p, "FALSE") || kw(p, "NULL");
}

static char *tok_text(const struct wp *p)
{
	char *s = cim_strndup(p->s + p->t.pos, p->t.len);
	if (!s)
		hv_err(HV_ENOMEM, "WQL: out of memory");
	return s;
}

/* Moves the current literal token into *lit. */
static void take_literal(struct wp *p, struct wql_literal *lit)
{
	memset(lit, 0, sizeof *lit);
	switch (p->t.kind) {
	case TK_STRING:
		lit->kind = WQL_LIT_STRING;
		lit->s = p->t.s;
		p->t.s = NULL;
		break;
	case TK_INT:
		lit->kind = WQL_LIT_INT;
		lit->i = p->t.i;
		break;
	case TK_UINT:
		lit->kind = WQL_LIT_UINT;
		lit->u = p->t.u;
		break;
	case TK_REAL:
		lit->kind = WQL_LIT_REAL;
		lit->r = p->t.r;
		break;
	default:
		lit->kind = kw(p, "NULL") ? WQL_LIT_NULL : WQL_LIT_BOOL;
		lit->b = kw(p, "TRUE");
	}
}

/* ---- expressions ----------------------------------------------------------------------------*/

static void expr_free(struct wql_expr *e)
{
	if (!e)
		return;
	expr_free(e->left);
	expr_free(e->right);
	free(e->prop);
	free(e->lit.s);
	free(e);
}

static int new_node(struct wp *p, enum wql_expr_kind kind, size_t pos, struct wql_expr **out)
{
	if (++p->nodes > WQL_MAX_NODES)
		return werr(p, pos, "more than %d conditions in one query", WQL_MAX_NODES);
	if (!(*out = calloc(1, sizeof **out)))
		return hv_err(HV_ENOMEM, "WQL: out of memory");
	(*out)->kind = kind;
	(*out)->pos = pos;
	return 0;
}

static enum wql_op mirror(enum wql_op op)
{
	switch (op) {
	case WQL_OP_LT: return WQL_OP_GT;
	case WQL_OP_GT: return WQL_OP_LT;
	case WQL_OP_LE: return WQL_OP_GE;
	case WQL_OP_GE: return WQL_OP_LE;
	default: return op;
	}
}

/* prop IS [NOT] NULL, with the token after IS current. */
static int parse_is(struct wp *p, enum wql_expr_kind *kind)
{
	int rc;
	*kind = WQL_EXPR_ISNULL;
	if (kw(p, "NOT")) {
		*kind = WQL_EXPR_ISNOTNULL;
		if ((rc = lex(p)))
			return rc;
	}
	if (!kw(p, "NULL"))
		return expected(p, "NULL after IS / IS NOT (IS only tests for NULL)");
	return lex(p);
}

/* prop LIKE 'pattern', with the token after LIKE current. */
static int parse_like(struct wp *p, struct wql_literal *lit)
{
	size_t at;
	if (p->t.kind != TK_STRING)
		return expected(p, "a string pattern after LIKE");
	if (wql_like_check(p->t.s, &at))
		return werr(p, p->t.pos, "LIKE pattern: '[' at pattern character %zu has no "
					 "closing ']'", at);
	take_literal(p, lit);
	return lex(p);
}

/* The operator and literal after a property. */
static int parse_prop_rhs(struct wp *p, struct wql_expr *e)
{
	int rc;
	if (kw(p, "IS")) {
		if ((rc = lex(p)))
			return rc;
		return parse_is(p, &e->kind);
	}
	if (kw(p, "LIKE")) {
		e->kind = WQL_EXPR_LIKE;
		if ((rc = lex(p)))
			return rc;
		return parse_like(p, &e->lit);
	}
	if (kw(p, "ISA"))
		return werr(p, p->t.pos, "ISA is not supported");
	if (p->t.kind != TK_OP)
		return expected(p, "a comparison operator (=, <>, !=, <, >, <=, >=, LIKE, IS)");
	e->op = p->t.op;
	p->op_pos = p->t.pos;
	if ((rc = lex(p)))
		return rc;
	if (is_prop(p))
		return werr(p, p->t.pos, "comparing two properties is not supported (one side "
					 "must be a literal)");
	if (!is_literal(p))
		return expected(p, "a literal after the operator");
	take_literal(p, &e->lit);
	return lex(p);
}

/* literal op prop: stored as prop mirror(op) literal. */
static int parse_lit_lhs(struct wp *p, struct wql_expr *e)
{
	int rc;
	take_literal(p, &e->lit);
	if ((rc = lex(p)))
		return rc;
	if (kw(p, "LIKE") || kw(p, "IS") || kw(p, "ISA"))
		return werr(p, p->t.pos, "%.*s needs the property on its left", (int)p->t.len,
			    p->s + p->t.pos);
	if (p->t.kind != TK_OP)
		return expected(p, "a comparison operator (=, <>, !=, <, >, <=, >=)");
	e->op = mirror(p->t.op);
	p->op_pos = p->t.pos;
	if ((rc = lex(p)))
		return rc;
	if (is_literal(p))
		return werr(p, p->t.pos, "comparing two literals is not supported (one side must "
					 "be a property)");
	if (!is_prop(p))
		return expected(p, "a property name after the operator");
	if (!(e->prop = tok_text(p)))
		return HV_ENOMEM;
	return lex(p);
}

static int parse_cmp(struct wp *p, struct wql_expr **out)
{
	struct wql_expr *e;
	int rc;
	if (!is_prop(p) && !is_literal(p))
		return expected(p, "a property name, a literal or '('");
	if ((rc = new_node(p, WQL_EXPR_CMP, p->t.pos, &e)))
		return rc;
	if (!is_prop(p))
		rc = parse_lit_lhs(p, e);
	else if (!(e->prop = tok_text(p)))
		rc = HV_ENOMEM;
	else if (!(rc = lex(p)))
		rc = parse_prop_rhs(p, e);
	if (!rc && e->kind == WQL_EXPR_CMP && e->lit.kind == WQL_LIT_NULL) {
		if (e->op == WQL_OP_EQ)
			e->kind = WQL_EXPR_ISNULL;
		else if (e->op == WQL_OP_NE)
			e->kind = WQL_EXPR_ISNOTNULL;
		else
			rc = werr(p, p->op_pos, "NULL can only be compared with =, <>, != or IS "
						"[NOT]");
	}
	if (rc)
		goto fail;
	*out = e;
	return 0;
fail:
	expr_free(e);
	return rc;
}

static int parse_or(struct wp *p, int depth, struct wql_expr **out);

static int parse_unary(struct wp *p, int depth, struct wql_expr **out)
{
	int rc;
	size_t pos = p->t.pos;
	bool is_not = kw(p, "NOT");
	if (!is_not && p->t.kind != TK_LPAREN)
		return parse_cmp(p, out);
	if (depth >= WQL_MAX_DEPTH)
		return werr(p, pos, "nested deeper than %d parentheses/NOTs", WQL_MAX_DEPTH);
	if ((rc = lex(p)))
		return rc;
	if (!is_not) {
		if ((rc = parse_or(p, depth + 1, out)))
			return rc;
		if (p->t.kind == TK_RPAREN)
			rc = lex(p);
		else if (p->t.kind == TK_END)
			rc = werr(p, pos, "unbalanced '(' (no matching ')')");
		else
			rc = expected(p, "')'");
		if (!rc)
			return 0;
		expr_free(*out);
		*out = NULL;
		return rc;
	}
	struct wql_expr *child = NULL;
	if ((rc = parse_unary(p, depth + 1, &child)))
		return rc;
	if ((rc = new_node(p, WQL_EXPR_NOT, pos, out))) {
		expr_free(child);
		return rc;
	}
	(*out)->left = child;
	return 0;
}

typedef int (*parse_fn)(struct wp *p, int depth, struct wql_expr **out);

/* left (WORD right)*: a left-deep chain of AND or OR nodes. */
static int parse_chain(struct wp *p, int depth, const char *word, enum wql_expr_kind kind,
		       parse_fn sub, struct wql_expr **out)
{
	struct wql_expr *left = NULL, *right = NULL, *node;
	int rc = sub(p, depth, &left);
	while (!rc && kw(p, word)) {
		size_t pos = p->t.pos;
		if ((rc = lex(p)) || (rc = sub(p, depth, &right)))
			break;
		if ((rc = new_node(p, kind, pos, &node))) {
			expr_free(right);
			break;
		}
		node->left = left;
		node->right = right;
		left = node;
		right = NULL;
	}
	if (rc) {
		expr_free(left);
		return rc;
	}
	*out = left;
	return 0;
}

static int parse_and(struct wp *p, int depth, struct wql_expr **out)
{
	return parse_chain(p, depth, "AND", WQL_EXPR_AND, parse_unary, out);
}

static int parse_or(struct wp *p, int depth, struct wql_expr **out)
{
	return parse_chain(p, depth, "OR", WQL_EXPR_OR, parse_and, out);
}

/* ---- statements -----------------------------------------------------------------------------*/

static int push_prop(struct wp *p, struct wql_query *q)
{
	char **props = realloc(q->props, (q->nprops + 1) * sizeof *props);
	if (!props)
		return hv_err(HV_ENOMEM, "WQL: out of memory");
	q->props = props;
	if (!(q->props[q->nprops] = tok_text(p)))
		return HV_ENOMEM;
	q->nprops++;
	return lex(p);
}

static int parse_select_list(struct wp *p, struct wql_query *q)
{
	int rc;
	if (p->t.kind == TK_STAR) {
		q->select_all = true;
		return lex(p);
	}
	for (;;) {
		if (!is_prop(p))
			return expected(p, "'*' or a property name after SELECT");
		if ((rc = push_prop(p, q)))
			return rc;
		if (p->t.kind != TK_COMMA)
			return 0;
		if ((rc = lex(p)))
			return rc;
	}
}

static int parse_select(struct wp *p, struct wql_query *q)
{
	int rc;
	q->kind = WQL_SELECT;
	if ((rc = lex(p)) || (rc = parse_select_list(p, q)))
		return rc;
	if (!kw(p, "FROM"))
		return expected(p, p->t.kind == TK_IDENT && !q->select_all
					   ? "FROM (or ',' between properties)"
					   : "FROM");
	if ((rc = lex(p)))
		return rc;
	if (!is_prop(p))
		return expected(p, "a class name after FROM");
	q->class_pos = p->t.pos;
	if (!(q->class_name = tok_text(p)) || (rc = lex(p)))
		return q->class_name ? rc : HV_ENOMEM;
	if (kw(p, "WHERE")) {
		if ((rc = lex(p)) || (rc = parse_or(p, 0, &q->where)))
			return rc;
	} else if (kw(p, "WITHIN") || kw(p, "GROUP") || kw(p, "HAVING")) {
		return werr(p, p->t.pos, "event queries (%.*s) are not supported", (int)p->t.len,
			    p->s + p->t.pos);
	} else if (kw(p, "ISA")) {
		return werr(p, p->t.pos, "ISA is not supported");
	} else if (p->t.kind != TK_END) {
		return expected(p, "WHERE or end of query");
	}
	if (p->t.kind == TK_RPAREN)
		return werr(p, p->t.pos, "unbalanced ')' (no matching '(')");
	return p->t.kind == TK_END ? 0 : expected(p, "AND, OR or end of query");
}

/* "object path: position N: cause" -> "cause" (the message cim_path_parse_ex left). */
static const char *path_cause(const char *msg)
{
	const char *at = strstr(msg, "position ");
	const char *colon = at ? strstr(at, ": ") : NULL;
	return colon ? colon + 2 : msg;
}

static int parse_object(struct wp *p, struct wql_query *q)
{
	if (p->t.kind != TK_BRACE)
		return expected(p, "'{' object path '}'");
	size_t start = p->t.inner, len = p->t.inner_len, epos = 0;
	while (len && cim_is_space(p->s[start])) {
		start++;
		len--;
	}
	while (len && cim_is_space(p->s[start + len - 1]))
		len--;
	if (!len)
		return werr(p, p->t.inner, "empty object path between '{' and '}'");
	int rc = cim_path_parse_ex(p->s + start, len, &q->object, &epos);
	if (rc == HV_EINVAL) {
		char cause[256];
		snprintf(cause, sizeof cause, "%s", path_cause(hv_errmsg()));
		return werr(p, start + epos, "object path: %s", cause);
	}
	if (rc)
		return rc;
	if (!(q->object_text = cim_strndup(p->s + start, len)))
		return hv_err(HV_ENOMEM, "WQL: out of memory");
	return lex(p);
}

/* One ASSOCIATORS/REFERENCES keyword: its slot (string or flag) and where it is allowed. */
struct assoc_kw {
	const char *word;
	size_t str_off;  /* offsetof the char * field, or 0 for a flag */
	size_t flag_off; /* offsetof the bool field */
	bool in_references;
};

static const struct assoc_kw assoc_kws[] = {
	{"AssocClass", offsetof(struct wql_query, assoc_class), 0, false},
	{"ResultClass", offsetof(struct wql_query, result_class), 0, true},
	{"Role", offsetof(struct wql_query, role), 0, true},
	{"ResultRole", offsetof(struct wql_query, result_role), 0, false},
	{"RequiredQualifier", offsetof(struct wql_query, required_qualifier), 0, true},
	{"RequiredAssocQualifier", offsetof(struct wql_query, required_assoc_qualifier), 0, false},
	{"ClassDefsOnly", 0, offsetof(struct wql_query, class_defs_only), true},
	{"KeysOnly", 0, offsetof(struct wql_query, keys_only), true},
	{"SchemaOnly", 0, offsetof(struct wql_query, schema_only), true},
};

/* `Keyword = Name` or `Flag`, with the keyword current. */
static int parse_assoc_item(struct wp *p, struct wql_query *q, const struct assoc_kw *k)
{
	int rc;
	size_t pos = p->t.pos;
	const char *stmt = q->kind == WQL_ASSOCIATORS ? "ASSOCIATORS OF" : "REFERENCES OF";
	if (q->kind == WQL_REFERENCES && !k->in_references)
		return werr(p, pos, "%s is not valid in REFERENCES OF", k->word);
	if (!k->str_off) {
		bool *flag = (bool *)((char *)q + k->flag_off);
		if (*flag)
			return werr(p, pos, "%s given twice in %s", k->word, stmt);
		*flag = true;
		if ((q->class_defs_only && q->schema_only))
			return werr(p, pos, "ClassDefsOnly and SchemaOnly cannot be combined");
		return lex(p);
	}
	char **slot = (char **)((char *)q + k->str_off);
	if (*slot)
		return werr(p, pos, "%s given twice in %s", k->word, stmt);
	if ((rc = lex(p)))
		return rc;
	if (p->t.kind != TK_OP || p->t.op != WQL_OP_EQ)
		return werr(p, p->t.pos, "expected '=' after %s", k->word);
	if ((rc = lex(p)))
		return rc;
	if (p->t.kind != TK_IDENT)
		return werr(p, p->t.pos, "expected a name after %s =", k->word);
	if (!(*slot = tok_text(p)))
		return HV_ENOMEM;
	return lex(p);
}

static int parse_assoc_where(struct wp *p, struct wql_query *q)
{
	int rc;
	if ((rc = lex(p)))
		return rc;
	if (p->t.kind == TK_END)
		return expected(p, "a keyword after WHERE");
	while (p->t.kind != TK_END) {
		const struct assoc_kw *k = NULL;
		for (size_t i = 0; i < sizeof assoc_kws / sizeof assoc_kws[0] && !k; i++)
			if (kw(p, assoc_kws[i].word))
				k = &assoc_kws[i];
		if (kw(p, "AND"))
			return werr(p, p->t.pos, "AND is not used in %s (separate keywords with "
						 "blanks)", q->kind == WQL_ASSOCIATORS
								    ? "ASSOCIATORS OF"
								    : "REFERENCES OF");
		if (!k)
			return expected(p, q->kind == WQL_ASSOCIATORS
						   ? "an ASSOCIATORS OF keyword (AssocClass, "
						     "ResultClass, Role, ResultRole, ClassDefsOnly, "
						     "KeysOnly, SchemaOnly, RequiredQualifier, "
						     "RequiredAssocQualifier)"
						   : "a REFERENCES OF keyword (ResultClass, Role, "
						     "ClassDefsOnly, KeysOnly, SchemaOnly, "
						     "RequiredQualifier)");
		if ((rc = parse_assoc_item(p, q, k)))
			return rc;
	}
	return 0;
}

static int parse_assoc(struct wp *p, struct wql_query *q, enum wql_kind kind)
{
	int rc;
	q->kind = kind;
	if ((rc = lex(p)))
		return rc;
	if (!kw(p, "OF"))
		return expected(p, kind == WQL_ASSOCIATORS ? "OF after ASSOCIATORS"
							   : "OF after REFERENCES");
	if ((rc = lex(p)) || (rc = parse_object(p, q)))
		return rc;
	if (kw(p, "WHERE"))
		return parse_assoc_where(p, q);
	return p->t.kind == TK_END ? 0 : expected(p, "WHERE or end of query");
}

static int parse_query(struct wp *p, struct wql_query *q)
{
	size_t n = strnlen(p->s, WQL_MAX_LEN + 1);
	if (n > WQL_MAX_LEN)
		return werr(p, WQL_MAX_LEN, "query longer than %u bytes", WQL_MAX_LEN);
	p->n = n;
	int rc = lex(p);
	if (rc)
		return rc;
	if (p->t.kind == TK_END)
		return werr(p, p->t.pos, "empty query");
	if (kw(p, "SELECT"))
		return parse_select(p, q);
	if (kw(p, "ASSOCIATORS"))
		return parse_assoc(p, q, WQL_ASSOCIATORS);
	if (kw(p, "REFERENCES"))
		return parse_assoc(p, q, WQL_REFERENCES);
	return expected(p, "SELECT, ASSOCIATORS OF or REFERENCES OF");
}

int wql_parse_ex(const char *text, struct wql_query **out, size_t *err_pos)
{
	struct wp p = {.s = text};
	*out = NULL;
	if (!text) {
		if (err_pos)
			*err_pos = 0;
		return hv_err(HV_EINVAL, "WQL: position 0: NULL query");
	}
	struct wql_query *q = calloc(1, sizeof *q);
	if (!q)
		return hv_err(HV_ENOMEM, "WQL: out of memory");
	int rc = parse_query(&p, q);
	free(p.t.s);
	if (rc) {
		wql_query_free(q);
		if (err_pos)
			*err_pos = p.err_pos;
		return rc;
	}
	*out = q;
	return 0;
}

int wql_parse(const char *text, struct wql_query **out) { return wql_parse_ex(text, out, NULL); }

void wql_query_free(struct wql_query *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->nprops; i++)
		free(q->props[i]);
	free(q->props);
	free(q->class_name);
	expr_free(q->where);
	free(q->object_text);
	cim_path_free(q->object);
	free(q->result_class);
	free(q->assoc_class);
	free(q->role);
	free(q->result_role);
	free(q->required_qualifier);
	free(q->required_assoc_qualifier);
	free(q);
}

const char *wql_op_text(enum wql_op op)
{
	static const char *const text[] = {"=", "<>", "<", ">", "<=", ">="};
	return (unsigned)op < sizeof text / sizeof text[0] ? text[op] : "?";
}
