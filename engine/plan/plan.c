/*
 * plan.c — one backup (see plan.h for the sequence and the fallbacks).
 *
 * Reads go in chunks of up to PLAN_CHUNK bytes aligned to the repository block size; an
 * incremental reads every block a changed range touches. A fault hook that fires (HV_ECRASHED)
 * stops everything at once, as a killed process would: nothing on the host is cleaned up (the next
 * backup finds the stale recovery checkpoint and removes it).
 *
 * Must not: know about the simulator; pair RCT ids by array position.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plan.h"
#include "../host/ehost.h"
#include "../paths/paths.h"
#include "../repo/repo.h"

#define PLAN_CHUNK (4u << 20)

struct ranges {
	struct path_range *v;
	size_t n, cap;
	uint64_t bytes;
};

static int add_range(void *ctx, const struct path_range *r)
{
	struct ranges *rs = ctx;
	if (rs->n == rs->cap) {
		size_t nc = rs->cap ? 2 * rs->cap : 256;
		struct path_range *nv = realloc(rs->v, nc * sizeof *nv);
		if (!nv)
			return hv_err(HV_ENOMEM, "out of memory");
		rs->v = nv;
		rs->cap = nc;
	}
	rs->v[rs->n++] = *r;
	rs->bytes += r->length;
	return 0;
}

struct disk_plan {
	bool full;
	char reason[200];
	int64_t parent_pd;  /* point-disk to copy the map from (incremental) */
	char rct[300];      /* the id the changes were asked since */
	struct ranges rs;
	uint32_t handle;    /* repo disk handle */
};

/* VirtualDiskId → RCT id of the previous reference point, paired through the host's own objects:
 * VirtualDiskIdentifiers[i] is a SASD InstanceID → its HostResource → that file's identity. */
struct pair {
	char vdid[64];
	char rct[300];
};

static int pair_previous(struct eh_host *h, const struct path_ops *ops, struct path_session *ps, const char *rp_path,
			 struct pair **pairs, size_t *npairs, char *why, size_t why_size)
{
	*pairs = NULL;
	*npairs = 0;
	struct eh_refpoint rp;
	int r = eh_get_reference_point(h, rp_path, &rp);
	if (r == HV_ENOTFOUND) {
		snprintf(why, why_size, "the previous reference point is gone from the host");
		return 0;
	}
	if (r)
		return r;
	struct pair *v = calloc(rp.ndisks ? rp.ndisks : 1, sizeof *v);
	if (!v) {
		eh_refpoint_clear(&rp);
		return hv_err(HV_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < rp.ndisks && !r; i++) {
		char q[600], wql[800];
		size_t k = 0;
		for (const char *p = rp.disk_ids[i]; *p && k + 3 < sizeof q; p++) {
			if (*p == '\\' || *p == '\'')
				q[k++] = '\\';
			q[k++] = *p;
		}
		q[k] = 0;
		snprintf(wql, sizeof wql, "SELECT * FROM Msvm_StorageAllocationSettingData WHERE InstanceID='%s'", q);
		struct wmi_result res;
		uint32_t hr;
		if ((r = wmi_exec_query(eh_conn(h), wql, &res, &hr)))
			break;
		const struct cim_prop *hrp = res.n == 1 ? cim_instance_prop(res.v[0].inst, "HostResource") : NULL;
		if (*rp.rct_ids[i] && hrp && !hrp->is_null && hrp->nvalues > 0 &&
		    !ops->identity(ps, hrp->values[0], v[*npairs].vdid)) { /* a removed or untracked disk has no pair */
			snprintf(v[*npairs].rct, sizeof v[*npairs].rct, "%s", rp.rct_ids[i]);
			(*npairs)++;
		}
		wmi_result_clear(&res);
	}
	eh_refpoint_clear(&rp);
	if (r) {
		free(v);
		return r;
	}
	*pairs = v;
	return 0;
}

static const char *pair_find(const struct pair *p, size_t n, const char *vdid)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(p[i].vdid, vdid))
			return p[i].rct;
	return NULL;
}

/* The checkpoint's CreationTime as FILETIME ticks (the host's clock, not ours). */
static int64_t checkpoint_time(struct eh_host *h, const char *snapshot)
{
	struct wmi_object o;
	uint32_t hr;
	uint64_t t = 0;
	if (!wmi_get_object(eh_conn(h), snapshot, &o, &hr)) {
		const char *ct = cim_instance_get(o.inst, "CreationTime");
		if (ct)
			cim_datetime_parse(ct, &t);
		wmi_object_clear(&o);
	}
	return (int64_t)t;
}

struct reader {
	const struct plan_opts *o;
	const struct path_ops *ops;
	struct path_session *ps;
	struct repo_session *rs;
	uint8_t *buf;
	uint32_t bs;
	uint64_t done, total;
};

