/*
 * win32.c — the Win32 read path (virtdisk.h), the canonical RCT sequence of virtdisk.md A2.7 as
 * bareos and cloudbase do it:
 *   OpenVirtualDisk(VHDX or unknown, path of the checkpoint's frozen file, ACCESS_NONE, V2
 *   {ReadOnly}) → GetVirtualDiskInformation SIZE, VIRTUAL_DISK_ID (retrying on
 *   ERROR_INSUFFICIENT_BUFFER with the size asked for) → QueryChangesVirtualDisk looping on
 *   ProcessedLength (and accepting ERROR_MORE_DATA as "continue") → AttachVirtualDisk
 *   READ_ONLY|NO_LOCAL_HOST → ReadFile at OVERLAPPED offsets → DetachVirtualDisk, CloseHandle.
 *
 * Must not: use anything but virtdisk.h and wmi_client.h (through ehost); seek in the .vhdx file
 * with virtual offsets (they are virtual-disk offsets).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "paths.h"
#include "../../hyperv/virtdisk/virtdisk.h"

#define QC_CAPACITY 1024 /* ranges per QueryChangesVirtualDisk call */

struct w32_disk {
	struct path_disk pub;
	HANDLE h;
	bool attached;
};

struct path_session {
	struct eh_host *host;
	struct w32_disk *d;
	size_t n;
};

static WCHAR *widen(const char *s)
{
	size_t n = strlen(s);
	WCHAR *w = calloc(n + 1, sizeof *w);
	if (!w)
		return NULL;
	/* host paths and RCT ids are ASCII/BMP text from WMI; decode UTF-8 to UTF-16 */
	size_t k = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		uint32_t c = *p++;
		if (c >= 0xE0 && p[0] && p[1]) {
			c = ((c & 0x0F) << 12) | ((uint32_t)(p[0] & 0x3F) << 6) | (p[1] & 0x3F);
			p += 2;
		} else if (c >= 0xC0 && p[0]) {
			c = ((c & 0x1F) << 6) | (p[0] & 0x3F);
			p++;
		}
		w[k++] = (WCHAR)c;
	}
	w[k] = 0;
	return w;
}

static int win32_fail(DWORD rc, const char *call, const char *what)
{
	return hv_err(rc == ERROR_FILE_NOT_FOUND || rc == ERROR_PATH_NOT_FOUND ? HV_ENOTFOUND : HV_EIO,
		      "%s: %s failed: Win32 error %u (0x%08X)%s", what, call, rc, rc,
		      rc == ERROR_SHARING_VIOLATION ? ": the process cannot access the file because it is being used by"
						      " another process" : "");
}

static int open_ro(const char *path, HANDLE *h)
{
	VIRTUAL_STORAGE_TYPE vst = {VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN};
	OPEN_VIRTUAL_DISK_PARAMETERS op;
	memset(&op, 0, sizeof op);
	op.Version = OPEN_VIRTUAL_DISK_VERSION_2;
	op.Version2.ReadOnly = TRUE;
	WCHAR *w = widen(path);
	if (!w)
		return hv_err(HV_ENOMEM, "out of memory");
	DWORD rc = OpenVirtualDisk(&vst, w, VIRTUAL_DISK_ACCESS_NONE, OPEN_VIRTUAL_DISK_FLAG_NONE, &op, h);
	free(w);
	return rc ? win32_fail(rc, "OpenVirtualDisk", path) : 0;
}

/* GetVirtualDiskInformation with the buffer protocol (retry with the size the call asks for). */
static int get_info(HANDLE h, GET_VIRTUAL_DISK_INFO_VERSION ver, GET_VIRTUAL_DISK_INFO **out, const char *what)
{
	ULONG size = sizeof(GET_VIRTUAL_DISK_INFO);
	for (int tries = 0; tries < 4; tries++) {
		GET_VIRTUAL_DISK_INFO *info = calloc(1, size);
		if (!info)
			return hv_err(HV_ENOMEM, "out of memory");
		info->Version = ver;
		ULONG want = size;
		DWORD rc = GetVirtualDiskInformation(h, &want, info, NULL);
		if (rc == ERROR_SUCCESS) {
			*out = info;
			return 0;
		}
		free(info);
		if (rc != ERROR_INSUFFICIENT_BUFFER || want <= size || want > (1u << 20))
			return win32_fail(rc, "GetVirtualDiskInformation", what);
		size = want;
	}
	return hv_err(HV_EIO, "%s: GetVirtualDiskInformation keeps asking for a larger buffer", what);
}

static void guid_text(const GUID *g, char out[64])
{
	snprintf(out, 64, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", g->Data1, g->Data2, g->Data3, g->Data4[0],
		 g->Data4[1], g->Data4[2], g->Data4[3], g->Data4[4], g->Data4[5], g->Data4[6], g->Data4[7]);
}

