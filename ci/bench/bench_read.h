/*
 * Shared part of the full-read benchmark readers: read the whole virtual disk in 4 MiB chunks
 * through a backend and fold every 64-bit word into a cheap checksum (lane sums per chunk, mixed
 * with the chunk offset), so the reads cannot be optimised away and the backends can be checked
 * against each other and against the raw image.
 *
 * Output (stdout, one line): "bytes=N checksum=HEX seconds=S"; exit 0 ok, 1 error, 2 usage.
 */
#ifndef BENCH_READ_H
#define BENCH_READ_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_CHUNK (4u * 1024 * 1024)

struct bench_sum {
	uint64_t h;   /* running hash of the per-chunk sums and their offsets */
	uint64_t off; /* virtual offset of the next chunk */
};

/* Sum of the 64-bit little-endian words of one chunk (8 independent lanes: the compiler
 * vectorises this, so it costs a fraction of the copy the read itself does), then mixed with the
 * chunk's offset into the running hash, so misplaced chunks change the result. */
static inline void bench_fold(struct bench_sum *s, const uint8_t *p, size_t n)
{
	uint64_t lane[8] = {0};
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		const uint64_t *w = (const uint64_t *)(const void *)(p + i); /* buffer is 4 KiB aligned */
		lane[0] += w[0];
		lane[1] += w[1];
		lane[2] += w[2];
		lane[3] += w[3];
		lane[4] += w[4];
		lane[5] += w[5];
		lane[6] += w[6];
		lane[7] += w[7];
	}
	uint64_t t = 0;
	for (int k = 0; k < 8; k++)
		t = (t ^ lane[k]) * 0x100000001b3ull;
	for (; i < n; i++)
		t = (t ^ p[i]) * 0x100000001b3ull;
	s->h = (s->h ^ t ^ (s->off * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
	s->h ^= s->h >> 33;
	s->off += n;
}

static inline uint64_t bench_final(const struct bench_sum *s)
{
	return s->h;
}

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* read_fn(ctx, buf, off, len) returns 0 on success. */
typedef int (*bench_read_fn)(void *ctx, uint8_t *buf, uint64_t off, size_t len);

static inline int bench_run(void *ctx, bench_read_fn rd, uint64_t size)
{
	uint8_t *buf = aligned_alloc(4096, BENCH_CHUNK);
	if (!buf) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	struct bench_sum s;
	memset(&s, 0, sizeof s);
	double t0 = bench_now();
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < BENCH_CHUNK ? (size_t)(size - off) : BENCH_CHUNK;
		if (rd(ctx, buf, off, n)) {
			free(buf);
			return 1;
		}
		bench_fold(&s, buf, n);
		off += n;
	}
	double t1 = bench_now();
	printf("bytes=%" PRIu64 " checksum=%016" PRIx64 " seconds=%.6f\n", size, bench_final(&s), t1 - t0);
	free(buf);
	return 0;
}

#endif
