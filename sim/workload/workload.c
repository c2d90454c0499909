/*
 * workload — seeded guest-write generators (see workload.h for the patterns and parameters).
 *
 * Streams: "wl.sizes" draws each op's length, "wl.offsets" its position (random, trim, and the
 * offset inside a Zipf region), "wl.zipf" the Zipf rank, "wl.zipf.perm" the rank -> region
 * permutation, "wl.data" one 64-bit seed per written op from which its bytes are filled. Keeping
 * them apart means a change to one choice (say, the size distribution) does not shift the
 * others more than it must.
 *
 * Zipf table: weight(rank) = 2^40 * rank^-s in fixed point, built from integer-only log2/exp2
 * (a 1025-entry log2 table with linear interpolation and three 256-entry exp2 tables derived by
 * integer square roots). Every step is integer arithmetic, so the table, and therefore every
 * choice, is identical on every machine and compiler; the weights are accurate to ~1e-7,
 * which is far below what a workload can notice. The cumulative table has one uint64 per
 * region and regions are capped at WL_ZIPF_MAX_REGIONS; the ranking permutation is a keyed
 * bijection on [0, 2^k) with cycle walking, so it needs no table at all.
 *
 * Data: per op, 4 xorshift64 lanes seeded from the op's seed (fast, incompressible, different
 * for every op) and, per WL_COMPRESS_UNIT, a leading share of one repeated 8-byte word. Words
 * are stored little-endian so the bytes do not depend on the host's byte order.
 *
 * Must not: read the clock, allocate per op, or use floating point for any choice (zipf_s is
 * quantized once to 1/65536 with exact IEEE operations).
 */
#include "workload.h"

#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

#define Q62 (1ull << 62)
#define LOG_TABLE_BITS 10
#define LOG_TABLE_N (1u << LOG_TABLE_BITS)

static const char *const pattern_names[WL_PATTERN_COUNT] = {
	[WL_RANDOM] = "random",
	[WL_SEQUENTIAL] = "sequential",
	[WL_ZIPF] = "zipf",
	[WL_OVERWRITE] = "overwrite",
	[WL_TRIM] = "trim",
};

int wl_pattern_parse(const char *name, enum wl_pattern *out)
{
	if (!name)
		return hv_err(HV_EINVAL, "workload: no pattern name given (expected random, "
					 "sequential, zipf, overwrite or trim)");
	for (int i = 0; i < WL_PATTERN_COUNT; i++)
		if (strcmp(name, pattern_names[i]) == 0) {
			*out = (enum wl_pattern)i;
			return 0;
		}
	return hv_err(HV_EINVAL,
		      "workload: unknown pattern '%s' (expected random, sequential, zipf, overwrite "
		      "or trim)",
		      name);
}

const char *wl_pattern_name(enum wl_pattern p)
{
	return (unsigned)p < WL_PATTERN_COUNT ? pattern_names[p] : "?";
}

void wl_params_init(struct wl_params *p, enum wl_pattern pattern, uint64_t disk_size,
		    uint64_t bytes, uint64_t seed)
{
	memset(p, 0, sizeof *p);
	p->pattern = pattern;
	p->disk_size = disk_size;
	p->bytes = bytes;
	p->seed = seed;
	p->sector = WL_DEFAULT_SECTOR;
	p->io_min = WL_DEFAULT_IO_MIN;
	p->io_max = WL_DEFAULT_IO_MAX;
	p->zipf_s = WL_DEFAULT_ZIPF_S;
	p->compress_pct = WL_DEFAULT_COMPRESS_PCT;
}

/* ---- parameters ----------------------------------------------------------------------------*/

/* Copies *in to *p with defaults applied and io sizes capped at the disk; all checks here, so
 * a failure generates nothing. */
