/*
 * wmi_methods.c — ExecMethod: the method table (signatures, return-code family, job type,
 * default trajectory), parameter checks, embedded-instance checks (strict/lenient), and each
 * method's validation and work over sim/host.
 *
 * A call validates synchronously (a bad argument is a non-zero, non-4096 ReturnValue of the
 * method's family, reference/wmi-backup.md 1.3). Then, by the method's trajectory, the work either
 * runs now (ReturnValue 0, result REFs and arrays filled) or a job is created (ReturnValue 4096,
 * Job = its path) and the work runs at the poll that completes the job (wmi_jobs.c); the created
 * object is then reachable with ASSOCIATORS OF {job}. As on Windows, a GetVirtualDiskChanges that
 * runs as a job loses its output arrays.
 *
 * Choices where the reference is silent [INF]: ConvertToReferencePoint on a standard checkpoint
 * returns 4 (Invalid Parameter); a stale/reset RCT id makes GetVirtualDiskChanges return 32768
 * (Failed) synchronously, or end its job in Exception with ErrorCode 32768 and an ErrorDescription
 * naming ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION (0xC03A0030); RequestStateChange to the
 * current state returns 4097 (Invalid State Transition); ReferencePointType 1 and 2 both mean RCT
 * (the documentation contradicts itself), 0 (log based) is Not Supported (1).
 *
 * Must not: touch files (sim/host does), decide job timing (wmi_jobs.c does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wmi_methods.h"
#include "../host/host.h"
#include "../../hyperv/vhdx/vhdx.h"

enum { IN = 1, OUT = 2 };

struct param {
	const char *name;
	enum cim_type type;
	bool array;
	unsigned dir;
};

struct call;

struct method {
	const char *cls, *name;
	enum cim_rc_family fam;
	const struct param *params;
	size_t nparams;
	uint16_t job_type;
	const char *traj;    /* default trajectory */
	const char *caption; /* job caption */
	const char *result_param; /* REF out-parameter that receives the created object (sync) */
	uint32_t (*validate)(struct call *c);
	int (*work)(struct call *c, char **result);
};

struct call {
	struct hvsim_wmi *w;
	const struct method *m;
	const char *target;
	const struct cim_instance *in;
	struct cim_instance *out;
	char mistake[400];
	/* resolved by validate */
	int64_t vm, snap, rp, disk;
	int depth;
	int type, consistency, state;
	bool flag;
	uint64_t off, len;
	char path[1024], limit[300];
};

static uint32_t rc_invalid(const struct call *c)
{
	return c->m->fam == CIM_RC_FAMILY_A ? CIM_RC_A_INVALID_PARAMETER : CIM_RC_B_INVALID_PARAMETER;
}

static uint32_t rc_failed(const struct call *c)
{
	return c->m->fam == CIM_RC_FAMILY_A ? CIM_RC_A_FAILED : CIM_RC_B_FAILED;
}

/* The error message stays in hv_errmsg for the audit record; the return code is for the client. */
static uint32_t bad(struct call *c, uint32_t rc, const char *fmt, const char *a)
{
	hv_err(HV_EINVAL, fmt, a);
	return rc ? rc : rc_invalid(c);
}

/* ---- argument helpers ------------------------------------------------------------------------- */

static const char *arg(const struct call *c, const char *name)
{
	return c->in ? cim_instance_get(c->in, name) : NULL;
}

/* Resolves a REF argument to an existing object of class `cls`; *canon is malloc'd. */
static int ref_arg(struct call *c, const char *name, const char *cls, char **canon)
{
	const char *v = arg(c, name);
	if (!v || !*v)
		return hv_err(HV_EINVAL, "%s: missing (NULL)", name);
	const struct wmi_class *k;
	int r = wmi_path_canon(c->w, v, canon, &k);
	if (r)
		return hv_err_prefix(r, "%s", name);
	if (!wmi_class_isa(k->name, cls)) {
		free(*canon);
		return hv_err(HV_EINVAL, "%s: %s is a %s, not a %s", name, v, k->name, cls);
	}
	struct wmi_object o;
	if ((r = wmi_fetch(c->w, k, *canon, &o))) {
		free(*canon);
		return hv_err_prefix(r, "%s", name);
	}
	wmi_object_clear(&o);
	return 0;
}

static int key_of(const char *canon, const char *key, char *out, size_t n)
{
	struct cim_path *p;
	int r = cim_path_parse(canon, &p);
	if (r)
		return r;
	const char *v = cim_path_key(p, key);
	if (!v)
		r = hv_err(HV_EINVAL, "%s: no key %s", canon, key);
	else
		snprintf(out, n, "%s", v);
	cim_path_free(p);
	return r;
}

