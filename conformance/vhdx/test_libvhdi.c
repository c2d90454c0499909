/*
 * test_libvhdi — independent-oracle conformance: VHDX files written by hvsim's library are read
 * back by libyal's libvhdi (Debian libvhdi-dev 20210425) through its C API, and the virtual disk
 * is compared three ways: libvhdi, hvsim's own vhdx_read, and an in-memory model of the writes
 * (zeros, then every write of every layer of the chain applied in order). Every view of a chain
 * (base, child over base, grandchild over both) is compared. Disks up to 96 MiB are compared
 * whole, in 4 MiB reads; larger sparse ones around every write (+-64 KiB), around the other
 * layers' writes, at random samples and at both ends; all of them also with odd-sized reads at
 * odd offsets.
 *
 * Matrix (one cmocka test per row of `tests` below, named after the case): dynamic and fixed
 * disks, 512 and 4096-byte logical sectors (QEMU cannot read 4096, libvhdi is the only oracle
 * there), block sizes 1, 2, 32 and 256 MiB, virtual sizes that are not block multiples; sparse
 * dynamic disks past the first sector-bitmap chunk (4 GiB at 512-byte sectors, 32 GiB at 4096)
 * so the BAT's interleaved sector-bitmap entries matter; depth-3 differencing chains
 * (base -> child -> grandchild) whose layers hold FULLY_PRESENT, PARTIALLY_PRESENT (sector
 * bitmaps, sub-sector and unaligned writes through read-modify-write) and NOT_PRESENT blocks.
 * Each layer is written in three sessions (flush inside the first, close and reopen for the
 * third) so the log is used several times. libvhdi's identifiers are checked too: its identifier
 * is the current header's DataWriteGuid, a child's parent identifier is the parent's.
 *
 * libvhdi limits this test works around (reference/vhdx.md section 4), never hides:
 *  - fixed disks larger than one sector-bitmap chunk are misread by libvhdi (it ignores the SB
 *    entries interleaved in a fixed disk's BAT), so fixed cases stay within one chunk: at most
 *    4 GiB with 512-byte sectors (the 4096-byte case may be larger: its chunk is 32 GiB);
 *  - libvhdi ignores the log: before libvhdi opens a file, the current header (parsed here from
 *    the raw bytes, with an own CRC-32C) must have a zero LogGuid;
 *  - libvhdi sends ZERO/UNDEFINED/UNMAPPED blocks of a child to the parent; hvsim never writes
 *    those states (new blocks are NOT_PRESENT, written ones FULLY/PARTIALLY_PRESENT), which the
 *    state census below asserts, so that difference cannot arise;
 *  - parent_linkage must be lowercase for libvhdi: that is hvsim's format, so it is tested as is.
 *
 * Must not: modify hvsim, use anything of hvsim but its public vhdx.h API (the expected content
 * and the header checks are computed here independently), write outside its mkdtemp directory
 * under /tmp (removed in every test's teardown, pass or fail), or leak: under ASan every buffer,
 * vhdx handle, libvhdi handle and libvhdi_error_t is freed, also when a test fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <libvhdi.h>
#include <limits.h>
#include <unistd.h>

#include "../../hyperv/vhdx/vhdx.h"

#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)
#define CHUNK (4 * MIB)        /* comparison unit */
#define FULL_LIMIT (96 * MIB)  /* disks up to this size are compared completely */
#define MAX_LAYERS 3
#define MAX_HOT 4

/* ---- case table ----------------------------------------------------------------------------*/

struct layer_spec {
	enum vhdx_type type;
	uint32_t block_size;
};

struct case_spec {
	const char *name;
	uint64_t virtual_size;
	uint32_t logical_sector;
	int nlayers;
	struct layer_spec layer[MAX_LAYERS];
	uint64_t hot[MAX_HOT]; /* offsets that get writes straddling them (chunk boundaries); 0 ends */
	uint64_t seed;
};

/* ---- deterministic randomness --------------------------------------------------------------*/

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n) { return n ? splitmix64(s) % n : 0; }

static void rnd_fill(uint64_t *s, uint8_t *p, size_t n)
{
	while (n) {
		uint64_t v = splitmix64(s);
		size_t k = n < 8 ? n : 8;
		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

/* ---- independent header parsing (CRC-32C, current header, GUIDs) ---------------------------*/

static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
	}
	return c ^ 0xFFFFFFFFu;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

struct raw_header {
	uint64_t seq;
	uint8_t data_write_guid[16]; /* on-disk (Microsoft) byte order */
	uint8_t log_guid[16];
};

/* Reads both header slots of `path`, returns 0 and the valid one with the higher sequence. */
static int read_current_header(const char *path, struct raw_header *out, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open");
		return -1;
	}
	int found = 0;
	for (int slot = 0; slot < 2; slot++) {
		uint8_t h[4096];
		if (pread(fd, h, sizeof h, (off_t)(64 * 1024 * (slot + 1))) != (ssize_t)sizeof h)
			continue;
		uint32_t stored = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 |
				  (uint32_t)h[7] << 24;
		memset(h + 4, 0, 4);
		if (memcmp(h, "head", 4) != 0 || crc32c(h, sizeof h) != stored)
			continue;
		uint64_t seq = le64(h + 8);
		if (!found || seq > out->seq) {
			out->seq = seq;
			memcpy(out->data_write_guid, h + 32, 16);
			memcpy(out->log_guid, h + 48, 16);
		}
		found = 1;
	}
	close(fd);
	if (!found)
		snprintf(why, whylen, "no valid header (signature + CRC-32C)");
	return found ? 0 : -1;
}

