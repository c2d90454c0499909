/*
 * test_scenario — the scenario file format: every construct parsed into the expected struct,
 * every kind of invalid file rejected with its exact FILE:LINE:COL and cause, the timeline
 * expansion (every/from/until, ordering, per-VM split, seeds, engine-killed arming), the
 * canonical dump (loads back to the same dump), the library under scenarios/ (every file loads
 * and round-trips), the limits (file size, entries, VMs, events, nesting), and a seeded mutation
 * fuzz loop over the library files (never a crash, a leak, or an error without a position).
 *
 * Run from the repository root (ci/run-tests does): the library is read from scenarios/.
 */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../scenario.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static struct scenario *load_ok(const char *path, const char *text)
{
	struct scenario *s = NULL;
	int r = scenario_load_buffer(path, text, strlen(text), &s);
	if (r)
		fail_msg("%s did not load: %s", path, hv_errmsg());
	assert_non_null(s);
	return s;
}

/* The error must be exactly "t.yaml:LINE:COL: …" and contain `frag`. Returns false (after
 * printing why) when it is not. */
static bool check_error(const char *text, unsigned line, unsigned col, const char *frag)
{
	struct scenario *s = (struct scenario *)1;
	int r = scenario_load_buffer("t.yaml", text, strlen(text), &s);
	if (r == 0) {
		scenario_free(s);
		print_error("loaded, but expected %u:%u: %s\n--- input:\n%s\n", line, col, frag,
		            text);
		return false;
	}
	char want[64];
	snprintf(want, sizeof want, "t.yaml:%u:%u: ", line, col);
	const char *m = hv_errmsg();
	if (r != HV_ECORRUPT || s || strncmp(m, want, strlen(want)) || !strstr(m, frag)) {
		print_error("expected '%s…%s', got '%s' (code %d)\n--- input:\n%s\n", want, frag, m,
		            r, text);
		return false;
	}
	return true;
}

static void expect_error(const char *text, unsigned line, unsigned col, const char *frag)
{
	if (!check_error(text, line, col, frag))
		fail();
}

/* `base` with the first occurrence of `from` replaced by `to` (caller frees). */
static char *subst(const char *base, const char *from, const char *to)
{
	const char *p = strstr(base, from);
	if (!p)
		fail_msg("'%s' not in the base text", from);
	size_t a = (size_t)(p - base), fl = strlen(from), tl = strlen(to), bl = strlen(base);
	char *out = malloc(bl - fl + tl + 1);
	assert_non_null(out);
	memcpy(out, base, a);
	memcpy(out + a, to, tl);
	memcpy(out + a + tl, p + fl, bl - a - fl + 1);
	return out;
}

static char *dump_str(const struct scenario *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(scenario_dump(s, f), 0);
	fclose(f);
	return buf;
}

static char *events_str(const struct scenario *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(scenario_events_dump(s, f), 0);
	fclose(f);
	return buf;
}

/* Dump, reload the dump under the same name, dump again: the two dumps are equal. */
static void assert_roundtrip(const struct scenario *s)
{
	char *d1 = dump_str(s);
	struct scenario *s2 = NULL;
	if (scenario_load_buffer(s->path, d1, strlen(d1), &s2))
		fail_msg("the dump of %s does not load: %s\n--- dump:\n%s", s->path, hv_errmsg(),
		         d1);
	char *d2 = dump_str(s2);
	assert_string_equal(d1, d2);
	char *e1 = events_str(s), *e2 = events_str(s2);
	assert_string_equal(e1, e2);
	assert_int_equal(s->nevents, s2->nevents);
	free(e1);
	free(e2);
	free(d1);
	free(d2);
	scenario_free(s2);
}

static const struct scenario_event *event_at(const struct scenario *s, size_t i)
{
	assert_true(i < s->nevents);
	return &s->events[i];
}

static enum scenario_action action_of(const struct scenario *s, size_t i)
{
	return s->timeline[event_at(s, i)->entry].action;
}

static const char BASE[] = "name: t\n"                             /* 1 */
                           "vms:\n"                                /* 2 */
                           "  - name: web\n"                       /* 3 */
                           "    disks:\n"                          /* 4 */
                           "      - {size: 64MiB}\n"               /* 5 */
                           "workloads:\n"                          /* 6 */
                           "  w: {pattern: random, bytes: 1MiB}\n" /* 7 */
                           "timeline:\n"                           /* 8 */
                           "  - at: 1h\n"                          /* 9 */
                           "    write: {vm: web, workload: w}\n"   /* 10 */
                           "  - at: 2h\n"                          /* 11 */
                           "    backup: {vm: web}\n"               /* 12 */
                           "  - at: 3h\n"                          /* 13 */
                           "    restore: {vm: web}\n"              /* 14 */
                           "expect:\n"                             /* 15 */
                           "  - restores_match_truth: true\n";     /* 16 */

/* ---- durations ------------------------------------------------------------------------------- */

static void test_duration(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		uint64_t secs;
		const char *canon;
	} ok[] = {{"0s", 0, "0s"},
	          {"90m", 5400, "1h30m"},
	          {"2d03h", 183600, "2d3h"},
	          {"1d12h30m", 131400, "1d12h30m"},
	          {"36h", 129600, "1d12h"},
	          {"59s", 59, "59s"},
	          {"3650d", 3650ull * 86400, "3650d"},
	          {"1h0m5s", 3605, "1h5s"}};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		uint64_t v = 1;
		assert_int_equal(scenario_duration_parse(ok[i].text, &v), 0);
		assert_int_equal(v, ok[i].secs);
		char buf[32];
		scenario_duration_format(v, buf, sizeof buf);
		assert_string_equal(buf, ok[i].canon);
	}
	static const char *const bad[] = {"",     "0",     "90",    "1x",    "1h2d",
	                                  "1d1d", "1d24h", "1h60m", "1m60s", "3651d",
	                                  "-1s",  "1.5h",  "h",     "1 h",   "99999999999d"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		uint64_t v;
		if (scenario_duration_parse(bad[i], &v) != HV_EINVAL)
			fail_msg("'%s' accepted as a duration", bad[i]);
	}
}

/* ---- every construct ------------------------------------------------------------------------- */

static const char FULL[] =
    "name: full\n"
    "description: >-\n"
    "  folded\n"
    "  text\n"
    "seed: 18446744073709551615\n"
    "tags: [long, nightly]\n"
    "duration: 3d\n"
    "host:\n"
    "  rct_granularity: 256KiB\n"
    "  strict: false\n"
    "  settings:\n"
    "    wmi.changes_max_ranges: 16\n"
    "    merge.block_on_extra_refpoints: false\n"
    "    refpoint.reverse_disk_order: 1\n"
    "    job.default: starting=2,running=5,completed\n"
    "    job.CreateSnapshot: sync\n"
    "    virtdisk.max_ranges_per_call: 0\n"
    "engines:\n"
    "  vendor:\n"
    "    backup: \"vb {host} {vm} {repo} {path} {mode}\"\n"
    "    restore: \"vr {repo} {vm} {point} {disk} {to}\"\n"
    "vms:\n"
    "  - name: web\n"
    "    state: saved\n"
    "    disks:\n"
    "      - {size: 64MiB}\n"
    "      - {name: data, size: 32MiB, type: fixed, block: 1MiB, sector: 4096}\n"
    "  - name: vdi\n"
    "    count: 3\n"
    "    disks:\n"
    "      - {name: sys, size: 16MiB}\n"
    "workloads:\n"
    "  w4k: {pattern: zipf, bytes: 2MiB, io: 4KiB-64KiB, compress: 0, seed: 5}\n"
    "  ow: {pattern: overwrite, io: 1MiB}\n"
    "  tr: {pattern: trim, bytes: 512KiB}\n"
    "timeline:\n"
    "  - every: 1d\n"
    "    from: 9h\n"
    "    note: daily\n"
    "    write: {vms: [web, vdi-002], workload: w4k}\n"
    "  - at: 10h\n"
    "    write: {vm: web, workload: ow, disk: disk0}\n"
    "  - at: 11h\n"
    "    write: {vm: vdi, workload: tr}\n"
    "  - at: 12h\n"
    "    state: {vms: all, to: running}\n"
    "  - at: 13h\n"
    "    set: {wmi.strict: false, job.ConvertToReferencePoint: \"exception=7\"}\n"
    "  - every: 1d\n"
    "    from: 23h\n"
    "    until: 1d23h\n"
    "    backup: {vms: all, engine: vendor, path: rsvd, mode: full}\n"
    "  - at: 1d1h\n"
    "    fault: {name: disk-add, vm: web, disk: extra, size: 8MiB, type: fixed, block: 2MiB, "
    "sector: 4096}\n"
    "  - at: 1d2h\n"
    "    fault: {name: disk-resize, vm: web, disk: data, size: 48MiB}\n"
    "  - at: 1d3h\n"
    "    fault: {name: disk-remove, vm: web, disk: extra}\n"
    "  - at: 1d4h\n"
    "    fault: {name: live-migration, vm: web, reset: true}\n"
    "  - at: 1d5h\n"
    "    fault: {name: slow-jobs, method: DestroySnapshot, starting: 1, running: 9}\n"
    "  - at: 1d6h\n"
    "    fault: {name: job-exception, method: CreateSnapshot, code: 32775}\n"
    "  - at: 1d7h\n"
    "    fault: {name: tracking-off, vm: web, disk: data, clear: true}\n"
    "  - at: 1d8h\n"
    "    fault: {name: engine-killed, after_blocks: 3}\n"
    "  - at: 2d\n"
    "    backup: {vm: vdi-001}\n"
    "  - at: 2d1h\n"
    "    restore: {vm: web, point: 2, disk: data, format: vhdx}\n"
    "  - at: 2d2h\n"
    "    restore: {vms: [vdi-001], point: all}\n"
    "  - at: 2d3h\n"
    "    fault: {name: host-crash}\n"
    "expect:\n"
    "  - restores_match_truth: true\n"
    "  - backups_succeeded: 8\n"
    "  - backups_failed: 1\n"
    "  - no_leftovers: true\n"
    "  - no_pending_merges: true\n"
    "  - repository_verifies: true\n"
    "  - audit_mistakes: 2\n"
    "  - min_dedup_ratio: 1.25\n"
    "  - backup: {index: 5, result: failed}\n"
    "  - backup: {vm: vdi-003, nth: 2, type: full, reason_contains: \"requested\"}\n";

