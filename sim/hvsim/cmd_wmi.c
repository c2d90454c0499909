/*
 * cmd_wmi.c — `hvsim --host DIR wmi …`: the WMI provider from the command line.
 *   wmi query 'WQL' [--json]
 *   wmi get OBJECT-PATH [--json]
 *   wmi invoke OBJECT-PATH METHOD [Name=Value …] [--json]
 *   wmi wait JOB-PATH [--json] [--max-polls N]
 * Values of invoke are typed by the method's signature; an array parameter takes one Name=Value
 * per element; an empty value passes NULL; Name=@FILE reads the value from FILE (for embedded
 * instances as CIM-XML).
 *
 * Exit codes: 0 success (invoke: ReturnValue 0 or 4096; wait: the job completed, 7 or 32768),
 * 1 the call or the method failed, 2 usage error or the host cannot be opened.
 *
 * Must not: implement provider logic (sim/wmi does).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "commands.h"
#include "../host/host.h"
#include "../wmi/wmi.h"

static const char USAGE[] =
	"usage: hvsim --host DIR wmi <command>\n"
	"\n"
	"  query 'WQL' [--json]                   SELECT, ASSOCIATORS OF, REFERENCES OF\n"
	"  get OBJECT-PATH [--json]               one object by path (a job read this way is polled)\n"
	"  invoke OBJECT-PATH METHOD [Name=Value …] [--json]\n"
	"                                         call a method; Name= passes NULL, Name=@FILE reads the\n"
	"                                         value from a file, an array takes one Name=V per element\n"
	"  wait JOB-PATH [--json] [--max-polls N] poll a job until it ends; print its final state\n"
	"\n"
	"--json prints instances as objects with __CLASS, __PATH, __RELPATH and the properties;\n"
	"invoke --json prints the out-parameters (ReturnValue, Job, result references, arrays).\n";

/* ---- output ----------------------------------------------------------------------------------- */

static void json_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(o, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", o);
		else if (*p == '\r')
			fputs("\\r", o);
		else if (*p == '\t')
			fputs("\\t", o);
		else if (*p < 0x20)
			fprintf(o, "\\u%04x", *p);
		else
			fputc(*p, o);
	}
	fputc('"', o);
}

static void json_scalar(FILE *o, enum cim_type t, const char *v)
{
	if (t == CIM_TYPE_BOOLEAN)
		fputs(!strcasecmp(v, "true") ? "true" : "false", o);
	else if (cim_type_is_integer(t) || t == CIM_TYPE_REAL32 || t == CIM_TYPE_REAL64)
		fputs(v, o);
	else
		json_str(o, v);
}

static void json_instance(FILE *o, const struct cim_instance *in, const char *path, const char *rel, const char *ind)
{
	fputc('{', o);
	bool first = true;
	if (path) {
		fprintf(o, "\n%s  \"__CLASS\": ", ind);
		json_str(o, in->class_name);
		fprintf(o, ",\n%s  \"__PATH\": ", ind);
		json_str(o, path);
		fprintf(o, ",\n%s  \"__RELPATH\": ", ind);
		json_str(o, rel);
		first = false;
	}
	for (size_t i = 0; i < in->nprops; i++) {
		const struct cim_prop *p = &in->props[i];
		fprintf(o, "%s\n%s  ", first ? "" : ",", ind);
		first = false;
		json_str(o, p->name);
		fputs(": ", o);
		if (p->is_null) {
			fputs("null", o);
		} else if (p->is_array) {
			fputc('[', o);
			for (size_t k = 0; k < p->nvalues; k++) {
				if (k)
					fputs(", ", o);
				json_scalar(o, p->type, p->values[k]);
			}
			fputc(']', o);
		} else {
			json_scalar(o, p->type, p->values[0]);
		}
	}
	fprintf(o, "\n%s}", ind);
}

static void text_instance(FILE *o, const struct cim_instance *in, const char *path, const char *rel)
{
	size_t w = 9;
	for (size_t i = 0; i < in->nprops; i++)
		if (strlen(in->props[i].name) > w)
			w = strlen(in->props[i].name);
	if (path) {
		fprintf(o, "%-*s : %s\n", (int)w, "__CLASS", in->class_name);
		fprintf(o, "%-*s : %s\n", (int)w, "__PATH", path);
		fprintf(o, "%-*s : %s\n", (int)w, "__RELPATH", rel);
	}
	for (size_t i = 0; i < in->nprops; i++) {
		const struct cim_prop *p = &in->props[i];
		fprintf(o, "%-*s : ", (int)w, p->name);
		if (p->is_null)
			fputs("", o);
		else if (p->is_array) {
			fputc('{', o);
			for (size_t k = 0; k < p->nvalues; k++)
				fprintf(o, "%s%s", k ? ", " : "", p->values[k]);
			fputc('}', o);
		} else
			fputs(p->values[0], o);
		fputc('\n', o);
	}
}

/* ---- commands --------------------------------------------------------------------------------- */

