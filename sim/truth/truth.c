/*
 * truth.c — ground truth and audit log in host.db (see truth.h). Plain SQL over three tables;
 * block hashes are XXH3-128 of the block's bytes (the last block of a disk whose size is not a
 * multiple of the granularity is hashed at its real length).
 *
 * Must not: share code or data with sim/rct (it is RCT's oracle); read the clock.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "truth.h"
#include "../../hyperv/base/base.h"

static int db_err(sqlite3 *db, const char *what)
{
	return hv_err(HV_EIO, "host.db: truth: %s: %s", what, sqlite3_errmsg(db));
}

int truth_init(sqlite3 *db)
{
	static const char sql[] =
		"CREATE TABLE truth_dirty(disk_id INTEGER NOT NULL, block INTEGER NOT NULL,"
		" PRIMARY KEY(disk_id, block)) WITHOUT ROWID;\n"
		"CREATE TABLE truth_point(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, object_guid TEXT NOT NULL,"
		" vm_id INTEGER NOT NULL, vtime INTEGER NOT NULL);\n"
		"CREATE TABLE truth_point_disk(point_id INTEGER NOT NULL, disk_id INTEGER NOT NULL,"
		" size INTEGER NOT NULL, granularity INTEGER NOT NULL, PRIMARY KEY(point_id, disk_id)) WITHOUT ROWID;\n"
		"CREATE TABLE truth_changed(disk_id INTEGER NOT NULL, block INTEGER NOT NULL,"
		" point_id INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY(disk_id, block, point_id)) WITHOUT ROWID;\n"
		"CREATE INDEX truth_changed_point ON truth_changed(disk_id, point_id, block);\n"
		"CREATE TABLE audit(seq INTEGER PRIMARY KEY, vtime INTEGER NOT NULL, api TEXT NOT NULL,"
		" call TEXT NOT NULL, args TEXT NOT NULL, result TEXT NOT NULL, mistake TEXT);\n";
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int r = hv_err(HV_EIO, "host.db: truth schema: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

int truth_mark(sqlite3 *db, int64_t disk_id, uint64_t off, uint64_t len, uint32_t granularity)
{
	if (!len)
		return 0;
	if (!granularity || off + len < off)
		return hv_err(HV_EINVAL, "truth: bad range %llu+%llu", (unsigned long long)off,
			      (unsigned long long)len);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO truth_dirty(disk_id, block) VALUES(?1, ?2)", -1, &st,
			       NULL) != SQLITE_OK)
		return db_err(db, "mark");
	int r = 0;
	uint64_t first = off / granularity, last = (off + len - 1) / granularity;
	sqlite3_bind_int64(st, 1, disk_id);
	for (uint64_t b = first; b <= last; b++) {
		sqlite3_bind_int64(st, 2, (int64_t)b);
		if (sqlite3_step(st) != SQLITE_DONE) {
			r = db_err(db, "mark");
			break;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return r;
}

int truth_point_new(sqlite3 *db, const char *kind, const char *object_guid, int64_t vm_id, uint64_t vtime,
		    int64_t *point_id)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "INSERT INTO truth_point(kind, object_guid, vm_id, vtime) VALUES(?1,?2,?3,?4)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(db, "point");
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, object_guid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, vm_id);
	sqlite3_bind_int64(st, 4, (int64_t)vtime);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(db, "point");
	*point_id = sqlite3_last_insert_rowid(db);
	return 0;
}

void truth_hash(const void *buf, size_t len, uint8_t out[TRUTH_HASH_SIZE])
{
	XXH128_hash_t x = XXH3_128bits(buf, len);
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, x);
	memcpy(out, c.digest, TRUTH_HASH_SIZE);
}

void truth_zero_hash(uint32_t len, uint8_t out[TRUTH_HASH_SIZE])
{
	void *z = calloc(1, len ? len : 1);
	if (!z) { /* a zero block hash is needed only for comparison; fall back to a streaming hash */
		XXH3_state_t *s = XXH3_createState();
		static const uint8_t zeros[4096];
		XXH3_128bits_reset(s);
		for (uint32_t done = 0; done < len; done += 4096)
			XXH3_128bits_update(s, zeros, len - done < 4096 ? len - done : 4096);
		XXH128_canonical_t c;
		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s));
		XXH3_freeState(s);
		memcpy(out, c.digest, TRUTH_HASH_SIZE);
		return;
	}
	truth_hash(z, len, out);
	free(z);
}

