/*
 * host.c — the state folder itself: create/open host.db (SQLite, WAL), its schema, settings,
 * the virtual clock, the persisted PRNG streams, transactions and small SQLite helpers.
 *
 * Must not: read the wall clock or unseeded randomness; keep state anywhere but host.db and the
 * files it names (two processes opening the same folder see the same host).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/file.h>

#include "host_internal.h"
#include "../truth/truth.h"

/* The schema of the host's own tables. sim/truth and sim/wmi add theirs. Columns named after
 * the WMI properties they feed where that helps reading. */
static const char SCHEMA[] =
	"CREATE TABLE setting(key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
	"CREATE TABLE rng(stream TEXT PRIMARY KEY, counter INTEGER NOT NULL);\n"
	"CREATE TABLE vm(id INTEGER PRIMARY KEY, guid TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	" name TEXT NOT NULL UNIQUE COLLATE NOCASE, state INTEGER NOT NULL, merge_enabled INTEGER NOT NULL,"
	" merge_fault INTEGER NOT NULL DEFAULT 0, guest_vss INTEGER NOT NULL DEFAULT 1, settings_guid TEXT NOT NULL, controller_guid TEXT NOT NULL,"
	" created INTEGER NOT NULL);\n"
	"CREATE TABLE disk(id INTEGER PRIMARY KEY, vm_id INTEGER NOT NULL REFERENCES vm(id), slot INTEGER NOT NULL,"
	" name TEXT NOT NULL, instance_id TEXT NOT NULL, virtual_disk_id TEXT NOT NULL, size INTEGER NOT NULL, fixed INTEGER NOT NULL,"
	" block_size INTEGER NOT NULL, logical_sector INTEGER NOT NULL, physical_sector INTEGER NOT NULL,"
	" sidecar TEXT NOT NULL, attached INTEGER NOT NULL DEFAULT 1, wl_cursor INTEGER NOT NULL DEFAULT 0);\n"
	"CREATE UNIQUE INDEX disk_slot ON disk(vm_id, slot) WHERE attached;\n"
	/* chain: depth 0 = base .vhdx; the highest depth is the leaf the VM writes to. frozen_seq is
	 * the change-tracking seal the file was frozen at (NULL for the leaf). */
	"CREATE TABLE chain(disk_id INTEGER NOT NULL REFERENCES disk(id), depth INTEGER NOT NULL,"
	" path TEXT NOT NULL UNIQUE, frozen_seq INTEGER, frozen_guid TEXT, merging INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY(disk_id, depth));\n"
	"CREATE TABLE snapshot(id INTEGER PRIMARY KEY, guid TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	" vm_id INTEGER NOT NULL REFERENCES vm(id), type INTEGER NOT NULL, name TEXT NOT NULL,"
	" consistency INTEGER NOT NULL, created INTEGER NOT NULL, parent_id INTEGER, truth_point INTEGER);\n"
	"CREATE TABLE snapshot_disk(snapshot_id INTEGER NOT NULL REFERENCES snapshot(id),"
	" disk_id INTEGER NOT NULL REFERENCES disk(id), depth INTEGER NOT NULL, rct_id TEXT NOT NULL,"
	" PRIMARY KEY(snapshot_id, disk_id));\n"
	"CREATE TABLE refpoint(id INTEGER PRIMARY KEY, guid TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	" vm_id INTEGER NOT NULL REFERENCES vm(id), type INTEGER NOT NULL, consistency INTEGER NOT NULL,"
	" created INTEGER NOT NULL, truth_point INTEGER);\n"
	"CREATE TABLE refpoint_disk(rp_id INTEGER NOT NULL REFERENCES refpoint(id), idx INTEGER NOT NULL,"
	" disk_id INTEGER NOT NULL, disk_instance_id TEXT NOT NULL, rct_id TEXT NOT NULL,"
	" PRIMARY KEY(rp_id, idx));\n";

int hdb_err(struct host *h, const char *what)
{
	return hv_err(HV_EIO, "%s/host.db: %s: %s", h->dir, what, sqlite3_errmsg(h->db));
}

int hdb_prep(struct host *h, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v2(h->db, sql, -1, st, NULL) != SQLITE_OK)
		return hdb_err(h, sql);
	return 0;
}

int hdb_done(struct host *h, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int r = 0;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = hdb_err(h, sqlite3_sql(st));
	sqlite3_finalize(st);
	return r;
}

const char *hdb_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? (const char *)t : "";
}

