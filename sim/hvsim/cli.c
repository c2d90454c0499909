/* cli.c — see cli.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "../../hyperv/base/base.h"

static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && !strncmp(p, name, n))
			return true;
		p = bar ? bar + 1 : NULL;
	}
	return false;
}

int cli_parse(const char *cmd, int argc, char **argv, int from, const char *with_value, const char *flags,
	      struct cli *c)
{
	memset(c, 0, sizeof *c);
	bool only_pos = false;
	for (int i = from; i < argc; i++) {
		const char *a = argv[i];
		if (only_pos || a[0] != '-' || a[1] != '-' || !a[2]) {
			if (!only_pos && !strcmp(a, "--")) {
				only_pos = true;
				continue;
			}
			if (c->npos == CLI_MAX) {
				fprintf(stderr, "hvsim %s: too many arguments\n", cmd);
				return 2;
			}
			c->pos[c->npos++] = a;
			continue;
		}
		const char *eq = strchr(a + 2, '=');
		char name[48];
		const char *val = NULL;
		snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
		if (eq)
			val = eq + 1;
		if (c->nopt == CLI_MAX) {
			fprintf(stderr, "hvsim %s: too many options\n", cmd);
			return 2;
		}
		if (in_list(with_value, name)) {
			if (!val) {
				if (i + 1 >= argc) {
					fprintf(stderr, "hvsim %s: --%s needs a value\n", cmd, name);
					return 2;
				}
				val = argv[++i];
			}
		} else if (in_list(flags, name)) {
			if (val) {
				fprintf(stderr, "hvsim %s: --%s takes no value\n", cmd, name);
				return 2;
			}
		} else {
			fprintf(stderr, "hvsim %s: unknown option --%s (see 'hvsim %s --help')\n", cmd, name, cmd);
			return 2;
		}
		snprintf(c->name[c->nopt], sizeof c->name[0], "%s", name);
		c->val[c->nopt++] = val;
	}
	return 0;
}

const char *cli_get(const struct cli *c, const char *name)
{
	const char *v = NULL;
	for (int i = 0; i < c->nopt; i++)
		if (!strcmp(c->name[i], name))
			v = c->val[i];
	return v;
}

bool cli_flag(const struct cli *c, const char *name)
{
	for (int i = 0; i < c->nopt; i++)
		if (!strcmp(c->name[i], name))
			return true;
	return false;
}

int cli_u64(const char *cmd, const char *opt, const char *v, uint64_t *out)
{
	char *end;
	if (!v || !*v || *v == '-') {
		fprintf(stderr, "hvsim %s: --%s %s: not a number\n", cmd, opt, v ? v : "");
		return 2;
	}
	*out = strtoull(v, &end, 0);
	if (*end) {
		fprintf(stderr, "hvsim %s: --%s %s: not a number\n", cmd, opt, v);
		return 2;
	}
	return 0;
}

int cli_fail(void)
{
	fprintf(stderr, "hvsim: %s\n", hv_errmsg());
	return 1;
}
