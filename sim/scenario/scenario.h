/*
 * scenario — scenario files: a simulated host, its VMs and disks, named guest workloads, a
 * timeline of writes, backups, restores, faults, VM state changes and setting changes on the
 * virtual clock, and the expectations a run is judged by. The file format is documented key by
 * key in scenarios/README.md; this module reads it (libyaml's event API, no hand-written YAML),
 * validates every key, type, value and reference, and turns the timeline into a sorted,
 * deterministic list of concrete events (scenario_expand). Loading does not run anything; the
 * runner (scenario_run, scenario_run.c, `hvsim scenario run`) drives a fresh host in-process
 * and an engine as a separate process from the events, and judges the run.
 *
 * Errors: loading stops at the first problem and hv_errmsg() reads `FILE:LINE:COL: what is
 * wrong` (1-based line and column of the key or value at fault); only failures to read the file
 * at all read `FILE: …`. scenario_load returns HV_ECORRUPT for an invalid file, HV_EIO or
 * HV_ENOTFOUND when it cannot be read, HV_ENOMEM.
 *
 * Bounds (a hostile file cannot make it allocate or loop without limit): files up to
 * SCENARIO_MAX_FILE bytes, nesting up to SCENARIO_MAX_DEPTH, SCENARIO_MAX_ENTRIES timeline
 * entries, SCENARIO_MAX_VMS VMs (fleets expanded), SCENARIO_MAX_EVENTS concrete events, and the
 * SCENARIO_MAX_* counts below for the small lists (whose duplicate checks are quadratic). Anchors,
 * aliases, explicit tags and multiple documents are rejected (they would let a small file
 * describe a huge one).
 *
 * Ownership: every pointer inside a struct scenario is owned by it and freed by scenario_free.
 * The structures are read-only for callers, except `seed`, which a runner may override before
 * calling scenario_expand.
 *
 * Must not: touch a host or read the clock while loading (only the runner touches a host, and
 * it reads the wall clock only to bound engine calls: nothing of it reaches a report), link the
 * engine (engines are processes), or hold global mutable state.
 */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../workload/workload.h"

#define SCENARIO_MAX_FILE (1024u * 1024u)
#define SCENARIO_MAX_DEPTH 32
#define SCENARIO_MAX_ENTRIES 10000
#define SCENARIO_MAX_VMS 1000
#define SCENARIO_MAX_EVENTS 100000
#define SCENARIO_MAX_DISKS 64 /* per VM, as HOST_MAX_DISKS_PER_VM */
#define SCENARIO_MAX_NAME 100 /* VM names (fleet members included), as HOST_NAME_MAX_LEN */
#define SCENARIO_MAX_LABEL 64 /* disk, workload, engine names; tags */
#define SCENARIO_MAX_DURATION (3650ull * 86400ull) /* ten years of virtual time, in seconds */
#define SCENARIO_MAX_TAGS 64
#define SCENARIO_MAX_ENGINES 64
#define SCENARIO_MAX_WORKLOADS 1000
#define SCENARIO_MAX_SETTINGS 100 /* per settings mapping */
#define SCENARIO_MAX_EXPECT 1000
#define SCENARIO_NO_VM UINT32_MAX

/* Where something was written: 1-based line and column. */
struct sc_mark {
	uint32_t line, col;
};

enum scenario_vm_state {
	SCENARIO_VM_RUNNING,
	SCENARIO_VM_OFF,
	SCENARIO_VM_SAVED,
};

/* A disk as declared under `vms:` or by a disk-add fault. */
struct scenario_disk {
	char *name;      /* label the timeline uses; default "disk0", "disk1", … by position. The
	                  * host names the file as Hyper-V does (<vm>.vhdx, <vm>_1.vhdx, …) */
	uint64_t size;   /* bytes, a non-zero multiple of sector, <= 64 TiB */
	bool fixed;      /* default dynamic */
	uint32_t block;  /* VHDX block size: power of two 1..256 MiB (default 32 MiB) */
	uint32_t sector; /* logical sector: 512 (default) or 4096 */
	struct sc_mark mark;
};

