/*
 * host_fault.c — faults that rebuild a disk file: offline resize (keeps the Virtual Disk ID,
 * resets tracking) and disk replacement (a copy with a new Virtual Disk ID, tracking reset).
 * Both need a disk without checkpoints, as Hyper-V does. The new file is built beside the old one
 * and renamed over it, so a crash leaves either the old or the new disk.
 *
 * Must not: touch disks that are part of a checkpoint chain.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"
#include "../../hyperv/vhdx/vhdx.h"
#include "../rct/rct.h"

static int host_fault_resize_locked(struct host *h, int64_t disk_id, uint64_t new_size);
static int host_fault_replace_locked(struct host *h, int64_t disk_id);

struct copy {
	struct vhdx_file *src, *dst;
	uint8_t *buf;
	uint64_t limit;
};

static int copy_cb(void *ctx, uint64_t off, uint64_t len, enum vhdx_map_kind kind)
{
	struct copy *c = ctx;
	if (kind != VHDX_MAP_DATA || off >= c->limit)
		return 0;
	if (len > c->limit - off)
		len = c->limit - off;
	while (len) {
		size_t n = len < (4u << 20) ? (size_t)len : (4u << 20);
		int r = vhdx_read(c->src, c->buf, off, n);
		if (!r)
			r = vhdx_write(c->dst, c->buf, off, n);
		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/* Rebuilds the base file of a checkpoint-free disk with a new size and/or a new identity. */
static int rebuild(struct host *h, int64_t disk_id, uint64_t new_size, bool new_identity)
{
	struct host_disk d;
	int r = host_disk_load(h, disk_id, &d);
	if (r)
		return r;
	if (d.leaf_depth != 0)
		return hv_err(HV_EINVAL, "disk %s has checkpoints (an AVHDX chain); Hyper-V refuses this on such a disk",
			      d.name);
	if (new_size % d.logical_sector || new_size == 0 || new_size > VHDX_MAX_VIRTUAL_SIZE)
		return hv_err(HV_EINVAL, "disk %s: new size %llu must be a non-zero multiple of %u up to 64 TiB", d.name,
			      (unsigned long long)new_size, d.logical_sector);
	if (new_size < d.size)
		return hv_err(HV_EUNSUPPORTED, "disk %s: shrinking is not simulated (%llu < %llu)", d.name,
			      (unsigned long long)new_size, (unsigned long long)d.size);
	char *abs = host_abs(h, d.base), *tmp = NULL;
	struct copy c = {.limit = new_size};
	struct hv_guid id;
	struct rct *rt = NULL;
	if (!abs || asprintf(&tmp, "%s.rebuild", abs) < 0 || !(c.buf = malloc(4u << 20))) {
		r = hv_err(HV_ENOMEM, "out of memory");
		goto out;
	}
	unlink(tmp);
	if ((r = vhdx_open(abs, VHDX_OPEN_RDONLY, &c.src)))
		goto out;
	const struct vhdx_info *inf = vhdx_get_info(c.src);
	id = inf->disk_id;
	uint64_t seed;
	if ((r = host_vhdx_seed(h, &seed)))
		goto out;
	struct vhdx_create_opts co = {.virtual_size = new_size, .type = inf->type, .block_size = inf->block_size,
				      .logical_sector = inf->logical_sector, .physical_sector = inf->physical_sector,
				      .seed = seed, .disk_id = new_identity ? NULL : &id};
	if ((r = vhdx_create(tmp, &co)))
		goto out;
	struct vhdx_open_opts oo = {.flags = VHDX_OPEN_RDWR | (h->nosync ? VHDX_OPEN_NOSYNC : 0), .crash_after_steps = -1};
	if ((r = vhdx_open_ex(tmp, &oo, &c.dst)) || (r = vhdx_map_ex(c.src, VHDX_MAP_NONZERO, copy_cb, &c)) ||
	    (r = vhdx_flush(c.dst)))
		goto out;
	const struct vhdx_info *ninf = vhdx_get_info(c.dst);
	char vdid[37];
	host_guid_text(&ninf->disk_id, vdid);
	r = vhdx_close(c.dst);
	c.dst = NULL;
	if (r)
		goto out;
	/* tracking first (a reset never misses changes), then the file, then the rows */
	struct hv_guid g;
	if ((r = host_rct_open(h, &d, &rt)) || (r = host_guid(h, "rct", &g)))
		goto out;
	if (new_size != d.size)
		r = rct_resize(rt, new_size, &g);
	else
		r = rct_reset(rt, &g);
	if (r || (r = rct_save(rt)))
		goto out;
	if (rename(tmp, abs)) {
		r = hv_err(HV_EIO, "%s: cannot replace: %s", abs, strerror(errno));
		goto out;
	}
	char *sql = sqlite3_mprintf("UPDATE disk SET size=%lld, virtual_disk_id=%Q, wl_cursor=0 WHERE id=%lld",
				    (long long)new_size, vdid, (long long)disk_id);
	r = host_exec(h, sql);
	sqlite3_free(sql);
out:
	vhdx_close(c.src);
	vhdx_close(c.dst);
	rct_close(rt);
	if (r && tmp)
		unlink(tmp);
	free(c.buf);
	free(tmp);
	free(abs);
	return r ? hv_err_prefix(r, "disk %s", d.name) : 0;
}

static int host_fault_resize_locked(struct host *h, int64_t disk_id, uint64_t new_size)
{
	return rebuild(h, disk_id, new_size, false);
}

static int host_fault_replace_locked(struct host *h, int64_t disk_id)
{
	struct host_disk d;
	int r = host_disk_load(h, disk_id, &d);
	return r ? r : rebuild(h, disk_id, d.size, true);
}

/* ---- the public entry points hold the host lock (host_internal.h) ---------------------------- */

int host_fault_resize(struct host *h, int64_t disk_id, uint64_t new_size)
{
	int r = host_lock(h);
	if (r)
		return r;
	r = host_fault_resize_locked(h, disk_id, new_size);
	host_unlock(h);
	return r;
}

int host_fault_replace(struct host *h, int64_t disk_id)
{
	int r = host_lock(h);
	if (r)
		return r;
	r = host_fault_replace_locked(h, disk_id);
	host_unlock(h);
	return r;
}