int hdb_int(struct host *h, int64_t *out, int64_t dflt, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (!sql)
		return hv_err(HV_ENOMEM, "out of memory");
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st, sql);
	sqlite3_free(sql);
	if (r)
		return r;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		*out = dflt;
	else
		r = hdb_err(h, sqlite3_sql(st));
	sqlite3_finalize(st);
	return r;
}

int host_exec(struct host *h, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(h->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int r = hv_err(HV_EIO, "%s/host.db: %s", h->dir, msg ? msg : "error");
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

int host_lock(struct host *h)
{
	if (h->lock_depth++ > 0 || h->lock_fd < 0)
		return 0;
	while (flock(h->lock_fd, LOCK_EX)) {
		if (errno != EINTR) {
			h->lock_depth--;
			return hv_err(HV_EIO, "%s/host.db: cannot lock: %s", h->dir, strerror(errno));
		}
	}
	return 0;
}

void host_unlock(struct host *h)
{
	if (h->lock_depth <= 0)
		return;
	if (--h->lock_depth == 0 && h->lock_fd >= 0)
		flock(h->lock_fd, LOCK_UN);
}

int host_begin(struct host *h)
{
	int r = host_lock(h);
	if (r)
		return r;
	if (h->txn_depth++ > 0)
		return 0;
	r = host_exec(h, "BEGIN IMMEDIATE");
	if (r) {
		h->txn_depth = 0;
		host_unlock(h);
	}
	return r;
}

int host_commit(struct host *h)
{
	if (h->txn_depth <= 0)
		return hv_err(HV_EINVAL, "host: commit without begin");
	int r = 0;
	bool outer = --h->txn_depth == 0;
	if (outer) {
		r = host_exec(h, "COMMIT");
		if (r)
			host_exec(h, "ROLLBACK");
	}
	/* merges requested inside the transaction run once it is durable (a merge writes files and
	 * must not depend on a transaction that could still roll back) */
	while (outer && h->ndeferred) {
		int64_t vm = h->deferred[--h->ndeferred];
		int m = r ? 0 : host_merge_pending(h, vm, NULL);
		if (!r)
			r = m;
	}
	host_unlock(h);
	return r;
}

void host_rollback(struct host *h)
{
	if (h->txn_depth <= 0)
		return;
	int n = h->txn_depth;
	h->txn_depth = 0;
	h->ndeferred = 0;
	char *msg = NULL;
	sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, &msg);
	sqlite3_free(msg);
	while (n-- > 0)
		host_unlock(h);
}

/* ---- settings ---------------------------------------------------------------------------------*/

char *host_setting_get(struct host *h, const char *key)
{
	sqlite3_stmt *st;
	if (hdb_prep(h, &st, "SELECT value FROM setting WHERE key=?1"))
		return NULL;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	char *v = NULL;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = strdup(hdb_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

int host_setting_set(struct host *h, const char *key, const char *value)
{
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st, "INSERT INTO setting(key, value) VALUES(?1, ?2)"
				 " ON CONFLICT(key) DO UPDATE SET value=excluded.value");
	if (r)
		return r;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	return hdb_done(h, st);
}

int host_setting_delete(struct host *h, const char *key)
{
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st, "DELETE FROM setting WHERE key=?1");
	if (r)
		return r;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	return hdb_done(h, st);
}

int64_t host_setting_int(struct host *h, const char *key, int64_t dflt)
{
	char *v = host_setting_get(h, key);
	if (!v)
		return dflt;
	char *end;
	long long x = strtoll(v, &end, 0);
	int64_t out = (*v && !*end) ? x : dflt;
	free(v);
	return out;
}

/* ---- clock ------------------------------------------------------------------------------------*/

uint64_t host_now(struct host *h)
{
	return (uint64_t)host_setting_int(h, "clock", 0);
}

int host_clock_advance(struct host *h, uint64_t ticks)
{
	char buf[32];
	uint64_t now = host_now(h);
	if (now + ticks < now)
		return hv_err(HV_EINVAL, "virtual clock overflow");
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)(now + ticks));
	return host_setting_set(h, "clock", buf);
}

/* ---- identities -------------------------------------------------------------------------------*/

