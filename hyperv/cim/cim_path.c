/*
 * cim_path — WMI object paths: parse (every shape listed in cim.h, errors naming the byte
 * position), canonical __RELPATH / full-path text, identity comparison and key lookup.
 *
 * The parser is a single left-to-right pass with one byte of look-ahead; it never backtracks and
 * never allocates from a length it has not bounded (the whole text is <= CIM_PATH_MAX). Must not
 * know which keys a class has: a path with the wrong keys is the provider's error, not ours.
 */
#include "cim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_NS "root\\virtualization\\v2"

struct pp {
	const char *s;
	size_t n, i;
	size_t err_pos;
	struct cim_path *path;
};

static int perr(struct pp *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(struct pp *p, size_t pos, const char *fmt, ...)
{
	char cause[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cause, sizeof cause, fmt, ap);
	va_end(ap);
	p->err_pos = pos;
	if (pos < p->n && cim_is_space(p->s[pos]))
		snprintf(cause, sizeof cause, "white space is not allowed in an object path");
	return hv_err(HV_EINVAL, "object path: position %zu: %s", pos, cause);
}

static char peek(const struct pp *p) { return p->i < p->n ? p->s[p->i] : 0; }
static bool at_end(const struct pp *p) { return p->i >= p->n; }
static bool is_sep(char c) { return c == '\\' || c == '/'; }
static bool is_host_char(char c) { return cim_is_ident(c) || c == '.' || c == '-'; }

/* Describes the byte at pos for messages: "end of path" or "'x'". */
static const char *found(const struct pp *p, size_t pos, char *buf, size_t n)
{
	if (pos >= p->n)
		return "end of path";
	unsigned char c = (unsigned char)p->s[pos];
	if (c >= 0x20 && c < 0x7f)
		snprintf(buf, n, "'%c'", c);
	else
		snprintf(buf, n, "byte 0x%02x", c);
	return buf;
}

static int expected(struct pp *p, const char *what)
{
	char buf[16];
	return perr(p, p->i, "expected %s, found %s", what, found(p, p->i, buf, sizeof buf));
}

/* ---- pieces ---------------------------------------------------------------------------------*/

/* \\HOST\ or //HOST/ : host name up to the next separator. */
static int parse_host(struct pp *p)
{
	p->i = 2;
	size_t start = p->i;
	while (!at_end(p) && is_host_char(peek(p)))
		p->i++;
	if (p->i == start)
		return expected(p, "a host name after '\\\\'");
	if (!is_sep(peek(p)))
		return expected(p, "'\\' after the host name");
	if (!(p->path->host = cim_strndup(p->s + start, p->i - start)))
		return hv_err(HV_ENOMEM, "object path: out of memory");
	p->i++;
	return 0;
}

/* root\virtualization\v2 up to ':' (separators normalised to backslashes), then the ':'. */
static int parse_ns(struct pp *p)
{
	struct cim_sb b = {0};
	for (;;) {
		size_t start = p->i;
		while (!at_end(p) && cim_is_ident(peek(p)))
			p->i++;
		if (p->i == start) {
			cim_sb_discard(&b);
			return expected(p, "a namespace name");
		}
		cim_sb_add(&b, p->s + start, p->i - start);
		if (peek(p) == ':')
			break;
		if (!is_sep(peek(p))) {
			cim_sb_discard(&b);
			return expected(p, "'\\' or ':' in the namespace");
		}
		cim_sb_addc(&b, '\\');
		p->i++;
	}
	p->i++;
	if (!(p->path->ns = cim_sb_finish(&b)))
		return HV_ENOMEM;
	return 0;
}

/* A namespace prefix is present when identifier characters and separators run up to a ':'. */
static bool has_ns_prefix(const struct pp *p)
{
	for (size_t i = 0; i < p->n; i++) {
		char c = p->s[i];
		if (c == ':')
			return i > 0;
		if (!cim_is_ident(c) && !is_sep(c))
			return false;
	}
	return false;
}

static int parse_ident(struct pp *p, const char *what, char **out)
{
	size_t start = p->i;
	if (!cim_is_ident_start(peek(p)))
		return expected(p, what);
	while (!at_end(p) && cim_is_ident(peek(p)))
		p->i++;
	if (!(*out = cim_strndup(p->s + start, p->i - start)))
		return hv_err(HV_ENOMEM, "object path: out of memory");
	return 0;
}

/* "..." or '...' with \\ \" \' escapes; p->i at the opening quote. */
static int parse_quoted(struct pp *p, char **out)
{
	size_t open = p->i;
	char q = p->s[p->i++];
	struct cim_sb b = {0};
	for (;;) {
		if (at_end(p)) {
			cim_sb_discard(&b);
			return perr(p, open, "unterminated string (no closing %c)", q);
		}
		char c = p->s[p->i];
		if (c == q)
			break;
		if (c == '\\' && p->i + 1 >= p->n) {
			cim_sb_discard(&b);
			return perr(p, open, "unterminated string (no closing %c)", q);
		}
		if (c == '\\') {
			char e = p->s[p->i + 1];
			if (e != '\\' && e != '"' && e != '\'') {
				cim_sb_discard(&b);
				return perr(p, p->i, "unknown escape in string (write \\\\ for a "
						     "backslash)");
			}
			c = e;
			p->i++;
		}
		cim_sb_addc(&b, c);
		p->i++;
	}
	p->i++;
	return (*out = cim_sb_finish(&b)) ? 0 : HV_ENOMEM;
}

/* Unquoted key value: an integer or TRUE/FALSE, up to ',' or the end. */
static int parse_bare(struct pp *p, char **out)
{
	size_t start = p->i;
	while (!at_end(p) && peek(p) != ',' && !cim_is_space(peek(p)))
		p->i++;
	if (p->i == start)
		return expected(p, "a key value");
	char *v = cim_strndup(p->s + start, p->i - start);
	if (!v)
		return hv_err(HV_ENOMEM, "object path: out of memory");
	bool neg;
	uint64_t mag;
	if (!cim_parse_int(v, &neg, &mag) && !cim_ieq(v, "true") && !cim_ieq(v, "false")) {
		free(v);
		return perr(p, start, "expected a quoted string, a number or TRUE/FALSE as key "
				      "value");
	}
	*out = v;
	return 0;
}

static int parse_value(struct pp *p, const char *name, size_t name_pos)
{
	char *value = NULL;
	bool quoted = peek(p) == '"' || peek(p) == '\'';
	int rc = quoted ? parse_quoted(p, &value) : parse_bare(p, &value);
	if (rc)
		return rc;
	if (cim_path_key(p->path, name))
		rc = perr(p, name_pos, "duplicate key '%s'", name);
	else
		rc = cim_path_add_key(p->path, name, value, quoted);
	free(value);
	return rc;
}

/* K1=v1,K2=v2 after the '.'. */
static int parse_keys(struct pp *p)
{
	for (;;) {
		char *name = NULL;
		size_t name_pos = p->i;
		int rc = parse_ident(p, "a key name", &name);
		if (rc)
			return rc;
		if (peek(p) != '=') {
			rc = expected(p, "'=' after key name");
		} else {
			p->i++;
			rc = parse_value(p, name, name_pos);
		}
		free(name);
		if (rc)
			return rc;
		if (at_end(p))
			return 0;
		if (peek(p) != ',')
			return expected(p, "',' or end of path after key value");
		p->i++;
	}
}

/* After the class name: end, '.keys', '=@' or '=value'. */
static int parse_after_class(struct pp *p)
{
	if (at_end(p))
		return 0;
	if (peek(p) == '.') {
		p->i++;
		return parse_keys(p);
	}
	if (peek(p) != '=')
		return expected(p, "'.', '=' or end of path after class name");
	p->i++;
	if (peek(p) == '@') {
		p->i++;
		p->path->singleton = true;
	} else {
		int rc = parse_value(p, "", p->i);
		if (rc)
			return rc;
	}
	return at_end(p) ? 0 : expected(p, "end of path");
}

static int parse_all(struct pp *p)
{
	int rc;
	if (p->n == 0)
		return perr(p, 0, "empty object path");
	if (p->n > CIM_PATH_MAX)
		return perr(p, CIM_PATH_MAX, "longer than %u bytes", CIM_PATH_MAX);
	const char *nul = memchr(p->s, 0, p->n);
	if (nul)
		return perr(p, (size_t)(nul - p->s), "NUL byte in object path");
	if (p->n >= 2 && is_sep(p->s[0]) && p->s[1] == p->s[0]) {
		if ((rc = parse_host(p)) || (rc = parse_ns(p)))
			return rc;
	} else if (has_ns_prefix(p)) {
		if ((rc = parse_ns(p)))
			return rc;
	}
	if ((rc = parse_ident(p, "a class name", &p->path->class_name)))
		return rc;
	return parse_after_class(p);
}

int cim_path_parse_ex(const char *text, size_t len, struct cim_path **out, size_t *err_pos)
{
	struct pp p = {.s = text, .n = len};
	*out = NULL;
	if (!(p.path = calloc(1, sizeof *p.path)))
		return hv_err(HV_ENOMEM, "object path: out of memory");
	int rc = parse_all(&p);
	if (rc) {
		cim_path_free(p.path);
		if (err_pos)
			*err_pos = p.err_pos;
		return rc;
	}
	*out = p.path;
	return 0;
}

int cim_path_parse(const char *text, struct cim_path **out)
{
	if (!text) {
		*out = NULL;
		return hv_err(HV_EINVAL, "object path: position 0: NULL path");
	}
	return cim_path_parse_ex(text, strnlen(text, CIM_PATH_MAX + 1), out, NULL);
}

/* ---- building -------------------------------------------------------------------------------*/

int cim_path_new(const char *class_name, struct cim_path **out)
{
	*out = NULL;
	if (!class_name || !*class_name)
		return hv_err(HV_EINVAL, "object path: empty class name");
	struct cim_path *p = calloc(1, sizeof *p);
	if (!p || !(p->class_name = cim_strdup(class_name))) {
		free(p);
		return hv_err(HV_ENOMEM, "object path: out of memory");
	}
	*out = p;
	return 0;
}

int cim_path_add_key(struct cim_path *p, const char *name, const char *value, bool quoted)
{
	if (!name || !value)
		return hv_err(HV_EINVAL, "object path: NULL key name or value");
	if (cim_path_key(p, name) || (p->nkeys && (!*name || !*p->keys[0].name)))
		return hv_err(HV_EINVAL, "object path: duplicate key '%s'", name);
	struct cim_key *k = realloc(p->keys, (p->nkeys + 1) * sizeof *k);
	if (!k)
		return hv_err(HV_ENOMEM, "object path: out of memory");
	p->keys = k;
	k += p->nkeys;
	k->name = cim_strdup(name);
	k->value = cim_strdup(value);
	k->quoted = quoted;
	if (!k->name || !k->value) {
		free(k->name);
		free(k->value);
		return hv_err(HV_ENOMEM, "object path: out of memory");
	}
	p->nkeys++;
	return 0;
}

static char *dup_opt(const char *s, bool *fail)
{
	char *d = s ? cim_strdup(s) : NULL;
	if (s && !d)
		*fail = true;
	return d;
}

struct cim_path *cim_path_dup(const struct cim_path *p)
{
	struct cim_path *d = NULL;
	bool fail = false;
	if (cim_path_new(p->class_name, &d))
		return NULL;
	d->host = dup_opt(p->host, &fail);
	d->ns = dup_opt(p->ns, &fail);
	d->singleton = p->singleton;
	for (size_t i = 0; i < p->nkeys && !fail; i++)
		fail = cim_path_add_key(d, p->keys[i].name, p->keys[i].value, p->keys[i].quoted);
	if (fail) {
		cim_path_free(d);
		hv_err(HV_ENOMEM, "object path: out of memory");
		return NULL;
	}
	return d;
}

void cim_path_free(struct cim_path *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nkeys; i++) {
		free(p->keys[i].name);
		free(p->keys[i].value);
	}
	free(p->keys);
	free(p->host);
	free(p->ns);
	free(p->class_name);
	free(p);
}

