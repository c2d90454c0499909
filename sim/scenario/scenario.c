/*
 * scenario.c — reads a scenario file into a struct scenario and validates everything that can be
 * checked without time order: every key known and given once, every value of the right type and
 * in range, every name well-formed and every reference defined. What depends on time order (a
 * disk that exists at that moment, a restore point that can exist, the backup an expectation
 * names) is checked by the expansion (scenario_expand.c), which scenario_load runs before
 * returning. The first problem stops the load (one precise message beats a cascade).
 *
 * The format is documented key by key in scenarios/README.md; keep the two in step.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../hyperv/vhdx/vhdx.h"
#include "../wmi/wmi.h"
#include "scenario_internal.h"

#define DEFAULT_BLOCK (32u * 1024u * 1024u)

/* ---- names of things as written in files ----------------------------------------------------- */

static const char *const ACTION_NAMES[] = {"write", "backup", "restore", "fault",
                                           "state", "set",    NULL};
static const char *const PATH_NAMES[] = {"win32", "export", "rsvd", NULL};
static const char *const MODE_NAMES[] = {"auto", "full", "incremental", NULL};
static const char *const FORMAT_NAMES[] = {"raw", "vhdx", NULL};
static const char *const STATE_NAMES[] = {"running", "off", "saved", NULL};
static const char *const TYPE_NAMES[] = {"dynamic", "fixed", NULL};
static const char *const BTYPE_NAMES[] = {"any", "full", "incremental", NULL};
static const char *const RESULT_NAMES[] = {"any", "succeeded", "failed", NULL};
static const char *const PATTERN_NAMES[] = {"random",    "sequential", "zipf",
                                            "overwrite", "trim",       NULL};
static const char *const EXPECT_NAMES[] = {"restores_match_truth", "backup",
                                           "backups_succeeded",    "backups_failed",
                                           "no_leftovers",         "no_pending_merges",
                                           "repository_verifies",  "audit_mistakes",
                                           "min_dedup_ratio",      NULL};
/* The WMI methods whose jobs follow a trajectory (sim/wmi/wmi_methods.c's table). */
static const char *const JOB_METHODS[] = {"CreateSnapshot",
                                          "DestroySnapshot",
                                          "ConvertToReferencePoint",
                                          "CreateReferencePoint",
                                          "DestroyReferencePoint",
                                          "GetVirtualDiskChanges",
                                          "GetVirtualHardDiskSettingData",
                                          "ModifyDiskMergeSettings",
                                          "RequestStateChange",
                                          NULL};

/* Fault parameters, as bits, and which fault takes which. */
enum {
	FP_VM = 1 << 0,
	FP_DISK = 1 << 1,
	FP_SIZE = 1 << 2,
	FP_TYPE = 1 << 3,
	FP_BLOCK = 1 << 4,
	FP_SECTOR = 1 << 5,
	FP_RESET = 1 << 6,
	FP_CLEAR = 1 << 7,
	FP_METHOD = 1 << 8,
	FP_CODE = 1 << 9,
	FP_STARTING = 1 << 10,
	FP_RUNNING = 1 << 11,
	FP_AFTER_BLOCKS = 1 << 12,
	FP_AT_COMMIT = 1 << 13,
};
/* keys of a fault mapping; FAULT_KEYS[i + 2] is parameter bit i ("vm" and "vms" are both FP_VM) */
static const char *const FAULT_KEYS[] = {
    "name",     "vms",     "vm",           "disk",      "size",   "type",
    "block",    "sector",  "reset",        "clear",     "method", "code",
    "starting", "running", "after_blocks", "at_commit", NULL};
enum {
	FK_NAME,
	FK_VMS,
	FK_VM,
	FK_DISK,
	FK_SIZE,
	FK_TYPE,
	FK_BLOCK,
	FK_SECTOR,
	FK_RESET,
	FK_CLEAR,
	FK_METHOD,
	FK_CODE,
	FK_STARTING,
	FK_RUNNING,
	FK_AFTER_BLOCKS,
	FK_AT_COMMIT,
};
static const struct {
	const char *name;
	unsigned allowed, required;
} FAULTS[SCENARIO_FAULT_COUNT] = {
    [SCENARIO_FAULT_RCT_RESET] = {"rct-reset", FP_VM | FP_DISK, FP_VM},
    [SCENARIO_FAULT_LIVE_MIGRATION] = {"live-migration", FP_VM | FP_RESET, FP_VM},
    [SCENARIO_FAULT_HOST_CRASH] = {"host-crash", 0, 0},
    [SCENARIO_FAULT_DISK_RESIZE] = {"disk-resize", FP_VM | FP_DISK | FP_SIZE,
                                    FP_VM | FP_DISK | FP_SIZE},
    [SCENARIO_FAULT_DISK_ADD] = {"disk-add",
                                 FP_VM | FP_DISK | FP_SIZE | FP_TYPE | FP_BLOCK | FP_SECTOR,
                                 FP_VM | FP_DISK | FP_SIZE},
    [SCENARIO_FAULT_DISK_REMOVE] = {"disk-remove", FP_VM | FP_DISK, FP_VM | FP_DISK},
    [SCENARIO_FAULT_DISK_REPLACE] = {"disk-replace", FP_VM | FP_DISK, FP_VM | FP_DISK},
    [SCENARIO_FAULT_JOB_EXCEPTION] = {"job-exception", FP_METHOD | FP_CODE | FP_CLEAR, FP_METHOD},
    [SCENARIO_FAULT_SLOW_JOBS] = {"slow-jobs", FP_METHOD | FP_STARTING | FP_RUNNING | FP_CLEAR,
                                  FP_RUNNING},
    [SCENARIO_FAULT_MERGE_BLOCKED] = {"merge-blocked", FP_VM | FP_CLEAR, FP_VM},
    [SCENARIO_FAULT_LEAKED_REFPOINT] = {"leaked-refpoint", FP_VM, FP_VM},
    [SCENARIO_FAULT_STALE_CHECKPOINT] = {"stale-recovery-checkpoint", FP_VM, FP_VM},
    [SCENARIO_FAULT_ENGINE_KILLED] = {"engine-killed", FP_VM | FP_AFTER_BLOCKS | FP_AT_COMMIT, 0},
    [SCENARIO_FAULT_GUEST_VSS_OFF] = {"guest-vss-off", FP_VM | FP_CLEAR, FP_VM},
    [SCENARIO_FAULT_TRACKING_OFF] = {"tracking-off", FP_VM | FP_DISK | FP_CLEAR, FP_VM},
};
/* what `clear: true` leaves of a fault's parameters */
#define FP_CLEAR_KEEPS (FP_VM | FP_DISK | FP_METHOD | FP_CLEAR)

static const char *name_of(const char *const *names, unsigned i, unsigned count)
{
	return i < count ? names[i] : "?";
}
const char *scenario_action_name(enum scenario_action a)
{
	return name_of(ACTION_NAMES, a, SCENARIO_ACTION_COUNT);
}
const char *scenario_path_name(enum scenario_path p)
{
	return name_of(PATH_NAMES, p, 3);
}
const char *scenario_mode_name(enum scenario_mode m)
{
	return name_of(MODE_NAMES, m, 3);
}
const char *scenario_vm_state_name(enum scenario_vm_state st)
{
	return name_of(STATE_NAMES, st, 3);
}
const char *scenario_expect_name(enum scenario_expect_kind k)
{
	return name_of(EXPECT_NAMES, k, SCENARIO_EXPECT_COUNT);
}
const char *scenario_fault_name(enum scenario_fault f)
{
	return (unsigned)f < SCENARIO_FAULT_COUNT ? FAULTS[f].name : "?";
}

/* ---- durations ------------------------------------------------------------------------------- */

int scenario_duration_parse(const char *text, uint64_t *seconds)
{
	static const struct {
		char unit;
		uint64_t secs, below; /* below: the bound when a larger unit came first */
	} units[] = {{'d', 86400, 0}, {'h', 3600, 24}, {'m', 60, 60}, {'s', 1, 60}};
	const char *s = text;
	uint64_t total = 0;
	int next = 0; /* index of the smallest unit still allowed */
	bool any = false;
	while (*s) {
		if (*s < '0' || *s > '9')
			return hv_err(HV_EINVAL,
			              "'%s' is not a duration (like 0s, 90m, 2d03h, 1d12h30m)",
			              text);
		uint64_t n = 0;
		int digits = 0;
		while (*s >= '0' && *s <= '9') {
			if (++digits > 10)
				return hv_err(HV_EINVAL,
				              "duration '%s' is too long (at most 3650d)", text);
			n = n * 10 + (uint64_t)(*s++ - '0');
		}
		int u = -1;
		for (int i = 0; i < 4; i++)
			if (*s == units[i].unit)
				u = i;
		if (u < 0)
			return hv_err(
			    HV_EINVAL,
			    "'%s': each number needs a unit d, h, m or s (like 0s, 90m, 2d03h)",
			    text);
		if (u < next)
			return hv_err(HV_EINVAL,
			              "'%s': units go from large to small, each once (d, h, m, s)",
			              text);
		if (any && n >= units[u].below)
			return hv_err(HV_EINVAL,
			              "'%s': %llu%c after a larger unit must be below %llu", text,
			              (unsigned long long)n, units[u].unit,
			              (unsigned long long)units[u].below);
		total += n * units[u].secs;
		if (total > SCENARIO_MAX_DURATION)
			return hv_err(HV_EINVAL, "duration '%s' is too long (at most 3650d)", text);
		next = u + 1;
		any = true;
		s++;
	}
	if (!any)
		return hv_err(HV_EINVAL, "an empty duration (write 0s, 90m, 2d03h, …)");
	*seconds = total;
	return 0;
}

