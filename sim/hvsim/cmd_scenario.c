/*
 * cmd_scenario.c — `hvsim scenario <command>`: scenario files (format: scenarios/README.md).
 *   hvsim scenario check FILE [--dump | --events]
 * check: exit 0 when the file is valid (one summary line on stdout, or the canonical form with
 * --dump, or the expanded events with --events), 1 when it is not (`FILE:LINE:COL: what is wrong`
 * on stderr), 2 for a usage error or a file that cannot be read.
 *
 * Each command is one function in the table below; `run` (the runner) joins it.
 *
 * Must not: parse or validate scenarios itself (sim/scenario does).
 */
#include <stdio.h>
#include <string.h>

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

static const struct {
	const char *name;
	int (*fn)(const struct hvsim_global *g, int argc, char **argv);
} COMMANDS[] = {
    {"check", scenario_check},
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
