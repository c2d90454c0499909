/*
 * host_vm.c — VMs, their disks and guest writes.
 *
 * A write batch is applied in two passes over the same seeded op stream: the first records every
 * range in the disk's change tracking (saved) and in the ground truth (committed), the second
 * writes the bytes. A crash between the two leaves tracking and truth with a superset of what
 * landed, never a subset — Hyper-V's RCT/MRT also records before it writes.
 *
 * Must not: touch checkpoint chains (host_ckpt.c) or know about WMI.
 */
#include <ctype.h>
#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host_internal.h"
#include "../../hyperv/vhdx/vhdx.h"
#include "../rct/rct.h"
#include "../truth/truth.h"
#include "../workload/workload.h"

int host_disk_spec_parse(const char *text, struct host_disk_spec *out)
{
	memset(out, 0, sizeof *out);
	out->logical_sector = 512;
	char *dup = strdup(text), *save = NULL;
	if (!dup)
		return hv_err(HV_ENOMEM, "out of memory");
	int r = 0, i = 0;
	for (char *tok = strtok_r(dup, ",", &save); tok && !r; tok = strtok_r(NULL, ",", &save), i++) {
		uint64_t v;
		if (i == 0) {
			if (hv_parse_size(tok, &out->size) || out->size == 0)
				r = hv_err(HV_EINVAL, "--disk %s: '%s' is not a size", text, tok);
		} else if (!strcmp(tok, "dynamic")) {
			out->fixed = false;
		} else if (!strcmp(tok, "fixed")) {
			out->fixed = true;
		} else if (!strncmp(tok, "block=", 6)) {
			if (hv_parse_size(tok + 6, &v) || v < VHDX_MIN_BLOCK_SIZE || v > VHDX_MAX_BLOCK_SIZE || (v & (v - 1)))
				r = hv_err(HV_EINVAL, "--disk %s: block=%s: must be a power of two from 1 MiB to 256 MiB",
					   text, tok + 6);
			else
				out->block_size = (uint32_t)v;
		} else if (!strncmp(tok, "sector=", 7)) {
			if (strcmp(tok + 7, "512") && strcmp(tok + 7, "4096"))
				r = hv_err(HV_EINVAL, "--disk %s: sector=%s: must be 512 or 4096", text, tok + 7);
			else
				out->logical_sector = (uint32_t)atoi(tok + 7);
		} else {
			r = hv_err(HV_EINVAL, "--disk %s: unknown option '%s' (dynamic, fixed, block=SIZE, sector=512|4096)",
				   text, tok);
		}
	}
	if (!r && i == 0)
		r = hv_err(HV_EINVAL, "--disk: empty specification");
	if (!r && out->size % out->logical_sector)
		r = hv_err(HV_EINVAL, "--disk %s: size must be a multiple of the %u-byte sector", text,
			   out->logical_sector);
	if (!r && out->size > VHDX_MAX_VIRTUAL_SIZE)
		r = hv_err(HV_EINVAL, "--disk %s: larger than the VHDX limit of 64 TiB", text);
	free(dup);
	return r;
}

static int name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > HOST_NAME_MAX_LEN || name[0] == '.' || name[0] == ' ' || name[n - 1] == ' ')
		return 0;
	if (!strncasecmp(name, "host.db", 7)) /* the folder's own files */
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr(" ._-", name[i]))
			return 0;
	return 1;
}

int host_vm_find(struct host *h, const char *name_or_guid, int64_t *vm_id)
{
	char g[64];
	size_t n = strlen(name_or_guid);
	const char *key = name_or_guid;
	if (n == 38 && name_or_guid[0] == '{') { /* {GUID} form */
		memcpy(g, name_or_guid + 1, 36);
		g[36] = 0;
		key = g;
	}
	int64_t id;
	int r = hdb_int(h, &id, -1, "SELECT id FROM vm WHERE name=%Q OR guid=%Q ORDER BY id LIMIT 1", name_or_guid, key);
	if (r)
		return r;
	if (id < 0)
		return hv_err(HV_ENOTFOUND, "no VM named '%s' on this host", name_or_guid);
	*vm_id = id;
	return 0;
}