/* One entry of `vms:`: a VM, or a fleet of `count` identical VMs named <name>-001 … */
struct scenario_group {
	char *name;
	uint32_t count; /* 0: a single VM called `name`; N >= 1: a fleet of N */
	enum scenario_vm_state state;
	struct scenario_disk *disks;
	size_t ndisks;
	uint32_t first; /* index of its first VM in scenario.vms (members are consecutive) */
	struct sc_mark mark;
};

/* A concrete VM (fleets expanded), in declaration order. */
struct scenario_vm {
	char *name;
	uint32_t group; /* index into scenario.groups: its disks and initial state */
};

struct scenario_workload {
	char *name;
	enum wl_pattern pattern;
	uint64_t bytes;          /* per disk written; 0 for overwrite (always the whole disk) */
	uint32_t io_min, io_max; /* 0 = the workload defaults (4 KiB .. 1 MiB) */
	uint32_t compress;       /* 0..100, default 50 */
	bool has_seed; /* seed given: write seeds derive from it, not from the scenario seed */
	uint64_t seed;
	struct sc_mark mark;
};

/* An external engine: command templates the runner fills in (placeholders in README.md). */
struct scenario_engine {
	char *name;
	char *backup;  /* required */
	char *restore; /* optional (NULL: restores go through hvbackup) */
	struct sc_mark mark;
};

/* The VMs an action applies to: `vm: NAME`, `vms: [NAMES]` or `vms: all`. A fleet's name
 * stands for all its members. */
struct scenario_target {
	bool all;
	char **names; /* as written (all: none) */
	size_t nnames;
	uint32_t *vms; /* resolved: indices into scenario.vms, in order, without duplicates */
	size_t nvms;
};

struct scenario_setting {
	char *key;
	char *value; /* normalized: booleans "1"/"0", numbers in decimal, trajectories as written */
	struct sc_mark mark;
};

enum scenario_action {
	SCENARIO_WRITE,
	SCENARIO_BACKUP,
	SCENARIO_RESTORE,
	SCENARIO_FAULT,
	SCENARIO_STATE,
	SCENARIO_SET,
};
#define SCENARIO_ACTION_COUNT 6

enum scenario_path { SCENARIO_PATH_WIN32, SCENARIO_PATH_EXPORT, SCENARIO_PATH_RSVD };
/* incremental: the engine runs as for auto; the run fails that backup if it came out full */
enum scenario_mode { SCENARIO_MODE_AUTO, SCENARIO_MODE_FULL, SCENARIO_MODE_INCREMENTAL };
enum scenario_format { SCENARIO_FORMAT_RAW, SCENARIO_FORMAT_VHDX };
#define SCENARIO_POINT_LAST 0u
#define SCENARIO_POINT_ALL UINT32_MAX

/* Faults; what each does on the host is in README.md. The host call or setting behind each: */
enum scenario_fault {
	SCENARIO_FAULT_RCT_RESET,       /* host_fault_rct_reset (vm, disk?) */
	SCENARIO_FAULT_LIVE_MIGRATION,  /* host_fault_migrate (vm, reset) */
	SCENARIO_FAULT_HOST_CRASH,      /* host_fault_crash */
	SCENARIO_FAULT_DISK_RESIZE,     /* host_fault_resize (vm, disk, size) */
	SCENARIO_FAULT_DISK_ADD,        /* host_vm_add_disk (vm, disk, size, type, block, sector) */
	SCENARIO_FAULT_DISK_REMOVE,     /* host_vm_remove_disk (vm, disk) */
	SCENARIO_FAULT_DISK_REPLACE,    /* host_fault_replace (vm, disk) */
	SCENARIO_FAULT_JOB_EXCEPTION,   /* setting job.<method> = exception[=code] */
	SCENARIO_FAULT_SLOW_JOBS,       /* setting job.<method> = starting=N,running=N,completed */
	SCENARIO_FAULT_MERGE_BLOCKED,   /* host_fault_merge_block (vm, !clear) */
	SCENARIO_FAULT_LEAKED_REFPOINT, /* host_refpoint_create (vm), known to no repository */
	SCENARIO_FAULT_STALE_CHECKPOINT, /* host_fault_stale_checkpoint (vm) */
	SCENARIO_FAULT_ENGINE_KILLED,    /* the next backup (of vm) runs with HVBACKUP_CRASH_* */
	SCENARIO_FAULT_GUEST_VSS_OFF,    /* host_fault_guest_vss (vm, clear) */
	SCENARIO_FAULT_TRACKING_OFF,     /* host_rct_set_enabled (vm, disk?, clear) */
};
#define SCENARIO_FAULT_COUNT 15

