/*
 * rct_sbm — the sparse bitmap behind the open epoch (fine and coarse records): chunks of 2^16
 * bits held as run containers or bitmaps, with a sentinel for full chunks (see rct_internal.h).
 *
 * Must not: allocate anything for a chunk that is never written, spend more than a binary search
 * and a bounded memmove per chunk a write touches, or clear single bits (only sbm_clear clears;
 * the FULL sentinel depends on it).
 */
#include "rct_internal.h"

#include <stdlib.h>
#include <string.h>

/* The address of this constant marks a full chunk; nothing is read or written through it. */
static const struct sbm_chunk sbm_full_tag;
#define SBM_FULL ((struct sbm_chunk *)&sbm_full_tag)
#define LAST_BIT (SBM_CHUNK_BITS - 1)

static void chunk_free(struct sbm_chunk *c)
{
	if (!c || c == SBM_FULL)
		return;
	free(c->w);
	free(c->r);
	free(c);
}

int sbm_init(struct sbm *m, uint64_t nbits)
{
	m->nbits = nbits;
	m->nchunks = (size_t)((nbits + SBM_CHUNK_BITS - 1) >> SBM_CHUNK_SHIFT);
	m->chunks = calloc(m->nchunks ? m->nchunks : 1, sizeof *m->chunks);
	return m->chunks ? 0 : HV_ENOMEM;
}

void sbm_clear(struct sbm *m)
{
	for (size_t i = 0; i < m->nchunks; i++) {
		chunk_free(m->chunks[i]);
		m->chunks[i] = NULL;
	}
}

void sbm_free(struct sbm *m)
{
	if (!m->chunks)
		return;
	sbm_clear(m);
	free(m->chunks);
	m->chunks = NULL;
}

/* Bits [lo, hi] (inclusive) of a bitmap container. */
static void bits_set(uint64_t *w, uint32_t lo, uint32_t hi)
{
	uint32_t w0 = lo >> 6, w1 = hi >> 6;
	uint64_t m0 = ~0ull << (lo & 63), m1 = ~0ull >> (63 - (hi & 63));
	if (w0 == w1) {
		w[w0] |= m0 & m1;
		return;
	}
	w[w0] |= m0;
	for (uint32_t i = w0 + 1; i < w1; i++)
		w[i] = ~0ull;
	w[w1] |= m1;
}