static int resolve(const struct wl_params *in, struct wl_params *p)
{
	*p = *in;
	if ((unsigned)p->pattern >= WL_PATTERN_COUNT)
		return hv_err(HV_EINVAL, "workload: pattern %u is not a known pattern",
			      (unsigned)p->pattern);
	if (!p->sector)
		p->sector = WL_DEFAULT_SECTOR;
	if (p->sector != 512 && p->sector != 4096)
		return hv_err(HV_EINVAL, "workload: sector %u is not 512 or 4096", p->sector);
	if (p->disk_size < p->sector)
		return hv_err(HV_EINVAL, "workload: disk_size %llu is smaller than one sector (%u)",
			      (unsigned long long)p->disk_size, p->sector);
	if (p->disk_size % p->sector)
		return hv_err(HV_EINVAL,
			      "workload: disk_size %llu is not a multiple of the sector size %u",
			      (unsigned long long)p->disk_size, p->sector);
	if (!p->io_max)
		p->io_max = WL_DEFAULT_IO_MAX;
	if (!p->io_min)
		p->io_min = p->io_max < WL_DEFAULT_IO_MIN ? p->io_max : WL_DEFAULT_IO_MIN;
	if (p->io_min % p->sector || p->io_max % p->sector)
		return hv_err(HV_EINVAL,
			      "workload: io_min %u / io_max %u: not a multiple of the sector size %u",
			      p->io_min, p->io_max, p->sector);
	if (p->io_min > p->io_max)
		return hv_err(HV_EINVAL, "workload: io_min %u is larger than io_max %u", p->io_min,
			      p->io_max);
	if (p->io_max > WL_IO_LIMIT)
		return hv_err(HV_EINVAL, "workload: io_max %u is larger than the limit %u",
			      p->io_max, WL_IO_LIMIT);
	if (p->bytes % p->sector)
		return hv_err(HV_EINVAL,
			      "workload: bytes %llu is not a multiple of the sector size %u",
			      (unsigned long long)p->bytes, p->sector);
	if (p->pattern == WL_SEQUENTIAL && (p->cursor % p->sector || p->cursor >= p->disk_size))
		return hv_err(HV_EINVAL,
			      "workload: cursor %llu is not a sector-aligned offset inside the disk "
			      "(disk_size %llu, sector %u)",
			      (unsigned long long)p->cursor, (unsigned long long)p->disk_size,
			      p->sector);
	if (p->pattern == WL_ZIPF) {
		if (p->zipf_s == 0)
			p->zipf_s = WL_DEFAULT_ZIPF_S;
		if (!(p->zipf_s > 0 && p->zipf_s <= WL_ZIPF_S_MAX))
			return hv_err(HV_EINVAL, "workload: zipf_s %g is outside (0, %g]", p->zipf_s,
				      WL_ZIPF_S_MAX);
	}
	if (p->compress_pct > 100)
		return hv_err(HV_EINVAL, "workload: compress_pct %u is larger than 100",
			      p->compress_pct);
	if (p->io_max > p->disk_size)
		p->io_max = (uint32_t)p->disk_size;
	if (p->io_min > p->io_max)
		p->io_min = p->io_max;
	return 0;
}

/* ---- integer-only Zipf weights -------------------------------------------------------------*/

static uint64_t mul_q62(uint64_t a, uint64_t b) { return (uint64_t)(((u128)a * b) >> 62); }

/* Uniform in [0, n) from one draw (multiply-high; bias <= n / 2^64, irrelevant here). */
static uint64_t below(struct hv_rng *r, uint64_t n)
{
	return (uint64_t)(((u128)hv_rng_next(r) * n) >> 64);
}

static uint64_t isqrt128(u128 x)
{
	uint64_t r = 0;
	for (int b = 63; b >= 0; b--) {
		uint64_t t = r | 1ull << b;
		if ((u128)t * t <= x)
			r = t;
	}
	return r;
}

/* log2(m) in Q32 for m in [1, 2) given in Q62: square, and each time the square reaches 2 the
 * next bit of the logarithm is 1. */
static uint64_t log2_frac_q32(uint64_t m)
{
	uint64_t r = 0;
	for (int b = 31; b >= 0; b--) {
		m = mul_q62(m, m);
		if (m >= 2 * Q62) {
			m >>= 1;
			r |= 1ull << b;
		}
	}
	return r;
}