static int64_t id_by_guid(struct hvsim_wmi *w, const char *table, const char *instance_id)
{
	const char *g = !strncasecmp(instance_id, "Microsoft:", 10) ? instance_id + 10 : instance_id;
	char *sql = sqlite3_mprintf("SELECT id FROM \"%w\" WHERE guid=%Q", table, g);
	sqlite3_stmt *st;
	int64_t id = -1;
	if (sql && sqlite3_prepare_v2(w->db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			id = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_free(sql);
	return id;
}

/* The VM a Msvm_ComputerSystem REF names (not the host). */
static int vm_arg(struct call *c, const char *name)
{
	char *canon;
	int r = ref_arg(c, name, "Msvm_ComputerSystem", &canon);
	if (r)
		return r;
	char guid[80];
	r = key_of(canon, "Name", guid, sizeof guid);
	free(canon);
	if (!r && (c->vm = id_by_guid(c->w, "vm", guid)) < 0)
		r = hv_err(HV_EINVAL, "%s: names the host, not a virtual machine", name);
	return r;
}

static int uint_arg(const struct call *c, const char *name, uint64_t max, uint64_t *out, bool *present)
{
	const char *v = arg(c, name);
	*present = v != NULL;
	if (!v)
		return 0;
	return cim_value_uint(v, max, out) ? hv_err(HV_EINVAL, "%s: '%s' is not a number up to %llu", name, v,
						    (unsigned long long)max) : 0;
}

/* Parses an embedded-instance argument and checks it against its class. Strict: an unknown
 * property is an error and a recorded client mistake; lenient: ignored. NULL/empty → *out NULL. */
static int embedded_arg(struct call *c, const char *name, const char *cls, struct cim_instance **out)
{
	*out = NULL;
	const char *v = arg(c, name);
	if (!v || !*v)
		return 0;
	struct cim_instance *inst;
	int r = cim_instance_parse(v, strlen(v), &inst);
	if (r)
		return hv_err_prefix(r, "%s", name);
	const struct wmi_class *k = wmi_class_find(inst->class_name);
	if (!k || !wmi_class_isa(k->name, cls)) {
		r = hv_err(HV_EINVAL, "%s: an instance of %s, expected %s", name, inst->class_name, cls);
		goto fail;
	}
	for (size_t i = 0; i < inst->nprops; i++) {
		const struct cim_prop *p = &inst->props[i];
		const struct wmi_prop *d = wmi_class_prop(k, p->name);
		if (!d) {
			snprintf(c->mistake, sizeof c->mistake, "%s: %s has no property %s", name, k->name, p->name);
			if (c->w->strict) {
				r = hv_err(HV_EINVAL, "%s (strict mode)", c->mistake);
				goto fail;
			}
			continue;
		}
		for (size_t e = 0; !p->is_null && e < p->nvalues; e++)
			if (cim_value_check(d->type, p->values[e])) {
				r = hv_err(HV_EINVAL, "%s: %s.%s = '%s' is not a %s", name, k->name, d->name, p->values[e],
					   cim_type_name(d->type));
				goto fail;
			}
	}
	*out = inst;
	return 0;
fail:
	cim_instance_free(inst);
	return r;
}

/* ---- Msvm_VirtualSystemSnapshotService -------------------------------------------------------- */

static uint32_t v_create_snapshot(struct call *c)
{
	if (vm_arg(c, "AffectedSystem"))
		return rc_invalid(c);
	uint64_t type = 0;
	bool has;
	if (uint_arg(c, "SnapshotType", 65535, &type, &has))
		return rc_invalid(c);
	if (!has)
		type = HOST_SNAPSHOT_STANDARD;
	if (type == 3)
		return bad(c, CIM_RC_A_NOT_SUPPORTED, "SnapshotType %s: disk-only snapshots are not supported", "3");
	if (type != HOST_SNAPSHOT_STANDARD && type != HOST_SNAPSHOT_RECOVERY) {
		char t[16];
		snprintf(t, sizeof t, "%llu", (unsigned long long)type);
		return bad(c, 0, "SnapshotType %s: expected 2 (full) or 32768 (recovery)", t);
	}
	c->type = (int)type;
	struct cim_instance *s;
	if (embedded_arg(c, "SnapshotSettings", "Msvm_VirtualSystemSnapshotSettingData", &s))
		return rc_invalid(c);
	c->consistency = 1;
	const char *cl = s ? cim_instance_get(s, "ConsistencyLevel") : NULL;
	uint64_t v;
	if (cl && (cim_value_uint(cl, 255, &v) || v > 2)) {
		uint32_t rc = bad(c, 0, "ConsistencyLevel %s: expected 0, 1 or 2", cl);
		cim_instance_free(s);
		return rc;
	}
	if (cl)
		c->consistency = (int)v;
	cim_instance_free(s);
	return 0;
}

static char *vssd_path(struct call *c, int64_t snap)
{
	char *sql = sqlite3_mprintf("SELECT __PATH FROM \"Msvm_VirtualSystemSettingData\" WHERE InstanceID ="
				    " 'Microsoft:' || (SELECT guid FROM snapshot WHERE id=%lld)", (long long)snap);
	sqlite3_stmt *st;
	char *p = NULL;
	if (sql && sqlite3_prepare_v2(c->w->db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			p = strdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	sqlite3_free(sql);
	if (!p)
		hv_err(HV_EIO, "wmi: snapshot %lld has no settings path", (long long)snap);
	return p;
}

static char *rp_path(struct call *c, int64_t rp)
{
	char *sql = sqlite3_mprintf("SELECT __PATH FROM \"Msvm_VirtualSystemReferencePoint\" WHERE InstanceID ="
				    " 'Microsoft:' || (SELECT guid FROM refpoint WHERE id=%lld)", (long long)rp);
	sqlite3_stmt *st;
	char *p = NULL;
	if (sql && sqlite3_prepare_v2(c->w->db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			p = strdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	sqlite3_free(sql);
	if (!p)
		hv_err(HV_EIO, "wmi: reference point %lld has no path", (long long)rp);
	return p;
}

static int w_create_snapshot(struct call *c, char **result)
{
	int64_t snap;
	int r = host_snapshot_create(c->w->h, c->vm, c->type, c->consistency, NULL, &snap);
	if (!r && !(*result = vssd_path(c, snap)))
		r = HV_EIO;
	return r;
}

static uint32_t snapshot_arg(struct call *c, const char *name)
{
	char *canon;
	if (ref_arg(c, name, "Msvm_VirtualSystemSettingData", &canon))
		return rc_invalid(c);
	char iid[120];
	int r = key_of(canon, "InstanceID", iid, sizeof iid);
	free(canon);
	if (r || (c->snap = id_by_guid(c->w, "snapshot", iid)) < 0)
		return bad(c, 0, "%s: names the active settings of a VM, not a checkpoint", name);
	return 0;
}

/* A checkpoint is being converted or deleted: any GetVirtualDiskChanges answer that stopped short
 * and was never continued means the client did not page (a client mistake, reported once). */
static void check_paging(struct call *c)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->w->db, "SELECT path, limit_id, next_offset, end_offset FROM wmi_paging ORDER BY 1, 2",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(c->mistake, sizeof c->mistake,
			 "GetVirtualDiskChanges on %s since %s stopped at offset %lld of %lld and was never continued"
			 " (the client did not page on ProcessedByteLength)",
			 (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
			 (long long)sqlite3_column_int64(st, 2), (long long)sqlite3_column_int64(st, 3));
	sqlite3_finalize(st);
	sqlite3_exec(c->w->db, "DELETE FROM wmi_paging", NULL, NULL, NULL);
}

static uint32_t v_destroy_snapshot(struct call *c)
{
	uint32_t rc = snapshot_arg(c, "AffectedSnapshot");
	if (!rc)
		check_paging(c);
	return rc;
}

static int w_destroy_snapshot(struct call *c, char **result)
{
	(void)result;
	return host_snapshot_destroy(c->w->h, c->snap);
}

static uint32_t v_convert(struct call *c)
{
	uint32_t rc = snapshot_arg(c, "AffectedSnapshot");
	if (rc)
		return rc;
	int64_t type = 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->w->db, "SELECT type, consistency FROM snapshot WHERE id=?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, c->snap);
		if (sqlite3_step(st) == SQLITE_ROW) {
			type = sqlite3_column_int64(st, 0);
			c->consistency = sqlite3_column_int(st, 1);
		}
		sqlite3_finalize(st);
	}
	if (type != HOST_SNAPSHOT_RECOVERY)
		return bad(c, 0, "AffectedSnapshot: %s", "only recovery checkpoints (SnapshotType 32768) convert to a reference point");
	check_paging(c);
	struct cim_instance *s;
	if (embedded_arg(c, "ReferencePointSettings", "Msvm_VirtualSystemReferencePointSettingData", &s))
		return rc_invalid(c);
	const char *cl = s ? cim_instance_get(s, "ConsistencyLevel") : NULL;
	uint64_t v;
	if (cl && !cim_value_uint(cl, 2, &v) && v)
		c->consistency = (int)v;
	cim_instance_free(s);
	return 0;
}

static int w_convert(struct call *c, char **result)
{
	int64_t rp;
	int r = host_refpoint_convert(c->w->h, c->snap, c->consistency, &rp);
	if (!r && !(*result = rp_path(c, rp)))
		r = HV_EIO;
	return r;
}

/* ---- Msvm_VirtualSystemReferencePointService -------------------------------------------------- */

static uint32_t v_create_rp(struct call *c)
{
	if (vm_arg(c, "AffectedSystem"))
		return rc_invalid(c);
	uint64_t type = 2;
	bool has;
	if (uint_arg(c, "ReferencePointType", 65535, &type, &has))
		return rc_invalid(c);
	if (has && type == 0)
		return bad(c, CIM_RC_A_NOT_SUPPORTED, "ReferencePointType %s: log-based reference points are not simulated", "0");
	if (has && type != 1 && type != 2)
		return bad(c, 0, "ReferencePointType: expected 1 or 2 (RCT based)%s", "");
	struct cim_instance *s;
	if (embedded_arg(c, "ReferencePointSettings", "Msvm_VirtualSystemReferencePointSettingData", &s))
		return rc_invalid(c);
	c->consistency = 2;
	const char *cl = s ? cim_instance_get(s, "ConsistencyLevel") : NULL;
	uint64_t v;
	if (cl && !cim_value_uint(cl, 2, &v) && v)
		c->consistency = (int)v;
	cim_instance_free(s);
	return 0;
}

static int w_create_rp(struct call *c, char **result)
{
	int64_t rp;
	int r = host_refpoint_create(c->w->h, c->vm, c->consistency, &rp);
	if (!r && !(*result = rp_path(c, rp)))
		r = HV_EIO;
	return r;
}

static uint32_t v_destroy_rp(struct call *c)
{
	char *canon;
	if (ref_arg(c, "AffectedReferencePoint", "Msvm_VirtualSystemReferencePoint", &canon))
		return rc_invalid(c);
	char iid[120];
	int r = key_of(canon, "InstanceID", iid, sizeof iid);
	free(canon);
	if (r || (c->rp = id_by_guid(c->w, "refpoint", iid)) < 0)
		return rc_invalid(c);
	return 0;
}

static int w_destroy_rp(struct call *c, char **result)
{
	(void)result;
	return host_refpoint_destroy(c->w->h, c->rp);
}

/* ---- Msvm_ImageManagementService -------------------------------------------------------------- */

static uint32_t path_arg(struct call *c)
{
	const char *p = arg(c, "Path");
	if (!p || !*p)
		return bad(c, 0, "Path: missing%s", "");
	snprintf(c->path, sizeof c->path, "%s", p);
	if (host_path_lookup(c->w->h, p, &c->disk, &c->depth))
		return CIM_RC_B_FILE_NOT_FOUND;
	return 0;
}

static uint64_t disk_size(struct call *c)
{
	int64_t size = 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->w->db, "SELECT size FROM disk WHERE id=?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, c->disk);
		if (sqlite3_step(st) == SQLITE_ROW)
			size = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return (uint64_t)size;
}

static uint32_t v_changes(struct call *c)
{
	uint32_t rc = path_arg(c);
	if (rc)
		return rc;
	const char *lim = arg(c, "LimitId"), *tgt = arg(c, "TargetSnapshotId");
	if (!lim || !*lim)
		return bad(c, 0, "LimitId: missing%s", "");
	if (tgt && *tgt)
		return bad(c, CIM_RC_B_NOT_SUPPORTED, "TargetSnapshotId %s: only VHD Sets have snapshot ids", tgt);
	snprintf(c->limit, sizeof c->limit, "%s", lim);
	bool h1, h2;
	if (uint_arg(c, "ByteOffset", UINT64_MAX, &c->off, &h1) || uint_arg(c, "ByteLength", UINT64_MAX, &c->len, &h2))
		return rc_invalid(c);
	uint64_t size = disk_size(c);
	/* "ByteLength must be less than the size of the virtual disk" (the documented rule) */
	if (!h2 || c->len >= size || c->off > size - c->len) {
		char t[120];
		snprintf(t, sizeof t, "ByteOffset %llu + ByteLength %llu (disk size %llu)", (unsigned long long)c->off,
			 (unsigned long long)c->len, (unsigned long long)size);
		return bad(c, 0, "%s: ByteLength must be less than the virtual size and the range inside the disk", t);
	}
	return 0;
}

static int w_changes(struct call *c, char **result)
{
	(void)result;
	uint32_t cap = (uint32_t)host_setting_int(c->w->h, "wmi.changes_max_ranges", 4096);
	if (cap == 0 || cap > 1000000)
		cap = 4096;
	struct host_range *rg = malloc(cap * sizeof *rg);
	if (!rg)
		return hv_err(HV_ENOMEM, "out of memory");
	uint32_t n = 0, w32 = 0;
	uint64_t done = 0;
	int r = host_rct_query(c->w->h, c->disk, c->depth, c->limit, c->off, c->len, rg, cap, &n, &done, &w32);
	if (r) {
		hv_err_prefix(r, "GetVirtualDiskChanges %s since %s: Win32 error 0x%08X", c->path, c->limit, w32);
		free(rg);
		return r;
	}
	/* paging bookkeeping: a call that starts where a short answer ended continues it */
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->w->db, "DELETE FROM wmi_paging WHERE path=?1 AND limit_id=?2 AND next_offset=?3", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, c->path, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, c->limit, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (int64_t)c->off);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (done < c->len && sqlite3_prepare_v2(c->w->db, "INSERT OR REPLACE INTO wmi_paging VALUES(?1, ?2, ?3, ?4)", -1,
						&st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, c->path, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, c->limit, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (int64_t)(c->off + done));
		sqlite3_bind_int64(st, 4, (int64_t)(c->off + c->len));
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (c->out) {
		char **offs = calloc(n ? n : 1, sizeof *offs), **lens = calloc(n ? n : 1, sizeof *lens);
		char buf[24];
		for (uint32_t i = 0; offs && lens && i < n; i++) {
			offs[i] = malloc(24);
			lens[i] = malloc(24);
			if (offs[i])
				snprintf(offs[i], 24, "%llu", (unsigned long long)rg[i].offset);
			if (lens[i])
				snprintf(lens[i], 24, "%llu", (unsigned long long)rg[i].length);
		}
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)done);
		r = cim_instance_set(c->out, "ProcessedByteLength", CIM_TYPE_UINT64, buf);
		if (!r)
			r = cim_instance_set_array(c->out, "ChangedByteOffsets", CIM_TYPE_UINT64, (const char *const *)offs, n);
		if (!r)
			r = cim_instance_set_array(c->out, "ChangedByteLengths", CIM_TYPE_UINT64, (const char *const *)lens, n);
		for (uint32_t i = 0; i < n; i++) {
			free(offs ? offs[i] : NULL);
			free(lens ? lens[i] : NULL);
		}
		free(offs);
		free(lens);
	}
	free(rg);
	return r;
}

static uint32_t v_vhdsd(struct call *c)
{
	return path_arg(c);
}

static int w_vhdsd(struct call *c, char **result)
{
	(void)result;
	sqlite3_stmt *st;
	char rel[1024] = "", parent[1024] = "", vdid[40] = "";
	if (sqlite3_prepare_v2(c->w->db,
			       "SELECT c.path, (SELECT p.path FROM chain p WHERE p.disk_id=c.disk_id AND p.depth=c.depth-1),"
			       " d.virtual_disk_id FROM chain c JOIN disk d ON d.id=c.disk_id WHERE c.disk_id=?1 AND c.depth=?2",
			       -1, &st, NULL) != SQLITE_OK)
		return hv_err(HV_EIO, "wmi: %s", sqlite3_errmsg(c->w->db));
	sqlite3_bind_int64(st, 1, c->disk);
	sqlite3_bind_int(st, 2, c->depth);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(rel, sizeof rel, "%s", (const char *)sqlite3_column_text(st, 0));
		if (sqlite3_column_text(st, 1))
			snprintf(parent, sizeof parent, "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(vdid, sizeof vdid, "%s", (const char *)sqlite3_column_text(st, 2));
	}
	sqlite3_finalize(st);
	char *abs = host_abs(c->w->h, rel);
	struct vhdx_file *f = NULL;
	int r = abs ? vhdx_open(abs, VHDX_OPEN_RDONLY | VHDX_OPEN_NO_PARENT, &f) : HV_ENOMEM;
	free(abs);
	if (r)
		return r;
	const struct vhdx_info *inf = vhdx_get_info(f);
	struct cim_instance *sd;
	char buf[64];
	r = cim_instance_new("Msvm_VirtualHardDiskSettingData", &sd);
	char *win = host_path_windows(c->w->h, rel), *pwin = *parent ? host_path_windows(c->w->h, parent) : NULL;
	snprintf(buf, sizeof buf, "%d", (int)inf->type);
	if (!r)
		r = cim_instance_set(sd, "Type", CIM_TYPE_UINT16, buf);
	if (!r)
		r = cim_instance_set(sd, "Format", CIM_TYPE_UINT16, "3");
	if (!r)
		r = cim_instance_set(sd, "Path", CIM_TYPE_STRING, win);
	if (!r)
		r = cim_instance_set(sd, "ParentPath", CIM_TYPE_STRING, pwin);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)inf->virtual_size);
	if (!r)
		r = cim_instance_set(sd, "MaxInternalSize", CIM_TYPE_UINT64, buf);
	snprintf(buf, sizeof buf, "%u", inf->block_size);
	if (!r)
		r = cim_instance_set(sd, "BlockSize", CIM_TYPE_UINT32, buf);
	snprintf(buf, sizeof buf, "%u", inf->logical_sector);
	if (!r)
		r = cim_instance_set(sd, "LogicalSectorSize", CIM_TYPE_UINT32, buf);
	snprintf(buf, sizeof buf, "%u", inf->physical_sector);
	if (!r)
		r = cim_instance_set(sd, "PhysicalSectorSize", CIM_TYPE_UINT32, buf);
	snprintf(buf, sizeof buf, "{%s}", vdid);
	if (!r)
		r = cim_instance_set(sd, "VirtualDiskId", CIM_TYPE_STRING, buf);
	char *xml = r ? NULL : cim_instance_to_xml(sd);
	if (!r && !xml)
		r = HV_ENOMEM;
	if (!r && c->out)
		r = cim_instance_set(c->out, "SettingData", CIM_TYPE_STRING, xml);
	free(xml);
	free(win);
	free(pwin);
	cim_instance_free(sd);
	vhdx_close(f);
	return r;
}

/* ---- Msvm_VirtualSystemManagementService ------------------------------------------------------ */

static uint32_t v_merge_settings(struct call *c)
{
	struct cim_instance *s;
	if (embedded_arg(c, "SettingData", "Msvm_DiskMergeSettingData", &s))
		return rc_invalid(c);
	if (!s)
		return bad(c, 0, "SettingData: missing%s", "");
	const char *iid = cim_instance_get(s, "InstanceID"), *en = cim_instance_get(s, "EnabledState");
	uint64_t v = 0;
	uint32_t rc = 0;
	char guid[80] = "";
	if (iid && !strncasecmp(iid, "Microsoft:", 10))
		snprintf(guid, sizeof guid, "%.*s", (int)strcspn(iid + 10, "\\"), iid + 10);
	if (!*guid || (c->vm = id_by_guid(c->w, "vm", guid)) < 0)
		rc = bad(c, 0, "SettingData: InstanceID '%s' names no VM's disk merge settings", iid ? iid : "(missing)");
	else if (!en || cim_value_uint(en, 1, &v))
		rc = bad(c, 0, "SettingData: EnabledState must be 0 or 1, got '%s'", en ? en : "(missing)");
	c->flag = v == 1;
	cim_instance_free(s);
	return rc;
}

static int w_merge_settings(struct call *c, char **result)
{
	(void)result;
	return host_merge_set_enabled(c->w->h, c->vm, c->flag);
}

/* ---- Msvm_ComputerSystem.RequestStateChange --------------------------------------------------- */

static uint32_t v_state(struct call *c)
{
	char guid[80];
	if (key_of(c->target, "Name", guid, sizeof guid) || (c->vm = id_by_guid(c->w, "vm", guid)) < 0)
		return bad(c, CIM_RC_A_NOT_SUPPORTED, "%s: the host's state cannot be changed", c->target);
	uint64_t st = 0;
	bool has;
	if (uint_arg(c, "RequestedState", 65535, &st, &has) || !has)
		return bad(c, 5, "RequestedState: missing or not a number%s", "");
	switch (st) {
	case 2: c->state = HOST_VM_RUNNING; break;
	case 3: case 4: c->state = HOST_VM_OFF; break;
	case 6: case 32769: c->state = HOST_VM_SAVED; break;
	default: {
		char t[16];
		snprintf(t, sizeof t, "%llu", (unsigned long long)st);
		return bad(c, 5, "RequestedState %s: the simulator supports 2 (running), 3/4 (off), 6/32769 (saved)", t);
	}
	}
	int64_t cur = -1;
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(c->w->db, "SELECT state FROM vm WHERE id=?1", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, c->vm);
		if (sqlite3_step(q) == SQLITE_ROW)
			cur = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
	}
	if (cur == c->state)
		return bad(c, 4097, "RequestedState: the VM is already in that state%s", "");
	return 0;
}

