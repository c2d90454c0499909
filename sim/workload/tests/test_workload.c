/*
 * test_workload — what a user of the workload generator would notice: the same seed gives the
 * same operations and bytes (pinned by golden hashes, so a change on another machine or in a
 * later version fails here), every op is aligned and inside the disk, the volume is exact,
 * sequential continues at the cursor and wraps, overwrite covers each byte once, trims carry no
 * data, Zipf concentrates (checked against the Zipf formula) while random spreads, the data
 * has the promised compressible share and never repeats between ops, sink errors stop the run,
 * bad params fail with a message naming the field, and a 64 TiB Zipf disk needs a bounded table.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../workload.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define GIB (1024ull * MIB)

/* ---- a sink that records everything --------------------------------------------------------*/

struct rec {
	struct wl_op *ops;
	size_t n, cap;
	uint64_t hash;       /* over offsets, lengths, flags and data bytes */
	bool keep_data;      /* copy the data of each op into data[] */
	uint8_t **data;
	uint64_t disk;       /* checked on every op when non-zero */
	uint32_t sector;
	bool data_null_seen; /* a non-zero op came with data NULL */
	bool data_given_for_zero;
	long fail_at;        /* return fail_rc for this op index (-1: never) */
	int fail_rc;
	size_t calls;
};

static uint64_t fold(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ull + 0x9e37; }

static int rec_sink(void *ctx, const struct wl_op *op, const uint8_t *data)
{
	struct rec *r = ctx;
	r->calls++;
	if (r->fail_at >= 0 && (long)r->n == r->fail_at)
		return hv_err(r->fail_rc, "test sink: refused op %ld", r->fail_at);
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->ops = realloc(r->ops, r->cap * sizeof *r->ops);
		if (r->keep_data)
			r->data = realloc(r->data, r->cap * sizeof *r->data);
		assert_non_null(r->ops);
	}
	r->ops[r->n] = *op;
	if (r->keep_data)
		r->data[r->n] = NULL;
	r->hash = fold(fold(fold(r->hash, op->offset), op->length), op->zero);
	if (op->zero) {
		if (data)
			r->data_given_for_zero = true;
	} else if (!data) {
		r->data_null_seen = true;
	} else {
		for (uint32_t i = 0; i < op->length; i += 8)
			r->hash = fold(r->hash, hv_le64(data + i));
		if (r->keep_data) {
			r->data[r->n] = malloc(op->length);
			memcpy(r->data[r->n], data, op->length);
		}
	}
	r->n++;
	return 0;
}

static void rec_free(struct rec *r)
{
	if (r->keep_data)
		for (size_t i = 0; i < r->n; i++)
			free(r->data[i]);
	free(r->data);
	free(r->ops);
}

static struct rec rec_run(const struct wl_params *p, bool keep_data, struct wl_stats *st)
{
	struct rec r = {.keep_data = keep_data, .fail_at = -1, .hash = 0xcbf29ce484222325ull};
	int rc = wl_run(p, rec_sink, &r, st);
	if (rc)
		fail_msg("wl_run(%s): %d %s", wl_pattern_name(p->pattern), rc, hv_errmsg());
	return r;
}

static void params(struct wl_params *p, enum wl_pattern pat, uint64_t disk, uint64_t bytes,
		   uint64_t seed)
{
	wl_params_init(p, pat, disk, bytes, seed);
}

/* ---- names ---------------------------------------------------------------------------------*/

static void test_pattern_names_round_trip(void **state)
{
	(void)state;
	const char *names[] = {"random", "sequential", "zipf", "overwrite", "trim"};
	for (int i = 0; i < WL_PATTERN_COUNT; i++) {
		enum wl_pattern p = WL_TRIM;
		assert_int_equal(wl_pattern_parse(names[i], &p), 0);
		assert_int_equal(p, i);
		assert_string_equal(wl_pattern_name(p), names[i]);
	}
	enum wl_pattern p = WL_ZIPF;
	assert_int_equal(wl_pattern_parse("Random ", &p), HV_EINVAL);
	assert_int_equal(p, WL_ZIPF); /* unchanged on failure */
	assert_non_null(strstr(hv_errmsg(), "'Random '"));
	assert_non_null(strstr(hv_errmsg(), "random, sequential, zipf, overwrite or trim"));
	assert_int_equal(wl_pattern_parse(NULL, &p), HV_EINVAL);
	assert_string_equal(wl_pattern_name((enum wl_pattern)99), "?");
}

