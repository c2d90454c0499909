/*
 * truth — the ground truth of a simulated host, kept in host.db beside the state it judges:
 *   - the exact set of tracking blocks written to each disk since its last point (truth_dirty),
 *   - at every checkpoint / reference point, a content hash (XXH3-128) of every block written
 *     since the disk's previous point (truth_changed), so the full content hash of any block at
 *     any point is "the latest row at or before that point, else the zero block",
 *   - the audit log of every API call an engine makes (WMI, virtdisk, RSVD) with arguments,
 *     result and virtual time, plus the client mistakes strict mode detects.
 * A restore is judged by hashing it block by block and comparing with truth_block_hash; an RCT
 * answer is judged against truth_changed_between (answer ⊇ truth, equal without crashes).
 *
 * This record is independent of sim/rct on purpose: it is the oracle the change tracking is
 * tested against, so it must not share its code or its data.
 *
 * Must not: depend on sim/host (it takes the sqlite3 handle and callbacks), read the clock.
 */
#ifndef HVSIM_TRUTH_H
#define HVSIM_TRUTH_H

#include <stddef.h>
#include <stdint.h>

struct sqlite3;

#define TRUTH_HASH_SIZE 16

/* Creates the truth tables (inside the caller's transaction). */
int truth_init(struct sqlite3 *db);

/* Records a guest write [off, off+len) on a disk tracked at `granularity` bytes per block. */
int truth_mark(struct sqlite3 *db, int64_t disk_id, uint64_t off, uint64_t len, uint32_t granularity);

/* Starts a point (kind "checkpoint" or "refpoint", the GUID of the WMI object, the VM, virtual
 * time). The disks are added with truth_point_disk. */
int truth_point_new(struct sqlite3 *db, const char *kind, const char *object_guid, int64_t vm_id,
		    uint64_t vtime, int64_t *point_id);
/* Reads a range of the disk's content as of the point. */
typedef int (*truth_read_fn)(void *ctx, uint64_t off, void *buf, size_t len);
/* Hashes every block of the disk written since its previous point (read through `rd`), stores
 * the hashes under `point_id` and clears the dirty set. */
int truth_point_disk(struct sqlite3 *db, int64_t point_id, int64_t disk_id, uint64_t size,
		     uint32_t granularity, truth_read_fn rd, void *ctx);
/* The content hash of a block at a point (the zero-block hash if never written). */
int truth_block_hash(struct sqlite3 *db, int64_t point_id, int64_t disk_id, uint64_t block,
		     uint8_t out[TRUTH_HASH_SIZE]);
/* The hash of `len` zero bytes (what an unwritten block hashes to). */
void truth_zero_hash(uint32_t len, uint8_t out[TRUTH_HASH_SIZE]);
void truth_hash(const void *buf, size_t len, uint8_t out[TRUTH_HASH_SIZE]);
/* Calls cb for each block written in (point_a, point_b] on the disk, in ascending order, once
 * each. point_a = 0 means since the disk was created. */
int truth_changed_between(struct sqlite3 *db, int64_t disk_id, int64_t point_a, int64_t point_b,
			  int (*cb)(void *ctx, uint64_t block), void *ctx);

/* Appends an audit record. api: "wmi", "virtdisk", "rsvd"; call: method or query text; args:
 * canonical text of the arguments; result: e.g. "0", "4096", "0x80041017". mistake: NULL or a
 * one-line description of a client mistake strict mode detected. */
int truth_audit(struct sqlite3 *db, uint64_t vtime, const char *api, const char *call, const char *args,
		const char *result, const char *mistake);

#endif