static int w_state(struct call *c, char **result)
{
	(void)result;
	return host_vm_set_state(c->w->h, c->vm, c->state);
}

/* ---- Msvm_ConcreteJob.GetError / GetErrorEx --------------------------------------------------- */

static int job_error_xml(struct call *c, char **xml)
{
	char iid[80];
	*xml = NULL;
	int r = key_of(c->target, "InstanceID", iid, sizeof iid);
	if (r)
		return r;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->w->db, "SELECT error_code, error_desc, method, target FROM wmi_job WHERE guid=?1", -1, &st,
			       NULL) != SQLITE_OK)
		return hv_err(HV_EIO, "wmi: %s", sqlite3_errmsg(c->w->db));
	sqlite3_bind_text(st, 1, iid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) != 0) {
		struct cim_instance *e;
		char code[16];
		snprintf(code, sizeof code, "%d", sqlite3_column_int(st, 0));
		r = cim_instance_new("Msvm_Error", &e);
		if (!r)
			r = cim_instance_set(e, "Message", CIM_TYPE_STRING, (const char *)sqlite3_column_text(st, 1));
		if (!r)
			r = cim_instance_set(e, "MessageID", CIM_TYPE_STRING, code);
		if (!r)
			r = cim_instance_set(e, "ErrorSource", CIM_TYPE_STRING, (const char *)sqlite3_column_text(st, 3));
		if (!r)
			r = cim_instance_set(e, "ErrorType", CIM_TYPE_UINT16, "1");
		if (!r)
			r = cim_instance_set(e, "PerceivedSeverity", CIM_TYPE_UINT16, "6");
		if (!r && !(*xml = cim_instance_to_xml(e)))
			r = HV_ENOMEM;
		cim_instance_free(e);
	}
	sqlite3_finalize(st);
	return r;
}

