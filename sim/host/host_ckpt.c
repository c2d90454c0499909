/*
 * host_ckpt.c — checkpoints (AVHDX chains), merges and reference points.
 *
 * A disk's files form a linear chain: depth 0 is the base .vhdx, the highest depth is the leaf the
 * guest writes to, every other file is frozen at a change-tracking seal (chain.frozen_seq). A
 * checkpoint holds one frozen file per disk (snapshot_disk.depth). Merging folds the leaf into its
 * parent when no checkpoint holds the parent and merging is not blocked; only the leaf is ever
 * merged, so no child needs re-parenting (a chain frozen under a held file waits until that
 * checkpoint goes — a simplification of Hyper-V, which can merge inner links too).
 *
 * Merge crash safety: the merge is announced in host.db (chain.merging = 1) before the parent is
 * touched; host_recover() (run at open) redoes an announced merge. Redoing is idempotent: the
 * child is unchanged and its data is copied again, the child is opened without its parent so the
 * parent's new DataWriteGuid does not matter.
 *
 * Must not: know about WMI objects, jobs or return codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"
#include "../../hyperv/vhdx/vhdx.h"
#include "../rct/rct.h"
#include "../truth/truth.h"

static int host_snapshot_create_locked(struct host *h, int64_t vm_id, int type, int consistency, const char *name, int64_t *snapshot_id);
static int host_snapshot_destroy_locked(struct host *h, int64_t snapshot_id);
static int host_refpoint_convert_locked(struct host *h, int64_t snapshot_id, int consistency, int64_t *rp_id);
static int host_refpoint_create_locked(struct host *h, int64_t vm_id, int consistency, int64_t *rp_id);
static int host_refpoint_destroy_locked(struct host *h, int64_t rp_id);
static int host_merge_pending_locked(struct host *h, int64_t vm_id, bool *blocked);
static int host_merge_set_enabled_locked(struct host *h, int64_t vm_id, bool enabled);

/* ---- helpers ----------------------------------------------------------------------------------*/