/* ---- determinism ---------------------------------------------------------------------------*/

static void test_same_seed_same_stream_other_seed_differs(void **state)
{
	(void)state;
	for (int pat = 0; pat < WL_PATTERN_COUNT; pat++) {
		struct wl_params p;
		params(&p, (enum wl_pattern)pat, 64 * MIB, 16 * MIB, 42);
		p.io_max = 256 * KIB;
		struct rec a = rec_run(&p, false, NULL), b = rec_run(&p, false, NULL);
		assert_int_equal(a.n, b.n);
		assert_memory_equal(a.ops, b.ops, a.n * sizeof *a.ops);
		assert_true(a.hash == b.hash);
		p.seed = 43;
		struct rec c = rec_run(&p, false, NULL);
		assert_true(c.hash != a.hash);
		/* overwrite's offsets are fixed by design; only its bytes depend on the seed */
		if (pat != WL_OVERWRITE)
			assert_true(c.n != a.n || memcmp(a.ops, c.ops, a.n * sizeof *a.ops) != 0);
		rec_free(&a);
		rec_free(&b);
		rec_free(&c);
	}
}

/* The bytes of every scenario depend on these: a change here is a change of every simulated
 * disk, which must be deliberate. Also catches differences between machines (byte order,
 * compiler, libm), since nothing in the generator may depend on them. */
static void test_golden_hashes(void **state)
{
	(void)state;
	static const uint64_t golden[WL_PATTERN_COUNT] = {
		[WL_RANDOM] = 0x788c0f9aaf51497aull,
		[WL_SEQUENTIAL] = 0x455a29b93898557aull,
		[WL_ZIPF] = 0x92dafc5a5cbb237aull,
		[WL_OVERWRITE] = 0x880933675e39e402ull,
		[WL_TRIM] = 0xd7d3360d7a847a5full,
	};
	int bad = 0;
	for (int pat = 0; pat < WL_PATTERN_COUNT; pat++) {
		struct wl_params p;
		params(&p, (enum wl_pattern)pat, 256 * MIB + 4096, 8 * MIB, 0x5eed);
		p.io_max = 128 * KIB;
		p.cursor = 100 * MIB;
		struct rec r = rec_run(&p, false, NULL);
		if (r.hash != golden[pat]) {
			print_message("golden %s: 0x%016llx, expected 0x%016llx\n",
				      wl_pattern_name((enum wl_pattern)pat),
				      (unsigned long long)r.hash, (unsigned long long)golden[pat]);
			bad++;
		}
		rec_free(&r);
	}
	assert_int_equal(bad, 0);
}

/* A shorter run is the prefix of a longer one (only its last op is cut). */
static void test_shorter_run_is_prefix(void **state)
{
	(void)state;
	const enum wl_pattern pats[] = {WL_RANDOM, WL_SEQUENTIAL, WL_ZIPF, WL_TRIM};
	for (size_t k = 0; k < sizeof pats / sizeof pats[0]; k++) {
		struct wl_params p;
		params(&p, pats[k], 32 * MIB, 5 * MIB + 512, 7);
		struct rec s = rec_run(&p, true, NULL);
		p.bytes = 20 * MIB;
		struct rec l = rec_run(&p, true, NULL);
		assert_true(l.n > s.n);
		for (size_t i = 0; i < s.n; i++) {
			assert_true(s.ops[i].offset == l.ops[i].offset || i == s.n - 1);
			assert_true(s.ops[i].length <= l.ops[i].length);
			if (s.ops[i].zero)
				continue;
			assert_memory_equal(s.data[i], l.data[i], s.ops[i].length);
		}
		rec_free(&s);
		rec_free(&l);
	}
}

/* ---- geometry ------------------------------------------------------------------------------*/