static uint32_t v_none(struct call *c)
{
	(void)c;
	return 0;
}

static int w_get_error(struct call *c, char **result)
{
	(void)result;
	char *xml;
	int r = job_error_xml(c, &xml);
	if (!r && c->out)
		r = cim_instance_set(c->out, "Error", CIM_TYPE_STRING, xml);
	free(xml);
	return r;
}

static int w_get_error_ex(struct call *c, char **result)
{
	(void)result;
	char *xml;
	int r = job_error_xml(c, &xml);
	if (!r && c->out)
		r = cim_instance_set_array(c->out, "Errors", CIM_TYPE_STRING, (const char *const *)&xml, xml ? 1 : 0);
	free(xml);
	return r;
}

static uint32_t v_job_state(struct call *c)
{
	return bad(c, CIM_RC_A_NOT_SUPPORTED, "%s: jobs of the simulated host cannot be cancelled", c->target);
}

/* ---- the table -------------------------------------------------------------------------------- */

#define JOBP {"Job", CIM_TYPE_REFERENCE, false, OUT}
static const struct param p_create_snapshot[] = {
	{"AffectedSystem", CIM_TYPE_REFERENCE, false, IN}, {"SnapshotSettings", CIM_TYPE_STRING, false, IN},
	{"SnapshotType", CIM_TYPE_UINT16, false, IN}, {"ResultingSnapshot", CIM_TYPE_REFERENCE, false, IN | OUT}, JOBP};
