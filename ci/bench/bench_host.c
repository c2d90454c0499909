/*
 * bench_host — the simulated host's hot paths, through the same functions the front ends call:
 *   - QueryChanges over a 2 TiB dynamic disk with 100 000 scattered changed 64 KiB blocks, as
 *     host_rct_query (libvirtdisk's path) and as WMI GetVirtualDiskChanges, full-disk and paged;
 *   - guest writes (host_vm_write: tracking + truth + VHDX) in GB/s, against the anchor of plain
 *     pwrite() of the same bytes to a file in the same folder, measured in the same run.
 * Prints one JSON object. Benchmarks may read the clock; the code under test never does.
 * usage: bench_host TMPDIR [RUNS]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../sim/host/host_internal.h"
#include "../../sim/rct/rct.h"
#include "../../sim/wmi/wmi.h"
#include "../../sim/workload/workload.h"

#define GIB (1024ull * 1024ull * 1024ull)

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return v[n / 2];
}

static void die(const char *what)
{
	fprintf(stderr, "bench_host: %s: %s\n", what, hv_errmsg());
	exit(1);
}

/* 100 000 distinct scattered 64 KiB blocks of a 2 TiB disk, marked straight into the sidecar (the
 * bytes do not matter to a query, and writing 6 GB would only measure the disk). */