int truth_point_disk(sqlite3 *db, int64_t point_id, int64_t disk_id, uint64_t size, uint32_t granularity,
		     truth_read_fn rd, void *ctx)
{
	sqlite3_stmt *sel = NULL, *ins = NULL, *pd = NULL;
	uint8_t *buf = malloc(granularity);
	int r = buf ? 0 : hv_err(HV_ENOMEM, "truth: out of memory");
	if (!r && (sqlite3_prepare_v2(db, "SELECT block FROM truth_dirty WHERE disk_id=?1 ORDER BY block", -1, &sel,
				      NULL) != SQLITE_OK ||
		   sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO truth_changed(disk_id, block, point_id, hash)"
					  " VALUES(?1,?2,?3,?4)", -1, &ins, NULL) != SQLITE_OK ||
		   sqlite3_prepare_v2(db, "INSERT INTO truth_point_disk(point_id, disk_id, size, granularity)"
					  " VALUES(?1,?2,?3,?4)", -1, &pd, NULL) != SQLITE_OK))
		r = db_err(db, "point disk");
	if (r)
		goto out;
	sqlite3_bind_int64(pd, 1, point_id);
	sqlite3_bind_int64(pd, 2, disk_id);
	sqlite3_bind_int64(pd, 3, (int64_t)size);
	sqlite3_bind_int64(pd, 4, granularity);
	if (sqlite3_step(pd) != SQLITE_DONE) {
		r = db_err(db, "point disk");
		goto out;
	}
	sqlite3_bind_int64(sel, 1, disk_id);
	sqlite3_bind_int64(ins, 1, disk_id);
	sqlite3_bind_int64(ins, 3, point_id);
	int rc;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		uint64_t b = (uint64_t)sqlite3_column_int64(sel, 0);
		uint64_t off = b * granularity;
		if (off >= size)
			continue; /* written before a shrink: gone from the disk */
		size_t n = size - off < granularity ? (size_t)(size - off) : granularity;
		r = rd(ctx, off, buf, n);
		if (r)
			goto out;
		uint8_t hsh[TRUTH_HASH_SIZE];
		truth_hash(buf, n, hsh);
		sqlite3_bind_int64(ins, 2, (int64_t)b);
		sqlite3_bind_blob(ins, 4, hsh, TRUTH_HASH_SIZE, SQLITE_TRANSIENT);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			r = db_err(db, "point hash");
			goto out;
		}
		sqlite3_reset(ins);
	}
	if (rc != SQLITE_DONE) {
		r = db_err(db, "point scan");
		goto out;
	}
	char *sql = sqlite3_mprintf("DELETE FROM truth_dirty WHERE disk_id=%lld", (long long)disk_id);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		r = db_err(db, "clear dirty");
	sqlite3_free(sql);
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(pd);
	free(buf);
	return r;
}

int truth_block_hash(sqlite3 *db, int64_t point_id, int64_t disk_id, uint64_t block, uint8_t out[TRUTH_HASH_SIZE])
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "SELECT c.hash, d.size, d.granularity FROM truth_point_disk d"
			       " LEFT JOIN truth_changed c ON c.disk_id=d.disk_id AND c.block=?3 AND c.point_id<=d.point_id"
			       " WHERE d.point_id=?1 AND d.disk_id=?2 ORDER BY c.point_id DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(db, "block hash");
	sqlite3_bind_int64(st, 1, point_id);
	sqlite3_bind_int64(st, 2, disk_id);
	sqlite3_bind_int64(st, 3, (int64_t)block);
	int r = 0;
	if (sqlite3_step(st) != SQLITE_ROW) {
		r = hv_err(HV_ENOTFOUND, "truth: disk %lld has no point %lld", (long long)disk_id, (long long)point_id);
	} else if (sqlite3_column_type(st, 0) == SQLITE_BLOB && sqlite3_column_bytes(st, 0) == TRUTH_HASH_SIZE) {
		memcpy(out, sqlite3_column_blob(st, 0), TRUTH_HASH_SIZE);
	} else {
		uint64_t size = (uint64_t)sqlite3_column_int64(st, 1);
		uint32_t g = (uint32_t)sqlite3_column_int64(st, 2);
		uint64_t off = block * g;
		if (!g || off >= size)
			r = hv_err(HV_EINVAL, "truth: block %llu is past the end of disk %lld at point %lld",
				   (unsigned long long)block, (long long)disk_id, (long long)point_id);
		else
			truth_zero_hash(size - off < g ? (uint32_t)(size - off) : g, out);
	}
	sqlite3_finalize(st);
	return r;
}

int truth_changed_between(sqlite3 *db, int64_t disk_id, int64_t point_a, int64_t point_b,
			  int (*cb)(void *ctx, uint64_t block), void *ctx)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "SELECT DISTINCT block FROM truth_changed WHERE disk_id=?1 AND point_id>?2 AND point_id<=?3"
			       " ORDER BY block", -1, &st, NULL) != SQLITE_OK)
		return db_err(db, "changed");
	sqlite3_bind_int64(st, 1, disk_id);
	sqlite3_bind_int64(st, 2, point_a);
	sqlite3_bind_int64(st, 3, point_b);
	int r = 0, rc;
	while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = cb(ctx, (uint64_t)sqlite3_column_int64(st, 0));
	if (!r && rc != SQLITE_DONE)
		r = db_err(db, "changed");
	sqlite3_finalize(st);
	return r;
}

int truth_audit(sqlite3 *db, uint64_t vtime, const char *api, const char *call, const char *args,
		const char *result, const char *mistake)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "INSERT INTO audit(vtime, api, call, args, result, mistake) VALUES(?1,?2,?3,?4,?5,?6)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(db, "audit");
	sqlite3_bind_int64(st, 1, (int64_t)vtime);
	sqlite3_bind_text(st, 2, api, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, call, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, args ? args : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, result ? result : "", -1, SQLITE_STATIC);
	if (mistake)
		sqlite3_bind_text(st, 6, mistake, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_err(db, "audit");
}