static const struct param p_destroy_snapshot[] = {{"AffectedSnapshot", CIM_TYPE_REFERENCE, false, IN}, JOBP};
static const struct param p_convert[] = {
	{"AffectedSnapshot", CIM_TYPE_REFERENCE, false, IN}, {"ReferencePointSettings", CIM_TYPE_STRING, false, IN},
	{"ResultingReferencePoint", CIM_TYPE_REFERENCE, false, IN | OUT}, JOBP};
static const struct param p_create_rp[] = {
	{"AffectedSystem", CIM_TYPE_REFERENCE, false, IN}, {"ReferencePointSettings", CIM_TYPE_STRING, false, IN},
	{"ReferencePointType", CIM_TYPE_UINT16, false, IN}, {"ResultingReferencePoint", CIM_TYPE_REFERENCE, false, IN | OUT},
	JOBP};
static const struct param p_destroy_rp[] = {{"AffectedReferencePoint", CIM_TYPE_REFERENCE, false, IN}, JOBP};
static const struct param p_changes[] = {
	{"Path", CIM_TYPE_STRING, false, IN},		  {"LimitId", CIM_TYPE_STRING, false, IN},
	{"TargetSnapshotId", CIM_TYPE_STRING, false, IN}, {"ByteOffset", CIM_TYPE_UINT64, false, IN},
	{"ByteLength", CIM_TYPE_UINT64, false, IN},	  {"ProcessedByteLength", CIM_TYPE_UINT64, false, OUT},
	{"ChangedByteOffsets", CIM_TYPE_UINT64, true, OUT}, {"ChangedByteLengths", CIM_TYPE_UINT64, true, OUT}, JOBP};
