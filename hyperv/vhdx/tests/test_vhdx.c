/*
 * test_vhdx — behaviour of the VHDX library that a user would notice: bytes read equal bytes
 * written (checked against an in-memory model of the writes, not against the library itself),
 * differencing chains resolve per sector, a modified parent is detected, every cut of the write
 * sequence leaves a file that opens to the old or the new content, a pending log is replayed in
 * memory without touching a read-only file, files are byte-identical for the same seed, the
 * allocation map names exactly the written ranges, and bad requests fail with a clear message.
 * Independent oracles (qemu-img, libvhdi) live in conformance/vhdx.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../vhdx.h"

#define MIB (1024u * 1024u)

static char tmpdir[256];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/hvsim-test-vhdx-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	(void)state;
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(tmpdir);
	return 0;
}

static const char *path(const char *name)
{
	static char buf[8][512];
	static int k;
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rnd(&seed) >> 56);
}

static void make(const char *p, enum vhdx_type t, uint64_t size, uint32_t bs, uint32_t lss,
		 const char *parent, uint64_t seed)
{
	struct vhdx_create_opts o = {.virtual_size = size, .type = t, .block_size = bs,
				     .logical_sector = lss, .parent_path = parent, .seed = seed};
	int rc = vhdx_create(p, &o);
	if (rc)
		fail_msg("create %s: %s", p, hv_errmsg());
}

static struct vhdx_file *op(const char *p, unsigned flags)
{
	struct vhdx_file *f = NULL;
	if (vhdx_open(p, flags, &f))
		fail_msg("open %s: %s", p, hv_errmsg());
	return f;
}

static void wr(struct vhdx_file *f, uint8_t *model, uint64_t off, size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len);
	fill(b, len, seed);
	if (vhdx_write(f, b, off, len))
		fail_msg("write [%llu,+%zu): %s", (unsigned long long)off, len, hv_errmsg());
	if (model)
		memcpy(model + off, b, len);
	free(b);
}

static void expect_content(struct vhdx_file *f, const uint8_t *model, uint64_t size, const char *what)
{
	uint8_t *b = malloc(size);
	if (vhdx_read(f, b, 0, size))
		fail_msg("%s: read: %s", what, hv_errmsg());
	for (uint64_t i = 0; i < size; i++)
		if (b[i] != model[i]) {
			uint8_t have = b[i];
			free(b);
			fail_msg("%s: byte %llu is 0x%02x, expected 0x%02x", what, (unsigned long long)i, have,
				 model[i]);
		}
	free(b);
}

static void copy_file(const char *from, const char *to)
{
	int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(a >= 0 && b >= 0);
	static uint8_t buf[1 << 20];
	ssize_t n;
	off_t off = 0;
	/* keep holes: copy only non-zero 4 KiB pieces, then size the file */
	while ((n = read(a, buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < n; i += 4096) {
			ssize_t k = n - i < 4096 ? n - i : 4096;
			static const uint8_t z[4096];
			if (memcmp(buf + i, z, (size_t)k))
				assert_int_equal(pwrite(b, buf + i, (size_t)k, off + i), k);
		}
		off += n;
	}
	assert_int_equal(ftruncate(b, off), 0);
	close(a);
	close(b);
}

static uint64_t file_hash(const char *p)
{
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	static uint8_t buf[1 << 20];
	uint64_t h = 0xcbf29ce484222325ull;
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ull;
	close(fd);
	return h;
}

/* ---- geometry and round trips ------------------------------------------------------------*/