int host_vm_set_state(struct host *h, int64_t vm_id, int state)
{
	if (state != HOST_VM_RUNNING && state != HOST_VM_OFF && state != HOST_VM_SAVED)
		return hv_err(HV_EINVAL, "VM state %d: not one of 2 (running), 3 (off), 32769 (saved)", state);
	char *sql = sqlite3_mprintf("UPDATE vm SET state=%d WHERE id=%lld", state, (long long)vm_id);
	int r = host_exec(h, sql);
	sqlite3_free(sql);
	return r;
}

int host_disk_load(struct host *h, int64_t disk_id, struct host_disk *d)
{
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st,
			 "SELECT d.id, d.vm_id, d.slot, d.name, d.virtual_disk_id, d.size, d.fixed, d.block_size,"
			 " d.logical_sector, d.physical_sector, d.attached, d.wl_cursor, d.sidecar, v.name,"
			 " (SELECT path FROM chain WHERE disk_id=d.id ORDER BY depth DESC LIMIT 1),"
			 " (SELECT max(depth) FROM chain WHERE disk_id=d.id),"
			 " (SELECT path FROM chain WHERE disk_id=d.id AND depth=0)"
			 " FROM disk d JOIN vm v ON v.id=d.vm_id WHERE d.id=?1");
	if (r)
		return r;
	sqlite3_bind_int64(st, 1, disk_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return hv_err(HV_ENOTFOUND, "no disk %lld on this host", (long long)disk_id);
	}
	memset(d, 0, sizeof *d);
	d->id = sqlite3_column_int64(st, 0);
	d->vm_id = sqlite3_column_int64(st, 1);
	d->slot = sqlite3_column_int(st, 2);
	snprintf(d->name, sizeof d->name, "%s", hdb_text(st, 3));
	snprintf(d->virtual_disk_id, sizeof d->virtual_disk_id, "%s", hdb_text(st, 4));
	d->size = (uint64_t)sqlite3_column_int64(st, 5);
	d->fixed = sqlite3_column_int(st, 6);
	d->block_size = (uint32_t)sqlite3_column_int64(st, 7);
	d->logical_sector = (uint32_t)sqlite3_column_int64(st, 8);
	d->physical_sector = (uint32_t)sqlite3_column_int64(st, 9);
	d->attached = sqlite3_column_int(st, 10);
	d->wl_cursor = (uint64_t)sqlite3_column_int64(st, 11);
	snprintf(d->sidecar, sizeof d->sidecar, "%s", hdb_text(st, 12));
	snprintf(d->vm_name, sizeof d->vm_name, "%s", hdb_text(st, 13));
	snprintf(d->leaf, sizeof d->leaf, "%s", hdb_text(st, 14));
	d->leaf_depth = sqlite3_column_int(st, 15);
	snprintf(d->base, sizeof d->base, "%s", hdb_text(st, 16));
	sqlite3_finalize(st);
	return 0;
}

/* A sidecar that is missing or damaged is what Hyper-V sees when the .rct/.mrt files were lost or
 * the VHDX copied without them: change tracking starts over (a reset — every older id now fails
 * with ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION) and the VM keeps working. */
int host_rct_open(struct host *h, const struct host_disk *d, struct rct **out)
{
	char *p = host_abs(h, d->sidecar);
	if (!p)
		return HV_ENOMEM;
	unsigned fl = h->nosync ? RCT_NOSYNC : 0;
	int r = rct_open(p, fl, out);
	if (r == HV_ECORRUPT || r == HV_ENOTFOUND || r == HV_EUNSUPPORTED) {
		struct hv_guid g;
		int lr = host_lock(h);
		if (!lr) {
			r = rct_open(p, fl, out); /* another process may have rebuilt it meanwhile */
			if (r == HV_ECORRUPT || r == HV_ENOTFOUND || r == HV_EUNSUPPORTED) {
				unlink(p);
				uint32_t coarse = (uint32_t)host_setting_int(h, "rct.coarse_granularity", HOST_DEFAULT_RCT_COARSE);
				r = host_guid(h, "rct", &g);
				if (!r)
					r = rct_create(p, d->size, h->granularity, coarse, &g, fl, out);
			}
			host_unlock(h);
		} else {
			r = lr;
		}
	}
	free(p);
	return r;
}

