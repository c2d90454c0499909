/*
 * rct_internal — the data structures behind struct rct, shared by rct.c (tracking, queries,
 * events) and rct_file.c (the sidecar). Not part of the public face: nothing outside sim/rct
 * includes this.
 */
#ifndef HV_SIM_RCT_INTERNAL_H
#define HV_SIM_RCT_INTERNAL_H

#include "rct.h"

/* Sparse bitmap, Roaring-style: a directory of chunks of 2^16 bits, each allocated on first set
 * and held as the cheaper of two forms:
 *   - a run container: sorted, non-adjacent runs [first, last] of uint16 (4 bytes per run), for
 *     scattered and sequential writes alike; marking is a binary search and a short memmove;
 *   - a bitmap container (8 KiB) once more than SBM_RUNS_MAX runs would be needed.
 * A directory entry is NULL (all clear), SBM_FULL (all set, no memory behind it) or an owned
 * chunk. Bits only ever get set until sbm_clear, which is what makes the FULL sentinel safe.
 * Memory: 8 bytes of directory per 2^16 bits (128 KiB for a 64 TiB disk at 64 KiB), plus
 * ~4 bytes per run of a sparse chunk, plus 8 KiB per dense chunk; never more than the plain
 * bitmap plus the directory. */
#define SBM_CHUNK_SHIFT 16
#define SBM_CHUNK_BITS (1ull << SBM_CHUNK_SHIFT)
#define SBM_CHUNK_WORDS (SBM_CHUNK_BITS / 64)
#define SBM_RUNS_MAX 256

struct sbm_chunk {
	uint64_t *w;      /* bitmap container when non-NULL (then r is NULL) */
	uint16_t (*r)[2];  /* run container: r[i] = {first, last}, i < n, r[i][1] + 1 < r[i+1][0] */
	uint32_t n, cap;
};

struct sbm {
	struct sbm_chunk **chunks;
	size_t nchunks;
	uint64_t nbits;
};

int sbm_init(struct sbm *m, uint64_t nbits); /* 0 or HV_ENOMEM (no message) */
void sbm_free(struct sbm *m);
void sbm_clear(struct sbm *m);
/* Sets bits [a, b), a < b <= nbits. HV_ENOMEM (no message) leaves a subset set. */
int sbm_set(struct sbm *m, uint64_t a, uint64_t b);
bool sbm_test(const struct sbm *m, uint64_t bit);
/* First set / clear bit >= pos, or nbits when there is none. */
uint64_t sbm_next_set(const struct sbm *m, uint64_t pos);
uint64_t sbm_next_clear(const struct sbm *m, uint64_t pos);

/* A sealed epoch: sorted, coalesced (non-adjacent) runs [runs[2i], runs[2i+1]) of G-blocks. */
enum {
	RCT_EPOCH_COARSE = 1 << 0, /* only the C-rounded superset is known (survived a crash) */
	RCT_EPOCH_LOST = 1 << 1,   /* a write could not be recorded at all (out of memory) */
};
struct rct_epoch {
	uint64_t *runs;
	size_t n;
	uint8_t flags;
};

struct rct {
	char *path;
	unsigned flags;      /* RCT_NOSYNC, RCT_RDONLY */
	uint64_t generation; /* of the file content this object last saved or loaded */
	enum rct_save_fault fault;

	uint64_t size;
	uint32_t gran, coarse; /* G and C in bytes */
	unsigned gshift;       /* log2(G) */
	uint32_t ratio;        /* C / G */
	uint64_t nblocks;      /* ceil(size / G) */
	uint64_t ncoarse;      /* ceil(size / C) */

	struct hv_guid guid;
	bool enabled;
	uint32_t seq;
	struct rct_epoch *epochs; /* epochs[e - 1] is epoch e, e = 1..seq */
	size_t epochs_cap;

	/* the open epoch (seq + 1) */
	struct sbm fine;    /* G-blocks; empty and unused while open_flags has RCT_EPOCH_COARSE */
	struct sbm cmap;    /* C-blocks, always maintained: the crash fallback */
	uint8_t open_flags; /* RCT_EPOCH_* */
};

/* Checks size/G/C; NULL when fine, else a static description of the problem. */
const char *rct_geometry_problem(uint64_t size, uint32_t gran, uint32_t coarse);
/* Allocates an empty, enabled object with the given geometry (already checked). */
int rct_alloc(const char *path, unsigned flags, uint64_t size, uint32_t gran, uint32_t coarse,
	      struct rct **out);
/* Appends a sealed epoch taking ownership of `runs` (freed on failure). */
int rct_append_epoch(struct rct *r, uint64_t *runs, size_t n, uint8_t flags);

#endif
