/*
 * test_rct — change tracking as a backup engine would notice it: ids round-trip and malformed
 * ids fail with the syntax code; a query since any older id names exactly the blocks written
 * since (checked against a plain per-epoch, per-block model kept here, never against the
 * library); after a host crash it names a superset that never misses a write; paging resumes
 * without gaps or repeats; resets, resizes and disabling make old ids fail with the right
 * Win32 code; the sidecar reopens to the same answers, is byte-identical for the same
 * operations, is rejected when any byte is damaged, and a save cut by a crash leaves the old
 * state. A hand-built sidecar (from the layout documented in rct_file.c) checks the format
 * independently of the encoder.
 */
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
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

#include "../rct.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)
#define TIB (1024ull * GIB)
#define LIVE RCT_UPTO_LIVE

static char tmpdir[256];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/hvsim-test-rct-XXXXXX");
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

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

static uint8_t *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)len + 1);
	assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return b;
}

static void spit(const char *p, const uint8_t *b, size_t n)
{
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

static struct hv_guid guid_n(uint64_t n)
{
	struct hv_rng r = hv_rng_stream(n, "test-rct-guid");
	return hv_rng_guid(&r);
}

static struct rct *mk(const char *name, uint64_t size, uint32_t g, uint32_t c, uint64_t gseed)
{
	struct rct *r = NULL;
	struct hv_guid gd = guid_n(gseed);
	unlink(path(name));
	if (rct_create(path(name), size, g, c, &gd, RCT_NOSYNC, &r))
		fail_msg("create %s: %s", name, hv_errmsg());
	return r;
}

static void mark(struct rct *r, uint64_t off, uint64_t len)
{
	if (rct_mark(r, off, len))
		fail_msg("mark [%llu, +%llu): %s", (unsigned long long)off,
			 (unsigned long long)len, hv_errmsg());
}

static void seal(struct rct *r, char *id)
{
	uint32_t w = 1;
	if (rct_seal(r, id, &w))
		fail_msg("seal: %s", hv_errmsg());
	assert_int_equal(w, 0);
}

static void id_of(struct rct *r, uint32_t seq, char *out)
{
	struct hv_guid g = rct_guid(r);
	rct_id_format(&g, seq, out);
}

/* ---- the model: which blocks each epoch wrote ------------------------------------------------*/

struct model {
	uint64_t size, nblocks;
	uint32_t g, c;
	uint32_t seq;    /* sealed */
	uint8_t **w;     /* w[e][b] for e = 1..seq+1 (seq+1 = open) */
	bool *coarse;    /* coarse[e] */
	size_t cap;
	bool enabled;
};

static void model_ensure(struct model *m, uint32_t e)
{
	if (e < m->cap)
		return;
	size_t cap = m->cap ? m->cap : 8;
	while (cap <= e)
		cap *= 2;
	m->w = realloc(m->w, cap * sizeof *m->w);
	m->coarse = realloc(m->coarse, cap * sizeof *m->coarse);
	for (size_t i = m->cap; i < cap; i++) {
		m->w[i] = NULL;
		m->coarse[i] = false;
	}
	m->cap = cap;
}

static uint8_t *model_epoch(struct model *m, uint32_t e)
{
	model_ensure(m, e);
	if (!m->w[e])
		m->w[e] = calloc(m->nblocks + 1, 1);
	return m->w[e];
}

static void model_drop(struct model *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->w[i]);
		m->w[i] = NULL;
		m->coarse[i] = false;
	}
	m->seq = 0;
}

static void model_init(struct model *m, uint64_t size, uint32_t g, uint32_t c)
{
	memset(m, 0, sizeof *m);
	m->size = size;
	m->g = g;
	m->c = c;
	m->nblocks = (size + g - 1) / g;
	m->enabled = true;
}

static void model_free(struct model *m)
{
	model_drop(m);
	free(m->w);
	free(m->coarse);
}

static void model_write(struct model *m, uint64_t off, uint64_t len)
{
	if (!m->enabled || !len)
		return;
	uint8_t *w = model_epoch(m, m->seq + 1);
	for (uint64_t b = off / m->g; b <= (off + len - 1) / m->g; b++)
		w[b] = 1;
}

/* Expected blocks of "since S upto U": exact per epoch, or C-rounded for a coarse epoch when
 * `rounding`. Caller frees. */
static uint8_t *model_expect(struct model *m, uint32_t since, uint64_t upto, bool rounding)
{
	uint8_t *x = calloc(m->nblocks + 1, 1);
	uint64_t top = upto == LIVE ? (uint64_t)m->seq + 1 : upto;
	uint64_t per = m->c / m->g;
	for (uint64_t e = (uint64_t)since + 1; e <= top; e++) {
		if (e >= m->cap || !m->w[e])
			continue;
		for (uint64_t b = 0; b < m->nblocks; b++) {
			if (!m->w[e][b])
				continue;
			if (rounding && m->coarse[e]) {
				uint64_t c0 = b / per * per;
				for (uint64_t k = c0; k < c0 + per && k < m->nblocks; k++)
					x[k] = 1;
			} else {
				x[b] = 1;
			}
		}
	}
	return x;
}

/* Expected ranges of a block set within [off, off+len). Returns count; *out caller-owned. */
static size_t expect_ranges(const struct model *m, const uint8_t *x, uint64_t off, uint64_t len,
			    struct rct_range **out)
{
	uint64_t end = off + len < m->size ? off + len : m->size;
	struct rct_range *v = malloc((m->nblocks + 1) * sizeof *v);
	size_t n = 0;
	for (uint64_t b = 0; off < end && b < m->nblocks; b++) {
		if (!x[b])
			continue;
		uint64_t lo = b * m->g, hi = (b + 1) * m->g;
		if (hi > m->size)
			hi = m->size;
		if (lo < off)
			lo = off;
		if (hi > end)
			hi = end;
		if (lo >= hi)
			continue;
		if (n && v[n - 1].offset + v[n - 1].length == lo)
			v[n - 1].length += hi - lo;
		else
			v[n++] = (struct rct_range){lo, hi - lo};
	}
	*out = v;
	return n;
}

/* ---- paged query with the contract checked on every call -------------------------------------*/

struct rvec {
	struct rct_range *v;
	size_t n, cap;
	size_t calls;
};

static void rvec_push(struct rvec *rv, struct rct_range x)
{
	if (rv->n == rv->cap) {
		rv->cap = rv->cap ? rv->cap * 2 : 64;
		rv->v = realloc(rv->v, rv->cap * sizeof *rv->v);
	}
	rv->v[rv->n++] = x;
}

/* Loops as the virtdisk.md A2.4 caller does and checks each page. Returns 0 or the error of the
 * first call (with *win32). */
static int query_all(const struct rct *r, const char *id, uint64_t upto, uint64_t off,
		     uint64_t len, size_t cap, struct rvec *out, uint32_t *win32)
{
	struct rct_range *buf = malloc((cap ? cap : 1) * sizeof *buf);
	uint64_t cur = off, end = off + len, size = rct_virtual_size(r), g = rct_granularity(r);
	uint64_t vend = end < size ? end : size;
	memset(out, 0, sizeof *out);
	do {
		size_t n = 12345;
		uint64_t processed = 77;
		uint32_t w = 99;
		int rc = rct_query(r, id, upto, cur, end - cur, buf, cap, &n, &processed, &w);
		out->calls++;
		if (win32)
			*win32 = w;
		if (rc) {
			assert_int_not_equal(w, 0);
			free(buf);
			return rc;
		}
		assert_int_equal(w, 0);
		assert_true(n <= cap);
		assert_true(processed <= end - cur);
		if (cur < end)
			assert_true(processed > 0); /* never spin */
		if (processed < end - cur) {
			/* partial page: the array is full and processed ends at the last range */
			assert_int_equal(n, cap);
			assert_int_equal(buf[n - 1].offset + buf[n - 1].length, cur + processed);
		}
		for (size_t i = 0; i < n; i++) {
			struct rct_range x = buf[i];
			assert_true(x.length > 0);
			assert_true(x.offset >= cur && x.offset + x.length <= vend);
			assert_true(x.offset == cur || x.offset % g == 0);
			assert_true(x.offset + x.length == vend || (x.offset + x.length) % g == 0);
			if (i)
				assert_true(buf[i - 1].offset + buf[i - 1].length < x.offset);
			if (out->n)
				assert_true(out->v[out->n - 1].offset + out->v[out->n - 1].length <
					    x.offset);
			rvec_push(out, x);
		}
		cur += processed;
	} while (cur < end);
	free(buf);
	return 0;
}