static void mark_blocks(struct host *h, int64_t disk, uint64_t seed, int n)
{
	struct host_disk d;
	struct rct *rt;
	if (host_disk_load(h, disk, &d) || host_rct_open(h, &d, &rt))
		die("sidecar");
	struct hv_rng rng = hv_rng_stream(seed, "bench.blocks");
	uint64_t nblocks = d.size / 65536;
	for (int i = 0; i < n; i++)
		if (rct_mark(rt, (hv_rng_next(&rng) % nblocks) * 65536, 65536))
			die("mark");
	if (rct_save(rt))
		die("save");
	rct_close(rt);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_host TMPDIR [RUNS]\n");
		return 2;
	}
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	if (runs < 1)
		runs = 1;
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/host", argv[1]);
	struct host_create_opts co = {.seed = 1, .nosync = true};
	struct host *h;
	if (host_create(dir, &co) || host_open(dir, HOST_OPEN_NOSYNC, &h))
		die(dir);

	/* ---- QueryChanges on 2 TiB ---- */
	struct host_disk_spec big = {.size = 2048 * GIB, .logical_sector = 512};
	int64_t vm, disk;
	if (host_vm_create(h, "big", &big, 1, &vm) || host_disk_find(h, vm, "0", &disk))
		die("vm");
	int64_t rp;
	if (host_refpoint_create(h, vm, 2, &rp))
		die("refpoint");
	char id[64] = "";
	sqlite3_stmt *st;
	sqlite3_prepare_v2(host_db(h), "SELECT rct_id FROM refpoint_disk", -1, &st, NULL);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(id, sizeof id, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	mark_blocks(h, disk, 7, 100000);
	int64_t snap;
	if (host_snapshot_create(h, vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &snap))
		die("checkpoint");
	const uint32_t cap = 200000;
	struct host_range *rg = malloc(cap * sizeof *rg);
	double t_full[64], t_paged[64], t_wmi[64];
	uint32_t n = 0, w32;
	uint64_t done, nranges = 0, calls = 0;
	for (int i = 0; i < runs && i < 64; i++) {
		double t0 = now();
		if (host_rct_query(h, disk, 0, id, 0, big.size, rg, cap, &n, &done, &w32))
			die("query");
		t_full[i] = (now() - t0) * 1e3;
		nranges = n;
		t0 = now();
		uint64_t off = 0;
		calls = 0;
		while (off < big.size) {
			if (host_rct_query(h, disk, 0, id, off, big.size - off, rg, 4096, &n, &done, &w32))
				die("paged query");
			off += done;
			calls++;
		}
		t_paged[i] = (now() - t0) * 1e3;
	}
	/* the same through WMI (sync GetVirtualDiskChanges, one answer holding every range) */
	host_setting_set(h, "wmi.changes_max_ranges", "200000");
	struct hvsim_wmi *w;
	if (hvsim_wmi_open(h, &w))
		die("wmi");
	char frozen[1100];
	snprintf(frozen, sizeof frozen, "C:\\Hyper-V\\big\\Virtual Hard Disks\\big.vhdx");
	struct cim_instance *in;
	char len[32];
	snprintf(len, sizeof len, "%llu", (unsigned long long)(big.size - 1));
	cim_instance_new("__PARAMETERS", &in);
	cim_instance_set(in, "Path", CIM_TYPE_STRING, frozen);
	cim_instance_set(in, "LimitId", CIM_TYPE_STRING, id);
	cim_instance_set(in, "ByteOffset", CIM_TYPE_UINT64, "0");
	cim_instance_set(in, "ByteLength", CIM_TYPE_UINT64, len);
	size_t wmi_ranges = 0;
	for (int i = 0; i < runs && i < 64; i++) {
		struct cim_instance *out;
		uint32_t hr;
		double t0 = now();
		if (hvsim_wmi_invoke(w, "Msvm_ImageManagementService.CreationClassName=\"Msvm_ImageManagementService\","
					"Name=\"vhdsvc\",SystemCreationClassName=\"Msvm_ComputerSystem\",SystemName=\"HVSIM-HOST\"",
				     "GetVirtualDiskChanges", in, &out, &hr))
			die("GetVirtualDiskChanges");
		t_wmi[i] = (now() - t0) * 1e3;
		const struct cim_prop *p = cim_instance_prop(out, "ChangedByteOffsets");
		wmi_ranges = p ? p->nvalues : 0;
		cim_instance_free(out);
	}
	cim_instance_free(in);
	hvsim_wmi_close(w);
	struct host_disk d;
	host_disk_load(h, disk, &d);
	char *side = host_abs(h, d.sidecar);
	struct stat sb;
	stat(side, &sb);
	free(side);

	/* ---- guest writes vs plain pwrite ---- */
	struct host_disk_spec wd = {.size = 8 * GIB, .logical_sector = 512};
	int64_t wvm;
	if (host_vm_create(h, "w", &wd, 1, &wvm))
		die("vm w");
	double t_seq[64], t_rnd[64], t_anchor[64];
	const uint64_t vol = GIB;
	for (int i = 0; i < runs && i < 64; i++) {
		struct wl_params p;
		wl_params_init(&p, WL_SEQUENTIAL, 1, vol, 100 + (uint64_t)i);
		p.io_min = p.io_max = 1u << 20;
		double t0 = now();
		if (host_vm_write(h, wvm, -1, &p, NULL))
			die("write seq");
		t_seq[i] = (double)vol / (now() - t0) / 1e9;
		wl_params_init(&p, WL_RANDOM, 1, vol, 200 + (uint64_t)i);
		p.io_min = p.io_max = 1u << 20;
		t0 = now();
		if (host_vm_write(h, wvm, -1, &p, NULL))
			die("write random");
		t_rnd[i] = (double)vol / (now() - t0) / 1e9;
		/* anchor: the same volume of (pre-generated) bytes with pwrite into a plain file */
		char path[4200];
		snprintf(path, sizeof path, "%s/anchor.raw", argv[1]);
		int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		uint8_t *buf = malloc(1u << 20);
		struct hv_rng r = hv_rng_stream(i, "anchor");
		hv_rng_fill(&r, buf, 1u << 20);
		t0 = now();
		for (uint64_t off = 0; off < vol; off += 1u << 20) {
			buf[0] = (uint8_t)off;
			if (pwrite(fd, buf, 1u << 20, (off_t)off) != 1 << 20)
				die("anchor write");
		}
		t_anchor[i] = (double)vol / (now() - t0) / 1e9;
		close(fd);
		unlink(path);
		free(buf);
	}
	int k = runs < 64 ? runs : 64;
	double anchor = median(t_anchor, k), seq = median(t_seq, k), rnd = median(t_rnd, k);
	printf("{\"runs\": %d, \"query_disk_bytes\": %llu, \"query_changed_blocks\": 100000, \"query_ranges\": %llu,"
	       " \"query_full_ms\": %.3f, \"query_paged4096_ms\": %.3f, \"query_paged4096_calls\": %llu,"
	       " \"wmi_getvirtualdiskchanges_ms\": %.3f, \"wmi_ranges\": %zu, \"sidecar_bytes\": %lld,"
	       " \"goal_query_ms\": 20,"
	       " \"write_sequential_gbps\": %.3f, \"write_random_gbps\": %.3f, \"anchor_pwrite_gbps\": %.3f,"
	       " \"write_sequential_vs_pwrite\": %.3f, \"write_random_vs_pwrite\": %.3f, \"goal_write_gbps\": 1.0}\n",
	       runs, (unsigned long long)big.size, (unsigned long long)nranges, median(t_full, k), median(t_paged, k),
	       (unsigned long long)calls, median(t_wmi, k), wmi_ranges, (long long)sb.st_size, seq, rnd, anchor,
	       seq / anchor, rnd / anchor);
	free(rg);
	host_close(h);
	return 0;
}