static const struct param p_vhdsd[] = {
	{"Path", CIM_TYPE_STRING, false, IN}, {"SettingData", CIM_TYPE_STRING, false, OUT}, JOBP};
static const struct param p_merge[] = {{"SettingData", CIM_TYPE_STRING, false, IN}, JOBP};
static const struct param p_state[] = {
	{"RequestedState", CIM_TYPE_UINT16, false, IN}, JOBP, {"TimeoutPeriod", CIM_TYPE_DATETIME, false, IN}};
static const struct param p_get_error[] = {{"Error", CIM_TYPE_STRING, false, OUT}};
static const struct param p_get_error_ex[] = {{"Errors", CIM_TYPE_STRING, true, OUT}};
static const struct param p_job_state[] = {
	{"RequestedState", CIM_TYPE_UINT16, false, IN}, {"TimeoutPeriod", CIM_TYPE_DATETIME, false, IN}};

#define NP(a) a, sizeof a / sizeof *a
static const struct method methods[] = {
	{"Msvm_VirtualSystemSnapshotService", "CreateSnapshot", CIM_RC_FAMILY_A, NP(p_create_snapshot), 70,
	 "running=2,completed", "Creating Snapshot", "ResultingSnapshot", v_create_snapshot, w_create_snapshot},
	{"Msvm_VirtualSystemSnapshotService", "DestroySnapshot", CIM_RC_FAMILY_A, NP(p_destroy_snapshot), 72,
	 "running=2,completed", "Deleting Snapshot", NULL, v_destroy_snapshot, w_destroy_snapshot},
	{"Msvm_VirtualSystemSnapshotService", "ConvertToReferencePoint", CIM_RC_FAMILY_A, NP(p_convert), 72,
	 "running=2,completed", "Converting Snapshot to Reference Point", "ResultingReferencePoint", v_convert, w_convert},
	{"Msvm_VirtualSystemReferencePointService", "CreateReferencePoint", CIM_RC_FAMILY_A, NP(p_create_rp), 0,
	 "running=2,completed", "Creating Reference Point", "ResultingReferencePoint", v_create_rp, w_create_rp},
	{"Msvm_VirtualSystemReferencePointService", "DestroyReferencePoint", CIM_RC_FAMILY_B, NP(p_destroy_rp), 0,
	 "running=2,completed", "Deleting Reference Point", NULL, v_destroy_rp, w_destroy_rp},
	{"Msvm_ImageManagementService", "GetVirtualDiskChanges", CIM_RC_FAMILY_B, NP(p_changes), 0, "sync",
	 "Getting Virtual Disk Changes", NULL, v_changes, w_changes},
	{"Msvm_ImageManagementService", "GetVirtualHardDiskSettingData", CIM_RC_FAMILY_B, NP(p_vhdsd), 0, "sync",
	 "Getting Virtual Hard Disk Setting Data", NULL, v_vhdsd, w_vhdsd},
	{"Msvm_VirtualSystemManagementService", "ModifyDiskMergeSettings", CIM_RC_FAMILY_B, NP(p_merge), 0,
	 "running=2,completed", "Modifying Disk Merge Settings", NULL, v_merge_settings, w_merge_settings},
	{"Msvm_ComputerSystem", "RequestStateChange", CIM_RC_FAMILY_A, NP(p_state), 0, "running=2,completed",
	 "Changing VM State", NULL, v_state, w_state},
	{"Msvm_ConcreteJob", "GetError", CIM_RC_FAMILY_A, NP(p_get_error), 0, "sync", "", NULL, v_none, w_get_error},
	{"Msvm_ConcreteJob", "GetErrorEx", CIM_RC_FAMILY_A, NP(p_get_error_ex), 0, "sync", "", NULL, v_none, w_get_error_ex},
	{"Msvm_ConcreteJob", "RequestStateChange", CIM_RC_FAMILY_A, NP(p_job_state), 0, "sync", "", NULL, v_job_state, NULL},
};