static void expect_same(const struct rct_range *a, size_t na, const struct rct_range *b,
			size_t nb, const char *what)
{
	size_t i;
	for (i = 0; i < na && i < nb; i++)
		if (a[i].offset != b[i].offset || a[i].length != b[i].length)
			break;
	if (i == na && i == nb)
		return;
	fail_msg("%s: range %zu differs: got [%llu, +%llu) of %zu, expected [%llu, +%llu) of %zu",
		 what, i, i < na ? (unsigned long long)a[i].offset : 0ull,
		 i < na ? (unsigned long long)a[i].length : 0ull, na,
		 i < nb ? (unsigned long long)b[i].offset : 0ull,
		 i < nb ? (unsigned long long)b[i].length : 0ull, nb);
}

/* Every byte of `inner` lies inside `outer`. */
static bool covered(const struct rct_range *inner, size_t ni, const struct rct_range *outer,
		    size_t no)
{
	size_t j = 0;
	for (size_t i = 0; i < ni; i++) {
		while (j < no && outer[j].offset + outer[j].length <= inner[i].offset)
			j++;
		if (j == no || outer[j].offset > inner[i].offset ||
		    outer[j].offset + outer[j].length < inner[i].offset + inner[i].length)
			return false;
	}
	return true;
}

/* Query vs model, exactly (with coarse rounding where the model says so). */
static void check_query(const struct rct *r, struct model *m, uint32_t since, uint64_t upto,
			uint64_t off, uint64_t len, size_t cap, bool crashes)
{
	char id[RCT_ID_STRLEN + 1];
	struct hv_guid g = rct_guid(r);
	struct rvec got;
	struct rct_range *exp, *plain;
	rct_id_format(&g, since, id);
	uint32_t w;
	if (query_all(r, id, upto, off, len, cap, &got, &w))
		fail_msg("query since %u upto %lld [%llu,+%llu): %s", since,
			 upto == LIVE ? -1ll : (long long)upto, (unsigned long long)off,
			 (unsigned long long)len, hv_errmsg());
	uint8_t *x = model_expect(m, since, upto, true);
	size_t ne = expect_ranges(m, x, off, len, &exp);
	expect_same(got.v, got.n, exp, ne, "query vs model");
	if (crashes) {
		/* never fewer changes than were written */
		uint8_t *p = model_expect(m, since, upto, false);
		size_t np = expect_ranges(m, p, off, len, &plain);
		assert_true(covered(plain, np, got.v, got.n));
		free(plain);
		free(p);
	}
	free(exp);
	free(x);
	free(got.v);
}

/* ---- ids -------------------------------------------------------------------------------------*/

static void test_id_known_answers(void **state)
{
	(void)state;
	const char *ex = "rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001";
	struct hv_guid g, g2;
	uint32_t seq = 0;
	char out[RCT_ID_STRLEN + 1];
	assert_int_equal(hv_guid_parse("{5bfde23b-ce75-4303-b54f-6c18394f105c}", 38, &g), 0);
	rct_id_format(&g, 1, out);
	assert_string_equal(out, ex);
	assert_int_equal(strlen(out), RCT_ID_STRLEN);
	assert_int_equal(rct_id_parse(ex, &g2, &seq), 0);
	assert_true(hv_guid_eq(&g, &g2));
	assert_int_equal(seq, 1);
	/* upper-case hex digits are accepted; the output is always lower case */
	const char *upper = "rctX:5BFDE23B:CE75:4303:B54F:6C18394F105C:0000ABCD";
	assert_int_equal(rct_id_parse(upper, &g2, &seq), 0);
	assert_true(hv_guid_eq(&g, &g2));
	assert_int_equal(seq, 0xabcd);
	rct_id_format(&g, 0xFFFFFFFFu, out);
	assert_string_equal(out, "rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:ffffffff");
	rct_id_format(&g, 0x1a2b3c, out);
	assert_string_equal(out, "rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:001a2b3c");
}

static void test_id_malformed_rejected_with_syntax_code(void **state)
{
	(void)state;
	static const char *bad[] = {
		"",
		"rctX:",
		"rctx:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001",
		"RCTX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001",
		"rctX:5bfde23b-ce75-4303-b54f-6c18394f105c:00000001",
		"rctX:{5bfde23b:ce75:4303:b54f:6c18394f105c}:00000001",
		"rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:0000001",
		"rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:000000001",
		"rctX:5bfde23b:ce75:4303:b54f:6c18394f105c-00000001",
		"rctX:5bfde23g:ce75:4303:b54f:6c18394f105c:00000001",
		"rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:0000000x",
		" rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001",
		"rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001 ",
		"rctX:5bfde23b:ce754:303:b54f:6c18394f105c:00000001",
		"rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:+0000001",
		"5bfde23b-ce75-4303-b54f-6c18394f105c",
	};
	struct rct *r = mk("syntax.rct", 10 * MIB, 0, 0, 1);
	struct hv_guid g;
	uint32_t seq, w = 0;
	struct rct_range rg[4];
	size_t n;
	uint64_t p;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(rct_id_parse(bad[i], &g, &seq), HV_EINVAL);
		assert_int_equal(rct_query(r, bad[i], LIVE, 0, MIB, rg, 4, &n, &p, &w), HV_EINVAL);
		assert_int_equal(w, RCT_WIN32_INVALID_CHANGE_TRACKING_ID);
		assert_non_null(strstr(hv_errmsg(), "not an RCT id"));
	}
	assert_int_equal(rct_query(r, NULL, LIVE, 0, MIB, rg, 4, &n, &p, &w), HV_EINVAL);
	assert_int_equal(w, RCT_WIN32_INVALID_CHANGE_TRACKING_ID);
	/* an id of the right shape for a disk that never had it is "unknown", not a syntax error */
	assert_int_equal(rct_query(r, "rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000000", LIVE,
				   0, MIB, rg, 4, &n, &p, &w),
			 HV_ENOTFOUND);
	assert_int_equal(w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
	rct_close(r);
}

/* ---- basic behaviour -------------------------------------------------------------------------*/

