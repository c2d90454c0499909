/*
 * fuzz_vhdx — libFuzzer target for the VHDX reader (`make test-fuzz`).
 *
 * VHDX files are at least 4 MiB, far too big for libFuzzer inputs, so the input is a compact list
 * of patches applied to one of a few valid template files built once at start-up with the library
 * itself (LLVMFuzzerInitialize):
 *
 *   T0 dynamic   64 MiB, 1 MiB blocks, data in a few blocks (one of them the last)
 *   T1 child     differencing child (2 MiB blocks, partially present blocks) over a parent
 *   T2 log       T0 with a pending log (a write cut by the crash fault point)
 *   T3 fixed     8 MiB fixed disk
 *   T4 parent    the parent of a second child/parent pair: patches hit the parent, the child is
 *                opened (the chain code: linkage, parent errors)
 *
 * Input:  [template] [flags] then records until the input ends:
 *   kind % 14 in 0..11  patch:    base[kind % 14] + u16 offset, u8 length (0..64), bytes
 *   kind % 14 == 12     truncate: u32 -> new size (kind & 0x80: a multiple of 4 KiB)
 *   kind % 14 == 13     extend:   u16 -> new size = template size + 4 KiB * value (sparse)
 * bases: 0 file identifier, 1 header 1, 2 header 2, 3 region table 1, 4 region table 2, 5 log,
 * 6 metadata table, 7 metadata items, 8 BAT, 9 first payload block, 10 the last MiB of the file,
 * 11 the sector bitmap block (child) or the last block.
 * flags: bit 0 re-fixes both header checksums after patching, bit 1 both region table
 * checksums, bit 2 the checksum of every log entry ("loge" every 4 KiB of the log), so the
 * fuzzer gets past the checksums into the fields behind them; bit 3 also reads at an offset
 * taken from the input's last 8 bytes.
 *
 * Each template lives in a work file that is restored after every input (only the patched bytes
 * and a truncated tail are rewritten). Per input: vhdx_open read-only -> info -> vhdx_read of a
 * few ranges -> vhdx_map and vhdx_map_ex -> vhdx_close; vhdx_open without the parent; vhdx_check.
 * Besides the sanitizers, invariants abort: a file check finds clean must open; a failed open
 * leaves a message naming the file; map ranges are sector-aligned, increasing and inside the disk;
 * an opened file's geometry is within the spec's limits.
 */
#include "../../../hyperv/vhdx/vhdx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024u * 1024u)
#define NTEMPL 5
#define NBASE 12

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct templ {
	char work[512];      /* the file patches go to (restored after each input) */
	char open_path[512]; /* the file that is opened (the child when the parent is patched) */
	char parent[512];    /* the opened file's parent, or "" */
	uint8_t *img;        /* the template's bytes */
	size_t size;
	uint64_t base[NBASE];
	uint64_t log_off;
	uint32_t log_len;
	int fd;
};

static struct templ T[NTEMPL];
static char dir[256];
static bool verify; /* FUZZ_VHDX_VERIFY=1: after each input, compare the work file with its template */

static const uint8_t GUID_BAT[16] = {0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
				     0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08};
static const uint8_t GUID_META[16] = {0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
				      0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e};

static void die(const char *what)
{
	fprintf(stderr, "fuzz_vhdx: %s: %s\n", what, hv_errmsg());
	abort();
}

/* ---- building the templates -----------------------------------------------------------------*/

static void path_in(char *out, size_t n, const char *sub, const char *name)
{
	snprintf(out, n, "%s/%s%s%s", dir, sub, *sub ? "/" : "", name);
}

static void make(const char *path, uint64_t vsize, enum vhdx_type type, uint32_t bs, const char *parent,
		 uint64_t seed)
{
	struct vhdx_create_opts c = {.virtual_size = vsize, .type = type, .block_size = bs,
				     .parent_path = parent, .seed = seed};
	if (vhdx_create(path, &c))
		die("vhdx_create");
}

