/*
 * test_repo — the backup repository as an engine and its user would notice it. An independent
 * model kept here (plain byte arrays per VM disk, and a copy of every disk at every point) is the
 * oracle: every point restores byte-exact, by callback, into a file and block by block; the
 * statistics match what the model says is new, reused and zero; a byte damaged in a pack makes
 * verify name exactly the points whose disks hold that block and reads fail with HV_ECORRUPT
 * naming the pack and offset; a session or a prune cut at any fault point (the folder copied at
 * that instant, unsynced pack tails torn off) reopens clean with every earlier point intact and
 * the next backup working; forget + prune shrink the packs and keep the rest exact; the same
 * calls give byte-identical packs and catalogs. The pack files are also parsed here from the
 * layout documented in repo_pack.c (own zstd and SHA-256 calls), and the catalog read with plain
 * SQL, independently of the library.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cmocka.h>

#include "../repo.h"

#define BS 4096u
#define NB 37u                                /* blocks per disk: 36 full, one short */
#define DISK_SIZE (36ull * BS + 1536)         /* a multiple of 512 */
#define NVM 2
#define NDISK 2
#define MAXP 64

static char tmpdir[256];

/* ---- files -----------------------------------------------------------------------------------*/

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_rf(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/hvsim-test-repo-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	(void)state;
	rm_rf(tmpdir);
	return 0;
}

static const char *path(const char *fmt, ...)
{
	static char buf[8][512];
	static int k;
	k = (k + 1) % 8;
	char name[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static uint8_t *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return b;
}

static void spit(const char *p, const void *b, size_t n)
{
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

static void copy_file(const char *from, const char *to)
{
	size_t n;
	uint8_t *b = slurp(from, &n);
	if (!b)
		return;
	spit(to, b, n);
	free(b);
}

/* What a power cut at this instant leaves: catalog.db and its WAL (never the shared-memory
 * index, which lives in RAM on a real host) and every pack file. */
static void snapshot(const char *from, const char *to)
{
	char a[600], b[600];
	rm_rf(to);
	assert_int_equal(mkdir(to, 0777), 0);
	snprintf(b, sizeof b, "%s/packs", to);
	assert_int_equal(mkdir(b, 0777), 0);
	const char *files[] = {"catalog.db", "catalog.db-wal"};
	for (int i = 0; i < 2; i++) {
		snprintf(a, sizeof a, "%s/%s", from, files[i]);
		snprintf(b, sizeof b, "%s/%s", to, files[i]);
		copy_file(a, b);
	}
	snprintf(a, sizeof a, "%s/packs", from);
	DIR *d = opendir(a);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(a, sizeof a, "%s/packs/%s", from, e->d_name);
		snprintf(b, sizeof b, "%s/packs/%s", to, e->d_name);
		copy_file(a, b);
	}
	closedir(d);
}

/* Sorted names of the files in dir/packs. */
static int list_packs(const char *dir, char names[][64], int max)
{
	char p[600];
	snprintf(p, sizeof p, "%s/packs", dir);
	DIR *d = opendir(p);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && n < max)
			snprintf(names[n++], 64, "%.63s", e->d_name);
	closedir(d);
	qsort(names, (size_t)n, 64, (int (*)(const void *, const void *))strcmp);
	return n;
}

static uint64_t packs_bytes(const char *dir)
{
	char names[256][64], p[700];
	int n = list_packs(dir, names, 256);
	uint64_t sum = 0;
	struct stat sb;
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof p, "%.400s/packs/%.63s", dir, names[i]);
		if (stat(p, &sb) == 0)
			sum += (uint64_t)sb.st_size;
	}
	return sum;
}

/* ---- the catalog read with plain SQL (the test's own connection) ----------------------------*/

