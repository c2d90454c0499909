/*
 * test_virtdisk — libvirtdisk (sim/virtdisk/virtdisk.c) driven only through the Windows API it
 * implements (hyperv/virtdisk/virtdisk.h), on simulated hosts built with sim/host, and judged by
 * oracles that do not share its code:
 *   - what the host knows (the disk and chain tables, host_rct_query, host_rct_state),
 *   - the VHDX files themselves, opened independently with hyperv/vhdx (vhdx_get_info, vhdx_read),
 *   - the ground truth of what the guest wrote (truth_changed_between) and an in-memory model of
 *     the disk replayed from the same seeded workload stream (sim/workload),
 *   - the audit table in host.db (every call recorded, client mistakes flagged).
 * Covered: every function libvirtdisk implements (OpenVirtualDisk, CloseHandle,
 * GetVirtualDiskInformation in every version, SetVirtualDiskInformation, QueryChangesVirtualDisk,
 * Attach/DetachVirtualDisk, GetVirtualDiskPhysicalPath, ReadFile, WriteFile, GetOverlappedResult,
 * CancelIoEx, Get/SetLastError), each error path of virtdisk.md A2, bogus and stale HANDLEs, and
 * two threads sharing the handle table. Tests marked "Regression (was a bug)" pin fixes.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../../hyperv/vhdx/vhdx.h"
#include "../../../hyperv/virtdisk/initguid.h"
#include "../../../hyperv/virtdisk/virtdisk.h"
#include "../../host/host.h"
#include "../../rct/rct.h"
#include "../../truth/truth.h"
#include "../../workload/workload.h"

#define MIB (1024ull * 1024ull)
#define G (16u * 1024u) /* RCT granularity of the test hosts: many small ranges */

static char tmpl[] = "/tmp/test_virtdisk.XXXXXX";
static char *root;

static int setup_all(void **s)
{
	(void)s;
	root = mkdtemp(tmpl);
	setenv("HVSIM_NOSYNC", "1", 1);
	return root ? 0 : -1;
}

static int teardown_all(void **s)
{
	(void)s;
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd);
}

/* printf into one of 16 rotating buffers (valid for the next 15 calls). */
static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...)
{
	static _Thread_local char buf[16][1200];
	static _Thread_local int k;
	char *b = buf[k++ % 16];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, 1200, fmt, ap);
	va_end(ap);
	return b;
}

/* ASCII to a NUL-terminated UTF-16 string in one of 8 rotating buffers. */
static WCHAR *W(const char *s)
{
	static _Thread_local WCHAR buf[8][1400];
	static _Thread_local int k;
	WCHAR *w = buf[k++ % 8];
	size_t i = 0;
	for (; s[i] && i < 1399; i++)
		w[i] = (unsigned char)s[i];
	w[i] = 0;
	return w;
}

/* UTF-16 (ASCII content) back to a C string. */
static void U(const WCHAR *w, char *out, size_t size)
{
	size_t i = 0;
	for (; w[i] && i + 1 < size; i++)
		out[i] = w[i] < 0x80 ? (char)w[i] : '?';
	out[i] = 0;
}

static void guid_text(const GUID *g, char out[37])
{
	snprintf(out, 37, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", g->Data1, g->Data2,
	         g->Data3, g->Data4[0], g->Data4[1], g->Data4[2], g->Data4[3], g->Data4[4],
	         g->Data4[5], g->Data4[6], g->Data4[7]);
}

/* ---- hosts ------------------------------------------------------------------------------------*/

struct model {
	uint8_t *b;
	uint64_t size;
	uint32_t sector;
};

struct env {
	char dir[512];
	struct host *h;
	int64_t vm;
	char vm_name[64];
	int ndisks;
	int64_t disk[2];
	struct model m[2];
};

/* A host with one running VM `vm_name`, disks from `specs` (1 or 2), as $HVSIM_HOST. */
static void env_new(struct env *e, const char *name, uint64_t seed, const char *vm_name,
                    const char *spec0, const char *spec1)
{
	memset(e, 0, sizeof *e);
	snprintf(e->dir, sizeof e->dir, "%s/%s", root, name);
	struct host_create_opts o = {.seed = seed, .rct_granularity = G, .nosync = true};
	if (host_create(e->dir, &o) || host_open(e->dir, HOST_OPEN_NOSYNC, &e->h))
		fail_msg("host %s: %s", e->dir, hv_errmsg());
	setenv("HVSIM_HOST", e->dir, 1);
	struct host_disk_spec d[2];
	assert_int_equal(host_disk_spec_parse(spec0, &d[0]), 0);
	e->ndisks = 1;
	if (spec1) {
		assert_int_equal(host_disk_spec_parse(spec1, &d[1]), 0);
		e->ndisks = 2;
	}
	snprintf(e->vm_name, sizeof e->vm_name, "%s", vm_name);
	if (host_vm_create(e->h, vm_name, d, (size_t)e->ndisks, &e->vm))
		fail_msg("vm: %s", hv_errmsg());
	for (int i = 0; i < e->ndisks; i++) {
		if (host_disk_find(e->h, e->vm, P("%d", i), &e->disk[i]))
			fail_msg("disk %d: %s", i, hv_errmsg());
		e->m[i].size = d[i].size;
		e->m[i].sector = d[i].logical_sector ? d[i].logical_sector : 512;
		e->m[i].b = calloc(1, d[i].size);
		assert_non_null(e->m[i].b);
	}
}

static void env_free(struct env *e)
{
	for (int i = 0; i < e->ndisks; i++)
		free(e->m[i].b);
	host_close(e->h);
	e->h = NULL;
}

static int model_sink(void *ctx, const struct wl_op *op, const uint8_t *data)
{
	struct model *m = ctx;
	if (op->zero)
		memset(m->b + op->offset, 0, op->length);
	else
		memcpy(m->b + op->offset, data, op->length);
	return 0;
}

/* Guest writes through the host, replayed into the per-disk models from the same op stream. */
static void guest_write(struct env *e, enum wl_pattern pat, uint64_t bytes, uint64_t seed)
{
	struct wl_params p;
	wl_params_init(&p, pat, 1, bytes, seed);
	p.io_max = 256 * 1024;
	if (host_vm_write(e->h, e->vm, -1, &p, NULL))
		fail_msg("host_vm_write: %s", hv_errmsg());
	for (int i = 0; i < e->ndisks; i++) {
		struct wl_params q = p;
		q.disk_size = e->m[i].size;
		q.seed = host_workload_seed(seed, i);
		if (e->m[i].sector > q.sector)
			q.sector = e->m[i].sector;
		assert_int_equal(wl_run(&q, model_sink, &e->m[i], NULL), 0);
	}
}