static void test_ops_aligned_inside_disk_exact_total(void **state)
{
	(void)state;
	const uint32_t sectors[] = {512, 4096};
	for (int pat = 0; pat < WL_PATTERN_COUNT; pat++)
		for (int si = 0; si < 2; si++) {
			uint32_t sec = sectors[si];
			struct wl_params p;
			/* disk not a multiple of io_max or of the Zipf region */
			uint64_t disk = 10 * MIB + 3 * sec;
			params(&p, (enum wl_pattern)pat, disk, 37 * MIB + 5 * sec, 99 + (uint64_t)si);
			p.sector = sec;
			p.io_min = 8 * KIB;
			p.io_max = 512 * KIB;
			p.cursor = 9 * MIB;
			struct wl_stats st;
			struct rec r = rec_run(&p, false, &st);
			uint64_t total = 0, zero = 0;
			for (size_t i = 0; i < r.n; i++) {
				const struct wl_op *o = &r.ops[i];
				assert_int_equal(o->offset % sec, 0);
				assert_int_equal(o->length % sec, 0);
				assert_true(o->length > 0 && o->length <= p.io_max);
				assert_true(o->offset + o->length <= disk);
				assert_int_equal(o->zero, pat == WL_TRIM);
				/* only the last op, or (sequential/overwrite) the op that meets the
				 * disk end, may be shorter than io_min */
				if (o->length < p.io_min)
					assert_true(i == r.n - 1 || o->offset + o->length == disk);
				total += o->length;
				zero += o->zero ? o->length : 0;
			}
			uint64_t want = pat == WL_OVERWRITE ? disk : p.bytes;
			assert_true(total == want);
			assert_true(st.bytes == want);
			assert_true(st.zero_bytes == zero);
			assert_int_equal(st.ops, r.n);
			assert_false(r.data_null_seen);
			assert_false(r.data_given_for_zero);
			assert_int_equal(st.buffer_bytes, pat == WL_TRIM ? 0 : p.io_max);
			rec_free(&r);
		}
}

static void test_zero_bytes_no_ops(void **state)
{
	(void)state;
	for (int pat = 0; pat < WL_PATTERN_COUNT; pat++) {
		if (pat == WL_OVERWRITE)
			continue;
		struct wl_params p;
		params(&p, (enum wl_pattern)pat, 4 * MIB, 0, 1);
		p.cursor = 1 * MIB;
		struct wl_stats st;
		struct rec r = rec_run(&p, false, &st);
		assert_int_equal(r.calls, 0);
		assert_int_equal(st.ops, 0);
		assert_true(st.next_cursor == p.cursor);
		rec_free(&r);
	}
}

static void test_tiny_disk_caps_io_size(void **state)
{
	(void)state;
	struct wl_params p;
	params(&p, WL_RANDOM, 512, 4096, 3); /* one sector, default io 4 KiB .. 1 MiB */
	struct rec r = rec_run(&p, false, NULL);
	assert_int_equal(r.n, 8);
	for (size_t i = 0; i < r.n; i++) {
		assert_int_equal(r.ops[i].offset, 0);
		assert_int_equal(r.ops[i].length, 512);
	}
	rec_free(&r);
}

static void test_sequential_continues_at_cursor_and_wraps(void **state)
{
	(void)state;
	struct wl_params p;
	params(&p, WL_SEQUENTIAL, 8 * MIB, 5 * MIB, 11);
	p.cursor = 6 * MIB;
	p.io_min = 64 * KIB;
	p.io_max = 768 * KIB;
	struct wl_stats st;
	struct rec r = rec_run(&p, false, &st);
	assert_true(r.ops[0].offset == 6 * MIB);
	bool wrapped = false;
	for (size_t i = 1; i < r.n; i++) {
		uint64_t end = r.ops[i - 1].offset + r.ops[i - 1].length;
		if (end == 8 * MIB) {
			assert_int_equal(r.ops[i].offset, 0);
			wrapped = true;
		} else {
			assert_true(r.ops[i].offset == end);
		}
	}
	assert_true(wrapped);
	assert_true(st.next_cursor == 3 * MIB);
	const struct wl_op *last = &r.ops[r.n - 1];
	assert_true(last->offset + last->length == 3 * MIB);

	/* the next run picks up where this one stopped */
	p.cursor = st.next_cursor;
	p.seed = 12;
	struct rec n = rec_run(&p, false, &st);
	assert_true(n.ops[0].offset == 3 * MIB);
	assert_true(st.next_cursor == 0); /* 3 + 5 = 8 MiB: exactly the end wraps to 0 */
	rec_free(&r);
	rec_free(&n);
}

