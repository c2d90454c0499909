/*
 * repo_pack — pack files: writing records (buffered, fsynced before any catalog row naming them
 * commits), reading one record back with every check, and the pack-file fd cache.
 *
 * Must not: allocate from a length read from a pack or the catalog before bounding it by the
 * block size, read outside the file, or return block bytes whose SHA-256 differs from the
 * catalog's.
 *
 * PACK LAYOUT (version 1; packs/<id as at least 8 lowercase hex digits>.pack; little-endian)
 *   header, 32 bytes:
 *     0   8  magic "HVBKPACK"
 *     8   4  u32 version = 1
 *    12   4  u32 header length = 32
 *    16   8  u64 pack id (equals the number in the file name)
 *    24   4  u32 reserved, zero
 *    28   4  u32 CRC-32C of bytes 0..27
 *   then records back to back until the end of the file, each:
 *     0   4  magic "HVRB"
 *     4   4  u32 flags: bit 0 = payload is one zstd frame; other bits zero
 *     8  32  SHA-256 of the raw (uncompressed) block
 *    40   4  u32 raw length (1..16 MiB)
 *    44   4  u32 stored length (payload bytes; equals the raw length when not compressed)
 *    48   4  u32 CRC-32C of bytes 0..47 of this header followed by the payload
 *    52      payload
 *   A pack can be scanned and verified without the catalog: walk records from offset 32, check
 *   each CRC, decompress and compare the SHA-256.
 *
 * A pack is written once, by one session or one prune, then fsynced with its folder; it is
 * never modified after the catalog row naming it commits, and deleted only after no committed
 * row names it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo_internal.h"

#define WRITE_BUF (1u << 20)

void repo_pack_path(const struct repo *r, int64_t id, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%08" PRIx64 ".pack", r->packdir, (uint64_t)id);
}

bool repo_pack_name_parse(const char *name, int64_t *id)
{
	size_t n = strlen(name);
	if (n < 13 || n > 21 || strcmp(name + n - 5, ".pack"))
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n - 5; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (v == 0 || v > INT64_MAX)
		return false;
	/* canonical spelling only: what repo_pack_path would produce */
	char canon[32];
	snprintf(canon, sizeof canon, "%08" PRIx64 ".pack", v);
	if (strcmp(canon, name))
		return false;
	*id = (int64_t)v;
	return true;
}

int repo_sha256(const void *data, size_t n, uint8_t out[REPO_HASH_LEN])
{
	unsigned len = 0;
	if (EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) != 1 || len != REPO_HASH_LEN)
		return hv_err(HV_EIO, "SHA-256 (OpenSSL EVP) failed");
	return 0;
}

size_t repo_stored_bound(uint32_t raw_len) { return ZSTD_compressBound(raw_len); }

void repo_rec_header(uint8_t h[REC_HDR_LEN], uint32_t flags, const uint8_t hash[REPO_HASH_LEN],
		     uint32_t raw_len, const void *payload, uint32_t stored_len)
{
	memcpy(h, REC_MAGIC, 4);
	hv_put32(h + 4, flags);
	memcpy(h + 8, hash, REPO_HASH_LEN);
	hv_put32(h + 40, raw_len);
	hv_put32(h + 44, stored_len);
	uint32_t c = hv_crc32c_update(HV_CRC32C_INIT, h, 48);
	c = hv_crc32c_update(c, payload, stored_len);
	hv_put32(h + 48, hv_crc32c_final(c));
}

int repo_buffers(struct repo *r)
{
	if (r->rec)
		return 0;
	r->rec_cap = REC_HDR_LEN + repo_stored_bound(r->block_size);
	r->rec = malloc(r->rec_cap);
	r->raw = malloc(r->block_size);
	if (!r->rec || !r->raw) {
		free(r->rec);
		free(r->raw);
		r->rec = r->raw = NULL;
		return hv_err(HV_ENOMEM, "%s: out of memory for block buffers", r->path);
	}
	return 0;
}

/* ---- writing ---------------------------------------------------------------------------------*/

static int write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
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

void repo_packset_init(struct repo_packset *ps, int64_t next_id)
{
	memset(ps, 0, sizeof *ps);
	ps->next_id = next_id;
	ps->fd = -1;
}

static int ps_flush_buf(struct repo *r, struct repo_packset *ps)
{
	if (ps->nbuf && write_all(ps->fd, ps->buf, ps->nbuf)) {
		char p[REPO_PATH_MAX];
		repo_pack_path(r, ps->cur, p, sizeof p);
		return hv_err(HV_EIO, "%s: write failed: %s", p, strerror(errno));
	}
	ps->nbuf = 0;
	return 0;
}