static const struct method *method_find(const char *cls, const char *name)
{
	for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
		if (wmi_class_isa(cls, methods[i].cls) && !strcasecmp(methods[i].name, name))
			return &methods[i];
	return NULL;
}

static const struct param *param_find(const struct method *m, const char *name)
{
	for (size_t i = 0; i < m->nparams; i++)
		if (!strcasecmp(m->params[i].name, name))
			return &m->params[i];
	return NULL;
}

int hvsim_wmi_param_type(const char *class_name, const char *method, const char *param, enum cim_type *type, int *is_array)
{
	const struct method *m = method_find(class_name, method);
	const struct param *p = m ? param_find(m, param) : NULL;
	if (!p)
		return hv_err(HV_ENOTFOUND, "%s.%s has no parameter %s", class_name, method, param);
	*type = p->type;
	*is_array = p->array;
	return 0;
}

/* ---- entry points ----------------------------------------------------------------------------- */

static int set_rc(struct cim_instance *out, uint32_t rc)
{
	char b[16];
	snprintf(b, sizeof b, "%u", rc);
	return cim_instance_set(out, "ReturnValue", CIM_TYPE_UINT32, b);
}

int wmi_method_work(struct hvsim_wmi *w, const char *method, const char *target, const char *args, char **result)
{
	*result = NULL;
	struct cim_path *tp;
	int r = cim_path_parse(target, &tp);
	if (r)
		return r;
	const struct method *m = method_find(tp->class_name, method);
	cim_path_free(tp);
	if (!m || !m->work)
		return hv_err(HV_EINVAL, "job for unknown method %s", method);
	struct cim_instance *in = NULL;
	if (*args && (r = cim_instance_parse(args, strlen(args), &in)))
		return r;
	struct call c = {.w = w, .m = m, .target = target, .in = in};
	/* re-resolve the arguments now: the objects may have gone since the call */
	uint32_t rc = m->validate(&c);
	if (rc)
		r = HV_EINVAL;
	else
		r = m->work(&c, result);
	cim_instance_free(in);
	return r;
}