static void test_full(void **state)
{
	(void)state;
	struct scenario *s = load_ok("dir/full.yaml", FULL);
	assert_string_equal(s->name, "full");
	assert_string_equal(s->description, "folded text");
	assert_true(s->seed == UINT64_MAX);
	assert_int_equal(s->ntags, 2);
	assert_string_equal(s->tags[1], "nightly");
	assert_true(s->has_duration);
	assert_int_equal(s->duration, 3 * 86400);
	assert_int_equal(s->rct_granularity, 256 * 1024);
	assert_false(s->strict);
	assert_int_equal(s->nsettings, 6);
	assert_string_equal(s->settings[0].key, "wmi.changes_max_ranges");
	assert_string_equal(s->settings[0].value, "16");
	assert_string_equal(s->settings[1].value, "0");
	assert_string_equal(s->settings[2].value, "1");
	assert_string_equal(s->settings[3].value, "starting=2,running=5,completed");
	assert_int_equal(s->settings[3].mark.line, 15);
	assert_int_equal(s->settings[3].mark.col, 5);
	assert_int_equal(s->nengines, 1);
	assert_string_equal(s->engines[0].name, "vendor");
	assert_string_equal(s->engines[0].restore, "vr {repo} {vm} {point} {disk} {to}");

	assert_int_equal(s->ngroups, 2);
	const struct scenario_group *g = &s->groups[0];
	assert_string_equal(g->name, "web");
	assert_int_equal(g->count, 0);
	assert_int_equal(g->state, SCENARIO_VM_SAVED);
	assert_int_equal(g->ndisks, 2);
	assert_string_equal(g->disks[0].name, "disk0");
	assert_int_equal(g->disks[0].size, 64u << 20);
	assert_false(g->disks[0].fixed);
	assert_int_equal(g->disks[0].block, 32u << 20);
	assert_int_equal(g->disks[0].sector, 512);
	assert_string_equal(g->disks[1].name, "data");
	assert_true(g->disks[1].fixed);
	assert_int_equal(g->disks[1].block, 1u << 20);
	assert_int_equal(g->disks[1].sector, 4096);
	assert_int_equal(s->groups[1].count, 3);
	assert_int_equal(s->groups[1].first, 1);
	assert_int_equal(s->nvms, 4);
	assert_string_equal(s->vms[0].name, "web");
	assert_string_equal(s->vms[1].name, "vdi-001");
	assert_string_equal(s->vms[3].name, "vdi-003");
	assert_int_equal(s->vms[3].group, 1);

	assert_int_equal(s->nworkloads, 3);
	const struct scenario_workload *w = &s->workloads[0];
	assert_int_equal(w->pattern, WL_ZIPF);
	assert_int_equal(w->bytes, 2u << 20);
	assert_int_equal(w->io_min, 4096);
	assert_int_equal(w->io_max, 65536);
	assert_int_equal(w->compress, 0);
	assert_true(w->has_seed);
	assert_int_equal(w->seed, 5);
	assert_int_equal(s->workloads[1].pattern, WL_OVERWRITE);
	assert_int_equal(s->workloads[1].bytes, 0);
	assert_int_equal(s->workloads[1].io_min, 1u << 20);
	assert_int_equal(s->workloads[2].compress, 50);
	assert_false(s->workloads[2].has_seed);

	assert_int_equal(s->nentries, 18);
	const struct scenario_entry *e = &s->timeline[0];
	assert_true(e->every);
	assert_int_equal(e->at, 9 * 3600);
	assert_int_equal(e->period, 86400);
	assert_false(e->has_until);
	assert_int_equal(e->until, 3 * 86400);
	assert_string_equal(e->note, "daily");
	assert_int_equal(e->action, SCENARIO_WRITE);
	assert_int_equal(e->target.nvms, 2);
	assert_int_equal(e->target.vms[0], 0);
	assert_int_equal(e->target.vms[1], 2);
	assert_int_equal(e->target.nnames, 2);
	assert_null(e->write.disk);
	assert_string_equal(s->timeline[1].write.disk, "disk0");
	e = &s->timeline[2]; /* a fleet name stands for its members */
	assert_int_equal(e->target.nvms, 3);
	assert_int_equal(e->target.vms[2], 3);
	e = &s->timeline[3];
	assert_true(e->target.all);
	assert_int_equal(e->target.nvms, 4);
	assert_int_equal(e->state.to, SCENARIO_VM_RUNNING);
	e = &s->timeline[4];
	assert_int_equal(e->action, SCENARIO_SET);
	assert_int_equal(e->set.n, 2);
	assert_string_equal(e->set.v[0].key, "wmi.strict");
	assert_string_equal(e->set.v[0].value, "0");
	e = &s->timeline[5];
	assert_int_equal(e->backup.engine, 1);
	assert_int_equal(e->backup.path, SCENARIO_PATH_RSVD);
	assert_int_equal(e->backup.mode, SCENARIO_MODE_FULL);
	assert_true(e->has_until);
	assert_int_equal(e->until, 86400 + 23 * 3600);
	e = &s->timeline[6];
	assert_int_equal(e->fault.kind, SCENARIO_FAULT_DISK_ADD);
	assert_string_equal(e->fault.add.name, "extra");
	assert_int_equal(e->fault.add.size, 8u << 20);
	assert_true(e->fault.add.fixed);
	assert_int_equal(e->fault.add.block, 2u << 20);
	assert_int_equal(e->fault.add.sector, 4096);
	assert_int_equal(s->timeline[7].fault.size, 48u << 20);
	assert_true(s->timeline[9].fault.reset);
	e = &s->timeline[10];
	assert_int_equal(e->fault.kind, SCENARIO_FAULT_SLOW_JOBS);
	assert_string_equal(e->fault.method, "DestroySnapshot");
	assert_int_equal(e->fault.starting, 1);
	assert_int_equal(e->fault.running, 9);
	assert_int_equal(e->target.nvms, 0);
	assert_int_equal(s->timeline[11].fault.code, 32775);
	assert_true(s->timeline[12].fault.clear);
	assert_int_equal(s->timeline[13].fault.after_blocks, 3);
	e = &s->timeline[15];
	assert_int_equal(e->restore.point, 2);
	assert_string_equal(e->restore.disk, "data");
	assert_int_equal(e->restore.format, SCENARIO_FORMAT_VHDX);
	assert_int_equal(s->timeline[16].restore.point, SCENARIO_POINT_ALL);
	assert_int_equal(s->timeline[0].mark.line, 37);
	assert_int_equal(s->timeline[0].mark.col, 5);
	assert_int_equal(s->timeline[0].action_mark.line, 40);

	assert_int_equal(s->nexpect, 10);
	assert_int_equal(s->expect[1].kind, SCENARIO_EXPECT_BACKUPS_SUCCEEDED);
	assert_int_equal(s->expect[1].n, 8);
	assert_false(s->expect[1].all);
	assert_int_equal(s->expect[6].n, 2);
	assert_true(s->expect[7].ratio == 1.25);
	assert_int_equal(s->expect[8].backup.index, 5);
	assert_int_equal(s->expect[8].backup.result, SCENARIO_RESULT_FAILED);
	const struct scenario_expect *x = &s->expect[9];
	assert_true(x->backup.by_vm);
	assert_int_equal(x->backup.vm, 3);
	assert_int_equal(x->backup.nth, 2);
	assert_int_equal(x->backup.type, SCENARIO_TYPE_FULL);
	assert_string_equal(x->backup.reason_contains, "requested");
	/* resolved: vdi-003's 2nd backup is at 1d23h, the 8th backup (4 VMs × 2 nights) */
	assert_int_equal(x->backup.index, 8);

	/* the killed backup is the first one after 1d8h: web's at 1d23h, backup #5 */
	size_t killed = 0;
	for (size_t i = 0; i < s->nevents; i++) {
		const struct scenario_event *ev = &s->events[i];
		if (ev->crash_after_blocks) {
			killed++;
			assert_int_equal(ev->seq, 5);
			assert_int_equal(ev->vm, 0);
			assert_int_equal(ev->crash_after_blocks, 3);
			assert_int_equal(ev->time, 86400 + 23 * 3600);
		}
	}
	assert_int_equal(killed, 1);
	struct scenario_counts c;
	scenario_count(s, &c);
	assert_int_equal(c.vms, 4);
	assert_int_equal(c.disks, 5);
	assert_int_equal(c.per_action[SCENARIO_BACKUP], 9);
	assert_int_equal(c.per_action[SCENARIO_RESTORE], 2);
	assert_int_equal(c.end, 3 * 86400);
	assert_roundtrip(s);
	scenario_free(s);
}