static int ps_put(struct repo *r, struct repo_packset *ps, const void *data, size_t n)
{
	if (ps->cap - ps->nbuf < n) {
		int e = ps_flush_buf(r, ps);
		if (e)
			return e;
		if (n > ps->cap) {
			if (write_all(ps->fd, data, n)) {
				char p[REPO_PATH_MAX];
				repo_pack_path(r, ps->cur, p, sizeof p);
				return hv_err(HV_EIO, "%s: write failed: %s", p, strerror(errno));
			}
			ps->size += n;
			ps->bytes += n;
			return 0;
		}
	}
	memcpy(ps->buf + ps->nbuf, data, n);
	ps->nbuf += n;
	ps->size += n;
	ps->bytes += n;
	return 0;
}

static int ps_start(struct repo *r, struct repo_packset *ps)
{
	char p[REPO_PATH_MAX];
	if (!ps->buf) {
		ps->cap = r->pack_size < WRITE_BUF ? (size_t)r->pack_size : WRITE_BUF;
		if (!(ps->buf = malloc(ps->cap)))
			return hv_err(HV_ENOMEM, "%s: out of memory", r->path);
	}
	if (ps->nids == ps->capids) {
		size_t cap = ps->capids ? 2 * ps->capids : 8;
		int64_t *ids = realloc(ps->ids, cap * sizeof *ids);
		if (!ids)
			return hv_err(HV_ENOMEM, "%s: out of memory", r->path);
		ps->ids = ids;
		ps->capids = cap;
	}
	int64_t id = ps->next_id;
	repo_pack_path(r, id, p, sizeof p);
	/* a file of that name can only be an orphan of a crashed session: no committed row names
	 * an id at or above next_pack */
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return hv_err(HV_EIO, "%s: cannot create: %s", p, strerror(errno));
	ps->ids[ps->nids++] = id;
	ps->next_id++;
	ps->cur = id;
	ps->fd = fd;
	ps->size = 0;
	ps->records = 0;
	ps->nbuf = 0;

	uint8_t h[PACK_HDR_LEN] = {0};
	memcpy(h, PACK_MAGIC, 8);
	hv_put32(h + 8, PACK_VERSION);
	hv_put32(h + 12, PACK_HDR_LEN);
	hv_put64(h + 16, (uint64_t)id);
	hv_put32(h + 28, hv_crc32c(h, 28));
	int e = ps_put(r, ps, h, sizeof h);
	if (e)
		return e;

	sqlite3_stmt *st;
	e = rdb_prep(r, &st, "INSERT INTO packs(id, size, records) VALUES(?1, 0, 0)");
	if (e)
		return e;
	sqlite3_bind_int64(st, 1, id);
	e = rdb_step_done(r, st);
	sqlite3_finalize(st);
	return e;
}

/* Flushes, fsyncs and closes the current pack and records its size. */
static int ps_close_cur(struct repo *r, struct repo_packset *ps)
{
	if (ps->fd < 0)
		return 0;
	char p[REPO_PATH_MAX];
	repo_pack_path(r, ps->cur, p, sizeof p);
	int e = ps_flush_buf(r, ps);
	if (e)
		return e;
	if (!(r->flags & REPO_OPEN_NOSYNC) && fsync(ps->fd) != 0)
		return hv_err(HV_EIO, "%s: fsync failed: %s", p, strerror(errno));
	int rc = close(ps->fd);
	ps->fd = -1;
	if (rc != 0)
		return hv_err(HV_EIO, "%s: close failed: %s", p, strerror(errno));
	sqlite3_stmt *st;
	e = rdb_prep(r, &st, "UPDATE packs SET size = ?2, records = ?3 WHERE id = ?1");
	if (e)
		return e;
	sqlite3_bind_int64(st, 1, ps->cur);
	sqlite3_bind_int64(st, 2, (int64_t)ps->size);
	sqlite3_bind_int64(st, 3, (int64_t)ps->records);
	e = rdb_step_done(r, st);
	sqlite3_finalize(st);
	ps->cur = 0;
	return e;
}