void scenario_duration_format(uint64_t secs, char *buf, size_t size)
{
	static const struct {
		char unit;
		uint64_t secs;
	} units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
	size_t len = 0;
	buf[0] = 0;
	for (int i = 0; i < 4; i++) {
		uint64_t n = secs / units[i].secs;
		secs %= units[i].secs;
		if (n && len < size)
			len += (size_t)snprintf(buf + len, size - len, "%llu%c",
			                        (unsigned long long)n, units[i].unit);
	}
	if (!buf[0])
		snprintf(buf, size, "0s");
}

/* ---- the loader ------------------------------------------------------------------------------ */

struct ld {
	const char *path;
	struct scenario *s;
	uint32_t *vm_order; /* indices of s->vms sorted by name (case-insensitive), for lookups */
	uint32_t *group_order; /* the same for s->groups */
	unsigned char *seen;   /* scratch: one byte per VM, for duplicate checks in targets */
	uint64_t events;       /* concrete events of the entries parsed so far */
};

static int vfail(struct ld *L, struct sc_mark m, const char *fmt, va_list ap)
{
	char msg[900];
	vsnprintf(msg, sizeof msg, fmt, ap);
	return sc_fail(L->path, m, "%s", msg);
}

static int fail(struct ld *L, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct ld *L, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(L, n->mark, fmt, ap);
	va_end(ap);
	return r;
}

static const char *kind_name(const struct ynode *n)
{
	return n->kind == YN_SEQ ? "a list" : n->kind == YN_MAP ? "a mapping" : "a single value";
}

static void join(char *out, size_t size, const char *const *names)
{
	size_t len = 0;
	out[0] = 0;
	for (size_t i = 0; names[i] && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? ", " : "", names[i]);
}

/* Fields of a mapping: val[i] / key[i] for keys[i], NULL when absent. Unknown and duplicate
 * keys are errors. */
#define MAX_FIELDS 24
struct fields {
	const struct ynode *val[MAX_FIELDS], *key[MAX_FIELDS];
};

static int find(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

static int get_fields(struct ld *L, const struct ynode *n, const char *what,
                      const char *const *keys, struct fields *f)
{
	memset(f, 0, sizeof *f);
	if (n->kind != YN_MAP)
		return fail(L, n, "%s: expected a mapping (key: value lines), found %s", what,
		            kind_name(n));
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->kids[i];
		int idx = find(keys, k->str);
		if (idx < 0) {
			char known[400];
			join(known, sizeof known, keys);
			return fail(L, k, "unknown key '%.60s' in %s (known: %s)", k->str, what,
			            known);
		}
		if (f->key[idx])
			return fail(L, k, "duplicate key '%s' in %s (first at line %u)", k->str,
			            what, f->key[idx]->mark.line);
		f->key[idx] = k;
		f->val[idx] = n->kids[i + 1];
	}
	return 0;
}

static int need(struct ld *L, const struct ynode *map, const struct fields *f,
                const char *const *keys, int idx, const char *what)
{
	return f->val[idx] ? 0 : fail(L, map, "%s: missing required key '%s'", what, keys[idx]);
}

static int want_scalar(struct ld *L, const struct ynode *n, const char *what)
{
	return n->kind == YN_SCALAR
	           ? 0
	           : fail(L, n, "%s: expected a single value, found %s", what, kind_name(n));
}

/* A plain (unquoted) scalar: numbers and booleans must be written without quotes. */
static int want_plain(struct ld *L, const struct ynode *n, const char *what, const char *kind)
{
	int r = want_scalar(L, n, what);
	if (!r && !n->plain)
		r = fail(L, n, "%s: expected %s, found a quoted string (write it without quotes)",
		         what, kind);
	if (!r && !n->len)
		r = fail(L, n, "%s: expected %s, found nothing", what, kind);
	return r;
}

static int get_string(struct ld *L, const struct ynode *n, const char *what, size_t max, char **out)
{
	int r = want_scalar(L, n, what);
	if (r)
		return r;
	if (n->plain && (!strcmp(n->str, "~") || !strcmp(n->str, "null") || !n->len))
		return fail(L, n, "%s: expected text, found nothing", what);
	if (n->len > max)
		return fail(L, n, "%s: longer than %zu characters", what, max);
	if (!(*out = strdup(n->str)))
		return hv_err(HV_ENOMEM, "out of memory");
	return 0;
}

static bool label_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (!n || n > max ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	      (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
		            s[i]))
			return false;
	return true;
}

/* Disk, workload, engine names and tags: 1..64 of [A-Za-z0-9._-], starting alphanumeric. */
static int get_label(struct ld *L, const struct ynode *n, const char *what, char **out)
{
	int r = want_scalar(L, n, what);
	if (!r && !label_ok(n->str, SCENARIO_MAX_LABEL))
		r = fail(L, n,
		         "%s: '%.80s' is not a valid name (1..%d of A-Z a-z 0-9 . _ -, starting "
		         "with a letter or"
		         " digit)",
		         what, n->str, SCENARIO_MAX_LABEL);
	if (!r && !(*out = strdup(n->str)))
		r = hv_err(HV_ENOMEM, "out of memory");
	return r;
}

/* VM names follow the host's rule (1..100 of [A-Za-z0-9 ._-], no leading '.' or space, no
 * trailing space). */
static bool vm_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (!n || n > max || s[0] == '.' || s[0] == ' ' || s[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-",
		            s[i]))
			return false;
	return true;
}

static int get_bool(struct ld *L, const struct ynode *n, const char *what, bool *out)
{
	int r = want_plain(L, n, what, "true or false");
	if (r)
		return r;
	if (!strcmp(n->str, "true"))
		*out = true;
	else if (!strcmp(n->str, "false"))
		*out = false;
	else
		return fail(L, n, "%s: expected true or false, found '%.60s'", what, n->str);
	return 0;
}

/* Decimal digits, no sign, no leading zeros: 0, -1 (not a number) or -2 (above UINT64_MAX). */
static int parse_digits(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s || (s[0] == '0' && s[1]))
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -2;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int get_uint(struct ld *L, const struct ynode *n, const char *what, uint64_t min,
                    uint64_t max, uint64_t *out)
{
	int r = want_plain(L, n, what, "a whole number");
	if (r)
		return r;
	uint64_t v;
	int d = parse_digits(n->str, &v);
	if (d == -2 || (!d && v > max && max == UINT64_MAX))
		return fail(L, n, "%s: %.60s is too large (at most %llu)", what, n->str,
		            (unsigned long long)max);
	if (d)
		return fail(
		    L, n,
		    "%s: '%.60s' is not a whole number (decimal digits, no sign, no leading zeros)",
		    what, n->str);
	if (v < min || v > max)
		return fail(L, n, "%s: %llu is out of range (%llu..%llu)", what,
		            (unsigned long long)v, (unsigned long long)min,
		            (unsigned long long)max);
	*out = v;
	return 0;
}