/* libvhdi hands GUIDs out "big-endian" (RFC 4122 text order): Data1..3 byte-swapped from the
 * Microsoft on-disk layout. */
static void guid_ms_to_be(const uint8_t *ms, uint8_t *be)
{
	be[0] = ms[3], be[1] = ms[2], be[2] = ms[1], be[3] = ms[0];
	be[4] = ms[5], be[5] = ms[4];
	be[6] = ms[7], be[7] = ms[6];
	memcpy(be + 8, ms + 8, 8);
}

static void guid_hex(const uint8_t *g, char *out)
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", g[i]);
}

/* ---- per-test state ------------------------------------------------------------------------*/

struct wr {
	uint64_t off;
	size_t len;
	uint8_t *data;
};

struct layer {
	struct wr *w;
	size_t n, cap;
	char path[PATH_MAX];
	libvhdi_file_t *lv;
	struct raw_header hdr;
	uint64_t hole; /* a block no write of this layer touches (NOT_PRESENT), or UINT64_MAX */
};

struct ctx {
	const struct case_spec *cs;
	char dir[64];
	struct layer layer[MAX_LAYERS];
	struct vhdx_file *ours; /* hvsim handle of the view under test */
	uint8_t *exp, *lib, *got;
	uint64_t rng;
};

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

static int case_setup(void **state)
{
	struct ctx *c = calloc(1, sizeof *c);
	if (!c)
		return -1;
	c->cs = *state;
	snprintf(c->dir, sizeof c->dir, "/tmp/hvsim-conf-libvhdi-XXXXXX");
	c->exp = malloc(CHUNK);
	c->lib = malloc(CHUNK);
	c->got = malloc(CHUNK);
	if (!mkdtemp(c->dir))
		c->dir[0] = 0;
	*state = c;
	return c->dir[0] && c->exp && c->lib && c->got ? 0 : -1;
}

static int case_teardown(void **state)
{
	struct ctx *c = *state;
	if (!c)
		return 0;
	vhdx_close(c->ours);
	/* children first: a libvhdi child only borrows its parent */
	for (int k = MAX_LAYERS - 1; k >= 0; k--) {
		struct layer *l = &c->layer[k];
		if (l->lv) {
			libvhdi_file_close(l->lv, NULL);
			libvhdi_file_free(&l->lv, NULL);
		}
		for (size_t i = 0; i < l->n; i++)
			free(l->w[i].data);
		free(l->w);
	}
	free(c->exp);
	free(c->lib);
	free(c->got);
	if (c->dir[0])
		nftw(c->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
	return 0;
}

/* ---- libvhdi helpers -----------------------------------------------------------------------*/

/* Prints libvhdi's error (and frees it) and fails the test. */
static void lv_fail(const struct ctx *c, int k, const char *what, libvhdi_error_t **err)
{
	char msg[2048] = "(no libvhdi error)";
	if (*err) {
		libvhdi_error_sprint(*err, msg, sizeof msg);
		libvhdi_error_free(err);
	}
	fail_msg("%s layer %d (%s): libvhdi %s failed: %s", c->cs->name, k, c->layer[k].path, what,
		 msg);
}

/* ---- write plan ----------------------------------------------------------------------------*/

static void add_write(struct ctx *c, int k, uint64_t off, uint64_t len)
{
	uint64_t vs = c->cs->virtual_size;
	if (off >= vs)
		return;
	if (len > vs - off)
		len = vs - off;
	if (len == 0)
		return;
	struct layer *l = &c->layer[k];
	uint64_t bs = c->cs->layer[k].block_size;
	if (l->hole != UINT64_MAX && off < (l->hole + 1) * bs && off + len > l->hole * bs)
		return;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 64;
		struct wr *nw = realloc(l->w, ncap * sizeof *nw);
		assert_non_null(nw);
		l->w = nw;
		l->cap = ncap;
	}
	uint8_t *d = malloc(len);
	assert_non_null(d);
	rnd_fill(&c->rng, d, len);
	l->w[l->n++] = (struct wr){off, (size_t)len, d};
}

/* A block for the random writes of layer k: blocks with (b + k) % 3 == 0 are left to the writes
 * that straddle boundaries, so each layer has blocks that read through to its parent; one of
 * them (the layer's `hole`) no write touches at all. */
static uint64_t pick_block(struct ctx *c, int k, uint64_t bs)
{
	uint64_t nb = (c->cs->virtual_size + bs - 1) / bs;
	if (nb < 3)
		return rnd_below(&c->rng, nb);
	for (;;) {
		uint64_t b = rnd_below(&c->rng, nb);
		if ((b + (uint64_t)k) % 3 != 0)
			return b;
	}
}