static int mkdirs(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return hv_err(HV_ENOMEM, "out of memory");
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0777) && errno != EEXIST) {
			int r = hv_err(HV_EIO, "%s: cannot create folder: %s", p, strerror(errno));
			free(p);
			return r;
		}
		*s = '/';
	}
	free(p);
	return 0;
}

/* Creates the disk's files (VHDX + sidecar) and its rows. Files first: after a crash they are
 * orphans nobody references. On failure the files are removed again. */
int host_vm_add_disk(struct host *h, int64_t vm_id, const struct host_disk_spec *spec, int64_t *disk_id)
{
	char vm_name[HOST_NAME_MAX_LEN + 1], instance[200];
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st, "SELECT name, guid, controller_guid FROM vm WHERE id=?1");
	if (r)
		return r;
	sqlite3_bind_int64(st, 1, vm_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return hv_err(HV_ENOTFOUND, "no VM %lld on this host", (long long)vm_id);
	}
	snprintf(vm_name, sizeof vm_name, "%s", hdb_text(st, 0));
	char vguid[37], cguid[37];
	snprintf(vguid, sizeof vguid, "%s", hdb_text(st, 1));
	snprintf(cguid, sizeof cguid, "%s", hdb_text(st, 2));
	sqlite3_finalize(st);

	int64_t slot, ndisks;
	if ((r = hdb_int(h, &ndisks, 0, "SELECT count(*) FROM disk WHERE vm_id=%lld AND attached", (long long)vm_id)))
		return r;
	if (ndisks >= HOST_MAX_DISKS_PER_VM)
		return hv_err(HV_EINVAL, "VM '%s' already has %d disks", vm_name, HOST_MAX_DISKS_PER_VM);
	if ((r = hdb_int(h, &slot, 0,
			 "SELECT coalesce(min(s.slot), 0) FROM (SELECT 0 AS slot UNION ALL SELECT slot+1 FROM disk"
			 " WHERE vm_id=%lld AND attached) s WHERE s.slot NOT IN (SELECT slot FROM disk WHERE vm_id=%lld"
			 " AND attached)", (long long)vm_id, (long long)vm_id)))
		return r;

	/* Hyper-V's default names: "<vm>.vhdx" for the first disk, "<vm>_<n>.vhdx" after; a name
	 * left by a removed disk is not reused. */
	char name[HOST_NAME_MAX_LEN + 16], rel[1024], side[1100];
	for (int n = 0;; n++) {
		if (slot == 0 && n == 0)
			snprintf(name, sizeof name, "%s", vm_name);
		else
			snprintf(name, sizeof name, "%s_%lld", vm_name, (long long)(slot + n));
		snprintf(rel, sizeof rel, "%s/Virtual Hard Disks/%s.vhdx", vm_name, name);
		int64_t used;
		if ((r = hdb_int(h, &used, 0, "SELECT count(*) FROM disk WHERE vm_id=%lld AND name=%Q", (long long)vm_id,
				 name)))
			return r;
		char *abs = host_abs(h, rel);
		if (!abs)
			return HV_ENOMEM;
		int exists = access(abs, F_OK) == 0;
		free(abs);
		if (!used && !exists)
			break;
		if (n > 1000)
			return hv_err(HV_EINVAL, "VM '%s': no free disk name", vm_name);
	}
	snprintf(side, sizeof side, "%s.hvrct", rel);
	/* SASD InstanceID [INF, wmi-backup.md 1.2]: "Microsoft:<VM>\\<controller>\\0\\<location>\\L" */
	snprintf(instance, sizeof instance, "Microsoft:%s\\%s\\0\\%lld\\L", vguid, cguid, (long long)slot);

	char *abs = host_abs(h, rel), *abs_side = host_abs(h, side);
	struct rct *rt = NULL;
	struct vhdx_file *f = NULL;
	bool made_vhdx = false, made_side = false;
	if (!abs || !abs_side) {
		r = HV_ENOMEM;
		goto out;
	}
	if ((r = mkdirs(abs)))
		goto out;
	uint64_t seed;
	if ((r = host_vhdx_seed(h, &seed)))
		goto out;
	struct vhdx_create_opts co = {
		.virtual_size = spec->size,
		.type = spec->fixed ? VHDX_TYPE_FIXED : VHDX_TYPE_DYNAMIC,
		.block_size = spec->block_size,
		.logical_sector = spec->logical_sector ? spec->logical_sector : 512,
		.physical_sector = 4096,
		.seed = seed,
	};
	if ((r = vhdx_create(abs, &co)))
		goto out;
	made_vhdx = true;
	if ((r = vhdx_open(abs, VHDX_OPEN_RDONLY, &f)))
		goto out;
	const struct vhdx_info *inf = vhdx_get_info(f);
	char vdid[37];
	host_guid_text(&inf->disk_id, vdid);
	uint32_t block = inf->block_size, lsec = inf->logical_sector, psec = inf->physical_sector;
	vhdx_close(f);
	f = NULL;

	struct hv_guid tg;
	if ((r = host_guid(h, "rct", &tg)))
		goto out;
	uint32_t coarse = (uint32_t)host_setting_int(h, "rct.coarse_granularity", HOST_DEFAULT_RCT_COARSE);
	if ((r = rct_create(abs_side, spec->size, h->granularity, coarse, &tg, h->nosync ? RCT_NOSYNC : 0, &rt)))
		goto out;
	made_side = true;

	if ((r = hdb_prep(h, &st, "INSERT INTO disk(vm_id, slot, name, virtual_disk_id, size, fixed, block_size,"
				  " logical_sector, physical_sector, sidecar, instance_id)"
				  " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)")))
		goto out;
	sqlite3_bind_int64(st, 1, vm_id);
	sqlite3_bind_int64(st, 2, slot);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, vdid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)spec->size);
	sqlite3_bind_int(st, 6, spec->fixed);
	sqlite3_bind_int64(st, 7, block);
	sqlite3_bind_int64(st, 8, lsec);
	sqlite3_bind_int64(st, 9, psec);
	sqlite3_bind_text(st, 10, side, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, instance, -1, SQLITE_STATIC);
	if ((r = hdb_done(h, st)))
		goto out;
	int64_t id = sqlite3_last_insert_rowid(h->db);
	char *sql = sqlite3_mprintf("INSERT INTO chain(disk_id, depth, path) VALUES(%lld, 0, %Q)", (long long)id, rel);
	r = host_exec(h, sql);
	sqlite3_free(sql);
	if (!r && disk_id)
		*disk_id = id;
