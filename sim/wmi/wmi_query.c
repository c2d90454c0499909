/*
 * wmi_query.c — GetObject and WQL over the class views: SELECT (WHERE translated to a
 * parameterised SQL WHERE: string comparisons case-insensitive as WQL's are, LIKE through
 * wql_like_match, references compared as canonical paths), ASSOCIATORS OF and REFERENCES OF
 * (one SQL lookup per association class and role pair), and the rows turned into typed
 * cim_instances. Reading a job is a poll (wmi_jobs.c) and returns the job's state after it.
 *
 * Must not: scan instances in C (every filter runs in SQLite), change host state except through
 * job polls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wmi_internal.h"
#include "../host/host.h"
#include "../truth/truth.h"

/* ---- open / close ----------------------------------------------------------------------------- */

int hvsim_wmi_open(struct host *h, struct hvsim_wmi **out)
{
	struct hvsim_wmi *w = calloc(1, sizeof *w);
	if (!w)
		return hv_err(HV_ENOMEM, "out of memory");
	w->h = h;
	w->db = host_db(h);
	char *name = host_setting_get(h, "host.name");
	snprintf(w->host_name, sizeof w->host_name, "%s", name ? name : "HVSIM-HOST");
	free(name);
	snprintf(w->prefix, sizeof w->prefix, "\\\\%s\\%s:", w->host_name, WMI_NAMESPACE);
	w->strict = host_setting_int(h, "wmi.strict", 1) != 0;
	int r = wmi_schema_install(w);
	if (r) {
		free(w);
		return r;
	}
	*out = w;
	return 0;
}

void hvsim_wmi_close(struct hvsim_wmi *w)
{
	if (!w)
		return;
	wmi_schema_uninstall(w);
	free(w);
}

int wmi_audit(struct hvsim_wmi *w, const char *call, const char *args, uint32_t hresult, const char *result,
	      const char *mistake)
{
	char res[1024];
	if (hresult)
		snprintf(res, sizeof res, "0x%08X %s", hresult, cim_wbem_name(hresult));
	else
		snprintf(res, sizeof res, "%s", result ? result : "0");
	return truth_audit(w->db, host_now(w->h), "wmi", call, args, res, mistake);
}

/* ---- paths ------------------------------------------------------------------------------------ */

int wmi_path_canon(struct hvsim_wmi *w, const char *text, char **out, const struct wmi_class **cls)
{
	struct cim_path *p = NULL;
	int r = cim_path_parse(text, &p);
	if (r)
		return r;
	const struct wmi_class *c = wmi_class_find(p->class_name);
	if (!c || !c->source || !*c->source) {
		r = hv_err(HV_ENOTFOUND, "%s: no class %s in %s", text, p->class_name, WMI_NAMESPACE);
		goto out;
	}
	if (p->host && strcmp(p->host, ".") && strcasecmp(p->host, w->host_name)) {
		r = hv_err(HV_ENOTFOUND, "%s: host %s is not this host (%s)", text, p->host, w->host_name);
		goto out;
	}
	if (p->ns && strcasecmp(p->ns, WMI_NAMESPACE)) {
		r = hv_err(HV_ENOTFOUND, "%s: namespace %s is not %s", text, p->ns, WMI_NAMESPACE);
		goto out;
	}
	/* schema spelling for class and key names; the key set must be the class's */
	free(p->class_name);
	p->class_name = strdup(c->name);
	size_t nkeys = 0;
	for (size_t i = 0; i < c->nprops; i++)
		nkeys += c->props[i].key;
	if (p->nkeys != nkeys) {
		r = hv_err(HV_EINVAL, "%s: %s has %zu key(s), the path gives %zu", text, c->name, nkeys, p->nkeys);
		goto out;
	}
	for (size_t i = 0; i < p->nkeys; i++) {
		const struct wmi_prop *kp = wmi_class_prop(c, p->keys[i].name);
		if (!kp || !kp->key) {
			r = hv_err(HV_EINVAL, "%s: '%s' is not a key of %s", text, p->keys[i].name, c->name);
			goto out;
		}
		free(p->keys[i].name);
		p->keys[i].name = strdup(kp->name);
		if (kp->type == CIM_TYPE_REFERENCE) { /* a reference key compares as a canonical path */
			char *inner = NULL;
			if ((r = wmi_path_canon(w, p->keys[i].value, &inner, NULL)))
				goto out;
			free(p->keys[i].value);
			p->keys[i].value = inner;
		}
		p->keys[i].quoted = true;
	}
	*out = cim_path_format_full(p, w->host_name, WMI_NAMESPACE);
	if (!*out)
		r = hv_err(HV_ENOMEM, "out of memory");
	if (cls)
		*cls = c;
out:
	cim_path_free(p);
	return r;
}

