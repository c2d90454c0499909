/*
 * vhdx_log — the VHDX metadata journal (MS-VHDX 2.3): finding and replaying the active sequence,
 * and writing our own entries.
 *
 * Replay follows the spec procedure: every 4 KiB position of the log may start a chain of valid
 * entries whose sequence numbers rise by one; a chain counts only if its head's Tail points into
 * it; the chain with the highest head sequence number is replayed from that Tail to the head.
 * We compute this in one pass (each valid entry knows its successor, so the head of every chain
 * is memoised) instead of re-walking chains from every start, so a hostile log cannot make the
 * search quadratic. Entries are read a 4 KiB sector at a time: nothing is sized from EntryLength
 * or DescriptorCount beyond the log length already checked against the file.
 *
 * Writable open: replay in place, then the log is empty (LogGuid = 0). Read-only open: the writes
 * become an in-memory overlay under vio_pread(), so a backup tool reads the replayed content of a
 * file it may not modify.
 *
 * Writer: each commit is written as one or more entries whose Tail points at themselves; an entry
 * is applied and flushed before the next is written, so replaying only the newest entry is
 * always enough. Order per entry: payload already flushed -> entry -> flush -> (first time) header
 * with LogGuid -> apply -> flush. Cut anywhere, the file opens to the old or the new metadata.
 */
#include "vhdx_internal.h"

#include <stdlib.h>
#include <string.h>

#define LOG_SECTOR 4096u
#define DESC_SIZE 32u

struct lentry {
	bool valid;
	uint32_t len, tail, ndesc, dsec;
	uint64_t seq, flushed, last;
	int64_t succ; /* position index of the next entry of a chain, or -1 */
	int64_t head; /* memoised chain head reached from here, or -2 = not computed */
};

static uint32_t desc_sectors(uint64_t ndesc) { return (uint32_t)((ndesc + 2 + 127) / 128); }

/* Offset of descriptor i inside the entry. */
static uint64_t desc_off(uint32_t i)
{
	return i < 126 ? 64 + (uint64_t)i * DESC_SIZE
		       : LOG_SECTOR + (uint64_t)(i - 126) / 128 * LOG_SECTOR + (uint64_t)((i - 126) % 128) * DESC_SIZE;
}

/* Validates the entry at log position `pos` completely (header, checksum, every descriptor and
 * data sector). Only header fields are kept. */
