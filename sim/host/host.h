/*
 * host — the simulated Hyper-V host as a state folder: VMs, their disks (VHDX files laid out as
 * Hyper-V lays them out), recovery/standard checkpoints as AVHDX chains, merges, reference
 * points, per-disk change tracking (sim/rct sidecars), guest writes (sim/workload), ground truth
 * (sim/truth) and the virtual clock. The WMI provider (sim/wmi) and libvirtdisk are front ends
 * over this API and over the tables of host.db.
 *
 * Folder layout (paths in host.db are relative to the folder; what WMI shows is the Windows form
 * under the storage root, default `C:\Hyper-V\`):
 *   host.db                                     SQLite (WAL): state, CIM repository, jobs, truth, audit
 *   <vm>/Virtual Hard Disks/<disk>.vhdx         base disk
 *   <vm>/Virtual Hard Disks/<disk>_<GUID>.avhdx checkpoint children, next to their parent
 *   <vm>/Virtual Hard Disks/<disk>.vhdx.hvrct   change-tracking sidecar (sim/rct format)
 *
 * Crash safety: every state change is one SQLite transaction; files are created before the
 * transaction that references them (an orphan file after a crash is harmless and ignored), and
 * deleted only after the transaction that dropped their last reference. Change tracking is
 * recorded and saved *before* guest data is written, so a crash leaves a superset, never a miss.
 *
 * Determinism: every GUID comes from the host seed through named, persisted PRNG streams
 * (host_guid); time is the virtual clock in host.db (FILETIME ticks); nothing reads the wall
 * clock. The same seed and the same calls give byte-identical folders.
 *
 * Must not: know about WMI classes, WQL or jobs (sim/wmi), or about any engine.
 */
#ifndef HVSIM_HOST_H
#define HVSIM_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../hyperv/base/base.h"

struct sqlite3;
struct host;
struct wl_params;

#define HOST_FORMAT_VERSION 1
#define HOST_DEFAULT_RCT_GRANULARITY (64u * 1024u)
#define HOST_DEFAULT_RCT_COARSE (1024u * 1024u)
#define HOST_NAME_MAX_LEN 100
#define HOST_MAX_DISKS_PER_VM 64
#define HOST_TICKS_PER_SECOND 10000000ull

/* VM EnabledState values (Msvm_ComputerSystem) the simulator uses. */
enum {
	HOST_VM_RUNNING = 2,
	HOST_VM_OFF = 3,
	HOST_VM_SAVED = 32769,
};

/* Checkpoint kinds: the CreateSnapshot SnapshotType values. */
enum {
	HOST_SNAPSHOT_STANDARD = 2,
	HOST_SNAPSHOT_RECOVERY = 32768,
};

enum {
	HOST_OPEN_NOSYNC = 1 << 0, /* skip fsync in SQLite, VHDX and sidecars (tests, bulk builds) */
};

struct host_create_opts {
	uint64_t seed;
	uint32_t rct_granularity; /* 0 = 64 KiB; power of two, 4 KiB .. 16 MiB */
	bool nosync;
};

/* Creates the folder (must not exist, or be empty) with an empty host. */
int host_create(const char *dir, const struct host_create_opts *o);
/* Opens a state folder; *out is freed with host_close. */
int host_open(const char *dir, unsigned flags, struct host **out);
void host_close(struct host *h);

/* The connection to host.db, owned by the host (sim/wmi adds its own tables and views). */
struct sqlite3 *host_db(struct host *h);
const char *host_dir(const struct host *h);
uint64_t host_seed(const struct host *h);
uint32_t host_rct_granularity(const struct host *h);
bool host_nosync(const struct host *h);

/* Transactions nest: only the outermost begin/commit touch SQLite. On any failure inside, call
 * host_rollback (which undoes the whole outermost transaction). */
int host_begin(struct host *h);
int host_commit(struct host *h);
void host_rollback(struct host *h);

/* Runs SQL that returns no rows; the message names the statement on failure. */
int host_exec(struct host *h, const char *sql);

