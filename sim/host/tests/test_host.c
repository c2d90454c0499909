/*
 * test_host — the simulated host: folder layout, VMs and disks, guest writes against an in-memory
 * model replayed from the same seeded op stream, checkpoints (AVHDX chains), merges and their
 * blocks, reference points, RCT answers judged against the ground truth and against the model,
 * faults, crash recovery of merges, and determinism (two folders, same seed ⇒ same dump).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../host.h"
#include "../../rct/rct.h"
#include "../../truth/truth.h"
#include "../../workload/workload.h"
#include "../../../hyperv/vhdx/vhdx.h"

#define MIB (1024ull * 1024ull)

static char tmpl[] = "/tmp/test_host.XXXXXX";
static char *root;

static int setup_all(void **s)
{
	(void)s;
	root = mkdtemp(tmpl);
	return root ? 0 : -1;
}

static int teardown_all(void **s)
{
	(void)s;
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd);
}

static char *path_in(const char *name)
{
	static char buf[8][512];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, 512, "%s/%s", root, name);
	return p;
}

static struct host *new_host(const char *name, uint64_t seed, uint32_t gran)
{
	struct host_create_opts o = {.seed = seed, .rct_granularity = gran, .nosync = true};
	int r = host_create(path_in(name), &o);
	if (r)
		fail_msg("host_create: %s", hv_errmsg());
	struct host *h;
	r = host_open(path_in(name), HOST_OPEN_NOSYNC, &h);
	if (r)
		fail_msg("host_open: %s", hv_errmsg());
	return h;
}

static int64_t q_int(struct host *h, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(host_db(h), sql, -1, &st, NULL), SQLITE_OK);
	int64_t v = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *q_text(struct host *h, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(host_db(h), sql, -1, &st, NULL), SQLITE_OK);
	char *v = NULL;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

/* ---- in-memory model of a disk, fed by the same op stream ------------------------------------ */

struct model {
	uint8_t *b;
	uint64_t size;
	uint32_t sector; /* logical sector of the disk (0 = 512) */
};

static int model_sink(void *ctx, const struct wl_op *op, const uint8_t *data)
{
	struct model *m = ctx;
	if (op->zero)
		memset(m->b + op->offset, 0, op->length);
	else
		memcpy(m->b + op->offset, data, op->length);
	return 0;
}

/* Writes through the host and replays the same ops into the models (one per disk slot). */
static void write_both(struct host *h, int64_t vm, struct model *models, int ndisks, enum wl_pattern pat,
		       uint64_t bytes, uint64_t seed)
{
	struct wl_params p;
	wl_params_init(&p, pat, 1, bytes, seed);
	uint64_t done = 0;
	if (host_vm_write(h, vm, -1, &p, &done))
		fail_msg("host_vm_write: %s", hv_errmsg());
	for (int i = 0; i < ndisks; i++) {
		struct wl_params q = p;
		q.disk_size = models[i].size;
		q.seed = host_workload_seed(seed, i);
		if (models[i].sector > q.sector)
			q.sector = models[i].sector; /* the host writes in the disk's logical sectors */
		assert_int_equal(wl_run(&q, model_sink, &models[i], NULL), 0);
	}
}

static void read_file_chain(struct host *h, const char *rel, uint8_t *out, uint64_t size)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", host_dir(h), rel) > 0);
	struct vhdx_file *f;
	if (vhdx_open(p, VHDX_OPEN_RDONLY, &f))
		fail_msg("open %s: %s", p, hv_errmsg());
	assert_int_equal(vhdx_read(f, out, 0, size), 0);
	vhdx_close(f);
	free(p);
}

static void assert_file_equals_model(struct host *h, const char *rel, const struct model *m)
{
	uint8_t *buf = malloc(m->size);
	read_file_chain(h, rel, buf, m->size);
	if (memcmp(buf, m->b, m->size)) {
		uint64_t i = 0;
		while (buf[i] == m->b[i])
			i++;
		fail_msg("%s differs from the model at byte %llu", rel, (unsigned long long)i);
	}
	free(buf);
}

static char *leaf_of(struct host *h, int64_t disk)
{
	char sql[200];
	snprintf(sql, sizeof sql, "SELECT path FROM chain WHERE disk_id=%lld ORDER BY depth DESC LIMIT 1", (long long)disk);
	return q_text(h, sql);
}

/* Changed blocks from an RCT query over the whole disk, as a 0/1 array. Pages with capacity 3 to
 * exercise the paging contract. */
static int rct_blocks(struct host *h, int64_t disk, int depth, const char *id, uint64_t size, uint32_t g, uint8_t *set,
		      uint32_t *win32)
{
	uint64_t off = 0;
	memset(set, 0, (size + g - 1) / g);
	while (off < size) {
		struct host_range r[3];
		uint32_t n;
		uint64_t done;
		int rc = host_rct_query(h, disk, depth, id, off, size - off, r, 3, &n, &done, win32);
		if (rc)
			return rc;
		assert_true(done > 0);
		for (uint32_t i = 0; i < n; i++)
			for (uint64_t b = r[i].offset / g; b * g < r[i].offset + r[i].length; b++)
				set[b] = 1;
		off += done;
	}
	return 0;
}

