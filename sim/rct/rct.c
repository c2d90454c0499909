/*
 * rct — change tracking in memory: RCT id text, marking the open epoch (its sparse bitmaps are
 * in rct_sbm.c), sealing, the paged change query (a k-way merge over the epochs in range), and
 * the events (reset, enable/disable, resize, crash). The sidecar lives in rct_file.c. See rct.h
 * for the model.
 *
 * Must not: read the clock, draw random numbers, or do work proportional to the number of dirty
 * blocks in rct_mark (it runs on the guest write path at >= 1 GB/s).
 */
#include "rct_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ids -------------------------------------------------------------------------------------*/

void rct_id_format(const struct hv_guid *guid, uint32_t seq, char *out)
{
	char g[HV_GUID_STRLEN + 1];
	hv_guid_format(guid, g);
	memcpy(out, "rctX:", 5);
	for (int i = 0; i < 36; i++)
		out[5 + i] = g[1 + i] == '-' ? ':' : g[1 + i];
	snprintf(out + 41, RCT_ID_STRLEN + 1 - 41, ":%08x", seq);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int rct_id_parse(const char *id, struct hv_guid *guid, uint32_t *seq)
{
	if (!id)
		return hv_err(HV_EINVAL, "(null): not an RCT id");
	size_t n = strnlen(id, RCT_ID_STRLEN + 1);
	const char *why = NULL;
	char g[37];
	if (n != RCT_ID_STRLEN)
		why = "length is not 50 characters";
	else if (memcmp(id, "rctX:", 5) != 0)
		why = "does not start with rctX:";
	for (int i = 5; !why && i < RCT_ID_STRLEN; i++) {
		bool sep = i == 13 || i == 18 || i == 23 || i == 28 || i == 41;
		if (sep ? id[i] != ':' : hexval(id[i]) < 0)
			why = sep ? "':' expected between the groups" : "non-hex digit";
	}
	if (why)
		return hv_err(HV_EINVAL,
			      "%.60s: not an RCT id (%s; expected rctX:xxxxxxxx:xxxx:xxxx:xxxx:"
			      "xxxxxxxxxxxx:ssssssss)",
			      id, why);
	for (int i = 0; i < 36; i++)
		g[i] = id[5 + i] == ':' ? '-' : id[5 + i];
	if (hv_guid_parse(g, 36, guid) != 0)
		return hv_err(HV_EINVAL, "%s: not an RCT id (bad GUID)", id);
	uint32_t s = 0;
	for (int i = 42; i < 50; i++)
		s = s << 4 | (uint32_t)hexval(id[i]);
	*seq = s;
	return 0;
}

/* ---- object ----------------------------------------------------------------------------------*/

const char *rct_geometry_problem(uint64_t size, uint32_t gran, uint32_t coarse)
{
	if (gran < RCT_MIN_GRANULARITY || gran > RCT_MAX_GRANULARITY || (gran & (gran - 1)))
		return "granularity is not a power of two in 4096..1073741824";
	if (coarse < gran || coarse % gran)
		return "coarse granularity is not a multiple of the granularity";
	if (size == 0 || size > RCT_MAX_VIRTUAL_SIZE)
		return "virtual size is not in 1..64 TiB";
	return NULL;
}

int rct_alloc(const char *path, unsigned flags, uint64_t size, uint32_t gran, uint32_t coarse,
	      struct rct **out)
{
	struct rct *r = calloc(1, sizeof *r);
	if (!r || !(r->path = strdup(path)))
		goto nomem;
	r->flags = flags;
	r->size = size;
	r->gran = gran;
	r->coarse = coarse;
	r->gshift = (unsigned)__builtin_ctz(gran);
	r->ratio = coarse / gran;
	r->nblocks = (size + gran - 1) >> r->gshift;
	r->ncoarse = (size + coarse - 1) / coarse;
	r->enabled = true;
	if (sbm_init(&r->fine, r->nblocks) || sbm_init(&r->cmap, r->ncoarse))
		goto nomem;
	*out = r;
	return 0;
nomem:
	rct_close(r);
	return hv_err(HV_ENOMEM, "%s: out of memory for the change-tracking state", path);
}

static void drop_epochs(struct rct *r)
{
	for (uint32_t e = 0; e < r->seq; e++)
		free(r->epochs[e].runs);
	free(r->epochs);
	r->epochs = NULL;
	r->epochs_cap = 0;
	r->seq = 0;
	sbm_clear(&r->fine);
	sbm_clear(&r->cmap);
	r->open_flags = 0;
}

void rct_close(struct rct *r)
{
	if (!r)
		return;
	drop_epochs(r);
	sbm_free(&r->fine);
	sbm_free(&r->cmap);
	free(r->path);
	free(r);
}

int rct_append_epoch(struct rct *r, uint64_t *runs, size_t n, uint8_t flags)
{
	if (r->seq == r->epochs_cap) {
		size_t cap = r->epochs_cap ? r->epochs_cap * 2 : 8;
		struct rct_epoch *e = realloc(r->epochs, cap * sizeof *e);
		if (!e) {
			free(runs);
			return hv_err(HV_ENOMEM, "%s: out of memory for epoch %u", r->path,
				      r->seq + 1);
		}
		r->epochs = e;
		r->epochs_cap = cap;
	}
	r->epochs[r->seq++] = (struct rct_epoch){.runs = runs, .n = n, .flags = flags};
	return 0;
}

/* ---- tracking --------------------------------------------------------------------------------*/

int rct_mark(struct rct *r, uint64_t offset, uint64_t length)
{
	if (length == 0 || !r->enabled)
		return 0;
	if (offset >= r->size || length > r->size - offset)
		return hv_err(HV_EINVAL,
			      "%s: write [%llu, +%llu) extends past the virtual size %llu", r->path,
			      (unsigned long long)offset, (unsigned long long)length,
			      (unsigned long long)r->size);
	uint64_t last = offset + length - 1;
	/* coarse first: if the fine record then fails, the coarse one still covers the write */
	if (sbm_set(&r->cmap, offset / r->coarse, last / r->coarse + 1)) {
		r->open_flags |= RCT_EPOCH_LOST;
		return hv_err(HV_ENOMEM,
			      "%s: out of memory recording a write; queries across this epoch "
			      "will fail until a reset",
			      r->path);
	}
	if (r->open_flags & RCT_EPOCH_COARSE)
		return 0;
	if (sbm_set(&r->fine, offset >> r->gshift, (last >> r->gshift) + 1)) {
		/* out of memory for the fine record: degrade to the coarse one, lose nothing */
		sbm_clear(&r->fine);
		r->open_flags |= RCT_EPOCH_COARSE;
	}
	return 0;
}

bool rct_newer_changes(const struct rct *r)
{
	return r->enabled && sbm_next_set(&r->cmap, 0) < r->ncoarse;
}

static uint32_t set_win32(uint32_t *win32, uint32_t code)
{
	if (win32)
		*win32 = code;
	return code;
}

static uint32_t win32_of(int rc)
{
	switch (rc) {
	case 0:
		return RCT_WIN32_SUCCESS;
	case HV_ENOMEM:
		return RCT_WIN32_NOT_ENOUGH_MEMORY;
	default:
		return RCT_WIN32_INVALID_PARAMETER;
	}
}

/* Appends run [s, e) to a growing array of pairs. */
struct runvec {
	uint64_t *v;
	size_t n, cap;
};

static int runvec_push(struct runvec *rv, uint64_t s, uint64_t e)
{
	if (rv->n == rv->cap) {
		size_t cap = rv->cap ? rv->cap * 2 : 64;
		uint64_t *v = realloc(rv->v, cap * 2 * sizeof *v);
		if (!v)
			return HV_ENOMEM;
		rv->v = v;
		rv->cap = cap;
	}
	rv->v[2 * rv->n] = s;
	rv->v[2 * rv->n + 1] = e;
	rv->n++;
	return 0;
}

int rct_seal(struct rct *r, char *id_out, uint32_t *win32)
{
	if (!r->enabled) {
		set_win32(win32, RCT_WIN32_CHANGE_TRACKING_DISABLED);
		return hv_err(HV_EUNSUPPORTED, "%s: cannot seal: change tracking is disabled",
			      r->path);
	}
	if (r->seq == UINT32_MAX) {
		set_win32(win32, RCT_WIN32_INVALID_PARAMETER);
		return hv_err(HV_EUNSUPPORTED, "%s: cannot seal: sequence 0xffffffff is the last",
			      r->path);
	}
	struct runvec rv = {0};
	bool coarse = r->open_flags & RCT_EPOCH_COARSE;
	const struct sbm *m = coarse ? &r->cmap : &r->fine;
	uint64_t scale = coarse ? r->ratio : 1;
	for (uint64_t pos = 0;;) {
		uint64_t s = sbm_next_set(m, pos);
		if (s >= m->nbits)
			break;
		uint64_t e = sbm_next_clear(m, s);
		uint64_t ge = e * scale < r->nblocks ? e * scale : r->nblocks;
		if (runvec_push(&rv, s * scale, ge)) {
			free(rv.v);
			set_win32(win32, RCT_WIN32_NOT_ENOUGH_MEMORY);
			return hv_err(HV_ENOMEM, "%s: out of memory sealing epoch %u", r->path,
				      r->seq + 1);
		}
		pos = e;
	}
	if (rv.n && rv.n < rv.cap) {
		uint64_t *v = realloc(rv.v, rv.n * 2 * sizeof *v);
		if (v)
			rv.v = v;
	}
	int rc = rct_append_epoch(r, rv.v, rv.n, r->open_flags);
	if (rc) {
		set_win32(win32, win32_of(rc));
		return rc;
	}
	sbm_clear(&r->fine);
	sbm_clear(&r->cmap);
	r->open_flags = 0;
	if (id_out)
		rct_id_format(&r->guid, r->seq, id_out);
	set_win32(win32, 0);
	return 0;
}

/* ---- query -----------------------------------------------------------------------------------*/

/* One input of the merge: the runs of a sealed epoch, or the open epoch's bitmap (fine, or
 * coarse scaled to G-blocks). `s`/`e` is its current run in G-blocks; s == UINT64_MAX when it
 * has no more runs before the window end. */
struct qsrc {
	uint64_t s, e;
	const uint64_t *runs; /* sealed: remaining runs */
	size_t i, n;
	const struct sbm *m; /* open: bitmap and the bitmap position after the current run */
	uint64_t pos, scale;
};

static void qsrc_advance(const struct rct *r, struct qsrc *q, uint64_t end_block)
{
	if (q->runs) {
		if (q->i < q->n) {
			q->s = q->runs[2 * q->i];
			q->e = q->runs[2 * q->i + 1];
			q->i++;
		} else {
			q->s = UINT64_MAX;
		}
	} else {
		uint64_t s = sbm_next_set(q->m, q->pos);
		if (s >= q->m->nbits || s * q->scale >= end_block) {
			q->s = UINT64_MAX;
		} else {
			uint64_t e = sbm_next_clear(q->m, s);
			q->pos = e;
			q->s = s * q->scale;
			q->e = e * q->scale < r->nblocks ? e * q->scale : r->nblocks;
		}
	}
	if (q->s >= end_block)
		q->s = UINT64_MAX;
}

/* Binary min-heap of sources keyed by the start of their current run. */
struct qheap {
	struct qsrc **h;
	size_t n;
};

static void heap_push(struct qheap *hp, struct qsrc *q)
{
	size_t i = hp->n++;
	while (i > 0 && hp->h[(i - 1) / 2]->s > q->s) {
		hp->h[i] = hp->h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	hp->h[i] = q;
}

static struct qsrc *heap_pop(struct qheap *hp)
{
	struct qsrc *top = hp->h[0], *last = hp->h[--hp->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= hp->n)
			break;
		if (c + 1 < hp->n && hp->h[c + 1]->s < hp->h[c]->s)
			c++;
		if (hp->h[c]->s >= last->s)
			break;
		hp->h[i] = hp->h[c];
		i = c;
	}
	if (hp->n)
		hp->h[i] = last;
	return top;
}

/* The next maximal run of the union, in G-blocks; false when there is none. */
static bool heap_next_union(const struct rct *r, struct qheap *hp, uint64_t end_block,
			    uint64_t *s, uint64_t *e)
{
	if (!hp->n)
		return false;
	struct qsrc *q = heap_pop(hp);
	*s = q->s;
	*e = q->e;
	for (;;) {
		qsrc_advance(r, q, end_block);
		if (q->s != UINT64_MAX)
			heap_push(hp, q);
		if (!hp->n || hp->h[0]->s > *e)
			return true;
		q = heap_pop(hp);
		if (q->e > *e)
			*e = q->e;
	}
}

/* Checks since/upto against the state; fills *since_seq. */
static int check_range(const struct rct *r, const char *since_id, uint64_t upto,
		       uint32_t *since_seq, uint32_t *win32)
{
	struct hv_guid g;
	uint32_t s;
	char cur[RCT_ID_STRLEN + 1];
	if (rct_id_parse(since_id, &g, &s)) {
		set_win32(win32, RCT_WIN32_INVALID_CHANGE_TRACKING_ID);
		return HV_EINVAL;
	}
	if (!r->enabled) {
		set_win32(win32, RCT_WIN32_CHANGE_TRACKING_DISABLED);
		return hv_err(HV_EUNSUPPORTED, "%s: change tracking is disabled on %s", since_id,
			      r->path);
	}
	set_win32(win32, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
	rct_id_format(&r->guid, r->seq, cur);
	if (!hv_guid_eq(&g, &r->guid))
		return hv_err(HV_ENOTFOUND,
			      "%s: tracking GUID differs from the disk's (most recent id %s): "
			      "tracking was reset",
			      since_id, cur);
	if (s > r->seq)
		return hv_err(HV_ENOTFOUND,
			      "%s: sequence %u is newer than the disk's most recent id %u",
			      since_id, s, r->seq);
	uint64_t top = upto == RCT_UPTO_LIVE ? r->seq : upto;
	if (upto != RCT_UPTO_LIVE && upto > r->seq)
		return hv_err(HV_ENOTFOUND,
			      "%s: query up to sequence %llu, newer than the disk's most recent "
			      "id %u",
			      since_id, (unsigned long long)upto, r->seq);
	if (s > top)
		return hv_err(HV_ENOTFOUND, "%s: sequence %u is newer than the checkpoint's %llu",
			      since_id, s, (unsigned long long)top);
	for (uint64_t e = (uint64_t)s + 1; e <= top; e++)
		if (r->epochs[e - 1].flags & RCT_EPOCH_LOST)
			return hv_err(HV_ENOTFOUND,
				      "%s: epoch %llu lost a write (out of memory); no changes "
				      "can be reported across it",
				      since_id, (unsigned long long)e);
	if (upto == RCT_UPTO_LIVE && (r->open_flags & RCT_EPOCH_LOST))
		return hv_err(HV_ENOTFOUND,
			      "%s: the open epoch lost a write (out of memory); no changes can be "
			      "reported across it",
			      since_id);
	*since_seq = s;
	set_win32(win32, 0);
	return 0;
}

/* First run of `ep` that ends after block b. */
static size_t first_run_after(const struct rct_epoch *ep, uint64_t b)
{
	size_t lo = 0, hi = ep->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ep->runs[2 * mid + 1] > b)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int rct_query(const struct rct *r, const char *since_id, uint64_t upto, uint64_t byte_offset,
	      uint64_t byte_length, struct rct_range *ranges, size_t capacity, size_t *count,
	      uint64_t *processed, uint32_t *win32)
{
	uint32_t since = 0;
	int rc = check_range(r, since_id, upto, &since, win32);
	if (rc)
		return rc;
	set_win32(win32, RCT_WIN32_INVALID_PARAMETER);
	if (!count || !processed || (capacity && !ranges))
		return hv_err(HV_EINVAL, "%s: query: count, processed and ranges are required",
			      r->path);
	if (byte_length > UINT64_MAX - byte_offset)
		return hv_err(HV_EINVAL, "%s: query window [%llu, +%llu) overflows", r->path,
			      (unsigned long long)byte_offset, (unsigned long long)byte_length);
	if (capacity == 0 && byte_length > 0)
		return hv_err(HV_EINVAL, "%s: query: range capacity is 0", r->path);
	*count = 0;
	*processed = byte_length;
	set_win32(win32, 0);
	uint64_t wend = byte_offset + byte_length;
	if (wend > r->size)
		wend = r->size;
	if (byte_offset >= wend)
		return 0;
	uint64_t b0 = byte_offset >> r->gshift, b1 = ((wend - 1) >> r->gshift) + 1;
	uint64_t top = upto == RCT_UPTO_LIVE ? r->seq : upto;
	size_t nsrc = (size_t)(top - since) + (upto == RCT_UPTO_LIVE);
	struct qsrc *src = calloc(nsrc ? nsrc : 1, sizeof *src);
	struct qheap hp = {calloc(nsrc ? nsrc : 1, sizeof *hp.h), 0};
	if (!src || !hp.h) {
		rc = hv_err(HV_ENOMEM, "%s: out of memory for a query over %zu epochs", r->path,
			    nsrc);
		set_win32(win32, RCT_WIN32_NOT_ENOUGH_MEMORY);
		goto out;
	}
	size_t k = 0;
	for (uint64_t e = (uint64_t)since + 1; e <= top; e++) {
		const struct rct_epoch *ep = &r->epochs[e - 1];
		size_t i = first_run_after(ep, b0);
		if (i == ep->n)
			continue;
		src[k] = (struct qsrc){.runs = ep->runs + 2 * i, .n = ep->n - i};
		qsrc_advance(r, &src[k], b1);
		if (src[k].s != UINT64_MAX)
			heap_push(&hp, &src[k]);
		k++;
	}
	if (upto == RCT_UPTO_LIVE) {
		bool coarse = r->open_flags & RCT_EPOCH_COARSE;
		src[k] = (struct qsrc){.m = coarse ? &r->cmap : &r->fine,
				       .scale = coarse ? r->ratio : 1,
				       .pos = coarse ? b0 / r->ratio : b0};
		qsrc_advance(r, &src[k], b1);
		if (src[k].s != UINT64_MAX)
			heap_push(&hp, &src[k]);
	}
	uint64_t s, e;
	size_t n = 0;
	while (heap_next_union(r, &hp, b1, &s, &e)) {
		if (n == capacity) {
			*processed = ranges[n - 1].offset + ranges[n - 1].length - byte_offset;
			break;
		}
		uint64_t lo = s << r->gshift, hi = e << r->gshift;
		if (lo < byte_offset)
			lo = byte_offset;
		if (hi > wend)
			hi = wend;
		ranges[n++] = (struct rct_range){lo, hi - lo};
	}
	*count = n;
out:
	free(src);
	free(hp.h);
	return rc;
}

int rct_most_recent_id(const struct rct *r, uint64_t upto, char *out, uint32_t *win32)
{
	if (!r->enabled) {
		set_win32(win32, RCT_WIN32_CHANGE_TRACKING_DISABLED);
		return hv_err(HV_EUNSUPPORTED, "%s: change tracking is disabled", r->path);
	}
	if (upto != RCT_UPTO_LIVE && upto > r->seq) {
		set_win32(win32, RCT_WIN32_MISSING_CHANGE_TRACKING_INFORMATION);
		return hv_err(HV_ENOTFOUND, "%s: sequence %llu is newer than the most recent %u",
			      r->path, (unsigned long long)upto, r->seq);
	}
	rct_id_format(&r->guid, upto == RCT_UPTO_LIVE ? r->seq : (uint32_t)upto, out);
	set_win32(win32, 0);
	return 0;
}

/* ---- events ----------------------------------------------------------------------------------*/

static int check_guid(const struct rct *r, const struct hv_guid *g, const char *what)
{
	if (!g || hv_guid_is_zero(g))
		return hv_err(HV_EINVAL, "%s: %s needs a non-zero tracking GUID", r->path, what);
	return 0;
}

int rct_reset(struct rct *r, const struct hv_guid *new_guid)
{
	int rc = check_guid(r, new_guid, "reset");
	if (rc)
		return rc;
	drop_epochs(r);
	r->guid = *new_guid;
	return 0;
}

int rct_set_enabled(struct rct *r, bool enabled, const struct hv_guid *new_guid)
{
	if (enabled == r->enabled)
		return 0;
	if (enabled) {
		int rc = check_guid(r, new_guid, "enabling change tracking");
		if (rc)
			return rc;
		r->guid = *new_guid;
	}
	drop_epochs(r);
	r->enabled = enabled;
	return 0;
}

int rct_resize(struct rct *r, uint64_t new_size, const struct hv_guid *new_guid)
{
	int rc = check_guid(r, new_guid, "resize");
	if (rc)
		return rc;
	const char *why = rct_geometry_problem(new_size, r->gran, r->coarse);
	if (why)
		return hv_err(HV_EINVAL, "%s: resize to %llu: %s", r->path,
			      (unsigned long long)new_size, why);
	struct sbm fine = {0}, cmap = {0};
	uint64_t nblocks = (new_size + r->gran - 1) >> r->gshift;
	uint64_t ncoarse = (new_size + r->coarse - 1) / r->coarse;
	if (sbm_init(&fine, nblocks) || sbm_init(&cmap, ncoarse)) {
		sbm_free(&fine);
		sbm_free(&cmap);
		return hv_err(HV_ENOMEM, "%s: out of memory resizing to %llu", r->path,
			      (unsigned long long)new_size);
	}
	drop_epochs(r);
	sbm_free(&r->fine);
	sbm_free(&r->cmap);
	r->fine = fine;
	r->cmap = cmap;
	r->size = new_size;
	r->nblocks = nblocks;
	r->ncoarse = ncoarse;
	r->guid = *new_guid;
	return 0;
}

void rct_crash(struct rct *r)
{
	sbm_clear(&r->fine);
	if (r->enabled)
		r->open_flags |= RCT_EPOCH_COARSE;
}

/* ---- getters ---------------------------------------------------------------------------------*/

uint64_t rct_virtual_size(const struct rct *r) { return r->size; }
uint32_t rct_granularity(const struct rct *r) { return r->gran; }
uint32_t rct_coarse_granularity(const struct rct *r) { return r->coarse; }
struct hv_guid rct_guid(const struct rct *r) { return r->guid; }
uint32_t rct_seq(const struct rct *r) { return r->seq; }
bool rct_enabled(const struct rct *r) { return r->enabled; }
uint64_t rct_generation(const struct rct *r) { return r->generation; }
const char *rct_path(const struct rct *r) { return r->path; }

bool rct_epoch_coarse(const struct rct *r, uint32_t seq)
{
	if (seq >= 1 && seq <= r->seq)
		return r->epochs[seq - 1].flags & RCT_EPOCH_COARSE;
	if ((uint64_t)seq == (uint64_t)r->seq + 1)
		return r->open_flags & RCT_EPOCH_COARSE;
	return false;
}