/* ---- settings (table `setting`, text values) ------------------------------------------------- */
/* Returns the value (owned by the caller, free()) or NULL when unset. */
char *host_setting_get(struct host *h, const char *key);
int host_setting_set(struct host *h, const char *key, const char *value);
/* Removes a setting (no error when it is not set): the built-in default applies again. */
int host_setting_delete(struct host *h, const char *key);
int64_t host_setting_int(struct host *h, const char *key, int64_t dflt);

/* ---- virtual clock (FILETIME: 100 ns ticks since 1601-01-01 UTC) ----------------------------- */
uint64_t host_now(struct host *h);
int host_clock_advance(struct host *h, uint64_t ticks);

/* ---- deterministic identities ------------------------------------------------------------------
 * The n-th GUID of a named stream is a pure function of (seed, stream, n); n is persisted. */
int host_guid(struct host *h, const char *stream, struct hv_guid *out);
/* "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" (upper case, no braces: the form Hyper-V prints). */
void host_guid_text(const struct hv_guid *g, char out[37]);
/* host_guid + host_guid_text. */
int host_guid_str(struct host *h, const char *stream, char out[37]);
/* Absolute path for a folder-relative one (caller frees; NULL on ENOMEM). */
char *host_abs(struct host *h, const char *rel);

/* ---- VMs and disks ---------------------------------------------------------------------------- */
struct host_disk_spec {
	uint64_t size;
	bool fixed;              /* default dynamic */
	uint32_t block_size;     /* 0 = VHDX default (32 MiB) */
	uint32_t logical_sector; /* 512 (default) or 4096 */
};
/* Parses "SIZE[,dynamic|fixed][,block=SIZE][,sector=512|4096]". */
int host_disk_spec_parse(const char *text, struct host_disk_spec *out);

/* Creates a running VM with the given disks. VM names: 1..100 of [A-Za-z0-9 ._-], unique. */
int host_vm_create(struct host *h, const char *name, const struct host_disk_spec *disks, size_t n,
		   int64_t *vm_id);
/* Finds a VM by display name or by GUID (case-insensitive). HV_ENOTFOUND when absent. */
int host_vm_find(struct host *h, const char *name_or_guid, int64_t *vm_id);
int host_vm_set_state(struct host *h, int64_t vm_id, int state);
/* Adds a disk to an existing VM (next free slot); *disk_id optional. */
int host_vm_add_disk(struct host *h, int64_t vm_id, const struct host_disk_spec *spec, int64_t *disk_id);
/* Detaches a disk: its SASD disappears; files stay (as on Hyper-V). */
int host_vm_remove_disk(struct host *h, int64_t disk_id);
/* Finds a disk of a VM by name (file stem) or slot number. */
int host_disk_find(struct host *h, int64_t vm_id, const char *name_or_slot, int64_t *disk_id);

/* Guest writes into the VM's current leaves. disk_id < 0: every attached disk receives the
 * workload, each with its own seed derived from (seed, disk slot). The sequential cursor of each
 * disk persists. The change tracking and the ground truth record each range before the bytes
 * land. *bytes_out (optional) = bytes written in all. */
int host_vm_write(struct host *h, int64_t vm_id, int64_t disk_id, const struct wl_params *p,
		  uint64_t *bytes_out);
/* The seed the disk in `slot` gets from a write's seed (so a test can replay the same ops). */
uint64_t host_workload_seed(uint64_t seed, int slot);

/* ---- checkpoints, merges, reference points --------------------------------------------------- */
/* Freezes each attached disk's leaf and puts a new AVHDX on top; seals change tracking. */
int host_snapshot_create(struct host *h, int64_t vm_id, int type, int consistency, const char *name,
			 int64_t *snapshot_id);
/* Deletes the checkpoint and merges what can be merged (unless merging is blocked). */
int host_snapshot_destroy(struct host *h, int64_t snapshot_id);
/* Recovery checkpoints only: a reference point carrying the checkpoint's RCT ids; the
 * checkpoint is deleted and merged as by host_snapshot_destroy. */