struct truthset {
	uint8_t *set;
};

static int truth_cb(void *ctx, uint64_t block)
{
	((struct truthset *)ctx)->set[block] = 1;
	return 0;
}

/* ---- tests ------------------------------------------------------------------------------------*/

static void test_create_errors(void **s)
{
	(void)s;
	struct host_create_opts o = {.seed = 1, .rct_granularity = 3000, .nosync = true};
	assert_int_equal(host_create(path_in("bad1"), &o), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "power of two"));
	mkdir(path_in("full"), 0777);
	FILE *f = fopen(path_in("full/x"), "w");
	fclose(f);
	o.rct_granularity = 0;
	assert_int_equal(host_create(path_in("full"), &o), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "not empty"));
	struct host *h;
	assert_int_equal(host_open(path_in("nothere"), 0, &h), HV_ENOTFOUND);
	assert_int_equal(host_open(path_in("full"), 0, &h), HV_ENOTFOUND);
	assert_non_null(strstr(hv_errmsg(), "no host.db"));
}

static void test_vm_layout(void **s)
{
	(void)s;
	struct host *h = new_host("layout", 1, 0);
	struct host_disk_spec d[2];
	assert_int_equal(host_disk_spec_parse("64MiB", &d[0]), 0);
	assert_int_equal(host_disk_spec_parse("32MiB,fixed,block=1MiB,sector=4096", &d[1]), 0);
	assert_true(d[1].fixed && d[1].block_size == MIB && d[1].logical_sector == 4096);
	struct host_disk_spec bad;
	assert_int_equal(host_disk_spec_parse("64MiB,sector=1024", &bad), HV_EINVAL);
	assert_int_equal(host_disk_spec_parse("64MiB,block=3MiB", &bad), HV_EINVAL);
	assert_int_equal(host_disk_spec_parse("lots", &bad), HV_EINVAL);
	assert_int_equal(host_disk_spec_parse("64MiB,shiny", &bad), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "shiny"));
	int64_t vm;
	assert_int_equal(host_vm_create(h, "web 01", d, 2, &vm), 0);
	struct stat sb;
	assert_int_equal(stat(path_in("layout/web 01/Virtual Hard Disks/web 01.vhdx"), &sb), 0);
	assert_int_equal(stat(path_in("layout/web 01/Virtual Hard Disks/web 01_1.vhdx"), &sb), 0);
	assert_int_equal(stat(path_in("layout/web 01/Virtual Hard Disks/web 01.vhdx.hvrct"), &sb), 0);
	assert_int_equal(host_vm_create(h, "web 01", d, 1, NULL), HV_EINVAL);
	assert_int_equal(host_vm_create(h, "../evil", d, 1, NULL), HV_EINVAL);
	assert_int_equal(host_vm_create(h, "", d, 1, NULL), HV_EINVAL);
	int64_t found;
	assert_int_equal(host_vm_find(h, "WEB 01", &found), 0);
	assert_int_equal(found, vm);
	char *guid = q_text(h, "SELECT guid FROM vm");
	char braced[64];
	snprintf(braced, sizeof braced, "{%s}", guid);
	assert_int_equal(host_vm_find(h, braced, &found), 0);
	free(guid);
	assert_int_equal(host_vm_find(h, "nope", &found), HV_ENOTFOUND);
	/* the VirtualDiskId in host.db is the one in the file */
	char *vdid = q_text(h, "SELECT virtual_disk_id FROM disk WHERE slot=1");
	struct vhdx_file *f;
	assert_int_equal(vhdx_open(path_in("layout/web 01/Virtual Hard Disks/web 01_1.vhdx"), 0, &f), 0);
	char t[40];
	hv_guid_format(&vhdx_get_info(f)->disk_id, t);
	assert_int_equal(strncasecmp(t + 1, vdid, 36), 0);
	assert_int_equal(vhdx_get_info(f)->type, VHDX_TYPE_FIXED);
	assert_int_equal(vhdx_get_info(f)->logical_sector, 4096);
	vhdx_close(f);
	free(vdid);
	/* SASD InstanceID grammar ends in \<controller>\<location>\L */
	char *iid = q_text(h, "SELECT instance_id FROM disk WHERE slot=1");
	assert_true(!strncmp(iid, "Microsoft:", 10));
	assert_non_null(strstr(iid, "\\0\\1\\L"));
	free(iid);
	host_close(h);
}