static void plan_layer(struct ctx *c, int k)
{
	const struct case_spec *cs = c->cs;
	uint64_t vs = cs->virtual_size, L = cs->logical_sector, bs = cs->layer[k].block_size;
	uint64_t nb = (vs + bs - 1) / bs;
	c->rng = cs->seed * 0x100000001b3ull + (uint64_t)k * 0x5bd1e995u + 1;
	c->layer[k].hole = UINT64_MAX;
	if (nb >= 5) {
		uint64_t h = 1;
		while ((h + (uint64_t)k) % 3)
			h++;
		c->layer[k].hole = h;
	}

	/* first bytes of the disk, not sector aligned */
	add_write(c, k, 1 + 7 * (uint64_t)k, 3 + (uint64_t)k);
	/* whole blocks (FULLY_PRESENT in a child), and a block completed in three unaligned pieces
	 * (PARTIALLY_PRESENT, then promoted) */
	if (bs <= 2 * MIB && nb >= 3) {
		for (int i = 0; i < 2; i++) {
			uint64_t b = pick_block(c, k, bs);
			if ((b + 1) * bs <= vs)
				add_write(c, k, b * bs, bs);
		}
		uint64_t b = pick_block(c, k, bs);
		if ((b + 1) * bs <= vs) {
			uint64_t x = 1 + rnd_below(&c->rng, bs / 2 - 1);
			uint64_t y = bs / 2 + rnd_below(&c->rng, bs / 2 - 1);
			add_write(c, k, b * bs + x, y - x);
			add_write(c, k, b * bs + y, bs - y);
			add_write(c, k, b * bs, x);
		}
		/* the partial last block, whole */
		if (vs % bs)
			add_write(c, k, (nb - 1) * bs, vs % bs);
	}
	/* one unaligned write across several blocks: partial head and tail, whole blocks between */
	if (bs <= 2 * MIB && nb >= 8) {
		uint64_t b, h = c->layer[k].hole;
		do
			b = rnd_below(&c->rng, nb - 3);
		while (h != UINT64_MAX && b <= h && h <= b + 2);
		add_write(c, k, b * bs + 1 + rnd_below(&c->rng, bs - 2), 2 * bs + rnd_below(&c->rng, bs));
	}
	/* sub-sector writes into sectors a parent layer wrote: the read-modify-write of the edge
	 * sectors must take the bytes around them from the parent chain */
	for (int i = 0; i < 4 && k > 0; i++) {
		const struct layer *p = &c->layer[rnd_below(&c->rng, (uint64_t)k)];
		const struct wr *w = &p->w[rnd_below(&c->rng, p->n)];
		uint64_t s = w->off / L * L, r = 1 + rnd_below(&c->rng, L / 2);
		add_write(c, k, s + r, 1 + rnd_below(&c->rng, L / 2 - 1));
	}
	/* sub-sector writes: inside one sector, unaligned at both ends */
	for (int i = 0; i < 4; i++) {
		uint64_t b = pick_block(c, k, bs);
		uint64_t blen = vs - b * bs < bs ? vs - b * bs : bs;
		uint64_t s = rnd_below(&c->rng, blen / L), r = rnd_below(&c->rng, L - 1);
		add_write(c, k, b * bs + s * L + r, 1 + rnd_below(&c->rng, L - r - 1));
	}
	/* unaligned writes straddling a block boundary */
	for (int i = 0; i < 3 && nb > 1; i++) {
		uint64_t b = 1 + rnd_below(&c->rng, nb - 1);
		add_write(c, k, b * bs - 1 - rnd_below(&c->rng, 3000), 1 + rnd_below(&c->rng, 6000));
	}
	/* the last bytes of the disk, starting inside a sector */
	add_write(c, k, vs - 1 - rnd_below(&c->rng, 3 * L), 3 * L);
	/* writes straddling the case's hot offsets (sector-bitmap chunk boundaries) and a sector
	 * aligned one just past each */
	for (int i = 0; i < MAX_HOT && cs->hot[i]; i++) {
		add_write(c, k, cs->hot[i] - 700 - 13 * (uint64_t)k, 1500);
		add_write(c, k, cs->hot[i] + (uint64_t)(k + 1) * 3 * MIB, 64 * 1024);
	}
	/* random writes: half sector-aligned with sector-multiple lengths, half arbitrary */
	for (int i = 0; i < 24; i++) {
		uint64_t b = pick_block(c, k, bs);
		uint64_t blen = vs - b * bs < bs ? vs - b * bs : bs;
		uint64_t off = b * bs + rnd_below(&c->rng, blen), len = 1 + rnd_below(&c->rng, 96 * 1024);
		if (i % 2 == 0) {
			off -= off % L;
			len = (len + L - 1) / L * L;
		}
		add_write(c, k, off, len);
	}
	/* overwrites of earlier writes (third session), partly overlapping */
	for (int i = 0; i < 3; i++) {
		const struct wr *w = &c->layer[k].w[rnd_below(&c->rng, c->layer[k].n)];
		add_write(c, k, w->off + w->len / 3, w->len / 2 + 1 + rnd_below(&c->rng, 2 * L));
	}
}

