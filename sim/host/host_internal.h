/* host_internal — what the host_*.c files share: the handle, SQLite helpers, disk rows. */
#ifndef HVSIM_HOST_INTERNAL_H
#define HVSIM_HOST_INTERNAL_H

#include <sqlite3.h>

#include "host.h"

struct host {
	char *dir;
	sqlite3 *db;
	int txn_depth;
	bool nosync;
	uint64_t seed;
	uint32_t granularity;
	char *storage_root; /* Windows form, ends with '\' */
	int lock_fd;        /* flock on host.db: one mutating process at a time */
	int lock_depth;
	int64_t deferred[64]; /* VMs whose merges wait for the outermost commit */
	int ndeferred;
};

/* Merges now, or — inside a transaction — right after the outermost commit (host_commit). */
int host_merge_after(struct host *h, int64_t vm_id);

/* The host lock: every operation that changes files or tracking holds it (it nests), and every
 * SQLite write transaction is taken under it, so two processes changing the same host run one
 * after the other instead of interleaving. An flock on host.db, independent of SQLite's own
 * fcntl locks. */
int host_lock(struct host *h);
void host_unlock(struct host *h);

/* Sets the error slot from SQLite's message and returns HV_EIO. */
int hdb_err(struct host *h, const char *what);
/* Prepares `sql` (returns 0 or hdb_err). */
int hdb_prep(struct host *h, sqlite3_stmt **st, const char *sql);
/* Steps a statement that returns no row (SQLITE_DONE expected); finalizes it. */
int hdb_done(struct host *h, sqlite3_stmt *st);
/* Runs "SELECT <int>" style queries: first column of the first row, or `dflt` when no row. */
int hdb_int(struct host *h, int64_t *out, int64_t dflt, const char *sql, ...);
/* sqlite3_column_text as a C string ("" for NULL). */
const char *hdb_text(sqlite3_stmt *st, int col);

struct host_disk {
	int64_t id, vm_id;
	int slot;
	char name[HOST_NAME_MAX_LEN + 16];
	char vm_name[HOST_NAME_MAX_LEN + 1];
	char virtual_disk_id[40];
	uint64_t size;
	uint32_t block_size, logical_sector, physical_sector;
	bool fixed, attached;
	uint64_t wl_cursor;
	int leaf_depth;
	char leaf[1024];     /* folder-relative path of the current leaf */
	char base[1024];     /* folder-relative path of the base disk */
	char sidecar[1100];  /* folder-relative path of the change-tracking sidecar */
};
int host_disk_load(struct host *h, int64_t disk_id, struct host_disk *d);
/* Opens the disk's sidecar (sim/rct) with the host's sync policy. */
struct rct;
int host_rct_open(struct host *h, const struct host_disk *d, struct rct **out);
/* Creates a VHDX/AVHDX with a seed drawn from the host ("vhdx" stream). */
int host_vhdx_seed(struct host *h, uint64_t *seed);
/* Records a ground-truth point for every attached disk of the VM (after a seal). */
int host_truth_point(struct host *h, int64_t vm_id, const char *kind, const char *object_guid,
		     int64_t *point_id);

/* Finishes merges a crash interrupted (host_ckpt.c); run by host_open. */
int host_recover(struct host *h);

#endif