/* Writes `len` bytes of `pattern` at each offset; crash_after >= 0 cuts the write sequence. */
static int fill(const char *path, const uint64_t *offs, const uint32_t *lens, int n, uint8_t pattern,
		long crash_after)
{
	struct vhdx_open_opts o = {.flags = VHDX_OPEN_RDWR | VHDX_OPEN_NOSYNC, .has_seed = true,
				   .seed = pattern, .crash_after_steps = crash_after};
	struct vhdx_file *f;
	if (vhdx_open_ex(path, &o, &f))
		die("vhdx_open_ex");
	int rc = 0;
	for (int i = 0; i < n && !rc; i++) {
		uint8_t *buf = malloc(lens[i]);
		if (!buf)
			abort();
		memset(buf, pattern + i, lens[i]);
		rc = vhdx_write(f, buf, offs[i], lens[i]);
		free(buf);
	}
	int rc2 = vhdx_close(f);
	return rc ? rc : rc2;
}

static void copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0)
		abort();
	uint8_t buf[65536];
	ssize_t k;
	while ((k = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)k) != k)
			abort();
	close(in);
	close(out);
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Loads the template bytes and finds the structures the patch bases point at. */
static void load(struct templ *t)
{
	int fd = open(t->work, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		abort();
	t->size = (size_t)st.st_size;
	t->img = malloc(t->size);
	if (!t->img || pread(fd, t->img, t->size, 0) != (ssize_t)t->size)
		abort();
	close(fd);
	const uint8_t *h1 = t->img + 65536, *h2 = t->img + 131072;
	const uint8_t *h = le(h2 + 8, 8) > le(h1 + 8, 8) ? h2 : h1;
	t->log_len = (uint32_t)le(h + 68, 4);
	t->log_off = le(h + 72, 8);
	uint64_t bat = 0, bat_len = 0, meta = 0;
	const uint8_t *rt = t->img + 196608;
	for (uint32_t i = 0; i < le(rt + 8, 4) && i < 2047; i++) {
		const uint8_t *e = rt + 16 + 32 * i;
		if (!memcmp(e, GUID_BAT, 16)) {
			bat = le(e + 16, 8);
			bat_len = le(e + 24, 4);
		} else if (!memcmp(e, GUID_META, 16)) {
			meta = le(e + 16, 8);
		}
	}
	if (!bat || !meta)
		abort();
	uint64_t first = t->size, last = 0, sb = 0;
	for (uint64_t i = 0; i < bat_len / 8 && bat + 8 * i + 8 <= t->size; i++) {
		uint64_t e = le(t->img + bat + 8 * i, 8), off = e & ~0xFFFFFull;
		if (!off)
			continue;
		if ((e & 7) == 6 && i % 2049 == 2048) /* the SB entry of chunk 0 with 2 MiB blocks */
			sb = off;
		if (off < first)
			first = off;
		if (off > last)
			last = off;
	}
	uint64_t b[NBASE] = {0, 65536, 131072, 196608, 262144, t->log_off, meta, meta + 65536, bat,
			     first, t->size - MIB, sb ? sb : last};
	memcpy(t->base, b, sizeof b);
	t->fd = open(t->work, O_RDWR);
	if (t->fd < 0)
		abort();
}

static void cleanup(void)
{
	for (int i = 0; i < NTEMPL; i++) {
		if (T[i].fd >= 0)
			close(T[i].fd);
		free(T[i].img);
	}
	static const char *const files[] = {"dyn.vhdx", "log.vhdx", "fix.vhdx", "a/par.vhdx", "a/child.vhdx",
					    "b/par.vhdx", "b/child.vhdx"};
	char p[600];
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		unlink(p);
	}
	snprintf(p, sizeof p, "%s/a", dir);
	rmdir(p);
	snprintf(p, sizeof p, "%s/b", dir);
	rmdir(p);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, sizeof dir, "%s/fuzz_vhdx.XXXXXX", tmp);
	if (!mkdtemp(dir))
		abort();
	for (int i = 0; i < NTEMPL; i++)
		T[i].fd = -1;
	atexit(cleanup);
	verify = getenv("FUZZ_VHDX_VERIFY") && !strcmp(getenv("FUZZ_VHDX_VERIFY"), "1");
	char p[512], q[512];

	/* T0 dynamic */
	path_in(T[0].work, sizeof T[0].work, "", "dyn.vhdx");
	make(T[0].work, 64ull * MIB, VHDX_TYPE_DYNAMIC, MIB, NULL, 1);
	const uint64_t o0[] = {MIB, 10ull * MIB + 4096, 63ull * MIB};
	const uint32_t l0[] = {3 * MIB, 100000, MIB};
	if (fill(T[0].work, o0, l0, 3, 0xA0, -1))
		die("fill dyn");

	/* T2 pending log: a copy of T0 whose next write is cut after its log entry is stable */
	path_in(T[2].work, sizeof T[2].work, "", "log.vhdx");
	for (long n = 1;; n++) {
		if (n > 64)
			die("no crash cut left a pending log");
		copy_file(T[0].work, T[2].work);
		const uint64_t o2[] = {30ull * MIB};
		const uint32_t l2[] = {MIB};
		fill(T[2].work, o2, l2, 1, 0xC0, n);
		struct vhdx_file *f;
		if (vhdx_open(T[2].work, VHDX_OPEN_RDONLY, &f))
			die("open log template");
		uint32_t replayed = vhdx_get_info(f)->log_entries_replayed;
		vhdx_close(f);
		if (replayed)
			break;
	}

	/* T3 fixed */
	path_in(T[3].work, sizeof T[3].work, "", "fix.vhdx");
	make(T[3].work, 8ull * MIB, VHDX_TYPE_FIXED, MIB, NULL, 3);
	const uint64_t o3[] = {0, 5ull * MIB};
	const uint32_t l3[] = {2 * MIB, 4096};
	if (fill(T[3].work, o3, l3, 2, 0x30, -1))
		die("fill fixed");

	/* T1 child over a parent in a/, T4 the same pair in b/ with the parent patched */
	const char *sub[2] = {"a", "b"};
	for (int k = 0; k < 2; k++) {
		snprintf(p, sizeof p, "%s/%s", dir, sub[k]);
		if (mkdir(p, 0755))
			abort();
		path_in(p, sizeof p, sub[k], "par.vhdx");
		path_in(q, sizeof q, sub[k], "child.vhdx");
		make(p, 64ull * MIB, VHDX_TYPE_DYNAMIC, 2 * MIB, NULL, 10 + k);
		const uint64_t op[] = {0};
		const uint32_t lp[] = {8 * MIB};
		if (fill(p, op, lp, 1, 0x40, -1))
			die("fill parent");
		make(q, 0, VHDX_TYPE_DIFFERENCING, 0, p, 20 + k);
		const uint64_t oc[] = {4096, 5ull * MIB + 512, 20ull * MIB};
		const uint32_t lc[] = {8192, 512, 2 * MIB};
		if (fill(q, oc, lc, 3, 0x70, -1))
			die("fill child");
		struct templ *t = &T[k ? 4 : 1];
		snprintf(t->work, sizeof t->work, "%s", k ? p : q);
		snprintf(t->open_path, sizeof t->open_path, "%s", q);
		snprintf(t->parent, sizeof t->parent, "%s", p);
	}
	for (int i = 0; i < NTEMPL; i++) {
		if (!T[i].open_path[0])
			snprintf(T[i].open_path, sizeof T[i].open_path, "%s", T[i].work);
		load(&T[i]);
	}
	return 0;
}

