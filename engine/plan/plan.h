/*
 * plan — one backup of one VM, start to finish, with the reference-point lifecycle of the best
 * public engines (wmi-backup.md 2.2–2.5, 3):
 *   clean up stale recovery checkpoints → CreateSnapshot(32768) (application-consistent, retried
 *   crash-consistent when the guest cannot quiesce) → per disk: pair with the previous point by
 *   disk identity (reference point VirtualDiskIdentifiers → SASD → file → VirtualDiskId; never by
 *   array position) → changed ranges since the paired RCT id, or every block for a full → store →
 *   ConvertToReferencePoint → commit the catalog → destroy the previous reference point.
 * Falls back to full, and records why, on: no previous point, the previous reference point gone,
 * an RCT id the host does not know (reset), a new disk, a resized disk, tracking disabled. On any
 * failure it destroys what it created (checkpoint, or the new reference point) and leaves the
 * previous point restorable and the host without leftovers.
 *
 * Must not: know about the simulator, read the wall clock (the point's time is the checkpoint's
 * CreationTime on the host's clock).
 */
#ifndef HV_ENGINE_PLAN_H
#define HV_ENGINE_PLAN_H

#include <stdbool.h>
#include <stdint.h>

struct plan_opts {
	const char *host;  /* wmi_client target (the simulator: the host folder) */
	const char *vm;    /* display name */
	const char *repo;  /* repository folder (created on first use) */
	const char *path;  /* read path: "win32" (default) */
	bool full;         /* force a full backup */
	bool nosync;       /* repository without fsync (benchmarks) */
	/* test fault hooks (0 = off): the repository stops dead after N stored blocks, or at a
	 * commit step (1 after pack flush, 2 before catalog commit, 3 after catalog commit) */
	uint64_t crash_after_blocks;
	int crash_at_commit_step;
	/* progress: called now and then with bytes done and total (NULL = quiet) */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
};

struct plan_result {
	int64_t point;        /* repository point id */
	bool full;
	char reason[512];     /* why full (or "changes since <point>") */
	uint64_t bytes_read;  /* read from the host */
	uint64_t bytes_changed; /* covered by changed ranges (incremental) / present data (full) */
	uint64_t bytes_stored;  /* new compressed bytes in the repository */
	uint64_t bytes_dedup;
	unsigned disks;
	unsigned stale_checkpoints_removed;
	unsigned leaked_reference_points_removed;
	unsigned job_polls;
	char ref_point[512];
	char consistency[32]; /* "application" or "crash" */
};

int plan_backup(const struct plan_opts *o, struct plan_result *res);

#endif