int repo_packset_append(struct repo *r, struct repo_packset *ps, const uint8_t *hdr, size_t hn,
			const void *payload, size_t pn, int64_t *pack, uint64_t *offset)
{
	int e;
	if (ps->fd >= 0 && ps->records > 0 && ps->size + hn + pn > r->pack_size &&
	    (e = ps_close_cur(r, ps)))
		return e;
	if (ps->fd < 0 && (e = ps_start(r, ps)))
		return e;
	*pack = ps->cur;
	*offset = ps->size;
	if ((e = ps_put(r, ps, hdr, hn)) || (e = ps_put(r, ps, payload, pn)))
		return e;
	ps->records++;
	return 0;
}

int repo_packset_finish(struct repo *r, struct repo_packset *ps)
{
	int e = ps_close_cur(r, ps);
	if (!e && ps->nids)
		e = repo_sync_packdir(r);
	return e;
}

void repo_packset_discard(struct repo *r, struct repo_packset *ps, bool unlink_files)
{
	if (ps->fd >= 0)
		close(ps->fd);
	ps->fd = -1;
	if (unlink_files) {
		char p[REPO_PATH_MAX];
		for (size_t i = 0; i < ps->nids; i++) {
			repo_pack_path(r, ps->ids[i], p, sizeof p);
			unlink(p);
		}
	}
	free(ps->buf);
	free(ps->ids);
	ps->buf = NULL;
	ps->ids = NULL;
	ps->nids = ps->capids = 0;
	ps->cur = 0;
}

/* ---- reading ---------------------------------------------------------------------------------*/

void repo_fd_cache_clear(struct repo *r)
{
	for (int i = 0; i < REPO_FD_CACHE; i++) {
		if (r->fds[i].fd >= 0)
			close(r->fds[i].fd);
		r->fds[i].fd = -1;
		r->fds[i].id = 0;
	}
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t k = pread(fd, p, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0) {
			errno = 0;
			return -1;
		}
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

int repo_pack_open(struct repo *r, int64_t id, int *fdp, uint64_t *sizep)
{
	for (int i = 0; i < REPO_FD_CACHE; i++)
		if (r->fds[i].id == id && r->fds[i].fd >= 0) {
			*fdp = r->fds[i].fd;
			*sizep = r->fds[i].size;
			return 0;
		}
	char p[REPO_PATH_MAX];
	repo_pack_path(r, id, p, sizeof p);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hv_err(errno == ENOENT ? HV_ECORRUPT : HV_EIO,
			      "%s: cannot open a pack the catalog names: %s", p, strerror(errno));
	struct stat sb;
	uint8_t h[PACK_HDR_LEN];
	int e = 0;
	if (fstat(fd, &sb) != 0)
		e = hv_err(HV_EIO, "%s: stat failed: %s", p, strerror(errno));
	else if ((uint64_t)sb.st_size < PACK_HDR_LEN)
		e = hv_err(HV_ECORRUPT, "%s: truncated: %lld bytes, shorter than the pack header",
			   p, (long long)sb.st_size);
	else if (pread_all(fd, h, sizeof h, 0))
		e = hv_err(HV_EIO, "%s: read failed: %s", p, strerror(errno));
	else if (memcmp(h, PACK_MAGIC, 8))
		e = hv_err(HV_ECORRUPT, "%s: not a pack file (bad magic)", p);
	else if (hv_le32(h + 28) != hv_crc32c(h, 28))
		e = hv_err(HV_ECORRUPT, "%s: pack header CRC-32C mismatch", p);
	else if (hv_le32(h + 8) != PACK_VERSION)
		e = hv_err(HV_EUNSUPPORTED, "%s: pack version %u, this engine reads version %u", p,
			   hv_le32(h + 8), PACK_VERSION);
	else if (hv_le32(h + 12) != PACK_HDR_LEN || hv_le32(h + 24) != 0)
		e = hv_err(HV_ECORRUPT, "%s: pack header length %u or reserved field invalid", p,
			   hv_le32(h + 12));
	else if (hv_le64(h + 16) != (uint64_t)id)
		e = hv_err(HV_ECORRUPT, "%s: header says pack %llu, the file name says %llu", p,
			   (unsigned long long)hv_le64(h + 16), (unsigned long long)id);
	if (e) {
		close(fd);
		return e;
	}
	struct repo_packfd *slot = &r->fds[r->fd_next];
	r->fd_next = (r->fd_next + 1) % REPO_FD_CACHE;
	if (slot->fd >= 0)
		close(slot->fd);
	slot->id = id;
	slot->fd = fd;
	slot->size = (uint64_t)sb.st_size;
	*fdp = fd;
	*sizep = slot->size;
	return 0;
}

static void hex(const uint8_t *h, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[h[i] >> 4];
		out[2 * i + 1] = d[h[i] & 15];
	}
	out[2 * n] = 0;
}

