/* commands — the `hvsim <area>` entry points, one per cmd_<area>.c. Each returns the exit code. */
#ifndef HVSIM_COMMANDS_H
#define HVSIM_COMMANDS_H

#include <stdbool.h>

/* Options given before the area: `hvsim --host DIR [--no-sync] <area> …`. */
struct hvsim_global {
	const char *host_dir; /* --host DIR, else $HVSIM_HOST */
	bool nosync;          /* --no-sync or HVSIM_NOSYNC=1: skip fsync (tests, bulk builds) */
};

int cmd_vhdx(int argc, char **argv);
int cmd_host(const struct hvsim_global *g, int argc, char **argv);
int cmd_vm(const struct hvsim_global *g, int argc, char **argv);
int cmd_fault(const struct hvsim_global *g, int argc, char **argv);
int cmd_state(const struct hvsim_global *g, int argc, char **argv);
int cmd_clock(const struct hvsim_global *g, int argc, char **argv);
int cmd_wmi(const struct hvsim_global *g, int argc, char **argv);
int cmd_scenario(const struct hvsim_global *g, int argc, char **argv);
#endif