static void test_defaults(void **state)
{
	(void)state;
	struct scenario *s = load_ok("t.yaml", BASE);
	assert_int_equal(s->seed, 0);
	assert_null(s->description);
	assert_int_equal(s->ntags, 0);
	assert_false(s->has_duration);
	assert_int_equal(s->rct_granularity, 64 * 1024);
	assert_true(s->strict);
	assert_int_equal(s->nsettings, 0);
	assert_int_equal(s->groups[0].state, SCENARIO_VM_RUNNING);
	assert_int_equal(s->workloads[0].io_min, 0);
	assert_int_equal(s->workloads[0].io_max, 0);
	assert_int_equal(s->workloads[0].compress, 50);
	const struct scenario_entry *b = &s->timeline[1];
	assert_int_equal(b->backup.engine, 0);
	assert_int_equal(b->backup.path, SCENARIO_PATH_WIN32);
	assert_int_equal(b->backup.mode, SCENARIO_MODE_AUTO);
	assert_int_equal(s->timeline[2].restore.point, SCENARIO_POINT_LAST);
	assert_int_equal(s->timeline[2].restore.format, SCENARIO_FORMAT_RAW);
	assert_null(s->timeline[2].restore.disk);
	struct scenario_counts c;
	scenario_count(s, &c);
	assert_int_equal(c.end, 3 * 3600); /* no duration: the last event */
	assert_roundtrip(s);
	scenario_free(s);

	/* .yml works as well; quoted sizes and durations are accepted (they are strings with units)
	 */
	char *t = subst(BASE, "at: 1h", "at: \"1h\"");
	char *t2 = subst(t, "{size: 64MiB}", "{size: '64MiB'}");
	s = load_ok("x/t.yml", t2);
	assert_int_equal(s->groups[0].disks[0].size, 64u << 20);
	scenario_free(s);
	free(t);
	free(t2);
}

/* ---- expansion ------------------------------------------------------------------------------- */

static void test_expand_every(void **state)
{
	(void)state;
	static const char T[] =
	    "name: t\n"
	    "duration: 3d\n"
	    "vms:\n"
	    "  - {name: a, disks: [{size: 1MiB}]}\n"
	    "  - {name: b, disks: [{size: 1MiB}]}\n"
	    "timeline:\n"
	    "  - every: 1d\n" /* 0s, 1d, 2d, 3d (until = duration, inclusive) */
	    "    backup: {vms: [b, a]}\n"
	    "  - every: 7h\n" /* 5h, 12h, 19h, 1d2h: until 1d5h */
	    "    from: 5h\n"
	    "    until: 1d5h\n"
	    "    backup: {vm: a}\n"
	    "  - every: 1d\n" /* 1d exactly, same time as an entry above: file order */
	    "    from: 1d\n"
	    "    until: 1d23h59m59s\n"
	    "    fault: {name: host-crash}\n"
	    "  - at: 0s\n"
	    "    restore: {vm: a, point: last}\n"
	    "expect:\n"
	    "  - backup: {vm: a, nth: 3, type: full}\n";
	struct scenario *s = load_ok("t.yaml", T);
	static const struct {
		uint64_t t;
		enum scenario_action a;
		uint32_t vm, seq, vm_seq;
	} want[] = {
	    {0, SCENARIO_BACKUP, 1, 1, 1},
	    {0, SCENARIO_BACKUP, 0, 2, 1},
	    {0, SCENARIO_RESTORE, 0, 1, 1},
	    {5 * 3600, SCENARIO_BACKUP, 0, 3, 2},
	    {12 * 3600, SCENARIO_BACKUP, 0, 4, 3},
	    {19 * 3600, SCENARIO_BACKUP, 0, 5, 4},
	    {86400, SCENARIO_BACKUP, 1, 6, 2},
	    {86400, SCENARIO_BACKUP, 0, 7, 5},
	    {86400, SCENARIO_FAULT, SCENARIO_NO_VM, 1, 0},
	    {86400 + 2 * 3600, SCENARIO_BACKUP, 0, 8, 6},
	    {2 * 86400, SCENARIO_BACKUP, 1, 9, 3},
	    {2 * 86400, SCENARIO_BACKUP, 0, 10, 7},
	    {3 * 86400, SCENARIO_BACKUP, 1, 11, 4},
	    {3 * 86400, SCENARIO_BACKUP, 0, 12, 8},
	};
	assert_int_equal(s->nevents, sizeof want / sizeof *want);
	for (size_t i = 0; i < s->nevents; i++) {
		const struct scenario_event *e = &s->events[i];
		if (e->time != want[i].t || action_of(s, i) != want[i].a || e->vm != want[i].vm ||
		    e->seq != want[i].seq || e->vm_seq != want[i].vm_seq)
			fail_msg("event %zu: got t=%llu %s vm=%u seq=%u vm_seq=%u", i,
			         (unsigned long long)e->time, scenario_action_name(action_of(s, i)),
			         e->vm, e->seq, e->vm_seq);
	}
	/* the restore at 0s comes after the backups at 0s (file order) and is valid */
	assert_int_equal(s->expect[0].backup.index, 4);
	char *ev = events_str(s);
	assert_non_null(strstr(ev, "1d2h         backup   a                #8 (6 of VM)"));
	free(ev);
	scenario_free(s);
}

static void test_expand_seeds(void **state)
{
	(void)state;
	static const char T[] = "name: t\n"
	                        "vms:\n"
	                        "  - {name: a, disks: [{size: 1MiB}]}\n"
	                        "  - {name: b, disks: [{size: 1MiB}]}\n"
	                        "workloads:\n"
	                        "  w: {pattern: random, bytes: 4KiB}\n"
	                        "  fixed: {pattern: random, bytes: 4KiB, seed: 99}\n"
	                        "timeline:\n"
	                        "  - every: 1h\n"
	                        "    until: 2h\n"
	                        "    write: {vms: all, workload: w}\n"
	                        "  - at: 3h\n"
	                        "    write: {vm: a, workload: fixed}\n"
	                        "  - at: 4h\n"
	                        "    backup: {vm: a}\n"
	                        "expect:\n"
	                        "  - repository_verifies: true\n";
	struct scenario *s = load_ok("t.yaml", T);
	assert_int_equal(s->nevents, 8);
	/* all write seeds differ */
	for (size_t i = 0; i < 7; i++)
		for (size_t j = i + 1; j < 7; j++)
			assert_true(s->events[i].seed != s->events[j].seed);
	/* the same seed gives the same events; another seed changes only the seeds of writes whose
	 * workload has no seed of its own */
	struct scenario_event *e1, *e2;
	size_t n1, n2;
	assert_int_equal(scenario_expand(s, 0, &e1, &n1), 0);
	assert_int_equal(scenario_expand(s, 12345, &e2, &n2), 0);
	assert_int_equal(n1, s->nevents);
	assert_memory_equal(e1, s->events, n1 * sizeof *e1);
	assert_int_equal(n2, n1);
	for (size_t i = 0; i < n1; i++) {
		assert_int_equal(e1[i].time, e2[i].time);
		bool own = s->workloads[s->timeline[e1[i].entry].write.workload].has_seed;
		if (s->timeline[e1[i].entry].action != SCENARIO_WRITE || own)
			assert_true(e1[i].seed == e2[i].seed);
		else
			assert_true(e1[i].seed != e2[i].seed);
	}
	/* the pinned formula: hv_rng_stream(seed, "<workload>/<vm>/<n>") first value */
	struct hv_rng r = hv_rng_stream(0, "w/b/2");
	assert_true(s->events[3].seed == hv_rng_next(&r)); /* 1h: a then b; b's 2nd write */
	r = hv_rng_stream(99, "fixed/a/4");
	assert_true(s->events[6].seed == hv_rng_next(&r));
	free(e1);
	free(e2);
	scenario_free(s);
}