/* ---- one input ------------------------------------------------------------------------------*/

struct reader {
	const uint8_t *p;
	size_t n;
};

static bool take(struct reader *r, void *out, size_t k)
{
	if (r->n < k)
		return false;
	memcpy(out, r->p, k);
	r->p += k;
	r->n -= k;
	return true;
}

/* Byte ranges of the work file that differ from the template. */
struct touched {
	uint64_t off[4096], len[4096];
	int n;
	uint64_t cut; /* smallest size the file had (its tail must be rewritten), or UINT64_MAX */
	bool resized;
};

static void patch(struct templ *t, struct touched *w, uint64_t off, const void *buf, size_t len)
{
	if (!len || off >= (uint64_t)1 << 40 || w->n == 4096)
		return;
	if (pwrite(t->fd, buf, len, (off_t)off) != (ssize_t)len)
		abort();
	if (off + len > t->size)
		w->resized = true; /* the file grew: restore() cuts it back */
	w->off[w->n] = off;
	w->len[w->n++] = len;
}

static void fix_crc(struct templ *t, struct touched *w, uint64_t off, uint32_t len)
{
	uint8_t *b = malloc(len);
	if (!b)
		abort();
	ssize_t got = pread(t->fd, b, len, (off_t)off);
	if (got == (ssize_t)len) {
		memset(b + 4, 0, 4);
		uint32_t c = hv_crc32c(b, len);
		uint8_t le32[4] = {(uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24)};
		patch(t, w, off + 4, le32, 4);
	}
	free(b);
}