static void test_create_reports_requested_geometry(void **state)
{
	(void)state;
	struct {
		enum vhdx_type t;
		uint64_t size;
		uint32_t bs, lss;
	} cases[] = {
		{VHDX_TYPE_DYNAMIC, 100 * MIB + 512, 1 * MIB, 512},
		{VHDX_TYPE_DYNAMIC, 1ull << 30, 0, 4096},
		{VHDX_TYPE_FIXED, 48 * MIB, 2 * MIB, 512},
		{VHDX_TYPE_DYNAMIC, 64ull << 40, 256 * MIB, 4096},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char name[32];
		snprintf(name, sizeof name, "geo%zu.vhdx", i);
		make(path(name), cases[i].t, cases[i].size, cases[i].bs, cases[i].lss, NULL, i);
		struct vhdx_file *f = op(path(name), VHDX_OPEN_RDONLY);
		const struct vhdx_info *in = vhdx_get_info(f);
		assert_int_equal(in->type, cases[i].t);
		assert_int_equal(in->virtual_size, cases[i].size);
		assert_int_equal(in->block_size, cases[i].bs ? cases[i].bs : 32 * MIB);
		assert_int_equal(in->logical_sector, cases[i].lss);
		assert_int_equal(in->physical_sector, 4096);
		assert_int_equal(in->blocks_present, cases[i].t == VHDX_TYPE_FIXED ? cases[i].size / cases[i].bs : 0);
		assert_true(hv_guid_is_zero(&in->log_guid));
		vhdx_close(f);
	}
}

static void roundtrip(enum vhdx_type t, uint64_t size, uint32_t bs, uint32_t lss, uint64_t seed)
{
	const char *p = path("rt.vhdx");
	unlink(p);
	make(p, t, size, bs, lss, NULL, seed);
	uint8_t *model = calloc(1, size);
	struct vhdx_file *f = op(p, VHDX_OPEN_RDWR);
	uint64_t s = seed;
	for (int i = 0; i < 60; i++) {
		uint64_t off = rnd(&s) % size;
		size_t len = (size_t)(rnd(&s) % (3 * bs / 2)) + 1;
		if (off + len > size)
			len = (size_t)(size - off);
		wr(f, model, off, len, rnd(&s));
	}
	wr(f, model, size - 1, 1, 99); /* the very last byte */
	expect_content(f, model, size, "same session");
	assert_int_equal(vhdx_close(f), 0);
	f = op(p, VHDX_OPEN_RDONLY);
	expect_content(f, model, size, "after reopen");
	assert_true(hv_guid_is_zero(&vhdx_get_info(f)->log_guid));
	vhdx_close(f);
	assert_int_equal(vhdx_check(p, NULL, NULL), 0);
	free(model);
}

static void test_roundtrip_dynamic_512(void **s) { (void)s; roundtrip(VHDX_TYPE_DYNAMIC, 21 * MIB + 512, MIB, 512, 1); }
static void test_roundtrip_dynamic_4096(void **s) { (void)s; roundtrip(VHDX_TYPE_DYNAMIC, 13 * MIB + 4096, 2 * MIB, 4096, 2); }
static void test_roundtrip_fixed(void **s) { (void)s; roundtrip(VHDX_TYPE_FIXED, 9 * MIB, MIB, 512, 3); }

/* Data past the first chunk: BAT indices skip a sector-bitmap entry every CR payload entries. */
static void test_sparse_beyond_first_chunk(void **state)
{
	(void)state;
	const char *p = path("big.vhdx");
	uint64_t size = 6ull << 30;
	make(p, VHDX_TYPE_DYNAMIC, size, MIB, 512, NULL, 5);
	struct vhdx_file *f = op(p, VHDX_OPEN_RDWR);
	uint64_t offs[] = {(4ull << 30) - 700, (4ull << 30) + 8192, (5ull << 30) + 12345, size - 4096};
	uint8_t w[4096], r[4096];
	for (int i = 0; i < 4; i++) {
		fill(w, sizeof w, 100 + i);
		assert_int_equal(vhdx_write(f, w, offs[i], sizeof w), 0);
	}
	assert_int_equal(vhdx_close(f), 0);
	f = op(p, VHDX_OPEN_RDONLY);
	for (int i = 0; i < 4; i++) {
		fill(w, sizeof w, 100 + i);
		assert_int_equal(vhdx_read(f, r, offs[i], sizeof r), 0);
		assert_memory_equal(r, w, sizeof w);
	}
	/* block 4096 (first of chunk 1) sits at BAT index 4097, after chunk 0's bitmap entry */
	unsigned st;
	uint64_t fo;
	assert_int_equal(vhdx_block_state(f, 4096, &st, &fo), 0);
	assert_int_equal(st, VHDX_BLOCK_FULLY_PRESENT);
	assert_int_equal(vhdx_block_state(f, 4095, &st, &fo), 0);
	assert_int_equal(st, VHDX_BLOCK_FULLY_PRESENT);
	assert_int_equal(vhdx_block_state(f, 4097, &st, &fo), 0);
	assert_int_equal(st, VHDX_BLOCK_NOT_PRESENT);
	vhdx_close(f);
}