int repo_block_load(struct repo *r, const struct repo_blockref *b, uint8_t *out)
{
	char p[REPO_PATH_MAX];
	int e = repo_buffers(r);
	if (e)
		return e;
	repo_pack_path(r, b->pack, p, sizeof p);
	/* the catalog row first: its lengths bound every allocation and read below */
	if (b->raw_len == 0 || b->raw_len > r->block_size || (b->flags & ~REC_FLAGS_KNOWN) ||
	    b->stored_len == 0 || b->stored_len > repo_stored_bound(b->raw_len) ||
	    (!(b->flags & REC_FLAG_ZSTD) && b->stored_len != b->raw_len))
		return hv_err(HV_ECORRUPT,
			      "%s: block %lld (in %s at offset %llu): impossible lengths raw %u,"
			      " stored %u, flags 0x%x",
			      r->catalog, (long long)b->id, p, (unsigned long long)b->offset,
			      b->raw_len, b->stored_len, b->flags);
	int fd;
	uint64_t size;
	if ((e = repo_pack_open(r, b->pack, &fd, &size)))
		return e;
	uint64_t len = REC_HDR_LEN + (uint64_t)b->stored_len;
	if (b->offset < PACK_HDR_LEN)
		return hv_err(HV_ECORRUPT, "%s: the catalog's record offset %llu is inside the pack header",
			      p, (unsigned long long)b->offset);
	if (b->offset > size || size - b->offset < len)
		return hv_err(HV_ECORRUPT,
			      "%s: record at offset %llu (%llu bytes) runs past the end of the pack"
			      " (%llu bytes)",
			      p, (unsigned long long)b->offset, (unsigned long long)len,
			      (unsigned long long)size);
	if (pread_all(fd, r->rec, (size_t)len, b->offset))
		return hv_err(errno ? HV_EIO : HV_ECORRUPT, "%s: read of record at offset %llu failed: %s",
			      p, (unsigned long long)b->offset, errno ? strerror(errno) : "short file");
	const uint8_t *h = r->rec;
	if (memcmp(h, REC_MAGIC, 4))
		return hv_err(HV_ECORRUPT, "%s: no record at offset %llu (bad record magic)", p,
			      (unsigned long long)b->offset);
	uint32_t c = hv_crc32c_update(HV_CRC32C_INIT, h, 48);
	c = hv_crc32c_final(hv_crc32c_update(c, h + REC_HDR_LEN, b->stored_len));
	if (hv_le32(h + 40) != b->raw_len || hv_le32(h + 44) != b->stored_len ||
	    hv_le32(h + 4) != b->flags || memcmp(h + 8, b->hash, REPO_HASH_LEN))
		return hv_err(HV_ECORRUPT,
			      "%s: record at offset %llu does not match the catalog (flags 0x%x raw"
			      " %u stored %u, the catalog says 0x%x, %u, %u, or another hash)",
			      p, (unsigned long long)b->offset, hv_le32(h + 4), hv_le32(h + 40),
			      hv_le32(h + 44), b->flags, b->raw_len, b->stored_len);
	if (hv_le32(h + 48) != c)
		return hv_err(HV_ECORRUPT,
			      "%s: record at offset %llu: CRC-32C mismatch (stored 0x%08x, computed"
			      " 0x%08x)",
			      p, (unsigned long long)b->offset, hv_le32(h + 48), c);
	const uint8_t *payload = h + REC_HDR_LEN;
	if (b->flags & REC_FLAG_ZSTD) {
		size_t n = ZSTD_decompressDCtx(r->dctx, out, b->raw_len, payload, b->stored_len);
		if (ZSTD_isError(n) || n != b->raw_len)
			return hv_err(HV_ECORRUPT,
				      "%s: record at offset %llu: zstd payload does not decompress to"
				      " %u bytes (%s)",
				      p, (unsigned long long)b->offset, b->raw_len,
				      ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong length");
	} else {
		memcpy(out, payload, b->raw_len);
	}
	uint8_t got[REPO_HASH_LEN];
	if ((e = repo_sha256(out, b->raw_len, got)))
		return e;
	if (memcmp(got, b->hash, REPO_HASH_LEN)) {
		char hx[2 * REPO_HASH_LEN + 1];
		hex(got, REPO_HASH_LEN, hx);
		return hv_err(HV_ECORRUPT,
			      "%s: record at offset %llu: content SHA-256 %s differs from the"
			      " record's",
			      p, (unsigned long long)b->offset, hx);
	}
	return 0;
}