/* ---- rows → objects --------------------------------------------------------------------------- */

/* Decodes a JSON array of strings/numbers (as SQLite's json_array/json_group_array write them). */
static int json_array_values(const char *s, char ***vals, size_t *n)
{
	*vals = NULL;
	*n = 0;
	size_t cap = 0;
	const char *p = s;
	while (*p == ' ')
		p++;
	if (*p++ != '[')
		return hv_err(HV_ECORRUPT, "wmi: array value is not a JSON array: %.40s", s);
	for (;;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == ']')
			return 0;
		if (!*p)
			break;
		char *v;
		if (*p == '"') {
			size_t len = 0;
			v = malloc(strlen(p) + 1);
			if (!v)
				goto nomem;
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1]) {
					p++;
					char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p == 'b' ? '\b' : *p == 'f' ? '\f' : *p;
					if (*p == 'u' && p[1] && p[2] && p[3] && p[4]) {
						unsigned cp = (unsigned)strtoul((char[]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
						p += 4;
						if (cp < 0x80) {
							v[len++] = (char)cp;
						} else if (cp < 0x800) {
							v[len++] = (char)(0xC0 | cp >> 6);
							v[len++] = (char)(0x80 | (cp & 0x3F));
						} else {
							v[len++] = (char)(0xE0 | cp >> 12);
							v[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
							v[len++] = (char)(0x80 | (cp & 0x3F));
						}
						continue;
					}
					v[len++] = c;
				} else {
					v[len++] = *p;
				}
			}
			if (*p != '"') {
				free(v);
				break;
			}
			p++;
			v[len] = 0;
		} else {
			const char *e = p;
			while (*e && *e != ',' && *e != ']')
				e++;
			v = strndup(p, (size_t)(e - p));
			if (!v)
				goto nomem;
			p = e;
		}
		if (*n == cap) {
			cap = cap ? 2 * cap : 4;
			char **nv = realloc(*vals, cap * sizeof *nv);
			if (!nv) {
				free(v);
				goto nomem;
			}
			*vals = nv;
		}
		(*vals)[(*n)++] = v;
	}
	for (size_t i = 0; i < *n; i++)
		free((*vals)[i]);
	free(*vals);
	*vals = NULL;
	*n = 0;
	return hv_err(HV_ECORRUPT, "wmi: malformed JSON array: %.40s", s);
nomem:
	for (size_t i = 0; i < *n; i++)
		free((*vals)[i]);
	free(*vals);
	*vals = NULL;
	*n = 0;
	return hv_err(HV_ENOMEM, "out of memory");
}

int wmi_row_object(const struct wmi_class *c, sqlite3_stmt *st, struct wmi_object *out)
{
	memset(out, 0, sizeof *out);
	int r = cim_instance_new(c->name, &out->inst);
	if (r)
		return r;
	for (size_t i = 0; i < c->nprops && !r; i++) {
		const struct wmi_prop *p = &c->props[i];
		int col = (int)i;
		if (sqlite3_column_type(st, col) == SQLITE_NULL) {
			r = p->array ? cim_instance_set_array(out->inst, p->name, p->type, NULL, 0)
				     : cim_instance_set(out->inst, p->name, p->type, NULL);
			continue;
		}
		const char *t = (const char *)sqlite3_column_text(st, col);
		if (p->array) {
			char **vals;
			size_t n;
			if (!(r = json_array_values(t, &vals, &n))) {
				r = cim_instance_set_array(out->inst, p->name, p->type, (const char *const *)vals, n);
				for (size_t k = 0; k < n; k++)
					free(vals[k]);
				free(vals);
			}
		} else if (p->type == CIM_TYPE_BOOLEAN) {
			r = cim_instance_set(out->inst, p->name, p->type, sqlite3_column_int(st, col) ? "TRUE" : "FALSE");
		} else {
			r = cim_instance_set(out->inst, p->name, p->type, t);
		}
	}
	const char *path = (const char *)sqlite3_column_text(st, (int)c->nprops);
	const char *rel = (const char *)sqlite3_column_text(st, (int)c->nprops + 1);
	if (!r && (!path || !rel))
		r = hv_err(HV_ECORRUPT, "wmi: %s instance without a path", c->name);
	if (!r) {
		out->path = strdup(path);
		out->relpath = strdup(rel);
		if (!out->path || !out->relpath)
			r = hv_err(HV_ENOMEM, "out of memory");
	}
	if (r)
		wmi_object_clear(out);
	return r;
}