static int get_size(struct ld *L, const struct ynode *n, const char *what, uint64_t min,
                    uint64_t max, uint64_t *out)
{
	int r = want_scalar(L, n, what);
	if (r)
		return r;
	uint64_t v;
	if (hv_parse_size(n->str, &v))
		return fail(L, n, "%s: '%.60s' is not a size (like 4096, 64KiB, 256MiB, 2GiB)",
		            what, n->str);
	if (v < min || v > max)
		return fail(L, n, "%s: %.60s is out of range (%llu..%llu bytes)", what, n->str,
		            (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

static int get_duration(struct ld *L, const struct ynode *n, const char *what, uint64_t *out)
{
	int r = want_scalar(L, n, what);
	if (!r && scenario_duration_parse(n->str, out))
		r = fail(L, n, "%s: %s", what, hv_errmsg());
	return r;
}

static int get_enum(struct ld *L, const struct ynode *n, const char *what, const char *const *names,
                    int *out)
{
	int r = want_scalar(L, n, what);
	if (r)
		return r;
	int i = find(names, n->str);
	if (i < 0) {
		char list[300];
		join(list, sizeof list, names);
		return fail(L, n, "%s: '%.60s' is not one of %s", what, n->str, list);
	}
	*out = i;
	return 0;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* ---- lookups --------------------------------------------------------------------------------- */

/* qsort has no context argument; the sort runs inside one load, never concurrently within a
 * thread, so a thread-local pointer is enough */
static _Thread_local const struct scenario *cmp_s;

static int cmp_vm(const void *a, const void *b)
{
	return strcasecmp(cmp_s->vms[*(const uint32_t *)a].name,
	                  cmp_s->vms[*(const uint32_t *)b].name);
}
static int cmp_group(const void *a, const void *b)
{
	return strcasecmp(cmp_s->groups[*(const uint32_t *)a].name,
	                  cmp_s->groups[*(const uint32_t *)b].name);
}

static int64_t lookup(const uint32_t *order, size_t n, const char *name,
                      const char *(*name_at)(const struct scenario *, uint32_t),
                      const struct scenario *s)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcasecmp(name, name_at(s, order[mid]));
		if (!c)
			return order[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}
static const char *vm_name_at(const struct scenario *s, uint32_t i)
{
	return s->vms[i].name;
}
static const char *group_name_at(const struct scenario *s, uint32_t i)
{
	return s->groups[i].name;
}

static int64_t find_vm(struct ld *L, const char *name)
{
	return lookup(L->vm_order, L->s->nvms, name, vm_name_at, L->s);
}
static int64_t find_group(struct ld *L, const char *name)
{
	return lookup(L->group_order, L->s->ngroups, name, group_name_at, L->s);
}

static int64_t find_workload(const struct scenario *s, const char *name)
{
	for (size_t i = 0; i < s->nworkloads; i++)
		if (!strcmp(s->workloads[i].name, name))
			return (int64_t)i;
	return -1;
}

/* ---- top-level sections ---------------------------------------------------------------------- */

static const char *const SETTING_BOOLS[] = {
    "wmi.strict",      "merge.block_on_extra_refpoints", "refpoint.reverse_disk_order",
    "virtdisk.strict", "virtdisk.more_data_on_partial",  NULL};
static const char *const SETTING_INTS[] = {"wmi.changes_max_ranges", "job.poll_ticks",
                                           "job.time_before_removal_ticks",
                                           "virtdisk.max_ranges_per_call", NULL};

/* One host setting as `hvsim host set KEY VALUE` accepts it, with its value normalized. */
static int parse_setting(struct ld *L, const struct ynode *k, const struct ynode *v, bool in_host,
                         struct scenario_setting *out)
{
	const char *key = k->str;
	int r = want_scalar(L, v, key);
	if (r)
		return r;
	char norm[64];
	const char *value = v->str;
	if (find(SETTING_BOOLS, key) >= 0) {
		if (in_host && !strcmp(key, "wmi.strict"))
			return fail(L, k,
			            "settings: set wmi.strict with host.strict (true or false)");
		if (!strcmp(value, "true") || !strcmp(value, "1"))
			value = "1";
		else if (!strcmp(value, "false") || !strcmp(value, "0"))
			value = "0";
		else
			return fail(L, v, "%s: expected true or false (or 1 or 0), found '%.60s'",
			            key, value);
	} else if (find(SETTING_INTS, key) >= 0) {
		uint64_t x;
		if (parse_digits(value, &x) || x > (uint64_t)INT64_MAX)
			return fail(L, v, "%s: '%.60s' is not a non-negative whole number", key,
			            value);
		snprintf(norm, sizeof norm, "%llu", (unsigned long long)x);
		value = norm;
	} else if (!strncmp(key, "job.", 4)) {
		if (strcmp(key + 4, "default") && find(JOB_METHODS, key + 4) < 0) {
			char list[400];
			join(list, sizeof list, JOB_METHODS);
			return fail(L, k,
			            "settings: '%.60s': no WMI method '%.60s' has jobs "
			            "(job.default or job.<Method>,"
			            " Method one of %s)",
			            key, key + 4, list);
		}
		if (v->len > 200 || hvsim_wmi_trajectory_check(value))
			return fail(L, v, "%s: %s", key,
			            v->len > 200 ? "trajectory too long" : hv_errmsg());
	} else if (!strncmp(key, "test.", 5)) {
		return fail(L, k, "settings: '%.60s' is a test hook, not a scenario setting", key);
	} else {
		return fail(
		    L, k, "settings: unknown host setting '%.60s' (see 'hvsim host --help')", key);
	}
	out->mark = k->mark;
	if (!(out->key = strdup(key)) || !(out->value = strdup(value)))
		return hv_err(HV_ENOMEM, "out of memory");
	return 0;
}

static int parse_settings(struct ld *L, const struct ynode *n, const char *what, bool in_host,
                          struct scenario_setting **v, size_t *count)
{
	if (n->kind != YN_MAP)
		return fail(L, n, "%s: expected a mapping of setting: value, found %s", what,
		            kind_name(n));
	if (!n->n && !in_host)
		return fail(L, n, "%s: no settings given", what);
	if (n->n / 2 > SCENARIO_MAX_SETTINGS)
		return fail(L, n->kids[2 * SCENARIO_MAX_SETTINGS], "%s: more than %d settings",
		            what, SCENARIO_MAX_SETTINGS);
	if (!(*v = calloc(n->n / 2 + 1, sizeof **v)))
		return hv_err(HV_ENOMEM, "out of memory");
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		for (size_t j = 0; j < *count; j++)
			if (!strcmp((*v)[j].key, n->kids[i]->str))
				return fail(L, n->kids[i],
				            "duplicate key '%.60s' in %s (first at line %u)",
				            n->kids[i]->str, what, (*v)[j].mark.line);
		int r = parse_setting(L, n->kids[i], n->kids[i + 1], in_host, &(*v)[*count]);
		(*count)++; /* counted even on failure, so scenario_free frees a half-filled slot */
		if (r)
			return r;
	}
	return 0;
}

static int parse_host(struct ld *L, const struct ynode *n)
{
	static const char *const K[] = {"rct_granularity", "strict", "settings", NULL};
	struct fields f;
	int r = get_fields(L, n, "host", K, &f);
	uint64_t g = 64 * 1024;
	if (!r && f.val[0] &&
	    !(r = get_size(L, f.val[0], "rct_granularity", 4096, 16u << 20, &g)) && !is_pow2(g))
		r = fail(L, f.val[0], "rct_granularity: %s is not a power of two (4KiB .. 16MiB)",
		         f.val[0]->str);
	L->s->rct_granularity = (uint32_t)g;
	if (!r && f.val[1])
		r = get_bool(L, f.val[1], "strict", &L->s->strict);
	if (!r && f.val[2])
		r = parse_settings(L, f.val[2], "host.settings", true, &L->s->settings,
		                   &L->s->nsettings);
	return r;
}

/* Command templates: every {…} must be a placeholder the runner fills in. */
static int check_template(struct ld *L, const struct ynode *n, const char *what,
                          const char *const *allowed)
{
	for (const char *p = n->str; (p = strchr(p, '{')); p++) {
		const char *e = strchr(p, '}');
		char name[32];
		if (!e || e - p - 1 >= (long)sizeof name) {
			char list[200];
			join(list, sizeof list, allowed);
			return fail(L, n, "%s: a '{' that does not start a placeholder ({%s})",
			            what, list);
		}
		snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
		if (find(allowed, name) < 0) {
			char list[200];
			join(list, sizeof list, allowed);
			return fail(L, n, "%s: unknown placeholder {%s} (known: %s)", what, name,
			            list);
		}
	}
	return 0;
}

static int parse_engines(struct ld *L, const struct ynode *n)
{
	static const char *const K[] = {"backup", "restore", NULL};
	static const char *const BACKUP_PH[] = {"host", "vm", "repo", "path", "mode", NULL};
	static const char *const RESTORE_PH[] = {"repo", "vm", "point", "disk", "to", NULL};
	struct scenario *s = L->s;
	if (n->kind != YN_MAP)
		return fail(L, n, "engines: expected a mapping of NAME: {backup: …}, found %s",
		            kind_name(n));
	if (n->n / 2 > SCENARIO_MAX_ENGINES)
		return fail(L, n->kids[2 * SCENARIO_MAX_ENGINES], "engines: more than %d engines",
		            SCENARIO_MAX_ENGINES);
	if (!(s->engines = calloc(n->n / 2 + 1, sizeof *s->engines)))
		return hv_err(HV_ENOMEM, "out of memory");
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		struct scenario_engine *e = &s->engines[s->nengines++];
		const struct ynode *k = n->kids[i];
		e->mark = k->mark;
		int r = get_label(L, k, "engine name", &e->name);
		if (!r && !strcmp(e->name, "default"))
			r = fail(L, k,
			         "engines: 'default' is reserved (it names hvbackup, or the "
			         "runner's --engine)");
		for (size_t j = 0; !r && j + 1 < s->nengines; j++)
			if (!strcmp(s->engines[j].name, e->name))
				r = fail(L, k, "duplicate engine '%s' (first at line %u)", e->name,
				         s->engines[j].mark.line);
		struct fields f;
		if (!r)
			r = get_fields(L, n->kids[i + 1], "an engine", K, &f);
		if (!r)
			r = need(L, n->kids[i + 1], &f, K, 0, "engine");
		if (!r && !(r = get_string(L, f.val[0], "backup", 4096, &e->backup)))
			r = check_template(L, f.val[0], "backup", BACKUP_PH);
		if (!r && f.val[1] && !(r = get_string(L, f.val[1], "restore", 4096, &e->restore)))
			r = check_template(L, f.val[1], "restore", RESTORE_PH);
		if (r)
			return r;
	}
	return 0;
}

static const char *const DISK_KEYS[] = {"name", "size", "type", "block", "sector", NULL};

/* A disk spec from fields (shared by `vms: disks:` and the disk-add fault). */
static int parse_disk_fields(struct ld *L, const struct ynode *where, const struct ynode *size,
                             const struct ynode *type, const struct ynode *block,
                             const struct ynode *sector, struct scenario_disk *d)
{
	int r = 0, t = 0;
	uint64_t sec = 512, blk = DEFAULT_BLOCK;
	d->mark = where->mark;
	if (type && (r = get_enum(L, type, "type", TYPE_NAMES, &t)))
		return r;
	d->fixed = t == 1;
	if (block &&
	    !(r = get_size(L, block, "block", VHDX_MIN_BLOCK_SIZE, VHDX_MAX_BLOCK_SIZE, &blk)) &&
	    !is_pow2(blk))
		r = fail(L, block, "block: %s is not a power of two (1MiB .. 256MiB)", block->str);
	if (!r && sector && !(r = get_uint(L, sector, "sector", 512, 4096, &sec)) && sec != 512 &&
	    sec != 4096)
		r = fail(L, sector, "sector: %llu is neither 512 nor 4096",
		         (unsigned long long)sec);
	if (!r && !(r = get_size(L, size, "size", 1, VHDX_MAX_VIRTUAL_SIZE, &d->size)) &&
	    d->size % sec)
		r = fail(L, size, "size: %s is not a multiple of the %llu-byte sector", size->str,
		         (unsigned long long)sec);
	d->block = (uint32_t)blk;
	d->sector = (uint32_t)sec;
	return r;
}

static int parse_group(struct ld *L, const struct ynode *n, struct scenario_group *g, size_t *total)
{
	static const char *const K[] = {"name", "disks", "count", "state", NULL};
	struct fields f;
	int r = get_fields(L, n, "a VM", K, &f);
	if (r || (r = need(L, n, &f, K, 0, "VM")) || (r = need(L, n, &f, K, 1, "VM")))
		return r;
	g->mark = n->mark;
	uint64_t count = 0;
	if (f.val[2] && (r = get_uint(L, f.val[2], "count", 1, SCENARIO_MAX_VMS, &count)))
		return r;
	g->count = (uint32_t)count;
	/* fleet members are NAME-001 …: leave room for the suffix within the host's limit */
	size_t max = count ? SCENARIO_MAX_NAME - (count >= 1000 ? 5 : 4) : SCENARIO_MAX_NAME;
	if ((r = want_scalar(L, f.val[0], "name")))
		return r;
	if (!vm_name_ok(f.val[0]->str, max))
		return fail(
		    L, f.val[0],
		    "name: '%.100s' is not a valid VM name (1..%zu of A-Z a-z 0-9 space . _ -; no"
		    " leading dot or space, no trailing space)",
		    f.val[0]->str, max);
	if (!strcasecmp(f.val[0]->str, "all"))
		return fail(L, f.val[0], "name: 'all' is reserved (vms: all names every VM)");
	if (!(g->name = strdup(f.val[0]->str)))
		return hv_err(HV_ENOMEM, "out of memory");
	int st = 0;
	if (f.val[3] && (r = get_enum(L, f.val[3], "state", STATE_NAMES, &st)))
		return r;
	g->state = (enum scenario_vm_state)st;
	*total += count ? count : 1;
	if (*total > SCENARIO_MAX_VMS)
		return fail(L, f.val[2] ? f.val[2] : n,
		            "more than %d VMs in all (fleets count each member)", SCENARIO_MAX_VMS);

	const struct ynode *dl = f.val[1];
	if (dl->kind != YN_SEQ)
		return fail(L, dl, "disks: expected a list of disks, found %s", kind_name(dl));
	if (!dl->n)
		return fail(L, dl, "disks: a VM needs at least one disk");
	if (dl->n > SCENARIO_MAX_DISKS)
		return fail(L, dl->kids[SCENARIO_MAX_DISKS], "disks: more than %d disks on one VM",
		            SCENARIO_MAX_DISKS);
	if (!(g->disks = calloc(dl->n, sizeof *g->disks)))
		return hv_err(HV_ENOMEM, "out of memory");
	for (size_t i = 0; i < dl->n; i++) {
		struct scenario_disk *d = &g->disks[g->ndisks++];
		const struct ynode *dn = dl->kids[i];
		struct fields df;
		if ((r = get_fields(L, dn, "a disk", DISK_KEYS, &df)) ||
		    (r = need(L, dn, &df, DISK_KEYS, 1, "disk")))
			return r;
		if (df.val[0]) {
			if ((r = get_label(L, df.val[0], "disk name", &d->name)))
				return r;
		} else {
			char def[32];
			snprintf(def, sizeof def, "disk%zu", i);
			if (!(d->name = strdup(def)))
				return hv_err(HV_ENOMEM, "out of memory");
		}
		for (size_t j = 0; j < i; j++)
			if (!strcasecmp(g->disks[j].name, d->name))
				return fail(L, df.val[0] ? df.val[0] : dn,
				            "VM %s: two disks named '%s' (the first at line %u)",
				            g->name, d->name, g->disks[j].mark.line);
		if ((r = parse_disk_fields(L, dn, df.val[1], df.val[2], df.val[3], df.val[4], d)))
			return r;
	}
	return 0;
}

static int parse_vms(struct ld *L, const struct ynode *n)
{
	struct scenario *s = L->s;
	if (n->kind != YN_SEQ)
		return fail(L, n, "vms: expected a list of VMs, found %s", kind_name(n));
	if (!n->n)
		return fail(L, n, "vms: a scenario needs at least one VM");
	if (n->n > SCENARIO_MAX_VMS)
		return fail(L, n->kids[SCENARIO_MAX_VMS], "vms: more than %d VMs",
		            SCENARIO_MAX_VMS);
	if (!(s->groups = calloc(n->n, sizeof *s->groups)))
		return hv_err(HV_ENOMEM, "out of memory");
	size_t total = 0;
	for (size_t i = 0; i < n->n; i++) {
		int r = parse_group(L, n->kids[i], &s->groups[s->ngroups++], &total);
		if (r)
			return r;
	}
	if (!(s->vms = calloc(total, sizeof *s->vms)) ||
	    !(L->vm_order = calloc(total, sizeof *L->vm_order)) ||
	    !(L->group_order = calloc(s->ngroups, sizeof *L->group_order)) ||
	    !(L->seen = calloc(total, 1)))
		return hv_err(HV_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->ngroups; i++) {
		struct scenario_group *g = &s->groups[i];
		g->first = (uint32_t)s->nvms;
		int width = g->count >= 1000 ? 4 : 3;
		for (uint32_t k = 0; k < (g->count ? g->count : 1); k++) {
			struct scenario_vm *v = &s->vms[s->nvms++];
			v->group = (uint32_t)i;
			if (g->count ? asprintf(&v->name, "%s-%0*u", g->name, width, k + 1) < 0
			             : !(v->name = strdup(g->name))) {
				v->name = NULL;
				return hv_err(HV_ENOMEM, "out of memory");
			}
		}
	}
	for (uint32_t i = 0; i < s->nvms; i++)
		L->vm_order[i] = i;
	for (uint32_t i = 0; i < s->ngroups; i++)
		L->group_order[i] = i;
	cmp_s = s;
	qsort(L->vm_order, s->nvms, sizeof *L->vm_order, cmp_vm);
	qsort(L->group_order, s->ngroups, sizeof *L->group_order, cmp_group);
	/* a name that can be referenced must name one thing: VM vs VM, fleet vs VM */
	for (size_t i = 1; i < s->nvms; i++) {
		const struct scenario_vm *a = &s->vms[L->vm_order[i - 1]],
		                         *b = &s->vms[L->vm_order[i]];
		if (!strcasecmp(a->name, b->name)) {
			const struct scenario_group *ga = &s->groups[a->group],
			                            *gb = &s->groups[b->group];
			const struct scenario_group *later =
			    ga->mark.line > gb->mark.line ||
			            (ga->mark.line == gb->mark.line && ga->mark.col > gb->mark.col)
			        ? ga
			        : gb;
			const struct scenario_group *earlier = later == ga ? gb : ga;
			return sc_fail(
			    L->path, later->mark,
			    "two VMs named '%s' (VM names are case-insensitive; the other"
			    " is declared at line %u)",
			    b->name, earlier->mark.line);
		}
	}
	for (size_t i = 0; i < s->ngroups; i++) {
		const struct scenario_group *g = &s->groups[i];
		int64_t v = find_vm(L, g->name);
		if (g->count && v >= 0)
			return sc_fail(
			    L->path, g->mark,
			    "fleet '%s' has the same name as VM '%s' (declared at line %u)",
			    g->name, s->vms[v].name, s->groups[s->vms[v].group].mark.line);
	}
	return 0;
}

/* "SIZE" or "MIN-MAX" */
static int parse_io(struct ld *L, const struct ynode *n, struct scenario_workload *w)
{
	int r = want_scalar(L, n, "io");
	if (r)
		return r;
	char lo[64], *dash = strchr(n->str, '-');
	uint64_t a, b;
	snprintf(lo, sizeof lo, "%.*s", dash ? (int)(dash - n->str) : (int)n->len, n->str);
	if (n->len >= sizeof lo || hv_parse_size(lo, &a) || (dash && hv_parse_size(dash + 1, &b)))
		return fail(L, n, "io: '%.60s' is not SIZE or MIN-MAX (like 64KiB or 4KiB-1MiB)",
		            n->str);
	if (!dash)
		b = a;
	if (!a || a % 512 || b % 512)
		return fail(L, n, "io: %.60s: sizes must be non-zero multiples of 512", n->str);
	if (a > b)
		return fail(L, n, "io: %.60s: the minimum is larger than the maximum", n->str);
	if (b > WL_IO_LIMIT)
		return fail(L, n, "io: %.60s: larger than the %u MiB limit of one guest write",
		            n->str, WL_IO_LIMIT >> 20);
	w->io_min = (uint32_t)a;
	w->io_max = (uint32_t)b;
	return 0;
}

static int parse_workloads(struct ld *L, const struct ynode *n)
{
	static const char *const K[] = {"pattern", "bytes", "io", "compress", "seed", NULL};
	struct scenario *s = L->s;
	if (n->kind != YN_MAP)
		return fail(L, n, "workloads: expected a mapping of NAME: {pattern: …}, found %s",
		            kind_name(n));
	if (n->n / 2 > SCENARIO_MAX_WORKLOADS)
		return fail(L, n->kids[2 * SCENARIO_MAX_WORKLOADS],
		            "workloads: more than %d workloads", SCENARIO_MAX_WORKLOADS);
	if (!(s->workloads = calloc(n->n / 2 + 1, sizeof *s->workloads)))
		return hv_err(HV_ENOMEM, "out of memory");
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		struct scenario_workload *w = &s->workloads[s->nworkloads++];
		const struct ynode *k = n->kids[i], *v = n->kids[i + 1];
		w->mark = k->mark;
		w->compress = WL_DEFAULT_COMPRESS_PCT;
		struct fields f;
		int r = get_label(L, k, "workload name", &w->name), pat = 0;
		if (!r && find_workload(s, w->name) != (int64_t)(s->nworkloads - 1))
			r = fail(L, k, "duplicate workload '%s' (first at line %u)", w->name,
			         s->workloads[find_workload(s, w->name)].mark.line);
		if (r || (r = get_fields(L, v, "a workload", K, &f)) ||
		    (r = need(L, v, &f, K, 0, "workload")) ||
		    (r = get_enum(L, f.val[0], "pattern", PATTERN_NAMES, &pat)))
			return r;
		w->pattern = (enum wl_pattern)pat;
		if (w->pattern == WL_OVERWRITE && f.val[1])
			return fail(L, f.key[1],
			            "bytes: an overwrite workload always writes the whole disk; "
			            "leave bytes out");
		if (w->pattern != WL_OVERWRITE && (r = need(L, v, &f, K, 1, "workload")))
			return r;
		if (f.val[1] &&
		    !(r = get_size(L, f.val[1], "bytes", 512, VHDX_MAX_VIRTUAL_SIZE, &w->bytes)) &&
		    w->bytes % 512)
			r = fail(L, f.val[1], "bytes: %s is not a multiple of 512", f.val[1]->str);
		if (!r && f.val[2])
			r = parse_io(L, f.val[2], w);
		uint64_t c = w->compress;
		if (!r && f.val[3])
			r = get_uint(L, f.val[3], "compress", 0, 100, &c);
		w->compress = (uint32_t)c;
		if (!r && f.val[4]) {
			w->has_seed = true;
			r = get_uint(L, f.val[4], "seed", 0, UINT64_MAX, &w->seed);
		}
		if (r)
			return r;
	}
	return 0;
}

/* ---- timeline -------------------------------------------------------------------------------- */

static int add_target_vm(struct ld *L, const struct ynode *where, struct scenario_target *t,
                         uint32_t vm, const char *via)
{
	if (L->seen[vm])
		return fail(L, where, "VM '%s' is named twice (again by '%.100s')",
		            L->s->vms[vm].name, via);
	L->seen[vm] = 1;
	t->vms[t->nvms++] = vm;
	return 0;
}

static int target_name(struct ld *L, const struct ynode *n, struct scenario_target *t)
{
	int r = want_scalar(L, n, "vm");
	if (r)
		return r;
	if (!(t->names[t->nnames++] = strdup(n->str)))
		return hv_err(HV_ENOMEM, "out of memory");
	int64_t g = find_group(L, n->str);
	if (g >= 0 && L->s->groups[g].count) {
		const struct scenario_group *gr = &L->s->groups[g];
		for (uint32_t k = 0; k < gr->count && !r; k++)
			r = add_target_vm(L, n, t, gr->first + k, n->str);
		return r;
	}
	int64_t v = find_vm(L, n->str);
	if (v < 0)
		return fail(L, n, "no VM or fleet named '%.100s' (declared under vms:)", n->str);
	return add_target_vm(L, n, t, (uint32_t)v, n->str);
}

/* `vm:` / `vms:` (synonyms): NAME, [NAMES] or all. */
static int parse_target(struct ld *L, const struct ynode *owner, const struct ynode *vm,
                        const struct ynode *vms, bool required, const char *what,
                        struct scenario_target *t)
{
	struct scenario *s = L->s;
	if (vm && vms)
		return fail(L, vms, "%s: give vm or vms, not both", what);
	const struct ynode *n = vm ? vm : vms;
	if (!n)
		return required ? fail(L, owner,
		                       "%s: missing required key 'vm' (a VM, a fleet, a list of "
		                       "them, or all)",
		                       what)
		                : 0;
	if (n->kind == YN_MAP)
		return fail(L, n,
		            "vm: expected a VM name, a list of names or all, found a mapping");
	if (n->kind == YN_SCALAR && !strcmp(n->str, "all")) {
		t->all = true;
		if (!(t->vms = calloc(s->nvms, sizeof *t->vms)))
			return hv_err(HV_ENOMEM, "out of memory");
		for (uint32_t i = 0; i < s->nvms; i++)
			t->vms[t->nvms++] = i;
		return 0;
	}
	size_t names = n->kind == YN_SEQ ? n->n : 1;
	if (!names)
		return fail(L, n, "vm: an empty list names no VM");
	/* room for the VMs named (a fleet counts its members), never more than all VMs: an entry
	 * naming one VM costs one slot, whatever the size of the host */
	size_t room = 0;
	for (size_t i = 0; i < names && room < s->nvms; i++) {
		const struct ynode *x = n->kind == YN_SEQ ? n->kids[i] : n;
		int64_t g = x->kind == YN_SCALAR ? find_group(L, x->str) : -1;
		room += g >= 0 && s->groups[g].count ? s->groups[g].count : 1;
	}
	if (room > s->nvms)
		room = s->nvms;
	if (!(t->names = calloc(names, sizeof *t->names)) ||
	    !(t->vms = calloc(room, sizeof *t->vms)))
		return hv_err(HV_ENOMEM, "out of memory");
	int r = 0;
	for (size_t i = 0; i < names && !r; i++) {
		const struct ynode *x = n->kind == YN_SEQ ? n->kids[i] : n;
		if (x->kind == YN_SCALAR && !strcmp(x->str, "all"))
			r = fail(L, x, "vm: 'all' stands alone (vms: all), not in a list");
		else
			r = target_name(L, x, t);
	}
	for (size_t i = 0; i < t->nvms; i++)
		L->seen[t->vms[i]] = 0;
	return r;
}

static int parse_write(struct ld *L, const struct ynode *n, struct scenario_entry *e)
{
	static const char *const K[] = {"vm", "vms", "workload", "disk", NULL};
	struct fields f;
	int r = get_fields(L, n, "write", K, &f);
	if (r || (r = parse_target(L, n, f.val[0], f.val[1], true, "write", &e->target)) ||
	    (r = need(L, n, &f, K, 2, "write")) || (r = want_scalar(L, f.val[2], "workload")))
		return r;
	int64_t w = find_workload(L->s, f.val[2]->str);
	if (w < 0)
		return fail(L, f.val[2],
		            "workload: no workload named '%.64s' (declared under workloads:)",
		            f.val[2]->str);
	e->write.workload = (uint32_t)w;
	if (f.val[3])
		r = get_label(L, f.val[3], "disk", &e->write.disk);
	return r;
}

static int parse_backup(struct ld *L, const struct ynode *n, struct scenario_entry *e)
{
	static const char *const K[] = {"vm", "vms", "engine", "path", "mode", NULL};
	struct fields f;
	int r = get_fields(L, n, "backup", K, &f), v = 0;
	if (r || (r = parse_target(L, n, f.val[0], f.val[1], true, "backup", &e->target)))
		return r;
	if (f.val[2]) {
		if ((r = want_scalar(L, f.val[2], "engine")))
			return r;
		if (strcmp(f.val[2]->str, "default")) {
			size_t i = 0;
			while (i < L->s->nengines && strcmp(L->s->engines[i].name, f.val[2]->str))
				i++;
			if (i == L->s->nengines)
				return fail(L, f.val[2],
				            "engine: no engine named '%.64s' (default, or one "
				            "declared under"
				            " engines:)",
				            f.val[2]->str);
			e->backup.engine = (uint32_t)i + 1;
		}
	}
	if (f.val[3] && (r = get_enum(L, f.val[3], "path", PATH_NAMES, &v)))
		return r;
	e->backup.path = (enum scenario_path)v;
	v = 0;
	if (f.val[4] && (r = get_enum(L, f.val[4], "mode", MODE_NAMES, &v)))
		return r;
	e->backup.mode = (enum scenario_mode)v;
	return 0;
}

static int parse_restore(struct ld *L, const struct ynode *n, struct scenario_entry *e)
{
	static const char *const K[] = {"vm", "vms", "point", "disk", "format", NULL};
	struct fields f;
	int r = get_fields(L, n, "restore", K, &f), v = 0;
	if (r || (r = parse_target(L, n, f.val[0], f.val[1], true, "restore", &e->target)))
		return r;
	e->restore.point = SCENARIO_POINT_LAST;
	if (f.val[2]) {
		const struct ynode *p = f.val[2];
		if ((r = want_scalar(L, p, "point")))
			return r;
		if (!strcmp(p->str, "last")) {
			e->restore.point = SCENARIO_POINT_LAST;
		} else if (!strcmp(p->str, "all")) {
			e->restore.point = SCENARIO_POINT_ALL;
		} else {
			uint64_t x;
			if (!p->plain || parse_digits(p->str, &x) || x == 0 ||
			    x > SCENARIO_MAX_EVENTS)
				return fail(L, p,
				            "point: expected last, all or a point number 1..%d, "
				            "found '%.60s'",
				            SCENARIO_MAX_EVENTS, p->str);
			e->restore.point = (uint32_t)x;
		}
	}
	if (f.val[3] && (r = get_label(L, f.val[3], "disk", &e->restore.disk)))
		return r;
	if (f.val[4] && (r = get_enum(L, f.val[4], "format", FORMAT_NAMES, &v)))
		return r;
	e->restore.format = (enum scenario_format)v;
	return 0;
}

static int get_method(struct ld *L, const struct ynode *n, char **out)
{
	int r = want_scalar(L, n, "method");
	if (!r && find(JOB_METHODS, n->str) < 0) {
		char list[400];
		join(list, sizeof list, JOB_METHODS);
		r = fail(L, n, "method: '%.60s' is not a WMI method with jobs (%s)", n->str, list);
	}
	if (!r && !(*out = strdup(n->str)))
		r = hv_err(HV_ENOMEM, "out of memory");
	return r;
}

static int parse_fault(struct ld *L, const struct ynode *n, struct scenario_entry *e)
{
	struct fields f;
	int r = get_fields(L, n, "fault", FAULT_KEYS, &f);
	if (r || (r = need(L, n, &f, FAULT_KEYS, 0, "fault")) ||
	    (r = want_scalar(L, f.val[FK_NAME], "name")))
		return r;
	int k = 0;
	while (k < SCENARIO_FAULT_COUNT && strcmp(FAULTS[k].name, f.val[FK_NAME]->str))
		k++;
	if (k == SCENARIO_FAULT_COUNT) {
		char list[600];
		size_t len = 0;
		for (int i = 0; i < SCENARIO_FAULT_COUNT; i++)
			len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
			                        i ? ", " : "", FAULTS[i].name);
		return fail(L, f.val[FK_NAME], "fault: unknown fault '%.60s' (known: %s)",
		            f.val[FK_NAME]->str, list);
	}
	e->fault.kind = (enum scenario_fault)k;
	/* clear first: it changes what else is allowed */
	if (f.val[FK_CLEAR]) {
		if (!(FAULTS[k].allowed & FP_CLEAR))
			return fail(L, f.key[FK_CLEAR],
			            "fault %s: takes no 'clear' (it is an event, not a condition)",
			            FAULTS[k].name);
		if ((r = get_bool(L, f.val[FK_CLEAR], "clear", &e->fault.clear)))
			return r;
	}
	unsigned allowed = FAULTS[k].allowed, required = FAULTS[k].required;
	if (e->fault.clear) {
		allowed &= FP_CLEAR_KEEPS;
		required &= FP_CLEAR_KEEPS;
	}
	for (int i = FK_VMS; FAULT_KEYS[i]; i++) {
		unsigned bit = i <= FK_VM ? FP_VM : 1u << (i - 2);
		if (f.val[i] && !(allowed & bit)) {
			char list[200];
			size_t len = 0;
			for (int j = FK_VM; FAULT_KEYS[j]; j++)
				if (allowed & (1u << (j - 2)))
					len +=
					    (size_t)snprintf(list + len, sizeof list - len, "%s%s",
					                     len ? ", " : "", FAULT_KEYS[j]);
			return fail(L, f.key[i], "fault %s%s: takes no '%s' (it takes %s)",
			            FAULTS[k].name, e->fault.clear ? " with clear" : "",
			            FAULT_KEYS[i], len ? list : "nothing but name");
		}
		if (!f.val[i] && (required & bit) &&
		    !(bit == FP_VM && (f.val[FK_VMS] || f.val[FK_VM])))
			return fail(L, n, "fault %s: missing required key '%s'", FAULTS[k].name,
			            FAULT_KEYS[i == FK_VMS ? FK_VM : i]);
	}
	if ((allowed & FP_VM) && (r = parse_target(L, n, f.val[FK_VM], f.val[FK_VMS],
	                                           required & FP_VM, FAULTS[k].name, &e->target)))
		return r;
	if (k == SCENARIO_FAULT_ENGINE_KILLED) {
		if (e->target.nvms > 1)
			return fail(L, f.val[FK_VM] ? f.val[FK_VM] : f.val[FK_VMS],
			            "fault engine-killed: kills one backup: name one VM, or"
			            " none for the next backup of any VM");
		if (!f.val[FK_AFTER_BLOCKS] == !f.val[FK_AT_COMMIT])
			return fail(
			    L, n,
			    "fault engine-killed: give exactly one of after_blocks and at_commit");
		if (f.val[FK_AFTER_BLOCKS] &&
		    (r = get_uint(L, f.val[FK_AFTER_BLOCKS], "after_blocks", 1, UINT32_MAX,
		                  &e->fault.after_blocks)))
			return r;
		uint64_t c = 0;
		if (f.val[FK_AT_COMMIT] &&
		    (r = get_uint(L, f.val[FK_AT_COMMIT], "at_commit", 1, 3, &c)))
			return r;
		e->fault.at_commit = (uint32_t)c;
	}
	if (f.val[FK_DISK] && (r = get_label(L, f.val[FK_DISK], "disk", &e->fault.disk)))
		return r;
	if (k == SCENARIO_FAULT_DISK_RESIZE &&
	    (r = get_size(L, f.val[FK_SIZE], "size", 512, VHDX_MAX_VIRTUAL_SIZE, &e->fault.size)))
		return r;
	if (k == SCENARIO_FAULT_DISK_ADD) {
		if (!(e->fault.add.name = strdup(e->fault.disk)))
			return hv_err(HV_ENOMEM, "out of memory");
		if ((r = parse_disk_fields(L, n, f.val[FK_SIZE], f.val[FK_TYPE], f.val[FK_BLOCK],
		                           f.val[FK_SECTOR], &e->fault.add)))
			return r;
	}
	if (f.val[FK_RESET] && (r = get_bool(L, f.val[FK_RESET], "reset", &e->fault.reset)))
		return r;
	if (f.val[FK_METHOD] && (r = get_method(L, f.val[FK_METHOD], &e->fault.method)))
		return r;
	uint64_t v;
	if (f.val[FK_CODE]) {
		if ((r = get_uint(L, f.val[FK_CODE], "code", 1, 65535, &v)))
			return r;
		e->fault.code = (uint32_t)v;
	}
	if (f.val[FK_STARTING]) {
		if ((r = get_uint(L, f.val[FK_STARTING], "starting", 0, 100000, &v)))
			return r;
		e->fault.starting = (uint32_t)v;
	}
	if (f.val[FK_RUNNING]) {
		if ((r = get_uint(L, f.val[FK_RUNNING], "running", 0, 100000, &v)))
			return r;
		e->fault.running = (uint32_t)v;
	}
	return 0;
}

