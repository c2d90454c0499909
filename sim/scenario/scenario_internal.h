/* scenario_internal — what the scenario_*.c files share: the YAML tree they validate, and the
 * `FILE:LINE:COL: message` error helper. Not for other modules. */
#ifndef SIM_SCENARIO_INTERNAL_H
#define SIM_SCENARIO_INTERNAL_H

#include "scenario.h"

/* The YAML document as a tree, built from libyaml events (scenario_yaml.c). Only what scenario
 * files may contain: scalars, sequences and mappings with scalar keys; no anchors, aliases or
 * tags. A mapping keeps its keys at kids[2i] and their values at kids[2i+1], in file order
 * (duplicates are left for the validator to report with both positions). */
enum ynode_kind { YN_SCALAR, YN_SEQ, YN_MAP };

struct ynode {
	enum ynode_kind kind;
	struct sc_mark mark; /* where the node starts */
	bool plain; /* scalar written without quotes: only these can be numbers or booleans */
	char *str;  /* scalar text, NUL-terminated (a NUL inside is rejected at load) */
	size_t len;
	struct ynode **kids; /* sequence items, or key/value pairs */
	size_t n, cap;
};

#define SC_MAX_NODES 250000 /* about 10 nodes per timeline entry at the entry limit, and room */

/* Parses `len` bytes as one YAML document into *root (a tree owned by the caller, freed with
 * sc_ynode_free). Syntax errors and unsupported constructs fail with FILE:LINE:COL. */
int sc_yaml_load(const char *path, const char *buf, size_t len, struct ynode **root);
void sc_ynode_free(struct ynode *n);

/* Sets hv_errmsg to "path:line:col: <message>" and returns HV_ECORRUPT. */
int sc_fail(const char *path, struct sc_mark m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The validation pass over the events (scenario_expand.c), used by the loader to check what can
 * only be checked in time order, and to resolve `expect: backup` references. */
int sc_resolve_expectations(struct scenario *s);

#endif