/* Index of the first run whose last bit is >= x (n when none). */
static uint32_t runs_lower(const struct sbm_chunk *c, uint32_t x)
{
	uint32_t lo = 0, hi = c->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->r[mid][1] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int chunk_to_bitmap(struct sbm_chunk *c)
{
	uint64_t *w = calloc(SBM_CHUNK_WORDS, sizeof *w);
	if (!w)
		return HV_ENOMEM;
	for (uint32_t i = 0; i < c->n; i++)
		bits_set(w, c->r[i][0], c->r[i][1]);
	free(c->r);
	c->r = NULL;
	c->n = c->cap = 0;
	c->w = w;
	return 0;
}

/* Adds bits [lo, hi] (inclusive, within the chunk). */
static int chunk_add(struct sbm_chunk *c, uint32_t lo, uint32_t hi)
{
	if (c->w) {
		bits_set(c->w, lo, hi);
		return 0;
	}
	/* runs i..j-1 overlap or touch [lo, hi]; they collapse into one */
	uint32_t i = runs_lower(c, lo ? lo - 1 : 0), j = i;
	while (j < c->n && (uint32_t)c->r[j][0] <= hi + 1)
		j++;
	if (i < j) {
		if (c->r[i][0] < lo)
			lo = c->r[i][0];
		if (c->r[j - 1][1] > hi)
			hi = c->r[j - 1][1];
		memmove(c->r + i + 1, c->r + j, (size_t)(c->n - j) * sizeof *c->r);
		c->n -= j - i - 1;
		c->r[i][0] = (uint16_t)lo;
		c->r[i][1] = (uint16_t)hi;
		return 0;
	}
	if (c->n == SBM_RUNS_MAX) {
		int rc = chunk_to_bitmap(c);
		if (!rc)
			bits_set(c->w, lo, hi);
		return rc;
	}
	if (c->n == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 4;
		uint16_t(*r)[2] = realloc(c->r, cap * sizeof *r);
		if (!r)
			return HV_ENOMEM;
		c->r = r;
		c->cap = cap;
	}
	memmove(c->r + i + 1, c->r + i, (size_t)(c->n - i) * sizeof *c->r);
	c->r[i][0] = (uint16_t)lo;
	c->r[i][1] = (uint16_t)hi;
	c->n++;
	return 0;
}

static bool chunk_full(const struct sbm_chunk *c)
{
	if (!c->w)
		return c->n == 1 && c->r[0][0] == 0 && c->r[0][1] == LAST_BIT;
	/* the scan only runs when both end words are full, which scattered writes rarely make */
	if (c->w[0] != ~0ull || c->w[SBM_CHUNK_WORDS - 1] != ~0ull)
		return false;
	for (size_t i = 1; i < SBM_CHUNK_WORDS - 1; i++)
		if (c->w[i] != ~0ull)
			return false;
	return true;
}

int sbm_set(struct sbm *m, uint64_t a, uint64_t b)
{
	for (size_t ci = (size_t)(a >> SBM_CHUNK_SHIFT); ci <= (size_t)((b - 1) >> SBM_CHUNK_SHIFT);
	     ci++) {
		uint64_t cs = (uint64_t)ci << SBM_CHUNK_SHIFT;
		uint64_t ce = cs + SBM_CHUNK_BITS;
		uint32_t lo = (uint32_t)((a > cs ? a : cs) - cs);
		uint32_t hi = (uint32_t)((b < ce ? b : ce) - cs - 1);
		struct sbm_chunk *c = m->chunks[ci];
		if (c == SBM_FULL)
			continue;
		if (lo == 0 && hi == LAST_BIT) {
			chunk_free(c);
			m->chunks[ci] = SBM_FULL;
			continue;
		}
		if (!c) {
			c = calloc(1, sizeof *c);
			if (!c)
				return HV_ENOMEM;
			m->chunks[ci] = c;
		}
		if (chunk_add(c, lo, hi))
			return HV_ENOMEM;
		if (chunk_full(c)) {
			chunk_free(c);
			m->chunks[ci] = SBM_FULL;
		}
	}
	return 0;
}

bool sbm_test(const struct sbm *m, uint64_t bit)
{
	if (bit >= m->nbits)
		return false;
	const struct sbm_chunk *c = m->chunks[bit >> SBM_CHUNK_SHIFT];
	uint32_t o = (uint32_t)(bit & LAST_BIT);
	if (!c || c == SBM_FULL)
		return c == SBM_FULL;
	if (c->w)
		return c->w[o >> 6] >> (o & 63) & 1;
	uint32_t i = runs_lower(c, o);
	return i < c->n && c->r[i][0] <= o;
}

/* Within one bitmap container: first bit >= o equal to `want`, or SBM_CHUNK_BITS. */
static uint32_t bits_next(const uint64_t *w, uint32_t o, bool want)
{
	uint64_t flip = want ? 0 : ~0ull;
	uint32_t i = o >> 6;
	uint64_t word = (w[i] ^ flip) & (~0ull << (o & 63));
	for (;;) {
		if (word)
			return i * 64 + (uint32_t)__builtin_ctzll(word);
		if (++i == SBM_CHUNK_WORDS)
			return SBM_CHUNK_BITS;
		word = w[i] ^ flip;
	}
}

/* Shared walk of sbm_next_set (want) and sbm_next_clear (!want). */
static uint64_t sbm_next(const struct sbm *m, uint64_t pos, bool want)
{
	while (pos < m->nbits) {
		size_t ci = (size_t)(pos >> SBM_CHUNK_SHIFT);
		const struct sbm_chunk *c = m->chunks[ci];
		uint64_t cs = (uint64_t)ci << SBM_CHUNK_SHIFT, hit = SBM_CHUNK_BITS;
		uint32_t o = (uint32_t)(pos - cs);
		if (!c || c == SBM_FULL) {
			if ((c == SBM_FULL) == want)
				return pos;
		} else if (c->w) {
			hit = bits_next(c->w, o, want);
		} else {
			uint32_t i = runs_lower(c, o);
			bool inside = i < c->n && c->r[i][0] <= o;
			if (want && i < c->n)
				hit = inside ? o : c->r[i][0];
			else if (!want)
				hit = inside ? (uint64_t)c->r[i][1] + 1 : o;
		}
		if (hit < SBM_CHUNK_BITS)
			return cs + hit < m->nbits ? cs + hit : m->nbits;
		pos = cs + SBM_CHUNK_BITS;
	}
	return m->nbits;
}

uint64_t sbm_next_set(const struct sbm *m, uint64_t pos) { return sbm_next(m, pos, true); }
uint64_t sbm_next_clear(const struct sbm *m, uint64_t pos) { return sbm_next(m, pos, false); }