static sqlite3 *cat_open(const char *dir)
{
	char p[600];
	snprintf(p, sizeof p, "%s/catalog.db", dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	return db;
}

static void cat_exec(const char *dir, const char *sql)
{
	sqlite3 *db = cat_open(dir);
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static int64_t cat_int(const char *dir, const char *sql)
{
	sqlite3 *db = cat_open(dir);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Every row of every table, rendered as text: equal dumps = equal catalog content. */
static char *cat_dump(const char *dir)
{
	static const char *tables[] = {"meta", "packs", "blocks", "points", "point_disks", "maps",
				       "sqlite_sequence"};
	sqlite3 *db = cat_open(dir);
	size_t cap = 1 << 16, n = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	for (size_t t = 0; t < sizeof tables / sizeof *tables; t++) {
		char sql[128];
		snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY 1, 2", tables[t]);
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				char cell[200];
				if (sqlite3_column_type(st, c) == SQLITE_BLOB) {
					const uint8_t *b = sqlite3_column_blob(st, c);
					int k = sqlite3_column_bytes(st, c), m = 0;
					for (int i = 0; i < k && m < 190; i++)
						m += snprintf(cell + m, sizeof cell - (size_t)m, "%02x", b[i]);
				} else {
					snprintf(cell, sizeof cell, "%s",
						 (const char *)sqlite3_column_text(st, c));
				}
				size_t l = strlen(cell) + strlen(tables[t]) + 4;
				while (cap - n < l + 1) {
					cap *= 2;
					out = realloc(out, cap);
					assert_non_null(out);
				}
				n += (size_t)sprintf(out + n, "%s|%s%c", tables[t], cell,
						     c + 1 == sqlite3_column_count(st) ? '\n' : ' ');
			}
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	out[n] = 0;
	return out;
}

/* ---- the model -------------------------------------------------------------------------------*/

struct mpoint {
	int64_t id;
	int vm;
	bool alive;  /* listed by the repository */
	bool stored; /* its blocks are in the repository (alive, or forgotten but not pruned) */
	uint8_t *img[NDISK];
};

struct model {
	struct hv_rng rng;
	uint8_t *cur[NVM][NDISK];
	bool dirty[NVM][NDISK][NB];
	int64_t last_point[NVM];
	int64_t last_pd[NVM][NDISK];
	int64_t vclock;
	struct mpoint pts[MAXP];
	int npts;
	/* every distinct non-zero block content the repository holds (SHA-256, computed here) */
	uint8_t (*seen)[32];
	size_t nseen, capseen;
};

static const char *VM_NAME[NVM] = {"alpha", "beta"};
static const char *VM_ID[NVM] = {"6F0E1C2A-1111-4A5B-9C3D-0123456789AB",
				 "6F0E1C2A-2222-4A5B-9C3D-0123456789AB"};
static const char *DISK_NAME[NDISK] = {"system.vhdx", "data.vhdx"};

static uint32_t blen(uint64_t idx) { return idx + 1 < NB ? BS : (uint32_t)(DISK_SIZE - idx * BS); }

static bool zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned len = 0;
	assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
	assert_int_equal(len, 32);
}

/* One block of content: zeros, incompressible noise, compressible text, a copy of another
 * block somewhere (dedup across disks and VMs), or mostly zeros. */
static void fill_block(struct model *m, uint8_t *dst, uint32_t len)
{
	uint64_t kind = hv_rng_next(&m->rng) % 10;
	if (kind < 2) {
		memset(dst, 0, len);
	} else if (kind < 4) {
		hv_rng_fill(&m->rng, dst, len);
	} else if (kind < 7) {
		uint64_t seed = hv_rng_next(&m->rng) % 50;
		for (uint32_t i = 0; i < len; i++)
			dst[i] = (uint8_t)("the quick brown fox jumps "[(i + seed) % 26] + (i / 97 + seed) % 3);
	} else if (kind < 9) {
		int v = (int)(hv_rng_next(&m->rng) % NVM), d = (int)(hv_rng_next(&m->rng) % NDISK);
		uint64_t idx = hv_rng_next(&m->rng) % (NB - 1);
		uint8_t tmp[BS];
		memcpy(tmp, m->cur[v][d] + idx * BS, BS);
		memcpy(dst, tmp, len);
	} else {
		memset(dst, 0, len);
		for (int i = 0; i < 5; i++)
			dst[hv_rng_next(&m->rng) % len] = (uint8_t)(1 + hv_rng_next(&m->rng) % 255);
	}
}

static void model_init(struct model *m, uint64_t seed)
{
	memset(m, 0, sizeof *m);
	m->rng = hv_rng_stream(seed, "test_repo");
	for (int v = 0; v < NVM; v++)
		for (int d = 0; d < NDISK; d++) {
			m->cur[v][d] = calloc(1, DISK_SIZE);
			assert_non_null(m->cur[v][d]);
		}
	for (int v = 0; v < NVM; v++)
		for (int d = 0; d < NDISK; d++)
			for (uint64_t i = 0; i < NB; i++)
				fill_block(m, m->cur[v][d] + i * BS, blen(i));
}

static void model_free(struct model *m)
{
	for (int v = 0; v < NVM; v++)
		for (int d = 0; d < NDISK; d++)
			free(m->cur[v][d]);
	for (int k = 0; k < m->npts; k++)
		for (int d = 0; d < NDISK; d++)
			free(m->pts[k].img[d]);
	free(m->seen);
}

/* The guest writes n random blocks of a VM. */
static void mutate(struct model *m, int vm, int n)
{
	for (int k = 0; k < n; k++) {
		int d = (int)(hv_rng_next(&m->rng) % NDISK);
		uint64_t idx = hv_rng_next(&m->rng) % NB;
		fill_block(m, m->cur[vm][d] + idx * BS, blen(idx));
		m->dirty[vm][d][idx] = true;
	}
}

static bool seen(struct model *m, const uint8_t h[32])
{
	for (size_t i = 0; i < m->nseen; i++)
		if (!memcmp(m->seen[i], h, 32))
			return true;
	return false;
}

static void see(struct model *m, const uint8_t h[32])
{
	if (m->nseen == m->capseen) {
		m->capseen = m->capseen ? 2 * m->capseen : 256;
		m->seen = realloc(m->seen, m->capseen * 32);
		assert_non_null(m->seen);
	}
	memcpy(m->seen[m->nseen++], h, 32);
}

/* The model's view of what the repository stores: every distinct non-zero block of every point
 * still stored (after a crash or a prune this is all that is left). */
static void reseen(struct model *m)
{
	m->nseen = 0;
	for (int k = 0; k < m->npts; k++)
		for (int d = 0; m->pts[k].stored && d < NDISK; d++)
			for (uint64_t i = 0; i < NB; i++) {
				const uint8_t *b = m->pts[k].img[d] + i * BS;
				uint8_t h[32];
				if (zero(b, blen(i)))
					continue;
				sha256(b, blen(i), h);
				if (!seen(m, h))
					see(m, h);
			}
}

/* After a prune: only the points still listed keep blocks. */
static void pruned(struct model *m)
{
	for (int k = 0; k < m->npts; k++)
		m->pts[k].stored = m->pts[k].alive;
	reseen(m);
}

/* The stats a session must report, from the model alone. */
struct expect {
	uint64_t put, fresh, reused, zero, bytes_new, bytes_dedup;
};

static void record_point(struct repo *r, struct model *m, int vm, int64_t pid)
{
	assert_true(m->npts < MAXP);
	struct mpoint *p = &m->pts[m->npts++];
	p->id = pid;
	p->vm = vm;
	p->alive = p->stored = true;
	for (int d = 0; d < NDISK; d++) {
		p->img[d] = malloc(DISK_SIZE);
		assert_non_null(p->img[d]);
		memcpy(p->img[d], m->cur[vm][d], DISK_SIZE);
		memset(m->dirty[vm][d], 0, sizeof m->dirty[vm][d]);
	}
	struct repo_point_info *pi;
	assert_int_equal(repo_point_get(r, pid, &pi), 0);
	assert_int_equal(pi->ndisks, NDISK);
	for (int d = 0; d < NDISK; d++) {
		assert_string_equal(pi->disks[d].name, DISK_NAME[d]);
		m->last_pd[vm][d] = pi->disks[d].id;
	}
	repo_points_free(pi, 1);
	m->last_point[vm] = pid;
}

/* Backs up one VM: full (every block put) or incremental (the dirty blocks, the rest copied from
 * the previous point). Returns the first error; on success records the point in the model and
 * checks the stats against the model's own count. A fault makes it return HV_ECRASHED. */
static int backup(struct repo *r, struct model *m, int vm, bool full, struct repo_stats *out)
{
	full = full || !m->last_point[vm];
	struct repo_point_desc pd = {
		.vm_name = VM_NAME[vm],
		.vm_id = VM_ID[vm],
		.type = full ? REPO_POINT_FULL : REPO_POINT_INCREMENTAL,
		.reason = full ? "full backup requested" : "changes since the previous point",
		.vtime = ++m->vclock,
		.parent = full ? 0 : m->last_point[vm],
		.ref_point = "Microsoft:rp-pending",
	};
	struct repo_session *s;
	int e = repo_begin(r, &pd, &s);
	if (e)
		return e;
	struct expect x = {0};
	/* the model's view of what the repository holds, updated only if this commits */
	size_t seen_before = m->nseen;
	for (int d = 0; d < NDISK && !e; d++) {
		char rct[64];
		snprintf(rct, sizeof rct, "rctX:%d:%d:%lld", vm, d, (long long)m->vclock);
		struct repo_disk_desc dd = {.name = DISK_NAME[d], .disk_id = DISK_NAME[d],
					    .rct_id = "", .virtual_size = DISK_SIZE,
					    .logical_sector = 512};
		uint32_t h;
		if ((e = repo_session_add_disk(s, &dd, full ? 0 : m->last_pd[vm][d], &h)))
			break;
		assert_int_equal(h, (uint32_t)d);
		for (uint64_t i = 0; i < NB && !e; i++) {
			if (!full && !m->dirty[vm][d][i])
				continue;
			const uint8_t *b = m->cur[vm][d] + i * BS;
			uint32_t len = blen(i);
			x.put++;
			if (zero(b, len)) {
				x.zero++;
			} else {
				uint8_t hh[32];
				sha256(b, len, hh);
				if (seen(m, hh)) {
					x.reused++;
					x.bytes_dedup += len;
				} else {
					x.fresh++;
					x.bytes_new += len;
					see(m, hh);
				}
			}
			e = repo_session_put_block(s, (uint32_t)d, i, b, len);
		}
		if (!e)
			e = repo_session_set_rct_id(s, (uint32_t)d, rct);
	}
	if (!e)
		e = repo_session_set_ref_point(s, "Microsoft:rp-final");
	if (e) {
		m->nseen = seen_before;
		repo_session_abort(s);
		return e;
	}
	int64_t pid = 0;
	struct repo_stats st;
	e = repo_session_commit(s, &pid, &st);
	if (e) {
		m->nseen = seen_before;
		return e;
	}
	assert_int_equal(st.blocks_put, x.put);
	assert_int_equal(st.blocks_zero, x.zero);
	assert_int_equal(st.blocks_new, x.fresh);
	assert_int_equal(st.blocks_reused, x.reused);
	assert_int_equal(st.bytes_new_raw, x.bytes_new);
	assert_int_equal(st.bytes_dedup, x.bytes_dedup);
	assert_true(st.bytes_stored <= st.bytes_new_raw);
	assert_int_equal(st.bytes_packed >= st.bytes_stored + 52 * st.blocks_new, 1);
	if (out)
		*out = st;
	record_point(r, m, vm, pid);
	return 0;
}

/* ---- restore checks --------------------------------------------------------------------------*/

struct sink {
	uint8_t *buf;
	uint64_t size, next;
	uint64_t writes;
};

static int sink_write(void *ctx, uint64_t off, const void *b, size_t len)
{
	struct sink *s = ctx;
	assert_true(off >= s->next);     /* ascending */
	assert_true(off % BS == 0);
	assert_true(off + len <= s->size);
	assert_false(zero(b, len));       /* zero blocks are skipped */
	memcpy(s->buf + off, b, len);
	s->next = off + len;
	s->writes++;
	return 0;
}

static void check_point(struct repo *r, const struct mpoint *p)
{
	uint8_t *buf = malloc(DISK_SIZE);
	assert_non_null(buf);
	for (int d = 0; d < NDISK; d++) {
		memset(buf, 0, DISK_SIZE);
		struct sink s = {buf, DISK_SIZE, 0, 0};
		int e = repo_restore_disk(r, p->id, DISK_NAME[d], sink_write, &s);
		if (e)
			fail_msg("restore of point %lld disk %s: %s", (long long)p->id, DISK_NAME[d],
				 hv_errmsg());
		if (memcmp(buf, p->img[d], DISK_SIZE))
			fail_msg("point %lld disk %s restores different bytes", (long long)p->id,
				 DISK_NAME[d]);
	}
	free(buf);
}

static void check_all(struct repo *r, const struct model *m)
{
	size_t alive = 0;
	for (int k = 0; k < m->npts; k++)
		if (m->pts[k].alive) {
			check_point(r, &m->pts[k]);
			alive++;
		}
	struct repo_point_info *pts;
	size_t n;
	assert_int_equal(repo_list_points(r, NULL, &pts, &n), 0);
	assert_int_equal(n, alive);
	size_t j = 0;
	for (int k = 0; k < m->npts; k++)
		if (m->pts[k].alive) {
			assert_int_equal(pts[j].id, m->pts[k].id);
			assert_string_equal(pts[j].vm_name, VM_NAME[m->pts[k].vm]);
			j++;
		}
	repo_points_free(pts, n);
}

struct problems {
	int n, npoints;
	int64_t points[MAXP];
	char first[1024];
};

static void on_problem(void *ctx, const struct repo_problem *p)
{
	struct problems *pr = ctx;
	if (!pr->n++)
		snprintf(pr->first, sizeof pr->first, "%s", p->message);
	if (p->kind == REPO_PROBLEM_POINT && pr->npoints < MAXP)
		pr->points[pr->npoints++] = p->point;
}

static void verify_clean(struct repo *r)
{
	struct problems pr = {0};
	struct repo_verify_result res;
	assert_int_equal(repo_verify(r, 0, on_problem, &pr, &res), 0);
	if (pr.n)
		fail_msg("verify found %d problems, first: %s", pr.n, pr.first);
	assert_int_equal(res.blocks_bad, 0);
	assert_int_equal(res.points_damaged, 0);
	assert_int_equal(res.pack_problems, 0);
	assert_int_equal(res.catalog_problems, 0);
}

static struct repo *open_repo(const char *dir, unsigned flags, uint64_t pack_size)
{
	struct repo_opts o = {.block_size = BS, .pack_size = pack_size};
	struct repo *r = NULL;
	int e = repo_open(dir, flags, &o, &r);
	if (e)
		fail_msg("open %s: %s", dir, hv_errmsg());
	return r;
}

/* The files in packs/ are exactly the packs the catalog names (nothing orphaned or missing). */
static void packs_match_catalog(const char *dir)
{
	char names[256][64];
	int n = list_packs(dir, names, 256);
	assert_int_equal(n, cat_int(dir, "SELECT COUNT(*) FROM packs"));
	for (int i = 0; i < n; i++) {
		char sql[200];
		snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM packs WHERE printf('%%08x.pack', id) = '%.63s'",
			 names[i]);
		assert_int_equal(cat_int(dir, sql), 1);
	}
}

/* Two VMs, a full and `incr` incrementals each. */
static void build(struct repo *r, struct model *m, int incr)
{
	for (int v = 0; v < NVM; v++)
		assert_int_equal(backup(r, m, v, true, NULL), 0);
	for (int k = 0; k < incr; k++)
		for (int v = 0; v < NVM; v++) {
			mutate(m, v, 6 + k % 5);
			assert_int_equal(backup(r, m, v, false, NULL), 0);
		}
}

/* ---- tests -----------------------------------------------------------------------------------*/

static void test_backup_restore_model(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 1);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE, 64 << 10);
	build(r, &m, 5);
	check_all(r, &m);

	/* into a file: sparse, the right size */
	const struct mpoint *p = &m.pts[m.npts - 1];
	char img[512];
	snprintf(img, sizeof img, "%s", path("restored.raw"));
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "junk", 4, 0), 4); /* an old file is emptied first */
	assert_int_equal(repo_restore_disk_fd(r, p->id, DISK_NAME[1], fd), 0);
	close(fd);
	size_t n;
	uint8_t *got = slurp(img, &n);
	assert_int_equal(n, DISK_SIZE);
	assert_memory_equal(got, p->img[1], DISK_SIZE);
	free(got);

	/* block by block, with the short last block */
	uint8_t buf[BS];
	for (int k = 0; k < m.npts; k += 3)
		for (uint64_t i = 0; i < NB; i++) {
			size_t len = 0;
			assert_int_equal(repo_read_block(r, m.pts[k].id, DISK_NAME[0], i, buf, sizeof buf,
							 &len), 0);
			assert_int_equal(len, blen(i));
			assert_memory_equal(buf, m.pts[k].img[0] + i * BS, len);
		}

	/* the listing: oldest first, every field as given */
	struct repo_point_info *pts;
	size_t np;
	assert_int_equal(repo_list_points(r, "beta", &pts, &np), 0);
	assert_int_equal(np, 6);
	assert_int_equal(pts[0].type, REPO_POINT_FULL);
	assert_int_equal(pts[0].parent, 0);
	assert_string_equal(pts[0].vm_id, VM_ID[1]);
	assert_string_equal(pts[0].reason, "full backup requested");
	for (size_t i = 1; i < np; i++) {
		assert_int_equal(pts[i].type, REPO_POINT_INCREMENTAL);
		assert_int_equal(pts[i].parent, pts[i - 1].id);
		assert_true(pts[i].vtime > pts[i - 1].vtime);
		assert_string_equal(pts[i].ref_point, "Microsoft:rp-final");
		assert_int_equal(pts[i].ndisks, 2);
		assert_string_equal(pts[i].disks[1].name, "data.vhdx");
		assert_int_equal(pts[i].disks[1].virtual_size, DISK_SIZE);
		assert_int_equal(pts[i].disks[1].block_size, BS);
		assert_int_equal(pts[i].disks[1].logical_sector, 512);
		assert_int_equal(pts[i].disks[1].blocks, NB);
		assert_int_equal(strncmp(pts[i].disks[1].rct_id, "rctX:1:1:", 9), 0);
		uint64_t nz = 0;
		for (uint64_t b = 0; b < NB; b++)
			nz += !zero(m.pts[2 * i + 1].img[1] + b * BS, blen(b));
		assert_int_equal(pts[i].disks[1].blocks_nonzero, nz);
	}
	repo_points_free(pts, np);
	verify_clean(r);
	repo_close(r);

	/* it all survives a reopen, read-only */
	r = open_repo(dir, REPO_OPEN_RDONLY, 0);
	check_all(r, &m);
	verify_clean(r);
	repo_close(r);
	model_free(&m);
}