static int64_t q_int(struct env *e, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(host_db(e->h), sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(host_db(e->h)));
	int64_t v = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* First column of the first row as a static string ("" when no row or NULL). */
static const char *q_text(struct env *e, const char *sql)
{
	static _Thread_local char out[8][1200];
	static _Thread_local int k;
	char *o = out[k++ % 8];
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(host_db(e->h), sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(host_db(e->h)));
	o[0] = 0;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(o, 1200, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return o;
}

/* Folder-relative path of chain file `depth` of disk slot i (depth -1: the leaf). */
static const char *chain_rel(struct env *e, int i, int depth)
{
	if (depth < 0)
		return q_text(
		    e, P("SELECT path FROM chain WHERE disk_id=%lld ORDER BY depth DESC LIMIT 1",
		         (long long)e->disk[i]));
	return q_text(e, P("SELECT path FROM chain WHERE disk_id=%lld AND depth=%d",
	                   (long long)e->disk[i], depth));
}

static int leaf_depth(struct env *e, int i)
{
	return (int)q_int(
	    e, P("SELECT max(depth) FROM chain WHERE disk_id=%lld", (long long)e->disk[i]));
}

/* The Windows form of a folder-relative path, built here (not by the host): C:\Hyper-V\ + rel. */
static const char *win_of(const char *rel)
{
	char *p = (char *)P("C:\\Hyper-V\\%s", rel);
	for (char *c = p; *c; c++)
		if (*c == '/')
			*c = '\\';
	return p;
}

static const char *abs_of(struct env *e, const char *rel)
{
	return P("%s/%s", e->dir, rel);
}

/* The base disk of slot 0 of VM `vm`, spelled as WMI shows it. */
static const char *base_win(struct env *e)
{
	return P("C:\\Hyper-V\\%s\\Virtual Hard Disks\\%s.vhdx", e->vm_name, e->vm_name);
}

/* Reads a whole chain file with hyperv/vhdx (independent of libvirtdisk). */
static uint8_t *vhdx_read_all(struct env *e, const char *rel, uint64_t size)
{
	struct vhdx_file *f;
	if (vhdx_open(abs_of(e, rel), VHDX_OPEN_RDONLY, &f))
		fail_msg("vhdx_open %s: %s", rel, hv_errmsg());
	uint8_t *b = malloc(size);
	assert_non_null(b);
	assert_int_equal(vhdx_read(f, b, 0, size), 0);
	vhdx_close(f);
	return b;
}

/* ---- audit ------------------------------------------------------------------------------------*/

static int64_t audit_rows(struct env *e)
{
	return q_int(e, "SELECT count(*) FROM audit WHERE api='virtdisk'");
}

static const char *rc_text(DWORD rc)
{
	return rc ? P("0x%08X", rc) : "0";
}

/* The newest virtdisk audit row is `call` with result `rc` and mentions `arg` (may be NULL). */
static void expect_audit(struct env *e, const char *call, DWORD rc, const char *arg)
{
	const char *c =
	    q_text(e, "SELECT call FROM audit WHERE api='virtdisk' ORDER BY seq DESC LIMIT 1");
	const char *r =
	    q_text(e, "SELECT result FROM audit WHERE api='virtdisk' ORDER BY seq DESC LIMIT 1");
	const char *a =
	    q_text(e, "SELECT args FROM audit WHERE api='virtdisk' ORDER BY seq DESC LIMIT 1");
	if (strcmp(c, call) || strcmp(r, rc_text(rc)) || (arg && !strstr(a, arg)))
		fail_msg("last audit row is %s -> %s (%s); expected %s -> %s mentioning %s", c, r,
		         a, call, rc_text(rc), arg ? arg : "-");
}

/* ---- opening ----------------------------------------------------------------------------------*/

static VIRTUAL_STORAGE_TYPE vst_of(ULONG device, const GUID *vendor)
{
	VIRTUAL_STORAGE_TYPE v = {.DeviceId = device};
	v.VendorId = *vendor;
	return v;
}

/* V2 open with access NONE, as every modern caller does. */
static DWORD open_v2(const char *path, BOOL info_only, BOOL read_only, HANDLE *out)
{
	VIRTUAL_STORAGE_TYPE vst =
	    vst_of(VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, &VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN);
	OPEN_VIRTUAL_DISK_PARAMETERS op = {.Version = OPEN_VIRTUAL_DISK_VERSION_2};
	op.Version2.GetInfoOnly = info_only;
	op.Version2.ReadOnly = read_only;
	*out = NULL;
	return OpenVirtualDisk(&vst, W(path), VIRTUAL_DISK_ACCESS_NONE, OPEN_VIRTUAL_DISK_FLAG_NONE,
	                       &op, out);
}

static DWORD open_ro(const char *path, HANDLE *out)
{
	return open_v2(path, FALSE, TRUE, out);
}

/* V1 open with an access mask and RWDepth (rwdepth < 0: Parameters NULL). */
static DWORD open_v1(const char *path, unsigned mask, int rwdepth, HANDLE *out)
{
	VIRTUAL_STORAGE_TYPE vst =
	    vst_of(VIRTUAL_STORAGE_TYPE_DEVICE_VHDX, &VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT);
	OPEN_VIRTUAL_DISK_PARAMETERS op = {.Version = OPEN_VIRTUAL_DISK_VERSION_1};
	op.Version1.RWDepth = rwdepth < 0 ? 0 : (ULONG)rwdepth;
	*out = NULL;
	return OpenVirtualDisk(&vst, W(path), (VIRTUAL_DISK_ACCESS_MASK)mask,
	                       OPEN_VIRTUAL_DISK_FLAG_NONE, rwdepth < 0 ? NULL : &op, out);
}

static HANDLE must_open_ro(const char *path)
{
	HANDLE hd;
	DWORD rc = open_ro(path, &hd);
	if (rc)
		fail_msg("open %s: 0x%08X", path, rc);
	assert_non_null(hd);
	return hd;
}

static void must_close(HANDLE hd)
{
	if (!CloseHandle(hd))
		fail_msg("CloseHandle: %u", GetLastError());
}

/* ---- information ------------------------------------------------------------------------------*/

union infobuf {
	GET_VIRTUAL_DISK_INFO i;
	uint8_t b[8192];
};

static DWORD get_info(HANDLE hd, GET_VIRTUAL_DISK_INFO_VERSION ver, union infobuf *buf, ULONG cap,
                      ULONG *size_out, ULONG *used)
{
	memset(buf, 0xCC, sizeof *buf);
	buf->i.Version = ver;
	ULONG sz = cap;
	DWORD rc = GetVirtualDiskInformation(hd, &sz, &buf->i, used);
	if (size_out)
		*size_out = sz;
	return rc;
}

static DWORD must_info(HANDLE hd, GET_VIRTUAL_DISK_INFO_VERSION ver, union infobuf *buf)
{
	DWORD rc = get_info(hd, ver, buf, sizeof *buf, NULL, NULL);
	if (rc)
		fail_msg("GetVirtualDiskInformation(%d): 0x%08X", (int)ver, rc);
	assert_int_equal(buf->i.Version, ver);
	return rc;
}

static void most_recent_id(HANDLE hd, char *out, size_t size, BOOL *enabled, BOOL *newer)
{
	union infobuf b;
	must_info(hd, GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE, &b);
	U(b.i.ChangeTrackingState.MostRecentId, out, size);
	if (enabled)
		*enabled = b.i.ChangeTrackingState.Enabled;
	if (newer)
		*newer = b.i.ChangeTrackingState.NewerChanges;
}

/* ---- change queries ---------------------------------------------------------------------------*/

struct ranges {
	uint64_t off[8192], len[8192];
	size_t n;
	int calls;
	int partial; /* calls that returned less than the rest of the window */
};

/* The QueryChangesVirtualDisk loop of virtdisk.md A2.4 over [off, off+len) with `capacity` ranges
 * per call; checks every page's contract on the way. ERROR_MORE_DATA is accepted on partial pages
 * when more_data is set (and required then). Returns the first failure code. */
static DWORD query_loop(HANDLE hd, const char *id, uint64_t off, uint64_t len, ULONG capacity,
                        bool more_data, struct ranges *out)
{
	out->n = 0;
	out->calls = 0;
	out->partial = 0;
	QUERY_CHANGES_VIRTUAL_DISK_RANGE *r = calloc(capacity, sizeof *r);
	uint64_t cur = off, end = off + len, last_end = 0;
	DWORD rc = 0;
	while (cur < end) {
		ULONG count = capacity;
		ULONG64 processed = 0xdeadbeef;
		memset(r, 0xAB, capacity * sizeof *r);
		rc = QueryChangesVirtualDisk(hd, W(id), cur, end - cur,
		                             QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE, r, &count,
		                             &processed);
		out->calls++;
		bool partial = processed < end - cur;
		if (rc == ERROR_MORE_DATA && more_data && partial)
			rc = 0;
		else if (partial && more_data && rc == 0)
			fail_msg("partial page at %llu answered ERROR_SUCCESS with "
			         "more_data_on_partial=1",
			         (unsigned long long)cur);
		if (rc)
			break;
		out->partial += partial;
		assert_true(count <= capacity);
		assert_true(processed > 0);
		assert_true(processed <= end - cur);
		if (partial) /* a short page ends exactly where its last range ends */
			assert_true(count > 0 &&
			            r[count - 1].ByteOffset + r[count - 1].ByteLength ==
			                cur + processed);
		for (ULONG i = 0; i < count; i++) {
			assert_true(r[i].ByteLength > 0);
			assert_int_equal(r[i].Reserved, 0);
			assert_true(r[i].ByteOffset >= cur);
			assert_true(r[i].ByteOffset + r[i].ByteLength <= cur + processed);
			assert_true(r[i].ByteOffset >= last_end); /* sorted, not overlapping */
			if (out->n && r[i].ByteOffset == last_end) {
				/* pages may split a run only at a page boundary */
				assert_int_equal(i, 0);
				out->len[out->n - 1] += r[i].ByteLength;
			} else {
				assert_true(out->n < 8192);
				out->off[out->n] = r[i].ByteOffset;
				out->len[out->n] = r[i].ByteLength;
				out->n++;
			}
			last_end = r[i].ByteOffset + r[i].ByteLength;
		}
		cur += processed;
	}
	free(r);
	return rc;
}

/* The host's own answer over the window in one call (oracle). */
static void host_answer(struct env *e, int slot, int depth, const char *id, uint64_t off,
                        uint64_t len, struct ranges *out)
{
	static struct host_range r[8192];
	uint32_t n, w32;
	uint64_t done;
	if (host_rct_query(e->h, e->disk[slot], depth, id, off, len, r, 8192, &n, &done, &w32))
		fail_msg("host_rct_query: %s (0x%08X)", hv_errmsg(), w32);
	assert_int_equal(done, len);
	out->n = n;
	for (uint32_t i = 0; i < n; i++) {
		out->off[i] = r[i].offset;
		out->len[i] = r[i].length;
	}
}

static void assert_same_ranges(const struct ranges *a, const struct ranges *b)
{
	if (a->n != b->n)
		fail_msg("%zu ranges vs %zu", a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		if (a->off[i] != b->off[i] || a->len[i] != b->len[i])
			fail_msg("range %zu: [%llu,+%llu) vs [%llu,+%llu)", i,
			         (unsigned long long)a->off[i], (unsigned long long)a->len[i],
			         (unsigned long long)b->off[i], (unsigned long long)b->len[i]);
}

struct blockset {
	uint8_t *set;
};

static int truth_cb(void *ctx, uint64_t block)
{
	((struct blockset *)ctx)->set[block] = 1;
	return 0;
}

/* Ranges of a G-aligned window equal, block for block, what the truth says was written between
 * the two points inside the window. Returns the number of changed blocks. */
static size_t assert_ranges_are_truth(struct env *e, int slot, const struct ranges *r, int64_t pa,
                                      int64_t pb, uint64_t off, uint64_t len)
{
	uint64_t nb = (e->m[slot].size + G - 1) / G;
	uint8_t *got = calloc(1, nb), *want = calloc(1, nb);
	for (size_t i = 0; i < r->n; i++)
		for (uint64_t b = r->off[i] / G; b * G < r->off[i] + r->len[i]; b++)
			got[b] = 1;
	struct blockset bs = {want};
	assert_int_equal(truth_changed_between(host_db(e->h), e->disk[slot], pa, pb, truth_cb, &bs),
	                 0);
	size_t changed = 0;
	for (uint64_t b = 0; b < nb; b++) {
		bool in = b * G >= off && b * G < off + len;
		if (!in)
			want[b] = 0;
		if (got[b] != want[b])
			fail_msg("block %llu (offset %llu): answer %d, truth %d",
			         (unsigned long long)b, (unsigned long long)(b * G), got[b],
			         want[b]);
		changed += want[b];
	}
	free(got);
	free(want);
	return changed;
}

/* ---- reading ----------------------------------------------------------------------------------*/

static HANDLE open_attached_nlh(const char *path)
{
	HANDLE hd = must_open_ro(path);
	DWORD rc = AttachVirtualDisk(
	    hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY | ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST,
	    0, NULL, NULL);
	if (rc)
		fail_msg("attach %s: 0x%08X", path, rc);
	return hd;
}

/* Reads the whole disk through ReadFile in `chunk` pieces, as bareos does. */
static uint8_t *read_all(HANDLE hd, uint64_t size, DWORD chunk)
{
	uint8_t *b = malloc(size);
	assert_non_null(b);
	for (uint64_t off = 0; off < size; off += chunk) {
		OVERLAPPED ov = {0};
		ov.Offset = (DWORD)off;
		ov.OffsetHigh = (DWORD)(off >> 32);
		DWORD n = chunk, got = 0;
		if (off + n > size)
			n = (DWORD)(size - off);
		if (!ReadFile(hd, b + off, n, &got, &ov))
			fail_msg("ReadFile at %llu: %u", (unsigned long long)off, GetLastError());
		assert_int_equal(got, n);
	}
	return b;
}

static void assert_bytes_equal(const uint8_t *a, const uint8_t *b, uint64_t size, const char *what)
{
	if (memcmp(a, b, size)) {
		uint64_t i = 0;
		while (a[i] == b[i])
			i++;
		fail_msg("%s: differs at byte %llu", what, (unsigned long long)i);
	}
}

/* ======================================================================================= tests */

/* ---- OpenVirtualDisk: parameters ------------------------------------------------------------ */

static void test_open_invalid_parameters(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "params", 1, "alpha", "16MiB", NULL);
	const char *path = base_win(&e);
	VIRTUAL_STORAGE_TYPE vst =
	    vst_of(VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, &VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN);
	OPEN_VIRTUAL_DISK_PARAMETERS op = {.Version = OPEN_VIRTUAL_DISK_VERSION_2};
	op.Version2.ReadOnly = TRUE;
	HANDLE hd = (HANDLE)0x1;
	/* NULLs */
	assert_int_equal(OpenVirtualDisk(NULL, W(path), 0, 0, &op, &hd), ERROR_INVALID_PARAMETER);
	assert_int_equal(OpenVirtualDisk(&vst, NULL, 0, 0, &op, &hd), ERROR_INVALID_PARAMETER);
	assert_int_equal(OpenVirtualDisk(&vst, W(path), 0, 0, &op, NULL), ERROR_INVALID_PARAMETER);
	/* mask bits outside ACCESS_ALL (V1, where a mask is legal) */
	assert_int_equal(open_v1(path, VIRTUAL_DISK_ACCESS_ALL | 0x00400000u, 1, &hd),
	                 ERROR_INVALID_PARAMETER);
	assert_int_equal(open_v1(path, VIRTUAL_DISK_ACCESS_GET_INFO | 0x1u, 1, &hd),
	                 ERROR_INVALID_PARAMETER);
	assert_int_equal(open_v1(path, 0x80000000u, 1, &hd), ERROR_INVALID_PARAMETER);
	/* versions: UNSPECIFIED and anything past 3 */
	op.Version = OPEN_VIRTUAL_DISK_VERSION_UNSPECIFIED;
	assert_int_equal(OpenVirtualDisk(&vst, W(path), 0, 0, &op, &hd), ERROR_INVALID_PARAMETER);
	op.Version = (OPEN_VIRTUAL_DISK_VERSION)4;
	assert_int_equal(OpenVirtualDisk(&vst, W(path), 0, 0, &op, &hd), ERROR_INVALID_PARAMETER);
	op.Version = (OPEN_VIRTUAL_DISK_VERSION)-1;
	assert_int_equal(OpenVirtualDisk(&vst, W(path), 0, 0, &op, &hd), ERROR_INVALID_PARAMETER);
	/* V2/V3 with a mask other than NONE (strict, the default) */
	op.Version = OPEN_VIRTUAL_DISK_VERSION_2;
	assert_int_equal(OpenVirtualDisk(&vst, W(path), VIRTUAL_DISK_ACCESS_GET_INFO, 0, &op, &hd),
	                 ERROR_INVALID_PARAMETER);
	assert_null(hd);
	op.Version = OPEN_VIRTUAL_DISK_VERSION_3;
	assert_int_equal(OpenVirtualDisk(&vst, W(path), VIRTUAL_DISK_ACCESS_ALL, 0, &op, &hd),
	                 ERROR_INVALID_PARAMETER);
	expect_audit(&e, "OpenVirtualDisk", ERROR_INVALID_PARAMETER, "alpha.vhdx");
	/* ... accepted when the host is not strict */
	assert_int_equal(host_setting_set(e.h, "virtdisk.strict", "0"), 0);
	assert_int_equal(OpenVirtualDisk(&vst, W(path), VIRTUAL_DISK_ACCESS_GET_INFO, 0, &op, &hd),
	                 0);
	must_close(hd);
	assert_int_equal(host_setting_set(e.h, "virtdisk.strict", "1"), 0);
	/* a path that is not valid UTF-16 (lone surrogate), or absurdly long */
	WCHAR bad[64];
	memcpy(bad, W("C:\\Hyper-V\\x"), 13 * sizeof(WCHAR));
	bad[12] = 0xD800;
	bad[13] = 0;
	op.Version = OPEN_VIRTUAL_DISK_VERSION_2;
	assert_int_equal(OpenVirtualDisk(&vst, bad, 0, 0, &op, &hd), ERROR_INVALID_PARAMETER);
	WCHAR *longp = calloc(5000, sizeof(WCHAR));
	for (int i = 0; i < 4999; i++)
		longp[i] = 'a';
	assert_int_equal(OpenVirtualDisk(&vst, longp, 0, 0, &op, &hd), ERROR_INVALID_PARAMETER);
	free(longp);
	/* every documented open flag is accepted (virtdisk.md A2.2: the flag rule is stale) */
	for (unsigned f = 1; f <= 0x800; f <<= 1) {
		assert_int_equal(
		    OpenVirtualDisk(&vst, W(path), 0, (OPEN_VIRTUAL_DISK_FLAG)f, &op, &hd), 0);
		must_close(hd);
	}
	env_free(&e);
}

static void test_open_paths(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "paths", 2, "web-01", "16MiB", "8MiB");
	HANDLE hd;
	/* the Windows form WMI shows, in any case */
	assert_int_equal(open_ro(base_win(&e), &hd), 0);
	must_close(hd);
	assert_int_equal(open_ro("c:\\hyper-v\\WEB-01\\virtual hard disks\\Web-01.VHDX", &hd), 0);
	must_close(hd);
	assert_int_equal(open_ro("C:\\Hyper-V\\web-01\\Virtual Hard Disks\\web-01_1.vhdx", &hd), 0);
	union infobuf b;
	must_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b);
	assert_int_equal(b.i.Size.VirtualSize, 8 * MIB); /* the second disk, not the first */
	must_close(hd);
	/* an absolute POSIX path inside the host folder, even with HVSIM_HOST unset */
	unsetenv("HVSIM_HOST");
	assert_int_equal(open_ro(abs_of(&e, "web-01/Virtual Hard Disks/web-01.vhdx"), &hd), 0);
	expect_audit(&e, "OpenVirtualDisk", 0, "web-01.vhdx");
	must_close(hd);
	/* no host to resolve a Windows path in */
	assert_int_equal(open_ro(base_win(&e), &hd), ERROR_PATH_NOT_FOUND);
	assert_null(hd);
	setenv("HVSIM_HOST", P("%s/nothing-here", root), 1);
	assert_int_equal(open_ro(base_win(&e), &hd), ERROR_PATH_NOT_FOUND);
	mkdir(P("%s/empty-dir", root), 0777);
	setenv("HVSIM_HOST", P("%s/empty-dir", root), 1);
	assert_int_equal(open_ro(base_win(&e), &hd), ERROR_PATH_NOT_FOUND);
	/* a POSIX path in no host folder */
	assert_int_equal(open_ro("/nonexistent/dir/disk.vhdx", &hd), ERROR_PATH_NOT_FOUND);
	assert_int_equal(open_ro(P("%s/empty-dir/disk.vhdx", root), &hd), ERROR_PATH_NOT_FOUND);
	setenv("HVSIM_HOST", e.dir, 1);
	/* files the host does not have */
	int64_t before = audit_rows(&e);
	assert_int_equal(open_ro("C:\\Hyper-V\\web-01\\Virtual Hard Disks\\nope.vhdx", &hd),
	                 ERROR_FILE_NOT_FOUND);
	assert_null(hd);
	expect_audit(&e, "OpenVirtualDisk", ERROR_FILE_NOT_FOUND, "nope.vhdx");
	assert_int_equal(audit_rows(&e), before + 1);
	assert_int_equal(open_ro("C:\\Hyper-V\\other-vm\\Virtual Hard Disks\\web-01.vhdx", &hd),
	                 ERROR_FILE_NOT_FOUND);
	assert_int_equal(open_ro(abs_of(&e, "web-01/Virtual Hard Disks/missing.vhdx"), &hd),
	                 ERROR_FILE_NOT_FOUND);
	/* files of the folder that are not virtual disks */
	assert_int_not_equal(open_ro(abs_of(&e, "host.db"), &hd), 0);
	assert_int_not_equal(
	    open_ro(abs_of(&e, "web-01/Virtual Hard Disks/web-01.vhdx.hvrct"), &hd), 0);
	assert_int_not_equal(open_ro("C:\\Hyper-V\\", &hd), 0);
	assert_int_not_equal(open_ro("", &hd), 0);
	assert_null(hd);
	env_free(&e);
}

/* Regression (was a bug): host_path_lookup promises "the Windows form under the storage root (any case, '\' or '/')"
 * and Windows accepts '/' as a separator, but `C:/Hyper-V/<vm>/Virtual Hard Disks/<d>.vhdx` is
 * ERROR_FILE_NOT_FOUND: the storage-root prefix is compared before '/' is normalised to '\'
 * (sim/host/host_rct.c:24, strncasecmp against "C:\Hyper-V\"). */
static void test_open_forward_slash_path(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "slash", 3, "vm", "8MiB", NULL);
	HANDLE hd;
	assert_int_equal(open_ro("C:\\Hyper-V\\vm/Virtual Hard Disks/vm.vhdx", &hd),
	                 0); /* mixed: root with '\' */
	must_close(hd);
	DWORD rc = open_ro("C:/Hyper-V/vm/Virtual Hard Disks/vm.vhdx", &hd);
	if (!rc)
		must_close(hd);
	env_free(&e);
	assert_int_equal(rc, 0);
}

static void test_open_storage_types(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "vst", 4, "alpha", "8MiB", NULL);
	const char *path = base_win(&e);
	OPEN_VIRTUAL_DISK_PARAMETERS op = {.Version = OPEN_VIRTUAL_DISK_VERSION_2};
	op.Version2.ReadOnly = TRUE;
	HANDLE hd;
	/* auto-detect with vendor UNKNOWN (bareos, WSL) or MICROSOFT (cloudbase), and explicit VHDX
	 */
	VIRTUAL_STORAGE_TYPE ok[] = {
	    vst_of(VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, &VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN),
	    vst_of(VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, &VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT),
	    vst_of(VIRTUAL_STORAGE_TYPE_DEVICE_VHDX, &VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT),
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		hd = NULL;
		assert_int_equal(OpenVirtualDisk(&ok[i], W(path), 0, 0, &op, &hd), 0);
		union infobuf b;
		must_info(hd, GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE, &b);
		assert_int_equal(b.i.VirtualStorageType.DeviceId, VIRTUAL_STORAGE_TYPE_DEVICE_VHDX);
		assert_memory_equal(&b.i.VirtualStorageType.VendorId,
		                    &VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT, sizeof(GUID));
		must_close(hd);
	}
	/* a VHDX file named as a VHD, an ISO or a VHD Set: a virtualization error, no handle */
	ULONG wrong[] = {VIRTUAL_STORAGE_TYPE_DEVICE_VHD, VIRTUAL_STORAGE_TYPE_DEVICE_ISO,
	                 VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET, 99};
	for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
		VIRTUAL_STORAGE_TYPE v = vst_of(wrong[i], &VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT);
		hd = (HANDLE)0x1;
		DWORD rc = OpenVirtualDisk(&v, W(path), 0, 0, &op, &hd);
		assert_int_equal(rc & 0xFFFF0000u, 0xC03A0000u);
		assert_null(hd);
		expect_audit(&e, "OpenVirtualDisk", rc, "alpha.vhdx");
	}
	VIRTUAL_STORAGE_TYPE vhd =
	    vst_of(VIRTUAL_STORAGE_TYPE_DEVICE_VHD, &VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT);
	assert_int_equal(OpenVirtualDisk(&vhd, W(path), 0, 0, &op, &hd), ERROR_VHD_FORMAT_UNKNOWN);
	/* an unknown vendor: no provider */
	GUID other = {0x12345678, 0x1234, 0x5678, {1, 2, 3, 4, 5, 6, 7, 8}};
	VIRTUAL_STORAGE_TYPE v = vst_of(VIRTUAL_STORAGE_TYPE_DEVICE_VHDX, &other);
	assert_int_equal(OpenVirtualDisk(&v, W(path), 0, 0, &op, &hd),
	                 ERROR_VIRTDISK_PROVIDER_NOT_FOUND);
	assert_null(hd);
	v.DeviceId = VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN;
	assert_int_equal(OpenVirtualDisk(&v, W(path), 0, 0, &op, &hd),
	                 ERROR_VIRTDISK_PROVIDER_NOT_FOUND);
	expect_audit(&e, "OpenVirtualDisk", ERROR_VIRTDISK_PROVIDER_NOT_FOUND, NULL);
	env_free(&e);
}

static void test_open_versions(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "versions", 5, "alpha", "8MiB", NULL);
	const char *path = base_win(&e);
	VIRTUAL_STORAGE_TYPE vst =
	    vst_of(VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, &VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT);
	HANDLE hd;
	union infobuf b;
	/* V3 (cloudbase) with a SnapshotId and a ResiliencyGuid: opaque, accepted */
	OPEN_VIRTUAL_DISK_PARAMETERS op = {.Version = OPEN_VIRTUAL_DISK_VERSION_3};
	op.Version3.ReadOnly = TRUE;
	op.Version3.ResiliencyGuid.Data1 = 7;
	op.Version3.SnapshotId.Data1 = 9;
	assert_int_equal(OpenVirtualDisk(&vst, W(path), 0, 0, &op, &hd), 0);
	must_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b);
	must_close(hd);
	/* V1 with the classic masks */
	assert_int_equal(open_v1(path, VIRTUAL_DISK_ACCESS_READ, 1, &hd), 0);
	must_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b);
	must_close(hd);
	assert_int_equal(open_v1(path, VIRTUAL_DISK_ACCESS_GET_INFO, 1, &hd), 0);
	must_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b);
	must_close(hd);
	/* V1 ALL with RWDepth 0 = read-only at every level: allowed on a running VM's disk */
	assert_int_equal(open_v1(path, VIRTUAL_DISK_ACCESS_ALL, 0, &hd), 0);
	must_close(hd);
	/* Parameters NULL with a read mask */
	assert_int_equal(
	    open_v1(path, VIRTUAL_DISK_ACCESS_ATTACH_RO | VIRTUAL_DISK_ACCESS_GET_INFO, -1, &hd),
	    0);
	must_close(hd);
	/* the open is recorded with its version and mode */
	assert_int_equal(open_v2(path, TRUE, FALSE, &hd), 0);
	expect_audit(&e, "OpenVirtualDisk", 0, "version=2 GetInfoOnly");
	must_close(hd);
	env_free(&e);
}

/* ---- OpenVirtualDisk: sharing ---------------------------------------------------------------- */