static void test_basic_hand_case(void **state)
{
	(void)state;
	/* 64 KiB blocks, a 1 MiB + 1000-byte disk: 17 blocks, the last one 1000 bytes */
	uint64_t size = MIB + 1000;
	struct rct *r = mk("basic.rct", size, 65536, 262144, 2);
	char id0[RCT_ID_STRLEN + 1], id1[RCT_ID_STRLEN + 1], id2[RCT_ID_STRLEN + 1];
	struct rct_range rg[16];
	size_t n;
	uint64_t p;
	uint32_t w;
	assert_int_equal(rct_seq(r), 0);
	assert_int_equal(rct_most_recent_id(r, LIVE, id0, &w), 0);
	assert_false(rct_newer_changes(r));

	mark(r, 100, 1);              /* block 0 */
	mark(r, 65536 * 3 - 1, 2);    /* blocks 2 and 3 (straddles) */
	mark(r, MIB + 10, 5);         /* block 16, the short last one */
	assert_true(rct_newer_changes(r));
	seal(r, id1);
	assert_int_equal(rct_seq(r), 1);
	assert_false(rct_newer_changes(r));
	mark(r, 65536 * 5, 65536 * 2); /* blocks 5, 6 exactly */
	mark(r, 65536 * 6 + 7, 1);     /* block 6 again */
	seal(r, id2);
	mark(r, 65536 * 4, 1); /* open epoch: block 4 */

	/* since 0, live: 0, 2..6 (coalesced), 16 clipped to the disk end */
	assert_int_equal(rct_query(r, id0, LIVE, 0, size, rg, 16, &n, &p, &w), 0);
	assert_int_equal(n, 3);
	assert_int_equal(p, size);
	assert_int_equal(rg[0].offset, 0);
	assert_int_equal(rg[0].length, 65536);
	assert_int_equal(rg[1].offset, 2 * 65536);
	assert_int_equal(rg[1].length, 5 * 65536);
	assert_int_equal(rg[2].offset, 16 * 65536);
	assert_int_equal(rg[2].length, 1000);
	/* since 0 up to seal 2 (a frozen checkpoint): block 4 is not in it */
	assert_int_equal(rct_query(r, id0, 2, 0, size, rg, 16, &n, &p, &w), 0);
	assert_int_equal(n, 4);
	assert_int_equal(rg[1].offset, 2 * 65536);
	assert_int_equal(rg[1].length, 2 * 65536);
	assert_int_equal(rg[2].offset, 5 * 65536);
	assert_int_equal(rg[2].length, 2 * 65536);
	/* since 1 up to 1: nothing */
	assert_int_equal(rct_query(r, id1, 1, 0, size, rg, 16, &n, &p, &w), 0);
	assert_int_equal(n, 0);
	assert_int_equal(p, size);
	/* since 1 live: 4..6 */
	assert_int_equal(rct_query(r, id1, LIVE, 0, size, rg, 16, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].offset, 4 * 65536);
	assert_int_equal(rg[0].length, 3 * 65536);
	/* window clipping: [5*64K + 100, +70000) */
	assert_int_equal(rct_query(r, id1, LIVE, 5 * 65536 + 100, 70000, rg, 16, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].offset, 5 * 65536 + 100);
	assert_int_equal(rg[0].length, 70000);
	assert_int_equal(p, 70000);
	/* a window reaching past the disk end: clipped at the size, processed = whole window */
	assert_int_equal(rct_query(r, id0, LIVE, MIB + 500, 10 * MIB, rg, 16, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].offset, MIB + 500);
	assert_int_equal(rg[0].length, 500);
	assert_int_equal(p, 10 * MIB);
	/* zero-length window */
	assert_int_equal(rct_query(r, id0, LIVE, 0, 0, rg, 0, &n, &p, &w), 0);
	assert_int_equal(n, 0);
	assert_int_equal(p, 0);
	/* most recent ids */
	char mr[RCT_ID_STRLEN + 1];
	assert_int_equal(rct_most_recent_id(r, LIVE, mr, &w), 0);
	assert_string_equal(mr, id2);
	assert_int_equal(rct_most_recent_id(r, 1, mr, &w), 0);
	assert_string_equal(mr, id1);
	assert_int_equal(rct_most_recent_id(r, 3, mr, &w), HV_ENOTFOUND);
	assert_int_equal(w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
	/* writes past the end are refused and change nothing */
	assert_int_equal(rct_mark(r, size - 1, 2), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "past the virtual size"));
	assert_int_equal(rct_mark(r, UINT64_MAX, 2), HV_EINVAL);
	assert_int_equal(rct_query(r, id2, LIVE, 0, size, rg, 16, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].offset, 4 * 65536);
	/* bad windows */
	assert_int_equal(rct_query(r, id0, LIVE, 1, UINT64_MAX, rg, 16, &n, &p, &w), HV_EINVAL);
	assert_int_equal(w, RCT_WIN32_INVALID_PARAMETER);
	assert_int_equal(rct_query(r, id0, LIVE, 0, size, rg, 0, &n, &p, &w), HV_EINVAL);
	assert_int_equal(w, RCT_WIN32_INVALID_PARAMETER);
	rct_close(r);
}