/* ---- creating and writing ------------------------------------------------------------------*/

static void ours_ok(const struct ctx *c, int k, const char *what, int rc)
{
	if (rc)
		fail_msg("%s layer %d: hvsim %s failed (%d): %s", c->cs->name, k, what, rc, hv_errmsg());
}

static void build_layer(struct ctx *c, int k)
{
	const struct case_spec *cs = c->cs;
	struct layer *l = &c->layer[k];
	snprintf(l->path, sizeof l->path, "%s/layer%d.vhdx", c->dir, k);
	struct vhdx_create_opts o = {
		.virtual_size = cs->virtual_size,
		.type = cs->layer[k].type,
		.block_size = cs->layer[k].block_size,
		.logical_sector = cs->logical_sector,
		.parent_path = k ? c->layer[k - 1].path : NULL,
		.seed = cs->seed + (uint64_t)k,
	};
	ours_ok(c, k, "vhdx_create", vhdx_create(l->path, &o));
	plan_layer(c, k);

	/* session 1 (with a flush after its first half), session 2, session 3 after a reopen;
	 * NOSYNC only drops the fsyncs (durability is not under test here), the write order and the
	 * log stay as they are */
	size_t s1 = l->n / 3, s2 = 2 * l->n / 3;
	const unsigned rw = VHDX_OPEN_RDWR | VHDX_OPEN_NOSYNC;
	struct vhdx_file *f = NULL;
	ours_ok(c, k, "vhdx_open(RDWR)", vhdx_open(l->path, rw, &f));
	c->ours = f;
	for (size_t i = 0; i < l->n; i++) {
		if (i == s1 / 2)
			ours_ok(c, k, "vhdx_flush", vhdx_flush(f));
		if (i == s1 || i == s2) {
			c->ours = NULL;
			ours_ok(c, k, "vhdx_close", vhdx_close(f));
			ours_ok(c, k, "vhdx_open(RDWR)", vhdx_open(l->path, rw, &f));
			c->ours = f;
		}
		int rc = vhdx_write(f, l->w[i].data, l->w[i].off, l->w[i].len);
		if (rc)
			fail_msg("%s layer %d: vhdx_write(off %llu, len %zu) failed (%d): %s", cs->name, k,
				 (unsigned long long)l->w[i].off, l->w[i].len, rc, hv_errmsg());
	}
	c->ours = NULL;
	ours_ok(c, k, "vhdx_close", vhdx_close(f));
}

/* ---- expectations and comparison -----------------------------------------------------------*/

/* The model: zeros, then the writes of layers 0..k in order. */
static void expected(const struct ctx *c, int k, uint64_t off, size_t len, uint8_t *out)
{
	memset(out, 0, len);
	for (int j = 0; j <= k; j++) {
		const struct layer *l = &c->layer[j];
		for (size_t i = 0; i < l->n; i++) {
			const struct wr *w = &l->w[i];
			uint64_t lo = w->off > off ? w->off : off;
			uint64_t hi = w->off + w->len < off + len ? w->off + w->len : off + len;
			if (lo < hi)
				memcpy(out + (lo - off), w->data + (lo - w->off), hi - lo);
		}
	}
}

static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return i;
	return n;
}

/* Prints where and how view k differs in the read [off, off+n) and fails the test. */
static void report_mismatch(const struct ctx *c, int k, uint64_t off, size_t n, size_t dl, size_t dg)
{
	const struct case_spec *cs = c->cs;
	size_t d = dl < dg ? dl : dg, cnt = 0, last = d;
	for (size_t i = d; i < n; i++)
		if (c->exp[i] != c->lib[i] || c->exp[i] != c->got[i])
			cnt++, last = i;
	unsigned long long at = off + d;
	fail_msg("%s, view of layer %d (%s): content differs at virtual offset %llu (block %llu of "
		 "%u bytes, sector %llu): model 0x%02x, libvhdi 0x%02x, hvsim 0x%02x; %zu differing "
		 "bytes up to offset %llu in this %zu-byte read; libvhdi %s the model, hvsim %s it",
		 cs->name, k, c->layer[k].path, at, at / cs->layer[k].block_size,
		 cs->layer[k].block_size, at / cs->logical_sector, c->exp[d], c->lib[d], c->got[d], cnt,
		 (unsigned long long)(off + last), n, dl < n ? "differs from" : "agrees with",
		 dg < n ? "differs from" : "agrees with");
}

/* Compares [off, off+len) of view k (layer k over its parents) three ways. */
static void check_range(struct ctx *c, int k, uint64_t off, uint64_t len)
{
	const struct case_spec *cs = c->cs;
	while (len) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		libvhdi_error_t *err = NULL;
		expected(c, k, off, n, c->exp);
		ssize_t got = libvhdi_file_read_buffer_at_offset(c->layer[k].lv, c->lib, n, (off64_t)off,
								 &err);
		if (got != (ssize_t)n) {
			char what[96];
			snprintf(what, sizeof what, "read_buffer_at_offset(%llu, %zu) = %zd",
				 (unsigned long long)off, n, got);
			lv_fail(c, k, what, &err);
		}
		int rc = vhdx_read(c->ours, c->got, off, n);
		if (rc)
			fail_msg("%s layer %d: vhdx_read(%llu, %zu) failed (%d): %s", cs->name, k,
				 (unsigned long long)off, n, rc, hv_errmsg());
		size_t dl = first_diff(c->exp, c->lib, n), dg = first_diff(c->exp, c->got, n);
		if (dl < n || dg < n)
			report_mismatch(c, k, off, n, dl, dg);
		off += n;
		len -= n;
	}
}

