/*
 * repo_read — what a restore needs: the list of points, a point-disk's block map, one block
 * (checked end to end), and a whole disk to a callback or a file descriptor (zero blocks skipped).
 *
 * Must not: trust a point-disk's geometry from the catalog without checking it (a division by a
 * zero block size or a block index past the disk would follow), or hand out unchecked bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo_internal.h"

/* ---- listing ---------------------------------------------------------------------------------*/

static char *dup_col(sqlite3_stmt *st, int col, bool *oom)
{
	char *s = strdup(rdb_text(st, col));
	if (!s)
		*oom = true;
	return s;
}

static void free_point(struct repo_point_info *p)
{
	free(p->vm_name);
	free(p->vm_id);
	free(p->reason);
	free(p->ref_point);
	for (size_t i = 0; i < p->ndisks; i++) {
		free(p->disks[i].name);
		free(p->disks[i].disk_id);
		free(p->disks[i].rct_id);
	}
	free(p->disks);
}

void repo_points_free(struct repo_point_info *p, size_t n)
{
	if (!p)
		return;
	for (size_t i = 0; i < n; i++)
		free_point(&p[i]);
	free(p);
}

static int load_disks(struct repo *r, sqlite3_stmt *q, struct repo_point_info *p)
{
	sqlite3_bind_int64(q, 1, p->id);
	size_t cap = 0;
	bool oom = false;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (p->ndisks == cap) {
			cap = cap ? 2 * cap : 4;
			struct repo_disk_info *d = realloc(p->disks, cap * sizeof *d);
			if (!d) {
				oom = true;
				break;
			}
			p->disks = d;
		}
		struct repo_disk_info *d = &p->disks[p->ndisks++];
		memset(d, 0, sizeof *d);
		d->id = sqlite3_column_int64(q, 0);
		d->name = dup_col(q, 1, &oom);
		d->disk_id = dup_col(q, 2, &oom);
		d->rct_id = dup_col(q, 3, &oom);
		d->virtual_size = (uint64_t)sqlite3_column_int64(q, 4);
		d->block_size = (uint32_t)sqlite3_column_int64(q, 5);
		d->logical_sector = (uint32_t)sqlite3_column_int64(q, 6);
		d->blocks_nonzero = (uint64_t)sqlite3_column_int64(q, 7);
		d->blocks = d->block_size ? (d->virtual_size + d->block_size - 1) / d->block_size : 0;
	}
	int e = 0;
	if (oom)
		e = hv_err(HV_ENOMEM, "%s: out of memory listing points", r->path);
	else if (rc != SQLITE_DONE)
		e = rdb_err(r, "listing point disks");
	sqlite3_reset(q);
	return e;
}

static int list(struct repo *r, const char *vm, int64_t one, struct repo_point_info **out,
		size_t *n)
{
	*out = NULL;
	*n = 0;
	int e = repo_check_alive(r);
	if (e)
		return e;
	sqlite3_stmt *q = NULL, *qd = NULL;
	struct repo_point_info *v = NULL;
	size_t nv = 0, cap = 0;
	bool oom = false;
	if ((e = rdb_prep(r, &q,
			  "SELECT id, vm_name, vm_id, type, reason, vtime, coalesce(parent, 0),"
			  " ref_point FROM points WHERE (?1 IS NULL OR vm_name = ?1)"
			  " AND (?2 = 0 OR id = ?2) ORDER BY id")) ||
	    (e = rdb_prep(r, &qd,
			  "SELECT id, name, disk_id, rct_id, virtual_size, block_size,"
			  " logical_sector, nonzero FROM point_disks WHERE point = ?1 ORDER BY id")))
		goto out;
	if (vm)
		sqlite3_bind_text(q, 1, vm, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, one);
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (nv == cap) {
			cap = cap ? 2 * cap : 16;
			struct repo_point_info *nvp = realloc(v, cap * sizeof *nvp);
			if (!nvp) {
				e = hv_err(HV_ENOMEM, "%s: out of memory listing points", r->path);
				goto out;
			}
			v = nvp;
		}
		struct repo_point_info *p = &v[nv++];
		memset(p, 0, sizeof *p);
		p->id = sqlite3_column_int64(q, 0);
		p->vm_name = dup_col(q, 1, &oom);
		p->vm_id = dup_col(q, 2, &oom);
		p->type = strcmp(rdb_text(q, 3), "full") ? REPO_POINT_INCREMENTAL : REPO_POINT_FULL;
		p->reason = dup_col(q, 4, &oom);
		p->vtime = sqlite3_column_int64(q, 5);
		p->parent = sqlite3_column_int64(q, 6);
		p->ref_point = dup_col(q, 7, &oom);
		if (oom) {
			e = hv_err(HV_ENOMEM, "%s: out of memory listing points", r->path);
			goto out;
		}
		if ((e = load_disks(r, qd, p)))
			goto out;
	}
	if (rc != SQLITE_DONE)
		e = rdb_err(r, "listing points");