static void test_overwrite_covers_every_byte_once(void **state)
{
	(void)state;
	const uint64_t disks[] = {10 * MIB + 4096, 3 * MIB, 512};
	for (size_t d = 0; d < 3; d++) {
		uint64_t disk = disks[d];
		struct wl_params p;
		params(&p, WL_OVERWRITE, disk, 0 /* ignored */, 5);
		struct wl_stats st;
		struct rec r = rec_run(&p, false, &st);
		uint64_t nsec = disk / 512;
		uint8_t *seen = calloc(nsec, 1);
		for (size_t i = 0; i < r.n; i++) {
			for (uint64_t s = r.ops[i].offset / 512;
			     s < (r.ops[i].offset + r.ops[i].length) / 512; s++)
				seen[s]++;
			if (i + 1 < r.n)
				assert_int_equal(r.ops[i].length, disk < MIB ? disk : MIB);
		}
		for (uint64_t s = 0; s < nsec; s++)
			if (seen[s] != 1)
				fail_msg("disk %llu: sector %llu written %u times",
					 (unsigned long long)disk, (unsigned long long)s, seen[s]);
		assert_true(st.bytes == disk);
		free(seen);
		/* bytes has no effect */
		p.bytes = 100 * GIB;
		struct rec r2 = rec_run(&p, false, NULL);
		assert_true(r2.hash == r.hash);
		rec_free(&r);
		rec_free(&r2);
	}
}

static void test_trim_ops_are_zero_without_data(void **state)
{
	(void)state;
	struct wl_params p;
	params(&p, WL_TRIM, 1 * GIB, 64 * MIB, 21);
	struct wl_stats st;
	struct rec r = rec_run(&p, false, &st);
	assert_true(r.n > 10);
	for (size_t i = 0; i < r.n; i++)
		assert_true(r.ops[i].zero);
	assert_false(r.data_given_for_zero);
	assert_true(st.zero_bytes == 64 * MIB);
	assert_true(st.bytes == 64 * MIB);
	assert_int_equal(st.buffer_bytes, 0);
	rec_free(&r);
}

/* ---- distributions -------------------------------------------------------------------------*/

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* share of ops that landed in the hottest `top` of `nreg` 1 MiB regions */
static double top_share(const struct rec *r, uint64_t nreg, uint64_t top, uint64_t *hottest)
{
	uint64_t *cnt = calloc(nreg, sizeof *cnt);
	for (size_t i = 0; i < r->n; i++)
		cnt[r->ops[i].offset / MIB]++;
	uint64_t best = 0;
	for (uint64_t i = 1; i < nreg; i++)
		if (cnt[i] > cnt[best])
			best = i;
	if (hottest)
		*hottest = best;
	qsort(cnt, nreg, sizeof *cnt, cmp_desc);
	uint64_t sum = 0;
	for (uint64_t i = 0; i < top; i++)
		sum += cnt[i];
	free(cnt);
	return (double)sum / (double)r->n;
}