struct scenario_entry {
	struct sc_mark mark;
	bool every;      /* false: once, at `at` */
	uint64_t at;     /* seconds from the start; every: the first time (`from`, default 0s) */
	uint64_t period; /* every: seconds between occurrences, > 0 */
	uint64_t until;  /* every: the last possible time, inclusive (default: the duration) */
	bool has_until;
	char *note; /* optional free text, shown by the runner */
	enum scenario_action action;
	struct sc_mark action_mark;
	struct scenario_target target; /* every action but set and the host-wide faults */
	struct {
		uint32_t workload; /* index into scenario.workloads */
		char *disk;        /* NULL: every attached disk */
	} write;
	struct {
		/* 0: default (hvbackup, or the runner's --engine); k: scenario.engines[k - 1] */
		uint32_t engine;
		enum scenario_path path;
		enum scenario_mode mode;
	} backup;
	struct {
		/* SCENARIO_POINT_LAST, SCENARIO_POINT_ALL, or N: the VM's N-th point (1-based) */
		uint32_t point;
		char *disk; /* NULL: every disk of the point */
		enum scenario_format format;
	} restore;
	struct {
		enum scenario_fault kind;
		char *disk;               /* the disk label (rct-reset, disk-*, tracking-off) */
		struct scenario_disk add; /* disk-add: the new disk (add.name equals disk) */
		uint64_t size;            /* disk-resize: the new size */
		bool reset;               /* live-migration: tracking is reset */
		/* job-exception, slow-jobs, merge-blocked, guest-vss-off, tracking-off: undo */
		bool clear;
		char *method;  /* job-exception (required); slow-jobs (NULL: default) */
		uint32_t code; /* job-exception: ErrorCode, 0 = the default (32768) */
		uint32_t starting, running; /* slow-jobs: polls in Starting and in Running */
		uint64_t after_blocks; /* engine-killed: HVBACKUP_CRASH_AFTER_BLOCKS (0: unset) */
		uint32_t at_commit;    /* engine-killed: HVBACKUP_CRASH_AT_COMMIT (0: unset) */
	} fault;
	struct {
		enum scenario_vm_state to;
	} state;
	struct {
		struct scenario_setting *v;
		size_t n;
	} set;
};

/* What each expectation checks: scenarios/README.md, "expect". */
enum scenario_expect_kind {
	SCENARIO_EXPECT_RESTORES_MATCH_TRUTH, /* every restored disk equals the ground truth */
	SCENARIO_EXPECT_BACKUP,               /* one backup's result, type and reason */
	SCENARIO_EXPECT_BACKUPS_SUCCEEDED,    /* exactly n backups succeeded (all: every one) */
	SCENARIO_EXPECT_BACKUPS_FAILED,       /* exactly n backups failed */
	SCENARIO_EXPECT_NO_LEFTOVERS,         /* no recovery checkpoint, <= 1 reference point/VM */
	SCENARIO_EXPECT_NO_PENDING_MERGES,    /* every disk is its base VHDX (no AVHDX left) */
	SCENARIO_EXPECT_REPOSITORY_VERIFIES,  /* `hvbackup verify` of the repository passes */
	SCENARIO_EXPECT_AUDIT_MISTAKES,       /* at most n client mistakes in the audit log */
	SCENARIO_EXPECT_MIN_DEDUP_RATIO,      /* bytes read / bytes stored >= ratio */
};
#define SCENARIO_EXPECT_COUNT 9

enum scenario_backup_type { SCENARIO_TYPE_ANY, SCENARIO_TYPE_FULL, SCENARIO_TYPE_INCREMENTAL };
enum scenario_result { SCENARIO_RESULT_ANY, SCENARIO_RESULT_SUCCEEDED, SCENARIO_RESULT_FAILED };

