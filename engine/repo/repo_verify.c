/*
 * repo_verify — proves the selected points restorable: every block they need is read back,
 * checked against its record header and CRC-32C, decompressed and re-hashed; the points needing
 * a bad block are named. Verifying everything also walks each pack record by record (so damage in
 * records no point needs, or past what the catalog knows, shows too) and asks SQLite to check the
 * catalog itself.
 *
 * Must not: stop at the first problem (a report names them all), modify anything, or allocate
 * from lengths read from a pack before bounding them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repo_internal.h"

struct vctx {
	struct repo *r;
	repo_problem_fn fn;
	void *ctx;
	struct repo_verify_result *res;
};

static void report(struct vctx *v, enum repo_problem_kind kind, int64_t point, int64_t pack,
		   uint64_t offset, uint64_t bad, const char *msg)
{
	if (!v->fn)
		return;
	char name[64];
	struct repo_problem p = {.kind = kind, .point = point, .offset = offset, .bad_blocks = bad,
				 .message = msg};
	if (pack) {
		snprintf(name, sizeof name, "packs/%08" PRIx64 ".pack", (uint64_t)pack);
		p.pack = name;
	}
	v->fn(v->ctx, &p);
}

/* ---- the blocks the selected points need -----------------------------------------------------*/

static int check_blocks(struct vctx *v, int64_t point)
{
	struct repo *r = v->r;
	sqlite3_stmt *q = NULL, *bad = NULL;
	int e;
	if ((e = rdb_prep(r, &q,
			  "SELECT id, hash, pack, offset, stored_len, raw_len, flags FROM blocks"
			  " WHERE id IN (SELECT m.block FROM maps m JOIN point_disks pd"
			  " ON pd.id = m.point_disk WHERE ?1 = 0 OR pd.point = ?1)"
			  " ORDER BY pack, offset")) ||
	    (e = rdb_prep(r, &bad, "INSERT OR IGNORE INTO temp.verify_bad(block) VALUES(?1)")))
		goto out;
	sqlite3_bind_int64(q, 1, point);
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct repo_blockref b;
		b.id = sqlite3_column_int64(q, 0);
		const void *h = sqlite3_column_blob(q, 1);
		memset(b.hash, 0, sizeof b.hash);
		if (h && sqlite3_column_bytes(q, 1) == REPO_HASH_LEN)
			memcpy(b.hash, h, REPO_HASH_LEN);
		b.pack = sqlite3_column_int64(q, 2);
		b.offset = (uint64_t)sqlite3_column_int64(q, 3);
		int64_t st = sqlite3_column_int64(q, 4), raw = sqlite3_column_int64(q, 5),
			fl = sqlite3_column_int64(q, 6);
		b.stored_len = st < 0 || st > UINT32_MAX ? UINT32_MAX : (uint32_t)st;
		b.raw_len = raw < 0 || raw > UINT32_MAX ? UINT32_MAX : (uint32_t)raw;
		b.flags = fl < 0 || fl > UINT32_MAX ? UINT32_MAX : (uint32_t)fl;
		v->res->blocks_checked++;
		int le = repo_block_load(r, &b, r->raw);
		if (le == 0) {
			v->res->bytes_read += REC_HDR_LEN + b.stored_len;
			continue;
		}
		if (le != HV_ECORRUPT && le != HV_EUNSUPPORTED && le != HV_EIO) {
			e = le;
			break;
		}
		v->res->blocks_bad++;
		report(v, REPO_PROBLEM_BLOCK, 0, b.pack, b.offset, 0, hv_errmsg());
		sqlite3_bind_int64(bad, 1, b.id);
		if ((e = rdb_step_done(r, bad)))
			break;
	}
	if (!e && rc != SQLITE_DONE)
		e = rdb_err(r, "verify: listing blocks");
out:
	sqlite3_finalize(q);
	sqlite3_finalize(bad);
	return e;
}