static void test_open_sharing(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "sharing", 6, "alpha", "16MiB", NULL);
	guest_write(&e, WL_RANDOM, 2 * MIB, 1);
	const char *base = base_win(&e);
	HANDLE hd;
	/* writers of a running VM's live leaf */
	assert_int_equal(open_v1(base, VIRTUAL_DISK_ACCESS_ALL, 1, &hd), ERROR_SHARING_VIOLATION);
	assert_null(hd);
	expect_audit(&e, "OpenVirtualDisk", ERROR_SHARING_VIOLATION, "alpha.vhdx");
	assert_int_equal(open_v1(base, VIRTUAL_DISK_ACCESS_ALL, -1, &hd), ERROR_SHARING_VIOLATION);
	assert_int_equal(
	    open_v1(base, VIRTUAL_DISK_ACCESS_ATTACH_RW | VIRTUAL_DISK_ACCESS_GET_INFO, 1, &hd),
	    ERROR_SHARING_VIOLATION);
	assert_int_equal(open_v1(base, VIRTUAL_DISK_ACCESS_METAOPS, 1, &hd),
	                 ERROR_SHARING_VIOLATION);
	assert_int_equal(open_v2(base, FALSE, FALSE, &hd), ERROR_SHARING_VIOLATION);
	/* readers are fine */
	assert_int_equal(open_v2(base, FALSE, TRUE, &hd), 0);
	must_close(hd);
	assert_int_equal(open_v2(base, TRUE, FALSE, &hd), 0); /* GetInfoOnly implies read-only */
	must_close(hd);
	/* the same writers are allowed when the VM is off (or saved) */
	assert_int_equal(host_vm_set_state(e.h, e.vm, HOST_VM_OFF), 0);
	assert_int_equal(open_v1(base, VIRTUAL_DISK_ACCESS_ALL, 1, &hd), 0);
	must_close(hd);
	assert_int_equal(open_v2(base, FALSE, FALSE, &hd), 0);
	must_close(hd);
	assert_int_equal(host_vm_set_state(e.h, e.vm, HOST_VM_SAVED), 0);
	assert_int_equal(open_v2(base, FALSE, FALSE, &hd), 0);
	must_close(hd);
	/* a checkpoint freezes the base: no writer even with the VM off; readers still fine */
	assert_int_equal(host_vm_set_state(e.h, e.vm, HOST_VM_RUNNING), 0);
	int64_t snap;
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &snap),
	                 0);
	assert_int_equal(host_vm_set_state(e.h, e.vm, HOST_VM_OFF), 0);
	assert_int_equal(open_v1(base, VIRTUAL_DISK_ACCESS_ALL, 1, &hd), ERROR_SHARING_VIOLATION);
	assert_int_equal(open_v2(base, FALSE, FALSE, &hd), ERROR_SHARING_VIOLATION);
	assert_int_equal(open_v2(base, FALSE, TRUE, &hd), 0);
	must_close(hd);
	const char *leaf = win_of(chain_rel(&e, 0, 1));
	assert_non_null(strstr(leaf, ".avhdx"));
	assert_int_equal(open_v2(leaf, FALSE, FALSE, &hd), 0); /* the AVHDX leaf of an off VM */
	must_close(hd);
	assert_int_equal(host_vm_set_state(e.h, e.vm, HOST_VM_RUNNING), 0);
	assert_int_equal(open_v2(leaf, FALSE, FALSE, &hd), ERROR_SHARING_VIOLATION);
	assert_int_equal(open_v2(leaf, FALSE, TRUE, &hd), 0);
	must_close(hd);
	env_free(&e);
}

/* bareos#2624: a leaked reference point blocks the merge; the AVHDX stays; the next checkpoint
 * freezes it; opening that chain is ERROR_SHARING_VIOLATION until the leaked point goes. */
static void test_open_blocked_merge_chain(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "blocked", 7, "alpha", "16MiB", NULL);
	guest_write(&e, WL_RANDOM, 2 * MIB, 1);
	int64_t s1, s2, s3, rp1, rp2;
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &s1), 0);
	assert_int_equal(host_refpoint_convert(e.h, s1, 2, &rp1), 0);
	assert_null(host_merge_block_reason(e.h, e.vm));
	guest_write(&e, WL_RANDOM, 1 * MIB, 2);
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &s2), 0);
	/* a normal backup's frozen base and live AVHDX open fine */
	HANDLE hd;
	assert_int_equal(open_ro(base_win(&e), &hd), 0);
	must_close(hd);
	assert_int_equal(open_ro(win_of(chain_rel(&e, 0, 1)), &hd), 0);
	must_close(hd);
	assert_int_equal(host_refpoint_convert(e.h, s2, 2, &rp2), 0); /* rp1 never destroyed */
	assert_non_null(host_merge_block_reason(e.h, e.vm));
	assert_int_equal(leaf_depth(&e, 0), 1); /* convert left the AVHDX */
	guest_write(&e, WL_RANDOM, 1 * MIB, 3);
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &s3), 0);
	const char *frozen = q_text(
	    &e, P("SELECT c.path FROM snapshot_disk s JOIN chain c ON c.disk_id=s.disk_id AND"
	          " c.depth=s.depth WHERE s.snapshot_id=%lld",
	          (long long)s3));
	assert_non_null(strstr(frozen, ".avhdx"));
	char frozen_win[1200];
	snprintf(frozen_win, sizeof frozen_win, "%s", win_of(frozen));
	assert_int_equal(open_ro(frozen_win, &hd), ERROR_SHARING_VIOLATION);
	assert_null(hd);
	expect_audit(&e, "OpenVirtualDisk", ERROR_SHARING_VIOLATION, ".avhdx");
	assert_int_equal(open_v2(frozen_win, TRUE, TRUE, &hd), ERROR_SHARING_VIOLATION);
	assert_int_equal(open_ro(abs_of(&e, frozen), &hd), ERROR_SHARING_VIOLATION);
	/* the whole chain is held */
	assert_int_equal(open_ro(base_win(&e), &hd), ERROR_SHARING_VIOLATION);
	assert_int_equal(open_ro(win_of(chain_rel(&e, 0, -1)), &hd), ERROR_SHARING_VIOLATION);
	/* destroying the leaked point unblocks the merge (what stays open meanwhile: see
	 * test_open_unheld_file_without_block); once the checkpoint goes too, the chain folds back
	 * into the base, which opens, and rp2's id still answers there */
	assert_int_equal(host_refpoint_destroy(e.h, rp1), 0);
	assert_null(host_merge_block_reason(e.h, e.vm));
	assert_int_equal(host_snapshot_destroy(e.h, s3), 0);
	assert_int_equal(leaf_depth(&e, 0), 0);
	assert_int_equal(open_ro(base_win(&e), &hd), 0);
	const char *id2 =
	    q_text(&e, P("SELECT rct_id FROM refpoint_disk WHERE rp_id=%lld", (long long)rp2));
	ULONG n = 0;
	ULONG64 done;
	QUERY_CHANGES_VIRTUAL_DISK_RANGE r[64];
	n = 64;
	assert_int_equal(QueryChangesVirtualDisk(hd, W(id2), 0, 16 * MIB, 0, r, &n, &done), 0);
	assert_true(n > 0);
	must_close(hd);
	assert_int_equal(open_ro(frozen_win, &hd), ERROR_FILE_NOT_FOUND); /* merged away */
	env_free(&e);
}

/* Regression (was a bug): the sharing rule of OpenVirtualDisk treats every non-leaf chain file that no checkpoint
 * holds as "a blocked merge", without asking whether a merge is blocked at all. The host merges
 * only leaf links (by design, host_ckpt.c: "a chain frozen under a held file waits"), so such a
 * file also appears with no block: (1) after deleting the older of two standard checkpoints;
 * (2) in the bareos#2624 chain once the leaked reference point is destroyed while the newer
 * checkpoint still exists. In both, host_merge_block_reason() is NULL, yet every open of the
 * disk, read-only included, fails with ERROR_SHARING_VIOLATION (observed 0x20, expected 0).
 * sim/virtdisk/virtdisk.c:300-306 (the `blocked` query) should also require a block reason for
 * the VM (host_merge_block_reason), i.e. a merge that is pending *and* blocked. */
static void test_open_unheld_file_without_block(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "unheld", 8, "alpha", "16MiB", NULL);
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	int64_t a, b;
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_STANDARD, 2, "a", &a), 0);
	guest_write(&e, WL_RANDOM, 1 * MIB, 2);
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_STANDARD, 2, "b", &b), 0);
	assert_int_equal(host_snapshot_destroy(e.h, a), 0);
	assert_null(host_merge_block_reason(e.h, e.vm));
	assert_int_equal(leaf_depth(&e, 0), 2);
	HANDLE hd;
	DWORD rc1 = open_ro(win_of(chain_rel(&e, 0, -1)), &hd);
	if (!rc1)
		must_close(hd);
	env_free(&e);

	/* (2) bareos#2624 after the fix on the client side: the leaked point is destroyed */
	env_new(&e, "unheld2", 8, "alpha", "16MiB", NULL);
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	int64_t s1, s2, s3, rp1, rp2;
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &s1), 0);
	assert_int_equal(host_refpoint_convert(e.h, s1, 2, &rp1), 0);
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &s2), 0);
	assert_int_equal(host_refpoint_convert(e.h, s2, 2, &rp2), 0);
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &s3), 0);
	assert_int_equal(host_refpoint_destroy(e.h, rp1), 0);
	assert_null(host_merge_block_reason(e.h, e.vm));
	const char *frozen = q_text(
	    &e, P("SELECT c.path FROM snapshot_disk s JOIN chain c ON c.disk_id=s.disk_id AND"
	          " c.depth=s.depth WHERE s.snapshot_id=%lld",
	          (long long)s3));
	DWORD rc2 = open_ro(win_of(frozen), &hd);
	if (!rc2)
		must_close(hd);
	env_free(&e);
	if (rc1 || rc2)
		fail_msg("read-only open with no merge blocked: 0x%08X after deleting the older "
		         "standard checkpoint,"
		         " 0x%08X for the frozen AVHDX once the leaked reference point is gone "
		         "(expected 0, 0)",
		         rc1, rc2);
}

/* ---- handles --------------------------------------------------------------------------------- */

static void test_close_handle(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "close", 9, "alpha", "8MiB", NULL);
	HANDLE hd = must_open_ro(base_win(&e));
	int64_t before = audit_rows(&e);
	SetLastError(12345);
	assert_true(CloseHandle(hd));
	expect_audit(&e, "CloseHandle", 0, "alpha.vhdx");
	assert_int_equal(audit_rows(&e), before + 1);
	/* stale: FALSE + ERROR_INVALID_HANDLE, and nothing recorded (no host to record in) */
	SetLastError(0);
	assert_false(CloseHandle(hd));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	assert_int_equal(audit_rows(&e), before + 1);
	SetLastError(0);
	assert_false(CloseHandle(NULL));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	SetLastError(0);
	assert_false(CloseHandle(INVALID_HANDLE_VALUE));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	SetLastError(0);
	assert_false(CloseHandle((HANDLE)(uintptr_t)0x7f0012345678ull));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	/* an attached handle closes too (the attach ends with it) */
	HANDLE h2 = open_attached_nlh(base_win(&e));
	assert_true(CloseHandle(h2));
	assert_false(CloseHandle(h2));
	env_free(&e);
}

/* Calls every function on `hd` and expects ERROR_INVALID_HANDLE from each, without a crash;
 * the DWORD functions must leave GetLastError() alone. */
static void expect_invalid_everywhere(HANDLE hd)
{
	union infobuf b;
	ULONG sz = sizeof b, used = 0;
	b.i.Version = GET_VIRTUAL_DISK_INFO_SIZE;
	SetLastError(4242);
	assert_int_equal(GetVirtualDiskInformation(hd, &sz, &b.i, &used), ERROR_INVALID_HANDLE);
	SET_VIRTUAL_DISK_INFO si = {.Version = SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE};
	si.ChangeTrackingEnabled = TRUE;
	assert_int_equal(SetVirtualDiskInformation(hd, &si), ERROR_INVALID_HANDLE);
	QUERY_CHANGES_VIRTUAL_DISK_RANGE r[4];
	ULONG n = 4;
	ULONG64 done = 0;
	assert_int_equal(
	    QueryChangesVirtualDisk(hd, W("rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001"), 0,
	                            4096, QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE, r, &n, &done),
	    ERROR_INVALID_HANDLE);
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL),
	    ERROR_INVALID_HANDLE);
	assert_int_equal(DetachVirtualDisk(hd, DETACH_VIRTUAL_DISK_FLAG_NONE, 0),
	                 ERROR_INVALID_HANDLE);
	WCHAR path[64];
	ULONG psz = sizeof path;
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &psz, path), ERROR_INVALID_HANDLE);
	assert_int_equal(GetLastError(), 4242);
	uint8_t buf[4096];
	OVERLAPPED ov = {0};
	DWORD got = 77;
	SetLastError(0);
	assert_false(ReadFile(hd, buf, sizeof buf, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	SetLastError(0);
	got = 77;
	assert_false(WriteFile(hd, buf, sizeof buf, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	assert_int_equal(got, 0);
	SetLastError(0);
	assert_false(GetOverlappedResult(hd, &ov, &got, TRUE));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	SetLastError(0);
	assert_false(CancelIoEx(hd, NULL));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	SetLastError(0);
	assert_false(CloseHandle(hd));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
}

static void test_bogus_handles(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "bogus", 10, "alpha", "8MiB", NULL);
	expect_invalid_everywhere(NULL);
	expect_invalid_everywhere(INVALID_HANDLE_VALUE);
	expect_invalid_everywhere((HANDLE)(uintptr_t)0x1);
	expect_invalid_everywhere((HANDLE)(uintptr_t)0xdeadbeefcafe0000ull);
	/* a forgery that looks like the library's object (its magic first) is still refused */
	uint32_t fake[64];
	memset(fake, 0, sizeof fake);
	fake[0] = 0x56444b48u;
	expect_invalid_everywhere(fake);
	/* a stack address and a live heap block that are not handles */
	int local = 0;
	expect_invalid_everywhere(&local);
	void *heap = malloc(4096);
	memset(heap, 0x48, 4096);
	expect_invalid_everywhere(heap);
	free(heap);
	/* a closed handle (also after it had been attached) */
	HANDLE hd = must_open_ro(base_win(&e));
	must_close(hd);
	expect_invalid_everywhere(hd);
	hd = open_attached_nlh(base_win(&e));
	must_close(hd);
	expect_invalid_everywhere(hd);
	/* other live handles are unaffected by all of that */
	HANDLE live = must_open_ro(base_win(&e));
	union infobuf b;
	must_info(live, GET_VIRTUAL_DISK_INFO_SIZE, &b);
	assert_int_equal(b.i.Size.VirtualSize, 8 * MIB);
	must_close(live);
	env_free(&e);
}

struct le_arg {
	DWORD set, seen_before, seen_after;
	pthread_barrier_t *bar;
};

static void *last_error_thread(void *p)
{
	struct le_arg *a = p;
	a->seen_before = GetLastError();
	SetLastError(a->set);
	pthread_barrier_wait(a->bar);
	pthread_barrier_wait(a->bar);
	a->seen_after = GetLastError();
	return NULL;
}

static void test_last_error(void **s)
{
	(void)s;
	SetLastError(0xC03A0030u);
	assert_int_equal(GetLastError(), 0xC03A0030u);
	SetLastError(0);
	assert_int_equal(GetLastError(), 0);
	/* per thread: each thread starts at 0 and keeps its own value */
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 3);
	struct le_arg a = {.set = 111, .bar = &bar}, b = {.set = 222, .bar = &bar};
	pthread_t ta, tb;
	SetLastError(999);
	assert_int_equal(pthread_create(&ta, NULL, last_error_thread, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, last_error_thread, &b), 0);
	pthread_barrier_wait(&bar);
	SetLastError(333);
	pthread_barrier_wait(&bar);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(a.seen_before, 0);
	assert_int_equal(b.seen_before, 0);
	assert_int_equal(a.seen_after, 111);
	assert_int_equal(b.seen_after, 222);
	assert_int_equal(GetLastError(), 333);

	/* the virtdisk functions return their code and leave the slot alone, success or failure */
	struct env e;
	env_new(&e, "lasterr", 11, "alpha", "8MiB", NULL);
	HANDLE hd;
	SetLastError(5150);
	assert_int_equal(open_ro("C:\\Hyper-V\\alpha\\Virtual Hard Disks\\none.vhdx", &hd),
	                 ERROR_FILE_NOT_FOUND);
	assert_int_equal(GetLastError(), 5150);
	assert_int_equal(open_ro(base_win(&e), &hd), 0);
	assert_int_equal(GetLastError(), 5150);
	union infobuf b2;
	assert_int_equal(
	    get_info(hd, GET_VIRTUAL_DISK_INFO_PARENT_LOCATION, &b2, sizeof b2, NULL, NULL),
	    ERROR_VHD_INVALID_TYPE);
	assert_int_equal(GetLastError(), 5150);
	assert_int_equal(AttachVirtualDisk(hd, NULL, 0, 0, NULL, NULL), ERROR_NOT_SUPPORTED);
	assert_int_equal(DetachVirtualDisk(hd, 0, 0), ERROR_VHD_INVALID_STATE);
	assert_int_equal(GetLastError(), 5150);
	/* the kernel32 calls do report through it */
	assert_true(CloseHandle(hd));
	assert_false(CloseHandle(hd));
	assert_int_equal(GetLastError(), ERROR_INVALID_HANDLE);
	env_free(&e);
}

/* ---- GetVirtualDiskInformation ----------------------------------------------------------------*/

static void test_info_parameters(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "infoparams", 12, "alpha", "8MiB", NULL);
	HANDLE hd = must_open_ro(base_win(&e));
	union infobuf b;
	ULONG sz = sizeof b, used;
	b.i.Version = GET_VIRTUAL_DISK_INFO_SIZE;
	assert_int_equal(GetVirtualDiskInformation(hd, NULL, &b.i, &used), ERROR_INVALID_PARAMETER);
	expect_audit(&e, "GetVirtualDiskInformation", ERROR_INVALID_PARAMETER, "alpha.vhdx");
	assert_int_equal(GetVirtualDiskInformation(hd, &sz, NULL, &used), ERROR_INVALID_PARAMETER);
	sz = 4;
	assert_int_equal(GetVirtualDiskInformation(hd, &sz, &b.i, &used), ERROR_INVALID_PARAMETER);
	/* unknown versions */
	int bad[] = {GET_VIRTUAL_DISK_INFO_UNSPECIFIED, 16, 99, -1};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(
		    get_info(hd, (GET_VIRTUAL_DISK_INFO_VERSION)bad[i], &b, sizeof b, NULL, NULL),
		    ERROR_INVALID_PARAMETER);
		expect_audit(&e, "GetVirtualDiskInformation", ERROR_INVALID_PARAMETER, NULL);
	}
	/* fixed-size versions need the whole 32-byte struct; the answer says so */
	for (int v = GET_VIRTUAL_DISK_INFO_SIZE; v <= GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID; v++) {
		if (v == GET_VIRTUAL_DISK_INFO_PARENT_LOCATION ||
		    v == GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER ||
		    v == GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP)
			continue; /* parent versions on a base disk: see test_info_parent_on_base */
		ULONG out = 0;
		used = 777;
		assert_int_equal(
		    get_info(hd, (GET_VIRTUAL_DISK_INFO_VERSION)v, &b, 31, &out, &used),
		    ERROR_INSUFFICIENT_BUFFER);
		assert_int_equal(out, sizeof(GET_VIRTUAL_DISK_INFO));
		assert_int_equal(used, 777); /* untouched on failure */
		assert_int_equal(
		    get_info(hd, (GET_VIRTUAL_DISK_INFO_VERSION)v, &b, out, &out, &used), 0);
		assert_int_equal(used, sizeof(GET_VIRTUAL_DISK_INFO));
	}
	/* SizeUsed is optional */
	assert_int_equal(get_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b, sizeof b, NULL, NULL), 0);
	must_close(hd);
	/* a V1 handle without GET_INFO access */
	assert_int_equal(open_v1(base_win(&e),
	                         VIRTUAL_DISK_ACCESS_ATTACH_RO | VIRTUAL_DISK_ACCESS_DETACH, 1,
	                         &hd),
	                 0);
	assert_int_equal(get_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b, sizeof b, NULL, NULL),
	                 ERROR_ACCESS_DENIED);
	expect_audit(&e, "GetVirtualDiskInformation", ERROR_ACCESS_DENIED, NULL);
	must_close(hd);
	/* GetInfoOnly handles can (that is what they are for) */
	assert_int_equal(open_v2(base_win(&e), TRUE, FALSE, &hd), 0);
	must_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b);
	must_close(hd);
	env_free(&e);
}