static void test_expand_disks_in_time(void **state)
{
	(void)state;
	static const char T[] =
	    "name: t\n"
	    "vms:\n"
	    "  - {name: a, disks: [{name: os, size: 8MiB}]}\n"
	    "workloads:\n"
	    "  w: {pattern: random, bytes: 4KiB}\n"
	    "timeline:\n"
	    "  - at: 1h\n"
	    "    fault: {name: disk-add, vm: a, disk: x, size: 4MiB}\n"
	    "  - at: 2h\n"
	    "    write: {vm: a, workload: w, disk: x}\n"
	    "  - at: 3h\n"
	    "    backup: {vm: a}\n"
	    "  - at: 4h\n"
	    "    fault: {name: disk-resize, vm: a, disk: x, size: 6MiB}\n"
	    "  - at: 5h\n"
	    "    fault: {name: disk-resize, vm: a, disk: x, size: 7MiB}\n"
	    "  - at: 6h\n"
	    "    fault: {name: disk-remove, vm: a, disk: x}\n"
	    "  - at: 7h\n"
	    "    restore: {vm: a, point: 1, disk: x}\n"
	    "  - at: 8h\n"
	    "    fault: {name: disk-add, vm: a, disk: x, size: 4MiB, sector: 4096}\n"
	    "  - at: 9h\n"
	    "    write: {vm: a, workload: w, disk: x}\n"
	    "expect:\n"
	    "  - restores_match_truth: true\n";
	struct scenario *s = load_ok("t.yaml", T);
	assert_int_equal(s->nevents, 9);
	scenario_free(s);
	/* the same timeline with the entries' times changed is wrong in several ways */
	char *t = subst(T, "  - at: 2h\n    write", "  - at: 30m\n    write");
	expect_error(t, 9, 5, "at 30m: VM 'a' has no disk 'x'");
	free(t);
	t = subst(T, "size: 7MiB", "size: 6MiB");
	expect_error(
	    t, 15, 5,
	    "at 5h: disk-resize of 'x' on VM 'a' to 6291456 bytes: not larger than its 6291456");
	free(t);
	t = subst(T, "  - at: 9h", "  - at: 7h30m");
	expect_error(t, 23, 5, "at 7h30m: disk 'x' of VM 'a' was removed earlier");
	free(t);
	t = subst(T, "  - at: 8h", "  - at: 5h30m");
	expect_error(t, 21, 5, "at 5h30m: disk-add: VM 'a' already has a disk 'x'");
	free(t);
	/* a 512-byte workload cannot write the re-added 4096-byte-sector disk */
	t = subst(T, "bytes: 4KiB}", "bytes: 4KiB, io: 512-4KiB}");
	expect_error(t, 23, 5, "not multiples of the 4096-byte sectors of disk 'x' of VM 'a'");
	free(t);
	t = subst(T, "  - at: 3h\n    backup", "  - at: 6h30m\n    backup");
	expect_error(
	    t, 19, 5,
	    "at 7h: restore of VM 'a': disk 'x' was not attached during any earlier backup");
	free(t);
	t = subst(T, "restore: {vm: a, point: 1, disk: x}", "restore: {vm: a, point: 1, disk: y}");
	expect_error(t, 19, 5, "at 7h: restore of VM 'a': it has no disk 'y'");
	free(t);
}

static void test_engine_killed(void **state)
{
	(void)state;
	static const char T[] = "name: t\n"
	                        "vms:\n"
	                        "  - {name: a, disks: [{size: 1MiB}]}\n"
	                        "  - {name: b, disks: [{size: 1MiB}]}\n"
	                        "timeline:\n"
	                        "  - at: 1h\n"
	                        "    fault: {name: engine-killed, vm: b, at_commit: 2}\n"
	                        "  - at: 1h\n"
	                        "    fault: {name: engine-killed, after_blocks: 7}\n"
	                        "  - every: 1h\n"
	                        "    from: 2h\n"
	                        "    until: 3h\n"
	                        "    backup: {vms: [a, b]}\n"
	                        "expect:\n"
	                        "  - backups_succeeded: 2\n"
	                        "  - backups_failed: 2\n";
	struct scenario *s = load_ok("t.yaml", T);
	/* events: 2 faults, then backups a#1 (any: after 7), b#1 (b: at commit 2), a#2, b#2 */
	assert_int_equal(s->nevents, 6);
	assert_int_equal(s->events[2].vm, 0);
	assert_int_equal(s->events[2].crash_after_blocks, 7);
	assert_int_equal(s->events[2].crash_at_commit, 0);
	assert_int_equal(s->events[3].vm, 1);
	assert_int_equal(s->events[3].crash_at_commit, 2);
	assert_int_equal(s->events[3].crash_after_blocks, 0);
	assert_int_equal(s->events[4].crash_after_blocks + s->events[4].crash_at_commit, 0);
	assert_int_equal(s->events[5].crash_after_blocks + s->events[5].crash_at_commit, 0);
	assert_roundtrip(s);
	scenario_free(s);

	char *t = subst(T, "  - backups_succeeded: 2\n", "  - backups_succeeded: all\n");
	expect_error(t, 15, 5, "backups_succeeded: all, but engine-killed faults kill 2 backup(s)");
	free(t);
	t = subst(T, "backups_failed: 2", "backups_failed: 1");
	expect_error(t, 16, 5, "do not add up to the 4 backup(s)");
	free(t);
	t = subst(T, "until: 3h", "until: 2h");
	char *t2 = subst(t, "vms: [a, b]}", "vm: a}");
	expect_error(t2, 6, 5, "engine-killed: no backup of b follows for it to kill");
	free(t);
	free(t2);
	t = subst(T, "at_commit: 2}",
	          "at_commit: 2}\n  - at: 1h30m\n    fault: {name: engine-killed, vm: b, "
	          "after_blocks: 1}");
	expect_error(t, 8, 5,
	             "at 1h30m: engine-killed: the one at line 6 has not fired yet (no backup of b "
	             "between them)");
	free(t);
}

/* ---- invalid files --------------------------------------------------------------------------- */

struct bad {
	const char *from, *to; /* a change to BASE; from NULL: `to` is the whole file */
	unsigned line, col;
	const char *frag;
};

