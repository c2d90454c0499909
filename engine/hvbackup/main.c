/*
 * hvbackup — the backup engine's command line:
 *   hvbackup backup  --host DIR --vm NAME --repo REPO [--path win32] [--full] [--json]
 *   hvbackup list    --repo REPO [--json]
 *   hvbackup restore --repo REPO --vm NAME --point ID --disk DISK --to OUT.raw|OUT.vhdx
 *   hvbackup verify  --repo REPO [--point ID]
 *   hvbackup forget  --repo REPO --keep-last N        (then prunes)
 * Exit codes: 0 success, 1 the operation failed (verify: damage found), 2 usage error.
 *
 * The host is reached through the interfaces a real host offers (wmi_client.h, virtdisk.h); what
 * implements them is whatever this binary is linked with — today the simulator's in-process WMI
 * provider and libvirtdisk, for which --host names the host's state folder (exported to
 * libvirtdisk as HVSIM_HOST: the machine it runs on).
 *
 * Test hooks: HVBACKUP_CRASH_AFTER_BLOCKS=N stops the backup dead after N stored blocks;
 * HVBACKUP_CRASH_AT_COMMIT=1|2|3 at a commit step (after pack flush, before catalog commit,
 * after catalog commit). Both exit with status 137, as a killed process.
 *
 * Must not: contain backup logic (engine/plan, engine/repo do); progress and timing here are user
 * interface only (the wall clock never reaches the repository or the host).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../plan/plan.h"
#include "../repo/repo.h"
#include "../../hyperv/cim/cim.h"
#include "../../hyperv/vhdx/vhdx.h"

static const char USAGE[] =
	"usage: hvbackup <command> [options]\n"
	"\n"
	"  backup  --host DIR --vm NAME --repo REPO [--path win32] [--full] [--json]\n"
	"          full or incremental (decided by the reference point and change tracking)\n"
	"  list    --repo REPO [--json]                    points, oldest first\n"
	"  restore --repo REPO --vm NAME --point ID --disk DISK --to OUT.raw|OUT.vhdx\n"
	"  verify  --repo REPO [--point ID]                re-read and re-hash every block\n"
	"  forget  --repo REPO --keep-last N               keep the last N points per VM, prune\n";

struct args {
	const char *host, *vm, *repo, *path, *point, *disk, *to, *keep;
	int full, json, help;
};

static int parse(int argc, char **argv, struct args *a, const char *allowed)
{
	memset(a, 0, sizeof *a);
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		const char **slot = NULL;
		int *flag = NULL;
		const char *name = o + 2;
		if (strncmp(o, "--", 2)) {
			fprintf(stderr, "hvbackup %s: unexpected argument '%s'\n", argv[1], o);
			return 2;
		}
		if (!strcmp(name, "host")) slot = &a->host;
		else if (!strcmp(name, "vm")) slot = &a->vm;
		else if (!strcmp(name, "repo")) slot = &a->repo;
		else if (!strcmp(name, "path")) slot = &a->path;
		else if (!strcmp(name, "point")) slot = &a->point;
		else if (!strcmp(name, "disk")) slot = &a->disk;
		else if (!strcmp(name, "to")) slot = &a->to;
		else if (!strcmp(name, "keep-last")) slot = &a->keep;
		else if (!strcmp(name, "full")) flag = &a->full;
		else if (!strcmp(name, "json")) flag = &a->json;
		else if (!strcmp(name, "help")) flag = &a->help;
		char key[40];
		snprintf(key, sizeof key, " %s ", name);
		if ((!slot && !flag) || (!strstr(allowed, key) && strcmp(name, "help"))) {
			fprintf(stderr, "hvbackup %s: unknown option %s\n%s", argv[1], o, USAGE);
			return 2;
		}
		if (flag) {
			*flag = 1;
		} else {
			if (i + 1 >= argc) {
				fprintf(stderr, "hvbackup %s: %s needs a value\n", argv[1], o);
				return 2;
			}
			*slot = argv[++i];
		}
	}
	if (a->help) {
		fputs(USAGE, stdout);
		return -1;
	}
	return 0;
}

static int need(const char *cmd, const char *name, const char *v)
{
	if (v && *v)
		return 0;
	fprintf(stderr, "hvbackup %s: --%s is required\n%s", cmd, name, USAGE);
	return 2;
}

static int fail(void)
{
	fprintf(stderr, "hvbackup: %s\n", hv_errmsg());
	return 1;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct progress {
	double start, last;
};

static void show_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *p = ctx;
	double t = now();
	if (t - p->last < 0.25 && done < total)
		return;
	p->last = t;
	double rate = done / (t - p->start + 1e-9);
	double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
	fprintf(stderr, "\r  %8.1f / %.1f MiB  %7.1f MiB/s  ETA %4.0f s ", done / 1048576.0, total / 1048576.0,
		rate / 1048576.0, eta);
	if (done >= total)
		fputc('\n', stderr);
}

static void json_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(o, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(o, "\\u%04x", *s);
		else
			fputc(*s, o);
	}
	fputc('"', o);
}

static int cmd_backup(int argc, char **argv)
{
	struct args a;
	int rc = parse(argc, argv, &a, " host vm repo path full json ");
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = need("backup", "host", a.host)) || (rc = need("backup", "vm", a.vm)) || (rc = need("backup", "repo", a.repo)))
		return rc;
	if (a.path && strcmp(a.path, "win32")) {
		fprintf(stderr, "hvbackup backup: --path %s: only win32 exists so far\n", a.path);
		return 2;
	}
	setenv("HVSIM_HOST", a.host, 0);
	struct plan_opts o = {.host = a.host, .vm = a.vm, .repo = a.repo, .path = a.path ? a.path : "win32",
			      .full = a.full};
	const char *e;
	if ((e = getenv("HVBACKUP_CRASH_AFTER_BLOCKS")))
		o.crash_after_blocks = strtoull(e, NULL, 0);
	if ((e = getenv("HVBACKUP_CRASH_AT_COMMIT")))
		o.crash_at_commit_step = atoi(e);
	if ((e = getenv("HVSIM_NOSYNC")) && *e == '1')
		o.nosync = true;
	struct progress pg = {now(), 0};
	if (isatty(2)) {
		o.progress = show_progress;
		o.progress_ctx = &pg;
	}
	struct plan_result res;
	int r = plan_backup(&o, &res);
	double secs = now() - pg.start;
	if (r == HV_ECRASHED) {
		fprintf(stderr, "hvbackup: test fault hook fired: %s\n", hv_errmsg());
		_exit(137);
	}
	if (r)
		return fail();
	if (a.json) {
		printf("{\"id\": %lld, \"vm\": ", (long long)res.point);
		json_str(stdout, a.vm);
		printf(", \"type\": \"%s\", \"reason\": ", res.full ? "full" : "incremental");
		json_str(stdout, res.reason);
		printf(", \"path\": \"%s\", \"disks\": %u, \"bytes_changed\": %llu, \"bytes_read\": %llu,"
		       " \"bytes_stored\": %llu, \"bytes_dedup\": %llu, \"consistency\": \"%s\","
		       " \"stale_checkpoints_removed\": %u, \"leaked_reference_points_removed\": %u, \"seconds\": %.3f}\n",
		       o.path, res.disks, (unsigned long long)res.bytes_changed, (unsigned long long)res.bytes_read,
		       (unsigned long long)res.bytes_stored, (unsigned long long)res.bytes_dedup, res.consistency,
		       res.stale_checkpoints_removed, res.leaked_reference_points_removed, secs);
	} else {
		printf("point %lld: %s backup of %s (%s), %u disk(s), read %.1f MiB, stored %.1f MiB new, %.2f s\n",
		       (long long)res.point, res.full ? "full" : "incremental", a.vm, res.reason, res.disks,
		       res.bytes_read / 1048576.0, res.bytes_stored / 1048576.0, secs);
		if (res.stale_checkpoints_removed || res.leaked_reference_points_removed)
			printf("removed first: %u stale recovery checkpoint(s), %u reference point(s) unknown to the"
			       " repository\n", res.stale_checkpoints_removed, res.leaked_reference_points_removed);
	}
	return 0;
}

static int open_repo(const char *path, unsigned flags, struct repo **r)
{
	if (repo_open(path, flags, NULL, r)) {
		fprintf(stderr, "hvbackup: %s\n", hv_errmsg());
		return 2;
	}
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	struct args a;
	int rc = parse(argc, argv, &a, " repo json ");
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = need("list", "repo", a.repo)))
		return rc;
	struct repo *r;
	if ((rc = open_repo(a.repo, REPO_OPEN_RDONLY, &r)))
		return rc;
	struct repo_point_info *p;
	size_t n;
	if (repo_list_points(r, NULL, &p, &n)) {
		repo_close(r);
		return fail();
	}
	if (a.json)
		fputs("[", stdout);
	for (size_t i = 0; i < n; i++) {
		char when[CIM_DATETIME_LEN + 1] = "";
		cim_datetime_format((uint64_t)p[i].vtime, when);
		const char *type = p[i].type == REPO_POINT_FULL ? "full" : "incremental";
		if (a.json) {
			printf("%s\n  {\"id\": %lld, \"vm\": ", i ? "," : "", (long long)p[i].id);
			json_str(stdout, p[i].vm_name);
			printf(", \"type\": \"%s\", \"reason\": ", type);
			json_str(stdout, p[i].reason);
			printf(", \"vtime\": %lld, \"time\": \"%s\", \"parent\": %lld, \"disks\": [", (long long)p[i].vtime, when,
			       (long long)p[i].parent);
			for (size_t k = 0; k < p[i].ndisks; k++) {
				printf("%s{\"name\": ", k ? ", " : "");
				json_str(stdout, p[i].disks[k].name);
				printf(", \"size\": %llu, \"disk_id\": ", (unsigned long long)p[i].disks[k].virtual_size);
				json_str(stdout, p[i].disks[k].disk_id);
				printf(", \"rct_id\": ");
				json_str(stdout, p[i].disks[k].rct_id);
				printf("}");
			}
			printf("]}");
		} else {
			printf("%4lld  %-16s %-11s %s  ", (long long)p[i].id, p[i].vm_name, type, when);
			for (size_t k = 0; k < p[i].ndisks; k++)
				printf("%s%s", k ? "," : "", p[i].disks[k].name);
			printf("  (%s)\n", p[i].reason);
		}
	}
	if (a.json)
		fputs(n ? "\n]\n" : "]\n", stdout);
	repo_points_free(p, n);
	repo_close(r);
	return 0;
}

struct vhdx_sink {
	struct vhdx_file *f;
};

static int to_vhdx(void *ctx, uint64_t off, const void *buf, size_t len)
{
	return vhdx_write(((struct vhdx_sink *)ctx)->f, buf, off, len);
}

static int cmd_restore(int argc, char **argv)
{
	struct args a;
	int rc = parse(argc, argv, &a, " repo vm point disk to ");
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = need("restore", "repo", a.repo)) || (rc = need("restore", "vm", a.vm)) ||
	    (rc = need("restore", "point", a.point)) || (rc = need("restore", "disk", a.disk)) ||
	    (rc = need("restore", "to", a.to)))
		return rc;
	char *end;
	long long id = strtoll(a.point, &end, 10);
	if (*end || id <= 0) {
		fprintf(stderr, "hvbackup restore: --point %s: not a point id (see 'hvbackup list')\n", a.point);
		return 2;
	}
	size_t tl = strlen(a.to);
	bool vhdx = tl > 5 && !strcasecmp(a.to + tl - 5, ".vhdx");
	struct repo *r;
	if ((rc = open_repo(a.repo, REPO_OPEN_RDONLY, &r)))
		return rc;
	struct repo_point_info *p = NULL;
	const struct repo_disk_info *d = NULL;
	if (repo_point_get(r, id, &p)) {
		rc = fail();
		goto out;
	}
	if (strcmp(p->vm_name, a.vm)) {
		fprintf(stderr, "hvbackup restore: point %lld is a backup of VM '%s', not '%s'\n", id, p->vm_name, a.vm);
		rc = 1;
		goto out;
	}
	for (size_t k = 0; k < p->ndisks; k++)
		if (!strcmp(p->disks[k].name, a.disk))
			d = &p->disks[k];
	if (!d) {
		fprintf(stderr, "hvbackup restore: point %lld has no disk '%s' (disks:", id, a.disk);
		for (size_t k = 0; k < p->ndisks; k++)
			fprintf(stderr, " %s", p->disks[k].name);
		fprintf(stderr, ")\n");
		rc = 1;
		goto out;
	}
	/* write next to the target, then rename: a failed restore never leaves a file that looks whole */
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.partial", a.to);
	unlink(tmp);
	int err = 0;
	if (vhdx) {
		struct vhdx_create_opts co = {.virtual_size = d->virtual_size, .type = VHDX_TYPE_DYNAMIC,
					      .logical_sector = d->logical_sector, .seed = hv_hash64(a.to, strlen(a.to), 0)};
		struct vhdx_sink s = {0};
		err = vhdx_create(tmp, &co);
		if (!err)
			err = vhdx_open(tmp, VHDX_OPEN_RDWR, &s.f);
		if (!err)
			err = repo_restore_disk(r, id, a.disk, to_vhdx, &s);
		if (s.f) {
			int e2 = vhdx_close(s.f);
			if (!err)
				err = e2;
		}
	} else {
		int fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			err = hv_err(HV_EIO, "%s: cannot create: %s", tmp, strerror(errno));
		else {
			err = repo_restore_disk_fd(r, id, a.disk, fd);
			if (!err && fsync(fd))
				err = hv_err(HV_EIO, "%s: fsync: %s", tmp, strerror(errno));
			close(fd);
		}
	}
	if (!err && rename(tmp, a.to))
		err = hv_err(HV_EIO, "%s: cannot rename to %s: %s", tmp, a.to, strerror(errno));
	if (err) {
		unlink(tmp);
		rc = fail();
	} else {
		printf("restored %s disk %s of point %lld to %s (%llu bytes)\n", a.vm, a.disk, id, a.to,
		       (unsigned long long)d->virtual_size);
	}