static void test_write_checkpoint_merge(void **s)
{
	(void)s;
	const uint32_t G = 64 * 1024;
	struct host *h = new_host("ckpt", 42, 0);
	struct host_disk_spec d[2];
	host_disk_spec_parse("48MiB", &d[0]);
	host_disk_spec_parse("40MiB,sector=4096,block=2MiB", &d[1]);
	int64_t vm;
	assert_int_equal(host_vm_create(h, "db", d, 2, &vm), 0);
	struct model m[2] = {{calloc(1, 48 * MIB), 48 * MIB, 512}, {calloc(1, 40 * MIB), 40 * MIB, 4096}};
	write_both(h, vm, m, 2, WL_RANDOM, 6 * MIB, 11);
	write_both(h, vm, m, 2, WL_SEQUENTIAL, 3 * MIB, 12);
	for (int i = 0; i < 2; i++) {
		char *leaf = leaf_of(h, i + 1);
		assert_file_equals_model(h, leaf, &m[i]);
		free(leaf);
	}

	/* full backup: recovery checkpoint → the frozen file holds the model; the VM writes to an AVHDX */
	int64_t snap;
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &snap), 0);
	char *leaf = leaf_of(h, 1);
	assert_non_null(strstr(leaf, "db/Virtual Hard Disks/db_"));
	assert_non_null(strstr(leaf, ".avhdx"));
	assert_int_equal(strlen(strrchr(leaf, '_')), 1 + 36 + 6);
	free(leaf);
	char *rct1 = q_text(h, "SELECT rct_id FROM snapshot_disk WHERE disk_id=1");
	assert_int_equal(strncmp(rct1, "rctX:", 5), 0);
	assert_int_equal(strlen(rct1), RCT_ID_STRLEN);
	assert_string_equal(rct1 + strlen(rct1) - 9, ":00000001");
	uint8_t *snapshot_copy = malloc(48 * MIB);
	memcpy(snapshot_copy, m[0].b, 48 * MIB);

	/* writes after the checkpoint land in the AVHDX; the frozen base is unchanged */
	write_both(h, vm, m, 2, WL_ZIPF, 4 * MIB, 13);
	struct model frozen = {snapshot_copy, 48 * MIB, 512};
	assert_file_equals_model(h, "db/Virtual Hard Disks/db.vhdx", &frozen);

	/* convert: reference point carries the checkpoint's RCT ids; the AVHDX merges back */
	int64_t rp1;
	assert_int_equal(host_refpoint_convert(h, snap, 2, &rp1), 0);
	assert_int_equal(q_int(h, "SELECT count(*) FROM snapshot"), 0);
	assert_int_equal(q_int(h, "SELECT count(*) FROM chain"), 2);
	char *rprct = q_text(h, "SELECT rct_id FROM refpoint_disk WHERE idx=0");
	assert_string_equal(rprct, rct1);
	free(rprct);
	for (int i = 0; i < 2; i++) {
		char *l = leaf_of(h, i + 1);
		assert_null(strstr(l, ".avhdx"));
		assert_file_equals_model(h, l, &m[i]);
		free(l);
	}
	struct stat sb;
	int avhdx = 0;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "ls '%s/ckpt/db/Virtual Hard Disks/' | grep -c avhdx", root);
	FILE *pp = popen(cmd, "r");
	assert_int_equal(fscanf(pp, "%d", &avhdx), 1);
	pclose(pp);
	assert_int_equal(avhdx, 0);
	(void)sb;

	/* incremental: the changes since rct1 seen from the new frozen file equal the truth */
	write_both(h, vm, m, 2, WL_TRIM, 1 * MIB, 14);
	int64_t snap2;
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &snap2), 0);
	int64_t p1 = q_int(h, "SELECT truth_point FROM refpoint");
	char sql[200];
	snprintf(sql, sizeof sql, "SELECT truth_point FROM snapshot WHERE id=%lld", (long long)snap2);
	int64_t p2 = q_int(h, sql);
	uint64_t nb = 48 * MIB / G;
	uint8_t *got = malloc(nb), *want = calloc(1, nb);
	uint32_t w32;
	assert_int_equal(rct_blocks(h, 1, 0, rct1, 48 * MIB, G, got, &w32), 0);
	struct truthset ts = {want};
	assert_int_equal(truth_changed_between(host_db(h), 1, p1, p2, truth_cb, &ts), 0);
	assert_memory_equal(got, want, nb);
	size_t changed = 0;
	for (uint64_t b = 0; b < nb; b++)
		changed += want[b];
	assert_true(changed > 10); /* the zipf + trim writes really were seen */

	/* the truth hashes of point 2 match the model block by block */
	for (uint64_t b = 0; b < nb; b++) {
		uint8_t th[TRUTH_HASH_SIZE], mh[TRUTH_HASH_SIZE];
		assert_int_equal(truth_block_hash(host_db(h), p2, 1, b, th), 0);
		truth_hash(m[0].b + b * G, G, mh);
		assert_memory_equal(th, mh, TRUTH_HASH_SIZE);
	}

	/* leaked reference point: converting snap2 leaves two reference points → merge blocked */
	int64_t rp2;
	assert_int_equal(host_refpoint_convert(h, snap2, 2, &rp2), 0);
	assert_non_null(host_merge_block_reason(h, vm));
	char *l = leaf_of(h, 1);
	assert_non_null(strstr(l, ".avhdx"));
	free(l);
	/* next checkpoint freezes the AVHDX (chain of two files) */
	write_both(h, vm, m, 2, WL_RANDOM, 2 * MIB, 15);
	int64_t snap3;
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &snap3), 0);
	snprintf(sql, sizeof sql, "SELECT depth FROM snapshot_disk WHERE snapshot_id=%lld AND disk_id=1", (long long)snap3);
	assert_int_equal(q_int(h, sql), 1);
	snprintf(sql, sizeof sql, "SELECT c.path FROM snapshot_disk s JOIN chain c ON c.disk_id=s.disk_id AND"
				  " c.depth=s.depth WHERE s.snapshot_id=%lld AND s.disk_id=1", (long long)snap3);
	char *frozen3 = q_text(h, sql);
	assert_non_null(strstr(frozen3, ".avhdx"));
	struct model m3 = {malloc(48 * MIB), 48 * MIB, 512};
	memcpy(m3.b, m[0].b, 48 * MIB);
	assert_file_equals_model(h, frozen3, &m3);
	free(frozen3);
	/* destroying the leaked point unblocks; destroying the checkpoint merges everything */
	assert_int_equal(host_refpoint_destroy(h, rp1), 0);
	assert_null(host_merge_block_reason(h, vm));
	assert_int_equal(host_snapshot_destroy(h, snap3), 0);
	assert_int_equal(q_int(h, "SELECT max(depth) FROM chain WHERE disk_id=1"), 0);
	for (int i = 0; i < 2; i++) {
		char *ll = leaf_of(h, i + 1);
		assert_file_equals_model(h, ll, &m[i]);
		free(ll);
	}
	free(m3.b);
	free(rct1);
	free(got);
	free(want);
	free(snapshot_copy);
	free(m[0].b);
	free(m[1].b);
	host_close(h);
}

