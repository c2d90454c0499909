/*
 * repo_session — one backup = one session: the point row, its disks (an incremental's map copied
 * from the parent in one INSERT … SELECT), put_block (hash, dedup lookup, compress, append), and
 * the commit protocol.
 *
 * COMMIT PROTOCOL. The whole session is one catalog transaction (BEGIN IMMEDIATE at repo_begin,
 * which is also the repository's write lock). Records go to pack files the catalog does not name
 * yet as committed; at commit: (1) write what is buffered, fsync every pack of the session and
 * the packs folder; (2) record pack sizes and next_pack; (3) COMMIT. A crash before (3) leaves
 * the previous catalog and orphan pack files that no committed row names (the next session
 * overwrites or prune deletes them); a crash after (3) leaves the new point complete.
 *
 * Must not: let a catalog row that names pack bytes commit before those bytes are durable, or
 * clean anything up after a fault point fired.
 */
#include <stdlib.h>
#include <string.h>

#include "repo_internal.h"

enum sstate { S_OPEN, S_FAILED, S_CRASHED };

struct sdisk {
	int64_t pd; /* point_disks.id */
	uint64_t size, nblocks;
};

struct repo_session {
	struct repo *r;
	enum sstate state;
	int64_t point;
	struct sdisk *disks;
	uint32_t ndisks, capdisks;
	struct repo_packset ps;
	sqlite3_stmt *q_lookup, *q_insblock, *q_setmap, *q_delmap;
	ZSTD_CCtx *cctx;
	uint8_t *cbuf;
	size_t ccap;
	struct repo_stats st;
};

static void free_session(struct repo_session *s)
{
	sqlite3_finalize(s->q_lookup);
	sqlite3_finalize(s->q_insblock);
	sqlite3_finalize(s->q_setmap);
	sqlite3_finalize(s->q_delmap);
	ZSTD_freeCCtx(s->cctx);
	free(s->cbuf);
	free(s->disks);
	if (s->r->session == s)
		s->r->session = NULL;
	free(s);
}

/* Records an error in the session's state: after HV_ECRASHED (a fault point) it is dead, after
 * any other it can only be aborted. Returns e. */
static int track(struct repo_session *s, int e)
{
	if (e == HV_ECRASHED)
		s->state = S_CRASHED;
	else if (e)
		s->state = S_FAILED;
	return e;
}

static int check_open(struct repo_session *s, const char *what)
{
	if (!s)
		return hv_err(HV_EINVAL, "%s: no session", what);
	if (s->state == S_CRASHED)
		return hv_err(HV_ECRASHED, "%s: %s: the session stopped at a fault point",
			      s->r->path, what);
	if (s->state == S_FAILED)
		return hv_err(HV_EINVAL, "%s: %s: the session failed earlier; abort it", s->r->path,
			      what);
	return 0;
}

static const char *nz(const char *s) { return s ? s : ""; }