int host_guid(struct host *h, const char *stream, struct hv_guid *out)
{
	int64_t n;
	int r = hdb_int(h, &n, 0, "SELECT counter FROM rng WHERE stream=%Q", stream);
	if (r)
		return r;
	sqlite3_stmt *st;
	r = hdb_prep(h, &st, "INSERT INTO rng(stream, counter) VALUES(?1, ?2)"
			     " ON CONFLICT(stream) DO UPDATE SET counter=excluded.counter");
	if (r)
		return r;
	sqlite3_bind_text(st, 1, stream, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, n + 1);
	r = hdb_done(h, st);
	if (r)
		return r;
	/* The n-th draw of a stream: the stream (seed, name) advanced to position 2n (a GUID takes
	 * two draws), so different seeds, streams and positions never share a GUID pool. */
	struct hv_rng rng = hv_rng_stream(h->seed, stream);
	rng.s += (uint64_t)n * 2u * 0x9e3779b97f4a7c15ull;
	*out = hv_rng_guid(&rng);
	return 0;
}

void host_guid_text(const struct hv_guid *g, char out[37])
{
	char t[HV_GUID_STRLEN + 1];
	hv_guid_format(g, t);
	for (int i = 0; i < 36; i++) {
		char c = t[i + 1];
		out[i] = (c >= 'a' && c <= 'f') ? (char)(c - 'a' + 'A') : c;
	}
	out[36] = 0;
}

int host_guid_str(struct host *h, const char *stream, char out[37])
{
	struct hv_guid g;
	int r = host_guid(h, stream, &g);
	if (!r)
		host_guid_text(&g, out);
	return r;
}

int host_vhdx_seed(struct host *h, uint64_t *seed)
{
	struct hv_guid g;
	int r = host_guid(h, "vhdx", &g);
	if (!r)
		*seed = hv_hash64(g.b, sizeof g.b, 0x5eed);
	return r;
}

/* ---- create / open ----------------------------------------------------------------------------*/

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

static int db_open(const char *dir, bool create, bool nosync, sqlite3 **out)
{
	char *path;
	if (asprintf(&path, "%s/host.db", dir) < 0)
		return hv_err(HV_ENOMEM, "out of memory");
	int fl = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, fl, NULL);
	if (rc != SQLITE_OK) {
		int r = hv_err(rc == SQLITE_CANTOPEN ? HV_ENOTFOUND : HV_EIO, "%s: %s", path,
			       db ? sqlite3_errmsg(db) : "cannot open");
		sqlite3_close(db);
		free(path);
		return r;
	}
	free(path);
	sqlite3_busy_timeout(db, 10000);
	char *msg = NULL;
	const char *prag = nosync ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA foreign_keys=ON;"
				  : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;";
	if (sqlite3_exec(db, prag, NULL, NULL, &msg) != SQLITE_OK) {
		int r = hv_err(HV_EIO, "%s/host.db: %s", dir, msg ? msg : "pragma failed");
		sqlite3_free(msg);
		sqlite3_close(db);
		return r;
	}
	*out = db;
	return 0;
}

int host_create(const char *dir, const struct host_create_opts *o)
{
	uint32_t g = o->rct_granularity ? o->rct_granularity : HOST_DEFAULT_RCT_GRANULARITY;
	if (g < 4096 || g > (16u << 20) || (g & (g - 1)))
		return hv_err(HV_EINVAL, "--rct-granularity %u: must be a power of two from 4 KiB to 16 MiB", g);
	if (mkdir(dir, 0777) && errno != EEXIST)
		return hv_err(HV_EIO, "%s: cannot create: %s", dir, strerror(errno));
	int e = dir_is_empty(dir);
	if (e < 0)
		return hv_err(HV_EIO, "%s: cannot read: %s", dir, strerror(errno));
	if (!e)
		return hv_err(HV_EINVAL, "%s: not empty (a host is created in a new or empty folder)", dir);

	sqlite3 *db;
	int r = db_open(dir, true, o->nosync, &db);
	if (r)
		return r;
	struct host h = {.dir = (char *)dir, .db = db, .seed = o->seed, .granularity = g, .nosync = o->nosync};
	r = host_begin(&h);
	if (!r)
		r = host_exec(&h, SCHEMA);
	if (!r)
		r = truth_init(db);
	char buf[64];
	struct {
		const char *k;
		unsigned long long v;
	} ints[] = {
		{"format", HOST_FORMAT_VERSION},
		{"seed", o->seed},
		{"rct.granularity", g},
		{"rct.coarse_granularity", g > HOST_DEFAULT_RCT_COARSE ? g : HOST_DEFAULT_RCT_COARSE},
		/* virtual clock starts at 2026-01-01 00:00:00 UTC (FILETIME) */
		{"clock", 134116992000000000ull},
		{"merge.block_on_extra_refpoints", 1},
	};
	for (size_t i = 0; !r && i < sizeof ints / sizeof *ints; i++) {
		snprintf(buf, sizeof buf, "%llu", ints[i].v);
		r = host_setting_set(&h, ints[i].k, buf);
	}
	if (!r)
		r = host_setting_set(&h, "host.name", "HVSIM-HOST");
	if (!r)
		r = host_setting_set(&h, "storage.root", "C:\\Hyper-V\\");
	if (!r)
		r = host_commit(&h);
	else
		host_rollback(&h);
	if (!r && sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) != SQLITE_OK)
		r = hdb_err(&h, "checkpoint");
	sqlite3_close(db);
	return r;
}

