/*
 * vhdx_rw — virtual reads and writes, block allocation, sector bitmaps, flush and close, and the
 * allocation map.
 *
 * Reads resolve each block by its BAT state: FULLY_PRESENT from this file, PARTIALLY_PRESENT per
 * sector (bitmap bit 1 = this file, 0 = parent), NOT_PRESENT from the parent (differencing) or
 * zeros, ZERO/UNDEFINED/UNMAPPED as zeros (the spec allows zeros for all three; libvhdi sends
 * them to the parent, which we consider wrong for ZERO and choose not to imitate).
 *
 * Writes never journal payload: new blocks are appended at the 1 MiB-aligned end of file and
 * written before any BAT entry points at them; BAT pages and bitmap sectors change in memory and
 * reach the file only through vhdx_flush() -> the log. A crash before the flush leaves unused
 * space at the end, never a BAT entry pointing at unwritten data.
 */
#include "vhdx_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- BAT -----------------------------------------------------------------------------------*/

uint64_t vhdx_bat_get(const struct vhdx_file *f, uint64_t idx)
{
	if (idx >= f->bat_scanned)
		return 0;
	const uint64_t *pg = f->bat_pages[idx / VHDX_BAT_PER_PAGE];
	return pg ? pg[idx % VHDX_BAT_PER_PAGE] : 0;
}

int vhdx_bat_set(struct vhdx_file *f, uint64_t idx, uint64_t entry)
{
	if (idx >= f->bat_scanned)
		return hv_err(HV_EUNSUPPORTED, "%s: BAT region holds %llu entries, entry %llu is needed",
			      f->path, (unsigned long long)f->bat_scanned, (unsigned long long)idx);
	uint64_t p = idx / VHDX_BAT_PER_PAGE;
	if (!f->bat_pages[p] && !(f->bat_pages[p] = calloc(VHDX_BAT_PER_PAGE, 8)))
		return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
	f->bat_pages[p][idx % VHDX_BAT_PER_PAGE] = entry;
	f->bat_dirty[p] = 1;
	return 0;
}

/* ---- dirty bitmap sectors (open addressing on the file offset) ------------------------------*/

static struct vhdx_dirty_sector *dirty_find(struct vhdx_file *f, uint64_t off)
{
	if (!f->cap_dirty)
		return NULL;
	size_t mask = f->cap_dirty - 1, i = (size_t)(off / SECTOR4K * 0x9e3779b97f4a7c15ull) & mask;
	for (;; i = (i + 1) & mask) {
		if (f->dirty[i].off == off)
			return &f->dirty[i];
		if (f->dirty[i].off == 0)
			return NULL;
	}
}

static int dirty_insert(struct vhdx_file *f, uint64_t off, uint8_t *data)
{
	if ((f->ndirty + 1) * 2 > f->cap_dirty) {
		size_t ncap = f->cap_dirty ? f->cap_dirty * 2 : 64;
		struct vhdx_dirty_sector *old = f->dirty;
		size_t ocap = f->cap_dirty;
		f->dirty = calloc(ncap, sizeof *f->dirty);
		if (!f->dirty) {
			f->dirty = old;
			return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
		}
		f->cap_dirty = ncap;
		f->ndirty = 0;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].off)
				dirty_insert(f, old[i].off, old[i].data);
		free(old);
	}
	size_t mask = f->cap_dirty - 1, i = (size_t)(off / SECTOR4K * 0x9e3779b97f4a7c15ull) & mask;
	while (f->dirty[i].off)
		i = (i + 1) & mask;
	f->dirty[i].off = off;
	f->dirty[i].data = data;
	f->ndirty++;
	return 0;
}

/* Reads bitmap bytes at file offset `off`, seeing unflushed changes. */
static int bitmap_read(struct vhdx_file *f, uint8_t *out, uint64_t off, size_t len)
{
	int rc = vio_pread(f, out, len, off);
	if (rc || !f->ndirty)
		return rc;
	for (uint64_t s = off / SECTOR4K * SECTOR4K; s < off + len; s += SECTOR4K) {
		struct vhdx_dirty_sector *d = dirty_find(f, s);
		if (!d)
			continue;
		uint64_t lo = s > off ? s : off, hi = s + SECTOR4K < off + len ? s + SECTOR4K : off + len;
		memcpy(out + (lo - off), d->data + (lo - s), hi - lo);
	}
	return 0;
}