int repo_begin(struct repo *r, const struct repo_point_desc *d, struct repo_session **out)
{
	*out = NULL;
	int e = repo_check_writable(r, "begin");
	if (e)
		return e;
	if (!d || !d->vm_name || !*d->vm_name)
		return hv_err(HV_EINVAL, "%s: begin: a point needs a VM name", r->path);
	if (d->type != REPO_POINT_FULL && d->type != REPO_POINT_INCREMENTAL)
		return hv_err(HV_EINVAL, "%s: begin: point type %d is neither full nor incremental",
			      r->path, (int)d->type);
	if (d->type == REPO_POINT_FULL && d->parent)
		return hv_err(HV_EINVAL, "%s: begin: a full point has no parent (got %lld)", r->path,
			      (long long)d->parent);
	if (d->type == REPO_POINT_INCREMENTAL && d->parent <= 0)
		return hv_err(HV_EINVAL, "%s: begin: an incremental point needs its parent point",
			      r->path);
	if ((e = repo_buffers(r)))
		return e;

	struct repo_session *s = calloc(1, sizeof *s);
	if (!s)
		return hv_err(HV_ENOMEM, "%s: out of memory", r->path);
	s->r = r;
	s->ccap = repo_stored_bound(r->block_size);
	s->cctx = ZSTD_createCCtx();
	s->cbuf = malloc(s->ccap);
	if (!s->cctx || !s->cbuf) {
		free_session(s);
		return hv_err(HV_ENOMEM, "%s: out of memory", r->path);
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, r->zstd_level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 0))) {
		free_session(s);
		return hv_err(HV_EINVAL, "%s: zstd rejects level %d", r->path, r->zstd_level);
	}
	if ((e = rdb_begin_write(r))) {
		free_session(s);
		return e;
	}
	int64_t next_pack = 0, parent_ok = 1;
	sqlite3_stmt *st = NULL;
	e = rdb_int(r, &next_pack, 0, "SELECT value FROM meta WHERE key='next_pack'");
	if (!e && d->parent)
		e = rdb_int(r, &parent_ok, 0, "SELECT COUNT(*) FROM points WHERE id=%lld",
			    (long long)d->parent);
	if (!e && !parent_ok)
		e = hv_err(HV_ENOTFOUND, "%s: begin: parent point %lld does not exist", r->path,
			   (long long)d->parent);
	if (!e)
		e = rdb_prep(r, &st,
			     "INSERT INTO points(vm_name, vm_id, type, reason, vtime, parent, ref_point)"
			     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
	if (!e) {
		sqlite3_bind_text(st, 1, d->vm_name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, nz(d->vm_id), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, d->type == REPO_POINT_FULL ? "full" : "incremental", -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, 4, nz(d->reason), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, d->vtime);
		if (d->parent)
			sqlite3_bind_int64(st, 6, d->parent);
		else
			sqlite3_bind_null(st, 6);
		sqlite3_bind_text(st, 7, nz(d->ref_point), -1, SQLITE_STATIC);
		e = rdb_step_done(r, st);
		s->point = sqlite3_last_insert_rowid(r->db);
	}
	sqlite3_finalize(st);
	if (!e)
		e = rdb_prep(r, &s->q_lookup, "SELECT id FROM blocks WHERE hash = ?1");
	if (!e)
		e = rdb_prep(r, &s->q_insblock,
			     "INSERT INTO blocks(hash, pack, offset, stored_len, raw_len, flags)"
			     " VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
	if (!e)
		e = rdb_prep(r, &s->q_setmap,
			     "INSERT INTO maps(point_disk, idx, block) VALUES(?1, ?2, ?3)"
			     " ON CONFLICT(point_disk, idx) DO UPDATE SET block = excluded.block");
	if (!e)
		e = rdb_prep(r, &s->q_delmap, "DELETE FROM maps WHERE point_disk = ?1 AND idx = ?2");
	if (e) {
		rdb_rollback(r);
		free_session(s);
		return e;
	}
	repo_packset_init(&s->ps, next_pack);
	r->session = s;
	*out = s;
	return 0;
}

int repo_session_add_disk(struct repo_session *s, const struct repo_disk_desc *d,
			  int64_t parent_pd, uint32_t *disk_out)
{
	int e = check_open(s, "add disk");
	if (e)
		return e;
	struct repo *r = s->r;
	if (!d || !d->name || !*d->name)
		return hv_err(HV_EINVAL, "%s: add disk: a disk needs a name", r->path);
	if (d->logical_sector != 512 && d->logical_sector != 4096)
		return hv_err(HV_EINVAL, "%s: disk '%s': logical sector size %u (512 or 4096)",
			      r->path, d->name, d->logical_sector);
	if (d->virtual_size == 0 || d->virtual_size > REPO_MAX_VIRTUAL_SIZE ||
	    d->virtual_size % d->logical_sector)
		return hv_err(HV_EINVAL,
			      "%s: disk '%s': virtual size %llu (1 byte..64 TiB, a multiple of the"
			      " logical sector size %u)",
			      r->path, d->name, (unsigned long long)d->virtual_size, d->logical_sector);
	int64_t dup = 0;
	if ((e = rdb_int(r, &dup, 0, "SELECT COUNT(*) FROM point_disks WHERE point=%lld AND name=%Q",
			 (long long)s->point, d->name)))
		return track(s, e);
	if (dup)
		return hv_err(HV_EINVAL, "%s: disk '%s' was already added to this point", r->path,
			      d->name);
	if (parent_pd) {
		sqlite3_stmt *q;
		if ((e = rdb_prep(r, &q, "SELECT virtual_size, block_size FROM point_disks"
					 " WHERE id = ?1 AND point <> ?2")))
			return track(s, e);
		sqlite3_bind_int64(q, 1, parent_pd);
		sqlite3_bind_int64(q, 2, s->point);
		int rc = sqlite3_step(q);
		uint64_t psize = 0, pbs = 0;
		if (rc == SQLITE_ROW) {
			psize = (uint64_t)sqlite3_column_int64(q, 0);
			pbs = (uint64_t)sqlite3_column_int64(q, 1);
		} else if (rc != SQLITE_DONE) {
			e = rdb_err(r, "parent point-disk");
		}
		sqlite3_finalize(q);
		if (e)
			return track(s, e);
		if (rc == SQLITE_DONE)
			return hv_err(HV_ENOTFOUND, "%s: disk '%s': parent point-disk %lld does not exist",
				      r->path, d->name, (long long)parent_pd);
		if (psize != d->virtual_size || pbs != r->block_size)
			return hv_err(HV_EMISMATCH,
				      "%s: disk '%s': parent point-disk %lld has virtual size %llu and"
				      " block size %llu, this disk %llu and %u (a resized disk needs a"
				      " full backup)",
				      r->path, d->name, (long long)parent_pd,
				      (unsigned long long)psize, (unsigned long long)pbs,
				      (unsigned long long)d->virtual_size, r->block_size);
	}
	if (s->ndisks == s->capdisks) {
		uint32_t cap = s->capdisks ? 2 * s->capdisks : 4;
		struct sdisk *nd = realloc(s->disks, cap * sizeof *nd);
		if (!nd)
			return hv_err(HV_ENOMEM, "%s: out of memory", r->path);
		s->disks = nd;
		s->capdisks = cap;
	}
	sqlite3_stmt *st;
	if ((e = rdb_prep(r, &st,
			  "INSERT INTO point_disks(point, name, disk_id, rct_id, virtual_size,"
			  " block_size, logical_sector) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)")))
		return track(s, e);
	sqlite3_bind_int64(st, 1, s->point);
	sqlite3_bind_text(st, 2, d->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, nz(d->disk_id), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, nz(d->rct_id), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)d->virtual_size);
	sqlite3_bind_int64(st, 6, r->block_size);
	sqlite3_bind_int64(st, 7, d->logical_sector);
	e = rdb_step_done(r, st);
	sqlite3_finalize(st);
	if (e)
		return track(s, e);
	int64_t pd = sqlite3_last_insert_rowid(r->db);
	if (parent_pd) {
		/* repo_session_keep_parent_blocks: the unchanged map is copied by SQLite, never row by
		 * row through C */
		if ((e = rdb_prep(r, &st, "INSERT INTO maps(point_disk, idx, block)"
					  " SELECT ?1, idx, block FROM maps WHERE point_disk = ?2")))
			return track(s, e);
		sqlite3_bind_int64(st, 1, pd);
		sqlite3_bind_int64(st, 2, parent_pd);
		e = rdb_step_done(r, st);
		sqlite3_finalize(st);
		if (e)
			return track(s, e);
	}
	struct sdisk *sd = &s->disks[s->ndisks];
	sd->pd = pd;
	sd->size = d->virtual_size;
	sd->nblocks = (d->virtual_size + r->block_size - 1) / r->block_size;
	if (disk_out)
		*disk_out = s->ndisks;
	s->ndisks++;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	/* word-wise scan of the bulk; the tail byte by byte */
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (w)
			return false;
	}
	for (; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static int set_map(struct repo_session *s, sqlite3_stmt *q, int64_t pd, uint64_t index,
		   int64_t block)
{
	sqlite3_bind_int64(q, 1, pd);
	sqlite3_bind_int64(q, 2, (int64_t)index);
	if (block)
		sqlite3_bind_int64(q, 3, block);
	return rdb_step_done(s->r, q);
}

int repo_session_put_block(struct repo_session *s, uint32_t disk, uint64_t index,
			   const void *data, size_t len)
{
	int e = check_open(s, "put block");
	if (e)
		return e;
	struct repo *r = s->r;
	if (disk >= s->ndisks)
		return hv_err(HV_EINVAL, "%s: put block: disk %u was not added (%u disks)", r->path,
			      disk, s->ndisks);
	struct sdisk *sd = &s->disks[disk];
	if (index >= sd->nblocks)
		return hv_err(HV_EINVAL, "%s: put block: index %llu past the disk's %llu blocks",
			      r->path, (unsigned long long)index, (unsigned long long)sd->nblocks);
	uint64_t want = sd->size - index * r->block_size;
	if (want > r->block_size)
		want = r->block_size;
	if (!data || len != want)
		return hv_err(HV_EINVAL, "%s: put block %llu: %zu bytes given, the block holds %llu",
			      r->path, (unsigned long long)index, len, (unsigned long long)want);
	s->st.blocks_put++;
	s->st.bytes_put += len;
	if (all_zero(data, len)) {
		s->st.blocks_zero++;
		return track(s, set_map(s, s->q_delmap, sd->pd, index, 0));
	}
	uint8_t hash[REPO_HASH_LEN];
	if ((e = repo_sha256(data, len, hash)))
		return track(s, e);
	sqlite3_bind_blob(s->q_lookup, 1, hash, REPO_HASH_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(s->q_lookup);
	int64_t block = rc == SQLITE_ROW ? sqlite3_column_int64(s->q_lookup, 0) : 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		e = rdb_err(r, "hash lookup");
	sqlite3_reset(s->q_lookup);
	if (e)
		return track(s, e);
	if (block) {
		s->st.blocks_reused++;
		s->st.bytes_dedup += len;
		return track(s, set_map(s, s->q_setmap, sd->pd, index, block));
	}

	if ((e = repo_fault_at(r, REPO_FAULT_AFTER_RECORDS, "while storing blocks")))
		return track(s, e);
	size_t csize = ZSTD_compress2(s->cctx, s->cbuf, s->ccap, data, len);
	uint32_t flags = REC_FLAG_ZSTD;
	const void *payload = s->cbuf;
	if (ZSTD_isError(csize) || csize >= len) {
		flags = 0;
		payload = data;
		csize = len;
	}
	uint8_t hdr[REC_HDR_LEN];
	repo_rec_header(hdr, flags, hash, (uint32_t)len, payload, (uint32_t)csize);
	int64_t pack;
	uint64_t off;
	if ((e = repo_packset_append(r, &s->ps, hdr, sizeof hdr, payload, csize, &pack, &off)))
		return track(s, e);
	sqlite3_stmt *q = s->q_insblock;
	sqlite3_bind_blob(q, 1, hash, REPO_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, pack);
	sqlite3_bind_int64(q, 3, (int64_t)off);
	sqlite3_bind_int64(q, 4, (int64_t)csize);
	sqlite3_bind_int64(q, 5, (int64_t)len);
	sqlite3_bind_int64(q, 6, flags);
	if ((e = rdb_step_done(r, q)))
		return track(s, e);
	block = sqlite3_last_insert_rowid(r->db);
	s->st.blocks_new++;
	s->st.bytes_new_raw += len;
	s->st.bytes_stored += csize;
	s->st.bytes_packed = s->ps.bytes;
	return track(s, set_map(s, s->q_setmap, sd->pd, index, block));
}

int repo_session_set_ref_point(struct repo_session *s, const char *ref_point)
{
	int e = check_open(s, "set reference point");
	if (e)
		return e;
	sqlite3_stmt *st;
	if ((e = rdb_prep(s->r, &st, "UPDATE points SET ref_point = ?2 WHERE id = ?1")))
		return track(s, e);
	sqlite3_bind_int64(st, 1, s->point);
	sqlite3_bind_text(st, 2, nz(ref_point), -1, SQLITE_STATIC);
	e = rdb_step_done(s->r, st);
	sqlite3_finalize(st);
	return track(s, e);
}

int repo_session_set_rct_id(struct repo_session *s, uint32_t disk, const char *rct_id)
{
	int e = check_open(s, "set RCT id");
	if (e)
		return e;
	if (disk >= s->ndisks)
		return hv_err(HV_EINVAL, "%s: set RCT id: disk %u was not added (%u disks)",
			      s->r->path, disk, s->ndisks);
	sqlite3_stmt *st;
	if ((e = rdb_prep(s->r, &st, "UPDATE point_disks SET rct_id = ?2 WHERE id = ?1")))
		return track(s, e);
	sqlite3_bind_int64(st, 1, s->disks[disk].pd);
	sqlite3_bind_text(st, 2, nz(rct_id), -1, SQLITE_STATIC);
	e = rdb_step_done(s->r, st);
	sqlite3_finalize(st);
	return track(s, e);
}

void repo_session_stats(const struct repo_session *s, struct repo_stats *out)
{
	*out = s->st;
	out->bytes_packed = s->ps.bytes;
	out->packs_written = s->ps.nids;
}

int repo_session_commit(struct repo_session *s, int64_t *point_id, struct repo_stats *stats)
{
	int e = check_open(s, "commit");
	if (e) {
		repo_session_abort(s);
		return e;
	}
	struct repo *r = s->r;
	if (s->ndisks == 0) {
		e = hv_err(HV_EINVAL, "%s: commit: the point has no disks", r->path);
		goto fail;
	}
	/* (1) pack bytes durable */
	if ((e = repo_packset_finish(r, &s->ps)))
		goto fail;
	if ((e = repo_fault_at(r, REPO_FAULT_AFTER_PACK_FLUSH, "after the packs were flushed")))
		goto fail;
	/* (2) the rest of the catalog */
	if ((e = rdb_set_meta(r, "next_pack", s->ps.next_id)))
		goto fail;
	char *sql = sqlite3_mprintf("UPDATE point_disks SET nonzero = (SELECT COUNT(*) FROM maps"
				    " WHERE point_disk = point_disks.id) WHERE point = %lld",
				    (long long)s->point);
	e = sql ? rdb_exec(r, sql) : hv_err(HV_ENOMEM, "%s: out of memory", r->path);
	sqlite3_free(sql);
	if (e)
		goto fail;
	if ((e = repo_fault_at(r, REPO_FAULT_BEFORE_CATALOG_COMMIT, "before the catalog commit")))
		goto fail;
	/* (3) the point exists from here on */
	if ((e = rdb_exec(r, "COMMIT")))
		goto fail;
	if (point_id)
		*point_id = s->point;
	if (stats)
		repo_session_stats(s, stats);
	e = repo_fault_at(r, REPO_FAULT_AFTER_CATALOG_COMMIT, "after the catalog commit");
	if (r->fault == REPO_FAULT_AFTER_RECORDS)
		r->fault = REPO_FAULT_NONE; /* armed for more records than this session stored */
	repo_packset_discard(r, &s->ps, false);
	free_session(s);
	return e;
fail:
	track(s, e);
	repo_session_abort(s);
	return e;
}

void repo_session_abort(struct repo_session *s)
{
	if (!s)
		return;
	struct repo *r = s->r;
	if (s->state == S_CRASHED || r->crashed) {
		/* a power cut: nothing more reaches the files */
		repo_packset_discard(r, &s->ps, false);
		free_session(s);
		return;
	}
	/* no committed row names the session's packs. Delete them while the write lock is still
	 * held: once it is released another session may create packs under the same ids. */
	repo_packset_discard(r, &s->ps, true);
	sqlite3_reset(s->q_lookup);
	rdb_rollback(r);
	free_session(s);
}