/* ---- differencing chains -----------------------------------------------------------------*/

struct collected {
	uint64_t off[64], len[64];
	int kind[64];
	int n;
};

static int collect(void *ctx, uint64_t off, uint64_t len, enum vhdx_map_kind kind)
{
	struct collected *c = ctx;
	if (c->n < 64) {
		c->off[c->n] = off;
		c->len[c->n] = len;
		c->kind[c->n] = kind;
	}
	c->n++;
	return 0;
}

static void test_chain_depth3_per_sector(void **state)
{
	(void)state;
	uint64_t size = 40 * MIB;
	uint8_t *model = calloc(1, size);
	const char *b = path("base.vhdx"), *c1 = path("c1.avhdx"), *c2 = path("c2.avhdx");
	make(b, VHDX_TYPE_DYNAMIC, size, 2 * MIB, 512, NULL, 10);
	struct vhdx_file *f = op(b, VHDX_OPEN_RDWR);
	wr(f, model, 0, (size_t)size, 11);
	vhdx_close(f);
	make(c1, VHDX_TYPE_DIFFERENCING, 0, MIB, 0, b, 12);
	f = op(c1, VHDX_OPEN_RDWR);
	wr(f, model, 1000, 100, 13);             /* sub-sector, unaligned: RMW of sectors 1..2 */
	wr(f, model, 3 * MIB, MIB, 14);          /* whole block: FULLY_PRESENT */
	wr(f, model, 5 * MIB - 512, 1024, 15);   /* spans two blocks */
	wr(f, model, 7 * MIB + 4096, 8192, 16);
	expect_content(f, model, size, "child, same session");
	vhdx_close(f);
	make(c2, VHDX_TYPE_DIFFERENCING, 0, 0, 0, c1, 17);
	f = op(c2, VHDX_OPEN_RDWR);
	wr(f, model, 1050, 10, 18);              /* inside the child's partial sector */
	wr(f, model, 7 * MIB, 3 * MIB, 19);
	wr(f, model, size - 1, 1, 20);
	vhdx_close(f);
	f = op(c2, VHDX_OPEN_RDONLY);
	assert_int_equal(vhdx_get_info(f)->type, VHDX_TYPE_DIFFERENCING);
	assert_non_null(vhdx_parent(f));
	assert_non_null(vhdx_parent(vhdx_parent(f)));
	expect_content(f, model, size, "grandchild after reopen");
	vhdx_close(f);
	/* the child's map: exactly the sectors it holds */
	f = op(c1, VHDX_OPEN_RDONLY | VHDX_OPEN_NO_PARENT);
	struct collected got = {0};
	assert_int_equal(vhdx_map(f, collect, &got), 0);
	vhdx_close(f);
	uint64_t want_off[] = {512, 3 * MIB, 5 * MIB - 512, 7 * MIB + 4096};
	uint64_t want_len[] = {1024, MIB, 1024, 8192};
	assert_int_equal(got.n, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(got.off[i], want_off[i]);
		assert_int_equal(got.len[i], want_len[i]);
		assert_int_equal(got.kind[i], VHDX_MAP_DATA);
	}
	assert_int_equal(vhdx_check(c2, NULL, NULL), 0);
	free(model);
}