struct zipf_math {
	uint64_t log2t[LOG_TABLE_N + 1]; /* log2(1 + i/1024), Q32 */
	uint64_t exp2t[3][256];          /* 2^(-x / 2^8), 2^(-x / 2^16), 2^(-x / 2^24), Q62 */
};

static void zipf_math_init(struct zipf_math *z)
{
	for (uint32_t i = 0; i < LOG_TABLE_N; i++)
		z->log2t[i] = log2_frac_q32(Q62 + ((uint64_t)i << (62 - LOG_TABLE_BITS)));
	z->log2t[LOG_TABLE_N] = 1ull << 32;
	/* root[j] = 2^(-1/2^j): each is the square root of the previous one */
	uint64_t root[25];
	root[0] = Q62 / 2;
	for (int j = 1; j <= 24; j++)
		root[j] = isqrt128((u128)root[j - 1] << 62);
	for (int t = 0; t < 3; t++) {
		int k = 8 * (t + 1); /* table t covers fraction bits k-7 .. k */
		z->exp2t[t][0] = Q62;
		for (unsigned x = 1; x < 256; x++) {
			unsigned low = (unsigned)__builtin_ctz(x);
			z->exp2t[t][x] = mul_q62(z->exp2t[t][x & (x - 1)], root[k - (int)low]);
		}
	}
}

static uint64_t log2_q32(const struct zipf_math *z, uint64_t k)
{
	unsigned e = 63u - (unsigned)__builtin_clzll(k);
	uint64_t m = k << (63 - e);
	uint64_t idx = (m >> (63 - LOG_TABLE_BITS)) & (LOG_TABLE_N - 1);
	uint64_t rem = (m >> (31 - LOG_TABLE_BITS)) & 0xffffffffull;
	uint64_t lo = z->log2t[idx], hi = z->log2t[idx + 1];
	return ((uint64_t)e << 32) + lo + (((hi - lo) * rem) >> 32);
}

/* 2^40 * k^-s with s in Q16: 2^-(s log2 k) split into integer and fraction parts. */
static uint64_t zipf_weight(const struct zipf_math *z, uint64_t k, uint64_t s_q16)
{
	uint64_t y = log2_q32(z, k) * s_q16; /* Q48, < 2^57 for k <= 2^20, s <= 16 */
	uint64_t yi = y >> 48, yf = y & ((1ull << 48) - 1);
	uint64_t f = mul_q62(mul_q62(z->exp2t[0][yf >> 40], z->exp2t[1][(yf >> 32) & 255]),
			     z->exp2t[2][(yf >> 24) & 255]);
	return 22 + yi >= 64 ? 0 : f >> (22 + yi);
}

/* ---- generator -----------------------------------------------------------------------------*/

struct gen {
	struct wl_params q; /* resolved params */
	uint32_t min_s, max_s; /* io sizes in sectors */
	uint32_t cut;          /* compressible bytes per WL_COMPRESS_UNIT */
	struct hv_rng sizes, offsets, zipf, data;
	uint8_t *buf;
	/* zipf */
	uint64_t *cdf; /* cdf[i] = sum of weights of ranks 0..i (rank 0 is the hottest) */
	uint64_t nreg, reg_size;
	uint64_t pmask, padd[3], pmul[3];
	unsigned pshift;
};

static void zipf_geometry(uint64_t disk, uint64_t *reg_size, uint64_t *nreg)
{
	uint64_t rs = WL_ZIPF_MIN_REGION, n = disk / rs + (disk % rs != 0);
	while (n > WL_ZIPF_MAX_REGIONS) {
		rs *= 2;
		n = disk / rs + (disk % rs != 0);
	}
	*reg_size = rs;
	*nreg = n;
}

