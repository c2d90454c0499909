/*
 * repo_catalog — the repository folder and its catalog: create, open (with full validation of the
 * stored settings), close, the SQLite helpers the other repo_*.c files use, and the test fault
 * points.
 *
 * Must not: modify anything when opening an existing repository, or accept a catalog of another
 * format version.
 *
 * CATALOG SCHEMA (format 1; catalog.db, SQLite, journal_mode=WAL, synchronous=FULL,
 * foreign_keys=ON)
 *   meta(key, value)       format, block_size, zstd_level, pack_size, next_pack (the id the next
 *                          new pack gets: ids are never reused once committed)
 *   packs(id, size, records)
 *                          every committed pack file packs/<id as %08x>.pack, its length and
 *                          record count; a pack is immutable once its row is committed
 *   blocks(id, hash, pack, offset, stored_len, raw_len, flags)
 *                          one row per distinct non-zero block content: SHA-256 of the raw bytes,
 *                          where its record starts, its lengths and record flags (bit 0 zstd)
 *   points(id AUTOINCREMENT, vm_name, vm_id, type 'full'|'incremental', reason, vtime, parent,
 *          ref_point)      one backup; id is the creation sequence and is never reused
 *   point_disks(id AUTOINCREMENT, point, name, disk_id, rct_id, virtual_size, block_size,
 *          logical_sector, nonzero)
 *   maps(point_disk, idx, block) WITHOUT ROWID
 *                          the block map of a point-disk: one row per non-zero block index
 *                          (absent index = zero block). Complete per point: an incremental's rows
 *                          are its parent's (copied in SQL) with the changed indices replaced.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo_internal.h"

static const char SCHEMA[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;\n"
	"CREATE TABLE packs(id INTEGER PRIMARY KEY, size INTEGER NOT NULL,"
	" records INTEGER NOT NULL);\n"
	"CREATE TABLE blocks(id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE"
	" CHECK(length(hash) = 32), pack INTEGER NOT NULL REFERENCES packs(id),"
	" offset INTEGER NOT NULL, stored_len INTEGER NOT NULL, raw_len INTEGER NOT NULL,"
	" flags INTEGER NOT NULL);\n"
	"CREATE INDEX blocks_pack ON blocks(pack, offset);\n"
	"CREATE TABLE points(id INTEGER PRIMARY KEY AUTOINCREMENT, vm_name TEXT NOT NULL,"
	" vm_id TEXT NOT NULL, type TEXT NOT NULL CHECK(type IN ('full', 'incremental')),"
	" reason TEXT NOT NULL, vtime INTEGER NOT NULL, parent INTEGER, ref_point TEXT NOT NULL);\n"
	"CREATE INDEX points_vm ON points(vm_name, id);\n"
	"CREATE TABLE point_disks(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" point INTEGER NOT NULL REFERENCES points(id), name TEXT NOT NULL, disk_id TEXT NOT NULL,"
	" rct_id TEXT NOT NULL, virtual_size INTEGER NOT NULL, block_size INTEGER NOT NULL,"
	" logical_sector INTEGER NOT NULL, nonzero INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE(point, name));\n"
	"CREATE TABLE maps(point_disk INTEGER NOT NULL REFERENCES point_disks(id),"
	" idx INTEGER NOT NULL, block INTEGER NOT NULL REFERENCES blocks(id),"
	" PRIMARY KEY(point_disk, idx)) WITHOUT ROWID;\n"
	"CREATE INDEX maps_block ON maps(block);\n";

/* ---- SQLite helpers --------------------------------------------------------------------------*/

int rdb_err(struct repo *r, const char *what)
{
	int code = sqlite3_errcode(r->db);
	int hv = (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) ? HV_ECORRUPT : HV_EIO;
	return hv_err(hv, "%s: %s: %s", r->catalog, what, sqlite3_errmsg(r->db));
}

int rdb_prep(struct repo *r, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return rdb_err(r, sql);
	}
	return 0;
}

int rdb_step_done(struct repo *r, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int out = 0;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		out = rdb_err(r, sqlite3_sql(st));
	sqlite3_reset(st);
	return out;
}