static void test_errors_name_id_and_cause(void **state)
{
	(void)state;
	struct rct *r = mk("errors.rct", 64 * MIB, 0, 0, 3);
	char id[8][RCT_ID_STRLEN + 1], fut[RCT_ID_STRLEN + 1];
	struct rct_range rg[4];
	size_t n;
	uint64_t p;
	uint32_t w;
	for (int i = 1; i <= 5; i++) {
		mark(r, (uint64_t)i * MIB, 1);
		seal(r, id[i]);
	}
	id_of(r, 7, fut);
	assert_int_equal(rct_query(r, fut, LIVE, 0, MIB, rg, 4, &n, &p, &w), HV_ENOTFOUND);
	assert_int_equal(w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
	char want[160];
	snprintf(want, sizeof want, "%s: sequence 7 is newer than the disk's most recent id 5",
		 fut);
	assert_string_equal(hv_errmsg(), want);
	/* since > upto */
	assert_int_equal(rct_query(r, id[4], 3, 0, MIB, rg, 4, &n, &p, &w), HV_ENOTFOUND);
	assert_int_equal(w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
	assert_non_null(strstr(hv_errmsg(), id[4]));
	/* upto > seq */
	assert_int_equal(rct_query(r, id[1], 6, 0, MIB, rg, 4, &n, &p, &w), HV_ENOTFOUND);
	assert_int_equal(w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
	/* reset: every old id fails, the message says why */
	struct hv_guid g2 = guid_n(33);
	assert_int_equal(rct_reset(r, &g2), 0);
	assert_int_equal(rct_seq(r), 0);
	for (int i = 1; i <= 5; i++) {
		assert_int_equal(rct_query(r, id[i], LIVE, 0, MIB, rg, 4, &n, &p, &w),
				 HV_ENOTFOUND);
		assert_int_equal(w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
		assert_non_null(strstr(hv_errmsg(), "reset"));
	}
	/* disabled beats everything but syntax */
	assert_int_equal(rct_set_enabled(r, false, NULL), 0);
	assert_int_equal(rct_query(r, id[1], LIVE, 0, MIB, rg, 4, &n, &p, &w), HV_EUNSUPPORTED);
	assert_int_equal(w, RCT_WIN32_CHANGE_TRACKING_DISABLED);
	assert_non_null(strstr(hv_errmsg(), "disabled"));
	assert_int_equal(rct_most_recent_id(r, LIVE, fut, &w), HV_EUNSUPPORTED);
	assert_int_equal(w, RCT_WIN32_CHANGE_TRACKING_DISABLED);
	assert_int_equal(rct_seal(r, fut, &w), HV_EUNSUPPORTED);
	assert_int_equal(w, RCT_WIN32_CHANGE_TRACKING_DISABLED);
	assert_int_equal(rct_query(r, "rctX:nope", LIVE, 0, MIB, rg, 4, &n, &p, &w), HV_EINVAL);
	assert_int_equal(w, RCT_WIN32_INVALID_CHANGE_TRACKING_ID);
	/* GUIDs are required for the events that start over */
	struct hv_guid z = {{0}};
	assert_int_equal(rct_set_enabled(r, true, &z), HV_EINVAL);
	assert_false(rct_enabled(r));
	assert_int_equal(rct_reset(r, NULL), HV_EINVAL);
	rct_close(r);
}

static void test_events_reset_resize_disable(void **state)
{
	(void)state;
	struct rct *r = mk("events.rct", 8 * MIB, 65536, MIB, 4);
	char a[RCT_ID_STRLEN + 1], b[RCT_ID_STRLEN + 1], c[RCT_ID_STRLEN + 1];
	struct rct_range rg[8];
	size_t n;
	uint64_t p;
	uint32_t w;

	mark(r, 0, 1);
	seal(r, a);
	/* disable: marks are ignored, the state is dropped */
	assert_int_equal(rct_set_enabled(r, false, NULL), 0);
	mark(r, MIB, 1);
	assert_false(rct_newer_changes(r));
	assert_int_equal(rct_seq(r), 0);
	struct hv_guid g5 = guid_n(5);
	assert_int_equal(rct_set_enabled(r, true, &g5), 0);
	struct hv_guid cur = rct_guid(r);
	assert_true(hv_guid_eq(&cur, &g5));
	assert_int_equal(rct_query(r, a, LIVE, 0, 8 * MIB, rg, 8, &n, &p, &w), HV_ENOTFOUND);
	assert_int_equal(w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
	/* the write while disabled is not tracked; a new id works */
	assert_int_equal(rct_most_recent_id(r, LIVE, b, &w), 0);
	mark(r, 2 * MIB, 1);
	assert_int_equal(rct_query(r, b, LIVE, 0, 8 * MIB, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].offset, 2 * MIB);
	/* enabling twice keeps the state */
	struct hv_guid g6 = guid_n(6);
	assert_int_equal(rct_set_enabled(r, true, &g6), 0);
	cur = rct_guid(r);
	assert_true(hv_guid_eq(&cur, &g5));
	assert_true(rct_newer_changes(r));

	/* resize: new size, old ids fail, writes beyond the old end are tracked */
	seal(r, c);
	struct hv_guid g7 = guid_n(7);
	assert_int_equal(rct_resize(r, 20 * MIB + 512, &g7), 0);
	assert_int_equal(rct_virtual_size(r), 20 * MIB + 512);
	assert_int_equal(rct_seq(r), 0);
	assert_int_equal(rct_query(r, c, LIVE, 0, MIB, rg, 8, &n, &p, &w), HV_ENOTFOUND);
	assert_int_equal(w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
	assert_int_equal(rct_most_recent_id(r, LIVE, b, &w), 0);
	mark(r, 20 * MIB, 512);
	assert_int_equal(rct_query(r, b, LIVE, 0, 21 * MIB, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].offset, 20 * MIB);
	assert_int_equal(rg[0].length, 512);
	/* a refused resize changes nothing */
	assert_int_equal(rct_resize(r, 0, &g7), HV_EINVAL);
	assert_int_equal(rct_resize(r, RCT_MAX_VIRTUAL_SIZE + 1, &g7), HV_EINVAL);
	assert_int_equal(rct_virtual_size(r), 20 * MIB + 512);
	assert_true(rct_newer_changes(r));
	rct_close(r);
}

static void test_crash_coarsens_and_keeps_ids(void **state)
{
	(void)state;
	/* G = 64 KiB, C = 256 KiB (4 blocks); 40 blocks */
	struct rct *r = mk("crash.rct", 40 * 65536, 65536, 262144, 8);
	char id0[RCT_ID_STRLEN + 1], id1[RCT_ID_STRLEN + 1], id2[RCT_ID_STRLEN + 1];
	struct rct_range rg[8];
	size_t n;
	uint64_t p;
	uint32_t w;
	assert_int_equal(rct_most_recent_id(r, LIVE, id0, &w), 0);
	mark(r, 1 * 65536, 1); /* block 1 */
	seal(r, id1);
	mark(r, 9 * 65536, 1); /* block 9 -> coarse 8..11 */
	assert_false(rct_epoch_coarse(r, 2));
	rct_crash(r);
	assert_true(rct_epoch_coarse(r, 2));
	assert_true(rct_newer_changes(r));
	mark(r, 21 * 65536, 1); /* after the crash, still this epoch: coarse 20..23 */
	assert_int_equal(rct_query(r, id1, LIVE, 0, 40 * 65536, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rg[0].offset, 8 * 65536);
	assert_int_equal(rg[0].length, 4 * 65536);
	assert_int_equal(rg[1].offset, 20 * 65536);
	seal(r, id2);
	assert_true(rct_epoch_coarse(r, 2));
	assert_false(rct_epoch_coarse(r, 1));
	assert_false(rct_epoch_coarse(r, 3));
	mark(r, 30 * 65536, 1);
	/* since 0: exact block 1, coarse 8..11 and 20..23, exact 30 */
	assert_int_equal(rct_query(r, id0, LIVE, 0, 40 * 65536, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 4);
	assert_int_equal(rg[0].offset, 65536);
	assert_int_equal(rg[0].length, 65536);
	assert_int_equal(rg[3].offset, 30 * 65536);
	assert_int_equal(rg[3].length, 65536);
	/* since 2: only the fine record after */
	assert_int_equal(rct_query(r, id2, LIVE, 0, 40 * 65536, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].offset, 30 * 65536);
	/* survives a save/open */
	assert_int_equal(rct_save(r), 0);
	rct_close(r);
	assert_int_equal(rct_open(path("crash.rct"), RCT_NOSYNC, &r), 0);
	assert_true(rct_epoch_coarse(r, 2));
	assert_int_equal(rct_query(r, id0, LIVE, 0, 40 * 65536, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 4);
	/* a crash with the coarse granularity past the disk end clips at the end */
	rct_close(r);
	r = mk("crash2.rct", 10 * 65536 + 100, 65536, 262144, 9);
	assert_int_equal(rct_most_recent_id(r, LIVE, id0, &w), 0);
	mark(r, 10 * 65536, 1);
	rct_crash(r);
	assert_int_equal(rct_query(r, id0, LIVE, 0, 11 * 65536, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].offset, 8 * 65536);
	assert_int_equal(rg[0].length, 2 * 65536 + 100);
	rct_close(r);
}

/* ---- property test ---------------------------------------------------------------------------*/

struct idrec {
	char id[RCT_ID_STRLEN + 1];
};

static void property_round(unsigned round, int mode, bool large)
{
	/* mode 0: writes/seals/saves only (exact); 1: plus crashes; 2: plus resets, resizes,
	 * disable/enable. `large` disks span several 2^16-block chunks of the open-epoch bitmap
	 * and get enough writes to turn chunks into bitmaps or full chunks. */
	struct hv_rng rng = hv_rng_stream(0x5eed0000u + round, "test-rct-property");
#define RND(n) ((uint64_t)(hv_rng_next(&rng) % (uint64_t)(n)))
	static const uint32_t mult[] = {1, 2, 3, 4, 8};
	uint32_t g = 4096u << RND(5);
	uint32_t c = g * mult[RND(5)];
	uint64_t maxnb = large ? 200000 : 300;
	uint64_t nb = 1 + RND(maxnb);
	uint64_t size = (nb - 1) * g + 1 + RND(g);
	char name[64];
	snprintf(name, sizeof name, "prop-%u.rct", round);
	uint64_t gseed = 1000000ull * (round + 1);
	struct rct *r = mk(name, size, g, c, gseed++);
	struct model m;
	model_init(&m, size, g, c);
	struct idrec *stale = NULL;
	size_t nstale = 0;
	unsigned ops = large ? 1500 + (unsigned)RND(1500) : 40 + (unsigned)RND(60);
	for (unsigned op = 0; op < ops; op++) {
		uint64_t k = RND(100);
		if (large && k >= 40 && RND(100) < 99)
			k = RND(40); /* mostly writes */
		if (k < 40) {
			uint64_t off = RND(size), len;
			switch (RND(4)) {
			case 0:
				len = 1 + RND(512);
				break;
			case 1:
				len = 1 + RND(2 * g);
				break;
			case 2:
				len = 1 + RND(6 * (uint64_t)g);
				break;
			default:
				/* disk-sized writes; rare on large disks: chunks stay scattered */
				len = 1 + RND(large && RND(8) ? 64 * (uint64_t)g : size);
			}
			if (len > size - off)
				len = size - off;
			mark(r, off, len);
			model_write(&m, off, len);
		} else if (k < 52) {
			if (!m.enabled) {
				uint32_t w;
				assert_int_equal(rct_seal(r, NULL, &w), HV_EUNSUPPORTED);
				continue;
			}
			char id[RCT_ID_STRLEN + 1];
			seal(r, id);
			m.seq++;
			assert_int_equal(rct_seq(r), m.seq);
			char exp[RCT_ID_STRLEN + 1];
			id_of(r, m.seq, exp);
			assert_string_equal(id, exp);
		} else if (k < 57) {
			uint64_t gen = rct_generation(r);
			assert_int_equal(rct_save(r), 0);
			rct_close(r);
			if (rct_open(path(name), RCT_NOSYNC, &r))
				fail_msg("round %u reopen: %s", round, hv_errmsg());
			assert_int_equal(rct_generation(r), gen + 1);
		} else if (k < 61 && mode >= 1) {
			rct_crash(r);
			if (m.enabled) {
				model_ensure(&m, m.seq + 1);
				m.coarse[m.seq + 1] = true;
			}
		} else if (k < 65 && mode == 2) {
			/* remember the current ids: all of them must fail from now on */
			for (uint32_t s = 0; s <= m.seq && m.enabled; s++) {
				stale = realloc(stale, (nstale + 1) * sizeof *stale);
				id_of(r, s, stale[nstale++].id);
			}
			struct hv_guid ng = guid_n(gseed++);
			uint64_t e = RND(3);
			if (e == 0) {
				assert_int_equal(rct_reset(r, &ng), 0);
			} else if (e == 1) {
				uint64_t nnb = 1 + RND(maxnb);
				uint64_t nsize = (nnb - 1) * g + 1 + RND(g);
				assert_int_equal(rct_resize(r, nsize, &ng), 0);
				model_free(&m);
				bool en = m.enabled;
				model_init(&m, nsize, g, c);
				m.enabled = en;
				size = nsize;
			} else {
				bool en = !m.enabled;
				assert_int_equal(rct_set_enabled(r, en, &ng), 0);
				m.enabled = en;
			}
			model_drop(&m);
		} else {
			/* a query */
			if (nstale && RND(4) == 0) {
				struct rct_range rg[2];
				size_t n;
				uint64_t p;
				uint32_t w;
				const char *old = stale[RND(nstale)].id;
				int rc = rct_query(r, old, LIVE, 0, size, rg, 2, &n, &p, &w);
				if (m.enabled) {
					assert_int_equal(rc, HV_ENOTFOUND);
					assert_int_equal(
						w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
				} else {
					assert_int_equal(rc, HV_EUNSUPPORTED);
					assert_int_equal(w, RCT_WIN32_CHANGE_TRACKING_DISABLED);
				}
				continue;
			}
			uint32_t since = (uint32_t)RND(m.seq + 1);
			uint64_t upto = RND(2) ? LIVE : since + RND(m.seq - since + 1);
			uint64_t off = RND(size + g), len = RND(size + 2 * (uint64_t)g - off + 1);
			static const size_t caps[] = {1, 2, 3, 5, 1000};
			size_t cap = caps[RND(5)];
			if (!m.enabled) {
				struct rvec got;
				char id[RCT_ID_STRLEN + 1];
				uint32_t w;
				id_of(r, 0, id);
				assert_int_equal(query_all(r, id, LIVE, 0, size, 4, &got, &w),
						 HV_EUNSUPPORTED);
				assert_int_equal(w, RCT_WIN32_CHANGE_TRACKING_DISABLED);
				free(got.v);
				continue;
			}
			if (RND(10) == 0) {
				/* ids that do not exist yet, or since > upto */
				char id[RCT_ID_STRLEN + 1];
				struct rvec got;
				uint32_t w;
				bool future = RND(2) || m.seq == 0;
				id_of(r, future ? m.seq + 1 + (uint32_t)RND(3) : m.seq, id);
				uint64_t bad_upto = future ? LIVE : m.seq - 1;
				assert_int_equal(query_all(r, id, bad_upto, 0, size, 4, &got, &w),
						 HV_ENOTFOUND);
				assert_int_equal(w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
				free(got.v);
				continue;
			}
			check_query(r, &m, since, upto, off, len, cap, mode >= 1);
			/* newer-changes flag and most recent id agree with the model */
			bool any = false;
			if (m.seq + 1 < m.cap && m.w[m.seq + 1])
				for (uint64_t b = 0; b < m.nblocks && !any; b++)
					any = m.w[m.seq + 1][b];
			assert_int_equal(rct_newer_changes(r), any);
		}
	}
	/* finally: every sealed id, whole disk, one call with room for everything */
	for (uint32_t s = 0; m.enabled && s <= m.seq; s++)
		check_query(r, &m, s, LIVE, 0, size, 100000, mode >= 1);
	free(stale);
	model_free(&m);
	rct_close(r);
	unlink(path(name));
#undef RND
}

static void test_property_random_rounds(void **state)
{
	(void)state;
	for (unsigned round = 0; round < 240; round++)
		property_round(round, (int)(round % 3), false);
	for (unsigned round = 240; round < 270; round++)
		property_round(round, (int)(round % 3), true);
}

/* ---- paging ----------------------------------------------------------------------------------*/

static void test_paging_capacity_one(void **state)
{
	(void)state;
	uint64_t size = 4 * GIB;
	struct rct *r = mk("paging.rct", size, 65536, MIB, 10);
	struct model m;
	model_init(&m, size, 65536, MIB);
	struct hv_rng rng = hv_rng_stream(10, "test-rct-paging");
	char id0[RCT_ID_STRLEN + 1];
	uint32_t w;
	assert_int_equal(rct_most_recent_id(r, LIVE, id0, &w), 0);
	for (int e = 0; e < 3; e++) {
		for (int i = 0; i < 700; i++) {
			uint64_t off = hv_rng_next(&rng) % size;
			uint64_t len = 1 + hv_rng_next(&rng) % 300000;
			if (len > size - off)
				len = size - off;
			mark(r, off, len);
			model_write(&m, off, len);
		}
		seal(r, NULL);
		m.seq++;
	}
	struct rvec one, big;
	assert_int_equal(query_all(r, id0, LIVE, 0, size, 1, &one, &w), 0);
	assert_int_equal(query_all(r, id0, LIVE, 0, size, 1u << 20, &big, &w), 0);
	assert_int_equal(big.calls, 1);
	assert_true(one.n > 1000);
	/* one call per range (the last page also reports the end) */
	assert_true(one.calls == one.n || one.calls == one.n + 1);
	expect_same(one.v, one.n, big.v, big.n, "capacity 1 vs one call");
	uint8_t *x = model_expect(&m, 0, LIVE, false);
	struct rct_range *exp;
	size_t ne = expect_ranges(&m, x, 0, size, &exp);
	expect_same(big.v, big.n, exp, ne, "vs model");
	/* the loop also works from an unaligned start and with ByteLength < size (WMI rule) */
	free(one.v);
	assert_int_equal(query_all(r, id0, LIVE, 12345, size - 12345 - 1, 7, &one, &w), 0);
	free(exp);
	ne = expect_ranges(&m, x, 12345, size - 12345 - 1, &exp);
	expect_same(one.v, one.n, exp, ne, "capacity 7 unaligned window");
	free(exp);
	free(x);
	free(one.v);
	free(big.v);
	model_free(&m);
	rct_close(r);
}

/* ---- sidecar ---------------------------------------------------------------------------------*/

/* A fixed sequence of operations; `save_every` also saves in the middle. */
static struct rct *scripted(const char *name, bool reopen_midway)
{
	struct rct *r = mk(name, 50 * 65536 + 4096, 65536, 4 * 65536, 20);
	mark(r, 0, 1);
	mark(r, 3 * 65536, 3 * 65536);
	seal(r, NULL);
	seal(r, NULL); /* empty epoch */
	mark(r, 17 * 65536 + 5, 65536);
	rct_crash(r);
	mark(r, 40 * 65536, 1);
	seal(r, NULL);
	if (reopen_midway) {
		assert_int_equal(rct_save(r), 0);
		rct_close(r);
		assert_int_equal(rct_open(path(name), RCT_NOSYNC, &r), 0);
	}
	mark(r, 50 * 65536, 4096); /* the short last block */
	mark(r, 9 * 65536, 1);
	seal(r, NULL);
	mark(r, 22 * 65536, 2 * 65536); /* open epoch: fine runs and the coarse shadow */
	if (!reopen_midway)
		assert_int_equal(rct_save(r), 0);
	assert_int_equal(rct_save(r), 0);
	return r;
}

static size_t all_answers(const struct rct *r, struct rvec *out, size_t nout)
{
	char id[RCT_ID_STRLEN + 1];
	struct hv_guid g = rct_guid(r);
	uint32_t w;
	size_t k = 0;
	for (uint32_t s = 0; s <= rct_seq(r); s++)
		for (uint64_t u = s; u <= (uint64_t)rct_seq(r) + 1; u++) {
			rct_id_format(&g, s, id);
			assert_true(k < nout);
			assert_int_equal(query_all(r, id, u > rct_seq(r) ? LIVE : u, 0,
						   rct_virtual_size(r), 3, &out[k++], &w),
					 0);
		}
	return k;
}

static void test_sidecar_round_trip_and_identical_bytes(void **state)
{
	(void)state;
	struct rct *a = scripted("same-a.rct", false);
	struct rct *b = scripted("same-b.rct", true);
	size_t na, nb;
	uint8_t *fa = slurp(path("same-a.rct"), &na), *fb = slurp(path("same-b.rct"), &nb);
	assert_int_equal(na, nb);
	assert_memory_equal(fa, fb, na);
	assert_int_equal(rct_generation(a), 3);
	assert_int_equal(rct_generation(b), 3);
	/* reopen and compare every (since, upto) answer with the in-memory object */
	struct rct *c = NULL;
	assert_int_equal(rct_open(path("same-a.rct"), RCT_RDONLY, &c), 0);
	assert_int_equal(rct_generation(c), 3);
	assert_int_equal(rct_seq(c), 4);
	assert_true(rct_newer_changes(c));
	assert_true(rct_epoch_coarse(c, 3));
	struct rvec x[64], y[64];
	size_t nx = all_answers(a, x, 64);
	assert_int_equal(all_answers(c, y, 64), nx);
	assert_int_equal(nx, 20);
	for (size_t i = 0; i < nx; i++) {
		expect_same(x[i].v, x[i].n, y[i].v, y[i].n, "reopened");
		free(x[i].v);
		free(y[i].v);
	}
	assert_int_equal(rct_save(c), HV_EINVAL); /* read-only */
	/* 100 000 scattered blocks stay well under 1 MiB */
	struct rct *big = mk("big.rct", 2 * TIB, 65536, MIB, 21);
	struct hv_rng rng = hv_rng_stream(21, "test-rct-scatter");
	for (int i = 0; i < 100000; i++)
		mark(big, (hv_rng_next(&rng) % (2 * TIB / 65536)) * 65536, 65536);
	seal(big, NULL);
	assert_int_equal(rct_save(big), 0);
	size_t nbig;
	free(slurp(path("big.rct"), &nbig));
	assert_true(nbig < 400 * 1024);
	rct_close(big);
	free(fa);
	free(fb);
	rct_close(a);
	rct_close(b);
	rct_close(c);
}

static void test_sidecar_every_damage_is_refused(void **state)
{
	(void)state;
	struct rct *a = scripted("dmg.rct", false);
	size_t n;
	uint8_t *orig = slurp(path("dmg.rct"), &n);
	uint8_t *buf = malloc(n + 1);
	struct rct *r = NULL;
	const char *p = path("dmg-x.rct");
	assert_true(n < 200);
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof masks; k++) {
			memcpy(buf, orig, n);
			buf[i] ^= masks[k];
			spit(p, buf, n);
			int rc = rct_open(p, RCT_NOSYNC, &r);
			if (rc != HV_ECORRUPT)
				fail_msg("byte %zu ^ 0x%02x: open gave %d (%s)", i, masks[k], rc,
					 rc ? hv_errmsg() : "opened");
			assert_null(r);
			assert_non_null(strstr(hv_errmsg(), p));
		}
	for (size_t len = 0; len < n; len++) {
		spit(p, orig, len);
		assert_int_equal(rct_open(p, RCT_NOSYNC, &r), HV_ECORRUPT);
	}
	memcpy(buf, orig, n);
	buf[n] = 0;
	spit(p, buf, n + 1);
	assert_int_equal(rct_open(p, RCT_NOSYNC, &r), HV_ECORRUPT);
	/* the undamaged file still opens */
	spit(p, orig, n);
	assert_int_equal(rct_open(p, RCT_NOSYNC, &r), 0);
	rct_close(r);
	assert_int_equal(rct_open(path("missing.rct"), 0, &r), HV_ENOTFOUND);
	free(buf);
	free(orig);
	rct_close(a);
}

/* Hand encoder of the documented layout (independent of rct_file.c). */
struct fb {
	uint8_t b[4096];
	size_t n;
};

static void fb_u32(struct fb *f, uint32_t v)
{
	hv_put32(f->b + f->n, v);
	f->n += 4;
}

static void fb_u64(struct fb *f, uint64_t v)
{
	hv_put64(f->b + f->n, v);
	f->n += 8;
}

static void fb_var(struct fb *f, uint64_t v)
{
	do {
		f->b[f->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

static void fb_header(struct fb *f, uint32_t version, uint32_t flags, uint32_t g, uint32_t c,
		      uint64_t size, uint32_t seq)
{
	f->n = 0;
	memcpy(f->b, "HVSIMRCT", 8);
	f->n = 8;
	fb_u32(f, version);
	fb_u32(f, flags);
	fb_u64(f, 7); /* generation */
	fb_u32(f, g);
	fb_u32(f, c);
	fb_u64(f, size);
	struct hv_guid gd = guid_n(77);
	memcpy(f->b + f->n, gd.b, 16);
	f->n += 16;
	fb_u32(f, seq);
}

static int fb_open(struct fb *f, struct rct **r)
{
	fb_u32(f, hv_crc32c(f->b, f->n));
	spit(path("hand.rct"), f->b, f->n);
	*r = NULL;
	return rct_open(path("hand.rct"), RCT_NOSYNC, r);
}

static void test_sidecar_hand_built_and_crafted(void **state)
{
	(void)state;
	struct fb f;
	struct rct *r;
	struct rct_range rg[8];
	size_t n;
	uint64_t p;
	uint32_t w;
	char id[RCT_ID_STRLEN + 1];
	/* 100 blocks of 4 KiB, C = 16 KiB. Epoch 1: blocks 2..4 and 10. Epoch 2 (coarse): 20..23.
	 * Open: fine 50, coarse 12 (= blocks 48..51). */
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 2);
	fb_var(&f, 1), f.b[f.n++] = 0, fb_var(&f, 2);
	fb_var(&f, 2), fb_var(&f, 2), fb_var(&f, 5), fb_var(&f, 0);
	fb_var(&f, 2), f.b[f.n++] = 1, fb_var(&f, 1), fb_var(&f, 20), fb_var(&f, 3);
	fb_var(&f, 1), fb_var(&f, 50), fb_var(&f, 0);
	fb_var(&f, 1), fb_var(&f, 12), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), 0);
	assert_int_equal(rct_generation(r), 7);
	assert_int_equal(rct_seq(r), 2);
	assert_true(rct_epoch_coarse(r, 2));
	struct hv_guid gd = guid_n(77), cur = rct_guid(r);
	assert_true(hv_guid_eq(&gd, &cur));
	rct_id_format(&gd, 0, id);
	assert_int_equal(rct_query(r, id, LIVE, 0, 100 * 4096, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 4);
	assert_int_equal(rg[0].offset, 2 * 4096);
	assert_int_equal(rg[0].length, 3 * 4096);
	assert_int_equal(rg[1].offset, 10 * 4096);
	assert_int_equal(rg[2].offset, 20 * 4096);
	assert_int_equal(rg[2].length, 4 * 4096);
	assert_int_equal(rg[3].offset, 50 * 4096);
	assert_int_equal(rg[3].length, 4096);
	rct_crash(r); /* the open epoch's coarse record is the one in the file */
	assert_int_equal(rct_query(r, id, LIVE, 40 * 4096, 60 * 4096, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].offset, 48 * 4096);
	assert_int_equal(rg[0].length, 4 * 4096);
	/* our encoder writes the same bytes for this state (before the crash) */
	rct_close(r);

	/* an epoch that lost a write (out of memory) fails queries across it, not after it; the
	 * open epoch's lost flag (header bit 2) likewise */
	fb_header(&f, 1, 1 | 4, 4096, 16384, 100 * 4096, 2);
	fb_var(&f, 1), f.b[f.n++] = 2, fb_var(&f, 1), fb_var(&f, 7), fb_var(&f, 0);
	fb_var(&f, 2), f.b[f.n++] = 0, fb_var(&f, 1), fb_var(&f, 9), fb_var(&f, 0);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), 0);
	rct_id_format(&gd, 0, id);
	assert_int_equal(rct_query(r, id, 2, 0, 100 * 4096, rg, 8, &n, &p, &w), HV_ENOTFOUND);
	assert_int_equal(w, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
	assert_non_null(strstr(hv_errmsg(), "epoch 1 lost a write"));
	rct_id_format(&gd, 1, id);
	assert_int_equal(rct_query(r, id, 2, 0, 100 * 4096, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].offset, 9 * 4096);
	assert_int_equal(rct_query(r, id, LIVE, 0, 100 * 4096, rg, 8, &n, &p, &w), HV_ENOTFOUND);
	assert_non_null(strstr(hv_errmsg(), "open epoch lost a write"));
	seal(r, NULL); /* the lost flag travels with the epoch; later ids work */
	rct_id_format(&gd, 3, id);
	mark(r, 0, 1);
	assert_int_equal(rct_query(r, id, LIVE, 0, 100 * 4096, rg, 8, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	rct_id_format(&gd, 2, id);
	assert_int_equal(rct_query(r, id, 3, 0, 100 * 4096, rg, 8, &n, &p, &w), HV_ENOTFOUND);
	rct_close(r);

	/* crafted: valid CRC, impossible counts -> clean errors */
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 0xFFFFFFF0u);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "seq 4294967280 exceeds"));
	fb_header(&f, 1, 1, 4096, 16384, 64 * TIB, 1);
	fb_var(&f, 1), f.b[f.n++] = 0, fb_var(&f, UINT64_MAX / 3);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "run count"));
	/* run past the end */
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 1);
	fb_var(&f, 1), f.b[f.n++] = 0, fb_var(&f, 1), fb_var(&f, 99), fb_var(&f, 1);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "ends past the 100 blocks"));
	/* gap near 2^64 must not wrap */
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 1);
	fb_var(&f, 1), f.b[f.n++] = 0, fb_var(&f, 2), fb_var(&f, 5), fb_var(&f, 0);
	fb_var(&f, UINT64_MAX - 3), fb_var(&f, 0);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	/* adjacent runs (not coalesced) */
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 1);
	fb_var(&f, 1), f.b[f.n++] = 0, fb_var(&f, 2), fb_var(&f, 5), fb_var(&f, 0), fb_var(&f, 0),
		fb_var(&f, 0);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "adjacent"));
	/* non-minimal varint */
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 0);
	f.b[f.n++] = 0x80, f.b[f.n++] = 0x00;
	fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "not minimal"));
	/* coarse epoch not on C boundaries */
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 1);
	fb_var(&f, 1), f.b[f.n++] = 1, fb_var(&f, 1), fb_var(&f, 5), fb_var(&f, 3);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "boundaries"));
	/* open fine run outside the coarse shadow: would break the crash guarantee */
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 0);
	fb_var(&f, 1), fb_var(&f, 50), fb_var(&f, 0);
	fb_var(&f, 1), fb_var(&f, 11), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "not covered by the coarse record"));
	/* wrong epoch number, unknown flags, disabled with state, bad geometry, zero GUID */
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 1);
	fb_var(&f, 2), f.b[f.n++] = 0, fb_var(&f, 0), fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	fb_header(&f, 1, 1 | 8, 4096, 16384, 100 * 4096, 0);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	fb_header(&f, 1, 0, 4096, 16384, 100 * 4096, 1);
	fb_var(&f, 1), f.b[f.n++] = 0, fb_var(&f, 0), fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	fb_header(&f, 1, 1, 6000, 12000, 100 * 4096, 0);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	fb_header(&f, 1, 1, 4096, 6000, 100 * 4096, 0);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	fb_header(&f, 1, 1, 4096, 16384, 0, 0);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 0);
	memset(f.b + 40, 0, 16);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_ECORRUPT);
	/* a newer version is "unsupported", not "corrupt" */
	fb_header(&f, 2, 1, 4096, 16384, 100 * 4096, 0);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), HV_EUNSUPPORTED);
	/* the minimal valid file */
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 0);
	fb_var(&f, 0), fb_var(&f, 0);
	assert_int_equal(fb_open(&f, &r), 0);
	assert_false(rct_newer_changes(r));
	rct_close(r);
}