static int parse_state(struct ld *L, const struct ynode *n, struct scenario_entry *e)
{
	static const char *const K[] = {"vm", "vms", "to", NULL};
	struct fields f;
	int r = get_fields(L, n, "state", K, &f), v = 0;
	if (r || (r = parse_target(L, n, f.val[0], f.val[1], true, "state", &e->target)) ||
	    (r = need(L, n, &f, K, 2, "state")) ||
	    (r = get_enum(L, f.val[2], "to", STATE_NAMES, &v)))
		return r;
	e->state.to = (enum scenario_vm_state)v;
	return 0;
}

static int parse_entry(struct ld *L, const struct ynode *n, struct scenario_entry *e)
{
	static const char *const K[] = {"at",     "every",   "from",  "until", "note", "write",
	                                "backup", "restore", "fault", "state", "set",  NULL};
	struct scenario *s = L->s;
	struct fields f;
	int r = get_fields(L, n, "a timeline entry", K, &f);
	if (r)
		return r;
	e->mark = n->mark;
	if (!f.val[0] == !f.val[1])
		return fail(L, f.val[0] ? f.key[1] : n, "%s",
		            f.val[0]
		                ? "a timeline entry has either at or every, not both"
		                : "a timeline entry needs a time: at: DURATION or every: DURATION");
	if (f.val[0] && (f.val[2] || f.val[3]))
		return fail(L, f.key[f.val[2] ? 2 : 3], "%s: only with every (at is a single time)",
		            f.val[2] ? "from" : "until");
	e->every = f.val[1] != NULL;
	if (f.val[0] && (r = get_duration(L, f.val[0], "at", &e->at)))
		return r;
	if (e->every) {
		if ((r = get_duration(L, f.val[1], "every", &e->period)))
			return r;
		if (!e->period)
			return fail(L, f.val[1], "every: the period must be longer than 0s");
		if (f.val[2] && (r = get_duration(L, f.val[2], "from", &e->at)))
			return r;
		e->has_until = f.val[3] != NULL;
		if (f.val[3] && (r = get_duration(L, f.val[3], "until", &e->until)))
			return r;
		if (!e->has_until) {
			if (!s->has_duration)
				return fail(
				    L, f.key[1],
				    "every: needs until (or a top-level duration to run until)");
			e->until = s->duration;
		}
		if (e->until < e->at)
			return fail(L, f.val[3] ? f.val[3] : f.key[1],
			            "until: before the first time (from)");
	}
	const struct ynode *tn = f.val[0] ? f.val[0] : f.val[3];
	uint64_t last = f.val[0] ? e->at : e->until;
	if (tn && s->has_duration && last > s->duration) {
		char d[32];
		scenario_duration_format(s->duration, d, sizeof d);
		return fail(L, tn, "%s: after the end of the scenario (duration %s)",
		            f.val[0] ? "at" : "until", d);
	}
	if (f.val[2] && s->has_duration && e->at > s->duration)
		return fail(L, f.val[2], "from: after the end of the scenario");
	if (f.val[4] && (r = get_string(L, f.val[4], "note", 1000, &e->note)))
		return r;
	int action = -1;
	for (int i = 0; i < SCENARIO_ACTION_COUNT; i++) {
		if (!f.val[5 + i])
			continue;
		if (action >= 0)
			return fail(L, f.key[5 + i],
			            "one action per timeline entry (this one has %s and %s)",
			            K[5 + action], K[5 + i]);
		action = i;
	}
	if (action < 0)
		return fail(L, n,
		            "a timeline entry needs an action: write, backup, restore, fault, "
		            "state or set");
	e->action = (enum scenario_action)action;
	const struct ynode *a = f.val[5 + action];
	e->action_mark = f.key[5 + action]->mark;
	switch (e->action) {
	case SCENARIO_WRITE:
		r = parse_write(L, a, e);
		break;
	case SCENARIO_BACKUP:
		r = parse_backup(L, a, e);
		break;
	case SCENARIO_RESTORE:
		r = parse_restore(L, a, e);
		break;
	case SCENARIO_FAULT:
		r = parse_fault(L, a, e);
		break;
	case SCENARIO_STATE:
		r = parse_state(L, a, e);
		break;
	case SCENARIO_SET:
		r = parse_settings(L, a, "set", false, &e->set.v, &e->set.n);
		break;
	}
	if (r)
		return r;
	/* the expansion's limit, checked as early as possible (scenario_expand checks it again) */
	uint64_t times = e->every ? (e->until - e->at) / e->period + 1 : 1,
	         per = e->target.nvms ? e->target.nvms : 1;
	L->events += times * per;
	if (L->events > SCENARIO_MAX_EVENTS)
		return fail(L, n,
		            "the timeline expands to more than %d events (with this entry: %llu "
		            "times × %llu VMs)",
		            SCENARIO_MAX_EVENTS, (unsigned long long)times,
		            (unsigned long long)per);
	return 0;
}