static void check_window(struct ctx *c, int k, uint64_t lo, uint64_t hi)
{
	uint64_t vs = c->cs->virtual_size, pad = 64 * 1024;
	lo = lo / pad * pad;
	lo = lo >= pad ? lo - pad : 0;
	hi = (hi + pad - 1) / pad * pad + pad;
	if (hi > vs)
		hi = vs;
	check_range(c, k, lo, hi - lo);
}

/* Metadata as libvhdi sees it: type, size, sector size, identifiers. */
static void check_metadata(struct ctx *c, int k)
{
	const struct case_spec *cs = c->cs;
	struct layer *l = &c->layer[k];
	libvhdi_error_t *err = NULL;
	uint32_t type = 0, bps = 0;
	int ftype = 0;
	size64_t media = 0;
	if (libvhdi_file_get_file_type(l->lv, &ftype, &err) != 1)
		lv_fail(c, k, "get_file_type", &err);
	if (ftype != LIBVHDI_FILE_TYPE_VHDX)
		fail_msg("%s layer %d: libvhdi file type %d, not VHDX (%d)", cs->name, k, ftype,
			 LIBVHDI_FILE_TYPE_VHDX);
	if (libvhdi_file_get_disk_type(l->lv, &type, &err) != 1)
		lv_fail(c, k, "get_disk_type", &err);
	if (libvhdi_file_get_media_size(l->lv, &media, &err) != 1)
		lv_fail(c, k, "get_media_size", &err);
	if (libvhdi_file_get_bytes_per_sector(l->lv, &bps, &err) != 1)
		lv_fail(c, k, "get_bytes_per_sector", &err);
	if (type != (uint32_t)cs->layer[k].type || media != cs->virtual_size || bps != cs->logical_sector)
		fail_msg("%s layer %d: libvhdi sees type %u, media size %llu, %u-byte sectors; "
			 "written: type %d, %llu bytes, %u-byte sectors", cs->name, k, type,
			 (unsigned long long)media, bps, (int)cs->layer[k].type,
			 (unsigned long long)cs->virtual_size, cs->logical_sector);

	uint8_t id[16], want[16];
	char a[33], b[33];
	if (libvhdi_file_get_identifier(l->lv, id, sizeof id, &err) != 1)
		lv_fail(c, k, "get_identifier", &err);
	guid_ms_to_be(l->hdr.data_write_guid, want);
	if (memcmp(id, want, 16) != 0) {
		guid_hex(id, a);
		guid_hex(want, b);
		fail_msg("%s layer %d: libvhdi identifier %s, current header's DataWriteGuid %s",
			 cs->name, k, a, b);
	}
	if (k == 0)
		return;
	int r = libvhdi_file_get_parent_identifier(l->lv, id, sizeof id, &err);
	if (r != 1)
		lv_fail(c, k, "get_parent_identifier (0 = none found)", &err);
	guid_ms_to_be(c->layer[k - 1].hdr.data_write_guid, want);
	if (memcmp(id, want, 16) != 0) {
		guid_hex(id, a);
		guid_hex(want, b);
		fail_msg("%s layer %d: libvhdi parent identifier %s, parent's DataWriteGuid %s",
			 cs->name, k, a, b);
	}
	/* the parent file name libvhdi extracts from the locator names the parent's file */
	size_t sz = 0;
	if (libvhdi_file_get_utf8_parent_filename_size(l->lv, &sz, &err) != 1 || sz == 0 || sz > 4096)
		lv_fail(c, k, "get_utf8_parent_filename_size", &err);
	uint8_t *name = malloc(sz);
	assert_non_null(name);
	if (libvhdi_file_get_utf8_parent_filename(l->lv, name, sz, &err) != 1) {
		free(name);
		lv_fail(c, k, "get_utf8_parent_filename", &err);
	}
	const char *base = strrchr(c->layer[k - 1].path, '/') + 1;
	size_t nl = strlen((char *)name), bl = strlen(base);
	int ok = nl >= bl && strcmp((char *)name + nl - bl, base) == 0 &&
		 (nl == bl || name[nl - bl - 1] == '\\' || name[nl - bl - 1] == '/');
	if (!ok) {
		char shown[256];
		snprintf(shown, sizeof shown, "%s", (char *)name);
		free(name);
		fail_msg("%s layer %d: libvhdi parent filename \"%s\" does not end in \"%s\"", cs->name, k,
			 shown, base);
	}
	free(name);
}