static void test_encoder_matches_hand_layout(void **state)
{
	(void)state;
	/* build the state of the hand-built file through the API, save, compare bytes */
	struct hv_guid gd = guid_n(77);
	struct rct *r = NULL;
	unlink(path("enc.rct"));
	assert_int_equal(rct_create(path("enc.rct"), 100 * 4096, 4096, 16384, &gd, RCT_NOSYNC, &r),
			 0);
	mark(r, 2 * 4096, 3 * 4096);
	mark(r, 10 * 4096, 1);
	seal(r, NULL);
	mark(r, 21 * 4096, 1);
	rct_crash(r);
	seal(r, NULL);
	mark(r, 50 * 4096, 4096);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rct_save(r), 0); /* create wrote generation 1 */
	assert_int_equal(rct_generation(r), 6);
	assert_int_equal(rct_save(r), 0);
	struct fb f;
	fb_header(&f, 1, 1, 4096, 16384, 100 * 4096, 2);
	fb_var(&f, 1), f.b[f.n++] = 0, fb_var(&f, 2);
	fb_var(&f, 2), fb_var(&f, 2), fb_var(&f, 5), fb_var(&f, 0);
	fb_var(&f, 2), f.b[f.n++] = 1, fb_var(&f, 1), fb_var(&f, 20), fb_var(&f, 3);
	fb_var(&f, 1), fb_var(&f, 50), fb_var(&f, 0);
	fb_var(&f, 1), fb_var(&f, 12), fb_var(&f, 0);
	fb_u32(&f, hv_crc32c(f.b, f.n));
	size_t n;
	uint8_t *got = slurp(path("enc.rct"), &n);
	assert_int_equal(n, f.n);
	assert_memory_equal(got, f.b, n);
	free(got);
	rct_close(r);
}

