/*
 * workload — seeded guest-write generators: a stream of writes (offset, length, bytes) or trims
 * (offset, length, reads as zeros afterwards) that the simulated host applies to a VM's disk.
 *
 * The generator knows nothing about VHDX, RCT or the host. It hands each operation to a
 * caller-supplied sink, so the host can first record the range (change tracking, ground truth)
 * and then write the bytes. Same params => the same operations and the same bytes, on every
 * machine: all choices and data come from named hv_rng streams of params.seed ("wl.sizes",
 * "wl.offsets", "wl.zipf", "wl.zipf.perm", "wl.data"), and the Zipf table is built with integer
 * arithmetic only (no libm, no floating-point rounding differences).
 *
 * Must not: read the clock or any unseeded randomness, know about disk formats, hold global
 * mutable state, or allocate per operation (one io_max data buffer per wl_run, plus the Zipf
 * table, whose size is bounded by WL_ZIPF_MAX_REGIONS whatever the disk size).
 *
 * Errors: every call returns 0 or a negative HV_E* code (base.h) and sets hv_errmsg() to
 * "workload: <field> <value>: what is wrong".
 */
#ifndef SIM_WORKLOAD_H
#define SIM_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "../../hyperv/base/base.h"

enum wl_pattern {
	/* uniform sector-aligned offsets over the whole disk */
	WL_RANDOM,
	/* a log: appends from params.cursor, wraps to 0 at the disk end (an op never crosses the
	 * end: the op that reaches it is shortened, the next one starts at 0) */
	WL_SEQUENTIAL,
	/* hot spots: the disk is cut into regions (WL_ZIPF_MIN_REGION, doubled until there are at
	 * most WL_ZIPF_MAX_REGIONS), ranked by a seeded permutation; each op picks a rank with
	 * probability proportional to 1/rank^zipf_s and a uniform offset inside that region (the
	 * op stays inside the region when it fits, else starts at the region start) */
	WL_ZIPF,
	/* one sequential pass over the whole disk from 0 in io_max pieces; params.bytes is ignored
	 * (every run writes exactly disk_size bytes, each byte once) */
	WL_OVERWRITE,
	/* uniform ranges like WL_RANDOM that become zeros: the sink gets op.zero = true, data NULL */
	WL_TRIM,
};
#define WL_PATTERN_COUNT 5

/* "random", "sequential", "zipf", "overwrite", "trim" (exact, lowercase). Unknown names give
 * HV_EINVAL with a message listing the valid ones. */
int wl_pattern_parse(const char *name, enum wl_pattern *out);
/* The name wl_pattern_parse accepts; "?" for a value outside the enum. Static storage. */
const char *wl_pattern_name(enum wl_pattern p);

#define WL_DEFAULT_SECTOR 512u
#define WL_DEFAULT_IO_MIN 4096u
#define WL_DEFAULT_IO_MAX (1024u * 1024u)
#define WL_DEFAULT_ZIPF_S 1.1
#define WL_DEFAULT_COMPRESS_PCT 50u
#define WL_IO_LIMIT (64u * 1024u * 1024u) /* largest io_max: bounds the data buffer */
#define WL_ZIPF_S_MAX 16.0
#define WL_ZIPF_MIN_REGION (1024u * 1024u)
#define WL_ZIPF_MAX_REGIONS (1u << 20) /* => table of at most 8 MiB, even for a 64 TiB disk */
/* The compressible share is laid out per WL_COMPRESS_UNIT bytes of each op: the first
 * compress_pct % of every unit (rounded down to 8 bytes) repeats one 8-byte word chosen per op,
 * the rest is pseudo-random. A shorter trailing unit gets the same split, cut at its end. */
#define WL_COMPRESS_UNIT 4096u

struct wl_params {
	enum wl_pattern pattern;
	uint64_t disk_size;    /* virtual size, a multiple of sector; no op crosses it */
	/* Total bytes to write (or trim), a multiple of sector; 0 = no ops. Each op's length is
	 * drawn in [io_min, io_max]; the last op is shortened to what remains, so the total is
	 * exact (the last op may then be shorter than io_min). A run is the prefix of a longer run
	 * with the same params. WL_OVERWRITE ignores it (always disk_size). */
	uint64_t bytes;
	uint64_t seed;         /* every choice and every data byte derives from it */
	uint32_t sector;       /* 512 or 4096; 0 = 512. Alignment of every offset and length */
	/* Size of each op, multiples of sector, io_min <= io_max <= WL_IO_LIMIT; 0 = default
	 * (io_max 1 MiB, io_min min(4 KiB, io_max)). Drawn uniformly in sectors. Both are capped
	 * at disk_size for disks smaller than io_max. */
	uint32_t io_min, io_max;
	/* WL_SEQUENTIAL: where the log continues (multiple of sector, < disk_size). The host
	 * persists stats.next_cursor between runs. Ignored by the other patterns. */
	uint64_t cursor;
	/* WL_ZIPF exponent, 0 < s <= WL_ZIPF_S_MAX; 0 = 1.1. Quantized to 1/65536 (so the table is
	 * integer-only and identical on every machine). */
	double zipf_s;
	/* 0..100: share of each written op that is a repeated 8-byte pattern (see
	 * WL_COMPRESS_UNIT). Taken literally: 0 = incompressible. wl_params_init sets 50. */
	uint32_t compress_pct;
};

/* Fills *p with the defaults above (sector 512, io 4 KiB .. 1 MiB, zipf_s 1.1, compress 50 %,
 * cursor 0) and the given pattern, size, volume and seed. */
void wl_params_init(struct wl_params *p, enum wl_pattern pattern, uint64_t disk_size,
		    uint64_t bytes, uint64_t seed);

struct wl_op {
	uint64_t offset; /* multiple of sector */
	uint32_t length; /* multiple of sector, > 0, offset + length <= disk_size */
	bool zero;       /* trim: the range reads as zeros afterwards; data is NULL */
};

/* Receives each op in order. `data` holds op->length bytes (NULL when op->zero) and is valid
 * only during the call (the buffer is reused for the next op). A non-zero return stops the run
 * and wl_run returns it; a sink returning an error should set hv_err() itself. */
typedef int (*wl_sink)(void *ctx, const struct wl_op *op, const uint8_t *data);

struct wl_stats {
	uint64_t ops;          /* ops the sink accepted (returned 0 for) */
	uint64_t bytes;        /* their total length, written and trimmed */
	uint64_t zero_bytes;   /* the trimmed part of bytes */
	uint64_t next_cursor;  /* WL_SEQUENTIAL: where the next run continues; else params cursor */
	uint64_t region_size;  /* WL_ZIPF: bytes per region (the last one may be shorter) */
	uint64_t regions;      /* WL_ZIPF: number of regions, <= WL_ZIPF_MAX_REGIONS */
	uint64_t table_bytes;  /* WL_ZIPF: bytes of the CDF table (regions * 8) */
	uint64_t buffer_bytes; /* the data buffer (io_max, 0 for trim) */
};

/* Validates *p, then generates the ops and passes each to sink(ctx, ...). Returns 0, the
 * sink's non-zero return, or a negative HV_E* code for invalid params (no op is generated
 * then). *stats (optional, may be NULL) is filled in every case with what was done.
 * Successive runs with the same seed repeat the same stream: vary the seed per run (e.g.
 * hv_hash64 of the step index into the scenario seed). */
int wl_run(const struct wl_params *p, wl_sink sink, void *ctx, struct wl_stats *stats);

#endif