static void test_modified_parent_is_detected(void **state)
{
	(void)state;
	const char *b = path("mb.vhdx"), *c = path("mc.avhdx");
	make(b, VHDX_TYPE_DYNAMIC, 8 * MIB, MIB, 512, NULL, 30);
	make(c, VHDX_TYPE_DIFFERENCING, 0, 0, 0, b, 31);
	struct vhdx_file *f = op(c, VHDX_OPEN_RDONLY);
	vhdx_close(f);
	f = op(b, VHDX_OPEN_RDWR);
	wr(f, NULL, 0, 512, 32);
	vhdx_close(f);
	assert_int_equal(vhdx_open(c, VHDX_OPEN_RDONLY, &f), HV_EMISMATCH);
	assert_non_null(strstr(hv_errmsg(), "parent linkage mismatch"));
	assert_non_null(strstr(hv_errmsg(), c));
	/* the child itself is still readable on its own */
	f = op(c, VHDX_OPEN_RDONLY | VHDX_OPEN_NO_PARENT);
	vhdx_close(f);
}

/* parent_linkage compares as a GUID: rewrite it in upper case inside the file and reopen */
static void test_linkage_compares_as_guid(void **state)
{
	(void)state;
	const char *b = path("lb.vhdx"), *c = path("lc.avhdx");
	make(b, VHDX_TYPE_DYNAMIC, 8 * MIB, MIB, 512, NULL, 40);
	make(c, VHDX_TYPE_DIFFERENCING, 0, 0, 0, b, 41);
	int fd = open(c, O_RDWR);
	assert_true(fd >= 0);
	static uint8_t meta[MIB];
	assert_int_equal(pread(fd, meta, sizeof meta, 2 * MIB), (ssize_t)sizeof meta);
	/* find the UTF-16 value "{xxxxxxxx-" that follows the key parent_linkage, upper-case it */
	int changed = 0;
	for (size_t i = 0; i + 76 < sizeof meta; i += 2)
		if (meta[i] == '{' && meta[i + 1] == 0 && meta[i + 18] == '-' && meta[i + 74] == '}') {
			for (size_t k = i; k < i + 76; k += 2)
				if (meta[k] >= 'a' && meta[k] <= 'f') {
					meta[k] = (uint8_t)(meta[k] - 'a' + 'A');
					changed++;
				}
			break;
		}
	assert_true(changed > 0);
	assert_int_equal(pwrite(fd, meta, sizeof meta, 2 * MIB), (ssize_t)sizeof meta);
	close(fd);
	struct vhdx_file *f = op(c, VHDX_OPEN_RDONLY);
	const struct vhdx_info *in = vhdx_get_info(f);
	int seen = 0;
	for (uint32_t i = 0; i < in->locator_count; i++)
		if (!strcmp(in->locator[i].key, "parent_linkage")) {
			seen = 1;
			assert_non_null(strpbrk(in->locator[i].value, "ABCDEF"));
		}
	assert_true(seen);
	vhdx_close(f);
}

/* ---- crash safety ------------------------------------------------------------------------*/

/* The same writes, cut after every possible number of steps: the file must open (read-only and
 * writable), pass check, and read as the old or the new content — nothing else. Every write
 * lands in a block this file does not have yet, so the outcome hinges on the journaled metadata;
 * in-place writes to existing blocks are not atomic on a real disk either and are not tested
 * for atomicity here. */
