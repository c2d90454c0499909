/*
 * paths — the three read paths behind one ops table (ARCHITECTURE.md "The engine"): how the
 * engine gets a checkpoint's disks, the ranges changed since an RCT id, and the bytes. Today:
 * win32 (virtdisk.h: OpenVirtualDisk on the frozen file, QueryChangesVirtualDisk paged on
 * ProcessedLength, AttachVirtualDisk READ_ONLY|NO_LOCAL_HOST + ReadFile). Export and RSVD slot in
 * as one file each.
 *
 * Must not: decide full vs incremental or touch the repository (engine/plan does).
 */
#ifndef HV_ENGINE_PATHS_H
#define HV_ENGINE_PATHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../host/ehost.h"

/* A disk of the checkpoint as a read path sees it. */
struct path_disk {
	char name[128];            /* file stem of the disk ("web", "web_1"): what restore --disk takes */
	char instance_id[256];     /* the checkpoint's SASD InstanceID */
	char source[1024];         /* HostResource[0]: the frozen file */
	char virtual_disk_id[64];  /* identity (VIRTUAL_DISK_ID), upper case, no braces */
	uint64_t size;             /* virtual size */
	uint32_t logical_sector;
};

struct path_range {
	uint64_t offset, length;
};
typedef int (*path_range_cb)(void *ctx, const struct path_range *r);

/* Change-tracking failures a path reports (plan falls back to a full backup on any of them). */
enum path_change_error {
	PATH_CHANGES_OK = 0,
	PATH_CHANGES_UNKNOWN_ID,  /* ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION, bad id */
	PATH_CHANGES_DISABLED,    /* ERROR_VHD_CHANGE_TRACKING_DISABLED */
	PATH_CHANGES_OTHER,
};

struct path_session;

struct path_ops {
	const char *name;
	/* After the recovery checkpoint exists: enumerate its disks (open each frozen file). */
	int (*begin)(struct eh_host *h, const char *snapshot, struct path_session **s);
	size_t (*ndisks)(const struct path_session *s);
	const struct path_disk *(*disk)(const struct path_session *s, size_t i);
	/* Changed ranges of disk i since `rct_id`, in virtual-disk offsets, ascending. On a tracking
	 * failure returns HV_ENOTFOUND/HV_EUNSUPPORTED and sets *why. */
	int (*changes)(struct path_session *s, size_t i, const char *rct_id, path_range_cb cb, void *ctx,
		       enum path_change_error *why);
	/* Reads [off, off+len) of disk i's virtual content. */
	int (*read)(struct path_session *s, size_t i, uint64_t off, void *buf, size_t len);
	/* The identity (VirtualDiskId) of any disk file of the host, e.g. the file a reference point's
	 * VirtualDiskIdentifiers entry leads to. */
	int (*identity)(struct path_session *s, const char *host_resource, char out[64]);
	void (*end)(struct path_session *s);
};

/* The path named `name` ("win32"); NULL when unknown. */
const struct path_ops *path_find(const char *name);

#endif