static int parse_timeline(struct ld *L, const struct ynode *n)
{
	struct scenario *s = L->s;
	if (n->kind != YN_SEQ)
		return fail(L, n, "timeline: expected a list of entries (- at: …), found %s",
		            kind_name(n));
	if (!n->n)
		return fail(L, n, "timeline: empty (a scenario needs at least one action)");
	if (n->n > SCENARIO_MAX_ENTRIES)
		return fail(L, n->kids[SCENARIO_MAX_ENTRIES], "timeline: more than %d entries",
		            SCENARIO_MAX_ENTRIES);
	if (!(s->timeline = calloc(n->n, sizeof *s->timeline)))
		return hv_err(HV_ENOMEM, "out of memory");
	for (size_t i = 0; i < n->n; i++) {
		int r = parse_entry(L, n->kids[i], &s->timeline[s->nentries++]);
		if (r)
			return r;
	}
	return 0;
}

/* ---- expectations ---------------------------------------------------------------------------- */

/* A plain decimal like 1.5: up to 6 decimals, so the canonical dump reads back exactly. */
static int get_ratio(struct ld *L, const struct ynode *n, double *out)
{
	int r = want_plain(L, n, "min_dedup_ratio", "a number");
	if (r)
		return r;
	const char *p = n->str, *dot = strchr(p, '.');
	size_t ints = dot ? (size_t)(dot - p) : n->len, decs = dot ? n->len - ints - 1 : 0;
	bool ok = ints >= 1 && ints <= 7 && (!dot || (decs >= 1 && decs <= 6));
	for (size_t i = 0; ok && i < n->len; i++)
		ok = (p[i] >= '0' && p[i] <= '9') || p + i == dot;
	if (!ok)
		return fail(
		    L, n, "min_dedup_ratio: '%.60s' is not a number like 1.5 (at most 6 decimals)",
		    n->str);
	double v = strtod(p, NULL);
	if (!(v > 0) || v > 1e6)
		return fail(L, n,
		            "min_dedup_ratio: %.60s is out of range (above 0, at most 1000000)",
		            n->str);
	*out = v;
	return 0;
}