int host_open(const char *dir, unsigned flags, struct host **out)
{
	struct stat sb;
	if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
		return hv_err(HV_ENOTFOUND, "%s: no such host folder (create it with 'hvsim host create %s')",
			      dir, dir);
	struct host *h = calloc(1, sizeof *h);
	if (!h)
		return hv_err(HV_ENOMEM, "out of memory");
	h->dir = strdup(dir);
	h->nosync = flags & HOST_OPEN_NOSYNC;
	h->lock_fd = -1;
	int r = h->dir ? 0 : hv_err(HV_ENOMEM, "out of memory");
	if (!r) {
		char *p;
		if (asprintf(&p, "%s/host.db", dir) < 0)
			r = hv_err(HV_ENOMEM, "out of memory");
		else {
			if (access(p, F_OK))
				r = hv_err(HV_ENOTFOUND, "%s: not a host folder (no host.db)", dir);
			free(p);
		}
	}
	if (!r)
		r = db_open(dir, false, h->nosync, &h->db);
	int64_t fmt = 0;
	if (!r)
		r = hdb_int(h, &fmt, 0, "SELECT value FROM setting WHERE key='format'");
	if (!r && fmt != HOST_FORMAT_VERSION)
		r = hv_err(HV_EUNSUPPORTED, "%s/host.db: format %lld, this hvsim reads format %d", dir,
			   (long long)fmt, HOST_FORMAT_VERSION);
	if (!r) {
		h->seed = (uint64_t)host_setting_int(h, "seed", 0);
		h->granularity = (uint32_t)host_setting_int(h, "rct.granularity", HOST_DEFAULT_RCT_GRANULARITY);
		h->storage_root = host_setting_get(h, "storage.root");
		if (!h->storage_root)
			r = hv_err(HV_ECORRUPT, "%s/host.db: setting storage.root missing", dir);
	}
	if (!r) {
		char *p;
		if (asprintf(&p, "%s/host.db", dir) < 0)
			r = hv_err(HV_ENOMEM, "out of memory");
		else {
			h->lock_fd = open(p, O_RDONLY | O_CLOEXEC);
			free(p);
			if (h->lock_fd < 0)
				r = hv_err(HV_EIO, "%s/host.db: cannot open for locking: %s", dir, strerror(errno));
		}
	}
	if (!r && !(r = host_lock(h))) {
		r = host_recover(h);
		host_unlock(h);
	}
	if (r) {
		host_close(h);
		return r;
	}
	*out = h;
	return 0;
}

void host_close(struct host *h)
{
	if (!h)
		return;
	if (h->txn_depth)
		host_rollback(h);
	sqlite3_close(h->db);
	if (h->lock_fd >= 0)
		close(h->lock_fd);
	free(h->storage_root);
	free(h->dir);
	free(h);
}

struct sqlite3 *host_db(struct host *h) { return h->db; }
const char *host_dir(const struct host *h) { return h->dir; }
uint64_t host_seed(const struct host *h) { return h->seed; }
uint32_t host_rct_granularity(const struct host *h) { return h->granularity; }
bool host_nosync(const struct host *h) { return h->nosync; }

char *host_abs(struct host *h, const char *rel)
{
	char *p;
	if (asprintf(&p, "%s/%s", h->dir, rel) < 0) {
		hv_err(HV_ENOMEM, "out of memory");
		return NULL;
	}
	return p;
}

char *host_path_windows(struct host *h, const char *rel)
{
	size_t n = strlen(h->storage_root), m = strlen(rel);
	char *p = malloc(n + m + 1);
	if (!p)
		return NULL;
	memcpy(p, h->storage_root, n);
	for (size_t i = 0; i <= m; i++)
		p[n + i] = rel[i] == '/' ? '\\' : rel[i];
	return p;
}