/* Sets bits [first, first+count) of the bitmap starting at file offset `base`. */
static int bitmap_set(struct vhdx_file *f, uint64_t base, uint64_t first, uint64_t count)
{
	for (uint64_t k = first; k < first + count;) {
		uint64_t byte = k / 8, s = (base + byte) / SECTOR4K * SECTOR4K;
		struct vhdx_dirty_sector *d = dirty_find(f, s);
		if (!d) {
			uint8_t *data = malloc(SECTOR4K);
			int rc;
			if (!data)
				return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
			if ((rc = vio_pread(f, data, SECTOR4K, s)) || (rc = dirty_insert(f, s, data))) {
				free(data);
				return rc;
			}
			d = dirty_find(f, s);
		}
		/* set bits while inside this 4 KiB sector */
		uint64_t sector_end_bit = (s + SECTOR4K - base) * 8;
		for (; k < first + count && k < sector_end_bit; k++)
			d->data[base + k / 8 - s] |= (uint8_t)(1u << (k % 8));
	}
	return 0;
}

/* ---- sessions ------------------------------------------------------------------------------*/

int vhdx_begin_session(struct vhdx_file *f, bool data_change)
{
	if (!f->writable)
		return hv_err(HV_EINVAL, "%s: opened read-only", f->path);
	if (f->crashed)
		return hv_err(HV_ECRASHED, "%s: write sequence was cut by the fault point", f->path);
	if (f->session_started && (!data_change || f->dwg_changed))
		return 0;
	struct vhdx_header nh = f->hdr;
	if (!f->session_started) {
		nh.file_write_guid = hv_rng_guid(&f->rng);
		f->session_log_guid = hv_rng_guid(&f->rng);
	}
	if (data_change)
		nh.data_write_guid = hv_rng_guid(&f->rng);
	int rc = vhdx_header_write(f, &nh);
	if (rc)
		return rc;
	f->session_started = true;
	f->dwg_changed |= data_change;
	return 0;
}

/* ---- reads ---------------------------------------------------------------------------------*/

static int read_parent(struct vhdx_file *f, void *out, uint64_t off, size_t len)
{
	if (f->parent)
		return vhdx_read(f->parent, out, off, len);
	if (f->has_parent)
		return hv_err(HV_EINVAL, "%s: reading parent data, but the parent was not opened", f->path);
	memset(out, 0, len);
	return 0;
}

static uint64_t bitmap_base(const struct vhdx_file *f, uint64_t b)
{
	uint64_t sb = vhdx_bat_get(f, vhdx_sb_index(f, b / f->chunk_ratio)) & VHDX_BAT_OFFSET_MASK;
	return sb + (b % f->chunk_ratio) * (f->sectors_per_block / 8);
}

static bool bit(const uint8_t *bm, uint64_t k) { return bm[k / 8] >> (k % 8) & 1; }

/* Reads [in, in+n) of block b. */
static int read_block(struct vhdx_file *f, uint64_t b, uint32_t in, uint32_t n, uint8_t *out)
{
	uint64_t bs = f->info.block_size, e = vhdx_bat_get(f, vhdx_payload_index(f, b));
	uint64_t foff = e & VHDX_BAT_OFFSET_MASK, voff = b * bs + in;
	switch (e & VHDX_BAT_STATE_MASK) {
	case VHDX_BLOCK_FULLY_PRESENT:
		return vio_pread(f, out, n, foff + in);
	case VHDX_BLOCK_NOT_PRESENT:
		return read_parent(f, out, voff, n);
	case VHDX_BLOCK_PARTIALLY_PRESENT:
		break;
	default:
		memset(out, 0, n);
		return 0;
	}
	uint32_t lss = f->info.logical_sector;
	uint64_t s0 = in / lss, s1 = (in + (uint64_t)n - 1) / lss; /* sectors touched, inclusive */
	uint64_t byte0 = s0 / 8, nbytes = s1 / 8 - byte0 + 1;
	uint8_t *bm = malloc(nbytes);
	if (!bm)
		return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
	int rc = bitmap_read(f, bm, bitmap_base(f, b) + byte0, nbytes);
	for (uint64_t s = s0; !rc && s <= s1;) {
		bool v = bit(bm, s - byte0 * 8);
		uint64_t t = s + 1;
		while (t <= s1 && bit(bm, t - byte0 * 8) == v)
			t++;
		uint64_t lo = s * lss > in ? s * lss : in;
		uint64_t hi = t * lss < (uint64_t)in + n ? t * lss : (uint64_t)in + n;
		rc = v ? vio_pread(f, out + (lo - in), hi - lo, foff + lo)
		       : read_parent(f, out + (lo - in), b * bs + lo, hi - lo);
		s = t;
	}
	free(bm);
	return rc;
}