/* Every version on a base disk, against host.db and the VHDX file read with hyperv/vhdx. */
static void check_base_info(struct env *e, int slot, const char *path)
{
	HANDLE hd = must_open_ro(path);
	const char *rel = chain_rel(e, slot, 0);
	struct vhdx_file *f;
	assert_int_equal(vhdx_open(abs_of(e, rel), VHDX_OPEN_RDONLY, &f), 0);
	const struct vhdx_info *vi = vhdx_get_info(f);
	int64_t did = e->disk[slot];
	union infobuf b;
	ULONG used;

	int64_t before = audit_rows(e);
	assert_int_equal(get_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b, sizeof b, NULL, &used), 0);
	assert_int_equal(audit_rows(e), before + 1);
	expect_audit(e, "GetVirtualDiskInformation", 0, "version=1");
	assert_int_equal(used, sizeof(GET_VIRTUAL_DISK_INFO));
	assert_int_equal(
	    b.i.Size.VirtualSize,
	    (uint64_t)q_int(e, P("SELECT size FROM disk WHERE id=%lld", (long long)did)));
	assert_int_equal(b.i.Size.VirtualSize, vi->virtual_size);
	assert_int_equal(b.i.Size.BlockSize, vi->block_size);
	assert_int_equal(
	    b.i.Size.BlockSize,
	    (uint64_t)q_int(e, P("SELECT block_size FROM disk WHERE id=%lld", (long long)did)));
	assert_int_equal(b.i.Size.SectorSize, vi->logical_sector);
	struct stat sb;
	assert_int_equal(stat(abs_of(e, rel), &sb), 0);
	assert_int_equal(b.i.Size.PhysicalSize, (uint64_t)sb.st_size);

	char t[37], want[40];
	hv_guid_format(&vi->disk_id, want);
	must_info(hd, GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID, &b);
	guid_text(&b.i.VirtualDiskId, t);
	assert_int_equal(strncasecmp(t, want + 1, 36), 0);
	assert_string_equal(t, q_text(e, P("SELECT upper(virtual_disk_id) FROM disk WHERE id=%lld",
	                                   (long long)did)));
	must_info(hd, GET_VIRTUAL_DISK_INFO_IDENTIFIER, &b);
	guid_text(&b.i.Identifier, t);
	assert_string_not_equal(t, "00000000-0000-0000-0000-000000000000");

	must_info(hd, GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE, &b);
	assert_int_equal(b.i.VirtualStorageType.DeviceId, VIRTUAL_STORAGE_TYPE_DEVICE_VHDX);
	assert_memory_equal(&b.i.VirtualStorageType.VendorId,
	                    &VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT, sizeof(GUID));
	must_info(hd, GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE, &b);
	assert_int_equal(b.i.ProviderSubtype, (ULONG)vi->type); /* 2 fixed, 3 dynamic */
	must_info(hd, GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED, &b);
	assert_true(b.i.Is4kAligned == TRUE);
	must_info(hd, GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK, &b);
	assert_int_equal(b.i.PhysicalDisk.LogicalSectorSize, vi->logical_sector);
	assert_int_equal(b.i.PhysicalDisk.PhysicalSectorSize, vi->physical_sector);
	assert_int_equal(b.i.PhysicalDisk.IsRemote, FALSE);
	must_info(hd, GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE, &b);
	assert_int_equal(b.i.VhdPhysicalSectorSize, vi->physical_sector);
	must_info(hd, GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE, &b);
	assert_true(b.i.SmallestSafeVirtualSize > 0 &&
	            b.i.SmallestSafeVirtualSize <= vi->virtual_size);
	must_info(hd, GET_VIRTUAL_DISK_INFO_FRAGMENTATION, &b);
	assert_true(b.i.FragmentationPercentage <= 100);
	must_info(hd, GET_VIRTUAL_DISK_INFO_IS_LOADED, &b);
	assert_int_equal(b.i.IsLoaded, FALSE);
	/* a base disk has no parent */
	assert_int_equal(
	    get_info(hd, GET_VIRTUAL_DISK_INFO_PARENT_LOCATION, &b, sizeof b, NULL, NULL),
	    ERROR_VHD_INVALID_TYPE);
	expect_audit(e, "GetVirtualDiskInformation", ERROR_VHD_INVALID_TYPE, "version=3");
	vhdx_close(f);
	must_close(hd);
}

static void test_info_base_disks(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "infobase", 13, "alpha", "40MiB", "12MiB,fixed,block=1MiB,sector=4096");
	guest_write(&e, WL_RANDOM, 3 * MIB, 1);
	check_base_info(&e, 0, base_win(&e));
	check_base_info(&e, 1, "C:\\Hyper-V\\alpha\\Virtual Hard Disks\\alpha_1.vhdx");
	HANDLE hd = must_open_ro("C:\\Hyper-V\\alpha\\Virtual Hard Disks\\alpha_1.vhdx");
	union infobuf b;
	must_info(hd, GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE, &b);
	assert_int_equal(b.i.ProviderSubtype, 2);
	must_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b);
	assert_int_equal(b.i.Size.SectorSize, 4096);
	assert_int_equal(b.i.Size.BlockSize, MIB);
	must_close(hd);
	hd = must_open_ro(base_win(&e));
	must_info(hd, GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE, &b);
	assert_int_equal(b.i.ProviderSubtype, 3);
	must_close(hd);
	env_free(&e);
}

/* A differencing chain: base ← AVHDX (frozen by checkpoint 2) ← AVHDX leaf. */
static void test_info_avhdx(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "infoavhdx", 14, "alpha", "24MiB", NULL);
	guest_write(&e, WL_RANDOM, 2 * MIB, 1);
	int64_t s1, s2;
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_STANDARD, 2, "one", &s1), 0);
	guest_write(&e, WL_RANDOM, 1 * MIB, 2);
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_STANDARD, 2, "two", &s2), 0);
	assert_int_equal(leaf_depth(&e, 0), 2);
	char rel0[1200], rel1[1200], rel2[1200];
	snprintf(rel0, sizeof rel0, "%s", chain_rel(&e, 0, 0));
	snprintf(rel1, sizeof rel1, "%s", chain_rel(&e, 0, 1));
	snprintf(rel2, sizeof rel2, "%s", chain_rel(&e, 0, 2));
	const char *rels[3] = {rel0, rel1, rel2};
	union infobuf base_id;
	HANDLE hb = must_open_ro(base_win(&e));
	must_info(hb, GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID, &base_id);
	must_close(hb);
	for (int depth = 1; depth <= 2; depth++) {
		HANDLE hd = must_open_ro(win_of(rels[depth]));
		struct vhdx_file *f;
		assert_int_equal(
		    vhdx_open(abs_of(&e, rels[depth]), VHDX_OPEN_RDONLY | VHDX_OPEN_NO_PARENT, &f),
		    0);
		const struct vhdx_info *vi = vhdx_get_info(f);
		assert_int_equal(vi->type, VHDX_TYPE_DIFFERENCING);
		union infobuf b;
		must_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b);
		assert_int_equal(b.i.Size.VirtualSize, 24 * MIB);
		assert_int_equal(b.i.Size.VirtualSize, vi->virtual_size);
		assert_int_equal(b.i.Size.BlockSize, vi->block_size);
		assert_int_equal(b.i.Size.SectorSize, vi->logical_sector);
		struct stat sb;
		assert_int_equal(stat(abs_of(&e, rels[depth]), &sb), 0);
		assert_int_equal(b.i.Size.PhysicalSize, (uint64_t)sb.st_size);
		must_info(hd, GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE, &b);
		assert_int_equal(b.i.ProviderSubtype, 4);
		/* the VirtualDiskId is the chain's (differencing disks keep the base's) */
		must_info(hd, GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID, &b);
		assert_memory_equal(&b.i.VirtualDiskId, &base_id.i.VirtualDiskId, sizeof(GUID));
		char t[37], want[40];
		guid_text(&b.i.VirtualDiskId, t);
		hv_guid_format(&vi->disk_id, want);
		assert_int_equal(strncasecmp(t, want + 1, 36), 0);

		/* PARENT_LOCATION: the parent's Windows path; probe the size first */
		const char *parent_win = win_of(rels[depth - 1]);
		ULONG need_chars = (ULONG)strlen(parent_win);
		ULONG need =
		    (ULONG)offsetof(GET_VIRTUAL_DISK_INFO, ParentLocation.ParentLocationBuffer) +
		    (need_chars + 2) * (ULONG)sizeof(WCHAR); /* MultiSz: two NULs */
		ULONG out = 0, used = 99;
		assert_int_equal(get_info(hd, GET_VIRTUAL_DISK_INFO_PARENT_LOCATION, &b,
		                          sizeof(GET_VIRTUAL_DISK_INFO), &out, &used),
		                 ERROR_INSUFFICIENT_BUFFER);
		expect_audit(&e, "GetVirtualDiskInformation", ERROR_INSUFFICIENT_BUFFER,
		             "version=3");
		assert_int_equal(out, need);
		assert_int_equal(used, 99);
		assert_int_equal(
		    get_info(hd, GET_VIRTUAL_DISK_INFO_PARENT_LOCATION, &b, need - 1, &out, &used),
		    ERROR_INSUFFICIENT_BUFFER);
		assert_int_equal(out, need);
		assert_int_equal(
		    get_info(hd, GET_VIRTUAL_DISK_INFO_PARENT_LOCATION, &b, need, &out, &used), 0);
		assert_int_equal(used, need);
		assert_true(b.i.ParentLocation.ParentResolved == TRUE);
		char got[1200];
		U(b.i.ParentLocation.ParentLocationBuffer, got, sizeof got);
		assert_string_equal(got, parent_win);
		const WCHAR *pl =
		    b.i.ParentLocation.ParentLocationBuffer; /* runs past the [1] declaration */
		assert_int_equal(pl[need_chars + 1], 0);     /* the MultiSz end */
		assert_int_equal(b.b[need], 0xCC);           /* nothing past it */
		if (depth == 1) /* spelled independently of the chain table */
			assert_string_equal(got, base_win(&e));
		/* the parent path opens (it is how a client walks up the chain) */
		HANDLE hp;
		assert_int_equal(OpenVirtualDisk(&(VIRTUAL_STORAGE_TYPE){0},
		                                 b.i.ParentLocation.ParentLocationBuffer, 0, 0,
		                                 &(OPEN_VIRTUAL_DISK_PARAMETERS){
		                                     .Version = 2, .Version2 = {.ReadOnly = TRUE}},
		                                 &hp),
		                 0);
		must_close(hp);
		/* chain check: the child's ParentIdentifier is the parent's Identifier */
		must_info(hd, GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER, &b);
		GUID pid = b.i.ParentIdentifier;
		hp = must_open_ro(parent_win);
		must_info(hp, GET_VIRTUAL_DISK_INFO_IDENTIFIER, &b);
		assert_memory_equal(&pid, &b.i.Identifier, sizeof(GUID));
		must_close(hp);
		must_info(hd, GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP, &b);
		vhdx_close(f);
		must_close(hd);
	}
	env_free(&e);
}

/* Regression (was a bug) [I]: PARENT_IDENTIFIER and PARENT_TIMESTAMP on a base (non-differencing) disk succeed (with
 * the disk's own VirtualDiskId and 0) where PARENT_LOCATION correctly fails with
 * ERROR_VHD_INVALID_TYPE; a disk without a parent has no parent identity either, and a client
 * walking a chain by PARENT_IDENTIFIER cannot tell where it ends. Expected: the same
 * ERROR_VHD_INVALID_TYPE as PARENT_LOCATION (virtdisk.md A2.3; inferred, not verified on Windows).
 * sim/virtdisk/virtdisk.c:401-402 accept them at any depth, :431-436 fill them. */
static void test_info_parent_on_base(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "parentbase", 15, "alpha", "8MiB", NULL);
	HANDLE hd = must_open_ro(base_win(&e));
	union infobuf b;
	DWORD id = get_info(hd, GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER, &b, sizeof b, NULL, NULL);
	DWORD ts = get_info(hd, GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP, &b, sizeof b, NULL, NULL);
	must_close(hd);
	env_free(&e);
	if (id != ERROR_VHD_INVALID_TYPE || ts != ERROR_VHD_INVALID_TYPE)
		fail_msg("base disk: PARENT_IDENTIFIER 0x%08X, PARENT_TIMESTAMP 0x%08X; expected "
		         "ERROR_VHD_INVALID_TYPE",
		         id, ts);
}

static void test_info_change_tracking_state(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "cts", 16, "alpha", "16MiB", NULL);
	guest_write(&e, WL_RANDOM, 2 * MIB, 1);
	int64_t rp;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp), 0);
	char rct[200];
	snprintf(rct, sizeof rct, "%s",
	         q_text(&e, P("SELECT rct_id FROM refpoint_disk WHERE rp_id=%lld", (long long)rp)));
	assert_int_equal(strlen(rct), RCT_ID_STRLEN);
	HANDLE hd = must_open_ro(base_win(&e));
	union infobuf b;
	/* buffer protocol: a bare struct is too small for a 50-character id; the size needed
	 * exactly */
	ULONG need = (ULONG)offsetof(GET_VIRTUAL_DISK_INFO, ChangeTrackingState.MostRecentId) +
	             (RCT_ID_STRLEN + 1) * (ULONG)sizeof(WCHAR);
	ULONG out = 0, used = 5;
	assert_int_equal(get_info(hd, GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE, &b,
	                          sizeof(GET_VIRTUAL_DISK_INFO), &out, &used),
	                 ERROR_INSUFFICIENT_BUFFER);
	assert_int_equal(out, need);
	assert_int_equal(used, 5);
	expect_audit(&e, "GetVirtualDiskInformation", ERROR_INSUFFICIENT_BUFFER, "version=15");
	assert_int_equal(
	    get_info(hd, GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE, &b, need - 1, &out, &used),
	    ERROR_INSUFFICIENT_BUFFER);
	assert_int_equal(out, need);
	assert_int_equal(
	    get_info(hd, GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE, &b, need, &out, &used), 0);
	assert_int_equal(used, need);
	assert_int_equal(b.b[need], 0xCC);
	char id[300];
	U(b.i.ChangeTrackingState.MostRecentId, id, sizeof id);
	assert_true(b.i.ChangeTrackingState.Enabled == TRUE);
	assert_true(b.i.ChangeTrackingState.NewerChanges == FALSE);
	assert_string_equal(id, rct);
	/* the host agrees */
	bool en, newer;
	char hid[100];
	assert_int_equal(host_rct_state(e.h, e.disk[0], 0, &en, hid, sizeof hid, &newer), 0);
	assert_string_equal(hid, id);
	/* a write after the point: NewerChanges, same id */
	guest_write(&e, WL_RANDOM, 256 * 1024, 2);
	BOOL enabled, nc;
	most_recent_id(hd, id, sizeof id, &enabled, &nc);
	assert_true(enabled && nc);
	assert_string_equal(id, rct);
	/* a checkpoint: the live leaf moves on, the frozen base stays at its seal */
	int64_t snap;
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &snap),
	                 0);
	const char *srct = q_text(
	    &e, P("SELECT rct_id FROM snapshot_disk WHERE snapshot_id=%lld", (long long)snap));
	assert_string_not_equal(srct, rct);
	most_recent_id(hd, id, sizeof id, &enabled, &nc); /* the same handle, now a frozen file */
	assert_string_equal(id, srct);
	assert_false(nc);
	HANDLE hl = must_open_ro(win_of(chain_rel(&e, 0, -1)));
	most_recent_id(hl, id, sizeof id, &enabled, &nc);
	assert_string_equal(id, srct);
	assert_false(nc);
	guest_write(&e, WL_RANDOM, 128 * 1024, 3);
	most_recent_id(hl, id, sizeof id, &enabled, &nc);
	assert_true(nc);
	most_recent_id(hd, id, sizeof id, &enabled, &nc);
	assert_false(nc); /* frozen: never newer */
	assert_string_equal(id, srct);
	must_close(hl);
	must_close(hd);
	env_free(&e);
}