static void test_zipf_concentrates_on_hot_regions(void **state)
{
	(void)state;
	struct wl_params p;
	params(&p, WL_ZIPF, 1 * GIB, 50000ull * 4096, 77);
	p.io_min = p.io_max = 4096;
	struct wl_stats st;
	struct rec r = rec_run(&p, false, &st);
	assert_int_equal(st.regions, 1024);
	assert_int_equal(st.region_size, MIB);
	assert_int_equal(st.table_bytes, 1024 * 8);
	/* ops stay inside their region */
	for (size_t i = 0; i < r.n; i++)
		assert_int_equal(r.ops[i].offset / MIB, (r.ops[i].offset + r.ops[i].length - 1) / MIB);

	/* oracle: the Zipf formula. H = sum k^-s; rank 1 gets 1/H, the top 102 ranks their sum */
	double h = 0, h_top = 0;
	for (int k = 1; k <= 1024; k++) {
		h += pow(k, -1.1);
		if (k <= 102)
			h_top += pow(k, -1.1);
	}
	uint64_t hot1;
	double top1 = top_share(&r, 1024, 1, &hot1), top10 = top_share(&r, 1024, 102, NULL);
	print_message("zipf s=1.1: top region %.3f (formula %.3f), top 10%% %.3f (formula %.3f)\n",
		      top1, 1 / h, top10, h_top / h);
	assert_true(top10 > 0.5);
	assert_true(fabs(top10 - h_top / h) < 0.03);
	assert_true(fabs(top1 - 1 / h) < 0.02);

	/* the ranking is seeded: another seed puts the hottest spot elsewhere */
	p.seed = 78;
	struct rec o = rec_run(&p, false, NULL);
	uint64_t hot2;
	top_share(&o, 1024, 1, &hot2);
	assert_true(hot1 != hot2);

	/* a steeper exponent concentrates more */
	p.zipf_s = 3.0;
	struct rec s3 = rec_run(&p, false, NULL);
	assert_true(top_share(&s3, 1024, 1, NULL) > 0.75); /* 1/zeta(3) = 0.83 */

	/* the same seed with random offsets does not concentrate: the contrast makes the first
	 * assertion meaningful */
	p.pattern = WL_RANDOM;
	struct rec u = rec_run(&p, false, NULL);
	assert_true(top_share(&u, 1024, 102, NULL) < 0.2);
	rec_free(&r);
	rec_free(&o);
	rec_free(&s3);
	rec_free(&u);
}

/* With 1 MiB regions and 1 MiB ops the op fills its region exactly; with ops larger than a
 * region it starts at the region start. Either way it stays on the disk. */
static void test_zipf_large_ops(void **state)
{
	(void)state;
	struct wl_params p;
	params(&p, WL_ZIPF, 8 * MIB + 512, 64 * MIB, 4);
	p.io_min = MIB;
	p.io_max = 3 * MIB;
	struct rec r = rec_run(&p, false, NULL);
	for (size_t i = 0; i < r.n; i++) {
		const struct wl_op *o = &r.ops[i];
		assert_true(o->offset + o->length <= p.disk_size);
		assert_true(o->offset % MIB == 0 || o->offset + o->length == p.disk_size);
	}
	rec_free(&r);
}

static void test_random_spreads_evenly(void **state)
{
	(void)state;
	struct wl_params p;
	params(&p, WL_RANDOM, 16 * GIB, 16000ull * 4096, 1234);
	p.io_min = p.io_max = 4096;
	struct rec r = rec_run(&p, false, NULL);
	uint64_t bucket[16] = {0};
	for (size_t i = 0; i < r.n; i++)
		bucket[r.ops[i].offset / GIB]++;
	double expect = (double)r.n / 16, chi2 = 0;
	for (int b = 0; b < 16; b++)
		chi2 += (bucket[b] - expect) * (bucket[b] - expect) / expect;
	print_message("random: chi-square %.1f over 16 buckets (df 15, p=0.001 at 37.7)\n", chi2);
	assert_true(chi2 < 50);
	rec_free(&r);
}

/* ---- data ----------------------------------------------------------------------------------*/

/* a trivial compressor's view: bytes equal to the byte 8 positions back */
static double repeat_share(const uint8_t *d, uint32_t n)
{
	uint64_t rep = 0;
	for (uint32_t i = 8; i < n; i++)
		rep += d[i] == d[i - 8];
	return (double)rep / n;
}