out:
	repo_points_free(p, p ? 1 : 0);
	repo_close(r);
	return rc;
}

static void print_problem(void *ctx, const struct repo_problem *p)
{
	(void)ctx;
	fprintf(stderr, "hvbackup verify: %s\n", p->message);
}

static int cmd_verify(int argc, char **argv)
{
	struct args a;
	int rc = parse(argc, argv, &a, " repo point ");
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = need("verify", "repo", a.repo)))
		return rc;
	long long id = 0;
	if (a.point) {
		char *end;
		id = strtoll(a.point, &end, 10);
		if (*end || id <= 0) {
			fprintf(stderr, "hvbackup verify: --point %s: not a point id\n", a.point);
			return 2;
		}
	}
	struct repo *r;
	if ((rc = open_repo(a.repo, REPO_OPEN_RDONLY, &r)))
		return rc;
	struct repo_verify_result v;
	if (repo_verify(r, id, print_problem, NULL, &v)) {
		repo_close(r);
		return fail();
	}
	repo_close(r);
	uint64_t problems = v.blocks_bad + v.pack_problems + v.catalog_problems;
	printf("verified %llu point(s), %llu block(s), %.1f MiB read: %llu problem(s)", (unsigned long long)v.points_checked,
	       (unsigned long long)v.blocks_checked, v.bytes_read / 1048576.0, (unsigned long long)problems);
	if (v.points_damaged)
		printf(", %llu damaged point(s)", (unsigned long long)v.points_damaged);
	printf("\n");
	return problems || v.points_damaged ? 1 : 0;
}