/* ---- SetVirtualDiskInformation ----------------------------------------------------------------*/

static DWORD set_tracking(HANDLE hd, BOOL on)
{
	SET_VIRTUAL_DISK_INFO si;
	memset(&si, 0, sizeof si);
	si.Version = SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE;
	si.ChangeTrackingEnabled = on;
	return SetVirtualDiskInformation(hd, &si);
}

static DWORD query_once(HANDLE hd, const char *id, uint64_t off, uint64_t len, ULONG *count,
                        ULONG64 *processed)
{
	static _Thread_local QUERY_CHANGES_VIRTUAL_DISK_RANGE r[512];
	ULONG cap = *count ? *count : 512;
	*count = cap;
	return QueryChangesVirtualDisk(hd, W(id), off, len, QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE, r,
	                               count, processed);
}

static void test_set_info(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "setinfo", 17, "alpha", "16MiB", NULL);
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	int64_t rp;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp), 0);
	char id1[100];
	snprintf(id1, sizeof id1, "%s", q_text(&e, "SELECT rct_id FROM refpoint_disk"));
	guest_write(&e, WL_RANDOM, 1 * MIB, 2);
	HANDLE hd = must_open_ro(base_win(&e));
	/* parameters and versions */
	assert_int_equal(SetVirtualDiskInformation(hd, NULL), ERROR_INVALID_PARAMETER);
	expect_audit(&e, "SetVirtualDiskInformation", ERROR_INVALID_PARAMETER, "alpha.vhdx");
	SET_VIRTUAL_DISK_INFO si;
	memset(&si, 0, sizeof si);
	int bad[] = {SET_VIRTUAL_DISK_INFO_UNSPECIFIED, 8, 99, -1};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		si.Version = (SET_VIRTUAL_DISK_INFO_VERSION)bad[i];
		assert_int_equal(SetVirtualDiskInformation(hd, &si), ERROR_INVALID_PARAMETER);
	}
	/* the versions that edit a disk's identity or parent: not something a read-only simulator
	 * does */
	for (int v = SET_VIRTUAL_DISK_INFO_PARENT_PATH; v <= SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR;
	     v++) {
		if (v == SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE)
			continue;
		si.Version = (SET_VIRTUAL_DISK_INFO_VERSION)v;
		si.ParentFilePath = W("C:\\Hyper-V\\x.vhdx");
		assert_int_equal(SetVirtualDiskInformation(hd, &si), ERROR_NOT_SUPPORTED);
		expect_audit(&e, "SetVirtualDiskInformation", ERROR_NOT_SUPPORTED,
		             P("version=%d", v));
	}
	/* the state it already has */
	assert_int_equal(set_tracking(hd, TRUE), ERROR_CTLOG_INVALID_TRACKING_STATE);
	expect_audit(&e, "SetVirtualDiskInformation", ERROR_CTLOG_INVALID_TRACKING_STATE,
	             "enabled=1");
	/* a GetInfoOnly handle cannot change anything */
	HANDLE hi;
	assert_int_equal(open_v2(base_win(&e), TRUE, FALSE, &hi), 0);
	assert_int_equal(set_tracking(hi, FALSE), ERROR_ACCESS_DENIED);
	must_close(hi);
	assert_int_equal(open_v1(base_win(&e), VIRTUAL_DISK_ACCESS_GET_INFO, 1, &hi), 0);
	assert_int_equal(set_tracking(hi, FALSE), ERROR_ACCESS_DENIED);
	must_close(hi);
	BOOL en, nc;
	char id[300];
	most_recent_id(hd, id, sizeof id, &en, &nc);
	assert_true(en);
	ULONG count = 0;
	ULONG64 done;
	assert_int_equal(query_once(hd, id1, 0, 16 * MIB, &count, &done), 0);
	/* disable: queries fail as disabled, the state says so, disabling again is refused */
	assert_int_equal(set_tracking(hd, FALSE), 0);
	expect_audit(&e, "SetVirtualDiskInformation", 0, "enabled=0");
	most_recent_id(hd, id, sizeof id, &en, &nc);
	assert_false(en);
	assert_string_equal(id, "");
	count = 0;
	assert_int_equal(query_once(hd, id1, 0, 16 * MIB, &count, &done),
	                 ERROR_VHD_CHANGE_TRACKING_DISABLED);
	assert_int_equal(count, 0);
	assert_int_equal(done, 0);
	expect_audit(&e, "QueryChangesVirtualDisk", ERROR_VHD_CHANGE_TRACKING_DISABLED, NULL);
	count = 0;
	assert_int_equal(query_once(hd, "not-an-id", 0, 16 * MIB, &count, &done),
	                 ERROR_VHD_INVALID_CHANGE_TRACKING_ID);
	assert_int_equal(set_tracking(hd, FALSE), ERROR_CTLOG_INVALID_TRACKING_STATE);
	/* enable again (any non-zero BOOL): tracking starts over, the old id is gone */
	assert_int_equal(set_tracking(hd, 2), 0);
	most_recent_id(hd, id, sizeof id, &en, &nc);
	assert_true(en);
	count = 0;
	assert_int_equal(query_once(hd, id1, 0, 16 * MIB, &count, &done),
	                 ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION);
	/* a new reference point works from the new start */
	int64_t rp2;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp2), 0);
	const char *id2 =
	    q_text(&e, P("SELECT rct_id FROM refpoint_disk WHERE rp_id=%lld", (long long)rp2));
	assert_string_not_equal(id2, id1);
	assert_int_not_equal(strncmp(id2, id1, 40), 0); /* a fresh tracking GUID */
	count = 0;
	assert_int_equal(query_once(hd, id2, 0, 16 * MIB, &count, &done), 0);
	assert_int_equal(count, 0);
	assert_int_equal(done, 16 * MIB);
	must_close(hd);
	env_free(&e);
}

/* ---- QueryChangesVirtualDisk ------------------------------------------------------------------*/

static struct ranges *ranges_new(void)
{
	struct ranges *r = calloc(1, sizeof *r);
	assert_non_null(r);
	return r;
}

static void test_query_matches_truth(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "query", 18, "alpha", "64MiB", "16MiB,sector=4096,block=1MiB");
	guest_write(&e, WL_RANDOM, 4 * MIB, 1);
	int64_t rp1, rp2;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp1), 0);
	guest_write(&e, WL_RANDOM, 3 * MIB, 2);
	guest_write(&e, WL_ZIPF, 2 * MIB, 3);
	guest_write(&e, WL_TRIM, 512 * 1024, 4);
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp2), 0);
	int64_t p1 = q_int(&e, P("SELECT truth_point FROM refpoint WHERE id=%lld", (long long)rp1));
	int64_t p2 = q_int(&e, P("SELECT truth_point FROM refpoint WHERE id=%lld", (long long)rp2));
	struct ranges *ref = ranges_new(), *got = ranges_new();
	const char *paths[2] = {base_win(&e),
	                        "C:\\Hyper-V\\alpha\\Virtual Hard Disks\\alpha_1.vhdx"};
	for (int slot = 0; slot < 2; slot++) {
		uint64_t size = e.m[slot].size;
		char id1[100], id2[100];
		snprintf(
		    id1, sizeof id1, "%s",
		    q_text(&e,
		           P("SELECT rct_id FROM refpoint_disk WHERE rp_id=%lld AND disk_id=%lld",
		             (long long)rp1, (long long)e.disk[slot])));
		snprintf(
		    id2, sizeof id2, "%s",
		    q_text(&e,
		           P("SELECT rct_id FROM refpoint_disk WHERE rp_id=%lld AND disk_id=%lld",
		             (long long)rp2, (long long)e.disk[slot])));
		HANDLE hd = must_open_ro(paths[slot]);
		host_answer(&e, slot, 0, id1, 0, size, ref);
		assert_true(ref->n > 8);
		size_t changed = assert_ranges_are_truth(&e, slot, ref, p1, p2, 0, size);
		assert_true(changed > 16);
		/* the client loop, with every capacity from one range per call upwards */
		ULONG caps[] = {1, 2, 3, 7, 64, 4096};
		for (size_t c = 0; c < sizeof caps / sizeof *caps; c++) {
			assert_int_equal(query_loop(hd, id1, 0, size, caps[c], false, got), 0);
			assert_same_ranges(got, ref);
			assert_ranges_are_truth(&e, slot, got, p1, p2, 0, size);
			if (caps[c] < ref->n)
				assert_true(got->partial > 0 &&
				            got->calls >= (int)((ref->n + caps[c] - 1) / caps[c]));
			else
				assert_int_equal(got->calls, 1);
		}
		expect_audit(&e, "QueryChangesVirtualDisk", 0, id1);
		/* windows inside the disk (G-aligned: the truth applies block for block) */
		uint64_t wins[][2] = {
		    {3 * G, size / 2}, {size - 5 * G, 5 * G}, {0, G}, {size / 4, size / 4 + 7 * G}};
		for (size_t w = 0; w < 4; w++) {
			assert_int_equal(query_loop(hd, id1, wins[w][0], wins[w][1], 2, false, got),
			                 0);
			host_answer(&e, slot, 0, id1, wins[w][0], wins[w][1], ref);
			assert_same_ranges(got, ref);
			assert_ranges_are_truth(&e, slot, got, p1, p2, wins[w][0], wins[w][1]);
		}
		/* a sector-aligned window that cuts blocks: ranges are clipped to it */
		uint64_t so = 9 * (uint64_t)e.m[slot].sector + 3 * G,
		         sl = size / 3 + e.m[slot].sector;
		sl -= sl % e.m[slot].sector;
		assert_int_equal(query_loop(hd, id1, so, sl, 3, false, got), 0);
		host_answer(&e, slot, 0, id1, so, sl, ref);
		assert_same_ranges(got, ref);
		/* since the newest point: nothing, the whole window in one call */
		ULONG count = 0;
		ULONG64 done = 0;
		assert_int_equal(query_once(hd, id2, 0, size, &count, &done), 0);
		assert_int_equal(count, 0);
		assert_int_equal(done, size);
		/* an empty window */
		count = 4;
		done = 99;
		assert_int_equal(query_once(hd, id1, size, 0, &count, &done), 0);
		assert_int_equal(count, 0);
		assert_int_equal(done, 0);
		/* the id from GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE is the newest one */
		char mr[300];
		most_recent_id(hd, mr, sizeof mr, NULL, NULL);
		assert_string_equal(mr, id2);
		must_close(hd);
		/* GetInfoOnly and V1 GET_INFO handles may query */
		assert_int_equal(open_v2(paths[slot], TRUE, FALSE, &hd), 0);
		assert_int_equal(query_loop(hd, id1, 0, size, 5, false, got), 0);
		host_answer(&e, slot, 0, id1, 0, size, ref);
		assert_same_ranges(got, ref);
		must_close(hd);
		assert_int_equal(open_v1(paths[slot], VIRTUAL_DISK_ACCESS_GET_INFO, 1, &hd), 0);
		assert_int_equal(query_loop(hd, id1, 0, size, 5, false, got), 0);
		assert_same_ranges(got, ref);
		must_close(hd);
	}
	/* unsealed writes on the live leaf show up since the newest point */
	guest_write(&e, WL_SEQUENTIAL, 1 * MIB, 5);
	HANDLE hd = must_open_ro(base_win(&e));
	const char *id2 =
	    q_text(&e, P("SELECT rct_id FROM refpoint_disk WHERE rp_id=%lld AND disk_id=%lld",
	                 (long long)rp2, (long long)e.disk[0]));
	assert_int_equal(query_loop(hd, id2, 0, 64 * MIB, 4, false, got), 0);
	assert_true(got->n > 0);
	host_answer(&e, 0, 0, id2, 0, 64 * MIB, ref);
	assert_same_ranges(got, ref);
	must_close(hd);
	free(ref);
	free(got);
	env_free(&e);
}

static void test_query_errors(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "qerrors", 19, "alpha", "16MiB", "8MiB,sector=4096,block=1MiB");
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	int64_t rp;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp), 0);
	char id[100], id4k[100];
	snprintf(id, sizeof id, "%s",
	         q_text(&e, P("SELECT rct_id FROM refpoint_disk WHERE disk_id=%lld",
	                      (long long)e.disk[0])));
	snprintf(id4k, sizeof id4k, "%s",
	         q_text(&e, P("SELECT rct_id FROM refpoint_disk WHERE disk_id=%lld",
	                      (long long)e.disk[1])));
	guest_write(&e, WL_RANDOM, 1 * MIB, 2);
	HANDLE hd = must_open_ro(base_win(&e));
	HANDLE h4 = must_open_ro("C:\\Hyper-V\\alpha\\Virtual Hard Disks\\alpha_1.vhdx");
	const uint64_t size = 16 * MIB;
	QUERY_CHANGES_VIRTUAL_DISK_RANGE r[8];
	ULONG n;
	ULONG64 done;
#define Q(h, idw, off, len, fl, rr, nn, dd)                                                        \
	(n = 8, done = 0, QueryChangesVirtualDisk(h, idw, off, len, fl, rr, nn, dd))
	/* sanity: the call itself is fine */
	assert_int_equal(Q(hd, W(id), 0, size, 0, r, &n, &done), 0);
	/* alignment to the logical sector */
	assert_int_equal(Q(hd, W(id), 100, 4096, 0, r, &n, &done), ERROR_INVALID_PARAMETER);
	expect_audit(&e, "QueryChangesVirtualDisk", ERROR_INVALID_PARAMETER, "offset=100");
	assert_int_equal(Q(hd, W(id), 0, 1000, 0, r, &n, &done), ERROR_INVALID_PARAMETER);
	assert_int_equal(Q(hd, W(id), 512, size - 512, 0, r, &n, &done), 0);
	assert_int_equal(Q(h4, W(id4k), 512, 4096, 0, r, &n, &done), ERROR_INVALID_PARAMETER);
	assert_int_equal(Q(h4, W(id4k), 4096, 512, 0, r, &n, &done), ERROR_INVALID_PARAMETER);
	assert_int_equal(Q(h4, W(id4k), 4096, 8 * MIB - 4096, 0, r, &n, &done), 0);
	/* the window must lie inside the disk */
	assert_int_equal(Q(hd, W(id), size - 512, 1024, 0, r, &n, &done), ERROR_INVALID_PARAMETER);
	assert_int_equal(Q(hd, W(id), 0, size + 512, 0, r, &n, &done), ERROR_INVALID_PARAMETER);
	assert_int_equal(Q(hd, W(id), size + 512, 0, 0, r, &n, &done), ERROR_INVALID_PARAMETER);
	assert_int_equal(Q(hd, W(id), 512, UINT64_MAX - 511, 0, r, &n, &done),
	                 ERROR_INVALID_PARAMETER); /* wraps */
	assert_int_equal(Q(hd, W(id), UINT64_MAX - 511, 512, 0, r, &n, &done),
	                 ERROR_INVALID_PARAMETER);
	/* flags, NULLs, no room */
	assert_int_equal(Q(hd, W(id), 0, size, (QUERY_CHANGES_VIRTUAL_DISK_FLAG)1, r, &n, &done),
	                 ERROR_INVALID_PARAMETER);
	assert_int_equal(
	    Q(hd, W(id), 0, size, (QUERY_CHANGES_VIRTUAL_DISK_FLAG)0x80000000u, r, &n, &done),
	    ERROR_INVALID_PARAMETER);
	assert_int_equal(Q(hd, NULL, 0, size, 0, r, &n, &done), ERROR_INVALID_PARAMETER);
	assert_int_equal(Q(hd, W(id), 0, size, 0, NULL, &n, &done), ERROR_INVALID_PARAMETER);
	assert_int_equal(Q(hd, W(id), 0, size, 0, r, NULL, &done), ERROR_INVALID_PARAMETER);
	assert_int_equal(Q(hd, W(id), 0, size, 0, r, &n, NULL), ERROR_INVALID_PARAMETER);
	n = 0;
	assert_int_equal(QueryChangesVirtualDisk(hd, W(id), 0, size, 0, r, &n, &done),
	                 ERROR_INVALID_PARAMETER);
	/* ids: bad syntax, unknown, from the future */
	const char *syntax[] = {"",
	                        "hello",
	                        "rctX:",
	                        "RCTX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001",
	                        "rctX:{5bfde23b-ce75-4303-b54f-6c18394f105c}:00000001",
	                        "rctX:5bfde23b:ce75:4303:b54f:6c18394f105c",
	                        "rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:0000000g",
	                        " rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001"};
	for (size_t i = 0; i < sizeof syntax / sizeof *syntax; i++) {
		DWORD rc = Q(hd, W(syntax[i]), 0, size, 0, r, &n, &done);
		if (rc != ERROR_VHD_INVALID_CHANGE_TRACKING_ID)
			fail_msg("id \"%s\": 0x%08X, expected ERROR_VHD_INVALID_CHANGE_TRACKING_ID",
			         syntax[i], rc);
		assert_int_equal(n, 0);
		assert_int_equal(done, 0);
	}
	expect_audit(&e, "QueryChangesVirtualDisk", ERROR_VHD_INVALID_CHANGE_TRACKING_ID, NULL);
	char longid[400];
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = 0;
	DWORD rc = Q(hd, W(longid), 0, size, 0, r, &n, &done);
	assert_true(rc == ERROR_INVALID_PARAMETER || rc == ERROR_VHD_INVALID_CHANGE_TRACKING_ID);
	assert_int_equal(Q(hd, W("rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001"), 0, size, 0,
	                   r, &n, &done),
	                 ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION);
	assert_int_equal(n, 0);
	expect_audit(&e, "QueryChangesVirtualDisk", ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION,
	             "rctX:5bfde23b");
	char future[100];
	snprintf(future, sizeof future, "%.42s00000099", id);
	assert_int_equal(Q(hd, W(future), 0, size, 0, r, &n, &done),
	                 ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION);
	/* upper-case hex of a valid id is the same id */
	char upper[100];
	snprintf(upper, sizeof upper, "rctX:%s", id + 5);
	for (char *c = upper + 5; *c; c++)
		*c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
	assert_int_equal(Q(hd, W(upper), 0, size, 0, r, &n, &done), 0);
	/* a V1 handle without GET_INFO */
	HANDLE hn;
	assert_int_equal(open_v1(base_win(&e), VIRTUAL_DISK_ACCESS_ATTACH_RO, 1, &hn), 0);
	assert_int_equal(Q(hn, W(id), 0, size, 0, r, &n, &done), ERROR_ACCESS_DENIED);
	must_close(hn);
	/* reset (live migration with reset): every older id is gone, on open handles too */
	assert_int_equal(host_fault_rct_reset(e.h, e.vm, -1), 0);
	assert_int_equal(Q(hd, W(id), 0, size, 0, r, &n, &done),
	                 ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION);
	assert_int_equal(n, 0);
	assert_int_equal(done, 0);
	assert_int_equal(Q(h4, W(id4k), 0, 8 * MIB, 0, r, &n, &done),
	                 ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION);
	/* the bad-parameter checks do not depend on the id being valid */
	assert_int_equal(Q(hd, W(id), 100, 4096, 0, r, &n, &done), ERROR_INVALID_PARAMETER);
