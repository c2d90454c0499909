/*
 * rct_file — the change-tracking sidecar: rct_create, rct_open (full validation), rct_save
 * (atomic replace). Our own format, since Hyper-V's .rct/.mrt layout is not public.
 *
 * Must not: trust any count or length read from the file before checking it against the bytes
 * that remain, allocate more than a small multiple of the file size while loading, or leave
 * `path` holding anything but the old or the new complete state.
 *
 * LAYOUT (version 1; all integers little-endian)
 *   off  size  field
 *     0     8  magic "HVSIMRCT"
 *     8     4  u32 format version = 1
 *    12     4  u32 flags: bit 0 tracking enabled, bit 1 open epoch coarse, bit 2 open epoch
 *              lost a write; other bits zero
 *    16     8  u64 generation (1 after rct_create, +1 per rct_save)
 *    24     4  u32 granularity G (power of two, 4096..1 GiB)
 *    28     4  u32 coarse granularity C (multiple of G)
 *    32     8  u64 virtual size (1..64 TiB)
 *    40    16  tracking GUID (Microsoft byte order, non-zero)
 *    56     4  u32 seq (0 when tracking is disabled)
 *    60        seq epoch records, for e = 1..seq in order:
 *                varint e, u8 flags (bit 0 coarse, bit 1 lost), run list (G-blocks)
 *              the open epoch: run list of fine runs (G-blocks; empty when coarse),
 *                run list of coarse runs (C-blocks); every fine run lies inside coarse runs
 *   end-4   4  u32 CRC-32C of every byte before it; the file ends right after it
 *
 *   run list: varint n, then n x (varint gap, varint length-1), where run i starts `gap` blocks
 *   after the end of run i-1 (after 0 for the first). Runs are coalesced, so gap >= 1 after the
 *   first; every run ends at or before the block count. A coarse epoch's runs start and end on
 *   C boundaries (or at the disk end).
 *   varint: unsigned LEB128, at most 10 bytes, minimal (no redundant 0x80 continuation).
 *   100 000 scattered blocks of a 2 TiB disk at 64 KiB cost about 3 bytes each.
 *
 * The encoding is canonical: the same state always gives the same bytes.
 */
#include "rct_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RCT_MAGIC "HVSIMRCT"
#define RCT_VERSION 1u
#define RCT_HDR_LEN 60u
#define RCT_MIN_FILE (RCT_HDR_LEN + 4u)

enum {
	F_ENABLED = 1 << 0,
	F_OPEN_COARSE = 1 << 1,
	F_OPEN_LOST = 1 << 2,
	F_KNOWN = F_ENABLED | F_OPEN_COARSE | F_OPEN_LOST,
};

/* ---- encoding --------------------------------------------------------------------------------*/

struct obuf {
	uint8_t *p;
	size_t n, cap;
	bool oom;
};

static uint8_t *ob_room(struct obuf *b, size_t k)
{
	if (b->oom)
		return NULL;
	if (b->cap - b->n < k) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->n < k)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	uint8_t *at = b->p + b->n;
	b->n += k;
	return at;
}

static void ob_varint(struct obuf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t k = 0;
	do {
		tmp[k] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[k] |= 0x80;
		k++;
	} while (v);
	uint8_t *at = ob_room(b, k);
	if (at)
		memcpy(at, tmp, k);
}

static void ob_u8(struct obuf *b, uint8_t v)
{
	uint8_t *at = ob_room(b, 1);
	if (at)
		*at = v;
}

static void ob_runs(struct obuf *b, const uint64_t *runs, size_t n)
{
	ob_varint(b, n);
	uint64_t prev = 0;
	for (size_t i = 0; i < n; i++) {
		ob_varint(b, runs[2 * i] - prev);
		ob_varint(b, runs[2 * i + 1] - runs[2 * i] - 1);
		prev = runs[2 * i + 1];
	}
}

