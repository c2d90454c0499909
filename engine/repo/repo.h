/*
 * repo — the backup repository: a folder holding `catalog.db` (SQLite, WAL, synchronous=FULL)
 * and `packs/`. Disks are cut into fixed-size blocks (the repository's block size, chosen at
 * creation, aligned to the change-tracking granularity; the last block of a disk may be short),
 * each block addressed by its SHA-256, stored once however many disks, VMs and points hold it,
 * zstd-compressed (raw when that does not help) and appended to pack files. All-zero blocks are
 * never stored. Every point is complete in itself: its block map names a hash (or zero) for every
 * block index, so restoring never walks a chain of incrementals.
 *
 * Crash safety: a backup is one session; its pack data is written and fsynced (with the pack
 * folder) before the single catalog transaction that references it commits. A crash at any
 * instant leaves the committed points restorable and the catalog consistent; pack files no
 * committed row names are orphans, deleted by repo_prune. Prune itself copies live records into
 * new packs, fsyncs them, switches the catalog in one transaction and only then deletes the old
 * packs. The on-disk formats are documented in repo_pack.c and repo_catalog.c.
 *
 * Determinism: no wall clock, no randomness; the same calls give byte-identical pack files and
 * identical catalog contents.
 *
 * One writer at a time: a session or a prune holds the catalog's write lock (BEGIN IMMEDIATE)
 * from its start to its end; readers are never blocked (WAL).
 *
 * Must not: link the simulator, trust any length or offset read from a pack or the catalog
 * before checking it, or delete a pack a committed catalog row still names.
 */
#ifndef ENGINE_REPO_H
#define ENGINE_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "../../hyperv/base/base.h"

#define REPO_HASH_LEN 32                      /* SHA-256 */
#define REPO_DEFAULT_BLOCK_SIZE (64u << 10)    /* 64 KiB, the default RCT granularity */
#define REPO_MIN_BLOCK_SIZE 4096u
#define REPO_MAX_BLOCK_SIZE (16u << 20)
#define REPO_DEFAULT_ZSTD_LEVEL 3
#define REPO_DEFAULT_PACK_SIZE (64ull << 20)   /* a pack is closed once it reaches this size */
#define REPO_MAX_VIRTUAL_SIZE (64ull << 40)    /* 64 TiB, the VHDX limit */
#define REPO_FORMAT_VERSION 1

struct repo;
struct repo_session;

/* ---- open / close ----------------------------------------------------------------------------*/

enum {
	REPO_OPEN_CREATE = 1 << 0, /* create the repository when `path` is missing or empty */
	REPO_OPEN_RDONLY = 1 << 1, /* reads only: sessions, forget and prune fail with HV_EINVAL */
	REPO_OPEN_NOSYNC = 1 << 2, /* no fsync, synchronous=OFF: benchmarks only, never for data */
};

/* Settings fixed at creation (stored in the catalog). At open of an existing repository a
 * non-zero block_size must equal the stored one (else HV_EMISMATCH); a non-zero zstd_level or
 * pack_size overrides the stored value for this handle's writes. NULL means all zero. */
struct repo_opts {
	uint32_t block_size; /* power of two, REPO_MIN..REPO_MAX_BLOCK_SIZE; 0: 64 KiB */
	int zstd_level;      /* 1..19; 0: the stored level (3 at creation) */
	uint64_t pack_size;  /* 4 KiB..4 GiB; 0: the stored size (64 MiB at creation) */
};

/* Opens (and with REPO_OPEN_CREATE creates) the repository at `path`. *out is freed with
 * repo_close. Errors: HV_ENOTFOUND (no repository there), HV_EUNSUPPORTED (catalog format of
 * another version), HV_ECORRUPT (catalog.db is not a valid catalog), HV_EMISMATCH, HV_EINVAL. */
int repo_open(const char *path, unsigned flags, const struct repo_opts *opts, struct repo **out);
/* Closes the handle; a session still open is aborted first. NULL is fine. */
void repo_close(struct repo *r);
uint32_t repo_block_size(const struct repo *r);

/* ---- test fault points -----------------------------------------------------------------------
 * A fault point makes the write path stop dead with HV_ECRASHED, leaving every file exactly as a
 * power cut at that instant would (nothing flushed, rolled back or deleted; the data still in
 * user-space buffers is lost). The handle is then unusable except for repo_session_abort (which
 * only frees memory) and repo_close: reopen the folder (or a copy of it) to observe the result.
 * One-shot: the fault disarms when it fires. Counted faults fire after `n` more pack records. */
enum repo_fault {
	REPO_FAULT_NONE = 0,
	REPO_FAULT_AFTER_RECORDS,         /* session: after n blocks stored; prune: after n copied */
	REPO_FAULT_AFTER_PACK_FLUSH,      /* packs and pack folder fsynced, catalog untouched */
	REPO_FAULT_BEFORE_CATALOG_COMMIT, /* every catalog row written, COMMIT not issued */
	REPO_FAULT_AFTER_CATALOG_COMMIT,  /* committed, the call never returned success */
	REPO_FAULT_PRUNE_AFTER_UNLINK,    /* prune: after deleting the first old pack file */
};
void repo_set_fault(struct repo *r, enum repo_fault fault, uint64_t n);

