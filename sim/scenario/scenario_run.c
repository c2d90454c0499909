/*
 * scenario_run.c — the scenario runner behind `hvsim scenario run`: a loaded scenario's events
 * against a fresh simulated host, an engine driven as a separate process, and the verdict.
 *
 * The run folder (a temporary one, or --keep DIR) holds host/ (the state folder), repo/ (the
 * repository the engines write) and restore/ (restored disks while they are judged). Events run in
 * their expanded order: the host clock is advanced to each event's time (never back: jobs the
 * engine polled may have moved it further), then
 *   - write, fault, state, set: through the host API, in this process;
 *   - backup: the engine as a child process (posix_spawn in its own process group, stdin from
 *     /dev/null, stdout and stderr captured with bounds, killed after the timeout) with
 *     HVSIM_HOST=<host>, HVSIM_NOSYNC=1 and, when an engine-killed fault armed it,
 *     HVBACKUP_CRASH_AFTER_BLOCKS / HVBACKUP_CRASH_AT_COMMIT in its environment. The newest
 *     reference point of the VM on the host right after the backup gives the point's ground truth
 *     (what the host froze), independently of what the engine says;
 *   - restore: each disk of the point restored by the engine into restore/, then hashed block by
 *     block (at the host's tracking granularity) and compared with truth_block_hash of the
 *     point's ground truth; a disk of the truth point missing from the repository point is a
 *     mismatch too.
 * Then the expectations are evaluated against the records and against host.db (leftovers, merges,
 * audit log) and `hvbackup verify`.
 *
 * Engines (scenarios/README.md, "engines" and "Running"): the default engine is the hvbackup
 * binary called with its own options, or the runner's --engine/--engine-restore templates;
 * scenario engines are templates. A template runs with /bin/sh -c after every placeholder is
 * replaced by its shell-quoted value. A template engine's backup may print hvbackup's --json
 * object as its last stdout line (type, reason, bytes_*, id); without it the backup has no type.
 * Restores without a restore template, listing, and repository_verifies use hvbackup.
 *
 * Determinism: nothing from the wall clock reaches the result (it only bounds engine calls), the
 * run folder's path is replaced by `{run}` in every message kept, and everything else derives
 * from the scenario, its seed and the engine's deterministic output. JSON output of engines is
 * read with SQLite's JSON functions (no hand-written JSON parser).
 *
 * Must not: link the engine (it is a process), let an engine's output grow memory without bound,
 * or leave the temporary run folder behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <sqlite3.h>

#include "../../hyperv/vhdx/vhdx.h"
#include "../host/host.h"
#include "../truth/truth.h"
#include "scenario.h"

extern char **environ;

#define RUN_OUT_MAX (16u << 20) /* stdout kept from one engine call (a list of many points) */
#define RUN_ERR_MAX (64u << 10) /* stderr: its last 64 KiB */
#define RUN_MSG_MAX 400         /* a message kept in the result */
#define RUN_TIMEOUT 600         /* seconds per engine call by default */
#define RUN_SHOW_FAILURES 3     /* evidence lists this many problems, then counts the rest */

/* ---- growable text buffer (bounded) ---------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t n, cap, max;
	bool tail; /* over max: keep the last max bytes (else the first) */
	bool cut;  /* something was dropped */
};

static int sbuf_add(struct sbuf *b, const char *d, size_t len)
{
	if (b->max && !b->tail && b->n + len > b->max) {
		len = b->max - b->n;
		b->cut = true;
	}
	if (b->max && b->tail && len >= b->max) {
		d += len - b->max;
		len = b->max;
		b->n = 0;
		b->cut = true;
	} else if (b->max && b->tail && b->n + len > b->max) {
		size_t drop = b->n + len - b->max;
		memmove(b->p, b->p + drop, b->n - drop);
		b->n -= drop;
		b->cut = true;
	}
	if (b->n + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + len + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return hv_err(HV_ENOMEM, "out of memory");
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, len);
	b->n += len;
	b->p[b->n] = 0;
	return 0;
}

static int sbuf_str(struct sbuf *b, const char *s)
{
	return sbuf_add(b, s, strlen(s));
}

static int sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return hv_err(HV_EINVAL, "format error");
	return sbuf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* The buffer's text, handed over (never NULL unless out of memory). */
static char *sbuf_take(struct sbuf *b)
{
	char *p = b->p ? b->p : strdup("");
	b->p = NULL;
	b->n = b->cap = 0;
	return p;
}

/* A formatted string, malloc'ed (NULL when out of memory). */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	char *p = NULL;
	va_list ap;
	va_start(ap, f);
	int n = vasprintf(&p, f, ap);
	va_end(ap);
	return n < 0 ? NULL : p;
}

/* ---- child processes ------------------------------------------------------------------------- */

struct proc {
	bool started;
	int status;   /* exit status; 128 + N when killed by signal N */
	int sig;      /* the signal that ended it, or 0 */
	bool timeout; /* killed by the runner after the timeout */
	struct sbuf out, err;
};

static void proc_free(struct proc *p)
{
	free(p->out.p);
	free(p->err.p);
}

static double mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs argv[0] (an absolute path) with envp; captures stdout (the first RUN_OUT_MAX bytes) and
 * stderr (the last RUN_ERR_MAX); kills the whole process group after `timeout` seconds. 0 when it
 * ran (whatever its exit status), HV_E* when it could not be started. */
static int proc_run(char *const argv[], char *const envp[], unsigned timeout, struct proc *p)
{
	memset(p, 0, sizeof *p);
	p->out.max = RUN_OUT_MAX;
	p->err.max = RUN_ERR_MAX;
	p->err.tail = true;
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, r = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
		r = hv_err(HV_EIO, "pipe: %s", strerror(errno));
		if (po[0] >= 0) {
			close(po[0]);
			close(po[1]);
		}
		return r;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawnattr_init(&at);
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setpgroup(&at,
	                          0); /* its own group: a timeout kills the shell's children too */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                  POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int e = posix_spawn(&pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(po[1]);
	close(pe[1]);
	if (e) {
		close(po[0]);
		close(pe[0]);
		return hv_err(HV_EIO, "cannot run %s: %s", argv[0], strerror(e));
	}
	p->started = true;
	double deadline = mono() + (timeout ? timeout : RUN_TIMEOUT);
	struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
	struct sbuf *bufs[2] = {&p->out, &p->err};
	int open_fds = 2, st = 0;
	bool exited = false;
	double drain = 0; /* after the child exited: how long its output may still come */
	char chunk[65536];
	while (!r) {
		if (!exited && waitpid(pid, &st, WNOHANG) == pid) {
			exited = true;
			drain = mono() + 1;
		}
		double now = mono();
		if (!exited && now >= deadline) {
			p->timeout = true;
			break;
		}
		/* done when both pipes are closed, or a second after the exit (something it left
		 * running may hold them open) */
		if (exited && (!open_fds || now >= drain))
			break;
		if (!open_fds) {
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
			continue;
		}
		int n = poll(fds, 2, 100);
		if (n < 0 && errno != EINTR)
			r = hv_err(HV_EIO, "poll: %s", strerror(errno));
		for (int i = 0; n > 0 && i < 2 && !r; i++) {
			if (fds[i].fd < 0 || !fds[i].revents)
				continue;
			ssize_t k = read(fds[i].fd, chunk, sizeof chunk);
			if (k > 0) {
				r = sbuf_add(bufs[i], chunk, (size_t)k);
			} else if (k == 0 || errno != EINTR) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
			}
		}
	}
	/* the whole group: a shell's children too, and what an exited engine left holding the
	 * pipes */
	if (!exited || open_fds)
		kill(-pid, SIGKILL);
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	if (!exited)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	if (WIFEXITED(st)) {
		p->status = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		p->sig = WTERMSIG(st);
		p->status = 128 + p->sig;
	}
	return r;
}

/* The environment of an engine call: ours, without the variables the runner sets. */
static char **child_env(const char *host, uint64_t crash_blocks, uint32_t crash_commit)
{
	static const char *const OURS[] = {
	    "HVSIM_HOST=", "HVSIM_NOSYNC=", "HVBACKUP_CRASH_AFTER_BLOCKS=",
	    "HVBACKUP_CRASH_AT_COMMIT=", NULL};
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **env = calloc(n + 5, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		bool skip = false;
		for (size_t j = 0; OURS[j]; j++)
			skip |= !strncmp(environ[i], OURS[j], strlen(OURS[j]));
		if (!skip)
			ok = (env[k++] = strdup(environ[i])) != NULL;
	}
	if (ok)
		ok = (env[k++] = fmt("HVSIM_HOST=%s", host)) != NULL;
	if (ok)
		ok = (env[k++] = strdup("HVSIM_NOSYNC=1")) != NULL;
	if (ok && crash_blocks)
		ok = (env[k++] = fmt("HVBACKUP_CRASH_AFTER_BLOCKS=%llu",
		                     (unsigned long long)crash_blocks)) != NULL;
	if (ok && crash_commit)
		ok = (env[k++] = fmt("HVBACKUP_CRASH_AT_COMMIT=%u", crash_commit)) != NULL;
	if (!ok) {
		for (size_t i = 0; i < k; i++)
			free(env[i]);
		free(env);
		return NULL;
	}
	return env;
}

static void env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* ---- command templates ----------------------------------------------------------------------- */

static const char *const BACKUP_PH[] = {"host", "vm", "repo", "path", "mode", NULL};
static const char *const RESTORE_PH[] = {"repo", "vm", "point", "disk", "to", NULL};

static int ph_index(const char *const *names, const char *p, size_t len)
{
	for (int i = 0; names[i]; i++)
		if (strlen(names[i]) == len && !strncmp(names[i], p, len))
			return i;
	return -1;
}

int scenario_template_check(const char *tmpl, bool restore)
{
	const char *const *names = restore ? RESTORE_PH : BACKUP_PH;
	const char *known =
	    restore ? "{repo} {vm} {point} {disk} {to}" : "{host} {vm} {repo} {path} {mode}";
	if (!tmpl || !*tmpl)
		return hv_err(HV_EINVAL, "an empty %s command", restore ? "restore" : "backup");
	for (const char *p = tmpl; (p = strchr(p, '{')); p++) {
		const char *e = strchr(p, '}');
		if (!e)
			return hv_err(HV_EINVAL, "'%s': a '{' without '}' (placeholders: %s)", tmpl,
			              known);
		if (ph_index(names, p + 1, (size_t)(e - p - 1)) < 0)
			return hv_err(HV_EINVAL,
			              "'%s': unknown placeholder {%.*s} (placeholders: %s)", tmpl,
			              (int)(e - p - 1 > 40 ? 40 : e - p - 1), p + 1, known);
	}
	return 0;
}