static int read_entry(struct vhdx_file *f, uint32_t pos, struct lentry *e, uint8_t *buf)
{
	uint64_t base = f->hdr.log_offset;
	uint32_t L = f->hdr.log_length;
	e->valid = false;
	uint8_t h[64];
	int rc = vio_pread(f, h, sizeof h, base + pos);
	if (rc)
		return rc;
	if (memcmp(h, "loge", 4) != 0)
		return 0;
	e->len = hv_le32(h + 8);
	e->tail = hv_le32(h + 12);
	e->seq = hv_le64(h + 16);
	e->ndesc = hv_le32(h + 24);
	e->flushed = hv_le64(h + 48);
	e->last = hv_le64(h + 56);
	struct hv_guid g;
	memcpy(g.b, h + 32, 16);
	if (e->len == 0 || e->len % LOG_SECTOR || (uint64_t)pos + e->len > L || e->tail % LOG_SECTOR ||
	    e->tail >= L || e->seq == 0 || !hv_guid_eq(&g, &f->hdr.log_guid) || e->flushed % VHDX_MIB ||
	    e->last % VHDX_MIB || e->last > VHDX_MAX_FILE_SIZE)
		return 0;
	e->dsec = desc_sectors(e->ndesc);
	if ((uint64_t)e->dsec * LOG_SECTOR > e->len)
		return 0;
	uint32_t ndata = 0;
	uint8_t d[DESC_SIZE], ds[LOG_SECTOR];
	for (uint32_t i = 0; i < e->ndesc; i++) {
		if ((rc = vio_pread(f, d, DESC_SIZE, base + pos + desc_off(i))))
			return rc;
		if (hv_le64(d + 24) != e->seq || hv_le64(d + 16) % LOG_SECTOR)
			return 0;
		if (!memcmp(d, "zero", 4)) {
			if (hv_le64(d + 8) % LOG_SECTOR)
				return 0;
		} else if (!memcmp(d, "desc", 4)) {
			uint64_t so = (uint64_t)(e->dsec + ndata) * LOG_SECTOR;
			if (so + LOG_SECTOR > e->len)
				return 0;
			if ((rc = vio_pread(f, ds, LOG_SECTOR, base + pos + so)))
				return rc;
			if (memcmp(ds, "data", 4) || hv_le32(ds + 4) != (uint32_t)(e->seq >> 32) ||
			    hv_le32(ds + 4092) != (uint32_t)e->seq)
				return 0;
			ndata++;
		} else {
			return 0;
		}
	}
	if ((uint64_t)(e->dsec + ndata) * LOG_SECTOR != e->len)
		return 0;
	/* The checksum last: the structure checks above read only sectors this entry owns, and no
	 * sector of a structurally valid entry can start another entry ("desc"/"zero"/"data", never
	 * "loge"), so the work over all start positions stays linear in the log length. */
	/* checksum over the whole entry with the field zeroed, streamed */
	uint32_t crc = HV_CRC32C_INIT;
	for (uint32_t o = 0; o < e->len; o += VHDX_MIB) {
		uint32_t n = e->len - o < VHDX_MIB ? e->len - o : VHDX_MIB;
		if ((rc = vio_pread(f, buf, n, base + pos + o)))
			return rc;
		if (o == 0)
			memset(buf + 4, 0, 4);
		crc = hv_crc32c_update(crc, buf, n);
	}
	if (hv_crc32c_final(crc) != hv_le32(h + 4))
		return 0;
	e->valid = true;
	return 0;
}

static int64_t chain_head(struct lentry *E, int64_t i)
{
	/* iterative: follow successors, then memoise back along the path */
	int64_t j = i;
	while (E[j].head == -2 && E[j].succ >= 0)
		j = E[j].succ;
	int64_t h = E[j].head == -2 ? j : E[j].head;
	for (int64_t k = i; E[k].head == -2; k = E[k].succ) {
		E[k].head = h;
		if (E[k].succ < 0)
			break;
	}
	return h;
}

static int add_overlay(struct vhdx_file *f, uint64_t off, uint64_t len, const uint8_t *data)
{
	if (f->novl_ops == f->cap_ovl_ops) {
		size_t nc = f->cap_ovl_ops ? f->cap_ovl_ops * 2 : 64;
		struct vhdx_overlay_op *n = realloc(f->ovl_ops, nc * sizeof *n);
		if (!n)
			return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
		f->ovl_ops = n;
		f->cap_ovl_ops = nc;
	}
	uint8_t *copy = NULL;
	if (data) {
		copy = malloc(len);
		if (!copy)
			return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
		memcpy(copy, data, len);
	}
	f->ovl_ops[f->novl_ops++] = (struct vhdx_overlay_op){off, len, copy};
	return 0;
}

struct ovl_event {
	uint64_t pos;
	size_t op;
	bool start;
};