struct scenario_expect {
	enum scenario_expect_kind kind;
	struct sc_mark mark;
	bool all;     /* backups_succeeded: all */
	uint64_t n;   /* backups_succeeded, backups_failed, audit_mistakes */
	double ratio; /* min_dedup_ratio */
	struct {
		/* resolved: the backup's number among all backups (1-based, timeline order) */
		uint32_t index;
		bool by_vm;   /* written as vm + nth (else as index) */
		uint32_t vm;  /* by_vm: index into scenario.vms */
		uint32_t nth; /* by_vm: the VM's nth backup (1-based) */
		enum scenario_backup_type type;
		enum scenario_result result;
		char *reason_contains; /* NULL: any */
	} backup;
};

struct scenario_event;

struct scenario {
	char *path;        /* as given to scenario_load (messages) */
	char *name;        /* equals the file name without .yaml/.yml */
	char *description; /* NULL when absent */
	uint64_t seed;     /* default 0; a runner may override before scenario_expand */
	char **tags;
	size_t ntags;
	bool has_duration;
	uint64_t duration; /* seconds: the end of the run (default: the last event) */

	uint32_t rct_granularity; /* bytes, power of two 4 KiB .. 16 MiB (default 64 KiB) */
	bool strict;              /* host setting wmi.strict (default true) */
	struct scenario_setting *settings;
	size_t nsettings;

	struct scenario_engine *engines;
	size_t nengines;
	struct scenario_group *groups;
	size_t ngroups;
	struct scenario_vm *vms;
	size_t nvms;
	struct scenario_workload *workloads;
	size_t nworkloads;
	struct scenario_entry *timeline;
	size_t nentries;
	struct scenario_expect *expect;
	size_t nexpect;

	/* the timeline expanded with `seed` at load time (scenario_expand) */
	struct scenario_event *events;
	size_t nevents;
};

/* A concrete event: one action at one time on one VM (or host-wide). */
struct scenario_event {
	uint64_t time;   /* seconds from the start of the run */
	uint32_t entry;  /* index into scenario.timeline: the action and its parameters */
	uint32_t vm;     /* index into scenario.vms, or SCENARIO_NO_VM (host-crash, slow-jobs,
	                  * job-exception, set, engine-killed without vm) */
	uint32_t seq;    /* 1-based number among all events of this action (backup #seq) */
	uint32_t vm_seq; /* 1-based number among this VM's events of this action (0: no VM) */
	uint64_t seed;   /* write: the seed for host_vm_write (which derives one per disk) */
	/* backup: armed by an earlier engine-killed fault (0: not armed) */
	uint64_t crash_after_blocks;
	uint32_t crash_at_commit;
};

/* Reads, parses and validates a scenario file and expands its timeline. *out is freed with
 * scenario_free. On error *out is NULL and hv_errmsg() is `FILE:LINE:COL: message`. */
int scenario_load(const char *path, struct scenario **out);
/* The same from memory; `path` names the file in messages and gives the expected `name`. */
int scenario_load_buffer(const char *path, const char *buf, size_t len, struct scenario **out);
void scenario_free(struct scenario *s);

/* The concrete events of the timeline for `seed` (only write seeds depend on it), sorted by time,
 * then timeline order, then the order of the target VMs: every `every:` expanded, multi-VM
 * actions split per VM, engine-killed faults resolved onto the backup they kill. *events is
 * malloc'ed (the caller frees it). Errors (a reference that does not hold at that point of the
 * timeline, too many events) are `FILE:LINE:COL: …` like scenario_load's; a loaded scenario
 * expands without error for any seed. */
int scenario_expand(const struct scenario *s, uint64_t seed, struct scenario_event **events,
                    size_t *n);

/* Canonical form: YAML with every default filled in, sizes and durations in one spelling, strings
 * quoted. Loading the dump (under the same file name) gives an equal scenario and the same dump. */