static char *select_cols(const struct wmi_class *c)
{
	char *cols = sqlite3_mprintf("");
	for (size_t i = 0; i < c->nprops && cols; i++) {
		char *n = sqlite3_mprintf("%s\"%w\", ", cols, c->props[i].name);
		sqlite3_free(cols);
		cols = n;
	}
	char *n = cols ? sqlite3_mprintf("%s__PATH, __RELPATH", cols) : NULL;
	sqlite3_free(cols);
	return n;
}

int wmi_fetch(struct hvsim_wmi *w, const struct wmi_class *c, const char *canon, struct wmi_object *out)
{
	char *cols = select_cols(c);
	char *sql = cols ? sqlite3_mprintf("SELECT %s FROM \"%w\" WHERE __PATH = ?1 COLLATE NOCASE", cols, c->name) : NULL;
	sqlite3_free(cols);
	if (!sql)
		return hv_err(HV_ENOMEM, "out of memory");
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(w->db, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return hv_err(HV_EIO, "wmi: %s: %s", c->name, sqlite3_errmsg(w->db));
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
	int r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = wmi_row_object(c, st, out);
	else if (rc == SQLITE_DONE)
		r = hv_err(HV_ENOTFOUND, "%s: no such object", canon);
	else
		r = hv_err(HV_EIO, "wmi: %s: %s", c->name, sqlite3_errmsg(w->db));
	sqlite3_finalize(st);
	return r;
}

/* ---- results ---------------------------------------------------------------------------------- */

static int result_push(struct wmi_result *res, struct wmi_object *o)
{
	if ((res->n & (res->n - 1)) == 0 || res->n == 0) { /* grow at powers of two */
		size_t cap = res->n ? 2 * res->n : 4;
		struct wmi_object *nv = realloc(res->v, cap * sizeof *nv);
		if (!nv)
			return hv_err(HV_ENOMEM, "out of memory");
		res->v = nv;
	}
	res->v[res->n++] = *o;
	memset(o, 0, sizeof *o);
	return 0;
}

static bool result_has(const struct wmi_result *res, const char *path)
{
	for (size_t i = 0; i < res->n; i++)
		if (!strcasecmp(res->v[i].path, path))
			return true;
	return false;
}

/* Jobs in a result were polled by being read: advance each and re-read it. */
static int poll_jobs(struct hvsim_wmi *w, struct wmi_result *res)
{
	const struct wmi_class *jc = wmi_class_find("Msvm_ConcreteJob");
	for (size_t i = 0; i < res->n; i++) {
		if (strcmp(res->v[i].inst->class_name, jc->name))
			continue;
		char *path = strdup(res->v[i].path);
		struct cim_path *cp = NULL;
		int r = path ? cim_path_parse(path, &cp) : hv_err(HV_ENOMEM, "out of memory");
		const char *id = cp ? cim_path_key(cp, "InstanceID") : NULL;
		if (!r)
			r = id ? wmi_job_poll(w, id) : hv_err(HV_ECORRUPT, "wmi: job path %s has no InstanceID", path);
		cim_path_free(cp);
		if (!r) {
			struct wmi_object o;
			r = wmi_fetch(w, jc, path, &o);
			if (!r) {
				wmi_object_clear(&res->v[i]);
				res->v[i] = o;
			}
		}
		free(path);
		if (r)
			return r;
	}
	return 0;
}

/* ---- SELECT ----------------------------------------------------------------------------------- */

struct sqlbuf {
	char *s;
	int nbind;
	struct wql_literal *binds[WQL_MAX_NODES];
};

static void sb_add(struct sqlbuf *b, const char *fmt, const char *a)
{
	if (!b->s)
		return;
	char *n = sqlite3_mprintf(fmt, b->s, a);
	sqlite3_free(b->s);
	b->s = n;
}

static const char *sys_prop(const char *name)
{
	static const char *sys[] = {"__PATH", "__RELPATH", "__CLASS"};
	for (size_t i = 0; i < 3; i++)
		if (!strcasecmp(name, sys[i]))
			return sys[i];
	return NULL;
}

/* Translates an expression for class c. Unknown properties are query errors (WMI's too). */
static int translate(const struct wmi_class *c, const struct wql_expr *e, struct sqlbuf *b, size_t *err_pos)
{
	static const char *ops[] = {"=", "<>", "<", ">", "<=", ">="};
	switch (e->kind) {
	case WQL_EXPR_AND:
	case WQL_EXPR_OR: {
		sb_add(b, "%s(%s", "");
		int r = translate(c, e->left, b, err_pos);
		sb_add(b, "%s%s", e->kind == WQL_EXPR_AND ? ") AND (" : ") OR (");
		if (!r)
			r = translate(c, e->right, b, err_pos);
		sb_add(b, "%s%s", ")");
		return r;
	}
	case WQL_EXPR_NOT: {
		sb_add(b, "%s%s", "NOT (");
		int r = translate(c, e->left, b, err_pos);
		sb_add(b, "%s%s", ")");
		return r;
	}
	default:
		break;
	}
	const char *sys = sys_prop(e->prop);
	const struct wmi_prop *p = sys ? NULL : wmi_class_prop(c, e->prop);
	if (!sys && !p) {
		*err_pos = e->pos;
		return hv_err(HV_EINVAL, "WQL: position %zu: %s has no property '%s'", e->pos, c->name, e->prop);
	}
	if (p && p->array) {
		*err_pos = e->pos;
		return hv_err(HV_EINVAL, "WQL: position %zu: '%s' is an array; WQL cannot compare arrays", e->pos, p->name);
	}
	char col[160];
	if (sys && !strcmp(sys, "__CLASS"))
		snprintf(col, sizeof col, "'%s'", c->name);
	else
		snprintf(col, sizeof col, "\"%s\"", sys ? sys : p->name);
	bool is_ref = (p && p->type == CIM_TYPE_REFERENCE) || (sys && !strcmp(sys, "__PATH"));
	bool is_rel = sys && !strcmp(sys, "__RELPATH");
	bool is_str = is_ref || (sys != NULL) || p->type == CIM_TYPE_STRING || p->type == CIM_TYPE_DATETIME ||
		      p->type == CIM_TYPE_CHAR16;
	if (b->nbind >= WQL_MAX_NODES)
		return hv_err(HV_EINVAL, "WQL: too many literals");
	switch (e->kind) {
	case WQL_EXPR_ISNULL:
		sb_add(b, "%s%s IS NULL", col);
		return 0;
	case WQL_EXPR_ISNOTNULL:
		sb_add(b, "%s%s IS NOT NULL", col);
		return 0;
	case WQL_EXPR_LIKE:
		b->binds[b->nbind] = (struct wql_literal *)&e->lit;
		b->nbind++;
		sb_add(b, "%swmi_like(%s, ?)", col);
		return 0;
	case WQL_EXPR_CMP: {
		b->binds[b->nbind] = (struct wql_literal *)&e->lit;
		/* references compare as canonical paths: key order, case and host spelling do not matter */
		b->nbind++;
		char frag[256];
		snprintf(frag, sizeof frag, "%%s%s %s %s%s", col, ops[e->op],
			 e->lit.kind != WQL_LIT_STRING ? "?"
			 : is_ref			? "coalesce(wmi_canon(?), ?)"
			 : is_rel			? "coalesce(wmi_rel(wmi_canon(?)), ?)"
							: "?",
			 is_str ? " COLLATE NOCASE" : "");
		if ((is_ref || is_rel) && e->lit.kind == WQL_LIT_STRING) { /* the literal is bound twice */
			b->binds[b->nbind] = (struct wql_literal *)&e->lit;
			b->nbind++;
		}
		sb_add(b, frag, "");
		return 0;
	}
	default:
		return hv_err(HV_EINVAL, "WQL: unsupported expression");
	}
}

static void bind_lit(sqlite3_stmt *st, int i, const struct wql_literal *l)
{
	switch (l->kind) {
	case WQL_LIT_STRING:
		sqlite3_bind_text(st, i, l->s, -1, SQLITE_STATIC);
		break;
	case WQL_LIT_INT:
		sqlite3_bind_int64(st, i, l->i);
		break;
	case WQL_LIT_UINT:
		sqlite3_bind_double(st, i, (double)l->u);
		break;
	case WQL_LIT_REAL:
		sqlite3_bind_double(st, i, l->r);
		break;
	case WQL_LIT_BOOL:
		sqlite3_bind_int(st, i, l->b);
		break;
	case WQL_LIT_NULL:
		sqlite3_bind_null(st, i);
		break;
	}
}

/* Rows of one concrete class matching the query, appended to res. */
static int select_class(struct hvsim_wmi *w, const struct wmi_class *c, const struct wql_query *q,
			struct wmi_result *res, size_t *err_pos)
{
	struct sqlbuf b = {.s = sqlite3_mprintf("")};
	int r = 0;
	if (q->where)
		r = translate(c, q->where, &b, err_pos);
	char *cols = select_cols(c);
	char *sql = NULL;
	if (!r && b.s && cols)
		sql = sqlite3_mprintf("SELECT %s FROM \"%w\"%s%s ORDER BY __PATH", cols, c->name, q->where ? " WHERE " : "",
				      b.s);
	sqlite3_free(cols);
	sqlite3_free(b.s);
	if (r)
		return r;
	if (!sql)
		return hv_err(HV_ENOMEM, "out of memory");
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(w->db, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK)
		return hv_err(HV_EIO, "wmi: %s: %s", c->name, sqlite3_errmsg(w->db));
	for (int i = 0; i < b.nbind; i++)
		bind_lit(st, i + 1, b.binds[i]);
	while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct wmi_object o;
		r = wmi_row_object(c, st, &o);
		if (!r)
			r = result_push(res, &o);
	}
	if (!r && rc != SQLITE_DONE)
		r = hv_err(HV_EIO, "wmi: %s: %s", c->name, sqlite3_errmsg(w->db));
	sqlite3_finalize(st);
	return r;
}

