/*
 * repo_prune — forgetting points and reclaiming the space only they used.
 *
 * forget deletes point rows and their maps in one transaction; the blocks stay. prune, in one
 * catalog transaction that is also the write lock: deletes orphan pack files (no committed row
 * names them: left by crashed sessions or an earlier prune cut short), deletes the block rows no
 * map names, copies the live records of every pack holding dead ones into new packs (each record
 * checked end to end first), fsyncs the new packs and the folder, points the block rows at the
 * copies and drops the old pack rows, commits, and only then deletes the old pack files. Before
 * the commit every point reads from the old packs, after it from the new ones; both are complete
 * at every instant. A crash after the commit leaves old files that the next prune deletes as
 * orphans.
 *
 * Must not: delete a pack file a committed row may still name, or copy a record it has not
 * verified (a damaged record stays where verify can name it).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo_internal.h"

/* ---- forget ----------------------------------------------------------------------------------*/

/* Deletes the points listed in temp.forget_ids with their disks and maps. */
static int delete_listed_points(struct repo *r, uint64_t *n)
{
	int e = rdb_exec(r, "DELETE FROM maps WHERE point_disk IN (SELECT id FROM point_disks"
			    " WHERE point IN (SELECT id FROM temp.forget_ids));"
			    "DELETE FROM point_disks WHERE point IN (SELECT id FROM temp.forget_ids);"
			    "DELETE FROM points WHERE id IN (SELECT id FROM temp.forget_ids)");
	if (!e && n)
		*n = (uint64_t)sqlite3_changes(r->db);
	return e;
}

static int forget(struct repo *r, const char *select_ids, uint64_t *n)
{
	int e = rdb_begin_write(r);
	if (e)
		return e;
	char *sql = sqlite3_mprintf("CREATE TEMP TABLE IF NOT EXISTS forget_ids(id INTEGER PRIMARY"
				    " KEY); DELETE FROM temp.forget_ids;"
				    " INSERT INTO temp.forget_ids %s",
				    select_ids);
	e = sql ? rdb_exec(r, sql) : hv_err(HV_ENOMEM, "%s: out of memory", r->path);
	sqlite3_free(sql);
	if (!e)
		e = delete_listed_points(r, n);
	if (!e)
		e = rdb_exec(r, "COMMIT");
	if (e)
		rdb_rollback(r);
	return e;
}

int repo_forget(struct repo *r, unsigned keep_last, uint64_t *forgotten)
{
	int e = repo_check_writable(r, "forget");
	if (e)
		return e;
	if (keep_last == 0)
		return hv_err(HV_EINVAL,
			      "%s: forget: keep_last 0 would forget every point; forget points one by"
			      " one instead",
			      r->path);
	/* a VM is its vm_id (names change); its name only when no id was recorded */
	char *sel = sqlite3_mprintf(
		"SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY CASE WHEN vm_id <> ''"
		" THEN 'i:' || vm_id ELSE 'n:' || vm_name END ORDER BY id DESC) AS rn FROM points)"
		" WHERE rn > %u",
		keep_last);
	if (!sel)
		return hv_err(HV_ENOMEM, "%s: out of memory", r->path);
	e = forget(r, sel, forgotten);
	sqlite3_free(sel);
	return e;
}

int repo_forget_point(struct repo *r, int64_t point)
{
	int e = repo_check_writable(r, "forget");
	if (e)
		return e;
	int64_t n = 0;
	if ((e = rdb_int(r, &n, 0, "SELECT COUNT(*) FROM points WHERE id=%lld", (long long)point)))
		return e;
	if (!n)
		return hv_err(HV_ENOTFOUND, "%s: point %lld does not exist", r->path,
			      (long long)point);
	char sel[64];
	snprintf(sel, sizeof sel, "VALUES(%lld)", (long long)point);
	return forget(r, sel, NULL);
}

/* ---- prune -----------------------------------------------------------------------------------*/

/* Bytes in files named like packs. */
static int pack_bytes(struct repo *r, uint64_t *out)
{
	DIR *d = opendir(r->packdir);
	if (!d)
		return hv_err(HV_EIO, "%s: cannot list: %s", r->packdir, strerror(errno));
	struct dirent *de;
	struct stat sb;
	char p[REPO_PATH_MAX];
	int64_t id;
	*out = 0;
	while ((de = readdir(d)))
		if (repo_pack_name_parse(de->d_name, &id)) {
			repo_pack_path(r, id, p, sizeof p);
			if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode))
				*out += (uint64_t)sb.st_size;
		}
	closedir(d);
	return 0;
}

/* Deletes pack files no catalog row names. Runs under the write lock, so no session is writing
 * new packs right now. */