static void test_compressible_share(void **state)
{
	(void)state;
	const uint32_t pcts[] = {0, 25, 50, 100};
	for (int k = 0; k < 4; k++) {
		struct wl_params p;
		params(&p, WL_RANDOM, 1 * GIB, 4 * MIB, 8);
		p.io_min = p.io_max = 64 * KIB;
		p.compress_pct = pcts[k];
		struct rec r = rec_run(&p, true, NULL);
		uint32_t cut = WL_COMPRESS_UNIT * pcts[k] / 100 / 8 * 8;
		for (size_t i = 0; i < r.n; i++) {
			const uint8_t *d = r.data[i];
			double share = repeat_share(d, r.ops[i].length);
			assert_true(fabs(share - pcts[k] / 100.0) < 0.01);
			/* per 4 KiB unit: the leading share is one repeated 8-byte word, the rest
			 * never repeats the word before it */
			for (uint32_t u = 0; u < r.ops[i].length; u += WL_COMPRESS_UNIT) {
				for (uint32_t j = 8; j < cut; j += 8)
					assert_memory_equal(d + u + j, d + u, 8);
				for (uint32_t j = cut + 8; j < WL_COMPRESS_UNIT; j += 8)
					assert_memory_not_equal(d + u + j, d + u + j - 8, 8);
			}
		}
		rec_free(&r);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Deduplication must not be trivial: no 4 KiB unit repeats, within or across ops (also with
 * the same offset written twice), and each op has its own pattern word. */
static void test_data_differs_between_ops(void **state)
{
	(void)state;
	struct wl_params p;
	params(&p, WL_ZIPF, 4 * MIB, 32 * MIB, 9); /* 4 regions: offsets repeat a lot */
	p.io_min = p.io_max = 16 * KIB;
	struct rec r = rec_run(&p, true, NULL);
	size_t nu = r.n * 4, k = 0;
	uint64_t *h = malloc(nu * sizeof *h), *pat = malloc(r.n * sizeof *pat);
	for (size_t i = 0; i < r.n; i++) {
		pat[i] = hv_le64(r.data[i]);
		for (uint32_t u = 0; u < 16 * KIB; u += 4096)
			h[k++] = hv_hash64(r.data[i] + u, 4096, 0xcbf29ce484222325ull);
	}
	qsort(h, nu, sizeof *h, cmp_u64);
	qsort(pat, r.n, sizeof *pat, cmp_u64);
	for (size_t i = 1; i < nu; i++)
		assert_true(h[i] != h[i - 1]);
	for (size_t i = 1; i < r.n; i++)
		assert_true(pat[i] != pat[i - 1]);
	free(h);
	free(pat);
	rec_free(&r);
}

/* ---- errors --------------------------------------------------------------------------------*/

static void test_sink_error_stops_and_propagates(void **state)
{
	(void)state;
	for (int pat = 0; pat < WL_PATTERN_COUNT; pat++) {
		struct wl_params p;
		params(&p, (enum wl_pattern)pat, 64 * MIB, 32 * MIB, 2);
		p.io_min = p.io_max = 64 * KIB;
		struct rec r = {.fail_at = 3, .fail_rc = HV_EIO};
		struct wl_stats st;
		assert_int_equal(wl_run(&p, rec_sink, &r, &st), HV_EIO);
		assert_int_equal(r.calls, 4);
		assert_int_equal(st.ops, 3);
		assert_true(st.bytes == 3 * 64 * KIB);
		assert_string_equal(hv_errmsg(), "test sink: refused op 3");
		if (pat == WL_SEQUENTIAL) /* the cursor after the last accepted op */
			assert_true(st.next_cursor == 3 * 64 * KIB);
		rec_free(&r);
	}
	/* a positive return also stops, and is returned unchanged */
	struct wl_params p;
	params(&p, WL_RANDOM, 64 * MIB, 32 * MIB, 2);
	struct rec r = {.fail_at = 0, .fail_rc = 1};
	assert_int_equal(wl_run(&p, rec_sink, &r, NULL), 1);
	assert_int_equal(r.calls, 1);
	rec_free(&r);
}

struct bad {
	const char *what;
	void (*edit)(struct wl_params *p);
	const char *msg;
};
static void e_tiny(struct wl_params *p) { p->disk_size = 100; }
static void e_zero_disk(struct wl_params *p) { p->disk_size = 0; }
static void e_tiny4k(struct wl_params *p) { p->sector = 4096, p->disk_size = 2048; }
static void e_unaligned_disk(struct wl_params *p) { p->disk_size = MIB + 100; }
static void e_sector(struct wl_params *p) { p->sector = 1024; }
static void e_io_align(struct wl_params *p) { p->io_min = 1000; }
static void e_io_align4k(struct wl_params *p) { p->sector = 4096, p->io_min = 512; }
static void e_io_order(struct wl_params *p) { p->io_min = 2 * MIB; }
static void e_io_limit(struct wl_params *p) { p->io_max = 128 * MIB; }
static void e_bytes(struct wl_params *p) { p->bytes = 1000; }
static void e_cursor_end(struct wl_params *p) { p->pattern = WL_SEQUENTIAL, p->cursor = 64 * MIB; }
static void e_cursor_align(struct wl_params *p) { p->pattern = WL_SEQUENTIAL, p->cursor = 7; }
static void e_zipf_neg(struct wl_params *p) { p->pattern = WL_ZIPF, p->zipf_s = -1; }
static void e_zipf_nan(struct wl_params *p) { p->pattern = WL_ZIPF, p->zipf_s = NAN; }
static void e_zipf_big(struct wl_params *p) { p->pattern = WL_ZIPF, p->zipf_s = 17; }
static void e_pct(struct wl_params *p) { p->compress_pct = 101; }
static void e_pattern(struct wl_params *p) { p->pattern = (enum wl_pattern)9; }

static void test_invalid_params_fail_clearly(void **state)
{
	(void)state;
	const struct bad cases[] = {
		{"tiny disk", e_tiny, "disk_size 100 is smaller than one sector (512)"},
		{"empty disk", e_zero_disk, "disk_size 0 is smaller than one sector (512)"},
		{"tiny 4k disk", e_tiny4k, "disk_size 2048 is smaller than one sector (4096)"},
		{"unaligned disk", e_unaligned_disk,
		 "disk_size 1048676 is not a multiple of the sector size 512"},
		{"sector", e_sector, "sector 1024 is not 512 or 4096"},
		{"io align", e_io_align, "io_min 1000 / io_max 1048576: not a multiple of the sector size 512"},
		{"io align 4k", e_io_align4k, "not a multiple of the sector size 4096"},
		{"io order", e_io_order, "io_min 2097152 is larger than io_max 1048576"},
		{"io limit", e_io_limit, "io_max 134217728 is larger than the limit 67108864"},
		{"bytes", e_bytes, "bytes 1000 is not a multiple of the sector size 512"},
		{"cursor end", e_cursor_end, "cursor 67108864 is not a sector-aligned offset inside the disk"},
		{"cursor align", e_cursor_align, "cursor 7 is not"},
		{"zipf negative", e_zipf_neg, "zipf_s -1 is outside (0, 16]"},
		{"zipf nan", e_zipf_nan, "zipf_s"},
		{"zipf big", e_zipf_big, "zipf_s 17 is outside"},
		{"pct", e_pct, "compress_pct 101 is larger than 100"},
		{"pattern", e_pattern, "pattern 9 is not a known pattern"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct wl_params p;
		params(&p, WL_RANDOM, 64 * MIB, 4 * MIB, 1);
		cases[i].edit(&p);
		struct rec r = {.fail_at = -1};
		struct wl_stats st;
		hv_err_clear();
		int rc = wl_run(&p, rec_sink, &r, &st);
		if (rc != HV_EINVAL || !strstr(hv_errmsg(), cases[i].msg) ||
		    strncmp(hv_errmsg(), "workload: ", 10) != 0)
			fail_msg("%s: rc %d, message '%s', expected '%s'", cases[i].what, rc,
				 hv_errmsg(), cases[i].msg);
		assert_int_equal(r.calls, 0);
		assert_int_equal(st.ops, 0);
		rec_free(&r);
	}
	struct wl_params p;
	params(&p, WL_RANDOM, 64 * MIB, 4 * MIB, 1);
	assert_int_equal(wl_run(&p, NULL, NULL, NULL), HV_EINVAL);
	assert_non_null(strstr(hv_errmsg(), "sink"));
	assert_int_equal(wl_run(NULL, rec_sink, NULL, NULL), HV_EINVAL);
}

/* Zero in sector, io sizes and zipf_s means the documented default. */
static void test_zero_fields_mean_defaults(void **state)
{
	(void)state;
	for (int pat = 0; pat < WL_PATTERN_COUNT; pat++) {
		struct wl_params a, b = {.pattern = (enum wl_pattern)pat,
					 .disk_size = 256 * MIB,
					 .bytes = 32 * MIB,
					 .seed = 6,
					 .compress_pct = WL_DEFAULT_COMPRESS_PCT};
		params(&a, (enum wl_pattern)pat, 256 * MIB, 32 * MIB, 6);
		struct rec ra = rec_run(&a, false, NULL), rb = rec_run(&b, false, NULL);
		assert_true(ra.hash == rb.hash);
		rec_free(&ra);
		rec_free(&rb);
	}
}

/* ---- bounded memory ------------------------------------------------------------------------*/

static void test_zipf_64tib_table_is_bounded(void **state)
{
	(void)state;
	struct wl_params p;
	uint64_t disk = 64ull << 40;
	params(&p, WL_ZIPF, disk, 64 * MIB, 31);
	p.io_min = p.io_max = 64 * KIB;
	struct wl_stats st;
	struct rec r = rec_run(&p, false, &st);
	assert_true(st.regions <= WL_ZIPF_MAX_REGIONS);
	assert_true(st.table_bytes <= 8ull * MIB);
	assert_true(st.region_size == 64ull * MIB); /* 64 TiB / 2^20 regions */
	assert_true(st.region_size * st.regions >= disk);
	assert_true(st.buffer_bytes == 64 * KIB);
	/* the ops reach far into the disk, and concentrate in a few regions */
	uint64_t maxoff = 0;
	for (size_t i = 0; i < r.n; i++) {
		assert_true(r.ops[i].offset + r.ops[i].length <= disk);
		if (r.ops[i].offset > maxoff)
			maxoff = r.ops[i].offset;
	}
	assert_true(maxoff > disk / 2);
	rec_free(&r);

	/* a disk that is not a multiple of the region size: the last region is short */
	params(&p, WL_ZIPF, (64ull << 40) - 4096, 16 * MIB, 31);
	r = rec_run(&p, false, &st);
	assert_true(st.regions == WL_ZIPF_MAX_REGIONS);
	for (size_t i = 0; i < r.n; i++)
		assert_true(r.ops[i].offset + r.ops[i].length <= p.disk_size);
	rec_free(&r);
}

/* The largest disk the fields allow: nothing overflows, every op stays inside. */
static void test_disk_near_2_64(void **state)
{
	(void)state;
	for (int pat = 0; pat < WL_PATTERN_COUNT; pat++) {
		if (pat == WL_OVERWRITE) /* would write 2^64 bytes */
			continue;
		struct wl_params p;
		uint64_t disk = UINT64_MAX / 4096 * 4096;
		params(&p, (enum wl_pattern)pat, disk, 64 * MIB, 17);
		p.sector = 4096;
		p.io_min = 16 * KIB; /* > the 3 sectors before the end: the first op wraps */
		p.cursor = disk - 4096 * 3;
		struct wl_stats st;
		struct rec r = rec_run(&p, false, &st);
		uint64_t total = 0;
		for (size_t i = 0; i < r.n; i++) {
			assert_true(r.ops[i].length <= disk && r.ops[i].offset <= disk - r.ops[i].length);
			total += r.ops[i].length;
		}
		assert_true(total == 64 * MIB);
		if (pat == WL_ZIPF)
			assert_true(st.regions <= WL_ZIPF_MAX_REGIONS);
		if (pat == WL_SEQUENTIAL)
			assert_int_equal(r.ops[1].offset, 0); /* 3 sectors, then wrapped */
		rec_free(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pattern_names_round_trip),
		cmocka_unit_test(test_same_seed_same_stream_other_seed_differs),
		cmocka_unit_test(test_golden_hashes),
		cmocka_unit_test(test_shorter_run_is_prefix),
		cmocka_unit_test(test_ops_aligned_inside_disk_exact_total),
		cmocka_unit_test(test_zero_bytes_no_ops),
		cmocka_unit_test(test_tiny_disk_caps_io_size),
		cmocka_unit_test(test_sequential_continues_at_cursor_and_wraps),
		cmocka_unit_test(test_overwrite_covers_every_byte_once),
		cmocka_unit_test(test_trim_ops_are_zero_without_data),
		cmocka_unit_test(test_zipf_concentrates_on_hot_regions),
		cmocka_unit_test(test_zipf_large_ops),
		cmocka_unit_test(test_random_spreads_evenly),
		cmocka_unit_test(test_compressible_share),
		cmocka_unit_test(test_data_differs_between_ops),
		cmocka_unit_test(test_sink_error_stops_and_propagates),
		cmocka_unit_test(test_invalid_params_fail_clearly),
		cmocka_unit_test(test_zero_fields_mean_defaults),
		cmocka_unit_test(test_zipf_64tib_table_is_bounded),
		cmocka_unit_test(test_disk_near_2_64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