static int check_range(const struct vhdx_file *f, uint64_t off, size_t len)
{
	if (off > f->info.virtual_size || len > f->info.virtual_size - off)
		return hv_err(HV_EINVAL, "%s: range [%llu, +%zu) is outside the virtual disk (%llu bytes)",
			      f->path, (unsigned long long)off, len, (unsigned long long)f->info.virtual_size);
	return 0;
}

int vhdx_read(struct vhdx_file *f, void *buf, uint64_t off, size_t len)
{
	int rc = check_range(f, off, len);
	uint8_t *p = buf;
	uint64_t bs = f->info.block_size;
	while (!rc && len) {
		uint64_t b = off / bs;
		uint32_t in = (uint32_t)(off % bs);
		uint32_t n = len < bs - in ? (uint32_t)len : (uint32_t)(bs - in);
		rc = read_block(f, b, in, n, p);
		p += n;
		off += n;
		len -= n;
	}
	return rc;
}

/* ---- writes --------------------------------------------------------------------------------*/

/* Appends `len` zero bytes at the 1 MiB-aligned end of file; returns their offset. */
static int append_space(struct vhdx_file *f, uint64_t len, uint64_t *off)
{
	uint64_t end = f->file_size > f->alloc_end ? f->file_size : f->alloc_end;
	uint64_t at = (end + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	if (at + len > VHDX_MAX_FILE_SIZE)
		return hv_err(HV_EINVAL, "%s: file would grow past %llu bytes", f->path,
			      (unsigned long long)VHDX_MAX_FILE_SIZE);
	int rc = vio_truncate(f, at + len);
	if (rc)
		return rc;
	*off = at;
	f->alloc_end = at + len;
	return 0;
}

static int ensure_sb_block(struct vhdx_file *f, uint64_t chunk)
{
	uint64_t idx = vhdx_sb_index(f, chunk);
	if ((vhdx_bat_get(f, idx) & VHDX_BAT_STATE_MASK) == VHDX_SB_BLOCK_PRESENT)
		return 0;
	uint64_t off = 0;
	int rc = append_space(f, VHDX_MIB, &off);
	return rc ? rc : vhdx_bat_set(f, idx, off | VHDX_SB_BLOCK_PRESENT);
}

static bool all_ones(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0xFF)
			return false;
	return true;
}

static int write_block(struct vhdx_file *f, uint64_t b, uint32_t in, uint32_t n, const uint8_t *src)
{
	uint64_t bs = f->info.block_size, idx = vhdx_payload_index(f, b);
	uint64_t e = vhdx_bat_get(f, idx), foff = e & VHDX_BAT_OFFSET_MASK;
	unsigned st = (unsigned)(e & VHDX_BAT_STATE_MASK);
	int rc;
	f->data_dirty = true;
	if (st == VHDX_BLOCK_FULLY_PRESENT)
		return vio_pwrite(f, src, n, foff + in);
	bool whole = in == 0 && n == bs;
	/* Non-differencing blocks, and differencing blocks that read as zeros (ZERO/UNDEFINED/
	 * UNMAPPED): a fresh zero-filled block becomes FULLY_PRESENT. */
	if (!f->has_parent || (st != VHDX_BLOCK_NOT_PRESENT && st != VHDX_BLOCK_PARTIALLY_PRESENT) || whole) {
		if ((rc = append_space(f, bs, &foff)) || (rc = vio_pwrite(f, src, n, foff + in)))
			return rc;
		return vhdx_bat_set(f, idx, foff | VHDX_BLOCK_FULLY_PRESENT);
	}
	/* differencing, sub-block write: per-sector presence */
	uint32_t lss = f->info.logical_sector;
	uint64_t s0 = in / lss, s1 = (in + (uint64_t)n + lss - 1) / lss; /* [s0, s1) */
	uint32_t lo = (uint32_t)(s0 * lss), hi = (uint32_t)(s1 * lss);
	const uint8_t *data = src;
	if (lo != in || hi != in + n) {
		/* read-modify-write of the partial edge sectors through this file's current view */
		if (!f->scratch && !(f->scratch = malloc(bs)))
			return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
		if (lo != in && (rc = read_block(f, b, lo, lss, f->scratch)))
			return rc;
		if (hi != in + n && (rc = read_block(f, b, hi - lss, lss, f->scratch + (hi - lss - lo))))
			return rc;
		memcpy(f->scratch + (in - lo), src, n);
		data = f->scratch;
	}
	if ((rc = ensure_sb_block(f, b / f->chunk_ratio)))
		return rc;
	if (st == VHDX_BLOCK_NOT_PRESENT) {
		if ((rc = append_space(f, bs, &foff)) ||
		    (rc = vhdx_bat_set(f, idx, foff | VHDX_BLOCK_PARTIALLY_PRESENT)))
			return rc;
	}
	if ((rc = vio_pwrite(f, data, hi - lo, foff + lo)))
		return rc;
	uint64_t base = bitmap_base(f, b);
	if ((rc = bitmap_set(f, base, s0, s1 - s0)))
		return rc;
	/* every sector now in this file: promote, the bitmap is no longer consulted */
	size_t nb = f->sectors_per_block / 8;
	uint8_t *bm = malloc(nb);
	if (!bm)
		return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
	rc = bitmap_read(f, bm, base, nb);
	if (!rc && all_ones(bm, nb))
		rc = vhdx_bat_set(f, idx, foff | VHDX_BLOCK_FULLY_PRESENT);
	free(bm);
	return rc;
}