/* Re-fixes the checksum of every plausible log entry of the template's log region. */
static void fix_log(struct templ *t, struct touched *w)
{
	for (uint64_t pos = 0; pos + 4096 <= t->log_len; pos += 4096) {
		uint8_t h[12];
		if (pread(t->fd, h, sizeof h, (off_t)(t->log_off + pos)) != (ssize_t)sizeof h || memcmp(h, "loge", 4))
			continue;
		uint32_t len = (uint32_t)le(h + 8, 4);
		if (len && len % 4096 == 0 && pos + len <= t->log_len)
			fix_crc(t, w, t->log_off + pos, len);
	}
}

static void restore(struct templ *t, struct touched *w)
{
	if (w->resized) {
		if (ftruncate(t->fd, (off_t)t->size))
			abort();
		if (w->cut < t->size &&
		    pwrite(t->fd, t->img + w->cut, t->size - w->cut, (off_t)w->cut) != (ssize_t)(t->size - w->cut))
			abort();
	}
	for (int i = 0; i < w->n; i++) {
		if (w->off[i] >= t->size)
			continue;
		uint64_t n = w->len[i] < t->size - w->off[i] ? w->len[i] : t->size - w->off[i];
		if (pwrite(t->fd, t->img + w->off[i], n, (off_t)w->off[i]) != (ssize_t)n)
			abort();
	}
	if (verify) {
		struct stat st;
		uint8_t *cur = malloc(t->size);
		if (!cur || fstat(t->fd, &st) || (size_t)st.st_size != t->size ||
		    pread(t->fd, cur, t->size, 0) != (ssize_t)t->size || memcmp(cur, t->img, t->size)) {
			fprintf(stderr, "fuzz_vhdx: %s was not restored to its template\n", t->work);
			abort();
		}
		free(cur);
	}
}

static void check_cb(void *ctx, const char *msg)
{
	if (!msg || !*msg)
		abort(); /* a problem without a description */
	(*(int *)ctx)++;
}

struct map_state {
	uint64_t vs, end;
	uint32_t lss;
	int n;
};

static int map_cb(void *ctx, uint64_t off, uint64_t len, enum vhdx_map_kind kind)
{
	struct map_state *m = ctx;
	if (len == 0 || off < m->end || off > m->vs || len > m->vs - off || off % m->lss ||
	    (len % m->lss && off + len != m->vs) || (kind != VHDX_MAP_DATA && kind != VHDX_MAP_ZERO)) {
		fprintf(stderr, "fuzz_vhdx: bad map range [%llu, +%llu) kind %d (previous end %llu, size %llu)\n",
			(unsigned long long)off, (unsigned long long)len, (int)kind, (unsigned long long)m->end,
			(unsigned long long)m->vs);
		abort();
	}
	m->end = off + len;
	return ++m->n > 100000; /* enough: stop the walk (a non-zero return ends it) */
}

/* A failed open must leave one message naming the file (or its parent) first. */
static void expect_named_error(const struct templ *t, const char *what)
{
	const char *e = hv_errmsg();
	size_t a = strlen(t->open_path), b = strlen(t->parent);
	if (!e || !((strncmp(e, t->open_path, a) == 0 && e[a] == ':') ||
		    (b && strncmp(e, t->parent, b) == 0 && e[b] == ':')) ||
	    strchr(e, '\n')) {
		fprintf(stderr, "fuzz_vhdx: %s failed with an unclear message: '%s'\n", what, e ? e : "(null)");
		abort();
	}
}