static int cmp_event(const void *a, const void *b)
{
	const struct ovl_event *x = a, *y = b;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void heap_push(size_t *h, size_t *n, size_t v)
{
	size_t i = (*n)++;
	for (h[i] = v; i > 0 && h[(i - 1) / 2] < h[i]; i = (i - 1) / 2) {
		size_t t = h[i];
		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
	}
}

static void heap_pop(size_t *h, size_t *n)
{
	h[0] = h[--*n];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < *n && h[l] > h[m])
			m = l;
		if (r < *n && h[r] > h[m])
			m = r;
		if (m == i)
			break;
		size_t t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* Sweep over the ops' start/end points with a max-heap of active ops (latest = highest index):
 * O(N log N) for N descriptors, whatever their overlaps. */
static int resolve_overlay(struct vhdx_file *f)
{
	size_t n = f->novl_ops;
	struct ovl_event *ev = malloc((2 * n + 1) * sizeof *ev);
	size_t *heap = malloc((n + 1) * sizeof *heap);
	bool *ended = calloc(n + 1, 1);
	f->ovl = malloc((2 * n + 1) * sizeof *f->ovl);
	if (!ev || !heap || !ended || !f->ovl) {
		free(ev);
		free(heap);
		free(ended);
		return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
	}
	for (size_t i = 0; i < n; i++) {
		ev[2 * i] = (struct ovl_event){f->ovl_ops[i].off, i, true};
		ev[2 * i + 1] = (struct ovl_event){f->ovl_ops[i].off + f->ovl_ops[i].len, i, false};
	}
	qsort(ev, 2 * n, sizeof *ev, cmp_event);
	size_t nh = 0, prev_op = SIZE_MAX;
	f->novl = 0;
	for (size_t i = 0; i < 2 * n;) {
		uint64_t p = ev[i].pos;
		for (; i < 2 * n && ev[i].pos == p; i++) {
			if (ev[i].start)
				heap_push(heap, &nh, ev[i].op);
			else
				ended[ev[i].op] = true;
		}
		while (nh && ended[heap[0]])
			heap_pop(heap, &nh);
		if (!nh || i == 2 * n) {
			prev_op = SIZE_MAX;
			continue;
		}
		const struct vhdx_overlay_op *o = &f->ovl_ops[heap[0]];
		uint64_t q = ev[i].pos;
		struct vhdx_overlay *last = f->novl ? &f->ovl[f->novl - 1] : NULL;
		if (last && prev_op == heap[0] && last->off + last->len == p)
			last->len += q - p; /* the same op continues past an unrelated boundary */
		else
			f->ovl[f->novl++] = (struct vhdx_overlay){p, q - p, o->data ? o->data + (p - o->off) : NULL};
		prev_op = heap[0];
	}
	free(ev);
	free(heap);
	free(ended);
	return 0;
}

/* Applies one validated entry: in place (writable) or into the overlay. */
static int apply_entry(struct vhdx_file *f, struct vrep *r, uint32_t pos, const struct lentry *e,
		       uint64_t limit)
{
	uint64_t base = f->hdr.log_offset;
	uint8_t d[DESC_SIZE], ds[LOG_SECTOR], sec[LOG_SECTOR];
	uint32_t ndata = 0;
	int rc;
	for (uint32_t i = 0; i < e->ndesc; i++) {
		if ((rc = vio_pread(f, d, DESC_SIZE, base + pos + desc_off(i))))
			return rc;
		uint64_t target = hv_le64(d + 16);
		bool zero = !memcmp(d, "zero", 4);
		uint64_t len = zero ? hv_le64(d + 8) : LOG_SECTOR;
		if (target < VHDX_RT1_OFF || len > limit || target > limit - len)
			return vrep_problem(r, HV_ECORRUPT,
					    "log entry %llu, descriptor %u: target [%llu, +%llu) is inside the "
					    "header section or past the file size the log declares (%llu)",
					    (unsigned long long)e->seq, i, (unsigned long long)target,
					    (unsigned long long)len, (unsigned long long)limit);
		if (zero) {
			if (f->writable) {
				/* only what exists needs zeroing; the file is extended to LastFileOffset */
				uint64_t end = target + len < f->file_size ? target + len : f->file_size;
				if (target < end && (rc = vio_zero(f, target, end - target)))
					return rc;
			} else if ((rc = add_overlay(f, target, len, NULL))) {
				return rc;
			}
			continue;
		}
		uint64_t so = (uint64_t)(e->dsec + ndata++) * LOG_SECTOR;
		if ((rc = vio_pread(f, ds, LOG_SECTOR, base + pos + so)))
			return rc;
		memcpy(sec, d + 8, 8);            /* LeadingBytes */
		memcpy(sec + 8, ds + 8, 4084);     /* data bytes 8..4091 */
		memcpy(sec + 4092, d + 4, 4);      /* TrailingBytes */
		rc = f->writable ? vio_pwrite(f, sec, LOG_SECTOR, target) : add_overlay(f, target, LOG_SECTOR, sec);
		if (rc)
			return rc;
	}
	return 0;
}

int vhdx_log_replay(struct vhdx_file *f, struct vrep *r)
{
	uint32_t L = f->hdr.log_length;
	uint32_t npos = L / LOG_SECTOR;
	struct lentry *E = calloc(npos, sizeof *E);
	uint8_t *buf = malloc(VHDX_MIB);
	int rc = 0;
	if (!E || !buf) {
		rc = hv_err(HV_ENOMEM, "%s: out of memory", f->path);
		goto out;
	}
	for (uint32_t i = 0; i < npos; i++) {
		if ((rc = read_entry(f, i * LOG_SECTOR, &E[i], buf)))
			goto out;
		E[i].succ = -1;
		E[i].head = -2;
	}
	for (uint32_t i = 0; i < npos; i++) {
		if (!E[i].valid)
			continue;
		uint32_t nx = (uint32_t)(((uint64_t)i * LOG_SECTOR + E[i].len) % L / LOG_SECTOR);
		if (E[nx].valid && E[nx].seq == E[i].seq + 1)
			E[i].succ = nx;
	}
	int64_t best_tail = -1, best_head = -1;
	for (uint32_t i = 0; i < npos; i++) {
		if (!E[i].valid)
			continue;
		int64_t h = chain_head(E, i);
		uint32_t t = E[h].tail / LOG_SECTOR;
		/* Tail must be on the chain from i to h: valid, same head, not before i */
		if (!E[t].valid || chain_head(E, t) != h || E[t].seq < E[i].seq)
			continue;
		if (best_head < 0 || E[h].seq > E[best_head].seq) {
			best_head = h;
			best_tail = t;
		}
	}
	if (best_head < 0) {
		char gs[HV_GUID_STRLEN + 1];
		hv_guid_format(&f->hdr.log_guid, gs);
		rc = vrep_problem(r, HV_ECORRUPT,
				  "log: header LogGuid is %s but the log (offset %llu, length %u) holds no "
				  "valid entry sequence for it",
				  gs, (unsigned long long)f->hdr.log_offset, L);
		goto out;
	}
	const struct lentry *H = &E[best_head];
	if (f->file_size < H->flushed) {
		rc = vrep_problem(r, HV_ECORRUPT,
				  "log: file is %llu bytes but log entry %llu says %llu bytes were stable "
				  "(file truncated)",
				  (unsigned long long)f->file_size, (unsigned long long)H->seq,
				  (unsigned long long)H->flushed);
		goto out;
	}
	uint64_t limit = f->file_size > H->last ? f->file_size : H->last;
	if (f->writable && (rc = vhdx_begin_session(f, false)))
		goto out;
	uint32_t count = 0;
	for (int64_t i = best_tail;; i = E[i].succ) {
		if ((rc = apply_entry(f, r, (uint32_t)i * LOG_SECTOR, &E[i], limit)))
			goto out;
		count++;
		if (i == best_head)
			break;
	}
	if (f->writable) {
		if (f->file_size < H->last && (rc = vio_truncate(f, H->last)))
			goto out;
		if ((rc = vio_sync(f)))
			goto out;
		struct vhdx_header nh = f->hdr;
		memset(nh.log_guid.b, 0, 16);
		if ((rc = vhdx_header_write(f, &nh)))
			goto out;
	} else {
		if ((rc = resolve_overlay(f)))
			goto out;
		f->file_size = limit;
		f->info.log_replayed_in_memory = true;
	}
	f->info.log_entries_replayed = count;
out:
	free(E);
	free(buf);
	return rc;
}

/* Writes one entry of n (<= capacity) 4 KiB sector updates and applies it. */
static int commit_one(struct vhdx_file *f, const struct vhdx_log_write *w, uint32_t n)
{
	uint32_t L = f->hdr.log_length;
	uint32_t dsec = desc_sectors(n);
	uint32_t len = (dsec + n) * LOG_SECTOR;
	uint8_t *e = calloc(1, len);
	if (!e)
		return hv_err(HV_ENOMEM, "%s: out of memory", f->path);
	int rc;
	if ((uint64_t)f->log_pos + len > L) {
		/* Wrapping would overwrite older entries, possibly the newest one the header still
		 * points at; a torn write there would leave no valid sequence. Everything written so
		 * far is applied and flushed, so empty the log first and continue under a new
		 * LogGuid. */
		if (f->log_guid_set) {
			struct vhdx_header nh = f->hdr;
			memset(nh.log_guid.b, 0, 16);
			if ((rc = vhdx_header_write(f, &nh))) {
				free(e);
				return rc;
			}
			f->log_guid_set = false;
			f->session_log_guid = hv_rng_guid(&f->rng);
		}
		f->log_pos = 0;
	}
	uint64_t seq = ++f->log_seq;
	uint64_t fsz = (f->file_size + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	memcpy(e, "loge", 4);
	hv_put32(e + 8, len);
	hv_put32(e + 12, f->log_pos);
	hv_put64(e + 16, seq);
	hv_put32(e + 24, n);
	memcpy(e + 32, f->session_log_guid.b, 16);
	hv_put64(e + 48, fsz);
	hv_put64(e + 56, fsz);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *d = e + desc_off(i);
		memcpy(d, "desc", 4);
		memcpy(d + 4, w[i].data + 4092, 4);
		memcpy(d + 8, w[i].data, 8);
		hv_put64(d + 16, w[i].off);
		hv_put64(d + 24, seq);
		uint8_t *s = e + (uint64_t)(dsec + i) * LOG_SECTOR;
		memcpy(s, "data", 4);
		hv_put32(s + 4, (uint32_t)(seq >> 32));
		memcpy(s + 8, w[i].data + 8, 4084);
		hv_put32(s + 4092, (uint32_t)seq);
	}
	hv_put32(e + 4, hv_crc32c(e, len));
	rc = vio_pwrite(f, e, len, f->hdr.log_offset + f->log_pos);
	free(e);
	if (rc || (rc = vio_sync(f)))
		return rc;
	if (!f->log_guid_set) {
		struct vhdx_header nh = f->hdr;
		nh.log_guid = f->session_log_guid;
		if ((rc = vhdx_header_write(f, &nh)))
			return rc;
		f->log_guid_set = true;
	}
	for (uint32_t i = 0; i < n; i++)
		if ((rc = vio_pwrite(f, w[i].data, LOG_SECTOR, w[i].off)))
			return rc;
	if ((rc = vio_sync(f)))
		return rc;
	f->log_pos += len;
	return 0;
}

int vhdx_log_commit(struct vhdx_file *f, const struct vhdx_log_write *w, size_t n)
{
	uint32_t cap_sectors = f->hdr.log_length / LOG_SECTOR;
	if (cap_sectors > 1024)
		cap_sectors = 1024; /* 4 MiB entries at most: bounded buffers */
	/* k data sectors need desc_sectors(k) + k <= cap_sectors */
	uint32_t k = cap_sectors - 1;
	while (k > 0 && desc_sectors(k) + k > cap_sectors)
		k--;
	/* QEMU 7.2 cannot replay an entry with more than one descriptor sector (its
	 * vhdx_log_read_sectors() reuses one buffer), so a pending entry of ours must fit 126
	 * descriptors for QEMU to open the file. Each entry is applied before the next one is
	 * written, so splitting costs one flush per entry, nothing in safety. */
	if (k > 126)
		k = 126;
	if (k == 0)
		return hv_err(HV_EUNSUPPORTED, "%s: log of %u bytes is too small to journal anything",
			      f->path, f->hdr.log_length);
	int rc;
	if (f->data_dirty) {
		/* payload first: no BAT entry may point at data that is not yet stable */
		if ((rc = vio_sync(f)))
			return rc;
		f->data_dirty = false;
	}
	for (size_t i = 0; i < n; i += k) {
		uint32_t m = n - i < k ? (uint32_t)(n - i) : k;
		if ((rc = commit_one(f, w + i, m)))
			return rc;
	}
	return 0;
}