static void crash_every_step(bool diff)
{
	uint64_t size = 16 * MIB;
	const char *base = path("cb.vhdx"), *orig = path("corig.vhdx"), *work = path("cwork.vhdx");
	unlink(base);
	unlink(orig);
	uint8_t *old = calloc(1, size), *nw = calloc(1, size), *got = malloc(size);
	make(base, VHDX_TYPE_DYNAMIC, size, MIB, 512, NULL, 50);
	struct vhdx_file *f = op(base, VHDX_OPEN_RDWR);
	wr(f, old, 0, 3 * MIB, 51);
	vhdx_close(f);
	if (diff)
		make(orig, VHDX_TYPE_DIFFERENCING, 0, MIB, 0, base, 52);
	else
		copy_file(base, orig);
	memcpy(nw, old, size);
	int completed = 0;
	long steps;
	for (steps = 0; steps < 200 && !completed; steps++) {
		unlink(work);
		copy_file(orig, work);
		struct vhdx_open_opts o = {.flags = VHDX_OPEN_RDWR, .has_seed = true, .seed = 7,
					   .crash_after_steps = steps};
		int rc = vhdx_open_ex(work, &o, &f);
		assert_int_equal(rc, 0);
		uint8_t *tmp = steps == 0 ? nw : NULL;
		/* new block, sub-sector write into a parent-backed block, write spanning blocks */
		uint8_t buf[3 * MIB];
		fill(buf, sizeof buf, 60);
		rc = vhdx_write(f, buf, 5 * MIB + 100, 700);
		uint64_t second = diff ? 1 * MIB + 300 : 10 * MIB + 300;
		if (!rc)
			rc = vhdx_write(f, buf + 1000, second, 5000);
		if (!rc)
			rc = vhdx_write(f, buf + 9000, 8 * MIB - 4096, 2 * MIB);
		if (tmp) {
			memcpy(nw + 5 * MIB + 100, buf, 700);
			memcpy(nw + second, buf + 1000, 5000);
			memcpy(nw + 8 * MIB - 4096, buf + 9000, 2 * MIB);
		}
		int rc2 = vhdx_close(f);
		completed = rc == 0 && rc2 == 0;
		if (!completed)
			assert_true(rc == HV_ECRASHED || rc2 == HV_ECRASHED);
		/* read-only view (replays a pending log in memory) */
		uint64_t before = file_hash(work);
		f = op(work, VHDX_OPEN_RDONLY);
		assert_int_equal(vhdx_read(f, got, 0, size), 0);
		vhdx_close(f);
		assert_int_equal(file_hash(work), before); /* a read-only open changes nothing */
		bool is_old = !memcmp(got, old, size), is_new = !memcmp(got, nw, size);
		if (!is_old && !is_new)
			fail_msg("cut after %ld steps: content is neither old nor new", steps);
		if (completed)
			assert_true(is_new);
		if (vhdx_check(work, NULL, NULL) != 0)
			fail_msg("cut after %ld steps: check finds problems", steps);
		/* writable open replays in place, to the same content */
		f = op(work, VHDX_OPEN_RDWR);
		uint8_t *again = malloc(size);
		assert_int_equal(vhdx_read(f, again, 0, size), 0);
		assert_true(hv_guid_is_zero(&vhdx_get_info(f)->log_guid));
		vhdx_close(f);
		assert_memory_equal(again, got, size);
		free(again);
	}
	assert_true(completed);
	assert_true(steps > 8); /* the sequence really had steps to cut */
	free(old);
	free(nw);
	free(got);
}

static void test_crash_at_every_step_dynamic(void **s) { (void)s; crash_every_step(false); }
static void test_crash_at_every_step_differencing(void **s) { (void)s; crash_every_step(true); }

/* One flush touching more metadata sectors than one descriptor sector can list: the commit is
 * split into entries of at most 126 descriptors (QEMU 7.2 cannot replay longer entries), and the
 * content is still right. */