/* Map rows whose index or block length does not fit the disk make their point damaged too. */
static int check_maps(struct vctx *v, int64_t point)
{
	struct repo *r = v->r;
	sqlite3_stmt *q, *bad;
	int e;
	if ((e = rdb_prep(r, &q,
			  "SELECT pd.point, pd.name, m.idx, b.raw_len, pd.virtual_size, pd.block_size"
			  " FROM maps m JOIN point_disks pd ON pd.id = m.point_disk"
			  " JOIN blocks b ON b.id = m.block WHERE (?1 = 0 OR pd.point = ?1) AND ("
			  " pd.block_size <> ?2 OR m.idx < 0"
			  " OR m.idx * pd.block_size >= pd.virtual_size"
			  " OR b.raw_len <> min(pd.block_size, pd.virtual_size - m.idx * pd.block_size))"
			  " ORDER BY pd.point, pd.id, m.idx LIMIT 1000")))
		return e;
	if ((e = rdb_prep(r, &bad, "INSERT OR IGNORE INTO temp.verify_badpoint(point) VALUES(?1)"))) {
		sqlite3_finalize(q);
		return e;
	}
	sqlite3_bind_int64(q, 1, point);
	sqlite3_bind_int64(q, 2, r->block_size);
	int rc;
	char msg[512];
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t p = sqlite3_column_int64(q, 0);
		snprintf(msg, sizeof msg,
			 "%s: point %lld disk '%s': map row for block %lld names a %lld-byte block,"
			 " which does not fit the disk (%lld bytes in %lld-byte blocks)",
			 r->catalog, (long long)p, rdb_text(q, 1), (long long)sqlite3_column_int64(q, 2),
			 (long long)sqlite3_column_int64(q, 3), (long long)sqlite3_column_int64(q, 4),
			 (long long)sqlite3_column_int64(q, 5));
		v->res->catalog_problems++;
		report(v, REPO_PROBLEM_CATALOG, p, 0, 0, 0, msg);
		sqlite3_bind_int64(bad, 1, p);
		if ((e = rdb_step_done(r, bad)))
			break;
	}
	if (!e && rc != SQLITE_DONE)
		e = rdb_err(r, "verify: checking maps");
	sqlite3_finalize(q);
	sqlite3_finalize(bad);
	return e;
}

static int name_damaged_points(struct vctx *v, int64_t point)
{
	struct repo *r = v->r;
	sqlite3_stmt *q;
	int e = rdb_prep(r, &q,
			 "SELECT p, sum(n) FROM ("
			 " SELECT pd.point AS p, count(*) AS n FROM maps m"
			 " JOIN point_disks pd ON pd.id = m.point_disk"
			 " WHERE m.block IN (SELECT block FROM temp.verify_bad)"
			 " AND (?1 = 0 OR pd.point = ?1) GROUP BY pd.point"
			 " UNION ALL SELECT point, 0 FROM temp.verify_badpoint)"
			 " GROUP BY p ORDER BY p");
	if (e)
		return e;
	sqlite3_bind_int64(q, 1, point);
	int rc;
	char msg[256];
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t p = sqlite3_column_int64(q, 0);
		uint64_t n = (uint64_t)sqlite3_column_int64(q, 1);
		snprintf(msg, sizeof msg, "point %lld is damaged: %llu of its block references are bad",
			 (long long)p, (unsigned long long)n);
		v->res->points_damaged++;
		report(v, REPO_PROBLEM_POINT, p, 0, 0, n, msg);
	}
	if (rc != SQLITE_DONE)
		e = rdb_err(r, "verify: naming damaged points");
	sqlite3_finalize(q);
	return e;
}

/* ---- whole packs -----------------------------------------------------------------------------*/