out:
	vhdx_close(f);
	rct_close(rt);
	if (r) {
		if (made_vhdx)
			unlink(abs);
		if (made_side)
			unlink(abs_side);
	}
	free(abs);
	free(abs_side);
	return r;
}

int host_vm_create(struct host *h, const char *name, const struct host_disk_spec *disks, size_t n, int64_t *vm_id)
{
	if (!name_ok(name))
		return hv_err(HV_EINVAL, "VM name '%s': use 1 to %d of letters, digits, space, '.', '_', '-'"
					 " (not starting with '.' or space)", name, HOST_NAME_MAX_LEN);
	if (n > HOST_MAX_DISKS_PER_VM)
		return hv_err(HV_EINVAL, "VM '%s': at most %d disks", name, HOST_MAX_DISKS_PER_VM);
	int64_t exists;
	int r = hdb_int(h, &exists, 0, "SELECT count(*) FROM vm WHERE name=%Q", name);
	if (r)
		return r;
	if (exists)
		return hv_err(HV_EINVAL, "a VM named '%s' already exists on this host", name);
	if ((r = host_begin(h)))
		return r;
	char guid[37], sguid[37], cguid[37];
	if (!(r = host_guid_str(h, "vm", guid)) && !(r = host_guid_str(h, "vssd", sguid)) &&
	    !(r = host_guid_str(h, "controller", cguid))) {
		char *sql = sqlite3_mprintf("INSERT INTO vm(guid, name, state, merge_enabled, settings_guid,"
					    " controller_guid, created) VALUES(%Q, %Q, %d, 1, %Q, %Q, %lld)",
					    guid, name, HOST_VM_RUNNING, sguid, cguid, (long long)host_now(h));
		r = host_exec(h, sql);
		sqlite3_free(sql);
	}
	int64_t id = sqlite3_last_insert_rowid(h->db);
	for (size_t i = 0; !r && i < n; i++)
		r = host_vm_add_disk(h, id, &disks[i], NULL);
	if (!r)
		r = host_commit(h);
	if (r) {
		/* files of disks created before the failure stay as orphans nothing references */
		host_rollback(h);
		return hv_err_prefix(r, "VM '%s'", name);
	}
	if (vm_id)
		*vm_id = id;
	return 0;
}