struct session {
	struct host *h;
	struct hvsim_wmi *w;
};

static int open_session(const struct hvsim_global *g, struct session *s)
{
	if (!g->host_dir) {
		fputs("hvsim wmi: which host? pass --host DIR before the area\n", stderr);
		return 2;
	}
	if (host_open(g->host_dir, g->nosync ? HOST_OPEN_NOSYNC : 0, &s->h)) {
		fprintf(stderr, "hvsim: %s\n", hv_errmsg());
		return 2;
	}
	if (hvsim_wmi_open(s->h, &s->w)) {
		fprintf(stderr, "hvsim: %s\n", hv_errmsg());
		host_close(s->h);
		return 2;
	}
	return 0;
}

static void close_session(struct session *s)
{
	hvsim_wmi_close(s->w);
	host_close(s->h);
}

static int wbem_fail(uint32_t hr)
{
	fprintf(stderr, "hvsim: wmi: 0x%08X %s: %s\n", hr, cim_wbem_name(hr), hv_errmsg());
	return 1;
}

static int do_query(const struct hvsim_global *g, int argc, char **argv)
{
	struct cli c;
	int rc = cli_parse("wmi query", argc, argv, 2, "", "json", &c);
	if (rc)
		return rc;
	if (c.npos != 1) {
		fprintf(stderr, "hvsim wmi query: expected one WQL query (quote it)\n%s", USAGE);
		return 2;
	}
	struct session s;
	if ((rc = open_session(g, &s)))
		return rc;
	struct wmi_result res;
	uint32_t hr;
	if (hvsim_wmi_query(s.w, c.pos[0], &res, &hr)) {
		rc = wbem_fail(hr);
	} else if (cli_flag(&c, "json")) {
		fputs("[", stdout);
		for (size_t i = 0; i < res.n; i++) {
			fputs(i ? ",\n  " : "\n  ", stdout);
			json_instance(stdout, res.v[i].inst, res.v[i].path, res.v[i].relpath, "  ");
		}
		fputs(res.n ? "\n]\n" : "]\n", stdout);
	} else {
		for (size_t i = 0; i < res.n; i++) {
			if (i)
				fputc('\n', stdout);
			text_instance(stdout, res.v[i].inst, res.v[i].path, res.v[i].relpath);
		}
	}
	wmi_result_clear(&res);
	close_session(&s);
	return rc;
}

static int do_get(const struct hvsim_global *g, int argc, char **argv, bool wait)
{
	const char *cmd = wait ? "wmi wait" : "wmi get";
	struct cli c;
	int rc = cli_parse(cmd, argc, argv, 2, wait ? "max-polls" : "", "json", &c);
	if (rc)
		return rc;
	if (c.npos != 1) {
		fprintf(stderr, "hvsim %s: expected one object path\n%s", cmd, USAGE);
		return 2;
	}
	uint64_t max = 100000;
	const char *v = cli_get(&c, "max-polls");
	if (v && (rc = cli_u64(cmd, "max-polls", v, &max)))
		return rc;
	struct session s;
	if ((rc = open_session(g, &s)))
		return rc;
	struct wmi_object o = {0};
	uint32_t hr = 0;
	uint64_t polls = 0;
	for (;;) {
		if (hvsim_wmi_get(s.w, c.pos[0], &o, &hr)) {
			rc = wbem_fail(hr);
			break;
		}
		polls++;
		if (!wait)
			break;
		if (strcmp(o.inst->class_name, "Msvm_ConcreteJob")) {
			fprintf(stderr, "hvsim wmi wait: %s is a %s, not a job\n", c.pos[0], o.inst->class_name);
			rc = 2;
			break;
		}
		uint64_t st = 0;
		const char *js = cim_instance_get(o.inst, "JobState");
		if (js && !cim_value_uint(js, 65535, &st) && cim_job_state_is_terminal((uint32_t)st)) {
			rc = cim_job_state_is_success((uint32_t)st) ? 0 : 1;
			if (rc)
				fprintf(stderr, "hvsim wmi wait: job ended %s (%llu): %s\n", cim_job_state_text((uint32_t)st),
					(unsigned long long)st, cim_instance_get(o.inst, "ErrorDescription") ?: "");
			break;
		}
		if (polls >= max) {
			fprintf(stderr, "hvsim wmi wait: job still %s after %llu polls\n",
				cim_job_state_text((uint32_t)st), (unsigned long long)polls);
			rc = 1;
			break;
		}
		wmi_object_clear(&o);
	}
	if (o.inst && rc != 2) {
		if (cli_flag(&c, "json")) {
			json_instance(stdout, o.inst, o.path, o.relpath, "");
			fputc('\n', stdout);
		} else {
			text_instance(stdout, o.inst, o.path, o.relpath);
		}
	}
	wmi_object_clear(&o);
	close_session(&s);
	return rc;
}

