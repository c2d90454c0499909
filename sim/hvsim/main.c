/*
 * hvsim — command-line entry point. Dispatches `hvsim <area> <command>`; today the only area is
 * `vhdx` (cmd_vhdx.c). Later areas (host, wmi, scenario, daemon) add one file each.
 *
 * Exit codes: 0 success, 1 the operation failed or found problems, 2 usage error or the input
 * could not be opened (for `vhdx check`).
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static void usage(FILE *o)
{
	fputs("usage: hvsim <area> <command> [options]\n"
	      "\n"
	      "areas:\n"
	      "  vhdx    create, import, export, inspect, check, read and write VHDX/AVHDX files\n"
	      "\n"
	      "Run 'hvsim vhdx --help' for the commands of an area.\n",
	      o);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "vhdx"))
		return cmd_vhdx(argc - 1, argv + 1);
	fprintf(stderr, "hvsim: unknown area '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
