/*
 * cmd_scenario.c — `hvsim scenario <command>`: scenario files (format: scenarios/README.md).
 *   hvsim scenario check FILE [--dump | --events]
 *   hvsim scenario run FILE [--seed N] [--engine CMD] [--engine-restore CMD] [--report OUT.json]
 *                           [--keep DIR] [--timeout SECONDS]
 * check: exit 0 when the file is valid (one summary line on stdout, or the canonical form with
 * --dump, or the expanded events with --events), 1 when it is not (`FILE:LINE:COL: what is wrong`
 * on stderr), 2 for a usage error or a file that cannot be read.
 * run: exit 0 when every expectation holds, 1 when one does not (or an event failed on the host),
 * 2 for a usage error, an invalid or unreadable file, or a run that cannot start.
 *
 * Each command is one function in the table below.
 *
 * Must not: parse, validate or run scenarios itself (sim/scenario does).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../scenario/scenario.h"
#include "cli.h"
#include "commands.h"

static const char SCENARIO_USAGE[] =
    "usage: hvsim scenario <command> [options]\n"
    "\n"
    "  check FILE [--dump | --events]\n"
    "        validate a scenario file without running it: exit 0 valid (prints a summary),\n"
    "        1 invalid (FILE:LINE:COL: what is wrong), 2 usage or unreadable file.\n"
    "        --dump prints the canonical form (every default written out);\n"
    "        --events prints the timeline expanded into concrete events, numbered\n"
    "        (backup #k is what `expect: - backup: {index: k}` refers to)\n"
    "\n"
    "  run FILE [--seed N] [--engine CMD] [--engine-restore CMD] [--report OUT.json]\n"
    "           [--keep DIR] [--timeout SECONDS]\n"
    "        run the timeline against a fresh host (a temporary folder, or DIR, kept) and\n"
    "        judge it: one line per backup and restore, totals, each expectation PASS/FAIL\n"
    "        with its evidence. Exit 0 every expectation holds, 1 one does not, 2 usage,\n"
    "        invalid file or a run that cannot start.\n"
    "        --seed N overrides the file's seed. The engine is the hvbackup next to hvsim;\n"
    "        --engine CMD replaces its backups by a command template ({host} {vm} {repo}\n"
    "        {path} {mode}), --engine-restore CMD its restores ({repo} {vm} {point} {disk}\n"
    "        {to}). --report writes a deterministic JSON report. --timeout bounds each\n"
    "        engine call (default 600 s).\n"
    "\n"
    "The file format: scenarios/README.md.\n";

/* Loads FILE; prints the error and returns the exit code (1 invalid, 2 unreadable) on failure. */
static int load(const char *path, struct scenario **s)
{
	int r = scenario_load(path, s);
	if (!r)
		return 0;
	fprintf(stderr, "%s\n", hv_errmsg());
	return r == HV_ECORRUPT || r == HV_ENOMEM ? 1 : 2;
}

static int scenario_check(const struct hvsim_global *g, int argc, char **argv)
{
	(void)g;
	struct cli c;
	int rc = cli_parse("scenario check", argc, argv, 2, "", "dump|events|help", &c);
	if (rc)
		return rc;
	if (cli_flag(&c, "help")) {
		fputs(SCENARIO_USAGE, stdout);
		return 0;
	}
	if (c.npos != 1 || (cli_flag(&c, "dump") && cli_flag(&c, "events"))) {
		fprintf(stderr,
		        "hvsim scenario check: expected one FILE and at most one of --dump, "
		        "--events\n%s",
		        SCENARIO_USAGE);
		return 2;
	}
	struct scenario *s;
	if ((rc = load(c.pos[0], &s)))
		return rc;
	if (cli_flag(&c, "dump")) {
		rc = scenario_dump(s, stdout) ? cli_fail() : 0;
	} else if (cli_flag(&c, "events")) {
		rc = scenario_events_dump(s, stdout) ? cli_fail() : 0;
	} else {
		struct scenario_counts n;
		char end[32];
		scenario_count(s, &n);
		scenario_duration_format(n.end, end, sizeof end);
		printf("%s: valid: %zu VM(s), %zu disk(s), %zu event(s) over %s: %zu backup(s), "
		       "%zu restore(s),"
		       " %zu write(s), %zu fault(s); %zu expectation(s)\n",
		       c.pos[0], n.vms, n.disks, n.events, end, n.per_action[SCENARIO_BACKUP],
		       n.per_action[SCENARIO_RESTORE], n.per_action[SCENARIO_WRITE],
		       n.per_action[SCENARIO_FAULT], s->nexpect);
	}
	scenario_free(s);
	return rc;
}