static void test_rct_faults(void **s)
{
	(void)s;
	const uint32_t G = 16 * 1024;
	struct host *h = new_host("faults", 5, G);
	struct host_disk_spec d;
	host_disk_spec_parse("16MiB", &d);
	int64_t vm;
	assert_int_equal(host_vm_create(h, "f", &d, 1, &vm), 0);
	struct model m = {calloc(1, 16 * MIB), 16 * MIB, 512};
	write_both(h, vm, &m, 1, WL_RANDOM, 2 * MIB, 1);
	int64_t rp;
	assert_int_equal(host_refpoint_create(h, vm, 2, &rp), 0);
	char *id1 = q_text(h, "SELECT rct_id FROM refpoint_disk");
	bool en, newer;
	char id[80];
	assert_int_equal(host_rct_state(h, 1, 0, &en, id, sizeof id, &newer), 0);
	assert_true(en);
	assert_false(newer);
	assert_string_equal(id, id1);
	write_both(h, vm, &m, 1, WL_RANDOM, 1 * MIB, 2);
	assert_int_equal(host_rct_state(h, 1, 0, &en, id, sizeof id, &newer), 0);
	assert_true(newer);

	/* host crash: the answer is a superset of the truth, aligned to the coarse granularity */
	assert_int_equal(host_fault_crash(h), 0);
	int64_t p1 = q_int(h, "SELECT truth_point FROM refpoint");
	int64_t rp2;
	assert_int_equal(host_refpoint_create(h, vm, 2, &rp2), 0);
	int64_t p2 = q_int(h, "SELECT max(truth_point) FROM refpoint");
	uint64_t nb = 16 * MIB / G;
	uint8_t *got = malloc(32 * MIB / G), *want = calloc(1, 32 * MIB / G); /* room for the resized disk */
	uint32_t w32;
	assert_int_equal(rct_blocks(h, 1, 0, id1, 16 * MIB, G, got, &w32), 0);
	struct truthset ts = {want};
	truth_changed_between(host_db(h), 1, p1, p2, truth_cb, &ts);
	size_t extra = 0;
	for (uint64_t b = 0; b < nb; b++) {
		if (want[b])
			assert_true(got[b]);
		extra += got[b] && !want[b];
	}
	assert_true(extra > 0); /* coarse: strictly more than the truth here */

	/* RCT reset: the old id fails with ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION */
	assert_int_equal(host_fault_rct_reset(h, vm, -1), 0);
	assert_int_not_equal(rct_blocks(h, 1, 0, id1, 16 * MIB, G, got, &w32), 0);
	assert_int_equal(w32, 0xC03A0030u);
	/* migration with keep: a fresh id keeps working */
	int64_t rp3;
	assert_int_equal(host_refpoint_create(h, vm, 2, &rp3), 0);
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT rct_id FROM refpoint_disk WHERE rp_id=%lld", (long long)rp3);
	char *id3 = q_text(h, sql);
	assert_int_equal(host_fault_migrate(h, vm, false), 0);
	assert_int_equal(rct_blocks(h, 1, 0, id3, 16 * MIB, G, got, &w32), 0);
	assert_int_equal(host_fault_migrate(h, vm, true), 0);
	assert_int_not_equal(rct_blocks(h, 1, 0, id3, 16 * MIB, G, got, &w32), 0);
	assert_int_equal(w32, 0xC03A0030u);

	/* resize keeps the VirtualDiskId and the data, resets tracking; replace changes the id */
	char *vd1 = q_text(h, "SELECT virtual_disk_id FROM disk");
	assert_int_equal(host_fault_resize(h, 1, 24 * MIB), 0);
	char *vd2 = q_text(h, "SELECT virtual_disk_id FROM disk");
	assert_string_equal(vd1, vd2);
	assert_int_equal(q_int(h, "SELECT size FROM disk"), 24 * MIB);
	struct model big = {calloc(1, 24 * MIB), 24 * MIB, 512};
	memcpy(big.b, m.b, 16 * MIB);
	assert_file_equals_model(h, "f/Virtual Hard Disks/f.vhdx", &big);
	assert_int_equal(host_fault_resize(h, 1, 8 * MIB), HV_EUNSUPPORTED);
	assert_int_equal(host_fault_replace(h, 1), 0);
	char *vd3 = q_text(h, "SELECT virtual_disk_id FROM disk");
	assert_string_not_equal(vd1, vd3);
	assert_file_equals_model(h, "f/Virtual Hard Disks/f.vhdx", &big);
	/* a disk with checkpoints cannot be resized */
	int64_t sn;
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_STANDARD, 2, "keep", &sn), 0);
	assert_int_equal(host_fault_resize(h, 1, 32 * MIB), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "checkpoints"));
	/* tracking disabled → queries fail with ERROR_VHD_CHANGE_TRACKING_DISABLED */
	assert_int_equal(host_rct_set_enabled(h, 1, false), 0);
	assert_int_not_equal(rct_blocks(h, 1, 1, id3, 24 * MIB, G, got, &w32), 0);
	assert_int_equal(w32, 0xC03A002Au);
	free(vd1);
	free(vd2);
	free(vd3);
	free(id1);
	free(id3);
	free(got);
	free(want);
	free(m.b);
	free(big.b);
	host_close(h);
}

