/*
 * ehost — how the engine reaches a Hyper-V host: the WMI conversation of a backup (find the VM
 * and the services, create/convert/destroy checkpoints and reference points, poll jobs robustly,
 * enumerate a checkpoint's disks) over hyperv/cim/wmi_client.h. Data paths (virtdisk, export,
 * RSVD) are engine/paths.
 *
 * Robust job handling, as the careful public engines do it (wmi-backup.md 1.4): a method
 * returning 0 finished synchronously (result REFs in the out-parameters); 4096 started a job that
 * is polled until a terminal state (7, 32768, 8, 9, 10 — never "while Running", so a job sitting
 * in Starting is waited for), success only for 7 and 32768 with ErrorCode 0; on failure
 * ErrorCode, ErrorDescription and GetErrorEx's messages go into the error text; the created
 * object is found with ASSOCIATORS OF {job} WHERE ResultClass=…, exactly one expected.
 *
 * Must not: know about the simulator (only wmi_client.h), read the wall clock.
 */
#ifndef HV_ENGINE_EHOST_H
#define HV_ENGINE_EHOST_H

#include <stddef.h>
#include <stdint.h>

#include "../../hyperv/cim/wmi_client.h"

struct eh_host;

int eh_open(const char *target, struct eh_host **out);
void eh_close(struct eh_host *h);
struct wmi_conn *eh_conn(struct eh_host *h);

/* The VM with this display name: exactly one (duplicate names are an error, as in bareos). */
struct eh_vm {
	char path[512];
	char guid[64];
	char name[128];
};
int eh_find_vm(struct eh_host *h, const char *name, struct eh_vm *vm);

/* A disk of a VM or of a checkpoint: its SASD InstanceID and HostResource[0]. */
struct eh_disk {
	char instance_id[256];
	char host_resource[1024];
};
/* The VHDX disks (ResourceType 31, .vhdx/.avhdx) of a settings object (active VSSD or checkpoint).
 * *disks is malloc'd. */
int eh_settings_disks(struct eh_host *h, const char *vssd_path, struct eh_disk **disks, size_t *n);
/* The VM's active settings path. */
int eh_active_settings(struct eh_host *h, const struct eh_vm *vm, char *out, size_t size);

/* Recovery checkpoints of the VM (paths, malloc'd array of malloc'd strings). */
int eh_recovery_checkpoints(struct eh_host *h, const struct eh_vm *vm, char ***paths, size_t *n);
void eh_free_strings(char **v, size_t n);

/* CreateSnapshot(32768) with ConsistencyLevel; *snapshot receives the checkpoint's VSSD path. */
int eh_create_recovery_checkpoint(struct eh_host *h, const struct eh_vm *vm, int consistency, char *snapshot,
				  size_t size);
int eh_destroy_snapshot(struct eh_host *h, const char *snapshot);
/* ConvertToReferencePoint; *rp receives the reference point's path. */
int eh_convert_to_reference_point(struct eh_host *h, const char *snapshot, char *rp, size_t size);
int eh_destroy_reference_point(struct eh_host *h, const char *rp);

struct eh_refpoint {
	char path[512];
	char instance_id[256];
	size_t ndisks;
	char **disk_ids; /* VirtualDiskIdentifiers */
	char **rct_ids;  /* ResilientChangeTrackingIdentifiers, parallel */
};
/* Looks a reference point up by its path; HV_ENOTFOUND when it is gone. Checks type 2 and the
 * two arrays parallel (a violation is HV_ECORRUPT naming it). An RCT id may be empty (that disk's
 * tracking was off). */
int eh_get_reference_point(struct eh_host *h, const char *path, struct eh_refpoint *rp);
void eh_refpoint_clear(struct eh_refpoint *rp);
/* All reference points of the VM (paths). */
int eh_reference_points(struct eh_host *h, const struct eh_vm *vm, char ***paths, size_t *n);

/* Runs a method robustly (see the top). result_class: the class of the created object to fetch
 * from the job (NULL: none); result_param: the out-parameter holding it when synchronous. */
int eh_call(struct eh_host *h, const char *path, const char *method, const struct cim_instance *in,
	    const char *result_class, const char *result_param, char *result, size_t result_size);

/* Number of job polls the last eh_call made (the simulator's jobs advance one step per poll). */
unsigned eh_last_polls(const struct eh_host *h);

#endif