/* The template with every placeholder replaced by its value in single quotes. */
static char *template_fill(const char *t, const char *const *names, const char *const *vals)
{
	struct sbuf b = {0};
	int r = 0;
	while (*t && !r) {
		const char *e = *t == '{' ? strchr(t, '}') : NULL;
		int k = e ? ph_index(names, t + 1, (size_t)(e - t - 1)) : -1;
		if (k < 0) {
			r = sbuf_add(&b, t++, 1);
			continue;
		}
		r = sbuf_str(&b, "'");
		for (const char *v = vals[k]; *v && !r; v++)
			r = *v == '\'' ? sbuf_str(&b, "'\\''") : sbuf_add(&b, v, 1);
		if (!r)
			r = sbuf_str(&b, "'");
		t = e + 1;
	}
	if (r) {
		free(b.p);
		return NULL;
	}
	return sbuf_take(&b);
}

/* ---- the result ------------------------------------------------------------------------------ */

struct backup_rec {
	uint32_t index; /* backup #index (timeline order) */
	uint64_t time;
	char *vm;
	uint32_t vm_nth;
	char *engine;
	enum scenario_mode mode;
	enum scenario_path path;
	uint64_t crash_after_blocks;
	uint32_t crash_at_commit;
	bool ok;
	char *message; /* failed: why */
	bool has_type, full;
	char *reason;
	bool has_bytes;
	uint64_t changed, read, stored, dedup;
	int64_t point_id;  /* the engine's id of the point (0: none, or not told) */
	uint32_t point_no; /* the VM's n-th point (0: made none) */
	int verified;      /* restores of its point: -1 none, 0 some failed, 1 all verified */
};

struct rdisk {
	char *name;
	bool ok;
	char *problem; /* why it is not verified (besides differing blocks) */
	uint64_t blocks, bad, first_bad;
};

struct restore_rec {
	uint32_t event; /* restore event #event (timeline order) */
	uint64_t time;
	char *vm;
	uint32_t point_no;
	int64_t point_id;
	bool vhdx;
	char *error; /* nothing could be restored: why */
	struct rdisk *disks;
	size_t ndisks;
	bool ok;
};

struct check {
	char *name;
	uint32_t line;
	bool pass;
	char *evidence;
};

struct scenario_outcome {
	char *name;
	uint64_t seed;
	bool external; /* the default engine was replaced by templates */
	struct backup_rec *backups;
	size_t nbackups;
	struct restore_rec *restores;
	size_t nrestores, cap_restores;
	char **errors;
	size_t nerrors, cap_errors;
	struct check *checks;
	size_t nchecks;
};

void scenario_outcome_free(struct scenario_outcome *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nbackups; i++) {
		free(r->backups[i].vm);
		free(r->backups[i].engine);
		free(r->backups[i].message);
		free(r->backups[i].reason);
	}
	for (size_t i = 0; i < r->nrestores; i++) {
		struct restore_rec *x = &r->restores[i];
		for (size_t k = 0; k < x->ndisks; k++) {
			free(x->disks[k].name);
			free(x->disks[k].problem);
		}
		free(x->disks);
		free(x->vm);
		free(x->error);
	}
	for (size_t i = 0; i < r->nerrors; i++)
		free(r->errors[i]);
	for (size_t i = 0; i < r->nchecks; i++) {
		free(r->checks[i].name);
		free(r->checks[i].evidence);
	}
	free(r->backups);
	free(r->restores);
	free(r->errors);
	free(r->checks);
	free(r->name);
	free(r);
}

bool scenario_outcome_passed(const struct scenario_outcome *r)
{
	if (r->nerrors)
		return false;
	for (size_t i = 0; i < r->nchecks; i++)
		if (!r->checks[i].pass)
			return false;
	return true;
}

/* ---- run state ------------------------------------------------------------------------------- */

/* A disk label of a VM: the host disks it has named (a label can come back after a remove). */
struct label {
	const char *name; /* the scenario's */
	int64_t *ids;
	size_t n;
	bool attached;
};

/* A point of a VM, in order: made by a successful backup, or committed by one that failed. */
struct point {
	int64_t id;      /* the engine's point id (0: not told) */
	int64_t truth;   /* ground-truth point of the reference point made with it (0: none) */
	uint32_t backup; /* backup #backup made it */
	uint32_t engine; /* 0 default, k: s->engines[k - 1] */
};

struct vmrun {
	int64_t id;
	struct label *labels;
	size_t nlabels;
	struct point *points;
	size_t npoints;
};

struct run {
	const struct scenario *s;
	const struct scenario_run_opts *o;
	struct scenario_outcome *res;
	char *dir, *host_dir, *repo, *rdir;
	bool keep;
	struct host *h;
	sqlite3 *db; /* host_db(h) */
	sqlite3 *js; /* in-memory, for reading engine JSON */
	struct vmrun *vms;
	uint64_t start; /* host clock (ticks) at time 0 */
	unsigned timeout;
};

/* The text kept for a message: one line, the run folder named {run}, bounded. */
static char *clean(const struct run *R, const char *msg)
{
	struct sbuf b = {.max = RUN_MSG_MAX};
	size_t dl = R->dir ? strlen(R->dir) : 0;
	while (msg && *msg) {
		if (dl && !strncmp(msg, R->dir, dl)) {
			sbuf_str(&b, "{run}");
			msg += dl;
		} else {
			char c = *msg == '\n' || *msg == '\r' || *msg == '\t' ? ' ' : *msg;
			sbuf_add(&b, &c, 1);
			msg++;
		}
	}
	while (b.n && b.p[b.n - 1] == ' ')
		b.p[--b.n] = 0;
	return sbuf_take(&b);
}

/* The last non-empty line of a buffer, copied (NULL when there is none). */
static char *last_line(const char *buf, size_t n)
{
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	size_t s = n;
	while (s && buf[s - 1] != '\n')
		s--;
	if (s == n)
		return NULL;
	return strndup(buf + s, n - s);
}

static void run_error(struct run *R, uint64_t time, const char *what)
{
	struct scenario_outcome *res = R->res;
	char t[32], *msg, *c = clean(R, hv_errmsg());
	scenario_duration_format(time, t, sizeof t);
	if (res->nerrors == res->cap_errors) {
		size_t cap = res->cap_errors ? res->cap_errors * 2 : 8;
		char **e = realloc(res->errors, cap * sizeof *e);
		if (!e) {
			free(c);
			return;
		}
		res->errors = e;
		res->cap_errors = cap;
	}
	if (c && (msg = fmt("at %s: %s: %s", t, what, c)))
		res->errors[res->nerrors++] = msg;
	free(c);
}

/* ---- SQL helpers ----------------------------------------------------------------------------- */

static int sql_err(sqlite3 *db, const char *what)
{
	return hv_err(HV_EIO, "host.db: %s: %s", what, sqlite3_errmsg(db));
}

/* First column of the first row as an integer (dflt when there is no row). */
static int sql_int(sqlite3 *db, int64_t *out, int64_t dflt, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	sqlite3_stmt *st;
	if (!sql)
		return hv_err(HV_ENOMEM, "out of memory");
	int r = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (r != SQLITE_OK)
		return sql_err(db, "query");
	r = sqlite3_step(st);
	*out = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : dflt;
	r = r == SQLITE_ROW || r == SQLITE_DONE ? 0 : sql_err(db, "query");
	sqlite3_finalize(st);
	return r;
}

static int prep(sqlite3 *db, sqlite3_stmt **st, const char *sql)
{
	return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : sql_err(db, sql);
}