static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t k = pread(fd, p, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static void pack_problem(struct vctx *v, int64_t pack, uint64_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void pack_problem(struct vctx *v, int64_t pack, uint64_t off, const char *fmt, ...)
{
	char p[REPO_PATH_MAX], msg[REPO_PATH_MAX + 300], detail[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	repo_pack_path(v->r, pack, p, sizeof p);
	snprintf(msg, sizeof msg, "%s: %s", p, detail);
	v->res->pack_problems++;
	report(v, REPO_PROBLEM_PACK, 0, pack, off, 0, msg);
}

/* Walks the records of one pack from its header to the size the catalog recorded. */
static int scan_pack(struct vctx *v, int64_t id, uint64_t csize, uint64_t crecords)
{
	struct repo *r = v->r;
	int fd;
	uint64_t size;
	v->res->packs_checked++;
	int e = repo_pack_open(r, id, &fd, &size);
	if (e) {
		if (e == HV_ENOMEM)
			return e;
		v->res->pack_problems++;
		report(v, REPO_PROBLEM_PACK, 0, id, 0, 0, hv_errmsg());
		return 0;
	}
	if (size < csize) {
		pack_problem(v, id, size, "truncated: %llu bytes, the catalog recorded %llu",
			     (unsigned long long)size, (unsigned long long)csize);
		csize = size;
	} else if (size > csize) {
		pack_problem(v, id, csize, "%llu bytes past the %llu the catalog recorded",
			     (unsigned long long)(size - csize), (unsigned long long)csize);
	}
	uint64_t off = PACK_HDR_LEN, n = 0;
	while (off < csize) {
		uint8_t *h = r->rec;
		if (csize - off < REC_HDR_LEN) {
			pack_problem(v, id, off, "record at offset %llu: truncated header",
				     (unsigned long long)off);
			return 0;
		}
		if (pread_full(fd, h, REC_HDR_LEN, off))
			return hv_err(HV_EIO, "pack %lld: read failed at %llu: %s", (long long)id,
				      (unsigned long long)off, strerror(errno));
		uint32_t flags = hv_le32(h + 4), raw = hv_le32(h + 40), st = hv_le32(h + 44);
		if (memcmp(h, REC_MAGIC, 4) || (flags & ~REC_FLAGS_KNOWN) || raw == 0 ||
		    raw > r->block_size || st == 0 || st > repo_stored_bound(raw) ||
		    (!(flags & REC_FLAG_ZSTD) && st != raw)) {
			/* the lengths cannot be trusted, so neither can the next record's offset */
			pack_problem(v, id, off,
				     "record at offset %llu: invalid header (magic, flags 0x%x, raw"
				     " %u, stored %u); the rest of the pack was not scanned",
				     (unsigned long long)off, flags, raw, st);
			return 0;
		}
		if (csize - off - REC_HDR_LEN < st) {
			pack_problem(v, id, off, "record at offset %llu: payload runs past the end",
				     (unsigned long long)off);
			return 0;
		}
		if (pread_full(fd, h + REC_HDR_LEN, st, off + REC_HDR_LEN))
			return hv_err(HV_EIO, "pack %lld: read failed at %llu: %s", (long long)id,
				      (unsigned long long)off, strerror(errno));
		uint32_t c = hv_crc32c_update(HV_CRC32C_INIT, h, 48);
		c = hv_crc32c_final(hv_crc32c_update(c, h + REC_HDR_LEN, st));
		if (c != hv_le32(h + 48))
			pack_problem(v, id, off, "record at offset %llu: CRC-32C mismatch",
				     (unsigned long long)off);
		v->res->bytes_read += REC_HDR_LEN + st;
		off += REC_HDR_LEN + st;
		n++;
	}
	if (n != crecords)
		pack_problem(v, id, 0, "%llu records, the catalog recorded %llu",
			     (unsigned long long)n, (unsigned long long)crecords);
	return 0;
}

static int scan_packs(struct vctx *v)
{
	struct repo *r = v->r;
	sqlite3_stmt *q;
	int e = rdb_prep(r, &q, "SELECT id, size, records FROM packs ORDER BY id");
	if (e)
		return e;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(q, 0);
		int64_t size = sqlite3_column_int64(q, 1), recs = sqlite3_column_int64(q, 2);
		if (id <= 0 || size < PACK_HDR_LEN || recs < 0) {
			char msg[256];
			snprintf(msg, sizeof msg, "%s: packs row %lld: size %lld, records %lld invalid",
				 r->catalog, (long long)id, (long long)size, (long long)recs);
			v->res->catalog_problems++;
			report(v, REPO_PROBLEM_CATALOG, 0, 0, 0, 0, msg);
			continue;
		}
		if ((e = scan_pack(v, id, (uint64_t)size, (uint64_t)recs)))
			break;
	}
	if (!e && rc != SQLITE_DONE)
		e = rdb_err(r, "verify: listing packs");
	sqlite3_finalize(q);
	return e;
}

/* SQLite's own structure check and the foreign keys. */
static int check_catalog(struct vctx *v)
{
	struct repo *r = v->r;
	sqlite3_stmt *q;
	int e = rdb_prep(r, &q, "PRAGMA quick_check");
	if (e)
		return e;
	char msg[512];
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (!strcmp(rdb_text(q, 0), "ok"))
			continue;
		snprintf(msg, sizeof msg, "%s: %s", r->catalog, rdb_text(q, 0));
		v->res->catalog_problems++;
		report(v, REPO_PROBLEM_CATALOG, 0, 0, 0, 0, msg);
	}
	sqlite3_finalize(q);
	if ((e = rdb_prep(r, &q, "PRAGMA foreign_key_check")))
		return e;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		snprintf(msg, sizeof msg, "%s: table %s row %lld names a missing %s row", r->catalog,
			 rdb_text(q, 0), (long long)sqlite3_column_int64(q, 1), rdb_text(q, 2));
		v->res->catalog_problems++;
		report(v, REPO_PROBLEM_CATALOG, 0, 0, 0, 0, msg);
	}
	sqlite3_finalize(q);
	return 0;
}