static int sweep_orphans(struct repo *r, uint64_t *n)
{
	DIR *d = opendir(r->packdir);
	if (!d)
		return hv_err(HV_EIO, "%s: cannot list: %s", r->packdir, strerror(errno));
	int64_t *ids = NULL;
	size_t nids = 0, cap = 0;
	struct dirent *de;
	int64_t id;
	int e = 0;
	while ((de = readdir(d)))
		if (repo_pack_name_parse(de->d_name, &id)) {
			if (nids == cap) {
				cap = cap ? 2 * cap : 64;
				int64_t *ni = realloc(ids, cap * sizeof *ni);
				if (!ni) {
					e = hv_err(HV_ENOMEM, "%s: out of memory", r->path);
					break;
				}
				ids = ni;
			}
			ids[nids++] = id;
		}
	closedir(d);
	sqlite3_stmt *q = NULL;
	if (!e)
		e = rdb_prep(r, &q, "SELECT 1 FROM packs WHERE id = ?1");
	char p[REPO_PATH_MAX];
	for (size_t i = 0; !e && i < nids; i++) {
		sqlite3_bind_int64(q, 1, ids[i]);
		int rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (rc == SQLITE_ROW)
			continue;
		if (rc != SQLITE_DONE) {
			e = rdb_err(r, "prune: pack lookup");
			break;
		}
		repo_pack_path(r, ids[i], p, sizeof p);
		if (unlink(p) != 0 && errno != ENOENT)
			e = hv_err(HV_EIO, "%s: cannot delete orphan pack: %s", p, strerror(errno));
		else
			(*n)++;
	}
	sqlite3_finalize(q);
	free(ids);
	return e;
}

struct live {
	struct repo_blockref b;
	int64_t new_pack;
	uint64_t new_off;
};

static int load_live(struct repo *r, struct live **out, size_t *n)
{
	sqlite3_stmt *q;
	int e = rdb_prep(r, &q, "SELECT id, hash, pack, offset, stored_len, raw_len, flags FROM"
				" blocks WHERE pack IN (SELECT id FROM temp.prune_old)"
				" ORDER BY pack, offset");
	if (e)
		return e;
	struct live *v = NULL;
	size_t nv = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (nv == cap) {
			cap = cap ? 2 * cap : 256;
			struct live *nvp = realloc(v, cap * sizeof *nvp);
			if (!nvp) {
				e = hv_err(HV_ENOMEM, "%s: out of memory", r->path);
				break;
			}
			v = nvp;
		}
		struct repo_blockref *b = &v[nv++].b;
		b->id = sqlite3_column_int64(q, 0);
		const void *h = sqlite3_column_blob(q, 1);
		memset(b->hash, 0, sizeof b->hash);
		if (h && sqlite3_column_bytes(q, 1) == REPO_HASH_LEN)
			memcpy(b->hash, h, REPO_HASH_LEN);
		b->pack = sqlite3_column_int64(q, 2);
		b->offset = (uint64_t)sqlite3_column_int64(q, 3);
		int64_t st = sqlite3_column_int64(q, 4), raw = sqlite3_column_int64(q, 5),
			fl = sqlite3_column_int64(q, 6);
		b->stored_len = st < 0 || st > UINT32_MAX ? UINT32_MAX : (uint32_t)st;
		b->raw_len = raw < 0 || raw > UINT32_MAX ? UINT32_MAX : (uint32_t)raw;
		b->flags = fl < 0 || fl > UINT32_MAX ? UINT32_MAX : (uint32_t)fl;
	}
	if (!e && rc != SQLITE_DONE)
		e = rdb_err(r, "prune: listing live blocks");
	sqlite3_finalize(q);
	if (e) {
		free(v);
		return e;
	}
	*out = v;
	*n = nv;
	return 0;
}

static int load_ids(struct repo *r, const char *sql, int64_t **out, size_t *n)
{
	sqlite3_stmt *q;
	int e = rdb_prep(r, &q, sql);
	if (e)
		return e;
	int64_t *v = NULL;
	size_t nv = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (nv == cap) {
			cap = cap ? 2 * cap : 32;
			int64_t *nvp = realloc(v, cap * sizeof *nvp);
			if (!nvp) {
				e = hv_err(HV_ENOMEM, "%s: out of memory", r->path);
				break;
			}
			v = nvp;
		}
		v[nv++] = sqlite3_column_int64(q, 0);
	}
	if (!e && rc != SQLITE_DONE)
		e = rdb_err(r, sql);
	sqlite3_finalize(q);
	if (e) {
		free(v);
		return e;
	}
	*out = v;
	*n = nv;
	return 0;
}

/* Copies the live records into new packs and points their rows at the copies (uncommitted). */
static int copy_live(struct repo *r, struct repo_packset *ps, struct repo_prune_stats *st)
{
	struct live *v = NULL;
	size_t n = 0;
	int e = load_live(r, &v, &n);
	if (e)
		return e;
	for (size_t i = 0; i < n; i++) {
		if ((e = repo_fault_at(r, REPO_FAULT_AFTER_RECORDS, "while prune copied records")))
			goto out;
		if ((e = repo_block_load(r, &v[i].b, r->raw))) {
			hv_err_prefix(e, "prune: a live block cannot be copied (run verify)");
			goto out;
		}
		if ((e = repo_packset_append(r, ps, r->rec, REC_HDR_LEN, r->rec + REC_HDR_LEN,
					     v[i].b.stored_len, &v[i].new_pack, &v[i].new_off)))
			goto out;
		st->records_copied++;
	}
	if ((e = repo_packset_finish(r, ps)))
		goto out;
	if ((e = repo_fault_at(r, REPO_FAULT_AFTER_PACK_FLUSH, "after prune flushed its packs")))
		goto out;
	sqlite3_stmt *q;
	if ((e = rdb_prep(r, &q, "UPDATE blocks SET pack = ?2, offset = ?3 WHERE id = ?1")))
		goto out;
	for (size_t i = 0; !e && i < n; i++) {
		sqlite3_bind_int64(q, 1, v[i].b.id);
		sqlite3_bind_int64(q, 2, v[i].new_pack);
		sqlite3_bind_int64(q, 3, (int64_t)v[i].new_off);
		e = rdb_step_done(r, q);
	}
	sqlite3_finalize(q);
out:
	free(v);
	return e;
}

