/* cli — option parsing shared by the host-level areas (host, vm, fault, state, clock, wmi). */
#ifndef HVSIM_CLI_H
#define HVSIM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_MAX 64

struct cli {
	const char *pos[CLI_MAX]; /* positional arguments in order */
	int npos;
	char name[CLI_MAX][48];    /* --options in order ("disk", …), value NULL for flags */
	const char *val[CLI_MAX];
	int nopt;
};

/* Parses argv[from..]. `with_value` and `flags` list the allowed option names separated by '|'
 * ("seed|disk", "json"). Unknown options and missing values print an error naming the command
 * and return 2 (the usage exit code); 0 on success. */
int cli_parse(const char *cmd, int argc, char **argv, int from, const char *with_value, const char *flags,
	      struct cli *c);
/* Last value of an option, or NULL. */
const char *cli_get(const struct cli *c, const char *name);
bool cli_flag(const struct cli *c, const char *name);
/* Parses a number (decimal or 0x) for an option; prints "hvsim CMD: --opt V: not a number". */
int cli_u64(const char *cmd, const char *opt, const char *v, uint64_t *out);
/* Prints "hvsim: <message>" for the current hv_errmsg and returns 1. */
int cli_fail(void);

#endif