static const struct bad BAD[] = {
    /* YAML itself */
    {NULL, "", 1, 1, "empty file"},
    {NULL, "- a\n", 1, 1, "a scenario is a mapping"},
    {NULL, "just text\n", 1, 1,
     "a scenario is a mapping (name:, vms:, timeline:, expect:, …), found a single value"},
    {NULL, "name: [t\n", 2, 1, "YAML syntax: did not find expected ',' or ']'"},
    {NULL, "name: t\n\tvms: 1\n", 2, 1, "YAML syntax: found a tab character"},
    {NULL, "name: t\ndescription: \xff\xfe\n", 2, 14, "YAML syntax: invalid leading UTF-8 octet"},
    {NULL, "name: &a t\n", 1, 7, "anchors (&a) and aliases are not supported"},
    {NULL, "name: t\nvms: [{name: a}]\nx: *a\n", 3, 4,
     "aliases (*a) and anchors are not supported"},
    {NULL, "name: t\nseed: !!int 5\n", 2, 7,
     "explicit tags (tag:yaml.org,2002:int) are not supported"},
    {NULL, "---\nname: t\n---\nname: u\n", 3, 1, "a second YAML document"},
    {NULL, "name: t\n[a]: b\n", 2, 1, "a key must be a name, not a list"},
    {NULL, "name: t\n{a: 1}: b\n", 2, 1, "a key must be a name, not a mapping"},
    {NULL, "name: \"t\\0\"\n", 1, 7, "a value contains a NUL character"},
    {NULL,
     "name: t\na: "
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     2, 35, "nested more than 32 levels deep"},
    /* top level */
    {"vms:", "colour: red\nvms:", 2, 1,
     "unknown key 'colour' in the scenario (known: name, description"},
    {"vms:", "name: t\nvms:", 2, 1, "duplicate key 'name' in the scenario (first at line 1)"},
    {"name: t\n", "", 1, 1, "scenario: missing required key 'name'"},
    {"expect:\n  - restores_match_truth: true\n", "", 1, 1,
     "scenario: missing required key 'expect'"},
    {"name: t", "name: other", 1, 7, "name: 'other' does not match the file name 't'"},
    {"name: t", "name: [t]", 1, 7, "name: expected a single value, found a list"},
    {"name: t", "name: t\nseed: -1", 2, 7, "seed: '-1' is not a whole number"},
    {"name: t", "name: t\nseed: \"5\"", 2, 7,
     "seed: expected a whole number, found a quoted string"},
    {"name: t", "name: t\nseed: 18446744073709551616", 2, 7,
     "seed: 18446744073709551616 is too large"},
    {"name: t", "name: t\nseed: 007", 2, 7, "no leading zeros"},
    {"name: t", "name: t\nseed:", 2, 6, "seed: expected a whole number, found nothing"},
    {"name: t", "name: t\ndescription:", 2, 13, "description: expected text, found nothing"},
    {"name: t", "name: t\ntags: long", 2, 7, "tags: expected a list"},
    {"name: t", "name: t\ntags: [long, long]", 2, 14, "tags: 'long' given twice"},
    {"name: t", "name: t\ntags: [\"a b\"]", 2, 8, "tag: 'a b' is not a valid name"},
    {"name: t", "name: t\nduration: 0s", 2, 11, "duration: must be longer than 0s"},
    {"name: t", "name: t\nduration: 90", 2, 11, "each number needs a unit"},
    {"name: t", "name: t\nduration: 1h2d", 2, 11, "units go from large to small"},
    {"name: t", "name: t\nduration: 1d30h", 2, 11, "30h after a larger unit must be below 24"},
    {"name: t", "name: t\nduration: 2h", 14, 9, "at: after the end of the scenario (duration 2h)"},
    /* host */
    {"name: t", "name: t\nhost: {rct_granularity: 3KiB}", 2, 25,
     "rct_granularity: 3KiB is out of range (4096..16777216 bytes)"},
    {"name: t", "name: t\nhost: {rct_granularity: 96KiB}", 2, 25,
     "rct_granularity: 96KiB is not a power of two"},
    {"name: t", "name: t\nhost: {strict: yes}", 2, 16,
     "strict: expected true or false, found 'yes'"},
    {"name: t", "name: t\nhost: {strict: \"true\"}", 2, 16,
     "strict: expected true or false, found a quoted string"},
    {"name: t", "name: t\nhost: {colour: red}", 2, 8,
     "unknown key 'colour' in host (known: rct_granularity, strict, settings)"},
    {"name: t", "name: t\nhost:\n  settings: {wmi.frobnicate: 1}", 3, 14,
     "unknown host setting 'wmi.frobnicate'"},
    {"name: t", "name: t\nhost:\n  settings: {wmi.strict: 1}", 3, 14,
     "set wmi.strict with host.strict"},
    {"name: t", "name: t\nhost:\n  settings: {test.crash_after_ops: 1}", 3, 14, "is a test hook"},
    {"name: t", "name: t\nhost:\n  settings: {job.Frobnicate: sync}", 3, 14,
     "no WMI method 'Frobnicate' has jobs"},
    {"name: t", "name: t\nhost:\n  settings: {job.default: running=2}", 3, 27,
     "missing the end state"},
    {"name: t", "name: t\nhost:\n  settings: {job.default: \"running=x,completed\"}", 3, 27,
     "needs a count 0..100000"},
    {"name: t", "name: t\nhost:\n  settings: {refpoint.reverse_disk_order: maybe}", 3, 43,
     "refpoint.reverse_disk_order: expected true or false (or 1 or 0), found 'maybe'"},
    {"name: t", "name: t\nhost:\n  settings: {wmi.changes_max_ranges: -3}", 3, 38,
     "wmi.changes_max_ranges: '-3' is not a non-negative whole number"},
    {"name: t", "name: t\nhost:\n  settings: {virtdisk.strict: 1, virtdisk.strict: 0}", 3, 34,
     "duplicate key 'virtdisk.strict' in host.settings (first at line 3)"},
    {"name: t", "name: t\nhost:\n  settings: [a]", 3, 13,
     "host.settings: expected a mapping of setting: value"},
    /* engines */
    {"name: t", "name: t\nengines: {default: {backup: x}}", 2, 11, "'default' is reserved"},
    {"name: t", "name: t\nengines: {v: {restore: x}}", 2, 14,
     "engine: missing required key 'backup'"},
    {"name: t", "name: t\nengines: {v: {backup: \"b {vmname}\"}}", 2, 23,
     "unknown placeholder {vmname} (known: host, vm, repo, path, mode)"},
    {"name: t", "name: t\nengines: {v: {backup: \"b {vm\"}}", 2, 23,
     "a '{' that does not start a placeholder"},
    {"name: t", "name: t\nengines: {v: {backup: b, restore: \"r {mode}\"}}", 2, 35,
     "restore: unknown placeholder {mode} (known: repo, vm, point, disk, to)"},
    /* vms and disks */
    {"vms:\n  - name: web\n    disks:\n      - {size: 64MiB}\n", "vms: web\n", 2, 6,
     "vms: expected a list of VMs"},
    {"vms:\n  - name: web\n    disks:\n      - {size: 64MiB}\n", "vms: []\n", 2, 6,
     "vms: a scenario needs at least one VM"},
    {"    disks:\n      - {size: 64MiB}\n", "", 3, 5, "VM: missing required key 'disks'"},
    {"    disks:\n      - {size: 64MiB}\n", "    disks: []\n", 4, 12,
     "disks: a VM needs at least one disk"},
    {"  - name: web", "  - name: \"bad/name\"", 3, 11, "name: 'bad/name' is not a valid VM name"},
    {"  - name: web", "  - name: \" web\"", 3, 11, "is not a valid VM name"},
    {"  - name: web", "  - name: all", 3, 11, "name: 'all' is reserved"},
    {"      - {size: 64MiB}\n", "      - {size: 64MiB}\n  - name: WEB\n    disks: [{size: 1MiB}]\n",
     6, 5, "two VMs named 'WEB' (VM names are case-insensitive; the other is declared at line 3)"},
    {"      - {size: 64MiB}\n",
     "      - {size: 64MiB}\n  - name: web\n    count: 2\n    disks: [{size: 1MiB}]\n", 6, 5,
     "fleet 'web' has the same name as VM 'web'"},
    {"      - {size: 64MiB}\n",
     "      - {size: 64MiB}\n  - name: we\n    count: 2\n    disks: [{size: 1MiB}]\n  - name: "
     "we-002\n    disks: [{size: 1MiB}]\n",
     9, 5, "two VMs named 'we-002'"},
    {"    disks:", "    count: 0\n    disks:", 4, 12, "count: 0 is out of range (1..1000)"},
    {"    disks:", "    count: 1001\n    disks:", 4, 12, "count: 1001 is out of range (1..1000)"},
    {"    disks:", "    state: paused\n    disks:", 4, 12,
     "state: 'paused' is not one of running, off, saved"},
    {"{size: 64MiB}", "{size: 12XB}", 5, 16, "size: '12XB' is not a size"},
    {"{size: 64MiB}", "{size: 0}", 5, 16, "size: 0 is out of range"},
    {"{size: 64MiB}", "{size: 1000}", 5, 16, "size: 1000 is not a multiple of the 512-byte sector"},
    {"{size: 64MiB}", "{size: 65TiB}", 5, 16, "size: 65TiB is out of range"},
    {"{size: 64MiB}", "{size: 64MiB, sector: 1024}", 5, 31, "sector: 1024 is neither 512 nor 4096"},
    {"{size: 64MiB}", "{size: 1536, sector: 4096}", 5, 16,
     "size: 1536 is not a multiple of the 4096-byte sector"},
    {"{size: 64MiB}", "{size: 64MiB, block: 3MiB}", 5, 30, "block: 3MiB is not a power of two"},
    {"{size: 64MiB}", "{size: 64MiB, block: 512KiB}", 5, 30, "block: 512KiB is out of range"},
    {"{size: 64MiB}", "{size: 64MiB, type: thin}", 5, 29,
     "type: 'thin' is not one of dynamic, fixed"},
    {"{size: 64MiB}", "{size: 64MiB, colour: red}", 5, 23,
     "unknown key 'colour' in a disk (known: name, size, type, block, sector)"},
    {"{size: 64MiB}", "{name: a, size: 64MiB}\n      - {name: A, size: 1MiB}", 6, 16,
     "two disks named 'A'"},
    {"{size: 64MiB}", "{name: \"-x\", size: 64MiB}", 5, 16, "disk name: '-x' is not a valid name"},
    /* workloads */
    {"{pattern: random, bytes: 1MiB}", "{pattern: chaos, bytes: 1MiB}", 7, 16,
     "pattern: 'chaos' is not one of random, sequential, zipf, overwrite, trim"},
    {"{pattern: random, bytes: 1MiB}", "{pattern: random}", 7, 6,
     "workload: missing required key 'bytes'"},
    {"{pattern: random, bytes: 1MiB}", "{pattern: overwrite, bytes: 1MiB}", 7, 27,
     "an overwrite workload always writes the whole disk"},
    {"{pattern: random, bytes: 1MiB}", "{pattern: random, bytes: 1000}", 7, 31,
     "bytes: 1000 is not a multiple of 512"},
    {"{pattern: random, bytes: 1MiB}", "{pattern: random, bytes: 1MiB, io: 64KiB-4KiB}", 7, 41,
     "io: 64KiB-4KiB: the minimum is larger than the maximum"},
    {"{pattern: random, bytes: 1MiB}", "{pattern: random, bytes: 1MiB, io: 100}", 7, 41,
     "io: 100: sizes must be non-zero multiples of 512"},
    {"{pattern: random, bytes: 1MiB}", "{pattern: random, bytes: 1MiB, io: 128MiB}", 7, 41,
     "io: 128MiB: larger than the 64 MiB limit of one guest write"},
    {"{pattern: random, bytes: 1MiB}", "{pattern: random, bytes: 1MiB, io: 4KiB-}", 7, 41,
     "io: '4KiB-' is not SIZE or MIN-MAX"},
    {"{pattern: random, bytes: 1MiB}", "{pattern: random, bytes: 1MiB, compress: 101}", 7, 47,
     "compress: 101 is out of range (0..100)"},
    {"  w: {pattern", "  w: {pattern: trim, bytes: 1MiB}\n  w: {pattern", 8, 3,
     "duplicate workload 'w' (first at line 7)"},
    /* timeline entries */
    {NULL,
     "name: t\nvms: [{name: a, disks: [{size: 1MiB}]}]\ntimeline: {}\nexpect: [{no_leftovers: "
     "true}]\n",
     3, 11, "timeline: expected a list of entries"},
    {NULL,
     "name: t\nvms: [{name: a, disks: [{size: 1MiB}]}]\ntimeline: []\nexpect: [{no_leftovers: "
     "true}]\n",
     3, 11, "timeline: empty"},
    {"  - at: 1h\n", "  - note: x\n", 9, 5,
     "a timeline entry needs a time: at: DURATION or every: DURATION"},
    {"  - at: 1h\n", "  - at: 1h\n    every: 1d\n", 10, 5,
     "a timeline entry has either at or every, not both"},
    {"  - at: 1h\n", "  - at: 1h\n    from: 1h\n", 10, 5, "from: only with every"},
    {"  - at: 1h\n", "  - every: 0s\n    until: 1h\n", 9, 12,
     "every: the period must be longer than 0s"},
    {"  - at: 1h\n", "  - every: 1h\n", 9, 5,
     "every: needs until (or a top-level duration to run until)"},
    {"  - at: 1h\n", "  - every: 1h\n    from: 2h\n    until: 1h\n", 11, 12,
     "until: before the first time (from)"},
    {"  - at: 1h\n", "  - at: 1h\n    colour: red\n", 10, 5,
     "unknown key 'colour' in a timeline entry"},
    {"  - at: 1h\n    write: {vm: web, workload: w}\n", "  - at: 1h\n", 9, 5,
     "a timeline entry needs an action"},
    {"    backup: {vm: web}\n", "    backup: {vm: web}\n    fault: {name: host-crash}\n", 13, 5,
     "one action per timeline entry (this one has backup and fault)"},
    {"    backup: {vm: web}\n", "    backup: web\n", 12, 13, "backup: expected a mapping"},
    {"  - at: 3h", "  - at: 3h\n    note: [x]", 14, 11, "note: expected a single value"},
    /* targets and references */
    {"write: {vm: web, workload: w}", "write: {vm: db, workload: w}", 10, 17,
     "no VM or fleet named 'db'"},
    {"write: {vm: web, workload: w}", "write: {workload: w}", 10, 12,
     "write: missing required key 'vm'"},
    {"write: {vm: web, workload: w}", "write: {vm: web, vms: web, workload: w}", 10, 27,
     "write: give vm or vms, not both"},
    {"write: {vm: web, workload: w}", "write: {vms: [web, WEB], workload: w}", 10, 24,
     "VM 'web' is named twice"},
    {"write: {vm: web, workload: w}", "write: {vms: [], workload: w}", 10, 18,
     "vm: an empty list names no VM"},
    {"write: {vm: web, workload: w}", "write: {vms: [all], workload: w}", 10, 19,
     "'all' stands alone"},
    {"write: {vm: web, workload: w}", "write: {vm: {a: 1}, workload: w}", 10, 17,
     "found a mapping"},
    {"write: {vm: web, workload: w}", "write: {vm: web, workload: x}", 10, 32,
     "workload: no workload named 'x'"},
    {"write: {vm: web, workload: w}", "write: {vm: web}", 10, 12,
     "write: missing required key 'workload'"},
    {"write: {vm: web, workload: w}", "write: {vm: web, workload: w, disk: data}", 9, 5,
     "at 1h: VM 'web' has no disk 'data'"},
    {"backup: {vm: web}", "backup: {vm: web, engine: vendor}", 12, 31,
     "engine: no engine named 'vendor'"},
    {"backup: {vm: web}", "backup: {vm: web, path: nfs}", 12, 29,
     "path: 'nfs' is not one of win32, export, rsvd"},
    {"backup: {vm: web}", "backup: {vm: web, mode: differential}", 12, 29,
     "mode: 'differential' is not one of auto, full, incremental"},
    {"restore: {vm: web}", "restore: {vm: web, point: 0}", 14, 31,
     "point: expected last, all or a point number"},
    {"restore: {vm: web}", "restore: {vm: web, point: first}", 14, 31,
     "point: expected last, all or a point number"},
    {"restore: {vm: web}", "restore: {vm: web, point: 2}", 13, 5,
     "at 3h: restore of VM 'web' point 2: only 1 backup(s) of it come before"},
    {"  - at: 3h", "  - at: 30m", 13, 5,
     "at 30m: restore of VM 'web': no backup of it comes before"},
    {"restore: {vm: web}", "restore: {vm: web, format: qcow2}", 14, 32,
     "format: 'qcow2' is not one of raw, vhdx"},
    {"restore: {vm: web}", "state: {vm: web, to: paused}", 14, 26,
     "to: 'paused' is not one of running, off, saved"},
    {"restore: {vm: web}", "state: {vm: web}", 14, 12, "state: missing required key 'to'"},
    {"restore: {vm: web}", "set: {}", 14, 10, "set: no settings given"},
    {"restore: {vm: web}", "set: {colour: red}", 14, 11, "unknown host setting 'colour'"},
    /* faults */
    {"backup: {vm: web}", "fault: {name: meteor}", 12, 19,
     "fault: unknown fault 'meteor' (known: rct-reset, live-migration"},
    {"backup: {vm: web}", "fault: {vm: web}", 12, 12, "fault: missing required key 'name'"},
    {"backup: {vm: web}", "fault: {name: rct-reset, vm: web, size: 1MiB}", 12, 39,
     "fault rct-reset: takes no 'size' (it takes vm, disk)"},
    {"backup: {vm: web}", "fault: {name: rct-reset}", 12, 12,
     "fault rct-reset: missing required key 'vm'"},
    {"backup: {vm: web}", "fault: {name: disk-resize, vm: web, disk: disk0}", 12, 12,
     "fault disk-resize: missing required key 'size'"},
    {"backup: {vm: web}", "fault: {name: host-crash, clear: true}", 12, 31,
     "fault host-crash: takes no 'clear'"},
    {"backup: {vm: web}", "fault: {name: host-crash, vm: web}", 12, 31,
     "fault host-crash: takes no 'vm' (it takes nothing but name)"},
    {"backup: {vm: web}",
     "fault: {name: job-exception, method: CreateSnapshot, code: 5, clear: true}", 12, 58,
     "fault job-exception with clear: takes no 'code'"},
    {"backup: {vm: web}", "fault: {name: job-exception, method: Frobnicate}", 12, 42,
     "method: 'Frobnicate' is not a WMI method with jobs"},
    {"backup: {vm: web}", "fault: {name: job-exception, method: CreateSnapshot, code: 0}", 12, 64,
     "code: 0 is out of range (1..65535)"},
    {"backup: {vm: web}", "fault: {name: slow-jobs}", 12, 12,
     "fault slow-jobs: missing required key 'running'"},
    {"backup: {vm: web}", "fault: {name: live-migration, vm: web, reset: maybe}", 12, 51,
     "reset: expected true or false, found 'maybe'"},
    {"backup: {vm: web}", "fault: {name: disk-resize, vm: web, disk: disk0, size: 32MiB}", 11, 5,
     "not larger than its 67108864 bytes"},
    {"backup: {vm: web}", "fault: {name: disk-add, vm: web, disk: disk0, size: 1MiB}", 11, 5,
     "disk-add: VM 'web' already has a disk 'disk0'"},
    {"backup: {vm: web}", "fault: {name: disk-remove, vm: web, disk: nope}", 11, 5,
     "VM 'web' has no disk 'nope'"},
    {"backup: {vm: web}", "fault: {name: engine-killed, after_blocks: 1, at_commit: 1}", 12, 12,
     "give exactly one of after_blocks and at_commit"},
    {"backup: {vm: web}", "fault: {name: engine-killed}", 12, 12,
     "give exactly one of after_blocks and at_commit"},
    {"backup: {vm: web}", "fault: {name: engine-killed, at_commit: 4}", 12, 45,
     "at_commit: 4 is out of range (1..3)"},
    {"  - at: 3h\n    restore: {vm: web}\n",
     "  - at: 3h\n    restore: {vm: web}\n  - at: 4h\n    fault: {name: engine-killed, vm: web, "
     "after_blocks: 2}\n",
     15, 5, "engine-killed: no backup of web follows for it to kill"},
    /* expectations */
    {"expect:\n  - restores_match_truth: true\n", "expect: true\n", 15, 9,
     "expect: expected a list of expectations"},
    {"expect:\n  - restores_match_truth: true\n", "expect: []\n", 15, 9, "expect: empty"},
    {"restores_match_truth: true", "restores_match: true", 16, 5,
     "unknown expectation 'restores_match'"},
    {"restores_match_truth: true", "{restores_match_truth: true, no_leftovers: true}", 16, 5,
     "each item is one key: value"},
    {"restores_match_truth: true", "restores_match_truth: false", 16, 27,
     "only true means something"},
    {"restores_match_truth: true", "restores_match_truth: true\n  - restores_match_truth: true", 17,
     5, "expectation 'restores_match_truth' given twice (first at line 16)"},
    {"restores_match_truth: true", "backup: {index: 2, type: full}", 16, 5,
     "expect backup: index 2, but the timeline has 1 backup(s)"},
    {"restores_match_truth: true", "backup: {vm: web, nth: 2, type: full}", 16, 5,
     "VM 'web' has fewer than 2 backups"},
    {"restores_match_truth: true", "backup: {index: 1, vm: web, nth: 1, type: full}", 16, 24,
     "name it by index, or by vm and nth, not both"},
    {"restores_match_truth: true", "backup: {vm: web, type: full}", 16, 13,
     "needs index (the backup's number in the timeline) or vm and nth"},
    {"restores_match_truth: true", "backup: {index: 1}", 16, 13,
     "says nothing (give type, result or reason_contains)"},
    {"restores_match_truth: true", "backup: {index: 1, result: failed, type: full}", 16, 32,
     "a failed backup has no type or reason to check"},
    {"restores_match_truth: true", "backup: {index: 1, type: differential}", 16, 30,
     "type: 'differential' is not one of any, full, incremental"},
    {"restores_match_truth: true", "backup: {vm: nope, nth: 1, type: full}", 16, 18,
     "vm: no VM named 'nope'"},
    {"restores_match_truth: true", "backups_succeeded: some", 16, 24,
     "backups_succeeded: expected all or a number"},
    {"restores_match_truth: true", "backups_succeeded: 2", 16, 5,
     "backups_succeeded: 2, but the timeline has only 1 backup(s)"},
    {"restores_match_truth: true", "backups_failed: all", 16, 21,
     "backups_failed: 'all' is not a whole number"},
    {"restores_match_truth: true", "audit_mistakes: -1", 16, 21,
     "audit_mistakes: '-1' is not a whole number"},
    {"restores_match_truth: true", "min_dedup_ratio: 1e3", 16, 22, "is not a number like 1.5"},
    {"restores_match_truth: true", "min_dedup_ratio: 0.0", 16, 22, "is out of range (above 0"},
    {"restores_match_truth: true", "min_dedup_ratio: 1.1234567", 16, 22, "at most 6 decimals"},
    {"restores_match_truth: true", "min_dedup_ratio: \"2\"", 16, 22, "found a quoted string"},
    {"    restore: {vm: web}\n", "    state: {vm: web, to: off}\n", 16, 5,
     "restores_match_truth: the timeline restores nothing"},
};