static int parse_expect_backup(struct ld *L, const struct ynode *n, struct scenario_expect *x)
{
	static const char *const K[] = {"index",           "vm", "nth", "type", "result",
	                                "reason_contains", NULL};
	struct fields f;
	int r = get_fields(L, n, "expect backup", K, &f), v = 0;
	if (r)
		return r;
	if (f.val[0] && (f.val[1] || f.val[2]))
		return fail(L, f.key[f.val[1] ? 1 : 2],
		            "expect backup: name it by index, or by vm and nth, not both");
	if (!f.val[0] && !(f.val[1] && f.val[2]))
		return fail(L, n,
		            "expect backup: needs index (the backup's number in the timeline) or "
		            "vm and nth");
	uint64_t u;
	if (f.val[0]) {
		if ((r = get_uint(L, f.val[0], "index", 1, SCENARIO_MAX_EVENTS, &u)))
			return r;
		x->backup.index = (uint32_t)u;
	} else {
		x->backup.by_vm = true;
		if ((r = want_scalar(L, f.val[1], "vm")))
			return r;
		int64_t vm = find_vm(L, f.val[1]->str);
		if (vm < 0) {
			int64_t g = find_group(L, f.val[1]->str);
			if (g >= 0)
				return fail(
				    L, f.val[1],
				    "vm: '%.100s' is a fleet of %u; name one of its VMs (like %s)",
				    f.val[1]->str, L->s->groups[g].count,
				    L->s->vms[L->s->groups[g].first].name);
			return fail(L, f.val[1], "vm: no VM named '%.100s'", f.val[1]->str);
		}
		x->backup.vm = (uint32_t)vm;
		if ((r = get_uint(L, f.val[2], "nth", 1, SCENARIO_MAX_EVENTS, &u)))
			return r;
		x->backup.nth = (uint32_t)u;
	}
	if (!f.val[3] && !f.val[4] && !f.val[5])
		return fail(L, n,
		            "expect backup: says nothing (give type, result or reason_contains)");
	if (f.val[3] && (r = get_enum(L, f.val[3], "type", BTYPE_NAMES, &v)))
		return r;
	x->backup.type = (enum scenario_backup_type)v;
	v = 0;
	if (f.val[4] && (r = get_enum(L, f.val[4], "result", RESULT_NAMES, &v)))
		return r;
	x->backup.result = (enum scenario_result)v;
	if (x->backup.result == SCENARIO_RESULT_FAILED && (f.val[3] || f.val[5]))
		return fail(L, f.val[4],
		            "expect backup: a failed backup has no type or reason to check");
	if (f.val[5] &&
	    (r = get_string(L, f.val[5], "reason_contains", 500, &x->backup.reason_contains)))
		return r;
	return 0;
}

