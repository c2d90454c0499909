/*
 * host_rct.c — change tracking as front ends (WMI GetVirtualDiskChanges, libvirtdisk, RSVD) see
 * it: resolve a disk path to (disk, chain file), answer queries up to that file's seal, report
 * the most recent id; and the fault events that reset or coarsen tracking.
 *
 * Must not: return WMI codes (callers map the Win32 codes this returns).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "host_internal.h"
#include "../../hyperv/vhdx/vhdx.h"
#include "../rct/rct.h"

int host_path_lookup(struct host *h, const char *path, int64_t *disk_id, int *depth)
{
	/* Accept the Windows form under the storage root (any case, '\' or '/'), a folder-relative
	 * path, or an absolute path inside the folder. */
	size_t rl = strlen(h->storage_root), dl = strlen(h->dir);
	const char *rel = path;
	bool under_root = strlen(path) >= rl;
	for (size_t i = 0; under_root && i < rl; i++) { /* case-insensitive, '/' and '\' alike */
		char a = path[i] == '/' ? '\\' : path[i], b = h->storage_root[i] == '/' ? '\\' : h->storage_root[i];
		under_root = tolower((unsigned char)a) == tolower((unsigned char)b);
	}
	if (under_root)
		rel = path + rl;
	else if (!strncmp(path, h->dir, dl) && path[dl] == '/')
		rel = path + dl + 1;
	char *norm = strdup(rel);
	if (!norm)
		return hv_err(HV_ENOMEM, "out of memory");
	for (char *p = norm; *p; p++)
		if (*p == '\\')
			*p = '/';
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st, "SELECT disk_id, depth FROM chain WHERE path=?1 COLLATE NOCASE");
	if (!r) {
		sqlite3_bind_text(st, 1, norm, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*disk_id = sqlite3_column_int64(st, 0);
			*depth = sqlite3_column_int(st, 1);
		} else {
			r = hv_err(HV_ENOTFOUND, "%s: no virtual disk of this host has that path", path);
		}
		sqlite3_finalize(st);
	}
	free(norm);
	return r;
}

/* The seal a chain file answers up to: RCT_UPTO_LIVE for the leaf. *stale when the file was
 * frozen under a tracking GUID that has since been reset. */
static int chain_upto(struct host *h, int64_t disk_id, int depth, struct rct *rt, uint64_t *upto, bool *stale)
{
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st, "SELECT frozen_seq, frozen_guid FROM chain WHERE disk_id=?1 AND depth=?2");
	if (r)
		return r;
	sqlite3_bind_int64(st, 1, disk_id);
	sqlite3_bind_int(st, 2, depth);
	*stale = false;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return hv_err(HV_ENOTFOUND, "disk %lld has no chain file at depth %d", (long long)disk_id, depth);
	}
	if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
		*upto = RCT_UPTO_LIVE;
	} else {
		int64_t seq = sqlite3_column_int64(st, 0);
		struct hv_guid g = rct_guid(rt), fg;
		const char *t = hdb_text(st, 1);
		*stale = seq < 0 || hv_guid_parse(t, strlen(t), &fg) || !hv_guid_eq(&g, &fg) || (uint64_t)seq > rct_seq(rt);
		*upto = seq < 0 ? 0 : (uint64_t)seq;
	}
	sqlite3_finalize(st);
	return 0;
}

int host_rct_query(struct host *h, int64_t disk_id, int depth, const char *rct_id, uint64_t offset, uint64_t length,
		   struct host_range *ranges, uint32_t capacity, uint32_t *count, uint64_t *processed, uint32_t *win32)
{
	struct host_disk d;
	struct rct *rt = NULL;
	*count = 0;
	*processed = 0;
	*win32 = 0;
	int r = host_disk_load(h, disk_id, &d);
	if (!r)
		r = host_rct_open(h, &d, &rt);
	uint64_t upto = 0;
	bool stale = false;
	if (!r)
		r = chain_upto(h, disk_id, depth, rt, &upto, &stale);
	if (!r && stale) {
		*win32 = RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION;
		r = hv_err(HV_ENOTFOUND, "%s: change tracking was reset after this file was frozen", d.name);
	}
	if (!r) {
		size_t n = 0;
		/* struct host_range and struct rct_range have the same layout by design */
		r = rct_query(rt, rct_id, upto, offset, length, (struct rct_range *)ranges, capacity, &n, processed, win32);
		*count = (uint32_t)n;
	}
	rct_close(rt);
	return r;
}

