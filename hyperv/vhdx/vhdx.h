/*
 * vhdx — read, write, create and check VHDX files (MS-VHDX v1): fixed, dynamic and differencing
 * disks, parent chains of any depth, the metadata log (journaled writes, replay in place or in
 * memory), and the allocation map that change extraction builds on.
 *
 * Must not: simulate anything (no host, no RCT, no policy), read the clock or unseeded
 * randomness (every GUID comes from a caller seed), trust a length read from the file before
 * checking it, or leave a file that opens to anything other than its old or its new content.
 *
 * Errors: every call returns 0 or a negative HV_E* code (base.h) and sets hv_errmsg() to
 * "FILE: structure: field value: what is wrong".
 */
#ifndef HV_VHDX_H
#define HV_VHDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/base.h"

#define VHDX_MIB (1024u * 1024u)
#define VHDX_MAX_VIRTUAL_SIZE (64ull << 40)
#define VHDX_MIN_BLOCK_SIZE VHDX_MIB
#define VHDX_MAX_BLOCK_SIZE (256u * VHDX_MIB)
#define VHDX_MAX_CHAIN_DEPTH 64

/* Disk types; the values are those of VIRTUAL_DISK_TYPE / libvhdi's disk type. */
enum vhdx_type {
	VHDX_TYPE_FIXED = 2,
	VHDX_TYPE_DYNAMIC = 3,
	VHDX_TYPE_DIFFERENCING = 4,
};

/* Payload and sector-bitmap BAT entry states (MS-VHDX 2.5.1). */
enum {
	VHDX_BLOCK_NOT_PRESENT = 0,
	VHDX_BLOCK_UNDEFINED = 1,
	VHDX_BLOCK_ZERO = 2,
	VHDX_BLOCK_UNMAPPED = 3,
	VHDX_BLOCK_UNMAPPED_V095 = 5, /* draft value; accepted on read as UNMAPPED, never written */
	VHDX_BLOCK_FULLY_PRESENT = 6,
	VHDX_BLOCK_PARTIALLY_PRESENT = 7,
	VHDX_SB_BLOCK_NOT_PRESENT = 0,
	VHDX_SB_BLOCK_PRESENT = 6,
};

struct vhdx_create_opts {
	uint64_t virtual_size;    /* bytes; ignored for differencing (taken from the parent) */
	enum vhdx_type type;      /* DIFFERENCING requires parent_path */
	uint32_t block_size;      /* 0 = default: 32 MiB fixed/dynamic, 2 MiB differencing */
	uint32_t logical_sector;  /* 0 = 512 (differencing: the parent's) */
	uint32_t physical_sector; /* 0 = 4096 (differencing: the parent's) */
	const char *parent_path;  /* differencing only */
	/* differencing only, optional: the parent's Windows path ("C:\\dir\\p.vhdx") to record in
	 * volume_path / absolute_win32_path instead of the POSIX location, so a file's bytes do not
	 * depend on where its folder sits (the simulated host uses this; relative_path still wins). */
	const char *parent_win_path;
	/* fixed/dynamic only, optional: keep this Virtual Disk ID instead of drawing one (a resized
	 * or rebuilt disk keeps its identity). Differencing disks always take the parent's. */
	const struct hv_guid *disk_id;
	uint64_t seed;            /* all GUIDs of the new file come from this */
};

struct vhdx_file;

enum {
	VHDX_OPEN_RDONLY = 0,
	VHDX_OPEN_RDWR = 1 << 0,
	VHDX_OPEN_NO_PARENT = 1 << 1, /* do not open the parent chain (reads of parent data fail) */
	VHDX_OPEN_NOSYNC = 1 << 2,    /* keep the write order but skip fsync (bulk builds, tests) */
};

struct vhdx_open_opts {
	unsigned flags;
	/* Seed for the GUIDs a writable session draws (FileWriteGuid, DataWriteGuid, LogGuid).
	 * When has_seed is false they derive from the file's current header (still deterministic). */
	bool has_seed;
	uint64_t seed;
	/* Test fault point: when >= 0, the write sequence (each pwrite/ftruncate/fsync is one step)
	 * is cut after this many steps, as if the machine lost power; later steps are dropped and
	 * the call that hit the cut fails with HV_ECRASHED. */
	long crash_after_steps;
};