int host_vm_remove_disk(struct host *h, int64_t disk_id)
{
	int64_t snaps;
	int r = hdb_int(h, &snaps, 0, "SELECT count(*) FROM snapshot_disk WHERE disk_id=%lld", (long long)disk_id);
	if (r)
		return r;
	if (snaps)
		return hv_err(HV_EINVAL, "disk %lld is part of %lld checkpoint(s); delete them first", (long long)disk_id,
			      (long long)snaps);
	char *sql = sqlite3_mprintf("UPDATE disk SET attached=0 WHERE id=%lld", (long long)disk_id);
	r = host_exec(h, sql);
	sqlite3_free(sql);
	return r;
}

int host_disk_find(struct host *h, int64_t vm_id, const char *name_or_slot, int64_t *disk_id)
{
	int64_t id;
	char *end;
	long slot = strtol(name_or_slot, &end, 10);
	int r;
	if (*name_or_slot && !*end)
		r = hdb_int(h, &id, -1, "SELECT id FROM disk WHERE vm_id=%lld AND attached AND slot=%ld", (long long)vm_id,
			    slot);
	else
		r = hdb_int(h, &id, -1, "SELECT id FROM disk WHERE vm_id=%lld AND attached AND (name=%Q OR name||'.vhdx'=%Q)",
			    (long long)vm_id, name_or_slot, name_or_slot);
	if (r)
		return r;
	if (id < 0)
		return hv_err(HV_ENOTFOUND, "VM %lld has no attached disk '%s'", (long long)vm_id, name_or_slot);
	*disk_id = id;
	return 0;
}

static int host_vm_write_locked(struct host *h, int64_t vm_id, int64_t disk_id, const struct wl_params *p, uint64_t *bytes_out);

/* ---- guest writes -----------------------------------------------------------------------------*/

struct mark_ctx {
	struct host *h;
	struct rct *rct;
	int64_t disk_id;
};

static int sink_mark(void *ctx, const struct wl_op *op, const uint8_t *data)
{
	(void)data;
	struct mark_ctx *m = ctx;
	int r = rct_mark(m->rct, op->offset, op->length);
	if (!r)
		r = truth_mark(m->h->db, m->disk_id, op->offset, op->length, m->h->granularity);
	return r;
}

struct write_ctx {
	struct vhdx_file *f;
	uint8_t *zeros;
	size_t zlen;
	int64_t crash_after; /* test hook (setting test.crash_after_ops): die like kill -9 */
};

static int sink_write(void *ctx, const struct wl_op *op, const uint8_t *data)
{
	struct write_ctx *w = ctx;
	if (w->crash_after >= 0 && w->crash_after-- == 0)
		raise(SIGKILL);
	if (!op->zero)
		return vhdx_write(w->f, data, op->offset, op->length);
	if (w->zlen < op->length) {
		free(w->zeros);
		w->zeros = calloc(1, op->length);
		w->zlen = w->zeros ? op->length : 0;
		if (!w->zeros)
			return hv_err(HV_ENOMEM, "out of memory");
	}
	return vhdx_write(w->f, w->zeros, op->offset, op->length);
}

uint64_t host_workload_seed(uint64_t seed, int slot)
{
	uint8_t b[4];
	hv_put32(b, (uint32_t)slot);
	return hv_hash64(b, sizeof b, seed);
}