struct mapctx {
	const uint8_t *img;
	uint64_t next;
	uint64_t n;
};

static int map_cb(void *ctx, uint64_t idx, const uint8_t hash[32], uint32_t raw_len)
{
	struct mapctx *c = ctx;
	/* every index skipped must be zero in the model */
	for (uint64_t i = c->next; i < idx; i++)
		assert_true(zero(c->img + i * BS, blen(i)));
	uint8_t h[32];
	sha256(c->img + idx * BS, blen(idx), h);
	assert_memory_equal(h, hash, 32);
	assert_int_equal(raw_len, blen(idx));
	c->next = idx + 1;
	c->n++;
	return 0;
}

static int map_stop(void *ctx, uint64_t idx, const uint8_t hash[32], uint32_t raw_len)
{
	(void)ctx;
	(void)idx;
	(void)hash;
	(void)raw_len;
	return 42;
}

static void test_map_iteration(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 2);
	struct repo *r = open_repo(path("repo"), REPO_OPEN_CREATE, 0);
	build(r, &m, 2);
	for (int k = 0; k < m.npts; k++)
		for (int d = 0; d < NDISK; d++) {
			struct mapctx c = {m.pts[k].img[d], 0, 0};
			assert_int_equal(repo_point_disk_map(r, m.pts[k].id, DISK_NAME[d], map_cb, &c), 0);
			for (uint64_t i = c.next; i < NB; i++)
				assert_true(zero(m.pts[k].img[d] + i * BS, blen(i)));
		}
	assert_int_equal(repo_point_disk_map(r, m.pts[0].id, DISK_NAME[0], map_stop, NULL), 42);
	assert_int_equal(repo_point_disk_map(r, 999, DISK_NAME[0], map_cb, NULL), HV_ENOTFOUND);
	assert_int_equal(repo_point_disk_map(r, m.pts[0].id, "nope.vhdx", map_cb, NULL), HV_ENOTFOUND);
	assert_non_null(strstr(hv_errmsg(), "nope.vhdx"));
	repo_close(r);
	model_free(&m);
}

static void put_disk(struct repo_session *s, uint32_t h, const uint8_t *img)
{
	for (uint64_t i = 0; i < NB; i++)
		assert_int_equal(repo_session_put_block(s, h, i, img + i * BS, blen(i)), 0);
}

static void test_dedup_stats(void **state)
{
	(void)state;
	struct repo *r = open_repo(path("repo"), REPO_OPEN_CREATE, 0);
	uint8_t *img = calloc(1, DISK_SIZE);
	assert_non_null(img);
	struct hv_rng g = hv_rng_stream(3, "dedup");
	/* blocks 0..9 noise, 10..19 the same as 0..9, 20..29 zero, the rest text */
	hv_rng_fill(&g, img, 10 * BS);
	memcpy(img + 10 * BS, img, 10 * BS);
	for (uint64_t i = 30 * BS; i < DISK_SIZE; i++)
		img[i] = (uint8_t)("compressible "[i % 13] + (i / BS) % 7);
	struct repo_point_desc pd = {.vm_name = "alpha", .type = REPO_POINT_FULL, .vtime = 1};
	struct repo_disk_desc dd = {.name = "a.vhdx", .virtual_size = DISK_SIZE, .logical_sector = 512};
	struct repo_session *s;
	uint32_t h;
	struct repo_stats st;
	int64_t p1, p2, p3;

	assert_int_equal(repo_begin(r, &pd, &s), 0);
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), 0);
	put_disk(s, h, img);
	assert_int_equal(repo_session_commit(s, &p1, &st), 0);
	assert_int_equal(st.blocks_put, NB);
	assert_int_equal(st.blocks_zero, 10);
	assert_int_equal(st.blocks_reused, 10);
	assert_int_equal(st.blocks_new, NB - 20);
	assert_int_equal(st.bytes_dedup, 10 * BS);
	assert_int_equal(st.bytes_put, DISK_SIZE);
	assert_int_equal(st.bytes_new_raw, DISK_SIZE - 20 * BS);
	/* noise is stored raw, text compresses */
	assert_true(st.bytes_stored < st.bytes_new_raw);
	assert_true(st.bytes_stored >= 10 * BS);
	assert_int_equal(cat_int(path("repo"), "SELECT COUNT(*) FROM blocks WHERE flags = 0"), 10);
	assert_int_equal(cat_int(path("repo"), "SELECT COUNT(*) FROM blocks WHERE flags = 1"), NB - 30);
	assert_int_equal(st.packs_written, 1);

	/* the same disk in another VM, as two disks: nothing new at all */
	pd.vm_name = "beta";
	assert_int_equal(repo_begin(r, &pd, &s), 0);
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), 0);
	dd.name = "b.vhdx";
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), 0);
	put_disk(s, 0, img);
	put_disk(s, 1, img);
	assert_int_equal(repo_session_commit(s, &p2, &st), 0);
	assert_int_equal(st.blocks_new, 0);
	assert_int_equal(st.bytes_stored, 0);
	assert_int_equal(st.bytes_packed, 0);
	assert_int_equal(st.packs_written, 0);
	assert_int_equal(st.blocks_reused, 2 * (NB - 10));
	assert_int_equal(st.bytes_dedup, 2 * (DISK_SIZE - 10 * BS));
	assert_int_equal(st.blocks_zero, 20);

	/* an incremental that puts unchanged data again: reused, and the map is the parent's */
	struct repo_point_info *pi;
	assert_int_equal(repo_point_get(r, p1, &pi), 0);
	pd = (struct repo_point_desc){.vm_name = "alpha", .type = REPO_POINT_INCREMENTAL,
				      .vtime = 3, .parent = p1};
	dd.name = "a.vhdx";
	assert_int_equal(repo_begin(r, &pd, &s), 0);
	assert_int_equal(repo_session_add_disk(s, &dd, pi->disks[0].id, &h), 0);
	assert_int_equal(repo_session_put_block(s, h, 3, img + 3 * BS, BS), 0);
	assert_int_equal(repo_session_commit(s, &p3, &st), 0);
	repo_points_free(pi, 1);
	assert_int_equal(st.blocks_put, 1);
	assert_int_equal(st.blocks_reused, 1);
	assert_int_equal(st.blocks_new, 0);
	uint8_t *buf = calloc(1, DISK_SIZE);
	struct sink sk = {buf, DISK_SIZE, 0, 0};
	assert_int_equal(repo_restore_disk(r, p3, "a.vhdx", sink_write, &sk), 0);
	assert_memory_equal(buf, img, DISK_SIZE);
	assert_int_equal(sk.writes, NB - 10); /* the zero blocks were skipped */

	/* a block stored once, named by 5 map rows */
	assert_int_equal(cat_int(path("repo"), "SELECT COUNT(*) FROM blocks"), NB - 20);
	assert_int_equal(cat_int(path("repo"), "SELECT COUNT(*) FROM maps WHERE block ="
					       " (SELECT block FROM maps LIMIT 1)"), 8);
	free(buf);
	free(img);
	repo_close(r);
}