/* The whole file (an embedded instance), at most 4 MiB; NULL when unreadable or larger. */
static char *read_file(const char *path)
{
	enum { MAX = 4u << 20 };
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(MAX + 1);
	size_t n = buf ? fread(buf, 1, MAX + 1, f) : 0;
	bool bad = !buf || ferror(f) || n > MAX;
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

static int do_invoke(const struct hvsim_global *g, int argc, char **argv)
{
	struct cli c;
	int rc = cli_parse("wmi invoke", argc, argv, 2, "", "json", &c);
	if (rc)
		return rc;
	if (c.npos < 2) {
		fprintf(stderr, "hvsim wmi invoke: expected OBJECT-PATH METHOD [Name=Value …]\n%s", USAGE);
		return 2;
	}
	struct cim_path *p;
	if (cim_path_parse(c.pos[0], &p)) {
		fprintf(stderr, "hvsim wmi invoke: %s\n", hv_errmsg());
		return 2;
	}
	const char *cls = hvsim_wmi_class_name(p->class_name);
	cim_path_free(p);
	struct cim_instance *in;
	if (cim_instance_new("__PARAMETERS", &in))
		return cli_fail();
	/* group Name=Value arguments by name (arrays take several) */
	for (int i = 2; i < c.npos && !rc; i++) {
		const char *eq = strchr(c.pos[i], '=');
		if (!eq || eq == c.pos[i]) {
			fprintf(stderr, "hvsim wmi invoke: '%s' is not Name=Value\n", c.pos[i]);
			rc = 2;
			break;
		}
		char name[128];
		snprintf(name, sizeof name, "%.*s", (int)(eq - c.pos[i]), c.pos[i]);
		if (cim_instance_prop(in, name))
			continue; /* already collected with its siblings */
		enum cim_type t = CIM_TYPE_STRING;
		int is_array = 0;
		if (!cls || hvsim_wmi_param_type(cls, c.pos[1], name, &t, &is_array))
			t = CIM_TYPE_STRING; /* unknown here: the provider will say so */
		const char *vals[CLI_MAX];
		char *owned[CLI_MAX] = {0};
		size_t n = 0;
		bool null = false;
		for (int k = i; k < c.npos; k++) {
			const char *e2 = strchr(c.pos[k], '=');
			if (!e2 || (size_t)(e2 - c.pos[k]) != strlen(name) || strncasecmp(c.pos[k], name, strlen(name)))
				continue;
			const char *v = e2 + 1;
			if (!*v) {
				null = true;
				continue;
			}
			if (*v == '@') {
				owned[n] = read_file(v + 1);
				if (!owned[n]) {
					fprintf(stderr, "hvsim wmi invoke: %s: cannot read %s (or larger than 4 MiB)\n", name, v + 1);
					rc = 2;
					break;
				}
				v = owned[n];
			}
			vals[n++] = v;
		}
		if (!rc) {
			int r;
			if (is_array)
				r = cim_instance_set_array(in, name, t, null && !n ? NULL : vals, n);
			else if (n > 1) {
				fprintf(stderr, "hvsim wmi invoke: %s is not an array; give it once\n", name);
				rc = 2;
				r = 0;
			} else
				r = cim_instance_set(in, name, t, n ? vals[0] : NULL);
			if (r)
				rc = cli_fail();
		}
		for (size_t k = 0; k < n; k++)
			free(owned[k]);
	}
	struct session s;
	if (!rc)
		rc = open_session(g, &s);
	if (rc) {
		cim_instance_free(in);
		return rc;
	}
	struct cim_instance *out = NULL;
	uint32_t hr;
	if (hvsim_wmi_invoke(s.w, c.pos[0], c.pos[1], in, &out, &hr)) {
		rc = wbem_fail(hr);
	} else {
		if (cli_flag(&c, "json")) {
			json_instance(stdout, out, NULL, NULL, "");
			fputc('\n', stdout);
		} else {
			text_instance(stdout, out, NULL, NULL);
		}
		uint64_t rv = 1;
		const char *t = cim_instance_get(out, "ReturnValue");
		if (!t || cim_value_uint(t, UINT32_MAX, &rv) || (rv != 0 && rv != 4096)) {
			fprintf(stderr, "hvsim wmi invoke: %s returned %s: %s\n", c.pos[1], t ? t : "?", hv_errmsg());
			rc = 1;
		}
	}
	cim_instance_free(out);
	cim_instance_free(in);
	close_session(&s);
	return rc;
}

int cmd_wmi(const struct hvsim_global *g, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(USAGE, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "query"))
		return do_query(g, argc, argv);
	if (!strcmp(argv[1], "get"))
		return do_get(g, argc, argv, false);
	if (!strcmp(argv[1], "wait"))
		return do_get(g, argc, argv, true);
	if (!strcmp(argv[1], "invoke"))
		return do_invoke(g, argc, argv);
	fprintf(stderr, "hvsim wmi: unknown command '%s'\n%s", argv[1], USAGE);
	return 2;
}