/* The hvbackup binary next to this hvsim. */
static int hvbackup_path(char *out, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0) {
		fprintf(stderr, "hvsim scenario run: cannot find my own binary: %s\n",
		        strerror(errno));
		return 2;
	}
	exe[n] = 0;
	snprintf(out, size, "%s/hvbackup", dirname(exe));
	return 0;
}

static int write_report(const struct scenario_outcome *res, const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "hvsim scenario run: %s: %s\n", tmp, strerror(errno));
		return 2;
	}
	int r = scenario_outcome_json(res, f);
	if (fclose(f) || r || rename(tmp, path)) {
		fprintf(stderr, "hvsim scenario run: %s: cannot write the report\n", path);
		unlink(tmp);
		return 2;
	}
	return 0;
}

static int scenario_run_cmd(const struct hvsim_global *g, int argc, char **argv)
{
	(void)g;
	struct cli c;
	int rc = cli_parse("scenario run", argc, argv, 2,
	                   "seed|engine|engine-restore|report|keep|timeout", "help", &c);
	if (rc)
		return rc;
	if (cli_flag(&c, "help")) {
		fputs(SCENARIO_USAGE, stdout);
		return 0;
	}
	if (c.npos != 1) {
		fprintf(stderr, "hvsim scenario run: expected one FILE\n%s", SCENARIO_USAGE);
		return 2;
	}
	struct scenario_run_opts o = {.backup = cli_get(&c, "engine"),
	                              .restore = cli_get(&c, "engine-restore"),
	                              .keep = cli_get(&c, "keep")};
	const char *v;
	uint64_t seed = 0, timeout = 0;
	if ((v = cli_get(&c, "seed")) && (rc = cli_u64("scenario run", "seed", v, &seed)))
		return rc;
	if ((v = cli_get(&c, "timeout")) &&
	    ((rc = cli_u64("scenario run", "timeout", v, &timeout)) || !timeout ||
	     timeout > 86400)) {
		if (!rc)
			fprintf(stderr, "hvsim scenario run: --timeout %s: 1 to 86400 seconds\n",
			        v);
		return 2;
	}
	o.timeout = (unsigned)timeout;
	if (o.backup && scenario_template_check(o.backup, false)) {
		fprintf(stderr, "hvsim scenario run: --engine: %s\n", hv_errmsg());
		return 2;
	}
	if (o.restore && scenario_template_check(o.restore, true)) {
		fprintf(stderr, "hvsim scenario run: --engine-restore: %s\n", hv_errmsg());
		return 2;
	}
	if (o.restore && !o.backup) {
		fprintf(stderr, "hvsim scenario run: --engine-restore needs --engine\n");
		return 2;
	}
	char hvb[PATH_MAX + 16];
	if ((rc = hvbackup_path(hvb, sizeof hvb)))
		return rc;
	o.hvbackup = hvb;
	struct scenario *s;
	if ((rc = load(c.pos[0], &s)))
		return 2;
	if (cli_get(&c, "seed")) {
		free(s->events);
		s->events = NULL;
		s->nevents = 0;
		s->seed = seed;
		if (scenario_expand(s, seed, &s->events, &s->nevents)) {
			fprintf(stderr, "%s\n", hv_errmsg());
			scenario_free(s);
			return 2;
		}
	}
	struct scenario_outcome *res;
	if (scenario_run(s, &o, &res)) {
		fprintf(stderr, "hvsim scenario run: %s: %s\n", c.pos[0], hv_errmsg());
		scenario_free(s);
		return 2;
	}
	rc = scenario_outcome_print(res, stdout) ? 2 : 0;
	fflush(stdout);
	if (!rc && (v = cli_get(&c, "report")))
		rc = write_report(res, v);
	if (!rc)
		rc = scenario_outcome_passed(res) ? 0 : 1;
	scenario_outcome_free(res);
	scenario_free(s);
	return rc;
}

static const struct {
	const char *name;
	int (*fn)(const struct hvsim_global *g, int argc, char **argv);
} COMMANDS[] = {
    {"check", scenario_check},
    {"run", scenario_run_cmd},
};

int cmd_scenario(const struct hvsim_global *g, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(SCENARIO_USAGE, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
		if (!strcmp(argv[1], COMMANDS[i].name))
			return COMMANDS[i].fn(g, argc, argv);
	fprintf(stderr, "hvsim scenario: unknown command '%s'\n%s", argv[1], SCENARIO_USAGE);
	return 2;
}