int host_rct_state(struct host *h, int64_t disk_id, int depth, bool *enabled, char *id, size_t id_size, bool *newer)
{
	struct host_disk d;
	struct rct *rt = NULL;
	int r = host_disk_load(h, disk_id, &d);
	if (!r)
		r = host_rct_open(h, &d, &rt);
	uint64_t upto = 0;
	bool stale = false;
	if (!r)
		r = chain_upto(h, disk_id, depth, rt, &upto, &stale);
	if (!r) {
		*enabled = rct_enabled(rt);
		*newer = upto == RCT_UPTO_LIVE ? rct_newer_changes(rt) : false;
		char buf[RCT_ID_STRLEN + 1] = "";
		uint32_t w32;
		if (*enabled && !stale && (upto != RCT_UPTO_LIVE || rct_seq(rt) > 0))
			if (rct_most_recent_id(rt, upto, buf, &w32))
				buf[0] = 0;
		snprintf(id, id_size, "%s", buf);
	}
	rct_close(rt);
	return r;
}

/* Applies `fn` to a disk's tracking and saves it. */
static int with_rct(struct host *h, int64_t disk_id, int (*fn)(struct host *, struct rct *, void *), void *ctx)
{
	struct host_disk d;
	struct rct *rt = NULL;
	int r = host_lock(h); /* read-modify-write of the sidecar */
	if (r)
		return r;
	r = host_disk_load(h, disk_id, &d);
	if (!r)
		r = host_rct_open(h, &d, &rt);
	if (!r)
		r = fn(h, rt, ctx);
	if (!r)
		r = rct_save(rt);
	rct_close(rt);
	host_unlock(h);
	return r;
}

static int do_enable(struct host *h, struct rct *rt, void *ctx)
{
	bool on = *(bool *)ctx;
	struct hv_guid g;
	if (on == rct_enabled(rt))
		return 0;
	int r = on ? host_guid(h, "rct", &g) : 0;
	return r ? r : rct_set_enabled(rt, on, on ? &g : NULL);
}

int host_rct_set_enabled(struct host *h, int64_t disk_id, bool enabled)
{
	return with_rct(h, disk_id, do_enable, &enabled);
}

static int do_reset(struct host *h, struct rct *rt, void *ctx)
{
	(void)ctx;
	struct hv_guid g;
	int r = host_guid(h, "rct", &g);
	return r ? r : rct_reset(rt, &g);
}

static int do_crash(struct host *h, struct rct *rt, void *ctx)
{
	(void)h;
	(void)ctx;
	rct_crash(rt);
	return 0;
}

static int vm_disks_apply(struct host *h, int64_t vm_id, int (*fn)(struct host *, struct rct *, void *))
{
	sqlite3_stmt *st;
	int64_t ids[HOST_MAX_DISKS_PER_VM];
	size_t n = 0;
	int r = hdb_prep(h, &st, vm_id >= 0 ? "SELECT id FROM disk WHERE vm_id=?1 AND attached ORDER BY slot"
					    : "SELECT id FROM disk WHERE attached ORDER BY id");
	if (r)
		return r;
	if (vm_id >= 0)
		sqlite3_bind_int64(st, 1, vm_id);
	for (;;) {
		while (n < HOST_MAX_DISKS_PER_VM && sqlite3_step(st) == SQLITE_ROW)
			ids[n++] = sqlite3_column_int64(st, 0);
		for (size_t i = 0; i < n && !r; i++)
			r = with_rct(h, ids[i], fn, NULL);
		if (r || n < HOST_MAX_DISKS_PER_VM)
			break;
		n = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int host_fault_rct_reset(struct host *h, int64_t vm_id, int64_t disk_id)
{
	if (disk_id >= 0)
		return with_rct(h, disk_id, do_reset, NULL);
	return vm_disks_apply(h, vm_id, do_reset);
}

int host_fault_migrate(struct host *h, int64_t vm_id, bool reset)
{
	int r = reset ? host_fault_rct_reset(h, vm_id, -1) : 0;
	if (!r)
		r = host_clock_advance(h, 30 * HOST_TICKS_PER_SECOND); /* a migration takes time */
	return r;
}

int host_fault_crash(struct host *h)
{
	return vm_disks_apply(h, -1, do_crash);
}

int host_fault_merge_block(struct host *h, int64_t vm_id, bool on)
{
	char *sql = sqlite3_mprintf("UPDATE vm SET merge_fault=%d WHERE id=%lld", on ? 1 : 0, (long long)vm_id);
	int r = host_exec(h, sql);
	sqlite3_free(sql);
	if (!r && !on)
		r = host_merge_pending(h, vm_id, NULL);
	return r;
}

int host_fault_stale_checkpoint(struct host *h, int64_t vm_id, int64_t *snapshot_id)
{
	return host_snapshot_create(h, vm_id, HOST_SNAPSHOT_RECOVERY, 2, NULL, snapshot_id);
}

int host_fault_guest_vss(struct host *h, int64_t vm_id, bool on)
{
	char *sql = sqlite3_mprintf("UPDATE vm SET guest_vss=%d WHERE id=%lld", on ? 1 : 0, (long long)vm_id);
	int r = host_exec(h, sql);
	sqlite3_free(sql);
	return r;
}