static void test_merge_disabled_and_recovery(void **s)
{
	(void)s;
	struct host *h = new_host("merge", 9, 0);
	struct host_disk_spec d;
	host_disk_spec_parse("16MiB", &d);
	int64_t vm;
	assert_int_equal(host_vm_create(h, "m", &d, 1, &vm), 0);
	struct model m = {calloc(1, 16 * MIB), 16 * MIB, 512};
	write_both(h, vm, &m, 1, WL_RANDOM, 2 * MIB, 1);
	assert_int_equal(host_merge_set_enabled(h, vm, false), 0);
	int64_t sn;
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 1, NULL, &sn), 0);
	write_both(h, vm, &m, 1, WL_RANDOM, 2 * MIB, 2);
	assert_int_equal(host_snapshot_destroy(h, sn), 0);
	assert_int_equal(q_int(h, "SELECT max(depth) FROM chain"), 1); /* AVHDX stayed */
	assert_non_null(strstr(host_merge_block_reason(h, vm), "disabled"));
	/* a merge cut right after it was announced is finished by the next open */
	assert_int_equal(host_exec(h, "UPDATE chain SET merging=1 WHERE depth=1"), 0);
	host_close(h);
	assert_int_equal(host_open(path_in("merge"), HOST_OPEN_NOSYNC, &h), 0);
	assert_int_equal(q_int(h, "SELECT max(depth) FROM chain"), 0);
	assert_file_equals_model(h, "m/Virtual Hard Disks/m.vhdx", &m);
	/* enabling merges again when something is pending merges it */
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 1, NULL, &sn), 0);
	write_both(h, vm, &m, 1, WL_OVERWRITE, 0, 3);
	assert_int_equal(host_snapshot_destroy(h, sn), 0);
	assert_int_equal(q_int(h, "SELECT max(depth) FROM chain"), 1);
	assert_int_equal(host_merge_set_enabled(h, vm, true), 0);
	assert_int_equal(q_int(h, "SELECT max(depth) FROM chain"), 0);
	assert_file_equals_model(h, "m/Virtual Hard Disks/m.vhdx", &m);
	/* converting a standard checkpoint is refused */
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_STANDARD, 1, "user", &sn), 0);
	int64_t rp;
	assert_int_equal(host_refpoint_convert(h, sn, 1, &rp), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "not a recovery checkpoint"));
	free(m.b);
	host_close(h);
}