/* ---- formatting -----------------------------------------------------------------------------*/

static void add_escaped(struct cim_sb *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			cim_sb_addc(b, '\\');
		cim_sb_addc(b, *v);
	}
}

char *cim_path_escape(const char *value)
{
	struct cim_sb b = {0};
	add_escaped(&b, value);
	return cim_sb_finish(&b);
}

static void add_value(struct cim_sb *b, const struct cim_key *k)
{
	if (!k->quoted) {
		cim_sb_adds(b, k->value);
		return;
	}
	cim_sb_addc(b, '"');
	add_escaped(b, k->value);
	cim_sb_addc(b, '"');
}

static int key_order(const void *a, const void *b)
{
	const struct cim_key *ka = *(const struct cim_key *const *)a;
	const struct cim_key *kb = *(const struct cim_key *const *)b;
	return cim_icmp(ka->name, kb->name);
}

static void add_rel(struct cim_sb *b, const struct cim_path *p)
{
	cim_sb_adds(b, p->class_name);
	if (p->singleton) {
		cim_sb_adds(b, "=@");
		return;
	}
	if (p->nkeys == 1 && !*p->keys[0].name) {
		cim_sb_addc(b, '=');
		add_value(b, &p->keys[0]);
		return;
	}
	const struct cim_key **sorted = malloc(p->nkeys * sizeof *sorted + 1);
	if (!sorted) {
		b->oom = true;
		return;
	}
	for (size_t i = 0; i < p->nkeys; i++)
		sorted[i] = &p->keys[i];
	qsort(sorted, p->nkeys, sizeof *sorted, key_order);
	for (size_t i = 0; i < p->nkeys; i++) {
		cim_sb_addc(b, i ? ',' : '.');
		cim_sb_adds(b, sorted[i]->name);
		cim_sb_addc(b, '=');
		add_value(b, sorted[i]);
	}
	free(sorted);
}