static int disks_of_vm(struct host *h, int64_t vm_id, int64_t *ids, size_t *n)
{
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st, "SELECT id FROM disk WHERE vm_id=?1 AND attached ORDER BY slot");
	if (r)
		return r;
	sqlite3_bind_int64(st, 1, vm_id);
	*n = 0;
	while (sqlite3_step(st) == SQLITE_ROW && *n < HOST_MAX_DISKS_PER_VM)
		ids[(*n)++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int vm_guid(struct host *h, int64_t vm_id, char out[37], char *name, size_t name_size)
{
	sqlite3_stmt *st;
	int r = hdb_prep(h, &st, "SELECT guid, name FROM vm WHERE id=?1");
	if (r)
		return r;
	sqlite3_bind_int64(st, 1, vm_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return hv_err(HV_ENOTFOUND, "no VM %lld on this host", (long long)vm_id);
	}
	snprintf(out, 37, "%s", hdb_text(st, 0));
	if (name)
		snprintf(name, name_size, "%s", hdb_text(st, 1));
	sqlite3_finalize(st);
	return 0;
}

struct reader {
	struct vhdx_file *f;
};

static int read_vhdx(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct reader *rd = ctx;
	return vhdx_read(rd->f, buf, off, len);
}

/* Hashes into a truth point the blocks written since the disk's previous point, reading the chain
 * file at `rel` (a frozen file for a checkpoint, the leaf for a reference point without one). */
static int truth_disk(struct host *h, int64_t point, const struct host_disk *d, const char *rel)
{
	char *abs = host_abs(h, rel);
	if (!abs)
		return HV_ENOMEM;
	struct reader rd = {0};
	int r = vhdx_open(abs, VHDX_OPEN_RDONLY, &rd.f);
	free(abs);
	if (!r)
		r = truth_point_disk(h->db, point, d->id, d->size, h->granularity, read_vhdx, &rd);
	vhdx_close(rd.f);
	return r;
}

int host_truth_point(struct host *h, int64_t vm_id, const char *kind, const char *object_guid, int64_t *point_id)
{
	int64_t ids[HOST_MAX_DISKS_PER_VM];
	size_t n;
	int r = disks_of_vm(h, vm_id, ids, &n);
	if (!r)
		r = truth_point_new(h->db, kind, object_guid, vm_id, host_now(h), point_id);
	for (size_t i = 0; !r && i < n; i++) {
		struct host_disk d;
		r = host_disk_load(h, ids[i], &d);
		if (!r)
			r = truth_disk(h, *point_id, &d, d.leaf);
	}
	return r;
}

/* "11/26/2026 - 1:23:45 AM" from the virtual clock (the form of Hyper-V's checkpoint names). */
static void clock_text(uint64_t ft, char *out, size_t n)
{
	uint64_t secs = ft / HOST_TICKS_PER_SECOND;
	int64_t days = (int64_t)(secs / 86400) - 134774; /* 1601-01-01 .. 1970-01-01 */
	unsigned sod = (unsigned)(secs % 86400);
	/* civil_from_days (H. Hinnant) */
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	unsigned hh = sod / 3600, h12 = hh % 12 ? hh % 12 : 12;
	snprintf(out, n, "%u/%u/%lld - %u:%02u:%02u %s", m, d, (long long)y, h12, sod / 60 % 60, sod % 60,
		 hh < 12 ? "AM" : "PM");
}

/* ---- checkpoints ------------------------------------------------------------------------------*/

/* Freezes one disk: new AVHDX child on top of the leaf, tracking sealed. Files first. */
static int freeze_disk(struct host *h, int64_t snap_id, const struct host_disk *d, char **made)
{
	char guid[37];
	int r = host_guid_str(h, "avhdx", guid);
	if (r)
		return r;
	/* "<stem>_<GUID>.avhdx" next to the base; the stem is the base disk's */
	char child[1200];
	const char *slash = strrchr(d->base, '/');
	size_t dirlen = slash ? (size_t)(slash - d->base + 1) : 0;
	snprintf(child, sizeof child, "%.*s%s_%s.avhdx", (int)dirlen, d->base, d->name, guid);
	char *abs_child = host_abs(h, child), *abs_leaf = host_abs(h, d->leaf), *win_leaf = host_path_windows(h, d->leaf);
	struct rct *rt = NULL;
	uint64_t seed;
	if (!abs_child || !abs_leaf || !win_leaf) {
		r = hv_err(HV_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = host_vhdx_seed(h, &seed)))
		goto out;
	/* a file of this name can only be the orphan of a checkpoint a crash cut before its commit
	 * (the GUID was drawn in that rolled-back transaction): nothing references it */
	unlink(abs_child);
	struct vhdx_create_opts co = {.type = VHDX_TYPE_DIFFERENCING, .parent_path = abs_leaf,
				      .parent_win_path = win_leaf, .seed = seed};
	if ((r = vhdx_create(abs_child, &co)))
		goto out;
	*made = abs_child;
	abs_child = NULL;

	char id[RCT_ID_STRLEN + 1] = "";
	if ((r = host_rct_open(h, d, &rt)))
		goto out;
	uint32_t w32;
	if (rct_enabled(rt)) {
		if ((r = rct_seal(rt, id, &w32)) || (r = rct_save(rt)))
			goto out;
	}
	char gtext[HV_GUID_STRLEN + 1];
	struct hv_guid tg = rct_guid(rt);
	hv_guid_format(&tg, gtext);
	char *sql = sqlite3_mprintf(
		"UPDATE chain SET frozen_seq=%lld, frozen_guid=%Q WHERE disk_id=%lld AND depth=%d;"
		"INSERT INTO chain(disk_id, depth, path) VALUES(%lld, %d, %Q);"
		"INSERT INTO snapshot_disk(snapshot_id, disk_id, depth, rct_id) VALUES(%lld, %lld, %d, %Q);",
		rct_enabled(rt) ? (long long)rct_seq(rt) : -1LL, gtext, (long long)d->id, d->leaf_depth, (long long)d->id,
		d->leaf_depth + 1, child, (long long)snap_id, (long long)d->id, d->leaf_depth, id);
	r = host_exec(h, sql);
	sqlite3_free(sql);
out:
	rct_close(rt);
	free(abs_child);
	free(abs_leaf);
	free(win_leaf);
	return r;
}

static int host_snapshot_create_locked(struct host *h, int64_t vm_id, int type, int consistency, const char *name,
			 int64_t *snapshot_id)
{
	if (type != HOST_SNAPSHOT_RECOVERY && type != HOST_SNAPSHOT_STANDARD)
		return hv_err(HV_EINVAL, "checkpoint type %d: not 2 (standard) or 32768 (recovery)", type);
	char vguid[37], vname[HOST_NAME_MAX_LEN + 1];
	int r = vm_guid(h, vm_id, vguid, vname, sizeof vname);
	if (r)
		return r;
	int64_t ids[HOST_MAX_DISKS_PER_VM];
	size_t n;
	char *made[HOST_MAX_DISKS_PER_VM] = {0};
	int64_t vss = 1;
	if ((r = hdb_int(h, &vss, 1, "SELECT guest_vss FROM vm WHERE id=%lld", (long long)vm_id)))
		return r;
	if (consistency == 1 && !vss)
		return hv_err(HV_EUNSUPPORTED, "the application-consistent checkpoint of VM '%s' failed: the guest"
					       " does not answer VSS requests (no integration services / hv_vss_daemon)", vname);
	if ((r = disks_of_vm(h, vm_id, ids, &n)) || (r = host_begin(h)))
		return r;
	char guid[37], label[200], when[64];
	clock_text(host_now(h), when, sizeof when);
	if (name && *name)
		snprintf(label, sizeof label, "%s", name);
	else
		snprintf(label, sizeof label, "%s - (%s)", vname, when);
	int64_t parent = -1, sid = 0, point = 0;
	if ((r = host_guid_str(h, "snapshot", guid)) ||
	    (r = hdb_int(h, &parent, -1, "SELECT max(id) FROM snapshot WHERE vm_id=%lld", (long long)vm_id)))
		goto fail;
	char *sql = sqlite3_mprintf("INSERT INTO snapshot(guid, vm_id, type, name, consistency, created, parent_id)"
				    " VALUES(%Q, %lld, %d, %Q, %d, %lld, nullif(%lld, -1))", guid, (long long)vm_id, type,
				    label, consistency, (long long)host_now(h), (long long)parent);
	r = host_exec(h, sql);
	sqlite3_free(sql);
	if (r)
		goto fail;
	sid = sqlite3_last_insert_rowid(h->db);
	if ((r = truth_point_new(h->db, "checkpoint", guid, vm_id, host_now(h), &point)))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct host_disk d;
		if ((r = host_disk_load(h, ids[i], &d)) || (r = truth_disk(h, point, &d, d.leaf)) ||
		    (r = freeze_disk(h, sid, &d, &made[i])))
			goto fail;
	}
	sql = sqlite3_mprintf("UPDATE snapshot SET truth_point=%lld WHERE id=%lld", (long long)point, (long long)sid);
	r = host_exec(h, sql);
	sqlite3_free(sql);
	if (r || (r = host_commit(h)))
		goto fail;
	for (size_t i = 0; i < n; i++)
		free(made[i]);
	if (snapshot_id)
		*snapshot_id = sid;
	return 0;
fail:
	host_rollback(h);
	for (size_t i = 0; i < n; i++) {
		if (made[i])
			unlink(made[i]);
		free(made[i]);
	}
	return hv_err_prefix(r, "checkpoint of VM '%s'", vname);
}