static bool zero(const uint8_t *p, size_t n)
{
	const uint64_t *w = (const uint64_t *)p;
	for (size_t k = 0; k < n / 8; k++)
		if (w[k])
			return false;
	for (size_t k = n & ~(size_t)7; k < n; k++)
		if (p[k])
			return false;
	return true;
}

/* Reads blocks [first, last] of disk i and stores them. With no parent map (a full), zero blocks
 * need no entry at all (an absent block reads as zeros), so they are not even handed over. */
static int copy_blocks(struct reader *rd, size_t i, uint32_t handle, uint64_t first, uint64_t last, bool full)
{
	const struct path_disk *d = rd->ops->disk(rd->ps, i);
	uint64_t per = PLAN_CHUNK / rd->bs;
	for (uint64_t b = first; b <= last;) {
		uint64_t n = last - b + 1 < per ? last - b + 1 : per;
		uint64_t off = b * rd->bs, len = n * rd->bs;
		if (off + len > d->size)
			len = d->size - off;
		int r = rd->ops->read(rd->ps, i, off, rd->buf, (size_t)len);
		for (uint64_t k = 0; !r && k < n; k++) {
			uint64_t blen = len - k * rd->bs < rd->bs ? len - k * rd->bs : rd->bs;
			const uint8_t *blk = rd->buf + k * rd->bs;
			if (full && zero(blk, (size_t)blen))
				continue;
			r = repo_session_put_block(rd->rs, handle, b + k, blk, (size_t)blen);
		}
		if (r)
			return r;
		rd->done += len;
		if (rd->o->progress)
			rd->o->progress(rd->o->progress_ctx, rd->done, rd->total);
		b += n;
	}
	return 0;
}

static void join_reason(char *out, size_t size, const char *disk, const char *why)
{
	size_t k = strlen(out);
	if (k < size)
		snprintf(out + k, size - k, "%s%s: %s", k ? "; " : "", disk, why);
}

/* "a: X; b: X" → "X" when every disk had the same reason */
static void simplify_reason(char *out, const struct disk_plan *dp, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (!dp[i].full || strcmp(dp[i].reason, dp[0].reason))
			return;
	if (n && dp[0].full)
		snprintf(out, 512, "%s", dp[0].reason);
}

