/*
 * cim_mof — reads one MOF instance declaration (`instance of X { P = v; ... };`, what
 * ManagementBaseObject.GetText(Mof) emits) into a cim_instance. One engine sends embedded
 * instances this way, so the simulator tolerates it.
 *
 * MOF carries no property types, so each value's type is inferred from its literal and flagged
 * (cim_prop.type_inferred); integers are normalised to decimal text. Must not: accept more than
 * one instance, class declarations or alias references, or recurse (arrays are flat in MOF).
 */
#include "cim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mtok_kind { T_END, T_IDENT, T_STRING, T_CHAR, T_NUMBER, T_PUNCT, T_ALIAS };

struct mtok {
	enum mtok_kind kind;
	char punct;   /* T_PUNCT */
	char *text;   /* T_IDENT, T_STRING (unescaped), T_CHAR, T_NUMBER, T_ALIAS; owned */
	unsigned line;
};

struct mof {
	const char *s;
	size_t i;
	unsigned line;
	struct mtok t; /* current token */
};

static int merr(unsigned line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int merr(unsigned line, const char *fmt, ...)
{
	char cause[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cause, sizeof cause, fmt, ap);
	va_end(ap);
	return hv_err(HV_EINVAL, "embedded instance: line %u: MOF: %s", line, cause);
}

/* ---- lexer ----------------------------------------------------------------------------------*/

static int skip_blank(struct mof *m)
{
	for (;;) {
		const char *s = m->s + m->i;
		if (*s == '\n')
			m->line++;
		if (cim_is_space(*s)) {
			m->i++;
		} else if (s[0] == '/' && s[1] == '/') {
			m->i += strcspn(s, "\n");
		} else if (s[0] == '#') { /* #pragma line */
			m->i += strcspn(s, "\n");
		} else if (s[0] == '/' && s[1] == '*') {
			unsigned start = m->line;
			const char *end = strstr(s + 2, "*/");
			if (!end)
				return merr(start, "unterminated comment");
			for (const char *c = s; c < end; c++)
				m->line += *c == '\n';
			m->i += (size_t)(end + 2 - s);
		} else {
			return 0;
		}
	}
}

static void put_utf8(struct cim_sb *b, uint32_t cp)
{
	if (cp < 0x80) {
		cim_sb_addc(b, (char)cp);
	} else if (cp < 0x800) {
		cim_sb_addc(b, (char)(0xC0 | cp >> 6));
		cim_sb_addc(b, (char)(0x80 | (cp & 0x3F)));
	} else {
		cim_sb_addc(b, (char)(0xE0 | cp >> 12));
		cim_sb_addc(b, (char)(0x80 | (cp >> 6 & 0x3F)));
		cim_sb_addc(b, (char)(0x80 | (cp & 0x3F)));
	}
}

/* One escape after the backslash at s; appends it and returns its length, 0 if unknown. */
static size_t escape(const char *s, struct cim_sb *b)
{
	static const char from[] = "btnfr\"'\\", to[] = "\b\t\n\f\r\"'\\";
	const char *k = s[1] ? strchr(from, s[1]) : NULL;
	if (k) {
		cim_sb_addc(b, to[k - from]);
		return 2;
	}
	if (s[1] != 'x' && s[1] != 'X')
		return 0;
	uint32_t cp = 0;
	size_t n = 0;
	for (; n < 4 && strchr("0123456789abcdefABCDEF", s[2 + n]) && s[2 + n]; n++)
		cp = cp * 16 + (uint32_t)(cim_is_digit(s[2 + n]) ? s[2 + n] - '0'
								 : cim_lower(s[2 + n]) - 'a' + 10);
	if (!n || !cp || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	put_utf8(b, cp);
	return 2 + n;
}

/* "..." or '...' at m->i. */
static int lex_quoted(struct mof *m, char q)
{
	struct cim_sb b = {0};
	m->i++;
	for (;;) {
		const char *s = m->s + m->i;
		if (!*s || *s == '\n') {
			cim_sb_discard(&b);
			return merr(m->line, "unterminated %s", q == '"' ? "string" : "character");
		}
		if (*s == q)
			break;
		if (*s == '\\') {
			size_t n = escape(s, &b);
			if (!n) {
				cim_sb_discard(&b);
				return merr(m->line, "unknown escape '\\%c' in string",
					    s[1] ? s[1] : ' ');
			}
			m->i += n;
		} else {
			cim_sb_addc(&b, *s);
			m->i++;
		}
	}
	m->i++;
	m->t.kind = q == '"' ? T_STRING : T_CHAR;
	return (m->t.text = cim_sb_finish(&b)) ? 0 : HV_ENOMEM;
}

static bool is_number_char(char c)
{
	return cim_is_ident(c) || c == '.' || c == '+' || c == '-';
}

static int lex(struct mof *m)
{
	free(m->t.text);
	memset(&m->t, 0, sizeof m->t);
	int rc = skip_blank(m);
	if (rc)
		return rc;
	const char *s = m->s + m->i;
	m->t.line = m->line;
	size_t n = 0;
	if (!*s) {
		m->t.kind = T_END;
		return 0;
	}
	if (*s == '"' || *s == '\'')
		return lex_quoted(m, *s);
	if (cim_is_ident_start(*s) || *s == '$') {
		for (n = 1; cim_is_ident(s[n]); n++)
			;
		m->t.kind = *s == '$' ? T_ALIAS : T_IDENT;
	} else if (cim_is_digit(*s) || ((*s == '-' || *s == '+' || *s == '.') &&
					(cim_is_digit(s[1]) || s[1] == '.'))) {
		/* a sign only starts an exponent after 'e' */
		for (n = 1; is_number_char(s[n]) &&
			    ((s[n] != '+' && s[n] != '-') || cim_lower(s[n - 1]) == 'e');
		     n++)
			;
		m->t.kind = T_NUMBER;
	} else if (strchr("{};=,[]():", *s)) {
		m->t.kind = T_PUNCT;
		m->t.punct = *s;
		m->i++;
		return 0;
	} else {
		return merr(m->line, "unexpected character '%c'", *s);
	}
	m->i += n;
	return (m->t.text = cim_strndup(s, n)) ? 0 : HV_ENOMEM;
}

static bool is_punct(const struct mof *m, char c) { return m->t.kind == T_PUNCT && m->t.punct == c; }
static bool is_word(const struct mof *m, const char *w)
{
	return m->t.kind == T_IDENT && cim_ieq(m->t.text, w);
}

static const char *desc(const struct mof *m, char *buf, size_t n)
{
	if (m->t.kind == T_END)
		return "end of text";
	if (m->t.kind == T_PUNCT)
		snprintf(buf, n, "'%c'", m->t.punct);
	else
		snprintf(buf, n, "'%.40s'", m->t.text);
	return buf;
}

static int expect_punct(struct mof *m, char c, const char *where)
{
	char buf[64];
	if (!is_punct(m, c))
		return merr(m->t.line, "expected '%c' %s, found %s", c, where,
			    desc(m, buf, sizeof buf));
	return lex(m);
}

/* [qualifier, ...] before the instance or a property: skipped, brackets balanced. */
static int skip_qualifiers(struct mof *m)
{
	if (!is_punct(m, '['))
		return 0;
	unsigned line = m->t.line, depth = 0;
	do {
		if (m->t.kind == T_END)
			return merr(line, "unterminated qualifier list '['");
		depth += is_punct(m, '[');
		depth -= is_punct(m, ']');
		int rc = lex(m);
		if (rc)
			return rc;
	} while (depth);
	return 0;
}

/* ---- values ---------------------------------------------------------------------------------*/

/* A number's type and normalised text. */
static int number(struct mof *m, enum cim_type *type, char **text)
{
	bool neg;
	uint64_t mag;
	const char *t = m->t.text;
	if (cim_parse_int(t, &neg, &mag)) {
		if (neg && mag > (uint64_t)INT64_MAX + 1)
			return merr(m->t.line, "integer %s out of range", t);
		*type = neg || mag <= INT64_MAX ? CIM_TYPE_SINT64 : CIM_TYPE_UINT64;
		char buf[32];
		snprintf(buf, sizeof buf, "%s%llu", neg && mag ? "-" : "", (unsigned long long)mag);
		*text = cim_strdup(buf);
	} else if (!strpbrk(t, ".eE") || strpbrk(t, "xX")) {
		return merr(m->t.line, "integer %.40s out of range or malformed", t);
	} else {
		if (cim_value_check(CIM_TYPE_REAL64, t))
			return merr(m->t.line, "malformed number '%.40s'", t);
		*type = CIM_TYPE_REAL64;
		*text = cim_strdup(t);
	}
	return *text ? 0 : HV_ENOMEM;
}

/* One literal; *text NULL means NULL. Leaves the token after the literal current. */
static int literal(struct mof *m, enum cim_type *type, char **text)
{
	char buf[64];
	int rc = 0;
	*text = NULL;
	if (m->t.kind == T_STRING) {
		struct cim_sb b = {0};
		*type = CIM_TYPE_STRING;
		while (!rc && m->t.kind == T_STRING) { /* "a" "b" concatenate */
			cim_sb_adds(&b, m->t.text);
			rc = lex(m);
		}
		if (rc) {
			cim_sb_discard(&b);
			return rc;
		}
		return (*text = cim_sb_finish(&b)) ? 0 : HV_ENOMEM;
	}
	if (m->t.kind == T_CHAR) {
		uint32_t cp;
		if (!*m->t.text || m->t.text[cim_utf8_next(m->t.text, &cp)])
			return merr(m->t.line, "character literal must hold one character");
		*type = CIM_TYPE_CHAR16;
		*text = m->t.text;
		m->t.text = NULL;
	} else if (m->t.kind == T_NUMBER) {
		rc = number(m, type, text);
	} else if (is_word(m, "TRUE") || is_word(m, "FALSE")) {
		*type = CIM_TYPE_BOOLEAN;
		*text = cim_strdup(is_word(m, "TRUE") ? "TRUE" : "FALSE");
		rc = *text ? 0 : HV_ENOMEM;
	} else if (is_word(m, "NULL")) {
		*type = CIM_TYPE_STRING;
	} else if (m->t.kind == T_ALIAS) {
		return merr(m->t.line, "alias reference %s is not supported", m->t.text);
	} else {
		return merr(m->t.line, "expected a value, found %s", desc(m, buf, sizeof buf));
	}
	if (!rc)
		rc = lex(m);
	if (rc) {
		free(*text);
		*text = NULL;
	}
	return rc;
}

static bool numeric(enum cim_type t)
{
	return t == CIM_TYPE_SINT64 || t == CIM_TYPE_UINT64 || t == CIM_TYPE_REAL64;
}

/* The type of an array holding elements of type a and b. */
static int unify(const struct mof *m, const char *prop, enum cim_type a, enum cim_type b,
		 enum cim_type *out)
{
	if (a == b)
		*out = a;
	else if (numeric(a) && numeric(b))
		*out = (a == CIM_TYPE_REAL64 || b == CIM_TYPE_REAL64) ? CIM_TYPE_REAL64
								      : CIM_TYPE_UINT64;
	else
		return merr(m->t.line, "array %s mixes %s and %s values", prop, cim_type_name(a),
			    cim_type_name(b));
	return 0;
}

static int push(struct cim_prop *p, char *v)
{
	char **vals = realloc(p->values, (p->nvalues + 1) * sizeof *vals);
	if (!vals) {
		free(v);
		return hv_err(HV_ENOMEM, "embedded instance: out of memory");
	}
	p->values = vals;
	p->values[p->nvalues++] = v;
	return 0;
}

/* { v, v, ... } with the '{' current. */
static int array(struct mof *m, struct cim_prop *p)
{
	int rc = lex(m);
	p->is_array = true;
	p->type = CIM_TYPE_STRING;
	if (!rc && is_punct(m, '}'))
		return lex(m);
	while (!rc) {
		enum cim_type t;
		char *v = NULL;
		unsigned line = m->t.line;
		if ((rc = literal(m, &t, &v)))
			break;
		if (!v)
			return merr(line, "NULL inside array %s is not supported", p->name);
		if ((rc = push(p, v)))
			break;
		if (p->nvalues == 1)
			p->type = t;
		else if ((rc = unify(m, p->name, p->type, t, &p->type)))
			break;
		if (is_punct(m, '}'))
			return lex(m);
		rc = expect_punct(m, ',', "or '}' between array elements");
	}
	return rc;
}

/* Name = value ; */
static int property(struct mof *m, struct cim_instance *inst)
{
	struct cim_prop p = {.type_inferred = true};
	char buf[64];
	int rc = skip_qualifiers(m);
	if (rc)
		return rc;
	unsigned line = m->t.line;
	if (m->t.kind != T_IDENT)
		return merr(line, "expected a property name, found %s", desc(m, buf, sizeof buf));
	p.name = m->t.text;
	m->t.text = NULL;
	if ((rc = lex(m)) || (rc = expect_punct(m, '=', "after the property name")))
		goto fail;
	if (is_punct(m, '{')) {
		rc = array(m, &p);
	} else {
		char *v = NULL;
		rc = literal(m, &p.type, &v);
		if (!rc && v)
			rc = push(&p, v);
		p.is_null = !rc && !v;
	}
	if (rc || (rc = expect_punct(m, ';', "after the value")))
		goto fail;
	if ((rc = cim_instance_take_prop(inst, &p)) == HV_EINVAL)
		return merr(line, "%s", hv_errmsg());
	return rc;
fail:
	cim_prop_clear(&p);
	return rc;
}

/* instance of Class [as $alias] { ... } [;] */
static int instance(struct mof *m, struct cim_instance **out)
{
	char buf[64];
	int rc = skip_qualifiers(m);
	if (rc)
		return rc;
	if (!is_word(m, "instance"))
		return merr(m->t.line, "expected 'instance of', found %s", desc(m, buf, sizeof buf));
	if ((rc = lex(m)))
		return rc;
	if (!is_word(m, "of"))
		return merr(m->t.line, "expected 'of' after 'instance', found %s",
			    desc(m, buf, sizeof buf));
	if ((rc = lex(m)))
		return rc;
	if (m->t.kind != T_IDENT)
		return merr(m->t.line, "expected a class name, found %s", desc(m, buf, sizeof buf));
	if ((rc = cim_instance_new(m->t.text, out)) || (rc = lex(m)))
		return rc;
	if (is_word(m, "as")) {
		if ((rc = lex(m)))
			return rc;
		if (m->t.kind != T_ALIAS)
			return merr(m->t.line, "expected $alias after 'as'");
		if ((rc = lex(m)))
			return rc;
	}
	if ((rc = expect_punct(m, '{', "after the class name")))
		return rc;
	while (!is_punct(m, '}'))
		if ((rc = property(m, *out)))
			return rc;
	if ((rc = lex(m)) || (is_punct(m, ';') && (rc = lex(m))))
		return rc;
	if (m->t.kind != T_END)
		return merr(m->t.line, "text after the instance (only one is accepted): %s",
			    desc(m, buf, sizeof buf));
	return 0;
}

int cim_mof_parse(const char *text, size_t len, struct cim_instance **out)
{
	struct mof m = {.s = text, .line = 1};
	*out = NULL;
	size_t bad = cim_utf8_check(text, len); /* text is NUL-terminated at len */
	if (bad < len) {
		unsigned line = 1;
		for (size_t k = 0; k < bad; k++)
			line += text[k] == '\n';
		return merr(line, "text is not valid UTF-8 (byte %zu)", bad);
	}
	int rc = lex(&m);
	if (!rc)
		rc = instance(&m, out);
	free(m.t.text);
	if (rc) {
		cim_instance_free(*out);
		*out = NULL;
	}
	return rc;
}