int host_refpoint_convert(struct host *h, int64_t snapshot_id, int consistency, int64_t *rp_id);
/* A reference point of the current state without a checkpoint (seals tracking). */
int host_refpoint_create(struct host *h, int64_t vm_id, int consistency, int64_t *rp_id);
int host_refpoint_destroy(struct host *h, int64_t rp_id);
/* Msvm_DiskMergeSettingData.EnabledState: disabling keeps AVHDX chains; enabling merges. */
int host_merge_set_enabled(struct host *h, int64_t vm_id, bool enabled);
/* Merges every AVHDX of the VM that no checkpoint holds, unless merging is blocked for the VM.
 * *blocked (optional) says whether something stayed because of a block. */
int host_merge_pending(struct host *h, int64_t vm_id, bool *blocked);

/* Why a merge is blocked now (NULL when it is not): merging disabled for the VM, or the
 * "leaked reference point" rule (setting merge.block_on_extra_refpoints, default on: a VM with
 * more than one reference point cannot merge — bareos#2624). Static string. */
const char *host_merge_block_reason(struct host *h, int64_t vm_id);

/* ---- change tracking as the front ends see it ------------------------------------------------ */
/* Resolves a path as WMI shows it (`C:\Hyper-V\vm\Virtual Hard Disks\d.vhdx`), or relative to
 * the folder, to the disk and chain depth it names. HV_ENOTFOUND when no disk has it. */
int host_path_lookup(struct host *h, const char *path, int64_t *disk_id, int *depth);
/* The Windows form of a folder-relative path (caller frees). */
char *host_path_windows(struct host *h, const char *rel);

struct host_range {
	uint64_t offset, length;
};
/* Changes since `rct_id` as seen from chain file `depth` of the disk (a frozen file answers up to
 * its seal, the leaf includes unsealed writes). win32 gets the Win32 error for a failure
 * (ERROR_VHD_MISSING_CHANGE_TRACKING_INFORMATION, …) or 0. */
int host_rct_query(struct host *h, int64_t disk_id, int depth, const char *rct_id, uint64_t offset,
		   uint64_t length, struct host_range *ranges, uint32_t capacity, uint32_t *count,
		   uint64_t *processed, uint32_t *win32);
/* The most recent RCT id for that chain file (buf of >= 64 bytes) and whether newer changes exist. */
int host_rct_state(struct host *h, int64_t disk_id, int depth, bool *enabled, char *id, size_t id_size,
		   bool *newer);
int host_rct_set_enabled(struct host *h, int64_t disk_id, bool enabled);

/* ---- faults (named events; scenarios arm them too) ------------------------------------------- */
/* rct-reset: new tracking GUID for one disk (disk_id) or every disk of the VM (disk_id < 0). */
int host_fault_rct_reset(struct host *h, int64_t vm_id, int64_t disk_id);
/* migrate: live migration; reset=false keeps tracking (the map travels with the VHDX). */
int host_fault_migrate(struct host *h, int64_t vm_id, bool reset);
/* crash: host crash; every disk's unsealed record becomes coarse (superset), running VMs keep
 * running (they restart), jobs in flight are lost. */
int host_fault_crash(struct host *h);
/* resize: offline resize of a disk without checkpoints; resets tracking. */
int host_fault_resize(struct host *h, int64_t disk_id, uint64_t new_size);
/* replace: the disk file is replaced by a copy with a new VirtualDiskId; tracking reset. */
int host_fault_replace(struct host *h, int64_t disk_id);
/* merge-block: set or clear a forced merge failure for the VM. */
int host_fault_merge_block(struct host *h, int64_t vm_id, bool on);
/* guest-vss: whether the guest answers VSS requests. Without it an application-consistent
 * (ConsistencyLevel 1) checkpoint fails, as with a Linux guest without hv_vss_daemon. */
int host_fault_guest_vss(struct host *h, int64_t vm_id, bool on);
/* stale-checkpoint: a recovery checkpoint left behind by a crashed backup job. */
int host_fault_stale_checkpoint(struct host *h, int64_t vm_id, int64_t *snapshot_id);

/* ---- state dump: canonical text of the whole state (every table, rows in order; every file with
 * its size and XXH3-128 digest), for diffs and the determinism test. `file` is a FILE*. */
int host_state_dump(struct host *h, void *file /* FILE* */);

/* Human-readable list of VMs, their state, disks and chains (`hvsim vm list`). */
int host_list_vms(struct host *h, void *file /* FILE* */);

#endif