/* The runs of a bitmap, in its own units: one pass to count, one to write. */
static void ob_runs_sbm(struct obuf *b, const struct sbm *m)
{
	size_t n = 0;
	for (uint64_t pos = 0, s; (s = sbm_next_set(m, pos)) < m->nbits; n++)
		pos = sbm_next_clear(m, s);
	ob_varint(b, n);
	uint64_t prev = 0;
	for (uint64_t pos = 0, s; (s = sbm_next_set(m, pos)) < m->nbits;) {
		uint64_t e = sbm_next_clear(m, s);
		ob_varint(b, s - prev);
		ob_varint(b, e - s - 1);
		prev = pos = e;
	}
}

static int encode(const struct rct *r, uint64_t generation, struct obuf *b)
{
	uint8_t *h = ob_room(b, RCT_HDR_LEN);
	if (h) {
		uint32_t flags = (r->enabled ? F_ENABLED : 0) |
				 (r->open_flags & RCT_EPOCH_COARSE ? F_OPEN_COARSE : 0) |
				 (r->open_flags & RCT_EPOCH_LOST ? F_OPEN_LOST : 0);
		memcpy(h, RCT_MAGIC, 8);
		hv_put32(h + 8, RCT_VERSION);
		hv_put32(h + 12, flags);
		hv_put64(h + 16, generation);
		hv_put32(h + 24, r->gran);
		hv_put32(h + 28, r->coarse);
		hv_put64(h + 32, r->size);
		memcpy(h + 40, r->guid.b, 16);
		hv_put32(h + 56, r->seq);
	}
	for (uint32_t e = 1; e <= r->seq; e++) {
		const struct rct_epoch *ep = &r->epochs[e - 1];
		ob_varint(b, e);
		ob_u8(b, ep->flags);
		ob_runs(b, ep->runs, ep->n);
	}
	ob_runs_sbm(b, &r->fine);
	ob_runs_sbm(b, &r->cmap);
	if (!b->oom) {
		uint32_t crc = hv_crc32c(b->p, b->n);
		uint8_t *c = ob_room(b, 4);
		if (c)
			hv_put32(c, crc);
	}
	if (b->oom)
		return hv_err(HV_ENOMEM, "%s: out of memory encoding the sidecar", r->path);
	return 0;
}

/* ---- saving ----------------------------------------------------------------------------------*/