static int identity_of_handle(HANDLE h, char out[64], const char *what)
{
	GET_VIRTUAL_DISK_INFO *info;
	int r = get_info(h, GET_VIRTUAL_DISK_INFO_VIRTUAL_DISK_ID, &info, what);
	if (r)
		return r;
	guid_text(&info->VirtualDiskId, out);
	free(info);
	return 0;
}

/* "C:\Hyper-V\web\Virtual Hard Disks\web_<GUID>.avhdx" → "web" */
static void disk_name(const char *path, char *out, size_t size)
{
	const char *b = path;
	for (const char *p = path; *p; p++)
		if (*p == '\\' || *p == '/')
			b = p + 1;
	size_t n = strlen(b) < size - 1 ? strlen(b) : size - 1;
	memcpy(out, b, n);
	out[n] = 0;
	char *dot = strrchr(out, '.');
	bool avhdx = dot && !strcasecmp(dot, ".avhdx");
	if (dot)
		*dot = 0;
	char *us = avhdx ? strrchr(out, '_') : NULL;
	if (us && strlen(us + 1) == 36)
		*us = 0;
}

static void w32_end(struct path_session *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (s->d[i].attached)
			DetachVirtualDisk(s->d[i].h, DETACH_VIRTUAL_DISK_FLAG_NONE, 0);
		if (s->d[i].h)
			CloseHandle(s->d[i].h);
	}
	free(s->d);
	free(s);
}

static int w32_begin(struct eh_host *h, const char *snapshot, struct path_session **out)
{
	struct path_session *s = calloc(1, sizeof *s);
	if (!s)
		return hv_err(HV_ENOMEM, "out of memory");
	s->host = h;
	struct eh_disk *disks = NULL;
	size_t n = 0;
	int r = eh_settings_disks(h, snapshot, &disks, &n);
	if (!r && !(s->d = calloc(n ? n : 1, sizeof *s->d)))
		r = hv_err(HV_ENOMEM, "out of memory");
	for (size_t i = 0; !r && i < n; i++) {
		struct w32_disk *d = &s->d[i];
		snprintf(d->pub.instance_id, sizeof d->pub.instance_id, "%s", disks[i].instance_id);
		snprintf(d->pub.source, sizeof d->pub.source, "%s", disks[i].host_resource);
		disk_name(disks[i].host_resource, d->pub.name, sizeof d->pub.name);
		if ((r = open_ro(d->pub.source, &d->h)))
			break;
		s->n++;
		GET_VIRTUAL_DISK_INFO *info;
		if ((r = get_info(d->h, GET_VIRTUAL_DISK_INFO_SIZE, &info, d->pub.source)))
			break;
		d->pub.size = info->Size.VirtualSize;
		d->pub.logical_sector = info->Size.SectorSize;
		free(info);
		if ((r = identity_of_handle(d->h, d->pub.virtual_disk_id, d->pub.source)))
			break;
		ATTACH_VIRTUAL_DISK_PARAMETERS ap;
		memset(&ap, 0, sizeof ap);
		ap.Version = ATTACH_VIRTUAL_DISK_VERSION_1;
		DWORD rc = AttachVirtualDisk(d->h, NULL, ATTACH_VIRTUAL_DISK_FLAG_READ_ONLY | ATTACH_VIRTUAL_DISK_FLAG_NO_LOCAL_HOST,
					     0, &ap, NULL);
		if (rc) {
			r = win32_fail(rc, "AttachVirtualDisk", d->pub.source);
			break;
		}
		d->attached = true;
	}
	/* two disks must not share a name (restore --disk picks by name) */
	for (size_t i = 0; !r && i < s->n; i++)
		for (size_t k = 0; k < i; k++)
			if (!strcmp(s->d[i].pub.name, s->d[k].pub.name))
				snprintf(s->d[i].pub.name + strlen(s->d[i].pub.name),
					 sizeof s->d[i].pub.name - strlen(s->d[i].pub.name), "_%zu", i);
	free(disks);
	if (r) {
		w32_end(s);
		return r;
	}
	*out = s;
	return 0;
}

static size_t w32_ndisks(const struct path_session *s) { return s->n; }
static const struct path_disk *w32_disk(const struct path_session *s, size_t i) { return i < s->n ? &s->d[i].pub : NULL; }