int hvsim_wmi_invoke(struct hvsim_wmi *w, const char *path, const char *method, const struct cim_instance *in,
		     struct cim_instance **out, uint32_t *hresult)
{
	*out = NULL;
	*hresult = 0;
	char *canon = NULL, *args = NULL, *traj = NULL, *job = NULL, *result = NULL;
	const struct wmi_class *cls;
	struct call c = {.w = w, .in = in};
	uint32_t rc = 0;
	int r = wmi_jobs_expire(w);
	if (!r && (r = wmi_path_canon(w, path, &canon, &cls)))
		*hresult = r == HV_ENOTFOUND ? WBEM_E_NOT_FOUND : WBEM_E_INVALID_OBJECT_PATH;
	struct wmi_object self = {0};
	if (!r && (r = wmi_fetch(w, cls, canon, &self)))
		*hresult = WBEM_E_NOT_FOUND;
	wmi_object_clear(&self);
	const struct method *m = r ? NULL : method_find(cls->name, method);
	if (!r && !m) {
		r = hv_err(HV_ENOTFOUND, "%s has no method %s", cls->name, method);
		*hresult = WBEM_E_INVALID_METHOD;
	}
	/* every given in-parameter must be one of the method's, with a value of its type */
	for (size_t i = 0; !r && in && i < in->nprops; i++) {
		const struct cim_prop *p = &in->props[i];
		const struct param *d = param_find(m, p->name);
		if (!d || !(d->dir & IN)) {
			r = hv_err(HV_EINVAL, "%s.%s has no in-parameter %s", cls->name, m->name, p->name);
		} else if (d->array != p->is_array && !p->is_null) {
			r = hv_err(HV_EINVAL, "%s.%s: %s %s an array", cls->name, m->name, d->name, d->array ? "must be" : "is not");
		} else if (d->type != CIM_TYPE_REFERENCE) {
			for (size_t e = 0; !r && !p->is_null && e < p->nvalues; e++)
				if (cim_value_check(d->type, p->values[e]))
					r = hv_err(HV_EINVAL, "%s.%s: %s = '%s' is not a %s", cls->name, m->name, d->name,
						   p->values[e], cim_type_name(d->type));
		}
		if (r)
			*hresult = WBEM_E_INVALID_METHOD_PARAMETERS;
	}
	if (!r && (r = cim_instance_new("__PARAMETERS", out)))
		*hresult = WBEM_E_OUT_OF_MEMORY;
	if (r)
		goto audit;
	c.m = m;
	c.target = canon;
	c.out = *out;
	rc = m->validate(&c);
	if (rc)
		goto done;
	struct wmi_trajectory t;
	if (!strcmp(m->cls, "Msvm_ConcreteJob")) { /* a job's own methods never make jobs */
		memset(&t, 0, sizeof t);
		t.sync = true;
	} else if ((r = wmi_trajectory_for(w, m->name, m->traj, &traj, &t))) {
		*hresult = WBEM_E_FAILED;
		goto audit;
	}
	if (t.sync) {
		/* synchronous: the work runs now */
		if (m->work && (r = m->work(&c, &result))) {
			rc = rc_failed(&c);
			r = 0;
		} else if (result && m->result_param) {
			r = cim_instance_set(*out, m->result_param, CIM_TYPE_REFERENCE, result);
		}
	} else {
		if (in && !(args = cim_instance_to_xml(in))) {
			r = HV_ENOMEM;
		} else if (!(r = wmi_job_create(w, m->name, m->caption, m->job_type, canon, args ? args : "", traj, &job))) {
			rc = CIM_RC_JOB_STARTED;
			r = cim_instance_set(*out, "Job", CIM_TYPE_REFERENCE, job);
		}
	}
	if (r)
		*hresult = WBEM_E_FAILED;
done:
	if (!r && !*hresult)
		r = set_rc(*out, rc);
audit: {
	char rtext[64], *argtext = in ? cim_instance_to_xml(in) : NULL;
	char *msg = (rc && rc != CIM_RC_JOB_STARTED && !r) ? strdup(hv_errmsg()) : NULL;
	snprintf(rtext, sizeof rtext, "ReturnValue=%u", rc);
	char call[200];
	snprintf(call, sizeof call, "ExecMethod %s.%s", cls && !*hresult ? cls->name : "?", method);
	char *full = NULL;
	if (asprintf(&full, "%s %s", path, argtext ? argtext : "") < 0)
		full = NULL;
	const char *mist = *c.mistake ? c.mistake : NULL;
	char *why = NULL;
	if (msg && asprintf(&why, "%s (%s)", rtext, msg) < 0)
		why = NULL;
	wmi_audit(w, call, full ? full : path, *hresult, why ? why : rtext, mist);
	free(why);
	free(full);
	free(argtext);
	free(msg);
}
	if (*hresult && !r)
		r = HV_EINVAL;
	if (r) {
		cim_instance_free(*out);
		*out = NULL;
	}
	free(canon);
	free(args);
	free(traj);
	free(job);
	free(result);
	return r;
}