static void test_large_commit_split_into_short_log_entries(void **state)
{
	(void)state;
	const char *b = path("lb2.vhdx"), *c = path("lc2.avhdx");
	uint64_t size = 2200ull * MIB;
	make(b, VHDX_TYPE_DYNAMIC, size, 32 * MIB, 512, NULL, 70);
	make(c, VHDX_TYPE_DIFFERENCING, 0, 2 * MIB, 0, b, 71);
	struct vhdx_file *f = op(c, VHDX_OPEN_RDWR | VHDX_OPEN_NOSYNC);
	uint8_t w[100];
	/* one sub-sector write per 16 MiB: each dirties its own 4 KiB bitmap sector */
	for (int i = 0; i < 130; i++) {
		memset(w, i + 1, sizeof w);
		assert_int_equal(vhdx_write(f, w, (uint64_t)i * 16 * MIB + 700, sizeof w), 0);
	}
	assert_int_equal(vhdx_close(f), 0);
	int fd = open(c, O_RDONLY);
	static uint8_t log[MIB];
	assert_int_equal(pread(fd, log, sizeof log, MIB), (ssize_t)sizeof log);
	close(fd);
	int entries = 0;
	uint32_t total = 0;
	for (size_t o = 0; o < sizeof log; o += 4096)
		if (!memcmp(log + o, "loge", 4)) {
			uint32_t nd = (uint32_t)log[o + 24] | (uint32_t)log[o + 25] << 8;
			assert_true(nd <= 126);
			total += nd;
			entries++;
		}
	assert_true(entries >= 2);
	assert_true(total >= 130);
	f = op(c, VHDX_OPEN_RDONLY);
	uint8_t r[100];
	for (int i = 0; i < 130; i++) {
		memset(w, i + 1, sizeof w);
		assert_int_equal(vhdx_read(f, r, (uint64_t)i * 16 * MIB + 700, sizeof r), 0);
		assert_memory_equal(r, w, sizeof w);
	}
	vhdx_close(f);
}

/* Two writable sessions with the same seed still draw new GUIDs: a parent written again after a
 * child was taken must be detected, whatever seed the writer used. */
static void test_same_seed_sessions_still_change_data_write_guid(void **state)
{
	(void)state;
	const char *b = path("ss.vhdx"), *c = path("ssc.avhdx");
	make(b, VHDX_TYPE_DYNAMIC, 8 * MIB, MIB, 512, NULL, 80);
	struct vhdx_open_opts o = {.flags = VHDX_OPEN_RDWR, .has_seed = true, .seed = 7, .crash_after_steps = -1};
	struct vhdx_file *f;
	assert_int_equal(vhdx_open_ex(b, &o, &f), 0);
	wr(f, NULL, 0, 512, 81);
	struct hv_guid first = vhdx_get_info(f)->data_write_guid;
	vhdx_close(f);
	make(c, VHDX_TYPE_DIFFERENCING, 0, 0, 0, b, 82);
	assert_int_equal(vhdx_open_ex(b, &o, &f), 0);
	wr(f, NULL, 0, 512, 83);
	assert_false(hv_guid_eq(&first, &vhdx_get_info(f)->data_write_guid));
	vhdx_close(f);
	assert_int_equal(vhdx_open(c, VHDX_OPEN_RDONLY, &f), HV_EMISMATCH);
}

/* A last block cut short by EOF is tolerated on open; a new block must go after its full extent,
 * not inside it. */
static void test_append_after_short_last_block(void **state)
{
	(void)state;
	const char *p = path("short.vhdx");
	uint64_t size = 33 * MIB;
	make(p, VHDX_TYPE_DYNAMIC, size, 32 * MIB, 512, NULL, 90);
	uint8_t *model = calloc(1, size);
	struct vhdx_file *f = op(p, VHDX_OPEN_RDWR);
	wr(f, model, 32 * MIB, MIB, 91);
	vhdx_close(f);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(truncate(p, st.st_size - 31 * MIB), 0);
	f = op(p, VHDX_OPEN_RDWR);
	wr(f, model, 0, 4096, 92);
	vhdx_close(f);
	assert_int_equal(vhdx_check(p, NULL, NULL), 0);
	f = op(p, VHDX_OPEN_RDONLY);
	expect_content(f, model, size, "after append");
	vhdx_close(f);
	free(model);
}

/* ---- determinism -------------------------------------------------------------------------*/