int rdb_exec(struct repo *r, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(r->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		int hv = (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) ? HV_ECORRUPT : HV_EIO;
		int e = hv_err(hv, "%s: %s: %s", r->catalog, sql, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return e;
	}
	return 0;
}

int rdb_int(struct repo *r, int64_t *out, int64_t dflt, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (!sql)
		return hv_err(HV_ENOMEM, "%s: out of memory", r->catalog);
	sqlite3_stmt *st;
	int e = rdb_prep(r, &st, sql);
	sqlite3_free(sql);
	if (e)
		return e;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		*out = dflt;
	else
		e = rdb_err(r, sqlite3_sql(st));
	sqlite3_finalize(st);
	return e;
}

const char *rdb_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? (const char *)t : "";
}

int rdb_begin_write(struct repo *r)
{
	int rc = sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return hv_err(HV_EIO,
			      "%s: busy: another backup session or prune holds the write lock",
			      r->catalog);
	if (rc != SQLITE_OK)
		return rdb_err(r, "BEGIN IMMEDIATE");
	return 0;
}

void rdb_rollback(struct repo *r)
{
	if (!sqlite3_get_autocommit(r->db))
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
}

int rdb_set_meta(struct repo *r, const char *key, int64_t value)
{
	sqlite3_stmt *st;
	int e = rdb_prep(r, &st, "INSERT INTO meta(key, value) VALUES(?1, ?2)"
				 " ON CONFLICT(key) DO UPDATE SET value = excluded.value");
	if (e)
		return e;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	e = rdb_step_done(r, st);
	sqlite3_finalize(st);
	return e;
}

/* ---- faults and state checks -----------------------------------------------------------------*/

void repo_set_fault(struct repo *r, enum repo_fault fault, uint64_t n)
{
	r->fault = fault;
	r->fault_n = n;
}

int repo_fault_at(struct repo *r, enum repo_fault at, const char *where)
{
	if (r->fault != at)
		return 0;
	if (at == REPO_FAULT_AFTER_RECORDS && r->fault_n > 0) {
		r->fault_n--;
		return 0;
	}
	r->fault = REPO_FAULT_NONE;
	r->crashed = true;
	return hv_err(HV_ECRASHED, "%s: fault point: power lost %s", r->path, where);
}

int repo_check_alive(struct repo *r)
{
	if (r->crashed)
		return hv_err(HV_ECRASHED,
			      "%s: this handle stopped at a fault point; close it and reopen",
			      r->path);
	return 0;
}

int repo_check_writable(struct repo *r, const char *what)
{
	int e = repo_check_alive(r);
	if (e)
		return e;
	if (r->flags & REPO_OPEN_RDONLY)
		return hv_err(HV_EINVAL, "%s: %s: opened read-only", r->path, what);
	if (r->session)
		return hv_err(HV_EINVAL, "%s: %s: a backup session is open on this handle", r->path,
			      what);
	return 0;
}

int repo_sync_packdir(struct repo *r)
{
	if (r->flags & REPO_OPEN_NOSYNC)
		return 0;
	int fd = open(r->packdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = 0;
	if (fd < 0 || fsync(fd) != 0)
		e = hv_err(HV_EIO, "%s: fsync of the folder failed: %s", r->packdir,
			   strerror(errno));
	if (fd >= 0)
		close(fd);
	return e;
}

/* ---- create / open ---------------------------------------------------------------------------*/

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = 0;
	if (fd < 0 || fsync(fd) != 0)
		e = hv_err(HV_EIO, "%s: fsync failed: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return e;
}

/* 1 empty, 0 not empty, -1 cannot read */
static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n == 0;
}

static const char *block_size_problem(uint64_t bs)
{
	if (bs < REPO_MIN_BLOCK_SIZE || bs > REPO_MAX_BLOCK_SIZE || (bs & (bs - 1)))
		return "must be a power of two from 4 KiB to 16 MiB";
	return NULL;
}

static int check_opts(const char *path, const struct repo_opts *o)
{
	const char *why;
	if (o->block_size && (why = block_size_problem(o->block_size)))
		return hv_err(HV_EINVAL, "%s: block size %u: %s", path, o->block_size, why);
	if (o->zstd_level < 0 || o->zstd_level > 19)
		return hv_err(HV_EINVAL, "%s: zstd level %d: must be 1..19 (0: default)", path,
			      o->zstd_level);
	if (o->pack_size && (o->pack_size < 4096 || o->pack_size > (4ull << 30)))
		return hv_err(HV_EINVAL, "%s: pack size %llu: must be 4 KiB..4 GiB", path,
			      (unsigned long long)o->pack_size);
	return 0;
}