/* hvsim's own view of the block states: children hold FULLY_PRESENT, PARTIALLY_PRESENT and
 * NOT_PRESENT blocks (else the test would not exercise what it claims), and no state libvhdi
 * reads differently from the spec (ZERO/UNDEFINED/UNMAPPED) appears anywhere. */
static void check_states(struct ctx *c, int k)
{
	const struct case_spec *cs = c->cs;
	struct vhdx_file *f = NULL;
	ours_ok(c, k, "vhdx_open(NO_PARENT)", vhdx_open(c->layer[k].path, VHDX_OPEN_NO_PARENT, &f));
	c->ours = f;
	const struct vhdx_info *in = vhdx_get_info(f);
	if (memcmp(in->data_write_guid.b, c->layer[k].hdr.data_write_guid, 16) != 0)
		fail_msg("%s layer %d: hvsim's DataWriteGuid differs from the current header's",
			 cs->name, k);
	uint64_t bs = cs->layer[k].block_size, nb = (cs->virtual_size + bs - 1) / bs, count[8] = {0};
	for (uint64_t b = 0; b < nb; b++) {
		unsigned st = 0;
		ours_ok(c, k, "vhdx_block_state", vhdx_block_state(f, b, &st, NULL));
		count[st & 7]++;
	}
	if (in->type != cs->layer[k].type || in->virtual_size != cs->virtual_size || in->block_size != bs ||
	    in->logical_sector != cs->logical_sector)
		fail_msg("%s layer %d: hvsim reports type %d, %llu bytes, %u-byte blocks, %u-byte sectors",
			 cs->name, k, (int)in->type, (unsigned long long)in->virtual_size, in->block_size,
			 in->logical_sector);
	c->ours = NULL;
	vhdx_close(f);
	uint64_t bad = count[VHDX_BLOCK_UNDEFINED] + count[VHDX_BLOCK_ZERO] + count[VHDX_BLOCK_UNMAPPED] +
		       count[4] + count[5];
	enum vhdx_type t = cs->layer[k].type;
	bool want_all = t == VHDX_TYPE_DIFFERENCING && c->layer[k].hole != UINT64_MAX && bs <= 2 * MIB;
	if (bad || (t == VHDX_TYPE_FIXED && count[VHDX_BLOCK_FULLY_PRESENT] != nb) ||
	    (t != VHDX_TYPE_DIFFERENCING && count[VHDX_BLOCK_PARTIALLY_PRESENT]) ||
	    (want_all && (!count[VHDX_BLOCK_FULLY_PRESENT] || !count[VHDX_BLOCK_PARTIALLY_PRESENT] ||
			  !count[VHDX_BLOCK_NOT_PRESENT])))
		fail_msg("%s layer %d: block states of %llu blocks: NOT_PRESENT %llu, FULLY %llu, "
			 "PARTIALLY %llu, other %llu", cs->name, k, (unsigned long long)nb,
			 (unsigned long long)count[0], (unsigned long long)count[6],
			 (unsigned long long)count[7], (unsigned long long)bad);
}

static void open_libvhdi(struct ctx *c, int k)
{
	const struct case_spec *cs = c->cs;
	struct layer *l = &c->layer[k];
	char why[128];
	if (read_current_header(l->path, &l->hdr, why, sizeof why))
		fail_msg("%s layer %d: %s: %s", cs->name, k, l->path, why);
	static const uint8_t zero[16];
	if (memcmp(l->hdr.log_guid, zero, 16) != 0)
		fail_msg("%s layer %d: LogGuid is not zero after vhdx_close (libvhdi would ignore "
			 "a pending log)", cs->name, k);
	libvhdi_error_t *err = NULL;
	if (libvhdi_file_initialize(&l->lv, &err) != 1)
		lv_fail(c, k, "file_initialize", &err);
	if (libvhdi_file_open(l->lv, l->path, LIBVHDI_OPEN_READ, &err) != 1)
		lv_fail(c, k, "file_open", &err);
	if (k > 0 && libvhdi_file_set_parent_file(l->lv, c->layer[k - 1].lv, &err) != 1)
		lv_fail(c, k, "set_parent_file", &err);
}