static void test_incremental_zeroes_and_overwrites(void **state)
{
	(void)state;
	struct repo *r = open_repo(path("repo"), REPO_OPEN_CREATE, 0);
	uint8_t *img = malloc(DISK_SIZE);
	struct hv_rng g = hv_rng_stream(4, "zeroes");
	hv_rng_fill(&g, img, DISK_SIZE);
	struct repo_point_desc pd = {.vm_name = "alpha", .type = REPO_POINT_FULL};
	struct repo_disk_desc dd = {.name = "a", .virtual_size = DISK_SIZE, .logical_sector = 4096};
	struct repo_session *s;
	uint32_t h;
	int64_t p1, p2;
	assert_int_equal(repo_session_add_disk(NULL, &dd, 0, &h), HV_EINVAL);
	dd.logical_sector = 512;
	assert_int_equal(repo_begin(r, &pd, &s), 0);
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), 0);
	put_disk(s, h, img);
	/* putting an index twice keeps the last */
	uint8_t other[BS];
	memset(other, 7, BS);
	assert_int_equal(repo_session_put_block(s, h, 5, other, BS), 0);
	memcpy(img + 5 * BS, other, BS);
	assert_int_equal(repo_session_commit(s, &p1, NULL), 0);

	struct repo_point_info *pi;
	assert_int_equal(repo_point_get(r, p1, &pi), 0);
	pd = (struct repo_point_desc){.vm_name = "alpha", .type = REPO_POINT_INCREMENTAL, .parent = p1};
	assert_int_equal(repo_begin(r, &pd, &s), 0);
	assert_int_equal(repo_session_add_disk(s, &dd, pi->disks[0].id, &h), 0);
	repo_points_free(pi, 1);
	uint8_t *img2 = malloc(DISK_SIZE);
	memcpy(img2, img, DISK_SIZE);
	memset(img2 + 7 * BS, 0, BS); /* a block trimmed to zero */
	memset(img2 + 36 * BS, 0, 1536); /* the short last block too */
	memset(img2 + 9 * BS, 9, BS);
	assert_int_equal(repo_session_put_block(s, h, 7, img2 + 7 * BS, BS), 0);
	assert_int_equal(repo_session_put_block(s, h, 36, img2 + 36 * BS, 1536), 0);
	assert_int_equal(repo_session_put_block(s, h, 9, img2 + 9 * BS, BS), 0);
	assert_int_equal(repo_session_commit(s, &p2, NULL), 0);

	uint8_t *buf = calloc(1, DISK_SIZE);
	struct sink sk = {buf, DISK_SIZE, 0, 0};
	assert_int_equal(repo_restore_disk(r, p2, "a", sink_write, &sk), 0);
	assert_memory_equal(buf, img2, DISK_SIZE);
	memset(buf, 0, DISK_SIZE);
	sk = (struct sink){buf, DISK_SIZE, 0, 0};
	assert_int_equal(repo_restore_disk(r, p1, "a", sink_write, &sk), 0);
	assert_memory_equal(buf, img, DISK_SIZE);
	size_t len;
	assert_int_equal(repo_read_block(r, p2, "a", 7, buf, BS, &len), 0);
	assert_true(zero(buf, BS));
	assert_int_equal(repo_read_block(r, p2, "a", 36, buf, BS, &len), 0);
	assert_int_equal(len, 1536);
	assert_int_equal(repo_read_block(r, p2, "a", 36, buf, 1000, &len), HV_EINVAL);
	assert_int_equal(repo_read_block(r, p2, "a", NB, buf, BS, &len), HV_EINVAL);
	free(buf);
	free(img);
	free(img2);
	repo_close(r);
}

static void test_api_misuse(void **state)
{
	(void)state;
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE, 0);
	struct repo_session *s, *s2;
	uint32_t h;
	uint8_t blk[BS];
	memset(blk, 1, BS);
	struct repo_point_desc full = {.vm_name = "alpha", .type = REPO_POINT_FULL};
	struct repo_point_desc bad = full;
	bad.parent = 3;
	assert_int_equal(repo_begin(r, &bad, &s), HV_EINVAL);
	bad = full;
	bad.type = REPO_POINT_INCREMENTAL;
	assert_int_equal(repo_begin(r, &bad, &s), HV_EINVAL);
	bad.parent = 77;
	assert_int_equal(repo_begin(r, &bad, &s), HV_ENOTFOUND);
	bad = full;
	bad.vm_name = "";
	assert_int_equal(repo_begin(r, &bad, &s), HV_EINVAL);
	bad = full;
	bad.type = 9;
	assert_int_equal(repo_begin(r, &bad, &s), HV_EINVAL);

	assert_int_equal(repo_begin(r, &full, &s), 0);
	assert_int_equal(repo_begin(r, &full, &s2), HV_EINVAL); /* one session per handle */
	assert_int_equal(repo_prune(r, NULL), HV_EINVAL);
	struct repo_disk_desc dd = {.name = "a", .virtual_size = DISK_SIZE, .logical_sector = 512};
	assert_int_equal(repo_session_put_block(s, 0, 0, blk, BS), HV_EINVAL); /* no disk yet */
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), 0);
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), HV_EINVAL);    /* same name */
	assert_non_null(strstr(hv_errmsg(), "already added"));
	dd.name = "b";
	dd.virtual_size = 1000; /* not a multiple of the sector */
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), HV_EINVAL);
	dd.virtual_size = 0;
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), HV_EINVAL);
	dd.virtual_size = DISK_SIZE;
	assert_int_equal(repo_session_add_disk(s, &dd, 12345, &h), HV_ENOTFOUND);
	assert_int_equal(repo_session_put_block(s, 0, NB, blk, BS), HV_EINVAL);
	assert_int_equal(repo_session_put_block(s, 0, 0, blk, BS - 1), HV_EINVAL);
	assert_int_equal(repo_session_put_block(s, 0, 36, blk, BS), HV_EINVAL); /* short block */
	assert_int_equal(repo_session_put_block(s, 0, 0, NULL, BS), HV_EINVAL);
	assert_int_equal(repo_session_put_block(s, 0, 0, blk, BS), 0); /* still usable */
	int64_t p1;
	assert_int_equal(repo_session_commit(s, &p1, NULL), 0);

	/* parent of another size */
	struct repo_point_info *pi;
	assert_int_equal(repo_point_get(r, p1, &pi), 0);
	struct repo_point_desc inc = {.vm_name = "alpha", .type = REPO_POINT_INCREMENTAL, .parent = p1};
	assert_int_equal(repo_begin(r, &inc, &s), 0);
	dd = (struct repo_disk_desc){.name = "a", .virtual_size = DISK_SIZE * 2, .logical_sector = 512};
	assert_int_equal(repo_session_add_disk(s, &dd, pi->disks[0].id, &h), HV_EMISMATCH);
	repo_points_free(pi, 1);
	/* no disks: nothing to commit, and the session is gone */
	assert_int_equal(repo_session_commit(s, &p1, NULL), HV_EINVAL);
	repo_session_abort(NULL);

	assert_int_equal(repo_point_get(r, 999, &pi), HV_ENOTFOUND);
	assert_int_equal(repo_forget(r, 0, NULL), HV_EINVAL);
	assert_int_equal(repo_forget_point(r, 999), HV_ENOTFOUND);
	struct repo_verify_result res;
	assert_int_equal(repo_verify(r, 999, NULL, NULL, &res), HV_ENOTFOUND);
	repo_close(r);

	/* read-only handles do not write */
	r = open_repo(dir, REPO_OPEN_RDONLY, 0);
	assert_int_equal(repo_begin(r, &full, &s), HV_EINVAL);
	assert_int_equal(repo_prune(r, NULL), HV_EINVAL);
	assert_int_equal(repo_forget(r, 1, NULL), HV_EINVAL);
	repo_close(r);
	repo_close(NULL);
}

static void test_abort_leaves_nothing(void **state)
{
	(void)state;
	struct model m, m2;
	model_init(&m, 5);
	model_init(&m2, 5);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("a"));
	char dir2[512];
	snprintf(dir2, sizeof dir2, "%s", path("b"));
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE, 16 << 10);
	struct repo *r2 = open_repo(dir2, REPO_OPEN_CREATE, 16 << 10);
	build(r, &m, 1);
	build(r2, &m2, 1);
	char before[256][64], after[256][64];
	int nb = list_packs(dir, before, 256);
	char *dump = cat_dump(dir);

	/* a session that stored blocks in several packs, then aborted */
	struct repo_point_desc pd = {.vm_name = "gamma", .type = REPO_POINT_FULL};
	struct repo_disk_desc dd = {.name = "x", .virtual_size = DISK_SIZE, .logical_sector = 512};
	struct repo_session *s;
	uint32_t h;
	uint8_t *noise = malloc(DISK_SIZE);
	struct hv_rng g = hv_rng_stream(5, "abort");
	hv_rng_fill(&g, noise, DISK_SIZE);
	assert_int_equal(repo_begin(r, &pd, &s), 0);
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), 0);
	put_disk(s, h, noise);
	struct repo_stats st;
	repo_session_stats(s, &st);
	assert_true(st.packs_written >= 2);
	repo_session_abort(s);
	free(noise);

	int na = list_packs(dir, after, 256);
	assert_int_equal(na, nb);
	for (int i = 0; i < nb; i++)
		assert_string_equal(before[i], after[i]);
	char *dump2 = cat_dump(dir);
	assert_string_equal(dump, dump2);
	free(dump);
	free(dump2);

	/* and the next backup is the one the repository without the abort makes */
	mutate(&m, 0, 5);
	mutate(&m2, 0, 5);
	assert_int_equal(backup(r, &m, 0, false, NULL), 0);
	assert_int_equal(backup(r2, &m2, 0, false, NULL), 0);
	check_all(r, &m);
	repo_close(r);
	repo_close(r2);
	dump = cat_dump(dir);
	dump2 = cat_dump(dir2);
	assert_string_equal(dump, dump2);
	free(dump);
	free(dump2);
	model_free(&m);
	model_free(&m2);
}