static void test_invalid(void **state)
{
	(void)state;
	size_t n = 0, failed = 0;
	for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
		const struct bad *b = &BAD[i];
		char *t = b->from ? subst(BASE, b->from, b->to) : strdup(b->to);
		failed += !check_error(t, b->line, b->col, b->frag);
		free(t);
		n++;
	}
	if (failed)
		fail_msg("%zu of %zu invalid files not rejected as expected", failed, n);
	/* the few that need more than one change */
	char *t = subst(BASE, "    disks:", "    count: 600\n    disks:");
	char *t2 = subst(
	    t, "      - {size: 64MiB}\n",
	    "      - {size: 64MiB}\n  - name: db\n    count: 401\n    disks: [{size: 1MiB}]\n");
	expect_error(t2, 8, 12, "more than 1000 VMs in all (fleets count each member)");
	free(t);
	free(t2);
	t = subst(BASE, "backup: {vm: web}", "backup: {vm: web, mode: full}");
	t2 = subst(t, "restores_match_truth: true", "backup: {index: 1, type: incremental}");
	expect_error(
	    t2, 16, 5,
	    "expect backup #1: type incremental, but that backup (line 11) has mode: full");
	free(t);
	free(t2);
	t = subst(BASE, "vms:\n", "vms:\n  - name: vdi\n    count: 2\n    disks: [{size: 1MiB}]\n");
	t2 = subst(t, "restores_match_truth: true", "backup: {vm: vdi, nth: 1, type: full}");
	expect_error(t2, 19, 18, "vm: 'vdi' is a fleet of 2; name one of its VMs (like vdi-001)");
	free(t);
	free(t2);
	assert_true(n >= 40);
}

