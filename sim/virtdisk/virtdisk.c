/*
 * virtdisk.c — libvirtdisk: the Win32 virtdisk API (hyperv/virtdisk/virtdisk.h) implemented over a
 * simulated host's state folder, so an engine written for Windows runs unchanged on Linux.
 *
 * The machine: paths in the Windows form under the host's storage root (`C:\Hyper-V\…`, as WMI
 * shows them) resolve in the folder named by $HVSIM_HOST (the simulated machine this process runs
 * on); an absolute POSIX path inside a host folder works too (the folder is found by walking up to
 * host.db).
 *
 * Behaviour (virtdisk.md A2; [I] choices are settings, `hvsim host set`):
 *   - OpenVirtualDisk: versions 1–3; V2/V3 with an access mask other than NONE is
 *     ERROR_INVALID_PARAMETER (virtdisk.strict, default 1). Writing to a file that is frozen under a
 *     checkpoint, or to the live leaf of a running VM, is ERROR_SHARING_VIOLATION; so is any open
 *     of a chain that holds a file whose merge is pending but blocked (the leaked-reference-point
 *     failure of bareos#2624). Read-only opens of frozen files work.
 *   - GetVirtualDiskInformation: every version up to CHANGE_TRACKING_STATE; a buffer too small for
 *     the variable part is ERROR_INSUFFICIENT_BUFFER with the size needed.
 *   - QueryChangesVirtualDisk: ranges in virtual-disk offsets, paged on ProcessedLength, at most
 *     virtdisk.max_ranges_per_call per call (0 = the caller's capacity) so clients that do not loop
 *     are caught; with virtdisk.more_data_on_partial=1 a partial page returns ERROR_MORE_DATA. A
 *     handle closed while a partial answer was never continued records a client mistake.
 *   - AttachVirtualDisk READ_ONLY (NO_LOCAL_HOST for ReadFile on the handle, as bareos does);
 *     ReadFile at OVERLAPPED offsets, sector-aligned; without NO_LOCAL_HOST ReadFile on the handle
 *     is ERROR_BAD_COMMAND (Vanara#418) and GetVirtualDiskPhysicalPath gives \\.\PhysicalDriveN.
 *   - Every call with a resolvable host is recorded in the host's audit log (api "virtdisk"),
 *     except successful ReadFile/GetOverlappedResult/CancelIoEx: an engine makes one per few MiB,
 *     and the Attach/QueryChanges records already say what it read (failures are recorded).
 *
 * The handle table and the last-error slot are process state, as they are in Windows: the table
 * (mutex-protected) lets a stale or foreign HANDLE be refused with ERROR_INVALID_HANDLE instead of
 * being dereferenced.
 *
 * Must not: read the wall clock; change disk contents (everything here is read-only).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../hyperv/virtdisk/initguid.h"
#include "../../hyperv/virtdisk/virtdisk.h"
#include "../../hyperv/vhdx/vhdx.h"
#include "../host/host_internal.h"
#include "../truth/truth.h"

#define VD_MAGIC 0x56444b48u /* "HKDV" */