static int cmd_forget(int argc, char **argv)
{
	struct args a;
	int rc = parse(argc, argv, &a, " repo keep-last ");
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = need("forget", "repo", a.repo)) || (rc = need("forget", "keep-last", a.keep)))
		return rc;
	char *end;
	long n = strtol(a.keep, &end, 10);
	if (*end || n < 1) {
		fprintf(stderr, "hvbackup forget: --keep-last %s: at least 1\n", a.keep);
		return 2;
	}
	struct repo *r;
	if ((rc = open_repo(a.repo, 0, &r)))
		return rc;
	uint64_t forgotten = 0;
	struct repo_prune_stats ps;
	if (repo_forget(r, (unsigned)n, &forgotten) || repo_prune(r, &ps)) {
		repo_close(r);
		return fail();
	}
	repo_close(r);
	printf("forgot %llu point(s); pruned %llu block(s), packs %.1f → %.1f MiB\n", (unsigned long long)forgotten,
	       (unsigned long long)ps.blocks_removed, ps.bytes_before / 1048576.0, ps.bytes_after / 1048576.0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(USAGE, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "backup"))
		return cmd_backup(argc, argv);
	if (!strcmp(argv[1], "list"))
		return cmd_list(argc, argv);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc, argv);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc, argv);
	if (!strcmp(argv[1], "forget"))
		return cmd_forget(argc, argv);
	fprintf(stderr, "hvbackup: unknown command '%s'\n%s", argv[1], USAGE);
	return 2;
}