static int w32_changes(struct path_session *s, size_t i, const char *rct_id, path_range_cb cb, void *ctx,
		       enum path_change_error *why)
{
	struct w32_disk *d = &s->d[i];
	*why = PATH_CHANGES_OK;
	WCHAR *id = widen(rct_id);
	QUERY_CHANGES_VIRTUAL_DISK_RANGE *rg = malloc(QC_CAPACITY * sizeof *rg);
	int r = id && rg ? 0 : hv_err(HV_ENOMEM, "out of memory");
	uint64_t off = 0;
	while (!r && off < d->pub.size) {
		ULONG count = QC_CAPACITY;
		ULONG64 done = 0;
		DWORD rc = QueryChangesVirtualDisk(d->h, id, off, d->pub.size - off, QUERY_CHANGES_VIRTUAL_DISK_FLAG_NONE, rg,
						   &count, &done);
		if (rc && rc != ERROR_MORE_DATA) {
			*why = rc == ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION || rc == ERROR_VHD_INVALID_CHANGE_TRACKING_ID
				       ? PATH_CHANGES_UNKNOWN_ID
			       : rc == ERROR_VHD_CHANGE_TRACKING_DISABLED ? PATH_CHANGES_DISABLED
									  : PATH_CHANGES_OTHER;
			r = win32_fail(rc, "QueryChangesVirtualDisk", d->pub.source);
			break;
		}
		if (count > QC_CAPACITY) {
			r = hv_err(HV_ECORRUPT, "%s: QueryChangesVirtualDisk filled %u ranges into %u", d->pub.source, count,
				   QC_CAPACITY);
			break;
		}
		for (ULONG k = 0; !r && k < count; k++) {
			struct path_range pr = {rg[k].ByteOffset, rg[k].ByteLength};
			/* sorted, inside the window, non-empty (hv2pve checks exactly this) */
			if (pr.offset < off || !pr.length || pr.offset + pr.length > d->pub.size)
				r = hv_err(HV_ECORRUPT, "%s: QueryChangesVirtualDisk returned a bad range %llu+%llu", d->pub.source,
					   (unsigned long long)pr.offset, (unsigned long long)pr.length);
			else
				r = cb(ctx, &pr);
		}
		if (!r && done == 0) /* guard against spinning on a host that makes no progress */
			r = hv_err(HV_EIO, "%s: QueryChangesVirtualDisk processed nothing at offset %llu", d->pub.source,
				   (unsigned long long)off);
		off += done;
	}
	free(id);
	free(rg);
	return r;
}

static int w32_read(struct path_session *s, size_t i, uint64_t off, void *buf, size_t len)
{
	struct w32_disk *d = &s->d[i];
	uint8_t *p = buf;
	while (len) {
		DWORD n = len > (1u << 30) ? (1u << 30) : (DWORD)len;
		/* the handle reads whole sectors: round a short tail up in a bounce buffer */
		DWORD whole = n - n % d->pub.logical_sector;
		OVERLAPPED ov;
		memset(&ov, 0, sizeof ov);
		ov.Offset = (DWORD)off;
		ov.OffsetHigh = (DWORD)(off >> 32);
		DWORD got = 0;
		if (whole) {
			if (!ReadFile(d->h, p, whole, &got, &ov))
				return win32_fail(GetLastError(), "ReadFile", d->pub.source);
			if (got != whole)
				return hv_err(HV_EIO, "%s: ReadFile at %llu returned %u of %u bytes", d->pub.source,
					      (unsigned long long)off, got, whole);
		} else {
			uint8_t sec[4096];
			ov.Offset = (DWORD)off;
			if (!ReadFile(d->h, sec, d->pub.logical_sector, &got, &ov))
				return win32_fail(GetLastError(), "ReadFile", d->pub.source);
			memcpy(p, sec, n);
			whole = n;
		}
		p += whole;
		off += whole;
		len -= whole;
	}
	return 0;
}

static int w32_identity(struct path_session *s, const char *host_resource, char out[64])
{
	(void)s;
	VIRTUAL_STORAGE_TYPE vst = {VIRTUAL_STORAGE_TYPE_DEVICE_UNKNOWN, VIRTUAL_STORAGE_TYPE_VENDOR_UNKNOWN};
	OPEN_VIRTUAL_DISK_PARAMETERS op;
	memset(&op, 0, sizeof op);
	op.Version = OPEN_VIRTUAL_DISK_VERSION_2;
	op.Version2.GetInfoOnly = TRUE;
	WCHAR *w = widen(host_resource);
	HANDLE h = NULL;
	if (!w)
		return hv_err(HV_ENOMEM, "out of memory");
	DWORD rc = OpenVirtualDisk(&vst, w, VIRTUAL_DISK_ACCESS_NONE, OPEN_VIRTUAL_DISK_FLAG_NONE, &op, &h);
	free(w);
	if (rc)
		return win32_fail(rc, "OpenVirtualDisk", host_resource);
	int r = identity_of_handle(h, out, host_resource);
	CloseHandle(h);
	return r;
}

static const struct path_ops win32_ops = {
	.name = "win32",
	.begin = w32_begin,
	.ndisks = w32_ndisks,
	.disk = w32_disk,
	.changes = w32_changes,
	.read = w32_read,
	.identity = w32_identity,
	.end = w32_end,
};

const struct path_ops *path_find(const char *name)
{
	if (!strcmp(name, "win32"))
		return &win32_ops;
	return NULL;
}