struct vd {
	uint32_t magic;
	struct vd *next;
	struct host *h;
	int64_t disk_id;
	int depth;
	char rel[1100];    /* chain file, folder-relative */
	char path8[1100];  /* as the caller named it (UTF-8) */
	bool info_only, read_only, v1;
	unsigned access;
	bool attached, no_local_host;
	unsigned drive;
	struct vhdx_file *f;
	uint64_t size;
	uint32_t lsec;
	/* a QueryChangesVirtualDisk answer that stopped short and was not continued yet */
	bool pending;
	uint64_t pend_next, pend_end;
	char pend_id[600];
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vd *table;
static unsigned next_drive = 2; /* PhysicalDrive0/1 are the "real" disks of the simulated machine */
static _Thread_local DWORD last_error;

DWORD WINAPI GetLastError(void) { return last_error; }
void WINAPI SetLastError(DWORD e) { last_error = e; }

static void table_add(struct vd *v)
{
	pthread_mutex_lock(&table_lock);
	v->next = table;
	table = v;
	pthread_mutex_unlock(&table_lock);
}

/* The live object a HANDLE names, or NULL (stale, foreign or INVALID_HANDLE_VALUE). */
static struct vd *lookup(HANDLE hd)
{
	pthread_mutex_lock(&table_lock);
	struct vd *v = table;
	while (v && v != (struct vd *)hd)
		v = v->next;
	pthread_mutex_unlock(&table_lock);
	return v && v->magic == VD_MAGIC ? v : NULL;
}

static void table_remove(struct vd *v)
{
	pthread_mutex_lock(&table_lock);
	for (struct vd **p = &table; *p; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			break;
		}
	pthread_mutex_unlock(&table_lock);
}

/* ---- text ------------------------------------------------------------------------------------- */

/* UTF-16 (NUL-terminated, at most max units) to UTF-8; false on bad input. */
static bool w_to_utf8(PCWSTR w, char *out, size_t size, size_t max)
{
	size_t k = 0;
	for (size_t i = 0; w[i]; i++) {
		if (i >= max || k + 5 > size)
			return false;
		uint32_t c = w[i];
		if (c >= 0xD800 && c <= 0xDBFF && w[i + 1] >= 0xDC00 && w[i + 1] <= 0xDFFF) {
			c = 0x10000 + ((c - 0xD800) << 10) + (w[i + 1] - 0xDC00);
			i++;
		} else if (c >= 0xD800 && c <= 0xDFFF) {
			return false;
		}
		if (c < 0x80) {
			out[k++] = (char)c;
		} else if (c < 0x800) {
			out[k++] = (char)(0xC0 | c >> 6);
			out[k++] = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			out[k++] = (char)(0xE0 | c >> 12);
			out[k++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[k++] = (char)(0x80 | (c & 0x3F));
		} else {
			out[k++] = (char)(0xF0 | c >> 18);
			out[k++] = (char)(0x80 | ((c >> 12) & 0x3F));
			out[k++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[k++] = (char)(0x80 | (c & 0x3F));
		}
	}
	out[k] = 0;
	return true;
}

/* ASCII/UTF-8 (BMP) to UTF-16 units; returns the unit count written (without NUL) or needed. */
static size_t utf8_to_w(const char *s, WCHAR *out, size_t cap)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		uint32_t c = *p++;
		if (c >= 0xE0 && p[0] && p[1]) {
			c = ((c & 0x0F) << 12) | ((uint32_t)(p[0] & 0x3F) << 6) | (p[1] & 0x3F);
			p += 2;
		} else if (c >= 0xC0 && p[0]) {
			c = ((c & 0x1F) << 6) | (p[0] & 0x3F);
			p++;
		}
		if (out && n < cap)
			out[n] = (WCHAR)c;
		n++;
	}
	return n;
}

static void guid_from_text(const char *t, GUID *g)
{
	struct hv_guid hg;
	memset(g, 0, sizeof *g);
	if (hv_guid_parse(t, strlen(t), &hg))
		return;
	g->Data1 = hv_le32(hg.b);
	g->Data2 = hv_le16(hg.b + 4);
	g->Data3 = hv_le16(hg.b + 6);
	memcpy(g->Data4, hg.b + 8, 8);
}

/* ---- audit ------------------------------------------------------------------------------------ */

static DWORD audit(struct host *h, const char *call, DWORD rc, const char *mistake, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static DWORD audit(struct host *h, const char *call, DWORD rc, const char *mistake, const char *fmt, ...)
{
	if (!h)
		return rc;
	char args[1600], res[32];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(res, sizeof res, rc ? "0x%08X" : "%u", rc);
	truth_audit(host_db(h), host_now(h), "virtdisk", call, args, res, mistake);
	return rc;
}

/* ---- OpenVirtualDisk -------------------------------------------------------------------------- */

static bool env_nosync(void)
{
	const char *e = getenv("HVSIM_NOSYNC");
	return e && e[0] == '1';
}

/* The host folder a path lives in: $HVSIM_HOST for Windows-form paths, else walk up to host.db. */
static bool host_for(const char *path, char *dir, size_t size)
{
	if (path[0] == '/') {
		snprintf(dir, size, "%s", path);
		for (char *s = strrchr(dir, '/'); s; s = strrchr(dir, '/')) {
			*s = 0;
			char probe[4200];
			snprintf(probe, sizeof probe, "%s/host.db", *dir ? dir : "");
			if (!access(probe, F_OK))
				return *dir != 0;
		}
		return false;
	}
	const char *e = getenv("HVSIM_HOST");
	if (!e || !*e)
		return false;
	snprintf(dir, size, "%s", e);
	return true;
}

static int64_t vm_state_of_disk(struct host *h, int64_t disk)
{
	int64_t st = 0;
	hdb_int(h, &st, 0, "SELECT v.state FROM disk d JOIN vm v ON v.id=d.vm_id WHERE d.id=%lld", (long long)disk);
	return st;
}

DWORD WINAPI OpenVirtualDisk(PVIRTUAL_STORAGE_TYPE vst, PCWSTR Path, VIRTUAL_DISK_ACCESS_MASK mask,
			     OPEN_VIRTUAL_DISK_FLAG flags, POPEN_VIRTUAL_DISK_PARAMETERS params, PHANDLE out)
{
	char path8[1100], dir[4096];
	if (!vst || !Path || !out || ((unsigned)mask & ~(unsigned)VIRTUAL_DISK_ACCESS_ALL) ||
	    !w_to_utf8(Path, path8, sizeof path8, 1000))
		return ERROR_INVALID_PARAMETER;
	*out = NULL;
	if (params && (params->Version < OPEN_VIRTUAL_DISK_VERSION_1 || params->Version > OPEN_VIRTUAL_DISK_VERSION_3))
		return ERROR_INVALID_PARAMETER;
	if (!host_for(path8, dir, sizeof dir))
		return ERROR_PATH_NOT_FOUND;
	struct host *h;
	if (host_open(dir, env_nosync() ? HOST_OPEN_NOSYNC : 0, &h))
		return ERROR_PATH_NOT_FOUND;
	DWORD rc = ERROR_SUCCESS;
	struct vd *v = NULL;
	static const GUID zero;
	bool ms = !memcmp(&vst->VendorId, &VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT, sizeof(GUID));
	bool unk = !memcmp(&vst->VendorId, &zero, sizeof(GUID));
	bool v23 = params && params->Version >= OPEN_VIRTUAL_DISK_VERSION_2;
	int64_t disk;
	int depth;
	if (!ms && !unk)
		rc = ERROR_VIRTDISK_PROVIDER_NOT_FOUND;
	else if (vst->DeviceId != VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN && vst->DeviceId != VIRTUAL_STORAGE_TYPE_DEVICE_VHDX)
		rc = vst->DeviceId == VIRTUAL_STORAGE_TYPE_DEVICE_VHD ? ERROR_VHD_FORMAT_UNKNOWN : ERROR_VIRTDISK_PROVIDER_NOT_FOUND;
	else if (v23 && mask != VIRTUAL_DISK_ACCESS_NONE && host_setting_int(h, "virtdisk.strict", 1))
		rc = ERROR_INVALID_PARAMETER;
	else if (host_path_lookup(h, path8, &disk, &depth))
		rc = ERROR_FILE_NOT_FOUND;
	if (rc)
		goto out;
	if (!(v = calloc(1, sizeof *v))) {
		rc = ERROR_NOT_ENOUGH_MEMORY;
		goto out;
	}
	v->magic = VD_MAGIC;
	v->h = h;
	v->disk_id = disk;
	v->depth = depth;
	v->access = (unsigned)mask;
	snprintf(v->path8, sizeof v->path8, "%s", path8);
	if (v23) {
		v->info_only = params->Version2.GetInfoOnly;
		v->read_only = params->Version2.ReadOnly || v->info_only;
	} else {
		v->v1 = true;
		unsigned rw = VIRTUAL_DISK_ACCESS_ATTACH_RW | VIRTUAL_DISK_ACCESS_CREATE | VIRTUAL_DISK_ACCESS_METAOPS;
		v->read_only = !((unsigned)mask & rw) || (params && params->Version1.RWDepth == 0);
		v->info_only = !((unsigned)mask & ~(unsigned)VIRTUAL_DISK_ACCESS_GET_INFO);
	}
	struct host_disk d;
	if (host_disk_load(h, disk, &d)) {
		rc = ERROR_FILE_NOT_FOUND;
		goto out;
	}
	v->size = d.size;
	v->lsec = d.logical_sector;
	sqlite3_stmt *st;
	if (hdb_prep(h, &st, "SELECT path FROM chain WHERE disk_id=?1 AND depth=?2") == 0) {
		sqlite3_bind_int64(st, 1, disk);
		sqlite3_bind_int(st, 2, depth);
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(v->rel, sizeof v->rel, "%s", hdb_text(st, 0));
		sqlite3_finalize(st);
	}
	/* sharing: a blocked merge holds the chain (only while the VM's merge is actually blocked);
	 * writers need the leaf of a VM that is not running */
	int64_t blocked = 0, vm_id = d.vm_id;
	if (host_merge_block_reason(h, vm_id))
		hdb_int(h, &blocked, 0,
		"SELECT count(*) FROM chain c WHERE c.disk_id=%lld AND c.depth<=%d AND c.depth<(SELECT max(depth) FROM chain"
		" WHERE disk_id=%lld) AND NOT EXISTS(SELECT 1 FROM snapshot_disk s WHERE s.disk_id=c.disk_id AND"
		" s.depth=c.depth)", (long long)disk, depth, (long long)disk);
	if (blocked)
		rc = ERROR_SHARING_VIOLATION;
	else if (!v->read_only && (depth < d.leaf_depth || vm_state_of_disk(h, disk) == HOST_VM_RUNNING))
		rc = ERROR_SHARING_VIOLATION;
out:
	audit(h, "OpenVirtualDisk", rc, NULL, "path=%s mask=0x%x flags=0x%x version=%d%s%s", path8, (unsigned)mask,
	      (unsigned)flags, params ? (int)params->Version : 0, v && v->info_only ? " GetInfoOnly" : "",
	      v && v->read_only ? " ReadOnly" : "");
	if (rc) {
		free(v);
		host_close(h);
		return rc;
	}
	table_add(v);
	*out = v;
	return ERROR_SUCCESS;
}

/* ---- CloseHandle ------------------------------------------------------------------------------ */

BOOL WINAPI CloseHandle(HANDLE hd)
{
	struct vd *v = lookup(hd);
	if (!v) {
		SetLastError(ERROR_INVALID_HANDLE);
		return FALSE;
	}
	table_remove(v);
	char mistake[2600] = "";
	if (v->pending)
		snprintf(mistake, sizeof mistake,
			 "QueryChangesVirtualDisk on %s since %s stopped at offset %llu of %llu and was never continued"
			 " (the client did not page on ProcessedLength)", v->path8, v->pend_id,
			 (unsigned long long)v->pend_next, (unsigned long long)v->pend_end);
	audit(v->h, "CloseHandle", 0, *mistake ? mistake : NULL, "path=%s", v->path8);
	vhdx_close(v->f);
	host_close(v->h);
	v->magic = 0;
	free(v);
	return TRUE;
}

/* ---- GetVirtualDiskInformation ---------------------------------------------------------------- */

DWORD WINAPI GetVirtualDiskInformation(HANDLE hd, PULONG size, PGET_VIRTUAL_DISK_INFO info, PULONG used)
{
	struct vd *v = lookup(hd);
	if (!v)
		return ERROR_INVALID_HANDLE;
	if (!size || !info || *size < offsetof(GET_VIRTUAL_DISK_INFO, Size))
		return audit(v->h, "GetVirtualDiskInformation", ERROR_INVALID_PARAMETER, NULL, "path=%s", v->path8);
	if (v->v1 && !(v->access & VIRTUAL_DISK_ACCESS_GET_INFO))
		return audit(v->h, "GetVirtualDiskInformation", ERROR_ACCESS_DENIED, NULL, "path=%s (no GET_INFO access)",
			     v->path8);
	GET_VIRTUAL_DISK_INFO_VERSION ver = info->Version;
	struct host_disk d;
	if (host_disk_load(v->h, v->disk_id, &d))
		return audit(v->h, "GetVirtualDiskInformation", ERROR_FILE_NOT_FOUND, NULL, "path=%s", v->path8);
	ULONG need = sizeof(GET_VIRTUAL_DISK_INFO);
	DWORD rc = ERROR_SUCCESS;
	char text[1200] = "";
	switch (ver) {
	case GET_VIRTUAL_DISK_INFO_PARENT_LOCATION: {
		if (v->depth == 0) {
			rc = ERROR_VHD_INVALID_TYPE;
			break;
		}
		sqlite3_stmt *st;
		if (!hdb_prep(v->h, &st, "SELECT path FROM chain WHERE disk_id=?1 AND depth=?2")) {
			sqlite3_bind_int64(st, 1, v->disk_id);
			sqlite3_bind_int(st, 2, v->depth - 1);
			if (sqlite3_step(st) == SQLITE_ROW) {
				char *win = host_path_windows(v->h, hdb_text(st, 0));
				snprintf(text, sizeof text, "%s", win ? win : "");
				free(win);
			}
			sqlite3_finalize(st);
		}
		ULONG n = (ULONG)utf8_to_w(text, NULL, 0);
		need = (ULONG)offsetof(GET_VIRTUAL_DISK_INFO, ParentLocation.ParentLocationBuffer) + (n + 2) * sizeof(WCHAR);
		break;
	}
	case GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE: {
		bool en = false, newer = false;
		if (host_rct_state(v->h, v->disk_id, v->depth, &en, text, sizeof text, &newer))
			rc = ERROR_CTLOG_INCONSISTENT_TRACKING_FILE;
		ULONG n = (ULONG)utf8_to_w(text, NULL, 0);
		need = (ULONG)offsetof(GET_VIRTUAL_DISK_INFO, ChangeTrackingState.MostRecentId) + (n + 1) * sizeof(WCHAR);
		if (need < sizeof(GET_VIRTUAL_DISK_INFO))
			need = sizeof(GET_VIRTUAL_DISK_INFO);
		if (!rc && *size >= need) {
			info->ChangeTrackingState.Enabled = en;
			info->ChangeTrackingState.NewerChanges = newer;
		}
		break;
	}
	case GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER:
	case GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP:
		if (v->depth == 0)
			rc = ERROR_VHD_INVALID_TYPE; /* a base disk has no parent [I, as PARENT_LOCATION] */
		break;
	case GET_VIRTUAL_DISK_INFO_SIZE: case GET_VIRTUAL_DISK_INFO_IDENTIFIER: case GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE:
	case GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE: case GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED:
	case GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK: case GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE:
	case GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE: case GET_VIRTUAL_DISK_INFO_FRAGMENTATION:
	case GET_VIRTUAL_DISK_INFO_IS_LOADED: case GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID:
		break;
	default:
		rc = ERROR_INVALID_PARAMETER;
	}
	if (!rc && *size < need) {
		*size = need;
		rc = ERROR_INSUFFICIENT_BUFFER;
	}
	if (rc)
		return audit(v->h, "GetVirtualDiskInformation", rc, NULL, "path=%s version=%d", v->path8, (int)ver);
	char *abs = host_abs(v->h, v->rel);
	struct stat sb = {0};
	if (abs)
		stat(abs, &sb);
	free(abs);
	switch (ver) {
	case GET_VIRTUAL_DISK_INFO_SIZE:
		info->Size.VirtualSize = d.size;
		info->Size.PhysicalSize = (ULONGLONG)sb.st_size;
		info->Size.BlockSize = v->depth ? 2u << 20 : d.block_size;
		info->Size.SectorSize = d.logical_sector;
		break;
	case GET_VIRTUAL_DISK_INFO_IDENTIFIER:
	case GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID:
	case GET_VIRTUAL_DISK_INFO_PARENT_IDENTIFIER:
		guid_from_text(d.virtual_disk_id, &info->VirtualDiskId);
		break;
	case GET_VIRTUAL_DISK_INFO_PARENT_TIMESTAMP:
		info->ParentTimestamp = 0;
		break;
	case GET_VIRTUAL_DISK_INFO_PARENT_LOCATION: {
		info->ParentLocation.ParentResolved = TRUE;
		WCHAR *w = info->ParentLocation.ParentLocationBuffer;
		size_t n = utf8_to_w(text, w, need);
		w[n] = 0;
		w[n + 1] = 0;
		break;
	}
	case GET_VIRTUAL_DISK_INFO_VIRTUAL_STORAGE_TYPE:
		info->VirtualStorageType.DeviceId = VIRTUAL_STORAGE_TYPE_DEVICE_VHDX;
		info->VirtualStorageType.VendorId = VIRTUAL_STORAGE_TYPE_VENDOR_MICROSOFT;
		break;
	case GET_VIRTUAL_DISK_INFO_PROVIDER_SUBTYPE:
		info->ProviderSubtype = v->depth ? 4 : d.fixed ? 2 : 3;
		break;
	case GET_VIRTUAL_DISK_INFO_IS_4K_ALIGNED:
		info->Is4kAligned = TRUE;
		break;
	case GET_VIRTUAL_DISK_INFO_IS_LOADED:
		info->IsLoaded = v->attached;
		break;
	case GET_VIRTUAL_DISK_INFO_PHYSICAL_DISK:
		info->PhysicalDisk.LogicalSectorSize = d.logical_sector;
		info->PhysicalDisk.PhysicalSectorSize = d.physical_sector;
		info->PhysicalDisk.IsRemote = FALSE;
		break;
	case GET_VIRTUAL_DISK_INFO_VHD_PHYSICAL_SECTOR_SIZE:
		info->VhdPhysicalSectorSize = d.physical_sector;
		break;
	case GET_VIRTUAL_DISK_INFO_SMALLEST_SAFE_VIRTUAL_SIZE:
		info->SmallestSafeVirtualSize = d.size;
		break;
	case GET_VIRTUAL_DISK_INFO_FRAGMENTATION:
		info->FragmentationPercentage = 0;
		break;
	case GET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE: {
		WCHAR *w = info->ChangeTrackingState.MostRecentId;
		size_t n = utf8_to_w(text, w, need);
		w[n] = 0;
		break;
	}
	default:
		break;
	}
	if (used)
		*used = need;
	return audit(v->h, "GetVirtualDiskInformation", 0, NULL, "path=%s version=%d", v->path8, (int)ver);
}

DWORD WINAPI SetVirtualDiskInformation(HANDLE hd, PSET_VIRTUAL_DISK_INFO info)
{
	struct vd *v = lookup(hd);
	if (!v)
		return ERROR_INVALID_HANDLE;
	DWORD rc = ERROR_SUCCESS;
	if (!info)
		rc = ERROR_INVALID_PARAMETER;
	else if (info->Version != SET_VIRTUAL_DISK_INFO_CHANGE_TRACKING_STATE)
		rc = info->Version >= SET_VIRTUAL_DISK_INFO_PARENT_PATH && info->Version <= SET_VIRTUAL_DISK_INFO_PARENT_LOCATOR
			     ? ERROR_NOT_SUPPORTED : ERROR_INVALID_PARAMETER;
	else if (v->info_only)
		rc = ERROR_ACCESS_DENIED;
	else {
		bool en = false, newer;
		char id[300];
		if (host_rct_state(v->h, v->disk_id, v->depth, &en, id, sizeof id, &newer))
			rc = ERROR_CTLOG_INCONSISTENT_TRACKING_FILE;
		else if (en == (info->ChangeTrackingEnabled != 0))
			rc = ERROR_CTLOG_INVALID_TRACKING_STATE; /* "…or already in the requested state" [I] */
		else if (host_rct_set_enabled(v->h, v->disk_id, info->ChangeTrackingEnabled != 0))
			rc = ERROR_CTLOG_INCONSISTENT_TRACKING_FILE;
	}
	return audit(v->h, "SetVirtualDiskInformation", rc, NULL, "path=%s version=%d enabled=%d", v->path8,
		     info ? (int)info->Version : -1, info ? (int)info->ChangeTrackingEnabled : -1);
}

/* ---- QueryChangesVirtualDisk ------------------------------------------------------------------ */

DWORD WINAPI QueryChangesVirtualDisk(HANDLE hd, PCWSTR ChangeTrackingId, ULONG64 ByteOffset, ULONG64 ByteLength,
				     QUERY_CHANGES_VIRTUAL_DISK_FLAG Flags, PQUERY_CHANGES_VIRTUAL_DISK_RANGE Ranges,
				     PULONG RangeCount, PULONG64 ProcessedLength)
{
	struct vd *v = lookup(hd);
	if (!v)
		return ERROR_INVALID_HANDLE;
	char id[600] = "";
	DWORD rc = ERROR_SUCCESS;
	if (!ChangeTrackingId || !Ranges || !RangeCount || !ProcessedLength || Flags != QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE ||
	    !*RangeCount || !w_to_utf8(ChangeTrackingId, id, sizeof id, VIRTUAL_DISK_MAXIMUM_CHANGE_TRACKING_ID_LENGTH))
		rc = ERROR_INVALID_PARAMETER;
	else if (v->v1 && !(v->access & VIRTUAL_DISK_ACCESS_GET_INFO))
		rc = ERROR_ACCESS_DENIED;
	else if (ByteOffset % v->lsec || ByteLength % v->lsec || ByteOffset > v->size || ByteLength > v->size - ByteOffset)
		rc = ERROR_INVALID_PARAMETER;
	if (rc)
		return audit(v->h, "QueryChangesVirtualDisk", rc, NULL, "path=%s id=%s offset=%llu length=%llu", v->path8, id,
			     (unsigned long long)ByteOffset, (unsigned long long)ByteLength);
	uint32_t cap = *RangeCount;
	int64_t lim = host_setting_int(v->h, "virtdisk.max_ranges_per_call", 0);
	if (lim > 0 && (uint64_t)lim < cap)
		cap = (uint32_t)lim;
	struct host_range *rg = malloc((size_t)cap * sizeof *rg);
	uint32_t n = 0, w32 = 0;
	uint64_t done = 0;
	if (!rg)
		rc = ERROR_NOT_ENOUGH_MEMORY;
	else if (host_rct_query(v->h, v->disk_id, v->depth, id, ByteOffset, ByteLength, rg, cap, &n, &done, &w32))
		rc = w32 ? w32 : ERROR_CTLOG_INCONSISTENT_TRACKING_FILE; /* the sidecar could not be read */
	*RangeCount = rc ? 0 : n;
	*ProcessedLength = rc ? 0 : done;
	for (uint32_t i = 0; !rc && i < n; i++) {
		Ranges[i].ByteOffset = rg[i].offset;
		Ranges[i].ByteLength = rg[i].length;
		Ranges[i].Reserved = 0;
	}
	free(rg);
	/* paging bookkeeping: continuing where a short answer ended clears it */
	if (!rc) {
		if (v->pending && ByteOffset == v->pend_next && !strcmp(id, v->pend_id))
			v->pending = false;
		if (done < ByteLength) {
			v->pending = true;
			v->pend_next = ByteOffset + done;
			v->pend_end = ByteOffset + ByteLength;
			snprintf(v->pend_id, sizeof v->pend_id, "%s", id);
			if (host_setting_int(v->h, "virtdisk.more_data_on_partial", 0))
				rc = ERROR_MORE_DATA;
		}
	}
	return audit(v->h, "QueryChangesVirtualDisk", rc, NULL, "path=%s id=%s offset=%llu length=%llu -> %u ranges, processed %llu",
		     v->path8, id, (unsigned long long)ByteOffset, (unsigned long long)ByteLength, n, (unsigned long long)done);
}

/* ---- attach, read, detach --------------------------------------------------------------------- */

DWORD WINAPI AttachVirtualDisk(HANDLE hd, PSECURITY_DESCRIPTOR sd, ATTACH_VIRTUAL_DISK_FLAG flags, ULONG pflags,
			       PATTACH_VIRTUAL_DISK_PARAMETERS params, LPOVERLAPPED ov)
{
	(void)sd;
	(void)pflags;
	(void)ov;
	struct vd *v = lookup(hd);
	if (!v)
		return ERROR_INVALID_HANDLE;
	DWORD rc = ERROR_SUCCESS;
	if (params && (params->Version < 1 || params->Version > 2))
		rc = ERROR_INVALID_PARAMETER;
	else if (v->info_only || (v->v1 && !(v->access & (VIRTUAL_DISK_ACCESS_ATTACH_RO | VIRTUAL_DISK_ACCESS_ATTACH_RW))))
		rc = ERROR_ACCESS_DENIED;
	else if (!(flags & ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY))
		rc = ERROR_NOT_SUPPORTED; /* the simulator attaches for reading only */
	else if (v->attached)
		rc = ERROR_VHD_INVALID_STATE;
	else {
		char *abs = host_abs(v->h, v->rel);
		if (!abs || vhdx_open(abs, VHDX_OPEN_RDONLY, &v->f))
			rc = ERROR_FILE_CORRUPT;
		free(abs);
	}
	if (!rc) {
		v->attached = true;
		v->no_local_host = flags & ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST;
		pthread_mutex_lock(&table_lock);
		v->drive = next_drive++;
		pthread_mutex_unlock(&table_lock);
	}
	return audit(v->h, "AttachVirtualDisk", rc, NULL, "path=%s flags=0x%x", v->path8, (unsigned)flags);
}

DWORD WINAPI DetachVirtualDisk(HANDLE hd, DETACH_VIRTUAL_DISK_FLAG flags, ULONG pflags)
{
	(void)pflags;
	struct vd *v = lookup(hd);
	if (!v)
		return ERROR_INVALID_HANDLE;
	DWORD rc = flags ? ERROR_INVALID_PARAMETER
		   : v->v1 && !(v->access & VIRTUAL_DISK_ACCESS_DETACH) ? ERROR_ACCESS_DENIED
		   : !v->attached ? ERROR_VHD_INVALID_STATE : ERROR_SUCCESS;
	if (!rc) {
		vhdx_close(v->f);
		v->f = NULL;
		v->attached = false;
	}
	return audit(v->h, "DetachVirtualDisk", rc, NULL, "path=%s", v->path8);
}

DWORD WINAPI GetVirtualDiskPhysicalPath(HANDLE hd, PULONG size, PWSTR path)
{
	struct vd *v = lookup(hd);
	if (!v)
		return ERROR_INVALID_HANDLE;
	DWORD rc = ERROR_SUCCESS;
	char text[64];
	snprintf(text, sizeof text, "\\\\.\\PhysicalDrive%u", v->drive);
	ULONG need = (ULONG)(utf8_to_w(text, NULL, 0) + 1) * sizeof(WCHAR);
	if (!size)
		rc = ERROR_INVALID_PARAMETER;
	else if (v->v1 && !(v->access & VIRTUAL_DISK_ACCESS_GET_INFO))
		rc = ERROR_ACCESS_DENIED;
	else if (!v->attached || v->no_local_host)
		rc = ERROR_VHD_INVALID_STATE;
	else if (!path || *size < need) {
		*size = need;
		rc = ERROR_INSUFFICIENT_BUFFER;
	} else {
		size_t n = utf8_to_w(text, path, *size / sizeof(WCHAR));
		path[n] = 0;
		*size = need;
	}
	return audit(v->h, "GetVirtualDiskPhysicalPath", rc, NULL, "path=%s", v->path8);
}

BOOL WINAPI ReadFile(HANDLE hd, LPVOID buf, DWORD n, LPDWORD done, LPOVERLAPPED ov)
{
	struct vd *v = lookup(hd);
	if (!v) {
		SetLastError(ERROR_INVALID_HANDLE);
		return FALSE;
	}
	uint64_t off = ov ? ((uint64_t)ov->OffsetHigh << 32 | ov->Offset) : 0;
	DWORD rc = ERROR_SUCCESS;
	DWORD got = 0;
	if (!buf || !ov)
		rc = ERROR_INVALID_PARAMETER;
	else if (!v->attached || !v->no_local_host)
		rc = ERROR_BAD_COMMAND; /* only a NO_LOCAL_HOST attach reads through the handle */
	else if (off % v->lsec || n % v->lsec)
		rc = ERROR_INVALID_PARAMETER; /* unbuffered disk I/O is sector-aligned */
	else if (off >= v->size)
		rc = ERROR_HANDLE_EOF;
	else {
		got = off + n > v->size ? (DWORD)(v->size - off) : n;
		if (vhdx_read(v->f, buf, off, got))
			rc = ERROR_FILE_CORRUPT;
	}
	if (rc)
		got = 0;
	if (done)
		*done = got;
	if (ov) {
		ov->Internal = rc;
		ov->InternalHigh = got;
	}
	/* reads are frequent: only failures are audited, successes are summarised by the caller's
	 * QueryChanges/Attach records */
	if (rc)
		audit(v->h, "ReadFile", rc, NULL, "path=%s offset=%llu length=%u", v->path8, (unsigned long long)off, n);
	SetLastError(rc);
	return rc ? FALSE : TRUE;
}

BOOL WINAPI WriteFile(HANDLE hd, LPCVOID buf, DWORD n, LPDWORD done, LPOVERLAPPED ov)
{
	(void)buf;
	(void)n;
	(void)ov;
	struct vd *v = lookup(hd);
	if (done)
		*done = 0;
	SetLastError(v ? ERROR_ACCESS_DENIED : ERROR_INVALID_HANDLE);
	if (v)
		audit(v->h, "WriteFile", ERROR_ACCESS_DENIED, NULL, "path=%s (read-only simulation)", v->path8);
	return FALSE;
}

BOOL WINAPI GetOverlappedResult(HANDLE hd, LPOVERLAPPED ov, LPDWORD n, BOOL wait)
{
	(void)wait;
	if (!lookup(hd) || !ov) {
		SetLastError(!ov ? ERROR_INVALID_PARAMETER : ERROR_INVALID_HANDLE);
		return FALSE;
	}
	if (n)
		*n = (DWORD)ov->InternalHigh;
	SetLastError((DWORD)ov->Internal);
	return ov->Internal == 0;
}

BOOL WINAPI CancelIoEx(HANDLE hd, LPOVERLAPPED ov)
{
	(void)ov;
	SetLastError(lookup(hd) ? ERROR_NOT_FOUND : ERROR_INVALID_HANDLE); /* nothing is ever pending */
	return FALSE;
}