static int zipf_init(struct gen *g)
{
	zipf_geometry(g->q.disk_size, &g->reg_size, &g->nreg);
	if (!(g->cdf = malloc(g->nreg * sizeof *g->cdf)))
		return hv_err(HV_ENOMEM, "workload: out of memory for the Zipf table (%llu regions)",
			      (unsigned long long)g->nreg);
	struct zipf_math *z = malloc(sizeof *z);
	if (!z)
		return hv_err(HV_ENOMEM, "workload: out of memory");
	zipf_math_init(z);
	/* exact: scaling by 2^16 and adding 0.5 are correctly rounded, and s <= 16 */
	uint64_t s_q16 = (uint64_t)(g->q.zipf_s * 65536.0 + 0.5);
	uint64_t sum = 0;
	for (uint64_t i = 0; i < g->nreg; i++) {
		sum += zipf_weight(z, i + 1, s_q16);
		g->cdf[i] = sum;
	}
	free(z);

	unsigned bits = 0;
	while ((1ull << bits) < g->nreg)
		bits++;
	g->pmask = (1ull << bits) - 1;
	g->pshift = bits >= 2 ? (bits + 1) / 2 : 1;
	struct hv_rng pr = hv_rng_stream(g->q.seed, "wl.zipf.perm");
	for (int r = 0; r < 3; r++) {
		g->padd[r] = hv_rng_next(&pr);
		g->pmul[r] = hv_rng_next(&pr) | 1; /* odd: a bijection modulo 2^bits */
	}
	return 0;
}

/* rank -> region: a keyed bijection on [0, 2^bits), walked until it lands below nreg (a cycle
 * through rank itself exists, so this ends; on average after < 2 steps). */
static uint64_t zipf_region(const struct gen *g, uint64_t rank)
{
	uint64_t x = rank;
	do {
		for (int r = 0; r < 3; r++) {
			x = (x + g->padd[r]) & g->pmask;
			x = (x * g->pmul[r]) & g->pmask;
			x ^= x >> g->pshift;
		}
	} while (x >= g->nreg);
	return x;
}

static uint64_t zipf_offset(struct gen *g, uint64_t len)
{
	uint64_t t = below(&g->zipf, g->cdf[g->nreg - 1]);
	uint64_t lo = 0, hi = g->nreg - 1;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (g->cdf[mid] > t)
			hi = mid;
		else
			lo = mid + 1;
	}
	uint64_t disk = g->q.disk_size, sec = g->q.sector;
	/* written so that nothing overflows even for a disk near 2^64 */
	uint64_t rs = zipf_region(g, lo) * g->reg_size;
	uint64_t re = g->reg_size < disk - rs ? rs + g->reg_size : disk;
	if (len > disk - rs)
		return disk - len;
	uint64_t last = re - rs >= len ? re - len : rs; /* last start keeping the op inside */
	return rs + sec * below(&g->offsets, (last - rs) / sec + 1);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* len is a multiple of 512, cut a multiple of 8: every store is a whole word. The random words
 * of each unit take the lanes in turn from lane 0, so every byte depends only on the op seed
 * and its position, and a shortened op is a prefix of the full one. */
static void fill(uint8_t *buf, uint32_t len, uint64_t seed, uint32_t cut)
{
	struct hv_rng r = {seed};
	uint64_t s[4];
	for (int k = 0; k < 4; k++)
		s[k] = hv_rng_next(&r) | 1; /* xorshift state must not be 0 */
	uint64_t pat = hv_rng_next(&r);
	for (uint32_t u = 0; u < len; u += WL_COMPRESS_UNIT) {
		uint32_t n = len - u < WL_COMPRESS_UNIT ? len - u : WL_COMPRESS_UNIT;
		uint32_t c = cut < n ? cut : n, i;
		uint8_t *p = buf + u;
		for (i = 0; i < c; i += 8)
			hv_put64(p + i, pat);
		for (; i + 32 <= n; i += 32) {
			hv_put64(p + i, xorshift(&s[0]));
			hv_put64(p + i + 8, xorshift(&s[1]));
			hv_put64(p + i + 16, xorshift(&s[2]));
			hv_put64(p + i + 24, xorshift(&s[3]));
		}
		for (unsigned k = 0; i < n; i += 8, k++)
			hv_put64(p + i, xorshift(&s[k]));
	}
}