int vhdx_write(struct vhdx_file *f, const void *buf, uint64_t off, size_t len)
{
	int rc = check_range(f, off, len);
	if (rc || len == 0)
		return rc;
	if ((rc = vhdx_begin_session(f, true)))
		return rc;
	const uint8_t *p = buf;
	uint64_t bs = f->info.block_size;
	while (len) {
		uint64_t b = off / bs;
		uint32_t in = (uint32_t)(off % bs);
		uint32_t n = len < bs - in ? (uint32_t)len : (uint32_t)(bs - in);
		if ((rc = write_block(f, b, in, n, p)))
			return rc;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int vhdx_flush(struct vhdx_file *f)
{
	if (!f->writable)
		return 0;
	if (f->crashed)
		return hv_err(HV_ECRASHED, "%s: write sequence was cut by the fault point", f->path);
	size_t n = f->ndirty;
	for (uint64_t p = 0; p < f->nbat_pages; p++)
		n += f->bat_dirty[p];
	if (n == 0) {
		if (f->data_dirty) {
			f->data_dirty = false;
			return vio_sync(f);
		}
		return 0;
	}
	struct vhdx_log_write *w = calloc(n, sizeof *w);
	uint8_t *pages = malloc(n * SECTOR4K);
	int rc = 0;
	if (!w || !pages) {
		rc = hv_err(HV_ENOMEM, "%s: out of memory", f->path);
		goto out;
	}
	size_t k = 0;
	/* bitmaps before BAT pages: if the commit spans several entries, a BAT entry never
	 * reaches the file before the bitmap it depends on */
	for (size_t i = 0; i < f->cap_dirty; i++)
		if (f->dirty[i].off)
			w[k++] = (struct vhdx_log_write){f->dirty[i].off, f->dirty[i].data};
	for (uint64_t p = 0; p < f->nbat_pages; p++) {
		if (!f->bat_dirty[p])
			continue;
		uint8_t *pg = pages + k * SECTOR4K;
		for (unsigned j = 0; j < VHDX_BAT_PER_PAGE; j++)
			hv_put64(pg + 8 * j, f->bat_pages[p] ? f->bat_pages[p][j] : 0);
		w[k++] = (struct vhdx_log_write){f->bat_off + p * SECTOR4K, pg};
	}
	if ((rc = vhdx_log_commit(f, w, k)))
		goto out;
	memset(f->bat_dirty, 0, f->nbat_pages);
	for (size_t i = 0; i < f->cap_dirty; i++)
		free(f->dirty[i].data);
	free(f->dirty);
	f->dirty = NULL;
	f->ndirty = f->cap_dirty = 0;
out:
	free(w);
	free(pages);
	return rc;
}

int vhdx_close(struct vhdx_file *f)
{
	if (!f)
		return 0;
	int rc = 0;
	if (f->writable && !f->crashed) {
		rc = vhdx_flush(f);
		if (!rc && f->log_guid_set) {
			/* log empty again; written to both slots so they agree */
			struct vhdx_header nh = f->hdr;
			memset(nh.log_guid.b, 0, 16);
			if (!(rc = vhdx_header_write(f, &nh)))
				rc = vhdx_header_write(f, &nh);
		}
	}
	vhdx_free(f);
	return rc;
}

/* ---- allocation map ------------------------------------------------------------------------*/

struct emitter {
	vhdx_map_cb cb;
	void *ctx;
	uint64_t off, len;
	enum vhdx_map_kind kind;
};

static int emit(struct emitter *m, uint64_t off, uint64_t len, enum vhdx_map_kind kind)
{
	if (m->len && m->kind == kind && m->off + m->len == off) {
		m->len += len;
		return 0;
	}
	int rc = m->len ? m->cb(m->ctx, m->off, m->len, m->kind) : 0;
	m->off = off;
	m->len = len;
	m->kind = kind;
	return rc;
}

int vhdx_block_state(struct vhdx_file *f, uint64_t block, unsigned *state, uint64_t *file_off)
{
	if (block >= f->nblocks)
		return hv_err(HV_EINVAL, "%s: block %llu is past the last block (%llu)", f->path,
			      (unsigned long long)block, (unsigned long long)f->nblocks);
	uint64_t e = vhdx_bat_get(f, vhdx_payload_index(f, block));
	*state = (unsigned)(e & VHDX_BAT_STATE_MASK);
	if (file_off)
		*file_off = e & VHDX_BAT_OFFSET_MASK;
	return 0;
}

struct split {
	struct emitter *m;
	uint64_t delta; /* virtual offset - file offset */
};

static int emit_split(void *ctx, uint64_t off, uint64_t len)
{
	struct split *sp = ctx;
	return emit(sp->m, off + sp->delta, len, VHDX_MAP_DATA);
}

/* A data range of this file: whole, or (NONZERO) only the parts the file system stores. */
static int emit_data(struct vhdx_file *f, struct emitter *m, unsigned flags, uint64_t voff,
		     uint64_t foff, uint64_t len)
{
	if (!(flags & VHDX_MAP_NONZERO) || f->novl)
		return emit(m, voff, len, VHDX_MAP_DATA);
	struct split sp = {m, voff - foff};
	return vio_data_extents(f, foff, len, emit_split, &sp);
}

int vhdx_map_ex(struct vhdx_file *f, unsigned flags, vhdx_map_cb cb, void *ctx)
{
	struct emitter m = {cb, ctx, 0, 0, VHDX_MAP_DATA};
	uint64_t bs = f->info.block_size, vs = f->info.virtual_size, CR = f->chunk_ratio;
	uint32_t lss = f->info.logical_sector;
	uint8_t *bm = NULL;
	int rc = 0;
	for (uint64_t b = 0; !rc && b < f->nblocks;) {
		uint64_t idx = vhdx_payload_index(f, b);
		if (idx / VHDX_BAT_PER_PAGE < f->nbat_pages && !f->bat_pages[idx / VHDX_BAT_PER_PAGE]) {
			uint64_t ps = (idx / VHDX_BAT_PER_PAGE + 1) * VHDX_BAT_PER_PAGE;
			uint64_t nb = ps - ps / (CR + 1);
			b = nb > b ? nb : b + 1;
			continue;
		}
		uint64_t e = vhdx_bat_get(f, idx), off = b * bs, len = vs - off < bs ? vs - off : bs;
		uint64_t foff = e & VHDX_BAT_OFFSET_MASK;
		switch (e & VHDX_BAT_STATE_MASK) {
		case VHDX_BLOCK_NOT_PRESENT:
			break;
		case VHDX_BLOCK_FULLY_PRESENT:
			rc = emit_data(f, &m, flags, off, foff, len);
			break;
		case VHDX_BLOCK_PARTIALLY_PRESENT: {
			size_t nb = f->sectors_per_block / 8;
			if (!bm && !(bm = malloc(nb))) {
				rc = hv_err(HV_ENOMEM, "%s: out of memory", f->path);
				break;
			}
			if ((rc = bitmap_read(f, bm, bitmap_base(f, b), nb)))
				break;
			uint64_t ns = len / lss;
			for (uint64_t s = 0; !rc && s < ns;) {
				bool v = bit(bm, s);
				uint64_t t = s + 1;
				while (t < ns && bit(bm, t) == v)
					t++;
				if (v)
					rc = emit_data(f, &m, flags, off + s * lss, foff + s * lss, (t - s) * lss);
				s = t;
			}
			break;
		}
		default:
			if (!(flags & VHDX_MAP_NONZERO))
				rc = emit(&m, off, len, VHDX_MAP_ZERO);
		}
		b++;
	}
	free(bm);
	if (!rc && m.len)
		rc = cb(ctx, m.off, m.len, m.kind);
	return rc;
}

int vhdx_map(struct vhdx_file *f, vhdx_map_cb cb, void *ctx) { return vhdx_map_ex(f, 0, cb, ctx); }