/* ---- verify and damage -----------------------------------------------------------------------*/

/* A block some but not all points need: its record offset, and those points (sorted). */
static int64_t pick_shared_block(const char *dir, int64_t *pack, int64_t *off, int64_t *stored,
				 int64_t *users, int *nusers)
{
	sqlite3 *db = cat_open(dir);
	sqlite3_stmt *st;
	int64_t total = cat_int(dir, "SELECT COUNT(*) FROM points");
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT b.id, b.pack, b.offset, b.stored_len,"
					    " COUNT(DISTINCT pd.point) AS n FROM blocks b"
					    " JOIN maps m ON m.block = b.id"
					    " JOIN point_disks pd ON pd.id = m.point_disk"
					    " WHERE b.flags = 1 GROUP BY b.id HAVING n > 1 AND n < ?1"
					    " ORDER BY n DESC, b.id LIMIT 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, total);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t id = sqlite3_column_int64(st, 0);
	*pack = sqlite3_column_int64(st, 1);
	*off = sqlite3_column_int64(st, 2);
	*stored = sqlite3_column_int64(st, 3);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT DISTINCT pd.point FROM maps m JOIN point_disks pd"
					    " ON pd.id = m.point_disk WHERE m.block = ?1 ORDER BY 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	*nusers = 0;
	while (sqlite3_step(st) == SQLITE_ROW)
		users[(*nusers)++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return id;
}

/* (point, disk, index) of one use of block `id`. */
static void find_use(const char *dir, int64_t id, int64_t point, char *disk, uint64_t *idx)
{
	sqlite3 *db = cat_open(dir);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT pd.name, m.idx FROM maps m JOIN point_disks pd"
					    " ON pd.id = m.point_disk WHERE m.block = ?1 AND pd.point = ?2"
					    " LIMIT 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, point);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(disk, 64, "%s", (const char *)sqlite3_column_text(st, 0));
	*idx = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void flip_byte(const char *file, uint64_t off)
{
	int fd = open(file, O_RDWR);
	assert_true(fd >= 0);
	uint8_t c;
	assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

static void test_verify_names_damaged_points(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 6);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE, 32 << 10);
	build(r, &m, 4);
	verify_clean(r);
	struct repo_verify_result res;
	assert_int_equal(repo_verify(r, 0, NULL, NULL, &res), 0);
	assert_int_equal(res.points_checked, (uint64_t)m.npts);
	assert_int_equal(res.blocks_checked, cat_int(dir, "SELECT COUNT(*) FROM blocks"));
	assert_int_equal(res.packs_checked, cat_int(dir, "SELECT COUNT(*) FROM packs"));

	int64_t pack, off, stored, users[MAXP];
	int nusers;
	int64_t id = pick_shared_block(dir, &pack, &off, &stored, users, &nusers);
	char pname[64], pfile[600];
	snprintf(pname, sizeof pname, "packs/%08llx.pack", (unsigned long long)pack);
	snprintf(pfile, sizeof pfile, "%s/%s", dir, pname);
	flip_byte(pfile, (uint64_t)(off + 52 + stored / 2));

	struct problems pr = {0};
	assert_int_equal(repo_verify(r, 0, on_problem, &pr, &res), 0);
	assert_int_equal(res.blocks_bad, 1);
	assert_int_equal(res.points_damaged, (uint64_t)nusers);
	assert_int_equal(pr.npoints, nusers);
	assert_memory_equal(pr.points, users, (size_t)nusers * sizeof *users);
	assert_int_equal(res.pack_problems, 1); /* the record scan sees the CRC too */
	char offs[32];
	snprintf(offs, sizeof offs, "offset %lld", (long long)off);
	assert_non_null(strstr(pr.first, pname));
	assert_non_null(strstr(pr.first, offs));

	/* reads of that block fail, naming pack and offset; other points still restore */
	char disk[64];
	uint64_t idx;
	find_use(dir, id, users[0], disk, &idx);
	uint8_t buf[BS];
	assert_int_equal(repo_read_block(r, users[0], disk, idx, buf, BS, NULL), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), pname));
	assert_non_null(strstr(hv_errmsg(), offs));
	uint8_t *img = calloc(1, DISK_SIZE);
	struct sink sk = {img, DISK_SIZE, 0, 0};
	assert_int_equal(repo_restore_disk(r, users[0], disk, sink_write, &sk), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), pname));
	free(img);
	for (int k = 0; k < m.npts; k++) {
		bool hit = false;
		for (int u = 0; u < nusers; u++)
			hit |= users[u] == m.pts[k].id;
		struct problems one = {0};
		assert_int_equal(repo_verify(r, m.pts[k].id, on_problem, &one, &res), 0);
		assert_int_equal(res.points_damaged, hit ? 1 : 0);
		if (!hit)
			check_point(r, &m.pts[k]);
	}
	repo_close(r);
	model_free(&m);
}

static void test_verify_dead_record_and_catalog(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 7);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE, 0);
	build(r, &m, 2);
	repo_close(r);
	/* a byte of a record no point needs: a pack problem, no damaged point */
	cat_exec(dir, "DELETE FROM maps WHERE block = (SELECT max(id) FROM blocks);"
		      "DELETE FROM blocks WHERE id = (SELECT max(id) FROM blocks)");
	int64_t lastpack = cat_int(dir, "SELECT max(id) FROM packs");
	int64_t size = cat_int(dir, "SELECT size FROM packs ORDER BY id DESC LIMIT 1");
	char pfile[600];
	snprintf(pfile, sizeof pfile, "%s/packs/%08llx.pack", dir, (unsigned long long)lastpack);
	flip_byte(pfile, (uint64_t)size - 3);
	r = open_repo(dir, 0, 0);
	struct problems pr = {0};
	struct repo_verify_result res;
	assert_int_equal(repo_verify(r, 0, on_problem, &pr, &res), 0);
	assert_int_equal(res.blocks_bad, 0);
	assert_int_equal(res.points_damaged, 0);
	assert_int_equal(res.pack_problems, 1);
	assert_non_null(strstr(pr.first, "CRC-32C"));
	repo_close(r);

	/* a map row for a block index past the disk: that point is damaged */
	flip_byte(pfile, (uint64_t)size - 3);
	int64_t pd = cat_int(dir, "SELECT min(id) FROM point_disks");
	char sql[256];
	snprintf(sql, sizeof sql, "INSERT INTO maps VALUES(%lld, 5000, (SELECT min(id) FROM blocks))",
		 (long long)pd);
	cat_exec(dir, sql);
	r = open_repo(dir, 0, 0);
	pr = (struct problems){0};
	assert_int_equal(repo_verify(r, 0, on_problem, &pr, &res), 0);
	assert_int_equal(res.catalog_problems, 1);
	assert_int_equal(res.points_damaged, 1);
	assert_int_equal(pr.points[0], cat_int(dir, "SELECT min(point) FROM point_disks"));
	repo_close(r);
	model_free(&m);
}