static void build_same(const char *name)
{
	struct host *h = new_host(name, 1234, 0);
	struct host_disk_spec d[2];
	host_disk_spec_parse("32MiB", &d[0]);
	host_disk_spec_parse("8MiB,fixed,block=1MiB", &d[1]);
	int64_t vm, vm2, sn, rp;
	assert_int_equal(host_vm_create(h, "a", d, 2, &vm), 0);
	assert_int_equal(host_vm_create(h, "b", d, 1, &vm2), 0);
	struct wl_params p;
	wl_params_init(&p, WL_ZIPF, 1, 3 * MIB, 77);
	assert_int_equal(host_vm_write(h, vm, -1, &p, NULL), 0);
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &sn), 0);
	assert_int_equal(host_vm_write(h, vm2, -1, &p, NULL), 0);
	assert_int_equal(host_refpoint_convert(h, sn, 2, &rp), 0);
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &sn), 0);
	assert_int_equal(host_clock_advance(h, 3600ull * 10000000ull), 0);
	host_close(h);
}

static char *dump_of(const char *name)
{
	struct host *h;
	assert_int_equal(host_open(path_in(name), HOST_OPEN_NOSYNC, &h), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&buf, &len);
	assert_int_equal(host_state_dump(h, o), 0);
	fclose(o);
	host_close(h);
	return buf;
}

static void test_determinism(void **s)
{
	(void)s;
	build_same("det1");
	mkdir(path_in("sub"), 0777);
	build_same("sub/det2"); /* a different place and depth: file bytes must not depend on it */
	char *a = dump_of("det1"), *b = dump_of("sub/det2");
	assert_non_null(strstr(a, ".avhdx size="));
	assert_string_equal(a, b);
	free(a);
	free(b);
}

/* Property: over random workloads, random checkpoints/reference points (each a seal) and random
 * host crashes, the changes since any earlier id, seen from the live disk after a final seal,
 * cover every block the ground truth says was written — exactly, when no crash happened in
 * between. After a reset every older id fails with 0xC03A0030. */
struct seal {
	int64_t disk, point;
	char id[64];
	int crashes; /* host crashes before this seal */
	int resets;
};

static int collect_seals(struct host *h, struct seal *v, int max, int crashes, int resets, int n)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(host_db(h),
					    "SELECT disk_id, truth_point, rct_id FROM refpoint_disk JOIN refpoint ON id=rp_id"
					    " UNION SELECT disk_id, truth_point, rct_id FROM snapshot_disk JOIN snapshot ON"
					    " id=snapshot_id ORDER BY 2, 1", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW && n < max) {
		int64_t disk = sqlite3_column_int64(st, 0), point = sqlite3_column_int64(st, 1);
		bool seen = false;
		for (int i = 0; i < n; i++)
			seen |= v[i].disk == disk && v[i].point == point;
		if (seen || !*(const char *)sqlite3_column_text(st, 2))
			continue;
		v[n].disk = disk;
		v[n].point = point;
		snprintf(v[n].id, sizeof v[n].id, "%s", (const char *)sqlite3_column_text(st, 2));
		v[n].crashes = crashes;
		v[n].resets = resets;
		n++;
	}
	sqlite3_finalize(st);
	return n;
}