static int db_open(struct repo *r, bool create)
{
	int fl = ((r->flags & REPO_OPEN_RDONLY) ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
		 (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
	int rc = sqlite3_open_v2(r->catalog, &r->db, fl, NULL);
	if (rc != SQLITE_OK)
		return hv_err(rc == SQLITE_CANTOPEN ? HV_ENOTFOUND : HV_EIO, "%s: %s", r->catalog,
			      r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
	sqlite3_busy_timeout(r->db, 5000);
	sqlite3_extended_result_codes(r->db, 0);
	const char *sync = (r->flags & REPO_OPEN_NOSYNC) ? "PRAGMA synchronous=OFF;"
							  : "PRAGMA synchronous=FULL;";
	int e = 0;
	if (!(r->flags & REPO_OPEN_RDONLY))
		e = rdb_exec(r, "PRAGMA journal_mode=WAL");
	if (!e)
		e = rdb_exec(r, sync);
	if (!e)
		e = rdb_exec(r, "PRAGMA foreign_keys=ON");
	if (e == HV_ECORRUPT || e == HV_EIO) {
		/* the first statement is where SQLite notices a file that is not a database */
		if (sqlite3_errcode(r->db) == SQLITE_NOTADB || sqlite3_errcode(r->db) == SQLITE_CORRUPT)
			return hv_err(HV_ECORRUPT, "%s: not a repository catalog (%s)", r->catalog,
				      sqlite3_errmsg(r->db));
	}
	return e;
}

static int create_repo(struct repo *r, const struct repo_opts *o)
{
	if (mkdir(r->path, 0777) && errno != EEXIST)
		return hv_err(HV_EIO, "%s: cannot create: %s", r->path, strerror(errno));
	int empty = dir_is_empty(r->path);
	if (empty < 0)
		return hv_err(HV_EIO, "%s: cannot read: %s", r->path, strerror(errno));
	if (!empty)
		return hv_err(HV_EINVAL,
			      "%s: not empty and not a repository (a repository is created in a new or"
			      " empty folder)",
			      r->path);
	if (mkdir(r->packdir, 0777))
		return hv_err(HV_EIO, "%s: cannot create: %s", r->packdir, strerror(errno));
	int e = db_open(r, true);
	if (!e)
		e = rdb_begin_write(r);
	if (!e)
		e = rdb_exec(r, SCHEMA);
	struct {
		const char *k;
		int64_t v;
	} meta[] = {
		{"format", REPO_FORMAT_VERSION},
		{"block_size", o->block_size ? o->block_size : REPO_DEFAULT_BLOCK_SIZE},
		{"zstd_level", o->zstd_level ? o->zstd_level : REPO_DEFAULT_ZSTD_LEVEL},
		{"pack_size", (int64_t)(o->pack_size ? o->pack_size : REPO_DEFAULT_PACK_SIZE)},
		{"next_pack", 1},
	};
	for (size_t i = 0; !e && i < sizeof meta / sizeof *meta; i++)
		e = rdb_set_meta(r, meta[i].k, meta[i].v);
	if (!e)
		e = rdb_exec(r, "COMMIT");
	if (e) {
		rdb_rollback(r);
		return e;
	}
	if (!(r->flags & REPO_OPEN_NOSYNC))
		e = fsync_path(r->path);
	sqlite3_close(r->db);
	r->db = NULL;
	return e;
}

static int load_meta(struct repo *r, const struct repo_opts *o)
{
	int64_t has = 0, fmt = 0, bs = 0, lvl = 0, ps = 0, np = 0;
	int e = rdb_int(r, &has, 0,
			"SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='meta'");
	if (e)
		return e == HV_EIO ? hv_err(HV_ECORRUPT, "%s: not a repository catalog (%s)",
					    r->catalog, hv_errmsg())
				   : e;
	if (!has)
		return hv_err(HV_ECORRUPT, "%s: not a repository catalog (no meta table)", r->catalog);
	e = rdb_int(r, &fmt, 0, "SELECT value FROM meta WHERE key='format'");
	if (e)
		return e;
	if (fmt != REPO_FORMAT_VERSION)
		return hv_err(HV_EUNSUPPORTED, "%s: catalog format %lld, this engine reads format %d",
			      r->catalog, (long long)fmt, REPO_FORMAT_VERSION);
	if ((e = rdb_int(r, &bs, 0, "SELECT value FROM meta WHERE key='block_size'")) ||
	    (e = rdb_int(r, &lvl, 0, "SELECT value FROM meta WHERE key='zstd_level'")) ||
	    (e = rdb_int(r, &ps, 0, "SELECT value FROM meta WHERE key='pack_size'")) ||
	    (e = rdb_int(r, &np, 0, "SELECT value FROM meta WHERE key='next_pack'")))
		return e;
	if (bs < 0 || block_size_problem((uint64_t)bs))
		return hv_err(HV_ECORRUPT, "%s: meta block_size %lld is invalid", r->catalog,
			      (long long)bs);
	if (lvl < 1 || lvl > 19)
		return hv_err(HV_ECORRUPT, "%s: meta zstd_level %lld is invalid", r->catalog,
			      (long long)lvl);
	if (ps < 4096 || ps > (4ll << 30))
		return hv_err(HV_ECORRUPT, "%s: meta pack_size %lld is invalid", r->catalog,
			      (long long)ps);
	if (np < 1)
		return hv_err(HV_ECORRUPT, "%s: meta next_pack %lld is invalid", r->catalog,
			      (long long)np);
	if (o->block_size && o->block_size != bs)
		return hv_err(HV_EMISMATCH, "%s: block size %u asked, the repository uses %lld",
			      r->path, o->block_size, (long long)bs);
	r->block_size = (uint32_t)bs;
	r->zstd_level = o->zstd_level ? o->zstd_level : (int)lvl;
	r->pack_size = o->pack_size ? o->pack_size : (uint64_t)ps;
	return 0;
}

int repo_open(const char *path, unsigned flags, const struct repo_opts *opts, struct repo **out)
{
	static const struct repo_opts none;
	const struct repo_opts *o = opts ? opts : &none;
	*out = NULL;
	if (!path || !*path)
		return hv_err(HV_EINVAL, "repo_open: empty path");
	if (strlen(path) > REPO_PATH_MAX - 64)
		return hv_err(HV_EINVAL, "repo_open: path of %zu bytes is too long", strlen(path));
	if (flags & ~(unsigned)(REPO_OPEN_CREATE | REPO_OPEN_RDONLY | REPO_OPEN_NOSYNC))
		return hv_err(HV_EINVAL, "%s: open flags 0x%x unknown", path, flags);
	if ((flags & REPO_OPEN_CREATE) && (flags & REPO_OPEN_RDONLY))
		return hv_err(HV_EINVAL, "%s: cannot create read-only", path);
	int e = check_opts(path, o);
	if (e)
		return e;
	struct repo *r = calloc(1, sizeof *r);
	if (!r)
		return hv_err(HV_ENOMEM, "%s: out of memory", path);
	r->flags = flags;
	for (int i = 0; i < REPO_FD_CACHE; i++)
		r->fds[i].fd = -1;
	if (!(r->path = strdup(path)) || asprintf(&r->catalog, "%s/catalog.db", path) < 0 ||
	    asprintf(&r->packdir, "%s/packs", path) < 0) {
		r->catalog = r->packdir = NULL;
		e = hv_err(HV_ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	struct stat sb;
	bool have_dir = stat(path, &sb) == 0;
	if (have_dir && !S_ISDIR(sb.st_mode)) {
		e = hv_err(HV_EINVAL, "%s: not a folder", path);
		goto fail;
	}
	bool have_cat = stat(r->catalog, &sb) == 0;
	if (!have_cat) {
		if (!(flags & REPO_OPEN_CREATE)) {
			e = hv_err(HV_ENOTFOUND, "%s: not a repository (no catalog.db)%s", path,
				   have_dir ? "" : ": no such folder");
			goto fail;
		}
		if ((e = create_repo(r, o)))
			goto fail;
	}
	if (stat(r->packdir, &sb) || !S_ISDIR(sb.st_mode)) {
		e = hv_err(HV_ECORRUPT, "%s: the packs folder is missing", r->packdir);
		goto fail;
	}
	if ((e = db_open(r, false)) || (e = load_meta(r, o)))
		goto fail;
	if (!(r->dctx = ZSTD_createDCtx())) {
		e = hv_err(HV_ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	*out = r;
	return 0;
fail:
	repo_close(r);
	return e;
}

uint32_t repo_block_size(const struct repo *r) { return r->block_size; }

void repo_close(struct repo *r)
{
	if (!r)
		return;
	if (r->session)
		repo_session_abort(r->session);
	repo_fd_cache_clear(r);
	if (r->db)
		sqlite3_close_v2(r->db);
	ZSTD_freeDCtx(r->dctx);
	free(r->rec);
	free(r->raw);
	free(r->path);
	free(r->catalog);
	free(r->packdir);
	free(r);
}