static int write_disk(struct host *h, const struct host_disk *d, const struct wl_params *p0, uint64_t *bytes)
{
	struct wl_params p = *p0;
	p.disk_size = d->size;
	p.seed = host_workload_seed(p0->seed, d->slot);
	p.cursor = d->wl_cursor % d->size;
	if (p.sector < d->logical_sector)
		p.sector = d->logical_sector;
	if (p.io_min && p.io_min % p.sector)
		p.io_min = (p.io_min / p.sector + 1) * p.sector;
	struct rct *rt = NULL;
	struct vhdx_file *f = NULL;
	struct write_ctx w = {0};
	struct wl_stats stats;
	int r = host_rct_open(h, d, &rt);
	if (r)
		return r;
	/* pass 1: tracking and truth first (saved/committed before any byte lands) */
	if ((r = host_begin(h)))
		goto out;
	struct mark_ctx m = {h, rt, d->id};
	r = wl_run(&p, sink_mark, &m, &stats);
	if (!r)
		r = rct_save(rt);
	if (!r) {
		char *sql = sqlite3_mprintf("UPDATE disk SET wl_cursor=%lld WHERE id=%lld", (long long)stats.next_cursor,
					    (long long)d->id);
		r = host_exec(h, sql);
		sqlite3_free(sql);
	}
	if (!r)
		r = host_commit(h);
	else
		host_rollback(h);
	if (r)
		goto out;
	/* pass 2: the bytes */
	char *abs = host_abs(h, d->leaf);
	if (!abs) {
		r = HV_ENOMEM;
		goto out;
	}
	uint64_t seed = hv_hash64(&stats.next_cursor, sizeof stats.next_cursor, p.seed);
	struct vhdx_open_opts oo = {.flags = VHDX_OPEN_RDWR | (h->nosync ? VHDX_OPEN_NOSYNC : 0), .has_seed = true,
				    .seed = seed, .crash_after_steps = -1};
	r = vhdx_open_ex(abs, &oo, &f);
	free(abs);
	if (r)
		goto out;
	w.f = f;
	w.crash_after = host_setting_int(h, "test.crash_after_ops", -1);
	r = wl_run(&p, sink_write, &w, &stats);
	if (!r)
		r = vhdx_flush(f);
	if (!r && bytes)
		*bytes += stats.bytes;
out:
	if (f) {
		int rc = vhdx_close(f);
		if (!r)
			r = rc;
	}
	free(w.zeros);
	rct_close(rt);
	return r ? hv_err_prefix(r, "disk %s", d->name) : 0;
}

static int host_vm_write_locked(struct host *h, int64_t vm_id, int64_t disk_id, const struct wl_params *p, uint64_t *bytes_out)
{
	int64_t ids[HOST_MAX_DISKS_PER_VM];
	size_t n = 0;
	if (disk_id >= 0) {
		ids[n++] = disk_id;
	} else {
		sqlite3_stmt *st;
		int r = hdb_prep(h, &st, "SELECT id FROM disk WHERE vm_id=?1 AND attached ORDER BY slot");
		if (r)
			return r;
		sqlite3_bind_int64(st, 1, vm_id);
		while (sqlite3_step(st) == SQLITE_ROW && n < HOST_MAX_DISKS_PER_VM)
			ids[n++] = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (bytes_out)
		*bytes_out = 0;
	for (size_t i = 0; i < n; i++) {
		struct host_disk d;
		int r = host_disk_load(h, ids[i], &d);
		if (!r && (d.vm_id != vm_id || !d.attached))
			r = hv_err(HV_EINVAL, "disk %s is not attached to this VM", d.name);
		if (!r)
			r = write_disk(h, &d, p, bytes_out);
		if (r)
			return r;
	}
	return 0;
}

/* ---- the public entry points hold the host lock (host_internal.h) ---------------------------- */

int host_vm_write(struct host *h, int64_t vm_id, int64_t disk_id, const struct wl_params *p, uint64_t *bytes_out)
{
	int r = host_lock(h);
	if (r)
		return r;
	r = host_vm_write_locked(h, vm_id, disk_id, p, bytes_out);
	host_unlock(h);
	return r;
}