/* Compares view k: whole disk when small, else every written window, samples and both ends. */
static void check_view(struct ctx *c, int k)
{
	const struct case_spec *cs = c->cs;
	uint64_t vs = cs->virtual_size;
	struct vhdx_file *f = NULL;
	ours_ok(c, k, "vhdx_open(RDONLY)", vhdx_open(c->layer[k].path, VHDX_OPEN_RDONLY, &f));
	c->ours = f;
	if (vs <= FULL_LIMIT) {
		check_range(c, k, 0, vs);
	} else {
		for (int j = 0; j <= k; j++)
			for (size_t i = 0; i < c->layer[j].n; i++)
				check_window(c, k, c->layer[j].w[i].off,
					     c->layer[j].w[i].off + c->layer[j].w[i].len);
		for (int j = k + 1; j < MAX_LAYERS; j++) /* where later layers write: parent data here */
			for (size_t i = 0; i < c->layer[j].n; i += 3)
				check_window(c, k, c->layer[j].w[i].off, c->layer[j].w[i].off + 1);
		c->rng = cs->seed ^ 0xabcdefull ^ (uint64_t)k;
		for (int i = 0; i < 16; i++) {
			uint64_t off = rnd_below(&c->rng, vs);
			check_window(c, k, off, off + 1);
		}
		check_range(c, k, 0, MIB);
		check_range(c, k, vs - MIB, MIB);
	}
	/* odd-sized reads at odd offsets, half of them near written data */
	c->rng = cs->seed ^ 0x77ull ^ (uint64_t)k;
	for (int i = 0; i < 40; i++) {
		uint64_t off;
		if (i % 2 && c->layer[k].n) {
			const struct wr *w = &c->layer[k].w[rnd_below(&c->rng, c->layer[k].n)];
			off = w->off + w->len;
			off = (off > 5000 ? off - 5000 : 0) + rnd_below(&c->rng, 10000);
		} else {
			off = rnd_below(&c->rng, vs);
		}
		if (off >= vs)
			off = vs - 1;
		uint64_t len = 1 + rnd_below(&c->rng, 300000);
		check_range(c, k, off, len < vs - off ? len : vs - off);
	}
	c->ours = NULL;
	ours_ok(c, k, "vhdx_close", vhdx_close(f));
}

static void run_case(void **state)
{
	struct ctx *c = *state;
	for (int k = 0; k < c->cs->nlayers; k++)
		build_layer(c, k);
	for (int k = 0; k < c->cs->nlayers; k++) {
		open_libvhdi(c, k);
		check_states(c, k);
		check_metadata(c, k);
		check_view(c, k);
	}
}

/* ---- the matrix ----------------------------------------------------------------------------*/