int repo_prune(struct repo *r, struct repo_prune_stats *stats)
{
	struct repo_prune_stats dummy;
	struct repo_prune_stats *st = stats ? stats : &dummy;
	memset(st, 0, sizeof *st);
	int e = repo_check_writable(r, "prune");
	if (e || (e = repo_buffers(r)))
		return e;
	if ((e = rdb_begin_write(r)))
		return e;
	int64_t next_pack = 0, *old = NULL;
	size_t nold = 0;
	struct repo_packset ps;
	repo_packset_init(&ps, 0);
	if ((e = pack_bytes(r, &st->bytes_before)) || (e = sweep_orphans(r, &st->orphans_deleted)))
		goto fail;
	if ((e = rdb_exec(r, "DELETE FROM blocks WHERE NOT EXISTS"
			     " (SELECT 1 FROM maps WHERE maps.block = blocks.id)")))
		goto fail;
	st->blocks_removed = (uint64_t)sqlite3_changes(r->db);
	/* every pack with a dead byte: wholly dead ones are dropped, the others rewritten */
	if ((e = rdb_exec(r, "CREATE TEMP TABLE IF NOT EXISTS prune_old(id INTEGER PRIMARY KEY,"
			     " live INTEGER NOT NULL); DELETE FROM temp.prune_old;"
			     " INSERT INTO temp.prune_old SELECT p.id, coalesce(l.n, 0) FROM packs p"
			     " LEFT JOIN (SELECT pack, sum(52 + stored_len) AS bytes, count(*) AS n"
			     " FROM blocks GROUP BY pack) l ON l.pack = p.id"
			     " WHERE l.n IS NULL OR 32 + l.bytes < p.size")))
		goto fail;
	if ((e = load_ids(r, "SELECT id FROM temp.prune_old ORDER BY id", &old, &nold)))
		goto fail;
	int64_t rewritten = 0;
	if ((e = rdb_int(r, &rewritten, 0, "SELECT COUNT(*) FROM temp.prune_old WHERE live > 0")) ||
	    (e = rdb_int(r, &next_pack, 0, "SELECT value FROM meta WHERE key='next_pack'")))
		goto fail;
	repo_packset_init(&ps, next_pack);
	if ((e = copy_live(r, &ps, st)))
		goto fail;
	if ((e = rdb_exec(r, "DELETE FROM packs WHERE id IN (SELECT id FROM temp.prune_old)")) ||
	    (e = rdb_set_meta(r, "next_pack", ps.next_id)))
		goto fail;
	if ((e = repo_fault_at(r, REPO_FAULT_BEFORE_CATALOG_COMMIT, "before prune's catalog commit")))
		goto fail;
	if ((e = rdb_exec(r, "COMMIT")))
		goto fail;
	st->packs_rewritten = (uint64_t)rewritten;
	st->packs_deleted = nold;
	st->packs_written = ps.nids;
	repo_packset_discard(r, &ps, false);
	repo_fd_cache_clear(r);
	if ((e = repo_fault_at(r, REPO_FAULT_AFTER_CATALOG_COMMIT, "after prune's catalog commit")))
		goto out;
	/* no committed row names the old packs any more */
	char p[REPO_PATH_MAX];
	for (size_t i = 0; i < nold; i++) {
		repo_pack_path(r, old[i], p, sizeof p);
		if (unlink(p) != 0 && errno != ENOENT) {
			e = hv_err(HV_EIO, "%s: cannot delete the old pack: %s", p, strerror(errno));
			goto out;
		}
		if (i == 0 && (e = repo_fault_at(r, REPO_FAULT_PRUNE_AFTER_UNLINK,
						 "after prune deleted its first old pack")))
			goto out;
	}
	if (nold && (e = repo_sync_packdir(r)))
		goto out;
	if (r->fault == REPO_FAULT_AFTER_RECORDS)
		r->fault = REPO_FAULT_NONE;
	e = pack_bytes(r, &st->bytes_after);
out:
	free(old);
	return e;
fail:
	if (e == HV_ECRASHED) {
		repo_packset_discard(r, &ps, false);
	} else {
		/* nothing committed names the new packs; delete them while still holding the lock */
		repo_packset_discard(r, &ps, true);
		rdb_rollback(r);
	}
	free(old);
	return e;
}