/* ---- limits ---------------------------------------------------------------------------------- */

static void test_limits(void **state)
{
	(void)state;
	/* files over 1 MiB: rejected before parsing */
	size_t big = SCENARIO_MAX_FILE + 1;
	char *buf = malloc(big + 1);
	assert_non_null(buf);
	memset(buf, '#', big);
	buf[big] = 0;
	struct scenario *s;
	assert_int_equal(scenario_load_buffer("t.yaml", buf, big, &s), HV_ECORRUPT);
	assert_non_null(
	    strstr(hv_errmsg(), "t.yaml: 1048577 bytes: larger than the 1048576-byte limit"));
	free(buf);

	/* 10 001 timeline entries */
	size_t cap = 2u << 20, len = 0;
	buf = malloc(cap);
	assert_non_null(buf);
	len += (size_t)snprintf(buf + len, cap - len,
	                        "name: t\nvms:\n  - {name: a, disks: [{size: 1MiB}]}\ntimeline:\n");
	for (int i = 0; i < SCENARIO_MAX_ENTRIES + 1; i++)
		len += (size_t)snprintf(buf + len, cap - len, "- {at: 1s, backup: {vm: a}}\n");
	len += (size_t)snprintf(buf + len, cap - len, "expect:\n  - backups_succeeded: all\n");
	assert_true(len < SCENARIO_MAX_FILE);
	expect_error(buf, 5 + SCENARIO_MAX_ENTRIES, 3, "timeline: more than 10000 entries");
	free(buf);

	/* 100 001 events from a single `every` */
	static const char EV[] = "name: t\nvms:\n  - {name: a, disks: [{size: 1MiB}]}\ntimeline:\n"
	                         "  - every: 1s\n    until: 1d3h46m40s\n    backup: {vm: a}\n"
	                         "expect:\n  - backups_succeeded: all\n";
	expect_error(EV, 5, 5,
	             "the timeline expands to more than 100000 events (with this entry: 100001 "
	             "times × 1 VMs)");
	/* 100 000 exactly is fine */
	char *ok = subst(EV, "1d3h46m40s", "1d3h46m39s");
	s = load_ok("t.yaml", ok);
	assert_int_equal(s->nevents, 100000);
	assert_int_equal(s->events[99999].seq, 100000);
	scenario_free(s);
	free(ok);
	/* a fleet of 1000 × 101 nights */
	static const char FL[] =
	    "name: t\nvms:\n  - {name: f, count: 1000, disks: [{size: 1MiB}]}\ntimeline:\n"
	    "  - every: 1d\n    until: 100d\n    backup: {vm: f}\n"
	    "expect:\n  - backups_succeeded: all\n";
	expect_error(FL, 5, 5, "(with this entry: 101 times × 1000 VMs)");
	char *fl = subst(FL, "until: 100d", "until: 99d");
	s = load_ok("t.yaml", fl);
	assert_int_equal(s->nvms, 1000);
	assert_string_equal(s->vms[0].name, "f-0001");
	assert_string_equal(s->vms[999].name, "f-1000");
	assert_int_equal(s->nevents, 100000);
	scenario_free(s);
	free(fl);

	/* many values: the node limit, not memory, ends it */
	cap = SCENARIO_MAX_FILE;
	buf = malloc(cap + 1);
	assert_non_null(buf);
	len = (size_t)snprintf(buf, cap, "name: t\nx: [");
	while (len + 3 < cap) {
		buf[len++] = '1';
		buf[len++] = ',';
	}
	buf[len++] = ']';
	buf[len] = 0;
	assert_int_equal(scenario_load_buffer("t.yaml", buf, len, &s), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "more than 250000 values in one file"));
	free(buf);

	/* the small lists have small limits (their duplicate checks are quadratic) */
	cap = 64 * 1024;
	buf = malloc(cap);
	assert_non_null(buf);
	len = (size_t)snprintf(buf, cap, "name: t\ntags: [");
	for (int i = 0; i <= SCENARIO_MAX_TAGS; i++)
		len += (size_t)snprintf(buf + len, cap - len, "t%d, ", i);
	snprintf(buf + len, cap - len,
	         "x]\nvms: [{name: a, disks: [{size: 1MiB}]}]\n"
	         "timeline: [{at: 0s, backup: {vm: a}}]\nexpect: [{backups_succeeded: all}]\n");
	expect_error(buf, 2, 7 + 1 + 4 * 10 + 5 * 54, "tags: more than 64 tags");
	len = (size_t)snprintf(buf, cap,
	                       "name: t\nvms: [{name: a, disks: [{size: 1MiB}]}]\nworkloads:\n");
	for (int i = 0; i <= SCENARIO_MAX_WORKLOADS; i++)
		len += (size_t)snprintf(buf + len, cap - len,
		                        "  w%d: {pattern: trim, bytes: 512}\n", i);
	snprintf(buf + len, cap - len,
	         "timeline: [{at: 0s, backup: {vm: a}}]\nexpect: [{backups_succeeded: all}]\n");
	expect_error(buf, 4 + SCENARIO_MAX_WORKLOADS, 3, "workloads: more than 1000 workloads");
	/* 100 entries naming all of 1000 VMs reach the event limit while parsing, before the rest
	 * of the timeline is read */
	len = (size_t)snprintf(
	    buf, cap, "name: t\nvms: [{name: f, count: 1000, disks: [{size: 1MiB}]}]\ntimeline:\n");
	for (int i = 0; i < 200; i++)
		len += (size_t)snprintf(buf + len, cap - len, "- {at: 1s, backup: {vms: all}}\n");
	snprintf(buf + len, cap - len, "expect: [{backups_succeeded: all}]\n");
	expect_error(buf, 4 + 100, 3, "(with this entry: 1 times × 1000 VMs)");
	free(buf);

	/* a file on disk: the 1 MiB limit and open errors */
	assert_int_equal(scenario_load("/nonexistent/t.yaml", &s), HV_ENOTFOUND);
	assert_non_null(strstr(hv_errmsg(), "/nonexistent/t.yaml: cannot open"));
}