#undef Q
	must_close(hd);
	must_close(h4);
	env_free(&e);
}

/* A frozen file answers up to its seal; the live AVHDX includes what came after. */
static void test_query_frozen_chain(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "qfrozen", 20, "alpha", "32MiB", NULL);
	guest_write(&e, WL_RANDOM, 2 * MIB, 1);
	int64_t rp1, snap;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp1), 0);
	char id1[100];
	snprintf(id1, sizeof id1, "%s", q_text(&e, "SELECT rct_id FROM refpoint_disk"));
	guest_write(&e, WL_ZIPF, 2 * MIB, 2);
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &snap),
	                 0);
	guest_write(&e, WL_RANDOM, 2 * MIB, 3); /* after the checkpoint: not part of its answer */
	int64_t p1 = q_int(&e, P("SELECT truth_point FROM refpoint WHERE id=%lld", (long long)rp1));
	int64_t ps =
	    q_int(&e, P("SELECT truth_point FROM snapshot WHERE id=%lld", (long long)snap));
	char sid[100];
	snprintf(sid, sizeof sid, "%s",
	         q_text(&e, P("SELECT rct_id FROM snapshot_disk WHERE snapshot_id=%lld",
	                      (long long)snap)));
	struct ranges *got = ranges_new(), *ref = ranges_new();
	HANDLE hf = must_open_ro(base_win(&e));
	assert_int_equal(query_loop(hf, id1, 0, 32 * MIB, 3, false, got), 0);
	assert_ranges_are_truth(&e, 0, got, p1, ps, 0, 32 * MIB);
	host_answer(&e, 0, 0, id1, 0, 32 * MIB, ref);
	assert_same_ranges(got, ref);
	/* its own seal: nothing changed */
	assert_int_equal(query_loop(hf, sid, 0, 32 * MIB, 3, false, got), 0);
	assert_int_equal(got->n, 0);
	assert_int_equal(got->calls, 1);
	/* the live AVHDX since the checkpoint sees the later writes, and matches the host */
	HANDLE hl = must_open_ro(win_of(chain_rel(&e, 0, 1)));
	assert_int_equal(query_loop(hl, sid, 0, 32 * MIB, 3, false, got), 0);
	assert_true(got->n > 0);
	host_answer(&e, 0, 1, sid, 0, 32 * MIB, ref);
	assert_same_ranges(got, ref);
	/* convert: the id carried by the reference point keeps working, on the merged base */
	int64_t rp2;
	assert_int_equal(host_refpoint_convert(e.h, snap, 2, &rp2), 0);
	assert_int_equal(host_refpoint_destroy(e.h, rp1),
	                 0); /* as a backup does: the older point goes */
	assert_int_equal(leaf_depth(&e, 0), 0);
	int64_t p2 = q_int(&e, P("SELECT truth_point FROM refpoint WHERE id=%lld", (long long)rp2));
	assert_int_equal(p2, ps);
	assert_string_equal(
	    q_text(&e, P("SELECT rct_id FROM refpoint_disk WHERE rp_id=%lld", (long long)rp2)),
	    sid);
	must_close(hl);
	must_close(hf);
	hf = must_open_ro(base_win(&e));
	assert_int_equal(query_loop(hf, sid, 0, 32 * MIB, 3, false, got), 0);
	host_answer(&e, 0, 0, sid, 0, 32 * MIB, ref);
	assert_same_ranges(got, ref);
	assert_true(got->n > 0);
	/* a reset after the checkpoint: the frozen file's answers are gone too */
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &snap),
	                 0);
	assert_int_equal(host_fault_rct_reset(e.h, e.vm, -1), 0);
	ULONG n = 0;
	ULONG64 done;
	assert_int_equal(query_once(hf, sid, 0, 32 * MIB, &n, &done),
	                 ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION);
	must_close(hf);
	free(got);
	free(ref);
	env_free(&e);
}

static void test_query_host_settings(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "qsettings", 21, "alpha", "32MiB", NULL);
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	int64_t rp;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp), 0);
	char id[100];
	snprintf(id, sizeof id, "%s", q_text(&e, "SELECT rct_id FROM refpoint_disk"));
	guest_write(&e, WL_RANDOM, 3 * MIB, 2);
	struct ranges *ref = ranges_new(), *got = ranges_new();
	host_answer(&e, 0, 0, id, 0, 32 * MIB, ref);
	assert_true(ref->n > 10);
	HANDLE hd = must_open_ro(base_win(&e));
	/* virtdisk.max_ranges_per_call caps what a call returns, whatever the capacity */
	assert_int_equal(host_setting_set(e.h, "virtdisk.max_ranges_per_call", "3"), 0);
	ULONG n = 500;
	ULONG64 done = 0;
	assert_int_equal(query_once(hd, id, 0, 32 * MIB, &n, &done), 0);
	assert_int_equal(n, 3);
	assert_int_equal(done, ref->off[2] + ref->len[2]);
	n = 2; /* a smaller capacity still wins */
	assert_int_equal(query_once(hd, id, 0, 32 * MIB, &n, &done), 0);
	assert_int_equal(n, 2);
	assert_int_equal(query_loop(hd, id, 0, 32 * MIB, 500, false, got), 0);
	assert_same_ranges(got, ref);
	assert_int_equal(got->calls, (int)((ref->n + 2) / 3));
	/* virtdisk.more_data_on_partial: partial pages are ERROR_MORE_DATA, with their ranges */
	assert_int_equal(host_setting_set(e.h, "virtdisk.more_data_on_partial", "1"), 0);
	QUERY_CHANGES_VIRTUAL_DISK_RANGE r[500];
	n = 500;
	assert_int_equal(QueryChangesVirtualDisk(hd, W(id), 0, 32 * MIB, 0, r, &n, &done),
	                 ERROR_MORE_DATA);
	expect_audit(&e, "QueryChangesVirtualDisk", ERROR_MORE_DATA, "3 ranges");
	assert_int_equal(n, 3);
	assert_int_equal(r[0].ByteOffset, ref->off[0]);
	assert_int_equal(r[2].ByteOffset + r[2].ByteLength, ref->off[2] + ref->len[2]);
	assert_int_equal(done, ref->off[2] + ref->len[2]);
	assert_int_equal(query_loop(hd, id, 0, 32 * MIB, 500, true, got), 0);
	assert_same_ranges(got, ref);
	/* the last page (and an answer that fits) is ERROR_SUCCESS */
	uint64_t tail = ref->off[ref->n - 2];
	n = 500;
	assert_int_equal(QueryChangesVirtualDisk(hd, W(id), tail, 32 * MIB - tail, 0, r, &n, &done),
	                 0);
	assert_int_equal(n, 2);
	assert_int_equal(done, 32 * MIB - tail);
	/* 0 = the caller's capacity */
	assert_int_equal(host_setting_set(e.h, "virtdisk.max_ranges_per_call", "0"), 0);
	n = 500;
	assert_int_equal(QueryChangesVirtualDisk(hd, W(id), 0, 32 * MIB, 0, r, &n, &done), 0);
	assert_int_equal(n, ref->n);
	assert_int_equal(done, 32 * MIB);
	must_close(hd);
	free(ref);
	free(got);
	env_free(&e);
}

static int64_t paging_mistakes(struct env *e)
{
	return q_int(
	    e, "SELECT count(*) FROM audit WHERE api='virtdisk' AND mistake LIKE '%did not page%'");
}

static void test_query_paging_mistakes(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "qmistake", 22, "alpha", "32MiB", NULL);
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	int64_t rp;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp), 0);
	char id[100];
	snprintf(id, sizeof id, "%s", q_text(&e, "SELECT rct_id FROM refpoint_disk"));
	guest_write(&e, WL_RANDOM, 3 * MIB, 2);
	struct ranges *got = ranges_new();
	assert_int_equal(paging_mistakes(&e), 0);
	/* a looping client: no mistake */
	HANDLE hd = must_open_ro(base_win(&e));
	assert_int_equal(query_loop(hd, id, 0, 32 * MIB, 2, false, got), 0);
	assert_true(got->partial > 3);
	must_close(hd);
	assert_int_equal(paging_mistakes(&e), 0);
	/* a client whose answer fits in one call: no mistake */
	hd = must_open_ro(base_win(&e));
	ULONG n = 500;
	ULONG64 done;
	assert_int_equal(query_once(hd, id, 0, 32 * MIB, &n, &done), 0);
	assert_int_equal(done, 32 * MIB);
	must_close(hd);
	assert_int_equal(paging_mistakes(&e), 0);
	/* n-mam/offset: one call, partial answer taken as the whole → recorded when the handle
	 * closes */
	hd = must_open_ro(base_win(&e));
	n = 2;
	assert_int_equal(query_once(hd, id, 0, 32 * MIB, &n, &done), 0);
	assert_true(done < 32 * MIB);
	assert_int_equal(paging_mistakes(&e), 0);
	must_close(hd);
	assert_int_equal(paging_mistakes(&e), 1);
	const char *m = q_text(
	    &e, "SELECT mistake FROM audit WHERE mistake IS NOT NULL ORDER BY seq DESC LIMIT 1");
	assert_non_null(strstr(m, "alpha.vhdx"));
	assert_non_null(strstr(m, id));
	assert_non_null(strstr(m, P("%llu", (unsigned long long)done)));
	assert_string_equal(
	    q_text(&e,
	           "SELECT call FROM audit WHERE mistake IS NOT NULL ORDER BY seq DESC LIMIT 1"),
	    "CloseHandle");
	/* continuing somewhere else than ProcessedLength is not paging either */
	hd = must_open_ro(base_win(&e));
	n = 2;
	assert_int_equal(query_once(hd, id, 0, 32 * MIB, &n, &done), 0);
	uint64_t wrong = done + 64 * 1024;
	n = 500;
	assert_int_equal(query_once(hd, id, wrong, 32 * MIB - wrong, &n, &done), 0);
	must_close(hd);
	assert_int_equal(paging_mistakes(&e), 2);
	/* a looping client under ERROR_MORE_DATA: no mistake */
	assert_int_equal(host_setting_set(e.h, "virtdisk.more_data_on_partial", "1"), 0);
	hd = must_open_ro(base_win(&e));
	assert_int_equal(query_loop(hd, id, 0, 32 * MIB, 3, true, got), 0);
	must_close(hd);
	assert_int_equal(paging_mistakes(&e), 2);
	/* a looping client under a host cap: no mistake */
	assert_int_equal(host_setting_set(e.h, "virtdisk.more_data_on_partial", "0"), 0);
	assert_int_equal(host_setting_set(e.h, "virtdisk.max_ranges_per_call", "1"), 0);
	hd = must_open_ro(base_win(&e));
	assert_int_equal(query_loop(hd, id, 0, 32 * MIB, 100, false, got), 0);
	must_close(hd);
	assert_int_equal(paging_mistakes(&e), 2);
	/* no other virtdisk row of this host carries a mistake */
	assert_int_equal(
	    q_int(&e, "SELECT count(*) FROM audit WHERE api='virtdisk' AND mistake IS NOT NULL"),
	    2);
	free(got);
	env_free(&e);
}

/* ---- Attach / Detach / GetVirtualDiskPhysicalPath ---------------------------------------------*/

static void test_attach_detach(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "attach", 23, "alpha", "8MiB", NULL);
	const char *path = base_win(&e);
	HANDLE hd = must_open_ro(path);
	union infobuf b;
	/* read/write attaches are not something the simulator does */
	assert_int_equal(AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_NONE, 0, NULL, NULL),
	                 ERROR_NOT_SUPPORTED);
	expect_audit(&e, "AttachVirtualDisk", ERROR_NOT_SUPPORTED, "alpha.vhdx");
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER, 0, NULL, NULL),
	    ERROR_NOT_SUPPORTED);
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST, 0, NULL, NULL),
	    ERROR_NOT_SUPPORTED);
	must_info(hd, GET_VIRTUAL_DISK_INFO_IS_LOADED, &b);
	assert_int_equal(b.i.IsLoaded, FALSE);
	/* parameter versions 1 and 2 only */
	ATTACH_VIRTUAL_DISK_PARAMETERS ap = {.Version = ATTACH_VIRTUAL_DISK_VERSION_UNSPECIFIED};
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, &ap, NULL),
	    ERROR_INVALID_PARAMETER);
	ap.Version = (ATTACH_VIRTUAL_DISK_VERSION)3;
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, &ap, NULL),
	    ERROR_INVALID_PARAMETER);
	/* detach before any attach */
	assert_int_equal(DetachVirtualDisk(hd, DETACH_VIRTUAL_DISK_FLAG_NONE, 0),
	                 ERROR_VHD_INVALID_STATE);
	expect_audit(&e, "DetachVirtualDisk", ERROR_VHD_INVALID_STATE, "alpha.vhdx");
	/* READ_ONLY with V1 parameters (cloudbase), then twice */
	ap.Version = ATTACH_VIRTUAL_DISK_VERSION_1;
	assert_int_equal(AttachVirtualDisk(hd, NULL,
	                                   ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY |
	                                       ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER,
	                                   0, &ap, NULL),
	                 0);
	expect_audit(&e, "AttachVirtualDisk", 0, "flags=0x3");
	must_info(hd, GET_VIRTUAL_DISK_INFO_IS_LOADED, &b);
	assert_int_equal(b.i.IsLoaded, TRUE);
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL),
	    ERROR_VHD_INVALID_STATE);
	expect_audit(&e, "AttachVirtualDisk", ERROR_VHD_INVALID_STATE, NULL);
	assert_int_equal(DetachVirtualDisk(hd, (DETACH_VIRTUAL_DISK_FLAG)1, 0),
	                 ERROR_INVALID_PARAMETER);
	assert_int_equal(DetachVirtualDisk(hd, DETACH_VIRTUAL_DISK_FLAG_NONE, 0), 0);
	expect_audit(&e, "DetachVirtualDisk", 0, "alpha.vhdx");
	must_info(hd, GET_VIRTUAL_DISK_INFO_IS_LOADED, &b);
	assert_int_equal(b.i.IsLoaded, FALSE);
	assert_int_equal(DetachVirtualDisk(hd, DETACH_VIRTUAL_DISK_FLAG_NONE, 0),
	                 ERROR_VHD_INVALID_STATE);
	/* V2 (restricted range, go-winio) and again after the detach */
	ap.Version = ATTACH_VIRTUAL_DISK_VERSION_2;
	ap.Version2.RestrictedOffset = 0;
	ap.Version2.RestrictedLength = 4 * MIB;
	assert_int_equal(AttachVirtualDisk(hd, NULL,
	                                   ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY |
	                                       ATTACH_VIRTUAL_DISK_FLAG_RESTRICTED_RANGE,
	                                   0, &ap, NULL),
	                 0);
	assert_int_equal(DetachVirtualDisk(hd, 0, 0), 0);
	must_close(hd);
	/* GetInfoOnly handles cannot attach */
	assert_int_equal(open_v2(path, TRUE, FALSE, &hd), 0);
	DWORD rc = AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL);
	assert_int_equal(rc, ERROR_ACCESS_DENIED);
	expect_audit(&e, "AttachVirtualDisk", ERROR_ACCESS_DENIED, NULL);
	assert_int_equal(DetachVirtualDisk(hd, 0, 0), ERROR_VHD_INVALID_STATE);
	must_close(hd);
	/* nor V1 handles without ATTACH access */
	assert_int_equal(open_v1(path, VIRTUAL_DISK_ACCESS_GET_INFO, 1, &hd), 0);
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL),
	    ERROR_ACCESS_DENIED);
	must_close(hd);
	assert_int_equal(
	    open_v1(path, VIRTUAL_DISK_ACCESS_DETACH | VIRTUAL_DISK_ACCESS_GET_INFO, 1, &hd), 0);
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL),
	    ERROR_ACCESS_DENIED);
	must_close(hd);
	/* V1 with ATTACH_RO (and the rest of READ) can */
	assert_int_equal(open_v1(path, VIRTUAL_DISK_ACCESS_READ, 1, &hd), 0);
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL), 0);
	assert_int_equal(DetachVirtualDisk(hd, 0, 0), 0);
	must_close(hd);
	/* two handles on the same disk attach independently (a frozen file and the leaf, too) */
	HANDLE h1 = must_open_ro(path), h2 = must_open_ro(path);
	assert_int_equal(
	    AttachVirtualDisk(h1, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL), 0);
	assert_int_equal(
	    AttachVirtualDisk(h2, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL), 0);
	must_close(h1); /* closing an attached handle detaches it */
	assert_int_equal(DetachVirtualDisk(h2, 0, 0), 0);
	must_close(h2);
	env_free(&e);
}