int plan_backup(const struct plan_opts *o, struct plan_result *res)
{
	memset(res, 0, sizeof *res);
	const struct path_ops *ops = path_find(o->path ? o->path : "win32");
	if (!ops)
		return hv_err(HV_EINVAL, "unknown read path '%s' (available: win32)", o->path);
	struct eh_host *h = NULL;
	struct repo *repo = NULL;
	struct repo_session *rs = NULL;
	struct path_session *ps = NULL;
	struct repo_point_info *pts = NULL, *prev = NULL;
	size_t npts = 0, npairs = 0;
	struct pair *pairs = NULL;
	struct disk_plan *dp = NULL;
	char snapshot[512] = "", new_rp[512] = "", prev_why[200] = "";
	char **stale = NULL;
	size_t nstale = 0;
	uint8_t *buf = NULL;
	bool converted = false, committed = false;
	struct eh_vm vm;
	int r = eh_open(o->host, &h);
	if (!r)
		r = eh_find_vm(h, o->vm, &vm);
	if (!r) {
		struct repo_opts ro = {0};
		r = repo_open(o->repo, REPO_OPEN_CREATE | (o->nosync ? REPO_OPEN_NOSYNC : 0), &ro, &repo);
	}
	if (r)
		goto out;
	if (o->crash_after_blocks)
		repo_set_fault(repo, REPO_FAULT_AFTER_RECORDS, o->crash_after_blocks);
	else if (o->crash_at_commit_step >= 1 && o->crash_at_commit_step <= 3)
		repo_set_fault(repo, (enum repo_fault)(REPO_FAULT_AFTER_PACK_FLUSH + o->crash_at_commit_step - 1), 0);

	/* 1. stale recovery checkpoints (a crashed or killed earlier run) */
	if ((r = eh_recovery_checkpoints(h, &vm, &stale, &nstale)))
		goto out;
	for (size_t i = 0; i < nstale && !r; i++)
		if (!(r = eh_destroy_snapshot(h, stale[i])))
			res->stale_checkpoints_removed++;
	if (r)
		goto out;

	/* 2. the previous point of this VM; reference points the repository does not know (left by
	 * a run that died between ConvertToReferencePoint and the catalog commit, or by another tool)
	 * go now: a leaked reference point blocks the AVHDX merge (bareos#2624) */
	if ((r = repo_list_points(repo, o->vm, &pts, &npts)))
		goto out;
	prev = npts ? &pts[npts - 1] : NULL;
	char **rps = NULL;
	size_t nrps = 0;
	if ((r = eh_reference_points(h, &vm, &rps, &nrps)))
		goto out;
	for (size_t i = 0; i < nrps && !r; i++)
		if (!prev || strcasecmp(rps[i], prev->ref_point)) {
			if (!(r = eh_destroy_reference_point(h, rps[i])))
				res->leaked_reference_points_removed++;
		}
	eh_free_strings(rps, nrps);
	if (r)
		goto out;

	/* 3. the recovery checkpoint: application-consistent, else crash-consistent */
	snprintf(res->consistency, sizeof res->consistency, "application");
	r = eh_create_recovery_checkpoint(h, &vm, 1, snapshot, sizeof snapshot);
	if (r) {
		snprintf(res->consistency, sizeof res->consistency, "crash");
		r = eh_create_recovery_checkpoint(h, &vm, 2, snapshot, sizeof snapshot);
	}
	res->job_polls += eh_last_polls(h);
	if (r)
		goto out;
	if ((r = ops->begin(h, snapshot, &ps)))
		goto fail;
	size_t nd = ops->ndisks(ps);
	res->disks = (unsigned)nd;
	if (!nd) {
		r = hv_err(HV_EINVAL, "VM %s has no VHDX disk to back up", o->vm);
		goto fail;
	}

	/* 4. plan each disk: incremental when the previous point pairs with it by identity */
	if (prev && !o->full && *prev->ref_point &&
	    (r = pair_previous(h, ops, ps, prev->ref_point, &pairs, &npairs, prev_why, sizeof prev_why)))
		goto fail;
	dp = calloc(nd, sizeof *dp);
	if (!dp) {
		r = hv_err(HV_ENOMEM, "out of memory");
		goto fail;
	}
	uint32_t bs = repo_block_size(repo);
	uint64_t total = 0;
	bool any_incr = false;
	for (size_t i = 0; i < nd; i++) {
		const struct path_disk *d = ops->disk(ps, i);
		struct disk_plan *p = &dp[i];
		p->full = true;
		const struct repo_disk_info *pd = NULL;
		for (size_t k = 0; prev && k < prev->ndisks; k++)
			if (!strcasecmp(prev->disks[k].disk_id, d->virtual_disk_id))
				pd = &prev->disks[k];
		const char *rct = pair_find(pairs, npairs, d->virtual_disk_id);
		if (o->full)
			snprintf(p->reason, sizeof p->reason, "full backup requested");
		else if (!prev)
			snprintf(p->reason, sizeof p->reason, "no earlier backup of this VM");
		else if (*prev_why)
			snprintf(p->reason, sizeof p->reason, "%s", prev_why);
		else if (!pd)
			snprintf(p->reason, sizeof p->reason, "new disk (not in the previous backup)");
		else if (pd->virtual_size != d->size || pd->block_size != bs)
			snprintf(p->reason, sizeof p->reason, "disk resized (%llu → %llu bytes)",
				 (unsigned long long)pd->virtual_size, (unsigned long long)d->size);
		else if (!rct)
			snprintf(p->reason, sizeof p->reason, "no RCT id for this disk in the previous reference point");
		else {
			enum path_change_error why = PATH_CHANGES_OK;
			int cr = ops->changes(ps, i, rct, add_range, &p->rs, &why);
			if (cr && why == PATH_CHANGES_OK) {
				r = cr;
				goto fail;
			}
			if (cr) {
				snprintf(p->reason, sizeof p->reason, "%s",
					 why == PATH_CHANGES_UNKNOWN_ID ? "rct id unknown (change tracking was reset)"
					 : why == PATH_CHANGES_DISABLED ? "change tracking disabled"
									 : "change tracking failed");
				free(p->rs.v);
				memset(&p->rs, 0, sizeof p->rs);
			} else {
				p->full = false;
				p->parent_pd = pd->id;
				snprintf(p->rct, sizeof p->rct, "%s", rct);
				any_incr = true;
			}
		}
		if (p->full)
			join_reason(res->reason, sizeof res->reason, d->name, p->reason);
		total += p->full ? d->size : p->rs.bytes;
	}
	res->full = !any_incr;
	simplify_reason(res->reason, dp, nd);
	if (any_incr && !*res->reason)
		snprintf(res->reason, sizeof res->reason, "changes since point %lld", (long long)prev->id);

	/* 5. read and store */
	struct repo_point_desc pdsc = {.vm_name = o->vm, .vm_id = vm.guid,
				       .type = any_incr ? REPO_POINT_INCREMENTAL : REPO_POINT_FULL,
				       .reason = res->reason, .vtime = checkpoint_time(h, snapshot),
				       .parent = any_incr ? prev->id : 0, .ref_point = ""};
	if ((r = repo_begin(repo, &pdsc, &rs)))
		goto fail;
	buf = malloc(PLAN_CHUNK);
	if (!buf) {
		r = hv_err(HV_ENOMEM, "out of memory");
		goto fail;
	}
	struct reader rd = {.o = o, .ops = ops, .ps = ps, .rs = rs, .buf = buf, .bs = bs, .total = total};
	for (size_t i = 0; i < nd && !r; i++) {
		const struct path_disk *d = ops->disk(ps, i);
		struct repo_disk_desc dd = {.name = d->name, .disk_id = d->virtual_disk_id, .rct_id = "",
					    .virtual_size = d->size, .logical_sector = d->logical_sector};
		if ((r = repo_session_add_disk(rs, &dd, dp[i].full ? 0 : dp[i].parent_pd, &dp[i].handle)))
			break;
		uint64_t nblocks = (d->size + bs - 1) / bs;
		if (dp[i].full) {
			r = copy_blocks(&rd, i, dp[i].handle, 0, nblocks - 1, true);
			res->bytes_changed += d->size;
			continue;
		}
		/* every block a changed range touches, consecutive blocks read together */
		uint64_t run_first = 0, run_last = 0;
		bool run = false;
		for (size_t k = 0; k < dp[i].rs.n && !r; k++) {
			const struct path_range *pr = &dp[i].rs.v[k];
			if (!pr->length)
				continue;
			uint64_t f = pr->offset / bs, l = (pr->offset + pr->length - 1) / bs;
			if (l >= nblocks)
				l = nblocks - 1;
			if (run && f <= run_last + 1) {
				if (l > run_last)
					run_last = l;
				continue;
			}
			if (run)
				r = copy_blocks(&rd, i, dp[i].handle, run_first, run_last, false);
			run = true;
			run_first = f;
			run_last = l;
		}
		if (!r && run)
			r = copy_blocks(&rd, i, dp[i].handle, run_first, run_last, false);
		res->bytes_changed += dp[i].rs.bytes;
	}
	res->bytes_read = rd.done;
	if (r)
		goto fail;

	/* 6. convert, record its ids, commit, then let go of the previous reference point */
	if ((r = eh_convert_to_reference_point(h, snapshot, new_rp, sizeof new_rp)))
		goto fail;
	res->job_polls += eh_last_polls(h);
	converted = true;
	struct pair *np = NULL;
	size_t nnp = 0;
	char dummy[200] = "";
	if ((r = pair_previous(h, ops, ps, new_rp, &np, &nnp, dummy, sizeof dummy)))
		goto fail;
	r = repo_session_set_ref_point(rs, new_rp);
	for (size_t i = 0; i < nd && !r; i++) {
		const char *id = pair_find(np, nnp, ops->disk(ps, i)->virtual_disk_id);
		r = repo_session_set_rct_id(rs, dp[i].handle, id ? id : "");
	}
	free(np);
	if (r)
		goto fail;
	struct repo_stats st;
	r = repo_session_commit(rs, &res->point, &st);
	rs = NULL;
	if (r)
		goto fail;
	committed = true;
	res->bytes_stored = st.bytes_stored;
	res->bytes_dedup = st.bytes_dedup;
	snprintf(res->ref_point, sizeof res->ref_point, "%s", new_rp);
	if (prev && *prev->ref_point && !*prev_why && strcasecmp(prev->ref_point, new_rp)) {
		int dr = eh_destroy_reference_point(h, prev->ref_point);
		if (dr && dr != HV_ENOTFOUND && !strstr(hv_errmsg(), "0x80041002"))
			fprintf(stderr, "hvbackup: warning: could not destroy the previous reference point: %s\n", hv_errmsg());
	}
	goto out;
fail:
	if (r == HV_ECRASHED) /* a fault hook: stop dead like a killed process */
		goto out;
	{
		char saved[1024];
		snprintf(saved, sizeof saved, "%s", hv_errmsg());
		repo_session_abort(rs);
		rs = NULL;
		if (!committed) {
			if (converted && *new_rp)
				eh_destroy_reference_point(h, new_rp);
			else if (*snapshot)
				eh_destroy_snapshot(h, snapshot);
		}
		hv_err(r, "%s", saved);
	}
out:
	repo_session_abort(rs); /* after a fault hook this only frees memory */
	if (ps)
		ops->end(ps);
	for (size_t i = 0; dp && i < res->disks; i++)
		free(dp[i].rs.v);
	free(dp);
	free(pairs);
	free(buf);
	eh_free_strings(stale, nstale);
	repo_points_free(pts, npts);
	repo_close(repo);
	eh_close(h);
	return r;
}