out:
	sqlite3_finalize(q);
	sqlite3_finalize(qd);
	if (e) {
		repo_points_free(v, nv);
		return e;
	}
	*out = v;
	*n = nv;
	return 0;
}

int repo_list_points(struct repo *r, const char *vm_name, struct repo_point_info **out,
		     size_t *n)
{
	return list(r, vm_name, 0, out, n);
}

int repo_point_get(struct repo *r, int64_t point, struct repo_point_info **out)
{
	size_t n;
	*out = NULL;
	if (point <= 0)
		return hv_err(HV_ENOTFOUND, "%s: point %lld does not exist", r->path,
			      (long long)point);
	int e = list(r, NULL, point, out, &n);
	if (e)
		return e;
	if (n == 0)
		return hv_err(HV_ENOTFOUND, "%s: point %lld does not exist", r->path,
			      (long long)point);
	return 0;
}

/* ---- one point-disk --------------------------------------------------------------------------*/

struct pdisk {
	int64_t id;
	uint64_t size, nblocks;
	uint32_t bs;
};

static int find_pd(struct repo *r, int64_t point, const char *disk, struct pdisk *pd)
{
	int e = repo_check_alive(r);
	if (e)
		return e;
	if (!disk)
		return hv_err(HV_EINVAL, "%s: no disk name given", r->path);
	sqlite3_stmt *q;
	if ((e = rdb_prep(r, &q, "SELECT id, virtual_size, block_size FROM point_disks"
				 " WHERE point = ?1 AND name = ?2")))
		return e;
	sqlite3_bind_int64(q, 1, point);
	sqlite3_bind_text(q, 2, disk, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	int64_t size = 0, bs = 0;
	if (rc == SQLITE_ROW) {
		pd->id = sqlite3_column_int64(q, 0);
		size = sqlite3_column_int64(q, 1);
		bs = sqlite3_column_int64(q, 2);
	} else if (rc != SQLITE_DONE) {
		e = rdb_err(r, "point disk lookup");
	}
	sqlite3_finalize(q);
	if (e)
		return e;
	if (rc == SQLITE_DONE) {
		int64_t exists = 0;
		if ((e = rdb_int(r, &exists, 0, "SELECT COUNT(*) FROM points WHERE id=%lld",
				 (long long)point)))
			return e;
		if (!exists)
			return hv_err(HV_ENOTFOUND, "%s: point %lld does not exist", r->path,
				      (long long)point);
		return hv_err(HV_ENOTFOUND, "%s: point %lld has no disk '%s'", r->path,
			      (long long)point, disk);
	}
	if (bs != r->block_size || size <= 0 || (uint64_t)size > REPO_MAX_VIRTUAL_SIZE)
		return hv_err(HV_ECORRUPT,
			      "%s: point %lld disk '%s': virtual size %lld / block size %lld invalid"
			      " (the repository's block size is %u)",
			      r->catalog, (long long)point, disk, (long long)size, (long long)bs,
			      r->block_size);
	pd->size = (uint64_t)size;
	pd->bs = (uint32_t)bs;
	pd->nblocks = (pd->size + pd->bs - 1) / pd->bs;
	return 0;
}

static uint32_t block_len(const struct pdisk *pd, uint64_t index)
{
	uint64_t rem = pd->size - index * pd->bs;
	return rem < pd->bs ? (uint32_t)rem : pd->bs;
}

static void read_ref(sqlite3_stmt *q, int col, struct repo_blockref *b)
{
	b->id = sqlite3_column_int64(q, col);
	const void *h = sqlite3_column_blob(q, col + 1);
	if (h && sqlite3_column_bytes(q, col + 1) == REPO_HASH_LEN)
		memcpy(b->hash, h, REPO_HASH_LEN);
	else
		memset(b->hash, 0, REPO_HASH_LEN);
	b->pack = sqlite3_column_int64(q, col + 2);
	b->offset = (uint64_t)sqlite3_column_int64(q, col + 3);
	int64_t st = sqlite3_column_int64(q, col + 4), raw = sqlite3_column_int64(q, col + 5),
		fl = sqlite3_column_int64(q, col + 6);
	/* out-of-range values become values repo_block_load rejects */
	b->stored_len = st < 0 || st > UINT32_MAX ? UINT32_MAX : (uint32_t)st;
	b->raw_len = raw < 0 || raw > UINT32_MAX ? UINT32_MAX : (uint32_t)raw;
	b->flags = fl < 0 || fl > UINT32_MAX ? UINT32_MAX : (uint32_t)fl;
}

#define REF_COLS "b.id, b.hash, b.pack, b.offset, b.stored_len, b.raw_len, b.flags"

int repo_point_disk_map(struct repo *r, int64_t point, const char *disk, repo_map_fn fn,
			void *ctx)
{
	struct pdisk pd;
	int e = find_pd(r, point, disk, &pd);
	if (e)
		return e;
	sqlite3_stmt *q;
	if ((e = rdb_prep(r, &q, "SELECT m.idx, b.hash, b.raw_len FROM maps m"
				 " JOIN blocks b ON b.id = m.block WHERE m.point_disk = ?1"
				 " ORDER BY m.idx")))
		return e;
	sqlite3_bind_int64(q, 1, pd.id);
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t idx = sqlite3_column_int64(q, 0);
		const void *h = sqlite3_column_blob(q, 1);
		if (idx < 0 || (uint64_t)idx >= pd.nblocks || !h ||
		    sqlite3_column_bytes(q, 1) != REPO_HASH_LEN) {
			e = hv_err(HV_ECORRUPT,
				   "%s: point %lld disk '%s': map row for block %lld is invalid",
				   r->catalog, (long long)point, disk, (long long)idx);
			break;
		}
		if ((e = fn(ctx, (uint64_t)idx, h, (uint32_t)sqlite3_column_int64(q, 2))))
			break;
	}
	if (!e && rc != SQLITE_DONE)
		e = rdb_err(r, "reading a block map");
	sqlite3_finalize(q);
	return e;
}