static void test_rct_property(void **s)
{
	(void)s;
	static const uint32_t grans[] = {4096, 16384, 65536};
	int checked_exact = 0, checked_superset = 0, checked_reset = 0;
	for (uint64_t round = 0; round < 24; round++) {
		struct hv_rng rng = hv_rng_stream(round, "test.rct.property");
		uint32_t G = grans[hv_rng_next(&rng) % 3];
		char name[32];
		snprintf(name, sizeof name, "prop%llu", (unsigned long long)round);
		struct host *h = new_host(name, round, G);
		int ndisks = 1 + (int)(hv_rng_next(&rng) % 2);
		struct host_disk_spec d[2];
		host_disk_spec_parse("12MiB", &d[0]);
		host_disk_spec_parse("6MiB,sector=4096,block=1MiB", &d[1]);
		int64_t vm;
		assert_int_equal(host_vm_create(h, "p", d, (size_t)ndisks, &vm), 0);
		struct seal seals[256];
		int nseals = 0, crashes = 0, resets = 0;
		int64_t open_snap = -1;
		for (int step = 0; step < 14; step++) {
			uint64_t a = hv_rng_next(&rng) % 100;
			if (a < 45) {
				struct wl_params p;
				wl_params_init(&p, (enum wl_pattern)(hv_rng_next(&rng) % 5), 1,
					       (1 + hv_rng_next(&rng) % 24) * 65536, hv_rng_next(&rng));
				if (p.pattern == WL_OVERWRITE && hv_rng_next(&rng) % 2)
					p.pattern = WL_RANDOM;
				p.io_max = 256 * 1024;
				assert_int_equal(host_vm_write(h, vm, -1, &p, NULL), 0);
			} else if (a < 60) {
				int64_t rp;
				assert_int_equal(host_refpoint_create(h, vm, 2, &rp), 0);
			} else if (a < 75 && open_snap < 0) {
				assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &open_snap), 0);
			} else if (a < 85 && open_snap >= 0) {
				int64_t rp;
				if (hv_rng_next(&rng) % 2)
					assert_int_equal(host_refpoint_convert(h, open_snap, 2, &rp), 0);
				else
					assert_int_equal(host_snapshot_destroy(h, open_snap), 0);
				open_snap = -1;
			} else if (a < 93) {
				assert_int_equal(host_fault_crash(h), 0);
				crashes++;
			} else {
				assert_int_equal(host_fault_rct_reset(h, vm, -1), 0);
				resets++;
			}
			nseals = collect_seals(h, seals, 256, crashes, resets, nseals);
		}
		/* final seal: the live disk now answers up to it */
		int64_t last;
		assert_int_equal(host_refpoint_create(h, vm, 2, &last), 0);
		char sql[160];
		snprintf(sql, sizeof sql, "SELECT truth_point FROM refpoint WHERE id=%lld", (long long)last);
		int64_t final_point = q_int(h, sql);
		for (int i = 0; i < nseals; i++) {
			struct seal *sl = &seals[i];
			char dsql[128];
			snprintf(dsql, sizeof dsql, "SELECT size FROM disk WHERE id=%lld", (long long)sl->disk);
			uint64_t size = (uint64_t)q_int(h, dsql), nb = (size + G - 1) / G;
			uint8_t *got = malloc(nb), *want = calloc(1, nb);
			uint32_t w32 = 0;
			int64_t depth = q_int(h, "SELECT max(depth) FROM chain WHERE disk_id=1");
			snprintf(dsql, sizeof dsql, "SELECT max(depth) FROM chain WHERE disk_id=%lld", (long long)sl->disk);
			depth = q_int(h, dsql);
			int rc = rct_blocks(h, sl->disk, (int)depth, sl->id, size, G, got, &w32);
			if (sl->resets != resets) {
				assert_int_not_equal(rc, 0);
				assert_int_equal(w32, 0xC03A0030u);
				checked_reset++;
			} else {
				if (rc)
					fail_msg("round %llu: query since %s failed: %s", (unsigned long long)round, sl->id, hv_errmsg());
				struct truthset ts = {want};
				assert_int_equal(truth_changed_between(host_db(h), sl->disk, sl->point, final_point, truth_cb, &ts), 0);
				for (uint64_t b = 0; b < nb; b++)
					if (want[b] && !got[b])
						fail_msg("round %llu: block %llu written after %s is missing from the answer",
							 (unsigned long long)round, (unsigned long long)b, sl->id);
				if (sl->crashes == crashes) {
					assert_memory_equal(got, want, nb);
					checked_exact++;
				} else {
					checked_superset++;
				}
			}
			free(got);
			free(want);
		}
		host_close(h);
	}
	/* the random plan really exercised all three outcomes */
	assert_true(checked_exact > 20);
	assert_true(checked_superset > 3);
	assert_true(checked_reset > 3);
}

/* ---- regressions from the user review ------------------------------------------------------ */

/* Four processes writing to the same VM at once: the host lock serialises them, so the change
 * tracking still covers every block the truth says was written, and the file stays sane. */
static void test_concurrent_writers(void **s)
{
	(void)s;
	struct host *h = new_host("conc", 21, 0);
	struct host_disk_spec d;
	host_disk_spec_parse("64MiB", &d);
	int64_t vm, rp;
	assert_int_equal(host_vm_create(h, "c", &d, 1, &vm), 0);
	assert_int_equal(host_refpoint_create(h, vm, 2, &rp), 0);
	char *id = q_text(h, "SELECT rct_id FROM refpoint_disk");
	int64_t p1 = q_int(h, "SELECT truth_point FROM refpoint");
	host_close(h);
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			struct host *hc;
			if (host_open(path_in("conc"), HOST_OPEN_NOSYNC, &hc))
				_exit(2);
			struct wl_params p;
			wl_params_init(&p, WL_RANDOM, 1, 8 * MIB, 100 + (uint64_t)i);
			p.io_max = 256 * 1024;
			int r = host_vm_write(hc, vm, -1, &p, NULL);
			host_close(hc);
			_exit(r ? 1 : 0);
		}
	}
	for (int i = 0; i < 4; i++) {
		int st;
		assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(host_open(path_in("conc"), HOST_OPEN_NOSYNC, &h), 0);
	int64_t rp2;
	assert_int_equal(host_refpoint_create(h, vm, 2, &rp2), 0);
	int64_t p2 = q_int(h, "SELECT max(truth_point) FROM refpoint");
	uint64_t nb = 64 * MIB / 65536;
	uint8_t *got = malloc(nb), *want = calloc(1, nb);
	uint32_t w32;
	assert_int_equal(rct_blocks(h, 1, 0, id, 64 * MIB, 65536, got, &w32), 0);
	struct truthset ts = {want};
	assert_int_equal(truth_changed_between(host_db(h), 1, p1, p2, truth_cb, &ts), 0);
	assert_memory_equal(got, want, nb);
	/* a dynamic 64 MiB disk holds at most 64 MiB of blocks plus its metadata */
	struct stat sb;
	assert_int_equal(stat(path_in("conc/c/Virtual Hard Disks/c.vhdx"), &sb), 0);
	assert_true((uint64_t)sb.st_size <= 64 * MIB + 8 * MIB);
	assert_int_equal(vhdx_check(path_in("conc/c/Virtual Hard Disks/c.vhdx"), NULL, NULL), 0);
	free(got);
	free(want);
	free(id);
	host_close(h);
}