/* The newest reference point of a VM: its id and ground-truth point (0, 0 when it has none). */
static int newest_refpoint(struct run *R, int64_t vm, int64_t *rp, int64_t *truth)
{
	sqlite3_stmt *st;
	int r = prep(R->db, &st,
	             "SELECT id, coalesce(truth_point, 0) FROM refpoint WHERE vm_id=?1"
	             " ORDER BY id DESC LIMIT 1");
	if (r)
		return r;
	sqlite3_bind_int64(st, 1, vm);
	*rp = *truth = 0;
	if ((r = sqlite3_step(st)) == SQLITE_ROW) {
		*rp = sqlite3_column_int64(st, 0);
		*truth = sqlite3_column_int64(st, 1);
	}
	r = r == SQLITE_ROW || r == SQLITE_DONE ? 0 : sql_err(R->db, "reference points");
	sqlite3_finalize(st);
	return r;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	struct dirent *e;
	bool empty = true;
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

static int label_add_id(struct label *l, int64_t id)
{
	int64_t *ids = realloc(l->ids, (l->n + 1) * sizeof *ids);
	if (!ids)
		return hv_err(HV_ENOMEM, "out of memory");
	l->ids = ids;
	l->ids[l->n++] = id;
	l->attached = true;
	return 0;
}

static struct label *label_find(struct vmrun *v, const char *name)
{
	for (size_t i = 0; i < v->nlabels; i++)
		if (!strcasecmp(v->labels[i].name, name))
			return &v->labels[i];
	return NULL;
}

/* The label's current disk (HV_ENOTFOUND when it is not attached). */
static int label_disk(struct vmrun *v, const char *name, int64_t *id)
{
	struct label *l = label_find(v, name);
	if (!l || !l->attached || !l->n)
		return hv_err(HV_ENOTFOUND, "no disk '%s' is attached", name);
	*id = l->ids[l->n - 1];
	return 0;
}

static int label_new(struct vmrun *v, const char *name, int64_t id)
{
	struct label *l = label_find(v, name);
	if (!l) {
		struct label *x = realloc(v->labels, (v->nlabels + 1) * sizeof *x);
		if (!x)
			return hv_err(HV_ENOMEM, "out of memory");
		v->labels = x;
		l = &v->labels[v->nlabels++];
		*l = (struct label){.name = name};
	}
	return label_add_id(l, id);
}

static struct host_disk_spec disk_spec(const struct scenario_disk *d)
{
	return (struct host_disk_spec){.size = d->size,
	                               .fixed = d->fixed,
	                               .block_size = d->block,
	                               .logical_sector = d->sector};
}

static int vm_state_value(enum scenario_vm_state st)
{
	return st == SCENARIO_VM_OFF     ? HOST_VM_OFF
	       : st == SCENARIO_VM_SAVED ? HOST_VM_SAVED
	                                 : HOST_VM_RUNNING;
}

static int setup(struct run *R)
{
	const struct scenario *s = R->s;
	char path[PATH_MAX];
	if (R->keep) {
		if (mkdir(R->o->keep, 0777) && (errno != EEXIST || !dir_empty(R->o->keep)))
			return hv_err(HV_EINVAL, "%s: %s", R->o->keep,
			              errno == EEXIST ? "exists and is not an empty folder"
			                              : strerror(errno));
		if (!realpath(R->o->keep, path))
			return hv_err(HV_EIO, "%s: %s", R->o->keep, strerror(errno));
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(path, sizeof path, "%s/hvsim-scenario-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(path))
			return hv_err(HV_EIO, "%s: cannot create: %s", path, strerror(errno));
	}
	if (!(R->dir = strdup(path)) || !(R->host_dir = fmt("%s/host", path)) ||
	    !(R->repo = fmt("%s/repo", path)) || !(R->rdir = fmt("%s/restore", path)))
		return hv_err(HV_ENOMEM, "out of memory");
	if (mkdir(R->rdir, 0777))
		return hv_err(HV_EIO, "%s: %s", R->rdir, strerror(errno));
	if (sqlite3_open(":memory:", &R->js) != SQLITE_OK)
		return hv_err(HV_ENOMEM, "cannot open an in-memory database");
	struct host_create_opts co = {
	    .seed = s->seed, .rct_granularity = s->rct_granularity, .nosync = true};
	int r = host_create(R->host_dir, &co);
	if (!r)
		r = host_open(R->host_dir, HOST_OPEN_NOSYNC, &R->h);
	if (r)
		return r;
	R->db = host_db(R->h);
	r = host_setting_set(R->h, "wmi.strict", s->strict ? "1" : "0");
	for (size_t i = 0; !r && i < s->nsettings; i++)
		r = host_setting_set(R->h, s->settings[i].key, s->settings[i].value);
	if (r)
		return r;
	if (!(R->vms = calloc(s->nvms ? s->nvms : 1, sizeof *R->vms)))
		return hv_err(HV_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->nvms; i++) {
		const struct scenario_group *g = &s->groups[s->vms[i].group];
		struct host_disk_spec specs[SCENARIO_MAX_DISKS];
		for (size_t k = 0; k < g->ndisks && k < SCENARIO_MAX_DISKS; k++)
			specs[k] = disk_spec(&g->disks[k]);
		struct vmrun *v = &R->vms[i];
		if ((r = host_vm_create(R->h, s->vms[i].name, specs, g->ndisks, &v->id)))
			return hv_err_prefix(r, "VM %s", s->vms[i].name);
		if (g->state != SCENARIO_VM_RUNNING &&
		    (r = host_vm_set_state(R->h, v->id, vm_state_value(g->state))))
			return r;
		for (size_t k = 0; k < g->ndisks; k++) {
			int64_t id;
			if ((r = sql_int(
			         R->db, &id, 0,
			         "SELECT id FROM disk WHERE vm_id=%lld AND slot=%d AND attached",
			         (long long)v->id, (int)k)))
				return r;
			if ((r = label_new(v, g->disks[k].name, id)))
				return r;
		}
	}
	R->start = host_now(R->h);
	return 0;
}

static int advance(struct run *R, uint64_t t)
{
	uint64_t target = R->start + t * HOST_TICKS_PER_SECOND, now = host_now(R->h);
	return now < target ? host_clock_advance(R->h, target - now) : 0;
}

/* ---- in-process actions ---------------------------------------------------------------------- */

static int do_write(struct run *R, const struct scenario_event *x, const struct scenario_entry *e)
{
	const struct scenario_workload *w = &R->s->workloads[e->write.workload];
	struct vmrun *v = &R->vms[x->vm];
	struct wl_params p;
	wl_params_init(&p, w->pattern, 1, w->bytes, x->seed);
	if (w->io_min)
		p.io_min = w->io_min;
	if (w->io_max)
		p.io_max = w->io_max;
	p.compress_pct = w->compress;
	int64_t disk = -1;
	int r = e->write.disk ? label_disk(v, e->write.disk, &disk) : 0;
	return r ? r : host_vm_write(R->h, v->id, disk, &p, NULL);
}

/* job.<method> (job.default without one) back to its value from host.settings, or unset. */
static int job_setting_clear(struct run *R, const char *key)
{
	for (size_t i = 0; i < R->s->nsettings; i++)
		if (!strcmp(R->s->settings[i].key, key))
			return host_setting_set(R->h, key, R->s->settings[i].value);
	return host_setting_delete(R->h, key);
}

static int do_fault(struct run *R, const struct scenario_event *x, const struct scenario_entry *e)
{
	struct vmrun *v = x->vm == SCENARIO_NO_VM ? NULL : &R->vms[x->vm];
	const char *disk = e->fault.disk;
	int64_t d = -1, id;
	char key[128], val[128];
	int r = 0;
	switch (e->fault.kind) {
	case SCENARIO_FAULT_RCT_RESET:
		if (disk && (r = label_disk(v, disk, &d)))
			return r;
		return host_fault_rct_reset(R->h, v->id, d);
	case SCENARIO_FAULT_LIVE_MIGRATION:
		return host_fault_migrate(R->h, v->id, e->fault.reset);
	case SCENARIO_FAULT_HOST_CRASH:
		return host_fault_crash(R->h);
	case SCENARIO_FAULT_DISK_RESIZE:
		return (r = label_disk(v, disk, &d)) ? r
		                                     : host_fault_resize(R->h, d, e->fault.size);
	case SCENARIO_FAULT_DISK_REPLACE:
		return (r = label_disk(v, disk, &d)) ? r : host_fault_replace(R->h, d);
	case SCENARIO_FAULT_DISK_ADD: {
		struct host_disk_spec spec = disk_spec(&e->fault.add);
		if ((r = host_vm_add_disk(R->h, v->id, &spec, &id)))
			return r;
		return label_new(v, disk, id);
	}
	case SCENARIO_FAULT_DISK_REMOVE:
		if ((r = label_disk(v, disk, &d)) || (r = host_vm_remove_disk(R->h, d)))
			return r;
		label_find(v, disk)->attached = false;
		return 0;
	case SCENARIO_FAULT_JOB_EXCEPTION:
	case SCENARIO_FAULT_SLOW_JOBS:
		snprintf(key, sizeof key, "job.%s", e->fault.method ? e->fault.method : "default");
		if (e->fault.clear)
			return job_setting_clear(R, key);
		if (e->fault.kind == SCENARIO_FAULT_SLOW_JOBS)
			snprintf(val, sizeof val, "starting=%u,running=%u,completed",
			         e->fault.starting, e->fault.running);
		else if (e->fault.code)
			snprintf(val, sizeof val, "exception=%u", e->fault.code);
		else
			snprintf(val, sizeof val, "exception");
		return host_setting_set(R->h, key, val);
	case SCENARIO_FAULT_MERGE_BLOCKED:
		return host_fault_merge_block(R->h, v->id, !e->fault.clear);
	case SCENARIO_FAULT_LEAKED_REFPOINT:
		return host_refpoint_create(R->h, v->id, 1, &id);
	case SCENARIO_FAULT_STALE_CHECKPOINT:
		return host_fault_stale_checkpoint(R->h, v->id, &id);
	case SCENARIO_FAULT_ENGINE_KILLED:
		return 0; /* the expansion armed the backup it kills */
	case SCENARIO_FAULT_GUEST_VSS_OFF:
		return host_fault_guest_vss(R->h, v->id, e->fault.clear);
	case SCENARIO_FAULT_TRACKING_OFF:
		if (disk) {
			if ((r = label_disk(v, disk, &d)))
				return r;
			return host_rct_set_enabled(R->h, d, e->fault.clear);
		}
		for (size_t i = 0; i < v->nlabels && !r; i++)
			if (v->labels[i].attached)
				r = host_rct_set_enabled(R->h, v->labels[i].ids[v->labels[i].n - 1],
				                         e->fault.clear);
		return r;
	}
	return hv_err(HV_EINVAL, "unknown fault %d", (int)e->fault.kind);
}

static int do_set(struct run *R, const struct scenario_entry *e)
{
	int r = 0;
	for (size_t i = 0; i < e->set.n && !r; i++)
		r = host_setting_set(R->h, e->set.v[i].key, e->set.v[i].value);
	return r;
}

/* ---- engine calls ---------------------------------------------------------------------------- */

struct engine {
	const char *name;
	const char *backup;  /* template, or NULL: hvbackup */
	const char *restore; /* template, or NULL: hvbackup */
};

static struct engine engine_of(const struct run *R, uint32_t k)
{
	if (!k)
		return (struct engine){"default", R->o->backup, R->o->restore};
	const struct scenario_engine *e = &R->s->engines[k - 1];
	return (struct engine){e->name, e->backup, e->restore};
}

/* Runs argv (absolute argv[0]) as an engine call. */
static int engine_call(struct run *R, char *const argv[], uint64_t crash_blocks,
                       uint32_t crash_commit, struct proc *p)
{
	memset(p, 0, sizeof *p);
	char **env = child_env(R->host_dir, crash_blocks, crash_commit);
	if (!env)
		return hv_err(HV_ENOMEM, "out of memory");
	int r = proc_run(argv, env, R->timeout, p);
	env_free(env);
	return r;
}

static int shell_call(struct run *R, const char *cmd, uint64_t crash_blocks, uint32_t crash_commit,
                      struct proc *p)
{
	char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
	return engine_call(R, argv, crash_blocks, crash_commit, p);
}

/* Why a call that ran did not succeed: "exit status 1: <its last stderr line>". */
static char *call_failure(const struct run *R, const struct proc *p)
{
	char *line = last_line(p->err.p ? p->err.p : "", p->err.n), *msg, *out;
	if (p->timeout)
		msg = fmt("timed out after %u s (killed)", R->timeout);
	else if (p->sig)
		msg = fmt("killed by signal %d%s%s", p->sig, line ? ": " : "", line ? line : "");
	else
		msg = fmt("exit status %d%s%s", p->status, line ? ": " : "", line ? line : "");
	out = clean(R, msg ? msg : "failed");
	free(msg);
	free(line);
	return out;
}

/* Reads the last stdout line of a backup as hvbackup's --json object. false when it is not one. */
static bool read_backup_json(struct run *R, const struct proc *p, struct backup_rec *b)
{
	const char *out = p->out.p ? p->out.p : "";
	size_t n = p->out.n;
	char *line = last_line(out, n);
	bool ok = false;
	sqlite3_stmt *st = NULL;
	if (!line || line[0] != '{')
		goto out;
	if (sqlite3_prepare_v2(R->js,
	                       "SELECT json_valid(?1) AND json_type(?1)='object'"
	                       " AND json_type(?1, '$.type') IN ('text')",
	                       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
	ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (!ok)
		goto out;
	ok = false;
	if (sqlite3_prepare_v2(
	        R->js,
	        "SELECT json_extract(?1, '$.type'), json_extract(?1, '$.reason'),"
	        " json_extract(?1, '$.id'), json_extract(?1, '$.bytes_changed'),"
	        " json_extract(?1, '$.bytes_read'), json_extract(?1, '$.bytes_stored'),"
	        " json_extract(?1, '$.bytes_dedup'), json_type(?1, '$.bytes_read')",
	        -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	const char *type = (const char *)sqlite3_column_text(st, 0);
	if (type && (!strcmp(type, "full") || !strcmp(type, "incremental"))) {
		b->has_type = true;
		b->full = !strcmp(type, "full");
	}
	const char *reason = (const char *)sqlite3_column_text(st, 1);
	b->reason = clean(R, reason ? reason : "");
	b->point_id = sqlite3_column_int64(st, 2);
	b->has_bytes = sqlite3_column_type(st, 7) != SQLITE_NULL;
	b->changed = (uint64_t)sqlite3_column_int64(st, 3);
	b->read = (uint64_t)sqlite3_column_int64(st, 4);
	b->stored = (uint64_t)sqlite3_column_int64(st, 5);
	b->dedup = (uint64_t)sqlite3_column_int64(st, 6);
	ok = b->has_type;
out:
	sqlite3_finalize(st);
	free(line);
	return ok;
}

/* The points of one VM in an hvbackup repository, oldest first, with their disk names. */
struct lpoint {
	int64_t id;
	char **disks;
	size_t ndisks;
};

static void lpoints_free(struct lpoint *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < v[i].ndisks; k++)
			free(v[i].disks[k]);
		free(v[i].disks);
	}
	free(v);
}

/* `hvbackup list --repo R --json`, the VM's points. A repository that does not exist yet holds
 * none. */
static int repo_list(struct run *R, const char *vm, struct lpoint **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	struct stat sb;
	if (stat(R->repo, &sb))
		return 0;
	char *argv[] = {(char *)R->o->hvbackup, "list", "--repo", R->repo, "--json", NULL};
	struct proc p;
	int r = engine_call(R, argv, 0, 0, &p);
	if (!r && (p.status || p.timeout || p.out.cut)) {
		char *m = p.out.cut ? strdup("output too long") : call_failure(R, &p);
		r = hv_err(HV_EIO, "hvbackup list: %s", m ? m : "failed");
		free(m);
	}
	sqlite3_stmt *st = NULL;
	if (!r && sqlite3_prepare_v2(R->js,
	                             "SELECT json_extract(p.value, '$.id'),"
	                             " json_extract(d.value, '$.name')"
	                             " FROM json_each(?1) p, json_each(p.value, '$.disks') d"
	                             " WHERE json_extract(p.value, '$.vm') = ?2"
	                             " ORDER BY 1, d.key",
	                             -1, &st, NULL) != SQLITE_OK)
		r = hv_err(HV_EIO, "hvbackup list: %s", sqlite3_errmsg(R->js));
	struct lpoint *v = NULL;
	size_t n = 0;
	if (!r) {
		sqlite3_bind_text(st, 1, p.out.p ? p.out.p : "[]", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, vm, -1, SQLITE_STATIC);
		int rc = SQLITE_DONE;
		while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(st, 0);
			const char *name = (const char *)sqlite3_column_text(st, 1);
			if (!n || v[n - 1].id != id) {
				struct lpoint *x = realloc(v, (n + 1) * sizeof *x);
				if (!x) {
					r = hv_err(HV_ENOMEM, "out of memory");
					break;
				}
				v = x;
				v[n++] = (struct lpoint){.id = id};
			}
			struct lpoint *lp = &v[n - 1];
			char **d = realloc(lp->disks, (lp->ndisks + 1) * sizeof *d);
			if (!d || !(d[lp->ndisks] = strdup(name ? name : ""))) {
				if (d)
					lp->disks = d;
				r = hv_err(HV_ENOMEM, "out of memory");
				break;
			}
			lp->disks = d;
			lp->ndisks++;
		}
		if (!r && rc != SQLITE_DONE)
			r = hv_err(HV_EIO, "hvbackup list: not the JSON it prints: %s",
			           sqlite3_errmsg(R->js));
	}
	sqlite3_finalize(st);
	proc_free(&p);
	if (r) {
		lpoints_free(v, n);
		return r;
	}
	*out = v;
	*nout = n;
	return 0;
}

static int point_add(struct vmrun *v, const struct point *pt)
{
	struct point *x = realloc(v->points, (v->npoints + 1) * sizeof *x);
	if (!x)
		return hv_err(HV_ENOMEM, "out of memory");
	v->points = x;
	v->points[v->npoints++] = *pt;
	return 0;
}

static int do_backup(struct run *R, const struct scenario_event *x, const struct scenario_entry *e)
{
	const struct scenario *s = R->s;
	struct vmrun *v = &R->vms[x->vm];
	struct backup_rec *b = &R->res->backups[x->seq - 1];
	struct engine eng = engine_of(R, e->backup.engine);
	const char *vm = s->vms[x->vm].name;
	*b = (struct backup_rec){.index = x->seq,
	                         .time = x->time,
	                         .vm_nth = x->vm_seq,
	                         .mode = e->backup.mode,
	                         .path = e->backup.path,
	                         .crash_after_blocks = x->crash_after_blocks,
	                         .crash_at_commit = x->crash_at_commit,
	                         .verified = -1};
	if (!(b->vm = strdup(vm)) || !(b->engine = strdup(eng.name)))
		return hv_err(HV_ENOMEM, "out of memory");
	int64_t rp, truth_before, truth;
	int r = newest_refpoint(R, v->id, &rp, &truth_before);
	if (r)
		return r;
	struct proc p = {0};
	const char *path = scenario_path_name(e->backup.path);
	if (eng.backup) {
		const char *vals[] = {R->host_dir, vm, R->repo, path,
		                      scenario_mode_name(e->backup.mode)};
		char *cmd = template_fill(eng.backup, BACKUP_PH, vals);
		if (!cmd)
			return hv_err(HV_ENOMEM, "out of memory");
		r = shell_call(R, cmd, x->crash_after_blocks, x->crash_at_commit, &p);
		free(cmd);
	} else {
		char *argv[16] = {(char *)R->o->hvbackup,
		                  "backup",
		                  "--host",
		                  R->host_dir,
		                  "--vm",
		                  (char *)vm,
		                  "--repo",
		                  R->repo,
		                  "--path",
		                  (char *)path};
		int k = 10;
		if (e->backup.mode == SCENARIO_MODE_FULL)
			argv[k++] = "--full";
		argv[k++] = "--json";
		argv[k] = NULL;
		r = engine_call(R, argv, x->crash_after_blocks, x->crash_at_commit, &p);
	}
	if (r) {
		b->message = clean(R, hv_errmsg());
		proc_free(&p);
		return 0; /* the backup failed; the run goes on */
	}
	bool engine_ok = !p.status && !p.timeout && !p.sig;
	b->ok = engine_ok;
	bool json = b->ok && read_backup_json(R, &p, b);
	if (!b->ok) {
		b->message = call_failure(R, &p);
	} else if (!json && !eng.backup) {
		b->ok = false;
		b->message = strdup("hvbackup printed no JSON result");
	} else if (e->backup.mode == SCENARIO_MODE_INCREMENTAL && (!b->has_type || b->full)) {
		b->ok = false;
		if (b->has_type)
			b->message =
			    fmt("mode: incremental, but it came out full (reason: %s)", b->reason);
		else
			b->message =
			    strdup("mode: incremental, but the engine did not say the type");
	}
	proc_free(&p);
	/* (compared by ground-truth point: reference point ids can be reused after a delete) */
	if ((r = newest_refpoint(R, v->id, &rp, &truth)))
		return r;
	bool new_rp = truth && truth != truth_before;
	/* a point the engine made: it reported success (even if the run fails the backup for its
	 * type), or (restores through hvbackup) the repository holds a new point of the VM although
	 * the process failed (killed after its catalog commit) */
	bool made = engine_ok && (json || eng.backup);
	if (!made && !eng.restore) {
		struct lpoint *lp;
		size_t n;
		if (!repo_list(R, vm, &lp, &n)) {
			for (size_t i = 0; i < n && !made; i++) {
				bool known = false;
				for (size_t k = 0; k < v->npoints; k++)
					known |= v->points[k].id == lp[i].id;
				if (!known) {
					made = true;
					b->point_id = lp[i].id;
				}
			}
			lpoints_free(lp, n);
		}
	}
	if (made) {
		struct point pt = {.id = b->point_id,
		                   .truth = new_rp ? truth : 0,
		                   .backup = x->seq,
		                   .engine = e->backup.engine};
		if ((r = point_add(v, &pt)))
			return r;
		b->point_no = (uint32_t)v->npoints;
	}
	return 0;
}

/* ---- restores and their judgement ------------------------------------------------------------ */

static struct restore_rec *restore_new(struct run *R)
{
	struct scenario_outcome *res = R->res;
	if (res->nrestores == res->cap_restores) {
		size_t cap = res->cap_restores ? res->cap_restores * 2 : 16;
		struct restore_rec *x = realloc(res->restores, cap * sizeof *x);
		if (!x)
			return NULL;
		res->restores = x;
		res->cap_restores = cap;
	}
	struct restore_rec *x = &res->restores[res->nrestores++];
	memset(x, 0, sizeof *x);
	return x;
}

static struct rdisk *rdisk_new(struct restore_rec *x, const char *name)
{
	struct rdisk *d = realloc(x->disks, (x->ndisks + 1) * sizeof *d);
	if (!d)
		return NULL;
	x->disks = d;
	d = &x->disks[x->ndisks];
	memset(d, 0, sizeof *d);
	if (!(d->name = strdup(name)))
		return NULL;
	x->ndisks++;
	return d;
}

/* The disks of a ground-truth point: host disk ids and names, in slot order. */
struct tdisk {
	int64_t id;
	char name[HOST_NAME_MAX_LEN + 16];
};

static int truth_disks(struct run *R, int64_t truth, struct tdisk **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int r =
	    prep(R->db, &st,
	         "SELECT t.disk_id, d.name FROM truth_point_disk t JOIN disk d ON d.id=t.disk_id"
	         " WHERE t.point_id=?1 ORDER BY d.slot, d.id");
	if (r)
		return r;
	sqlite3_bind_int64(st, 1, truth);
	while (!r && sqlite3_step(st) == SQLITE_ROW) {
		struct tdisk *x = realloc(*out, (*n + 1) * sizeof *x);
		if (!x) {
			r = hv_err(HV_ENOMEM, "out of memory");
			break;
		}
		*out = x;
		x[*n].id = sqlite3_column_int64(st, 0);
		snprintf(x[*n].name, sizeof x[*n].name, "%s",
		         (const char *)sqlite3_column_text(st, 1));
		(*n)++;
	}
	sqlite3_finalize(st);
	return r;
}

static int read_full(int fd, uint8_t *buf, size_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pread(fd, buf, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return hv_err(HV_EIO, "read at %llu: %s", (unsigned long long)off,
			              k ? strerror(errno) : "end of file");
		buf += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static void rdisk_problem(const struct run *R, struct rdisk *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rdisk_problem(const struct run *R, struct rdisk *d, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	free(d->problem);
	d->problem = clean(R, msg);
	d->ok = false;
}

/* Compares a restored disk with the ground truth of the point, block by block. */
static void judge(struct run *R, const char *file, bool vhdx, int64_t truth, int64_t disk_id,
                  struct rdisk *d)
{
	int64_t size, g;
	if (sql_int(R->db, &size, -1,
	            "SELECT size FROM truth_point_disk WHERE point_id=%lld AND disk_id=%lld",
	            (long long)truth, (long long)disk_id) ||
	    sql_int(R->db, &g, 0,
	            "SELECT granularity FROM truth_point_disk WHERE point_id=%lld AND disk_id=%lld",
	            (long long)truth, (long long)disk_id)) {
		rdisk_problem(R, d, "%s", hv_errmsg());
		return;
	}
	if (size < 0 || g <= 0) {
		rdisk_problem(R, d, "the VM had no disk %s at that point", d->name);
		return;
	}
	int fd = -1;
	struct vhdx_file *f = NULL;
	uint64_t have;
	if (vhdx) {
		if (vhdx_open(file, VHDX_OPEN_RDONLY, &f)) {
			rdisk_problem(R, d, "the restored VHDX does not open: %s", hv_errmsg());
			return;
		}
		have = vhdx_get_info(f)->virtual_size;
	} else {
		struct stat sb;
		if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb)) {
			rdisk_problem(R, d, "the restored file cannot be read: %s",
			              strerror(errno));
			if (fd >= 0)
				close(fd);
			return;
		}
		have = (uint64_t)sb.st_size;
	}
	uint8_t *buf = malloc((size_t)g);
	d->blocks = ((uint64_t)size + (uint64_t)g - 1) / (uint64_t)g;
	if (!buf) {
		rdisk_problem(R, d, "out of memory");
	} else if (have != (uint64_t)size) {
		rdisk_problem(R, d, "restored %llu bytes, the disk had %llu at that point",
		              (unsigned long long)have, (unsigned long long)size);
	} else {
		d->ok = true;
		/* a hole of a sparse raw file reads as zeros: hashed without reading it */
		uint64_t data = 0;
		uint8_t zero[TRUTH_HASH_SIZE];
		truth_zero_hash((uint32_t)g, zero);
		for (uint64_t b = 0; b < d->blocks; b++) {
			uint64_t off = b * (uint64_t)g;
			size_t n = (uint64_t)size - off < (uint64_t)g
			               ? (size_t)((uint64_t)size - off)
			               : (size_t)g;
			uint8_t want[TRUTH_HASH_SIZE], got[TRUTH_HASH_SIZE];
			if (!vhdx && data < off) {
				off_t k = lseek(fd, (off_t)off, SEEK_DATA);
				data = k >= 0 ? (uint64_t)k : errno == ENXIO ? UINT64_MAX : off;
			}
			bool hole = !vhdx && data >= off + n;
			int r = hole   ? 0
			        : vhdx ? vhdx_read(f, buf, off, n)
			               : read_full(fd, buf, n, off);
			if (!r)
				r = truth_block_hash(R->db, truth, disk_id, b, want);
			if (r) {
				rdisk_problem(R, d, "block %llu: %s", (unsigned long long)b,
				              hv_errmsg());
				break;
			}
			if (hole && n == (size_t)g)
				memcpy(got, zero, sizeof got);
			else if (hole)
				truth_zero_hash((uint32_t)n, got);
			else
				truth_hash(buf, n, got);
			if (memcmp(want, got, TRUTH_HASH_SIZE)) {
				if (!d->bad++)
					d->first_bad = b;
				d->ok = false;
			}
		}
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	vhdx_close(f);
}

/* Restores one disk of a point with the engine, then judges it. */
static void restore_disk(struct run *R, struct restore_rec *x, const struct engine *eng,
                         const struct point *pt, uint32_t n, int64_t point_id, int64_t disk_id,
                         struct rdisk *d)
{
	char id[32], *out = fmt("%s/r%zu-%zu.%s", R->rdir, R->res->nrestores, x->ndisks,
	                        x->vhdx ? "vhdx" : "raw");
	if (!out) {
		rdisk_problem(R, d, "out of memory");
		return;
	}
	unlink(out);
	struct proc p = {0};
	int r;
	if (eng->restore) {
		snprintf(id, sizeof id, "%lld", (long long)(pt->id ? pt->id : (int64_t)n));
		const char *vals[] = {R->repo, x->vm, id, d->name, out};
		char *cmd = template_fill(eng->restore, RESTORE_PH, vals);
		r = cmd ? shell_call(R, cmd, 0, 0, &p) : hv_err(HV_ENOMEM, "out of memory");
		free(cmd);
	} else {
		snprintf(id, sizeof id, "%lld", (long long)point_id);
		char *argv[] = {(char *)R->o->hvbackup,
		                "restore",
		                "--repo",
		                R->repo,
		                "--vm",
		                x->vm,
		                "--point",
		                id,
		                "--disk",
		                d->name,
		                "--to",
		                out,
		                NULL};
		r = engine_call(R, argv, 0, 0, &p);
	}
	if (r) {
		rdisk_problem(R, d, "restore: %s", hv_errmsg());
	} else if (p.status || p.timeout || p.sig) {
		char *m = call_failure(R, &p);
		rdisk_problem(R, d, "restore failed: %s", m ? m : "");
		free(m);
	} else if (!pt->truth) {
		rdisk_problem(R, d,
		              "no ground truth: backup #%u made no new reference point on the host",
		              pt->backup);
	} else {
		judge(R, out, x->vhdx, pt->truth, disk_id, d);
	}
	proc_free(&p);
	if (!R->keep || d->ok)
		unlink(out);
	free(out);
}

static int64_t disk_by_name(struct run *R, int64_t vm, const char *name)
{
	int64_t id = 0;
	char *sql = sqlite3_mprintf("SELECT id FROM disk WHERE vm_id=%lld AND name=%Q ORDER BY id",
	                            (long long)vm, name);
	sqlite3_stmt *st;
	if (sql && sqlite3_prepare_v2(R->db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			id = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_free(sql);
	return id;
}

/* Restores point n (1-based) of the VM: every disk, or the one `label` named at that point. */
static int restore_point(struct run *R, const struct scenario_event *x,
                         const struct scenario_entry *e, uint32_t n, const struct lpoint *lp,
                         size_t nlp, const char *list_err)
{
	struct vmrun *v = &R->vms[x->vm];
	struct restore_rec *rr = restore_new(R);
	if (!rr || !(rr->vm = strdup(R->s->vms[x->vm].name)))
		return hv_err(HV_ENOMEM, "out of memory");
	rr->event = x->seq;
	rr->time = x->time;
	rr->point_no = n;
	rr->vhdx = e->restore.format == SCENARIO_FORMAT_VHDX;
	const struct point *pt = &v->points[n - 1];
	struct engine eng = engine_of(R, pt->engine);
	struct tdisk *td = NULL;
	size_t ntd = 0;
	int r = 0;
	/* the disk names of the point: the repository's (hvbackup), else the truth's */
	const struct lpoint *rp = NULL;
	if (!eng.restore) {
		if (list_err) {
			rr->error = strdup(list_err);
		} else if (n > nlp) {
			rr->error =
			    fmt("the repository holds %zu point(s) of the VM, not %u", nlp, n);
		} else {
			rp = &lp[n - 1];
			rr->point_id = rp->id;
			/* the record of the point with that id, when the engine said it */
			for (size_t k = 0; k < v->npoints; k++)
				if (v->points[k].id == rp->id)
					pt = &v->points[k];
		}
	} else if (!pt->truth) {
		rr->error =
		    fmt("no ground truth: backup #%u made no new reference point on the host",
		        pt->backup);
	} else {
		rr->point_id = pt->id;
	}
	if (pt->truth && (r = truth_disks(R, pt->truth, &td, &ntd)))
		return r;
	const char *want = NULL; /* one disk: its name at that point */
	char name[HOST_NAME_MAX_LEN + 16];
	if (!rr->error && e->restore.disk) {
		struct label *l = label_find(v, e->restore.disk);
		for (size_t i = 0; l && i < ntd && !want; i++)
			for (size_t k = 0; k < l->n; k++)
				if (td[i].id == l->ids[k])
					want = td[i].name;
		if (!want && l && l->n && !pt->truth) {
			int64_t id = l->ids[l->n - 1];
			sqlite3_stmt *st;
			if (!prep(R->db, &st, "SELECT name FROM disk WHERE id=?1")) {
				sqlite3_bind_int64(st, 1, id);
				if (sqlite3_step(st) == SQLITE_ROW)
					snprintf(name, sizeof name, "%s",
					         (const char *)sqlite3_column_text(st, 0));
				sqlite3_finalize(st);
				want = name;
			}
		}
		if (!want)
			rr->error =
			    fmt("disk '%s' was not attached at point %u", e->restore.disk, n);
	}
	for (size_t i = 0; !rr->error && rp && i < rp->ndisks; i++) {
		if (want && strcmp(rp->disks[i], want))
			continue;
		struct rdisk *d = rdisk_new(rr, rp->disks[i]);
		if (!d) {
			r = hv_err(HV_ENOMEM, "out of memory");
			goto out;
		}
		restore_disk(R, rr, &eng, pt, n, rp->id, disk_by_name(R, v->id, d->name), d);
	}
	/* every disk of the truth point must be in the point (and restore) */
	for (size_t i = 0; !rr->error && i < ntd; i++) {
		if (want && strcmp(td[i].name, want))
			continue;
		bool found = false;
		for (size_t k = 0; k < rr->ndisks; k++)
			found |= !strcmp(rr->disks[k].name, td[i].name);
		if (found)
			continue;
		struct rdisk *d = rdisk_new(rr, td[i].name);
		if (!d) {
			r = hv_err(HV_ENOMEM, "out of memory");
			goto out;
		}
		if (rp)
			rdisk_problem(R, d, "the point has no disk %s (attached at the checkpoint)",
			              td[i].name);
		else
			restore_disk(R, rr, &eng, pt, n, 0, td[i].id, d);
	}
	if (!rr->error && !rr->ndisks && want) {
		struct rdisk *d = rdisk_new(rr, want);
		if (!d) {
			r = hv_err(HV_ENOMEM, "out of memory");
			goto out;
		}
		rdisk_problem(R, d, "the point has no disk %s", want);
	}
	if (!rr->error && !rr->ndisks)
		rr->error = strdup("the point has no disks");
	rr->ok = !rr->error;
	for (size_t k = 0; k < rr->ndisks; k++)
		rr->ok &= rr->disks[k].ok;
	struct backup_rec *b = pt->backup ? &R->res->backups[pt->backup - 1] : NULL;
	if (b)
		b->verified = b->verified < 0 ? rr->ok : b->verified && rr->ok;
out:
	free(td);
	return r;
}

static int do_restore(struct run *R, const struct scenario_event *x, const struct scenario_entry *e)
{
	struct vmrun *v = &R->vms[x->vm];
	uint32_t first, last, have = (uint32_t)v->npoints;
	if (e->restore.point == SCENARIO_POINT_ALL) {
		first = 1;
		last = have;
	} else {
		first = last = e->restore.point == SCENARIO_POINT_LAST ? have : e->restore.point;
	}
	if (!have || first > have) {
		struct restore_rec *rr = restore_new(R);
		if (!rr || !(rr->vm = strdup(R->s->vms[x->vm].name)))
			return hv_err(HV_ENOMEM, "out of memory");
		rr->event = x->seq;
		rr->time = x->time;
		rr->point_no = e->restore.point == SCENARIO_POINT_ALL ||
		                       e->restore.point == SCENARIO_POINT_LAST
		                   ? 0
		                   : e->restore.point;
		rr->vhdx = e->restore.format == SCENARIO_FORMAT_VHDX;
		rr->error = have ? fmt("the VM has %u point(s), not %u", have, rr->point_no)
		                 : strdup("the VM has no point to restore");
		return 0;
	}
	/* the repository's view of the VM's points, once for the whole event */
	struct lpoint *lp = NULL;
	size_t nlp = 0;
	bool need_list = false;
	for (uint32_t n = first; n <= last; n++)
		need_list |= !engine_of(R, v->points[n - 1].engine).restore;
	char *list_err = NULL;
	if (need_list && repo_list(R, R->s->vms[x->vm].name, &lp, &nlp)) {
		char *m = clean(R, hv_errmsg());
		list_err = m ? m : strdup("hvbackup list failed");
	}
	int r = 0;
	for (uint32_t n = first; n <= last && !r; n++)
		r = restore_point(R, x, e, n, lp, nlp, list_err);
	lpoints_free(lp, nlp);
	free(list_err);
	return r;
}

/* ---- expectations ---------------------------------------------------------------------------- */

static const char *ordinal(uint32_t n)
{
	return n % 100 >= 11 && n % 100 <= 13 ? "th"
	       : n % 10 == 1                  ? "st"
	       : n % 10 == 2                  ? "nd"
	       : n % 10 == 3                  ? "rd"
	                                      : "th";
}

static void mib(char *buf, size_t size, uint64_t bytes)
{
	snprintf(buf, size, "%.1f MiB", (double)bytes / 1048576.0);
}

static int check_restores(struct run *R, struct sbuf *ev)
{
	const struct scenario_outcome *res = R->res;
	size_t disks = 0, bad = 0;
	for (size_t i = 0; i < res->nrestores; i++) {
		const struct restore_rec *x = &res->restores[i];
		char t[32];
		scenario_duration_format(x->time, t, sizeof t);
		char pt[24] = "";
		if (x->point_no)
			snprintf(pt, sizeof pt, " point %u", x->point_no);
		if (x->error && bad++ < RUN_SHOW_FAILURES)
			sbuf_printf(ev, "%s%s%s (at %s): %s", bad > 1 ? "; " : "", x->vm, pt, t,
			            x->error);
		for (size_t k = 0; k < x->ndisks; k++) {
			const struct rdisk *d = &x->disks[k];
			disks++;
			if (d->ok || bad++ >= RUN_SHOW_FAILURES)
				continue;
			sbuf_printf(ev, "%s%s point %u disk %s: ", bad > 1 ? "; " : "", x->vm,
			            x->point_no, d->name);
			if (d->problem)
				sbuf_str(ev, d->problem);
			else
				sbuf_printf(
				    ev,
				    "block %llu differs from the truth (%llu of %llu blocks "
				    "differ)",
				    (unsigned long long)d->first_bad, (unsigned long long)d->bad,
				    (unsigned long long)d->blocks);
		}
	}
	if (bad > RUN_SHOW_FAILURES)
		sbuf_printf(ev, "; and %zu more", bad - RUN_SHOW_FAILURES);
	if (!bad && !disks)
		sbuf_str(ev, "nothing was restored");
	else if (!bad)
		sbuf_printf(ev, "%zu restore(s), %zu disk(s): every block equals the truth",
		            res->nrestores, disks);
	return !bad && disks;
}

static int check_backup(struct run *R, const struct scenario_expect *x, struct sbuf *ev)
{
	const struct backup_rec *b = &R->res->backups[x->backup.index - 1];
	const char *want_res = x->backup.result == SCENARIO_RESULT_SUCCEEDED ? "succeeded"
	                       : x->backup.result == SCENARIO_RESULT_FAILED  ? "failed"
	                                                                     : NULL;
	const char *want_type = x->backup.type == SCENARIO_TYPE_FULL          ? "full"
	                        : x->backup.type == SCENARIO_TYPE_INCREMENTAL ? "incremental"
	                                                                      : NULL;
	const char *type = b->has_type ? (b->full ? "full" : "incremental") : "of unknown type";
	sbuf_printf(ev, "backup #%u: ", b->index);
	if (want_res && !strcmp(want_res, "failed")) {
		if (!b->ok) {
			sbuf_printf(ev, "failed as expected (%s)", b->message ? b->message : "");
			return 1;
		}
		sbuf_printf(ev, "expected to fail, succeeded (%s, reason: %s)", type,
		            b->reason ? b->reason : "");
		return 0;
	}
	if (!b->ok) {
		sbuf_printf(ev, "expected %s, failed: %s", want_type ? want_type : "success",
		            b->message ? b->message : "");
		return 0;
	}
	const char *reason = b->reason ? b->reason : "";
	if (want_type && (!b->has_type || strcmp(want_type, type))) {
		sbuf_printf(ev, "expected %s, was %s (reason: %s)", want_type, type, reason);
		return 0;
	}
	if (x->backup.reason_contains && !strstr(reason, x->backup.reason_contains)) {
		sbuf_printf(ev, "expected a reason containing \"%s\", was %s (reason: %s)",
		            x->backup.reason_contains, type, reason);
		return 0;
	}
	sbuf_printf(ev, "%s (reason: %s)", type, reason);
	return 1;
}

static int check_counts(struct run *R, const struct scenario_expect *x, struct sbuf *ev)
{
	const struct scenario_outcome *res = R->res;
	size_t ok = 0, failed = 0, shown = 0;
	for (size_t i = 0; i < res->nbackups; i++) {
		if (res->backups[i].ok)
			ok++;
		else
			failed++;
	}
	bool want_ok = x->kind == SCENARIO_EXPECT_BACKUPS_SUCCEEDED;
	uint64_t want = want_ok && x->all ? res->nbackups : x->n;
	sbuf_printf(ev, "%zu of %zu succeeded, %zu failed", ok, res->nbackups, failed);
	for (size_t i = 0; i < res->nbackups; i++) {
		const struct backup_rec *b = &res->backups[i];
		if (b->ok || shown++ >= RUN_SHOW_FAILURES)
			continue;
		sbuf_printf(ev, "%s#%u (%s): %s", shown > 1 ? "; " : ": ", b->index, b->vm,
		            b->message ? b->message : "");
	}
	if (shown > RUN_SHOW_FAILURES)
		sbuf_printf(ev, "; and %zu more", shown - RUN_SHOW_FAILURES);
	return (want_ok ? ok : failed) == want;
}

/* Rows of "<a>: <b>" from a query, joined with "; " (at most RUN_SHOW_FAILURES, then a count). */
static int list_rows(struct run *R, const char *sql, const char *fmt, struct sbuf *ev,
                     size_t *count)
{
	sqlite3_stmt *st;
	int r = prep(R->db, &st, sql);
	if (r)
		return r;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if ((*count)++ >= RUN_SHOW_FAILURES)
			continue;
		sbuf_printf(ev, fmt, *count > 1 ? "; " : "",
		            (const char *)sqlite3_column_text(st, 0),
		            (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	return 0;
}

/* The end of a check that listed offending rows: the error, the overflow count, or `ok_text`. */
static int listing_verdict(int r, size_t n, struct sbuf *ev, const char *ok_text)
{
	if (r) {
		sbuf_str(ev, hv_errmsg());
		return 0;
	}
	if (n > RUN_SHOW_FAILURES)
		sbuf_printf(ev, "; and %zu more", n - RUN_SHOW_FAILURES);
	if (!n)
		sbuf_str(ev, ok_text);
	return !n;
}

static int check_leftovers(struct run *R, struct sbuf *ev)
{
	size_t n = 0;
	int r = list_rows(R,
	                  "SELECT v.name, count(*) FROM snapshot s JOIN vm v ON v.id=s.vm_id"
	                  " WHERE s.type=32768 GROUP BY v.id ORDER BY v.id",
	                  "%s%s: %s recovery checkpoint(s)", ev, &n);
	if (!r)
		r = list_rows(R,
		              "SELECT v.name, count(*) FROM refpoint p JOIN vm v ON v.id=p.vm_id"
		              " GROUP BY v.id HAVING count(*) > 1 ORDER BY v.id",
		              "%s%s: %s reference points", ev, &n);
	return listing_verdict(r, n, ev, "no recovery checkpoint, at most one reference point per VM");
}

static int check_merges(struct run *R, struct sbuf *ev)
{
	size_t n = 0;
	int r = list_rows(R,
	                  "SELECT v.name || ' disk ' || d.name, max(c.depth) FROM chain c"
	                  " JOIN disk d ON d.id=c.disk_id JOIN vm v ON v.id=d.vm_id"
	                  " WHERE d.attached GROUP BY d.id HAVING max(c.depth) > 0 ORDER BY d.id",
	                  "%s%s: %s AVHDX level(s) not merged", ev, &n);
	return listing_verdict(r, n, ev, "every attached disk is its base VHDX");
}

static int check_verify(struct run *R, struct sbuf *ev)
{
	struct stat sb;
	if (stat(R->repo, &sb)) {
		sbuf_str(ev, "there is no repository (no backup wrote one)");
		return 0;
	}
	char *argv[] = {(char *)R->o->hvbackup, "verify", "--repo", R->repo, NULL};
	struct proc p;
	if (engine_call(R, argv, 0, 0, &p)) {
		char *m = clean(R, hv_errmsg());
		sbuf_printf(ev, "hvbackup verify: %s", m ? m : "");
		free(m);
		return 0;
	}
	bool ok = !p.status && !p.timeout && !p.sig;
	char *line = ok ? last_line(p.out.p ? p.out.p : "", p.out.n) : NULL;
	char *m = ok ? clean(R, line ? line : "") : call_failure(R, &p);
	sbuf_printf(ev, "hvbackup verify: %s", m ? m : "");
	free(m);
	free(line);
	proc_free(&p);
	return ok;
}

static int check_audit(struct run *R, const struct scenario_expect *x, struct sbuf *ev)
{
	int64_t n;
	if (sql_int(R->db, &n, 0, "SELECT count(*) FROM audit WHERE mistake IS NOT NULL")) {
		sbuf_str(ev, hv_errmsg());
		return 0;
	}
	sbuf_printf(ev, "%lld client mistake(s) in the audit log", (long long)n);
	if (n) {
		size_t k = 0;
		sbuf_str(ev, ", first: ");
		list_rows(R,
		          "SELECT mistake, call FROM audit WHERE mistake IS NOT NULL ORDER BY seq"
		          " LIMIT 1",
		          "%s%s (call %s)", ev, &k);
	}
	return (uint64_t)n <= x->n;
}

static void totals(const struct scenario_outcome *res, uint64_t t[4])
{
	memset(t, 0, 4 * sizeof *t);
	for (size_t i = 0; i < res->nbackups; i++) {
		const struct backup_rec *b = &res->backups[i];
		if (!b->ok && !b->point_no)
			continue;
		t[0] += b->changed;
		t[1] += b->read;
		t[2] += b->stored;
		t[3] += b->dedup;
	}
}

static int check_dedup(struct run *R, const struct scenario_expect *x, struct sbuf *ev)
{
	uint64_t t[4];
	totals(R->res, t);
	char rd[32], st[32];
	mib(rd, sizeof rd, t[1]);
	mib(st, sizeof st, t[2]);
	if (!t[2]) {
		sbuf_printf(ev, "read %s, stored nothing", rd);
		return t[1] > 0;
	}
	double ratio = (double)t[1] / (double)t[2];
	bool ok = ratio >= x->ratio;
	sbuf_printf(ev, "read %s, stored %s: ratio %.2f %s %.6g", rd, st, ratio, ok ? ">=" : "<",
	            x->ratio);
	return ok;
}

/* The expectation as a short line: `backup #4 (db, 4th): full, reason contains "…"`. */
static char *expect_name(const struct run *R, const struct scenario_expect *x)
{
	struct sbuf b = {0};
	sbuf_str(&b, scenario_expect_name(x->kind));
	switch (x->kind) {
	case SCENARIO_EXPECT_BACKUP: {
		const struct backup_rec *r = &R->res->backups[x->backup.index - 1];
		sbuf_printf(&b, " #%u (%s, %u%s)", x->backup.index, r->vm, r->vm_nth,
		            ordinal(r->vm_nth));
		const char *sep = ":";
		if (x->backup.result != SCENARIO_RESULT_ANY) {
			sbuf_printf(&b, "%s %s", sep,
			            x->backup.result == SCENARIO_RESULT_FAILED ? "failed"
			                                                       : "succeeded");
			sep = ",";
		}
		if (x->backup.type != SCENARIO_TYPE_ANY) {
			sbuf_printf(&b, "%s %s", sep,
			            x->backup.type == SCENARIO_TYPE_FULL ? "full" : "incremental");
			sep = ",";
		}
		if (x->backup.reason_contains)
			sbuf_printf(&b, "%s reason contains \"%s\"", sep,
			            x->backup.reason_contains);
		break;
	}
	case SCENARIO_EXPECT_BACKUPS_SUCCEEDED:
		if (x->all) {
			sbuf_str(&b, ": all");
			break;
		}
		/* fallthrough */
	case SCENARIO_EXPECT_BACKUPS_FAILED:
	case SCENARIO_EXPECT_AUDIT_MISTAKES:
		sbuf_printf(&b, ": %llu", (unsigned long long)x->n);
		break;
	case SCENARIO_EXPECT_MIN_DEDUP_RATIO:
		sbuf_printf(&b, ": %.6g", x->ratio);
		break;
	default:
		sbuf_str(&b, ": true");
		break;
	}
	return sbuf_take(&b);
}

static int evaluate(struct run *R)
{
	const struct scenario *s = R->s;
	struct scenario_outcome *res = R->res;
	if (!(res->checks = calloc(s->nexpect ? s->nexpect : 1, sizeof *res->checks)))
		return hv_err(HV_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->nexpect; i++) {
		const struct scenario_expect *x = &s->expect[i];
		struct sbuf ev = {.max = 4096};
		int pass = 0;
		switch (x->kind) {
		case SCENARIO_EXPECT_RESTORES_MATCH_TRUTH:
			pass = check_restores(R, &ev);
			break;
		case SCENARIO_EXPECT_BACKUP:
			pass = check_backup(R, x, &ev);
			break;
		case SCENARIO_EXPECT_BACKUPS_SUCCEEDED:
		case SCENARIO_EXPECT_BACKUPS_FAILED:
			pass = check_counts(R, x, &ev);
			break;
		case SCENARIO_EXPECT_NO_LEFTOVERS:
			pass = check_leftovers(R, &ev);
			break;
		case SCENARIO_EXPECT_NO_PENDING_MERGES:
			pass = check_merges(R, &ev);
			break;
		case SCENARIO_EXPECT_REPOSITORY_VERIFIES:
			pass = check_verify(R, &ev);
			break;
		case SCENARIO_EXPECT_AUDIT_MISTAKES:
			pass = check_audit(R, x, &ev);
			break;
		case SCENARIO_EXPECT_MIN_DEDUP_RATIO:
			pass = check_dedup(R, x, &ev);
			break;
		}
		struct check *c = &res->checks[res->nchecks++];
		c->line = x->mark.line;
		c->pass = pass;
		c->evidence = sbuf_take(&ev);
		c->name = expect_name(R, x);
		if (!c->evidence || !c->name)
			return hv_err(HV_ENOMEM, "out of memory");
	}
	return 0;
}

/* ---- the run --------------------------------------------------------------------------------- */

static int run_events(struct run *R)
{
	const struct scenario *s = R->s;
	for (size_t i = 0; i < s->nevents; i++) {
		const struct scenario_event *x = &s->events[i];
		const struct scenario_entry *e = &s->timeline[x->entry];
		int r = advance(R, x->time);
		switch (r ? SCENARIO_ACTION_COUNT : (int)e->action) {
		case SCENARIO_WRITE:
			r = do_write(R, x, e);
			break;
		case SCENARIO_BACKUP:
			r = do_backup(R, x, e);
			break;
		case SCENARIO_RESTORE:
			r = do_restore(R, x, e);
			break;
		case SCENARIO_FAULT:
			r = do_fault(R, x, e);
			break;
		case SCENARIO_STATE:
			r = host_vm_set_state(R->h, R->vms[x->vm].id, vm_state_value(e->state.to));
			break;
		case SCENARIO_SET:
			r = do_set(R, e);
			break;
		default:
			break;
		}
		if (r == HV_ENOMEM)
			return r;
		if (r) {
			char what[256];
			snprintf(
			    what, sizeof what, "%s%s%s%s%s (line %u)",
			    scenario_action_name(e->action), e->action == SCENARIO_FAULT ? " " : "",
			    e->action == SCENARIO_FAULT ? scenario_fault_name(e->fault.kind) : "",
			    x->vm != SCENARIO_NO_VM ? " of " : "",
			    x->vm != SCENARIO_NO_VM ? s->vms[x->vm].name : "", e->mark.line);
			run_error(R, x->time, what);
		}
	}
	struct scenario_counts c;
	scenario_count(s, &c);
	return advance(R, c.end);
}

int scenario_run(const struct scenario *s, const struct scenario_run_opts *o,
                 struct scenario_outcome **out)
{
	*out = NULL;
	if (!o->hvbackup || access(o->hvbackup, X_OK))
		return hv_err(HV_ENOTFOUND,
		              "%s: the hvbackup binary is not there (or not executable)",
		              o->hvbackup ? o->hvbackup : "hvbackup");
	int r;
	if ((o->backup && (r = scenario_template_check(o->backup, false))) ||
	    (o->restore && (r = scenario_template_check(o->restore, true))))
		return r;
	struct run R = {.s = s,
	                .o = o,
	                .keep = o->keep != NULL,
	                .timeout = o->timeout ? o->timeout : RUN_TIMEOUT};
	struct scenario_counts c;
	scenario_count(s, &c);
	if (!(R.res = calloc(1, sizeof *R.res)) || !(R.res->name = strdup(s->name)) ||
	    !(R.res->backups = calloc(c.per_action[SCENARIO_BACKUP] + 1, sizeof *R.res->backups))) {
		r = hv_err(HV_ENOMEM, "out of memory");
		goto out;
	}
	R.res->nbackups = c.per_action[SCENARIO_BACKUP];
	R.res->seed = s->seed;
	R.res->external = o->backup != NULL;
	for (size_t i = 0; i < R.res->nbackups; i++)
		R.res->backups[i].verified = -1;
	if ((r = setup(&R)) || (r = run_events(&R)) || (r = evaluate(&R)))
		goto out;
out:
	if (R.h)
		host_close(R.h);
	if (R.js)
		sqlite3_close(R.js);
	for (size_t i = 0; R.vms && i < s->nvms; i++) {
		for (size_t k = 0; k < R.vms[i].nlabels; k++)
			free(R.vms[i].labels[k].ids);
		free(R.vms[i].labels);
		free(R.vms[i].points);
	}
	free(R.vms);
	if (R.dir && !R.keep)
		rm_tree(R.dir);
	else if (R.rdir && dir_empty(R.rdir))
		rmdir(R.rdir);
	free(R.dir);
	free(R.host_dir);
	free(R.repo);
	free(R.rdir);
	if (r) {
		scenario_outcome_free(R.res);
		return r;
	}
	*out = R.res;
	return 0;
}

/* ---- output: the human summary --------------------------------------------------------------- */

static const char *mark(int verified)
{
	return verified < 0 ? "-" : verified ? "✓" : "✗";
}

int scenario_outcome_print(const struct scenario_outcome *r, FILE *f)
{
	fprintf(f, "scenario %s (seed %llu)%s\n\n", r->name, (unsigned long long)r->seed,
	        r->external ? ", external engine" : "");
	fprintf(f, "  %-4s %-10s %-16s %5s  %-11s %11s %11s %11s  %s  %s\n", "#", "time", "VM",
	        "point", "type", "changed", "read", "stored", "ok", "reason");
	size_t full = 0, incr = 0, failed = 0;
	for (size_t i = 0; i < r->nbackups; i++) {
		const struct backup_rec *b = &r->backups[i];
		char t[32], ch[32], rd[32], st[32], pt[16];
		scenario_duration_format(b->time, t, sizeof t);
		mib(ch, sizeof ch, b->changed);
		mib(rd, sizeof rd, b->read);
		mib(st, sizeof st, b->stored);
		snprintf(pt, sizeof pt, "%u", b->point_no);
		if (!b->ok) {
			failed++;
			fprintf(f, "  %-4u %-10s %-16s %5s  %-11s %11s %11s %11s  %s  %s\n",
			        b->index, t, b->vm, b->point_no ? pt : "-", "FAILED", "", "", "",
			        "✗", b->message ? b->message : "");
			continue;
		}
		if (b->full)
			full++;
		else
			incr++;
		fprintf(f, "  %-4u %-10s %-16s %5s  %-11s %11s %11s %11s  %s  %s\n", b->index, t,
		        b->vm, pt, b->has_type ? (b->full ? "full" : "incremental") : "?",
		        b->has_bytes ? ch : "?", b->has_bytes ? rd : "?", b->has_bytes ? st : "?",
		        mark(b->verified), b->reason ? b->reason : "");
	}
	if (r->nrestores)
		fprintf(f, "\nrestores:\n");
	for (size_t i = 0; i < r->nrestores; i++) {
		const struct restore_rec *x = &r->restores[i];
		char t[32];
		scenario_duration_format(x->time, t, sizeof t);
		char pt[16] = "-";
		if (x->point_no)
			snprintf(pt, sizeof pt, "%u", x->point_no);
		fprintf(f, "  %-10s %-16s point %-4s %s ", t, x->vm, pt, mark(x->ok));
		if (x->error)
			fprintf(f, " %s", x->error);
		for (size_t k = 0; k < x->ndisks; k++) {
			const struct rdisk *d = &x->disks[k];
			fprintf(f, " %s", d->name);
			if (d->problem)
				fprintf(f, " (✗ %s)", d->problem);
			else if (!d->ok)
				fprintf(f, " (✗ block %llu differs, %llu of %llu)",
				        (unsigned long long)d->first_bad,
				        (unsigned long long)d->bad, (unsigned long long)d->blocks);
		}
		fprintf(f, "%s\n", x->vhdx ? " [vhdx]" : "");
	}
	uint64_t t[4];
	totals(r, t);
	char ch[32], rd[32], st[32], dd[32];
	mib(ch, sizeof ch, t[0]);
	mib(rd, sizeof rd, t[1]);
	mib(st, sizeof st, t[2]);
	mib(dd, sizeof dd, t[3]);
	fprintf(
	    f,
	    "\ntotals: %zu backup(s): %zu full, %zu incremental, %zu failed; changed %s, read %s,"
	    " stored %s (%s deduplicated)\n",
	    r->nbackups, full, incr, failed, ch, rd, st, dd);
	if (t[2] && t[1] > t[3])
		fprintf(f,
		        "ratios: read/stored %.2f (dedup %.2f = read/(read - deduplicated), "
		        "compression %.2f = (read - deduplicated)/stored)\n",
		        (double)t[1] / (double)t[2], (double)t[1] / (double)(t[1] - t[3]),
		        (double)(t[1] - t[3]) / (double)t[2]);
	for (size_t i = 0; i < r->nerrors; i++)
		fprintf(f, "%sERROR %s\n", i ? "" : "\n", r->errors[i]);
	fprintf(f, "\nexpectations:\n");
	size_t nfail = 0;
	for (size_t i = 0; i < r->nchecks; i++) {
		const struct check *c = &r->checks[i];
		nfail += !c->pass;
		fprintf(f, "  %s  %s\n        %s\n", c->pass ? "PASS" : "FAIL", c->name,
		        c->evidence);
	}
	if (scenario_outcome_passed(r))
		fprintf(f, "\n%s: PASS (%zu expectation(s) hold)\n", r->name, r->nchecks);
	else
		fprintf(f, "\n%s: FAIL (%zu of %zu expectation(s) failed%s)\n", r->name, nfail,
		        r->nchecks, r->nerrors ? ", events failed on the host" : "");
	return ferror(f) ? hv_err(HV_EIO, "cannot write the summary") : 0;
}

/* ---- output: the JSON report ----------------------------------------------------------------- */

/* A small writer: keys must be given in sorted order by the caller. */
struct jw {
	FILE *f;
	int depth;
	bool first[16];
};

static void jw_nl(struct jw *w)
{
	fputc('\n', w->f);
	for (int i = 0; i < w->depth; i++)
		fputs("  ", w->f);
}

static void jw_item(struct jw *w)
{
	if (w->depth) {
		if (!w->first[w->depth])
			fputc(',', w->f);
		w->first[w->depth] = false;
		jw_nl(w);
	}
}

static void jw_str_raw(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void jw_key(struct jw *w, const char *k)
{
	jw_item(w);
	jw_str_raw(w->f, k);
	fputs(": ", w->f);
}

static void jw_open(struct jw *w, char c)
{
	fputc(c, w->f);
	w->first[++w->depth] = true;
}

static void jw_close(struct jw *w, char c)
{
	bool empty = w->first[w->depth];
	w->depth--;
	if (!empty)
		jw_nl(w);
	fputc(c, w->f);
}

static void jw_s(struct jw *w, const char *k, const char *v)
{
	jw_key(w, k);
	if (v)
		jw_str_raw(w->f, v);
	else
		fputs("null", w->f);
}

static void jw_u(struct jw *w, const char *k, uint64_t v)
{
	jw_key(w, k);
	fprintf(w->f, "%llu", (unsigned long long)v);
}

static void jw_b(struct jw *w, const char *k, int v)
{
	jw_key(w, k);
	fputs(v < 0 ? "null" : v ? "true" : "false", w->f);
}

static void jw_ratio(struct jw *w, const char *k, uint64_t num, uint64_t den)
{
	jw_key(w, k);
	if (den)
		fprintf(w->f, "%.4f", (double)num / (double)den);
	else
		fputs("null", w->f);
}

int scenario_outcome_json(const struct scenario_outcome *r, FILE *f)
{
	struct jw w = {.f = f};
	char t[32];
	jw_open(&w, '{');
	jw_key(&w, "backups");
	jw_open(&w, '[');
	for (size_t i = 0; i < r->nbackups; i++) {
		const struct backup_rec *b = &r->backups[i];
		scenario_duration_format(b->time, t, sizeof t);
		jw_item(&w);
		jw_open(&w, '{');
		jw_s(&w, "at", t);
		jw_u(&w, "bytes_changed", b->changed);
		jw_u(&w, "bytes_dedup", b->dedup);
		jw_u(&w, "bytes_read", b->read);
		jw_u(&w, "bytes_stored", b->stored);
		if (b->crash_after_blocks)
			jw_u(&w, "crash_after_blocks", b->crash_after_blocks);
		if (b->crash_at_commit)
			jw_u(&w, "crash_at_commit", b->crash_at_commit);
		jw_s(&w, "engine", b->engine);
		jw_u(&w, "index", b->index);
		jw_s(&w, "message", b->message);
		jw_s(&w, "mode", scenario_mode_name(b->mode));
		jw_s(&w, "path", scenario_path_name(b->path));
		jw_key(&w, "point");
		if (b->point_no)
			fprintf(f, "%u", b->point_no);
		else
			fputs("null", f);
		jw_key(&w, "point_id");
		if (b->point_id)
			fprintf(f, "%lld", (long long)b->point_id);
		else
			fputs("null", f);
		jw_s(&w, "reason", b->reason);
		jw_s(&w, "result", b->ok ? "ok" : "failed");
		jw_s(&w, "type", b->has_type ? (b->full ? "full" : "incremental") : NULL);
		jw_b(&w, "verified", b->verified);
		jw_s(&w, "vm", b->vm);
		jw_u(&w, "vm_nth", b->vm_nth);
		jw_close(&w, '}');
	}
	jw_close(&w, ']');
	jw_key(&w, "engine");
	jw_str_raw(f, r->external ? "external" : "hvbackup");
	jw_key(&w, "errors");
	jw_open(&w, '[');
	for (size_t i = 0; i < r->nerrors; i++) {
		jw_item(&w);
		jw_str_raw(f, r->errors[i]);
	}
	jw_close(&w, ']');
	jw_key(&w, "expectations");
	jw_open(&w, '[');
	for (size_t i = 0; i < r->nchecks; i++) {
		const struct check *c = &r->checks[i];
		jw_item(&w);
		jw_open(&w, '{');
		jw_s(&w, "evidence", c->evidence);
		jw_s(&w, "expectation", c->name);
		jw_u(&w, "line", c->line);
		jw_b(&w, "pass", c->pass);
		jw_close(&w, '}');
	}
	jw_close(&w, ']');
	jw_b(&w, "passed", scenario_outcome_passed(r));
	jw_key(&w, "restores");
	jw_open(&w, '[');
	size_t verified = 0;
	for (size_t i = 0; i < r->nrestores; i++) {
		const struct restore_rec *x = &r->restores[i];
		verified += x->ok;
		scenario_duration_format(x->time, t, sizeof t);
		jw_item(&w);
		jw_open(&w, '{');
		jw_s(&w, "at", t);
		jw_key(&w, "disks");
		jw_open(&w, '[');
		for (size_t k = 0; k < x->ndisks; k++) {
			const struct rdisk *d = &x->disks[k];
			jw_item(&w);
			jw_open(&w, '{');
			jw_u(&w, "blocks", d->blocks);
			jw_u(&w, "blocks_differing", d->bad);
			jw_key(&w, "first_differing_block");
			if (d->bad)
				fprintf(f, "%llu", (unsigned long long)d->first_bad);
			else
				fputs("null", f);
			jw_s(&w, "name", d->name);
			jw_s(&w, "problem", d->problem);
			jw_b(&w, "verified", d->ok);
			jw_close(&w, '}');
		}
		jw_close(&w, ']');
		jw_s(&w, "error", x->error);
		jw_u(&w, "event", x->event);
		jw_s(&w, "format", x->vhdx ? "vhdx" : "raw");
		jw_key(&w, "point");
		if (x->point_no)
			fprintf(f, "%u", x->point_no);
		else
			fputs("null", f);
		jw_key(&w, "point_id");
		if (x->point_id)
			fprintf(f, "%lld", (long long)x->point_id);
		else
			fputs("null", f);
		jw_b(&w, "verified", x->ok);
		jw_s(&w, "vm", x->vm);
		jw_close(&w, '}');
	}
	jw_close(&w, ']');
	jw_s(&w, "scenario", r->name);
	jw_u(&w, "seed", r->seed);
	uint64_t tt[4];
	totals(r, tt);
	size_t full = 0, incr = 0, failed = 0;
	for (size_t i = 0; i < r->nbackups; i++) {
		if (!r->backups[i].ok)
			failed++;
		else if (r->backups[i].full)
			full++;
		else
			incr++;
	}
	jw_key(&w, "totals");
	jw_open(&w, '{');
	jw_u(&w, "backups", r->nbackups);
	jw_u(&w, "backups_failed", failed);
	jw_u(&w, "backups_full", full);
	jw_u(&w, "backups_incremental", incr);
	jw_u(&w, "bytes_changed", tt[0]);
	jw_u(&w, "bytes_dedup", tt[3]);
	jw_u(&w, "bytes_read", tt[1]);
	jw_u(&w, "bytes_stored", tt[2]);
	jw_ratio(&w, "compression_ratio", tt[1] > tt[3] ? tt[1] - tt[3] : 0, tt[2]);
	jw_ratio(&w, "dedup_ratio", tt[1], tt[1] > tt[3] ? tt[1] - tt[3] : 0);
	jw_ratio(&w, "read_stored_ratio", tt[1], tt[2]);
	jw_u(&w, "restores", r->nrestores);
	jw_u(&w, "restores_verified", verified);
	jw_close(&w, '}');
	jw_close(&w, '}');
	fputc('\n', f);
	return ferror(f) ? hv_err(HV_EIO, "cannot write the report") : 0;
}