static void test_bad_input(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 8);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE, 32 << 10);
	build(r, &m, 1);
	repo_close(r);
	const struct mpoint *p = &m.pts[0];
	uint8_t buf[BS];
	char disk[64], pname[64];
	uint64_t idx;
	int64_t id = cat_int(dir, "SELECT id FROM blocks WHERE flags = 1 ORDER BY id LIMIT 1");
	int64_t pack = cat_int(dir, "SELECT pack FROM blocks WHERE flags = 1 ORDER BY id LIMIT 1");
	int64_t off = cat_int(dir, "SELECT offset FROM blocks WHERE flags = 1 ORDER BY id LIMIT 1");
	find_use(dir, id, p->id, disk, &idx);
	snprintf(pname, sizeof pname, "%08llx.pack", (unsigned long long)pack);
	char sql[256];

	/* catalog rows that lie */
	struct {
		const char *set, *msg;
		bool names_record; /* the message names pack file and offset */
	} lies[] = {
		{"offset = 999999999", "past the end", true},
		{"offset = offset + 1", "bad record magic", true},
		{"offset = 3", "inside the pack header", true},
		{"stored_len = 4000000000", "impossible lengths", true},
		{"stored_len = stored_len - 1", "does not match the catalog", true},
		{"raw_len = 100", "-byte slot", false},
		{"flags = 8", "impossible lengths", true},
		{"hash = zeroblob(32)", "does not match the catalog", true},
		{"pack = 99", "00000063.pack: cannot open", false},
	};
	for (size_t i = 0; i < sizeof lies / sizeof *lies; i++) {
		snprintf(sql, sizeof sql, "PRAGMA foreign_keys=OFF; UPDATE blocks SET %s WHERE id = %lld",
			 lies[i].set, (long long)id);
		snapshot(dir, path("lie"));
		cat_exec(path("lie"), sql);
		r = open_repo(path("lie"), 0, 0);
		assert_int_equal(repo_read_block(r, p->id, disk, idx, buf, BS, NULL), HV_ECORRUPT);
		if (!strstr(hv_errmsg(), lies[i].msg))
			fail_msg("%s: %s", lies[i].set, hv_errmsg());
		if (lies[i].names_record) {
			assert_non_null(strstr(hv_errmsg(), pname));
			assert_non_null(strstr(hv_errmsg(), "offset "));
		}
		struct repo_verify_result res;
		assert_int_equal(repo_verify(r, 0, NULL, NULL, &res), 0);
		assert_true(res.blocks_bad + res.catalog_problems >= 1);
		assert_true(res.points_damaged >= 1);
		repo_close(r);
	}

	/* a truncated pack, a pack whose header is damaged, a missing pack */
	char pfile[600];
	snapshot(dir, path("cut"));
	snprintf(pfile, sizeof pfile, "%s/packs/%s", path("cut"), pname);
	assert_int_equal(truncate(pfile, off + 20), 0);
	r = open_repo(path("cut"), 0, 0);
	assert_int_equal(repo_read_block(r, p->id, disk, idx, buf, BS, NULL), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), pname));
	assert_non_null(strstr(hv_errmsg(), "past the end"));
	struct problems pr = {0};
	struct repo_verify_result res;
	assert_int_equal(repo_verify(r, 0, on_problem, &pr, &res), 0);
	assert_true(res.pack_problems >= 1);
	assert_true(res.points_damaged >= 1);
	repo_close(r);

	snapshot(dir, path("hdr"));
	snprintf(pfile, sizeof pfile, "%s/packs/%s", path("hdr"), pname);
	flip_byte(pfile, 17);
	r = open_repo(path("hdr"), 0, 0);
	assert_int_equal(repo_read_block(r, p->id, disk, idx, buf, BS, NULL), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "CRC"));
	assert_non_null(strstr(hv_errmsg(), pname));
	repo_close(r);

	snapshot(dir, path("gone"));
	snprintf(pfile, sizeof pfile, "%s/packs/%s", path("gone"), pname);
	assert_int_equal(unlink(pfile), 0);
	r = open_repo(path("gone"), 0, 0);
	assert_int_equal(repo_read_block(r, p->id, disk, idx, buf, BS, NULL), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), pname));
	repo_close(r);

	/* catalogs that are not ours */
	struct repo *rr = NULL;
	snapshot(dir, path("ver"));
	cat_exec(path("ver"), "UPDATE meta SET value = 2 WHERE key = 'format'");
	assert_int_equal(repo_open(path("ver"), 0, NULL, &rr), HV_EUNSUPPORTED);
	assert_null(rr);
	assert_non_null(strstr(hv_errmsg(), "catalog.db"));
	assert_non_null(strstr(hv_errmsg(), "format 2"));

	snapshot(dir, path("bs"));
	cat_exec(path("bs"), "UPDATE meta SET value = 0 WHERE key = 'block_size'");
	assert_int_equal(repo_open(path("bs"), 0, NULL, &rr), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "block_size"));

	snapshot(dir, path("pdbs"));
	cat_exec(path("pdbs"), "UPDATE point_disks SET block_size = 0");
	r = open_repo(path("pdbs"), 0, 0);
	assert_int_equal(repo_read_block(r, p->id, disk, idx, buf, BS, NULL), HV_ECORRUPT);
	struct sink sk = {buf, BS, 0, 0};
	assert_int_equal(repo_restore_disk(r, p->id, disk, sink_write, &sk), HV_ECORRUPT);
	repo_close(r);

	assert_int_equal(mkdir(path("junk"), 0777), 0);
	assert_int_equal(mkdir(path("junk/packs"), 0777), 0);
	uint8_t noise[8192];
	struct hv_rng g = hv_rng_stream(8, "junk");
	hv_rng_fill(&g, noise, sizeof noise);
	spit(path("junk/catalog.db"), noise, sizeof noise);
	assert_int_equal(repo_open(path("junk"), 0, NULL, &rr), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "catalog.db"));
	assert_int_equal(repo_open(path("junk"), REPO_OPEN_RDONLY, NULL, &rr), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "catalog.db"));

	assert_int_equal(mkdir(path("empty"), 0777), 0);
	assert_int_equal(mkdir(path("empty/packs"), 0777), 0);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path("empty/catalog.db"), &db), SQLITE_OK);
	sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(repo_open(path("empty"), 0, NULL, &rr), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "not a repository"));

	/* folders and options */
	assert_int_equal(repo_open(path("nothing"), 0, NULL, &rr), HV_ENOTFOUND);
	assert_non_null(strstr(hv_errmsg(), "nothing"));
	assert_int_equal(mkdir(path("full"), 0777), 0);
	spit(path("full/x"), "x", 1);
	assert_int_equal(repo_open(path("full"), REPO_OPEN_CREATE, NULL, &rr), HV_EINVAL);
	struct repo_opts o = {.block_size = 8192};
	assert_int_equal(repo_open(dir, 0, &o, &rr), HV_EMISMATCH);
	o.block_size = 5000;
	assert_int_equal(repo_open(path("new"), REPO_OPEN_CREATE, &o, &rr), HV_EINVAL);
	o = (struct repo_opts){.zstd_level = 40};
	assert_int_equal(repo_open(path("new"), REPO_OPEN_CREATE, &o, &rr), HV_EINVAL);
	assert_int_equal(repo_open(path("new"), REPO_OPEN_CREATE | REPO_OPEN_RDONLY, NULL, &rr),
			 HV_EINVAL);
	model_free(&m);
}

/* ---- the pack format, parsed here ------------------------------------------------------------*/

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_pack_format_independent(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 9);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo_opts o = {.block_size = BS, .pack_size = 40 << 10, .zstd_level = 5};
	struct repo *r = NULL;
	assert_int_equal(repo_open(dir, REPO_OPEN_CREATE, &o, &r), 0);
	build(r, &m, 2);
	repo_close(r);
	assert_int_equal(cat_int(dir, "SELECT value FROM meta WHERE key = 'zstd_level'"), 5);
	assert_int_equal(cat_int(dir, "SELECT value FROM meta WHERE key = 'format'"), 1);
	assert_int_equal(cat_int(dir, "SELECT COUNT(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);

	char names[256][64];
	int n = list_packs(dir, names, 256);
	assert_true(n >= 3);
	uint64_t records = 0;
	for (int i = 0; i < n; i++) {
		char p[700];
		snprintf(p, sizeof p, "%.400s/packs/%.63s", dir, names[i]);
		size_t len;
		uint8_t *b = slurp(p, &len);
		assert_true(len >= 32);
		assert_memory_equal(b, "HVBKPACK", 8);
		assert_int_equal(le32(b + 8), 1);
		assert_int_equal(le32(b + 12), 32);
		unsigned long long id = strtoull(names[i], NULL, 16);
		assert_int_equal(le32(b + 16), (uint32_t)id);
		assert_int_equal(le32(b + 28), hv_crc32c(b, 28));
		assert_true(len <= (40 << 10));
		char sql[200];
		snprintf(sql, sizeof sql, "SELECT size FROM packs WHERE id = %llu", id);
		assert_int_equal(cat_int(dir, sql), (int64_t)len);
		size_t off = 32;
		while (off < len) {
			assert_true(len - off >= 52);
			const uint8_t *h = b + off;
			assert_memory_equal(h, "HVRB", 4);
			uint32_t flags = le32(h + 4), raw = le32(h + 40), st = le32(h + 44);
			assert_true(off + 52 + st <= len);
			uint32_t c = hv_crc32c_update(HV_CRC32C_INIT, h, 48);
			c = hv_crc32c_final(hv_crc32c_update(c, h + 52, st));
			assert_int_equal(le32(h + 48), c);
			uint8_t out[BS];
			assert_true(raw <= BS);
			if (flags == 1) {
				size_t got = ZSTD_decompress(out, sizeof out, h + 52, st);
				assert_false(ZSTD_isError(got));
				assert_int_equal(got, raw);
				assert_true(st < raw);
			} else {
				assert_int_equal(flags, 0);
				assert_int_equal(st, raw);
				memcpy(out, h + 52, raw);
			}
			assert_false(zero(out, raw)); /* zero blocks are never stored */
			uint8_t hh[32];
			sha256(out, raw, hh);
			assert_memory_equal(hh, h + 8, 32);
			/* the catalog names this record by hash, pack and offset */
			sqlite3 *db = cat_open(dir);
			sqlite3_stmt *q;
			assert_int_equal(sqlite3_prepare_v2(db, "SELECT pack, offset, stored_len, raw_len,"
								" flags FROM blocks WHERE hash = ?1",
							    -1, &q, NULL),
					 SQLITE_OK);
			sqlite3_bind_blob(q, 1, hh, 32, SQLITE_STATIC);
			assert_int_equal(sqlite3_step(q), SQLITE_ROW);
			assert_int_equal(sqlite3_column_int64(q, 0), (int64_t)id);
			assert_int_equal(sqlite3_column_int64(q, 1), (int64_t)off);
			assert_int_equal(sqlite3_column_int64(q, 2), st);
			assert_int_equal(sqlite3_column_int64(q, 3), raw);
			assert_int_equal(sqlite3_column_int64(q, 4), flags);
			sqlite3_finalize(q);
			sqlite3_close(db);
			off += 52 + st;
			records++;
		}
		free(b);
	}
	assert_int_equal(records, cat_int(dir, "SELECT COUNT(*) FROM blocks"));
	assert_int_equal(records, m.nseen);
	model_free(&m);
}

/* ---- crashes ---------------------------------------------------------------------------------*/

/* Pack files that appeared since `before` lose a random tail: the page cache of a power cut. */
static void tear_new_packs(const char *dir, char before[][64], int nb, struct hv_rng *g)
{
	char now[256][64], p[700];
	int n = list_packs(dir, now, 256);
	for (int i = 0; i < n; i++) {
		bool old = false;
		for (int k = 0; k < nb; k++)
			old |= !strcmp(before[k], now[i]);
		if (old)
			continue;
		snprintf(p, sizeof p, "%.400s/packs/%.63s", dir, now[i]);
		struct stat sb;
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(truncate(p, (off_t)(hv_rng_next(g) % ((uint64_t)sb.st_size + 1))), 0);
	}
}

/* One crash case: a base repository, a backup of `vm` (full or not) cut by the fault, the folder
 * as the power cut left it reopened, checked, and backed up again. */
static void crash_case(enum repo_fault f, uint64_t n, int vm, bool full, bool tear)
{
	struct model m;
	model_init(&m, 10);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("crash"));
	char snap[512];
	snprintf(snap, sizeof snap, "%s", path("snap"));
	rm_rf(dir);
	/* the n = 0 cases run with every fsync; the others skip them, for speed only: a fault point
	 * cuts the same sequence either way */
	unsigned sync = n ? REPO_OPEN_NOSYNC : 0;
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE | sync, 24 << 10);
	/* VM alpha has points; beta gets its first (full) backup in the full cases */
	assert_int_equal(backup(r, &m, 0, true, NULL), 0);
	mutate(&m, 0, 8);
	assert_int_equal(backup(r, &m, 0, false, NULL), 0);
	int before_pts = m.npts;
	char before[256][64];
	int nb = list_packs(dir, before, 256);

	mutate(&m, vm, 60);
	repo_set_fault(r, f, n);
	int e = backup(r, &m, vm, full, NULL);
	if (e != HV_ECRASHED)
		fail_msg("fault %d/%llu: backup returned %d (%s)", (int)f, (unsigned long long)n, e,
			 hv_errmsg());
	assert_non_null(strstr(hv_errmsg(), "fault point"));
	/* the handle is dead */
	struct repo_point_info *pts;
	size_t np;
	assert_int_equal(repo_list_points(r, NULL, &pts, &np), HV_ECRASHED);
	snapshot(dir, snap);
	repo_close(r);
	struct hv_rng g = hv_rng_stream(n * 7 + (uint64_t)f, "tear");
	if (tear)
		tear_new_packs(snap, before, nb, &g);

	r = open_repo(snap, sync, 24 << 10);
	assert_int_equal(repo_list_points(r, NULL, &pts, &np), 0);
	if (f == REPO_FAULT_AFTER_CATALOG_COMMIT) {
		/* the commit happened: the point is there and complete */
		assert_int_equal(np, (size_t)before_pts + 1);
		record_point(r, &m, vm, pts[np - 1].id);
	} else {
		assert_int_equal(np, (size_t)before_pts);
	}
	repo_points_free(pts, np);
	verify_clean(r);
	check_all(r, &m);

	/* the next backup works and covers what the lost one did not */
	reseen(&m); /* what the lost session stored is gone */
	mutate(&m, vm, 3);
	assert_int_equal(backup(r, &m, vm, false, NULL), 0);
	mutate(&m, 1 - vm, 3);
	assert_int_equal(backup(r, &m, 1 - vm, false, NULL), 0);
	check_all(r, &m);
	verify_clean(r);
	/* prune reclaims what the crashed session left */
	struct repo_prune_stats ps;
	assert_int_equal(repo_prune(r, &ps), 0);
	packs_match_catalog(snap);
	check_all(r, &m);
	verify_clean(r);
	repo_close(r);
	model_free(&m);
}