/* ---- writing: one backup = one session -------------------------------------------------------*/

enum repo_point_type { REPO_POINT_FULL = 1, REPO_POINT_INCREMENTAL = 2 };

/* Strings are copied; NULL text fields are stored as "". */
struct repo_point_desc {
	const char *vm_name;      /* required */
	const char *vm_id;        /* the VM's GUID text */
	enum repo_point_type type;
	const char *reason;       /* why this type (e.g. "tracking reset: full") */
	int64_t vtime;            /* the caller's (virtual) time of the backup */
	int64_t parent;           /* point this incremental follows (required for incremental,
				     0 for full) */
	const char *ref_point;    /* the host's reference point InstanceID */
};

struct repo_disk_desc {
	const char *name;         /* unique within the point, required */
	const char *disk_id;      /* VirtualDiskId text (pairs disks across points) */
	const char *rct_id;       /* the disk's RCT id at this point (opaque) */
	uint64_t virtual_size;    /* 1..64 TiB, a multiple of logical_sector */
	uint32_t logical_sector;  /* 512 or 4096 */
};

/* What a session did (for the engine's --json summary). Raw sizes are uncompressed. */
struct repo_stats {
	uint64_t blocks_put;    /* repo_session_put_block calls */
	uint64_t blocks_new;    /* stored as new pack records */
	uint64_t blocks_reused; /* already in the repository (or earlier in this session) */
	uint64_t blocks_zero;   /* all-zero, not stored */
	uint64_t bytes_put;     /* raw bytes given to put_block */
	uint64_t bytes_new_raw; /* raw bytes of the new blocks */
	uint64_t bytes_stored;  /* compressed payload bytes of the new blocks */
	uint64_t bytes_packed;  /* bytes appended to pack files (payload + record headers) */
	uint64_t bytes_dedup;   /* raw bytes of the reused blocks */
	uint64_t packs_written;
};

/* Starts a backup of one VM. Takes the catalog write lock (HV_EIO "busy" when another process
 * holds it past a few seconds). *out ends with commit or abort. */
int repo_begin(struct repo *r, const struct repo_point_desc *d, struct repo_session **out);
/* Adds a disk; *disk_out is its handle for put_block (0, 1, ... in order of adding).
 * parent_point_disk: 0 for none (every block not put is zero), or a point-disk id from
 * repo_list_points whose map is copied first (in SQL), so only changed blocks need put_block;
 * it must have the same virtual size and block size (else HV_EMISMATCH). */
int repo_session_add_disk(struct repo_session *s, const struct repo_disk_desc *d,
			  int64_t parent_point_disk, uint32_t *disk_out);
/* Stores block `index` of disk `disk`: len is the block size, or what remains of the disk for the
 * last block. Hashes, looks up the hash (dedup), else compresses and appends to the pack; an
 * all-zero block only marks the index zero. Putting an index twice keeps the last. */
int repo_session_put_block(struct repo_session *s, uint32_t disk, uint64_t index,
			   const void *data, size_t len);
/* The host's reference point and a disk's RCT id are often known only once the data is read
 * (the reference point is made when the backup job ends): these replace what begin/add_disk
 * recorded, until commit. */
int repo_session_set_ref_point(struct repo_session *s, const char *ref_point);
int repo_session_set_rct_id(struct repo_session *s, uint32_t disk, const char *rct_id);
/* The stats so far. */
void repo_session_stats(const struct repo_session *s, struct repo_stats *out);
/* Flushes and fsyncs the packs, then commits the catalog. Always ends the session (frees it):
 * on success *point_id (may be NULL) is the new point and *stats (may be NULL) the final stats;
 * on failure nothing was committed (unless HV_ECRASHED after the commit) and the session's pack
 * files are deleted (except after HV_ECRASHED). */
int repo_session_commit(struct repo_session *s, int64_t *point_id, struct repo_stats *stats);
/* Ends the session without a point: rolls the catalog back and deletes its pack files (after
 * HV_ECRASHED: only frees memory). NULL is fine. */
void repo_session_abort(struct repo_session *s);

/* ---- reading ---------------------------------------------------------------------------------*/

struct repo_disk_info {
	int64_t id;             /* point-disk id (a parent for repo_session_add_disk) */
	char *name, *disk_id, *rct_id;
	uint64_t virtual_size;
	uint32_t block_size, logical_sector;
	uint64_t blocks;         /* block count (the last may be short) */
	uint64_t blocks_nonzero; /* blocks the map names a hash for */
};

struct repo_point_info {
	int64_t id;              /* also the creation sequence: ids grow and are never reused */
	char *vm_name, *vm_id, *reason, *ref_point;
	enum repo_point_type type;
	int64_t vtime;
	int64_t parent;          /* as given at backup (that point may be forgotten since) */
	size_t ndisks;
	struct repo_disk_info *disks; /* in order of adding */
};