int scenario_dump(const struct scenario *s, FILE *f);
/* The expanded events of s->events, one line each (time, action, VM, numbers, parameters). */
int scenario_events_dump(const struct scenario *s, FILE *f);

/* Counts over s->events (for summaries). */
struct scenario_counts {
	size_t vms, disks, events, per_action[SCENARIO_ACTION_COUNT];
	uint64_t end; /* seconds: the duration, or the last event's time */
};
void scenario_count(const struct scenario *s, struct scenario_counts *c);

/* Names as written in files ("rct-reset", "backup", "win32", …); "?" outside the enum. */
const char *scenario_action_name(enum scenario_action a);
const char *scenario_fault_name(enum scenario_fault f);
const char *scenario_path_name(enum scenario_path p);
const char *scenario_mode_name(enum scenario_mode m);
const char *scenario_vm_state_name(enum scenario_vm_state st);
const char *scenario_expect_name(enum scenario_expect_kind k);

/* "2d3h" for seconds (largest units first, zero parts left out; "0s" for zero). buf >= 32 bytes. */
void scenario_duration_format(uint64_t seconds, char *buf, size_t size);
/* Parses a duration: one or more NUMBER UNIT parts, units d, h, m, s in that order, each at most
 * once; a part after a larger unit must stay below it (h < 24, m < 60, s < 60); <= 3650d.
 * 0 or HV_EINVAL with the reason. */
int scenario_duration_parse(const char *text, uint64_t *seconds);


/* ---- the runner (scenario_run.c) --------------------------------------------------------------
 * Runs the expanded events of a loaded scenario against a fresh host (created with the scenario's
 * seed, without fsync) in a run folder: writes, faults, settings and state changes through the
 * host API, in-process; backups and restores through the engine, as child processes with
 * HVSIM_HOST and HVSIM_NOSYNC=1 in their environment (HVBACKUP_CRASH_* for a backup an
 * engine-killed fault armed). Every restored disk is compared block by block with the ground
 * truth of its point; then the expectations are evaluated. The result is everything a summary or
 * a report needs; the report holds no wall-clock value and no path of the run folder (messages
 * name it `{run}`), so the same scenario and seed give the same report bytes.
 *
 * Engines: the default engine is hvbackup (`hvbackup`), called with its own command line, unless
 * `backup` (and `restore`) templates replace it; scenario engines are templates (placeholders in
 * scenarios/README.md, run with /bin/sh -c, every value shell-quoted). Listing, restoring
 * without a restore template, and `repository_verifies` always use `hvbackup`. */
struct scenario_run_opts {
	const char *hvbackup; /* path of the hvbackup binary (required) */
	const char *backup;   /* template replacing the default engine's backups (NULL: hvbackup) */
	const char *restore;  /* template for the default engine's restores (NULL: hvbackup) */
	const char *keep;     /* run folder, created (or empty) and kept; NULL: a temporary one */
	unsigned timeout;     /* seconds per engine call, then the child is killed; 0 = 600 */
};

struct scenario_outcome;

/* Runs s->events. 0 when the run could be carried out (the result says whether the expectations
 * hold; events that failed on the host are recorded in it as errors); HV_E* when it could not
 * start (run folder, host creation, missing hvbackup). *out is freed with scenario_outcome_free. */
int scenario_run(const struct scenario *s, const struct scenario_run_opts *o,
                 struct scenario_outcome **out);
void scenario_outcome_free(struct scenario_outcome *r);
/* Every expectation holds and no event failed. */
bool scenario_outcome_passed(const struct scenario_outcome *r);
/* The human summary: one line per backup and restore, totals and ratios, each expectation
 * PASS/FAIL with its evidence, and a last line with the verdict. */
int scenario_outcome_print(const struct scenario_outcome *r, FILE *f);
/* The report as JSON: keys sorted, no wall-clock values, no run-folder paths. */
int scenario_outcome_json(const struct scenario_outcome *r, FILE *f);
/* Checks an engine command template: every {…} must be one of the placeholders of a backup
 * (restore = false: host vm repo path mode) or a restore (repo vm point disk to) template.
 * 0 or HV_EINVAL with the reason. */
int scenario_template_check(const char *tmpl, bool restore);

#endif