char *cim_path_format_rel(const struct cim_path *p)
{
	struct cim_sb b = {0};
	add_rel(&b, p);
	return cim_sb_finish(&b);
}

char *cim_path_format_full(const struct cim_path *p, const char *host, const char *ns)
{
	struct cim_sb b = {0};
	host = host ? host : p->host ? p->host : ".";
	ns = ns ? ns : p->ns ? p->ns : DEFAULT_NS;
	cim_sb_adds(&b, "\\\\");
	cim_sb_adds(&b, host);
	cim_sb_addc(&b, '\\');
	for (const char *c = ns; *c; c++)
		cim_sb_addc(&b, *c == '/' ? '\\' : *c);
	cim_sb_addc(&b, ':');
	add_rel(&b, p);
	return cim_sb_finish(&b);
}

/* ---- identity -------------------------------------------------------------------------------*/

static bool values_equal(const struct cim_key *a, const struct cim_key *b)
{
	bool na, nb;
	uint64_t ma, mb;
	if (!a->quoted && !b->quoted && cim_parse_int(a->value, &na, &ma) &&
	    cim_parse_int(b->value, &nb, &mb))
		return ma == mb && (na == nb || ma == 0);
	return cim_ieq(a->value, b->value);
}

static bool ns_equal(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char ca = is_sep(*a) ? '\\' : cim_lower(*a), cb = is_sep(*b) ? '\\' : cim_lower(*b);
		if (ca != cb)
			return false;
	}
	return *a == *b;
}

