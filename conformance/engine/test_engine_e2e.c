/*
 * test_engine_e2e — the backup engine against the simulated host, end to end, judged by the
 * simulator's ground truth (not by the engine's own records):
 *   - a full then 5 incrementals with workloads between; every point restored and compared block
 *     by block with the truth hashes of the checkpoint it was taken from (byte-exact);
 *   - an RCT reset → the next backup is full, with the reason;
 *   - reference-point arrays in reverse disk order → still incremental and still exact;
 *   - two VMs holding the same data → the second full stores (almost) nothing new;
 *   - crash safety: the backup stopped dead after N stored blocks and at each commit step, for many
 *     N → the repository verifies clean, every earlier point restores exactly, the next backup
 *     succeeds and is incremental, and the host keeps no stale checkpoint or leaked reference point.
 * Links the engine (engine/) and the simulator (sim/) as hvbackup does.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../engine/plan/plan.h"
#include "../../engine/repo/repo.h"
#include "../../sim/host/host.h"
#include "../../sim/truth/truth.h"
#include "../../sim/workload/workload.h"

#define MIB (1024ull * 1024ull)

static char tmpl[] = "/tmp/test_e2e.XXXXXX";
static char *root;

static int setup_all(void **s)
{
	(void)s;
	root = mkdtemp(tmpl);
	setenv("HVSIM_NOSYNC", "1", 1);
	return root ? 0 : -1;
}

static int teardown_all(void **s)
{
	(void)s;
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd);
}

static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...)
{
	static char buf[16][1024];
	static int k;
	char *b = buf[k++ % 16];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, 1024, fmt, ap);
	va_end(ap);
	return b;
}

struct env {
	char host[512], repo[512];
	struct host *h;
};

static void env_init(struct env *e, const char *name, uint64_t seed)
{
	snprintf(e->host, sizeof e->host, "%s/%s-host", root, name);
	snprintf(e->repo, sizeof e->repo, "%s/%s-repo", root, name);
	struct host_create_opts o = {.seed = seed, .nosync = true};
	if (host_create(e->host, &o) || host_open(e->host, HOST_OPEN_NOSYNC, &e->h))
		fail_msg("host: %s", hv_errmsg());
	setenv("HVSIM_HOST", e->host, 1);
}

static void env_close(struct env *e)
{
	host_close(e->h);
	e->h = NULL;
}

static int64_t vm_create(struct env *e, const char *name, const char *d0, const char *d1)
{
	struct host_disk_spec d[2];
	assert_int_equal(host_disk_spec_parse(d0, &d[0]), 0);
	if (d1)
		assert_int_equal(host_disk_spec_parse(d1, &d[1]), 0);
	int64_t vm;
	if (host_vm_create(e->h, name, d, d1 ? 2 : 1, &vm))
		fail_msg("vm: %s", hv_errmsg());
	return vm;
}

static void guest_write(struct env *e, int64_t vm, enum wl_pattern pat, uint64_t bytes, uint64_t seed)
{
	struct wl_params p;
	wl_params_init(&p, pat, 1, bytes, seed);
	if (host_vm_write(e->h, vm, -1, &p, NULL))
		fail_msg("write: %s", hv_errmsg());
}

/* The host's own record of what a reference point froze: its ground-truth point. */
static int64_t truth_point_of(struct env *e, const char *rp_path)
{
	sqlite3_stmt *st;
	int64_t p = -1;
	assert_int_equal(sqlite3_prepare_v2(host_db(e->h), "SELECT truth_point, guid FROM refpoint", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		if (strcasestr(rp_path, (const char *)sqlite3_column_text(st, 1)))
			p = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return p;
}

static int64_t host_disk_id(struct env *e, int64_t vm, const char *name)
{
	int64_t id;
	if (host_disk_find(e->h, vm, name, &id))
		fail_msg("disk %s: %s", name, hv_errmsg());
	return id;
}

static struct plan_result backup(struct env *e, const char *vm)
{
	struct plan_opts o = {.host = e->host, .vm = vm, .repo = e->repo, .path = "win32", .nosync = true};
	struct plan_result res;
	if (plan_backup(&o, &res))
		fail_msg("backup of %s: %s", vm, hv_errmsg());
	return res;
}

struct recorded {
	int64_t point, truth;
};

/* Restores every disk of a repository point and compares each block's hash with the truth. */
static void assert_point_exact(struct env *e, int64_t vm, const struct recorded *rec)
{
	struct repo *r;
	assert_int_equal(repo_open(e->repo, REPO_OPEN_RDONLY, NULL, &r), 0);
	struct repo_point_info *pi;
	assert_int_equal(repo_point_get(r, rec->point, &pi), 0);
	uint32_t g = host_rct_granularity(e->h);
	for (size_t k = 0; k < pi->ndisks; k++) {
		const char *out = P("%s/restore-%lld-%s.raw", root, (long long)rec->point, pi->disks[k].name);
		int fd = open(out, O_CREAT | O_TRUNC | O_RDWR, 0644);
		assert_true(fd >= 0);
		if (repo_restore_disk_fd(r, rec->point, pi->disks[k].name, fd))
			fail_msg("restore: %s", hv_errmsg());
		int64_t did = host_disk_id(e, vm, pi->disks[k].name);
		uint64_t size = pi->disks[k].virtual_size;
		uint8_t *buf = malloc(g);
		for (uint64_t b = 0; b * g < size; b++) {
			size_t n = size - b * g < g ? (size_t)(size - b * g) : g;
			assert_int_equal(pread(fd, buf, n, (off_t)(b * g)), (ssize_t)n);
			uint8_t want[TRUTH_HASH_SIZE], got[TRUTH_HASH_SIZE];
			assert_int_equal(truth_block_hash(host_db(e->h), rec->truth, did, b, want), 0);
			truth_hash(buf, n, got);
			if (memcmp(want, got, TRUTH_HASH_SIZE))
				fail_msg("point %lld disk %s block %llu differs from the host's truth", (long long)rec->point,
					 pi->disks[k].name, (unsigned long long)b);
		}
		free(buf);
		close(fd);
		unlink(out);
	}
	repo_points_free(pi, 1);
	repo_close(r);
}

static int64_t count_rows(struct env *e, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;
	assert_int_equal(sqlite3_prepare_v2(host_db(e->h), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void assert_host_clean(struct env *e)
{
	assert_int_equal(count_rows(e, "SELECT count(*) FROM snapshot"), 0);
	assert_int_equal(count_rows(e, "SELECT count(*) FROM refpoint GROUP BY vm_id ORDER BY 1 DESC LIMIT 1"), 1);
	assert_int_equal(count_rows(e, "SELECT coalesce(max(depth), 0) FROM chain"), 0);
}

static void verify_clean(struct env *e)
{
	struct repo *r;
	assert_int_equal(repo_open(e->repo, REPO_OPEN_RDONLY, NULL, &r), 0);
	struct repo_verify_result v;
	assert_int_equal(repo_verify(r, 0, NULL, NULL, &v), 0);
	assert_int_equal(v.blocks_bad + v.pack_problems + v.catalog_problems + v.points_damaged, 0);
	repo_close(r);
}

/* ---- tests ------------------------------------------------------------------------------------*/

static void test_full_then_incrementals(void **s)
{
	(void)s;
	struct env e;
	env_init(&e, "chain", 1);
	int64_t vm = vm_create(&e, "web", "48MiB", "24MiB,sector=4096,block=1MiB");
	static const enum wl_pattern pats[] = {WL_RANDOM, WL_ZIPF, WL_SEQUENTIAL, WL_TRIM, WL_RANDOM, WL_ZIPF};
	struct recorded rec[6];
	for (int i = 0; i < 6; i++) {
		guest_write(&e, vm, pats[i], (i ? 1 : 6) * MIB + (uint64_t)i * 131072, 100 + (uint64_t)i);
		struct plan_result r = backup(&e, "web");
		assert_int_equal(r.full, i == 0);
		if (i == 0)
			assert_non_null(strstr(r.reason, "no earlier backup"));
		else
			assert_true(r.bytes_read < 8 * MIB); /* an incremental reads what changed, not the disks */
		rec[i].point = r.point;
		rec[i].truth = truth_point_of(&e, r.ref_point);
		assert_true(rec[i].truth > 0);
		assert_host_clean(&e);
	}
	/* every point, not just the last, restores to exactly what the VM held at its checkpoint */
	for (int i = 0; i < 6; i++)
		assert_point_exact(&e, vm, &rec[i]);
	verify_clean(&e);
	env_close(&e);
}

static void test_rct_reset_means_full(void **s)
{
	(void)s;
	struct env e;
	env_init(&e, "reset", 2);
	int64_t vm = vm_create(&e, "db", "32MiB", NULL);
	guest_write(&e, vm, WL_RANDOM, 2 * MIB, 1);
	backup(&e, "db");
	guest_write(&e, vm, WL_RANDOM, 1 * MIB, 2);
	assert_int_equal(host_fault_rct_reset(e.h, vm, -1), 0);
	struct plan_result r = backup(&e, "db");
	assert_true(r.full);
	assert_non_null(strstr(r.reason, "rct id unknown"));
	struct recorded rec = {r.point, truth_point_of(&e, r.ref_point)};
	assert_point_exact(&e, vm, &rec);
	/* after the full, incrementals resume */
	guest_write(&e, vm, WL_RANDOM, 1 * MIB, 3);
	r = backup(&e, "db");
	assert_false(r.full);
	/* a new disk: that disk full, the point still incremental for the old one */
	struct host_disk_spec d;
	host_disk_spec_parse("8MiB", &d);
	assert_int_equal(host_vm_add_disk(e.h, vm, &d, NULL), 0);
	guest_write(&e, vm, WL_RANDOM, 1 * MIB, 4);
	r = backup(&e, "db");
	assert_false(r.full);
	assert_non_null(strstr(r.reason, "new disk"));
	rec = (struct recorded){r.point, truth_point_of(&e, r.ref_point)};
	assert_point_exact(&e, vm, &rec);
	env_close(&e);
}

static void test_disk_order_shuffled(void **s)
{
	(void)s;
	struct env e;
	env_init(&e, "order", 3);
	assert_int_equal(host_setting_set(e.h, "refpoint.reverse_disk_order", "1"), 0);
	int64_t vm = vm_create(&e, "multi", "16MiB", "32MiB");
	guest_write(&e, vm, WL_RANDOM, 2 * MIB, 1);
	backup(&e, "multi");
	guest_write(&e, vm, WL_ZIPF, 1 * MIB, 2);
	struct plan_result r = backup(&e, "multi");
	assert_false(r.full); /* pairing by position would have asked with the other disk's id */
	struct recorded rec = {r.point, truth_point_of(&e, r.ref_point)};
	assert_point_exact(&e, vm, &rec);
	env_close(&e);
}

static void test_dedup_across_vms(void **s)
{
	(void)s;
	struct env e;
	env_init(&e, "dedup", 4);
	int64_t a = vm_create(&e, "a", "32MiB", NULL), b = vm_create(&e, "b", "32MiB", NULL);
	guest_write(&e, a, WL_RANDOM, 4 * MIB, 77); /* same seed, same slot: the same bytes */
	guest_write(&e, b, WL_RANDOM, 4 * MIB, 77);
	struct plan_result ra = backup(&e, "a"), rb = backup(&e, "b");
	assert_true(ra.bytes_stored > 1 * MIB);
	assert_true(rb.bytes_stored < ra.bytes_stored / 20);
	assert_true(rb.bytes_dedup >= 4 * MIB);
	struct recorded rec = {rb.point, truth_point_of(&e, rb.ref_point)};
	assert_point_exact(&e, b, &rec);
	env_close(&e);
}

static void test_crash_safety(void **s)
{
	(void)s;
	struct env e;
	env_init(&e, "crash", 5);
	int64_t vm = vm_create(&e, "k", "16MiB", "8MiB");
	guest_write(&e, vm, WL_RANDOM, 3 * MIB, 1);
	struct plan_result first = backup(&e, "k");
	struct recorded good[32];
	int ngood = 0;
	good[ngood++] = (struct recorded){first.point, truth_point_of(&e, first.ref_point)};
	/* stop dead after N blocks (N = 1, 3, 7, …) and at each commit step */
	for (int round = 0; round < 9; round++) {
		guest_write(&e, vm, WL_RANDOM, 1 * MIB, 10 + (uint64_t)round);
		struct plan_opts o = {.host = e.host, .vm = "k", .repo = e.repo, .path = "win32", .nosync = true};
		if (round < 6)
			o.crash_after_blocks = (uint64_t)(1 << round) - 1 + 1;
		else
			o.crash_at_commit_step = round - 5;
		struct plan_result r;
		assert_int_equal(plan_backup(&o, &r), HV_ECRASHED);
		/* the repository is consistent and every earlier point is intact */
		verify_clean(&e);
		for (int i = 0; i < ngood; i++)
			assert_point_exact(&e, vm, &good[i]);
		/* the next backup cleans up and is incremental (the previous reference point is there) */
		struct plan_result nx = backup(&e, "k");
		assert_false(nx.full);
		assert_true(nx.stale_checkpoints_removed + nx.leaked_reference_points_removed <= 1);
		assert_host_clean(&e);
		good[ngood++] = (struct recorded){nx.point, truth_point_of(&e, nx.ref_point)};
		assert_point_exact(&e, vm, &good[ngood - 1]);
	}
	env_close(&e);
}

static void test_failures_leave_no_leftovers(void **s)
{
	(void)s;
	struct env e;
	env_init(&e, "fail", 6);
	int64_t vm = vm_create(&e, "f", "16MiB", NULL);
	guest_write(&e, vm, WL_RANDOM, 2 * MIB, 1);
	struct plan_result r0 = backup(&e, "f");
	struct recorded first = {r0.point, truth_point_of(&e, r0.ref_point)};
	/* ConvertToReferencePoint's job ends in Exception: the backup fails naming it, the checkpoint
	 * it made is gone, the previous reference point and point are intact */
	assert_int_equal(host_setting_set(e.h, "job.ConvertToReferencePoint", "running=1,exception=4242"), 0);
	guest_write(&e, vm, WL_RANDOM, 1 * MIB, 2);
	struct plan_opts o = {.host = e.host, .vm = "f", .repo = e.repo, .path = "win32", .nosync = true};
	struct plan_result r;
	assert_int_not_equal(plan_backup(&o, &r), 0);
	assert_non_null(strstr(hv_errmsg(), "4242"));
	assert_int_equal(count_rows(&e, "SELECT count(*) FROM snapshot"), 0);
	assert_int_equal(count_rows(&e, "SELECT count(*) FROM refpoint"), 1);
	assert_point_exact(&e, vm, &first);
	verify_clean(&e);
	/* slow and synchronous jobs both work; CreateSnapshot stuck in Starting is waited for */
	assert_int_equal(host_setting_set(e.h, "job.ConvertToReferencePoint", "sync"), 0);
	assert_int_equal(host_setting_set(e.h, "job.CreateSnapshot", "starting=4,running=7,warnings"), 0);
	r = backup(&e, "f");
	assert_false(r.full);
	assert_true(r.job_polls >= 12);
	assert_host_clean(&e);
	struct recorded rec = {r.point, truth_point_of(&e, r.ref_point)};
	assert_point_exact(&e, vm, &rec);
	/* the reference point gone (another tool deleted it) → full with the reason */
	int64_t rp = count_rows(&e, "SELECT id FROM refpoint");
	assert_int_equal(host_refpoint_destroy(e.h, rp), 0);
	r = backup(&e, "f");
	assert_true(r.full);
	assert_non_null(strstr(r.reason, "reference point is gone"));
	/* a resized disk → full for it */
	assert_int_equal(host_fault_resize(e.h, host_disk_id(&e, vm, "f"), 24 * MIB), 0);
	r = backup(&e, "f");
	assert_true(r.full);
	assert_non_null(strstr(r.reason, "resized"));
	rec = (struct recorded){r.point, truth_point_of(&e, r.ref_point)};
	assert_point_exact(&e, vm, &rec);
	/* application-consistent impossible → crash-consistent */
	assert_int_equal(host_fault_guest_vss(e.h, vm, false), 0);
	guest_write(&e, vm, WL_RANDOM, 1 * MIB, 3);
	r = backup(&e, "f");
	assert_string_equal(r.consistency, "crash");
	assert_false(r.full);
	env_close(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_then_incrementals),
		cmocka_unit_test(test_rct_reset_means_full),
		cmocka_unit_test(test_disk_order_shuffled),
		cmocka_unit_test(test_dedup_across_vms),
		cmocka_unit_test(test_crash_safety),
		cmocka_unit_test(test_failures_leave_no_leftovers),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