static void test_crash_while_storing(void **state)
{
	(void)state;
	static const uint64_t ns[] = {0, 1, 2, 4, 7, 11};
	for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
		crash_case(REPO_FAULT_AFTER_RECORDS, ns[i], 0, false, false);
		crash_case(REPO_FAULT_AFTER_RECORDS, ns[i], 0, false, true);
		crash_case(REPO_FAULT_AFTER_RECORDS, ns[i], 1, true, true);
	}
}

static void test_crash_at_commit_steps(void **state)
{
	(void)state;
	static const enum repo_fault steps[] = {REPO_FAULT_AFTER_PACK_FLUSH,
						REPO_FAULT_BEFORE_CATALOG_COMMIT,
						REPO_FAULT_AFTER_CATALOG_COMMIT};
	for (size_t i = 0; i < 3; i++) {
		crash_case(steps[i], 0, 0, false, false);
		crash_case(steps[i], 0, 1, true, false);
		crash_case(steps[i], 0, 0, true, false);
	}
}

/* A crashed session's orphan pack is overwritten by the next session (same id), and its bytes
 * never shadow anything: the next point restores exactly. */
static void test_crash_orphan_reused(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 11);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE, 0);
	build(r, &m, 1);
	int64_t next = cat_int(dir, "SELECT value FROM meta WHERE key = 'next_pack'");
	mutate(&m, 0, 10);
	repo_set_fault(r, REPO_FAULT_BEFORE_CATALOG_COMMIT, 0);
	assert_int_equal(backup(r, &m, 0, false, NULL), HV_ECRASHED);
	repo_close(r);
	char orphan[600];
	snprintf(orphan, sizeof orphan, "%s/packs/%08llx.pack", dir, (unsigned long long)next);
	struct stat sb;
	assert_int_equal(stat(orphan, &sb), 0);
	assert_int_equal(cat_int(dir, "SELECT value FROM meta WHERE key = 'next_pack'"), next);

	r = open_repo(dir, 0, 0);
	reseen(&m);
	mutate(&m, 1, 2); /* a different, smaller session takes the same pack id */
	assert_int_equal(backup(r, &m, 1, false, NULL), 0);
	assert_int_equal(backup(r, &m, 0, false, NULL), 0);
	check_all(r, &m);
	verify_clean(r);
	repo_close(r);
	model_free(&m);
}

/* ---- forget / prune --------------------------------------------------------------------------*/

static void forget_model(struct model *m, struct repo *r)
{
	/* the model's view: the points the repository still lists */
	struct repo_point_info *pts;
	size_t n;
	assert_int_equal(repo_list_points(r, NULL, &pts, &n), 0);
	for (int k = 0; k < m->npts; k++) {
		bool found = false;
		for (size_t i = 0; i < n; i++)
			found |= pts[i].id == m->pts[k].id;
		m->pts[k].alive = found;
	}
	repo_points_free(pts, n);
}

static void test_forget_prune(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 12);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE, 24 << 10);
	build(r, &m, 5);
	uint64_t forgotten = 0;
	assert_int_equal(repo_forget(r, 2, &forgotten), 0);
	assert_int_equal(forgotten, 8);
	forget_model(&m, r);
	for (int k = 0; k < m.npts; k++)
		assert_int_equal(m.pts[k].alive, k >= m.npts - 4);
	check_all(r, &m);
	uint64_t before = packs_bytes(dir);
	struct repo_prune_stats ps;
	assert_int_equal(repo_prune(r, &ps), 0);
	pruned(&m);
	assert_int_equal(ps.bytes_before, before);
	assert_int_equal(ps.bytes_after, packs_bytes(dir));
	assert_true(ps.bytes_after < ps.bytes_before);
	assert_true(ps.blocks_removed > 0);
	assert_true(ps.packs_deleted > 0);
	assert_true(ps.packs_written > 0);
	assert_int_equal(ps.orphans_deleted, 0);
	packs_match_catalog(dir);
	check_all(r, &m);
	verify_clean(r);
	/* every stored block is needed by a remaining point */
	assert_int_equal(cat_int(dir, "SELECT COUNT(*) FROM blocks WHERE id NOT IN"
				      " (SELECT block FROM maps)"), 0);
	/* live bytes only: packs hold their header and live records, nothing else */
	assert_int_equal(cat_int(dir, "SELECT sum(size) FROM packs"),
			 cat_int(dir, "SELECT (SELECT 32 * COUNT(*) FROM packs) +"
				      " (SELECT sum(52 + stored_len) FROM blocks)"));

	/* nothing left to do */
	assert_int_equal(repo_prune(r, &ps), 0);
	assert_int_equal(ps.blocks_removed, 0);
	assert_int_equal(ps.packs_deleted, 0);
	assert_int_equal(ps.bytes_after, ps.bytes_before);

	/* backups continue from the kept points; one point forgotten by id */
	mutate(&m, 0, 5);
	assert_int_equal(backup(r, &m, 0, false, NULL), 0);
	assert_int_equal(repo_forget_point(r, m.pts[m.npts - 2].id), 0);
	forget_model(&m, r);
	assert_int_equal(repo_prune(r, &ps), 0);
	pruned(&m);
	check_all(r, &m);
	verify_clean(r);
	repo_close(r);
	model_free(&m);
}

static void prune_crash_case(enum repo_fault f, uint64_t n)
{
	struct model m;
	model_init(&m, 13);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("pc"));
	char snap[512];
	snprintf(snap, sizeof snap, "%s", path("pcsnap"));
	rm_rf(dir);
	unsigned sync = n ? REPO_OPEN_NOSYNC : 0;
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE | sync, 24 << 10);
	build(r, &m, 4);
	/* an orphan from a crashed session, for prune to sweep */
	mutate(&m, 1, 6);
	repo_set_fault(r, REPO_FAULT_AFTER_PACK_FLUSH, 0);
	assert_int_equal(backup(r, &m, 1, false, NULL), HV_ECRASHED);
	repo_close(r);
	r = open_repo(dir, sync, 24 << 10);
	reseen(&m);
	assert_int_equal(repo_forget(r, 2, NULL), 0);
	forget_model(&m, r);
	uint64_t before = packs_bytes(dir);
	char pre[256][64];
	int npre = list_packs(dir, pre, 256);

	repo_set_fault(r, f, n);
	struct repo_prune_stats ps;
	int e = repo_prune(r, &ps);
	if (e != HV_ECRASHED)
		fail_msg("prune fault %d/%llu: returned %d (%s)", (int)f, (unsigned long long)n, e,
			 hv_errmsg());
	snapshot(dir, snap);
	repo_close(r);
	struct hv_rng g = hv_rng_stream(n, "tear");
	if (f == REPO_FAULT_AFTER_RECORDS)
		tear_new_packs(snap, pre, npre, &g);

	r = open_repo(snap, sync, 24 << 10);
	check_all(r, &m);
	verify_clean(r);
	assert_int_equal(repo_prune(r, &ps), 0);
	pruned(&m);
	packs_match_catalog(snap);
	assert_true(packs_bytes(snap) < before);
	check_all(r, &m);
	verify_clean(r);
	for (int v = 0; v < NVM; v++) {
		mutate(&m, v, 4);
		assert_int_equal(backup(r, &m, v, false, NULL), 0);
	}
	check_all(r, &m);
	repo_close(r);
	model_free(&m);
}