static void test_save_cut_by_crash_keeps_old_state(void **state)
{
	(void)state;
	struct rct *r = mk("cut.rct", 16 * MIB, 0, 0, 30);
	char id0[RCT_ID_STRLEN + 1];
	struct rct_range rg[4];
	size_t n;
	uint64_t p;
	uint32_t w;
	assert_int_equal(rct_most_recent_id(r, LIVE, id0, &w), 0);
	mark(r, MIB, 1);
	seal(r, NULL);
	assert_int_equal(rct_save(r), 0); /* generation 2: epoch 1 = block 16 */
	mark(r, 5 * MIB, 1);
	seal(r, NULL);
	const char *tmp = path("cut.rct.tmp");
	for (int fault = RCT_FAULT_BEFORE_RENAME; fault <= RCT_FAULT_TORN_TMP; fault++) {
		rct_set_save_fault(r, (enum rct_save_fault)fault);
		assert_int_equal(rct_save(r), HV_ECRASHED);
		assert_int_equal(rct_generation(r), 2);
		assert_true(exists(tmp));
		struct rct *o = NULL;
		/* read-only open ignores the leftover and leaves it */
		assert_int_equal(rct_open(path("cut.rct"), RCT_RDONLY, &o), 0);
		assert_true(exists(tmp));
		rct_close(o);
		assert_int_equal(rct_open(path("cut.rct"), RCT_NOSYNC, &o), 0);
		assert_false(exists(tmp));
		assert_int_equal(rct_generation(o), 2);
		assert_int_equal(rct_seq(o), 1);
		assert_int_equal(rct_query(o, id0, LIVE, 0, 16 * MIB, rg, 4, &n, &p, &w), 0);
		assert_int_equal(n, 1);
		assert_int_equal(rg[0].offset, MIB);
		rct_close(o);
	}
	/* the fault was one-shot; the next save goes through */
	assert_int_equal(rct_save(r), 0);
	assert_int_equal(rct_generation(r), 3);
	struct rct *o = NULL;
	assert_int_equal(rct_open(path("cut.rct"), RCT_NOSYNC, &o), 0);
	assert_int_equal(rct_seq(o), 2);
	rct_close(o);
	/* create refuses an existing path; bad geometry is refused with a message */
	struct hv_guid g = guid_n(31);
	assert_int_equal(rct_create(path("cut.rct"), MIB, 0, 0, &g, RCT_NOSYNC, &o), HV_EINVAL);
	assert_null(o);
	assert_int_equal(rct_create(path("geo.rct"), MIB, 3000, 0, &g, RCT_NOSYNC, &o), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "power of two"));
	assert_int_equal(rct_create(path("geo.rct"), MIB, 65536, 100000, &g, RCT_NOSYNC, &o),
			 HV_EINVAL);
	assert_false(exists(path("geo.rct")));
	rct_close(r);
}