#define D VHDX_TYPE_DYNAMIC
#define F VHDX_TYPE_FIXED
#define X VHDX_TYPE_DIFFERENCING
#define CASE(id, ...)                                                                          \
	{ #id, run_case, case_setup, case_teardown,                                            \
	  &(struct case_spec){.name = #id, .seed = __LINE__, __VA_ARGS__} }
#define ONE(t, bs) .nlayers = 1, .layer = {{t, bs}}
#define CHAIN(t0, b0, b1, b2) .nlayers = 3, .layer = {{t0, b0}, {X, b1}, {X, b2}}

static const struct CMUnitTest tests[] = {
	/* single layer, every sector size x block size, sizes not a block multiple */
	CASE(dynamic_512_block1M_13M_plus_3584, .virtual_size = 13 * MIB + 3584, .logical_sector = 512,
	     ONE(D, 1 * MIB)),
	CASE(dynamic_4096_block1M_9M_plus_12K, .virtual_size = 9 * MIB + 12288, .logical_sector = 4096,
	     ONE(D, 1 * MIB)),
	CASE(dynamic_512_block2M_21M_plus_512, .virtual_size = 21 * MIB + 512, .logical_sector = 512,
	     ONE(D, 2 * MIB)),
	CASE(dynamic_4096_block2M_17M_plus_4K, .virtual_size = 17 * MIB + 4096, .logical_sector = 4096,
	     ONE(D, 2 * MIB)),
	CASE(dynamic_512_block32M_70M_plus_1K, .virtual_size = 70 * MIB + 1024, .logical_sector = 512,
	     ONE(D, 32 * MIB)),
	CASE(dynamic_4096_block32M_50M_plus_8K, .virtual_size = 50 * MIB + 8192, .logical_sector = 4096,
	     ONE(D, 32 * MIB)),
	CASE(dynamic_512_block256M_600M_plus_512, .virtual_size = 600 * MIB + 512, .logical_sector = 512,
	     ONE(D, 256 * MIB)),
	CASE(dynamic_4096_block256M_300M_plus_4K, .virtual_size = 300 * MIB + 4096, .logical_sector = 4096,
	     ONE(D, 256 * MIB)),
	CASE(fixed_512_block1M_11M_plus_512, .virtual_size = 11 * MIB + 512, .logical_sector = 512,
	     ONE(F, 1 * MIB)),
	CASE(fixed_4096_block1M_7M_plus_8K, .virtual_size = 7 * MIB + 8192, .logical_sector = 4096,
	     ONE(F, 1 * MIB)),
	CASE(fixed_512_block2M_15M_plus_1536, .virtual_size = 15 * MIB + 1536, .logical_sector = 512,
	     ONE(F, 2 * MIB)),
	CASE(fixed_4096_block2M_19M_plus_4K, .virtual_size = 19 * MIB + 4096, .logical_sector = 4096,
	     ONE(F, 2 * MIB)),
	CASE(fixed_512_block32M_40M_plus_2560, .virtual_size = 40 * MIB + 2560, .logical_sector = 512,
	     ONE(F, 32 * MIB)),
	CASE(fixed_4096_block32M_33M_plus_4K, .virtual_size = 33 * MIB + 4096, .logical_sector = 4096,
	     ONE(F, 32 * MIB)),
	CASE(fixed_512_block256M_300M_plus_512, .virtual_size = 300 * MIB + 512, .logical_sector = 512,
	     ONE(F, 256 * MIB)),
	/* fixed at libvhdi's limit: 4 GiB is exactly one sector-bitmap chunk at 512-byte sectors
	 * (libvhdi misreads fixed disks past the first chunk, reference/vhdx.md 4.1) */
	CASE(fixed_512_block32M_4G_one_chunk, .virtual_size = 4 * GIB, .logical_sector = 512,
	     ONE(F, 32 * MIB), .hot = {4 * GIB - 64 * MIB, 2 * GIB}),
	/* with 4096-byte sectors one chunk is 32 GiB: a 6 GiB fixed disk is still one chunk */
	CASE(fixed_4096_block32M_6G_one_chunk, .virtual_size = 6 * GIB, .logical_sector = 4096,
	     ONE(F, 32 * MIB), .hot = {4 * GIB, 5 * GIB + 4096}),
	/* sparse dynamic disks past the first chunk: payload indices skip the SB entries */
	CASE(dynamic_512_block1M_6G_past_4G_chunk, .virtual_size = 6 * GIB, .logical_sector = 512,
	     ONE(D, 1 * MIB), .hot = {4 * GIB, 5 * GIB + 123 * 512, 6 * GIB - 10 * MIB}),
	CASE(dynamic_512_block32M_9G_three_chunks, .virtual_size = 9 * GIB + 512, .logical_sector = 512,
	     ONE(D, 32 * MIB), .hot = {4 * GIB, 8 * GIB}),
	CASE(dynamic_4096_block1M_33G_past_32G_chunk, .virtual_size = 33 * GIB + 4096,
	     .logical_sector = 4096, ONE(D, 1 * MIB), .hot = {32 * GIB, 16 * GIB}),
	CASE(dynamic_4096_block32M_40G_past_32G_chunk, .virtual_size = 40 * GIB, .logical_sector = 4096,
	     ONE(D, 32 * MIB), .hot = {32 * GIB, 36 * GIB + 8192}),
	/* differencing chains base -> child -> grandchild */
	CASE(chain_dynamic_512_blocks_1M_2M_1M, .virtual_size = 20 * MIB + 1536, .logical_sector = 512,
	     CHAIN(D, 1 * MIB, 2 * MIB, 1 * MIB)),
	CASE(chain_dynamic_4096_blocks_2M_1M_2M, .virtual_size = 18 * MIB + 20480, .logical_sector = 4096,
	     CHAIN(D, 2 * MIB, 1 * MIB, 2 * MIB)),
	CASE(chain_fixed_512_blocks_32M_2M_2M, .virtual_size = 40 * MIB + 4608, .logical_sector = 512,
	     CHAIN(F, 32 * MIB, 2 * MIB, 2 * MIB)),
	CASE(chain_fixed_4096_blocks_1M_1M_1M, .virtual_size = 12 * MIB + 4096, .logical_sector = 4096,
	     CHAIN(F, 1 * MIB, 1 * MIB, 1 * MIB)),
	CASE(chain_dynamic_512_blocks_2M_32M_2M, .virtual_size = 70 * MIB + 512, .logical_sector = 512,
	     CHAIN(D, 2 * MIB, 32 * MIB, 2 * MIB)),
	CASE(chain_dynamic_4096_blocks_1M_32M_1M, .virtual_size = 66 * MIB + 4096, .logical_sector = 4096,
	     CHAIN(D, 1 * MIB, 32 * MIB, 1 * MIB)),
	/* 256 MiB child blocks: 64 KiB (512) and 8 KiB (4096) of sector bitmap per block */
	CASE(chain_dynamic_512_blocks_1M_256M_2M, .virtual_size = 520 * MIB + 512, .logical_sector = 512,
	     CHAIN(D, 1 * MIB, 256 * MIB, 2 * MIB)),
	CASE(chain_fixed_4096_blocks_2M_256M_1M, .virtual_size = 300 * MIB + 4096, .logical_sector = 4096,
	     CHAIN(F, 2 * MIB, 256 * MIB, 1 * MIB)),
	/* a fixed base of 6 GiB (one chunk at 4096-byte sectors) under two children */
	CASE(chain_fixed_4096_6G_blocks_32M_1M_2M, .virtual_size = 6 * GIB, .logical_sector = 4096,
	     CHAIN(F, 32 * MIB, 1 * MIB, 2 * MIB), .hot = {4 * GIB, 5 * GIB + 3 * 4096}),
	/* chains past the first chunk: sector-bitmap blocks of chunk 1 in the children */
	CASE(chain_dynamic_512_6G_blocks_1M_2M_1M_past_4G, .virtual_size = 6 * GIB, .logical_sector = 512,
	     CHAIN(D, 1 * MIB, 2 * MIB, 1 * MIB),
	     .hot = {4 * GIB, 4 * GIB + 2 * MIB + 512, 6 * GIB - 3 * MIB}),
	CASE(chain_dynamic_4096_33G_blocks_32M_2M_1M_past_32G, .virtual_size = 33 * GIB,
	     .logical_sector = 4096, CHAIN(D, 32 * MIB, 2 * MIB, 1 * MIB),
	     .hot = {32 * GIB, 32 * GIB + 7 * MIB + 4096}),
};

int main(void)
{
	return cmocka_run_group_tests(tests, NULL, NULL);
}