int repo_read_block(struct repo *r, int64_t point, const char *disk, uint64_t index, void *buf,
		    size_t cap, size_t *len)
{
	struct pdisk pd;
	int e = find_pd(r, point, disk, &pd);
	if (e)
		return e;
	if (index >= pd.nblocks)
		return hv_err(HV_EINVAL, "%s: point %lld disk '%s': block %llu past its %llu blocks",
			      r->path, (long long)point, disk, (unsigned long long)index,
			      (unsigned long long)pd.nblocks);
	uint32_t want = block_len(&pd, index);
	if (cap < want)
		return hv_err(HV_EINVAL, "%s: read block: buffer of %zu bytes, the block holds %u",
			      r->path, cap, want);
	sqlite3_stmt *q;
	if ((e = rdb_prep(r, &q, "SELECT " REF_COLS " FROM maps m JOIN blocks b ON b.id = m.block"
				 " WHERE m.point_disk = ?1 AND m.idx = ?2")))
		return e;
	sqlite3_bind_int64(q, 1, pd.id);
	sqlite3_bind_int64(q, 2, (int64_t)index);
	int rc = sqlite3_step(q);
	struct repo_blockref b;
	if (rc == SQLITE_ROW)
		read_ref(q, 0, &b);
	else if (rc != SQLITE_DONE)
		e = rdb_err(r, "block lookup");
	sqlite3_finalize(q);
	if (e)
		return e;
	if (len)
		*len = want;
	if (rc == SQLITE_DONE) {
		memset(buf, 0, want);
		return 0;
	}
	if (b.raw_len != want)
		return hv_err(HV_ECORRUPT,
			      "%s: point %lld disk '%s' block %llu: the catalog names a %u-byte block"
			      " for a %u-byte slot",
			      r->catalog, (long long)point, disk, (unsigned long long)index,
			      b.raw_len, want);
	if ((e = repo_block_load(r, &b, buf)))
		return hv_err_prefix(e, "point %lld disk '%s' block %llu", (long long)point, disk,
				     (unsigned long long)index);
	return 0;
}