static void exercise(const struct templ *t, uint64_t extra_off)
{
	struct vhdx_file *f = NULL;
	int rc_open = vhdx_open(t->open_path, VHDX_OPEN_RDONLY, &f);
	if (rc_open) {
		expect_named_error(t, "vhdx_open");
	} else {
		const struct vhdx_info *in = vhdx_get_info(f);
		uint64_t vs = in->virtual_size;
		uint32_t bs = in->block_size, lss = in->logical_sector;
		if (vs == 0 || vs > (64ull << 40) || bs < MIB || bs > 256 * MIB || (bs & (bs - 1)) ||
		    (lss != 512 && lss != 4096) || vs % lss)
			abort(); /* an opened file must have a geometry within the spec */
		static uint8_t buf[2 * MIB];
		uint64_t offs[4] = {0, vs / 2 / lss * lss, vs - (vs < 4096 ? vs : 4096), extra_off % vs / lss * lss};
		for (int i = 0; i < 4; i++) {
			uint64_t len = vs - offs[i] < sizeof buf ? vs - offs[i] : sizeof buf;
			if (i == 1 && len > MIB + 512)
				len = MIB + 512; /* crosses a block boundary with 1 MiB blocks */
			if (vhdx_read(f, buf, offs[i], (size_t)len))
				expect_named_error(t, "vhdx_read");
		}
		struct map_state m = {vs, 0, lss, 0};
		vhdx_map(f, map_cb, &m);
		struct map_state m2 = {vs, 0, lss, 0};
		vhdx_map_ex(f, VHDX_MAP_NONZERO, map_cb, &m2);
		vhdx_close(f);
	}
	f = NULL;
	if (vhdx_open(t->open_path, VHDX_OPEN_RDONLY | VHDX_OPEN_NO_PARENT, &f))
		expect_named_error(t, "vhdx_open (no parent)");
	vhdx_close(f);
	int problems = 0;
	int rc = vhdx_check(t->open_path, check_cb, &problems);
	if (rc >= 0 && rc != problems)
		abort(); /* the count returned is the number of lines reported */
	if (rc == 0 && rc_open) {
		fprintf(stderr, "fuzz_vhdx: check finds no problem but open fails: %s\n", hv_errmsg());
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader r = {data, size};
	uint8_t sel = 0, flags = 0;
	take(&r, &sel, 1);
	take(&r, &flags, 1);
	struct templ *t = &T[sel % NTEMPL];
	static struct touched w;
	w.n = 0;
	w.cut = UINT64_MAX;
	w.resized = false;
	uint64_t extra = 0;
	if ((flags & 8) && size >= 10)
		extra = le(data + size - 8, 8);
	uint8_t kind;
	while (take(&r, &kind, 1)) {
		unsigned k = kind % 14;
		if (k < NBASE) {
			uint8_t o[2], len;
			uint8_t bytes[64];
			if (!take(&r, o, 2) || !take(&r, &len, 1))
				break;
			len %= 65;
			if (len > r.n)
				len = (uint8_t)r.n;
			take(&r, bytes, len);
			patch(t, &w, t->base[k] + le(o, 2), bytes, len);
		} else if (k == 12) {
			uint8_t v[4];
			if (!take(&r, v, 4))
				break;
			uint64_t s = le(v, 4) % (t->size + 1);
			if (kind & 0x80)
				s = s / 4096 * 4096;
			if (ftruncate(t->fd, (off_t)s))
				abort();
			w.resized = true;
			if (s < w.cut)
				w.cut = s;
		} else {
			uint8_t v[2];
			if (!take(&r, v, 2))
				break;
			if (ftruncate(t->fd, (off_t)(t->size + 4096 * le(v, 2))))
				abort();
			w.resized = true;
		}
	}
	if (flags & 1) {
		fix_crc(t, &w, 65536, 4096);
		fix_crc(t, &w, 131072, 4096);
	}
	if (flags & 2) {
		fix_crc(t, &w, 196608, 65536);
		fix_crc(t, &w, 262144, 65536);
	}
	if (flags & 4)
		fix_log(t, &w);
	exercise(t, extra);
	restore(t, &w);
	return 0;
}