static int parse_expect(struct ld *L, const struct ynode *n)
{
	struct scenario *s = L->s;
	if (n->kind != YN_SEQ)
		return fail(L, n,
		            "expect: expected a list of expectations (- restores_match_truth: "
		            "true, …), found %s",
		            kind_name(n));
	if (!n->n)
		return fail(L, n, "expect: empty (a scenario that expects nothing cannot fail)");
	if (n->n > SCENARIO_MAX_EXPECT)
		return fail(L, n->kids[SCENARIO_MAX_EXPECT], "expect: more than %d expectations",
		            SCENARIO_MAX_EXPECT);
	if (!(s->expect = calloc(n->n, sizeof *s->expect)))
		return hv_err(HV_ENOMEM, "out of memory");
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *it = n->kids[i];
		struct scenario_expect *x = &s->expect[s->nexpect++];
		x->mark = it->mark;
		if (it->kind != YN_MAP || it->n != 2) {
			char list[400];
			join(list, sizeof list, EXPECT_NAMES);
			return fail(L, it, "expect: each item is one key: value (%s)", list);
		}
		const struct ynode *k = it->kids[0], *v = it->kids[1];
		int kind = find(EXPECT_NAMES, k->str), r = 0;
		if (kind < 0) {
			char list[400];
			join(list, sizeof list, EXPECT_NAMES);
			return fail(L, k, "unknown expectation '%.60s' (known: %s)", k->str, list);
		}
		x->kind = (enum scenario_expect_kind)kind;
		x->mark = k->mark;
		for (size_t j = 0; kind != SCENARIO_EXPECT_BACKUP && j + 1 < s->nexpect; j++)
			if (s->expect[j].kind == x->kind)
				return fail(L, k, "expectation '%s' given twice (first at line %u)",
				            k->str, s->expect[j].mark.line);
		bool b;
		switch (x->kind) {
		case SCENARIO_EXPECT_RESTORES_MATCH_TRUTH:
		case SCENARIO_EXPECT_NO_LEFTOVERS:
		case SCENARIO_EXPECT_NO_PENDING_MERGES:
		case SCENARIO_EXPECT_REPOSITORY_VERIFIES:
			if (!(r = get_bool(L, v, k->str, &b)) && !b)
				r = fail(
				    L, v,
				    "%s: only true means something (leave the line out instead)",
				    k->str);
			break;
		case SCENARIO_EXPECT_BACKUPS_SUCCEEDED:
			if (v->kind == YN_SCALAR && v->plain && !strcmp(v->str, "all"))
				x->all = true;
			else if (v->kind == YN_SCALAR && v->plain && parse_digits(v->str, &x->n))
				r = fail(
				    L, v,
				    "backups_succeeded: expected all or a number, found '%.60s'",
				    v->str);
			else
				r = get_uint(L, v, "backups_succeeded", 0, SCENARIO_MAX_EVENTS,
				             &x->n);
			break;
		case SCENARIO_EXPECT_BACKUPS_FAILED:
			r = get_uint(L, v, "backups_failed", 0, SCENARIO_MAX_EVENTS, &x->n);
			break;
		case SCENARIO_EXPECT_AUDIT_MISTAKES:
			r = get_uint(L, v, "audit_mistakes", 0, UINT32_MAX, &x->n);
			break;
		case SCENARIO_EXPECT_MIN_DEDUP_RATIO:
			r = get_ratio(L, v, &x->ratio);
			break;
		case SCENARIO_EXPECT_BACKUP:
			r = parse_expect_backup(L, v, x);
			break;
		}
		if (r)
			return r;
	}
	return 0;
}