/* Keeps only the selected properties (SELECT a, b): others are dropped from each instance. */
static int project(const struct wql_query *q, struct wmi_result *res)
{
	if (q->select_all)
		return 0;
	for (size_t i = 0; i < res->n; i++) {
		struct cim_instance *in = res->v[i].inst, *outi;
		if (cim_instance_new(in->class_name, &outi))
			return HV_ENOMEM;
		for (size_t k = 0; k < q->nprops; k++) {
			const struct cim_prop *p = cim_instance_prop(in, q->props[k]);
			if (!p)
				continue;
			int r = p->is_array ? cim_instance_set_array(outi, p->name, p->type, (const char *const *)p->values,
								     p->is_null ? 0 : p->nvalues)
					    : cim_instance_set(outi, p->name, p->type, p->is_null ? NULL : p->values[0]);
			if (r) {
				cim_instance_free(outi);
				return r;
			}
		}
		cim_instance_free(in);
		res->v[i].inst = outi;
	}
	return 0;
}

static int run_select(struct hvsim_wmi *w, const struct wql_query *q, struct wmi_result *res, uint32_t *hr)
{
	const struct wmi_class *qc = wmi_class_find(q->class_name);
	if (!qc) {
		*hr = WBEM_E_INVALID_CLASS;
		return hv_err(HV_ENOTFOUND, "WQL: position %zu: no class %s in %s", q->class_pos, q->class_name, WMI_NAMESPACE);
	}
	/* selected property names must exist in the class (or, for an abstract class, in a subclass) */
	for (size_t k = 0; k < q->nprops; k++) {
		bool found = sys_prop(q->props[k]) != NULL;
		for (size_t i = 0; !found && i < wmi_class_count(); i++) {
			const struct wmi_class *c = wmi_class_at(i);
			found = wmi_class_isa(c->name, qc->name) && wmi_class_prop(c, q->props[k]);
		}
		if (!found) {
			*hr = WBEM_E_INVALID_QUERY;
			return hv_err(HV_EINVAL, "WQL: %s has no property '%s'", qc->name, q->props[k]);
		}
	}
	size_t err_pos = 0;
	bool any_ok = false;
	int last = 0;
	for (size_t i = 0; i < wmi_class_count(); i++) {
		const struct wmi_class *c = wmi_class_at(i);
		if (!c->props || !wmi_class_isa(c->name, qc->name))
			continue;
		int r = select_class(w, c, q, res, &err_pos);
		if (r == HV_EINVAL && qc != c) { /* a subclass without the property: WMI skips it */
			last = r;
			continue;
		}
		if (r) {
			*hr = r == HV_EINVAL ? WBEM_E_INVALID_QUERY : WBEM_E_FAILED;
			return r;
		}
		any_ok = true;
	}
	if (!any_ok && last) {
		*hr = WBEM_E_INVALID_QUERY;
		return last;
	}
	return 0; /* the projection (SELECT a, b) is applied after jobs are polled */
}