/* ---- the library ----------------------------------------------------------------------------- */

static void test_library(void **state)
{
	(void)state;
	glob_t g;
	assert_int_equal(glob("scenarios/*.yaml", 0, NULL, &g), 0);
	assert_true(g.gl_pathc >= 13);
	static const char *const stories[] = {"week-demo",
	                                      "nightly-two-weeks",
	                                      "disk-order-shuffled",
	                                      "rct-reset-live-migration",
	                                      "host-crash-midday",
	                                      "disk-resized",
	                                      "disk-added-removed",
	                                      "stale-recovery-checkpoint",
	                                      "leaked-refpoint-merge",
	                                      "slow-jobs-exception",
	                                      "sector-4k",
	                                      "fleet-100",
	                                      "engine-killed-rerun"};
	size_t found = 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct scenario *s;
		if (scenario_load(g.gl_pathv[i], &s))
			fail_msg("%s", hv_errmsg());
		for (size_t k = 0; k < sizeof stories / sizeof *stories; k++)
			found += !strcmp(s->name, stories[k]);
		assert_true(s->nexpect > 0);
		bool is_long = false;
		for (size_t k = 0; k < s->ntags; k++)
			is_long |= !strcmp(s->tags[k], "long");
		/* default scenarios stay small: disks of at most 256 MiB, writes of a few MiB */
		if (!is_long) {
			for (size_t k = 0; k < s->ngroups; k++)
				for (size_t d = 0; d < s->groups[k].ndisks; d++)
					assert_true(s->groups[k].disks[d].size <= (256u << 20));
			for (size_t k = 0; k < s->nworkloads; k++)
				assert_true(s->workloads[k].bytes <= (8u << 20));
		}
		assert_roundtrip(s);
		scenario_free(s);
	}
	assert_int_equal(found, sizeof stories / sizeof *stories);
	globfree(&g);
}

static void test_week_demo(void **state)
{
	(void)state;
	struct scenario *s;
	if (scenario_load("scenarios/week-demo.yaml", &s))
		fail_msg("%s", hv_errmsg());
	assert_int_equal(s->nvms, 3);
	size_t two = 0, nights = 0, migr = 0, restore_all = 0;
	for (size_t i = 0; i < s->nvms; i++)
		two += s->groups[s->vms[i].group].ndisks == 2;
	assert_int_equal(two, 1);
	for (size_t i = 0; i < s->nevents; i++) {
		const struct scenario_entry *e = &s->timeline[s->events[i].entry];
		nights += e->action == SCENARIO_BACKUP && s->events[i].vm == 0;
		migr += e->action == SCENARIO_FAULT &&
		        e->fault.kind == SCENARIO_FAULT_LIVE_MIGRATION && e->fault.reset;
		restore_all +=
		    e->action == SCENARIO_RESTORE && e->restore.point == SCENARIO_POINT_ALL;
	}
	assert_int_equal(nights, 7);
	assert_int_equal(migr, 1);
	assert_int_equal(restore_all, 3);
	scenario_free(s);
}

/* ---- fuzz ------------------------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = malloc(SCENARIO_MAX_FILE);
	assert_non_null(buf);
	*len = fread(buf, 1, SCENARIO_MAX_FILE - 1, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

/* One seeded mutation of `in` into `out` (capacity cap): byte flips, YAML-significant
 * insertions, deletions, line duplication and swaps, truncation. */
static size_t mutate(struct hv_rng *r, const char *in, size_t len, char *out, size_t cap)
{
	static const char SIG[] = ":-[]{},#&*!|>'\"%@` \t\n\\0123456789aeZ.";
	memcpy(out, in, len);
	size_t n = len;
	int ops = 1 + (int)(hv_rng_next(r) % 4);
	for (int k = 0; k < ops && n; k++) {
		size_t at = hv_rng_next(r) % n;
		switch (hv_rng_next(r) % 7) {
		case 0: /* flip a byte to anything */
			out[at] = (char)(hv_rng_next(r) & 0xFF);
			break;
		case 1: /* replace with a significant character */
			out[at] = SIG[hv_rng_next(r) % (sizeof SIG - 1)];
			break;
		case 2: { /* insert a few significant characters */
			size_t m = 1 + hv_rng_next(r) % 4;
			if (n + m >= cap)
				break;
			memmove(out + at + m, out + at, n - at);
			for (size_t j = 0; j < m; j++)
				out[at + j] = SIG[hv_rng_next(r) % (sizeof SIG - 1)];
			n += m;
			break;
		}
		case 3: { /* delete a range */
			size_t m = 1 + hv_rng_next(r) % 16;
			if (at + m > n)
				m = n - at;
			memmove(out + at, out + at + m, n - at - m);
			n -= m;
			break;
		}
		case 4: { /* duplicate the line at `at` */
			size_t a = at, b = at;
			while (a > 0 && out[a - 1] != '\n')
				a--;
			while (b < n && out[b] != '\n')
				b++;
			size_t m = b - a + (b < n);
			if (n + m >= cap)
				break;
			memmove(out + b + (b < n), out + a, n - a);
			n += m;
			break;
		}
		case 5: { /* swap two bytes far apart */
			size_t o = hv_rng_next(r) % n;
			char c = out[at];
			out[at] = out[o];
			out[o] = c;
			break;
		}
		case 6: /* truncate */
			n = at;
			break;
		}
	}
	return n;
}

static void test_fuzz(void **state)
{
	(void)state;
	glob_t g;
	assert_int_equal(glob("scenarios/*.yaml", 0, NULL, &g), 0);
	/* SCENARIO_FUZZ_ITERS=N for a longer hunt by hand; the default run stays deterministic */
	const char *env = getenv("SCENARIO_FUZZ_ITERS");
	const size_t iters = env ? strtoull(env, NULL, 10) : 10000;
	size_t cap = SCENARIO_MAX_FILE;
	char *out = malloc(cap);
	assert_non_null(out);
	size_t valid = 0;
	struct hv_rng r = hv_rng_stream(20240601, "test_scenario.fuzz");
	/* the seeds: library files, plus the FULL construct file */
	size_t nseeds = g.gl_pathc + 1;
	char **seeds = calloc(nseeds, sizeof *seeds);
	size_t *lens = calloc(nseeds, sizeof *lens);
	const char **names = calloc(nseeds, sizeof *names);
	assert_true(seeds && lens && names);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		seeds[i] = read_file(g.gl_pathv[i], &lens[i]);
		names[i] = g.gl_pathv[i];
	}
	seeds[g.gl_pathc] = strdup(FULL);
	lens[g.gl_pathc] = strlen(FULL);
	names[g.gl_pathc] = "full.yaml";
	for (size_t it = 0; it < iters; it++) {
		size_t k = hv_rng_next(&r) % nseeds;
		size_t n = mutate(&r, seeds[k], lens[k], out, cap);
		struct scenario *s = (struct scenario *)1;
		int rc = scenario_load_buffer(names[k], out, n, &s);
		if (rc == 0) {
			valid++;
			assert_roundtrip(s);
			scenario_free(s);
			continue;
		}
		assert_null(s);
		assert_int_equal(rc, HV_ECORRUPT);
		/* every message is "NAME:LINE:COL: something" */
		const char *m = hv_errmsg();
		size_t nl = strlen(names[k]);
		unsigned line = 0, col = 0;
		char rest = 0;
		if (strncmp(m, names[k], nl) ||
		    sscanf(m + nl, ":%u:%u: %c", &line, &col, &rest) != 3 || !line || !col)
			fail_msg("iteration %zu: message without a position: %s", it, m);
	}
	/* the mutations must not all be fatal, or the loop tests only the first line */
	assert_true(valid > iters / 50);
	print_message("fuzz: %zu iterations, %zu mutants still valid (each round-tripped)\n", iters,
	              valid);
	for (size_t i = 0; i < nseeds; i++)
		free(seeds[i]);
	free(seeds);
	free(lens);
	free(names);
	free(out);
	globfree(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration),      cmocka_unit_test(test_full),
	    cmocka_unit_test(test_defaults),      cmocka_unit_test(test_expand_every),
	    cmocka_unit_test(test_expand_seeds),  cmocka_unit_test(test_expand_disks_in_time),
	    cmocka_unit_test(test_engine_killed), cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_limits),        cmocka_unit_test(test_library),
	    cmocka_unit_test(test_week_demo),     cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