static char *tmp_path(const char *path)
{
	size_t n = strlen(path);
	char *t = malloc(n + 5);
	if (t) {
		memcpy(t, path, n);
		memcpy(t + n, ".tmp", 5);
	}
	return t;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int fsync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return hv_err(HV_ENOMEM, "%s: out of memory", path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	if (fd < 0 || fsync(fd) != 0)
		rc = hv_err(HV_EIO, "%s: fsync of directory %s failed: %s", path, dir,
			    strerror(errno));
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

int rct_save(struct rct *r)
{
	if (r->flags & RCT_RDONLY)
		return hv_err(HV_EINVAL, "%s: opened read-only, cannot save", r->path);
	struct obuf b = {0};
	char *tmp = tmp_path(r->path);
	int fd = -1, rc;
	enum rct_save_fault fault = r->fault;
	r->fault = RCT_FAULT_NONE;
	if (!tmp) {
		rc = hv_err(HV_ENOMEM, "%s: out of memory", r->path);
		goto out;
	}
	rc = encode(r, r->generation + 1, &b);
	if (rc)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = hv_err(HV_EIO, "%s: cannot create: %s", tmp, strerror(errno));
		goto out;
	}
	if (fault == RCT_FAULT_TORN_TMP) {
		rc = write_all(fd, b.p, b.n / 2) ? HV_EIO : HV_ECRASHED;
		rc = hv_err(rc, "%s: fault point: power lost after %zu of %zu bytes", tmp, b.n / 2,
			    b.n);
		goto out;
	}
	if (write_all(fd, b.p, b.n) || (!(r->flags & RCT_NOSYNC) && fsync(fd) != 0)) {
		rc = hv_err(HV_EIO, "%s: write failed: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = hv_err(HV_EIO, "%s: close failed: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (fault == RCT_FAULT_BEFORE_RENAME) {
		rc = hv_err(HV_ECRASHED, "%s: fault point: power lost before the rename", tmp);
		goto out;
	}
	if (rename(tmp, r->path) != 0) {
		rc = hv_err(HV_EIO, "%s: rename to %s failed: %s", tmp, r->path, strerror(errno));
		goto out;
	}
	if (!(r->flags & RCT_NOSYNC) && (rc = fsync_dir(r->path)) != 0)
		goto out;
	r->generation++;
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(b.p);
	return rc;
}

int rct_create(const char *path, uint64_t virtual_size, uint32_t granularity, uint32_t coarse,
	       const struct hv_guid *guid, unsigned flags, struct rct **out)
{
	struct rct *r = NULL;
	struct stat st;
	*out = NULL;
	if (granularity == 0)
		granularity = RCT_DEFAULT_GRANULARITY;
	if (coarse == 0)
		coarse = granularity > RCT_DEFAULT_COARSE ? granularity : RCT_DEFAULT_COARSE;
	const char *why = rct_geometry_problem(virtual_size, granularity, coarse);
	if (why)
		return hv_err(HV_EINVAL, "%s: create (size %llu, granularity %u, coarse %u): %s",
			      path, (unsigned long long)virtual_size, granularity, coarse, why);
	if (!guid || hv_guid_is_zero(guid))
		return hv_err(HV_EINVAL, "%s: create needs a non-zero tracking GUID", path);
	if (flags & ~(unsigned)RCT_NOSYNC)
		return hv_err(HV_EINVAL, "%s: create: flags 0x%x (only RCT_NOSYNC applies)", path,
			      flags);
	if (stat(path, &st) == 0)
		return hv_err(HV_EINVAL, "%s: already exists", path);
	int rc = rct_alloc(path, flags, virtual_size, granularity, coarse, &r);
	if (rc)
		return rc;
	r->guid = *guid;
	rc = rct_save(r);
	if (rc) {
		rct_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* ---- loading ---------------------------------------------------------------------------------*/

struct ibuf {
	const uint8_t *p;
	size_t n, off; /* n excludes the trailing CRC */
	const char *path;
};

static int ib_varint(struct ibuf *b, uint64_t *v, const char *what, uint64_t idx)
{
	uint64_t x = 0;
	size_t start = b->off;
	for (unsigned k = 0;; k++) {
		if (b->off >= b->n)
			return hv_err(HV_ECORRUPT, "%s: %s %llu: truncated at offset %zu", b->path,
				      what, (unsigned long long)idx, start);
		uint8_t c = b->p[b->off++];
		if (k == 9 && c > 1)
			return hv_err(HV_ECORRUPT,
				      "%s: %s %llu: varint at offset %zu overflows 64 bits",
				      b->path, what, (unsigned long long)idx, start);
		x |= (uint64_t)(c & 0x7f) << (7 * k);
		if (!(c & 0x80)) {
			if (c == 0 && k > 0)
				return hv_err(HV_ECORRUPT,
					      "%s: %s %llu: varint at offset %zu is not minimal",
					      b->path, what, (unsigned long long)idx, start);
			*v = x;
			return 0;
		}
	}
}

/* Reads a run list of blocks in [0, limit). `what`/`idx` name it in messages. The count is
 * checked against the remaining bytes (every run takes at least 2) before anything is
 * allocated. *out is owned by the caller (NULL when n is 0). */
static int ib_runs(struct ibuf *b, uint64_t limit, const char *what, uint64_t idx, uint64_t **out,
		   size_t *nout)
{
	uint64_t n, prev = 0;
	int rc = ib_varint(b, &n, what, idx);
	*out = NULL;
	*nout = 0;
	if (rc)
		return rc;
	if (n > (b->n - b->off) / 2 || n > limit)
		return hv_err(HV_ECORRUPT,
			      "%s: %s %llu: run count %llu exceeds what the remaining %zu bytes "
			      "(or %llu blocks) can hold",
			      b->path, what, (unsigned long long)idx, (unsigned long long)n,
			      b->n - b->off, (unsigned long long)limit);
	if (n == 0)
		return 0;
	uint64_t *runs = malloc((size_t)n * 2 * sizeof *runs);
	if (!runs)
		return hv_err(HV_ENOMEM, "%s: %s %llu: out of memory for %llu runs", b->path, what,
			      (unsigned long long)idx, (unsigned long long)n);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t gap, lm1;
		if ((rc = ib_varint(b, &gap, what, idx)) || (rc = ib_varint(b, &lm1, what, idx)))
			goto fail;
		if (i > 0 && gap == 0) {
			rc = hv_err(HV_ECORRUPT,
				    "%s: %s %llu: run %llu is adjacent to run %llu (runs must be "
				    "coalesced)",
				    b->path, what, (unsigned long long)idx, (unsigned long long)i,
				    (unsigned long long)i - 1);
			goto fail;
		}
		if (gap >= limit - prev || lm1 >= limit - prev - gap) {
			rc = hv_err(HV_ECORRUPT,
				    "%s: %s %llu: run %llu ends past the %llu blocks of the disk",
				    b->path, what, (unsigned long long)idx, (unsigned long long)i,
				    (unsigned long long)limit);
			goto fail;
		}
		runs[2 * i] = prev + gap;
		runs[2 * i + 1] = prev = prev + gap + lm1 + 1;
	}
	*out = runs;
	*nout = (size_t)n;
	return 0;
fail:
	free(runs);
	return rc;
}

static int read_file(const char *path, uint8_t **out, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *p = NULL;
	int rc = 0;
	if (fd < 0)
		return hv_err(errno == ENOENT ? HV_ENOTFOUND : HV_EIO, "%s: cannot open: %s", path,
			      strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = hv_err(HV_EIO, "%s: stat failed: %s", path, strerror(errno));
		goto out;
	}
	if (st.st_size < (off_t)RCT_MIN_FILE) {
		rc = hv_err(HV_ECORRUPT,
			    "%s: file: %lld bytes, shorter than the %u-byte header and checksum",
			    path, (long long)st.st_size, RCT_MIN_FILE);
		goto out;
	}
	if ((uint64_t)st.st_size > SIZE_MAX / 2) {
		rc = hv_err(HV_ECORRUPT, "%s: file: %lld bytes is too large", path,
			    (long long)st.st_size);
		goto out;
	}
	p = malloc((size_t)st.st_size);
	if (!p) {
		rc = hv_err(HV_ENOMEM, "%s: out of memory reading %lld bytes", path,
			    (long long)st.st_size);
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t k = pread(fd, p + got, (size_t)st.st_size - got, (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = hv_err(HV_EIO, "%s: read failed at %zu: %s", path, got,
				    k < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		got += (size_t)k;
	}
	*out = p;
	*n = got;
	p = NULL;
out:
	free(p);
	close(fd);
	return rc;
}

/* Header fields up to the epochs; allocates the object. */
static int decode_header(const char *path, unsigned oflags, const uint8_t *h, struct rct **out)
{
	uint32_t version = hv_le32(h + 8), flags = hv_le32(h + 12);
	uint64_t generation = hv_le64(h + 16), size = hv_le64(h + 32);
	uint32_t gran = hv_le32(h + 24), coarse = hv_le32(h + 28), seq = hv_le32(h + 56);
	struct hv_guid g;
	memcpy(g.b, h + 40, 16);
	if (version != RCT_VERSION)
		return hv_err(HV_EUNSUPPORTED,
			      "%s: header: format version %u (this build reads %u)", path,
			      version, RCT_VERSION);
	if (flags & ~(uint32_t)F_KNOWN)
		return hv_err(HV_ECORRUPT, "%s: header: flags 0x%x has unknown bits", path, flags);
	if (generation == 0)
		return hv_err(HV_ECORRUPT, "%s: header: generation is 0", path);
	const char *why = rct_geometry_problem(size, gran, coarse);
	if (why)
		return hv_err(HV_ECORRUPT, "%s: header: size %llu, granularity %u, coarse %u: %s",
			      path, (unsigned long long)size, gran, coarse, why);
	if (hv_guid_is_zero(&g))
		return hv_err(HV_ECORRUPT, "%s: header: tracking GUID is zero", path);
	if (!(flags & F_ENABLED) && (seq || (flags & ~(uint32_t)F_ENABLED)))
		return hv_err(HV_ECORRUPT,
			      "%s: header: tracking is disabled but seq is %u, flags 0x%x", path,
			      seq, flags);
	int rc = rct_alloc(path, oflags, size, gran, coarse, out);
	if (rc)
		return rc;
	struct rct *r = *out;
	r->generation = generation;
	r->guid = g;
	r->enabled = flags & F_ENABLED;
	r->open_flags = (flags & F_OPEN_COARSE ? RCT_EPOCH_COARSE : 0) |
			(flags & F_OPEN_LOST ? RCT_EPOCH_LOST : 0);
	return 0;
}

static int decode_epochs(struct rct *r, struct ibuf *b, uint32_t seq)
{
	/* an epoch record takes at least 3 bytes: bound the array before sizing it */
	if (seq > (b->n - b->off) / 3)
		return hv_err(HV_ECORRUPT, "%s: header: seq %u exceeds what the remaining %zu "
					   "bytes can hold",
			      r->path, seq, b->n - b->off);
	if (seq) {
		r->epochs = malloc((size_t)seq * sizeof *r->epochs);
		if (!r->epochs)
			return hv_err(HV_ENOMEM, "%s: out of memory for %u epochs", r->path, seq);
		r->epochs_cap = seq;
	}
	for (uint32_t e = 1; e <= seq; e++) {
		uint64_t v, *runs;
		size_t n;
		int rc = ib_varint(b, &v, "epoch", e);
		if (rc)
			return rc;
		if (v != e)
			return hv_err(HV_ECORRUPT, "%s: epoch %u: record says epoch %llu",
				      r->path, e, (unsigned long long)v);
		if (b->off >= b->n)
			return hv_err(HV_ECORRUPT, "%s: epoch %u: truncated before its flags",
				      r->path, e);
		uint8_t fl = b->p[b->off++];
		if (fl & ~(RCT_EPOCH_COARSE | RCT_EPOCH_LOST))
			return hv_err(HV_ECORRUPT, "%s: epoch %u: flags 0x%x has unknown bits",
				      r->path, e, fl);
		if ((rc = ib_runs(b, r->nblocks, "epoch", e, &runs, &n)))
			return rc;
		for (size_t i = 0; (fl & RCT_EPOCH_COARSE) && i < n; i++) {
			uint64_t s = runs[2 * i], en = runs[2 * i + 1];
			if (s % r->ratio || (en % r->ratio && en != r->nblocks)) {
				free(runs);
				return hv_err(HV_ECORRUPT,
					      "%s: epoch %u: coarse run %zu [%llu, %llu) is not on "
					      "%u-block boundaries",
					      r->path, e, i, (unsigned long long)s,
					      (unsigned long long)en, r->ratio);
			}
		}
		if ((rc = rct_append_epoch(r, runs, n, fl)))
			return rc;
	}
	return 0;
}

static int decode_open(struct rct *r, struct ibuf *b)
{
	uint64_t *fine = NULL, *coarse = NULL;
	size_t nf = 0, nc = 0;
	int rc = ib_runs(b, r->nblocks, "open epoch fine record", r->seq + 1ull, &fine, &nf);
	if (rc)
		goto out;
	rc = ib_runs(b, r->ncoarse, "open epoch coarse record", r->seq + 1ull, &coarse, &nc);
	if (rc)
		goto out;
	if (nf && (r->open_flags & RCT_EPOCH_COARSE)) {
		rc = hv_err(HV_ECORRUPT, "%s: open epoch: coarse, yet it has %zu fine runs",
			    r->path, nf);
		goto out;
	}
	if ((nf || nc) && !r->enabled) {
		rc = hv_err(HV_ECORRUPT, "%s: open epoch: tracking is disabled, yet it has runs",
			    r->path);
		goto out;
	}
	for (size_t i = 0; i < nc; i++)
		if (sbm_set(&r->cmap, coarse[2 * i], coarse[2 * i + 1])) {
			rc = hv_err(HV_ENOMEM, "%s: out of memory loading the open epoch", r->path);
			goto out;
		}
	for (size_t i = 0; i < nf; i++) {
		uint64_t s = fine[2 * i], e = fine[2 * i + 1];
		uint64_t cs = s / r->ratio, ce = (e - 1) / r->ratio + 1;
		if (!sbm_test(&r->cmap, cs) || sbm_next_clear(&r->cmap, cs) < ce) {
			rc = hv_err(HV_ECORRUPT,
				    "%s: open epoch: fine run %zu [%llu, %llu) is not covered by "
				    "the coarse record",
				    r->path, i, (unsigned long long)s, (unsigned long long)e);
			goto out;
		}
		if (sbm_set(&r->fine, s, e)) {
			rc = hv_err(HV_ENOMEM, "%s: out of memory loading the open epoch", r->path);
			goto out;
		}
	}
out:
	free(fine);
	free(coarse);
	return rc;
}

int rct_open(const char *path, unsigned flags, struct rct **out)
{
	uint8_t *p = NULL;
	size_t n = 0;
	struct rct *r = NULL;
	*out = NULL;
	if (flags & ~(unsigned)(RCT_NOSYNC | RCT_RDONLY))
		return hv_err(HV_EINVAL, "%s: open: unknown flags 0x%x", path, flags);
	int rc = read_file(path, &p, &n);
	if (rc)
		return rc;
	if (memcmp(p, RCT_MAGIC, 8) != 0) {
		rc = hv_err(HV_ECORRUPT, "%s: header: magic is not HVSIMRCT", path);
		goto out;
	}
	uint32_t stored = hv_le32(p + n - 4), computed = hv_crc32c(p, n - 4);
	if (stored != computed) {
		rc = hv_err(HV_ECORRUPT,
			    "%s: checksum: stored 0x%08x, computed 0x%08x over %zu bytes "
			    "(damaged or truncated)",
			    path, stored, computed, n - 4);
		goto out;
	}
	if ((rc = decode_header(path, flags, p, &r)))
		goto out;
	struct ibuf b = {.p = p, .n = n - 4, .off = RCT_HDR_LEN, .path = path};
	if ((rc = decode_epochs(r, &b, hv_le32(p + 56))) || (rc = decode_open(r, &b)))
		goto out;
	if (b.off != b.n) {
		rc = hv_err(HV_ECORRUPT, "%s: file: %zu unexpected bytes before the checksum", path,
			    b.n - b.off);
		goto out;
	}
	if (!(flags & RCT_RDONLY)) {
		char *tmp = tmp_path(path);
		if (tmp)
			unlink(tmp); /* a save cut by a crash; the renamed file is the truth */
		free(tmp);
	}
	*out = r;
	r = NULL;
out:
	rct_close(r);
	free(p);
	return rc;
}

void rct_set_save_fault(struct rct *r, enum rct_save_fault fault) { r->fault = fault; }