/* ---- ASSOCIATORS OF / REFERENCES OF ----------------------------------------------------------- */

static int run_assoc(struct hvsim_wmi *w, const struct wql_query *q, struct wmi_result *res, uint32_t *hr)
{
	char *canon = NULL;
	const struct wmi_class *oc;
	int r = wmi_path_canon(w, q->object_text, &canon, &oc);
	if (r) {
		*hr = r == HV_ENOTFOUND ? WBEM_E_NOT_FOUND : WBEM_E_INVALID_OBJECT_PATH;
		return r;
	}
	struct wmi_object self;
	if ((r = wmi_fetch(w, oc, canon, &self))) {
		*hr = WBEM_E_NOT_FOUND;
		free(canon);
		return r;
	}
	wmi_object_clear(&self);
	const char *filters[] = {q->result_class, q->assoc_class};
	for (size_t i = 0; i < 2; i++)
		if (filters[i] && !wmi_class_find(filters[i])) {
			*hr = WBEM_E_INVALID_CLASS;
			free(canon);
			return hv_err(HV_ENOTFOUND, "WQL: no class %s in %s", filters[i], WMI_NAMESPACE);
		}
	bool refs = q->kind == WQL_REFERENCES;
	const char *assoc_filter = refs ? q->result_class : q->assoc_class;
	for (size_t i = 0; !r && i < wmi_class_count(); i++) {
		const struct wmi_class *ac = wmi_class_at(i);
		if (!ac->association || !ac->props)
			continue;
		if (assoc_filter && !wmi_class_isa(ac->name, assoc_filter))
			continue;
		for (size_t a = 0; !r && a < ac->nprops; a++) {
			const struct wmi_prop *role = &ac->props[a];
			if (role->type != CIM_TYPE_REFERENCE || (q->role && strcasecmp(q->role, role->name)))
				continue;
			for (size_t b2 = 0; !r && b2 < ac->nprops; b2++) {
				const struct wmi_prop *rr = &ac->props[b2];
				if (b2 == a || rr->type != CIM_TYPE_REFERENCE)
					continue;
				if (!refs && q->result_role && strcasecmp(q->result_role, rr->name))
					continue;
				char *cols = select_cols(ac);
				char *sql = cols ? sqlite3_mprintf("SELECT %s FROM \"%w\" WHERE \"%w\" = ?1 COLLATE NOCASE"
								   " ORDER BY \"%w\"", cols, ac->name, role->name, rr->name)
						 : NULL;
				sqlite3_free(cols);
				sqlite3_stmt *st;
				if (!sql || sqlite3_prepare_v2(w->db, sql, -1, &st, NULL) != SQLITE_OK) {
					sqlite3_free(sql);
					r = hv_err(HV_EIO, "wmi: %s: %s", ac->name, sqlite3_errmsg(w->db));
					break;
				}
				sqlite3_free(sql);
				sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
				while (!r && sqlite3_step(st) == SQLITE_ROW) {
					struct wmi_object o;
					if ((r = wmi_row_object(ac, st, &o)))
						break;
					if (refs) {
						if (!result_has(res, o.path))
							r = result_push(res, &o);
						wmi_object_clear(&o);
						continue;
					}
					const char *target = (const char *)sqlite3_column_text(st, (int)b2);
					const struct wmi_class *tc = NULL;
					char *tcanon = NULL;
					if (target && !wmi_path_canon(w, target, &tcanon, &tc) &&
					    (!q->result_class || wmi_class_isa(tc->name, q->result_class)) &&
					    !result_has(res, tcanon)) {
						struct wmi_object t;
						if (!wmi_fetch(w, tc, tcanon, &t))
							r = result_push(res, &t);
					}
					free(tcanon);
					wmi_object_clear(&o);
				}
				sqlite3_finalize(st);
				if (refs)
					break; /* one pass per role is enough for references */
			}
		}
	}
	free(canon);
	if (r)
		*hr = WBEM_E_FAILED;
	return r;
}