bool cim_path_equal(const struct cim_path *a, const struct cim_path *b)
{
	if (!a || !b)
		return a == b;
	if (!cim_ieq(a->class_name, b->class_name) || a->singleton != b->singleton ||
	    a->nkeys != b->nkeys)
		return false;
	if (a->host && b->host && strcmp(a->host, ".") && strcmp(b->host, ".") &&
	    !cim_ieq(a->host, b->host))
		return false;
	if (a->ns && b->ns && !ns_equal(a->ns, b->ns))
		return false;
	for (size_t i = 0; i < a->nkeys; i++) {
		const struct cim_key *ka = &a->keys[i], *kb = NULL;
		for (size_t j = 0; j < b->nkeys && !kb; j++)
			if (cim_ieq(ka->name, b->keys[j].name))
				kb = &b->keys[j];
		if (!kb || !values_equal(ka, kb))
			return false;
	}
	return true;
}

bool cim_path_text_equal(const char *a, const char *b)
{
	struct cim_path *pa = NULL, *pb = NULL;
	bool eq = !cim_path_parse(a, &pa) && !cim_path_parse(b, &pb) && cim_path_equal(pa, pb);
	cim_path_free(pa);
	cim_path_free(pb);
	return eq;
}

const char *cim_path_key(const struct cim_path *p, const char *name)
{
	for (size_t i = 0; i < p->nkeys; i++)
		if (cim_ieq(p->keys[i].name, name))
			return p->keys[i].value;
	return NULL;
}