static uint64_t draw_len(struct gen *g, uint64_t remaining)
{
	uint64_t len = (g->min_s + below(&g->sizes, (uint64_t)(g->max_s - g->min_s) + 1)) * g->q.sector;
	return len < remaining ? len : remaining;
}

static int generate(struct gen *g, wl_sink sink, void *ctx, struct wl_stats *st)
{
	const struct wl_params *q = &g->q;
	uint64_t disk = q->disk_size, sec = q->sector;
	uint64_t remaining = q->pattern == WL_OVERWRITE ? disk : q->bytes;
	uint64_t pos = q->pattern == WL_SEQUENTIAL ? q->cursor : 0;
	while (remaining) {
		struct wl_op op = {.zero = q->pattern == WL_TRIM};
		uint64_t len;
		switch (q->pattern) {
		case WL_OVERWRITE:
			len = remaining < q->io_max ? remaining : q->io_max;
			op.offset = pos;
			pos += len;
			break;
		case WL_SEQUENTIAL:
			len = draw_len(g, remaining);
			if (len > disk - pos)
				len = disk - pos;
			op.offset = pos;
			pos = pos + len == disk ? 0 : pos + len;
			break;
		case WL_ZIPF:
			len = draw_len(g, remaining);
			op.offset = zipf_offset(g, len);
			break;
		default: /* WL_RANDOM, WL_TRIM */
			len = draw_len(g, remaining);
			op.offset = sec * below(&g->offsets, (disk - len) / sec + 1);
			break;
		}
		op.length = (uint32_t)len;
		const uint8_t *data = NULL;
		if (!op.zero) {
			fill(g->buf, op.length, hv_rng_next(&g->data), g->cut);
			data = g->buf;
		}
		int rc = sink(ctx, &op, data);
		if (rc)
			return rc;
		st->ops++;
		st->bytes += len;
		if (op.zero)
			st->zero_bytes += len;
		if (q->pattern == WL_SEQUENTIAL)
			st->next_cursor = pos;
		remaining -= len;
	}
	return 0;
}

int wl_run(const struct wl_params *p, wl_sink sink, void *ctx, struct wl_stats *stats)
{
	struct wl_stats st = {0};
	struct gen g = {0};
	int rc;
	if (!p || !sink) {
		rc = hv_err(HV_EINVAL, "workload: %s is NULL", p ? "sink" : "params");
		goto out;
	}
	st.next_cursor = p->cursor;
	if ((rc = resolve(p, &g.q)))
		goto out;
	g.min_s = g.q.io_min / g.q.sector;
	g.max_s = g.q.io_max / g.q.sector;
	g.cut = WL_COMPRESS_UNIT * g.q.compress_pct / 100 / 8 * 8;
	g.sizes = hv_rng_stream(g.q.seed, "wl.sizes");
	g.offsets = hv_rng_stream(g.q.seed, "wl.offsets");
	g.zipf = hv_rng_stream(g.q.seed, "wl.zipf");
	g.data = hv_rng_stream(g.q.seed, "wl.data");
	if (g.q.pattern == WL_ZIPF) {
		if ((rc = zipf_init(&g)))
			goto out;
		st.region_size = g.reg_size;
		st.regions = g.nreg;
		st.table_bytes = g.nreg * sizeof *g.cdf;
	}
	if (g.q.pattern != WL_TRIM) {
		if (!(g.buf = malloc(g.q.io_max))) {
			rc = hv_err(HV_ENOMEM, "workload: out of memory for a %u-byte buffer",
				    g.q.io_max);
			goto out;
		}
		st.buffer_bytes = g.q.io_max;
	}
	rc = generate(&g, sink, ctx, &st);
out:
	free(g.buf);
	free(g.cdf);
	if (stats)
		*stats = st;
	return rc;
}