/* A checkpoint cut by a crash before its commit leaves an AVHDX nothing references, named with the
 * GUID the rolled-back transaction drew; the next checkpoint draws the same name and must work. */
static void test_orphan_checkpoint_file(void **s)
{
	(void)s;
	struct host *h = new_host("orphan", 22, 0);
	struct host_disk_spec d;
	host_disk_spec_parse("16MiB", &d);
	int64_t vm, sn;
	assert_int_equal(host_vm_create(h, "o", &d, 1, &vm), 0);
	assert_int_equal(host_begin(h), 0);
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &sn), 0);
	host_rollback(h); /* as if the process died before COMMIT: the file stays */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "ls '%s' | grep -c avhdx", path_in("orphan/o/Virtual Hard Disks"));
	FILE *pp = popen(cmd, "r");
	int n = 0;
	assert_int_equal(fscanf(pp, "%d", &n), 1);
	pclose(pp);
	assert_int_equal(n, 1);
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &sn), 0);
	assert_int_equal(q_int(h, "SELECT count(*) FROM snapshot"), 1);
	host_close(h);
}

/* A lost or damaged sidecar is a tracking reset: the VM keeps working, old ids fail. */
static void test_sidecar_lost(void **s)
{
	(void)s;
	struct host *h = new_host("lost", 23, 0);
	struct host_disk_spec d;
	host_disk_spec_parse("16MiB", &d);
	int64_t vm, rp, sn;
	assert_int_equal(host_vm_create(h, "l", &d, 1, &vm), 0);
	assert_int_equal(host_refpoint_create(h, vm, 2, &rp), 0);
	char *id = q_text(h, "SELECT rct_id FROM refpoint_disk");
	assert_int_equal(unlink(path_in("lost/l/Virtual Hard Disks/l.vhdx.hvrct")), 0);
	struct model m = {calloc(1, 16 * MIB), 16 * MIB, 512};
	write_both(h, vm, &m, 1, WL_RANDOM, 1 * MIB, 1);
	assert_int_equal(host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &sn), 0);
	uint8_t got[256];
	uint32_t w32 = 0;
	assert_int_not_equal(rct_blocks(h, 1, 0, id, 16 * MIB, 65536, got, &w32), 0);
	assert_int_equal(w32, 0xC03A0030u);
	assert_file_equals_model(h, "l/Virtual Hard Disks/l.vhdx", &m);
	free(m.b);
	free(id);
	host_close(h);
}

static void test_identities_across_seeds(void **s)
{
	(void)s;
	struct host_disk_spec d;
	host_disk_spec_parse("8MiB", &d);
	char *g[4];
	for (int seed = 0; seed < 2; seed++) {
		char name[16];
		snprintf(name, sizeof name, "seed%d", seed);
		struct host *h = new_host(name, (uint64_t)seed, 0);
		assert_int_equal(host_vm_create(h, "a", &d, 1, NULL), 0);
		assert_int_equal(host_vm_create(h, "b", &d, 1, NULL), 0);
		assert_int_equal(host_vm_create(h, "host.db-journal", &d, 1, NULL), HV_EINVAL);
		g[2 * seed] = q_text(h, "SELECT guid FROM vm WHERE name='a'");
		g[2 * seed + 1] = q_text(h, "SELECT guid FROM vm WHERE name='b'");
		host_close(h);
	}
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < i; k++)
			assert_string_not_equal(g[i], g[k]);
	for (int i = 0; i < 4; i++)
		free(g[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_errors),
		cmocka_unit_test(test_vm_layout),
		cmocka_unit_test(test_write_checkpoint_merge),
		cmocka_unit_test(test_rct_faults),
		cmocka_unit_test(test_merge_disabled_and_recovery),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_rct_property),
		cmocka_unit_test(test_concurrent_writers),
		cmocka_unit_test(test_orphan_checkpoint_file),
		cmocka_unit_test(test_sidecar_lost),
		cmocka_unit_test(test_identities_across_seeds),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
