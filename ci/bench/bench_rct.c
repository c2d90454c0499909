/*
 * bench_rct — change-tracking speed on a 2 TiB disk at 64 KiB granularity with 100 000 scattered
 * changed blocks (seeded): a full-disk query since the oldest id with the blocks in 1 sealed
 * epoch, in 10 sealed epochs, and still in the open epoch, in one call and in pages of 4096
 * ranges; seal, sidecar size, save and open time; rct_mark throughput for 64 KiB..1 MiB writes
 * and for 4 KiB writes; heap held by the open epoch. Prints one JSON object on stdout.
 *
 * Timings are the median of RUNS runs (CLOCK_MONOTONIC). Benchmarks may read the clock; the
 * library never does. Build (the lead wires it into `make bench`):
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Isim/rct -Ihyperv/base ci/bench/bench_rct.c \
 *      build/lib/libsim.a build/lib/libhyperv.a -lisal -lm -o build/bench/bench_rct
 */
#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "rct.h"

#define RUNS 7
#define DISK (2ull << 40)
#define GRAN 65536u
#define NBLOCKS (DISK / GRAN)
#define CHANGED 100000
#define GOAL_QUERY_MS 20

static char dir[256];

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_rct: %s: %s\n", what, hv_errmsg());
	exit(1);
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static const char *file(const char *name)
{
	static char p[2][512];
	static int k;
	k ^= 1;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

static struct rct *make_disk(const char *name, uint64_t seed)
{
	struct hv_rng g = hv_rng_stream(seed, "bench-rct-guid");
	struct hv_guid guid = hv_rng_guid(&g);
	struct rct *r;
	unlink(file(name));
	if (rct_create(file(name), DISK, GRAN, 0, &guid, RCT_NOSYNC, &r))
		die("create");
	return r;
}

/* Marks CHANGED scattered blocks, sealing `epochs` times along the way (0: leave them open). */
static void scatter(struct rct *r, int epochs)
{
	struct hv_rng rng = hv_rng_stream(42, "bench-rct-scatter");
	int per = epochs ? CHANGED / epochs : CHANGED;
	for (int i = 0; i < CHANGED; i++) {
		if (rct_mark(r, (hv_rng_next(&rng) % NBLOCKS) * GRAN, GRAN))
			die("mark");
		if (epochs && (i + 1) % per == 0 && rct_seal(r, NULL, NULL))
			die("seal");
	}
}

/* Whole-disk query since `id` until the last page; returns ms and the range count. */
static double query_ms(const struct rct *r, const char *id, struct rct_range *buf, size_t cap,
		       size_t *ranges, size_t *calls)
{
	double t0 = now_ms();
	uint64_t off = 0;
	*ranges = *calls = 0;
	while (off < DISK) {
		size_t n;
		uint64_t processed;
		if (rct_query(r, id, RCT_UPTO_LIVE, off, DISK - off, buf, cap, &n, &processed,
			      NULL))
			die("query");
		*ranges += n;
		(*calls)++;
		if (!processed)
			die("query processed 0");
		off += processed;
	}
	return now_ms() - t0;
}

static double median_query(const struct rct *r, const char *id, struct rct_range *buf,
			   size_t cap, size_t *ranges, size_t *calls)
{
	double t[RUNS];
	for (int i = 0; i < RUNS; i++)
		t[i] = query_ms(r, id, buf, cap, ranges, calls);
	return median(t, RUNS);
}

static void cleanup(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			unlink(file(e->d_name));
	if (d)
		closedir(d);
	rmdir(dir);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/bench-rct-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("bench_rct: mkdtemp");
		return 1;
	}
	struct rct_range *buf = malloc(2 * CHANGED * sizeof *buf);
	char id0[RCT_ID_STRLEN + 1];
	size_t ranges1, ranges10, calls, pcalls, ranges_open;
	if (!buf)
		return 1;

	/* the blocks still in the open epoch: memory and live query */
	size_t heap0 = heap_in_use();
	struct rct *ro = make_disk("open.rct", 3);
	if (rct_most_recent_id(ro, RCT_UPTO_LIVE, id0, NULL))
		die("id");
	scatter(ro, 0);
	size_t open_heap = heap_in_use() - heap0;
	double q_open = median_query(ro, id0, buf, 2 * CHANGED, &ranges_open, &calls);
	double ts[RUNS];
	/* seal cost (open epoch -> runs) on copies reopened from the sidecar */
	if (rct_save(ro))
		die("save");
	for (int i = 0; i < RUNS; i++) {
		struct rct *c;
		if (rct_open(file("open.rct"), RCT_NOSYNC | RCT_RDONLY, &c))
			die("open");
		double t0 = now_ms();
		if (rct_seal(c, NULL, NULL))
			die("seal");
		ts[i] = now_ms() - t0;
		rct_close(c);
	}
	double seal_ms = median(ts, RUNS);
	rct_close(ro);

	/* 1 epoch */
	struct rct *r1 = make_disk("one.rct", 1);
	if (rct_most_recent_id(r1, RCT_UPTO_LIVE, id0, NULL))
		die("id");
	scatter(r1, 1);
	double q1 = median_query(r1, id0, buf, 2 * CHANGED, &ranges1, &calls);
	double q1p = median_query(r1, id0, buf, 4096, &ranges1, &pcalls);
	rct_close(r1);

	/* 10 epochs */
	struct rct *r10 = make_disk("ten.rct", 2);
	if (rct_most_recent_id(r10, RCT_UPTO_LIVE, id0, NULL))
		die("id");
	scatter(r10, 10);
	double q10 = median_query(r10, id0, buf, 2 * CHANGED, &ranges10, &calls);
	double q10p = median_query(r10, id0, buf, 4096, &ranges10, &pcalls);

	/* sidecar: save (with and without fsync) and open */
	double tsave[RUNS], tsync[RUNS], topen[RUNS];
	for (int i = 0; i < RUNS; i++) {
		double t0 = now_ms();
		if (rct_save(r10))
			die("save");
		tsave[i] = now_ms() - t0;
	}
	struct rct *rs;
	if (rct_open(file("ten.rct"), 0, &rs))
		die("open");
	for (int i = 0; i < RUNS; i++) {
		double t0 = now_ms();
		if (rct_save(rs))
			die("save (fsync)");
		tsync[i] = now_ms() - t0;
	}
	rct_close(rs);
	for (int i = 0; i < RUNS; i++) {
		double t0 = now_ms();
		if (rct_open(file("ten.rct"), RCT_NOSYNC | RCT_RDONLY, &rs))
			die("open");
		topen[i] = now_ms() - t0;
		rct_close(rs);
	}
	struct stat st;
	if (stat(file("ten.rct"), &st))
		die("stat");
	rct_close(r10);

	/* rct_mark throughput: random 64 KiB..1 MiB writes (4 KiB aligned), then 4 KiB writes */
	struct rct *rm = make_disk("mark.rct", 4);
	struct hv_rng rng = hv_rng_stream(7, "bench-rct-mark");
	enum { NW = 1 << 19 };
	uint64_t *off = malloc(NW * sizeof *off), *len = malloc(NW * sizeof *len), bytes = 0;
	if (!off || !len)
		return 1;
	for (int i = 0; i < NW; i++) {
		len[i] = (16 + hv_rng_next(&rng) % 241) * 4096; /* 64 KiB .. 1 MiB */
		off[i] = (hv_rng_next(&rng) % ((DISK - len[i]) / 4096)) * 4096;
		bytes += len[i];
	}
	double tm[5], t4[5];
	for (int k = 0; k < 5; k++) {
		double t0 = now_ms();
		for (int i = 0; i < NW; i++)
			if (rct_mark(rm, off[i], len[i]))
				die("mark");
		tm[k] = now_ms() - t0;
		if (rct_seal(rm, NULL, NULL)) /* start each run from an empty open epoch */
			die("seal");
		t0 = now_ms();
		for (int i = 0; i < NW; i++)
			if (rct_mark(rm, off[i], 4096))
				die("mark");
		t4[k] = now_ms() - t0;
		if (rct_seal(rm, NULL, NULL))
			die("seal");
	}
	double mark_ms = median(tm, 5), mark4_ms = median(t4, 5);
	rct_close(rm);
	free(off);
	free(len);
	free(buf);
	cleanup();

	printf("{\"disk_bytes\":%llu,\"granularity\":%u,\"changed_blocks\":%d,"
	       "\"ranges_1epoch\":%zu,\"ranges_10epochs\":%zu,"
	       "\"rct_query_ms_1epoch\":%.3f,\"rct_query_ms_10epochs\":%.3f,"
	       "\"rct_query_ms_open_epoch\":%.3f,"
	       "\"rct_query_paged_ms\":%.3f,\"rct_query_paged_ms_1epoch\":%.3f,\"paged_calls\":%zu,"
	       "\"seal_ms\":%.3f,\"sidecar_bytes\":%lld,\"save_ms\":%.3f,\"save_fsync_ms\":%.3f,"
	       "\"open_ms\":%.3f,\"open_epoch_heap_bytes\":%zu,"
	       "\"mark_gbps\":%.2f,\"mark_4k_mops\":%.2f,\"runs\":%d,\"goal_query_ms\":%d}\n",
	       (unsigned long long)DISK, GRAN, CHANGED, ranges1, ranges10, q1, q10, q_open, q10p,
	       q1p, pcalls, seal_ms, (long long)st.st_size, median(tsave, RUNS),
	       median(tsync, RUNS), median(topen, RUNS), open_heap, bytes / (mark_ms / 1e3) / 1e9,
	       NW / (mark4_ms / 1e3) / 1e6, RUNS, GOAL_QUERY_MS);
	return 0;
}