/* The open epoch's chunk forms: scattered runs -> bitmap -> full, checked against the model,
 * through a save/open (whose fine-inside-coarse check then reads bitmap and full chunks). */
static void test_open_epoch_dense_chunks(void **state)
{
	(void)state;
	uint32_t g = 4096;
	uint64_t nb = 3 * 65536 + 17, size = nb * g;
	struct rct *r = mk("dense.rct", size, g, g, 50);
	struct model m;
	model_init(&m, size, g, g);
	char id0[RCT_ID_STRLEN + 1];
	uint32_t w;
	assert_int_equal(rct_most_recent_id(r, LIVE, id0, &w), 0);
	/* chunk 0: every third block (21846 runs: a bitmap), chunk 1: 200 runs (stays runs) */
	for (uint64_t b = 0; b < 65536; b += 3) {
		mark(r, b * g, 1);
		model_write(&m, b * g, 1);
	}
	for (uint64_t b = 65536; b < 65536 + 200 * 7; b += 7) {
		mark(r, b * g + 100, g);
		model_write(&m, b * g + 100, g);
	}
	check_query(r, &m, 0, LIVE, 0, size, 100000, false);
	check_query(r, &m, 0, LIVE, 12345 * (uint64_t)g + 5, 70000 * (uint64_t)g, 9, false);
	assert_int_equal(rct_save(r), 0); /* the fine-inside-coarse check reads a bitmap chunk */
	rct_close(r);
	assert_int_equal(rct_open(path("dense.rct"), RCT_NOSYNC, &r), 0);
	/* fill chunk 0's gaps with writes of growing size (multi-word spans inside the bitmap) */
	struct hv_rng rng = hv_rng_stream(50, "test-rct-dense");
	for (uint64_t b = 0; b < 65536;) {
		uint64_t len = 1 + hv_rng_next(&rng) % 700;
		if (len > 65536 - b)
			len = 65536 - b;
		mark(r, b * g, len * g);
		model_write(&m, b * g, len * g);
		b += len;
	}
	/* chunk 2 and the 17-block tail: one write across the boundary */
	mark(r, (2 * 65536 - 5) * (uint64_t)g, (65536 + 22) * (uint64_t)g);
	model_write(&m, (2 * 65536 - 5) * (uint64_t)g, (65536 + 22) * (uint64_t)g);
	check_query(r, &m, 0, LIVE, 0, size, 100000, false);
	check_query(r, &m, 0, LIVE, 0, size, 2, false);
	assert_int_equal(rct_save(r), 0);
	rct_close(r);
	assert_int_equal(rct_open(path("dense.rct"), RCT_NOSYNC, &r), 0);
	check_query(r, &m, 0, LIVE, 0, size, 100000, false);
	seal(r, NULL);
	m.seq++;
	check_query(r, &m, 0, LIVE, 0, size, 3, false);
	check_query(r, &m, 0, 1, 0, size, 100000, false);
	model_free(&m);
	rct_close(r);
}