int repo_verify(struct repo *r, int64_t point, repo_problem_fn fn, void *ctx,
		struct repo_verify_result *res)
{
	struct repo_verify_result dummy;
	if (!res)
		res = &dummy;
	memset(res, 0, sizeof *res);
	int e = repo_check_alive(r);
	if (e || (e = repo_buffers(r)))
		return e;
	if (r->session)
		return hv_err(HV_EINVAL, "%s: verify: a backup session is open on this handle",
			      r->path);
	int64_t n = 0;
	if ((e = rdb_int(r, &n, 0, "SELECT COUNT(*) FROM points WHERE %lld = 0 OR id = %lld",
			 (long long)point, (long long)point)))
		return e;
	if (point && !n)
		return hv_err(HV_ENOTFOUND, "%s: point %lld does not exist", r->path, (long long)point);
	res->points_checked = (uint64_t)n;
	struct vctx v = {r, fn, ctx, res};
	/* temp tables live in the connection's own temp database: fine on a read-only handle */
	if ((e = rdb_exec(r, "CREATE TEMP TABLE IF NOT EXISTS verify_bad(block INTEGER PRIMARY KEY);"
			     "CREATE TEMP TABLE IF NOT EXISTS verify_badpoint(point INTEGER PRIMARY"
			     " KEY);DELETE FROM temp.verify_bad;DELETE FROM temp.verify_badpoint")))
		return e;
	/* one read transaction: the whole report describes one catalog state */
	if ((e = rdb_exec(r, "BEGIN")))
		return e;
	if (!(e = check_blocks(&v, point)) && !(e = check_maps(&v, point)) &&
	    !(e = name_damaged_points(&v, point)) && point == 0 && !(e = scan_packs(&v)))
		e = check_catalog(&v);
	sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	if (!e)
		e = rdb_exec(r, "DROP TABLE temp.verify_bad; DROP TABLE temp.verify_badpoint");
	return e;
}
