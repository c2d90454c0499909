/*
 * hvsim — command-line entry point. `hvsim [--host DIR] [--no-sync] <area> <command> …`: the
 * global options come before the area; each area lives in one cmd_<area>.c.
 *
 * Exit codes: 0 success, 1 the operation failed or found problems, 2 usage error or the input
 * (file, host folder) could not be opened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static void usage(FILE *o)
{
	fputs("usage: hvsim [--host DIR] [--no-sync] <area> <command> [options]\n"
	      "\n"
	      "areas:\n"
	      "  vhdx    create, import, export, inspect, check, read and write VHDX/AVHDX files\n"
	      "  host    create a simulated Hyper-V host (a state folder)\n"
	      "  vm      create VMs with disks, write seeded guest workloads, list, change state\n"
	      "  fault   inject host events: RCT reset, migration, crash, resize, merge block, …\n"
	      "  state   dump the canonical text of a host (for diffs)\n"
	      "  clock   show or advance the host's virtual clock\n"
	      "  wmi     root\\virtualization\\v2: query, get, invoke methods, wait for jobs\n"
	      "  scenario  check and run scenario files (scenarios/README.md)\n"
	      "\n"
	      "global options:\n"
	      "  --host DIR   the host folder the area works on (or $HVSIM_HOST)\n"
	      "  --no-sync    skip fsync (faster; a machine crash may lose the last changes; or\n"
	      "               HVSIM_NOSYNC=1)\n"
	      "\n"
	      "Run 'hvsim <area> --help' for the commands of an area.\n",
	      o);
}

int main(int argc, char **argv)
{
	struct hvsim_global g = {.host_dir = getenv("HVSIM_HOST")};
	const char *ns = getenv("HVSIM_NOSYNC");
	g.nosync = ns && !strcmp(ns, "1");
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--host")) {
			if (i + 1 >= argc) {
				fputs("hvsim: --host needs a folder\n", stderr);
				return 2;
			}
			g.host_dir = argv[++i];
		} else if (!strncmp(argv[i], "--host=", 7)) {
			g.host_dir = argv[i] + 7;
		} else if (!strcmp(argv[i], "--no-sync")) {
			g.nosync = true;
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *area = argv[i];
	int ac = argc - i;
	char **av = argv + i;
	if (!strcmp(area, "--help") || !strcmp(area, "-h") || !strcmp(area, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(area, "vhdx"))
		return cmd_vhdx(ac, av);
	if (!strcmp(area, "host"))
		return cmd_host(&g, ac, av);
	if (!strcmp(area, "vm"))
		return cmd_vm(&g, ac, av);
	if (!strcmp(area, "fault"))
		return cmd_fault(&g, ac, av);
	if (!strcmp(area, "state"))
		return cmd_state(&g, ac, av);
	if (!strcmp(area, "clock"))
		return cmd_clock(&g, ac, av);
	if (!strcmp(area, "wmi"))
		return cmd_wmi(&g, ac, av);
	if (!strcmp(area, "scenario"))
		return cmd_scenario(&g, ac, av);
	fprintf(stderr, "hvsim: unknown area '%s'\n", area);
	usage(stderr);
	return 2;
}