/* Every point (vm_name NULL) or those of one VM, oldest first. Free with repo_points_free. */
int repo_list_points(struct repo *r, const char *vm_name, struct repo_point_info **out,
		     size_t *n);
/* One point (HV_ENOTFOUND when it does not exist). Free with repo_points_free(p, 1). */
int repo_point_get(struct repo *r, int64_t point, struct repo_point_info **out);
void repo_points_free(struct repo_point_info *p, size_t n);

/* Calls fn for every non-zero block of the point-disk in index order (indices not named are
 * zero). A non-zero return from fn stops and is returned. */
typedef int (*repo_map_fn)(void *ctx, uint64_t index, const uint8_t hash[REPO_HASH_LEN],
			   uint32_t raw_len);
int repo_point_disk_map(struct repo *r, int64_t point, const char *disk, repo_map_fn fn,
			void *ctx);

/* Reads block `index` into buf (cap bytes, at least the block's length); *len (may be NULL) is
 * the block's length. Decompresses and re-hashes: damage is HV_ECORRUPT naming the pack file and
 * the record offset. Zero blocks read as zeros. */
int repo_read_block(struct repo *r, int64_t point, const char *disk, uint64_t index, void *buf,
		    size_t cap, size_t *len);

/* Restore sink: called with ascending offsets for non-zero blocks only (zero blocks are skipped:
 * the target must read as zeros where nothing is written). */
typedef int (*repo_write_fn)(void *ctx, uint64_t offset, const void *buf, size_t len);
int repo_restore_disk(struct repo *r, int64_t point, const char *disk, repo_write_fn fn,
		      void *ctx);
/* Same into a file descriptor: a regular file is emptied first, then pwrite for the non-zero
 * blocks and ftruncate to the virtual size, so zero blocks become holes. */
int repo_restore_disk_fd(struct repo *r, int64_t point, const char *disk, int fd);

/* ---- verify ----------------------------------------------------------------------------------*/

enum repo_problem_kind {
	REPO_PROBLEM_BLOCK = 1,   /* a block a selected point needs is unreadable or wrong */
	REPO_PROBLEM_PACK,        /* a pack file is missing, short, or holds a bad record */
	REPO_PROBLEM_CATALOG,     /* the catalog contradicts itself */
	REPO_PROBLEM_POINT,       /* a point is damaged (it needs a bad block) */
};

struct repo_problem {
	enum repo_problem_kind kind;
	int64_t point;    /* REPO_PROBLEM_POINT: the damaged point; else 0 */
	const char *pack; /* pack file (repository-relative) or NULL */
	uint64_t offset;  /* record offset in the pack, when pack is set */
	uint64_t bad_blocks; /* REPO_PROBLEM_POINT: how many of its blocks are bad */
	const char *message;
};
typedef void (*repo_problem_fn)(void *ctx, const struct repo_problem *p);

struct repo_verify_result {
	uint64_t points_checked, points_damaged;
	uint64_t blocks_checked, blocks_bad;
	uint64_t packs_checked, pack_problems; /* whole-pack scans (point 0 only) */
	uint64_t catalog_problems;
	uint64_t bytes_read;
};

/* Re-reads and re-hashes every block the selected points (one point, or 0 for all) need, calls
 * fn (may be NULL) for each problem and then for each damaged point, oldest first. With point 0
 * it also scans every pack record by record (CRC-32C of each) and checks the catalog's own
 * consistency. Returns 0 when it could check (problems are counted in *res, never an error
 * code); negative only when it could not run (HV_ENOTFOUND for an unknown point). */
int repo_verify(struct repo *r, int64_t point, repo_problem_fn fn, void *ctx,
		struct repo_verify_result *res);

/* ---- forget / prune --------------------------------------------------------------------------*/

/* Forgets every point of each VM but its newest keep_last (>= 1); *forgotten (may be NULL) is the
 * count. The blocks stay until repo_prune. */
int repo_forget(struct repo *r, unsigned keep_last, uint64_t *forgotten);
/* Forgets one point (HV_ENOTFOUND when it does not exist). */
int repo_forget_point(struct repo *r, int64_t point);

struct repo_prune_stats {
	uint64_t blocks_removed;   /* catalog blocks no point needed any more */
	uint64_t packs_rewritten;  /* packs with dead records whose live records were copied */
	uint64_t packs_deleted;    /* packs removed (rewritten or wholly dead) */
	uint64_t packs_written;    /* new packs */
	uint64_t records_copied;
	uint64_t orphans_deleted;  /* pack files no catalog row named */
	uint64_t bytes_before, bytes_after; /* pack bytes on disk (files named *.pack) */
};
/* Deletes every block no point references and every orphan pack file, and rewrites the packs
 * holding dead records. Every remaining point stays restorable at every instant. */
int repo_prune(struct repo *r, struct repo_prune_stats *stats);

#endif