/* ---- entry points ----------------------------------------------------------------------------- */

int hvsim_wmi_query(struct hvsim_wmi *w, const char *wql, struct wmi_result *out, uint32_t *hresult)
{
	memset(out, 0, sizeof *out);
	*hresult = 0;
	int r = wmi_jobs_expire(w);
	struct wql_query *q = NULL;
	size_t pos = 0;
	if (!r && (r = wql_parse_ex(wql, &q, &pos)))
		*hresult = r == HV_ENOMEM ? WBEM_E_OUT_OF_MEMORY : WBEM_E_INVALID_QUERY;
	if (!r)
		r = q->kind == WQL_SELECT ? run_select(w, q, out, hresult) : run_assoc(w, q, out, hresult);
	if (!r && (r = poll_jobs(w, out)))
		*hresult = WBEM_E_FAILED;
	if (!r && q->kind == WQL_SELECT && (r = project(q, out)))
		*hresult = WBEM_E_FAILED;
	if (r && !*hresult)
		*hresult = WBEM_E_FAILED;
	wql_query_free(q);
	char res[32];
	snprintf(res, sizeof res, "%zu object(s)", out->n);
	char *err = r ? strdup(hv_errmsg()) : NULL;
	wmi_audit(w, "ExecQuery", wql, *hresult, res, NULL);
	if (r) {
		wmi_result_clear(out);
		hv_err(r, "%s", err ? err : "query failed");
	}
	free(err);
	return r;
}

int hvsim_wmi_get(struct hvsim_wmi *w, const char *path, struct wmi_object *out, uint32_t *hresult)
{
	memset(out, 0, sizeof *out);
	*hresult = 0;
	char *canon = NULL;
	const struct wmi_class *c;
	int r = wmi_jobs_expire(w);
	if (!r && (r = wmi_path_canon(w, path, &canon, &c)))
		*hresult = r == HV_ENOTFOUND ? WBEM_E_NOT_FOUND : WBEM_E_INVALID_OBJECT_PATH;
	if (!r && (r = wmi_fetch(w, c, canon, out)))
		*hresult = r == HV_ENOTFOUND ? WBEM_E_NOT_FOUND : WBEM_E_FAILED;
	if (!r && !strcmp(c->name, "Msvm_ConcreteJob")) {
		struct wmi_result one = {1, out};
		r = poll_jobs(w, &one);
		if (r)
			*hresult = WBEM_E_FAILED;
	}
	char *err = r ? strdup(hv_errmsg()) : NULL;
	wmi_audit(w, "GetObject", path, *hresult, "found", NULL);
	if (r) {
		wmi_object_clear(out);
		hv_err(r, "%s", err ? err : "get failed");
	}
	free(err);
	free(canon);
	return r;
}