/* ---- top level ------------------------------------------------------------------------------- */

static int check_name(struct ld *L, const struct ynode *n)
{
	struct scenario *s = L->s;
	int r = want_scalar(L, n, "name");
	if (r)
		return r;
	if (!label_ok(n->str, SCENARIO_MAX_NAME))
		return fail(
		    L, n,
		    "name: '%.100s' is not a valid scenario name (1..%d of A-Z a-z 0-9 . _ -)",
		    n->str, SCENARIO_MAX_NAME);
	const char *base = strrchr(L->path, '/');
	base = base ? base + 1 : L->path;
	size_t len = strlen(base);
	if (len > 5 && !strcmp(base + len - 5, ".yaml"))
		len -= 5;
	else if (len > 4 && !strcmp(base + len - 4, ".yml"))
		len -= 4;
	if (strlen(n->str) != len || strncmp(n->str, base, len))
		return fail(L, n,
		            "name: '%s' does not match the file name '%.*s' (a scenario is named "
		            "after its file)",
		            n->str, (int)len, base);
	if (!(s->name = strdup(n->str)))
		return hv_err(HV_ENOMEM, "out of memory");
	return 0;
}

static int parse_top(struct ld *L, const struct ynode *root)
{
	static const char *const K[] = {"name",      "description", "seed",    "tags",
	                                "duration",  "host",        "engines", "vms",
	                                "workloads", "timeline",    "expect",  NULL};
	struct scenario *s = L->s;
	struct fields f;
	int r = 0;
	if (root->kind != YN_MAP)
		return fail(
		    L, root,
		    "a scenario is a mapping (name:, vms:, timeline:, expect:, …), found %s",
		    kind_name(root));
	if ((r = get_fields(L, root, "the scenario", K, &f)))
		return r;
	static const int required[] = {0, 7, 9, 10};
	for (size_t i = 0; i < sizeof required / sizeof *required; i++)
		if ((r = need(L, root, &f, K, required[i], "scenario")))
			return r;
	if ((r = check_name(L, f.val[0])))
		return r;
	if (f.val[1] && (r = get_string(L, f.val[1], "description", 4096, &s->description)))
		return r;
	if (f.val[2] && (r = get_uint(L, f.val[2], "seed", 0, UINT64_MAX, &s->seed)))
		return r;
	if (f.val[3]) {
		const struct ynode *t = f.val[3];
		if (t->kind != YN_SEQ)
			return fail(L, t, "tags: expected a list (like [long]), found %s",
			            kind_name(t));
		if (t->n > SCENARIO_MAX_TAGS)
			return fail(L, t->kids[SCENARIO_MAX_TAGS], "tags: more than %d tags",
			            SCENARIO_MAX_TAGS);
		if (!(s->tags = calloc(t->n + 1, sizeof *s->tags)))
			return hv_err(HV_ENOMEM, "out of memory");
		for (size_t i = 0; i < t->n; i++) {
			if ((r = get_label(L, t->kids[i], "tag", &s->tags[s->ntags++])))
				return r;
			for (size_t j = 0; j + 1 < s->ntags; j++)
				if (!strcmp(s->tags[j], s->tags[i]))
					return fail(L, t->kids[i], "tags: '%s' given twice",
					            s->tags[i]);
		}
	}
	if (f.val[4]) {
		if ((r = get_duration(L, f.val[4], "duration", &s->duration)))
			return r;
		if (!s->duration)
			return fail(L, f.val[4], "duration: must be longer than 0s");
		s->has_duration = true;
	}
	if (f.val[5] && (r = parse_host(L, f.val[5])))
		return r;
	if (f.val[6] && (r = parse_engines(L, f.val[6])))
		return r;
	if ((r = parse_vms(L, f.val[7])))
		return r;
	if (f.val[8] && (r = parse_workloads(L, f.val[8])))
		return r;
	if ((r = parse_timeline(L, f.val[9])) || (r = parse_expect(L, f.val[10])))
		return r;
	return 0;
}

int scenario_load_buffer(const char *path, const char *buf, size_t len, struct scenario **out)
{
	*out = NULL;
	if (len > SCENARIO_MAX_FILE)
		return hv_err(HV_ECORRUPT,
		              "%s: %zu bytes: larger than the %u-byte limit of a scenario file",
		              path, len, SCENARIO_MAX_FILE);
	struct scenario *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return hv_err(HV_ENOMEM, "out of memory");
	}
	s->rct_granularity = 64 * 1024;
	s->strict = true;
	struct ld L = {.path = s->path, .s = s};
	struct ynode *root = NULL;
	int r = sc_yaml_load(path, buf, len, &root);
	if (!r && !root)
		r = sc_fail(path, (struct sc_mark){1, 1},
		            "empty file (a scenario is a mapping with name, vms, timeline and"
		            " expect)");
	if (!r)
		r = parse_top(&L, root);
	if (!r)
		r = scenario_expand(s, s->seed, &s->events, &s->nevents);
	if (!r)
		r = sc_resolve_expectations(s);
	sc_ynode_free(root);
	free(L.vm_order);
	free(L.group_order);
	free(L.seen);
	if (r) {
		scenario_free(s);
		return r;
	}
	*out = s;
	return 0;
}

int scenario_load(const char *path, struct scenario **out)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return hv_err(errno == ENOENT ? HV_ENOTFOUND : HV_EIO, "%s: cannot open: %s", path,
		              strerror(errno));
	/* read at most one byte past the limit: the size check needs no trust in stat */
	char *buf = malloc(SCENARIO_MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		return hv_err(HV_ENOMEM, "out of memory");
	}
	size_t n = fread(buf, 1, SCENARIO_MAX_FILE + 1, f);
	int err = ferror(f);
	fclose(f);
	int r;
	if (err)
		r = hv_err(HV_EIO, "%s: cannot read", path);
	else if (n > SCENARIO_MAX_FILE)
		r = hv_err(HV_ECORRUPT, "%s: larger than the %u-byte limit of a scenario file",
		           path, SCENARIO_MAX_FILE);
	else
		r = scenario_load_buffer(path, buf, n, out);
	free(buf);
	return r;
}

static void target_free(struct scenario_target *t)
{
	for (size_t i = 0; i < t->nnames; i++)
		free(t->names[i]);
	free(t->names);
	free(t->vms);
}

static void settings_free(struct scenario_setting *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

void scenario_free(struct scenario *s)
{
	if (!s)
		return;
	free(s->path);
	free(s->name);
	free(s->description);
	for (size_t i = 0; i < s->ntags; i++)
		free(s->tags[i]);
	free(s->tags);
	settings_free(s->settings, s->nsettings);
	for (size_t i = 0; i < s->nengines; i++) {
		free(s->engines[i].name);
		free(s->engines[i].backup);
		free(s->engines[i].restore);
	}
	free(s->engines);
	for (size_t i = 0; i < s->ngroups; i++) {
		for (size_t j = 0; j < s->groups[i].ndisks; j++)
			free(s->groups[i].disks[j].name);
		free(s->groups[i].disks);
		free(s->groups[i].name);
	}
	free(s->groups);
	for (size_t i = 0; i < s->nvms; i++)
		free(s->vms[i].name);
	free(s->vms);
	for (size_t i = 0; i < s->nworkloads; i++)
		free(s->workloads[i].name);
	free(s->workloads);
	for (size_t i = 0; i < s->nentries; i++) {
		struct scenario_entry *e = &s->timeline[i];
		free(e->note);
		target_free(&e->target);
		free(e->write.disk);
		free(e->restore.disk);
		free(e->fault.disk);
		free(e->fault.add.name);
		free(e->fault.method);
		settings_free(e->set.v, e->set.n);
	}
	free(s->timeline);
	for (size_t i = 0; i < s->nexpect; i++)
		free(s->expect[i].backup.reason_contains);
	free(s->expect);
	free(s->events);
	free(s);
}