/* Regression (was a bug): DetachVirtualDisk "needs a handle opened with VIRTUAL_DISK_ACCESS_DETACH" (virtdisk.md
 * A2.1, [D]); a V1 handle opened with ATTACH_RO|GET_INFO (no DETACH) detaches successfully.
 * Expected ERROR_ACCESS_DENIED (the attach then stays). sim/virtdisk/virtdisk.c:612 checks only the
 * flags and the attach state, not v->access for V1 handles. */
static void test_detach_needs_detach_access(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "detachacc", 24, "alpha", "8MiB", NULL);
	HANDLE hd;
	assert_int_equal(open_v1(base_win(&e),
	                         VIRTUAL_DISK_ACCESS_ATTACH_RO | VIRTUAL_DISK_ACCESS_GET_INFO, 1,
	                         &hd),
	                 0);
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL), 0);
	DWORD rc = DetachVirtualDisk(hd, 0, 0);
	union infobuf b;
	must_info(hd, GET_VIRTUAL_DISK_INFO_IS_LOADED, &b);
	must_close(hd);
	env_free(&e);
	assert_int_equal(rc, ERROR_ACCESS_DENIED);
	assert_int_equal(b.i.IsLoaded, TRUE);
}

static void test_physical_path(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "physpath", 25, "alpha", "8MiB", NULL);
	HANDLE hd = must_open_ro(base_win(&e));
	WCHAR path[128];
	ULONG sz = sizeof path;
	/* not attached */
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &sz, path), ERROR_VHD_INVALID_STATE);
	expect_audit(&e, "GetVirtualDiskPhysicalPath", ERROR_VHD_INVALID_STATE, "alpha.vhdx");
	sz = 0;
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &sz, NULL), ERROR_VHD_INVALID_STATE);
	/* attached for the local host (cloudbase): probe, then the path */
	assert_int_equal(AttachVirtualDisk(hd, NULL,
	                                   ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY |
	                                       ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER,
	                                   0, NULL, NULL),
	                 0);
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, NULL, path), ERROR_INVALID_PARAMETER);
	sz = 0;
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &sz, NULL), ERROR_INSUFFICIENT_BUFFER);
	expect_audit(&e, "GetVirtualDiskPhysicalPath", ERROR_INSUFFICIENT_BUFFER, NULL);
	ULONG need = sz;
	assert_true(need >= sizeof(WCHAR) * 19 && need % sizeof(WCHAR) == 0);
	sz = need - sizeof(WCHAR);
	for (int i = 0; i < 128; i++)
		path[i] = 0xFFFF;
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &sz, path), ERROR_INSUFFICIENT_BUFFER);
	assert_int_equal(sz, need);
	assert_int_equal(path[0], 0xFFFF); /* nothing written */
	sz = 8 * sizeof(WCHAR);
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &sz, NULL), ERROR_INSUFFICIENT_BUFFER);
	sz = need;
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &sz, path), 0);
	expect_audit(&e, "GetVirtualDiskPhysicalPath", 0, NULL);
	assert_int_equal(sz, need);
	char text[128];
	U(path, text, sizeof text);
	assert_int_equal(strlen(text) + 1, need / sizeof(WCHAR));
	assert_int_equal(strncmp(text, "\\\\.\\PhysicalDrive", 17), 0);
	char *end;
	unsigned long drive = strtoul(text + 17, &end, 10);
	assert_true(end != text + 17 && *end == 0);
	assert_true(drive >= 2); /* 0 and 1 are the machine's own disks */
	assert_int_equal(path[need / sizeof(WCHAR)], 0xFFFF);
	/* a bigger buffer gives the same answer and the same size */
	sz = sizeof path;
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &sz, path), 0);
	assert_int_equal(sz, need);
	char again[128];
	U(path, again, sizeof again);
	assert_string_equal(again, text);
	/* another attached disk is another drive */
	HANDLE h2 = must_open_ro(base_win(&e));
	assert_int_equal(
	    AttachVirtualDisk(h2, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL), 0);
	sz = sizeof path;
	assert_int_equal(GetVirtualDiskPhysicalPath(h2, &sz, path), 0);
	U(path, again, sizeof again);
	assert_string_not_equal(again, text);
	must_close(h2);
	/* detached: invalid state again */
	assert_int_equal(DetachVirtualDisk(hd, 0, 0), 0);
	sz = sizeof path;
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &sz, path), ERROR_VHD_INVALID_STATE);
	/* attached NO_LOCAL_HOST (bareos): there is no local drive */
	assert_int_equal(AttachVirtualDisk(hd, NULL,
	                                   ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY |
	                                       ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST,
	                                   0, NULL, NULL),
	                 0);
	sz = 0;
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &sz, NULL), ERROR_VHD_INVALID_STATE);
	sz = sizeof path;
	assert_int_equal(GetVirtualDiskPhysicalPath(hd, &sz, path), ERROR_VHD_INVALID_STATE);
	must_close(hd);
	env_free(&e);
}

/* Regression (was a bug): GetVirtualDiskPhysicalPath "needs GET_INFO access and an attached disk" (virtdisk.md A2.5,
 * [D]); a V1 handle opened with ATTACH_RO|DETACH only (no GET_INFO) gets the path. Expected
 * ERROR_ACCESS_DENIED, as GetVirtualDiskInformation and QueryChangesVirtualDisk already answer
 * for such a handle. sim/virtdisk/virtdisk.c:621-641 has no access check. */
static void test_physical_path_needs_get_info(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "physacc", 26, "alpha", "8MiB", NULL);
	HANDLE hd;
	assert_int_equal(open_v1(base_win(&e),
	                         VIRTUAL_DISK_ACCESS_ATTACH_RO | VIRTUAL_DISK_ACCESS_DETACH, 1,
	                         &hd),
	                 0);
	assert_int_equal(
	    AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL), 0);
	WCHAR path[64];
	ULONG sz = sizeof path;
	DWORD rc = GetVirtualDiskPhysicalPath(hd, &sz, path);
	must_close(hd);
	env_free(&e);
	assert_int_equal(rc, ERROR_ACCESS_DENIED);
}

/* ---- ReadFile / WriteFile / GetOverlappedResult / CancelIoEx ----------------------------------
 */

static BOOL read_at(HANDLE hd, void *buf, uint64_t off, DWORD n, DWORD *got, OVERLAPPED *ov)
{
	memset(ov, 0, sizeof *ov);
	ov->Offset = (DWORD)off;
	ov->OffsetHigh = (DWORD)(off >> 32);
	return ReadFile(hd, buf, n, got, ov);
}