/* Without RCT_NOSYNC: the same files, with fsync of the file and the directory. */
static void test_synced_saves(void **state)
{
	(void)state;
	struct hv_guid g = guid_n(60);
	struct rct *r = NULL;
	unlink(path("sync.rct"));
	assert_int_equal(rct_create(path("sync.rct"), 10 * MIB, 0, 0, &g, 0, &r), 0);
	mark(r, 0, MIB);
	seal(r, NULL);
	assert_int_equal(rct_save(r), 0);
	rct_close(r);
	assert_int_equal(rct_open(path("sync.rct"), 0, &r), 0);
	assert_int_equal(rct_generation(r), 2);
	assert_int_equal(rct_seq(r), 1);
	assert_int_equal(rct_granularity(r), RCT_DEFAULT_GRANULARITY);
	assert_int_equal(rct_coarse_granularity(r), RCT_DEFAULT_COARSE);
	assert_string_equal(rct_path(r), path("sync.rct"));
	rct_close(r);
	/* a save into a directory that vanished fails cleanly and keeps the generation */
	char dir[300], file[320];
	snprintf(dir, sizeof dir, "%s/sub", tmpdir);
	snprintf(file, sizeof file, "%s/d.rct", dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(rct_create(file, MIB, 0, 0, &g, 0, &r), 0);
	assert_int_equal(unlink(file), 0);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(rct_save(r), HV_EIO);
	assert_non_null(strstr(hv_errmsg(), "d.rct.tmp"));
	assert_int_equal(rct_generation(r), 1);
	rct_close(r);
}

/* ---- scale -----------------------------------------------------------------------------------*/

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static void test_64tib_sparse_memory_bounded(void **state)
{
	(void)state;
	size_t before = heap_in_use();
	struct rct *r = mk("huge.rct", 64 * TIB, 65536, MIB, 40);
	struct hv_rng rng = hv_rng_stream(40, "test-rct-huge");
	char id0[RCT_ID_STRLEN + 1];
	uint32_t w;
	assert_int_equal(rct_most_recent_id(r, LIVE, id0, &w), 0);
	for (int i = 0; i < 2000; i++)
		mark(r, hv_rng_next(&rng) % (64 * TIB - MIB), MIB);
	struct rct *f = mk("huge4k.rct", 64 * TIB, 4096, MIB, 41);
	/* (ASan's allocator is invisible to mallinfo2: the bounds then hold trivially) */
	size_t during = heap_in_use();
	assert_true(during < before || during - before < 16 * MIB);
	/* a sequential fill gives its pages back as they complete (64 GiB at 4 KiB would be
	 * 2 MiB of bitmap otherwise) */
	for (uint64_t off = 0; off < 64 * GIB; off += MIB)
		mark(f, 8 * TIB + off, MIB);
	size_t filled = heap_in_use();
	assert_true(filled < during || filled - during < 256 * KIB);
	/* and a whole-disk write costs no bitmap memory (full pages are a sentinel) */
	mark(f, 0, 64 * TIB);
	assert_true(heap_in_use() < during || heap_in_use() - during < 256 * KIB);
	struct rct_range *rg = malloc(4096 * sizeof *rg);
	size_t n;
	uint64_t p;
	assert_int_equal(rct_query(r, id0, LIVE, 0, 64 * TIB, rg, 4096, &n, &p, &w), 0);
	assert_true(n > 1900 && n <= 2000);
	assert_int_equal(p, 64 * TIB);
	seal(r, NULL);
	assert_int_equal(rct_query(r, id0, LIVE, 0, 64 * TIB, rg, 4096, &n, &p, &w), 0);
	assert_true(n > 1900 && n <= 2000);
	char id4[RCT_ID_STRLEN + 1];
	id_of(f, 0, id4);
	assert_int_equal(rct_query(f, id4, LIVE, 0, 64 * TIB, rg, 4096, &n, &p, &w), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rg[0].length, 64 * TIB);
	seal(f, NULL);
	assert_int_equal(rct_save(f), 0);
	size_t fsz;
	free(slurp(path("huge4k.rct"), &fsz));
	assert_true(fsz < 200);
	free(rg);
	rct_close(r);
	rct_close(f);
	unlink(path("huge.rct"));
	unlink(path("huge4k.rct"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_known_answers),
		cmocka_unit_test(test_id_malformed_rejected_with_syntax_code),
		cmocka_unit_test(test_basic_hand_case),
		cmocka_unit_test(test_errors_name_id_and_cause),
		cmocka_unit_test(test_events_reset_resize_disable),
		cmocka_unit_test(test_crash_coarsens_and_keeps_ids),
		cmocka_unit_test(test_property_random_rounds),
		cmocka_unit_test(test_paging_capacity_one),
		cmocka_unit_test(test_sidecar_round_trip_and_identical_bytes),
		cmocka_unit_test(test_sidecar_every_damage_is_refused),
		cmocka_unit_test(test_sidecar_hand_built_and_crafted),
		cmocka_unit_test(test_encoder_matches_hand_layout),
		cmocka_unit_test(test_save_cut_by_crash_keeps_old_state),
		cmocka_unit_test(test_open_epoch_dense_chunks),
		cmocka_unit_test(test_synced_saves),
		cmocka_unit_test(test_64tib_sparse_memory_bounded),
	};
	return cmocka_run_group_tests_name("rct", tests, setup_dir, teardown_dir);
}