int repo_restore_disk(struct repo *r, int64_t point, const char *disk, repo_write_fn fn,
		      void *ctx)
{
	struct pdisk pd;
	int e = find_pd(r, point, disk, &pd);
	if (e)
		return e;
	if (!fn)
		return hv_err(HV_EINVAL, "%s: restore: no write callback", r->path);
	if ((e = repo_buffers(r)))
		return e;
	sqlite3_stmt *q;
	if ((e = rdb_prep(r, &q, "SELECT m.idx, " REF_COLS " FROM maps m"
				 " JOIN blocks b ON b.id = m.block WHERE m.point_disk = ?1"
				 " ORDER BY m.idx")))
		return e;
	sqlite3_bind_int64(q, 1, pd.id);
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t idx = sqlite3_column_int64(q, 0);
		struct repo_blockref b;
		read_ref(q, 1, &b);
		if (idx < 0 || (uint64_t)idx >= pd.nblocks ||
		    b.raw_len != block_len(&pd, (uint64_t)idx)) {
			e = hv_err(HV_ECORRUPT,
				   "%s: point %lld disk '%s': map row for block %lld names a %u-byte"
				   " block that does not fit",
				   r->catalog, (long long)point, disk, (long long)idx, b.raw_len);
			break;
		}
		if ((e = repo_block_load(r, &b, r->raw))) {
			hv_err_prefix(e, "restore of point %lld disk '%s' block %lld",
				      (long long)point, disk, (long long)idx);
			break;
		}
		if ((e = fn(ctx, (uint64_t)idx * pd.bs, r->raw, b.raw_len)))
			break;
	}
	if (!e && rc != SQLITE_DONE)
		e = rdb_err(r, "reading a block map");
	sqlite3_finalize(q);
	return e;
}

struct fd_sink {
	int fd;
	const char *what;
};

static int fd_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	struct fd_sink *s = ctx;
	const uint8_t *p = buf;
	while (len) {
		ssize_t k = pwrite(s->fd, p, len, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return hv_err(HV_EIO, "%s: write at offset %llu failed: %s", s->what,
				      (unsigned long long)off, strerror(errno));
		p += k;
		len -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

int repo_restore_disk_fd(struct repo *r, int64_t point, const char *disk, int fd)
{
	struct pdisk pd;
	int e = find_pd(r, point, disk, &pd);
	if (e)
		return e;
	/* a regular file is emptied first: zero blocks are never written, so old bytes would stay */
	struct stat sb;
	if (fstat(fd, &sb) != 0)
		return hv_err(HV_EIO, "restore target: stat failed: %s", strerror(errno));
	if (S_ISREG(sb.st_mode) && sb.st_size > 0 && ftruncate(fd, 0) != 0)
		return hv_err(HV_EIO, "restore target: cannot empty it: %s", strerror(errno));
	struct fd_sink s = {fd, "restore target"};
	if ((e = repo_restore_disk(r, point, disk, fd_write, &s)))
		return e;
	if (ftruncate(fd, (off_t)pd.size) != 0)
		return hv_err(HV_EIO, "restore target: cannot set its size to %llu: %s",
			      (unsigned long long)pd.size, strerror(errno));
	return 0;
}