static void test_readfile_errors(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "readerr", 27, "alpha", "8MiB", "4MiB,sector=4096,block=1MiB");
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	const uint64_t size = 8 * MIB;
	uint8_t *buf = malloc(2 * MIB);
	OVERLAPPED ov;
	DWORD got;
	HANDLE hd = must_open_ro(base_win(&e));
	/* not attached, or attached for the local host: the handle does not read (Vanara#418) */
	SetLastError(0);
	assert_false(read_at(hd, buf, 0, 4096, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_BAD_COMMAND);
	expect_audit(&e, "ReadFile", ERROR_BAD_COMMAND, "alpha.vhdx");
	assert_int_equal(got, 0);
	assert_int_equal(AttachVirtualDisk(hd, NULL,
	                                   ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY |
	                                       ATTACH_VIRTUAL_DISK_FLAG_NO_DRIVE_LETTER,
	                                   0, NULL, NULL),
	                 0);
	SetLastError(0);
	got = 5;
	assert_false(read_at(hd, buf, 0, 4096, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_BAD_COMMAND);
	assert_int_equal(got, 0);
	/* ... and GetOverlappedResult reports the same failure */
	SetLastError(0);
	assert_false(GetOverlappedResult(hd, &ov, &got, TRUE));
	assert_int_equal(GetLastError(), ERROR_BAD_COMMAND);
	assert_int_equal(got, 0);
	assert_int_equal(DetachVirtualDisk(hd, 0, 0), 0);
	assert_int_equal(AttachVirtualDisk(hd, NULL,
	                                   ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY |
	                                       ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST,
	                                   0, NULL, NULL),
	                 0);
	assert_true(read_at(hd, buf, 0, 4096, &got, &ov));
	assert_int_equal(got, 4096);
	/* alignment */
	SetLastError(0);
	assert_false(read_at(hd, buf, 100, 4096, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	expect_audit(&e, "ReadFile", ERROR_INVALID_PARAMETER, "offset=100");
	SetLastError(0);
	assert_false(read_at(hd, buf, 0, 1000, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	/* NULLs: an OVERLAPPED is how the offset is given; a buffer is needed */
	SetLastError(0);
	assert_false(ReadFile(hd, buf, 4096, &got, NULL));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	SetLastError(0);
	assert_false(read_at(hd, NULL, 0, 4096, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	assert_true(read_at(hd, buf, 0, 4096, NULL, &ov)); /* lpNumberOfBytesRead is optional */
	assert_int_equal(ov.InternalHigh, 4096);
	/* the end of the disk */
	SetLastError(0);
	assert_false(read_at(hd, buf, size, 4096, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_HANDLE_EOF);
	expect_audit(&e, "ReadFile", ERROR_HANDLE_EOF, NULL);
	SetLastError(0);
	assert_false(read_at(hd, buf, size + 512, 512, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_HANDLE_EOF);
	SetLastError(0);
	assert_false(read_at(hd, buf, 1ull << 40, 512, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_HANDLE_EOF);
	/* a read that runs over the end is cut at it */
	memset(buf, 0xEE, 2 * MIB);
	assert_true(read_at(hd, buf, size - 1024, 1 * MIB, &got, &ov));
	assert_int_equal(got, 1024);
	assert_int_equal(buf[1024], 0xEE);
	assert_true(GetOverlappedResult(hd, &ov, &got, FALSE));
	assert_int_equal(got, 1024);
	assert_memory_equal(buf, e.m[0].b + size - 1024, 1024);
	/* zero bytes is not an error */
	assert_true(read_at(hd, buf, 4096, 0, &got, &ov));
	assert_int_equal(got, 0);
	/* GetOverlappedResult needs an OVERLAPPED */
	SetLastError(0);
	assert_false(GetOverlappedResult(hd, NULL, &got, TRUE));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	/* the 4096-byte-sector disk wants 4096-aligned I/O */
	HANDLE h4 = open_attached_nlh("C:\\Hyper-V\\alpha\\Virtual Hard Disks\\alpha_1.vhdx");
	SetLastError(0);
	assert_false(read_at(h4, buf, 512, 4096, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	SetLastError(0);
	assert_false(read_at(h4, buf, 4096, 512, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
	assert_true(read_at(h4, buf, 4096, 8192, &got, &ov));
	assert_memory_equal(buf, e.m[1].b + 4096, 8192);
	must_close(h4);
	/* detached: back to ERROR_BAD_COMMAND */
	assert_int_equal(DetachVirtualDisk(hd, 0, 0), 0);
	SetLastError(0);
	assert_false(read_at(hd, buf, 0, 4096, &got, &ov));
	assert_int_equal(GetLastError(), ERROR_BAD_COMMAND);
	must_close(hd);
	free(buf);
	env_free(&e);
}

/* The bytes a NO_LOCAL_HOST handle reads equal the chain file read with hyperv/vhdx and the
 * model of what the guest wrote: for the live disk, for a frozen file after later writes, and for
 * the live AVHDX on top of it. */
static void test_readfile_content(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "readdata", 28, "alpha", "12MiB", "8MiB,fixed,block=1MiB,sector=4096");
	guest_write(&e, WL_RANDOM, 3 * MIB, 1);
	guest_write(&e, WL_TRIM, 512 * 1024, 2);
	guest_write(&e, WL_SEQUENTIAL, 1 * MIB, 3);
	const char *paths[2] = {base_win(&e),
	                        "C:\\Hyper-V\\alpha\\Virtual Hard Disks\\alpha_1.vhdx"};
	for (int slot = 0; slot < 2; slot++) {
		HANDLE hd = open_attached_nlh(paths[slot]);
		uint8_t *viaapi = read_all(hd, e.m[slot].size, slot ? 64 * 1024 : 1 * MIB);
		uint8_t *viavhdx = vhdx_read_all(&e, chain_rel(&e, slot, 0), e.m[slot].size);
		assert_bytes_equal(viaapi, viavhdx, e.m[slot].size, "ReadFile vs vhdx_read");
		assert_bytes_equal(viaapi, e.m[slot].b, e.m[slot].size,
		                   "ReadFile vs the workload model");
		free(viaapi);
		free(viavhdx);
		must_close(hd);
	}
	/* checkpoint, then more writes: the frozen base keeps the checkpoint's bytes */
	uint8_t *at_snap = malloc(12 * MIB);
	memcpy(at_snap, e.m[0].b, 12 * MIB);
	int64_t snap;
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_RECOVERY, 2, NULL, &snap),
	                 0);
	HANDLE hf = open_attached_nlh(base_win(&e)); /* attached before the writes, read after */
	guest_write(&e, WL_ZIPF, 2 * MIB, 4);
	guest_write(&e, WL_RANDOM, 1 * MIB, 5);
	assert_int_not_equal(memcmp(at_snap, e.m[0].b, 12 * MIB), 0);
	uint8_t *frozen = read_all(hf, 12 * MIB, 256 * 1024);
	assert_bytes_equal(frozen, at_snap, 12 * MIB, "frozen base vs the model at the checkpoint");
	free(frozen);
	must_close(hf);
	hf = open_attached_nlh(base_win(&e)); /* attached after the writes */
	frozen = read_all(hf, 12 * MIB, 1 * MIB);
	assert_bytes_equal(frozen, at_snap, 12 * MIB,
	                   "frozen base (new handle) vs the model at the checkpoint");
	free(frozen);
	must_close(hf);
	const char *leaf = chain_rel(&e, 0, 1);
	HANDLE hl = open_attached_nlh(win_of(leaf));
	uint8_t *live = read_all(hl, 12 * MIB, 1 * MIB);
	assert_bytes_equal(live, e.m[0].b, 12 * MIB, "live AVHDX vs the model");
	uint8_t *viavhdx = vhdx_read_all(&e, leaf, 12 * MIB);
	assert_bytes_equal(live, viavhdx, 12 * MIB, "live AVHDX: ReadFile vs vhdx_read");
	free(viavhdx);
	/* changed ranges read through the same handle are the changed bytes (the incremental path)
	 */
	const char *sid =
	    q_text(&e, P("SELECT rct_id FROM snapshot_disk WHERE snapshot_id=%lld AND disk_id=%lld",
	                 (long long)snap, (long long)e.disk[0]));
	struct ranges *r = ranges_new();
	assert_int_equal(query_loop(hl, sid, 0, 12 * MIB, 16, false, r), 0);
	assert_true(r->n > 0);
	uint64_t unchanged_diff = 0;
	uint8_t *in_ranges = calloc(1, 12 * MIB);
	for (size_t i = 0; i < r->n; i++) {
		memset(in_ranges + r->off[i], 1, r->len[i]);
		uint8_t *b = malloc(r->len[i]);
		OVERLAPPED ov;
		DWORD got;
		assert_true(read_at(hl, b, r->off[i], (DWORD)r->len[i], &got, &ov));
		assert_int_equal(got, r->len[i]);
		assert_memory_equal(b, e.m[0].b + r->off[i], r->len[i]);
		free(b);
	}
	for (uint64_t i = 0; i < 12 * MIB; i++)
		if (!in_ranges[i] && at_snap[i] != e.m[0].b[i])
			unchanged_diff++;
	assert_int_equal(unchanged_diff, 0); /* every byte that changed lies in a returned range */
	free(in_ranges);
	free(r);
	free(live);
	must_close(hl);
	free(at_snap);
	env_free(&e);
}

static void test_writefile_and_cancel(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "write", 29, "alpha", "8MiB", NULL);
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	HANDLE hd = open_attached_nlh(base_win(&e));
	uint8_t junk[4096];
	memset(junk, 0x5A, sizeof junk);
	OVERLAPPED ov = {0};
	DWORD n = 123;
	SetLastError(0);
	assert_false(WriteFile(hd, junk, sizeof junk, &n, &ov));
	assert_int_equal(GetLastError(), ERROR_ACCESS_DENIED);
	assert_int_equal(n, 0);
	expect_audit(&e, "WriteFile", ERROR_ACCESS_DENIED, "alpha.vhdx");
	SetLastError(0);
	assert_false(WriteFile(hd, junk, sizeof junk, NULL, NULL));
	assert_int_equal(GetLastError(), ERROR_ACCESS_DENIED);
	/* nothing was written */
	uint8_t *now = read_all(hd, 8 * MIB, 1 * MIB);
	assert_bytes_equal(now, e.m[0].b, 8 * MIB, "disk after a refused WriteFile");
	free(now);
	/* nothing is ever pending, so there is nothing to cancel */
	SetLastError(0);
	assert_false(CancelIoEx(hd, NULL));
	assert_int_equal(GetLastError(), ERROR_NOT_FOUND);
	SetLastError(0);
	assert_false(CancelIoEx(hd, &ov));
	assert_int_equal(GetLastError(), ERROR_NOT_FOUND);
	must_close(hd);
	/* a write on a handle that is not attached is refused the same way */
	hd = must_open_ro(base_win(&e));
	SetLastError(0);
	assert_false(WriteFile(hd, junk, sizeof junk, &n, &ov));
	assert_int_equal(GetLastError(), ERROR_ACCESS_DENIED);
	must_close(hd);
	env_free(&e);
}

/* ---- the audit log ----------------------------------------------------------------------------*/

/* Runs `call` and expects exactly one new virtdisk row, for `name` with result `rc`. */
#define AUDITED(e, name, rc, call)                                                                 \
	do {                                                                                       \
		int64_t before_ = audit_rows(e);                                                   \
		call;                                                                              \
		if (audit_rows(e) != before_ + 1)                                                  \
			fail_msg("%s wrote %lld audit rows, expected 1", name,                     \
			         (long long)(audit_rows(e) - before_));                            \
		expect_audit(e, name, rc, NULL);                                                   \
	} while (0)

static void test_audit_every_call(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "audit", 30, "alpha", "8MiB", NULL);
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	int64_t rp;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp), 0);
	char id[100];
	snprintf(id, sizeof id, "%s", q_text(&e, "SELECT rct_id FROM refpoint_disk"));
	assert_int_equal(host_clock_advance(e.h, 3600 * HOST_TICKS_PER_SECOND), 0);
	HANDLE hd;
	union infobuf b;
	ULONG n;
	ULONG64 done;
	WCHAR pp[64];
	ULONG psz;
	uint8_t buf[4096];
	OVERLAPPED ov;
	DWORD got;
	AUDITED(&e, "OpenVirtualDisk", ERROR_FILE_NOT_FOUND,
	        open_ro("C:\\Hyper-V\\alpha\\Virtual Hard Disks\\zz.vhdx", &hd));
	AUDITED(&e, "OpenVirtualDisk", 0, hd = must_open_ro(base_win(&e)));
	assert_int_equal(
	    q_int(&e, "SELECT vtime FROM audit WHERE api='virtdisk' ORDER BY seq DESC LIMIT 1"),
	    (int64_t)host_now(e.h)); /* stamped with the virtual clock */
	AUDITED(&e, "GetVirtualDiskInformation", 0, must_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &b));
	AUDITED(&e, "GetVirtualDiskInformation", ERROR_INSUFFICIENT_BUFFER,
	        get_info(hd, GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE, &b, 32, NULL, NULL));
	AUDITED(&e, "SetVirtualDiskInformation", ERROR_CTLOG_INVALID_TRACKING_STATE,
	        set_tracking(hd, TRUE));
	AUDITED(&e, "QueryChangesVirtualDisk", 0,
	        (n = 0, query_once(hd, id, 0, 8 * MIB, &n, &done)));
	AUDITED(&e, "QueryChangesVirtualDisk", ERROR_INVALID_PARAMETER,
	        (n = 0, query_once(hd, id, 1, 8 * MIB, &n, &done)));
	AUDITED(&e, "AttachVirtualDisk", ERROR_NOT_SUPPORTED,
	        AttachVirtualDisk(hd, NULL, 0, 0, NULL, NULL));
	AUDITED(&e, "AttachVirtualDisk", 0,
	        AttachVirtualDisk(hd, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL));
	AUDITED(&e, "GetVirtualDiskPhysicalPath", 0,
	        (psz = sizeof pp, GetVirtualDiskPhysicalPath(hd, &psz, pp)));
	AUDITED(&e, "ReadFile", ERROR_BAD_COMMAND, read_at(hd, buf, 0, 4096, &got, &ov));
	AUDITED(&e, "DetachVirtualDisk", 0, DetachVirtualDisk(hd, 0, 0));
	AUDITED(&e, "DetachVirtualDisk", ERROR_VHD_INVALID_STATE, DetachVirtualDisk(hd, 0, 0));
	AUDITED(&e, "WriteFile", ERROR_ACCESS_DENIED, WriteFile(hd, buf, 4096, &got, &ov));
	AUDITED(&e, "CloseHandle", 0, CloseHandle(hd));
	/* every row names the disk it was about */
	assert_int_equal(
	    q_int(&e,
	          "SELECT count(*) FROM audit WHERE api='virtdisk' AND args NOT LIKE '%alpha%'"),
	    0);
	env_free(&e);
}

/* The documented exception to "every call is audited": successful ReadFile, GetOverlappedResult
 * and CancelIoEx write no row (an engine makes one per few MiB); a failed ReadFile does. */
static void test_audit_reads_and_completions(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "auditread", 31, "alpha", "8MiB", NULL);
	HANDLE hd = open_attached_nlh(base_win(&e));
	uint8_t buf[4096];
	OVERLAPPED ov;
	DWORD got;
	int64_t r0 = audit_rows(&e);
	assert_true(read_at(hd, buf, 0, 4096, &got, &ov));
	int64_t r1 = audit_rows(&e);
	assert_true(GetOverlappedResult(hd, &ov, &got, TRUE));
	int64_t r2 = audit_rows(&e);
	assert_false(CancelIoEx(hd, NULL));
	int64_t r3 = audit_rows(&e);
	must_close(hd);
	env_free(&e);
	if (r1 - r0 != 0 || r2 - r1 != 0 || r3 - r2 != 0)
		fail_msg("audit rows written: ReadFile (success) %lld, GetOverlappedResult %lld, "
		         "CancelIoEx %lld; expected none (documented exception)",
		         (long long)(r1 - r0), (long long)(r2 - r1), (long long)(r3 - r2));
}

/* ---- robustness -------------------------------------------------------------------------------*/

/* A handle whose chain file is merged away under it (the simulator does not hold files open the
 * way Windows does): calls fail or answer, never crash; the path no longer opens. */
static void test_file_merged_under_handle(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "vanish", 32, "alpha", "8MiB", NULL);
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	int64_t snap;
	assert_int_equal(host_snapshot_create(e.h, e.vm, HOST_SNAPSHOT_STANDARD, 2, "x", &snap), 0);
	guest_write(&e, WL_RANDOM, 1 * MIB, 2);
	char leaf[1200];
	snprintf(leaf, sizeof leaf, "%s", win_of(chain_rel(&e, 0, 1)));
	HANDLE ha = open_attached_nlh(leaf), hb = must_open_ro(leaf);
	assert_int_equal(host_snapshot_destroy(e.h, snap), 0);
	assert_int_equal(leaf_depth(&e, 0), 0);
	HANDLE hx;
	assert_int_equal(open_ro(leaf, &hx), ERROR_FILE_NOT_FOUND);
	union infobuf b;
	for (int v = GET_VIRTUAL_DISK_INFO_SIZE; v <= GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE;
	     v++) {
		get_info(ha, (GET_VIRTUAL_DISK_INFO_VERSION)v, &b, sizeof b, NULL, NULL);
		get_info(hb, (GET_VIRTUAL_DISK_INFO_VERSION)v, &b, sizeof b, NULL, NULL);
	}
	ULONG n = 0;
	ULONG64 done;
	assert_int_not_equal(query_once(hb, "rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000000", 0,
	                                8 * MIB, &n, &done),
	                     0);
	assert_int_not_equal(
	    AttachVirtualDisk(hb, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY, 0, NULL, NULL), 0);
	uint8_t *all =
	    read_all(ha, 8 * MIB, 1 * MIB); /* the open file still reads (POSIX unlink) */
	free(all);
	assert_int_equal(DetachVirtualDisk(ha, 0, 0), 0);
	must_close(ha);
	must_close(hb);
	env_free(&e);
}

/* A corrupt change-tracking sidecar is a tracking reset (as when Hyper-V's .rct/.mrt are lost or
 * a VHDX is copied without them): the disk keeps working, tracking starts over with a new id, and
 * every older id fails with ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION (0xC03A0030). */
static void test_corrupt_tracking_file(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "corrupt", 33, "alpha", "8MiB", NULL);
	guest_write(&e, WL_RANDOM, 1 * MIB, 1);
	int64_t rp;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp), 0);
	char id[100];
	snprintf(id, sizeof id, "%s", q_text(&e, "SELECT rct_id FROM refpoint_disk"));
	HANDLE hd = must_open_ro(base_win(&e));
	const char *side = abs_of(&e, q_text(&e, "SELECT sidecar FROM disk"));
	FILE *f = fopen(side, "r+b");
	assert_non_null(f);
	char junk[256];
	memset(junk, 0x77, sizeof junk);
	assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
	fclose(f);
	must_info(hd, GET_VIRTUAL_DISK_INFO_SIZE, &(union infobuf){0}); /* the disk itself is fine */
	ULONG n = 0;
	ULONG64 done;
	DWORD rc = query_once(hd, id, 0, 8 * MIB, &n, &done);
	union infobuf b;
	DWORD st = get_info(hd, GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE, &b, sizeof b, NULL, NULL);
	must_close(hd);
	env_free(&e);
	assert_int_equal(rc, ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION);
	assert_int_equal(st, ERROR_SUCCESS);
	assert_true(b.i.ChangeTrackingState.Enabled);
}

/* ---- threads ----------------------------------------------------------------------------------*/

struct worker {
	char path[300];
	char id[100];
	uint64_t size;
	const uint8_t *expect;
	size_t nranges;
	int iters;
	DWORD my_error;
	int audited; /* calls this worker made that must each leave one audit row */
	int failures;
	char msg[512];
	HANDLE last; /* the handle of the last iteration, closed */
};

#define WFAIL(w, ...)                                                                              \
	do {                                                                                       \
		if (!(w)->failures++)                                                              \
			snprintf((w)->msg, sizeof(w)->msg, __VA_ARGS__);                           \
		goto next;                                                                         \
	} while (0)

static void *worker_main(void *p)
{
	struct worker *w = p;
	uint8_t *buf = malloc(256 * 1024);
	QUERY_CHANGES_VIRTUAL_DISK_RANGE r[4];
	SetLastError(w->my_error);
	for (int it = 0; it < w->iters; it++) {
		HANDLE hd = NULL;
		DWORD rc = open_ro(w->path, &hd);
		w->audited++;
		if (rc)
			WFAIL(w, "open %s: 0x%08X", w->path, rc);
		union infobuf b;
		b.i.Version = GET_VIRTUAL_DISK_INFO_SIZE;
		ULONG sz = sizeof b;
		rc = GetVirtualDiskInformation(hd, &sz, &b.i, NULL);
		w->audited++;
		if (rc || b.i.Size.VirtualSize != w->size)
			WFAIL(w, "size: 0x%08X %llu", rc, (unsigned long long)b.i.Size.VirtualSize);
		size_t found = 0;
		for (uint64_t off = 0; off < w->size;) {
			ULONG n = 4;
			ULONG64 done = 0;
			rc = QueryChangesVirtualDisk(hd, W(w->id), off, w->size - off, 0, r, &n,
			                             &done);
			w->audited++;
			if (rc || !done)
				WFAIL(w, "query at %llu: 0x%08X", (unsigned long long)off, rc);
			found += n;
			off += done;
		}
		if (found != w->nranges)
			WFAIL(w, "%zu ranges, expected %zu", found, w->nranges);
		rc = AttachVirtualDisk(hd, NULL,
		                       ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY |
		                           ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST,
		                       0, NULL, NULL);
		w->audited++;
		if (rc)
			WFAIL(w, "attach: 0x%08X", rc);
		for (uint64_t off = 0; off < w->size; off += 256 * 1024) {
			OVERLAPPED ov;
			DWORD got;
			if (!read_at(hd, buf, off, 256 * 1024, &got, &ov) || got != 256 * 1024)
				WFAIL(w, "read at %llu: %u", (unsigned long long)off,
				      GetLastError());
			if (memcmp(buf, w->expect + off, 256 * 1024))
				WFAIL(w, "bytes differ at %llu", (unsigned long long)off);
		}
		rc = DetachVirtualDisk(hd, 0, 0);
		w->audited++;
		if (rc)
			WFAIL(w, "detach: 0x%08X", rc);
		SetLastError(w->my_error);
		if (!CloseHandle(hd))
			WFAIL(w, "close: %u", GetLastError());
		w->audited++;
		hd = NULL;
		if (GetLastError() != w->my_error)
			WFAIL(w, "last error %u, expected this thread's %u", GetLastError(),
			      w->my_error);
	next:
		if (hd)
			CloseHandle(hd);
		w->last = hd;
	}
	free(buf);
	return NULL;
}

static void test_threads(void **s)
{
	(void)s;
	struct env e;
	env_new(&e, "threads", 34, "alpha", "6MiB", "4MiB,sector=4096,block=1MiB");
	guest_write(&e, WL_RANDOM, 2 * MIB, 1);
	int64_t rp;
	assert_int_equal(host_refpoint_create(e.h, e.vm, 2, &rp), 0);
	guest_write(&e, WL_RANDOM, 1 * MIB, 2);
	struct worker w[2];
	memset(w, 0, sizeof w);
	const char *paths[2] = {base_win(&e),
	                        "C:\\Hyper-V\\alpha\\Virtual Hard Disks\\alpha_1.vhdx"};
	struct ranges *ref = ranges_new();
	for (int i = 0; i < 2; i++) {
		snprintf(w[i].path, sizeof w[i].path, "%s", paths[i]);
		snprintf(w[i].id, sizeof w[i].id, "%s",
		         q_text(&e, P("SELECT rct_id FROM refpoint_disk WHERE disk_id=%lld",
		                      (long long)e.disk[i])));
		w[i].size = e.m[i].size;
		w[i].expect = e.m[i].b;
		host_answer(&e, i, 0, w[i].id, 0, w[i].size, ref);
		w[i].nranges = ref->n;
		assert_true(ref->n > 4);
		w[i].iters = 12;
		w[i].my_error = 1000 + (DWORD)i;
	}
	free(ref);
	int64_t rows = audit_rows(&e);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	/* meanwhile: garbage handles from this thread are refused without disturbing the table */
	int spins = 0;
	for (; spins < 2000; spins++) {
		assert_false(CloseHandle((HANDLE)(uintptr_t)(0x1000 + spins * 16)));
		assert_int_equal(DetachVirtualDisk(INVALID_HANDLE_VALUE, 0, 0),
		                 ERROR_INVALID_HANDLE);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++)
		if (w[i].failures)
			fail_msg("worker %d: %d failures, first: %s", i, w[i].failures, w[i].msg);
	/* nothing lost: one audit row per call of either thread */
	assert_int_equal(audit_rows(&e), rows + w[0].audited + w[1].audited);
	/* the handles they closed stay dead */
	for (int i = 0; i < 2; i++)
		assert_int_equal(GetVirtualDiskInformation(w[i].last, &(ULONG){32},
		                                           &(GET_VIRTUAL_DISK_INFO){.Version = 1},
		                                           NULL),
		                 ERROR_INVALID_HANDLE);
	env_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_invalid_parameters),
	    cmocka_unit_test(test_open_paths),
	    cmocka_unit_test(test_open_forward_slash_path),
	    cmocka_unit_test(test_open_storage_types),
	    cmocka_unit_test(test_open_versions),
	    cmocka_unit_test(test_open_sharing),
	    cmocka_unit_test(test_open_blocked_merge_chain),
	    cmocka_unit_test(test_open_unheld_file_without_block),
	    cmocka_unit_test(test_close_handle),
	    cmocka_unit_test(test_bogus_handles),
	    cmocka_unit_test(test_last_error),
	    cmocka_unit_test(test_info_parameters),
	    cmocka_unit_test(test_info_base_disks),
	    cmocka_unit_test(test_info_avhdx),
	    cmocka_unit_test(test_info_parent_on_base),
	    cmocka_unit_test(test_info_change_tracking_state),
	    cmocka_unit_test(test_set_info),
	    cmocka_unit_test(test_query_matches_truth),
	    cmocka_unit_test(test_query_errors),
	    cmocka_unit_test(test_query_frozen_chain),
	    cmocka_unit_test(test_query_host_settings),
	    cmocka_unit_test(test_query_paging_mistakes),
	    cmocka_unit_test(test_attach_detach),
	    cmocka_unit_test(test_detach_needs_detach_access),
	    cmocka_unit_test(test_physical_path),
	    cmocka_unit_test(test_physical_path_needs_get_info),
	    cmocka_unit_test(test_readfile_errors),
	    cmocka_unit_test(test_readfile_content),
	    cmocka_unit_test(test_writefile_and_cancel),
	    cmocka_unit_test(test_audit_every_call),
	    cmocka_unit_test(test_audit_reads_and_completions),
	    cmocka_unit_test(test_file_merged_under_handle),
	    cmocka_unit_test(test_corrupt_tracking_file),
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