/* ---- merges -----------------------------------------------------------------------------------*/

const char *host_merge_block_reason(struct host *h, int64_t vm_id)
{
	int64_t en = 1, fault = 0, rps = 0;
	if (hdb_int(h, &en, 1, "SELECT merge_enabled FROM vm WHERE id=%lld", (long long)vm_id) ||
	    hdb_int(h, &fault, 0, "SELECT merge_fault FROM vm WHERE id=%lld", (long long)vm_id) ||
	    hdb_int(h, &rps, 0, "SELECT count(*) FROM refpoint WHERE vm_id=%lld", (long long)vm_id))
		return "host.db could not be read";
	if (!en)
		return "disk merging is disabled for the VM (Msvm_DiskMergeSettingData.EnabledState = 0)";
	if (fault)
		return "merge failed (fault merge-block)";
	if (rps > 1 && host_setting_int(h, "merge.block_on_extra_refpoints", 1))
		return "the VM has more than one reference point (a leaked reference point blocks the merge)";
	return NULL;
}

struct copy_ctx {
	struct vhdx_file *src, *dst;
	uint8_t *buf;
	size_t cap;
};

static int copy_range(void *ctx, uint64_t off, uint64_t len, enum vhdx_map_kind kind)
{
	struct copy_ctx *c = ctx;
	while (len) {
		size_t n = len < c->cap ? (size_t)len : c->cap;
		int r;
		if (kind == VHDX_MAP_DATA)
			r = vhdx_read(c->src, c->buf, off, n);
		else
			r = (memset(c->buf, 0, n), 0);
		if (!r)
			r = vhdx_write(c->dst, c->buf, off, n);
		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/* Copies what the child file defines into the parent file. */
static int merge_copy(struct host *h, const char *child_rel, const char *parent_rel)
{
	char *ca = host_abs(h, child_rel), *pa = host_abs(h, parent_rel);
	struct copy_ctx c = {.cap = 4u << 20};
	c.buf = malloc(c.cap);
	int r = (ca && pa && c.buf) ? 0 : hv_err(HV_ENOMEM, "out of memory");
	if (!r)
		r = vhdx_open(ca, VHDX_OPEN_RDONLY | VHDX_OPEN_NO_PARENT, &c.src);
	if (!r) {
		struct vhdx_open_opts oo = {.flags = VHDX_OPEN_RDWR | (h->nosync ? VHDX_OPEN_NOSYNC : 0),
					    .crash_after_steps = -1};
		r = vhdx_open_ex(pa, &oo, &c.dst);
	}
	if (!r)
		r = vhdx_map(c.src, copy_range, &c);
	if (!r)
		r = vhdx_flush(c.dst);
	if (c.dst) {
		int rc = vhdx_close(c.dst);
		if (!r)
			r = rc;
	}
	vhdx_close(c.src);
	free(c.buf);
	free(ca);
	free(pa);
	return r;
}

/* Folds the leaf (depth k) of a disk into depth k-1. The announce/copy/finish steps are each
 * durable, so host_recover can finish a merge cut anywhere. */
static int merge_leaf(struct host *h, int64_t disk_id, int k, const char *child, const char *parent)
{
	char *sql = sqlite3_mprintf("UPDATE chain SET merging=1 WHERE disk_id=%lld AND depth=%d", (long long)disk_id, k);
	int r = host_exec(h, sql);
	sqlite3_free(sql);
	if (r)
		return r;
	if ((r = merge_copy(h, child, parent)))
		return r;
	if ((r = host_begin(h)))
		return r;
	sql = sqlite3_mprintf("DELETE FROM chain WHERE disk_id=%lld AND depth=%d;"
			      "UPDATE chain SET frozen_seq=NULL, frozen_guid=NULL WHERE disk_id=%lld AND depth=%d;",
			      (long long)disk_id, k, (long long)disk_id, k - 1);
	r = host_exec(h, sql);
	sqlite3_free(sql);
	if (!r)
		r = host_commit(h);
	else
		host_rollback(h);
	if (r)
		return r;
	char *abs = host_abs(h, child);
	if (abs)
		unlink(abs);
	free(abs);
	return 0;
}

/* One disk: merge while the leaf's parent is held by no checkpoint. */
static int merge_disk(struct host *h, int64_t disk_id)
{
	for (;;) {
		sqlite3_stmt *st;
		int r = hdb_prep(h, &st,
				 "SELECT c.depth, c.path, p.path FROM chain c JOIN chain p ON p.disk_id=c.disk_id AND"
				 " p.depth=c.depth-1 WHERE c.disk_id=?1 ORDER BY c.depth DESC LIMIT 1");
		if (r)
			return r;
		sqlite3_bind_int64(st, 1, disk_id);
		if (sqlite3_step(st) != SQLITE_ROW) {
			sqlite3_finalize(st);
			return 0; /* no chain above the base */
		}
		int k = sqlite3_column_int(st, 0);
		char child[1200], parent[1200];
		snprintf(child, sizeof child, "%s", hdb_text(st, 1));
		snprintf(parent, sizeof parent, "%s", hdb_text(st, 2));
		sqlite3_finalize(st);
		int64_t held;
		if ((r = hdb_int(h, &held, 0, "SELECT count(*) FROM snapshot_disk WHERE disk_id=%lld AND depth=%d",
				 (long long)disk_id, k - 1)))
			return r;
		if (held)
			return 0;
		if ((r = merge_leaf(h, disk_id, k, child, parent)))
			return r;
	}
}

static int host_merge_pending_locked(struct host *h, int64_t vm_id, bool *blocked)
{
	if (blocked)
		*blocked = false;
	int64_t ids[HOST_MAX_DISKS_PER_VM];
	size_t n;
	int r = disks_of_vm(h, vm_id, ids, &n);
	if (r)
		return r;
	bool pending = false;
	if (host_merge_block_reason(h, vm_id)) {
		for (size_t i = 0; i < n; i++) {
			int64_t k;
			if ((r = hdb_int(h, &k, 0, "SELECT max(depth) FROM chain WHERE disk_id=%lld", (long long)ids[i])))
				return r;
			int64_t held;
			if ((r = hdb_int(h, &held, 0, "SELECT count(*) FROM snapshot_disk WHERE disk_id=%lld AND depth=%lld",
					 (long long)ids[i], (long long)(k - 1))))
				return r;
			if (k > 0 && !held)
				pending = true;
		}
		if (blocked)
			*blocked = pending;
		return 0;
	}
	for (size_t i = 0; i < n && !r; i++)
		r = merge_disk(h, ids[i]);
	return r;
}

static int host_merge_set_enabled_locked(struct host *h, int64_t vm_id, bool enabled)
{
	char *sql = sqlite3_mprintf("UPDATE vm SET merge_enabled=%d WHERE id=%lld", enabled ? 1 : 0, (long long)vm_id);
	int r = host_exec(h, sql);
	sqlite3_free(sql);
	if (!r && enabled)
		r = host_merge_pending(h, vm_id, NULL);
	return r;
}

int host_merge_after(struct host *h, int64_t vm_id)
{
	if (!h->txn_depth)
		return host_merge_pending(h, vm_id, NULL);
	for (int i = 0; i < h->ndeferred; i++)
		if (h->deferred[i] == vm_id)
			return 0;
	if (h->ndeferred == (int)(sizeof h->deferred / sizeof *h->deferred))
		return hv_err(HV_EINVAL, "host: too many VMs waiting for a merge in one transaction");
	h->deferred[h->ndeferred++] = vm_id;
	return 0;
}

static int recover_pending_merges(struct host *h)
{
	sqlite3_stmt *st;
	int64_t ids[256];
	int n = 0, r = hdb_prep(h, &st, "SELECT DISTINCT d.vm_id FROM chain c JOIN disk d ON d.id=c.disk_id WHERE c.depth>0"
				       " ORDER BY 1");
	if (r)
		return r;
	while (n < 256 && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	for (int i = 0; i < n && !r; i++)
		r = host_merge_pending(h, ids[i], NULL);
	return r;
}

/* Redoes merges a crash interrupted (chain.merging = 1), then the merges a crash left waiting
 * between a commit and its merge. Called by host_open. */
int host_recover(struct host *h)
{
	for (;;) {
		sqlite3_stmt *st;
		int r = hdb_prep(h, &st,
				 "SELECT c.disk_id, c.depth, c.path, p.path FROM chain c JOIN chain p ON"
				 " p.disk_id=c.disk_id AND p.depth=c.depth-1 WHERE c.merging LIMIT 1");
		if (r)
			return r;
		if (sqlite3_step(st) != SQLITE_ROW) {
			sqlite3_finalize(st);
			return recover_pending_merges(h);
		}
		int64_t disk = sqlite3_column_int64(st, 0);
		int k = sqlite3_column_int(st, 1);
		char child[1200], parent[1200];
		snprintf(child, sizeof child, "%s", hdb_text(st, 2));
		snprintf(parent, sizeof parent, "%s", hdb_text(st, 3));
		sqlite3_finalize(st);
		if ((r = merge_leaf(h, disk, k, child, parent)))
			return hv_err_prefix(r, "finishing an interrupted merge of %s", child);
	}
}

static int host_snapshot_destroy_locked(struct host *h, int64_t snapshot_id)
{
	int64_t vm;
	int r = hdb_int(h, &vm, -1, "SELECT vm_id FROM snapshot WHERE id=%lld", (long long)snapshot_id);
	if (r)
		return r;
	if (vm < 0)
		return hv_err(HV_ENOTFOUND, "no checkpoint %lld on this host", (long long)snapshot_id);
	if ((r = host_begin(h)))
		return r;
	char *sql = sqlite3_mprintf("UPDATE snapshot SET parent_id=(SELECT parent_id FROM snapshot WHERE id=%lld)"
				    " WHERE parent_id=%lld; DELETE FROM snapshot_disk WHERE snapshot_id=%lld;"
				    " DELETE FROM snapshot WHERE id=%lld;",
				    (long long)snapshot_id, (long long)snapshot_id, (long long)snapshot_id,
				    (long long)snapshot_id);
	r = host_exec(h, sql);
	sqlite3_free(sql);
	if (!r)
		r = host_commit(h);
	else
		host_rollback(h);
	return r ? r : host_merge_after(h, vm);
}

/* ---- reference points -------------------------------------------------------------------------*/

static int refpoint_insert(struct host *h, int64_t vm_id, int consistency, int64_t point, int64_t *rp_id)
{
	char guid[37];
	int r = host_guid_str(h, "refpoint", guid);
	if (r)
		return r;
	char *sql = sqlite3_mprintf("INSERT INTO refpoint(guid, vm_id, type, consistency, created, truth_point)"
				    " VALUES(%Q, %lld, 2, %d, %lld, %lld)", guid, (long long)vm_id, consistency,
				    (long long)host_now(h), (long long)point);
	r = host_exec(h, sql);
	sqlite3_free(sql);
	if (!r)
		*rp_id = sqlite3_last_insert_rowid(h->db);
	return r;
}

static int refpoint_disk(struct host *h, int64_t rp, int idx, int64_t disk_id, const char *rct_id)
{
	char *sql = sqlite3_mprintf("INSERT INTO refpoint_disk(rp_id, idx, disk_id, disk_instance_id, rct_id)"
				    " SELECT %lld, %d, id, instance_id, %Q FROM disk WHERE id=%lld",
				    (long long)rp, idx, rct_id, (long long)disk_id);
	int r = host_exec(h, sql);
	sqlite3_free(sql);
	return r;
}

static int host_refpoint_convert_locked(struct host *h, int64_t snapshot_id, int consistency, int64_t *rp_id)
{
	int64_t vm, type, point;
	int r = hdb_int(h, &vm, -1, "SELECT vm_id FROM snapshot WHERE id=%lld", (long long)snapshot_id);
	if (!r && vm < 0)
		r = hv_err(HV_ENOTFOUND, "no checkpoint %lld on this host", (long long)snapshot_id);
	if (!r)
		r = hdb_int(h, &type, 0, "SELECT type FROM snapshot WHERE id=%lld", (long long)snapshot_id);
	if (!r && type != HOST_SNAPSHOT_RECOVERY)
		r = hv_err(HV_EINVAL, "checkpoint %lld is not a recovery checkpoint; only those convert to a"
				      " reference point", (long long)snapshot_id);
	if (!r)
		r = hdb_int(h, &point, 0, "SELECT truth_point FROM snapshot WHERE id=%lld", (long long)snapshot_id);
	if (r || (r = host_begin(h)))
		return r;
	int64_t rp = 0;
	if ((r = refpoint_insert(h, vm, consistency, point, &rp)))
		goto fail;
	sqlite3_stmt *st;
	/* setting refpoint.disk_order "reverse": the arrays list the disks in the opposite order of the
	 * SASDs, so clients that pair by position instead of identity get caught */
	bool rev = host_setting_int(h, "refpoint.reverse_disk_order", 0) != 0;
	if ((r = hdb_prep(h, &st, rev ? "SELECT sd.disk_id, sd.rct_id FROM snapshot_disk sd JOIN disk d ON"
					" d.id=sd.disk_id WHERE sd.snapshot_id=?1 ORDER BY d.slot DESC"
				      : "SELECT sd.disk_id, sd.rct_id FROM snapshot_disk sd JOIN disk d ON d.id=sd.disk_id"
					" WHERE sd.snapshot_id=?1 ORDER BY d.slot")))
		goto fail;
	sqlite3_bind_int64(st, 1, snapshot_id);
	for (int idx = 0; !r && sqlite3_step(st) == SQLITE_ROW; idx++)
		r = refpoint_disk(h, rp, idx, sqlite3_column_int64(st, 0), hdb_text(st, 1));
	sqlite3_finalize(st);
	if (r || (r = host_snapshot_destroy(h, snapshot_id)) || (r = host_commit(h)))
		goto fail;
	if (rp_id)
		*rp_id = rp;
	return host_merge_after(h, vm);
fail:
	host_rollback(h);
	return r;
}

static int host_refpoint_create_locked(struct host *h, int64_t vm_id, int consistency, int64_t *rp_id)
{
	char vguid[37];
	int r = vm_guid(h, vm_id, vguid, NULL, 0);
	if (r)
		return r;
	int64_t ids[HOST_MAX_DISKS_PER_VM];
	size_t n;
	if ((r = disks_of_vm(h, vm_id, ids, &n)) || (r = host_begin(h)))
		return r;
	int64_t point = 0, rp = 0;
	if ((r = host_truth_point(h, vm_id, "refpoint", "", &point)) || (r = refpoint_insert(h, vm_id, consistency, point, &rp)))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct host_disk d;
		struct rct *rt = NULL;
		char id[RCT_ID_STRLEN + 1] = "";
		uint32_t w32;
		if (!(r = host_disk_load(h, ids[i], &d)) && !(r = host_rct_open(h, &d, &rt)) && rct_enabled(rt))
			if (!(r = rct_seal(rt, id, &w32)))
				r = rct_save(rt);
		rct_close(rt);
		int idx = host_setting_int(h, "refpoint.reverse_disk_order", 0) ? (int)(n - 1 - i) : (int)i;
		if (r || (r = refpoint_disk(h, rp, idx, ids[i], id)))
			goto fail;
	}
	char *sql = sqlite3_mprintf("UPDATE truth_point SET object_guid=(SELECT guid FROM refpoint WHERE id=%lld)"
				    " WHERE id=%lld", (long long)rp, (long long)point);
	r = host_exec(h, sql);
	sqlite3_free(sql);
	if (r || (r = host_commit(h)))
		goto fail;
	if (rp_id)
		*rp_id = rp;
	return 0;
fail:
	host_rollback(h);
	return r;
}

static int host_refpoint_destroy_locked(struct host *h, int64_t rp_id)
{
	int64_t vm;
	int r = hdb_int(h, &vm, -1, "SELECT vm_id FROM refpoint WHERE id=%lld", (long long)rp_id);
	if (r)
		return r;
	if (vm < 0)
		return hv_err(HV_ENOTFOUND, "no reference point %lld on this host", (long long)rp_id);
	char *sql = sqlite3_mprintf("DELETE FROM refpoint_disk WHERE rp_id=%lld; DELETE FROM refpoint WHERE id=%lld;",
				    (long long)rp_id, (long long)rp_id);
	if ((r = host_begin(h)))
		return r;
	r = host_exec(h, sql);
	sqlite3_free(sql);
	if (!r)
		r = host_commit(h);
	else
		host_rollback(h);
	/* a leaked reference point may have been what blocked a merge */
	return r ? r : host_merge_after(h, vm);
}

/* ---- the public entry points hold the host lock (host_internal.h) ---------------------------- */

int host_snapshot_create(struct host *h, int64_t vm_id, int type, int consistency, const char *name, int64_t *snapshot_id)
{
	int r = host_lock(h);
	if (r)
		return r;
	r = host_snapshot_create_locked(h, vm_id, type, consistency, name, snapshot_id);
	host_unlock(h);
	return r;
}

int host_snapshot_destroy(struct host *h, int64_t snapshot_id)
{
	int r = host_lock(h);
	if (r)
		return r;
	r = host_snapshot_destroy_locked(h, snapshot_id);
	host_unlock(h);
	return r;
}

int host_refpoint_convert(struct host *h, int64_t snapshot_id, int consistency, int64_t *rp_id)
{
	int r = host_lock(h);
	if (r)
		return r;
	r = host_refpoint_convert_locked(h, snapshot_id, consistency, rp_id);
	host_unlock(h);
	return r;
}

int host_refpoint_create(struct host *h, int64_t vm_id, int consistency, int64_t *rp_id)
{
	int r = host_lock(h);
	if (r)
		return r;
	r = host_refpoint_create_locked(h, vm_id, consistency, rp_id);
	host_unlock(h);
	return r;
}

int host_refpoint_destroy(struct host *h, int64_t rp_id)
{
	int r = host_lock(h);
	if (r)
		return r;
	r = host_refpoint_destroy_locked(h, rp_id);
	host_unlock(h);
	return r;
}

int host_merge_pending(struct host *h, int64_t vm_id, bool *blocked)
{
	int r = host_lock(h);
	if (r)
		return r;
	r = host_merge_pending_locked(h, vm_id, blocked);
	host_unlock(h);
	return r;
}

int host_merge_set_enabled(struct host *h, int64_t vm_id, bool enabled)
{
	int r = host_lock(h);
	if (r)
		return r;
	r = host_merge_set_enabled_locked(h, vm_id, enabled);
	host_unlock(h);
	return r;
}