static void test_crash_during_prune(void **state)
{
	(void)state;
	static const uint64_t ns[] = {0, 1, 4, 9};
	for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
		prune_crash_case(REPO_FAULT_AFTER_RECORDS, ns[i]);
	prune_crash_case(REPO_FAULT_AFTER_PACK_FLUSH, 0);
	prune_crash_case(REPO_FAULT_BEFORE_CATALOG_COMMIT, 0);
	prune_crash_case(REPO_FAULT_AFTER_CATALOG_COMMIT, 0);
	prune_crash_case(REPO_FAULT_PRUNE_AFTER_UNLINK, 0);
}

/* Prune copies only records it has checked: a damaged live record makes it fail with nothing
 * changed, so verify can still name what is damaged. */
static void test_prune_refuses_damaged_record(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 15);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE, 24 << 10);
	build(r, &m, 3);
	assert_int_equal(repo_forget(r, 1, NULL), 0);
	forget_model(&m, r);
	repo_close(r);
	/* a live record in a pack that also holds dead ones (so prune must copy it) */
	int64_t id = cat_int(dir, "SELECT b.id FROM blocks b WHERE b.flags = 1"
				  " AND EXISTS (SELECT 1 FROM maps WHERE block = b.id)"
				  " AND EXISTS (SELECT 1 FROM blocks d WHERE d.pack = b.pack AND NOT"
				  " EXISTS (SELECT 1 FROM maps WHERE block = d.id)) ORDER BY b.id LIMIT 1");
	assert_true(id > 0);
	char sql[200], pfile[700];
	snprintf(sql, sizeof sql, "SELECT pack FROM blocks WHERE id = %lld", (long long)id);
	int64_t pack = cat_int(dir, sql);
	snprintf(sql, sizeof sql, "SELECT offset + 60 FROM blocks WHERE id = %lld", (long long)id);
	snprintf(pfile, sizeof pfile, "%s/packs/%08llx.pack", dir, (unsigned long long)pack);
	flip_byte(pfile, (uint64_t)cat_int(dir, sql));
	char before[256][64], after[256][64];
	int nb = list_packs(dir, before, 256);
	char *dump = cat_dump(dir);

	r = open_repo(dir, 0, 24 << 10);
	struct repo_prune_stats ps;
	assert_int_equal(repo_prune(r, &ps), HV_ECORRUPT);
	assert_non_null(strstr(hv_errmsg(), "prune"));
	assert_non_null(strstr(hv_errmsg(), "CRC-32C"));
	repo_close(r);
	assert_int_equal(list_packs(dir, after, 256), nb);
	for (int i = 0; i < nb; i++)
		assert_string_equal(before[i], after[i]);
	char *dump2 = cat_dump(dir);
	assert_string_equal(dump, dump2);
	free(dump);
	free(dump2);
	/* the damage is still there to be named */
	r = open_repo(dir, 0, 0);
	struct repo_verify_result res;
	assert_int_equal(repo_verify(r, 0, NULL, NULL, &res), 0);
	assert_int_equal(res.blocks_bad, 1);
	assert_true(res.points_damaged >= 1);
	repo_close(r);
	model_free(&m);
}

/* Readers are never blocked by a session and never see its uncommitted point. */
static void test_reader_during_session(void **state)
{
	(void)state;
	struct model m;
	model_init(&m, 16);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo *w = open_repo(dir, REPO_OPEN_CREATE, 0);
	assert_int_equal(backup(w, &m, 0, true, NULL), 0);
	struct repo *rd = open_repo(dir, REPO_OPEN_RDONLY, 0);

	struct repo_point_desc pd = {.vm_name = "beta", .type = REPO_POINT_FULL};
	struct repo_disk_desc dd = {.name = "x", .virtual_size = DISK_SIZE, .logical_sector = 512};
	struct repo_session *s;
	uint32_t h;
	assert_int_equal(repo_begin(w, &pd, &s), 0);
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), 0);
	put_disk(s, h, m.cur[1][0]);

	struct repo_point_info *pts;
	size_t n;
	assert_int_equal(repo_list_points(rd, NULL, &pts, &n), 0);
	assert_int_equal(n, 1);
	repo_points_free(pts, n);
	check_all(rd, &m);
	verify_clean(rd);

	int64_t pid;
	assert_int_equal(repo_session_commit(s, &pid, NULL), 0);
	assert_int_equal(repo_list_points(rd, NULL, &pts, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(pts[1].id, pid);
	repo_points_free(pts, n);
	uint8_t *buf = calloc(1, DISK_SIZE);
	struct sink sk = {buf, DISK_SIZE, 0, 0};
	assert_int_equal(repo_restore_disk(rd, pid, "x", sink_write, &sk), 0);
	assert_memory_equal(buf, m.cur[1][0], DISK_SIZE);
	free(buf);
	repo_close(rd);
	repo_close(w);
	model_free(&m);
}

/* ---- determinism -----------------------------------------------------------------------------*/

static void scenario(const char *dir)
{
	struct model m;
	model_init(&m, 14);
	struct repo *r = open_repo(dir, REPO_OPEN_CREATE, 24 << 10);
	build(r, &m, 3);
	assert_int_equal(repo_forget(r, 2, NULL), 0);
	forget_model(&m, r);
	assert_int_equal(repo_prune(r, NULL), 0);
	pruned(&m);
	mutate(&m, 0, 9);
	assert_int_equal(backup(r, &m, 0, false, NULL), 0);
	repo_close(r);
	model_free(&m);
}

static void test_determinism(void **state)
{
	(void)state;
	char a[512];
	snprintf(a, sizeof a, "%s", path("one"));
	char b[512];
	snprintf(b, sizeof b, "%s", path("two"));
	scenario(a);
	scenario(b);
	char na[256][64], nb[256][64];
	int n = list_packs(a, na, 256);
	assert_int_equal(list_packs(b, nb, 256), n);
	assert_true(n > 3);
	for (int i = 0; i < n; i++) {
		assert_string_equal(na[i], nb[i]);
		char pa[700], pb[700];
		snprintf(pa, sizeof pa, "%.400s/packs/%.63s", a, na[i]);
		snprintf(pb, sizeof pb, "%.400s/packs/%.63s", b, nb[i]);
		size_t la, lb;
		uint8_t *ba = slurp(pa, &la), *bb = slurp(pb, &lb);
		assert_int_equal(la, lb);
		assert_memory_equal(ba, bb, la);
		free(ba);
		free(bb);
	}
	char *da = cat_dump(a), *db = cat_dump(b);
	assert_true(strlen(da) > 1000);
	assert_string_equal(da, db);
	free(da);
	free(db);
	/* the catalog files themselves too (closed, so checkpointed) */
	char ca[600], cb[600];
	snprintf(ca, sizeof ca, "%s/catalog.db", a);
	snprintf(cb, sizeof cb, "%s/catalog.db", b);
	size_t la, lb;
	uint8_t *ba = slurp(ca, &la), *bb = slurp(cb, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(ba, bb, la);
	free(ba);
	free(bb);
}

/* The default geometry (64 KiB blocks, 64 MiB packs) and a high compression level. */
static void test_defaults(void **state)
{
	(void)state;
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path("repo"));
	struct repo *r = NULL;
	assert_int_equal(repo_open(dir, REPO_OPEN_CREATE, NULL, &r), 0);
	assert_int_equal(repo_block_size(r), REPO_DEFAULT_BLOCK_SIZE);
	repo_close(r);
	assert_int_equal(cat_int(dir, "SELECT value FROM meta WHERE key = 'zstd_level'"), 3);
	assert_int_equal(cat_int(dir, "SELECT value FROM meta WHERE key = 'pack_size'"), 64 << 20);
	struct repo_opts o = {.zstd_level = 19};
	assert_int_equal(repo_open(dir, 0, &o, &r), 0);
	uint64_t size = 3 * 65536 + 4096;
	uint8_t *img = malloc(size);
	for (uint64_t i = 0; i < size; i++)
		img[i] = (uint8_t)("abcabcabd"[i % 9] ^ (i >> 12));
	struct repo_point_desc pd = {.vm_name = "v", .type = REPO_POINT_FULL};
	struct repo_disk_desc dd = {.name = "d", .virtual_size = size, .logical_sector = 4096};
	struct repo_session *s;
	uint32_t h;
	int64_t pid;
	struct repo_stats st;
	assert_int_equal(repo_begin(r, &pd, &s), 0);
	assert_int_equal(repo_session_add_disk(s, &dd, 0, &h), 0);
	for (uint64_t i = 0; i < 4; i++)
		assert_int_equal(repo_session_put_block(s, h, i, img + i * 65536,
							i < 3 ? 65536 : 4096), 0);
	assert_int_equal(repo_session_commit(s, &pid, &st), 0);
	assert_true(st.bytes_stored < st.bytes_new_raw / 4);
	uint8_t *buf = calloc(1, size);
	struct sink sk = {buf, size, 0, 0};
	assert_int_equal(repo_restore_disk(r, pid, "d", sink_write, &sk), 0);
	assert_memory_equal(buf, img, size);
	verify_clean(r);
	repo_close(r);
	free(buf);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_backup_restore_model, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_map_iteration, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_dedup_stats, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_incremental_zeroes_and_overwrites, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_api_misuse, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_verify_names_damaged_points, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_verify_dead_record_and_catalog, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_bad_input, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_pack_format_independent, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_crash_while_storing, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_crash_at_commit_steps, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_crash_orphan_reused, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_forget_prune, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_crash_during_prune, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_prune_refuses_damaged_record, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_reader_during_session, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_determinism, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_defaults, setup_dir, teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