static void build_det(const char *p, const char *child, uint64_t seed)
{
	unlink(p);
	unlink(child);
	make(p, VHDX_TYPE_DYNAMIC, 32 * MIB, MIB, 512, NULL, seed);
	struct vhdx_open_opts o = {.flags = VHDX_OPEN_RDWR, .has_seed = true, .seed = seed, .crash_after_steps = -1};
	struct vhdx_file *f;
	assert_int_equal(vhdx_open_ex(p, &o, &f), 0);
	wr(f, NULL, 12345, 3 * MIB, 1);
	vhdx_close(f);
	make(child, VHDX_TYPE_DIFFERENCING, 0, 0, 0, p, seed);
	assert_int_equal(vhdx_open_ex(child, &o, &f), 0);
	wr(f, NULL, 777, 3000, 2);
	vhdx_close(f);
}

static void test_same_seed_same_bytes(void **state)
{
	(void)state;
	/* same directory, so the relative parent path is the same too */
	build_det(path("d1.vhdx"), path("d1c.avhdx"), 9);
	uint64_t h1 = file_hash(path("d1.vhdx")), c1 = file_hash(path("d1c.avhdx"));
	build_det(path("d1.vhdx"), path("d1c.avhdx"), 9);
	assert_int_equal(file_hash(path("d1.vhdx")), h1);
	assert_int_equal(file_hash(path("d1c.avhdx")), c1);
	build_det(path("d1.vhdx"), path("d1c.avhdx"), 10);
	assert_int_not_equal(file_hash(path("d1.vhdx")), h1);
}

/* ---- errors ------------------------------------------------------------------------------*/

static void test_bad_requests_fail_clearly(void **state)
{
	(void)state;
	struct vhdx_create_opts o = {.virtual_size = 8 * MIB, .type = VHDX_TYPE_DYNAMIC, .block_size = 3 * MIB};
	assert_int_equal(vhdx_create(path("e1.vhdx"), &o), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "block size"));
	o.block_size = 0;
	o.virtual_size = 1000;
	assert_int_equal(vhdx_create(path("e1.vhdx"), &o), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "multiple"));
	o.virtual_size = (64ull << 40) + 4096;
	assert_int_equal(vhdx_create(path("e1.vhdx"), &o), HV_EINVAL);
	assert_int_equal(access(path("e1.vhdx"), F_OK), -1);
	o.virtual_size = 8 * MIB;
	assert_int_equal(vhdx_create(path("e1.vhdx"), &o), 0);
	assert_int_equal(vhdx_create(path("e1.vhdx"), &o), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "already exists"));
	struct vhdx_file *f = op(path("e1.vhdx"), VHDX_OPEN_RDONLY);
	uint8_t b[16];
	assert_int_equal(vhdx_read(f, b, 8 * MIB - 8, 16), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "outside the virtual disk"));
	assert_int_equal(vhdx_write(f, b, 0, 16), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "read-only"));
	vhdx_close(f);
	assert_int_equal(vhdx_open(path("missing.vhdx"), 0, &f), HV_ENOTFOUND);
	assert_non_null(strstr(hv_errmsg(), "missing.vhdx"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_reports_requested_geometry),
		cmocka_unit_test(test_roundtrip_dynamic_512),
		cmocka_unit_test(test_roundtrip_dynamic_4096),
		cmocka_unit_test(test_roundtrip_fixed),
		cmocka_unit_test(test_sparse_beyond_first_chunk),
		cmocka_unit_test(test_chain_depth3_per_sector),
		cmocka_unit_test(test_modified_parent_is_detected),
		cmocka_unit_test(test_linkage_compares_as_guid),
		cmocka_unit_test(test_crash_at_every_step_dynamic),
		cmocka_unit_test(test_crash_at_every_step_differencing),
		cmocka_unit_test(test_large_commit_split_into_short_log_entries),
		cmocka_unit_test(test_same_seed_sessions_still_change_data_write_guid),
		cmocka_unit_test(test_append_after_short_last_block),
		cmocka_unit_test(test_same_seed_same_bytes),
		cmocka_unit_test(test_bad_requests_fail_clearly),
	};
	return cmocka_run_group_tests_name("vhdx", tests, setup_dir, teardown_dir);
}