/* Creates a new file (fails if it exists). The file appears under `path` only when complete. */
int vhdx_create(const char *path, const struct vhdx_create_opts *opts);

/* Opens `path`, validating every structure, replaying a pending log (in place when writable, in
 * memory otherwise) and opening the parent chain. *out is owned by the caller: vhdx_close(). */
int vhdx_open(const char *path, unsigned flags, struct vhdx_file **out);
int vhdx_open_ex(const char *path, const struct vhdx_open_opts *opts, struct vhdx_file **out);
/* Flushes (writable), clears the log GUID, closes the chain. Returns the flush result; the handle
 * is freed either way. NULL is allowed. */
int vhdx_close(struct vhdx_file *f);

/* Reads/writes virtual bytes at any offset and length inside the virtual size. Writes allocate
 * blocks, maintain sector bitmaps (differencing) and do read-modify-write of partial sectors;
 * metadata changes are held until vhdx_flush() (or close), which journals them through the log. */
int vhdx_read(struct vhdx_file *f, void *buf, uint64_t off, size_t len);
int vhdx_write(struct vhdx_file *f, const void *buf, uint64_t off, size_t len);
int vhdx_flush(struct vhdx_file *f);

struct vhdx_locator_entry {
	char *key;   /* UTF-8, owned by the file handle */
	char *value; /* UTF-8, owned by the file handle */
};

struct vhdx_info {
	enum vhdx_type type;
	uint64_t virtual_size;
	uint32_t block_size;
	uint32_t logical_sector;
	uint32_t physical_sector;
	bool leave_block_allocated;
	struct hv_guid disk_id;         /* Virtual Disk ID metadata item */
	struct hv_guid data_write_guid; /* current header */
	struct hv_guid file_write_guid;
	struct hv_guid log_guid;
	uint64_t header_sequence;
	uint64_t log_offset;
	uint32_t log_length;
	uint64_t bat_offset;
	uint64_t bat_entries;
	uint64_t file_size;
	uint32_t log_entries_replayed; /* entries of a pending log applied at open (0 = none) */
	bool log_replayed_in_memory;
	const char *parent_path;        /* resolved path of the opened parent, or NULL */
	uint32_t locator_count;
	const struct vhdx_locator_entry *locator;
	uint64_t blocks_present;        /* payload blocks FULLY/PARTIALLY_PRESENT */
};
const struct vhdx_info *vhdx_get_info(const struct vhdx_file *f);
const char *vhdx_path(const struct vhdx_file *f);
/* The opened parent (NULL for base disks or VHDX_OPEN_NO_PARENT); owned by f. */
struct vhdx_file *vhdx_parent(const struct vhdx_file *f);

/* Allocation: calls cb for each maximal virtual range this file (not its parents) defines, in
 * increasing order. kind DATA = bytes stored in this file; ZERO = this file says zeros (ZERO,
 * UNDEFINED or UNMAPPED block). Per sector for PARTIALLY_PRESENT blocks. A non-zero return from
 * cb stops the walk and is returned. */
enum vhdx_map_kind { VHDX_MAP_DATA = 1, VHDX_MAP_ZERO = 2 };
typedef int (*vhdx_map_cb)(void *ctx, uint64_t off, uint64_t len, enum vhdx_map_kind kind);
int vhdx_map(struct vhdx_file *f, vhdx_map_cb cb, void *ctx);
/* VHDX_MAP_NONZERO: only the DATA ranges that may hold non-zero bytes — ZERO ranges and ranges
 * the host file system stores as holes are left out. For copying a chain's content (export),
 * not for telling what a child overrides. */
#define VHDX_MAP_NONZERO 1u
int vhdx_map_ex(struct vhdx_file *f, unsigned flags, vhdx_map_cb cb, void *ctx);
/* State and file offset of payload block `block` (0-based, in virtual order). */
int vhdx_block_state(struct vhdx_file *f, uint64_t block, unsigned *state, uint64_t *file_off);

/* Structural check without stopping at the first problem: cb gets one line per problem.
 * Returns the number of problems (>= 0), or a negative code if the file cannot be opened at all
 * (missing, unreadable, not a VHDX). Never modifies the file. */
typedef void (*vhdx_problem_cb)(void *ctx, const char *msg);
int vhdx_check(const char *path, vhdx_problem_cb cb, void *ctx);

#endif
